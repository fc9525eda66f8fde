#!/usr/bin/env python3
"""Small helpers for bench/inbound.sh (Python 3.11, standard library only).

Subcommands:
  freeport [N]                    print N free TCP ports on 127.0.0.1 (default 1)
  wait-banner PORT TIMEOUT        wait until 127.0.0.1:PORT answers with a "220" banner; print it
  wait-port PORT TIMEOUT          wait until 127.0.0.1:PORT accepts TCP connections
  median X [X ...]                print the median of the numbers
  rss PID FIELD                   print /proc/PID/status FIELD (VmRSS, VmHWM) in MB
  tree-rss PID [PID ...]          print the summed VmRSS (MB) of the PIDs and all their descendants
  idle SMTP_PORT COUNT PID [PID...]
        open COUNT concurrent SMTP sessions to 127.0.0.1:SMTP_PORT, each reads the 220
        banner and sends "EHLO idle.test" (reading the whole 250 reply), then stays idle;
        with all of them open, print the summed VmRSS (MB) of the PIDs and their
        descendants (one line "rss_mb=N open=K"), then close the sessions.
  count-json FILE                 print the length of the JSON array in FILE (or of its "rows")
  cpu-snap PID [PID ...]          print "busy total ours": CPU ticks of the whole machine spent in
                                  user+nice+system, all ticks, and the ticks of the PIDs and their
                                  descendants (including reaped children); two snapshots give the
                                  share of the machine that other work used in between
  cpu-others SNAP1 SNAP2          print that share in percent (SNAPs as printed, quoted)
"""

import json
import os
import resource
import socket
import statistics
import sys
import time


def freeport(n=1):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def read_reply(sock, buf=b""):
    """Read one (possibly multi-line) SMTP reply; returns (reply_bytes, rest)."""
    while True:
        lines = buf.split(b"\r\n")
        # complete lines are all but the last element
        for i, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" " or len(line) == 3:
                end = sum(len(x) + 2 for x in lines[: i + 1])
                return buf[:end], buf[end:]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed; got %r" % buf[:200])
        buf += chunk


def wait_banner(port, timeout):
    deadline = time.monotonic() + float(timeout)
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
                reply, _ = read_reply(s)
                if reply.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    print(reply.decode("utf-8", "replace").splitlines()[0])
                    return 0
                last = reply
        except OSError as e:
            last = e
        time.sleep(0.2)
    print("no 220 banner on 127.0.0.1:%s within %ss (last: %r)" % (port, timeout, last), file=sys.stderr)
    return 1


def wait_port(port, timeout):
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
            return 0
        except OSError:
            time.sleep(0.2)
    print("nothing listens on 127.0.0.1:%s after %ss" % (port, timeout), file=sys.stderr)
    return 1


def status_field(pid, field):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    return 0


def descendants(pids):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = set(), [int(p) for p in pids]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo.extend(children.get(p, []))
    return out


def tree_rss_mb(pids):
    total = 0
    for p in descendants(pids):
        try:
            total += status_field(p, "VmRSS")
        except OSError:
            pass
    return total / 1024.0


def idle(port, count, pids):
    count = int(count)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, count + 256) if hard != resource.RLIM_INFINITY else count + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks, errors = [], []
    try:
        for _ in range(count):
            if len(errors) >= 10:
                break  # the server is not coping; do not wait for every timeout
            try:
                s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
                reply, rest = read_reply(s)
                if not reply.startswith(b"220"):
                    errors.append("banner: %r" % reply[:100])
                    s.close()
                    continue
                s.sendall(b"EHLO idle.test\r\n")
                reply, _ = read_reply(s, rest)
                if not reply.startswith(b"250"):
                    errors.append("EHLO: %r" % reply[:100])
                    s.close()
                    continue
                socks.append(s)
            except OSError as e:
                errors.append(repr(e))
        time.sleep(2)  # let the server settle with everything open
        # check the sessions are still open (the server has not closed them)
        alive = 0
        for s in socks:
            s.setblocking(False)
            try:
                data = s.recv(1)
                if data:
                    alive += 1  # unexpected data, but open
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        rss = tree_rss_mb(pids)
        print("rss_mb=%.1f open=%d alive=%d" % (rss, len(socks), alive))
        if errors:
            print("idle: %d sessions failed, first: %s" % (len(errors), errors[0]), file=sys.stderr)
    finally:
        for s in socks:
            try:
                s.setblocking(True)
                s.settimeout(2)
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            s.close()
    return 0 if len(socks) == count else 1


def cpu_snap(pids):
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:9]]
    busy = t[0] + t[1] + t[2]  # user nice system (irq/softirq are not charged to processes)
    total = sum(t)
    ours = 0
    for p in descendants(pids):
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2 :].split()
            ours += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError):
            pass
    print(busy, total, ours)


def cpu_others(a, b):
    a, b = [int(x) for x in a.split()], [int(x) for x in b.split()]
    total = b[1] - a[1]
    others = (b[0] - a[0]) - (b[2] - a[2])
    print("%.0f" % max(0.0, 100.0 * others / total) if total > 0 else "0")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport(int(args[0]) if args else 1)
    elif cmd == "wait-banner":
        return wait_banner(args[0], args[1])
    elif cmd == "wait-port":
        return wait_port(args[0], args[1])
    elif cmd == "median":
        print("%.1f" % statistics.median(float(x) for x in args))
    elif cmd == "rss":
        print("%.1f" % (status_field(args[0], args[1]) / 1024.0))
    elif cmd == "tree-rss":
        print("%.1f" % tree_rss_mb(args))
    elif cmd == "idle":
        return idle(args[0], args[1], args[2:])
    elif cmd == "cpu-snap":
        cpu_snap(args)
    elif cmd == "cpu-others":
        cpu_others(args[0], args[1])
    elif cmd == "count-json":
        with open(args[0]) as f:
            v = json.load(f)
        # `hato trace --json` answers one page: {"rows": [...], "more": ...}.
        print(len(v["rows"]) if isinstance(v, dict) else len(v))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
