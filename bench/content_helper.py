#!/usr/bin/env python3
"""The SMTP client of bench/content.sh part 2b (Python 3.11, standard library only).

Usage:
  content_helper.py send PORT SERVER_PID SESSIONS FILE_LIST [PER_CONNECTION]

Reads every file named in FILE_LIST (one path a line) into memory first, each made ready to
send as a mail client would: the mbox "From " line stripped, line ends CRLF (a lone CR or LF
becomes CRLF), lines longer than 998 octets broken by CRLF SPACE as Postfix's smtp client
does (smtp_line_length_limit; RFC 5321 4.5.3.1.6 limits a line to 1000 octets with its CRLF),
dot-stuffed (RFC 5321 4.5.2), the terminating "." line added.

Then, timed: SESSIONS concurrent SMTP sessions to 127.0.0.1:PORT (asyncio, one thread), the
messages dealt to them in turn; each session sends PER_CONNECTION messages (default 100) over
one connection, then QUIT and a new connection, until its share is sent. Every message is
MAIL FROM:<sender@example.org> (BODY=8BITMIME when offered), RCPT TO:<user@bench.test>, DATA,
pipelined (RFC 2920) when the server offers PIPELINING. The clock stops at the reply to the
last message's data (the last "250").

Prints one line:
  messages N accepted A refused R deferred D failed F wall_s W cpu_s C msgs_per_s X msgs_per_cpu_s Y
where refused/deferred count 5xx/4xx replies to a message (at MAIL, RCPT or the end of data),
failed counts messages lost to a broken connection, cpu_s is the CPU time (utime + stime,
/proc/SERVER_PID/stat) the server used from the first connection to the last reply, and
msgs_per_cpu_s is N / cpu_s. Exits 1 if any message failed, or nothing was accepted.
"""

import asyncio
import os
import sys
import time

SENDER = b"sender@example.org"
RCPT = b"user@bench.test"
LINE_MAX = 998
# No reply takes this long on a working server: a session waiting longer is broken.
REPLY_TIMEOUT = 120.0
# A broken connection is not retried past this many times in one run.
MAX_FAILURES = 10


def prepare(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        raw = b"" if nl < 0 else raw[nl + 1 :]
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        while len(line) > LINE_MAX:
            out.append(line[:LINE_MAX])
            line = b" " + line[LINE_MAX:]
        out.append(line)
    out = [b"." + l if l.startswith(b".") else l for l in out]
    return b"\r\n".join(out) + b"\r\n.\r\n"


def server_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime stime


class Counts:
    def __init__(self):
        self.accepted = self.refused = self.deferred = self.failed = 0
        self.failures = []
        self.last_reply = 0.0

    def reply(self, code):
        if code.startswith(b"2"):
            self.accepted += 1
        elif code.startswith(b"4"):
            self.deferred += 1
        else:
            self.refused += 1
        self.last_reply = time.monotonic()


async def read_reply(reader):
    """One (possibly multi-line) reply, as bytes."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
        if not line:
            raise ConnectionError("connection closed after %r" % b"".join(lines)[:200])
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def connection(port, messages, counts):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), REPLY_TIMEOUT
    )
    try:
        banner = await read_reply(reader)
        if not banner.startswith(b"220"):
            raise ConnectionError("banner: %r" % banner[:200])
        writer.write(b"EHLO bench-client.test\r\n")
        ehlo = await read_reply(reader)
        if not ehlo.startswith(b"250"):
            raise ConnectionError("EHLO: %r" % ehlo[:200])
        pipelining = b"PIPELINING" in ehlo.upper()
        body = b" BODY=8BITMIME" if b"8BITMIME" in ehlo.upper() else b""
        mail = b"MAIL FROM:<" + SENDER + b">" + body + b"\r\n"
        rcpt = b"RCPT TO:<" + RCPT + b">\r\n"
        for i, data in enumerate(messages):
            try:
                if pipelining:
                    writer.write(mail + rcpt + b"DATA\r\n")
                    replies = [await read_reply(reader) for _ in range(3)]
                else:
                    replies = []
                    for command in (mail, rcpt, b"DATA\r\n"):
                        writer.write(command)
                        replies.append(await read_reply(reader))
                        if not replies[-1][:1] in (b"2", b"3"):
                            break
                if replies[-1].startswith(b"354"):
                    writer.write(data)
                    counts.reply((await read_reply(reader))[:3])
                else:
                    # The first refusal is the message's answer (a later 503 only follows it).
                    bad = next(r for r in replies if r[:1] not in (b"2", b"3"))
                    counts.reply(bad[:3])
                    writer.write(b"RSET\r\n")
                    await read_reply(reader)
            except (OSError, ConnectionError, asyncio.TimeoutError) as e:
                counts.failed += len(messages) - i
                counts.failures.append(repr(e))
                return
        writer.write(b"QUIT\r\n")
        try:
            await asyncio.wait_for(reader.read(), 5)
        except (OSError, asyncio.TimeoutError):
            pass
    finally:
        writer.close()


async def session(port, messages, per_connection, counts):
    for start in range(0, len(messages), per_connection):
        chunk = messages[start : start + per_connection]
        if len(counts.failures) >= MAX_FAILURES:
            counts.failed += len(chunk)
            continue
        try:
            await connection(port, chunk, counts)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            # Before the first message of the chunk: all of it is lost.
            counts.failed += len(chunk)
            counts.failures.append(repr(e))


def send(port, pid, sessions, file_list, per_connection):
    with open(file_list) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    messages = [prepare(p) for p in paths]
    shares = [messages[i::sessions] for i in range(sessions)]
    counts = Counts()
    tck = os.sysconf("SC_CLK_TCK")

    async def run():
        await asyncio.gather(*(session(port, s, per_connection, counts) for s in shares if s))

    cpu0 = server_cpu_ticks(pid)
    t0 = time.monotonic()
    asyncio.run(run())
    cpu1 = server_cpu_ticks(pid)
    end = counts.last_reply if counts.last_reply > 0 else time.monotonic()
    wall = max(end - t0, 1e-9)
    cpu = (cpu1 - cpu0) / tck
    n = len(messages)
    print(
        "messages %d accepted %d refused %d deferred %d failed %d wall_s %.3f cpu_s %.2f "
        "msgs_per_s %.0f msgs_per_cpu_s %.0f"
        % (n, counts.accepted, counts.refused, counts.deferred, counts.failed, wall, cpu,
           n / wall, n / cpu if cpu > 0 else 0)
    )
    if counts.failures:
        print("%d connections failed, first: %s" % (len(counts.failures), counts.failures[0]),
              file=sys.stderr)
    return 1 if counts.failed or counts.accepted == 0 else 0


def main(argv):
    if len(argv) < 6 or argv[1] != "send":
        print(__doc__, file=sys.stderr)
        return 2
    port, pid, sessions = int(argv[2]), int(argv[3]), int(argv[4])
    per_connection = int(argv[6]) if len(argv) > 6 else 100
    if sessions < 1 or per_connection < 1:
        print("SESSIONS and PER_CONNECTION are at least 1", file=sys.stderr)
        return 2
    return send(port, pid, sessions, argv[5], per_connection)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
