#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the peers the tests talk to when they are
# missing (swaks, Python 3, clamd and ClamAV's test files, Postfix's smtp-sink; Debian packages),
# then runs every test of the workspace. The malware tests start their own clamd with signatures
# they write: the system's clamav-daemon and freshclam services are neither needed nor touched,
# and no signature database is downloaded. HATO_REQUIRE_CLAMD=1 makes a missing clamd a failure,
# not a skip.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p hato-smtp`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
[ -d /usr/share/clamav-testfiles ] || need+=(clamav-testfiles)
# The SMTP client's tests deliver to smtp-sink (Debian ships it with Postfix).
[ -x /usr/sbin/smtp-sink ] || need+=(postfix)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${need[*]} (Debian packages) for the end-to-end tests" >&2
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # Postfix is only there for smtp-sink: "No configuration" sets up and starts no mail system.
  if [[ " ${need[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" |
      "${sudo[@]}" debconf-set-selections
  fi
  "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need[@]}"
  }
fi

export HATO_REQUIRE_CLAMD=1
cargo test --workspace "$@"
