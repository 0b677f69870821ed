#!/usr/bin/env bash
# Proves that vendor/ holds the published sqlx crates plus vendor/release-without-ping.patch and nothing else:
# downloads each crate from crates.io, checks it against the checksum Cargo.lock had before the patch, applies the
# patch and compares the trees. Needs curl, tar, patch and sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# name version sha256 (the crates.io checksums of the published .crate files)
crates=(
  "sqlx-core 0.9.0 05b44e85bf579a8eeb4ceaa77a3a523baf2bf0e9bac7e40f405d537b5d2d5ccb"
  "sqlx-postgres 0.9.0 87a2bdd6e83f6b3ea525ca9fee568030508b58355a43d0b2c1674d5f79dcd65e"
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a"
for line in "${crates[@]}"; do
  read -r name version checksum <<<"$line"
  grep -q "^version = \"$version\"" "vendor/$name/Cargo.toml" \
    || { echo "vendor/$name is not version $version: update scripts/check-vendor.sh with it" >&2; exit 1; }
  curl -fsSL --retry 3 -o "$work/$name.crate" "https://static.crates.io/crates/$name/$name-$version.crate"
  echo "$checksum  $work/$name.crate" | sha256sum -c --quiet -
  tar -xzf "$work/$name.crate" -C "$work/a"
  mv "$work/a/$name-$version" "$work/a/$name"
  rm -f "$work/a/$name/.cargo-ok"
done
(cd "$work/a" && patch -s -p1 <"$OLDPWD/vendor/release-without-ping.patch")
diff -r "$work/a/sqlx-core" vendor/sqlx-core
diff -r "$work/a/sqlx-postgres" vendor/sqlx-postgres
log "vendor/ is sqlx-core and sqlx-postgres 0.9.0 as published, plus vendor/release-without-ping.patch"
