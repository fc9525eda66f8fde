//! Issue 11's last behaviours against the real `hato serve`:
//!
//! - Home's top senders under a spammer's attack: 2,500 single-use senders and two real heavy
//!   ones written in the last hour (straight into the store's tables with the server stopped,
//!   as `bench/console.sh` does); after a restart `hato serve` feeds them into the hourly
//!   Space-Saving summaries, and Home lists the real heavy senders first with their counts,
//!   ten rows at most.
//! - Delist requests: removing an entry by hand (the console's block-list tab, which calls the
//!   API's handler) closes its pending request in the same write (who, when, "entry removed"),
//!   a decision on it is then refused saying so; the requests' "Next" link shows only when a
//!   next page has rows.
//! - Quarantine notifications for malware: EICAR held under a quarantine policy with
//!   `ESNEnabled` is listed in the recipient's digest with a "Request release" link; the page
//!   offers a release request, never a release (a forged release POST is 403), and the request
//!   is recorded once.

mod common;
use common::console::Client;
use common::*;
use mail_parser::MessageParser;
use serde_json::{Value, json};

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const HOUR: i64 = 3_600_000_000;

fn db(s: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(s.data_dir().join("hato.db")).expect("the store's database")
}

fn now_micros() -> i64 {
    hato_core::Clock::now(&hato_core::SystemClock).0
}

/// The rows of Home's "Top senders" table: (address, count cell).
fn top_senders(body: &str) -> Vec<(String, String)> {
    let part = body
        .split("Top senders")
        .nth(1)
        .and_then(|p| p.split("</table>").next())
        .unwrap_or("");
    part.split("<tr><td>")
        .skip(1)
        .filter_map(|row| {
            let mut cells = row.split("</td><td>");
            let address = cells.next()?.to_string();
            let count = cells.next()?.split("</td>").next()?.to_string();
            Some((address, count))
        })
        .collect()
}

#[test]
fn home_lists_the_real_heavy_senders_among_a_spammers_single_use_ones() {
    let mut s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.stop();
    {
        let conn = db(&s);
        let tenant: i64 = conn
            .query_row("SELECT id FROM tenants WHERE name = 'contoso'", [], |r| {
                r.get(0)
            })
            .expect("tenant");
        let mut senders: Vec<String> = (0..2_500).map(|i| format!("x{i}@spam.test")).collect();
        // Interleaved: the heavy senders throughout the spammer's run.
        for i in 0..300 {
            senders.insert(i * 8, "big@real.test".into());
        }
        for i in 0..200 {
            senders.insert(i * 13 + 5, "mid@real.test".into());
        }
        let start = now_micros() - HOUR / 2;
        conn.execute_batch("BEGIN").expect("begin");
        for (i, sender) in senders.iter().enumerate() {
            let at = start + i as i64 * 1_000;
            conn.execute(
                "INSERT INTO messages(trace_id, received, sender, client_ip, helo, message_id, subject, size) \
                 VALUES (?1, ?2, ?3, '198.51.100.7', 'spam.test', '', 'buy now', 3000)",
                rusqlite::params![format!("attack-{i}"), at, sender],
            )
            .expect("message");
            conn.execute(
                "INSERT INTO recipients(message_id, tenant_id, address, route, status, next_attempt, updated) \
                 VALUES (last_insert_rowid(), ?1, 'alice@contoso.test', 'local', 'FilteredAsSpam', ?2, ?2)",
                rusqlite::params![tenant, at],
            )
            .expect("recipient");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    s.restart();
    let mut op = Client::operator(&s);
    let mut rows = Vec::new();
    s.wait_for("the top senders", || {
        let home = op.get("/");
        assert_eq!(home.status, 200);
        rows = top_senders(&home.body);
        rows.first().is_some_and(|r| r.0 == "big@real.test")
    });
    assert!(rows.len() <= 10, "{rows:?}");
    assert_eq!(rows[0], ("big@real.test".to_string(), "300".to_string()));
    assert_eq!(rows[1].0, "mid@real.test", "{rows:?}");
    // A count is exact, or a range within Space-Saving's bound (2,500 rows over 1,024 counters).
    let lower: u64 = rows[1]
        .1
        .split('–')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!((197..=200).contains(&lower), "{rows:?}");
    // The summaries stay bounded: at most 1,024 counters an hour, a tenant and kind.
    let largest: i64 = db(&s)
        .query_row(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM top_address_hours GROUP BY tenant_id, kind, hour)",
            [],
            |r| r.get(0),
        )
        .expect("summaries");
    assert!((1..=1024).contains(&largest), "{largest}");
}

fn requests(s: &Server, query: &str) -> Vec<Value> {
    let (status, v) = s.api("GET", &format!("/api/v1/blocklist/requests{query}"), None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// `n` requests with nothing to decide, written with the server stopped.
fn add_closed_requests(s: &Server, n: usize) {
    let conn = db(s);
    for i in 0..n {
        conn.execute(
            "INSERT INTO delist_requests(requested, ip, address, client_ip, outcome) \
             VALUES (?1, ?2, 'alice@contoso.test', '127.0.0.1', 'not_listed')",
            rusqlite::params![now_micros(), format!("203.0.113.{}", i + 1)],
        )
        .expect("request");
    }
}

#[test]
fn removing_an_entry_closes_its_pending_request_and_next_leads_to_rows() {
    let mut s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.ok(&["blocklist", "add", "192.0.2.7", "--reason", "spam run"]);
    let (status, page) = http_form(
        &s,
        "POST",
        "/delist",
        "address=alice%40contoso.test&ip=192.0.2.7",
    );
    assert_eq!(status, 200, "{page}");
    let pending = requests(&s, "?status=pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    let id = pending[0]["id"].as_i64().expect("id");

    // The console's remove (the API's handler): the entry goes, and its request is closed.
    let mut op = Client::operator(&s);
    let tab = op.get("/protection/blocklist?tenant=contoso");
    assert_eq!(tab.status, 200);
    assert!(tab.body.contains("request-pending"), "{}", tab.body);
    let a = op.post_csrf(
        "/protection/blocklist",
        &[
            ("tenant", "contoso"),
            ("op", "remove"),
            ("entry", "192.0.2.7"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(requests(&s, "?status=pending").is_empty());
    let closed = requests(&s, "?status=closed");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(
        (
            &closed[0]["id"],
            &closed[0]["decided_by"],
            &closed[0]["decision_reason"]
        ),
        (&json!(id), &json!("operator"), &json!("entry removed")),
        "{closed:?}"
    );
    assert!(closed[0]["decided"].is_string(), "{closed:?}");
    let out = s.ok(&["delist", "list", "--status", "closed"]);
    assert!(out.contains("entry removed"), "{out}");
    // Nothing left to decide, and the answer says why.
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/blocklist/requests/{id}/approve"),
        None,
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("operator removed its entry on"),
        "{v}"
    );
    let tab = op.get("/protection/blocklist?tenant=contoso");
    assert!(tab.body.contains("request-closed"), "{}", tab.body);
    assert!(tab.body.contains("entry removed"), "{}", tab.body);
    assert!(
        !tab.body.contains("rel=\"next\""),
        "one request: no next page"
    );

    // Exactly a page of requests (50): no "Next"; one more: "Next", and its page has it.
    s.stop();
    add_closed_requests(&s, 49);
    s.restart();
    let mut op = Client::operator(&s);
    let tab = op.get("/protection/blocklist?tenant=contoso");
    assert_eq!(tab.body.matches("class=\"request-").count(), 50);
    assert!(
        !tab.body.contains("rel=\"next\""),
        "a full page, nothing after it"
    );
    s.stop();
    add_closed_requests(&s, 1);
    s.restart();
    let mut op = Client::operator(&s);
    let tab = op.get("/protection/blocklist?tenant=contoso");
    assert!(tab.body.contains("rel=\"next\""), "{}", tab.body);
    let second = op.get("/protection/blocklist?tenant=contoso&dpage=2");
    assert_eq!(second.body.matches("class=\"request-").count(), 1);
    assert!(!second.body.contains("rel=\"next\""));
}

#[test]
fn a_digest_lists_held_malware_with_a_release_request_link_never_a_release() {
    let s = Server::start_with_config(
        "",
        "",
        "[quarantine]\nnotification_interval_secs = 1\nend_user_spam_notifications = true\n\
         end_user_spam_notification_frequency = 1\n",
    );
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    // A quarantine policy granting everything, with notifications (ESNEnabled), as the
    // malware policy's quarantine tag: malware's release becomes request release.
    s.ok(&[
        "quarantine-policy",
        "add",
        "Notify Malware",
        "--tenant",
        "contoso",
        "--end-user-quarantine-permissions-value",
        "255",
        "--esn-enabled",
        "true",
    ]);
    s.ok(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--quarantine-tag",
        "Notify Malware",
    ]);
    let reply = send_mime(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test"],
               "subject": "invoice <script>x</script>",
               "attachments": [{"name": "eicar.com", "text": EICAR}]}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let mut digest_id = None;
    s.wait_for("alice's digest", || {
        digest_id = s
            .mail("alice@contoso.test")
            .iter()
            .find(|m| m["subject"] == "You have 1 new message in quarantine")
            .and_then(|m| m["id"].as_i64());
        digest_id.is_some()
    });
    let raw = s.raw_mail("alice@contoso.test", digest_id.expect("digest"));
    let msg = MessageParser::new().parse(raw.as_bytes()).expect("parses");
    let text = msg.body_text(0).expect("text part").into_owned();
    assert!(text.contains("Reason: Malware"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("Release: ")),
        "no release link: {text}"
    );
    let link = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("Request release: "))
        .expect("a request link")
        .to_string();
    let html = msg.body_html(0).expect("html part");
    assert!(html.contains(">Request release</a>"), "{html}");
    assert!(html.contains("invoice &lt;script&gt;"), "{html}");
    let path = &link[format!("http://{}", s.admin).len()..];
    let token = path.split("t=").nth(1).expect("token").to_string();

    // The page offers the request, not a release, and changes nothing.
    let (status, page) = http_form(&s, "GET", path, "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<button type=\"submit\">Request release</button>"),
        "{page}"
    );
    assert!(page.contains("name=\"op\" value=\"request\""), "{page}");
    assert!(!page.contains(">Release</button>"), "{page}");
    assert!(page.contains("invoice &lt;script&gt;"), "{page}");
    // A forged release: refused, the item still held without a request.
    let (status, page) = http_form(&s, "POST", "/quarantine/release", &format!("t={token}"));
    assert_eq!(status, 403, "{page}");
    let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
    let item = &v["items"][0];
    assert_eq!(
        (&item["kind"], &item["state"], &item["release_request"]),
        (&json!("malware"), &json!("held"), &Value::Null),
        "{v}"
    );
    // The request: recorded by the recipient, the message still held; once.
    let (status, page) = http_form(
        &s,
        "POST",
        "/quarantine/release",
        &format!("t={token}&op=request"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Release requested"), "{page}");
    let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
    let item = &v["items"][0];
    assert_eq!(
        (
            &item["state"],
            &item["release_request"],
            &item["requested_by"]
        ),
        (
            &json!("held"),
            &json!("pending"),
            &json!("alice@contoso.test")
        ),
        "{v}"
    );
    let (status, page) = http_form(
        &s,
        "POST",
        "/quarantine/release",
        &format!("t={token}&op=request"),
    );
    assert_eq!(status, 409, "{page}");
    assert!(
        !s.mail("alice@contoso.test")
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or("").starts_with("invoice")),
        "never released"
    );
}
