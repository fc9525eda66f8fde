//! The malware filter's engines in the SMTP path of `hato serve`: a signature directory the
//! test writes (`[malware] signatures_dir`, reloaded when it changes) with Debian's
//! `clamav-testfiles`, a real clamd (`[malware] clamd`, started by the test with a small local
//! database) whose detections quarantine and whose silence defers, and the admin notices
//! (malware admin notifications, transport rules' incident reports) as real mails.

mod common;

use common::clamd::{TestClamd, required};
use common::{Server, send_mime, trace_id_of};
use md5::{Digest, Md5};
use serde_json::json;
use std::path::{Path, PathBuf};

const TESTFILES: &str = "/usr/share/clamav-testfiles";
/// ClamAV's name for its test files.
const CLAM_TEST_FILE: &str = "Clamav.Test.File-6";
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn hdb_line(data: &[u8], name: &str) -> String {
    let md5: String = Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{md5}:{}:{name}\n", data.len())
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn clam_exe() -> Option<PathBuf> {
    let exe = Path::new(TESTFILES).join("clam.exe");
    if exe.is_file() {
        return Some(exe);
    }
    assert!(
        !required(),
        "{} is missing and HATO_REQUIRE_CLAMD is set: install Debian's clamav-testfiles",
        exe.display()
    );
    eprintln!("skipping: {} is missing", exe.display());
    None
}

fn server(malware: &str) -> Server {
    let s = Server::start_with_config("", "", &format!("[malware]\n{malware}\n"));
    s.tenant("contoso");
    for m in ["alice", "bob", "carol"] {
        s.mailbox(&format!("{m}@contoso.test"), &[]);
    }
    s
}

/// Waits until the recipient's row is done; returns its Malware events' details.
fn quarantined_for(s: &Server, trace_id: &str, recipient: &str) -> Vec<String> {
    s.wait_for("the quarantine", || {
        s.trace(&format!("trace_id={trace_id}&recipient={recipient}"))
            .first()
            .is_some_and(|r| r["status"] == "Quarantined")
    });
    s.events(trace_id, recipient)
        .iter()
        .filter(|e| e["event"] == "Malware")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_signature_directory_catches_clamav_testfiles_and_is_reloaded_when_it_changes() {
    let Some(exe) = clam_exe() else {
        return;
    };
    let sigs = tempfile::tempdir().unwrap();
    let data = std::fs::read(&exe).unwrap();
    std::fs::write(
        sigs.path().join("testfiles.hdb"),
        hdb_line(&data, CLAM_TEST_FILE),
    )
    .unwrap();
    let s = server(&format!("signatures_dir = {:?}", sigs.path()));
    for (attachment, name) in [
        (json!({"name": "clam.exe", "file": exe}), "clam.exe"),
        (
            json!({"name": "clam.zip", "zip": [{"name": "clam.exe", "file": exe}]}),
            "clam.zip",
        ),
    ] {
        let reply = send_mime(
            &s,
            json!({"from": "x@fabrikam.test", "to": ["alice@contoso.test"], "attachments": [attachment]}),
        );
        assert!(reply.starts_with("250 "), "{name}: {reply}");
        let found = quarantined_for(&s, &trace_id_of(&reply), "alice@contoso.test");
        assert!(
            found
                .iter()
                .any(|d| d.contains(CLAM_TEST_FILE) && d.contains("by hato")),
            "{name}: {found:?}"
        );
    }
    // A new signature file, while hato runs: the next message is checked against it.
    let sample = b"a harmless file that the test lists by its MD5 right now\n".to_vec();
    let clean = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["bob@contoso.test"],
               "attachments": [{"name": "a.bin", "hex": hex(&sample)}]}),
    );
    assert!(clean.starts_with("250 "), "{clean}");
    s.wait_for("delivery", || s.mail("bob@contoso.test").len() == 1);
    std::fs::write(
        sigs.path().join("added.hdb"),
        hdb_line(&sample, "Hato.Test.Added"),
    )
    .unwrap();
    let reply = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["bob@contoso.test"],
               "attachments": [{"name": "a.bin", "hex": hex(&sample)}]}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let found = quarantined_for(&s, &trace_id_of(&reply), "bob@contoso.test");
    assert!(
        found.iter().any(|d| d.contains("Hato.Test.Added")),
        "{found:?}"
    );
}

#[test]
fn a_real_clamd_quarantines_what_it_finds_and_a_silent_one_defers() {
    const MARKER: &[u8] = b"HATO-PIPELINE-CLAMD-MARKER-90d1";
    let ndb = format!("Hato.Pipeline.Marker:0:*:{}\n", hex(MARKER));
    // Debian's clam.exe too, under ClamAV's own name, in clamd's database only.
    let exe = clam_exe();
    let hdb = exe
        .as_ref()
        .map(|e| hdb_line(&std::fs::read(e).unwrap(), CLAM_TEST_FILE))
        .unwrap_or_default();
    let mut sigs: Vec<(&str, &[u8])> = vec![("pipeline.ndb", ndb.as_bytes())];
    if !hdb.is_empty() {
        sigs.push(("testfiles.hdb", hdb.as_bytes()));
    }
    let Some(mut clamd) = TestClamd::start(&sigs) else {
        return;
    };
    let s = server(&format!("clamd = \"{}\"", clamd.tcp()));
    // Only clamd knows the marker: the built-in engine does not.
    let reply = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["alice@contoso.test"],
               "body": format!("text with {} inside\n", String::from_utf8_lossy(MARKER))}),
    );
    assert!(reply.starts_with("250 "), "{reply}\n{}", clamd.log());
    let found = quarantined_for(&s, &trace_id_of(&reply), "alice@contoso.test");
    assert!(
        found
            .iter()
            .any(|d| d.contains("Hato.Pipeline.Marker") && d.contains("by clamd")),
        "{found:?}"
    );
    if let Some(exe) = &exe {
        let reply = send_mime(
            &s,
            json!({"from": "x@fabrikam.test", "to": ["alice@contoso.test"],
                   "attachments": [{"name": "clam.exe", "file": exe}]}),
        );
        assert!(reply.starts_with("250 "), "{reply}");
        // Malware before blocked file types: held as malware, named by clamd.
        let found = quarantined_for(&s, &trace_id_of(&reply), "alice@contoso.test");
        assert!(
            found
                .iter()
                .any(|d| d.contains(CLAM_TEST_FILE) && d.contains("by clamd")),
            "{found:?}"
        );
    }
    // A clean message passes clamd too.
    let reply = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["bob@contoso.test"], "body": "nothing here\n"}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.wait_for("delivery", || s.mail("bob@contoso.test").len() == 1);
    // clamd gone: the message is deferred in the session, never passed unscanned.
    clamd.stop();
    let reply = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["carol@contoso.test"], "body": "clean, but unscanned\n"}),
    );
    assert!(
        reply.starts_with(
            "451 4.7.0 Temporary error scanning the message for malware; try again later"
        ),
        "{reply}"
    );
    assert!(s.trace("recipient=carol@contoso.test").is_empty());
}

#[test]
fn malware_admin_notifications_and_incident_reports_are_real_mails() {
    let s = server("");
    s.ok(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--enable-external-sender-admin-notifications",
        "true",
        "--external-sender-admin-address",
        "bob@contoso.test",
    ]);
    s.ok(&[
        "rule",
        "add",
        "Report invoices",
        "--tenant",
        "contoso",
        "--subject-contains-words",
        "invoice",
        "--generate-incident-report",
        "carol@contoso.test",
        "--mode",
        "audit",
    ]);
    let reply = send_mime(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test"], "subject": "Free stuff",
               "attachments": [{"name": "eicar.com", "text": EICAR}]}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let malware = trace_id_of(&reply);
    s.wait_for("the admin notification", || {
        s.mail("bob@contoso.test").len() == 1
    });
    let m = &s.mail("bob@contoso.test")[0];
    let raw = s.raw_mail("bob@contoso.test", m["id"].as_i64().unwrap());
    assert!(raw.contains("Return-Path: <>\r\n"), "{raw}");
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
    assert!(raw.contains("Eicar-Test-Signature"), "{raw}");
    assert!(raw.contains(&malware), "{raw}");
    assert!(!raw.contains("EICAR-STANDARD"), "{raw}");

    let reply = send_mime(
        &s,
        json!({"from": "x@fabrikam.test", "to": ["alice@contoso.test"], "subject": "Your invoice",
               "body": "Please pay.\n"}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let invoice = trace_id_of(&reply);
    s.wait_for("the incident report", || {
        s.mail("carol@contoso.test").len() == 1
    });
    let m = &s.mail("carol@contoso.test")[0];
    let raw = s.raw_mail("carol@contoso.test", m["id"].as_i64().unwrap());
    assert!(raw.contains("Report invoices"), "{raw}");
    assert!(raw.contains(&invoice), "{raw}");
    assert!(raw.contains("message/rfc822"), "{raw}");
    assert!(raw.contains("Please pay."), "{raw}");
    // Audit mode: the message itself was delivered.
    s.wait_for("the invoice", || {
        s.mail("alice@contoso.test")
            .iter()
            .any(|m| m["subject"] == "Your invoice")
    });
    // No notification about the clean message.
    assert_eq!(s.mail("bob@contoso.test").len(), 1);
}
