#!/usr/bin/env python3
"""The SDK story, told with the Python client generated from openapi.yaml (sdks/python, package roster_client).

Usage: story.py [BASE_URL [ADMIN_PASSWORD]]
       (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)

Every list it creates carries a tag unique to this run, and every query filters on it, so the story can share a
Roster with other stories and leaves nothing behind. Any mismatch raises AssertionError and exits non-zero.
"""

import os
import sys
import uuid
from datetime import datetime, timedelta

import roster_client
from roster_client import (
    ApiClient,
    Configuration,
    HealthApi,
    ListOptin,
    ListOrderBy,
    ListsApi,
    ListStatus,
    ListType,
    MailingListCreate,
    MailingListUpdate,
)
from roster_client.exceptions import ApiException, ForbiddenException, NotFoundException
from roster_client.models import ErrorResponse


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def step(text):
    print(f"[python] {text}", flush=True)


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
    print("[python] story passed", flush=True)


if __name__ == "__main__":
    main()
