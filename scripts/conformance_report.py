"""Summarises one Schemathesis run of scripts/conformance.sh.

    python scripts/conformance_report.py DIRECTORY EXIT_STATUS SECONDS

Reads DIRECTORY/events.ndjson (Schemathesis' NDJSON event stream) and DIRECTORY/report.json (its JSON run report)
and prints, and writes to DIRECTORY/summary.txt:

- a headline: Schemathesis version, seed, test cases generated, unique failures, duration, exit status
  (scripts/test.sh reads the part after "seed N: ");
- per phase (examples, coverage, fuzzing, stateful): its status, the operations it exercised, the test cases it
  ran and the outcomes of its scenarios;
- for the stateful phase, each link it followed (from openapi.yaml or inferred) and how often it could not be
  resolved;
- the failures scripts/schemathesis_hooks.py dropped (by kind, from DIRECTORY/failures.ndjson, which the hooks
  write), then every failure, error and warning;
- from DIRECTORY/failures.ndjson, every distinct failure that was kept, by check, operation, status and message:
  Schemathesis itself shows one per check, operation and status, which can hide a second cause.

Standard library only; runs in the Schemathesis virtualenv.
"""

import collections
import json
import re
import sys

PHASES = ["examples", "coverage", "fuzzing", "stateful"]


def read_events(directory: str):
    """Per phase: test cases run, operations exercised, scenario outcomes; per stateful link: uses and misses."""
    cases = collections.Counter()
    operations = collections.defaultdict(set)
    outcomes = collections.defaultdict(collections.Counter)
    links = collections.defaultdict(collections.Counter)
    with open(f"{directory}/events.ndjson") as events:
        for line in events:
            event = json.loads(line)
            scenario = event.get("ScenarioFinished")
            if not scenario:
                continue
            phase, recorder = scenario["phase"], scenario.get("recorder") or {}
            outcomes[phase][scenario["status"]] += 1
            if phase != "stateful" and recorder.get("label"):
                operations[phase].add(recorder["label"])
            for case in recorder.get("cases", {}).values():
                cases[phase] += 1
                if phase == "stateful":
                    value = case["value"]
                    operations[phase].add(f"{value['method']} {value['path']}")
                    transition = case.get("transition")
                    if transition:
                        unresolved = any(
                            isinstance(parameter.get("value"), dict) and parameter["value"].get("$unresolvable")
                            for location in transition.get("parameters", {}).values()
                            for parameter in location.values()
                        )
                        origin = " (inferred)" if transition.get("is_inferred") else " (openapi.yaml)"
                        links[transition["id"] + origin]["applied"] += 1
                        links[transition["id"] + origin]["unresolvable"] += unresolved
    return cases, operations, outcomes, links


def read_failures(directory: str):
    """Failures from failures.ndjson, kept and dropped, counted by (check code, operation, status, message with
    every number written N and a refused `query` shortened to its prefix, so that one cause counts once)."""
    kept, dropped = collections.Counter(), collections.Counter()
    try:
        with open(f"{directory}/failures.ndjson") as failures:
            for line in failures:
                entry = json.loads(line)
                message = entry.get("message") or ""
                message = "`query`: …" if message.startswith("`query`: ") else re.sub(r"[0-9]+", "N", message)
                message = re.sub(r"N(, N)+", "N, …", message)
                key = (entry.get("code"), entry.get("operation"), entry.get("status"), message)
                (kept if entry.get("kept") else dropped)[key] += 1
    except FileNotFoundError:
        pass
    return kept, dropped


def main(directory: str, status: str, seconds: str) -> None:
    cases, operations, outcomes, links = read_events(directory)
    with open(f"{directory}/report.json") as file:
        report = json.load(file)

    generated, unique = report["test_cases"]["generated"], report["test_cases"]["unique_failures"]
    lines = [f"{report['schemathesis_version']} seed {report['seed']}: "
             f"{generated} test cases, {unique} unique failures, {seconds}s, exit {status}"]
    for phase in PHASES:
        state = report["phases"].get(phase, {}).get("status", "not run")
        counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes[phase].items()))
        unit = "scenarios" if phase == "stateful" else "operations"
        lines.append(f"  {phase:<9} {state:<8} {len(operations[phase])} operations, {cases[phase]} test cases; "
                     f"{unit}: {counts or 'none'}")
    for name, count in sorted(links.items()):
        lines.append(f"    link {name}: applied {count['applied']}x"
                     + (f", {count['unresolvable']}x unresolvable" if count["unresolvable"] else ""))
    kept, dropped = read_failures(directory)
    if report.get("filtered"):
        lines.append(f"  {report['filtered']} failures dropped by scripts/schemathesis_hooks.py (see that file)"
                     + (", by kind:" if dropped else ""))
        for (code, operation, status, message), count in sorted(dropped.items(), key=lambda item: (item[0][1], item[0])):
            lines.append(f"    {code} {operation} -> {status} x{count}: {message[:120]}")
    for failure in report.get("failures", []):
        operations_failed = ", ".join(failure["operations"])
        lines.append(f"  FAIL {failure['code']} {failure['title']} x{failure['count']}: {operations_failed}")
    for error in report.get("errors", []):
        lines.append(f"  ERROR {json.dumps(error)[:300]}")
    if kept:
        lines.append(f"  every kept failure before deduplication ({sum(kept.values())} in all; "
                     "failures.ndjson has a request for each):")
        for (code, operation, status, message), count in sorted(kept.items(), key=lambda item: (item[0][1], item[0])):
            lines.append(f"    {code} {operation} -> {status} x{count}: {message[:160]}")
    warned = {name: labels for name, labels in report.get("warnings", {}).items() if labels}
    for name, labels in warned.items():
        lines.append(f"  WARNING {name}: {', '.join(map(str, labels))}")
    text = "\n".join(lines)
    print(text)
    with open(f"{directory}/summary.txt", "w") as file:
        file.write(text + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
