#!/usr/bin/env python3
"""The SMTP client of bench/content.sh part 2b (Python 3.11, standard library only).

Usage:
  content_helper.py send PORT SERVER_PIDS SESSIONS FILE_LIST [PER_CONNECTION] [--replies FILE]

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
failed counts messages lost to a broken connection, cpu_s is the CPU time the server used from
the first connection to the last reply, and msgs_per_cpu_s is N / cpu_s. Exits 1 if any message
failed, or nothing was accepted.

SERVER_PIDS is one PID or several joined by commas (e.g. an MTA's master and a filter daemon):
the server's CPU time is utime + stime of each and of all their descendants, plus the cutime +
cstime of those (the children they reaped: short-lived workers such as Postfix's smtpd count
too), from /proc/PID/stat.

--replies FILE writes one line per message, in the order the replies came:
  PATH<TAB>FIRST LINE OF THE REPLY THAT DECIDED IT
(the reply to the end of data, or the first refusal at MAIL/RCPT/DATA; "failed: ERROR" for a
message lost to a broken connection), so the caller can follow each file to where the server
put it (the 250 names hato's trace id and Postfix's queue id).
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


def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    # After the command name, which may hold spaces and parentheses.
    return st[st.rindex(")") + 2 :].split()


def server_cpu_ticks(pids):
    """utime + stime + cutime + cstime of the PIDs and all their live descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(d))[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass  # exited meanwhile
    seen, todo, total = set(), list(pids), 0
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(children.get(p, []))
        try:
            fields = _stat_fields(p)
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    return total


class Counts:
    def __init__(self, keep_replies):
        self.accepted = self.refused = self.deferred = self.failed = 0
        self.failures = []
        self.last_reply = 0.0
        # (path, first line of the deciding reply), when the caller asked for them.
        self.replies = [] if keep_replies else None

    def reply(self, path, reply):
        code = reply[:3]
        if code.startswith(b"2"):
            self.accepted += 1
        elif code.startswith(b"4"):
            self.deferred += 1
        else:
            self.refused += 1
        self.last_reply = time.monotonic()
        if self.replies is not None:
            first = reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            self.replies.append((path, first))

    def lost(self, paths, error):
        self.failed += len(paths)
        if self.replies is not None:
            self.replies.extend((p, "failed: " + error) for p in paths)


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
        for i, (path, data) in enumerate(messages):
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
                    counts.reply(path, await read_reply(reader))
                else:
                    # The first refusal is the message's answer (a later 503 only follows it).
                    bad = next(r for r in replies if r[:1] not in (b"2", b"3"))
                    counts.reply(path, bad)
                    writer.write(b"RSET\r\n")
                    await read_reply(reader)
            except (OSError, ConnectionError, asyncio.TimeoutError) as e:
                counts.lost([p for p, _ in messages[i:]], repr(e))
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
            counts.lost([p for p, _ in chunk], "not sent: too many broken connections")
            continue
        try:
            await connection(port, chunk, counts)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            # Before the first message of the chunk: all of it is lost.
            counts.lost([p for p, _ in chunk], repr(e))
            counts.failures.append(repr(e))


def send(port, pids, sessions, file_list, per_connection, replies_file):
    with open(file_list) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    messages = [(p, prepare(p)) for p in paths]
    shares = [messages[i::sessions] for i in range(sessions)]
    counts = Counts(replies_file is not None)
    tck = os.sysconf("SC_CLK_TCK")

    async def run():
        await asyncio.gather(*(session(port, s, per_connection, counts) for s in shares if s))

    cpu0 = server_cpu_ticks(pids)
    t0 = time.monotonic()
    asyncio.run(run())
    cpu1 = server_cpu_ticks(pids)
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
    if replies_file is not None:
        with open(replies_file, "w") as f:
            for path, reply in counts.replies:
                # A reply line holds no tab or newline that could break the format: CR, LF and
                # TAB are replaced (paths are the caller's own).
                f.write("%s\t%s\n" % (path, reply.replace("\t", " ").replace("\r", " ").replace("\n", " ")))
    return 1 if counts.failed or counts.accepted == 0 else 0


def main(argv):
    argv = list(argv)
    replies_file = None
    if "--replies" in argv:
        i = argv.index("--replies")
        if i + 1 >= len(argv):
            print("--replies needs a file name", file=sys.stderr)
            return 2
        replies_file = argv[i + 1]
        del argv[i : i + 2]
    if len(argv) < 6 or argv[1] != "send":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        port, sessions = int(argv[2]), int(argv[4])
        pids = [int(p) for p in argv[3].split(",") if p]
        per_connection = int(argv[6]) if len(argv) > 6 else 100
    except ValueError as e:
        print("PORT, SERVER_PIDS, SESSIONS and PER_CONNECTION are numbers: %s" % e, file=sys.stderr)
        return 2
    if sessions < 1 or per_connection < 1 or not pids:
        print("SESSIONS and PER_CONNECTION are at least 1, and a server PID is needed", file=sys.stderr)
        return 2
    return send(port, pids, sessions, argv[5], per_connection, replies_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
