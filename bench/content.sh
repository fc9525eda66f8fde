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
#      of RUNS runs, and the ratio. Target: >= 5x clamd.
#   2a. The pipeline per core (crates/hato-protection/examples/pipeline_bench.rs): per message
#      what the SMTP path does on its blocking steps (hato_transport::content) — the built-in
#      scan over the same signatures as 1, RuleMessage::from_message, the 50 transport rules
#      of bench/content-rules.json (RuleSet::evaluate, compiled once as the server caches them;
#      the directory the rules ask is an in-memory map of the same mailboxes, group and
#      attribute 2b creates) and `decide` under the default malware policy — in messages per
#      CPU-second of the one thread, median of RUNS, beside clamd's rate from 1 (the engine
#      alone) and the ratio. Target: >= 5x clamd.
#   2b. SMTP end to end, the pipeline on vs. off: two release `hato serve` processes on free
#      loopback ports, data in the script's temp dir, one with `[content] pipeline = true`,
#      `[malware] signatures_dir` = the signatures of 1 and the 50 rules imported with
#      `hato rule import`, the other with `pipeline = false`; otherwise the same (one tenant,
#      accepted domain bench.test, the mailboxes the rules name; throttle and reverse DNS off
#      on both, DNS on a dead loopback port, so only the pipeline differs). bench/content_helper.py
#      sends every corpus file (mbox line stripped, CRLF, long lines broken, dot-stuffed) to
#      user@bench.test over SESSIONS concurrent sessions of up to 100 messages each, to both
#      servers, alternating which goes first each round, RUNS rounds. Per run: messages per
#      second (wall, until the last reply to the data: the last 250), and messages per
#      CPU-second of the server (its utime + stime from /proc/PID/stat over the same window).
#      Each server gets WARMUP messages first, untimed. After each run the script waits until
#      the server has delivered what it accepted, so no run competes with the last one's
#      backlog. Medians, and how much slower "on" is than
#      "off" in each. Target: < 20 % slower. The messages the pipeline refuses (rules,
#      malware file filter) count as sent: the figure is messages answered per second.
#   The machine may be shared: for every timed run the share of the CPU used by other work (not
#   this script, its children and the servers) is printed, as bench/inbound.sh does. Runs of
#   this script and the other benchmarks wait for each other (flock on
#   /tmp/hato-inbound-bench.lock).
#
# How to run:   bash bench/content.sh
#   Environment: CORPUS=dir RUNS=5 SIGS=2000 NDB=500
#                LIMIT=0        only the first LIMIT files of CORPUS (sorted by path); 0: all
#                SESSIONS=20    concurrent SMTP sessions (2b)
#                SPAM=false     the spam filter on the "on" server too (2b; default: the malware
#                               filter and the rules only, the pipeline of the content issue)
#                RULES=file     the transport rules of 2a and 2b (default bench/content-rules.json)
#                PARTS="1 2a 2b" the parts to run (2a and 2b need the signatures of 1 only)
#                HATO=path/to/hato (default: the release build of this checkout, built here)
#                WARMUP=200     messages sent to each server before the timed runs (2b; 0: none)
#                DRAIN_TIMEOUT=600 seconds to wait for a server's deliveries after a run
#                KEEP_TMP=1     keep the temp dir (configs, server logs)
#   Exit status is 0 unless something failed to run; figures beyond target are only reported.
#   Needs no root (clamav-daemon is installed with apt-get/sudo if missing).
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
RUNS=${RUNS:-5}
SIGS=${SIGS:-2000}
NDB=${NDB:-500}
LIMIT=${LIMIT:-0}
SESSIONS=${SESSIONS:-20}
SPAM=${SPAM:-false}
case $SPAM in true | false) ;; *) echo "SPAM must be true or false" >&2; exit 2 ;; esac
PARTS=${PARTS:-1 2a 2b}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
WARMUP=${WARMUP:-200}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET_DIR/release/examples/malware_bench
PIPELINE_BENCH=$TARGET_DIR/release/examples/pipeline_bench
HATO=${HATO:-$TARGET_DIR/release/hato}
RULES=${RULES:-$ROOT/bench/content-rules.json}
HELPER=(python3 "$ROOT/bench/inbound_helper.py")
CLIENT=(python3 "$ROOT/bench/content_helper.py")

# log, die, bench_lock, stop_pid
. "$ROOT/bench/lib.sh"
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }

[ -d "$CORPUS" ] || die "no corpus at $CORPUS"
[ -f "$RULES" ] || die "no rules at $RULES"
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a number of at least 1" ;; esac
case $LIMIT in '' | *[!0-9]*) die "LIMIT must be a number (0: all)" ;; esac
case $SESSIONS in '' | *[!0-9]* | 0) die "SESSIONS must be a number of at least 1" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a number (0: none)" ;; esac

if part 1 || part 2a; then
    log "building the benchmarks (cargo build --release -p hato-protection --example malware_bench --example pipeline_bench)"
    (cd "$ROOT" && cargo build --release -q -p hato-protection --example malware_bench --example pipeline_bench) \
        || die "cargo build failed"
    [ -x "$BENCH" ] && [ -x "$PIPELINE_BENCH" ] || die "no binaries at $BENCH, $PIPELINE_BENCH after the build"
fi
if part 2b && [ "$HATO" = "$TARGET_DIR/release/hato" ]; then
    log "building hato (cargo build --release -p hato --bin hato)"
    (cd "$ROOT" && cargo build --release -q -p hato --bin hato) || die "cargo build failed"
fi
if part 2b && [ ! -x "$HATO" ]; then die "no hato binary at $HATO"; fi

if part 1 && { ! command -v clamd >/dev/null || ! command -v clamdscan >/dev/null; }; then
    log "installing clamav-daemon and clamdscan (Debian packages)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        clamav-daemon clamdscan >/dev/null || die "cannot install clamav-daemon"
fi

# One benchmark at a time on this machine: two at once would skew each other's figures.
bench_lock 7200

WORK=$(mktemp -d /tmp/hato-content-bench.XXXXXX)
CLAMD_PID=""
declare -A HATO_PID=([on]="" [off]="")
cleanup() {
    local rc=$?
    set +e
    stop_pid "${HATO_PID[on]}" "hato (pipeline on)"
    stop_pid "${HATO_PID[off]}" "hato (pipeline off)"
    stop_pid "$CLAMD_PID" clamd
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
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

find "$CORPUS" -type f ! -name MANIFEST.tsv ! -name README.md | sort >"$WORK/files"
if [ "$LIMIT" -gt 0 ]; then
    # A subset: the first LIMIT files, copied into a directory of their own so that every part
    # (the engines read a directory) sees the same messages (copies: clamd skips symlinks).
    mkdir -p "$WORK/corpus"
    i=0
    while IFS= read -r f; do
        i=$((i + 1))
        cp "$f" "$WORK/corpus/$(printf '%06d' "$i")-$(basename "$f")"
    done < <(head -n "$LIMIT" "$WORK/files")
    CORPUS=$WORK/corpus
    find "$CORPUS" -type f | sort >"$WORK/files"
fi
N=$(wc -l <"$WORK/files")
[ "$N" -gt 0 ] || die "no files under $CORPUS"

# Warm the page cache so no engine's first run pays for the disk.
xargs -d '\n' cat <"$WORK/files" >/dev/null

echo "content benchmark: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "corpus: $N files under $CORPUS; signatures: $SIGS hashes, $NDB body patterns, EICAR"

# ---------------------------------------------------------------- 1. the engine vs clamd
CLAMD=""
if part 1; then
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
    clamd --config-file="$WORK/clamd.conf" >"$WORK/clamd.out" 2>&1 9>&- &
    CLAMD_PID=$!
    deadline=$((SECONDS + 120))
    until [ -S "$WORK/clamd.sock" ] && clamdscan --config-file="$WORK/clamd.conf" --no-summary - </dev/null >/dev/null 2>&1; do
        kill -0 "$CLAMD_PID" 2>/dev/null || { cat "$WORK/clamd.out" "$WORK/clamd.log" >&2 2>/dev/null; die "clamd exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "clamd did not answer within 120 s"
        sleep 0.5
    done
    printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$WORK/eicar.com"
    clamdscan --config-file="$WORK/clamd.conf" --no-summary "$WORK/eicar.com" | sed 's/^/clamd sanity: /' || true
    echo
    echo "== 1. malware engine, messages per second per core =="

    # hato: the engine's own CPU-second count, one thread.
    "$BENCH" "$WORK/db" "$CORPUS" "$RUNS" >"$WORK/hato.out" 2>"$WORK/hato.err" || { cat "$WORK/hato.err" >&2; die "malware_bench failed"; }
    cat "$WORK/hato.err"
    sed 's/^/hato  /' "$WORK/hato.out"
    ENGINE=$(field msgs_per_cpu_s <"$WORK/hato.out" | median)

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
    # clamd is done: it would only hold its memory through part 2.
    stop_pid "$CLAMD_PID" clamd
    CLAMD_PID=""

    echo
    echo "median: hato $ENGINE msgs/s per core, clamd $CLAMD msgs/s per core, ratio $(awk -v a="$ENGINE" -v b="$CLAMD" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')x (target >= 5x)"
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# ---------------------------------------------------------------- 2a. the pipeline per core
if part 2a; then
    echo
    echo "== 2a. pipeline (malware engine + transport rules + decision), messages per second per core =="
    "$PIPELINE_BENCH" "$WORK/db" "$CORPUS" "$RULES" "$RUNS" >"$WORK/pipeline.out" 2>"$WORK/pipeline.err" \
        || { cat "$WORK/pipeline.err" >&2; die "pipeline_bench failed"; }
    cat "$WORK/pipeline.err"
    sed 's/^/pipeline  /' "$WORK/pipeline.out"
    PIPELINE=$(field msgs_per_cpu_s <"$WORK/pipeline.out" | median)
    if [ -n "$CLAMD" ]; then
        echo "median: pipeline $PIPELINE msgs/s per core, clamd (engine alone, part 1) $CLAMD msgs/s per core, ratio $(awk -v a="$PIPELINE" -v b="$CLAMD" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')x (target >= 5x)"
    else
        echo "median: pipeline $PIPELINE msgs/s per core (part 1 not run: no clamd figure to compare with)"
    fi
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# ---------------------------------------------------------------- 2b. SMTP, pipeline on vs. off
if part 2b; then
    echo
    echo "== 2b. SMTP end to end, pipeline on vs. off ($N messages, $SESSIONS sessions, $RUNS rounds) =="
    read -r SMTP_ON ADMIN_ON SMTP_OFF ADMIN_OFF <<<"$("${HELPER[@]}" freeport 4)"
    declare -A SMTP_PORT=([on]=$SMTP_ON [off]=$SMTP_OFF)
    declare -A ADMIN_PORT=([on]=$ADMIN_ON [off]=$ADMIN_OFF)

    hatoctl() { local side=$1; shift; "$HATO" --config "$WORK/hato-$side/hato.toml" "$@"; }

    start_hato() {
        local side=$1 dir=$WORK/hato-$1 pipeline=false
        [ "$side" = on ] && pipeline=true
        mkdir -p "$dir"
        cat >"$dir/hato.toml" <<EOF
# bench/content.sh: hato with the content pipeline $side
[server]
hostname = "bench-hato-$side.localdomain"
data_dir = "$dir/data"

[smtp]
listen = ["127.0.0.1:${SMTP_PORT[$side]}"]
# every session comes from 127.0.0.1
max_connections_per_ip = 1000

[admin]
listen = "127.0.0.1:${ADMIN_PORT[$side]}"

# Only the content pipeline differs between the two: the edge's checks are off on both (the
# throttle would slow one client sending thousands of messages; bench/edge.sh measures them).
[throttle]
enabled = false

[edge]
reverse_dns = false

# Nothing leaves the machine: a resolver port nothing listens on, answered at once.
[dns]
servers = ["127.0.0.1:9"]
timeout_ms = 500

# No submission listener: its default port (127.0.0.1:2587) is one, and two servers run here.
[submission]
listen = []

[content]
pipeline = $pipeline

# The pipeline of the content issue: malware filter and transport rules. The spam filter (its
# own issue, measured with the whole pipeline by bench/spam.sh part c) only with SPAM=true.
[spam]
enabled = $SPAM
EOF
        if [ "$side" = on ]; then
            printf '\n[malware]\nsignatures_dir = "%s"\n' "$WORK/db" >>"$dir/hato.toml"
        fi
        "$HATO" serve --config "$dir/hato.toml" >"$dir/serve.log" 2>&1 9>&- &
        HATO_PID[$side]=$!
        if ! "${HELPER[@]}" wait-banner "${SMTP_PORT[$side]}" 60 >/dev/null || ! "${HELPER[@]}" wait-port "${ADMIN_PORT[$side]}" 30; then
            tail -20 "$dir/serve.log" >&2
            die "hato ($side) does not answer (SMTP ${SMTP_PORT[$side]}, admin ${ADMIN_PORT[$side]})"
        fi
        # The tenant, its domain, and the recipients the rules name (the same map
        # pipeline_bench's directory holds), on both servers alike.
        {
            hatoctl "$side" tenant add bench
            hatoctl "$side" domain add bench.test --tenant bench
            hatoctl "$side" mailbox add user@bench.test --quota-mb 1000000
            for m in records security audit support ceo; do
                hatoctl "$side" mailbox add "$m@bench.test"
            done
            hatoctl "$side" mailbox add cfo@bench.test --department Finance
            hatoctl "$side" group add executives@bench.test --type distribution --tenant bench --owner ceo@bench.test \
                --member ceo@bench.test --member cfo@bench.test
        } >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; die "setting up hato ($side) failed"; }
        if [ "$side" = on ]; then
            hatoctl on rule import "$RULES" --tenant bench >>"$dir/setup.log" 2>&1 \
                || { cat "$dir/setup.log" >&2; die "hato rule import failed"; }
            log "hato (pipeline on): $(tail -1 "$dir/setup.log")"
        fi
        log "hato (pipeline $side): pid ${HATO_PID[$side]}, SMTP 127.0.0.1:${SMTP_PORT[$side]}, admin 127.0.0.1:${ADMIN_PORT[$side]}"
    }

    # Messages accepted but not yet delivered (trace rows with status Pending): cheap once drained.
    pending() {
        local side=$1 out=$WORK/hato-$1/pending.json
        hatoctl "$side" trace --status Pending --json >"$out" 2>"$out.err" || { echo -1; return; }
        "${HELPER[@]}" count-json "$out"
    }

    wait_delivered() {
        local side=$1 deadline=$((SECONDS + DRAIN_TIMEOUT)) n
        while :; do
            n=$(pending "$side")
            [ "$n" = 0 ] && return 0
            [ "$n" = -1 ] && { cat "$WORK/hato-$side/pending.json.err" >&2; die "hato trace --status Pending failed ($side)"; }
            kill -0 "${HATO_PID[$side]}" 2>/dev/null || { tail -20 "$WORK/hato-$side/serve.log" >&2; die "hato ($side) exited"; }
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "WARNING: hato ($side) still has $n messages pending after ${DRAIN_TIMEOUT}s"
                return 1
            fi
            sleep 0.2
        done
    }

    start_hato on
    start_hato off

    # our_pids: the processes whose CPU time is the benchmark's own (this script and its
    # children, the two servers); the rest of the machine is "other work".
    our_pids() { echo $$ "${HATO_PID[on]}" "${HATO_PID[off]}"; }
    declare -A WALL=([on]="" [off]="") PERCPU=([on]="" [off]="")
    OTHERS=""
    run_once() {
        local side=$1 i=$2 snap0 snap1 others out
        snap0=$("${HELPER[@]}" cpu-snap $(our_pids))
        out=$("${CLIENT[@]}" send "${SMTP_PORT[$side]}" "${HATO_PID[$side]}" "$SESSIONS" "$WORK/files") \
            || { echo "$out" >&2; tail -20 "$WORK/hato-$side/serve.log" >&2; die "sending to hato ($side) failed"; }
        snap1=$("${HELPER[@]}" cpu-snap $(our_pids))
        others=$("${HELPER[@]}" cpu-others "$snap0" "$snap1")
        OTHERS="$OTHERS $others"
        echo "run $i pipeline $side: $out (other work: ${others}% of the CPU)"
        WALL[$side]="${WALL[$side]} $(field msgs_per_s <<<"$out")"
        PERCPU[$side]="${PERCPU[$side]} $(field msgs_per_cpu_s <<<"$out")"
        wait_delivered "$side" || true
    }

    # A warm-up of each (the first messages compile the rules and fill caches), not timed.
    if [ "$WARMUP" -gt 0 ]; then
        head -n "$WARMUP" "$WORK/files" >"$WORK/files.warmup"
        for side in off on; do
            out=$("${CLIENT[@]}" send "${SMTP_PORT[$side]}" "${HATO_PID[$side]}" "$SESSIONS" "$WORK/files.warmup") \
                || { echo "$out" >&2; die "the warm-up of hato ($side) failed"; }
            wait_delivered "$side" || true
        done
        log "warm-up done ($(wc -l <"$WORK/files.warmup") messages each)"
    fi

    for i in $(seq "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then order=(off on); else order=(on off); fi
        for side in "${order[@]}"; do run_once "$side" "$i"; done
    done

    echo "machine: $(nproc) CPUs shared by the servers and the client; CPU used by other work during the runs, %:$OTHERS"
    if awk -v l="$OTHERS" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] > 10) exit 0; exit 1 }'; then
        echo "NOTE: other processes competed for the CPU during some runs; those figures are skewed"
    fi
    declare -A MW MC
    for side in off on; do
        MW[$side]=$(tr ' ' '\n' <<<"${WALL[$side]}" | grep . | median)
        MC[$side]=$(tr ' ' '\n' <<<"${PERCPU[$side]}" | grep . | median)
        printf 'pipeline %-3s: %s msgs/s wall (runs:%s), %s msgs per server CPU-second (runs:%s)\n' \
            "$side" "${MW[$side]}" "${WALL[$side]}" "${MC[$side]}" "${PERCPU[$side]}"
    done
    awk -v on="${MW[on]}" -v off="${MW[off]}" -v con="${MC[on]}" -v coff="${MC[off]}" 'BEGIN {
        printf "pipeline on vs. off: %.1f %% slower in wall rate, %.1f %% slower per server CPU-second (target < 20 %%)\n",
            (off > 0) ? 100 * (1 - on / off) : 0, (coff > 0) ? 100 * (1 - con / coff) : 0 }'
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
