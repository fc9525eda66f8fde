#!/usr/bin/env bash
# bench/memory.sh — memory under large messages: hato versus Postfix, same machine, same run.
#
# What it measures
#   SESSIONS concurrent SMTP sessions (default 200) each send one message of SIZE bytes
#   (default 30 MB) to user@bench.test, first to hato, then to a private Postfix instance
#   (ONLY=hato|postfix runs one side). The load generator (bench/memory_load.py) makes every
#   body on the fly from one shared 64 KiB block of text lines, so it holds no message in memory.
#   For each side the script reports the time until every session had its final "250" (all
#   messages accepted, i.e. durable) and until every message was delivered to the mailbox, and
#   memory:
#     hato:    peak RSS of the process (VmHWM from /proc, read after delivery), plus its RSS
#              sampled every 0.2 s during the run, for comparison with Postfix's figure;
#     Postfix: the largest sum of VmRSS over the master and all its processes (smtpd, cleanup,
#              qmgr, virtual, ...), sampled every 0.2 s from before the first connection until
#              delivery ended. (Summed RSS counts shared pages once per process, so it
#              overstates Postfix's real use somewhat.)
#   Target: hato's peak RSS below 300 MB.
#
#   Peer: a private Postfix instance (own config, queue and data directories, listening on
#   127.0.0.1:<free port> only) delivering to a virtual Maildir domain bench.test, its limits
#   raised so that it accepts the same load (message_size_limit, process limit, per-client
#   connection limit). The system's own Postfix, if any, is neither used nor touched. Nothing is
#   sent anywhere but 127.0.0.1. Disk: about 2 x SESSIONS x SIZE per side (queue and mailbox),
#   freed at the end.
#
# How to run (as root: Postfix needs it):   bash bench/memory.sh
#   Environment: SESSIONS=200 SIZE=31457280 ONLY=both|hato|postfix DRAIN_TIMEOUT=900 (seconds)
#                KEEP_TMP=1 (keep the temp dir) HATO_CONFIG="TOML" (appended to hato's config,
#                e.g. $'[content]\nscan_budget_mb = 64') HATO=path/to/hato (default target/release/hato;
#                built if missing)
#   Installs Postfix from Debian if it is missing. Runs of this script and of bench/inbound.sh
#   wait for each other (flock on /tmp/hato-inbound-bench.lock).
#   Exit status is 0 unless something failed to run; a figure above target is only reported.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=(python3 "$ROOT/bench/inbound_helper.py")
LOAD=(python3 "$ROOT/bench/memory_load.py")

SESSIONS=${SESSIONS:-200}
SIZE=${SIZE:-31457280}
ONLY=${ONLY:-both}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
HATO=${HATO:-$ROOT/target/release/hato}
RCPT=user@bench.test

. "$ROOT/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs root to start)"
case $ONLY in both|hato|postfix) ;; *) die "ONLY must be both, hato or postfix" ;; esac
want() { [ "$ONLY" = both ] || [ "$ONLY" = "$1" ]; }

# ---------------------------------------------------------------- prerequisites
want postfix && ensure_postfix

if want hato && [ ! -x "$HATO" ]; then
    log "building hato (cargo build --release -p hato)"
    (cd "$ROOT" && cargo build --release -p hato) || die "cargo build failed"
    [ -x "$HATO" ] || die "no binary at $HATO after the build"
fi

# One benchmark at a time on this machine: two at once would skew each other's figures.
bench_lock 7200

# Many sessions: make sure this shell (and the load generator) may open enough files.
ulimit -n "$(( $(ulimit -Hn) < 65536 ? $(ulimit -Hn) : 65536 ))" 2>/dev/null || true

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/hato-memory-bench.XXXXXX)
chmod 755 "$TMP"   # the virtual(8) delivery agent runs as an unprivileged uid below it
HATO_PID=
PF_STARTED=
SAMPLER_PID=
stop_sampler() {
    if [ -n "$SAMPLER_PID" ]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=
    fi
}
stop_hato() {
    if [ -n "$HATO_PID" ] && kill -0 "$HATO_PID" 2>/dev/null; then
        kill "$HATO_PID"
        for _ in $(seq 100); do kill -0 "$HATO_PID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$HATO_PID" 2>/dev/null && { log "hato did not stop on SIGTERM; killing it"; kill -9 "$HATO_PID"; }
        wait "$HATO_PID" 2>/dev/null || true
    fi
    HATO_PID=
}
stop_postfix() {
    if [ -n "$PF_STARTED" ]; then
        local mpid
        mpid=$(tr -d ' ' <"$PF_SPOOL/pid/master.pid" 2>/dev/null)
        postfix -c "$PF_ETC" stop >/dev/null 2>&1
        for _ in $(seq 50); do
            [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null || break
            sleep 0.2
        done
    fi
    PF_STARTED=
}
cleanup() {
    local rc=$?
    set +e
    stop_sampler
    stop_hato
    stop_postfix
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PF_PORT HATO_PORT ADMIN_PORT <<<"$("${HELPER[@]}" freeport 3)"

# start_sampler OUTFILE PID...: the largest summed RSS of the PIDs and their descendants
start_sampler() {
    local out=$1; shift
    echo 0 >"$out"
    "${LOAD[@]}" sample "$out" "$@" &
    SAMPLER_PID=$!
}

# send SIDE PORT: run the load; prints "ok=N failed=M seconds=S"
send() {
    local side=$1 port=$2 out
    out=$("${LOAD[@]}" send "$port" "$SESSIONS" "$SIZE" "$RCPT" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "the load against $side failed"
    }
    printf '%s\n' "$out" | head -1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- side (a): hato
H=$TMP/hato
HCFG=$H/hato.toml
hatoctl() { "$HATO" --config "$HCFG" "$@"; }

hato_pending() {
    hatoctl trace --status Pending --json >"$H/pending.json" 2>"$H/pending.err" || { echo -1; return; }
    "${HELPER[@]}" count-json "$H/pending.json"
}

run_hato() {
    hato_serve
    hatoctl mailbox add "$RCPT" --quota-mb 1000000 >/dev/null || die "hato mailbox add failed"
    log "hato: pid $HATO_PID, SMTP 127.0.0.1:$HATO_PORT; rss at start $("${HELPER[@]}" rss "$HATO_PID" VmRSS) MB"
    start_sampler "$TMP/hato.sampled" "$HATO_PID"
    local t0 sent accepted deadline n
    t0=$(now)
    sent=$(send hato "$HATO_PORT")
    accepted=$(since "$t0")
    log "hato: $sent"
    deadline=$((SECONDS + DRAIN_TIMEOUT))
    while :; do
        n=$(hato_pending)
        [ "$n" = 0 ] && break
        [ "$n" = -1 ] && { cat "$H/pending.err" >&2; die "hato trace --status Pending failed"; }
        kill -0 "$HATO_PID" 2>/dev/null || { tail -20 "$H/serve.log" >&2; die "hato exited"; }
        [ "$SECONDS" -ge "$deadline" ] && { log "WARNING: hato not drained within ${DRAIN_TIMEOUT}s ($n pending)"; break; }
        sleep 0.5
    done
    HATO_DELIVERED_S=$(since "$t0")
    # Queue files go right after the delivery that released them commits: wait for that.
    deadline=$((SECONDS + 60))
    until [ "$(find "$H/data/queue" -type f | wc -l)" = 0 ] || [ "$SECONDS" -ge "$deadline" ]; do
        sleep 0.2
    done
    stop_sampler
    HATO_HWM=$("${HELPER[@]}" rss "$HATO_PID" VmHWM)
    HATO_SAMPLED=$(cat "$TMP/hato.sampled")
    HATO_SENT=$sent
    HATO_ACCEPTED_S=$accepted
    HATO_LEFT="queue files left: $(find "$H/data/queue" -type f | wc -l), spool files left: $(find "$H/data/spool" -type f | wc -l)"
    stop_hato
    rm -rf "$H/data"   # free the disk before the other side runs
}

# ---------------------------------------------------------------- side (b): private Postfix
PF=$TMP/postfix
PF_ETC=$PF/etc
PF_SPOOL=$PF/spool
PF_DATA=$PF/data
PF_MAIL=$PF/mail
PF_MAILDIR=$PF_MAIL/bench.test/user
VUID=$(id -u nobody)
VGID=$(id -g nobody)

postfix_delivered() { find "$PF_MAILDIR/new" "$PF_MAILDIR/cur" -type f 2>/dev/null | wc -l; }
postfix_queued() {
    find "$PF_SPOOL/maildrop" "$PF_SPOOL/incoming" "$PF_SPOOL/active" "$PF_SPOOL/deferred" \
         "$PF_SPOOL/hold" -type f 2>/dev/null | wc -l
}

run_postfix() {
    mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF_DATA" "$PF_MAIL"
    chown "$VUID:$VGID" "$PF_MAIL"
    chown postfix "$PF_DATA"
    printf '%s bench.test/user/\n' "$RCPT" >"$PF_ETC/vmailbox"
    cat >"$PF_ETC/main.cf" <<EOF
# private Postfix instance for bench/memory.sh (Postfix defaults unless noted)
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

# the same load as hato gets: large messages, SESSIONS parallel sessions from one client
message_size_limit = $((SIZE + 1048576))
default_process_limit = $((SESSIONS + 50))
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0

# delivery: virtual Maildir
virtual_mailbox_domains = bench.test
virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
virtual_mailbox_base = $PF_MAIL
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
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
    local banner mpid t0 sent accepted deadline
    banner=$("${HELPER[@]}" wait-banner "$PF_PORT" 30) \
        || { tail -20 "$PF/maillog" >&2; die "postfix does not answer on $PF_PORT"; }
    case $banner in *bench-postfix.localdomain*) ;; *) die "unexpected banner on $PF_PORT: $banner" ;; esac
    mpid=$(tr -d ' ' <"$PF_SPOOL/pid/master.pid")
    log "postfix: private instance on 127.0.0.1:$PF_PORT ($(postconf -h mail_version)), master pid $mpid"
    start_sampler "$TMP/postfix.sampled" "$mpid"
    t0=$(now)
    sent=$(send postfix "$PF_PORT")
    accepted=$(since "$t0")
    log "postfix: $sent"
    deadline=$((SECONDS + DRAIN_TIMEOUT))
    until [ "$(postfix_queued)" = 0 ] && [ "$(postfix_delivered)" -ge "$SESSIONS" ]; do
        [ "$SECONDS" -ge "$deadline" ] && { log "WARNING: postfix not drained within ${DRAIN_TIMEOUT}s"; break; }
        sleep 0.5
    done
    PF_DELIVERED_S=$(since "$t0")
    stop_sampler
    PF_SAMPLED=$(cat "$TMP/postfix.sampled")
    PF_SENT=$sent
    PF_ACCEPTED_S=$accepted
    PF_COUNT="$(postfix_delivered) delivered, $(postfix_queued) queued"
    stop_postfix
    rm -rf "$PF_MAIL" "$PF_SPOOL"
}

want hato && run_hato
want postfix && run_postfix

# ---------------------------------------------------------------- report
echo
echo "memory benchmark: $SESSIONS concurrent sessions x one $SIZE-byte message each, $(nproc) CPUs"
if want hato; then
    echo "hato:    $HATO_SENT; all accepted after ${HATO_ACCEPTED_S}s, all delivered after ${HATO_DELIVERED_S}s ($HATO_LEFT)"
    printf 'hato peak RSS (VmHWM): %.0f MB (target < 300 MB); largest sampled RSS: %.0f MB\n' "$HATO_HWM" "$HATO_SAMPLED"
fi
if want postfix; then
    echo "postfix: $PF_SENT; all accepted after ${PF_ACCEPTED_S}s, all delivered after ${PF_DELIVERED_S}s ($PF_COUNT)"
    printf 'postfix total RSS (largest sampled sum over its processes): %.0f MB\n' "$PF_SAMPLED"
fi
exit 0
