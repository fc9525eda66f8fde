#!/usr/bin/env python3
"""Helper of bench/stall.sh: sets a hato server up through its admin API, sends the stalling
message and the other tenant's trickle over SMTP, and reads the figures from the server's own
timestamps in its database (read-only).

Commands:
  setup ADMIN TOKEN                 tenants "big" (big.test) and "other" (other.test), a mailbox in
                                    each, the Microsoft 365 group team@big.test
  mailboxes ADMIN TOKEN N THREADS   N mailboxes m<i>@big.test (department "all") through the API
                                    with a thread pool, and the dynamic group all@big.test
  run SMTP DB SCENARIO MAX_WAIT     SCENARIO "header": a message with a 35 MB header (References
                                    with ~1 million ids) to team@big.test; "members": a message to
                                    all@big.test. Meanwhile a message to user@other.test every
                                    100 ms. Prints the figures.
"""
import concurrent.futures
import json
import smtplib
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request

MAX_SIZE = 36_700_160  # hato's default max_message_size (35 MB)


def call(admin, token, method, path, body):
    req = urllib.request.Request(
        f"http://{admin}{path}",
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code == 409:
                return None
            raise SystemExit(f"{method} {path}: {e.code} {e.read().decode()}")
        except (urllib.error.URLError, ConnectionError):
            if attempt == 4:
                raise
            time.sleep(0.5)


def setup(admin, token):
    for name in ("big", "other"):
        call(admin, token, "POST", "/api/v1/tenants", {"name": name})
        call(admin, token, "POST", "/api/v1/domains", {"domain": f"{name}.test", "tenant": name})
        call(admin, token, "POST", "/api/v1/mailboxes", {"address": f"user@{name}.test", "quota_mb": 1_000_000})
    call(admin, token, "POST", "/api/v1/groups", {
        "type": "m365", "tenant": "big", "address": "team@big.test", "owners": ["user@big.test"],
        "members": ["user@big.test"], "auto_subscribe_new_members": True,
        "require_sender_authentication": False})


def mailboxes(admin, token, n, threads):
    start = time.time()

    def one(i):
        call(admin, token, "POST", "/api/v1/mailboxes",
             {"address": f"m{i}@big.test", "department": "all", "quota_mb": 1000})

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(n), chunksize=64):
            pass
    call(admin, token, "POST", "/api/v1/groups", {
        "type": "dynamic", "tenant": "big", "address": "all@big.test", "owners": ["user@big.test"],
        "recipient_filter": "Department -eq 'all'", "require_sender_authentication": False})
    print(f"created {n} mailboxes through the API in {time.time() - start:.1f} s")


def header_message():
    """A message as big as hato takes, nearly all of it a References field of folded ids."""
    head = "From: sender@example.org\r\nTo: team@big.test\r\nSubject: stall header\r\nReferences:"
    tail = "\r\nIn-Reply-To: <parent@example.org>\r\n\r\nbody\r\n"
    # Room for Received and Message-ID headers the server adds, and for the SIZE check.
    budget = MAX_SIZE - 4096 - len(head) - len(tail)
    parts, size, i = [], 0, 0
    while True:
        line = f" <reference-{i:08d}@example.org>\r\n"
        if size + len(line) > budget:
            break
        parts.append(line)
        size += len(line)
        i += 1
    body = head + "".join(parts).rstrip("\r\n") + tail
    return body.encode(), i


def send(smtp, to, data, timeout=600):
    host, port = smtp.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=timeout) as s:
        s.sendmail("sender@example.org", [to], data)


def db(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def run(smtp, path, scenario, max_wait):
    if scenario == "header":
        data, ids = header_message()
        target = "team@big.test"
        print(f"message: {len(data)} bytes, References with {ids} ids, to {target}")
    else:
        data = b"From: sender@example.org\r\nTo: all@big.test\r\nSubject: stall members\r\n\r\nbody\r\n"
        target = "all@big.test"
        print(f"message: {len(data)} bytes to the dynamic group {target}")

    stop = threading.Event()
    refused = []

    def trickle():
        n = 0
        while not stop.is_set():
            t = time.time()
            try:
                # A server whose store is stalled does not answer DATA: 20 s is "not accepted".
                send(smtp, "user@other.test", f"Subject: other {n}\r\n\r\nhello\r\n".encode(), 20)
            except Exception:  # noqa: BLE001 - a refused or unanswered message is counted, not fatal
                refused.append(n)
            n += 1
            stop.wait(max(0.0, 0.1 - (time.time() - t)))

    # The trickle runs for a second before the big message, during it, and a second after.
    thread = threading.Thread(target=trickle)
    thread.start()
    time.sleep(1)
    t0 = time.time()
    send(smtp, target, data)
    accepted = time.time()
    print(f"big message accepted (250) after {accepted - t0:.2f} s of SMTP transfer")

    con = db(path)
    msg = con.execute("SELECT id, received FROM messages WHERE subject LIKE 'stall %' ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    message_id, received = msg
    deadline = accepted + max_wait
    done_at = None
    while time.time() < deadline:
        con = db(path)
        try:
            if scenario == "header":
                row = con.execute(
                    "SELECT status, updated FROM recipients WHERE message_id = ? AND address = ?",
                    (message_id, target)).fetchone()
                if row and row[0] != "Pending":
                    done_at = row[1]
            else:
                row = con.execute(
                    "SELECT count(*), sum(status = 'Delivered'), max(updated) FROM recipients "
                    "WHERE message_id = ? AND address LIKE 'm%@big.test'", (message_id,)).fetchone()
                total, delivered, last = row[0], row[1] or 0, row[2]
                if total > 0 and delivered == total:
                    done_at = last
        finally:
            con.close()
        if done_at:
            break
        time.sleep(0.05)
    time.sleep(1)
    stop.set()
    thread.join(30)
    # The trickle's last messages get the time they need (up to 10 s) before the figures.
    for _ in range(200):
        con = db(path)
        left = con.execute(
            "SELECT count(*) FROM recipients r JOIN messages m ON m.id = r.message_id "
            "WHERE r.address = 'user@other.test' AND r.status != 'Delivered'").fetchone()[0]
        con.close()
        if left == 0:
            break
        time.sleep(0.05)
    cutoff = time.time()

    con = db(path)
    if scenario == "header":
        if done_at:
            print(f"group recipient routed {(done_at - received) / 1e6:.3f} s after it was queued (target < 1 s)")
        else:
            print(f"group recipient NOT routed within {max_wait} s")
    else:
        total, delivered = con.execute(
            "SELECT count(*), sum(status = 'Delivered') FROM recipients WHERE message_id = ? "
            "AND address LIKE 'm%@big.test'", (message_id,)).fetchone()
        if done_at:
            print(f"all {total} member copies delivered {(done_at - received) / 1e6:.2f} s after the message was queued")
        else:
            print(f"NOT done within {max_wait} s: {delivered or 0} of {total} member copies delivered "
                  f"({'expansion not yet written' if total == 0 else 'still delivering'})")
    rows = con.execute(
        "SELECT m.received, r.status, r.updated FROM recipients r JOIN messages m ON m.id = r.message_id "
        "WHERE r.address = 'user@other.test' AND m.received >= ?", (received - 1_500_000,)).fetchall()
    con.close()
    now_us = cutoff * 1e6
    lat = sorted(((u - r) if s == "Delivered" else (now_us - r)) / 1e3 for r, s, u in rows)
    waiting = sum(1 for _, s, _ in rows if s != "Delivered")
    if lat:
        med = lat[len(lat) // 2]
        print(f"other tenant meanwhile: {len(lat)} messages, delivery latency median {med:.0f} ms, "
              f"max {lat[-1]:.0f} ms" + (f", {waiting} still undelivered at the end" if waiting else ""))
    else:
        print("other tenant meanwhile: no message got queued")
    if refused:
        print(f"other tenant meanwhile: {len(refused)} messages not accepted (no 250 within 20 s)")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif cmd == "mailboxes":
        mailboxes(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        raise SystemExit(__doc__)
