#!/usr/bin/env bash
# bench/relay.sh — relay throughput: smtp-source -> hato -> smtp-sink versus
# smtp-source -> Postfix -> smtp-sink, same machine, same run (issue 10, "How it is checked").
#
# What it measures
#   Postfix's load generator smtp-source sends MESSAGES messages (default 10,000) of SIZE bytes
#   (default 2048) from sender@bench.test to user@sink.test over SESSIONS parallel SMTP sessions
#   (default 20) to each relay, alternating which goes first every round, RUNS rounds (default
#   3), after a WARMUP-message warm-up of each. Each relay passes the mail on to its own
#   smtp-sink (Postfix's test sink, which accepts everything and keeps nothing) on loopback.
#   The figure is wall-clock messages/second until the sink has received the run's last message
#   (relayed end to end); the rate at which the relay answered smtp-source (every message
#   accepted, durable) is printed beside it.
#
#   (a) hato, release build, default settings (the content pipeline on: malware filter,
#       transport rules, spam filter), tenant "bench" with accepted domain bench.test, an
#       on-premises inbound connector for 127.0.0.1 (so bench.test may relay from it) and an
#       outbound connector for sink.test with smart host 127.0.0.1:<its sink>, and the outbound
#       spam policy's action "alert" (one sender goes over its 10,000 recipients an hour).
#   (b) a private Postfix instance (own config, queue and data directories, listening on
#       127.0.0.1:<free port> only), mynetworks 127.0.0.0/8, relayhost [127.0.0.1]:<its sink>,
#       Postfix's default durability (queue files fsynced before the 250) and its defaults for
#       the smtp client (connection cache, destination concurrency 20).
#   Both durable; nothing leaves 127.0.0.1. Target: hato >= 3x Postfix.
#   The machine may be shared: for every timed run the script reports how much of the CPU other
#   processes used meanwhile; runs above 10% are flagged as skewed. Runs of this script and
#   the other benchmarks wait for each other (flock on /tmp/hato-inbound-bench.lock).
#
# How to run (as root: Postfix and smtp-sink need it):   bash bench/relay.sh
#   Environment: MESSAGES=10000 SESSIONS=20 SIZE=2048 RUNS=3 WARMUP=200
#                ONLY=both|hato|postfix DRAIN_TIMEOUT=600 (seconds) KEEP_TMP=1 (keep temp dir)
#                HATO=path/to/hato      (default target/release/hato; built if missing)
#                HATO_CONFIG="TOML"     appended to hato's config
#   Installs Postfix (smtp-source, smtp-sink) from Debian if missing.
#   Exit status is 0 unless something failed to run; figures below target are only reported.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=(python3 "$ROOT/bench/inbound_helper.py")

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-200}
ONLY=${ONLY:-both}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
HATO=${HATO:-$ROOT/target/release/hato}
SENDER=sender@bench.test
RCPT=user@sink.test

# log, die, bench_lock, ensure_postfix, postfix_services, postfix_stop, stop_pid
. "$ROOT/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs root to start)"
case $ONLY in both|hato|postfix) ;; *) die "ONLY must be both, hato or postfix" ;; esac
want() { [ "$ONLY" = both ] || [ "$ONLY" = "$1" ]; }

ensure_postfix
SMTP_SOURCE=$(command -v smtp-source)
SMTP_SINK=$(command -v smtp-sink)

if want hato && [ ! -x "$HATO" ]; then
    log "building hato (cargo build --release -p hato --bin hato)"
    (cd "$ROOT" && cargo build --release -p hato --bin hato) || die "cargo build failed"
    [ -x "$HATO" ] || die "no binary at $HATO after the build"
fi

bench_lock 3600

TMP=$(mktemp -d /tmp/hato-relay-bench.XXXXXX)
chmod 755 "$TMP"
HATO_PID=
PF_STARTED=
declare -A SINK_PID=()
cleanup() {
    local rc=$?
    set +e
    stop_pid "$HATO_PID" hato
    [ -n "$PF_STARTED" ] && postfix_stop "$PF_ETC" "$PF_SPOOL"
    for side in "${!SINK_PID[@]}"; do stop_pid "${SINK_PID[$side]}" "smtp-sink ($side)"; done
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PF_PORT HATO_PORT ADMIN_PORT SINK_HATO SINK_PF <<<"$("${HELPER[@]}" freeport 5)"
declare -A SINK_PORT=([hato]=$SINK_HATO [postfix]=$SINK_PF)

# ---------------------------------------------------------------- the sinks
# smtp-sink -c prints "sess=N quit=N mesg=N" counters, each update ending in CR.
start_sink() {
    local side=$1
    "$SMTP_SINK" -u nobody -c "127.0.0.1:${SINK_PORT[$side]}" 1024 >"$TMP/sink.$side.out" 2>"$TMP/sink.$side.err" 9>&- &
    SINK_PID[$side]=$!
    "${HELPER[@]}" wait-port "${SINK_PORT[$side]}" 30 || die "smtp-sink ($side) does not answer"
}
sink_count() {
    local n
    n=$(tail -c 200 "$TMP/sink.$1.out" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${n:-0}"
}

# ---------------------------------------------------------------- peer (b): private Postfix
PF=$TMP/postfix
PF_ETC=$PF/etc
PF_SPOOL=$PF/spool
PF_DATA=$PF/data

start_postfix() {
    mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF_DATA"
    chown postfix "$PF_DATA"
    cat >"$PF_ETC/main.cf" <<EOF
# private Postfix instance for bench/relay.sh (Postfix defaults unless noted)
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
alias_maps =
alias_database =
local_recipient_maps =
biff = no

# no network lookups
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled

# relay for loopback clients, to the sink
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
relayhost = [127.0.0.1]:$SINK_PF
EOF
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
    case $banner in *bench-postfix.localdomain*) ;; *) die "unexpected banner on $PF_PORT: $banner" ;; esac
    log "postfix: private instance on 127.0.0.1:$PF_PORT ($(postconf -h mail_version)), relayhost [127.0.0.1]:$SINK_PF"
}

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
    hatoctl connector inbound add Relay --tenant bench --connector-type on-premises \
        --sender-ip-addresses 127.0.0.1 >/dev/null || die "hato connector inbound add failed"
    hatoctl connector outbound add Sink --tenant bench --recipient-domains sink.test \
        --smart-hosts "127.0.0.1:$SINK_HATO" >/dev/null || die "hato connector outbound add failed"
    # One sender relays 30,000+ messages an hour here: over the outbound spam policy's
    # 10,000-recipient hourly limit, which by default (block-user-for-today) restricts it with
    # 550 5.1.8, as Exchange would. The benchmark's sender is a known bulk source: alert only.
    hatoctl outbound-spam-filter set --tenant bench --action-when-threshold-reached alert \
        >/dev/null || die "hato outbound-spam-filter set failed"
    log "hato: pid $HATO_PID, SMTP 127.0.0.1:$HATO_PORT, admin 127.0.0.1:$ADMIN_PORT, smart host 127.0.0.1:$SINK_HATO"
}

# ---------------------------------------------------------------- measurement
declare -A PORT=([hato]=$HATO_PORT [postfix]=$PF_PORT)
declare -A EXPECTED=([hato]=0 [postfix]=0)
declare -A RATES=([hato]="" [postfix]="")
declare -A ACCEPT=([hato]="" [postfix]="")

# wait_relayed SIDE: until the side's sink has every message the side accepted (or DRAIN_TIMEOUT)
wait_relayed() {
    local side=$1 deadline=$((SECONDS + DRAIN_TIMEOUT))
    while [ "$(sink_count "$side")" -lt "${EXPECTED[$side]}" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "WARNING: $side relayed $(sink_count "$side") of ${EXPECTED[$side]} within ${DRAIN_TIMEOUT}s"
            [ "$side" = hato ] && tail -5 "$H/serve.log" >&2
            [ "$side" = postfix ] && log "postfix queue: $(postfix_queued) files"
            return 1
        fi
        if [ "$side" = hato ] && ! kill -0 "$HATO_PID" 2>/dev/null; then
            tail -20 "$H/serve.log" >&2; die "hato exited"
        fi
        sleep 0.05
    done
}

send() {
    local side=$1 count=$2 t0 t1
    t0=$(date +%s.%N)
    if ! "$SMTP_SOURCE" -s "$SESSIONS" -m "$count" -l "$SIZE" -M bench-client.test \
            -f "$SENDER" -t "$RCPT" "127.0.0.1:${PORT[$side]}" >"$TMP/smtp-source.$side.log" 2>&1; then
        cat "$TMP/smtp-source.$side.log" >&2
        [ "$side" = hato ] && tail -20 "$H/serve.log" >&2
        die "smtp-source against $side failed"
    fi
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

our_pids() { echo $$ ${HATO_PID:-} $(cat "$PF_SPOOL/pid/master.pid" 2>/dev/null) "${SINK_PID[@]}"; }

run_once() {
    local side=$1 i=$2 t0 secs total rate accept snap0 snap1 others
    snap0=$("${HELPER[@]}" cpu-snap $(our_pids))
    t0=$(date +%s.%N)
    secs=$(send "$side" "$MESSAGES")
    EXPECTED[$side]=$((EXPECTED[$side] + MESSAGES))
    wait_relayed "$side" || true
    total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    snap1=$("${HELPER[@]}" cpu-snap $(our_pids))
    others=$("${HELPER[@]}" cpu-others "$snap0" "$snap1")
    OTHERS="$OTHERS $others"
    accept=$(awk -v m="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.0f", m / s }')
    rate=$(awk -v m="$MESSAGES" -v s="$total" 'BEGIN { printf "%.0f", m / s }')
    RATES[$side]="${RATES[$side]} $rate"
    ACCEPT[$side]="${ACCEPT[$side]} $accept"
    log "run $i $side: $MESSAGES msgs relayed in ${total}s = $rate msg/s (accepted in ${secs}s = $accept msg/s);" \
        "other work on the machine used ${others}% of its CPU meanwhile"
}

OTHERS=
SIDES=()
want postfix && { start_sink postfix; start_postfix; SIDES+=(postfix); }
want hato && { start_sink hato; start_hato; SIDES+=(hato); }

if [ "$WARMUP" -gt 0 ]; then
    for side in "${SIDES[@]}"; do
        send "$side" "$WARMUP" >/dev/null
        EXPECTED[$side]=$((EXPECTED[$side] + WARMUP))
        wait_relayed "$side" || die "$side did not relay the warm-up"
    done
    log "warm-up done ($WARMUP messages each)"
fi

for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then order=("${SIDES[@]}"); else order=(); for ((k=${#SIDES[@]}-1; k>=0; k--)); do order+=("${SIDES[k]}"); done; fi
    for side in "${order[@]}"; do run_once "$side" "$i"; done
done

echo
echo "relay benchmark: $MESSAGES messages x $SIZE bytes, $SESSIONS sessions, smtp-source -> relay -> smtp-sink"
echo "machine: $(nproc) CPUs; CPU used by other work during the timed runs, %:$OTHERS"
if awk -v l="$OTHERS" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] > 10) exit 0; exit 1 }'; then
    echo "NOTE: other processes competed for the CPU during some runs; those figures are skewed"
fi
declare -A MEDIAN
for side in hato postfix; do
    want "$side" || continue
    MEDIAN[$side]=$("${HELPER[@]}" median ${RATES[$side]})
    printf '%-8s %s msg/s relayed end to end (median of %s; runs:%s); accepted: %s msg/s (median; runs:%s); at the sink: %s of %s\n' \
        "$side:" "$(printf '%.0f' "${MEDIAN[$side]}")" "$RUNS" "${RATES[$side]}" \
        "$(printf '%.0f' "$("${HELPER[@]}" median ${ACCEPT[$side]})")" "${ACCEPT[$side]}" \
        "$(sink_count "$side")" "${EXPECTED[$side]}"
done
if want hato && want postfix; then
    awk -v h="${MEDIAN[hato]}" -v p="${MEDIAN[postfix]}" \
        'BEGIN { printf "ratio hato/postfix: %.2f (target >= 3.00)\n", h / p }'
fi
exit 0
