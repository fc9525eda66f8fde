#!/usr/bin/env bash
# bench/spam.sh — the spam classifier's accuracy and speed, beside Rspamd and SpamAssassin, and
# the whole SMTP path with the spam filter on, beside Postfix with Rspamd's milter.
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
#   c. SMTP end to end with the whole protection pipeline on, three servers in one run, each
#      on free loopback ports with its data in the temp dir, fed the same way:
#      - hato (full): a release `hato serve` with its defaults `[content] pipeline = true` (the
#        malware filter's built-in engine, transport rules: none here) and `[spam] enabled =
#        true` (sender authentication: SPF, DKIM, DMARC, ARC; the classifier; the tenant's
#        Default anti-spam policy: spam to Junk); one tenant, accepted domain bench.test,
#        mailbox user@bench.test; throttle and reverse DNS off (one client IP sends everything);
#        DNS: bench/spam_helper.py's resolver on loopback, which answers every query at once
#        with REFUSED (sender authentication gets a temporary error and nothing leaves the
#        machine; Rspamd asks it too). Not a closed port as in b: hickory's UDP socket is not
#        connected, never sees the ICMP port-unreachable, and waits dns.timeout_ms per lookup
#        (12 messages per second instead of ~500 in a trial). Failures are not cached, so
#        every message asks again (about 5 queries each: SPF, the DMARC tree walk, DKIM keys);
#      - hato (spam filter off): the same with `[spam] enabled = false`, to show what the spam
#        stage costs;
#      - Postfix + Rspamd: a private Postfix instance (Debian `postfix`, as bench/inbound.sh
#        sets it up: queue files fsynced before the 250, as hato's; delivery to a virtual
#        Maildir for user@bench.test) with `smtpd_milters` = Rspamd's proxy worker in milter
#        mode (Debian's worker-proxy.inc: `milter = yes`, upstream the normal workers, PARALLEL
#        of them; Postfix's default milter_default_action = tempfail), Rspamd configured as in
#        b (no network, the same modules off, no Bayes). Every client is 127.0.0.1, which
#        Rspamd counts as local and runs fewer rules for: it catches less spam here than in b
#        (in a trial, `rspamc --ip 127.0.0.1` caught 79 of the first 200 test-split spam,
#        `rspamc` without an IP, as in b, 95), and may spend less CPU than on outside mail.
#      bench/content_helper.py sends every corpus file (or LIMIT of them, spread over the list)
#      to user@bench.test over SESSIONS concurrent sessions of up to 100 messages each; WARMUP
#      messages first, untimed; RUNS rounds, the order of the three reversed every round. Per
#      run: messages per second (wall, until the last reply to the data), messages per
#      CPU-second of the server until then (hato: its process; Postfix + Rspamd: Postfix's
#      master, Rspamd's main process and all their children, the ones that exited too), and
#      per CPU-second of the server until it had also delivered everything it accepted (the
#      script waits for that after every run, so no run competes with the last one's backlog).
#      Then where the messages went (bench/spam_helper.py follows each file by the trace id or
#      queue id of its 250): per label, inbox, Junk (Postfix: delivered with Rspamd's
#      `X-Spam: Yes`), quarantined, refused (Rspamd's `reject` is a 554 after the data), for all
#      files and for the test split (the shipped model was trained on the rest). Medians, and
#      the ratios hato (full) / Postfix + Rspamd and hato (full) / hato (spam filter off).
#      No target: figures are reported as they are.
#   The machine may be shared: the load average before and after is printed, and in c the share
#   of the CPU other work (not this script, its children and the servers) used in each timed
#   run. Runs of this script and the other benchmarks wait for each other (flock on
#   /tmp/hato-inbound-bench.lock).
#
# How to run:   bash bench/spam.sh        (part c as root: a private Postfix instance needs it)
#   Environment: CORPUS=dir (with ham/ and spam/)  RUNS=3  PARALLEL=2  PARTS="a b c"
#                HATO=path/to/hato (default: the release build of this checkout, built here)
#                SA_LIMIT=0   only every Nth file for SpamAssassin's timing (0: all; it runs at
#                             about 20 messages per second)
#                RSPAMD_DB=/var/tmp/hato-spam-bench-rspamd-db  Rspamd's database directory, kept
#                             between runs: it caches the compiled Hyperscan databases (the first
#                             start compiles them, minutes on a busy machine)
#                LIMIT=0      part c: only LIMIT files, spread evenly over the corpus (0: all)
#                SESSIONS=20  part c: concurrent SMTP sessions
#                WARMUP=200   part c: messages sent to each server before the timed runs
#                DRAIN_TIMEOUT=600  part c: seconds to wait for a server's deliveries after a run
#                KEEP_TMP=1   keep the temp dir (configs, logs)
#   Exit status is 0 unless something failed to run; figures beyond target are only reported.
#   Installs rspamd, spamassassin, spamd, spamc and postfix with apt-get if missing (root or
#   sudo).
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${CORPUS:-$ROOT/../shared/corpus/spamassassin}
RUNS=${RUNS:-3}
PARALLEL=${PARALLEL:-2}
PARTS=${PARTS:-a b c}
SA_LIMIT=${SA_LIMIT:-0}
LIMIT=${LIMIT:-0}
SESSIONS=${SESSIONS:-20}
WARMUP=${WARMUP:-200}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
RSPAMD_DB=${RSPAMD_DB:-/var/tmp/hato-spam-bench-rspamd-db}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HATO=${HATO:-$TARGET_DIR/release/hato}

# log, die, bench_lock, ensure_postfix, postfix_services, postfix_stop, stop_pid
. "$ROOT/bench/lib.sh"
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
pct() { awk -v x="$1" 'BEGIN {printf "%.2f %%", x * 100}'; }

[ -d "$CORPUS/ham" ] && [ -d "$CORPUS/spam" ] || die "no ham/ and spam/ under $CORPUS"
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a number of at least 1" ;; esac
case $PARALLEL in '' | *[!0-9]* | 0) die "PARALLEL must be a number of at least 1" ;; esac
case $SA_LIMIT in '' | *[!0-9]*) die "SA_LIMIT must be a number (0: all)" ;; esac
case $LIMIT in '' | *[!0-9]*) die "LIMIT must be a number (0: all)" ;; esac
case $SESSIONS in '' | *[!0-9]* | 0) die "SESSIONS must be a number of at least 1" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a number (0: none)" ;; esac
case $DRAIN_TIMEOUT in '' | *[!0-9]* | 0) die "DRAIN_TIMEOUT must be a number of seconds" ;; esac
if part c && [ "$(id -u)" != 0 ]; then die "part c needs root (a private Postfix instance starts as root)"; fi

if [ "$HATO" = "$TARGET_DIR/release/hato" ]; then
    log "building hato (cargo build --release -p hato --bin hato)"
    (cd "$ROOT" && cargo build --release -q -p hato --bin hato) || die "cargo build failed"
fi
[ -x "$HATO" ] || die "no hato binary at $HATO"

# The Debian packages the chosen parts need and this machine lacks (rspamc comes with rspamd).
PKGS=()
if { part b || part c; } && { ! command -v rspamd >/dev/null || ! command -v rspamc >/dev/null; }; then
    PKGS+=(rspamd)
fi
if part b && { ! command -v spamd >/dev/null || ! command -v spamc >/dev/null; }; then
    PKGS+=(spamassassin spamd spamc)
fi
if [ ${#PKGS[@]} -gt 0 ]; then
    log "installing ${PKGS[*]} (Debian packages)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${PKGS[@]}" >/dev/null || die "cannot install ${PKGS[*]}"
fi
if part c; then ensure_postfix; fi

bench_lock 7200

WORK=$(mktemp -d /tmp/hato-spam-bench.XXXXXX)
RSPAMD_PID=""
SPAMD_PID=""
HATO_FULL_PID=""
HATO_NOSPAM_PID=""
PF_STARTED=""
DNS_PID=""
cleanup() {
    local rc=$?
    set +e
    stop_pid "$RSPAMD_PID" rspamd
    stop_pid "$SPAMD_PID" spamd
    stop_pid "$HATO_FULL_PID" "hato (full)"
    stop_pid "$HATO_NOSPAM_PID" "hato (spam filter off)"
    [ -n "$PF_STARTED" ] && postfix_stop "$PF_ETC" "$PF_SPOOL"
    stop_pid "$DNS_PID" "the DNS responder"
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

# Rspamd's private configuration in DIR/local.d, as parts b and c run it: its DNS resolver a
# closed loopback port, every module that would fetch or ask something off, no statistics
# (Bayes needs Redis), the fuzzy worker off. The caller adds the normal, controller and proxy
# workers' files.
rspamd_config() {
    local dir=$1 deadport=$2 m
    mkdir -p "$dir/local.d" "$dir/run" "$RSPAMD_DB"
    cat >"$dir/local.d/options.inc" <<CONF
dns { nameserver = ["127.0.0.1:$deadport"]; timeout = 0.1s; retransmits = 0; }
CONF
    echo 'enabled = false;' >"$dir/local.d/worker-fuzzy.inc"
    for m in rbl surbl fuzzy_check dcc asn phishing url_reputation url_redirector mx_check \
        greylist ratelimit neural replies spamtrap reputation dmarc_report clickhouse elastic \
        metadata_exporter external_services emails multimap history_redis; do
        echo 'enabled = false;' >"$dir/local.d/$m.conf"
    done
    echo 'backend = "none"; enabled = false;' >"$dir/local.d/classifier-bayes.conf"
    cat >"$dir/local.d/logging.inc" <<CONF
type = "file"; filename = "$dir/rspamd.log"; level = "error";
CONF
}

# start_rspamd DIR PORT: Rspamd on DIR's configuration (its pid in RSPAMD_PID), waiting until
# its normal worker on 127.0.0.1:PORT answers rspamc (the first start compiles the Hyperscan
# databases into RSPAMD_DB: minutes).
start_rspamd() {
    local dir=$1 port=$2 deadline
    log "starting rspamd on 127.0.0.1:$port"
    rspamd -f -i -u root -g root -c /etc/rspamd/rspamd.conf \
        --var="LOCAL_CONFDIR=$dir" --var="DBDIR=$RSPAMD_DB" \
        --var="RUNDIR=$dir/run" --var="LOGDIR=$dir" \
        >"$dir/rspamd.out" 2>&1 9>&- &
    RSPAMD_PID=$!
    deadline=$((SECONDS + 900))
    until rspamc -h "127.0.0.1:$port" -t 5 </dev/null >/dev/null 2>&1; do
        kill -0 "$RSPAMD_PID" 2>/dev/null || { cat "$dir/rspamd.out" "$dir/rspamd.log" >&2 2>/dev/null; die "rspamd exited"; }
        [ "$SECONDS" -lt "$deadline" ] || die "rspamd did not answer within 900 s"
        sleep 0.5
    done
}

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
    # --- Rspamd: a private configuration, no network; normal workers only.
    rspamd_config "$WORK/rspamd" "$DEADPORT"
    cat >"$WORK/rspamd/local.d/worker-normal.inc" <<CONF
bind_socket = "127.0.0.1:$RPORT";
count = $PARALLEL;
CONF
    cat >"$WORK/rspamd/local.d/worker-controller.inc" <<CONF
bind_socket = "127.0.0.1:$RCPORT";
CONF
    echo 'enabled = false;' >"$WORK/rspamd/local.d/worker-proxy.inc"
    start_rspamd "$WORK/rspamd" "$RPORT"

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
    # Done with them: idle, they would only hold memory (and Rspamd's ports) through part c.
    stop_pid "$RSPAMD_PID" rspamd
    stop_pid "$SPAMD_PID" spamd
    RSPAMD_PID=""
    SPAMD_PID=""
fi

# ---------------------------------------------------------------- c. SMTP end to end
if part c; then
    HELPER=(python3 "$ROOT/bench/inbound_helper.py")
    CLIENT=(python3 "$ROOT/bench/content_helper.py")
    OUTCOME=(python3 "$ROOT/bench/spam_helper.py")
    field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
    TCK=$(getconf CLK_TCK)
    FILES_C=$WORK/files
    if [ "$LIMIT" -gt 0 ] && [ "$LIMIT" -lt "$N" ]; then
        # LIMIT files spread evenly over the sorted list, so both labels and every subset stay.
        awk -v n="$LIMIT" -v t="$N" 'int(NR * n / t) != int((NR - 1) * n / t)' "$WORK/files" >"$WORK/files.c"
        FILES_C=$WORK/files.c
    fi
    NC=$(wc -l <"$FILES_C")
    echo
    echo "== c. SMTP end to end: hato (whole pipeline; spam filter off) and Postfix + Rspamd's milter ($NC messages, $SESSIONS sessions, $RUNS rounds) =="
    read -r SMTP_FULL ADMIN_FULL SMTP_NOSPAM ADMIN_NOSPAM PF_PORT MPORT RPORT_C RCPORT_C DNS_PORT \
        <<<"$("${HELPER[@]}" freeport 9)"
    # The temp dir is root's: Postfix's virtual(8) (as nobody) must reach the Maildir below it.
    chmod 711 "$WORK"

    # --- hato: "full" (the defaults: pipeline and spam filter on) and "nospam" ([spam] off).
    declare -A SMTP_PORT=([full]=$SMTP_FULL [nospam]=$SMTP_NOSPAM)
    declare -A ADMIN_PORT=([full]=$ADMIN_FULL [nospam]=$ADMIN_NOSPAM)
    hatoctl() { local side=$1; shift; "$HATO" --config "$WORK/hato-$side/hato.toml" "$@"; }
    start_hato() {
        local side=$1 dir=$WORK/hato-$1 spam=true pid
        [ "$side" = nospam ] && spam=false
        mkdir -p "$dir"
        cat >"$dir/hato.toml" <<EOF
# bench/spam.sh part c: hato with the content pipeline on, the spam filter $([ "$spam" = true ] && echo on || echo off)
[server]
hostname = "bench-hato-$side.localdomain"
data_dir = "$dir/data"

[smtp]
listen = ["127.0.0.1:${SMTP_PORT[$side]}"]
# every session comes from 127.0.0.1
max_connections_per_ip = 1000

[admin]
listen = "127.0.0.1:${ADMIN_PORT[$side]}"

# One client IP sends everything: the throttle would slow it (bench/edge.sh measures the edge).
[throttle]
enabled = false

[edge]
reverse_dns = false

# Nothing leaves the machine: SPF, DKIM, DMARC and ARC ask the script's resolver, which refuses
# every query at once (a temporary error), as Rspamd's lookups are.
[dns]
servers = ["127.0.0.1:$DNS_PORT"]
timeout_ms = 500

# No submission listener: its default port (127.0.0.1:2587) is one, and two servers run here.
[submission]
listen = []

[content]
pipeline = true

[spam]
enabled = $spam
EOF
        "$HATO" serve --config "$dir/hato.toml" >"$dir/serve.log" 2>&1 9>&- &
        pid=$!
        if [ "$side" = full ]; then HATO_FULL_PID=$pid; else HATO_NOSPAM_PID=$pid; fi
        if ! "${HELPER[@]}" wait-banner "${SMTP_PORT[$side]}" 60 >/dev/null || ! "${HELPER[@]}" wait-port "${ADMIN_PORT[$side]}" 30; then
            tail -20 "$dir/serve.log" >&2
            die "hato ($side) does not answer (SMTP ${SMTP_PORT[$side]}, admin ${ADMIN_PORT[$side]})"
        fi
        {
            hatoctl "$side" tenant add bench
            hatoctl "$side" domain add bench.test --tenant bench
            hatoctl "$side" mailbox add user@bench.test --quota-mb 1000000
        } >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; die "setting up hato ($side) failed"; }
        log "hato ($side): pid $pid, SMTP 127.0.0.1:${SMTP_PORT[$side]}, admin 127.0.0.1:${ADMIN_PORT[$side]}, [spam] enabled = $spam"
    }

    # --- DNS for all three: a resolver on loopback that refuses every query at once, so sender
    # authentication fails fast (a temporary error) and nothing leaves the machine. Not a closed
    # port as in b: hato's resolver (hickory) does not connect its UDP socket, so it never sees
    # the ICMP port-unreachable and would wait dns.timeout_ms for every lookup.
    "${OUTCOME[@]}" dns-refuse "$DNS_PORT" >"$WORK/dns.log" 2>&1 9>&- &
    DNS_PID=$!
    "${HELPER[@]}" wait-port "$DNS_PORT" 10 || { cat "$WORK/dns.log" >&2; die "the DNS responder did not start"; }

    # --- Rspamd: as in b, plus its proxy worker in milter mode in front of the normal workers.
    rspamd_config "$WORK/rspamd-c" "$DNS_PORT"
    cat >"$WORK/rspamd-c/local.d/worker-normal.inc" <<CONF
bind_socket = "127.0.0.1:$RPORT_C";
count = $PARALLEL;
CONF
    cat >"$WORK/rspamd-c/local.d/worker-controller.inc" <<CONF
bind_socket = "127.0.0.1:$RCPORT_C";
CONF
    # Debian's worker-proxy.inc already says milter = yes, timeout = 120s, count = 1,
    # spam_header = "X-Spam", reject_message; only where it listens and its upstream (the
    # normal workers above, not localhost:11333) change.
    mkdir -p "$WORK/rspamd-c/override.d"
    cat >"$WORK/rspamd-c/override.d/worker-proxy.inc" <<CONF
bind_socket = "127.0.0.1:$MPORT";
milter = yes;
upstream "local" {
  default = yes;
  hosts = "127.0.0.1:$RPORT_C";
}
CONF

    # --- Postfix: a private instance as bench/inbound.sh's, with Rspamd's milter.
    PF=$WORK/postfix
    PF_ETC=$PF/etc
    PF_SPOOL=$PF/spool
    PF_MAIL=$PF/mail
    PF_MAILDIR=$PF_MAIL/bench.test/user
    start_postfix() {
        local vuid vgid banner
        vuid=$(id -u nobody); vgid=$(id -g nobody)
        mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF/data" "$PF_MAIL"
        chown "$vuid:$vgid" "$PF_MAIL"
        chown postfix "$PF/data"
        printf 'user@bench.test bench.test/user/\n' >"$PF_ETC/vmailbox"
        cat >"$PF_ETC/main.cf" <<EOF
# private Postfix instance for bench/spam.sh part c (Postfix defaults unless noted)
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $PF

myhostname = bench-postfix.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no

# no network lookups
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled

# accept user@bench.test from anyone, relay for nobody else
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =

# Rspamd's proxy worker in milter mode sees every message before the 250 (its reject is a 5xx
# to the data). If it does not answer, the message is deferred (Postfix's default
# milter_default_action = tempfail), never passed unscanned, as hato defers.
smtpd_milters = inet:127.0.0.1:$MPORT
milter_default_action = tempfail
milter_protocol = 6

# delivery: virtual Maildir
virtual_mailbox_domains = bench.test
virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
virtual_mailbox_base = $PF_MAIL
virtual_uid_maps = static:$vuid
virtual_gid_maps = static:$vgid
virtual_mailbox_limit = 0
EOF
        cat >"$PF_ETC/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n       -       n       -       -       smtpd
EOF
        postfix_services >>"$PF_ETC/master.cf"
        postfix -c "$PF_ETC" check || die "postfix check failed (see above)"
        postfix -c "$PF_ETC" start >/dev/null 2>&1 9>&- || { cat "$PF/maillog" >&2 2>/dev/null; die "postfix start failed"; }
        PF_STARTED=1
        banner=$("${HELPER[@]}" wait-banner "$PF_PORT" 30) \
            || { tail -20 "$PF/maillog" >&2; die "postfix does not answer on $PF_PORT"; }
        case $banner in *bench-postfix.localdomain*) ;; *) die "unexpected banner on $PF_PORT: $banner" ;; esac
        log "postfix: private instance on 127.0.0.1:$PF_PORT ($(postconf -h mail_version)), milter 127.0.0.1:$MPORT"
    }
    pf_master() { tr -d ' ' <"$PF_SPOOL/pid/master.pid" 2>/dev/null; }
    pf_delivered() { find "$PF_MAILDIR/new" "$PF_MAILDIR/cur" -type f 2>/dev/null | wc -l; }
    pf_queued() {
        find "$PF_SPOOL/maildrop" "$PF_SPOOL/incoming" "$PF_SPOOL/active" "$PF_SPOOL/deferred" \
            "$PF_SPOOL/hold" -type f 2>/dev/null | wc -l
    }

    start_hato full
    start_hato nospam
    start_rspamd "$WORK/rspamd-c" "$RPORT_C"
    "${HELPER[@]}" wait-port "$MPORT" 60 || { cat "$WORK/rspamd-c/rspamd.log" >&2 2>/dev/null; die "rspamd's proxy does not listen on $MPORT"; }
    start_postfix

    SIDES=(full nospam postfix)
    declare -A NAME=([full]="hato (full)" [nospam]="hato (spam off)" [postfix]="postfix+rspamd")
    # The processes whose CPU is the server's: hato's; Postfix's master and Rspamd's main
    # process, with their children (content_helper.py and cpu-snap add the descendants).
    server_pids() {
        case $1 in
            full) echo "$HATO_FULL_PID" ;;
            nospam) echo "$HATO_NOSPAM_PID" ;;
            postfix) echo "$(pf_master) $RSPAMD_PID" ;;
        esac
    }
    # The benchmark's own processes (this script and its children, the servers); the rest of
    # the machine is "other work".
    our_pids() { echo $$ "$HATO_FULL_PID" "$HATO_NOSPAM_PID" "$(pf_master)" "$RSPAMD_PID"; }

    # wait_delivered SIDE ACCEPTED: until the side has delivered what it accepted (hato: no
    # Pending trace row; Postfix: an empty queue and ACCEPTED files in the Maildir, which is
    # emptied after every run), or DRAIN_TIMEOUT.
    wait_delivered() {
        local side=$1 accepted=$2 deadline=$((SECONDS + DRAIN_TIMEOUT)) state pid
        while :; do
            case $side in
                full | nospam)
                    hatoctl "$side" trace --status Pending --page-size 1 --json >"$WORK/pending.json" 2>"$WORK/pending.err" \
                        || { cat "$WORK/pending.err" >&2; die "hato trace --status Pending failed ($side)"; }
                    state="$("${HELPER[@]}" count-json "$WORK/pending.json")"
                    [ "$state" = 0 ] && return 0
                    state="some still Pending"
                    pid=$(server_pids "$side")
                    kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/hato-$side/serve.log" >&2; die "hato ($side) exited"; }
                    ;;
                postfix)
                    [ "$(pf_queued)" = 0 ] && [ "$(pf_delivered)" -ge "$accepted" ] && return 0
                    state="$(pf_delivered) of $accepted delivered, $(pf_queued) queued"
                    ;;
            esac
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "WARNING: ${NAME[$side]} not drained within ${DRAIN_TIMEOUT}s: $state"
                return 1
            fi
            sleep 0.2
        done
    }

    send_to() {
        local side=$1 files=$2 replies=$3 port pids
        if [ "$side" = postfix ]; then port=$PF_PORT; else port=${SMTP_PORT[$side]}; fi
        pids=$(server_pids "$side" | tr ' ' ',')
        "${CLIENT[@]}" send "$port" "$pids" "$SESSIONS" "$files" --replies "$replies"
    }

    declare -A WALL=() CPU=() CPUD=()
    for side in "${SIDES[@]}"; do WALL[$side]=""; CPU[$side]=""; CPUD[$side]=""; done
    OTHERS=""
    run_once() {
        local side=$1 i=$2 snap0 srv0 snap1 srv1 others out accepted cpud rated t0 t1
        snap0=$("${HELPER[@]}" cpu-snap $(our_pids))
        srv0=$("${HELPER[@]}" cpu-snap $(server_pids "$side"))
        t0=$(date +%s.%N)
        out=$(send_to "$side" "$FILES_C" "$WORK/replies.$side") \
            || { echo "$out" >&2; die "sending to ${NAME[$side]} failed"; }
        snap1=$("${HELPER[@]}" cpu-snap $(our_pids))
        others=$("${HELPER[@]}" cpu-others "$snap0" "$snap1")
        OTHERS="$OTHERS $others"
        accepted=$(field accepted <<<"$out")
        wait_delivered "$side" "$accepted" || true
        srv1=$("${HELPER[@]}" cpu-snap $(server_pids "$side"))
        t1=$(date +%s.%N)
        # The server's CPU from the first connection until everything accepted was delivered.
        cpud=$(awk -v a="$srv0" -v b="$srv1" -v t="$TCK" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.2f", (y[3] - x[3]) / t}')
        rated=$(awk -v n="$NC" -v c="$cpud" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
        printf 'run %s %-16s %s; delivered after %.1f s: cpu_s %s msgs_per_cpu_s %s (other work: %s%% of the CPU)\n' \
            "$i" "${NAME[$side]}:" "$out" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$cpud" "$rated" "$others"
        WALL[$side]="${WALL[$side]} $(field msgs_per_s <<<"$out")"
        CPU[$side]="${CPU[$side]} $(field msgs_per_cpu_s <<<"$out")"
        CPUD[$side]="${CPUD[$side]} $rated"
        # Where they went (outside the timed window).
        case $side in
            full | nospam)
                TITLE="    ${NAME[$side]} run $i, where they went" "${OUTCOME[@]}" hato "${ADMIN_PORT[$side]}" \
                    "$WORK/hato-$side/data" user@bench.test "$WORK/replies.$side" \
                    || log "WARNING: could not follow ${NAME[$side]}'s messages"
                ;;
            postfix)
                TITLE="    ${NAME[$side]} run $i, where they went (junk: delivered with X-Spam: Yes)" "${OUTCOME[@]}" postfix "$PF_MAILDIR" "$WORK/replies.$side" \
                    || log "WARNING: could not follow ${NAME[$side]}'s messages"
                # The next run counts its own deliveries.
                find "$PF_MAILDIR/new" "$PF_MAILDIR/cur" -type f -delete 2>/dev/null || true
                ;;
        esac
    }

    # Warm-up (untimed): the first messages fill caches and start Postfix's processes.
    xargs -d '\n' cat <"$FILES_C" >/dev/null
    if [ "$WARMUP" -gt 0 ]; then
        head -n "$WARMUP" "$FILES_C" >"$WORK/files.warmup"
        for side in "${SIDES[@]}"; do
            out=$(send_to "$side" "$WORK/files.warmup" "$WORK/replies.warmup") \
                || { echo "$out" >&2; die "the warm-up of ${NAME[$side]} failed"; }
            wait_delivered "$side" "$(field accepted <<<"$out")" || true
            [ "$side" = postfix ] && { find "$PF_MAILDIR/new" "$PF_MAILDIR/cur" -type f -delete 2>/dev/null || true; }
        done
        log "warm-up done ($(wc -l <"$WORK/files.warmup") messages each)"
    fi

    for i in $(seq "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then order=(full nospam postfix); else order=(postfix nospam full); fi
        for side in "${order[@]}"; do run_once "$side" "$i"; done
    done

    echo
    echo "machine: $(nproc) CPUs shared by the servers and the client; CPU used by other work during the timed runs, %:$OTHERS"
    if awk -v l="$OTHERS" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] > 10) exit 0; exit 1 }'; then
        echo "NOTE: other processes competed for the CPU during some runs; those figures are skewed"
    fi
    declare -A MW MC MD
    for side in "${SIDES[@]}"; do
        MW[$side]=$(tr ' ' '\n' <<<"${WALL[$side]}" | grep . | median)
        MC[$side]=$(tr ' ' '\n' <<<"${CPU[$side]}" | grep . | median)
        MD[$side]=$(tr ' ' '\n' <<<"${CPUD[$side]}" | grep . | median)
        printf '%-16s %s msgs/s wall (runs:%s); per server CPU-second %s until the last reply (runs:%s), %s until delivered (runs:%s)\n' \
            "${NAME[$side]}:" "${MW[$side]}" "${WALL[$side]}" "${MC[$side]}" "${CPU[$side]}" "${MD[$side]}" "${CPUD[$side]}"
    done
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
    echo "ratio hato (full) / postfix+rspamd: $(ratio "${MW[full]}" "${MW[postfix]}")x msgs/s wall, $(ratio "${MC[full]}" "${MC[postfix]}")x per server CPU-second until the last reply, $(ratio "${MD[full]}" "${MD[postfix]}")x until delivered"
    echo "ratio hato (full) / hato (spam off): $(ratio "${MW[full]}" "${MW[nospam]}")x msgs/s wall, $(ratio "${MC[full]}" "${MC[nospam]}")x per server CPU-second until the last reply, $(ratio "${MD[full]}" "${MD[nospam]}")x until delivered"
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
