#!/usr/bin/env bash
# bench/inbound.sh — inbound SMTP throughput: hato versus Postfix, same machine, same run.
#
# What it measures
#   Postfix's load generator smtp-source sends MESSAGES messages (default 10,000) of SIZE bytes
#   (default 2048) to user@bench.test over SESSIONS parallel SMTP sessions (default 20), to hato
#   and to a private Postfix instance, alternating (the order flips every round), RUNS rounds
#   (default 3), after a WARMUP-message warm-up of each. The figure is wall-clock
#   messages/second until smtp-source has had its last "250", i.e. until every message was
#   accepted (Postfix has fsynced each queue file by then; hato by its own design).
#   After every run the script waits until that run's messages are delivered to the mailbox
#   (so no run competes with the previous run's backlog) and reports the delivered totals
#   (Postfix: Maildir files; hato: `hato mail list --json`) and an end-to-end rate (until the
#   run's last message was delivered). Then it reads hato's peak RSS (VmHWM), and hato's RSS
#   with IDLE (default 1,000) concurrent SMTP sessions that have sent EHLO and stay idle.
#   The machine may be shared: for every timed run the script reports how much of the CPU
#   other processes used meanwhile; runs above 10% are flagged as skewed. Concurrent runs of
#   this script wait for each other (flock on /tmp/hato-inbound-bench.lock).
#
#   Peer (b) is a private Postfix instance (own config, queue and data directories, listening
#   on 127.0.0.1:<free port> only) delivering to a virtual Maildir domain bench.test, with
#   Postfix's default durability (queue files are fsynced before the 250). The system's own
#   Postfix, if any, is neither used nor touched. Nothing is sent anywhere but 127.0.0.1.
#
# How to run (as root: Postfix needs it):   bash bench/inbound.sh
#   Environment: MESSAGES=10000 SESSIONS=20 SIZE=2048 RUNS=3 IDLE=1000 WARMUP=200
#                SMTP_SOURCE_FLAGS=""   extra smtp-source flags, e.g. "-d" to send all of a
#                                       session's messages over one connection (default: one
#                                       connection per message, as smtp-source does by default)
#                ONLY=both|hato|postfix DRAIN_TIMEOUT=600 (seconds) KEEP_TMP=1 (keep temp dir)
#                HATO=path/to/hato      (default target/release/hato; built if missing)
#   Installs Postfix from Debian if smtp-source or postfix is missing.
#   Exit status is 0 unless something failed to run; figures below target are only reported.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=(python3 "$ROOT/bench/inbound_helper.py")

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-3}
IDLE=${IDLE:-1000}
WARMUP=${WARMUP:-200}
SMTP_SOURCE_FLAGS=${SMTP_SOURCE_FLAGS:-}
ONLY=${ONLY:-both}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
HATO=${HATO:-$ROOT/target/release/hato}
RCPT=user@bench.test
SENDER=sender@example.org

# log, die, bench_lock, ensure_postfix, postfix_services, postfix_stop, stop_pid
. "$ROOT/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs root to start)"
case $ONLY in both|hato|postfix) ;; *) die "ONLY must be both, hato or postfix" ;; esac
want() { [ "$ONLY" = both ] || [ "$ONLY" = "$1" ]; }

# ---------------------------------------------------------------- prerequisites
ensure_postfix
SMTP_SOURCE=$(command -v smtp-source)

if want hato && [ ! -x "$HATO" ]; then
    log "building hato (cargo build --release)"
    (cd "$ROOT" && cargo build --release) || die "cargo build failed"
    [ -x "$HATO" ] || die "no binary at $HATO after the build"
fi

# One run at a time on this machine: two runs at once would skew each other's figures.
bench_lock 3600

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/hato-inbound-bench.XXXXXX)
chmod 755 "$TMP"   # the virtual(8) delivery agent runs as an unprivileged uid below it
HATO_PID=
PF_STARTED=
cleanup() {
    local rc=$?
    set +e
    stop_pid "$HATO_PID" hato
    [ -n "$PF_STARTED" ] && postfix_stop "$PF_ETC" "$PF_SPOOL"
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PF_PORT HATO_PORT ADMIN_PORT <<<"$("${HELPER[@]}" freeport 3)"

# ---------------------------------------------------------------- peer (b): private Postfix
PF=$TMP/postfix
PF_ETC=$PF/etc
PF_SPOOL=$PF/spool
PF_DATA=$PF/data
PF_MAIL=$PF/mail
PF_MAILDIR=$PF_MAIL/bench.test/user
VUID=$(id -u nobody)
VGID=$(id -g nobody)

start_postfix() {
    mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF_DATA" "$PF_MAIL"
    chown "$VUID:$VGID" "$PF_MAIL"
    chown postfix "$PF_DATA"
    printf '%s bench.test/user/\n' "$RCPT" >"$PF_ETC/vmailbox"
    cat >"$PF_ETC/main.cf" <<EOF
# private Postfix instance for bench/inbound.sh (Postfix defaults unless noted)
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory = $PF_DATA
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

# delivery: virtual Maildir
virtual_mailbox_domains = bench.test
virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
virtual_mailbox_base = $PF_MAIL
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
virtual_mailbox_limit = 0
EOF
    # smtpd on 127.0.0.1:PORT only, then the internal services (lib.sh: stock, no chroot)
    cat >"$PF_ETC/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n       -       n       -       -       smtpd
EOF
    postfix_services >>"$PF_ETC/master.cf"
    postfix -c "$PF_ETC" check || die "postfix check failed (see above)"
    postfix -c "$PF_ETC" start >/dev/null 2>&1 9>&- || { cat "$PF/maillog" >&2 2>/dev/null; die "postfix start failed"; }
    PF_STARTED=1
    local banner
    banner=$("${HELPER[@]}" wait-banner "$PF_PORT" 30) \
        || { tail -20 "$PF/maillog" >&2; die "postfix does not answer on $PF_PORT"; }
    # make sure it is our instance that answers, not the system's Postfix
    case $banner in *bench-postfix.localdomain*) ;; *) die "unexpected banner on $PF_PORT: $banner" ;; esac
    log "postfix: private instance on 127.0.0.1:$PF_PORT ($(postconf -h mail_version))"
}

postfix_delivered() { find "$PF_MAILDIR/new" "$PF_MAILDIR/cur" -type f 2>/dev/null | wc -l; }
postfix_queued() {
    find "$PF_SPOOL/maildrop" "$PF_SPOOL/incoming" "$PF_SPOOL/active" "$PF_SPOOL/deferred" \
         "$PF_SPOOL/hold" -type f 2>/dev/null | wc -l
}

# ---------------------------------------------------------------- side (a): hato
H=$TMP/hato
HCFG=$H/hato.toml

hatoctl() { "$HATO" --config "$HCFG" "$@"; }

start_hato() {
    hato_serve
    hatoctl mailbox add "$RCPT" --quota-mb 1000000 >/dev/null || die "hato mailbox add failed"
    log "hato: pid $HATO_PID, SMTP 127.0.0.1:$HATO_PORT, admin 127.0.0.1:$ADMIN_PORT"
}

# Messages in the mailbox. This lists the whole mailbox through the admin API, which grows
# hato's RSS by tens of MB at 30,000 messages, so it runs only once, after the RSS figures.
hato_delivered() {
    hatoctl mail list "$RCPT" --json >"$H/list.json" 2>"$H/list.err" || { echo -1; return; }
    "${HELPER[@]}" count-json "$H/list.json"
}

# Messages accepted but not yet delivered (trace rows with status Pending): cheap once drained.
hato_pending() {
    hatoctl trace --status Pending --json >"$H/pending.json" 2>"$H/pending.err" || { echo -1; return; }
    "${HELPER[@]}" count-json "$H/pending.json"
}

# ---------------------------------------------------------------- measurement
declare -A PORT=([hato]=$HATO_PORT [postfix]=$PF_PORT)
declare -A EXPECTED=([hato]=0 [postfix]=0)
declare -A RATES=([hato]="" [postfix]="")
declare -A E2E=([hato]="" [postfix]="")

# wait_delivered SIDE: wait until the side has delivered everything it accepted (or until
# DRAIN_TIMEOUT): Postfix: queue empty and all Maildir files there; hato: no Pending trace rows.
wait_delivered() {
    local side=$1 deadline=$((SECONDS + DRAIN_TIMEOUT)) state
    while :; do
        if [ "$side" = hato ]; then
            state="$(hato_pending) pending"
            [ "${state% *}" = 0 ] && return 0
            [ "${state% *}" = -1 ] && { cat "$H/pending.err" >&2; die "hato trace --status Pending failed"; }
        else
            state="$(postfix_delivered) of ${EXPECTED[postfix]} delivered, $(postfix_queued) queued"
            [ "$(postfix_queued)" = 0 ] && [ "$(postfix_delivered)" -ge "${EXPECTED[postfix]}" ] && return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "WARNING: $side not drained within ${DRAIN_TIMEOUT}s: $state"
            return 1
        fi
        if [ "$side" = hato ] && [ -n "$HATO_PID" ] && ! kill -0 "$HATO_PID" 2>/dev/null; then
            tail -20 "$H/serve.log" >&2; die "hato exited"
        fi
        sleep 0.2
    done
}

# send SIDE COUNT: run smtp-source against SIDE, print elapsed seconds (the caller adds COUNT
# to EXPECTED[SIDE]: send usually runs in a $(...) subshell)
send() {
    local side=$1 count=$2 t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! "$SMTP_SOURCE" $SMTP_SOURCE_FLAGS -s "$SESSIONS" -m "$count" -l "$SIZE" \
            -M bench-client.test -f "$SENDER" -t "$RCPT" "127.0.0.1:${PORT[$side]}" \
            >"$TMP/smtp-source.$side.log" 2>&1; then
        cat "$TMP/smtp-source.$side.log" >&2
        [ "$side" = hato ] && tail -20 "$H/serve.log" >&2
        die "smtp-source against $side failed"
    fi
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# our_pids: the processes whose CPU time is the benchmark's own (this script and its children,
# hato, the private Postfix master and its children); the rest of the machine is "other work"
our_pids() { echo $$ ${HATO_PID:-} $(cat "$PF_SPOOL/pid/master.pid" 2>/dev/null); }

run_once() {
    local side=$1 i=$2 t0 secs total rate e2e snap0 snap1 others
    snap0=$("${HELPER[@]}" cpu-snap $(our_pids))
    t0=$(date +%s.%N)
    secs=$(send "$side" "$MESSAGES")
    snap1=$("${HELPER[@]}" cpu-snap $(our_pids))
    others=$("${HELPER[@]}" cpu-others "$snap0" "$snap1")
    OTHERS="$OTHERS $others"
    EXPECTED[$side]=$((EXPECTED[$side] + MESSAGES))
    wait_delivered "$side" || true
    total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    rate=$(awk -v m="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.0f", m / s }')
    e2e=$(awk -v m="$MESSAGES" -v s="$total" 'BEGIN { printf "%.0f", m / s }')
    RATES[$side]="${RATES[$side]} $rate"
    E2E[$side]="${E2E[$side]} $e2e"
    log "run $i $side: $MESSAGES msgs accepted in ${secs}s = $rate msg/s; all delivered after ${total}s;" \
        "other work on the machine used ${others}% of its CPU meanwhile"
}

OTHERS=
SIDES=()
want postfix && { start_postfix; SIDES+=(postfix); }
want hato && { start_hato; SIDES+=(hato); }

if [ "$WARMUP" -gt 0 ]; then
    for side in "${SIDES[@]}"; do
        send "$side" "$WARMUP" >/dev/null
        EXPECTED[$side]=$((EXPECTED[$side] + WARMUP))
        wait_delivered "$side" || true
    done
    log "warm-up done ($WARMUP messages each)"
fi

for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then order=("${SIDES[@]}"); else order=(); for ((k=${#SIDES[@]}-1; k>=0; k--)); do order+=("${SIDES[k]}"); done; fi
    for side in "${order[@]}"; do run_once "$side" "$i"; done
done

# ---------------------------------------------------------------- report
echo
echo "inbound benchmark: $MESSAGES messages x $SIZE bytes, $SESSIONS sessions, smtp-source ${SMTP_SOURCE_FLAGS:-(one connection per message)}"
echo "machine: $(nproc) CPUs; CPU used by other work during the timed runs, %:$OTHERS"
if awk -v l="$OTHERS" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] > 10) exit 0; exit 1 }'; then
    echo "NOTE: other processes competed for the CPU during some runs; those figures are skewed"
fi
declare -A MEDIAN
for side in hato postfix; do
    want "$side" || continue
    # shellcheck disable=SC2086
    MEDIAN[$side]=$("${HELPER[@]}" median ${RATES[$side]})
    # shellcheck disable=SC2086
    printf '%-8s %s msg/s (median of %s; runs:%s)\n' "$side:" "$(printf '%.0f' "${MEDIAN[$side]}")" "$RUNS" "${RATES[$side]}"
done
if want hato && want postfix; then
    awk -v h="${MEDIAN[hato]}" -v p="${MEDIAN[postfix]}" \
        'BEGIN { printf "ratio hato/postfix: %.2f (target >= 3.00)\n", h / p }'
fi
for side in hato postfix; do
    want "$side" || continue
    # shellcheck disable=SC2086
    printf '%s end-to-end (accepted and delivered): %s msg/s (median; runs:%s)\n' "$side" \
        "$(printf '%.0f' "$("${HELPER[@]}" median ${E2E[$side]})")" "${E2E[$side]}"
done
want postfix && echo "postfix delivered: $(postfix_delivered) of ${EXPECTED[postfix]} (Maildir files; queue: $(postfix_queued) left)"
if want hato; then
    kill -0 "$HATO_PID" 2>/dev/null || die "hato is no longer running"
    # RSS figures first: the final mailbox listing below inflates hato's RSS
    peak=$("${HELPER[@]}" rss "$HATO_PID" VmHWM)
    idle_out=$("${HELPER[@]}" idle "$HATO_PORT" "$IDLE" "$HATO_PID") \
        || log "WARNING: not all $IDLE idle sessions could be opened: $idle_out"
    idle_rss=$(sed -n 's/.*rss_mb=\([0-9.]*\).*/\1/p' <<<"$idle_out")
    kill -0 "$HATO_PID" 2>/dev/null || die "hato exited during the idle-session test"
    echo "hato delivered:    $(hato_delivered) of ${EXPECTED[hato]} (hato mail list $RCPT; $(hato_pending) still pending)"
    printf 'hato peak RSS: %.0f MB\n' "$peak"
    printf 'hato RSS with %s idle sessions: %.0f MB (target < 150 MB) [%s]\n' "$IDLE" "${idle_rss:-0}" "$idle_out"
fi
exit 0
