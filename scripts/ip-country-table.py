#!/usr/bin/env python3
"""Builds hato's IP-to-country table (crates/hato-protection/src/spam/ip-country.bin) from the
npm package @ip-location-db/geo-whois-asn-country (CC0-1.0; its data from the five RIRs'
WHOIS and ASN data, CC BY 4.0 by the NRO: see crates/hato-protection/src/spam/NOTICE).

Usage: scripts/ip-country-table.py PACKAGE_DIR OUT_FILE
  PACKAGE_DIR: the unpacked package (`npm pack @ip-location-db/geo-whois-asn-country`,
  `tar xzf` it: the `package/` folder with geo-whois-asn-country-ipv{4,6}-num.csv).

Format (all integers big-endian), looked up by binary search (spam/country.rs):
  b"HATOIPC1"
  u16 C, then C two-letter codes (ASCII, upper case)
  u32 N4, then N4 u32 range starts (sorted), then N4 u8 code indexes
  u32 N6, then N6 u64 range starts (the top 64 bits of the IPv6 address, sorted), then N6 u8
  code indexes
An index of 255 means "no country" (a gap between ranges). Each start holds until the next
one. Adjacent ranges of the same country are merged. IPv6 is kept per /64 network: a range
that starts inside a /64 another range already starts in is dropped (a few thousand of the
source's 216,000 rows, finer than a /64).
"""
import csv
import struct
import sys

NONE = 255


def ranges(path, shift):
    for start, end, code in csv.reader(open(path, newline="")):
        yield int(start) >> shift, int(end) >> shift, code.strip().upper()


def table(rows, limit):
    codes = {}
    entries = []  # (start, index)
    last_end = -1
    for start, end, code in sorted(rows, key=lambda r: r[0]):
        if start <= last_end:
            continue  # overlaps (or shares its /64 with) the previous range
        if len(code) != 2 or not code.isalpha():
            continue
        index = codes.setdefault(code, len(codes))
        if start > last_end + 1:
            entries.append((last_end + 1, NONE))
        entries.append((start, index))
        last_end = end
    if last_end + 1 <= limit:
        entries.append((last_end + 1, NONE))
    merged = []
    for start, index in entries:
        if merged and merged[-1][1] == index:
            continue
        merged.append((start, index))
    return codes, merged


def main():
    package, out = sys.argv[1], sys.argv[2]
    codes4, v4 = table(ranges(f"{package}/geo-whois-asn-country-ipv4-num.csv", 0), 2**32 - 1)
    codes6, v6 = table(ranges(f"{package}/geo-whois-asn-country-ipv6-num.csv", 64), 2**64 - 1)
    codes = sorted(set(codes4) | set(codes6))
    if len(codes) >= NONE:
        sys.exit("too many country codes")
    index = {c: i for i, c in enumerate(codes)}
    remap4 = {i: index[c] for c, i in codes4.items()}
    remap6 = {i: index[c] for c, i in codes6.items()}
    remap4[NONE] = NONE
    remap6[NONE] = NONE
    with open(out, "wb") as f:
        f.write(b"HATOIPC1")
        f.write(struct.pack(">H", len(codes)))
        for c in codes:
            f.write(c.encode("ascii"))
        f.write(struct.pack(">I", len(v4)))
        f.write(b"".join(struct.pack(">I", s) for s, _ in v4))
        f.write(bytes(remap4[i] for _, i in v4))
        f.write(struct.pack(">I", len(v6)))
        f.write(b"".join(struct.pack(">Q", s) for s, _ in v6))
        f.write(bytes(remap6[i] for _, i in v6))
    print(f"{len(codes)} codes, {len(v4)} IPv4 ranges, {len(v6)} IPv6 ranges -> {out}")


if __name__ == "__main__":
    main()
