#!/usr/bin/env python3
"""Attacks a live Roster with traffic that is cheap to send and costly to serve, and checks it keeps its promises.

Phases, in order: slow readers, idle and trickling sockets, an HTTP/2 stream flood, invented methods, failed logins,
searches over planted long names, a flood of expensive queries from one API user, whole listings
(`per_page=all`) at once, and uploads whose cost is in their shape (keyed malformed multipart bodies, a ZIP whose
directory claims millions of entries). Throughout, a "normal
client" polls /health and an authenticated GET /api/lists; one refusal fails the run, and so does a poll slower
than the phase allows. Each
phase reports the server's RSS and open descriptors (before, peak, after). Used by scripts/abuse.sh, which starts
the server and passes its pid; standard library plus the `h2` package (PyPI).
"""

import argparse
import base64
import collections
import errno
import http.client
import io
import json
import os
import random
import re
import resource
import selectors
import socket
import sqlite3
import string
import struct
import threading
import time
import traceback
import urllib.parse
import zipfile

# Attack traffic comes from many loopback addresses (all of 127/8 is local on Linux), so a per-address rate limit
# cannot hide it; the normal client, the scraper and each flood use addresses of their own.
ATTACKERS = [f"127.0.1.{i}" for i in range(1, 251)]
NORMAL, OTHER_ADMIN, NORMAL_AUTH_LATER, SCRAPER, METHODS_SRC, H2_SRC = (f"127.0.0.{i}" for i in range(1, 7))
LOGIN_SLACK = 3  # 403s allowed above burst + rate x elapsed, for requests in flight when the window turns


class Server:
    """The server under attack: where it listens, its credentials, and its footprint from /proc."""

    def __init__(self, args):
        host, port = args.url.split("//", 1)[1].rsplit(":", 1)
        self.host, self.port, self.pid = host, int(port), args.pid
        self.auth = "Basic " + base64.b64encode(f"admin:{args.password}".encode()).decode()
        # An API user of its own, so that its flood and the normal client (the admin) are different callers.
        self.attacker = f"token attacker:{args.attacker_token}"

    def rss_mib(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):  # gone, or a zombie (which has no VmRSS)
            return 0.0

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def alive(self):
        return self.rss_mib() > 0

    def request(self, method, path, src, auth=None, timeout=5.0, body=None):
        """One request on a fresh connection from `src` (with a JSON `body` if given): (status, body), or
        (0, error text) on a transport error."""
        headers = {"Authorization": auth} if auth else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.send(method, path, src, headers, None if body is None else json.dumps(body), timeout)

    def send(self, method, path, src, headers, body, timeout=5.0):
        """One request of raw `body` (bytes, text or None) with `headers` on a fresh connection from `src`: (status,
        body), or (0, error text) on a transport error."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout, source_address=(src, 0))
        try:
            conn.request(method, path, body=body, headers={"Connection": "close", **headers})
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            return 0, repr(err)
        finally:
            conn.close()


class Peaks(threading.Thread):
    """Samples the server's RSS and descriptors every 50 ms, so a phase's peak shows even if it is brief (peak
    descriptors tell how many connections the server took on at once)."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.rss, self.fds = server, 0.0, 0

    def reset(self):
        self.rss, self.fds = self.server.rss_mib(), self.server.fds()

    def run(self):
        while True:
            self.rss, self.fds = max(self.rss, self.server.rss_mib()), max(self.fds, self.server.fds())
            time.sleep(0.05)


class NormalClient(threading.Thread):
    """A well-behaved client polling every 250 ms on fresh connections: what the attacks must not crowd out."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.phase, self.auth_src = server, "start", NORMAL
        self.results, self.stopped = [], threading.Event()
        self.latencies = collections.defaultdict(list)  # phase -> seconds of each authenticated poll

    def run(self):
        while not self.stopped.is_set():
            tick = time.monotonic()
            for path, src, auth in (("/health", NORMAL, None), ("/api/lists", self.auth_src, self.server.auth)):
                started = time.monotonic()
                status, body = self.server.request("GET", path, src, auth)
                took = time.monotonic() - started
                detail = f"{path} from {src}: {status or body} after {took:.1f}s"
                self.results.append((self.phase, status == 200, detail))
                if auth:
                    self.latencies[self.phase].append(took)
            self.stopped.wait(max(0.0, tick + 0.25 - time.monotonic()))

    def failures(self, phase=None):
        return [f"{d} (phase {p})" for p, ok, d in self.results if not ok and phase in (None, p)]

    def slowest(self, phase):
        """The slowest authenticated poll of a phase, in seconds (0 when there was none)."""
        return max(self.latencies[phase], default=0.0)


def open_sockets(server, n, payload=b"", rcvbuf=None, timeout=5.0):
    """Opens n connections from the attacker addresses at once (non-blocking, so a full accept queue costs one
    timeout, not n) and sends `payload` on each; returns (connected sockets, number that failed)."""
    selector, connected = selectors.DefaultSelector(), []
    for i in range(n):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((ATTACKERS[i % len(ATTACKERS)], 0))
        s.setblocking(False)
        if s.connect_ex((server.host, server.port)) in (0, errno.EINPROGRESS):
            selector.register(s, selectors.EVENT_WRITE)
        else:
            s.close()
    deadline = time.monotonic() + timeout
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
            selector.unregister(key.fileobj)
            connected.append(key.fileobj)
    for key in list(selector.get_map().values()):  # never connected
        selector.unregister(key.fileobj)
        key.fileobj.close()
    selector.close()
    for s in list(connected):
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0 or (payload and not s.send(payload)):
                raise ConnectionRefusedError
        except OSError:
            connected.remove(s)
            s.close()
    return connected, n - len(connected)


def closed_by_server(s):
    """Drains what the server sent (a 408, say); True once it has closed the connection (EOF or reset)."""
    try:
        while s.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def watch(socks, seconds, every_second=b""):
    """Watches sockets for up to `seconds`, sending `every_second` on each still-open one once a second; returns
    how long after the start the server closed each one it closed."""
    selector, started, closed = selectors.DefaultSelector(), time.monotonic(), []
    for s in socks:
        selector.register(s, selectors.EVENT_READ)
    next_send, end = started, started + seconds
    while selector.get_map() and time.monotonic() < end:
        gone = []
        if every_second and time.monotonic() >= next_send:
            for key in list(selector.get_map().values()):
                try:
                    key.fileobj.send(every_second)
                except OSError:
                    gone.append(key.fileobj)
            next_send += 1
        wake = min(next_send, end) if every_second else end
        ready = selector.select(max(0.0, wake - time.monotonic()))
        gone += [key.fileobj for key, _ in ready if closed_by_server(key.fileobj)]
        for s in set(gone):
            selector.unregister(s)
            closed.append(time.monotonic() - started)
    selector.close()
    return closed


def slow_readers(ctx):
    """Clients that ask for the largest page (/docs) with a 4 KiB receive buffer and never read: each pins a
    connection slot and whatever the server buffers for it. Memory must stay bounded and the normal client served."""
    payload = b"GET /docs HTTP/1.1\r\nHost: roster\r\n\r\n"
    socks, failed = open_sockets(ctx.server, ctx.args.slow_readers, payload, rcvbuf=4096)
    time.sleep(6)
    [s.close() for s in socks]
    return [f"{len(socks)} connected ({failed} did not), held 6 s unread"], []


def idle_sockets(ctx):
    """Connections that send nothing, then connections that trickle a header line a second: both hold a slot for
    free unless the server times out reading the request head. At least a cap's worth of idle ones, and every
    trickling one, must be closed within the header timeout + 3 s."""
    window, problems = ctx.args.header_timeout + 3, []
    socks, failed = open_sockets(ctx.server, ctx.args.idle)
    closed = len(watch(socks, window))
    [s.close() for s in socks]
    expected = min(len(socks), ctx.args.max_connections)
    if closed < expected:
        problems.append(f"idle: only {closed} closed within {window:g} s, expected at least {expected}")
    trickle, _ = open_sockets(ctx.server, 10, b"GET /health HTTP/1.1\r\nHost: roster\r\n")
    times = watch(trickle, window + 2, every_second=b"X-a: b\r\n")
    [s.close() for s in trickle]
    late = len(trickle) - sum(t <= window for t in times)
    if late or len(trickle) < 10:
        problems.append(f"trickle: {late} of {len(trickle)} connections not closed within {window:g} s")
    span = f" after {min(times):.1f}-{max(times):.1f} s" if times else ""
    return [f"idle: {len(socks)} connected ({failed} did not), {closed} closed by the server within {window:g} s",
            f"trickle: {len(trickle)} connections, {len(times)} closed by the server{span}, "
            f"{len(trickle) - len(times)} still open after {window + 2:g} s"], problems


def h2_streams(ctx):
    """One HTTP/2 connection opening many streams at once, with a zero stream window so no response can finish:
    each accepted stream pins a response in memory. The server must advertise MAX_CONCURRENT_STREAMS and refuse
    streams beyond it."""
    import h2.config, h2.connection, h2.errors, h2.events, h2.exceptions, h2.settings
    from h2.settings import SettingCodes
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        SettingCodes.INITIAL_WINDOW_SIZE: 0, SettingCodes.ENABLE_PUSH: 0, SettingCodes.MAX_CONCURRENT_STREAMS: 100})
    conn.initiate_connection()
    # Every stream goes out before the server's SETTINGS is read, so the client library cannot hold any back.
    headers, ids = [(":method", "GET"), (":scheme", "http"), (":authority", "roster"), (":path", "/docs")], []
    for _ in range(ctx.args.h2_streams):
        ids.append(conn.get_next_available_stream_id())
        conn.send_headers(ids[-1], headers, end_stream=True)
    sock = socket.create_connection((ctx.server.host, ctx.server.port), timeout=1, source_address=(H2_SRC, 0))
    sock.sendall(conn.data_to_send())
    advertised, answered, refused, reset, goaway, problems = None, set(), set(), set(), None, []
    closed = False  # by the server: a client that keeps opening refused streams is cut off (GOAWAY), as it should be
    deadline = time.monotonic() + 4  # the hold: accepted streams stay open, their responses stuck
    while time.monotonic() < deadline and goaway is None:
        try:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            events = conn.receive_data(data)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        except (OSError, h2.exceptions.ProtocolError) as err:
            problems.append(f"connection failed: {err!r}")
            break
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                setting = event.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
                advertised = setting.new_value if setting else advertised
            elif isinstance(event, h2.events.ResponseReceived):
                answered.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                (refused if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM else reset).add(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                goaway = event.last_stream_id or 0
        try:
            sock.sendall(conn.data_to_send())
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
    sock.close()
    refused |= {i for i in ids if goaway is not None and i > goaway}
    # Streams left without an answer on a connection the server closed are gone with it, not held.
    silent = 0 if closed or goaway is not None else len(ids) - len(answered | refused | reset)
    if advertised is None:
        problems.append("the server advertised no SETTINGS_MAX_CONCURRENT_STREAMS")
    elif len(answered) + silent > advertised:
        problems.append(f"{len(answered) + silent} streams accepted at once, above the advertised {advertised}")
    return [f"{len(ids)} streams: {len(answered)} answered, {silent} accepted without an answer yet, "
            f"{len(refused)} refused, {len(reset - refused)} reset otherwise"
            + (f"; GOAWAY last stream {goaway}" if goaway is not None else "")
            + ("; the server closed the connection" if closed else "")
            + f"; server advertised MAX_CONCURRENT_STREAMS={advertised}"], problems


def run_threads(target, n, args=()):
    """Runs `target` in n threads (each given `args[i]` when args are given) and waits for all of them."""
    workers = [threading.Thread(target=target, args=(args[i],) if args else ()) for i in range(n)]
    [w.start() for w in workers]
    [w.join() for w in workers]


def hammer(server, src, requests, seconds=float("inf"), threads=8):
    """Sends (method, headers) requests to /api/lists from `src` over keep-alive connections, as fast as the server
    answers, until all are sent or `seconds` pass; returns the statuses seen (0 for a transport error)."""
    statuses, lock, todo, deadline = collections.Counter(), threading.Lock(), iter(requests), time.monotonic() + seconds

    def worker():
        conn = None
        while time.monotonic() < deadline:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            try:
                conn = conn or http.client.HTTPConnection(server.host, server.port, timeout=5, source_address=(src, 0))
                conn.request(item[0], "/api/lists", headers=item[1])
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn, status = conn.close() if conn else None, 0
            with lock:
                statuses[status] += 1

    run_threads(worker, threads)
    return statuses


def tally(statuses, skip=()):
    return ", ".join(f"{s or 'error'} x{n}" for s, n in sorted(statuses.items()) if s not in skip)


def scrape_metrics(ctx):
    status, body = ctx.server.request("GET", "/metrics", SCRAPER)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status or body}")
    return body.decode(errors="replace")


def invented_methods(ctx):
    """Requests with random 200-character methods: a server that labels metrics with the raw method grows
    /metrics (and its memory) without bound. Neither may grow more than 64 KiB, nor show an invented method."""
    before = scrape_metrics(ctx)
    rng = random.Random(20)
    methods = ["".join(rng.choices(string.ascii_uppercase, k=200)) for _ in range(ctx.args.methods)]
    statuses = hammer(ctx.server, METHODS_SRC, ((m, {}) for m in methods))
    after = scrape_metrics(ctx)
    leaked = set(re.findall(r'method="([^"]*)"', after)) & set(methods)
    growth = len(after.encode()) - len(before.encode())
    problems = [p for p, bad in (
        (f"/metrics shows {len(leaked)} invented methods", leaked),
        (f"/metrics grew by {growth} bytes (limit 65536)", growth > 64 * 1024)) if bad]
    return [f"{len(methods)} requests: {tally(statuses)}; /metrics {len(after.encode())} bytes ({growth:+d})"], problems


def failed_logins(ctx):
    """Password guessing from one address: after the burst, failures must be throttled (429) before credentials
    are checked, even the right ones from that address, while the admin elsewhere still gets in."""
    # The normal client's authenticated poll moves to another address: this phase locks 127.0.0.1 out on purpose.
    ctx.normal.auth_src = NORMAL_AUTH_LATER
    guesses = (("GET", {"Authorization": "Basic " + base64.b64encode(f"admin:wrong{i}".encode()).decode()})
               for i in range(ctx.args.logins))
    started = time.monotonic()
    statuses = hammer(ctx.server, NORMAL, guesses, seconds=5, threads=4)
    elapsed = time.monotonic() - started
    allowed = int(ctx.args.login_burst + ctx.args.login_per_minute * elapsed / 60 + LOGIN_SLACK)
    same, _ = ctx.server.request("GET", "/api/lists", NORMAL, ctx.server.auth)
    other, _ = ctx.server.request("GET", "/api/lists", OTHER_ADMIN, ctx.server.auth)
    others = tally(statuses, skip=(403, 429))
    problems = [p for p, bad in (
        (f"{statuses[403]} failed logins were checked, more than {allowed}", statuses[403] > allowed),
        (f"the right password from {NORMAL} answered {same}, not 429", same != 429),
        (f"the right password from {OTHER_ADMIN} answered {other}, not 200", other != 200)) if bad]
    return [f"{sum(statuses.values())} wrong passwords in {elapsed:.1f} s: 403 x{statuses[403]}, "
            f"429 x{statuses[429]}" + (f", {others}" if others else "") + f" (403s allowed: {allowed})",
            f"right password from {NORMAL}: {same or 'error'} (expected 429); "
            f"from {OTHER_ADMIN}: {other or 'error'} (expected 200)"], problems


def post_all(server, bodies, path, auth=None, threads=8):
    """POSTs each JSON body to `path`, spread over the attacker addresses; returns the statuses seen."""
    statuses, lock, todo = collections.Counter(), threading.Lock(), iter(enumerate(bodies))

    def worker():
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            i, body = item
            status, _ = server.request("POST", path, ATTACKERS[i % len(ATTACKERS)], auth, body=body)
            with lock:
                statuses[status] += 1

    run_threads(worker, threads)
    return statuses


# The slowest search over planted names, and the slowest poll of the normal client during a flood, that pass.
SEARCH_BUDGET = 2.0
POLL_BUDGET = 1.5


def planted_names(ctx):
    """Anyone may sign up on a public list with a 2,000-character name. Searches cost the stored text times the
    word per row; with words bounded at 100 characters, a search over the planted names stays cheap."""
    status, body = ctx.server.request("POST", "/api/lists", OTHER_ADMIN, ctx.server.auth,
                                      body={"name": "open", "type": "public"})
    if status != 200:
        raise RuntimeError(f"creating a public list answered {status}: {body[:200]!r}")
    uuid = json.loads(body)["data"]["uuid"]
    name = "".join(random.Random(6).choices("ab", k=2000))
    signups = post_all(ctx.server, ({"email": f"p{i}@example.com", "name": name, "list_uuids": [uuid]}
                                    for i in range(ctx.args.planted)), "/api/public/subscription")
    word = "ab" * 49 + "ba"  # 100 characters, nearly everywhere in the planted names
    took = []
    for _ in range(3):
        started = time.monotonic()
        searched, _ = ctx.server.request("GET", f"/api/subscribers?search={word}", OTHER_ADMIN, ctx.server.attacker,
                                         timeout=30)
        took.append(time.monotonic() - started)
    over, _ = ctx.server.request("GET", f"/api/subscribers?search={word}a", OTHER_ADMIN, ctx.server.attacker)
    problems = [p for p, bad in (
        (f"a search answered {searched}", searched != 200),
        (f"the slowest search took {max(took):.2f} s (limit {SEARCH_BUDGET})", max(took) > SEARCH_BUDGET),
        (f"a 101-character word answered {over}, not 400", over != 400)) if bad]
    return [f"{ctx.args.planted} anonymous sign-ups with 2,000-character names: {tally(signups)}",
            f"search with a 100-character word: {', '.join(f'{t:.2f}' for t in took)} s; "
            f"101 characters: {over}"], problems


def expensive_queries(ctx):
    """One API user floods the API with queries whose LIKE patterns backtrack over planted 60 KB attributes. Past
    its share of the database it gets 429; every statement stops at its budget; another caller (the normal
    client) is served throughout, within POLL_BUDGET."""
    text = "a" * 60_000
    planted = post_all(ctx.server, ({"email": f"big{i}@example.com", "attribs": {"t": text}} for i in range(40)),
                       "/api/subscribers", ctx.server.auth, threads=2)
    pattern = "%" + "a_" * 124 + "b%"
    query = " OR ".join([f"subscribers.attribs->>'t' LIKE '{pattern}'"] * 6)
    path = "/api/subscribers?query=" + urllib.parse.quote(query)
    statuses, lock = collections.Counter(), threading.Lock()
    transport_errors = []

    def flood(src):
        deadline = time.monotonic() + ctx.args.flood_seconds
        while time.monotonic() < deadline:
            status, body = ctx.server.request("GET", path, src, ctx.server.attacker, timeout=30)
            with lock:
                statuses[status] += 1
                if status == 0:
                    transport_errors.append(body)

    run_threads(flood, 12, ATTACKERS[:12])
    slowest = ctx.normal.slowest(ctx.normal.phase)
    problems = [p for p, bad in (
        (f"the normal client's slowest poll took {slowest:.2f} s (limit {POLL_BUDGET})", slowest > POLL_BUDGET),
        ("the flood was never refused past its share", statuses[429] == 0),
        (f"the flood got answers other than 200, 429 and 503: {tally(statuses)}"
         + (f" (first transport error: {transport_errors[0]})" if transport_errors else ""),
         set(statuses) - {200, 429, 503})) if bad]
    return [f"planted 40 subscribers with 60 KB attributes: {tally(planted)}",
            f"12 workers for {ctx.args.flood_seconds} s: {tally(statuses)}; "
            f"normal client's slowest poll meanwhile: {slowest:.2f} s"], problems


# The most RSS a phase of whole listings may add.
LISTING_RSS_BUDGET_MIB = 64


def plant_rows(path, n):
    """Adds n subscribers straight into Roster's SQLite file (the API would take minutes), copying the stored form
    of an existing row (its uuid's type, its timestamps); Roster's triggers keep the counters exact."""
    db = sqlite3.connect(path, timeout=30)
    try:
        with db:
            db.execute(
                "WITH RECURSIVE i(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM i WHERE v < ?) "
                "INSERT INTO subscribers (uuid, email, name, name_folded, attribs, status, created_at, updated_at) "
                "SELECT CASE typeof(s.uuid) WHEN 'blob' THEN randomblob(16) ELSE lower(hex(randomblob(4)) || '-' || "
                "hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) "
                "|| '-' || hex(randomblob(6))) END, 'row' || v || '@example.com', 'Row ' || v, 'row ' || v, "
                "'{\"city\": \"Bengaluru\", \"score\": 7}', 'enabled', s.created_at, s.updated_at "
                "FROM i, (SELECT * FROM subscribers ORDER BY id LIMIT 1) s", (n,))
    finally:
        db.close()


def whole_listings(ctx):
    """Every subscriber at once (`per_page=all`) over a large table, from 8 workers for a few seconds: answers are
    streamed, so RSS does not grow with them (built whole, each would hold every row in memory)."""
    plant_rows(ctx.args.sqlite_db, ctx.args.rows)
    before = ctx.server.rss_mib()
    statuses, sizes, lock = collections.Counter(), [], threading.Lock()

    def fetch(src):
        deadline = time.monotonic() + ctx.args.flood_seconds
        while time.monotonic() < deadline:
            status, body = ctx.server.request("GET", "/api/subscribers?per_page=all", src, ctx.server.attacker,
                                              timeout=30)
            with lock:
                statuses[status] += 1
                if status == 200:
                    sizes.append(len(body))

    run_threads(fetch, 8, ATTACKERS[20:28])
    grew = ctx.peak.rss - before
    problems = [p for p, bad in (
        (f"RSS grew by {grew:.1f} MiB (limit {LISTING_RSS_BUDGET_MIB})", grew > LISTING_RSS_BUDGET_MIB),
        ("no whole listing was served", not sizes),
        (f"answers other than 200 and 429: {tally(statuses)}", set(statuses) - {200, 429})) if bad]
    return [f"8 workers for {ctx.args.flood_seconds} s of per_page=all: {tally(statuses)}, "
            f"{max(sizes, default=0) / 2**20:.1f} MiB each; RSS +{grew:.1f} MiB at the peak"], problems


def zip64_claim(entries):
    """A ZIP of one small CSV whose end record saturates only its directory's offset, which sends a reader to a
    ZIP64 record: here one declaring `entries` entries in a directory that holds one."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.csv", "email\na@example.com\n")
    data = out.getvalue()
    end = len(data) - 22
    size, offset = struct.unpack_from("<II", data, end + 12)
    record_at = end
    record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, record_at, 1)
    tail = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, size, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + tail


def hostile_uploads(ctx):
    """Bodies whose cost is in their shape: a keyed write whose multipart body is malformed and whose boundary is
    60 KB of the byte the body repeats (its fingerprint removes the boundary from the body: one pass, not one
    comparison of the boundary per byte), and import files whose ZIP directory claims millions of entries through
    a ZIP64 record. Each is refused with a 4xx; the normal client is served throughout, within POLL_BUDGET."""
    statuses, lock, slowest_keyed = collections.Counter(), threading.Lock(), [0.0]
    boundary = "a" * 60_000 + "b"
    body = b"a" * 1_000_000

    def keyed(src):
        deadline = time.monotonic() + ctx.args.flood_seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            started = time.monotonic()
            status, _ = ctx.server.send("POST", "/api/lists", src, {
                "Authorization": ctx.server.attacker, "Idempotency-Key": f"{src}-{n}",
                "Content-Type": f"multipart/form-data; boundary={boundary}"}, body, timeout=60)
            with lock:
                statuses[status] += 1
                slowest_keyed[0] = max(slowest_keyed[0], time.monotonic() - started)
            # Within the attacker's rate limit (4 workers at 20/s each): what is measured here is the bodies'
            # cost. A request refused by the rate limit is answered before its body is read and its connection
            # closed, which http.client, still writing the body, reports as a reset instead of the 429.
            time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))

    run_threads(keyed, 4, ATTACKERS[20:24])
    claim = zip64_claim(5_000_000)
    form = (b"--x\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{\"lists\":[1]}\r\n"
            b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n"
            b"Content-Type: application/zip\r\n\r\n" + claim + b"\r\n--x--\r\n")
    answers = [ctx.server.send("POST", "/api/import/subscribers", OTHER_ADMIN,
                               {"Authorization": ctx.server.auth, "Content-Type": "multipart/form-data; boundary=x"},
                               form, timeout=60)
               for _ in range(5)]
    # Refused for its directory, not for anything else in the request.
    zip_statuses = collections.Counter(status if b"5000000 entries" in body else -status for status, body in answers)
    slowest = ctx.normal.slowest(ctx.normal.phase)
    problems = [p for p, bad in (
        (f"the normal client's slowest poll took {slowest:.2f} s (limit {POLL_BUDGET})", slowest > POLL_BUDGET),
        (f"keyed malformed bodies got answers other than 4xx: {tally(statuses)}",
         any(not 400 <= s < 500 for s in statuses)),
        # One such body costs one pass over it (~0.1 s here, 4 at once, debug build); a scan comparing the boundary
        # at every byte took seconds each.
        (f"the slowest keyed malformed body took {slowest_keyed[0]:.2f} s (limit {POLL_BUDGET})",
         slowest_keyed[0] > POLL_BUDGET),
        (f"the ZIP64 claim got answers other than a 422 naming it: {tally(zip_statuses)} ({answers[0][1][:200]!r})",
         set(zip_statuses) != {422})) if bad]
    return [f"4 workers for {ctx.args.flood_seconds} s of keyed 1 MB bodies with a 60 KB boundary: {tally(statuses)}, "
            f"slowest {slowest_keyed[0]:.2f} s",
            f"5 imports of a ZIP claiming 5,000,000 entries: {tally(zip_statuses)}; "
            f"normal client's slowest poll meanwhile: {slowest:.2f} s"], problems


PHASES = [("1 slow readers", slow_readers), ("2 idle sockets", idle_sockets), ("3 h2 streams", h2_streams),
          ("4 invented methods", invented_methods), ("5 failed logins", failed_logins),
          ("6 planted names", planted_names), ("7 expensive queries", expensive_queries),
          ("8 whole listings", whole_listings), ("9 hostile uploads", hostile_uploads)]


def run_phase(ctx, name, phase):
    """Runs one phase between footprint readings; a phase that crashes fails, it does not stop the run."""
    ctx.normal.phase = name
    row = {"name": name, "rss": [ctx.server.rss_mib()], "fds": [ctx.server.fds()]}
    ctx.peak.reset()
    print(f"==> phase {name}", flush=True)
    try:
        row["figures"], row["problems"] = phase(ctx)
    except Exception as err:  # noqa: BLE001 - reported as the phase's failure
        traceback.print_exc()
        row["figures"], row["problems"] = [], [f"phase crashed: {err!r}"]
    row["rss"].append(ctx.peak.rss)
    row["fds"].append(ctx.peak.fds)
    time.sleep(2)  # let the server notice closed connections before the "after" readings
    row["rss"].append(ctx.server.rss_mib())
    row["fds"].append(ctx.server.fds())
    missed = ctx.normal.failures(name)
    row["problems"] += [f"normal client refused {len(missed)}x, e.g. {missed[0]}"] if missed else []
    row["problems"] += [] if ctx.server.alive() else ["the server is gone"]
    for line in row["figures"] + [f"FAIL: {p}" for p in row["problems"]]:
        print(f"    {line}", flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("url", "password", "pid", "log", "report", "attacker-token", "sqlite-db"):  # log: the server's, scanned for panics at the end
        p.add_argument(f"--{name}", required=True, type=int if name == "pid" else str)
    for name, default in (("slow-readers", 300), ("idle", 300), ("h2-streams", 400), ("methods", 20000),
                          ("logins", 2000), ("max-connections", 64), ("login-burst", 10), ("login-per-minute", 5),
                          ("planted", 1500), ("flood-seconds", 10), ("rows", 200000)):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--header-timeout", type=float, default=2)
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (65536 if hard == resource.RLIM_INFINITY else hard, hard))

    server = Server(args)
    ctx = argparse.Namespace(args=args, server=server, peak=Peaks(server), normal=NormalClient(server))
    ctx.peak.start()
    rss_start, fd_start = server.rss_mib(), server.fds()
    ctx.normal.start()
    rows = []
    for name, phase in PHASES:
        rows.append(run_phase(ctx, name, phase))
        if not server.alive():
            break
    ctx.normal.phase = "end"
    time.sleep(1)
    ctx.normal.stopped.set()
    ctx.normal.join()

    settle = time.monotonic() + 10  # descriptors of closed connections may take a moment to go
    while server.fds() > fd_start + 10 and time.monotonic() < settle:
        time.sleep(0.5)
    alive, (health, _) = server.alive(), server.request("GET", "/health", NORMAL)
    rss_end, fd_end = server.rss_mib(), server.fds()
    with open(args.log, errors="replace") as f:
        crashes = [line.strip() for line in f if "panicked" in line or "overflowed its stack" in line]
    served, asked = sum(ok for _, ok, _ in ctx.normal.results), len(ctx.normal.results)
    problems = [p for p, bad in (
        ("the server is not running", not alive), (f"/health answered {health or 'nothing'} at the end", health != 200),
        (f"normal client refused {asked - served}x", served != asked),
        (f"RSS {rss_end:.1f} MiB at the end (limit 200)", rss_end >= 200),
        (f"{fd_end} descriptors at the end, {fd_start} at the start (limit +10)", fd_end > fd_start + 10),
        (f"{len(crashes)} panics in the log, e.g. {crashes[:1]}", crashes),
        (f"{len(PHASES) - len(rows)} phases not run", len(rows) < len(PHASES))) if bad]

    lines = [f"Abuse run against {args.url} (pid {args.pid})", "",
             f"{'phase':<20} {'RSS MiB before/peak/after':<27} {'fds before/peak/after':<22} result"]
    for r in rows:
        lines.append(f"{r['name']:<20} {'{:>7.1f} /{:>6.1f} /{:>6.1f}'.format(*r['rss']):<27} "
                     f"{'{:>6} /{:>5} /{:>5}'.format(*r['fds']):<22} {'FAIL' if r['problems'] else 'PASS'}")
        lines += [f"    {x}" for x in r["figures"]] + [f"    FAIL: {x}" for x in r["problems"]]
    lines += ["", f"start: RSS {rss_start:.1f} MiB, {fd_start} fds; end: RSS {rss_end:.1f} MiB, {fd_end} fds, "
              f"server {'alive' if alive else 'GONE'}, /health {health or 'no answer'}",
              f"normal client: served {served}/{asked}"]
    lines += [f"    refused: {d}" for d in ctx.normal.failures()[:10]]
    failed = problems or any(r["problems"] for r in rows)
    lines += [f"FAIL: {x}" for x in problems] + ["FAIL" if failed else "PASS"]
    print("\n" + "\n".join(lines))
    with open(args.report, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
