#!/usr/bin/env bash
# Generates client SDKs from openapi.yaml with a pinned OpenAPI Generator:
#   scripts/sdk.sh [python|typescript|rust|all]     (default: all)
#   scripts/sdk.sh validate                         (check openapi.yaml with both validators, generate nothing)
# Output: sdks/python, sdks/typescript (typescript-fetch), sdks/rust. The generator comes from PyPI
# (`openapi-generator-cli` bundles the jar; it needs Java 11+) and lives in the virtualenv sdks/.venv.
# sdks/ is git-ignored. Idempotent: each run regenerates the chosen SDKs from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Pinned: the newest 7.x release on PyPI when this script was written. Bump deliberately and rerun
# scripts/sdk-test.sh: generated clients change between generator releases.
GENERATOR_VERSION=7.26.0
# The stricter of the two validators (openapi-generator's `validate` misses wrong types).
SPEC_VALIDATOR_VERSION=0.9.0
# Package name and version of every generated client (the API's version, from openapi.yaml's info.version).
SDK_VERSION=0.1.0

spec=$root/openapi.yaml
out=$root/sdks
venv=$out/.venv

target=${1:-all}
case "$target" in
  python | typescript | rust) targets=("$target") ;;
  all) targets=(python typescript rust) ;;
  validate) targets=() ;;
  *)
    echo "usage: $0 [python|typescript|rust|all|validate]" >&2
    exit 2
    ;;
esac

if ! command -v java >/dev/null 2>&1; then
  echo "ERROR: OpenAPI Generator needs Java 11 or newer (Debian: apt-get install default-jre-headless)" >&2
  exit 1
fi

# The generator, in its own virtualenv so nothing is installed system-wide; reinstalled only on a version change.
# (Checked by pip, not python: without python3-venv, Debian's `python3 -m venv` leaves a venv with no pip.)
if [ ! -x "$venv/bin/pip" ]; then
  echo "==> creating virtualenv $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || {
    echo "ERROR: could not create a virtualenv (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
installed=$("$venv/bin/python" -m pip show openapi-generator-cli 2>/dev/null | awk '/^Version:/ {print $2}' || true)
if [ "$installed" != "$GENERATOR_VERSION" ]; then
  echo "==> installing openapi-generator-cli==$GENERATOR_VERSION into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-generator-cli==$GENERATOR_VERSION"
fi
generator=$venv/bin/openapi-generator-cli

if [ "$target" = validate ]; then
  installed=$("$venv/bin/python" -m pip show openapi-spec-validator 2>/dev/null | awk '/^Version:/ {print $2}' || true)
  if [ "$installed" != "$SPEC_VALIDATOR_VERSION" ]; then
    echo "==> installing openapi-spec-validator==$SPEC_VALIDATOR_VERSION into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
  fi
  echo "==> openapi-spec-validator $SPEC_VALIDATOR_VERSION"
  "$venv/bin/openapi-spec-validator" "$spec"
  echo "==> openapi-generator-cli $GENERATOR_VERSION validate"
  "$generator" validate --input-spec "$spec"
  exit 0
fi

generate() {
  local name=$1 generator_name=$2 properties=$3
  local dir=$out/$name
  # From scratch, so files of operations or models removed from the spec do not linger.
  rm -rf "$dir"
  echo "==> generating $name client ($generator_name) into $dir"
  # The generator is chatty (one INFO line per file); keep its log and show it only on failure.
  local log
  log=$(mktemp)
  # skipFormModel=false: a schema used only by form media types (PublicSubscriptionForm) is otherwise "unused" and
  # not generated, yet typescript-fetch still imports it for the operation, and the client does not compile.
  if ! "$generator" generate \
    --input-spec "$spec" \
    --generator-name "$generator_name" \
    --output "$dir" \
    --additional-properties "$properties" \
    --global-property skipFormModel=false \
    >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "ERROR: generating the $name client failed" >&2
    exit 1
  fi
  rm -f "$log"
}

for t in "${targets[@]}"; do
  case "$t" in
    python)
      # Import name roster_client; distribution name roster-client.
      generate python python "packageName=roster_client,projectName=roster-client,packageVersion=$SDK_VERSION"
      ;;
    typescript)
      # typescript-fetch writes package.json/tsconfig.json only when npmName is set.
      generate typescript typescript-fetch "npmName=roster-client,npmVersion=$SDK_VERSION"
      ;;
    rust)
      # The reqwest library (async). The crate enables reqwest's native-tls by default (generator default
      # `reqwestDefaultFeatures`); users who talk plain HTTP, like tests/sdk/rust, turn default features off.
      generate rust rust "packageName=roster-client,packageVersion=$SDK_VERSION,library=reqwest"
      ;;
  esac
done

echo
echo "OpenAPI Generator $GENERATOR_VERSION, spec $spec:"
for t in "${targets[@]}"; do
  echo "  $t: $out/$t"
done
