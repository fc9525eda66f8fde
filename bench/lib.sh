# bench/lib.sh — shell functions shared by bench/inbound.sh, bench/memory.sh, bench/relay.sh and bench/edge.sh
# (sourced, not run).
#
#   log TEXT...                 a timestamped line on stderr
#   die TEXT...                 log "ERROR: TEXT" and exit 1
#   bench_lock SECONDS          one benchmark at a time on this machine (two at once would skew
#                               each other's figures): take /tmp/hato-inbound-bench.lock on fd 9,
#                               waiting up to SECONDS for a run that holds it
#   ensure_postfix              install Postfix from Debian when postfix or smtp-source is missing
#   postfix_services            the master.cf lines of a private Postfix instance's internal
#                               services: Debian's stock master.cf without the smtpd listener and
#                               the pipe services, chroot off everywhere (the caller adds its
#                               listener)
#   postfix_stop ETC SPOOL      stop the private instance of config directory ETC (queue directory
#                               SPOOL) and wait up to 10 s for its master to exit
#   hato_serve                  start a release hato for inbound.sh, memory.sh and relay.sh: writes
#                               $HCFG (data under $H, SMTP on $HATO_PORT, admin on $ADMIN_PORT,
#                               connection caps raised, $HATO_CONFIG appended), starts $HATO serve
#                               (HATO_PID), waits for both listeners and adds tenant "bench" with
#                               accepted domain bench.test
#   stop_pid PID NAME           SIGTERM one process this script started, wait up to 10 s for it
#                               to exit, then SIGKILL it (saying so)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_lock() {
    exec 9>/tmp/hato-inbound-bench.lock
    if ! flock -n 9; then
        log "another benchmark is running; waiting for it to finish"
        flock -w "$1" 9 || die "still locked after $1 s: /tmp/hato-inbound-bench.lock"
    fi
}

ensure_postfix() {
    if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
        log "installing postfix from Debian"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y postfix >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y postfix >/dev/null; } \
            || die "could not install postfix"
    fi
}

postfix_services() {
    cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

postfix_stop() {
    local etc=$1 spool=$2 mpid
    mpid=$(tr -d ' ' <"$spool/pid/master.pid" 2>/dev/null)
    postfix -c "$etc" stop >/dev/null 2>&1
    for _ in $(seq 50); do
        [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null || break
        sleep 0.2
    done
}

stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop on SIGTERM; killing it"
        kill -9 "$pid"
    fi
    wait "$pid" 2>/dev/null || true
}

hato_serve() {
    mkdir -p "$H"
    # Nothing leaves the machine, and no lookup waits: a resolver port nothing listens on fails
    # every query at once (the sandbox's own resolver never answers, and each SPF or reverse
    # lookup then waited out dns.timeout_ms: 39 msg/s). The Postfix peers do no DNS either.
    # HATO_CONFIG may bring its own [dns].
    local dns='[dns]
servers = ["127.0.0.1:9"]
timeout_ms = 500'
    case "${HATO_CONFIG:-}" in *'[dns]'*) dns= ;; esac
    # No submission listener (its default, 127.0.0.1:2587, is one port: a second hato of the
    # same run could not start), unless HATO_CONFIG brings its own [submission].
    local submission='[submission]
listen = []'
    case "${HATO_CONFIG:-}" in *'[submission]'*) submission= ;; esac
    cat >"$HCFG" <<EOF
[server]
hostname = "bench-hato.localdomain"
data_dir = "$H/data"

[smtp]
listen = ["127.0.0.1:$HATO_PORT"]
max_connections = 5000
max_connections_per_ip = 5000

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

$dns
$submission
${HATO_CONFIG:-}
EOF
    "$HATO" serve --config "$HCFG" >"$H/serve.log" 2>&1 9>&- &
    HATO_PID=$!
    if ! "${HELPER[@]}" wait-banner "$HATO_PORT" 60 >/dev/null || ! "${HELPER[@]}" wait-port "$ADMIN_PORT" 30; then
        tail -20 "$H/serve.log" >&2
        die "hato does not answer (SMTP $HATO_PORT, admin $ADMIN_PORT)"
    fi
    "$HATO" --config "$HCFG" tenant add bench >/dev/null || die "hato tenant add failed"
    "$HATO" --config "$HCFG" domain add bench.test --tenant bench >/dev/null || die "hato domain add failed"
}
