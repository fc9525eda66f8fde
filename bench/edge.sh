#!/usr/bin/env bash
# bench/edge.sh — the edge's protection stages: what a decision costs, what the state weighs, and
# how many SMTP connections a second get through with every check on.
#
# What it measures (release build, this machine)
#   1. Decision cost per connection, without DNS: the throttle's `check` plus the recording
#      calls the edge and delivery make for one connection (record_connection, record_message,
#      sometimes record_unknown_recipient / record_spam), CONNECTIONS connections (default
#      1,000,000) at a simulated 1,000 a second over a realistic mix: KNOWN established IPs
#      (default 100,000; a month of history each) make 80% of the connections, new IPs on
#      probation (three in ten IPv6) 15%, and 100 bursting IPs that get throttled and keep
#      knocking 5%. Prints the median, p90, p99 and largest cost of one connection.
#      Target: median < 50 us.
#   2. Memory: the RSS of a process tracking IPS distinct IPs (default 1,000,000; three in ten
#      IPv6 /64s), then IPS more (the table's bound holds), and the size of the snapshot
#      (data_dir/throttle.state) with the time to write it (synced) and read it.
#      Target: < 200 MB after a million.
#   3. SMTP connections per second, three sides side by side, in a network namespace of the
#      script's own (nothing leaves this machine; the machine's network is not touched):
#        hato off    `hato serve` with the edge doing nothing at connect: [throttle] off, no
#                    [[dnsbl]], [edge] reverse_dns and reject_bad_helo off;
#        hato on     every check: the throttle (defaults), a DNS block list (dnsbl.bench), the
#                    client's PTR and its forward confirmation, a bad HELO refused, and the
#                    provider's block list holding BLOCKLIST entries (none of them a client);
#        postscreen  a private Postfix instance whose port-25 listener is postscreen: the same
#                    DNS block list and the pregreet test, both enforced, then smtpd (which
#                    confirms each client's PTR by default).
#      Greeting delay 0 on hato (a delay would only measure itself); postscreen_greet_wait 1s,
#      the least there is: postscreen's pregreet test makes a client's first contact wait that
#      long (a returning client passed it and skips it for a day).
#      The clients' addresses are in 198.18.0.0/15 (RFC 2544's range for benchmarks), put on
#      the namespace's loopback device: not in 127.0.0.0/8, whose PTR queries hato's resolver
#      answers itself ("localhost", RFC 6761) and whose clients hato does not throttle.
#      One DNS server answers everyone, authoritatively (bench_dns: hato-dns's test server), on
#      the namespace's 127.0.0.1:53; the namespace is a mount namespace too, whose
#      /etc/resolv.conf names it for Postfix's resolver (which asks port 53 of the nameserver
#      in that file); the machine's /etc/resolv.conf is not touched.
#      The load (conn_load, one thread): sessions of connect, banner, EHLO, QUIT, 221, each from
#      a source address of its own (the socket is bound to it), in two scenarios:
#        returning clients  SESSIONS sessions a run, CONCURRENCY at once, from SOURCES addresses
#                           (198.18.1.0 on) that each connected once in a warm-up;
#        first contact      NEW_SESSIONS sessions a run, NEW_CONCURRENCY at once, each from an
#                           address no side has seen (198.18.129.0 on, new ones every run):
#                           every lookup asked, postscreen's pregreet test waited for.
#      RUNS runs of each, the order of the sides alternating; prints the median connections a
#      second of each side, the ratios hato on / hato off and hato on / postscreen, the median
#      and p99 time of one whole session, the servers' and the load generator's CPU time per
#      connection, and the sessions refused (4xx/5xx) or failed, which must be 0.
#      Before the runs it checks that each side is set up as it says (hato on refuses a
#      DNSBL-listed client, a blocked one at RCPT, a bad HELO, and logs the PTR name; postscreen
#      finds the listed client and its smtpd the PTR name) and says so; a check that fails is
#      reported with the figures.
#   The machine may be shared with other work: runs of this script and of the other benchmarks
#   wait for each other (flock on /tmp/hato-inbound-bench.lock), and the script reports how busy
#   the machine was.
#
# How to run (as root, for section 3: namespaces, Postfix):   bash bench/edge.sh
#   Environment: SECTIONS="1 2 3"
#                CONNECTIONS=1000000 KNOWN=100000 IPS=1000000                      (1 and 2)
#                SESSIONS=20000 CONCURRENCY=50 SOURCES=2000                        (3: returning)
#                NEW_SESSIONS=3000 NEW_CONCURRENCY=100                             (3: first contact)
#                RUNS=3 BLOCKLIST=300 ONLY=off,on,postscreen (the sides of 3)
#                HATO=path/to/hato (default target/release/hato, built) KEEP_TMP=1 (keep the temp dir)
#   SESSIONS or NEW_SESSIONS 0 leaves that scenario out. Installs Postfix from Debian if missing.
#   Exit status is 0 unless something failed to run; figures beyond target are only reported.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=(python3 "$ROOT/bench/inbound_helper.py")
SECTIONS=${SECTIONS:-1 2 3}
CONNECTIONS=${CONNECTIONS:-1000000}
KNOWN=${KNOWN:-100000}
IPS=${IPS:-1000000}
SESSIONS=${SESSIONS:-20000}
CONCURRENCY=${CONCURRENCY:-50}
SOURCES=${SOURCES:-2000}
NEW_SESSIONS=${NEW_SESSIONS:-3000}
NEW_CONCURRENCY=${NEW_CONCURRENCY:-100}
RUNS=${RUNS:-3}
BLOCKLIST=${BLOCKLIST:-300}
ONLY=${ONLY:-off,on,postscreen}
HATO_SET=${HATO:+1}
HATO=${HATO:-$ROOT/target/release/hato}
BENCH=$ROOT/target/release/examples/edge_bench

# log, die, bench_lock, ensure_postfix, postfix_services, postfix_stop, stop_pid
. "$ROOT/bench/lib.sh"

section() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for v in CONNECTIONS KNOWN IPS SESSIONS CONCURRENCY SOURCES NEW_SESSIONS NEW_CONCURRENCY RUNS BLOCKLIST; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got ${!v})"
done
[ "$RUNS" -ge 1 ] && [ "$CONCURRENCY" -ge 1 ] && [ "$NEW_CONCURRENCY" -ge 1 ] && [ "$SOURCES" -ge 1 ] \
    || die "RUNS, CONCURRENCY, NEW_CONCURRENCY and SOURCES must be at least 1"
for s in ${ONLY//,/ }; do
    case $s in off|on|postscreen) ;; *) die "ONLY: $s is none of off, on, postscreen" ;; esac
done
for s in $SECTIONS; do
    case $s in 1|2|3) ;; *) die "SECTIONS: $s is none of 1, 2, 3" ;; esac
done
if section 3; then
    [ "$(id -u)" = 0 ] || die "section 3 needs root (a network namespace; a private Postfix instance)"
fi

if [ -z "${EDGE_NETNS:-}" ] && { section 1 || section 2; }; then
    log "building the decision benchmark (cargo build --release -p hato-protection --example edge_bench)"
    (cd "$ROOT" && cargo build --release -q -p hato-protection --example edge_bench) || die "cargo build failed"
    [ -x "$BENCH" ] || die "no binary at $BENCH after the build"
fi
if [ -z "${EDGE_NETNS:-}" ] && section 3; then
    ensure_postfix
    log "building hato, the load generator (conn_load) and the DNS server (bench_dns)"
    if [ -z "$HATO_SET" ]; then
        (cd "$ROOT" && cargo build --release -q -p hato --bin hato) || die "cargo build failed"
    fi
    (cd "$ROOT" && cargo build --release -q -p hato --example conn_load \
        && cargo build --release -q -p hato-dns --example bench_dns) || die "cargo build failed"
    for b in "$HATO" "$ROOT/target/release/examples/conn_load" "$ROOT/target/release/examples/bench_dns"; do
        [ -x "$b" ] || die "no binary at $b after the build"
    done
fi

# One benchmark at a time on this machine: two at once would skew each other's figures. (The
# inner run of section 3 runs while its parent holds the lock.)
[ -n "${EDGE_NETNS:-}" ] || bench_lock 7200

trap 'rc=$?; section3_cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

# =============================================================================================
# 3. SMTP connections per second: hato with every edge check off, with every one on, and Postfix
#    postscreen, the same load of short sessions from many addresses, in a network namespace.
# =============================================================================================
S3_TMP=
DNS_PID=
declare -A HATO_PID=()
PF_STARTED=
section3_cleanup() {
    set +e
    for side in "${!HATO_PID[@]}"; do stop_pid "${HATO_PID[$side]}" "hato ($side)"; done
    [ -n "$PF_STARTED" ] && postfix_stop "$PF_ETC" "$PF_SPOOL"
    stop_pid "$DNS_PID" "the DNS server"
    if [ -n "$S3_TMP" ]; then
        if [ -n "${KEEP_TMP:-}" ]; then log "kept $S3_TMP"; else rm -rf "$S3_TMP"; fi
    fi
}

# The load's clients need addresses of their own, many of them, and this machine's only: they get
# 198.18.0.0/15 (RFC 2544's range for benchmarks) on the loopback device of a network namespace
# this script makes, where everything of section 3 runs (the servers listen on its 127.0.0.1).
# Not 127.0.0.0/8: hato's resolver answers PTR queries under 127.in-addr.arpa itself
# ("localhost", RFC 6761 §6.3) without asking the DNS server, and hato exempts loopback clients
# from throttling; Internet clients get neither. The namespace is a mount namespace too, where
# /etc/resolv.conf names the benchmark's DNS server, for Postfix's resolver (the C library's,
# which reads that file and asks port 53); the machine's network and files stay as they are.
BASE_IP=3323068416          # 198.18.0.0
RET_OFF=256                 # returning clients: 198.18.1.0 on, at most 32768
NEW_OFF=$((256 + 32768))    # first contacts: NEW_SESSIONS addresses a run from 198.18.129.0 on
CHECK_OFF=$((131072 - 512)) # the checks' clients: 198.19.254.2 listed, .3 blocked, .4 bad HELO
ip_of() { local n=$((BASE_IP + $1)); echo "$((n >> 24)).$(((n >> 16) & 255)).$(((n >> 8) & 255)).$((n & 255))"; }

section3() {
    [ "$SOURCES" -le 32768 ] || die "SOURCES is at most 32768"
    [ $((NEW_OFF + RUNS * NEW_SESSIONS)) -le "$CHECK_OFF" ] \
        || die "RUNS x NEW_SESSIONS is at most $((CHECK_OFF - NEW_OFF)) (addresses of 198.18.0.0/15 no side has seen)"
    [ "$SOURCES" -ge "$CONCURRENCY" ] || die "SOURCES ($SOURCES) must be at least CONCURRENCY ($CONCURRENCY)"
    # hato's throttle lets an IP on probation connect 60 times a minute (AS6): the returning
    # clients' runs must stay below that, or the refusals measure the throttle, not the edge.
    local per_ip=$(( (SESSIONS + SOURCES - 1) / SOURCES ))
    if [ $((per_ip * RUNS + 1)) -ge 60 ]; then
        log "WARNING: each returning client connects $per_ip times a run; over $RUNS runs hato's throttle" \
            "(60 a minute on probation) may refuse some: raise SOURCES"
    fi
    unshare --net --mount --propagation private env EDGE_NETNS=1 bash "$ROOT/bench/edge.sh" 9>&- \
        || die "section 3 failed (its run in a namespace of its own exited $?)"
}

# section 3 itself, inside its network and mount namespace
section3_inner() {
    local dns_bin=$ROOT/target/release/examples/bench_dns
    ip link set lo up && ip addr add 198.18.0.1/15 dev lo \
        || die "could not give the namespace's loopback device 198.18.0.0/15"
    S3_TMP=$(mktemp -d /tmp/hato-edge-bench.XXXXXX)
    chmod 755 "$S3_TMP"
    DNS_ADDR=127.0.0.1
    printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$DNS_ADDR" >"$S3_TMP/resolv.conf"
    mount --bind "$S3_TMP/resolv.conf" /etc/resolv.conf || die "could not bind-mount the namespace's /etc/resolv.conf"
    local ports
    ports=$("${HELPER[@]}" freeport 5)
    read -r PORT_OFF PORT_ON PORT_PS ADMIN_OFF ADMIN_ON <<<"$ports"
    declare -gA PORT=([off]=$PORT_OFF [on]=$PORT_ON [postscreen]=$PORT_PS)

    # ------------------------------------------------------------------ the DNS server
    local records=$S3_TMP/dns.records r
    {
        echo "# the clients: PTR c-B-C-D.clients.bench and its A record, for each source address 198.B.C.D"
        gen_records "$RET_OFF" "$SOURCES"
        for r in $(seq 1 "$RUNS"); do gen_records $((NEW_OFF + (r - 1) * NEW_SESSIONS)) "$NEW_SESSIONS"; done
        echo "# the checks' clients: $(ip_of $((CHECK_OFF + 2))) DNSBL-listed (code 127.0.0.2), .3 blocked, .4 bad HELO"
        echo "A 2.254.19.198.dnsbl.bench 127.0.0.2 2100"
        gen_records $((CHECK_OFF + 2)) 3
    } >"$records"
    "$dns_bin" "$DNS_ADDR:53" "$records" dnsbl.bench clients.bench 18.198.in-addr.arpa 19.198.in-addr.arpa \
        >"$S3_TMP/dns.out" 2>&1 9>&- &
    DNS_PID=$!
    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$DNS_PID" 2>/dev/null \
        && ! grep -q '^bench_dns: serving' "$S3_TMP/dns.out"; do sleep 0.1; done
    grep -q '^bench_dns: serving' "$S3_TMP/dns.out" || die "the DNS server did not start: $(cat "$S3_TMP/dns.out")"
    log "$(cat "$S3_TMP/dns.out") (pid $DNS_PID)"

    # ------------------------------------------------------------------ hato, off and on
    local side
    for side in off on; do
        want "$side" || continue
        local dir=$S3_TMP/hato-$side checks=false admin
        [ "$side" = on ] && checks=true
        [ "$side" = on ] && admin=$ADMIN_ON || admin=$ADMIN_OFF
        mkdir -p "$dir"
        {
            cat <<EOF
# bench/edge.sh: hato with every edge check $side
[server]
hostname = "bench-hato.localdomain"
data_dir = "$dir/data"

[smtp]
listen = ["127.0.0.1:${PORT[$side]}"]

[admin]
listen = "127.0.0.1:$admin"

[throttle]
enabled = $checks

[edge]
reject_bad_helo = $checks
# PTR, then the name's A records (forward confirmation)
reverse_dns = $checks
# 0 on both sides: a delay would only measure itself
greeting_delay_ms = 0

[dns]
servers = ["$DNS_ADDR:53"]
EOF
            [ "$side" = on ] && cat <<EOF

[[dnsbl]]
zone = "dnsbl.bench"
removal_url = "https://dnsbl.bench/remove"
codes = { "127.0.0.2" = "test" }
EOF
        } >"$dir/hato.toml"
        "$HATO" serve --config "$dir/hato.toml" >"$dir/serve.log" 2>&1 9>&- &
        HATO_PID[$side]=$!
        if ! "${HELPER[@]}" wait-banner "${PORT[$side]}" 60 >/dev/null || ! "${HELPER[@]}" wait-port "$admin" 30; then
            tail -20 "$dir/serve.log" >&2
            die "hato ($side) does not answer (SMTP ${PORT[$side]}, admin $admin)"
        fi
        log "hato ($side): pid ${HATO_PID[$side]}, SMTP 127.0.0.1:${PORT[$side]}"
    done
    if want on; then
        # The provider's block list, BLOCKLIST entries, none of them a client of the load: one
        # lookup in the snapshot for every connection, whatever its size.
        local n=0 entry
        while [ "$n" -lt "$BLOCKLIST" ]; do
            case $n in
                0) entry=198.51.100.0/24 ;; 1) entry=203.0.113.0/24 ;; 2) entry=192.0.2.0/24 ;;
                3) entry=$(ip_of $((CHECK_OFF + 3))) ;;   # the one client on it: the check below
                *) entry=100.64.$(( (n - 4) / 250 )).$(( (n - 4) % 250 + 1 )) ;;
            esac
            "$HATO" --config "$S3_TMP/hato-on/hato.toml" blocklist add "$entry" --reason bench \
                >/dev/null 2>"$S3_TMP/blocklist.err" \
                || { cat "$S3_TMP/blocklist.err" >&2; die "hato blocklist add $entry failed"; }
            n=$((n + 1))
        done
        log "hato (on): $BLOCKLIST entries on the provider's block list"
        # a recipient, for the check of the block list (its refusal waits for RCPT, where a
        # tenant's IP allow list may let the client in)
        local h=("$HATO" --config "$S3_TMP/hato-on/hato.toml")
        { "${h[@]}" tenant add bench && "${h[@]}" domain add bench.test --tenant bench \
            && "${h[@]}" mailbox add user@bench.test; } >/dev/null 2>"$S3_TMP/setup.err" \
            || { cat "$S3_TMP/setup.err" >&2; die "hato (on): could not add the recipient user@bench.test"; }
    fi

    # ------------------------------------------------------------------ Postfix with postscreen
    if want postscreen; then
        start_postscreen
    fi

    # ------------------------------------------------------------------ are the checks on?
    CHECK_NOTES=()
    sanity_checks

    # ------------------------------------------------------------------ the runs
    SIDES=()
    for side in off on postscreen; do want "$side" && SIDES+=("$side"); done
    declare -gA RATE=() P50=() P99=() SRV=() DNS=() GEN=() REFUSED=() ERRORS=()
    OTHERS=
    if [ "$SESSIONS" -gt 0 ]; then
        # Warm-up: every source address connects once to every side (postscreen's first contact
        # takes postscreen_greet_wait: many at once), so the timed runs meet returning clients.
        local out
        for side in "${SIDES[@]}"; do
            out=$(load "$side" "$(ip_of "$RET_OFF")" "$SOURCES" "$SOURCES" "$NEW_CONCURRENCY")
            if [ "$(field ok "$out")" != "$SOURCES" ]; then
                sed 's/^/    /' "$S3_TMP/load.err" >&2
                log "WARNING: warm-up of $side: $out"
                CHECK_NOTES+=("the warm-up of $side (some returning clients are new to it)")
            fi
        done
        log "warm-up done: each of the $SOURCES returning clients has connected to each side once"
        for r in $(seq 1 "$RUNS"); do
            for side in $(order "$r"); do
                run_once ret "$side" "$r" "$(ip_of "$RET_OFF")" "$SOURCES" "$SESSIONS" "$CONCURRENCY"
            done
        done
    fi
    if [ "$NEW_SESSIONS" -gt 0 ]; then
        for r in $(seq 1 "$RUNS"); do
            for side in $(order "$r"); do
                run_once new "$side" "$r" "$(ip_of $((NEW_OFF + (r - 1) * NEW_SESSIONS)))" "$NEW_SESSIONS" "$NEW_SESSIONS" "$NEW_CONCURRENCY"
            done
        done
    fi
    report3
}

# gen_records OFFSET COUNT: the PTR and A records of the COUNT addresses from ip_of OFFSET on
gen_records() {
    awk -v base="$BASE_IP" -v off="$1" -v n="$2" 'BEGIN {
        for (i = 0; i < n; i++) {
            a = base + off + i
            b = int(a / 65536) % 256; c = int(a / 256) % 256; d = a % 256
            ip = "198." b "." c "." d
            name = "c-" b "-" c "-" d ".clients.bench"
            print "PTR", ip, name, 3600
            print "A", name, ip, 3600
        }
    }'
}

PF=
PF_ETC=
PF_SPOOL=
start_postscreen() {
    PF=$S3_TMP/postfix
    PF_ETC=$PF/etc
    PF_SPOOL=$PF/spool
    local data=$PF/data limit=$(( (CONCURRENCY > NEW_CONCURRENCY ? CONCURRENCY : NEW_CONCURRENCY) + 100 ))
    mkdir -p "$PF_ETC" "$PF_SPOOL" "$data"
    chown postfix "$data"
    PS_QUEUE_LIMIT=$limit
    cat >"$PF_ETC/main.cf" <<EOF
# private Postfix instance for bench/edge.sh: postscreen in front of smtpd (Postfix defaults
# unless noted); it receives nothing (the sessions end after EHLO)
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory = $data
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
# only this host: the load's clients (198.18.0.0/15) are not in mynetworks, which
# postscreen_access_list (permit_mynetworks) would exempt from every test
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_relay_restrictions = reject_unauth_destination
smtp_dns_support_level = disabled
# smtpd_peername_lookup = yes (the default): smtpd looks up each client's PTR and confirms it
# forward, as hato's [edge] reverse_dns does, against the same DNS server (/etc/resolv.conf of
# the namespace's /etc/resolv.conf)

# postscreen: the DNS block list and the pregreet test enforced
postscreen_dnsbl_sites = dnsbl.bench=127.0.0.2
postscreen_dnsbl_threshold = 1
postscreen_dnsbl_action = enforce
postscreen_greet_action = enforce
# the least a first contact waits (the pregreet test passes when it ends); default 6s, 2s
# under stress; a returning client passed it within postscreen_greet_ttl (1d) and skips it
postscreen_greet_wait = 1s
# default \$default_process_limit (100), raised to the load's clients at once plus 100: at the
# default, 100 first contacts at once fill the pregreet queue and the next is told 421 4.3.2
# "All screening ports are busy"
postscreen_pre_queue_limit = $limit
postscreen_post_queue_limit = $limit
# the after-220 ("deep protocol") tests stay off (the default): with them on, a new client
# is told 4xx "try again" after passing, and only its next connection reaches smtpd
# postscreen_cache_map: the default (btree:\$data_directory/postscreen_cache)
EOF
    cat >"$PF_ETC/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PORT_PS inet n       -       n       -       1       postscreen
smtpd     pass  -       -       n       -       -       smtpd
dnsblog   unix  -       -       n       -       0       dnsblog
tlsproxy  unix  -       -       n       -       0       tlsproxy
EOF
    postfix_services >>"$PF_ETC/master.cf"
    postfix -c "$PF_ETC" check || die "postfix check failed (see above)"
    postfix -c "$PF_ETC" start >"$S3_TMP/postfix-start.log" 2>&1 9>&- \
        || { cat "$S3_TMP/postfix-start.log" "$PF/maillog" >&2 2>/dev/null; die "postfix start failed"; }
    PF_STARTED=1
    local banner
    banner=$("${HELPER[@]}" wait-banner "$PORT_PS" 30) \
        || { tail -20 "$PF/maillog" >&2; die "postscreen does not answer on $PORT_PS"; }
    case $banner in *bench-postfix.localdomain*) ;; *) die "unexpected banner on $PORT_PS: $banner" ;; esac
    log "postscreen: private Postfix $(postconf -h mail_version) on 127.0.0.1:$PORT_PS (resolver $DNS_ADDR)"
}

# load SIDE FIRST SOURCES SESSIONS CONCURRENCY [EHLO]: run conn_load, print its line
load() {
    local side=$1 first=$2 sources=$3 sessions=$4 conc=$5 ehlo=${6:-client.bench}
    "$ROOT/target/release/examples/conn_load" "127.0.0.1:${PORT[$side]}" "$first" "$sources" \
        "$sessions" "$conc" "$ehlo" 30 2>"$S3_TMP/load.err" 9>&- \
        || { cat "$S3_TMP/load.err" >&2; die "conn_load against $side failed to run"; }
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

# check TEXT SIDE SOURCE EHLO WANT: one session; WANT "ok" or the start of the refusal's reply
check() {
    local text=$1 side=$2 src=$3 ehlo=$4 want=$5 out got
    out=$(load "$side" "$src" 1 1 1 "$ehlo")
    if [ "$(field ok "$out")" = 1 ]; then got=ok; else got=$(head -1 "$S3_TMP/load.err" | sed 's/^conn_load: //'); fi
    case $got in
        *"$want"*) echo "  ok    $text: $got" ;;
        *) echo "  FAIL  $text: expected $want, got: $got"; CHECK_NOTES+=("$text") ;;
    esac
}

# wait_log PATTERN SECONDS: wait until the private Postfix's maillog has a line matching it
wait_log() {
    local deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        grep -qE "$1" "$PF/maillog" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# probe_rcpt SIDE SOURCE: one session from SOURCE to RCPT TO:<user@bench.test>; prints the RCPT
# reply, or the reply that refused the session before it
probe_rcpt() {
    python3 - "${PORT[$1]}" "$2" <<'EOF' 2>&1 | tail -1
import socket, sys
s = socket.socket()
s.settimeout(10)
s.bind((sys.argv[2], 0))
s.connect(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline(1000).decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 4 or line[3] != "-":
            return line
for cmd in (None, "EHLO probe.bench", "MAIL FROM:<probe@example.org>", "RCPT TO:<user@bench.test>"):
    if cmd:
        s.sendall((cmd + "\r\n").encode())
    r = reply()
    if not r[:1] in ("2", "3") or (cmd or "").startswith("RCPT"):
        print(r)
        break
s.sendall(b"QUIT\r\n")
EOF
}

sanity_checks() {
    local listed blocked helo ret ptr got
    listed=$(ip_of $((CHECK_OFF + 2)))
    blocked=$(ip_of $((CHECK_OFF + 3)))
    helo=$(ip_of $((CHECK_OFF + 4)))
    ret=$(ip_of "$RET_OFF")
    echo "checks before the runs (each side set up as it says):"
    if want off; then
        check "hato off lets a DNSBL-listed client in" off "$listed" client.bench ok
        check "hato off takes its own name in EHLO" off "$helo" bench-hato.localdomain ok
    fi
    if want on; then
        check "hato on lets a returning client in" on "$ret" client.bench ok
        check "hato on refuses a DNSBL-listed client" on "$listed" client.bench "5.7.1"
        check "hato on refuses its own name in EHLO" on "$helo" bench-hato.localdomain "5.7.506"
        got=$(probe_rcpt on "$(ip_of $((RET_OFF + 1)))")
        case $got in
            250*) echo "  ok    hato on takes a recipient from a client not blocked: $got" ;;
            *) echo "  FAIL  hato on takes a recipient from a client not blocked: $got"; CHECK_NOTES+=("hato on's RCPT") ;;
        esac
        got=$(probe_rcpt on "$blocked")
        case $got in
            *5.7.606*) echo "  ok    hato on refuses a client on the provider's block list (at RCPT): $got" ;;
            *) echo "  FAIL  hato on refuses a client on the provider's block list: $got"; CHECK_NOTES+=("hato on's block list") ;;
        esac
        # the bad HELO's row in the connection log names the client by its confirmed PTR
        ptr=$("$HATO" --config "$S3_TMP/hato-on/hato.toml" connections --ip "$helo" --json 2>&1 \
            | python3 -c 'import json, sys; v = json.load(sys.stdin); rows = v["rows"] if isinstance(v, dict) else v; print(rows[0]["ptr"] if rows else "(no row)")' 2>&1 | tail -1)
        if [ "$ptr" = "c-$(tr . - <<<"${helo#198.}").clients.bench" ]; then
            echo "  ok    hato on confirms the client's PTR: its connection log names $helo $ptr"
        else
            echo "  FAIL  hato on confirms the client's PTR: its connection log names $helo \"$ptr\""
            CHECK_NOTES+=("hato on's reverse DNS")
        fi
    fi
    if want postscreen; then
        check "postscreen lets a first-time client through (pregreet passed)" postscreen "$ret" client.bench ok
        local name re
        name="c-$(tr . - <<<"${ret#198.}").clients.bench"
        re="postfix/smtpd.*connect from ${name//./\\.}\\[${ret//./\\.}\\]"
        if wait_log "$re" 10; then
            echo "  ok    postscreen's smtpd confirms the client's PTR: its log says connect from $name[$ret]"
        else
            echo "  FAIL  postscreen's smtpd confirms the client's PTR (no 'connect from $name[$ret]' in its log)"
            CHECK_NOTES+=("postscreen's PTR")
        fi
        # enforce: the listed client is told 550 at RCPT, not at connect; the log says why
        load postscreen "$listed" 1 1 1 >/dev/null
        re="postscreen.*DNSBL rank [0-9]+ for \\[${listed//./\\.}\\]"
        if wait_log "$re" 10; then
            echo "  ok    postscreen finds the DNSBL-listed client: $(grep -oE "DNSBL rank [0-9]+ for \\[${listed//./\\.}\\]" "$PF/maillog" | head -1)"
        else
            echo "  FAIL  postscreen finds the DNSBL-listed client (no 'DNSBL rank' line in its log)"
            CHECK_NOTES+=("postscreen's DNSBL")
        fi
    fi
}

# order ROUND: the sides, in reverse every other round
order() {
    if [ $(($1 % 2)) = 1 ]; then echo "${SIDES[@]}"; else
        local k out=(); for ((k=${#SIDES[@]}-1; k>=0; k--)); do out+=("${SIDES[k]}"); done; echo "${out[@]}"
    fi
}

# server_pids SIDE: the processes whose CPU time is the side's (Postfix: the master and all its
# children, postscreen, dnsblog, smtpd and the rest; reaped ones count too)
server_pids() {
    case $1 in
        off|on) echo "${HATO_PID[$1]}" ;;
        postscreen) tr -d ' ' <"$PF_SPOOL/pid/master.pid" ;;
    esac
}

# our_pids: this script (its children: hato, the DNS server, the load generator) and the private
# Postfix's master (a daemon: not a child); the rest of the machine is "other work"
our_pids() { echo $$ "$(tr -d ' ' <"$PF_SPOOL/pid/master.pid" 2>/dev/null)"; }

# run_once SCENARIO SIDE ROUND FIRST SOURCES SESSIONS CONCURRENCY
run_once() {
    local sc=$1 side=$2 r=$3 first=$4 sources=$5 sessions=$6 conc=$7 s0 s1 d0 d1 a0 a1 out k
    local -a srv
    read -r -a srv <<<"$(server_pids "$side")"
    s0=$("${HELPER[@]}" cpu-snap "${srv[@]}")
    d0=$("${HELPER[@]}" cpu-snap "$DNS_PID")
    # shellcheck disable=SC2046
    a0=$("${HELPER[@]}" cpu-snap $(our_pids))
    out=$(load "$side" "$first" "$sources" "$sessions" "$conc")
    s1=$("${HELPER[@]}" cpu-snap "${srv[@]}")
    d1=$("${HELPER[@]}" cpu-snap "$DNS_PID")
    # shellcheck disable=SC2046
    a1=$("${HELPER[@]}" cpu-snap $(our_pids))
    # the server's and the DNS server's CPU per connection (us; ticks are 10 ms), and the share
    # of the machine's CPU that other work (not this script, its load generator and the servers)
    # used meanwhile
    local srv_us dns_us others
    per_conn() { awk -v a="$1" -v b="$2" -v n="$sessions" 'BEGIN { split(a, x); split(b, y); printf "%.0f", (y[3] - x[3]) * 10000 / n }'; }
    srv_us=$(per_conn "$s0" "$s1")
    dns_us=$(per_conn "$d0" "$d1")
    others=$(awk -v a="$a0" -v b="$a1" 'BEGIN { split(a, x); split(b, y); t = y[2] - x[2];
        o = (y[1] - x[1]) - (y[3] - x[3]); printf "%.0f", (t > 0 && o > 0) ? 100 * o / t : 0 }')
    k=$sc.$side
    RATE[$k]+=" $(field rate "$out")"
    P50[$k]+=" $(field p50_ms "$out")"
    P99[$k]+=" $(field p99_ms "$out")"
    SRV[$k]+=" $srv_us"
    DNS[$k]+=" $dns_us"
    GEN[$k]+=" $(field cpu_us "$out")"
    REFUSED[$k]=$(( ${REFUSED[$k]:-0} + $(field refused "$out") ))
    ERRORS[$k]=$(( ${ERRORS[$k]:-0} + $(field errors "$out") ))
    OTHERS+=" $others"
    if [ "$(field refused "$out")" != 0 ] || [ "$(field errors "$out")" != 0 ]; then
        sed 's/^/    /' "$S3_TMP/load.err" >&2
    fi
    log "run $r $sc $side: $(field ok "$out") of $sessions sessions ok in $(field secs "$out")s = $(field rate "$out")/s," \
        "p50 $(field p50_ms "$out") ms, p99 $(field p99_ms "$out") ms; refused $(field refused "$out"), errors $(field errors "$out");" \
        "CPU per connection: server ${srv_us} us, DNS server ${dns_us} us, load generator $(field cpu_us "$out") us; other work ${others}%"
}

median() { "${HELPER[@]}" median "$@"; }

report3() {
    local sc title k side
    echo
    echo "hato off:   [throttle] enabled = false, no [[dnsbl]], [edge] reject_bad_helo = false and reverse_dns = false, greeting_delay_ms = 0"
    echo "hato on:    [throttle] on (defaults), [[dnsbl]] dnsbl.bench, $BLOCKLIST entries on the provider's block list," \
         "[edge] reject_bad_helo = true, reverse_dns = true (PTR and its forward A); greeting_delay_ms = 0 (a delay would only measure itself)"
    echo "postscreen: Postfix $(postconf -h mail_version 2>/dev/null): postscreen_dnsbl_sites = dnsbl.bench (enforce), postscreen_greet_action = enforce, postscreen_greet_wait = 1s," \
         "no after-220 tests, cache on its default; smtpd confirms each client's PTR (smtpd_peername_lookup = yes); postscreen_pre_queue_limit and postscreen_post_queue_limit ${PS_QUEUE_LIMIT:-100} (default 100)"
    echo "DNS:        one authoritative server (hato-dns's test server, hickory) at $DNS_ADDR:53 of the namespace for all sides: PTR/A TTL 3600 s, NXDOMAIN with the SOA's 300 s"
    echo "load:       conn_load (one thread): connect, banner, EHLO, QUIT, 221; each session from its own source address in 198.18.0.0/15 in turn (a network namespace's loopback device)"
    echo "machine:    $(nproc) CPUs shared by the servers, the DNS server and the load generator; CPU used by other work during the runs, %:$OTHERS"
    if awk -v l="$OTHERS" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) if (a[i] > 10) exit 0; exit 1 }'; then
        echo "NOTE: other processes competed for the CPU during some runs; those figures are skewed"
    fi
    for sc in ret new; do
        if [ "$sc" = ret ]; then
            [ "$SESSIONS" -gt 0 ] || continue
            title="returning clients: $SESSIONS sessions a run, $CONCURRENCY at once, from $SOURCES addresses ($(ip_of "$RET_OFF") on; each connected in the warm-up; $(( (SESSIONS + SOURCES - 1) / SOURCES )) sessions each a run)"
        else
            [ "$NEW_SESSIONS" -gt 0 ] || continue
            title="first contact: $NEW_SESSIONS sessions a run, $NEW_CONCURRENCY at once, each from an address no side has seen ($(ip_of "$NEW_OFF") on)"
        fi
        echo
        echo "$title"
        printf '  %-11s %7s  %-22s %7s %7s %10s %7s %10s %7s %6s\n' side "conn/s" "(runs)" "p50 ms" "p99 ms" "server us" "DNS us" "loadgen us" refused errors
        for side in "${SIDES[@]}"; do
            k=$sc.$side
            # shellcheck disable=SC2086
            printf '  %-11s %7.0f  %-22s %7.1f %7.1f %10.0f %7.0f %10.0f %7s %6s\n' "hato $side" \
                "$(median ${RATE[$k]})" "(${RATE[$k]# })" "$(median ${P50[$k]})" "$(median ${P99[$k]})" \
                "$(median ${SRV[$k]})" "$(median ${DNS[$k]})" "$(median ${GEN[$k]})" "${REFUSED[$k]}" "${ERRORS[$k]}" \
                | sed 's/^  hato postscreen/  postscreen /'
        done
        # shellcheck disable=SC2086
        if want on && want off; then
            awk -v a="$(median ${RATE[$sc.on]})" -v b="$(median ${RATE[$sc.off]})" 'BEGIN { printf "  ratio hato on / hato off:   %.2f\n", a / b }'
        fi
        # shellcheck disable=SC2086
        if want on && want postscreen; then
            awk -v a="$(median ${RATE[$sc.on]})" -v b="$(median ${RATE[$sc.postscreen]})" 'BEGIN { printf "  ratio hato on / postscreen: %.2f\n", a / b }'
        fi
        if [ "$sc" = new ] && want postscreen; then
            echo "  (postscreen's first contacts wait postscreen_greet_wait, 1 s, for the pregreet test: its rate here is about"
            echo "   NEW_CONCURRENCY a second whatever its CPU; a client that waits for the banner passes, and skips the wait for a day)"
        fi
    done
    echo "(conn/s: median of $RUNS runs, the order of the sides alternating; p50/p99: one whole session, median over the runs;"
    echo " server us, DNS us, loadgen us: CPU time per connection of the server's processes, of the DNS server, of the load generator)"
    if [ "${#CHECK_NOTES[@]}" -gt 0 ]; then
        local notes
        notes=$(printf '%s; ' "${CHECK_NOTES[@]}")
        echo "NOTE: not as set up: ${notes%; } — those figures are not what they say"
    fi
}

if [ -n "${EDGE_NETNS:-}" ]; then
    section3_inner    # in its own namespaces: see section3
    exit 0
fi
echo "edge benchmark: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
if section 1; then
    echo
    echo "== 1. decision cost per connection (no DNS) =="
    "$BENCH" cost "$CONNECTIONS" "$KNOWN" 9>&-
fi
if section 2; then
    echo
    echo "== 2. memory of the throttle's state =="
    "$BENCH" memory "$IPS" 9>&-
fi
if section 3; then
    echo
    echo "== 3. SMTP connections per second, all checks on vs. off, beside Postfix postscreen =="
    section3
fi
echo
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
