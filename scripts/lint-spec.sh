#!/usr/bin/env bash
# Lints openapi.yaml with pinned npm packages (tests/lint/package.json and its lock, installed by `npm ci` into
# tests/lint/node_modules, git-ignored):
#   - Spectral, `spectral:oas` (tests/lint/spectral-oas.yaml): no problem of any severity;
#   - Redocly, `recommended`: no error and no warning;
#   - Spectral, the OWASP API Security ruleset with Roster's documented exceptions (.spectral-owasp.yaml, README
#     "The spec's linters"): no error (its remaining warnings are printed).
# Exits non-zero when any of them finds more. Needs Node 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

command -v npm >/dev/null 2>&1 || { echo "ERROR: node (20 or newer) and npm are required" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "ERROR: node 20 or newer is required, found $(node --version)" >&2; exit 1; }

log "npm ci (tests/lint)"
(cd tests/lint && npm ci --no-audit --no-fund --loglevel=error)
bin=$PWD/tests/lint/node_modules/.bin
# Redocly prints a notice about Node's support schedule on every run; it is not about the spec.
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_TELEMETRY=off

failed=()

log "Spectral $("$bin/spectral" --version) (spectral:oas)"
"$bin/spectral" lint --ruleset tests/lint/spectral-oas.yaml --fail-severity hint openapi.yaml ||
  failed+=("spectral:oas")

redocly_version=$(node -p 'require("./tests/lint/node_modules/@redocly/cli/package.json").version')
log "Redocly $redocly_version (recommended)"
report=$("$bin/redocly" lint --extends recommended --format json openapi.yaml 2>/dev/null || true)
totals=$(node -e '
  let text = ""; process.stdin.on("data", d => (text += d)).on("end", () => {
    const { totals } = JSON.parse(text);
    console.log(`${totals.errors} ${totals.warnings}`);
  });' <<<"$report") || { echo "ERROR: could not read Redocly's report:" >&2; echo "$report" >&2; totals="? ?"; }
read -r redocly_errors redocly_warnings <<<"$totals"
if [ "$redocly_errors" != 0 ] || [ "$redocly_warnings" != 0 ]; then
  "$bin/redocly" lint --extends recommended openapi.yaml 2>&1 | grep -v '^\s*$' || true
  failed+=("redocly ($redocly_errors errors, $redocly_warnings warnings)")
else
  echo "no errors, no warnings"
fi

log "Spectral OWASP ruleset $(node -p 'require("./tests/lint/node_modules/@stoplight/spectral-owasp-ruleset/package.json").version') (.spectral-owasp.yaml)"
"$bin/spectral" lint --ruleset .spectral-owasp.yaml --fail-severity error openapi.yaml || failed+=("spectral owasp")

if [ "${#failed[@]}" -gt 0 ]; then
  echo "ERROR: openapi.yaml fails: ${failed[*]}" >&2
  exit 1
fi
log "openapi.yaml: spectral:oas, Redocly recommended and OWASP (with documented exceptions) pass"
