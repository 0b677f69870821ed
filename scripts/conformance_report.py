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
- the failures scripts/schemathesis_hooks.py dropped, then every failure, error and warning.

Standard library only; runs in the Schemathesis virtualenv.
"""

import collections
import json
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
    if report.get("filtered"):
        lines.append(f"  {report['filtered']} failures dropped by scripts/schemathesis_hooks.py (see that file)")
    for failure in report.get("failures", []):
        operations_failed = ", ".join(failure["operations"])
        lines.append(f"  FAIL {failure['code']} {failure['title']} x{failure['count']}: {operations_failed}")
    for error in report.get("errors", []):
        lines.append(f"  ERROR {json.dumps(error)[:300]}")
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
