#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the peers the tests talk to when they are
# missing (swaks, Python 3, clamd and ClamAV's test files, Postfix's smtp-sink, chromium and
# chromium-driver; Debian packages; Python's selenium from PyPI),
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
# The web console's browser test (tests/console_browser.rs): Debian's chromium and its driver.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# Japanese glyphs in its screenshots (target/console-screenshots/).
[ -d /usr/share/fonts/opentype/ipafont-gothic ] || need+=(fonts-ipafont-gothic)
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || need+=(python3-pip)
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

# Selenium drives chromium-driver (the Debian one: Selenium downloads no browser or driver when
# given their paths).
if ! python3 -c "import selenium" >/dev/null 2>&1; then
  echo "scripts/test.sh: installing Python selenium for the console's browser test" >&2
  python3 -m pip install -q selenium 2>/dev/null ||
    python3 -m pip install -q --break-system-packages selenium
fi

export HATO_REQUIRE_CLAMD=1
export HATO_REQUIRE_BROWSER=1
cargo test --workspace "$@"
