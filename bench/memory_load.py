#!/usr/bin/env python3
"""Load generator and RSS sampler for bench/memory.sh (Python 3.11, standard library only).

Subcommands:
  send PORT SESSIONS SIZE RCPT
        open SESSIONS concurrent SMTP sessions to 127.0.0.1:PORT; each sends one message of
        SIZE bytes to RCPT and quits. The body is generated on the fly from one shared 64 KiB
        block of text lines, so the generator holds no message in memory. Prints one line:
        "ok=N failed=M seconds=S" (S until the last final reply), and the first failures.
  sample OUTFILE PID [PID ...]
        every 0.2 s, sum VmRSS over the PIDs and all their descendants; keep the largest sum
        (MB) in OUTFILE; run until killed (SIGTERM).
"""

import asyncio
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inbound_helper import tree_rss_mb  # noqa: E402

LINE_TEMPLATE = "%06d the quick brown fox jumps over the lazy dog, memory benchmark line\r\n"


def block():
    lines, size, i = [], 0, 0
    while size < 64 * 1024:
        line = (LINE_TEMPLATE % i).encode()
        lines.append(line)
        size += len(line)
        i += 1
    return b"".join(lines)


BLOCK = block()


async def reply(reader):
    """One (possibly multi-line) SMTP reply."""
    text = b""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed after %r" % text[-200:])
        text += line
        if len(line) < 4 or line[3:4] == b" ":
            return text


async def expect(reader, code, what):
    r = await reply(reader)
    if not r.startswith(code):
        raise RuntimeError("%s: %r" % (what, r[:200]))
    return r


async def session(port, size, rcpt, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    try:
        await expect(reader, b"220", "banner")
        writer.write(b"EHLO load%d.bench.test\r\n" % n)
        await expect(reader, b"250", "EHLO")
        writer.write(b"MAIL FROM:<load%d@example.org> SIZE=%d\r\n" % (n, size + 200))
        await expect(reader, b"250", "MAIL")
        writer.write(b"RCPT TO:<%s>\r\n" % rcpt.encode())
        await expect(reader, b"250", "RCPT")
        writer.write(b"DATA\r\n")
        await expect(reader, b"354", "DATA")
        head = (
            "From: load%d@example.org\r\nTo: %s\r\nSubject: memory bench %d\r\n"
            "Message-ID: <mem-%d-%d@bench.test>\r\n\r\n" % (n, rcpt, n, os.getpid(), n)
        ).encode()
        writer.write(head)
        sent = len(head)
        while sent < size:
            chunk = BLOCK if size - sent >= len(BLOCK) else BLOCK[: size - sent]
            # Whole lines only: cut the last chunk at a line end.
            if chunk is not BLOCK:
                cut = chunk.rfind(b"\r\n")
                chunk = chunk[: cut + 2] if cut >= 0 else b""
                if not chunk:
                    break
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
        writer.write(b".\r\n")
        await expect(reader, b"250", "end of data")
        writer.write(b"QUIT\r\n")
        await reply(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def send(port, sessions, size, rcpt):
    started = time.monotonic()
    results = await asyncio.gather(
        *(session(port, size, rcpt, n) for n in range(sessions)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    print("ok=%d failed=%d seconds=%.2f" % (len(results) - len(failures), len(failures), elapsed))
    for f in failures[:5]:
        print("failure: %r" % f)
    return 0 if not failures else 1


def sample(outfile, pids):
    peak = 0.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        rss = tree_rss_mb(pids)
        if rss > peak:
            peak = rss
            tmp = outfile + ".tmp"
            with open(tmp, "w") as f:
                f.write("%.1f\n" % peak)
            os.replace(tmp, outfile)
        time.sleep(0.2)
    return 0


def main(argv):
    if len(argv) >= 5 and argv[0] == "send":
        return asyncio.run(send(int(argv[1]), int(argv[2]), int(argv[3]), argv[4]))
    if len(argv) >= 3 and argv[0] == "sample":
        return sample(argv[1], argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
