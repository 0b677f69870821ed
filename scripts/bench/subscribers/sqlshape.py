#!/usr/bin/env python3
"""Checks that a pgbench script still runs the SQL Roster issues: compares the statements PostgreSQL logged for
one request (log_statement = all) with those of the script, both reduced to their shape (every literal, bound
parameter, pgbench variable and number becomes `?`, lists of them one `?`, whitespace one space).

    sqlshape.py LOG SCRIPT

LOG holds the server log lines of the request (other databases' lines already filtered out). Prints `same` and
exits 0, or prints both shapes and exits 1. With `-` as SCRIPT, prints the logged statements with their
parameters substituted (to write or refresh a script).
"""

import re
import sys

LOGGED = re.compile(r"LOG:\s+(?:execute [^:]+|statement): (.*)$")
DETAIL = re.compile(r"DETAIL:\s+parameters: (.*)$")
PARAM = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")


def logged(path):
    """The statements of a log excerpt, each with its parameters substituted."""
    statements = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if m := LOGGED.search(line):
            statements.append(m.group(1))
        elif (m := DETAIL.search(line)) and statements:
            values = dict(PARAM.findall(m.group(1)))
            statements[-1] = re.sub(r"\$(\d+)\b", lambda p: values.get(p.group(1), p.group(0)), statements[-1])
    return statements


def scripted(path):
    """The SQL statements of a pgbench script (meta-commands, comments and `\\gset` left out)."""
    text = []
    for line in open(path, encoding="utf-8"):
        stripped = line.strip()
        if stripped.startswith("--") or stripped.startswith("\\"):
            continue
        # A statement ending in `\gset` has no `;`.
        text.append(re.sub(r"\s*\\gset\s*$", ";", line.rstrip("\n")))
    joined = "\n".join(text)
    # One statement per `;` at a line's end (the scripts keep `;` out of literals).
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", joined) if s.strip()]


def shape(statement):
    s = re.sub(r"'(?:[^']|'')*'", "?", statement)
    s = re.sub(r"\b(?:now|gen_random_uuid)\(\)", "?", s)
    s = re.sub(r"\$\d+\b", "?", s)
    s = re.sub(r"(?<!:):[a-z_][a-z0-9_]*", "?", s)
    s = re.sub(r"\b\d+\b", "?", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\?(?:\s*,\s*\?)+", "?", s)
    s = re.sub(r"\(\?\)(?:\s*,\s*\(\?\))+", "(?)", s)
    return s


def main():
    log, script = sys.argv[1], sys.argv[2]
    got = logged(log)
    if script == "-":
        print(";\n".join(got) + ";")
        return 0
    want = scripted(script)
    got_shapes = [shape(s) for s in got]
    want_shapes = [shape(s) for s in want]
    if got_shapes == want_shapes:
        print("same")
        return 0
    print(f"Roster's SQL ({len(got_shapes)} statements, from the log):")
    for s in got_shapes:
        print("  " + s)
    print(f"{script} ({len(want_shapes)} statements):")
    for s in want_shapes:
        print("  " + s)
    return 1


if __name__ == "__main__":
    sys.exit(main())
