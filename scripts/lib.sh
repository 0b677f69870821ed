# Shared by the scripts: `source "$(dirname "$0")/lib.sh"`. Functions only; sourcing changes nothing.

log() { printf '==> %s\n' "$*"; }

# make_venv DIR [PYTHON]: a fresh virtualenv in DIR. A minimal Debian has no python3, and Debian's python3 ships
# venv separately: as root with apt-get, installs them; otherwise fails loudly.
make_venv() {
  local venv=$1 python=${2:-python3}
  rm -rf "$venv"
  if command -v "$python" >/dev/null 2>&1 && "$python" -m venv "$venv" >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    rm -rf "$venv"
    "$python" -m venv "$venv"
  else
    echo "ERROR: '$python -m venv' failed; install Python 3.10+ with venv (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
}
