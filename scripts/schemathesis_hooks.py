"""Schemathesis hooks for scripts/conformance.sh (loaded through `hooks` in schemathesis.toml).

`filter_failure` drops a few narrowly defined kinds of check failure, each explained where it is tested: two that
no server could avoid, because of how Schemathesis 4 serializes form bodies; rules OpenAPI 3.0 cannot express
(deliberate, documented Roster rules); and schema-valid bodies that name rows that do not exist (OpenAPI cannot
say "the id of an existing list"), which the hook proves by asking the server before it drops anything. Each
dropped failure is still counted in Schemathesis' summary ("dropped by `filter_failure`"), and each rule is narrow
enough that a real defect of the same check on the same operation is still reported.

`map_case` is the other half of the last rule: random ids almost never exist (and the spec's one example e-mail
exists after its first use), so without it no generated request to the bulk subscriber operations or the public
subscription form would ever succeed, and their success path (and the schema of its response) would go untested;
Schemathesis warns about exactly that (`validation_mismatch`). It points the ids and list UUIDs of most positive
cases at rows that exist (fixtures it keeps alive) and gives most new subscribers an address nobody has; the rest
keep their generated values, so the "unknown id" and "e-mail taken" answers are tested too. It never touches
negative cases, and it swaps integers for integers, UUIDs for UUIDs and an address for a longer one within the
bounds, so a case stays as schema-valid as it was generated.
"""

from __future__ import annotations

import decimal
import json
import os
import re
import uuid
import zlib
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis

FORM_MEDIA_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _media_type(case: Any) -> str:
    return (getattr(case, "media_type", None) or "").split(";")[0].strip().lower()


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _only_type_changes_in_body(case: Any) -> bool:
    """Whether the case's only schema violations are changed JSON types of body fields."""
    meta = getattr(case, "meta", None)
    if meta is None:
        return False
    for location, info in meta.components.items():
        if _enum_value(location) != "body" and _enum_value(info.mode) != "positive":
            return False
    data = meta.phase.data
    mutations = getattr(data, "mutations", ()) or ()
    if mutations:
        return all(
            _enum_value(m.parameter_location) == "body" and set(m.keywords) <= {"type"} for m in mutations
        )
    return _enum_value(getattr(data, "scenario", "")) == "incorrect_type"


def _has_control_character_in_field_name(body: Any) -> bool:
    def bad(c: str) -> bool:
        return (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F

    return isinstance(body, dict) and any(isinstance(k, str) and any(bad(c) for c in k) for k in body)


def _is_false(value: Any) -> bool:
    return value is None or value is False or str(value).lower() == "false"


def _deletes_without_selector(case: Any) -> bool:
    """`DELETE /api/lists` with no `id`, no non-blank `query` and no `all=true`."""
    if case.method.upper() != "DELETE" or case.path != "/api/lists":
        return False
    query = case.query or {}
    blank_query = not str(query.get("query") or "").strip()
    return not query.get("id") and blank_query and _is_false(query.get("all"))


# The bodies whose ids must name existing rows, and the fields that carry them: list ids, subscriber ids.
REFERENCING_BODIES = {
    ("POST", "/api/subscribers"): (("lists",), ()),
    ("PUT", "/api/subscribers/{subscriber_id}"): (("lists",), ()),
    ("PATCH", "/api/subscribers/{subscriber_id}"): (("lists",), ()),
    ("PUT", "/api/subscribers/lists"): (("target_list_ids",), ("ids",)),
    ("PUT", "/api/subscribers/blocklist"): ((), ("ids",)),
}
# Bodies carrying a subscriber's e-mail, which must be unique: each positive case gets one nobody has.
EMAIL_BODIES = (
    ("POST", "/api/subscribers"),
    ("PUT", "/api/subscribers/{subscriber_id}"),
    ("PATCH", "/api/subscribers/{subscriber_id}"),
)
# openapi.yaml, response SubscriberUnprocessable: "subscribers or lists that do not exist (named in the message,
# and nothing changes)", e.g. `unknown list ids: 99; nothing was changed`; past 20, `... and 7 more`.
UNKNOWN_IDS = re.compile(r"unknown (list|subscriber) ids: ([0-9]+(?:, [0-9]+)*)(?: and [0-9]+ more)?; nothing was changed")
# openapi.yaml, POST /api/public/subscription: "Any other UUID (private, archived or unknown) gets the same 400".
NOT_OPEN_FOR_SUBSCRIPTION = "one or more list UUIDs are not lists open for subscription"


def _message(response: Any) -> str:
    try:
        body = response.json()
    except Exception:
        return ""
    return body.get("message", "") if isinstance(body, dict) else ""


def _server(response: Any) -> str:
    """The base URL the failing request went to."""
    url = urlsplit(response.request.url)
    return f"{url.scheme}://{url.netloc}"


def _status(response: Any, path: str) -> int:
    """The status of GET `path` on the same server, with the failing request's credentials."""
    headers = {}
    authorization = response.request.headers.get("Authorization")
    if authorization:
        headers["Authorization"] = authorization
    return requests.get(_server(response) + path, headers=headers, timeout=10).status_code


def _ids_in(body: Any, fields: tuple[str, ...]) -> set[int]:
    ids: set[int] = set()
    if isinstance(body, dict):
        for field in fields:
            values = body.get(field)
            if isinstance(values, list):
                ids.update(v for v in values if isinstance(v, int) and not isinstance(v, bool))
    return ids


def _names_only_missing_rows(case: Any, response: Any) -> bool:
    """A 422 `unknown ... ids: ...` whose every named id is in the body's id fields of that kind, and does not
    exist: GET /api/lists/{id} or GET /api/subscribers/{id} answers 404 (asked now, with the same credentials).
    A 422 naming an id that exists, or one the body did not send, is still reported. (Past 20 ids the message
    names the first 20; those are checked.)"""
    fields = REFERENCING_BODIES.get((case.method.upper(), case.path))
    match = UNKNOWN_IDS.fullmatch(_message(response))
    if fields is None or response.status_code != 422 or match is None:
        return False
    kind, named = match.group(1), {int(n) for n in match.group(2).split(", ")}
    list_fields, subscriber_fields = fields
    sent = _ids_in(case.body, list_fields if kind == "list" else subscriber_fields)
    if not named <= sent:
        return False
    collection = "/api/lists/" if kind == "list" else "/api/subscribers/"
    return all(_status(response, f"{collection}{n}") == 404 for n in named)


def _uuids_in(body: Any) -> list[str]:
    uuids: list[str] = []
    if isinstance(body, dict):
        for field in ("list_uuids", "l"):
            values = body.get(field)
            if isinstance(values, list):
                uuids.extend(str(v).lower() for v in values)
            elif isinstance(values, str):
                uuids.append(values.lower())
    return uuids


def _names_no_open_list(case: Any, response: Any) -> bool:
    """A 400 `one or more list UUIDs are not lists open for subscription` for a body of which at least one UUID
    is indeed not among GET /api/public/lists (asked now)."""
    if (case.method.upper(), case.path) != ("POST", "/api/public/subscription"):
        return False
    if response.status_code != 400 or _message(response) != NOT_OPEN_FOR_SUBSCRIPTION:
        return False
    uuids = _uuids_in(case.body)
    if not uuids:
        return False
    public = requests.get(_server(response) + "/api/public/lists", timeout=10)
    open_uuids = {item["uuid"].lower() for item in public.json()}
    return any(u not in open_uuids for u in uuids)


# When set (scripts/conformance.sh sets it), every failure a check reports is appended to this file as one JSON
# line, with whether the rules below dropped it. Schemathesis reports one failure per check, operation and status
# (ST202) or per check and operation, so a second cause behind the same status would otherwise stay hidden.
FAILURE_LOG = os.environ.get("ROSTER_CONFORMANCE_FAILURE_LOG")


def _log_failure(failure: Any, case: Any, response: Any, kept: bool) -> None:
    body = case.body if isinstance(case.body, (dict, list, str, int, float, bool)) or case.body is None else repr(case.body)
    entry = {
        "kept": kept,
        "code": getattr(failure, "code", None),
        "title": getattr(failure, "title", None),
        "operation": f"{case.method.upper()} {case.path}",
        "status": getattr(response, "status_code", None),
        "message": _message(response)[:300] if response is not None else "",
        "media_type": _media_type(case),
        "query": case.query,
        "body": json.dumps(body, default=str)[:500],
        "case_id": getattr(case, "id", None),
    }
    with open(FAILURE_LOG, "a") as log:
        log.write(json.dumps(entry, default=str) + "\n")


# openapi.yaml, GET /api/subscribers `query`: "Anything else ... is a 400 naming what is not supported"; every
# message of the translator starts so.
QUERY_REFUSED = "`query`: "
# openapi.yaml, GET /api/subscribers `subscription_status`: "With `list_id` (required then)".
STATUS_WITHOUT_LIST = "subscription_status needs at least one list_id"
# openapi.yaml, SubscriberAttribs and SubscriberUnprocessable: at most 65,536 bytes as compact JSON with every number
# written out in full decimal (as PostgreSQL stores and returns it), 16 levels of nesting, 1,024 values, no NUL
# character.
ATTRIBS_MAX_BYTES = 65_536
ATTRIBS_MAX_DEPTH = 16
ATTRIBS_MAX_VALUES = 1024
ATTRIBS_TOO_MANY = f"attribs must hold at most {ATTRIBS_MAX_VALUES} values (objects, arrays and scalars)"
ATTRIBS_TOO_LARGE = (
    f"attribs must be at most {ATTRIBS_MAX_BYTES} bytes of JSON as stored, with every number written out in full "
    "decimal (1e308 is 309 digits)"
)
ATTRIBS_TOO_DEEP = f"attribs must be nested at most {ATTRIBS_MAX_DEPTH} levels deep"
ATTRIBS_NUL = "attribs must not contain NUL characters"
SUBSCRIBER_BODIES = {
    ("POST", "/api/subscribers"),
    ("PUT", "/api/subscribers/{subscriber_id}"),
    ("PATCH", "/api/subscribers/{subscriber_id}"),
}


def _query_value(case: Any, name: str) -> Any:
    value = (case.query or {}).get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


# The operations that take the subscriber listing's filters: the listing and the CSV export.
SUBSCRIBER_SELECTIONS = {("GET", "/api/subscribers"), ("GET", "/api/subscribers/export")}


def _refuses_query_expression(case: Any, response: Any) -> bool:
    """A 400 blaming `query` for a request that sends a non-blank `query`."""
    if (case.method.upper(), case.path) not in SUBSCRIBER_SELECTIONS or response.status_code != 400:
        return False
    expression = _query_value(case, "query")
    return isinstance(expression, str) and bool(expression.strip()) and _message(response).startswith(QUERY_REFUSED)


# openapi.yaml, GET /api/subscribers `after`: "A cursor from the `next` of a previous page ... (a cursor made for
# another ordering is refused) ... `page` must be 1 (or left out) with it".
CURSOR_REFUSED = ("after is not a cursor from this API", "after was made for ", "page must be 1 (or left out) with after")


def _refuses_cursor(case: Any, response: Any) -> bool:
    """A 400 blaming `after` for a request that sends one."""
    if (case.method.upper(), case.path) != ("GET", "/api/subscribers") or response.status_code != 400:
        return False
    return _query_value(case, "after") not in (None, "", []) and _message(response).startswith(CURSOR_REFUSED)


def _status_without_list(case: Any, response: Any) -> bool:
    """A 400 `subscription_status needs at least one list_id` for a request with the one and not the other."""
    if (case.method.upper(), case.path) not in SUBSCRIBER_SELECTIONS or response.status_code != 400:
        return False
    return (
        _message(response) == STATUS_WITHOUT_LIST
        and _query_value(case, "subscription_status") not in (None, "", [])
        and not (case.query or {}).get("list_id")
    )


def _depth(value: Any, level: int = 1) -> int:
    """Nesting of a JSON value, the top-level object being level 1 (as Roster counts)."""
    if isinstance(value, dict):
        return max([level] + [_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level] + [_depth(v, level + 1) for v in value])
    return level - 1


def _values(value: Any) -> int:
    """JSON values inside a value, itself aside (as Roster counts below the top-level object)."""
    if isinstance(value, dict):
        return sum(1 + _values(v) for v in value.values())
    if isinstance(value, list):
        return sum(1 + _values(v) for v in value)
    return 0


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _expansion(value: Any) -> int:
    """How many bytes longer the floats in a JSON value are once written out in plain decimal (`1e308` → 309
    digits), as PostgreSQL returns them, than as json.dumps writes them. Python's repr and serde_json both write the
    shortest decimal that round-trips, so their digits agree."""
    if isinstance(value, float):
        plain = format(decimal.Decimal(repr(value)), "f")
        return max(0, len(plain) - len(json.dumps(value)))
    if isinstance(value, dict):
        return sum(_expansion(v) for v in value.values())
    if isinstance(value, list):
        return sum(_expansion(v) for v in value)
    return 0


def _attribs_break_a_bound(case: Any, response: Any) -> bool:
    """A 422 naming an `attribs` rule that the body's `attribs` indeed breaks."""
    if (case.method.upper(), case.path) not in SUBSCRIBER_BODIES or response.status_code != 422:
        return False
    attribs = case.body.get("attribs") if isinstance(case.body, dict) else None
    if not isinstance(attribs, dict):
        return False
    message = _message(response)
    if message == ATTRIBS_NUL:
        return _has_nul(attribs)
    if message == ATTRIBS_TOO_DEEP:
        return _depth(attribs) > ATTRIBS_MAX_DEPTH
    if message == ATTRIBS_TOO_MANY:
        return _values(attribs) > ATTRIBS_MAX_VALUES
    if message == ATTRIBS_TOO_LARGE:
        compact = json.dumps(attribs, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        return len(compact) + _expansion(attribs) > ATTRIBS_MAX_BYTES
    return False


# openapi.yaml, lists' `query` and subscribers' `search`: "32 different words of at most 100 characters each".
WORD_MAX_CHARS = 100
WORD_TOO_LONG = f"words must be at most {WORD_MAX_CHARS} characters each"
# What Rust's `split_whitespace` splits on (Unicode White_Space); Python's str.split also splits on U+001C-U+001F.
RUST_WHITESPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
SEARCHES = {
    ("GET", "/api/lists"): "query",
    ("DELETE", "/api/lists"): "query",
    ("GET", "/api/subscribers"): "search",
    ("GET", "/api/subscribers/export"): "search",
}


def _refuses_long_word(case: Any, response: Any) -> bool:
    """A 400 for a search word over 100 characters, when the search indeed has one."""
    name = SEARCHES.get((case.method.upper(), case.path))
    if name is None or response.status_code != 400 or not _message(response).endswith(WORD_TOO_LONG):
        return False
    text = _query_value(case, name)
    return isinstance(text, str) and any(len(word) > WORD_MAX_CHARS for word in RUST_WHITESPACE.split(text))


def _header(case: Any, name: str) -> Any:
    for key, value in (case.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _names_no_current_version(case: Any, response: Any) -> bool:
    """A 412 for an `If-Match` that indeed names no current version: the answer's `ETag` (the current one) is not
    among the tags sent, and the condition is not `*`."""
    condition = _header(case, "If-Match")
    if response.status_code != 412 or not isinstance(condition, str) or condition.strip() == "*":
        return False
    current = _response_header(response, "ETag")
    return bool(current) and current not in [tag.strip() for tag in condition.split(",")]


def _response_header(response: Any, name: str) -> str | None:
    """A response header, whatever case its name has and whether the client keeps one value or a list."""
    for key, value in dict(response.headers).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, (list, tuple)) and value else value
    return None


# openapi.yaml, `KeyReused`: "This `Idempotency-Key` was used with a different request".
KEY_REUSED = "this Idempotency-Key was used with a different request (method, path, query, conditions or body)"


def _reuses_key(case: Any, response: Any) -> bool:
    """A 422 for a key used before with another request, for a request that sends a key."""
    return (
        response.status_code == 422
        and _message(response) == KEY_REUSED
        and isinstance(_header(case, "Idempotency-Key"), str)
    )


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    kept = _keep(failure, case, response)
    if FAILURE_LOG:
        try:
            _log_failure(failure, case, response, kept)
        except Exception as error:  # the log is a diagnostic: it must never change the verdict
            print(f"schemathesis_hooks: could not log a failure: {error!r}")
    return kept


def _keep(failure, case, response) -> bool:
    code = getattr(failure, "code", None)
    media_type = _media_type(case)

    # ST201 negative_data_rejection on a form body whose only "violation" is a JSON type: every form value
    # reaches the server as text, so `tags: {}` arrives as the tag "{}", `tags: "AAA"` as the one-tag list
    # `tags=AAA`, `name: 5` as the name "5", and `null` as a left-out field. What the server receives is valid;
    # the same mutations in JSON bodies are still checked.
    if code == "ST201" and media_type in FORM_MEDIA_TYPES and _only_type_changes_in_body(case):
        return False

    # ST202 positive_data_acceptance on multipart bodies with a generated (unknown) field name containing a
    # control character: Schemathesis writes it raw into the part's Content-Disposition header, where RFC 9110
    # (field-value) and RFC 7578 do not allow it, so the body is malformed and 400 is the documented answer
    # ("the request cannot be read"). Unknown fields with printable names are still sent and must be ignored.
    if (
        code == "ST202"
        and media_type == "multipart/form-data"
        and response.status_code == 400
        and _has_control_character_in_field_name(case.body)
    ):
        return False

    # ST202 positive_data_acceptance on `DELETE /api/lists` without any selector. Deliberate and documented
    # (openapi.yaml: `id` is "Required if neither `query` nor `all=true` is given"; README: 400 for "`DELETE
    # /api/lists` with no selector"; listmonk does the same): a bare DELETE must not mean "delete everything".
    # OpenAPI 3.0 cannot say "at least one of these parameters", so the schema calls the bare request valid. A
    # blank `query` counts as none (documented on the parameter, as in listmonk).
    if code == "ST202" and response.status_code == 400 and _deletes_without_selector(case):
        return False

    # ST202 positive_data_acceptance on a subscriber body naming list or subscriber ids that do not exist.
    # Deliberate and documented (openapi.yaml: "an unknown list id is a 422 naming it, and nothing is created";
    # response SubscriberUnprocessable): writes are all-or-nothing, and a typo in an id must not be dropped
    # silently. OpenAPI cannot say "the id of an existing row", so generated ids (and the examples' `[1, 2, 3]` on
    # an empty database) are schema-valid. Dropped only when every id the message names was sent in that kind of
    # field and the server answers 404 for it right now: a 422 for an id that exists is still a failure.
    if code == "ST202" and _names_only_missing_rows(case, response):
        return False

    # ST202 positive_data_acceptance on POST /api/public/subscription with a UUID that is not a public, active
    # list. Deliberate and documented (openapi.yaml: "Any other UUID (private, archived or unknown) gets the same
    # 400, and nothing changes"; as in listmonk). A UUID format cannot say "of a public list". Dropped only when a
    # UUID of the body is indeed missing from GET /api/public/lists.
    if code == "ST202" and _names_no_open_list(case, response):
        return False

    # ST202 positive_data_acceptance on GET /api/subscribers with a `query` that is not an expression Roster
    # translates. Deliberate and documented (openapi.yaml: the operators, columns and literals it takes; "Anything
    # else ... is a 400 naming what is not supported"): `query` is listmonk's SQL, which Roster translates and
    # never runs, and no schema can describe a grammar, so every string is schema-valid. Dropped only when the 400
    # blames `query` (its message starts "`query`: "); that valid expressions are translated right is the API
    # suite's job (tests/api).
    if code == "ST202" and _refuses_query_expression(case, response):
        return False

    # ST202 positive_data_acceptance on GET /api/subscribers with an `after` that is not a cursor Roster made for
    # that ordering, or with a `page` beyond 1. Deliberate and documented (the parameter: "A cursor from the `next`
    # of a previous page", "Treat it as opaque", "`page` must be 1 (or left out) with it"): a schema cannot say
    # "a value this server issued". Dropped only when the 400 blames `after`; that cursors walk every row once is
    # the API suite's job (tests/api/subscribers.rs).
    if code == "ST202" and _refuses_cursor(case, response):
        return False

    # ST202 positive_data_acceptance on GET /api/subscribers with `subscription_status` but no `list_id`.
    # Deliberate and documented (the parameter: "With `list_id` (required then)"): a subscription's state exists
    # only on a list. OpenAPI 3.0 cannot make one parameter required by another's presence.
    if code == "ST202" and _status_without_list(case, response):
        return False

    # ST202 positive_data_acceptance on subscriber bodies whose free-form `attribs` break a documented bound
    # (SubscriberAttribs and SubscriberUnprocessable: at most 65,536 bytes, 16 levels, no NUL character, which
    # PostgreSQL cannot store in jsonb). `additionalProperties: true` cannot bound what it allows in OpenAPI 3.0.
    # Dropped only when the body's `attribs` indeed break the bound the message names.
    if code == "ST202" and _attribs_break_a_bound(case, response):
        return False

    # ST202 positive_data_acceptance on a search (`query` of lists, `search` of subscribers) with a word over 100
    # characters. Deliberate and documented (the parameters: "32 different words of at most 100 characters each";
    # README's limits table says why: a word costs the stored text times its length per row). A `maxLength` cannot
    # bound the runs between spaces. Dropped only when a word of the request is indeed longer.
    if code == "ST202" and _refuses_long_word(case, response):
        return False

    # ST202 positive_data_acceptance on a write with an `If-Match` that names no current version. Deliberate and
    # documented (openapi.yaml, `IfMatch` and `PreconditionFailed`: "Otherwise the answer is 412 with the current
    # `ETag`, and nothing changes"): a schema cannot say "the tag this resource has now". Dropped only when the
    # answer's `ETag` is indeed not among the tags sent.
    if code == "ST202" and _names_no_current_version(case, response):
        return False

    # ST202 positive_data_acceptance on an upload while an import job runs. Deliberate and documented (openapi.yaml,
    # `ImportRunning`: "one runs at a time"); the job before it was started by another case a moment ago.
    if code == "ST202" and _import_running(case, response):
        return False

    # ST202 positive_data_acceptance on a write whose `Idempotency-Key` was used before with another request.
    # Deliberate and documented (openapi.yaml, `IdempotencyKey` and `KeyReused`): a key names one request. Not
    # every phase passes its cases through `map_case` (which makes most keys the request's own), and a schema
    # cannot say "a key not used before". Dropped only on that exact answer to a request that sent a key.
    if code == "ST202" and _reuses_key(case, response):
        return False

    return True


# --- map_case: positive cases name rows that exist ------------------------------------------------------------------

# The credentials scripts/conformance.sh starts Roster with (schemathesis.toml reads the same variables).
CREDENTIALS = (os.environ.get("ROSTER_CONFORMANCE_USERNAME", ""), os.environ.get("ROSTER_CONFORMANCE_PASSWORD", ""))
# Rows the fixtures keep alive: two of each kind, so that a body with several ids names several rows.
FIXTURES = 2
_fixtures: dict[str, list[Any]] = {"list": [], "subscriber": [], "open list": []}


def _api(base: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, base + path, json=body, auth=CREDENTIALS, timeout=10)


def _alive(base: str, kind: str, value: Any) -> bool:
    if kind == "open list":
        return value in {item["uuid"] for item in _api(base, "GET", "/api/public/lists").json()}
    collection = "/api/lists/" if kind == "list" else "/api/subscribers/"
    return _api(base, "GET", f"{collection}{value}").status_code == 200


def _create(base: str, kind: str) -> Any:
    tag = uuid.uuid4().hex[:12]
    if kind == "subscriber":
        created = _api(base, "POST", "/api/subscribers", {"email": f"conformance-fixture-{tag}@example.com"})
        created.raise_for_status()
        return created.json()["data"]["id"]
    body = {"name": f"conformance fixture {tag}", "tags": ["conformance-fixture"]}
    if kind == "open list":
        body.update(type="public", status="active")
    created = _api(base, "POST", "/api/lists", body)
    created.raise_for_status()
    data = created.json()["data"]
    return data["uuid"] if kind == "open list" else data["id"]


def _existing(base: str, kind: str) -> list[Any]:
    """FIXTURES rows of this kind that exist right now (ids, or UUIDs of public, active lists): the ones kept
    from before while they still exist (generated requests delete, archive and blocklist at random), new ones
    otherwise."""
    rows = [value for value in _fixtures[kind] if _alive(base, kind, value)]
    while len(rows) < FIXTURES:
        rows.append(_create(base, kind))
    _fixtures[kind] = rows
    return rows


def _is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and _enum_value(meta.generation.mode) == "positive"


def _keeps_generated_values(case: Any) -> bool:
    """One positive case in four (outside the examples phase) keeps its generated ids and e-mail. Decided by the
    body's own content, so that a case replayed by Hypothesis is treated the same way."""
    if _enum_value(case.meta.phase.name) == "examples":
        return False
    return zlib.crc32(json.dumps(case.body, sort_keys=True, default=str).encode()) % 4 == 0


def _swap(values: Any, rows: list[Any]) -> Any:
    """Each generated value replaced by an existing row, chosen by the value itself (so a replay chooses the same
    one)."""
    if not isinstance(values, list) or not values:
        return values
    return [rows[zlib.crc32(str(v).encode()) % len(rows)] for v in values]


@schemathesis.hook
def map_case(context, case):
    try:
        return _with_own_key(_with_matching_condition(_with_existing_rows(case)))
    except Exception as error:  # a fixture problem must not abort the run; the case goes out as generated
        print(f"schemathesis_hooks: map_case left a case as generated: {error!r}")
        return case


def _with_matching_condition(case: Any) -> Any:
    """Three positive cases in four with an `If-Match` get `*` (any current version) instead of the generated
    tag, which never names a version (openapi.yaml, `IfMatch`): otherwise every conditional write is a 412 and
    its success path goes untested. The rest keep the generated tag, so the 412 is still checked. Decided by the
    request's own content, so that a replay is treated the same way."""
    condition = _header(case, "If-Match")
    if not isinstance(condition, str) or not _is_positive(case):
        return case
    chosen = json.dumps([case.path_parameters, case.body, condition], sort_keys=True, default=str)
    if zlib.crc32(chosen.encode()) % 4 == 0:
        return case
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "if-match"}
    headers["If-Match"] = "*"
    case.headers = headers
    return case


# openapi.yaml, `IdempotencyKey`: 1 to 255 visible ASCII characters. A case with another key is left as it is.
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _with_own_key(case: Any) -> Any:
    """A case's (valid) `Idempotency-Key` made the request's own: the generated key with a digest of what makes
    the request (method, path, query, conditions, media type, body) appended. Generated keys repeat (the spec's
    example, Hypothesis' favourites), and the same key with another request is a documented 422 (openapi.yaml,
    `IdempotencyKey`) that would stop every later positive case with it; a repeated request keeps its key, so the
    replay of a kept answer is still tested. In the stateful phase each step is a new intent on the state the
    steps before it made (`DELETE /api/lists/7` of a list just created is not a retry of an earlier one of the
    same path, whose kept 404 would be replayed): there every key is new."""
    key = _header(case, "Idempotency-Key")
    if not isinstance(key, str) or not VALID_KEY.fullmatch(key):
        return case
    meta = getattr(case, "meta", None)
    if meta is not None and _enum_value(meta.phase.name) == "stateful":
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "idempotency-key"}
        headers["Idempotency-Key"] = f"{key[:220]}-{uuid.uuid4().hex}"
        case.headers = headers
        return case
    request = json.dumps(
        [case.method.upper(), case.path, case.path_parameters, case.query, _header(case, "If-Match"),
         _header(case, "If-None-Match"), _media_type(case), case.body],
        sort_keys=True,
        default=str,
    )
    digest = f"{zlib.crc32(request.encode()):08x}"
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "idempotency-key"}
    headers["Idempotency-Key"] = f"{key[:240]}-{digest}"
    case.headers = headers
    return case


@schemathesis.hook
def before_add_examples(context, examples):
    """The examples phase does not pass its cases (openapi.yaml's own examples, such as `"ids": [1, 2, 3]`)
    through `map_case`; this runs just before an operation's examples are sent, so the same rows apply."""
    for case in examples:
        map_case(context, case)


# A dot-atom local part that a prefix keeps valid (RFC 5322 atext and dots, not starting with a dot).
PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]*")


def _unique_email(email: Any) -> Any:
    """The same address with a prefix no other subscriber has, when that keeps it valid (local part at most 64
    characters, the whole at most 254 bytes); otherwise the address as it was. E-mails are unique, so the spec's
    one example address (and Hypothesis' few favourite ones) would otherwise be refused 409 after their first
    use, and no positive case of some phases would succeed."""
    if not isinstance(email, str) or email.count("@") != 1:
        return email
    local, domain = email.strip().split("@")
    candidate = f"u{uuid.uuid4().hex[:10]}-{local}"
    if not PLAIN_LOCAL_PART.fullmatch(local) or len(candidate) > 64:
        return email
    unique = f"{candidate}@{domain}"
    return unique if len(unique.encode()) <= 254 else email


def _with_a_real_cursor(case: Any) -> Any:
    """A positive `GET /api/subscribers` with `after` gets a cursor Roster issued for the case's own ordering (the
    `next` of a one-subscriber first page; the fixtures keep at least two subscribers) and page 1: a generated
    string is never one (openapi.yaml: "A cursor from the `next` of a previous page")."""
    query = dict(case.query or {})
    if "after" not in query:
        return case
    base = case.operation.schema.get_base_url()
    _existing(base, "subscriber")
    ordering = {name: _query_value(case, name) for name in ("order_by", "order") if name in query}
    response = requests.get(
        base + "/api/subscribers", params={"per_page": 1, **ordering}, auth=CREDENTIALS, timeout=10
    )
    issued = (response.json().get("data") or {}).get("next") if response.status_code == 200 else None
    if issued:
        query["after"] = issued
        query.pop("page", None)
        case.query = query
    return case


IMPORT = ("POST", "/api/import/subscribers")
# openapi.yaml, ImportUpload.params: maxLength.
IMPORT_PARAMS_MAX = 16384


def _with_importable_upload(case: Any) -> Any:
    """A positive import gets what openapi.yaml asks of `params` and `file` beyond their schema: `params` a JSON
    object (its generated options kept when they are one) naming lists that exist and the default delimiter, and
    `file` a CSV with an `email` header and one new address. A generated string is neither, and every positive
    case would otherwise be a documented 400 or 422 and the import never start. Negative cases go as generated."""
    if (case.method.upper(), case.path) != IMPORT or not _is_positive(case) or not isinstance(case.body, dict):
        return case
    generated = case.body.get("params")
    # A case whose body was made to break the schema (the coverage phase marks it negative at the body while the
    # case as a whole is positive: a part left out, a `params` past its maxLength) goes as generated: its refusal
    # is what is checked.
    if _negative_body(case) or not isinstance(generated, str) or len(generated) > IMPORT_PARAMS_MAX:
        return case
    base = case.operation.schema.get_base_url()
    try:
        params = json.loads(generated)
    except (TypeError, ValueError):
        params = None
    if not isinstance(params, dict):
        params = {}
    params["lists"] = _existing(base, "list")
    params["delim"] = ","
    body = dict(case.body)
    body["params"] = json.dumps(params)
    # Text, not bytes: Schemathesis checks the case again after a hook changes it, and bytes are no JSON Schema
    # string (the case would count as schema-violating, and its 200 as a failure).
    body["file"] = f"email\nconformance-import-{uuid.uuid4().hex[:12]}@example.com\n"
    case.body = body
    return case


def _negative_body(case: Any) -> bool:
    components = getattr(getattr(case, "meta", None), "components", None) or {}
    return any(
        _enum_value(location) == "body" and component.mode.is_negative for location, component in components.items()
    )


def _import_running(case: Any, response: Any) -> bool:
    """A 409 for an upload while an import job runs (the one before it, started by another case), or while another
    upload arrives at the instance."""
    return (
        (case.method.upper(), case.path) == IMPORT
        and response.status_code == 409
        and _message(response).startswith(("an import is already running", "another import is being uploaded"))
    )


def _with_existing_rows(case: Any) -> Any:
    key = (case.method.upper(), case.path)
    if key == IMPORT:
        return _with_importable_upload(case)
    if key == ("GET", "/api/subscribers") and _is_positive(case):
        return _with_a_real_cursor(case)
    public_form = key == ("POST", "/api/public/subscription")
    if (key not in REFERENCING_BODIES and not public_form) or not _is_positive(case):
        return case
    if not isinstance(case.body, dict) or _keeps_generated_values(case):
        return case
    base = case.operation.schema.get_base_url()
    body = dict(case.body)
    if public_form:
        # `list_uuids` in JSON, `l` in forms.
        for field in ("list_uuids", "l"):
            if isinstance(body.get(field), list) and body[field]:
                body[field] = _swap(body[field], _existing(base, "open list"))
    else:
        if key in EMAIL_BODIES and "email" in body:
            body["email"] = _unique_email(body["email"])
        # A generated subscriber id never exists: PUT and PATCH go to a subscriber that does (the stateful
        # phase's ids come from links, and are kept).
        path_id = (case.path_parameters or {}).get("subscriber_id")
        if key in EMAIL_BODIES[1:] and path_id is not None and _enum_value(case.meta.phase.name) != "stateful":
            case.path_parameters["subscriber_id"] = _swap([path_id], _existing(base, "subscriber"))[0]
        list_fields, subscriber_fields = REFERENCING_BODIES[key]
        for fields, kind in ((list_fields, "list"), (subscriber_fields, "subscriber")):
            for field in fields:
                if isinstance(body.get(field), list) and body[field]:
                    body[field] = _swap(body[field], _existing(base, kind))
    case.body = body
    return case
