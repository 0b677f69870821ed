#!/usr/bin/env python3
"""Proves that the PyPI `listmonk` client (https://pypi.org/project/listmonk/), used unmodified, works against Roster.

Usage: ROSTER_URL=http://127.0.0.1:9000 ROSTER_ADMIN_PASSWORD=... [ROSTER_ADMIN_USERNAME=admin] listmonk_client.py

Install the pinned client first: pip install -r tests/compat/requirements.txt (scripts/listmonk-client-test.sh does
all of it: builds Roster, starts it on SQLite and PostgreSQL, runs this script).

Everything goes through the client's public functions: set_url_base, login, create_list, list_by_id, lists,
create_subscriber, subscriber_by_email, subscriber_by_uuid, subscriber_by_id, add_subscribers_to_lists,
block_subscriber, delete_subscriber, delete_list. Every name and address carries a tag unique to this run, so the
script can share a Roster with other tests; it deletes what it created however it ends. Prints each step; on any
failure prints what failed (for an HTTP error: the request and Roster's answer) and exits 1.
"""

import os
import sys
import traceback
import uuid
from datetime import datetime, timedelta

import httpx2
import pydantic

import listmonk

TAG = "[listmonk-client]"
current_step = "start-up"


class Failure(Exception):
    """A check failed: Roster answered, but not what listmonk would have."""


def step(text):
    global current_step
    current_step = text
    print(f"{TAG} {text}", flush=True)


def note(text):
    print(f"{TAG}     {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def check_utc(value, what, optional=False):
    # Roster writes `2019-01-01T09:00:00.000000+00:00`; the client's pydantic models must hand back an aware datetime
    # in UTC (a naive one would mean the offset was lost).
    if value is None and optional:
        return
    check(isinstance(value, datetime), f"{what} is a datetime, got {value!r}")
    check(value.tzinfo is not None, f"{what} is timezone-aware, got the naive {value!r}")
    check_eq(value.utcoffset(), timedelta(0), f"{what}'s UTC offset")


def subscriptions(subscriber):
    """The subscriber's `lists` as {list id: subscription_status}; the client keeps each entry as a plain dict."""
    out = {}
    for entry in subscriber.lists:
        check(isinstance(entry, dict) and "id" in entry, f"every entry of `lists` has an `id`, got {entry!r}")
        out[int(entry["id"])] = entry.get("subscription_status")
    return out


def check_subscriber(sub, what, *, id=None, uuid_=None, email, name, status, lists, attribs):
    check(sub is not None, f"{what}: expected the subscriber, got None")
    check(isinstance(sub, listmonk.models.Subscriber), f"{what}: expected a models.Subscriber, got {type(sub)}")
    if id is None:
        check(isinstance(sub.id, int) and sub.id > 0, f"{what}: id is a positive integer, got {sub.id!r}")
    else:
        check_eq(sub.id, id, f"{what}: id")
    if uuid_ is None:
        try:
            uuid.UUID(sub.uuid or "")
        except ValueError:
            raise Failure(f"{what}: uuid is a UUID, got {sub.uuid!r}") from None
    else:
        check_eq(sub.uuid, uuid_, f"{what}: uuid")
    check_eq(sub.email, email, f"{what}: email")
    check_eq(sub.name, name, f"{what}: name")
    check_eq(sub.status, status, f"{what}: status")
    check_eq(sub.attribs, attribs, f"{what}: attribs")
    check_eq(subscriptions(sub), lists, f"{what}: lists as {{list id: subscription_status}}")
    check_utc(sub.created_at, f"{what}: created_at")
    check_utc(sub.updated_at, f"{what}: updated_at", optional=True)


def subscriber_count(list_id):
    mailing_list = listmonk.list_by_id(list_id)
    check_eq(mailing_list.id, list_id, f"list_by_id({list_id}).id")
    return mailing_list.subscriber_count


def check_counts(expected, what):
    for list_id, count in expected.items():
        check_eq(subscriber_count(list_id), count, f"{what}: subscriber_count of list {list_id}")
    note(f"subscriber_count: {expected}")


def run(base_url, username, password, created):
    run_id = uuid.uuid4().hex[:12]

    step(f"listmonk client {listmonk.__version__} against {base_url}")
    listmonk.set_url_base(base_url)

    step("login with a wrong password is refused (GET /api/health answers 403)")
    check_eq(listmonk.login(username, password + "-wrong"), False, "login(wrong password)")

    step("login (GET /api/health with BasicAuth)")
    check_eq(listmonk.login(username, password), True, "login(right password)")
    check_eq(listmonk.verify_login(), True, "verify_login()")
    created["logged_in"] = True

    step("create_list twice (POST /api/lists)")
    first = listmonk.create_list(f"compat first {run_id}", list_type="private", optin="single",
                                 tags=[f"compat-{run_id}"], description="listmonk client compatibility")
    created["lists"].append(first.id)
    second = listmonk.create_list(f"compat second {run_id}", list_type="public", optin="double",
                                  tags=[f"compat-{run_id}"])
    created["lists"].append(second.id)
    for mailing_list, name in ((first, f"compat first {run_id}"), (second, f"compat second {run_id}")):
        check_eq(mailing_list.name, name, "created list's name")
        check_eq(mailing_list.tags, [f"compat-{run_id}"], "created list's tags")
        check_utc(mailing_list.created_at, "created list's created_at")
    check(first.id != second.id, f"the two lists have different ids, both are {first.id}")
    note(f"lists {first.id} and {second.id}")

    step("lists() and list_by_id find them (GET /api/lists, GET /api/lists/{id})")
    all_ids = {mailing_list.id for mailing_list in listmonk.lists()}
    check({first.id, second.id} <= all_ids, f"lists() includes {first.id} and {second.id}, got ids {sorted(all_ids)}")
    check_counts({first.id: 0, second.id: 0}, "new lists")

    # Mixed case and a `+`: the client lowercases on create and sends `+` as %2b in its query (listmonk's own
    # encoding), so this proves Roster decodes it as a plus, not a space.
    given_email = f"Listmonk.Compat+{run_id}@Example.com"
    email = given_email.lower()
    name = "Compat Tester"
    attribs = {"city": "Portland", "score": 7, "vip": True, "tags": ["a", "b"], "nested": {"plan": "pro"}}

    step("subscriber_by_email / subscriber_by_uuid find nothing yet (GET /api/subscribers?query=...)")
    check_eq(listmonk.subscriber_by_email(email), None, f"subscriber_by_email({email!r}) before creating it")
    check_eq(listmonk.subscriber_by_uuid(str(uuid.uuid4())), None, "subscriber_by_uuid(an unknown uuid)")

    step(f"create_subscriber({given_email!r}, list_ids={{{first.id}}}, pre_confirm=True) (POST /api/subscribers)")
    sub = listmonk.create_subscriber(given_email, name=name, list_ids={first.id}, pre_confirm=True, attribs=attribs)
    created["email"] = email
    check_subscriber(sub, "create_subscriber's answer", email=email, name=name, status="enabled",
                     lists={first.id: "confirmed"}, attribs=attribs)
    note(f"subscriber {sub.id}, uuid {sub.uuid}")

    step("create_subscriber with the same email again is refused with a 4xx")
    try:
        listmonk.create_subscriber(email, name=name, list_ids={first.id}, pre_confirm=True)
    except httpx2.HTTPStatusError as e:
        check(400 <= e.response.status_code < 500, f"a duplicate email gets a 4xx, got {e.response.status_code}")
        note(f"{e.response.status_code}: {e.response.text[:200]}")
    else:
        raise Failure("creating a subscriber with an email that already exists succeeded")

    expect = dict(id=sub.id, uuid_=sub.uuid, email=email, name=name, attribs=attribs)

    step("subscriber_by_email finds it (query=subscribers.email='...')")
    check_subscriber(listmonk.subscriber_by_email(email), "subscriber_by_email", status="enabled",
                     lists={first.id: "confirmed"}, **expect)

    step("subscriber_by_uuid finds it (query=subscribers.uuid='...')")
    check_subscriber(listmonk.subscriber_by_uuid(sub.uuid), "subscriber_by_uuid", status="enabled",
                     lists={first.id: "confirmed"}, **expect)

    step("subscriber_by_id finds it (query=subscribers.id=N; block_subscriber relies on it)")
    check_subscriber(listmonk.subscriber_by_id(sub.id), "subscriber_by_id", status="enabled",
                     lists={first.id: "confirmed"}, **expect)
    check_counts({first.id: 1, second.id: 0}, "after create_subscriber")

    step(f"add_subscribers_to_lists([{sub.id}], [{second.id}]) (PUT /api/subscribers/lists, action add)")
    check_eq(listmonk.add_subscribers_to_lists([sub.id], [second.id]), True, "add_subscribers_to_lists")
    check_subscriber(listmonk.subscriber_by_email(email), "subscriber_by_email after add_subscribers_to_lists",
                     status="enabled", lists={first.id: "confirmed", second.id: "confirmed"}, **expect)
    check_counts({first.id: 1, second.id: 1}, "after add_subscribers_to_lists")

    step("block_subscriber (PUT /api/subscribers/{id} with status blocklisted, then subscriber_by_id)")
    current = listmonk.subscriber_by_email(email)
    blocked = listmonk.block_subscriber(current)
    unsubscribed = {first.id: "unsubscribed", second.id: "unsubscribed"}
    check_subscriber(blocked, "block_subscriber's answer", status="blocklisted", lists=unsubscribed, **expect)
    check_subscriber(listmonk.subscriber_by_email(email), "subscriber_by_email after block_subscriber",
                     status="blocklisted", lists=unsubscribed, **expect)
    # Not asserted: listmonk counts subscriptions of every status, so a blocklisted subscriber still counts.
    note(f"subscriber_count after blocking: {first.id}: {subscriber_count(first.id)}, "
         f"{second.id}: {subscriber_count(second.id)}")

    step("delete_subscriber (subscriber_by_email, then DELETE /api/subscribers/{id})")
    check_eq(listmonk.delete_subscriber(email), True, "delete_subscriber")
    created["email"] = None
    check_eq(listmonk.subscriber_by_email(email), None, "subscriber_by_email after delete_subscriber")
    check_eq(listmonk.subscriber_by_uuid(sub.uuid), None, "subscriber_by_uuid after delete_subscriber")
    check_eq(listmonk.subscriber_by_id(sub.id), None, "subscriber_by_id after delete_subscriber")
    check_eq(listmonk.delete_subscriber(email), False, "delete_subscriber of an email that no longer exists")
    check_counts({first.id: 0, second.id: 0}, "after delete_subscriber")

    step("delete_list both lists (DELETE /api/lists/{id})")
    for list_id in list(created["lists"]):
        check_eq(listmonk.delete_list(list_id), True, f"delete_list({list_id})")
        created["lists"].remove(list_id)
    remaining = {mailing_list.id for mailing_list in listmonk.lists()} & {first.id, second.id}
    check_eq(remaining, set(), "ids of the deleted lists that lists() still shows")


def clean_up(created):
    """Best effort: removes what a failed run left behind, without hiding the failure."""
    if not created["logged_in"]:
        return
    if created["email"]:
        try:
            listmonk.delete_subscriber(created["email"])
        except Exception as e:  # noqa: BLE001 - clean-up must not mask the real failure
            print(f"{TAG} WARNING: could not delete the subscriber {created['email']}: {e}", file=sys.stderr)
    for list_id in created["lists"]:
        try:
            listmonk.delete_list(list_id)
        except Exception as e:  # noqa: BLE001
            print(f"{TAG} WARNING: could not delete the list {list_id}: {e}", file=sys.stderr)


def main():
    base_url = os.environ.get("ROSTER_URL", "http://127.0.0.1:9000")
    username = os.environ.get("ROSTER_ADMIN_USERNAME", "admin")
    password = os.environ.get("ROSTER_ADMIN_PASSWORD")
    if not password:
        print(f"{TAG} ERROR: set ROSTER_ADMIN_PASSWORD (and ROSTER_URL, ROSTER_ADMIN_USERNAME)", file=sys.stderr)
        return 2

    created = {"logged_in": False, "lists": [], "email": None}
    try:
        run(base_url, username, password, created)
    except Failure as e:
        print(f"{TAG} FAILED at '{current_step}': {e}", file=sys.stderr)
        return 1
    except httpx2.HTTPStatusError as e:
        request, response = e.request, e.response
        print(f"{TAG} FAILED at '{current_step}': {request.method} {request.url} answered {response.status_code}: "
              f"{response.text[:1000]}", file=sys.stderr)
        return 1
    except pydantic.ValidationError as e:
        print(f"{TAG} FAILED at '{current_step}': the client could not read Roster's answer into its model:\n{e}",
              file=sys.stderr)
        return 1
    except listmonk.errors.ValidationError as e:
        print(f"{TAG} FAILED at '{current_step}': the client refused Roster's answer: {e}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - anything else (connection refused, a KeyError in the client, ...)
        print(f"{TAG} FAILED at '{current_step}' with an unexpected error:", file=sys.stderr)
        traceback.print_exc()
        return 1
    finally:
        clean_up(created)
    print(f"{TAG} passed: the listmonk client {listmonk.__version__} works against Roster", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
