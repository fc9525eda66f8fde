//! The console's Home figures come from counters kept per tenant and hour as mail is written
//! (migration 35's triggers), not from a scan of the trace. After a run of mixed mail over SMTP
//! (delivered, refused at the edge, malware quarantined, spam quarantined and to Junk Email)
//! the counters equal a recount from the trace and the connection log, the Home page shows
//! them, and so again after a restart and more mail.

mod common;
use common::*;
use hato_core::{Clock, SystemClock, Timestamp};
use hato_store::{ConsoleStore, MailFlowCounts, SqliteStore, TenantStore};
use serde_json::json;

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const DAY: i64 = 86_400;

fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in [
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@fabrikam.test",
    ] {
        s.mailbox(m, &[]);
    }
    // 127.0.0.2 is refused at the edge for contoso (the connection log's row, tenant contoso).
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-block-list-add",
        "127.0.0.2",
    ]);
    // bob's high confidence spam is quarantined; alice's goes to Junk Email.
    s.ok(&[
        "spam-filter",
        "add",
        "Strict",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--sent-to",
        "bob@contoso.test",
    ]);
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-action",
        "quarantine",
    ]);
    s
}

/// One round of mixed mail; waits until no recipient is pending.
fn mixed_mail(s: &Server, round: usize) {
    let mut sent = Vec::new();
    for (to, body, attach) in [
        (vec!["alice@contoso.test"], "hello".to_string(), false),
        (
            vec![
                "alice@contoso.test",
                "bob@contoso.test",
                "carol@fabrikam.test",
            ],
            "to two tenants".to_string(),
            false,
        ),
        (vec!["bob@contoso.test"], "see attached".to_string(), true),
        (
            vec!["alice@contoso.test", "bob@contoso.test"],
            format!("{GTUBE}\n"),
            false,
        ),
        (vec!["nobody@contoso.test"], "x".to_string(), false),
    ] {
        let mut spec = json!({"from": "sender@outside.test", "to": to,
                              "subject": format!("round {round}"), "body": body});
        if attach {
            spec["attachments"] = json!([{"name": "eicar.com", "text": EICAR}]);
        }
        // An unknown recipient is refused in the session (no row), the rest are queued.
        if to == ["nobody@contoso.test"] {
            let mut c = s.smtp();
            c.read_reply();
            c.cmd("EHLO client.outside.test");
            c.cmd("MAIL FROM:<sender@outside.test>");
            assert!(c.cmd("RCPT TO:<nobody@contoso.test>").starts_with("550"));
            c.cmd("QUIT");
            continue;
        }
        let reply = send_mime(s, spec);
        assert!(reply.starts_with("250 "), "{reply}");
        sent.push(trace_id_of(&reply));
    }
    // Refused at the edge: contoso blocks 127.0.0.2.
    let mut c = Smtp::connect_from(s.smtp, "127.0.0.2");
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO blocked.outside.test");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert!(
        c.cmd("RCPT TO:<alice@contoso.test>")
            .starts_with("550 5.7.513")
    );
    c.cmd("QUIT");
    s.wait_for("every recipient done", || {
        sent.iter().all(|id| {
            let rows = s.trace(&format!("trace_id={id}"));
            !rows.is_empty() && rows.iter().all(|r| r["status"] != "Pending")
        })
    });
}

fn windows() -> [Timestamp; 3] {
    let now = SystemClock.now();
    [1, 7, 30].map(|d| now.plus_seconds(-d * DAY))
}

/// With the server stopped: the counters and a recount from the trace, for contoso, fabrikam
/// and every tenant; they must be equal. Returns contoso's counters over 24 hours.
fn counters_equal_a_recount(s: &mut Server) -> MailFlowCounts {
    s.stop();
    let store = SqliteStore::open(&s.data_dir()).expect("store");
    let tenant = |name: &str| {
        store
            .tenant_by_name(name)
            .expect("read")
            .expect("tenant")
            .id
    };
    let w = windows();
    let mut contoso = MailFlowCounts::default();
    for t in [Some(tenant("contoso")), Some(tenant("fabrikam")), None] {
        let counted = store.mail_flow_counts(t, &w).expect("counters");
        let recount = store.mail_flow_recount(t, &w).expect("recount");
        assert_eq!(counted, recount, "tenant {t:?}");
        if t == Some(tenant("contoso")) {
            contoso = counted[0];
        }
    }
    drop(store);
    s.restart();
    contoso
}

/// The 24-hour chart's figures on Home, in its order (received, delivered, failed, refused,
/// malware, rule actions, spam, quarantined).
fn home_figures(s: &Server) -> Vec<u64> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let base = format!("http://{}", s.admin);
    let r = agent
        .post(&format!("{base}/login"))
        .send_form(&[
            ("address", "operator"),
            ("password", s.token.as_str()),
            ("next", "/"),
        ])
        .expect("sign in");
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("session")
        .to_string();
    let body = agent
        .get(&format!("{base}/"))
        .set("Cookie", &cookie)
        .call()
        .expect("home")
        .into_string()
        .expect("body");
    body.split("data-metric=\"")
        .skip(1)
        .take(8)
        .map(|part| {
            let after = &part[part.find('>').expect("text") + 1..];
            after[..after.find('<').expect("end")]
                .parse()
                .expect("a number")
        })
        .collect()
}

fn as_list(c: MailFlowCounts) -> Vec<u64> {
    vec![
        c.received,
        c.delivered,
        c.failed,
        c.refused,
        c.malware,
        c.rule_actions,
        c.spam,
        c.quarantined,
    ]
}

#[test]
fn home_counters_equal_a_recount_after_mixed_mail_and_a_restart() {
    let mut s = setup();
    mixed_mail(&s, 1);
    let first = counters_equal_a_recount(&mut s);
    // Four messages reached contoso; refused at the edge once; one malware verdict; bob's
    // spam and the malware quarantined.
    assert_eq!(first.received, 4, "{first:?}");
    assert!(first.refused >= 1, "{first:?}");
    assert_eq!(first.malware, 1, "{first:?}");
    assert_eq!(first.quarantined, 2, "{first:?}");
    assert!(first.delivered >= 3, "{first:?}");
    // The operator's Home (every tenant): the same figures a recount gives.
    let all = {
        s.stop();
        let store = SqliteStore::open(&s.data_dir()).expect("store");
        let c = store.mail_flow_recount(None, &windows()).expect("recount")[0];
        drop(store);
        s.restart();
        c
    };
    assert_eq!(home_figures(&s), as_list(all));
    // More mail after the restart: still equal, and grown.
    mixed_mail(&s, 2);
    let second = counters_equal_a_recount(&mut s);
    assert_eq!(second.received, 8, "{second:?}");
    assert_eq!(second.malware, 2, "{second:?}");
    assert_eq!(second.quarantined, 4, "{second:?}");
}
