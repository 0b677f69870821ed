#!/usr/bin/env python3
"""Drives a mixed Lists API workload at a fixed rate and reports errors, latency and the server's memory.

Open loop: requests start on schedule whatever the server's speed, so a slow server shows up as latency, not as a
lower offered rate. Standard library only. Used by scripts/soak.sh; run it directly with --help for the options.
"""

import argparse
import base64
import http.client
import json
import queue
import random
import statistics
import threading
import time
import urllib.parse

WORDS = ["news", "weekly", "digest", "offers", "beta", "alerts", "product", "events", "team", "monthly"]
TAGS = ["a", "b", "c", "vip", "eu", "us"]


class Client(threading.local):
    def conn(self, host, port):
        if getattr(self, "c", None) is None:
            self.c = http.client.HTTPConnection(host, port, timeout=30)
        return self.c

    def reset(self):
        if getattr(self, "c", None) is not None:
            self.c.close()
        self.c = None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--user", default="admin")
    p.add_argument("--password", required=True)
    p.add_argument("--rate", type=float, default=200, help="requests per second offered")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--pid", type=int, help="server pid, to sample its RSS")
    p.add_argument("--seed-lists", type=int, default=2000)
    p.add_argument("--report", help="write the figures as JSON here")
    a = p.parse_args()

    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port or 80
    auth = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    client = Client()

    def call(method, path, body=None):
        headers = {"Authorization": auth}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                c = client.conn(host, port)
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                payload = r.read()
                return r.status, payload
            except (http.client.HTTPException, OSError):
                client.reset()
                if attempt == 1:
                    return 0, b""

    rng = random.Random(42)
    ids = []
    ids_lock = threading.Lock()

    def new_list():
        return {
            "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randrange(10**6)}",
            "type": rng.choice(["public", "private"]),
            "optin": rng.choice(["single", "double"]),
            "tags": rng.sample(TAGS, rng.randrange(0, 3)),
        }

    print(f"seeding {a.seed_lists} lists ...", flush=True)
    for _ in range(a.seed_lists):
        status, body = call("POST", "/api/lists", new_list())
        if status == 200:
            ids.append(json.loads(body)["data"]["id"])

    def pick():
        with ids_lock:
            return rng.choice(ids) if ids else 1

    def operation():
        r = rng.random()
        if r < 0.35:
            return "list", "GET", f"/api/lists?per_page=20&page={rng.randrange(1, 20)}", None
        if r < 0.55:
            return "get", "GET", f"/api/lists/{pick()}", None
        if r < 0.65:
            return "search", "GET", f"/api/lists?query={rng.choice(WORDS)}&per_page=20", None
        if r < 0.72:
            return "tag", "GET", f"/api/lists?tag={rng.choice(TAGS)}&per_page=20", None
        if r < 0.82:
            return "create", "POST", "/api/lists", new_list()
        if r < 0.95:
            return "update", "PUT", f"/api/lists/{pick()}", {"description": f"d{rng.randrange(10**6)}"}
        return "delete", "DELETE", f"/api/lists/{pick()}", None

    results = queue.Queue()
    jobs = queue.Queue(maxsize=a.workers * 4)

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                return
            scheduled, (kind, method, path, body) = job
            status, payload = call(method, path, body)
            done = time.monotonic()
            if kind == "create" and status == 200:
                with ids_lock:
                    ids.append(json.loads(payload)["data"]["id"])
            if kind == "delete" and status == 200:
                deleted = int(path.rsplit("/", 1)[1])
                with ids_lock:
                    if deleted in ids:
                        ids.remove(deleted)
            results.put((kind, status, done - scheduled))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.workers)]
    for t in threads:
        t.start()

    rss = []
    start = time.monotonic()
    interval = 1.0 / a.rate
    next_at = start
    next_sample = start
    sent = 0
    print(f"driving {a.rate:g} req/s for {a.seconds:g} s with {a.workers} workers ...", flush=True)
    while True:
        now = time.monotonic()
        if now - start >= a.seconds:
            break
        if a.pid and now >= next_sample:
            rss.append((round(now - start), rss_kib(a.pid)))
            next_sample += 10
        if now < next_at:
            time.sleep(min(next_at - now, 0.01))
            continue
        jobs.put((next_at, operation()))
        sent += 1
        next_at += interval
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if a.pid:
        rss.append((round(elapsed), rss_kib(a.pid)))

    by_status, by_kind, latencies = {}, {}, []
    unexpected = 0
    while not results.empty():
        kind, status, latency = results.get()
        by_status[status] = by_status.get(status, 0) + 1
        by_kind.setdefault(kind, []).append(latency)
        latencies.append(latency)
        # A delete or an update may target a list another request just deleted: 404 is expected there.
        expected = status == 200 or (status == 404 and kind in ("get", "update", "delete"))
        unexpected += not expected

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    report = {
        "offered_rate": a.rate,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "achieved_rate": round(len(latencies) / elapsed, 1),
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "unexpected": unexpected,
        "latency_ms": {
            "p50": round(pct(latencies, 0.50), 2),
            "p90": round(pct(latencies, 0.90), 2),
            "p99": round(pct(latencies, 0.99), 2),
            "max": round(max(latencies) * 1000, 2),
        },
        "latency_ms_by_kind": {
            k: {"n": len(v), "p50": round(pct(v, 0.5), 2), "p99": round(pct(v, 0.99), 2)} for k, v in sorted(by_kind.items())
        },
        "rss_kib": rss,
    }
    print(json.dumps(report, indent=2))
    print(f"\nrequests {report['requests']} in {report['seconds']} s ({report['achieved_rate']}/s), statuses {report['by_status']}, unexpected {unexpected}")
    print(f"latency p50 {report['latency_ms']['p50']} ms, p90 {report['latency_ms']['p90']} ms, p99 {report['latency_ms']['p99']} ms, max {report['latency_ms']['max']} ms")
    if rss:
        values = [k for _, k in rss]
        print(f"server RSS: first {values[0]/1024:.1f} MiB, min {min(values)/1024:.1f}, max {max(values)/1024:.1f}, last {values[-1]/1024:.1f} MiB"
              f" (median of 2nd half {statistics.median(values[len(values)//2:])/1024:.1f} MiB)")
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2)
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
