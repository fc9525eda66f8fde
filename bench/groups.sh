#!/usr/bin/env bash
# bench/groups.sh — groups at scale.
#
# 1. Directory (in process, embedded store): a tenant of RECIPIENTS (default 100,000) mailboxes;
#    median and p99 time of evaluating a dynamic group's OPATH filter over all of them, of the
#    whole dynamic expansion as routing does it, and of expanding a 1,000-member distribution
#    group (target: < 20 ms per expansion). Also the time to reload the directory after a change.
# 2. SMTP (the real server, release build, loopback only): Postfix's smtp-source sends MESSAGES
#    (default 100) messages over SESSIONS (default 10) sessions to a 1,000-member distribution
#    group; the figure is member deliveries per second, from the first connection until every
#    member copy is in its mailbox.
#
# Run: bash bench/groups.sh     (installs Postfix from Debian for smtp-source if missing)
# Env: RECIPIENTS=100000 RUNS=200 MESSAGES=100 SESSIONS=10 MEMBERS=1000 HATO=target/release/hato
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECIPIENTS=${RECIPIENTS:-100000}
RUNS=${RUNS:-200}
MESSAGES=${MESSAGES:-100}
SESSIONS=${SESSIONS:-10}
MEMBERS=${MEMBERS:-1000}
HATO=${HATO:-$ROOT/target/release/hato}

if ! command -v smtp-source >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postfix >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postfix >/dev/null; }
fi
(cd "$ROOT" && cargo build --release -q -p hato -p hato-directory --example directory_bench)

echo "== directory: $RECIPIENTS recipients =="
"$ROOT/target/release/examples/directory_bench" "$RECIPIENTS" "$RUNS"

echo "== SMTP: $MESSAGES messages to a $MEMBERS-member distribution group over $SESSIONS sessions =="
TMP=$(mktemp -d)
HATO_PID=""
cleanup() {
  if [ -n "$HATO_PID" ]; then kill "$HATO_PID" 2>/dev/null || true; wait "$HATO_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
cat > "$TMP/hato.toml" <<TOML
[server]
hostname = "mx.bench.test"
data_dir = "data"
[smtp]
listen = ["127.0.0.1:0"]
max_connections = 5000
max_connections_per_ip = 5000
[admin]
listen = "127.0.0.1:0"
TOML
"$HATO" serve --config "$TMP/hato.toml" > "$TMP/serve.log" 2>&1 &
HATO_PID=$!
for _ in $(seq 1 100); do grep -q "admin API listening" "$TMP/serve.log" && break; sleep 0.1; done
SMTP=$(grep -o 'SMTP listening on [0-9.:]*' "$TMP/serve.log" | awk '{print $4}')
ADMIN=$(grep -o 'admin API listening on http://[0-9.:]*' "$TMP/serve.log" | sed 's#.*http://##')
TOKEN=$(cat "$TMP/data/operator.token")

python3 - "$ADMIN" "$TOKEN" "$MEMBERS" <<'PY'
import json, sys, urllib.request
admin, token, members = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(f"http://{admin}{path}", method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
call("POST", "/api/v1/tenants", {"name": "bench"})
call("POST", "/api/v1/domains", {"domain": "bench.test", "tenant": "bench"})
for i in range(members):
    call("POST", "/api/v1/mailboxes", {"address": f"m{i}@bench.test", "quota_mb": 100000})
call("POST", "/api/v1/groups", {"type": "distribution", "tenant": "bench", "address": "all@bench.test",
     "owners": ["m0@bench.test"], "members": [f"m{i}@bench.test" for i in range(members)],
     "require_sender_authentication": False})
PY

EXPECTED=$((MESSAGES * MEMBERS))
START=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 2048 -f sender@example.org -t all@bench.test "$SMTP" >/dev/null
ACCEPTED=$(date +%s.%N)
python3 - "$TMP/data/hato.db" "$EXPECTED" <<'PY'
import sqlite3, sys, time
db, expected = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 900
while time.time() < deadline:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        n = con.execute("SELECT count(*) FROM mail_items").fetchone()[0]
        con.close()
    except sqlite3.OperationalError:
        n = -1
    if n >= expected:
        break
    time.sleep(0.2)
print(n)
PY
DONE=$(date +%s.%N)
DELIVERED=$(python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$TMP/data/hato.db?mode=ro', uri=True).execute('SELECT count(*) FROM mail_items').fetchone()[0])")
python3 - "$START" "$ACCEPTED" "$DONE" "$MESSAGES" "$DELIVERED" "$EXPECTED" <<'PY'
import sys
start, accepted, done = map(float, sys.argv[1:4])
messages, delivered, expected = map(int, sys.argv[4:7])
print(f"accepted {messages} messages in {accepted - start:.2f} s ({messages / (accepted - start):.0f} msg/s)")
print(f"delivered {delivered} of {expected} member copies in {done - start:.2f} s: {delivered / (done - start):.0f} deliveries/s")
PY
grep VmHWM "/proc/$HATO_PID/status" | awk '{printf "hato peak RSS: %.0f MB\n", $2/1024}'
