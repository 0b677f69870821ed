#!/usr/bin/env python3
"""The SDK story, told with the Python client generated from openapi.yaml (sdks/python, package roster_client).

Usage: story.py [BASE_URL [ADMIN_PASSWORD]]
       (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)

Two parts: the lists story, then the subscribers story (lists' subscriber counts, paging a list's subscribers,
bulk list changes, public subscription, blocklisting, deleting, typed errors and the `query` expression).

Every list it creates carries a tag unique to this run, every subscriber's e-mail contains it, and every query
filters on them, so the story can share a Roster with other stories and leaves nothing behind. Any mismatch raises
AssertionError and exits non-zero.
"""

import csv
import io
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta

import roster_client
from roster_client import (
    ApiClient,
    Configuration,
    HealthApi,
    ImportApi,
    ListOptin,
    ListOrderBy,
    ListsApi,
    ListStatus,
    ListType,
    MailingListCreate,
    MailingListUpdate,
    MembershipAction,
    PublicSubscriptionJson,
    SubscriberCreate,
    SubscriberIds,
    SubscriberListsUpdate,
    SubscriberOrderBy,
    SubscriberPatch,
    SubscribersApi,
    SubscriberStatus,
    SubscriberUpdate,
    SubscriptionStatus,
)
from roster_client.exceptions import (
    ApiException,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    UnprocessableEntityException,
)
from roster_client.models import ErrorResponse


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def step(text):
    print(f"[python] {text}", flush=True)


def header(headers, name):
    """A response header, whatever case the client keeps names in."""
    found = [value for key, value in (headers or {}).items() if key.lower() == name.lower()]
    check(found, f"a {name} header among {sorted(headers or {})}")
    return found[0]


def check_timestamp(value, what):
    # The server writes `2020-03-07T06:31:06.072483+00:00`; the client must hand back an aware datetime in UTC.
    check(isinstance(value, datetime), f"{what} is a datetime, got {type(value)}")
    check_eq(value.utcoffset(), timedelta(0), f"{what} offset")


def ids_of(page):
    return [item.id for item in page.data.results]


def main():
    base_url = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ROSTER_BASE_URL", "http://127.0.0.1:9000"))
    password = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("ROSTER_ADMIN_PASSWORD")
    username = os.environ.get("ROSTER_ADMIN_USERNAME", "admin")
    check(password, "pass the admin password as the second argument or in ROSTER_ADMIN_PASSWORD")
    base_url = base_url.rstrip("/")
    run = f"py-{uuid.uuid4().hex[:8]}"
    step(f"roster_client {roster_client.__version__} against {base_url}, run tag {run}")

    admin = ApiClient(Configuration(host=base_url, username=username, password=password))
    anonymous = ApiClient(Configuration(host=base_url))
    lists = ListsApi(admin)

    health = HealthApi(admin).get_health()
    check_eq(health.data, True, "GET /api/health data")

    # --- create: four lists of different types, opt-ins and statuses -------------------------------------------
    alpha = lists.create_list(MailingListCreate(
        name=f"{run} Alpha news", type=ListType.PUBLIC, optin=ListOptin.DOUBLE, status=ListStatus.ACTIVE,
        tags=[run, "news", "weekly"], description="Alpha description",
    )).data
    beta = lists.create_list(MailingListCreate(
        name=f"{run} Beta news", type=ListType.PUBLIC, optin=ListOptin.SINGLE, status=ListStatus.ARCHIVED,
        tags=[run, "news"],
    )).data
    # Leading and trailing blanks: the server trims names (the client must let such a name through).
    gamma = lists.create_list(MailingListCreate(
        name=f"  {run} Gamma private  ", type=ListType.PRIVATE, tags=[run, "weekly"],
    )).data
    # Only the required name (plus the run tag): everything else takes the documented defaults.
    delta = lists.create_list(MailingListCreate(name=f"{run} Delta", tags=[run])).data

    check_eq((alpha.name, alpha.type, alpha.optin, alpha.status), (f"{run} Alpha news", ListType.PUBLIC,
             ListOptin.DOUBLE, ListStatus.ACTIVE), "alpha fields")
    check_eq((alpha.tags, alpha.description), ([run, "news", "weekly"], "Alpha description"), "alpha tags/description")
    check_eq((beta.type, beta.optin, beta.status), (ListType.PUBLIC, ListOptin.SINGLE, ListStatus.ARCHIVED), "beta")
    check_eq(gamma.name, f"{run} Gamma private", "gamma name is trimmed")
    check_eq((delta.type, delta.optin, delta.status, delta.tags, delta.description),
             (ListType.PRIVATE, ListOptin.SINGLE, ListStatus.ACTIVE, [run], ""), "delta defaults")
    for item in (alpha, beta, gamma, delta):
        check(item.id >= 1, f"id {item.id} is positive")
        check_eq(item.uuid.version, 4, "uuid version")
        check_timestamp(item.created_at, "created_at")
        check_timestamp(item.updated_at, "updated_at")
        check_eq(item.updated_at, item.created_at, "a new list's updated_at")
        check_eq((item.subscriber_count, item.subscriber_statuses), (0, {}), "subscriber fields")
    created = [alpha.id, beta.id, gamma.id, delta.id]
    check_eq(sorted(created), created, "ids increase")
    check_eq(len(set(item.uuid for item in (alpha, beta, gamma, delta))), 4, "distinct uuids")
    step(f"created lists {created}")

    # --- pagination: per_page as a number, past the end, and `all` --------------------------------------------
    def page_of(page, per_page, **filters):
        return lists.get_lists(tag=[run], order_by=ListOrderBy.ID, order="asc", page=page, per_page=per_page, **filters)

    first = page_of(1, "3")
    check_eq((first.data.total, first.data.per_page, first.data.page), (4, 3, 1), "page 1 of 3 per page")
    check_eq(ids_of(first), created[:3], "page 1 contents")
    second = page_of(2, "3")
    check_eq((second.data.total, second.data.per_page, second.data.page), (4, 3, 2), "page 2 of 3 per page")
    check_eq(ids_of(second), created[3:], "page 2 contents")
    past = page_of(3, "3")
    check_eq((past.data.total, ids_of(past)), (4, []), "a page past the end keeps the total")
    everything = page_of(1, "all")
    check_eq((everything.data.total, everything.data.per_page, everything.data.page), (4, 0, 1), "per_page=all")
    check_eq(ids_of(everything), created, "per_page=all contents")
    check_eq(everything.data.results[0], alpha, "a listed list equals the created one")
    descending = lists.get_lists(tag=[run], order_by=ListOrderBy.ID, order="DESC", per_page="all")
    check_eq(ids_of(descending), created[::-1], "order=DESC")
    by_name = lists.get_lists(tag=[run], order_by=ListOrderBy.NAME, order="asc", per_page="2")
    check_eq((by_name.data.total, ids_of(by_name)), (4, [alpha.id, beta.id]), "order_by=name, first page")
    minimal = page_of(1, "all", minimal=True)
    check_eq(ids_of(minimal), created, "minimal=true contents")
    check(all(item.subscriber_count is None and item.subscriber_statuses is None for item in minimal.data.results),
          "minimal=true leaves out the subscriber fields")
    step("paged with per_page=3 (pages 1, 2, 3) and per_page=all")

    # --- filters: repeated tags, query, status, type, optin ----------------------------------------------------
    news = lists.get_lists(tag=[run, "news"], order_by=ListOrderBy.ID, order="asc", per_page="all")
    check_eq((news.data.total, ids_of(news)), (2, [alpha.id, beta.id]), "tag=run&tag=news")
    both = lists.get_lists(tag=[run, "news", "weekly"], per_page="all")
    check_eq((both.data.total, ids_of(both)), (1, [alpha.id]), "tag=run&tag=news&tag=weekly")
    weekly = lists.get_lists(tag=[run, "weekly"], order_by=ListOrderBy.ID, order="asc", per_page="all")
    check_eq(ids_of(weekly), [alpha.id, gamma.id], "tag=run&tag=weekly")
    query = lists.get_lists(query=f"{run.upper()} GAMMA", per_page="all")
    check_eq((query.data.total, ids_of(query)), (1, [gamma.id]), "query is case-insensitive, words in any list name")
    query_words = lists.get_lists(query=f"news {run}", tag=[run], order_by=ListOrderBy.ID, order="asc", per_page="all")
    check_eq(ids_of(query_words), [alpha.id, beta.id], "query words in any order, with a tag")
    literal = lists.get_lists(query=f"{run} %", per_page="all")
    check_eq(literal.data.total, 0, "query `%` is literal")
    archived = lists.get_lists(tag=[run], status=ListStatus.ARCHIVED, per_page="all")
    check_eq(ids_of(archived), [beta.id], "status=archived")
    public_double = lists.get_lists(tag=[run], type=ListType.PUBLIC, optin=ListOptin.DOUBLE, per_page="all")
    check_eq(ids_of(public_double), [alpha.id], "type=public&optin=double")
    step("filtered by tags, query, status, type and optin")

    # --- get one -----------------------------------------------------------------------------------------------
    fetched = lists.get_list_by_id(alpha.id)
    check_eq(fetched.status.value, "success", "envelope status")
    check_eq(fetched.data, alpha, "GET /api/lists/{id}")

    # --- public lists, without credentials: a bare array of {uuid, name} ----------------------------------------
    public = [item for item in ListsApi(anonymous).get_public_lists() if item.name.startswith(run)]
    check_eq([(item.uuid, item.name) for item in public], [(alpha.uuid, alpha.name)],
             "public lists: only public and active ones")
    try:
        ListsApi(anonymous).get_lists()
        raise AssertionError("GET /api/lists without credentials succeeded")
    except ForbiddenException as error:
        check_eq(error.status, 403, "status without credentials")
        check(isinstance(error.data, ErrorResponse) and error.data.message, "403 carries a message")
    step("public lists (anonymous) and 403 without credentials")

    # --- update: partial -----------------------------------------------------------------------------------------
    updated = lists.update_list(alpha.id, MailingListUpdate(name=f"{run} Alpha renamed", type=ListType.PRIVATE)).data
    check_eq((updated.id, updated.uuid, updated.created_at), (alpha.id, alpha.uuid, alpha.created_at), "identity")
    check_eq((updated.name, updated.type), (f"{run} Alpha renamed", ListType.PRIVATE), "updated fields")
    check_eq((updated.optin, updated.status, updated.tags, updated.description),
             (alpha.optin, alpha.status, alpha.tags, alpha.description), "fields left out keep their value")
    check(updated.updated_at > alpha.updated_at, "updated_at moves forward on a change")
    check_eq(lists.get_list_by_id(alpha.id).data, updated, "GET after PUT")
    cleared = lists.update_list(alpha.id, MailingListUpdate(tags=[run], description="")).data
    check_eq((cleared.tags, cleared.description, cleared.name), ([run], "", updated.name), "set tags, clear description")
    public = [item for item in ListsApi(anonymous).get_public_lists() if item.name.startswith(run)]
    check_eq(public, [], "a private list leaves the public lists")
    step(f"updated list {alpha.id} partially")

    # --- delete one, then several ------------------------------------------------------------------------------
    check_eq(lists.delete_list_by_id(delta.id).data, True, "DELETE /api/lists/{id}")
    check_eq(lists.delete_lists(id=[beta.id, gamma.id]).data, True, "DELETE /api/lists?id=..&id=..")
    left = lists.get_lists(tag=[run], per_page="all")
    check_eq((left.data.total, ids_of(left)), (1, [alpha.id]), "lists left after deleting")
    step(f"deleted {delta.id}, then {beta.id} and {gamma.id}")

    # --- a deleted id: 404 as the client's typed error ----------------------------------------------------------
    for gone in (delta.id, beta.id):
        try:
            lists.get_list_by_id(gone)
            raise AssertionError(f"GET /api/lists/{gone} after deleting it succeeded")
        except NotFoundException as error:
            check(isinstance(error, ApiException), "NotFoundException is an ApiException")
            check_eq(error.status, 404, "status of a deleted list")
            check(isinstance(error.data, ErrorResponse), f"the 404 body is read as ErrorResponse: {error.data!r}")
            check_eq(error.data.message, "list not found", "404 message")
    step("a deleted id answers NotFoundException (404, message 'list not found')")

    lists.delete_list_by_id(alpha.id)
    check_eq(lists.get_lists(tag=[run]).data.total, 0, "clean-up")
    step("lists story passed")

    subscriber_story(admin, anonymous, run)
    print("[python] story passed", flush=True)


def counts(lists, list_id):
    """(subscriber_count, subscriber_statuses) of a list, as GET /api/lists/{id} reports them."""
    item = lists.get_list_by_id(list_id).data
    return item.subscriber_count, item.subscriber_statuses


def check_error(call, exception, status, what):
    """Runs `call`, which must fail with the client's typed `exception`; returns the parsed error message."""
    try:
        call()
    except exception as error:
        check_eq(error.status, status, f"{what}: status")
        check(isinstance(error.data, ErrorResponse), f"{what}: the body is read as ErrorResponse: {error.data!r}")
        return error.data.message
    raise AssertionError(f"{what}: the call succeeded")


def subscriber_story(admin, anonymous, run):
    lists = ListsApi(admin)
    subscribers = SubscribersApi(admin)

    # --- two lists: `one` public with double opt-in (for the public form), `two` private -------------------------
    one = lists.create_list(MailingListCreate(
        name=f"{run} Subscribers one", type=ListType.PUBLIC, optin=ListOptin.DOUBLE, tags=[run])).data
    two = lists.create_list(MailingListCreate(name=f"{run} Subscribers two", type=ListType.PRIVATE, tags=[run])).data
    for item in (one, two):
        check_eq((item.subscriber_count, item.subscriber_statuses), (0, {}), "a new list has no subscribers")
    step(f"created lists {one.id} (public, double opt-in) and {two.id} (private)")

    # --- create: the e-mail is trimmed and lowercased, attribs are a free-form object ---------------------------
    attribs = {"city": "Bengaluru", "projects": 3, "vip": True, "ratio": 0.5,
               "address": {"zip": "560001", "lines": ["1 Main St", 2, None]}}
    ann = subscribers.create_subscriber(SubscriberCreate(
        email=f"  {run.upper()}-Ann@Example.COM ", name=f"Ann {run}", status=SubscriberStatus.ENABLED,
        lists=[one.id], attribs=attribs)).data
    check_eq((ann.email, ann.name, ann.status), (f"{run}-ann@example.com", f"Ann {run}", SubscriberStatus.ENABLED),
             "ann")
    check_eq(ann.attribs, attribs, "attribs round-trip")
    check(ann.id >= 1, f"subscriber id {ann.id} is positive")
    check_eq(ann.uuid.version, 4, "subscriber uuid version")
    check_timestamp(ann.created_at, "subscriber created_at")
    check_timestamp(ann.updated_at, "subscriber updated_at")
    check_eq([entry.id for entry in ann.lists], [one.id], "ann's lists")
    membership = ann.lists[0]
    check_eq((membership.subscription_status, membership.subscription_meta), (SubscriptionStatus.UNCONFIRMED, {}),
             "a new subscription")
    check_eq((membership.uuid, membership.name, membership.type, membership.optin, membership.tags),
             (one.uuid, one.name, one.type, one.optin, one.tags), "the subscription carries the list's fields")
    check_timestamp(membership.subscription_created_at, "subscription_created_at")
    check_eq(counts(lists, one.id), (1, {"unconfirmed": 1}), "list one after the first subscriber")
    check_eq(counts(lists, two.id), (0, {}), "list two untouched")
    check_eq(subscribers.get_subscriber_by_id(ann.id).data, ann, "GET /api/subscribers/{id}")
    step(f"created subscriber {ann.id} on list {one.id}: subscriber_count 0 -> 1, unconfirmed: 1")

    # --- more subscribers: preconfirmed, name left out, and one on no list --------------------------------------
    bob = subscribers.create_subscriber(SubscriberCreate(
        email=f"{run}-bob@example.com", lists=[one.id], preconfirm_subscriptions=True)).data
    check_eq(bob.name, f"{run}-bob", "a left-out name is the e-mail's local part")
    check_eq([entry.subscription_status for entry in bob.lists], [SubscriptionStatus.CONFIRMED], "preconfirmed")
    cid = subscribers.create_subscriber(SubscriberCreate(email=f"{run}-cid@example.com", name="Cid",
                                                         lists=[one.id])).data
    dee = subscribers.create_subscriber(SubscriberCreate(email=f"{run}-dee@example.com", name="Dee",
                                                         lists=[one.id])).data
    eve = subscribers.create_subscriber(SubscriberCreate(email=f"{run}-eve@example.com", name="Eve")).data
    check_eq((eve.lists, eve.attribs), ([], {}), "a subscriber on no list, without attribs")
    check_eq(counts(lists, one.id), (4, {"unconfirmed": 3, "confirmed": 1}), "list one with four subscribers")
    message = check_error(lambda: subscribers.create_subscriber(SubscriberCreate(email=f"{run}-ANN@example.com")),
                          ConflictException, 409, "a duplicate e-mail (another case)")
    check(message, "409 carries a message")
    step(f"created subscribers {bob.id}, {cid.id}, {dee.id} (list {one.id}) and {eve.id} (no list); 409 on a duplicate")

    # --- page the subscribers of list one: list_id, per_page (a string), page, total ------------------------------
    def page_of(page, per_page, list_ids, **filters):
        return subscribers.get_subscribers(list_id=list_ids, order_by=SubscriberOrderBy.ID, order="asc", page=page,
                                           per_page=per_page, **filters).data

    on_one = [ann.id, bob.id, cid.id, dee.id]
    first = page_of(1, "3", [one.id])
    check_eq((first.total, first.per_page, first.page, [s.id for s in first.results]), (4, 3, 1, on_one[:3]),
             "list one, page 1 of 3 per page")
    check_eq(first.results[0], ann, "a listed subscriber equals the created one")
    second = page_of(2, "3", [one.id])
    check_eq((second.total, second.per_page, second.page, [s.id for s in second.results]), (4, 3, 2, on_one[3:]),
             "list one, page 2")
    past = page_of(3, "3", [one.id])
    check_eq((past.total, past.results), (4, []), "a page past the end keeps the total")
    everything = page_of(1, "all", [one.id])
    check_eq((everything.total, everything.per_page, [s.id for s in everything.results]), (4, 0, on_one),
             "per_page=all")
    # Both ids must reach the server as `list_id=..&list_id=..`: list two is still empty, so the first alone
    # finds nobody, and `list_id=a,b` would be a 400.
    either = page_of(1, "all", [two.id, one.id])
    check_eq((either.total, [s.id for s in either.results]), (4, on_one), "list_id repeated (an empty list first)")
    searched = subscribers.get_subscribers(search=run, order_by=SubscriberOrderBy.ID, order="asc", per_page="all").data
    check_eq(([s.id for s in searched.results], searched.search), (on_one + [eve.id], run), "search by the run tag")
    step(f"paged list {one.id}'s subscribers: 3 + 1 of total 4, and per_page=all")

    # --- PUT /api/subscribers/lists: add all four to list two, confirmed ------------------------------------------
    done = subscribers.manage_subscriber_lists(SubscriberListsUpdate(
        ids=on_one, action=MembershipAction.ADD, target_list_ids=[two.id], status=SubscriptionStatus.CONFIRMED))
    check_eq(done.data, True, "PUT /api/subscribers/lists")
    check_eq(counts(lists, two.id), (4, {"confirmed": 4}), "list two after adding four")
    check_eq(counts(lists, one.id), (4, {"unconfirmed": 3, "confirmed": 1}), "list one unchanged")
    both = page_of(1, "all", [one.id, two.id])
    check_eq((both.total, [s.id for s in both.results]), (4, on_one), "list_id repeated: each subscriber once")
    confirmed = page_of(1, "all", [two.id], subscription_status=SubscriptionStatus.CONFIRMED)
    check_eq(confirmed.total, 4, "list two, subscription_status=confirmed")
    unconfirmed = page_of(1, "all", [one.id], subscription_status=SubscriptionStatus.UNCONFIRMED)
    check_eq([s.id for s in unconfirmed.results], [ann.id, cid.id, dee.id], "list one, subscription_status=unconfirmed")
    ann_now = subscribers.get_subscriber_by_id(ann.id).data
    check_eq([(entry.id, entry.subscription_status) for entry in ann_now.lists],
             [(one.id, SubscriptionStatus.UNCONFIRMED), (two.id, SubscriptionStatus.CONFIRMED)], "ann's lists")
    step(f"added {on_one} to list {two.id}: its subscriber_count 0 -> 4, confirmed: 4")

    # --- public subscription, without credentials, by the public list's UUID --------------------------------------
    public = SubscribersApi(anonymous)
    result = public.create_public_subscription(PublicSubscriptionJson(
        email=f"{run}-pub@example.com", name="Pub", list_uuids=[one.uuid])).data
    check_eq(result.has_optin, True, "has_optin of a double opt-in list")
    check_eq(counts(lists, one.id), (5, {"unconfirmed": 4, "confirmed": 1}), "list one after the public form")
    found = subscribers.get_subscribers(search=f"{run}-pub", per_page="all").data
    check_eq(len(found.results), 1, "the public subscriber exists")
    pub = found.results[0]
    check_eq([(entry.id, entry.subscription_status) for entry in pub.lists],
             [(one.id, SubscriptionStatus.UNCONFIRMED)], "the public subscriber's lists")
    check_error(lambda: public.create_public_subscription(PublicSubscriptionJson(
        email=f"{run}-pub2@example.com", list_uuids=[two.uuid])), BadRequestException, 400, "a private list's UUID")
    check_eq(counts(lists, two.id), (4, {"confirmed": 4}), "a refused public subscription changes nothing")
    # A known e-mail (in another case) only gains the subscriptions it lacks: none here, and the same answer.
    again = public.create_public_subscription(PublicSubscriptionJson(email=f"{run}-PUB@example.com",
                                                                      list_uuids=[one.uuid]))
    check_eq(again.data.has_optin, True, "has_optin, subscribing again")
    check_eq(counts(lists, one.id), (5, {"unconfirmed": 4, "confirmed": 1}), "subscribing again changes nothing")
    step(f"public subscription to list {one.id} by UUID: has_optin true (list_uuids, then l); a private list's UUID is a 400")

    # --- PATCH (attribs merged, then null clears them) and PUT (lists is the exact set) -----------------------------
    patched = subscribers.patch_subscriber(ann.id, SubscriberPatch(attribs={"plan": "pro", "city": "Pune"})).data
    check_eq(patched.attribs, {**attribs, "plan": "pro", "city": "Pune"}, "PATCH merges attribs")
    check_eq((patched.name, [entry.id for entry in patched.lists]), (ann.name, [one.id, two.id]),
             "PATCH leaves the rest")
    cleared = subscribers.patch_subscriber(ann.id, SubscriberPatch(attribs=None)).data
    check_eq(cleared.attribs, {}, "PATCH with attribs: null clears them")
    replaced = subscribers.update_subscriber(dee.id, SubscriberUpdate(
        email=dee.email, name="Dee renamed", lists=[one.id], attribs={"k": "v"})).data
    check_eq((replaced.name, replaced.attribs, [entry.id for entry in replaced.lists]),
             ("Dee renamed", {"k": "v"}, [one.id]), "PUT replaces")
    check_eq(counts(lists, two.id), (3, {"confirmed": 3}), "list two after PUT left it out")
    step(f"patched {ann.id} (attribs merged, then null), replaced {dee.id} (off list {two.id})")

    # --- blocklist: the subscriber's subscriptions become unsubscribed --------------------------------------------
    check_eq(subscribers.blocklist_subscriber_by_id(cid.id).data, True, "PUT /api/subscribers/{id}/blocklist")
    blocked = subscribers.get_subscriber_by_id(cid.id).data
    check_eq(blocked.status, SubscriberStatus.BLOCKLISTED, "blocklisted status")
    check_eq([(entry.id, entry.subscription_status) for entry in blocked.lists],
             [(one.id, SubscriptionStatus.UNSUBSCRIBED), (two.id, SubscriptionStatus.UNSUBSCRIBED)],
             "a blocklisted subscriber's subscriptions")
    check_eq(counts(lists, one.id), (5, {"unconfirmed": 3, "confirmed": 1, "unsubscribed": 1}), "list one after blocklist")
    check_eq(counts(lists, two.id), (3, {"confirmed": 2, "unsubscribed": 1}), "list two after blocklist")
    check_eq(subscribers.blocklist_subscribers(SubscriberIds(ids=[eve.id])).data, True, "PUT /api/subscribers/blocklist")
    blocklisted = subscribers.get_subscribers(search=run, status=SubscriberStatus.BLOCKLISTED,
                                              order_by=SubscriberOrderBy.ID, order="asc", per_page="all").data
    check_eq([s.id for s in blocklisted.results], [cid.id, eve.id], "status=blocklisted")
    step(f"blocklisted {cid.id} (subscriptions unsubscribed, statuses moved) and {eve.id}")

    # --- delete one: the counts drop; a missing subscriber is a typed 404 -------------------------------------------
    check_eq(subscribers.delete_subscriber_by_id(bob.id).data, True, "DELETE /api/subscribers/{id}")
    check_eq(counts(lists, one.id), (4, {"unconfirmed": 3, "unsubscribed": 1}), "list one after deleting bob")
    check_eq(counts(lists, two.id), (2, {"confirmed": 1, "unsubscribed": 1}), "list two after deleting bob")
    try:
        subscribers.get_subscriber_by_id(bob.id)
        raise AssertionError(f"GET /api/subscribers/{bob.id} after deleting it succeeded")
    except NotFoundException as error:
        check(isinstance(error, ApiException), "NotFoundException is an ApiException")
        check_eq(error.status, 404, "status of a deleted subscriber")
        check(isinstance(error.data, ErrorResponse), f"the 404 body is read as ErrorResponse: {error.data!r}")
        check_eq(error.data.message, "subscriber not found", "404 message")
    step(f"deleted {bob.id}: counts dropped; GET answers NotFoundException (404, 'subscriber not found')")

    # --- listmonk's `query` expression -----------------------------------------------------------------------------
    expression = f"subscribers.email='{ann.email}'"
    queried = subscribers.get_subscribers(query=expression).data
    check_eq((queried.total, [s.id for s in queried.results], queried.query), (1, [ann.id], expression),
             "query=subscribers.email='...'")
    step(f"query={expression} found subscriber {ann.id}")

    # --- a safe retry (Idempotency-Key) and a safe edit (ETag, If-Match) ---------------------------------------------
    key = f"{run}-create-retry"
    body = SubscriberCreate(email=f"{run}-retry@example.com", name="Retry", lists=[one.id])
    first = subscribers.create_subscriber(body, idempotency_key=key).data
    again = subscribers.create_subscriber(body, idempotency_key=key).data
    check_eq((again.id, again.uuid), (first.id, first.uuid), "a retry with the key gets the first answer, not a 409")
    other = SubscriberCreate(email=f"{run}-other@example.com")
    message = check_error(lambda: subscribers.create_subscriber(other, idempotency_key=key),
                          UnprocessableEntityException, 422, "the key with another request")
    check("Idempotency-Key" in message, f"the 422 names the key: {message}")
    fetched = subscribers.get_subscriber_by_id_with_http_info(first.id)
    tag = header(fetched.headers, "ETag")
    edited = subscribers.patch_subscriber_with_http_info(first.id, SubscriberPatch(name="Edited"), if_match=tag)
    check_eq(edited.data.data.name, "Edited", "PATCH with the current ETag")
    current = header(edited.headers, "ETag")
    check(current != tag, "the answer carries the new ETag")
    try:
        subscribers.patch_subscriber(first.id, SubscriberPatch(name="Stale"), if_match=tag)
        raise AssertionError("a PATCH with a stale ETag succeeded")
    except ApiException as error:
        check_eq(error.status, 412, "a PATCH with a stale ETag")
        check_eq(header(error.headers, "ETag"), current, "the 412 carries the current ETag")
    check_eq(subscribers.get_subscriber_by_id(first.id).data.name, "Edited", "the stale PATCH changed nothing")
    check_eq(subscribers.delete_subscriber_by_id(first.id, if_match=current).data, True,
             "DELETE with the current ETag")
    step(f"retried a create with an Idempotency-Key (one subscriber, {first.id}); edited it with If-Match (412 when stale)")

    # --- bulk: import a CSV file (a background job), then export to a file --------------------------------------------
    importer = ImportApi(admin)
    folder = tempfile.mkdtemp()
    source = os.path.join(folder, "crm.csv")
    with open(source, "w", encoding="utf-8") as out:
        out.write("email,name,attributes\n")
        out.write(f'{run}-imp1@example.com,Imp One,"{{""plan"":""pro""}}"\n')
        out.write(f"{run}-imp2@example.com,,\n")
        out.write("not-an-email,Bad,\n")
    params = json.dumps({"lists": [one.id], "subscription_status": "confirmed"})
    started = importer.import_subscribers(params=params, file=source).data
    check_eq((started.name, started.status), ("crm.csv", "importing"), "the job starts")
    deadline = time.monotonic() + 60
    job = importer.get_import_status().data
    while job.status not in ("finished", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = importer.get_import_status().data
    check_eq((job.status, job.imported, job.created, job.skipped), ("finished", 2, 2, 1), "the job's end")
    log = importer.get_import_logs().data
    check("skipping line 4" in log, f"the log names the bad row's line: {log}")
    exported = subscribers.export_subscribers(list_id=[one.id], search=f"{run}-imp")
    target = os.path.join(folder, "export.csv")
    with open(target, "wb") as out:
        out.write(exported)
    with open(target, encoding="utf-8", newline="") as back:
        rows = list(csv.DictReader(back))
    check_eq(sorted(r["email"] for r in rows), [f"{run}-imp1@example.com", f"{run}-imp2@example.com"], "exported")
    imp1 = next(r for r in rows if r["email"].startswith(f"{run}-imp1"))
    check_eq((imp1["name"], json.loads(imp1["attributes"]), json.loads(imp1["lists"])),
             ("Imp One", {"plan": "pro"}, {str(one.id): "confirmed"}), "an exported row")
    check_eq(importer.stop_import().data.status, "none", "DELETE clears the ended job")
    imported_ids = [s.id for s in subscribers.get_subscribers(search=f"{run}-imp").data.results]
    step(f"imported a CSV file (2 rows, 1 skipped and logged), exported the list to {target}")

    # --- clean-up: bulk delete, and the counts return to zero ---------------------------------------------------------
    left = [ann.id, cid.id, dee.id, eve.id, pub.id, *imported_ids]
    check_eq(subscribers.delete_subscribers(id=left).data, True, "DELETE /api/subscribers?id=..")
    check_eq(subscribers.get_subscribers(search=run).data.total, 0, "no subscriber of this run is left")
    check_eq(counts(lists, one.id), (0, {}), "list one after deleting everyone")
    check_eq(counts(lists, two.id), (0, {}), "list two after deleting everyone")
    lists.delete_lists(id=[one.id, two.id])
    check_eq(lists.get_lists(tag=[run]).data.total, 0, "clean-up")
    step("subscribers story passed")


if __name__ == "__main__":
    main()
