//! The provider's block list against the real server: the operator's API and CLI, and the delist
//! page — a request through the HTML form (plain HTTP POSTs from distinct loopback addresses),
//! the confirmation mail read from a local mailbox, the link followed, the entry gone; the
//! limits per client IP and per address; what the page reveals; HTML escaping.

mod common;
use common::*;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const ONE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const TWO: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THREE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const FOUR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

/// An answer: status, head (lower-case), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
    }
}

/// One HTTP request from the loopback address `from`.
fn request_from(
    from: IpAddr,
    admin: SocketAddr,
    method: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        socket.connect(admin).await.expect("connect")
    });
    let mut s = stream.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    let body = form
        .map(|fields| {
            fields
                .iter()
                .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default();
    let kind = if form.is_some() {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    } else {
        ""
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&resp[split + 4..]).into_owned(),
    }
}

/// A delist request through the form, from `from`.
fn ask(s: &Server, from: IpAddr, address: &str, ip: &str) -> Answer {
    request_from(
        from,
        s.admin,
        "POST",
        "/delist",
        Some(&[("address", address), ("ip", ip)]),
    )
}

fn server() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s
}

fn entries(s: &Server) -> Vec<String> {
    let (status, v) = s.api("GET", "/api/v1/blocklist", None);
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["entry"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn requests(s: &Server) -> Vec<Value> {
    let (status, v) = s.api("GET", "/api/v1/blocklist/requests", None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The answer every request gets, listed or not.
fn sent_page(ip: &str, address: &str) -> String {
    format!(
        "<p>If {ip} is on the block list of mx.hato.test, a message has been sent to {address} \
         saying how to have it removed: a link to confirm the removal, which works once, for 24 \
         hours (or, for an address listed as part of a network, whom to write to). If no \
         message arrives, the IP address is not listed here.</p>"
    )
}

#[test]
fn the_delist_round_trip_removes_the_entry() {
    let s = server();
    s.ok(&["blocklist", "add", "192.0.2.7", "--reason", "spam run"]);
    let form = request_from(ONE, s.admin, "GET", "/delist", None);
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("<form method=\"post\" action=\"delist\">")
            && form.body.contains("name=\"address\"")
            && form.body.contains("name=\"ip\"")
            && !form.body.contains("<script"),
        "{}",
        form.body
    );

    let answer = ask(&s, ONE, "Alice@contoso.test", "192.0.2.7");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .body
            .contains(&sent_page("192.0.2.7", "alice@contoso.test")),
        "{}",
        answer.body
    );

    // The confirmation, delivered like any mail to the local mailbox.
    s.wait_for("the confirmation mail", || {
        !s.mail("alice@contoso.test").is_empty()
    });
    let mail = s.mail("alice@contoso.test");
    assert_eq!(mail.len(), 1);
    assert_eq!(
        mail[0]["subject"],
        "Confirm the removal of 192.0.2.7 from the block list"
    );
    let raw = s.raw_mail("alice@contoso.test", mail[0]["id"].as_i64().expect("id"));
    assert!(
        raw.contains("From: Mail Delivery System <postmaster@mx.hato.test>\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nAuto-Submitted: auto-generated\r\n"),
        "{raw}"
    );
    // The default delist URL: the admin listener's /delist.
    let base = format!("http://{}", s.admin);
    let link = raw
        .lines()
        .find(|l| l.starts_with(&format!("{base}/delist/confirm?token=")))
        .unwrap_or_else(|| panic!("no link in {raw}"));
    let path = &link[base.len()..];
    let token = link.rsplit_once("token=").expect("token").1;

    // Following the link shows the button and changes nothing yet.
    let page = request_from(TWO, s.admin, "GET", path, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(
            "<p>Remove 192.0.2.7 from the block list of mx.hato.test? Mail from it is accepted \
             again at once.</p>"
        ) && page
            .body
            .contains("<button type=\"submit\">Delist IP</button>"),
        "{}",
        page.body
    );
    assert_eq!(entries(&s), ["192.0.2.7"]);

    let done = request_from(
        TWO,
        s.admin,
        "POST",
        "/delist/confirm",
        Some(&[("token", token)]),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body
            .contains("<p>192.0.2.7 has been removed from the block list of mx.hato.test.</p>"),
        "{}",
        done.body
    );
    assert!(entries(&s).is_empty());

    // The link works once.
    let again = request_from(
        TWO,
        s.admin,
        "POST",
        "/delist/confirm",
        Some(&[("token", token)]),
    );
    assert_eq!(again.status, 200);
    assert!(
        again
            .body
            .contains("<p>This link for 192.0.2.7 has been used already, on "),
        "{}",
        again.body
    );
    let page = request_from(TWO, s.admin, "GET", path, None);
    assert!(page.body.contains("has been used already"), "{}", page.body);
    // A token nobody was sent.
    let bogus = request_from(
        TWO,
        s.admin,
        "GET",
        &format!("/delist/confirm?token={}", "0".repeat(64)),
        None,
    );
    assert_eq!(bogus.status, 404);
    assert!(
        bogus.body.contains("This link is not valid"),
        "{}",
        bogus.body
    );

    // Recorded: who asked, when, for what, and what came of it.
    let recorded = requests(&s);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let r = &recorded[0];
    assert_eq!(
        (
            &r["ip"],
            &r["address"],
            &r["client_ip"],
            &r["outcome"],
            &r["entry"]
        ),
        (
            &json!("192.0.2.7"),
            &json!("alice@contoso.test"),
            &json!("127.0.0.1"),
            &json!("removed"),
            &json!("192.0.2.7")
        )
    );
    assert!(
        r["confirmed"].is_string() && r["link_expires"].is_string(),
        "{r}"
    );

    // The edge's copy was reloaded: asking again finds the IP not listed (no mail).
    let answer = ask(&s, ONE, "alice@contoso.test", "192.0.2.7");
    assert_eq!(answer.status, 200);
    assert_eq!(requests(&s)[0]["outcome"], "not_listed");
}

/// Someone who only asks learns nothing: the page is the same for an IP that is listed and one
/// that is not; only the mailbox learns (and nothing is mailed for an IP not listed).
#[test]
fn the_page_answers_alike_whether_or_not_the_ip_is_listed() {
    let s = server();
    s.ok(&["blocklist", "add", "192.0.2.7", "--reason", "spam run"]);
    let free = ask(&s, ONE, "alice@contoso.test", "203.0.113.9");
    assert_eq!(free.status, 200);
    assert_eq!(requests(&s)[0]["outcome"], "not_listed");
    // The request was handled before its answer: nothing was queued for it.
    assert!(s.trace("recipient=alice@contoso.test").is_empty());
    let listed = ask(&s, ONE, "alice@contoso.test", "192.0.2.7");
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body.replace("192.0.2.7", "IP"),
        free.body.replace("203.0.113.9", "IP")
    );
    assert!(
        !listed.body.contains("spam run"),
        "the reason is the operator's"
    );
    assert_eq!(s.trace("recipient=alice@contoso.test").len(), 1);
}

/// An IP listed through a network entry is not removed on request: the mail says whom to write
/// to, and carries no link.
#[test]
fn a_network_entry_is_not_removed_on_request() {
    let s = server();
    s.ok(&[
        "blocklist",
        "add",
        "198.51.100.0/24",
        "--reason",
        "snowshoe range",
    ]);
    let answer = ask(&s, ONE, "alice@contoso.test", "198.51.100.9");
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .contains(&sent_page("198.51.100.9", "alice@contoso.test"))
    );
    s.wait_for("the notice", || !s.mail("alice@contoso.test").is_empty());
    let mail = s.mail("alice@contoso.test");
    assert_eq!(
        mail[0]["subject"],
        "About the removal of 198.51.100.9 from the block list"
    );
    let raw = s.raw_mail("alice@contoso.test", mail[0]["id"].as_i64().expect("id"));
    assert!(
        raw.contains("Write to postmaster@mx.hato.test about it, naming the address."),
        "{raw}"
    );
    assert!(!raw.contains("/delist/confirm"), "{raw}");
    let r = &requests(&s)[0];
    assert_eq!(
        (&r["outcome"], &r["entry"]),
        (&json!("listed_in_range"), &json!("198.51.100.0/24"))
    );
    assert_eq!(entries(&s), ["198.51.100.0/24"]);
}

#[test]
fn delist_requests_are_limited_per_address_and_per_client_ip() {
    let s = server();
    // Per address, whichever client asks: three an hour.
    for i in 0..3 {
        let a = ask(&s, ONE, "bob@fabrikam.test", "203.0.113.9");
        assert_eq!(a.status, 200, "request {i}: {}", a.body);
    }
    for from in [ONE, TWO] {
        let a = ask(&s, from, "Bob@Fabrikam.test", "203.0.113.9");
        assert_eq!(a.status, 429, "{}", a.body);
        let secs: u64 = a
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After in {}", a.head));
        assert!((3590..=3600).contains(&secs), "{secs}");
        assert!(
            a.body.contains(
                "<p>Too many requests from your network or for this email address. Please try \
                 again in 60 minutes.</p>"
            ),
            "{}",
            a.body
        );
    }
    // Per client IP, whatever addresses it names: ten an hour.
    for i in 0..10 {
        let a = ask(&s, THREE, &format!("user{i}@fabrikam.test"), "203.0.113.9");
        assert_eq!(a.status, 200, "request {i}: {}", a.body);
    }
    let a = ask(&s, THREE, "someone@fabrikam.test", "203.0.113.9");
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.header("retry-after").is_some(), "{}", a.head);
    // Another client, and the limited client's own address, are not affected.
    assert_eq!(
        ask(&s, FOUR, "someone@fabrikam.test", "203.0.113.9").status,
        200
    );
    // Refused requests were not recorded; the others were (3 + 10 + 1).
    assert_eq!(requests(&s).len(), 14);
}

#[test]
fn the_page_escapes_what_it_echoes() {
    let s = server();
    let hostile = "\"><script>alert(1)</script><a href='x'>";
    let a = ask(&s, ONE, hostile, "<b>192.0.2.7</b>");
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        !a.body.contains("<script") && !a.body.contains("<b>") && !a.body.contains("<a href"),
        "{}",
        a.body
    );
    let escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&#39;x&#39;&gt;";
    assert!(
        a.body.contains(&format!(
            "<p role=\"alert\"><strong>\"{escaped}\" is not an email address.</strong></p>"
        )),
        "{}",
        a.body
    );
    // Typed values are given back in the form, escaped.
    assert!(
        a.body.contains(&format!("value=\"{escaped}\"")),
        "{}",
        a.body
    );
    let a = ask(&s, ONE, "alice@contoso.test", "<b>192.0.2.7</b>");
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains(
            "\"&lt;b&gt;192.0.2.7&lt;/b&gt;\" is not an IP address: give one IPv4 or IPv6 \
             address, as the refusal shows it between [ and ]."
        ),
        "{}",
        a.body
    );
    assert_eq!(
        a.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(
        a.header("content-security-policy")
            .is_some_and(|v| v.starts_with("default-src 'none'")),
        "{}",
        a.head
    );
    // Nothing was recorded for requests that were not read.
    assert!(requests(&s).is_empty());
    // A form larger than two fields need is refused before it is read.
    let big = "a".repeat(10_000);
    let a = ask(&s, ONE, &big, "192.0.2.7");
    assert_eq!(a.status, 413, "{}", a.body);
}

#[test]
fn the_block_list_is_the_operators_alone() {
    let s = server();
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/tokens",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 201, "{v}");
    let admin = v["token"].as_str().expect("token").to_string();
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/blocklist",
            Some(json!({ "entry": "192.0.2.7", "reason": "r" })),
        ),
        ("GET", "/api/v1/blocklist", None),
        ("DELETE", "/api/v1/blocklist/192.0.2.7", None),
        ("GET", "/api/v1/blocklist/requests", None),
    ] {
        let (status, v) = s.api_as(&admin, method, path, body.clone());
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert_eq!(v["error"], "only the platform operator may do this");
        let (status, _) = s.api_as("", method, path, body);
        assert_eq!(status, 401, "{method} {path}");
    }

    let (status, v) = s.api(
        "POST",
        "/api/v1/blocklist",
        Some(json!({ "entry": "2001:DB8::/32", "reason": " v6 snowshoe ", "expires_in": "12h" })),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (&v["entry"], &v["reason"], &v["added_by"]),
        (
            &json!("2001:db8::/32"),
            &json!("v6 snowshoe"),
            &json!("operator")
        )
    );
    let added =
        chrono::DateTime::parse_from_rfc3339(v["added"].as_str().expect("added")).expect("time");
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires"].as_str().expect("expires"))
        .expect("time");
    assert_eq!((expires - added).num_seconds(), 12 * 3600);
    let (status, v) = s.api(
        "POST",
        "/api/v1/blocklist",
        Some(json!({ "entry": "2001:db8::/32", "reason": "again" })),
    );
    assert_eq!(
        (status, &v["error"]),
        (
            409,
            &json!("the block list entry 2001:db8::/32 already exists")
        )
    );
    for (body, error) in [
        (
            json!({ "entry": "192.0.2.7/24", "reason": "r" }),
            "\"192.0.2.7/24\" has address bits set past its prefix: the network is 192.0.2.0/24",
        ),
        (
            json!({ "entry": "192.0.2.7", "reason": "  " }),
            "reason: say why the entry is listed",
        ),
        (
            json!({ "entry": "192.0.2.7", "reason": "a\r\nb" }),
            "reason: no control characters (one line of text)",
        ),
        (
            json!({ "entry": "192.0.2.7", "reason": "r", "expires_in": "1w" }),
            "expires_in: \"1w\" is not an expiry: give a whole number of days, hours or minutes (7d, 12h, 30m), at most 3650 days",
        ),
    ] {
        let (status, v) = s.api("POST", "/api/v1/blocklist", Some(body.clone()));
        assert_eq!((status, v["error"].as_str()), (400, Some(error)), "{body}");
    }
    // A network's slash goes percent-encoded in the path.
    let (status, v) = s.api("DELETE", "/api/v1/blocklist/2001:db8::%2F32", None);
    assert_eq!(status, 204, "{v}");
    let (status, v) = s.api("DELETE", "/api/v1/blocklist/2001:db8::%2F32", None);
    assert_eq!(
        (status, &v["error"]),
        (404, &json!("the block list entry 2001:db8::/32 not found"))
    );
    assert!(entries(&s).is_empty());
}

#[test]
fn blocklist_commands_add_list_and_remove_entries() {
    let s = server();
    assert_eq!(
        s.ok(&["blocklist", "add", "192.0.2.7", "--reason", "spam run"]),
        "192.0.2.7 added to the block list, until removed\n"
    );
    let out = s.ok(&[
        "blocklist",
        "add",
        "2001:db8::/32",
        "--reason",
        "v6",
        "--expires",
        "7d",
    ]);
    let until = out
        .trim_end()
        .strip_prefix("2001:db8::/32 added to the block list, until ")
        .unwrap_or_else(|| panic!("{out}"));
    let until = chrono::DateTime::parse_from_rfc3339(until).expect("a time");
    let week = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((7 * 86_400 - 120..=7 * 86_400).contains(&week), "{week}");

    let table = s.ok(&["blocklist", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ENTRY", "EXPIRES", "ADDED", "ADDED_BY", "REASON"]);
    let words =
        |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_string).collect() };
    let (first, second) = (words(lines[1]), words(lines[2]));
    assert_eq!(
        (&first[..2], &first[3..]),
        (
            &["192.0.2.7".to_string(), "never".into()][..],
            &["operator".to_string(), "spam".into(), "run".into()][..]
        ),
        "{table}"
    );
    let until_text = until
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        (first[2] == second[2], &second[..2]),
        (true, &["2001:db8::/32".to_string(), until_text][..]),
        "{table}"
    );
    let v: Value = serde_json::from_str(&s.ok(&["blocklist", "list", "--json"])).expect("json");
    assert_eq!(v[0]["expires"], Value::Null);
    assert_eq!(v[1]["entry"], "2001:db8::/32");

    assert_eq!(
        s.ok(&["blocklist", "remove", "2001:db8::/32"]),
        "2001:db8::/32 removed from the block list\n"
    );
    for (args, error) in [
        (
            vec!["blocklist", "remove", "2001:db8::/32"],
            "error: the block list entry 2001:db8::/32 not found (HTTP 404)\n",
        ),
        (
            vec!["blocklist", "add", "192.0.2.7/24", "--reason", "r"],
            "error: \"192.0.2.7/24\" has address bits set past its prefix: the network is 192.0.2.0/24 (HTTP 400)\n",
        ),
        (
            vec!["blocklist", "add", "bad", "--reason", "r"],
            "error: \"bad\" is not an IP address or network: give one IPv4 or IPv6 address (192.0.2.7, 2001:db8::7) or a network in CIDR form (192.0.2.0/24, 2001:db8::/32) (HTTP 400)\n",
        ),
        (
            vec![
                "blocklist",
                "add",
                "192.0.2.9",
                "--reason",
                "r",
                "--expires",
                "7",
            ],
            "error: expires_in: \"7\" is not an expiry: give a whole number of days, hours or minutes (7d, 12h, 30m), at most 3650 days (HTTP 400)\n",
        ),
    ] {
        let (ok, out, err) = s.cli(&args);
        assert!(!ok, "{args:?}: {out}");
        assert_eq!(err, error, "{args:?}");
    }
    assert_eq!(s.ok(&["blocklist", "requests", "--json"]).trim(), "[]");
    assert_eq!(
        s.ok(&["blocklist", "list"]).lines().count(),
        2,
        "192.0.2.7 is left"
    );
}
