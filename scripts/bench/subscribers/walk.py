#!/usr/bin/env python3
"""Walks every subscriber through Roster's API, PER_PAGE per page, newest `updated_at` first, on one keep-alive
connection, and prints one JSON line: pages, rows, distinct ids, the reported total, total seconds, and the
slowest / first / last page in ms. Exits 1 if the walk did not see every subscriber exactly once.
With MAX_SECONDS (0: no limit), stops after that long and reports the pages walked so far (`"partial": true`).
MODE `page` (the default) asks for page 1, 2, 3... as the PyPI `listmonk` client does; `cursor` passes each page's
`next` as `after`.

    walk.py URL AUTHORIZATION [PER_PAGE] [MAX_SECONDS] [MODE]
"""

import http.client
import json
import sys
import time
import urllib.parse


def main() -> int:
    url, authorization = sys.argv[1], sys.argv[2]
    per_page = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    max_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    mode = sys.argv[5] if len(sys.argv) > 5 else "page"
    after = None
    partial = False
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    headers = {"Authorization": authorization}
    seen: set[int] = set()
    rows = 0
    times: list[float] = []
    total = None
    page = 1
    started = time.perf_counter()
    while True:
        path = f"/api/subscribers?order_by=updated_at&order=DESC&per_page={per_page}"
        if mode == "cursor":
            path += f"&after={after}" if after else ""
        else:
            path += f"&page={page}"
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - t0)
        if response.status != 200:
            print(json.dumps({"error": f"page {page}: HTTP {response.status}", "body": body[:300].decode()}))
            return 1
        data = json.loads(body)["data"]
        total = data["total"]
        results = data["results"]
        rows += len(results)
        seen.update(r["id"] for r in results)
        after = data.get("next")
        if len(results) < per_page or (mode == "cursor" and not after):
            break
        if max_seconds and time.perf_counter() - started > max_seconds:
            partial = True
            break
        page += 1
    elapsed = time.perf_counter() - started
    summary = {
        "pages": page,
        "rows": rows,
        "distinct": len(seen),
        "total": total,
        "seconds": round(elapsed, 2),
        "first_page_ms": round(times[0] * 1000, 1),
        "last_page_ms": round(times[-1] * 1000, 1),
        "slowest_page_ms": round(max(times) * 1000, 1),
        "partial": partial,
    }
    print(json.dumps(summary))
    if partial:
        return 0 if rows == len(seen) else 1
    return 0 if rows == total == len(seen) else 1


if __name__ == "__main__":
    sys.exit(main())
