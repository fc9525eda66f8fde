//! The edge against a real `hato serve`: SMTP clients bound to their own loopback source
//! addresses (127.0.0.2, 127.0.0.3, …), so each case has its own client IP; the tenants'
//! connection filter policies and the connection log through the API and the CLI; the HELO
//! check; the early-talker check with a greeting delay; the edge's settings in `hato init`.

mod common;
use common::*;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A raw SMTP client whose connection comes from `source` (a loopback address of its own).
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: SocketAddr, source: &str) -> Client {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let from: SocketAddr = format!("{source}:0").parse().expect("source address");
        socket.bind(&from.into()).expect("bind the source address");
        socket.connect(&server.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client { stream, reader }
    }

    /// One reply, all its lines; empty when the server closed.
    fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return reply,
                Ok(_) => {}
            }
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return reply;
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Whether the server has closed the connection.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    /// Banner and EHLO.
    fn ready(server: &Server, source: &str) -> Client {
        let mut c = Client::connect(server.smtp, source);
        assert_eq!(c.reply(), "220 mx.hato.test ESMTP hato ready\r\n");
        let hello = c.cmd("EHLO client.test");
        assert!(
            hello.starts_with(&format!("250-mx.hato.test Hello [{source}]")),
            "{hello}"
        );
        c
    }

    /// DATA with a small message; the final reply.
    fn data(&mut self, subject: &str) -> String {
        assert_eq!(
            self.cmd("DATA"),
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        );
        self.send(format!("Subject: {subject}\r\n\r\nhello\r\n").as_bytes());
        self.cmd(".")
    }
}

/// A server with two tenants (contoso: alice; fabrikam: bob) and `edge` in its `[edge]` section.
fn server(edge: &str) -> Server {
    let s = Server::start_with_sections("", &format!("\n[edge]\n{edge}\n"));
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@fabrikam.test", &[]);
    s
}

/// A token of `tenant` with `role` (`global-admin`, `recipient-admin`).
fn token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// The connection log as `token` sees it (`query` filters), once `want` rows are there: rows
/// are written after the reply, by the store's next group commit.
fn log_rows(s: &Server, token: &str, query: &str, want: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    s.wait_for(&format!("{want} connection log row(s) for {query}"), || {
        let (status, v) = s.api_as(token, "GET", &format!("/api/v1/connections?{query}"), None);
        assert_eq!(status, 200, "{v}");
        rows = v["rows"].as_array().cloned().unwrap_or_default();
        rows.len() >= want
    });
    rows
}

/// The events of one recipient of one message.
fn events(s: &Server, trace_id: &str, rcpt: &str) -> Vec<Value> {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/trace/{trace_id}?recipient={rcpt}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The value of figure `name` of a reason.
fn figure<'a>(reason: &'a Value, name: &str) -> &'a Value {
    reason["figures"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["name"] == name))
        .map(|x| &x["value"])
        .unwrap_or(&Value::Null)
}

const BLOCKED: &str = "550 5.7.513 Service unavailable, Client host [127.0.0.2] blocked by contoso.test using Customer Block list\r\n";

#[test]
fn the_tenant_connection_filter_blocks_allows_and_allow_beats_block() {
    let s = server("");
    // The CLI sets contoso's lists: a range blocked, one address of it also allowed.
    let out = s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-block-list-add",
        "127.0.0.2-127.0.0.4",
        "--ip-allow-list-add",
        "127.0.0.3",
        "--ip-allow-list-add",
        "2001:db8::/48",
    ]);
    assert_eq!(
        out,
        "connection filter policy of contoso\nLIST         ENTRY\nIPAllowList  127.0.0.3\nIPAllowList  2001:db8::/48\nIPBlockList  127.0.0.2-127.0.0.4\n"
    );

    // Blocked: Exchange's 5.7.513 for contoso's recipient; fabrikam's recipient is not
    // contoso's business.
    let mut c = Client::ready(&s, "127.0.0.2");
    assert_eq!(
        c.cmd("MAIL FROM:<x@outside.test>"),
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(c.cmd("RCPT TO:<alice@contoso.test>"), BLOCKED);
    assert_eq!(
        c.cmd("RCPT TO:<bob@fabrikam.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    let queued = c.data("blocked for contoso");
    assert!(queued.starts_with("250 2.6.0 "), "{queued}");
    assert_eq!(
        c.cmd("QUIT"),
        "221 2.0.0 mx.hato.test closing connection\r\n"
    );
    s.wait_for("delivery to bob", || s.mail("bob@fabrikam.test").len() == 1);
    // As in Exchange Online, the block leaves no message-trace row; the connection log has it.
    assert!(s.trace("recipient=alice@contoso.test").is_empty());
    let bob = events(&s, &trace_id_of(&queued), "bob@fabrikam.test");
    // Bob's Receive event has the client's standing with fabrikam.
    let standing = &bob[0];
    assert_eq!(standing["event"], "Receive");
    assert_eq!(standing["reason"]["stage"], "connection_filter");
    assert_eq!(figure(&standing["reason"], "ipv"), "NLI", "{standing}");
    assert_eq!(figure(&standing["reason"], "cip"), "127.0.0.2");

    // On both lists: allowed (allow beats block), and marked IPV:CAL in trace.
    let mut c = Client::ready(&s, "127.0.0.3");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    let queued = c.data("allowed");
    assert!(queued.starts_with("250 2.6.0 "), "{queued}");
    s.wait_for("delivery to alice", || {
        s.mail("alice@contoso.test").len() == 1
    });
    let alice = events(&s, &trace_id_of(&queued), "alice@contoso.test");
    // (The spam filter's verdict is a Spam event of its own, skipped here: IPV:CAL.)
    let kinds: Vec<&str> = alice
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| *k != "Spam")
        .collect();
    assert_eq!(kinds, ["Receive", "Deliver"], "{alice:?}");
    let cal = &alice[0];
    assert_eq!(cal["reason"]["stage"], "connection_filter");
    assert_eq!(cal["reason"]["rule"], "IPAllowList");
    assert_eq!(figure(&cal["reason"], "ipv"), "CAL");
    assert_eq!(figure(&cal["reason"], "cip"), "127.0.0.3");
    assert_eq!(figure(&cal["reason"], "ptr"), "");
    // The notes of the checks at connect, in the same event: a loopback client is exempt from
    // throttling by default; its PTR (`localhost`, which names 127.0.0.1 only) is no news.
    assert_eq!(figure(&cal["reason"], "reverse_dns"), &Value::Null, "{cal}");
    assert!(
        figure(&cal["reason"], "throttling")
            .as_str()
            .is_some_and(|t| t.contains("is this host (throttle.exempt_loopback)")),
        "{cal}"
    );
    assert_eq!(figure(&cal["reason"], "entry"), "127.0.0.3");
    assert_eq!(
        figure(&cal["reason"], "also_on_block_list"),
        "127.0.0.2-127.0.0.4"
    );
    assert_eq!(
        cal["reason"]["text"],
        "The client 127.0.0.3 is on the tenant's IP allow list (entry 127.0.0.3): spam filtering is skipped and the provider's block list does not apply (IPV:CAL)"
    );

    // Neither list: in, IPV:NLI.
    let mut c = Client::ready(&s, "127.0.0.5");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    let queued = c.data("unlisted");
    let alice = events(&s, &trace_id_of(&queued), "alice@contoso.test");
    assert_eq!(figure(&alice[0]["reason"], "ipv"), "NLI", "{alice:?}");

    // Removing the block lets 127.0.0.2 in; any spelling of an entry removes it.
    let out = s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-block-list-remove",
        "127.0.0.2 - 127.0.0.4",
    ]);
    assert!(!out.contains("IPBlockList"), "{out}");
    let mut c = Client::ready(&s, "127.0.0.2");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
}

#[test]
fn bad_entries_and_too_many_are_refused_naming_the_entry_and_the_rule() {
    let s = server("connection_filter_max_entries = 2");
    let (ok, _, err) = s.cli(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-allow-list-add",
        "10.0.0.0/8",
        "--ip-block-list-add",
        "192.0.2.1-192.0.3.1",
        "--ip-block-list-add",
        "192.0.2.9",
    ]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: ip_allow_list: \"10.0.0.0/8\": an IPv4 CIDR block must be /24 to /32 (as in Exchange \
         Online's connection filter); list a larger network as several /24 blocks; \
         ip_block_list: \"192.0.2.1-192.0.3.1\": a range may hold at most 256 addresses (as in \
         Exchange Online's connection filter); this one holds 257 (HTTP 400)"
    );
    // Nothing of it was kept, not even the good entry.
    let (status, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"tenant": "contoso", "ip_allow_list": [], "ip_block_list": []})
    );
    // The limit is a setting (Exchange: 1,273).
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/connection-filter?tenant=contoso",
        Some(json!({"ip_block_list": {"add": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]}})),
    );
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "ip_block_list would hold 3 entries; a list holds at most 2 (edge.connection_filter_max_entries)"
    );
    let (ok, _, err) = s.cli(&["connection-filter", "set", "--tenant", "contoso"]);
    assert!(!ok && err.contains("nothing to change"), "{err}");
}

#[test]
fn the_policy_is_for_global_admins_of_the_tenant_and_the_operator() {
    let s = server("");
    let contoso = token(&s, "contoso", "global-admin");
    let recipients = token(&s, "contoso", "recipient-admin");
    let patch = json!({"ip_allow_list": {"add": ["192.0.2.0/24"]}});
    // A global admin changes and reads its own tenant's policy without naming it.
    let (status, v) = s.api_as(
        &contoso,
        "PATCH",
        "/api/v1/connection-filter",
        Some(patch.clone()),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ip_allow_list"], json!(["192.0.2.0/24"]));
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/connection-filter", None);
    assert_eq!((status, &v["tenant"]), (200, &json!("contoso")));
    // Another tenant's policy does not exist for it.
    let (status, v) = s.api_as(
        &contoso,
        "GET",
        "/api/v1/connection-filter?tenant=fabrikam",
        None,
    );
    assert_eq!(
        (status, v["error"].as_str()),
        (404, Some("tenant fabrikam not found"))
    );
    // A recipient admin may not.
    let (status, v) = s.api_as(&recipients, "GET", "/api/v1/connection-filter", None);
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("this needs the global admin role"))
    );
    // The operator names the tenant.
    let (status, v) = s.api("GET", "/api/v1/connection-filter", None);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("name the tenant (\"tenant\")"))
    );
    let out = s.ok(&["connection-filter", "show", "--tenant", "contoso", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["ip_allow_list"], json!(["192.0.2.0/24"]));
    // A tenant admin's CLI gets its own.
    let out = s.cli_env(&["connection-filter", "show"], &[("HATO_TOKEN", &contoso)]);
    assert!(out.0, "{}", out.2);
    assert_eq!(
        out.1,
        "connection filter policy of contoso\nLIST         ENTRY\nIPAllowList  192.0.2.0/24\n"
    );
}

#[test]
fn the_connection_log_is_kept_per_tenant_and_whole_for_the_operator() {
    let s = server("");
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-block-list-add",
        "127.0.0.2",
    ]);
    // A refusal on contoso's policy (twice in one session: one row) ...
    let mut c = Client::ready(&s, "127.0.0.2");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert_eq!(c.cmd("RCPT TO:<alice@contoso.test>"), BLOCKED);
    assert_eq!(c.cmd("RCPT TO:<postmaster@contoso.test>"), BLOCKED);
    c.cmd("QUIT");
    // ... and one of the platform's (a HELO naming this server).
    let mut c = Client::connect(s.smtp, "127.0.0.6");
    c.reply();
    assert_eq!(
        c.cmd("EHLO mx.hato.test"),
        "550 5.7.506 Access Denied, Bad HELO\r\n"
    );
    assert_eq!(
        c.cmd("HELO [127.0.0.1]"),
        "550 5.7.506 Access Denied, Bad HELO\r\n"
    );
    assert!(
        c.cmd("EHLO client.test")
            .starts_with("250-mx.hato.test Hello [127.0.0.6]")
    );
    c.cmd("QUIT");

    // The operator sees both, newest first.
    let rows = log_rows(&s, &s.token, "", 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (helo, blocked) = (&rows[0], &rows[1]);
    assert_eq!(helo["stage"], "helo");
    assert_eq!(helo["ip"], "127.0.0.6");
    assert_eq!(helo["helo"], "mx.hato.test");
    assert_eq!(helo["rule"], "edge.reject_bad_helo");
    assert_eq!(helo["reply"], "550 5.7.506 Access Denied, Bad HELO");
    assert_eq!(helo["tenant"], Value::Null);
    assert_eq!(blocked["stage"], "connection_filter");
    assert_eq!(blocked["ip"], "127.0.0.2");
    assert_eq!(blocked["helo"], "client.test");
    assert_eq!(blocked["tenant"], "contoso");
    assert_eq!(blocked["rule"], "IPBlockList");
    assert_eq!(
        (
            blocked["status"].as_u64(),
            blocked["enhanced_status"].as_str()
        ),
        (Some(550), Some("5.7.513"))
    );
    assert_eq!(blocked["reply"], BLOCKED.trim_end());
    assert_eq!(figure(&blocked["reason"], "entry"), "127.0.0.2");
    assert_eq!(figure(&blocked["reason"], "domain"), "contoso.test");
    assert!(blocked["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A tenant's admins see the refusals made on its policy only.
    let contoso = token(&s, "contoso", "global-admin");
    let mine = log_rows(&s, &contoso, "", 1);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["stage"], "connection_filter");
    let fabrikam = token(&s, "fabrikam", "global-admin");
    let (status, v) = s.api_as(&fabrikam, "GET", "/api/v1/connections", None);
    assert_eq!(status, 200);
    assert_eq!(v["rows"], json!([]));
    let (status, _) = s.api_as(&fabrikam, "GET", "/api/v1/connections?tenant=contoso", None);
    assert_eq!(status, 404);
    // Filters: IP, tenant, time, and their errors.
    assert_eq!(log_rows(&s, &s.token, "ip=127.0.0.6", 1).len(), 1);
    assert_eq!(log_rows(&s, &s.token, "tenant=contoso", 1).len(), 1);
    let (_, v) = s.api("GET", "/api/v1/connections?end=2000-01-01", None);
    assert_eq!(v["rows"], json!([]));
    let (status, v) = s.api("GET", "/api/v1/connections?ip=localhost", None);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("ip: \"localhost\" is not an IP address"))
    );
    let (status, v) = s.api("GET", "/api/v1/connections?page_size=5001", None);
    assert_eq!(status, 400, "{v}");
    let (_, v) = s.api("GET", "/api/v1/connections?page_size=1", None);
    assert_eq!(
        (v["rows"].as_array().map(Vec::len), &v["more"]),
        (Some(1), &json!(true))
    );

    // The CLI: a table, JSON, and a tenant's view.
    let out = s.ok(&["connections", "--ip", "127.0.0.2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("TIME"), "{out}");
    for want in [
        "127.0.0.2",
        "client.test",
        "connection_filter",
        "IPBlockList",
        "contoso",
        "550 5.7.513",
    ] {
        assert!(lines[1].contains(want), "{want}: {out}");
    }
    let out = s.ok(&[
        "connections",
        "--start",
        "2026-01-01",
        "--end",
        "2100-01-01",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(2));
    let (ok, out, err) = s.cli_env(&["connections", "--json"], &[("HATO_TOKEN", &fabrikam)]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["rows"], json!([]));
    let (ok, _, err) = s.cli_env(
        &["connections", "--tenant", "contoso"],
        &[("HATO_TOKEN", &fabrikam)],
    );
    assert!(!ok && err.contains("HTTP 404"), "{err}");
}

#[test]
fn an_early_talker_is_refused_when_the_greeting_delay_is_on() {
    let s = server("greeting_delay_ms = 500");
    let mut c = Client::connect(s.smtp, "127.0.0.7");
    c.send(b"EHLO early.test\r\n");
    assert_eq!(
        c.reply(),
        "554 5.5.1 Protocol error: the client sent data before the greeting\r\n"
    );
    assert!(c.closed());
    // A client that waits for the banner is served.
    let mut c = Client::ready(&s, "127.0.0.8");
    c.cmd("MAIL FROM:<x@outside.test>");
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    c.cmd("QUIT");
    let rows = log_rows(&s, &s.token, "ip=127.0.0.7", 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["stage"], "early_talker");
    assert_eq!(row["rule"], "edge.greeting_delay_ms");
    assert_eq!(
        row["reply"],
        "554 5.5.1 Protocol error: the client sent data before the greeting"
    );
    assert_eq!(row["helo"], "");
    assert_eq!(figure(&row["reason"], "bytes"), 17);
    assert!(
        figure(&row["reason"], "after_ms")
            .as_u64()
            .is_some_and(|ms| ms < 500),
        "{row}"
    );
}

/// The answers have exactly the fields the OpenAPI document gives them.
#[test]
fn the_documented_schemas_are_the_answers_shapes() {
    let s = server("");
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-block-list-add",
        "127.0.0.9",
    ]);
    let mut c = Client::ready(&s, "127.0.0.9");
    c.cmd("MAIL FROM:<x@outside.test>");
    c.cmd("RCPT TO:<alice@contoso.test>");
    let rows = log_rows(&s, &s.token, "", 1);
    let (_, doc) = s.api("GET", "/api/v1/openapi.json", None);
    let fields = |schema: &str| -> Vec<String> {
        let mut f: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} has no properties"))
            .keys()
            .cloned()
            .collect();
        f.sort();
        f
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&rows[0]), fields("ConnectionRow"));
    let (_, page) = s.api("GET", "/api/v1/connections", None);
    assert_eq!(keys(&page), fields("ConnectionPage"));
    let (_, policy) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(keys(&policy), fields("ConnectionFilterView"));
    for path in ["/api/v1/connections", "/api/v1/connection-filter"] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

#[test]
fn the_edge_settings_are_in_hato_init_with_their_defaults_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(BIN)
        .arg("init")
        .current_dir(dir.path())
        .output()
        .expect("hato init");
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("hato.toml")).expect("hato.toml");
    for line in [
        "[edge]",
        "#reject_bad_helo = true",
        "#greeting_delay_ms = 0",
        "#connection_filter_max_entries = 1273",
        "#connection_log_retention_days = 30",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(
        text.contains("\"550 5.7.506 Access Denied, Bad HELO\""),
        "{text}"
    );
    assert!(
        text.contains("\"554 5.5.1 Protocol error: the client sent data before the greeting\""),
        "{text}"
    );
    // Settings out of range are refused, naming them.
    for (setting, name) in [
        ("greeting_delay_ms = 300000", "edge.greeting_delay_ms"),
        (
            "connection_log_retention_days = 0",
            "edge.connection_log_retention_days",
        ),
        (
            "connection_filter_max_entries = 0",
            "edge.connection_filter_max_entries",
        ),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, format!("[edge]\n{setting}\n")).expect("write");
        let out = std::process::Command::new(BIN)
            .args(["--config"])
            .arg(&file)
            .args(["tenant", "list"])
            .env_remove("HATO_TOKEN")
            .output()
            .expect("hato");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(name),
            "{setting}: {err}"
        );
    }
}
