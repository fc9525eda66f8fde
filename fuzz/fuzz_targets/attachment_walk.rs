//! Fuzzes the malware filter's MIME/attachment walk and archive unpacking: on arbitrary bytes
//! (as a whole message, and as the attachment of a well-formed one, so the ZIP, gzip and tar
//! readers get the input directly) it must never panic, stay within its limits, and the
//! decision and the alert replacement must accept whatever the walk produced.

#![no_main]

use hato_protection::malware::{
    Limits, MalwarePolicy, Scanner, alert, decide, signatures::SignatureStore,
};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fn check(scanner: &Scanner, raw: &[u8]) {
    let report = scanner.scan_builtin(raw);
    let limits = &scanner.limits;
    assert!(report.walk.parts_seen <= limits.max_parts + 1);
    // One read chunk (16 KiB) past the cap at most.
    assert!(report.walk.unpacked_bytes <= limits.max_total_unpacked + 16 * 1024);
    assert!(
        report
            .walk
            .items
            .iter()
            .all(|i| i.archive_depth <= limits.max_archive_depth)
    );
    let _ = decide(&report, &MalwarePolicy::default());
    let _ = alert::replace_attachments(raw, "alert", &report);
}

fuzz_target!(|data: &[u8]| {
    let scanner = Scanner {
        // Small limits, so the fuzzer reaches them.
        limits: Limits {
            max_parts: 64,
            max_total_unpacked: 1 << 20,
            max_member_size: 256 * 1024,
            max_members: 64,
            ..Limits::default()
        },
        signatures: Arc::new(SignatureStore::builtin()),
        engines: Vec::new(),
    };
    check(&scanner, data);
    // The same bytes as a base64 attachment, so archive readers see them raw.
    let mut raw = b"From: a@example.com\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\
        Content-Type: application/octet-stream; name=a.zip\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(&base64(data));
    raw.extend_from_slice(b"\r\n--B--\r\n");
    check(&scanner, &raw);
});

fn base64(data: &[u8]) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for (i, c) in data.chunks(3).enumerate() {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(A[(n >> 18) as usize & 63]);
        out.push(A[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63]
        } else {
            b'='
        });
        if i % 19 == 18 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}
