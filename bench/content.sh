#!/usr/bin/env bash
# bench/content.sh — the content pipeline's speed.
#
# What it measures (release build, this machine)
#   1. The built-in malware engine (hato_protection::malware::Scanner::scan_builtin: MIME walk,
#      transfer decoding, archive unpacking, EICAR, hash and body signatures) in messages per
#      second per core (messages / CPU-second of the one scanning thread) over every file of
#      CORPUS (default ../shared/corpus/, mbox `From ` line stripped), beside ClamAV's clamd
#      (Debian `clamav-daemon`, installed if missing, started privately on a Unix socket with
#      MaxThreads 1, no freshclam download) fed the same files by `clamdscan` (messages per
#      CPU-second of the clamd process). Both load the same small signature set the script
#      writes (SIGS hash signatures in .hdb and .hsb, NDB body signatures with wildcards, and
#      EICAR). clamd's cache of clean files is off (DisableCache), so every run scans. Medians
#      of RUNS runs, and the ratio. Target: ≥ 5× clamd.
#   2. The pipeline (malware engine + 50 transport rules) per core, and SMTP end to end with the
#      pipeline on vs. off (target < 20 % slower): filled in at integration (marked below).
#   Runs of this script and the other benchmarks wait for each other (flock on
#   /tmp/hato-inbound-bench.lock).
#
# How to run:   bash bench/content.sh
#   Environment: CORPUS=dir RUNS=5 SIGS=2000 NDB=500
#   Exit status is 0 unless something failed to run; figures beyond target are only reported.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
RUNS=${RUNS:-5}
SIGS=${SIGS:-2000}
NDB=${NDB:-500}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET_DIR/release/examples/malware_bench

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

[ -d "$CORPUS" ] || die "no corpus at $CORPUS"

log "building the engine benchmark (cargo build --release -p hato-protection --example malware_bench)"
(cd "$ROOT" && cargo build --release -q -p hato-protection --example malware_bench) || die "cargo build failed"
[ -x "$BENCH" ] || die "no binary at $BENCH after the build"

if ! command -v clamd >/dev/null || ! command -v clamdscan >/dev/null; then
    log "installing clamav-daemon and clamdscan (Debian packages)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        clamav-daemon clamdscan >/dev/null || die "cannot install clamav-daemon"
fi

# One benchmark at a time on this machine: two at once would skew each other's figures.
exec 9>/tmp/hato-inbound-bench.lock
if ! flock -n 9; then
    log "another benchmark is running; waiting for it to finish"
    flock -w 7200 9 || die "still locked after two hours: /tmp/hato-inbound-bench.lock"
fi

WORK=$(mktemp -d /tmp/hato-content-bench.XXXXXX)
CLAMD_PID=""
cleanup() {
    if [ -n "$CLAMD_PID" ] && kill -0 "$CLAMD_PID" 2>/dev/null; then
        kill "$CLAMD_PID" 2>/dev/null || true
        wait "$CLAMD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/db" "$WORK/tmp"

# The signature set, the same for both engines: deterministic pseudo-random hashes (they match
# nothing in the corpus, as most of a real database does not), body signatures of 8-16 literal
# bytes with `??`, `{n-m}` and `*` (a literal anchor each, as ClamAV needs), and EICAR by MD5.
log "writing $SIGS hash and $NDB body signatures to $WORK/db"
python3 - "$WORK/db" "$SIGS" "$NDB" <<'PY'
import hashlib, sys
d, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
with open(f"{d}/bench.hdb", "w") as f:
    f.write("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n")
    for i in range(n // 2):
        f.write(f"{h('md5-%d' % i)[:32]}:{1000 + i}:Hato.Bench.Md5.{i}\n")
with open(f"{d}/bench.hsb", "w") as f:
    for i in range(n - n // 2):
        f.write(f"{h('sha-%d' % i)}:*:Hato.Bench.Sha256.{i}:73\n")
with open(f"{d}/bench.ndb", "w") as f:
    for i in range(m):
        x = h('ndb-%d' % i)
        a, b, c = x[0:16], x[16:24], x[24:32]
        kind = i % 4
        if kind == 0: sig = a + b
        elif kind == 1: sig = a + "??" + b
        elif kind == 2: sig = a + "{2-8}" + b
        else: sig = a + "*" + c
        f.write(f"Hato.Bench.Body.{i}:0:*:{sig}\n")
PY

cat >"$WORK/clamd.conf" <<CONF
LocalSocket $WORK/clamd.sock
DatabaseDirectory $WORK/db
TemporaryDirectory $WORK/tmp
PidFile $WORK/clamd.pid
LogFile $WORK/clamd.log
Foreground yes
MaxThreads 1
ScanMail yes
ScanArchive yes
# clamd caches the hashes of clean files and skips them the next time: off, so every run scans.
DisableCache yes
CONF

log "starting clamd (one thread) on $WORK/clamd.sock"
clamd --config-file="$WORK/clamd.conf" >"$WORK/clamd.out" 2>&1 &
CLAMD_PID=$!
deadline=$((SECONDS + 120))
until [ -S "$WORK/clamd.sock" ] && clamdscan --config-file="$WORK/clamd.conf" --no-summary - </dev/null >/dev/null 2>&1; do
    kill -0 "$CLAMD_PID" 2>/dev/null || { cat "$WORK/clamd.out" "$WORK/clamd.log" >&2 2>/dev/null; die "clamd exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "clamd did not answer within 120 s"
    sleep 0.5
done

find "$CORPUS" -type f ! -name MANIFEST.tsv ! -name README.md | sort >"$WORK/files"
N=$(wc -l <"$WORK/files")
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$WORK/eicar.com"

# Warm the page cache so neither engine's first run pays for the disk.
xargs -d '\n' cat <"$WORK/files" >/dev/null

echo "content benchmark: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "corpus: $N files under $CORPUS; signatures: $SIGS hashes, $NDB body patterns, EICAR"
clamdscan --config-file="$WORK/clamd.conf" --no-summary "$WORK/eicar.com" | sed 's/^/clamd sanity: /' || true
echo
echo "== 1. malware engine, messages per second per core =="

# hato: the engine's own CPU-second count, one thread.
"$BENCH" "$WORK/db" "$CORPUS" "$RUNS" >"$WORK/hato.out" 2>"$WORK/hato.err" || { cat "$WORK/hato.err" >&2; die "malware_bench failed"; }
cat "$WORK/hato.err"
sed 's/^/hato  /' "$WORK/hato.out"
HATO=$(awk '{for (i=1;i<=NF;i++) if ($i=="msgs_per_cpu_s") print $(i+1)}' "$WORK/hato.out" | median)

# clamd: its process's CPU time (utime + stime, clock ticks) over each clamdscan run.
TCK=$(getconf CLK_TCK)
clamd_ticks() { awk '{print $14 + $15}' "/proc/$CLAMD_PID/stat"; }
: >"$WORK/clamd.rates"
for run in $(seq 1 "$RUNS"); do
    t0=$(clamd_ticks); w0=$(date +%s.%N)
    clamdscan --config-file="$WORK/clamd.conf" --no-summary --infected --file-list="$WORK/files" >"$WORK/clamd.run" 2>&1 || true
    w1=$(date +%s.%N); t1=$(clamd_ticks)
    found=$(grep -c 'FOUND$' "$WORK/clamd.run" || true)
    errors=$(grep -c 'ERROR$' "$WORK/clamd.run" || true)
    cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.3f", (b - a) / t}')
    rate=$(awk -v n="$N" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
    echo "clamd run $run: messages $N detections $found errors $errors wall_s $(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.3f", b - a}') cpu_s $cpu msgs_per_cpu_s $rate"
    echo "$rate" >>"$WORK/clamd.rates"
done
CLAMD=$(median <"$WORK/clamd.rates")

echo
echo "median: hato $HATO msgs/s per core, clamd $CLAMD msgs/s per core, ratio $(awk -v a="$HATO" -v b="$CLAMD" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')x (target >= 5x)"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== 2. pipeline (malware + 50 transport rules) and SMTP on vs. off =="
# INTEGRATION: filled in when the pipeline is wired into the SMTP path: a release `hato serve`
# with the pipeline on (built-in engine over the same signature directory + 50 rules from
# `hato rule import`) vs. off, the corpus sent over SMTP by bench/inbound_helper.py, messages
# per second per core of the server, and the slowdown (target < 20 %).
echo "(not measured yet: see the INTEGRATION note in bench/content.sh)"
