// The SDK story, told with the typescript-fetch client generated from openapi.yaml (sdks/typescript).
//
// Usage: npx tsx story.ts [BASE_URL [ADMIN_PASSWORD]]
//        (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)
//
// Every list it creates carries a tag unique to this run, and every query filters on it, so the story can share a
// Roster with other stories and leaves nothing behind. Any mismatch throws and exits non-zero.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import {
  Configuration,
  ErrorResponseFromJSON,
  HealthApi,
  ListOptin,
  ListOrderBy,
  ListsApi,
  ListStatus,
  ListType,
  ResponseError,
  type GetListsRequest,
  type MailingList,
  type MailingListPageResponse,
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
  console.log("[typescript] story passed");
}

main().catch((error: unknown) => {
  console.error("[typescript] story FAILED:", error);
  process.exit(1);
});
