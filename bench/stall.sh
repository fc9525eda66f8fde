#!/usr/bin/env bash
# bench/stall.sh — one message must never stall delivery for every tenant.
#
# Two worst cases, each on a fresh real server (release build, loopback only), while another
# tenant sends a small message every 100 ms whose delivery latency (median, max) is printed:
#   (a) a message of the full 35 MB size whose header is nearly all References (~1 million ids)
#       to a Microsoft 365 group: time from queueing (the 250) until the group recipient is
#       routed (target < 1 s);
#   (b) a message to a dynamic group of MEMBERS (default 100,000) mailboxes: time until every
#       member copy is delivered (target: seconds).
# Figures come from the server's own timestamps (messages.received, recipients.updated), read
# from its database read-only. The mailboxes are created once through the admin API (a thread
# pool) by the first server; each later run of (b) starts from a copy of that data directory
# (the newer binary migrates it).
#
# The same run measures a baseline binary first (default: the merge base with main, built from a
# temporary git worktree) unless BASE=none; BASE=path/to/hato uses that binary.
#
# Run: bash bench/stall.sh
# Env: MEMBERS=100000 THREADS=8 MAX_WAIT=120 (seconds a case may take before it is reported as
#      not done) BASE=auto|none|PATH BASE_REV=<rev> (default: git merge-base HEAD main)
#      HATO=target/release/hato
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEMBERS=${MEMBERS:-100000}
THREADS=${THREADS:-8}
MAX_WAIT=${MAX_WAIT:-120}
BASE=${BASE:-auto}
HATO=${HATO:-$ROOT/target/release/hato}
HELPER=(python3 "$ROOT/bench/stall_helper.py")

TMP=$(mktemp -d)
HATO_PID=""
WORKTREE=""
stop_server() {
  if [ -n "$HATO_PID" ]; then
    kill "$HATO_PID" 2>/dev/null || true
    # A stalled server may not finish its shutdown (a busy delivery step): give it 10 s.
    for _ in $(seq 1 100); do kill -0 "$HATO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$HATO_PID" 2>/dev/null || true
    wait "$HATO_PID" 2>/dev/null || true
  fi
  HATO_PID=""
}
cleanup() {
  stop_server
  if [ -n "$WORKTREE" ]; then git -C "$ROOT" worktree remove --force "$WORKTREE" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release -q -p hato)
if [ "$BASE" = auto ]; then
  REV=${BASE_REV:-$(git -C "$ROOT" merge-base HEAD main)}
  WORKTREE="$TMP/base-src"
  git -C "$ROOT" worktree add --detach -q "$WORKTREE" "$REV"
  echo "building the baseline $(git -C "$ROOT" log --oneline -1 "$REV")"
  (cd "$WORKTREE" && CARGO_TARGET_DIR="$TMP/base-target" cargo build --release -q -p hato)
  BASE="$TMP/base-target/release/hato"
fi

# start_server BINARY DATA_DIR: starts hato on free loopback ports; sets SMTP, ADMIN, TOKEN.
start_server() {
  local bin=$1 dir=$2
  mkdir -p "$dir"
  cat > "$dir/hato.toml" <<TOML
[server]
hostname = "mx.bench.test"
data_dir = "data"
[smtp]
listen = ["127.0.0.1:0"]
max_connections_per_ip = 5000
[admin]
listen = "127.0.0.1:0"
TOML
  : > "$dir/serve.log"
  "$bin" serve --config "$dir/hato.toml" >> "$dir/serve.log" 2>&1 &
  HATO_PID=$!
  for _ in $(seq 1 300); do grep -q "admin API listening" "$dir/serve.log" && break; sleep 0.1; done
  grep -q "admin API listening" "$dir/serve.log" || { cat "$dir/serve.log"; echo "hato did not start"; exit 1; }
  SMTP=$(grep -o 'SMTP listening on [0-9.:]*' "$dir/serve.log" | tail -1 | awk '{print $4}')
  ADMIN=$(grep -o 'admin API listening on http://[0-9.:]*' "$dir/serve.log" | tail -1 | sed 's#.*http://##')
  TOKEN=$(cat "$dir/data/operator.token")
}

# bench NAME BINARY
bench() {
  local name=$1 bin=$2
  echo
  echo "==== $name: $bin ===="
  echo "-- (a) 35 MB header to a Microsoft 365 group --"
  start_server "$bin" "$TMP/$name-a"
  "${HELPER[@]}" setup "$ADMIN" "$TOKEN"
  "${HELPER[@]}" run "$SMTP" "$TMP/$name-a/data/hato.db" header "$MAX_WAIT"
  stop_server
  echo "-- (b) message to a $MEMBERS-member dynamic group --"
  if [ ! -d "$TMP/members-data" ]; then
    start_server "$bin" "$TMP/members-setup"
    "${HELPER[@]}" setup "$ADMIN" "$TOKEN"
    "${HELPER[@]}" mailboxes "$ADMIN" "$TOKEN" "$MEMBERS" "$THREADS"
    stop_server
    cp -a "$TMP/members-setup/data" "$TMP/members-data"
  fi
  mkdir -p "$TMP/$name-b"
  cp -a "$TMP/members-data" "$TMP/$name-b/data"
  start_server "$bin" "$TMP/$name-b"
  "${HELPER[@]}" run "$SMTP" "$TMP/$name-b/data/hato.db" members "$MAX_WAIT"
  grep VmHWM "/proc/$HATO_PID/status" | awk '{printf "hato peak RSS: %.0f MB\n", $2/1024}'
  stop_server
}

if [ "$BASE" != none ]; then bench baseline "$BASE"; fi
bench current "$HATO"
