// The SDK story, told with the typescript-fetch client generated from openapi.yaml (sdks/typescript).
//
// Usage: npx tsx story.ts [BASE_URL [ADMIN_PASSWORD]]
//        (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)
//
// Two parts: the lists story, then the subscribers story (lists' subscriber counts, paging a list's subscribers,
// bulk list changes, public subscription, blocklisting, deleting, typed errors and the `query` expression).
//
// Every list it creates carries a tag unique to this run, every subscriber's e-mail contains it, and every query
// filters on them, so the story can share a Roster with other stories and leaves nothing behind. Any mismatch
// throws and exits non-zero.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  Configuration,
  ErrorResponseFromJSON,
  HealthApi,
  ImportApi,
  ListOptin,
  ListOrderBy,
  ListsApi,
  ListStatus,
  ListType,
  MembershipAction,
  ResponseError,
  SubscriberOrderBy,
  SubscribersApi,
  SubscriberStatus,
  SubscriptionStatus,
  type GetListsRequest,
  type GetSubscribersRequest,
  type MailingList,
  type MailingListPageResponse,
  type Subscriber,
  type SubscriberPage,
} from "../../../sdks/typescript/src/index";

function step(text: string): void {
  console.log(`[typescript] ${text}`);
}

const ids = (page: MailingListPageResponse): number[] => page.data.results.map((item) => item.id);

// Awaits a call that must fail with the client's typed error, and returns its status and parsed error body.
async function expectResponseError(call: Promise<unknown>, what: string): Promise<{ status: number; message: string }> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ResponseError, `${what}: expected a ResponseError, got ${String(error)}`);
    assert.equal(error.name, "ResponseError");
    const body = ErrorResponseFromJSON(await error.response.json());
    assert.equal(typeof body.message, "string", `${what}: error body has a message`);
    return { status: error.response.status, message: body.message };
  }
  assert.fail(`${what}: the call succeeded`);
}

function checkTimestamp(value: Date, what: string): void {
  assert.ok(value instanceof Date && !Number.isNaN(value.getTime()), `${what} is a valid Date: ${String(value)}`);
}

async function main(): Promise<void> {
  const baseUrl = (process.argv[2] ?? process.env.ROSTER_BASE_URL ?? "http://127.0.0.1:9000").replace(/\/+$/, "");
  const password = process.argv[3] ?? process.env.ROSTER_ADMIN_PASSWORD;
  const username = process.env.ROSTER_ADMIN_USERNAME ?? "admin";
  assert.ok(password, "pass the admin password as the second argument or in ROSTER_ADMIN_PASSWORD");
  const run = `ts-${randomUUID().slice(0, 8)}`;
  step(`against ${baseUrl}, run tag ${run}`);

  const admin = new Configuration({ basePath: baseUrl, username, password });
  const anonymous = new Configuration({ basePath: baseUrl });
  const lists = new ListsApi(admin);

  assert.equal((await new HealthApi(admin).getHealth()).data, true, "GET /api/health");

  // --- create: four lists of different types, opt-ins and statuses ---------------------------------------------
  const alpha = (
    await lists.createList({
      mailingListCreate: {
        name: `${run} Alpha news`,
        type: ListType.Public,
        optin: ListOptin.Double,
        status: ListStatus.Active,
        tags: [run, "news", "weekly"],
        description: "Alpha description",
      },
    })
  ).data;
  const beta = (
    await lists.createList({
      mailingListCreate: {
        name: `${run} Beta news`,
        type: ListType.Public,
        optin: ListOptin.Single,
        status: ListStatus.Archived,
        tags: [run, "news"],
      },
    })
  ).data;
  // Leading and trailing blanks: the server trims names.
  const gamma = (
    await lists.createList({
      mailingListCreate: { name: `  ${run} Gamma private  `, type: ListType.Private, tags: [run, "weekly"] },
    })
  ).data;
  // Only the required name (plus the run tag): everything else takes the documented defaults.
  const delta = (await lists.createList({ mailingListCreate: { name: `${run} Delta`, tags: [run] } })).data;

  assert.deepEqual(
    [alpha.name, alpha.type, alpha.optin, alpha.status, alpha.tags, alpha.description],
    [`${run} Alpha news`, "public", "double", "active", [run, "news", "weekly"], "Alpha description"],
    "alpha fields",
  );
  assert.deepEqual([beta.type, beta.optin, beta.status], ["public", "single", "archived"], "beta fields");
  assert.equal(gamma.name, `${run} Gamma private`, "gamma name is trimmed");
  assert.deepEqual(
    [delta.type, delta.optin, delta.status, delta.tags, delta.description],
    ["private", "single", "active", [run], ""],
    "delta defaults",
  );
  for (const item of [alpha, beta, gamma, delta]) {
    assert.ok(Number.isInteger(item.id) && item.id >= 1, `id ${item.id} is a positive integer`);
    assert.match(item.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "v4 uuid");
    checkTimestamp(item.createdAt, "createdAt");
    checkTimestamp(item.updatedAt, "updatedAt");
    assert.deepEqual(item.updatedAt, item.createdAt, "a new list's updatedAt");
    assert.deepEqual([item.subscriberCount, item.subscriberStatuses], [0, {}], "subscriber fields");
  }
  const created = [alpha.id, beta.id, gamma.id, delta.id];
  assert.deepEqual([...created].sort((a, b) => a - b), created, "ids increase");
  assert.equal(new Set([alpha, beta, gamma, delta].map((item) => item.uuid)).size, 4, "distinct uuids");
  step(`created lists ${JSON.stringify(created)}`);

  // --- pagination: per_page as a number, past the end, and `all` ------------------------------------------------
  const pageOf = (page: number, perPage: string, filters: GetListsRequest = {}) =>
    lists.getLists({ tag: [run], orderBy: ListOrderBy.Id, order: "asc", page, perPage, ...filters });

  const first = await pageOf(1, "3");
  assert.deepEqual([first.data.total, first.data.perPage, first.data.page], [4, 3, 1], "page 1 of 3 per page");
  assert.deepEqual(ids(first), created.slice(0, 3), "page 1 contents");
  const second = await pageOf(2, "3");
  assert.deepEqual([second.data.total, second.data.perPage, second.data.page], [4, 3, 2], "page 2 of 3 per page");
  assert.deepEqual(ids(second), created.slice(3), "page 2 contents");
  const past = await pageOf(3, "3");
  assert.deepEqual([past.data.total, ids(past)], [4, []], "a page past the end keeps the total");
  const everything = await pageOf(1, "all");
  assert.deepEqual(
    [everything.data.total, everything.data.perPage, everything.data.page],
    [4, 0, 1],
    "per_page=all is reported as 0",
  );
  assert.deepEqual(ids(everything), created, "per_page=all contents");
  assert.deepEqual(everything.data.results[0], alpha, "a listed list equals the created one");
  const descending = await lists.getLists({ tag: [run], orderBy: ListOrderBy.Id, order: "DESC", perPage: "all" });
  assert.deepEqual(ids(descending), [...created].reverse(), "order=DESC");
  const byName = await lists.getLists({ tag: [run], orderBy: ListOrderBy.Name, order: "asc", perPage: "2" });
  assert.deepEqual([byName.data.total, ids(byName)], [4, [alpha.id, beta.id]], "order_by=name, first page");
  const minimal = await pageOf(1, "all", { minimal: true });
  assert.deepEqual(ids(minimal), created, "minimal=true contents");
  assert.ok(
    minimal.data.results.every((item) => item.subscriberCount === undefined && item.subscriberStatuses === undefined),
    "minimal=true leaves out the subscriber fields",
  );
  step("paged with per_page=3 (pages 1, 2, 3) and per_page=all");

  // --- filters: repeated tags, query, status, type and optin ----------------------------------------------------
  const byIdAll = { orderBy: ListOrderBy.Id, order: "asc", perPage: "all" } as const;
  const news = await lists.getLists({ tag: [run, "news"], ...byIdAll });
  assert.deepEqual([news.data.total, ids(news)], [2, [alpha.id, beta.id]], "tag=run&tag=news");
  const both = await lists.getLists({ tag: [run, "news", "weekly"], ...byIdAll });
  assert.deepEqual([both.data.total, ids(both)], [1, [alpha.id]], "tag=run&tag=news&tag=weekly");
  const weekly = await lists.getLists({ tag: [run, "weekly"], ...byIdAll });
  assert.deepEqual(ids(weekly), [alpha.id, gamma.id], "tag=run&tag=weekly");
  const query = await lists.getLists({ query: `${run.toUpperCase()} GAMMA`, ...byIdAll });
  assert.deepEqual([query.data.total, ids(query)], [1, [gamma.id]], "query is case-insensitive");
  const queryWords = await lists.getLists({ query: `news ${run}`, tag: [run], ...byIdAll });
  assert.deepEqual(ids(queryWords), [alpha.id, beta.id], "query words in any order, with a tag");
  const literal = await lists.getLists({ query: `${run} %`, ...byIdAll });
  assert.equal(literal.data.total, 0, "query `%` is literal");
  const archived = await lists.getLists({ tag: [run], status: ListStatus.Archived, ...byIdAll });
  assert.deepEqual(ids(archived), [beta.id], "status=archived");
  const publicDouble = await lists.getLists({ tag: [run], type: ListType.Public, optin: ListOptin.Double, ...byIdAll });
  assert.deepEqual(ids(publicDouble), [alpha.id], "type=public&optin=double");
  step("filtered by tags, query, status, type and optin");

  // --- get one --------------------------------------------------------------------------------------------------
  const fetched = await lists.getListById({ listId: alpha.id });
  assert.equal(fetched.status, "success", "envelope status");
  assert.deepEqual(fetched.data, alpha, "GET /api/lists/{id}");

  // --- public lists, without credentials: a bare array of {uuid, name} -------------------------------------------
  const ours = async () =>
    (await new ListsApi(anonymous).getPublicLists()).filter((item) => item.name.startsWith(run));
  assert.deepEqual(await ours(), [{ uuid: alpha.uuid, name: alpha.name }], "public lists: only public and active");
  const forbidden = await expectResponseError(new ListsApi(anonymous).getLists(), "GET /api/lists anonymously");
  assert.equal(forbidden.status, 403, "status without credentials");
  step("public lists (anonymous) and 403 without credentials");

  // --- update: partial ------------------------------------------------------------------------------------------
  const updated: MailingList = (
    await lists.updateList({
      listId: alpha.id,
      mailingListUpdate: { name: `${run} Alpha renamed`, type: ListType.Private },
    })
  ).data;
  assert.deepEqual([updated.id, updated.uuid, updated.createdAt], [alpha.id, alpha.uuid, alpha.createdAt], "identity");
  assert.deepEqual([updated.name, updated.type], [`${run} Alpha renamed`, "private"], "updated fields");
  assert.deepEqual(
    [updated.optin, updated.status, updated.tags, updated.description],
    [alpha.optin, alpha.status, alpha.tags, alpha.description],
    "fields left out keep their value",
  );
  // Date keeps milliseconds only, so the change may be invisible here; it must never go backwards.
  assert.ok(updated.updatedAt.getTime() >= alpha.updatedAt.getTime(), "updatedAt does not go backwards");
  assert.deepEqual((await lists.getListById({ listId: alpha.id })).data, updated, "GET after PUT");
  const cleared = (
    await lists.updateList({ listId: alpha.id, mailingListUpdate: { tags: [run], description: "" } })
  ).data;
  assert.deepEqual([cleared.tags, cleared.description, cleared.name], [[run], "", updated.name], "set tags, clear description");
  assert.deepEqual(await ours(), [], "a private list leaves the public lists");
  step(`updated list ${alpha.id} partially`);

  // --- delete one, then several ---------------------------------------------------------------------------------
  assert.equal((await lists.deleteListById({ listId: delta.id })).data, true, "DELETE /api/lists/{id}");
  assert.equal((await lists.deleteLists({ id: [beta.id, gamma.id] })).data, true, "DELETE /api/lists?id=..&id=..");
  const left = await lists.getLists({ tag: [run], perPage: "all" });
  assert.deepEqual([left.data.total, ids(left)], [1, [alpha.id]], "lists left after deleting");
  step(`deleted ${delta.id}, then ${beta.id} and ${gamma.id}`);

  // --- a deleted id: 404 as the client's typed error -------------------------------------------------------------
  for (const gone of [delta.id, beta.id]) {
    const notFound = await expectResponseError(lists.getListById({ listId: gone }), `GET /api/lists/${gone}`);
    assert.deepEqual(notFound, { status: 404, message: "list not found" }, `GET /api/lists/${gone} after deleting it`);
  }
  step("a deleted id answers ResponseError (response.status 404, message 'list not found')");

  await lists.deleteListById({ listId: alpha.id });
  assert.equal((await lists.getLists({ tag: [run] })).data.total, 0, "clean-up");
  step("lists story passed");

  await subscriberStory(admin, anonymous, run);
  console.log("[typescript] story passed");
}

const subscriberIds = (page: SubscriberPage): number[] => page.results.map((item) => item.id);
const memberships = (subscriber: Subscriber): [number, string][] =>
  subscriber.lists.map((entry) => [entry.id, entry.subscriptionStatus]);

async function subscriberStory(admin: Configuration, anonymous: Configuration, run: string): Promise<void> {
  const lists = new ListsApi(admin);
  const subscribers = new SubscribersApi(admin);
  // [subscriber_count, subscriber_statuses] of a list, as GET /api/lists/{id} reports them.
  const counts = async (listId: number) => {
    const item = (await lists.getListById({ listId })).data;
    return [item.subscriberCount, item.subscriberStatuses];
  };

  // --- two lists: `one` public with double opt-in (for the public form), `two` private ---------------------------
  const one = (
    await lists.createList({
      mailingListCreate: { name: `${run} Subscribers one`, type: ListType.Public, optin: ListOptin.Double, tags: [run] },
    })
  ).data;
  const two = (
    await lists.createList({ mailingListCreate: { name: `${run} Subscribers two`, type: ListType.Private, tags: [run] } })
  ).data;
  for (const item of [one, two]) {
    assert.deepEqual([item.subscriberCount, item.subscriberStatuses], [0, {}], "a new list has no subscribers");
  }
  step(`created lists ${one.id} (public, double opt-in) and ${two.id} (private)`);

  // --- create: the e-mail is trimmed and lowercased, attribs are a free-form object -----------------------------
  const attribs = {
    city: "Bengaluru",
    projects: 3,
    vip: true,
    ratio: 0.5,
    address: { zip: "560001", lines: ["1 Main St", 2, null] },
  };
  const ann = (
    await subscribers.createSubscriber({
      subscriberCreate: {
        email: `  ${run.toUpperCase()}-Ann@Example.COM `,
        name: `Ann ${run}`,
        status: SubscriberStatus.Enabled,
        lists: [one.id],
        attribs,
      },
    })
  ).data;
  assert.deepEqual([ann.email, ann.name, ann.status], [`${run}-ann@example.com`, `Ann ${run}`, "enabled"], "ann");
  assert.deepEqual(ann.attribs, attribs, "attribs round-trip");
  assert.ok(Number.isInteger(ann.id) && ann.id >= 1, `subscriber id ${ann.id} is a positive integer`);
  assert.match(ann.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "v4 uuid");
  checkTimestamp(ann.createdAt, "subscriber createdAt");
  checkTimestamp(ann.updatedAt, "subscriber updatedAt");
  assert.deepEqual(memberships(ann), [[one.id, "unconfirmed"]], "a new subscription");
  const membership = ann.lists[0];
  assert.deepEqual(membership.subscriptionMeta, {}, "subscription_meta");
  assert.deepEqual(
    [membership.uuid, membership.name, membership.type, membership.optin, membership.tags],
    [one.uuid, one.name, one.type, one.optin, one.tags],
    "the subscription carries the list's fields",
  );
  checkTimestamp(membership.subscriptionCreatedAt, "subscriptionCreatedAt");
  assert.deepEqual(await counts(one.id), [1, { unconfirmed: 1 }], "list one after the first subscriber");
  assert.deepEqual(await counts(two.id), [0, {}], "list two untouched");
  assert.deepEqual((await subscribers.getSubscriberById({ subscriberId: ann.id })).data, ann, "GET /api/subscribers/{id}");
  step(`created subscriber ${ann.id} on list ${one.id}: subscriber_count 0 -> 1, unconfirmed: 1`);

  // --- more subscribers: preconfirmed, name left out, and one on no list ----------------------------------------
  const create = async (subscriberCreate: Parameters<SubscribersApi["createSubscriber"]>[0]["subscriberCreate"]) =>
    (await subscribers.createSubscriber({ subscriberCreate })).data;
  const bob = await create({ email: `${run}-bob@example.com`, lists: [one.id], preconfirmSubscriptions: true });
  assert.equal(bob.name, `${run}-bob`, "a left-out name is the e-mail's local part");
  assert.deepEqual(memberships(bob), [[one.id, "confirmed"]], "preconfirmed");
  const cid = await create({ email: `${run}-cid@example.com`, name: "Cid", lists: [one.id] });
  const dee = await create({ email: `${run}-dee@example.com`, name: "Dee", lists: [one.id] });
  const eve = await create({ email: `${run}-eve@example.com`, name: "Eve" });
  assert.deepEqual([eve.lists, eve.attribs], [[], {}], "a subscriber on no list, without attribs");
  assert.deepEqual(await counts(one.id), [4, { unconfirmed: 3, confirmed: 1 }], "list one with four subscribers");
  const duplicate = await expectResponseError(
    subscribers.createSubscriber({ subscriberCreate: { email: `${run}-ANN@example.com` } }),
    "a duplicate e-mail (another case)",
  );
  assert.equal(duplicate.status, 409, "a duplicate e-mail is a 409");
  step(`created subscribers ${bob.id}, ${cid.id}, ${dee.id} (list ${one.id}) and ${eve.id} (no list); 409 on a duplicate`);

  // --- page the subscribers of list one: list_id, per_page (a string), page, total --------------------------------
  const pageOf = async (page: number, perPage: string, listId: number[], filters: GetSubscribersRequest = {}) =>
    (await subscribers.getSubscribers({ listId, orderBy: SubscriberOrderBy.Id, order: "asc", page, perPage, ...filters }))
      .data;
  const onOne = [ann.id, bob.id, cid.id, dee.id];
  const first = await pageOf(1, "3", [one.id]);
  assert.deepEqual(
    [first.total, first.perPage, first.page, subscriberIds(first)],
    [4, 3, 1, onOne.slice(0, 3)],
    "list one, page 1 of 3 per page",
  );
  assert.deepEqual(first.results[0], ann, "a listed subscriber equals the created one");
  const second = await pageOf(2, "3", [one.id]);
  assert.deepEqual(
    [second.total, second.perPage, second.page, subscriberIds(second)],
    [4, 3, 2, onOne.slice(3)],
    "list one, page 2",
  );
  const past = await pageOf(3, "3", [one.id]);
  assert.deepEqual([past.total, past.results], [4, []], "a page past the end keeps the total");
  const everything = await pageOf(1, "all", [one.id]);
  assert.deepEqual([everything.total, everything.perPage, subscriberIds(everything)], [4, 0, onOne], "per_page=all");
  // Both ids must reach the server as `list_id=..&list_id=..`: list two is still empty, so the first alone finds
  // nobody, and `list_id=a,b` would be a 400.
  const either = await pageOf(1, "all", [two.id, one.id]);
  assert.deepEqual([either.total, subscriberIds(either)], [4, onOne], "list_id repeated (an empty list first)");
  const searched = (
    await subscribers.getSubscribers({ search: run, orderBy: SubscriberOrderBy.Id, order: "asc", perPage: "all" })
  ).data;
  assert.deepEqual([subscriberIds(searched), searched.search], [[...onOne, eve.id], run], "search by the run tag");
  step(`paged list ${one.id}'s subscribers: 3 + 1 of total 4, and per_page=all`);

  // --- PUT /api/subscribers/lists: add all four to list two, confirmed --------------------------------------------
  const done = await subscribers.manageSubscriberLists({
    subscriberListsUpdate: {
      ids: onOne,
      action: MembershipAction.Add,
      targetListIds: [two.id],
      status: SubscriptionStatus.Confirmed,
    },
  });
  assert.equal(done.data, true, "PUT /api/subscribers/lists");
  assert.deepEqual(await counts(two.id), [4, { confirmed: 4 }], "list two after adding four");
  assert.deepEqual(await counts(one.id), [4, { unconfirmed: 3, confirmed: 1 }], "list one unchanged");
  const both = await pageOf(1, "all", [one.id, two.id]);
  assert.deepEqual([both.total, subscriberIds(both)], [4, onOne], "list_id repeated: each subscriber once");
  const confirmed = await pageOf(1, "all", [two.id], { subscriptionStatus: SubscriptionStatus.Confirmed });
  assert.equal(confirmed.total, 4, "list two, subscription_status=confirmed");
  const unconfirmed = await pageOf(1, "all", [one.id], { subscriptionStatus: SubscriptionStatus.Unconfirmed });
  assert.deepEqual(subscriberIds(unconfirmed), [ann.id, cid.id, dee.id], "list one, subscription_status=unconfirmed");
  const annNow = (await subscribers.getSubscriberById({ subscriberId: ann.id })).data;
  assert.deepEqual(memberships(annNow), [[one.id, "unconfirmed"], [two.id, "confirmed"]], "ann's lists");
  step(`added ${JSON.stringify(onOne)} to list ${two.id}: its subscriber_count 0 -> 4, confirmed: 4`);

  // --- public subscription, without credentials, by the public list's UUID ----------------------------------------
  const publicApi = new SubscribersApi(anonymous);
  const result = await publicApi.createPublicSubscription({
    publicSubscriptionJson: { email: `${run}-pub@example.com`, name: "Pub", listUuids: [one.uuid] },
  });
  assert.equal(result.data.hasOptin, true, "has_optin of a double opt-in list");
  assert.deepEqual(await counts(one.id), [5, { unconfirmed: 4, confirmed: 1 }], "list one after the public form");
  const found = (await subscribers.getSubscribers({ search: `${run}-pub`, perPage: "all" })).data;
  assert.equal(found.results.length, 1, "the public subscriber exists");
  const pub = found.results[0];
  assert.deepEqual(memberships(pub), [[one.id, "unconfirmed"]], "the public subscriber's lists");
  const privateUuid = await expectResponseError(
    publicApi.createPublicSubscription({
      publicSubscriptionJson: { email: `${run}-pub2@example.com`, listUuids: [two.uuid] },
    }),
    "a private list's UUID",
  );
  assert.equal(privateUuid.status, 400, "a private list's UUID is a 400");
  assert.deepEqual(await counts(two.id), [4, { confirmed: 4 }], "a refused public subscription changes nothing");
  // A known e-mail (in another case) only gains the subscriptions it lacks: none here, and the same answer.
  const again = await publicApi.createPublicSubscription({
    publicSubscriptionJson: { email: `${run}-PUB@example.com`, listUuids: [one.uuid] },
  });
  assert.equal(again.data.hasOptin, true, "has_optin, subscribing again");
  assert.deepEqual(await counts(one.id), [5, { unconfirmed: 4, confirmed: 1 }], "subscribing again changes nothing");
  step(`public subscription to list ${one.id} by UUID: has_optin true (list_uuids, then l); a private list's UUID is a 400`);

  // --- PATCH (attribs merged, then null clears them) and PUT (lists is the exact set) -------------------------------
  const patched = (
    await subscribers.patchSubscriber({ subscriberId: ann.id, subscriberPatch: { attribs: { plan: "pro", city: "Pune" } } })
  ).data;
  assert.deepEqual(patched.attribs, { ...attribs, plan: "pro", city: "Pune" }, "PATCH merges attribs");
  assert.deepEqual(
    [patched.name, patched.lists.map((entry) => entry.id)],
    [ann.name, [one.id, two.id]],
    "PATCH leaves the rest",
  );
  const cleared = (await subscribers.patchSubscriber({ subscriberId: ann.id, subscriberPatch: { attribs: null } })).data;
  assert.deepEqual(cleared.attribs, {}, "PATCH with attribs: null clears them");
  const replaced = (
    await subscribers.updateSubscriber({
      subscriberId: dee.id,
      subscriberUpdate: { email: dee.email, name: "Dee renamed", lists: [one.id], attribs: { k: "v" } },
    })
  ).data;
  assert.deepEqual(
    [replaced.name, replaced.attribs, replaced.lists.map((entry) => entry.id)],
    ["Dee renamed", { k: "v" }, [one.id]],
    "PUT replaces",
  );
  assert.deepEqual(await counts(two.id), [3, { confirmed: 3 }], "list two after PUT left it out");
  step(`patched ${ann.id} (attribs merged, then null), replaced ${dee.id} (off list ${two.id})`);

  // --- blocklist: the subscriber's subscriptions become unsubscribed ----------------------------------------------
  assert.equal((await subscribers.blocklistSubscriberById({ subscriberId: cid.id })).data, true, "blocklist one");
  const blocked = (await subscribers.getSubscriberById({ subscriberId: cid.id })).data;
  assert.equal(blocked.status, "blocklisted", "blocklisted status");
  assert.deepEqual(
    memberships(blocked),
    [[one.id, "unsubscribed"], [two.id, "unsubscribed"]],
    "a blocklisted subscriber's subscriptions",
  );
  assert.deepEqual(
    await counts(one.id),
    [5, { unconfirmed: 3, confirmed: 1, unsubscribed: 1 }],
    "list one after blocklisting",
  );
  assert.deepEqual(await counts(two.id), [3, { confirmed: 2, unsubscribed: 1 }], "list two after blocklisting");
  const bulk = await subscribers.blocklistSubscribers({ subscriberIds: { ids: [eve.id] } });
  assert.equal(bulk.data, true, "PUT /api/subscribers/blocklist");
  const blocklisted = (
    await subscribers.getSubscribers({
      search: run,
      status: SubscriberStatus.Blocklisted,
      orderBy: SubscriberOrderBy.Id,
      order: "asc",
      perPage: "all",
    })
  ).data;
  assert.deepEqual(subscriberIds(blocklisted), [cid.id, eve.id], "status=blocklisted");
  step(`blocklisted ${cid.id} (subscriptions unsubscribed, statuses moved) and ${eve.id}`);

  // --- delete one: the counts drop; a missing subscriber is a typed 404 ---------------------------------------------
  assert.equal((await subscribers.deleteSubscriberById({ subscriberId: bob.id })).data, true, "delete one");
  assert.deepEqual(await counts(one.id), [4, { unconfirmed: 3, unsubscribed: 1 }], "list one after deleting bob");
  assert.deepEqual(await counts(two.id), [2, { confirmed: 1, unsubscribed: 1 }], "list two after deleting bob");
  const notFound = await expectResponseError(
    subscribers.getSubscriberById({ subscriberId: bob.id }),
    `GET /api/subscribers/${bob.id}`,
  );
  assert.deepEqual(notFound, { status: 404, message: "subscriber not found" }, "a deleted subscriber");
  step(`deleted ${bob.id}: counts dropped; GET answers ResponseError (404, 'subscriber not found')`);

  // --- listmonk's `query` expression -------------------------------------------------------------------------------
  const expression = `subscribers.email='${ann.email}'`;
  const queried = (await subscribers.getSubscribers({ query: expression })).data;
  assert.deepEqual(
    [queried.total, subscriberIds(queried), queried.query],
    [1, [ann.id], expression],
    "query=subscribers.email='...'",
  );
  step(`query=${expression} found subscriber ${ann.id}`);

  // --- a safe retry (Idempotency-Key) and a safe edit (ETag, If-Match) -----------------------------------------------
  const key = `${run}-create-retry`;
  const retried = { email: `${run}-retry@example.com`, name: "Retry", lists: [one.id] };
  const retriedFirst = (await subscribers.createSubscriber({ subscriberCreate: retried, idempotencyKey: key })).data;
  const retriedAgain = (await subscribers.createSubscriber({ subscriberCreate: retried, idempotencyKey: key })).data;
  assert.deepEqual(
    [retriedAgain.id, retriedAgain.uuid],
    [retriedFirst.id, retriedFirst.uuid],
    "a retry with the key gets the first answer",
  );
  const reused = await expectResponseError(
    subscribers.createSubscriber({ subscriberCreate: { email: `${run}-other@example.com` }, idempotencyKey: key }),
    "the key with another request",
  );
  assert.equal(reused.status, 422, "the key with another request");
  assert.match(reused.message, /Idempotency-Key/);
  const fetched = await subscribers.getSubscriberByIdRaw({ subscriberId: retriedFirst.id });
  const tag = fetched.raw.headers.get("ETag");
  assert.ok(tag, "GET carries an ETag");
  const edited = await subscribers.patchSubscriberRaw({
    subscriberId: retriedFirst.id,
    subscriberPatch: { name: "Edited" },
    ifMatch: tag,
  });
  assert.equal((await edited.value()).data.name, "Edited", "PATCH with the current ETag");
  const current = edited.raw.headers.get("ETag");
  assert.ok(current && current !== tag, "the answer carries the new ETag");
  try {
    await subscribers.patchSubscriber({ subscriberId: retriedFirst.id, subscriberPatch: { name: "Stale" }, ifMatch: tag });
    assert.fail("a PATCH with a stale ETag succeeded");
  } catch (error) {
    assert.ok(error instanceof ResponseError, `a stale PATCH: ${String(error)}`);
    assert.equal(error.response.status, 412, "a PATCH with a stale ETag");
    assert.equal(error.response.headers.get("ETag"), current, "the 412 carries the current ETag");
  }
  const unchanged = (await subscribers.getSubscriberById({ subscriberId: retriedFirst.id })).data;
  assert.equal(unchanged.name, "Edited", "the stale PATCH changed nothing");
  const removed = await subscribers.deleteSubscriberById({ subscriberId: retriedFirst.id, ifMatch: current });
  assert.equal(removed.data, true, "DELETE with the current ETag");
  step(`retried a create with an Idempotency-Key (one subscriber, ${retriedFirst.id}); edited it with If-Match`);

  // --- bulk: import a CSV file (a background job), then export to a file -------------------------------------------
  const importer = new ImportApi(admin);
  const folder = mkdtempSync(join(tmpdir(), "roster-story-"));
  const csv = `email,name,attributes\n${run}-imp1@example.com,Imp One,"{""plan"":""pro""}"\n${run}-imp2@example.com,,\nnot-an-email,Bad,\n`;
  writeFileSync(join(folder, "crm.csv"), csv);
  const file = new Blob([readFileSync(join(folder, "crm.csv"))], { type: "text/csv" });
  const started = (await importer.importSubscribers({
    params: JSON.stringify({ lists: [one.id], subscription_status: "confirmed" }),
    file,
  })).data;
  assert.equal(started.status, "importing", "the job starts");
  let job = (await importer.getImportStatus()).data;
  for (let waited = 0; job.status !== "finished" && job.status !== "failed" && waited < 600; waited++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    job = (await importer.getImportStatus()).data;
  }
  assert.deepEqual([job.status, job.imported, job.created, job.skipped], ["finished", 2, 2, 1], "the job's end");
  const log = (await importer.getImportLogs()).data;
  assert.match(log, /skipping line 4/, "the log names the bad row's line");
  const exported = await subscribers.exportSubscribers({ listId: [one.id], search: `${run}-imp` });
  const target = join(folder, "export.csv");
  writeFileSync(target, Buffer.from(await exported.arrayBuffer()));
  const lines = readFileSync(target, "utf-8").trim().split("\n");
  assert.equal(lines[0], "uuid,email,name,attributes,status,created_at,updated_at,lists", "the export's header");
  const imp1 = lines.find((line) => line.includes(`${run}-imp1@example.com`));
  assert.ok(imp1?.includes(`"{""plan"":""pro""}"`), `an exported row: ${imp1}`);
  assert.ok(imp1?.endsWith(`"{""${one.id}"":""confirmed""}"`), `its lists: ${imp1}`);
  assert.equal(lines.length, 3, "two subscribers exported");
  assert.equal((await importer.stopImport()).data.status, "none", "DELETE clears the ended job");
  const imported = (await subscribers.getSubscribers({ search: `${run}-imp` })).data.results.map((s) => s.id);
  step(`imported a CSV file (2 rows, 1 skipped and logged), exported the list to ${target}`);

  // --- clean-up: bulk delete, and the counts return to zero -----------------------------------------------------------
  const left = [ann.id, cid.id, dee.id, eve.id, pub.id, ...imported];
  assert.equal((await subscribers.deleteSubscribers({ id: left })).data, true, "DELETE /api/subscribers?id=..");
  assert.equal((await subscribers.getSubscribers({ search: run })).data.total, 0, "no subscriber of this run is left");
  assert.deepEqual(await counts(one.id), [0, {}], "list one after deleting everyone");
  assert.deepEqual(await counts(two.id), [0, {}], "list two after deleting everyone");
  await lists.deleteLists({ id: [one.id, two.id] });
  assert.equal((await lists.getLists({ tag: [run] })).data.total, 0, "clean-up");
  step("subscribers story passed");
}

main().catch((error: unknown) => {
  console.error("[typescript] story FAILED:", error);
  process.exit(1);
});
