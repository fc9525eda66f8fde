#!/usr/bin/env python3
"""Where the messages of a bench/spam.sh part (c) run went (Python 3.11, standard library only).

Both subcommands read the --replies file bench/content_helper.py wrote for the run (one line
per message: PATH<TAB>the first line of the reply that decided it) and follow every file to
where the server put it. A file's label is in its name as bench/spam.sh names its copies
(NNNNN.ham.ORIGINAL or NNNNN.spam.ORIGINAL); the corpus's test split is the files whose MD5
(the name's second-to-last dot-separated part) starts with c-f (../shared/corpus/README.md).

  hato ADMIN_PORT DATA_DIR MAILBOX REPLIES
        hato: a 250 ("250 2.6.0 <TRACE_ID> Queued mail for delivery") names the trace id. The
        mailbox's newest messages (GET /api/v1/mailboxes/MAILBOX/messages?limit=N, N = the
        run's accepted count) give each message's folder, and its stored copy (/raw) the trace
        id in hato's own Received field ("id TRACE_ID", RFC 5321 4.4); the quarantine
        (GET /api/v1/quarantine) the ones held. The operator token is DATA_DIR/operator.token.
  postfix MAILDIR REPLIES
        Postfix + Rspamd's milter: a 250 ("250 2.0.0 Ok: queued as QUEUE_ID") names the queue
        id, found again in Postfix's Received field of the delivered Maildir file ("with ESMTP
        id QUEUE_ID"). A delivered file Rspamd flagged carries "X-Spam: Yes" (the proxy's
        spam_header, its `add header` action) or a subject it rewrote ("*** SPAM ***"): what a
        user's mail client or a Sieve rule would file as junk. Rspamd's `reject` is a 5xx.

Prints, for all the files and for the test split, per label: in the inbox, in Junk (Postfix:
flagged), quarantined, refused (5xx), deferred (4xx), failed (connection lost), not found
(accepted, yet neither delivered nor held), and the share not in the inbox.

  dns-refuse PORT
        A DNS server on 127.0.0.1:PORT (UDP and TCP) that answers every query at once with
        REFUSED (RFC 1035 4.1.1, RCODE 5), the question echoed: a resolver that fails every
        lookup fast, so SPF, DKIM, DMARC and ARC get a temporary error and nothing leaves the
        machine. (A closed port is not enough: hickory's UDP socket is not connected, so the
        ICMP port-unreachable never reaches it and every lookup waits for the timeout.) Runs
        until killed.
"""

import http.client
import json
import os
import re
import socket
import struct
import sys
import threading
import urllib.parse

CATEGORIES = ("inbox", "junk", "quarantined", "refused", "deferred", "failed", "not_found")
# Header blocks larger than this are not read further (the fields wanted come first).
HEADER_MAX = 256 * 1024


def label_of(path):
    return "spam" if ".spam." in os.path.basename(path) else "ham"


def in_test_split(path):
    parts = os.path.basename(path).split(".")
    return len(parts) >= 2 and parts[-2][:1] in "cdef" and len(parts[-2]) == 32


def read_replies(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                p, reply = line.split("\t", 1)
                out.append((p, reply))
    return out


def header_fields(raw):
    """The header's fields as (lower-case name, unfolded value), in order (RFC 5322 2.2.3)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw[: end if end >= 0 else HEADER_MAX][:HEADER_MAX].decode("latin-1")
    fields = []
    for line in re.split(r"\r?\n", head):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append([name.strip().lower(), value.strip()])
    return [(n, v) for n, v in fields]


def by_reply(replies, categorize):
    """Per file: its category from the reply, or the id a 250 named (to look up)."""
    result, ids = {}, {}
    for path, reply in replies:
        if reply.startswith("failed:"):
            result[path] = "failed"
        elif reply.startswith("5"):
            result[path] = "refused"
        elif reply.startswith("4"):
            result[path] = "deferred"
        else:
            ident = categorize(reply)
            if ident is None:
                result[path] = "not_found"
            else:
                ids[ident] = path
    return result, ids


def report(title, result, detail):
    """detail: per file, why it is where it is (hato: the antispam report's CAT for Junk, the
    quarantine's kind), shown beside the counts."""
    for scope, keep in (("all", lambda p: True), ("test split", in_test_split)):
        parts = []
        for label in ("ham", "spam"):
            files = [p for p in result if label_of(p) == label and keep(p)]
            counts = {c: 0 for c in CATEGORIES}
            why = {c: {} for c in CATEGORIES}
            for p in files:
                counts[result[p]] += 1
                if p in detail:
                    w = why[result[p]]
                    w[detail[p]] = w.get(detail[p], 0) + 1

            def shown_one(c):
                text = "%s %d" % (c.replace("_", " "), counts[c])
                if why[c]:
                    text += " (%s)" % ", ".join(
                        "%s %d" % kv for kv in sorted(why[c].items(), key=lambda kv: -kv[1]))
                return text

            shown = ", ".join(shown_one(c) for c in CATEGORIES
                              if counts[c] or c in ("inbox", "junk"))
            not_inbox = len(files) - counts["inbox"]
            share = 100.0 * not_inbox / len(files) if files else 0.0
            parts.append("%s %d: %s (not in the inbox: %.2f %%)" % (label, len(files), shown, share))
        print("%s, %s: %s" % (title, scope, "; ".join(parts)))


class Api:
    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
        self.headers = {"Authorization": "Bearer " + token}

    def get(self, path, query=None):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("GET %s: %d %s" % (path, r.status, body[:300]))
        return body


def hato(port, data_dir, mailbox, replies_path, detail):
    with open(os.path.join(data_dir, "operator.token")) as f:
        api = Api(port, f.read().strip())
    replies = read_replies(replies_path)
    trace_re = re.compile(r"^250 \S+ <([^>]+)>")
    result, ids = by_reply(replies, lambda r: (m := trace_re.match(r)) and m.group(1))
    mb = urllib.parse.quote(mailbox, safe="")
    items = json.loads(api.get("/api/v1/mailboxes/%s/messages" % mb, {"limit": len(ids)}))
    received_id = re.compile(r"\(hato\).*?\bid (\S+?)[;\s]")
    category = re.compile(r"(?:^|;)\s*CAT:([A-Z]+)")
    for item in items:
        raw = api.get("/api/v1/mailboxes/%s/messages/%d/raw" % (mb, item["id"]))
        fields = header_fields(raw)
        for name, value in fields:
            m = received_id.search(value + " ") if name == "received" else None
            if m:
                path = ids.pop(m.group(1), None)
                if path is not None:
                    result[path] = "junk" if item["folder"] == "junk" else "inbox"
                    if result[path] == "junk":
                        # The spam filter's category (SPM, HSPM, BULK, PHSH, SPOOF, ...).
                        cat = next((c.group(1) for n, v in fields
                                    if n == "x-hato-antispam-report"
                                    for c in [category.search(v)] if c), "no CAT")
                        detail[path] = "CAT:" + cat
                break
    page = 1
    while ids:
        body = json.loads(api.get("/api/v1/quarantine",
                                  {"recipient": mailbox, "page_size": 5000, "page": page}))
        for q in body["items"]:
            path = ids.pop(q["trace_id"], None)
            if path is not None:
                result[path] = "quarantined"
                detail[path] = q.get("kind", "?")
        if not body.get("more"):
            break
        page += 1
    for path in ids.values():
        result[path] = "not_found"
    return result


def postfix(maildir, replies_path):
    replies = read_replies(replies_path)
    queued = re.compile(r"queued as (\S+)")
    result, ids = by_reply(replies, lambda r: (m := queued.search(r)) and m.group(1))
    received_id = re.compile(r"\(Postfix\).*?\bid (\S+?)[;\s]")
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                fields = header_fields(f.read(HEADER_MAX))
            qid = next((m.group(1) for n, v in fields if n == "received"
                        for m in [received_id.search(v + " ")] if m), None)
            path = ids.pop(qid, None) if qid else None
            if path is None:
                continue
            flagged = any(n == "x-spam" and v.lower().startswith("yes") for n, v in fields) \
                or any(n == "subject" and v.startswith("*** SPAM ***") for n, v in fields)
            result[path] = "junk" if flagged else "inbox"
    for path in ids.values():
        result[path] = "not_found"
    return result


def refused(query):
    """The REFUSED answer to a DNS query (its header and question), or None for a non-query."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a response, not a query
        return None
    # Copy the question section (QNAME labels, QTYPE, QCLASS) when there is exactly one.
    end = 12
    if qdcount == 1:
        while end < len(query) and query[end] != 0:
            end += 1 + query[end]
        end = min(end + 5, len(query))
    else:
        qdcount, end = 0, 12
    # QR=1, the query's OPCODE and RD, RA=1, RCODE=5 (REFUSED).
    out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 5
    return struct.pack("!HHHHHH", ident, out_flags, qdcount, 0, 0, 0) + query[12:end]


def dns_refuse(port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", int(port)))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", int(port)))
    tcp.listen(64)

    def serve_tcp():
        while True:
            conn, _ = tcp.accept()
            with conn:
                conn.settimeout(5)
                try:
                    n = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))[0]
                    answer = refused(conn.recv(n, socket.MSG_WAITALL))
                    if answer:
                        conn.sendall(struct.pack("!H", len(answer)) + answer)
                except (OSError, struct.error):
                    pass

    threading.Thread(target=serve_tcp, daemon=True).start()
    while True:
        query, peer = udp.recvfrom(4096)
        answer = refused(query)
        if answer:
            udp.sendto(answer, peer)


def main(argv):
    if len(argv) == 3 and argv[1] == "dns-refuse":
        dns_refuse(argv[2])
        return 0
    try:
        detail = {}
        if len(argv) == 6 and argv[1] == "hato":
            result = hato(argv[2], argv[3], argv[4], argv[5], detail)
            report(os.environ.get("TITLE", "hato"), result, detail)
        elif len(argv) == 4 and argv[1] == "postfix":
            report(os.environ.get("TITLE", "postfix"), postfix(argv[2], argv[3]), detail)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, RuntimeError, ValueError, KeyError, http.client.HTTPException) as e:
        print("spam_helper: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
