#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the peers the tests talk to when they are
# missing (swaks, Python 3; Debian packages), then runs every test of the workspace.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p hato-smtp`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${need[*]} (Debian packages) for the end-to-end tests" >&2
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need[@]}"
  }
fi

cargo test --workspace "$@"
