#!/usr/bin/env bash
# bench/spam.sh — the spam classifier's accuracy and speed, beside Rspamd and SpamAssassin.
#
# What it measures (release build, this machine)
#   a. Accuracy: `hato spam eval --split test --json` with the shipped model on the held-out
#      test split of CORPUS (default ../shared/corpus/spamassassin: files whose MD5 starts with
#      c-f, never trained or tuned on): spam recall and ham false positives at SCL >= 5 (the
#      policy's spam threshold), ROC AUC. Target: recall >= 97 % at ham FP <= 0.3 %. Also with
#      --online (each message's true label learned after it is scored, as a tenant's junk /
#      not-junk reports teach it).
#   b. Scan rate over every file of the corpus, side by side in one run:
#      - hato: `hato spam eval --split all` (extract + score, one thread): messages per
#        CPU-second of that thread (/proc/thread-self/schedstat) and per wall second;
#      - Rspamd (Debian `rspamd`, started here on loopback) fed by `rspamc` (PARALLEL at once);
#      - SpamAssassin (Debian `spamd`, started here on loopback, `--local`: no
#        network tests) fed by `spamc` (PARALLEL at once).
#      For each: messages per CPU-second of the scanning processes (hato: its one thread; rspamd
#      and spamd: utime + stime of their processes from /proc over the run), and messages per
#      wall second. Medians over RUNS runs, and the ratios. Target: hato >= 5x Rspamd.
#      Neither daemon makes network traffic: their DNS resolver is a closed loopback port, and
#      every module that would fetch or ask something (RBLs, fuzzy, URL reputation, DCC, Razor,
#      Pyzor, updates) is off. Rspamd's and SpamAssassin's recall and false positives on the
#      same test split are printed beside hato's (a spam is caught when Rspamd's action is not
#      `no action`/`greylist`, or when SpamAssassin says it is spam).
#   The machine may be shared: the load average before and after is printed. Runs of this
#   script and the other benchmarks wait for each other (flock on /tmp/hato-inbound-bench.lock).
#
# How to run:   bash bench/spam.sh
#   Environment: CORPUS=dir (with ham/ and spam/)  RUNS=3  PARALLEL=2  PARTS="a b"
#                HATO=path/to/hato (default: the release build of this checkout, built here)
#                SA_LIMIT=0   only every Nth file for SpamAssassin's timing (0: all; it runs at
#                             about 20 messages per second)
#                RSPAMD_DB=/var/tmp/hato-spam-bench-rspamd-db  Rspamd's database directory, kept
#                             between runs: it caches the compiled Hyperscan databases (the first
#                             start compiles them, minutes on a busy machine)
#                KEEP_TMP=1   keep the temp dir (configs, logs)
#   Exit status is 0 unless something failed to run; figures beyond target are only reported.
#   Installs rspamd, spamassassin, spamd and spamc with apt-get if missing (root or sudo).
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$ROOT/../shared/corpus/spamassassin}
RUNS=${RUNS:-3}
PARALLEL=${PARALLEL:-2}
PARTS=${PARTS:-a b}
SA_LIMIT=${SA_LIMIT:-0}
RSPAMD_DB=${RSPAMD_DB:-/var/tmp/hato-spam-bench-rspamd-db}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HATO=${HATO:-$TARGET_DIR/release/hato}

# log, die, bench_lock, stop_pid
. "$ROOT/bench/lib.sh"
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
pct() { awk -v x="$1" 'BEGIN {printf "%.2f %%", x * 100}'; }

[ -d "$CORPUS/ham" ] && [ -d "$CORPUS/spam" ] || die "no ham/ and spam/ under $CORPUS"
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a number of at least 1" ;; esac
case $PARALLEL in '' | *[!0-9]* | 0) die "PARALLEL must be a number of at least 1" ;; esac
case $SA_LIMIT in '' | *[!0-9]*) die "SA_LIMIT must be a number (0: all)" ;; esac

if [ "$HATO" = "$TARGET_DIR/release/hato" ]; then
    log "building hato (cargo build --release -p hato --bin hato)"
    (cd "$ROOT" && cargo build --release -q -p hato --bin hato) || die "cargo build failed"
fi
[ -x "$HATO" ] || die "no hato binary at $HATO"

if part b && { ! command -v rspamd >/dev/null || ! command -v rspamc >/dev/null \
    || ! command -v spamd >/dev/null || ! command -v spamc >/dev/null; }; then
    log "installing rspamd, spamassassin, spamd and spamc (Debian packages)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        rspamd spamassassin spamd spamc >/dev/null || die "cannot install rspamd/spamassassin"
fi

bench_lock 7200

WORK=$(mktemp -d /tmp/hato-spam-bench.XXXXXX)
RSPAMD_PID=""
SPAMD_PID=""
cleanup() {
    local rc=$?
    set +e
    stop_pid "$RSPAMD_PID" rspamd
    stop_pid "$SPAMD_PID" spamd
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The file lists: all, and the test split (MD5 in the name starting c-f), with labels.
: >"$WORK/all"
for label in ham spam; do
    find "$CORPUS/$label" -type f -name '*.eml' | sort | sed "s/^/$label /" >>"$WORK/all"
done
awk '{n = split($2, p, "."); md5 = p[n - 1]; if (md5 ~ /^[c-f]/) print}' "$WORK/all" >"$WORK/test"
N=$(wc -l <"$WORK/all")
NT=$(wc -l <"$WORK/test")
[ "$N" -gt 0 ] || die "no .eml files under $CORPUS"
# Every file without its mbox `From ` line (what a daemon would be given over SMTP).
mkdir -p "$WORK/msgs"
i=0
while read -r label f; do
    i=$((i + 1))
    sed '1{/^From /d}' "$f" >"$WORK/msgs/$(printf '%05d' "$i").$label.$(basename "$f")"
done <"$WORK/all"
ls "$WORK/msgs" | sed "s|^|$WORK/msgs/|" >"$WORK/files"
grep -E '\.[c-f][0-9a-f]{31}\.eml$' "$WORK/files" >"$WORK/files.test" || true

echo "spam benchmark: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "corpus: $N messages under $CORPUS ($NT in the test split)"

# ---------------------------------------------------------------- a. accuracy (test split)
if part a; then
    echo
    echo "== a. hato spam eval on the test split (shipped model; never trained or tuned on) =="
    for mode in offline online; do
        flag=""
        [ "$mode" = online ] && flag="--online"
        "$HATO" spam eval --ham "$CORPUS/ham" --spam "$CORPUS/spam" --split test --json $flag >"$WORK/eval.$mode"
        j=$(cat "$WORK/eval.$mode")
        echo "hato ($mode): spam recall $(pct "$(jget spam_recall <<<"$j")") ($(jget spam_caught <<<"$j") of $(jget spam <<<"$j")), ham false positives $(pct "$(jget ham_false_positive_rate <<<"$j")") ($(jget ham_false_positives <<<"$j") of $(jget ham <<<"$j")), ROC AUC $(awk -v a="$(jget auc <<<"$j")" 'BEGIN {printf "%.5f", a}') (target: recall >= 97 % at FP <= 0.3 %)"
    done
fi

# ---------------------------------------------------------------- b. scan rate
if part b; then
    echo
    echo "== b. scan rate over all $N messages ($RUNS runs; rspamc/spamc $PARALLEL at once) =="
    TCK=$(getconf CLK_TCK)
    # CPU ticks (utime + stime) of a process and its live children.
    ticks() {
        local total=0 p
        for p in $(pgrep -P "$1" 2>/dev/null) "$1"; do
            [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
        done
        echo "$total"
    }
    read -r RPORT RCPORT SPORT DEADPORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
    # --- Rspamd: a private configuration, no network.
    mkdir -p "$WORK/rspamd/local.d" "$WORK/rspamd/run" "$RSPAMD_DB"
    cat >"$WORK/rspamd/local.d/options.inc" <<CONF
dns { nameserver = ["127.0.0.1:$DEADPORT"]; timeout = 0.1s; retransmits = 0; }
CONF
    cat >"$WORK/rspamd/local.d/worker-normal.inc" <<CONF
bind_socket = "127.0.0.1:$RPORT";
count = $PARALLEL;
CONF
    cat >"$WORK/rspamd/local.d/worker-controller.inc" <<CONF
bind_socket = "127.0.0.1:$RCPORT";
CONF
    echo 'enabled = false;' >"$WORK/rspamd/local.d/worker-proxy.inc"
    echo 'enabled = false;' >"$WORK/rspamd/local.d/worker-fuzzy.inc"
    for m in rbl surbl fuzzy_check dcc asn phishing url_reputation url_redirector mx_check \
        greylist ratelimit neural replies spamtrap reputation dmarc_report clickhouse elastic \
        metadata_exporter external_services emails multimap history_redis; do
        echo 'enabled = false;' >"$WORK/rspamd/local.d/$m.conf"
    done
    # No Redis: statistics (Bayes) off.
    echo 'backend = "none"; enabled = false;' >"$WORK/rspamd/local.d/classifier-bayes.conf"
    cat >"$WORK/rspamd/local.d/logging.inc" <<CONF
type = "file"; filename = "$WORK/rspamd/rspamd.log"; level = "error";
CONF
    log "starting rspamd on 127.0.0.1:$RPORT"
    rspamd -f -i -u root -g root -c /etc/rspamd/rspamd.conf \
        --var="LOCAL_CONFDIR=$WORK/rspamd" --var="DBDIR=$RSPAMD_DB" \
        --var="RUNDIR=$WORK/rspamd/run" --var="LOGDIR=$WORK/rspamd" \
        >"$WORK/rspamd.out" 2>&1 9>&- &
    RSPAMD_PID=$!
    deadline=$((SECONDS + 900))
    until rspamc -h "127.0.0.1:$RPORT" -t 5 </dev/null >/dev/null 2>&1; do
        kill -0 "$RSPAMD_PID" 2>/dev/null || { cat "$WORK/rspamd.out" "$WORK/rspamd/rspamd.log" >&2 2>/dev/null; die "rspamd exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "rspamd did not answer within 900 s"
        sleep 0.5
    done

    # --- SpamAssassin's spamd: --local (no network tests), no Bayes, no user configuration.
    log "starting spamd on 127.0.0.1:$SPORT"
    # Debian's site configuration (its plugin .pre files), plus: no Bayes, no network tests.
    cp -r /etc/spamassassin "$WORK/sa"
    # spamd's children run as nobody: they must reach the configuration.
    chmod 711 "$WORK"; chmod -R a+rX "$WORK/sa"
    printf '\nuse_bayes 0\nbayes_auto_learn 0\nskip_rbl_checks 1\nuse_razor2 0\nuse_pyzor 0\nuse_dcc 0\ndns_available no\ndns_server 127.0.0.1:%s\n' "$DEADPORT" >>"$WORK/sa/local.cf"
    spamd --local --nouser-config --listen "127.0.0.1:$SPORT" --allowed-ips 127.0.0.1 \
        --max-children "$PARALLEL" --min-children "$PARALLEL" --min-spare 1 --max-spare "$PARALLEL" \
        --siteconfigpath "$WORK/sa" --pidfile "$WORK/sa/spamd.pid" \
        >"$WORK/spamd.out" 2>&1 9>&- &
    SPAMD_PID=$!
    deadline=$((SECONDS + 180))
    until printf 'Subject: x\n\nx\n' | spamc -d 127.0.0.1 -p "$SPORT" -c -x >/dev/null 2>&1 || [ $? = 1 ]; do
        kill -0 "$SPAMD_PID" 2>/dev/null || { cat "$WORK/spamd.out" >&2; die "spamd exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "spamd did not answer within 180 s"
        sleep 1
    done

    SA_FILES=$WORK/files
    if [ "$SA_LIMIT" -gt 0 ]; then
        awk -v n="$SA_LIMIT" 'NR % n == 1' "$WORK/files" >"$WORK/files.sa"
        SA_FILES=$WORK/files.sa
    fi
    NSA=$(wc -l <"$SA_FILES")
    # Warm the page cache.
    xargs -d '\n' cat <"$WORK/files" >/dev/null

    : >"$WORK/hato.rates"; : >"$WORK/rspamd.rates"; : >"$WORK/spamd.rates"
    : >"$WORK/hato.wall"; : >"$WORK/rspamd.wall"; : >"$WORK/spamd.wall"
    for run in $(seq 1 "$RUNS"); do
        # hato: one thread; its own figure is extract + score per wall second of that thread.
        "$HATO" spam eval --ham "$CORPUS/ham" --spam "$CORPUS/spam" --split all --json >"$WORK/hato.run"
        rate=$(jget messages_per_cpu_second <"$WORK/hato.run" | awk '{printf "%.0f", $1}')
        rw=$(jget messages_per_second <"$WORK/hato.run" | awk '{printf "%.0f", $1}')
        echo "hato   run $run: messages $N msgs_per_cpu_s $rate msgs_per_wall_s $rw (one thread)"
        echo "$rate" >>"$WORK/hato.rates"; echo "$rw" >>"$WORK/hato.wall"

        t0=$(ticks "$RSPAMD_PID"); w0=$(date +%s.%N)
        xargs -d '\n' -n 200 -P "$PARALLEL" rspamc -h "127.0.0.1:$RPORT" -t 60 <"$WORK/files" >"$WORK/rspamd.run" 2>&1 || true
        w1=$(date +%s.%N); t1=$(ticks "$RSPAMD_PID")
        cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.3f", (b - a) / t}')
        wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.3f", b - a}')
        done_n=$(grep -c '^Action:' "$WORK/rspamd.run" || true)
        r=$(awk -v n="$done_n" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
        rw=$(awk -v n="$done_n" -v c="$wall" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
        echo "rspamd run $run: messages $done_n cpu_s $cpu msgs_per_cpu_s $r wall_s $wall msgs_per_wall_s $rw"
        echo "$r" >>"$WORK/rspamd.rates"; echo "$rw" >>"$WORK/rspamd.wall"
        cp "$WORK/rspamd.run" "$WORK/rspamd.last"

        t0=$(ticks "$SPAMD_PID"); w0=$(date +%s.%N)
        xargs -d '\n' -P "$PARALLEL" -I{} sh -c 'printf "%s " "$1"; spamc -d 127.0.0.1 -p "$2" -c -x <"$1"; echo' _ {} "$SPORT" <"$SA_FILES" >"$WORK/spamd.run" 2>&1 || true
        w1=$(date +%s.%N); t1=$(ticks "$SPAMD_PID")
        cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.3f", (b - a) / t}')
        wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.3f", b - a}')
        done_n=$(grep -cE ' [-0-9.]+/[0-9.]+$' "$WORK/spamd.run" || true)
        r=$(awk -v n="$done_n" -v c="$cpu" 'BEGIN {printf "%.1f", (c > 0) ? n / c : 0}')
        rw=$(awk -v n="$done_n" -v c="$wall" 'BEGIN {printf "%.1f", (c > 0) ? n / c : 0}')
        echo "spamd  run $run: messages $done_n of $NSA cpu_s $cpu msgs_per_cpu_s $r wall_s $wall msgs_per_wall_s $rw"
        echo "$r" >>"$WORK/spamd.rates"; echo "$rw" >>"$WORK/spamd.wall"
        cp "$WORK/spamd.run" "$WORK/spamd.last"
    done
    H=$(median <"$WORK/hato.rates"); HW=$(median <"$WORK/hato.wall")
    R=$(median <"$WORK/rspamd.rates"); S=$(median <"$WORK/spamd.rates")
    RW=$(median <"$WORK/rspamd.wall"); SW=$(median <"$WORK/spamd.wall")
    echo
    echo "median messages per CPU-second: hato $H, rspamd $R, spamassassin $S"
    echo "median messages per wall second: hato $HW (one thread), rspamd $RW, spamassassin $SW ($PARALLEL at once)"
    echo "ratio hato/rspamd: $(awk -v a="$H" -v b="$R" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')x per CPU-second, $(awk -v a="$HW" -v b="$RW" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')x per wall second with one thread against $PARALLEL (target >= 5x); hato/spamassassin: $(awk -v a="$H" -v b="$S" 'BEGIN {printf "%.0f", (b > 0) ? a / b : 0}')x per CPU-second"

    # Their accuracy on the same test split (from the last run's answers).
    echo
    echo "== accuracy of the others on the same test split ($NT messages) =="
    python3 - "$WORK/rspamd.last" "$WORK/spamd.last" "$WORK/files.test" <<'PY'
import re, sys
rsp, sa, test = sys.argv[1:4]
test = set(l.strip() for l in open(test))
def label(path):
    return "spam" if ".spam." in path.rsplit("/", 1)[-1] else "ham"
# rspamc prints "Results for file: PATH (...)" then "Action: ACTION".
res, cur = {}, None
for line in open(rsp, errors="replace"):
    m = re.match(r"Results for file: (\S+)", line)
    if m:
        cur = m.group(1)
    elif line.startswith("Action:") and cur:
        res[cur] = line.split(":", 1)[1].strip()
        cur = None
sares = {}
for line in open(sa, errors="replace"):
    m = re.match(r"(\S+) ([-0-9.]+)/([0-9.]+)$", line.strip())
    if m:
        sares[m.group(1)] = float(m.group(2)) >= float(m.group(3))
def report(name, caught):
    spam = [p for p in test if label(p) == "spam" and p in caught]
    ham = [p for p in test if label(p) == "ham" and p in caught]
    tp = sum(1 for p in spam if caught[p]); fp = sum(1 for p in ham if caught[p])
    if not spam or not ham:
        print(f"{name}: no answers for the test split"); return
    print(f"{name}: spam recall {100*tp/len(spam):.2f} % ({tp} of {len(spam)}), ham false positives {100*fp/len(ham):.2f} % ({fp} of {len(ham)})")
report("rspamd (no Bayes, no network)", {p: a not in ("no action", "greylist") for p, a in res.items()})
report("spamassassin (--local, no Bayes)", sares)
PY
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
