//! The Mail flow and Protection pages of the web console against the real server, without a
//! browser: what each role sees and may do (a recipient admin never sees accepted domains or
//! connectors, a user neither page, a forged POST is 403, a POST without the CSRF token is
//! 403), escaping of names, every action checked through the API afterwards, refusals shown
//! with the values kept, rule reorder and test, connector validation against an SMTP sink on
//! loopback, and a throttle's release. `tests/console_browser_flow.rs` drives a real browser.

mod common;
use common::console::{Client, roles_fixture};
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const PASSWORD: &str = "correct horse battery";

/// contoso with a user, a recipient admin and a global admin (through role groups), and
/// fabrikam with a user.
fn setup() -> Server {
    roles_fixture(Server::start(), PASSWORD)
}

/// The tenant's rules through the API: (name, priority, enabled, mode).
fn rules(s: &Server) -> Vec<(String, u64, bool, String)> {
    let (status, v) = s.api("GET", "/api/v1/tenants/contoso/rules", None);
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["priority"].as_u64().unwrap_or(99),
                r["enabled"].as_bool().unwrap_or(false),
                r["rule"]["mode"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn each_role_sees_what_the_api_lets_it_and_forged_or_tokenless_posts_are_refused() {
    let s = setup();
    let pages = [
        "/mail-flow",
        "/mail-flow/domains",
        "/mail-flow/connectors",
        "/mail-flow/queue",
        "/protection",
        "/protection/blocklist",
        "/protection/throttle",
        "/protection/malware",
        "/protection/spam",
        "/protection/connections",
    ];
    // A user and a recipient admin: neither page, nor its entry in the navigation.
    for who in ["user@contoso.test", "ra@contoso.test"] {
        let mut c = Client::signed_in(&s, who, PASSWORD);
        let home = c.get("/");
        assert!(!home.nav().contains(&"/mail-flow".to_string()), "{who}");
        assert!(!home.nav().contains(&"/protection".to_string()), "{who}");
        for p in pages {
            let a = c.get(p);
            assert_eq!(a.status, 403, "{who} {p}");
            assert!(!a.body.contains("<strong>contoso</strong>"), "{who} {p}");
        }
        // A forged form, with the session's own CSRF token: refused as the API refuses it.
        let token = home.csrf();
        for (path, form) in [
            (
                "/mail-flow/rules",
                vec![
                    ("name", "Forged"),
                    ("condition", "sent_to"),
                    ("condition_value", "user@contoso.test"),
                    ("action", "delete_message"),
                ],
            ),
            (
                "/mail-flow/domains",
                vec![("op", "add"), ("domain", "forged.test")],
            ),
            (
                "/mail-flow/connectors",
                vec![
                    ("direction", "inbound"),
                    ("name", "Forged"),
                    ("connector_type", "partner"),
                    ("sender_domains", "forged.test"),
                ],
            ),
            (
                "/protection/connection-filter",
                vec![
                    ("list", "ip_allow_list"),
                    ("op", "add"),
                    ("entry", "192.0.2.1"),
                ],
            ),
        ] {
            let mut form = form.clone();
            form.push(("_csrf", &token));
            let a = c.post(path, &form, &[]);
            assert_eq!(a.status, 403, "{who} {path}: {}", a.body);
        }
    }
    assert!(rules(&s).is_empty());
    let (_, v) = s.api("GET", "/api/v1/domains?tenant=contoso", None);
    assert!(!v.to_string().contains("forged.test"), "{v}");
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/connectors/inbound", None);
    assert_eq!(v, json!([]));
    let (_, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(v["ip_allow_list"], json!([]));

    // A global admin sees every tab of both, for their own tenant.
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    for p in pages {
        let a = ga.get(p);
        assert_eq!(a.status, 200, "{p}: {}", a.body);
        assert!(a.body.contains("<strong>contoso</strong>"), "{p}");
        // Light pages (issue 11: < 150 KB on first load, with the stylesheet and htmx).
        assert!(a.body.len() < 40_000, "{p}: {} bytes", a.body.len());
        eprintln!("page weight {p}: {} bytes of HTML", a.body.len());
    }
    // Another tenant's, named: not found, as the API answers.
    assert_eq!(ga.get("/mail-flow?tenant=fabrikam").status, 404);
    // The provider block list is the operator's: the admin is told so, and a forged change is 403.
    let a = ga.get("/protection/blocklist");
    assert!(
        a.body.contains("platform operator manages it"),
        "{}",
        a.body
    );
    let token = a.csrf();
    ga.post_and_expect(
        "/protection/blocklist",
        &token,
        &[("op", "add"), ("entry", "198.51.100.0/24"), ("reason", "x")],
        403,
        None,
    );
    // No token, a wrong one, another origin: 403, nothing changes.
    let a = ga.post(
        "/mail-flow/rules",
        &[
            ("name", "No token"),
            ("condition", "sent_to"),
            ("condition_value", "user@contoso.test"),
            ("action", "delete_message"),
        ],
        &[],
    );
    assert_eq!(a.status, 403);
    let a = ga.post(
        "/protection/connection-filter",
        &[
            ("_csrf", &"0".repeat(64)),
            ("list", "ip_block_list"),
            ("op", "add"),
            ("entry", "192.0.2.9"),
        ],
        &[],
    );
    assert_eq!(a.status, 403);
    let a = ga.post(
        "/protection/connection-filter",
        &[
            ("_csrf", &token),
            ("list", "ip_block_list"),
            ("op", "add"),
            ("entry", "192.0.2.9"),
        ],
        &[("Origin", "http://evil.test")],
    );
    assert_eq!(a.status, 403);
    assert!(rules(&s).is_empty());
    let (_, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(v["ip_block_list"], json!([]));

    // The operator picks a tenant first, then sees its pages.
    let mut op = Client::operator(&s);
    let a = op.get("/mail-flow");
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<option value=\"fabrikam\">"), "{}", a.body);
    let a = op.get("/mail-flow/domains?tenant=fabrikam");
    assert_eq!(a.status, 200);
    assert!(a.body.contains("fabrikam.test"), "{}", a.body);
    assert!(!a.body.contains("contoso.test"), "{}", a.body);
}

#[test]
fn rules_are_created_escaped_reordered_switched_tested_and_deleted() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/mail-flow");
    assert_eq!(page.status, 200);
    // The form offers the API's conditions, actions and modes.
    for want in [
        "<option value=\"subject_contains_words\">SubjectContainsWords</option>",
        "<option value=\"prepend_subject\">PrependSubject</option>",
        "<option value=\"audit-and-notify\">",
    ] {
        assert!(page.body.contains(want), "{want}");
    }
    let token = page.csrf();
    let create = |c: &mut Client, name: &str, words: &str, prefix: &str| {
        c.post(
            "/mail-flow/rules",
            &[
                ("_csrf", &token),
                ("name", name),
                ("mode", "enforce"),
                ("condition", "subject_contains_words"),
                ("condition_value", words),
                ("action", "prepend_subject"),
                ("action_value", prefix),
            ],
            &[],
        )
    };
    let evil = "<script>alert(1)</script>";
    let a = create(&mut ga, evil, "invoice, payment", "[ext]");
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/mail-flow?done=created"));
    let a = create(&mut ga, "Second", "invoice", "[2]");
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        rules(&s),
        [
            (evil.to_string(), 0, true, "enforce".to_string()),
            ("Second".to_string(), 1, true, "enforce".to_string())
        ]
    );
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/rules/Second", None);
    assert_eq!(
        v["rule"]["conditions"],
        json!({ "subject_contains_words": ["invoice"] })
    );
    assert_eq!(v["rule"]["actions"], json!({ "prepend_subject": "[2]" }));

    // The name shows as text, never as markup.
    let page = ga.get("/mail-flow?done=created");
    assert!(page.body.contains("Added."), "{}", page.body);
    assert!(!page.body.contains(evil));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let first = |body: &str| {
        let a = body.find("&lt;script&gt;").expect("the first rule");
        let b = body.find(">Second</a>").expect("the second rule");
        a < b
    };
    assert!(first(&page.body));

    // Refused: an unknown condition (a forged form) and a bad value, each shown with the form kept.
    let a = ga.post_and_expect(
        "/mail-flow/rules",
        &token,
        &[
            ("name", "Kept name"),
            ("condition", "no_such_condition"),
            ("condition_value", "x"),
            ("action", "delete_message"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("no_such_condition"), "{}", a.body);
    assert!(a.body.contains("value=\"Kept name\""), "{}", a.body);
    let a = ga.post_and_expect(
        "/mail-flow/rules",
        &token,
        &[
            ("name", "Bad range"),
            ("condition", "sender_ip_ranges"),
            ("condition_value", "300.0.0.1"),
            ("action", "delete_message"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("300.0.0.1"), "{}", a.body);
    assert!(a.body.contains("value=\"Bad range\""), "{}", a.body);
    assert_eq!(rules(&s).len(), 2);

    // Move "Second" up: the API's priorities and the page's order change.
    let detail = ga.get("/mail-flow/rule/Second");
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(detail.body.contains("data-op=\"up\""));
    assert!(!detail.body.contains("data-op=\"down\""), "the last rule");
    ga.post_and_expect(
        "/mail-flow/rule-action",
        &token,
        &[("rule", "Second"), ("op", "up")],
        303,
        Some("/mail-flow?done=moved"),
    );
    let order: Vec<(String, u64)> = rules(&s).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(order, [("Second".to_string(), 0), (evil.to_string(), 1)]);
    assert!(!first(&ga.get("/mail-flow").body));
    // And down again.
    ga.post_and_expect(
        "/mail-flow/rule-action",
        &token,
        &[("rule", "Second"), ("op", "down")],
        303,
        None,
    );
    assert_eq!(rules(&s)[1].0, "Second");

    // Test a message: the matching rules, by the same engine as mail.
    let a = ga.post_and_expect(
        "/mail-flow/test",
        &token,
        &[
            ("from", "sender@outside.test"),
            ("to", "user@contoso.test"),
            ("subject", "Your invoice"),
            ("body", "see attached"),
        ],
        200,
        None,
    );
    assert!(a.body.contains("id=\"test-result\""), "{}", a.body);
    assert!(
        a.body
            .contains("<td class=\"hit-rule\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("<td class=\"hit-rule\">Second</td>"));
    assert!(
        a.body.contains("value=\"Your invoice\""),
        "the form is kept"
    );
    // A pasted message whose subject matches nothing.
    let a = ga.post_and_expect(
        "/mail-flow/test",
        &token,
        &[
            ("to", "user@contoso.test"),
            (
                "message",
                "From: a@outside.test\nTo: user@contoso.test\nSubject: lunch\n\nhi\n",
            ),
        ],
        200,
        None,
    );
    assert!(a.body.contains("no rule matches"), "{}", a.body);
    assert!(!a.body.contains("class=\"hit-rule\""));
    // A bad recipient: the API's refusal.
    let a = ga.post_and_expect(
        "/mail-flow/test",
        &token,
        &[("to", "not an address")],
        400,
        None,
    );
    assert!(a.body.contains("not an address"), "{}", a.body);

    // Disable, mode, delete.
    for (op, extra) in [("disable", None), ("mode", Some("audit-and-notify"))] {
        let mut form = vec![("_csrf", token.as_str()), ("rule", "Second"), ("op", op)];
        if let Some(m) = extra {
            form.push(("mode", m));
        }
        let a = ga.post("/mail-flow/rule-action", &form, &[]);
        assert_eq!(a.status, 303, "{op}: {}", a.body);
    }
    let second = rules(&s)
        .into_iter()
        .find(|r| r.0 == "Second")
        .expect("Second");
    assert_eq!((second.2, second.3.as_str()), (false, "audit-and-notify"));
    assert!(
        ga.get("/mail-flow/rule/Second")
            .body
            .contains("data-op=\"enable\"")
    );
    ga.post_and_expect(
        "/mail-flow/rule-action",
        &token,
        &[("rule", "Second"), ("op", "delete")],
        303,
        None,
    );
    assert_eq!(rules(&s).len(), 1);
    // The CSV has the rule, defused and quoted.
    let csv = ga.get("/mail-flow/rules.csv");
    assert_eq!(csv.status, 200);
    assert!(
        csv.body.contains("\"<script>alert(1)</script>\""),
        "{}",
        csv.body
    );
}

/// A small SMTP server on loopback that takes every message (as Postfix's smtp-sink does).
fn sink() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut w = match conn.try_clone() {
                Ok(w) => w,
                Err(_) => continue,
            };
            let mut r = BufReader::new(conn);
            let _ = w.write_all(b"220 sink.test ESMTP\r\n");
            let mut line = String::new();
            let mut data = false;
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let l = line.trim_end().to_string();
                line.clear();
                let reply: &[u8] = if data {
                    if l == "." {
                        data = false;
                        b"250 2.0.0 queued as SINK1\r\n"
                    } else {
                        continue;
                    }
                } else {
                    let verb = l.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink.test\r\n",
                        "DATA" => {
                            data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n");
                            break;
                        }
                        _ => b"250 2.0.0 ok\r\n",
                    }
                };
                if w.write_all(reply).is_err() {
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn domains_and_connectors_are_added_changed_validated_and_removed() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/mail-flow/domains");
    assert!(page.body.contains("contoso.test"));
    assert!(
        page.body.contains("class=\"domain-verified\""),
        "{}",
        page.body
    );
    let token = page.csrf();

    // A domain: added pending with its TXT record; verifying without it is refused, with why.
    ga.post_and_expect(
        "/mail-flow/domains",
        &token,
        &[
            ("op", "add"),
            ("domain", "new.contoso.test"),
            ("type", "authoritative"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/domains/new.contoso.test", None);
    assert_eq!(v["status"], "pending", "{v}");
    let page = ga.get("/mail-flow/domains");
    assert!(
        page.body
            .contains(v["verification_record"].as_str().unwrap_or("?"))
    );
    assert!(page.body.contains("class=\"domain-pending\""));
    let a = ga.post(
        "/mail-flow/domains",
        &[
            ("_csrf", &token),
            ("op", "verify"),
            ("domain", "new.contoso.test"),
        ],
        &[],
    );
    assert!(a.status == 400 || a.status == 503, "{}", a.body);
    assert!(
        a.body.contains("is not verified") || a.body.contains("could not be verified"),
        "{}",
        a.body
    );
    // A bad name: refused, the value kept.
    let a = ga.post_and_expect(
        "/mail-flow/domains",
        &token,
        &[
            ("op", "add"),
            ("domain", "bad..name"),
            ("type", "authoritative"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("value=\"bad..name\""), "{}", a.body);
    ga.post_and_expect(
        "/mail-flow/domains",
        &token,
        &[("op", "remove"), ("domain", "new.contoso.test")],
        303,
        None,
    );
    let (status, _) = s.api("GET", "/api/v1/domains/new.contoso.test", None);
    assert_eq!(status, 404);

    // An inbound connector with a name that is markup; a bad IP is refused with the form kept.
    let evil = "<b>Partner";
    let a = ga.post_and_expect(
        "/mail-flow/connectors",
        &token,
        &[
            ("direction", "inbound"),
            ("name", "Bad IP"),
            ("connector_type", "partner"),
            ("sender_ip_addresses", "300.1.1.1"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("300.1.1.1"), "{}", a.body);
    assert!(a.body.contains("value=\"Bad IP\""), "{}", a.body);
    ga.post_and_expect(
        "/mail-flow/connectors",
        &token,
        &[
            ("direction", "inbound"),
            ("name", evil),
            ("connector_type", "partner"),
            ("sender_domains", "partner.test"),
            ("comment", "from the console"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/connectors/inbound", None);
    assert_eq!(v[0]["name"], evil, "{v}");
    assert_eq!(v[0]["sender_domains"], json!(["partner.test"]));
    let page = ga.get("/mail-flow/connectors");
    assert!(!page.body.contains(evil));
    assert!(page.body.contains("&lt;b&gt;Partner"));
    // Disabled, then edited, on its page.
    let path = "/mail-flow/connectors/inbound/%3Cb%3EPartner";
    assert_eq!(ga.get(path).status, 200);
    ga.post_and_expect(path, &token, &[("op", "disable")], 303, None);
    ga.post_and_expect(
        path,
        &token,
        &[
            ("op", "save"),
            ("connector_type", "partner"),
            ("sender_domains", "partner.test\nother.test"),
            ("comment", "changed"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/connectors/inbound", None);
    assert_eq!(v[0]["enabled"], false, "{v}");
    assert_eq!(
        v[0]["sender_domains"],
        json!(["partner.test", "other.test"])
    );
    assert_eq!(v[0]["comment"], "changed");

    // An outbound connector to a loopback sink: validate shows the SMTP transcript.
    let port = sink();
    ga.post_and_expect(
        "/mail-flow/connectors",
        &token,
        &[
            ("direction", "outbound"),
            ("name", "To partner"),
            ("connector_type", "partner"),
            ("recipient_domains", "partner.test"),
            ("smart_hosts", &format!("127.0.0.1:{port}")),
        ],
        303,
        None,
    );
    let a = ga.post_and_expect(
        "/mail-flow/connectors/outbound/To%20partner",
        &token,
        &[("op", "validate"), ("recipient", "test@partner.test")],
        200,
        None,
    );
    assert!(a.body.contains("id=\"validation\""), "{}", a.body);
    for want in [
        "C: RCPT TO:&lt;test@partner.test&gt;",
        "C: DATA",
        "S: 250 2.0.0 queued as SINK1",
    ] {
        assert!(a.body.contains(want), "{want} in {}", a.body);
    }
    assert!(a.body.contains("OK: 127.0.0.1"), "{}", a.body);

    // Deleted.
    ga.post_and_expect(
        "/mail-flow/connectors/outbound/To%20partner",
        &token,
        &[("op", "delete")],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/connectors/outbound", None);
    assert_eq!(v, json!([]));

    // The queue: empty, and a retry of a message that is not there is the API's 404.
    let q = ga.get("/mail-flow/queue");
    assert_eq!(q.status, 200);
    let a = ga.post_and_expect(
        "/mail-flow/queue",
        &token,
        &[("op", "retry"), ("trace_id", "nosuchid")],
        404,
        None,
    );
    assert!(a.body.contains("waits in the queue"), "{}", a.body);
}

#[test]
fn the_connection_filter_changes_and_a_throttle_is_released() {
    let mut s = setup();
    // A throttle as the SMTP path makes one, loaded at start (as tests/throttle.rs does).
    let now = hato_core::Clock::now(&hato_core::SystemClock);
    let ip: std::net::IpAddr = "203.0.113.9".parse().expect("ip");
    let th = hato_protection::throttle::Throttle::new(Default::default());
    th.record_connection(ip, now);
    th.record_message(ip, 150, now);
    assert!(th.check(ip, now).refuses());
    th.save(&s.data_dir().join("throttle.state")).expect("save");
    s.restart();

    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/protection");
    assert_eq!(page.status, 200);
    let token = page.csrf();
    ga.post_and_expect(
        "/protection/connection-filter",
        &token,
        &[
            ("list", "ip_block_list"),
            ("op", "add"),
            ("entry", "192.0.2.7, 198.51.100.0/24"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(
        v["ip_block_list"],
        json!(["192.0.2.7", "198.51.100.0/24"]),
        "{v}"
    );
    let page = ga.get("/protection");
    assert!(page.body.contains("198.51.100.0/24"));
    // An invalid range: the API's reason, the value kept.
    let a = ga.post_and_expect(
        "/protection/connection-filter",
        &token,
        &[
            ("list", "ip_allow_list"),
            ("op", "add"),
            ("entry", "10.0.0.0/8"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("10.0.0.0/8"), "{}", a.body);
    assert!(a.body.contains("value=\"10.0.0.0/8\""), "{}", a.body);
    ga.post_and_expect(
        "/protection/connection-filter",
        &token,
        &[
            ("list", "ip_block_list"),
            ("op", "remove"),
            ("entry", "192.0.2.7"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(v["ip_block_list"], json!(["198.51.100.0/24"]), "{v}");

    // A tenant's admin sees the throttle and no release button; a forged release is 403.
    let a = ga.get("/protection/throttle?ip=203.0.113.9");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("<strong>Throttled</strong>"), "{}", a.body);
    assert!(!a.body.contains("/protection/throttle/release"));
    ga.post_and_expect(
        "/protection/throttle/release",
        &token,
        &[("ip", "203.0.113.9")],
        403,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/throttle/203.0.113.9", None);
    assert_eq!(v["throttled"], true);
    // A bad IP: the API's refusal.
    let a = ga.get("/protection/throttle?ip=not-an-ip");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("not an IP address"), "{}", a.body);

    // The operator releases it.
    let mut op = Client::operator(&s);
    let a = op.get("/protection/throttle?tenant=contoso&ip=203.0.113.9");
    assert!(
        a.body.contains("/protection/throttle/release"),
        "{}",
        a.body
    );
    let token = a.csrf();
    let a = op.post_and_expect(
        "/protection/throttle/release",
        &token,
        &[("tenant", "contoso"), ("ip", "203.0.113.9")],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/throttle/203.0.113.9", None);
    assert_eq!(v["throttled"], false, "{v}");
    let a = op.get(a.header("location").unwrap_or("/"));
    assert!(a.body.contains("Throttle released."), "{}", a.body);
    assert!(a.body.contains("<strong>Not throttled</strong>"));

    // The provider block list: the operator adds an entry.
    op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[
            ("tenant", "contoso"),
            ("op", "add"),
            ("entry", "198.51.100.77"),
            ("reason", "<i>spam run</i>"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/blocklist", None);
    assert!(v.to_string().contains("198.51.100.77"), "{v}");
    let page = op.get("/protection/blocklist?tenant=contoso");
    assert!(
        page.body.contains("&lt;i&gt;spam run&lt;/i&gt;"),
        "{}",
        page.body
    );

    // Malware and spam policies: one setting changed, through the API's checks.
    let page = ga.get("/protection/malware");
    assert_eq!(page.status, 200);
    let ga_token = page.csrf();
    ga.post_and_expect(
        "/protection/malware",
        &ga_token,
        &[("setting", "enable_file_filter"), ("value", "false")],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/malware-filter?tenant=contoso", None);
    assert_eq!(v["enable_file_filter"], false, "{v}");
    let a = ga.post_and_expect(
        "/protection/spam",
        &ga_token,
        &[
            ("kind", "inbound"),
            ("policy", "Default"),
            ("setting", "bulk_threshold"),
            ("value", "12"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("value=\"12\""), "{}", a.body);
    ga.post_and_expect(
        "/protection/spam",
        &ga_token,
        &[
            ("kind", "inbound"),
            ("policy", "Default"),
            ("setting", "bulk_threshold"),
            ("value", "5"),
        ],
        303,
        None,
    );
    let (_, v) = s.api(
        "GET",
        "/api/v1/tenants/contoso/spam-filter/policies/Default",
        None,
    );
    assert_eq!(v["bulk_threshold"], 5, "{v}");
    let _: Value = v;

    // The connection log lists the refusals made on the tenant's policy: a client on the IP
    // block list, refused at RCPT (550 5.7.513), shows up with its reason.
    ga.post_and_expect(
        "/protection/connection-filter",
        &ga_token,
        &[
            ("list", "ip_block_list"),
            ("op", "add"),
            ("entry", "127.0.0.5"),
        ],
        303,
        None,
    );
    let mut c = Smtp::connect_from(s.smtp, "127.0.0.5");
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO blocked.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<x@outside.test>").starts_with("250"));
    let reply = c.cmd("RCPT TO:<user@contoso.test>");
    assert!(reply.starts_with("550 5.7.513"), "{reply}");
    drop(c);
    s.wait_for("the connection log", || {
        ga.get("/protection/connections?ip=127.0.0.5")
            .body
            .contains("5.7.513")
    });
    let log = ga.get("/protection/connections?ip=127.0.0.5");
    assert!(log.body.contains("blocked.example"), "{}", log.body);
    assert!(
        ga.get("/protection/connections.csv?ip=127.0.0.5")
            .body
            .contains("5.7.513")
    );
    // Another client's rows are not on its page.
    assert!(
        !ga.get("/protection/connections?ip=127.0.0.6")
            .body
            .contains("5.7.513")
    );
    // In Japanese, as Exchange's Japanese admin centre names them.
    assert_eq!(ga.get("/lang?set=ja&next=/protection").status, 303);
    let ja = ga.get("/protection");
    for label in [
        "接続フィルター",
        "IP 禁止一覧",
        "マルウェア対策",
        "スパム対策",
        "接続ログ",
        "追加",
    ] {
        assert!(ja.body.contains(label), "{label}");
    }
    let ja = ga.get("/mail-flow/connectors");
    for label in ["コネクタ", "承認済みドメイン", "キュー", "コネクタの追加"]
    {
        assert!(ja.body.contains(label), "{label}");
    }
    assert_eq!(ga.get("/lang?set=en&next=/").status, 303);
    let log = ga.get("/protection/connections?ip=bad");
    assert_eq!(log.status, 400);
}

#[test]
fn the_queue_lists_a_waiting_message_and_retries_and_deletes_it() {
    // A message to a group with an outside contact waits in the queue (the harness's resolver
    // never answers the MX lookup), as in tests/queue.rs.
    let s = setup();
    s.ok(&[
        "contact",
        "add",
        "partner@outside.test",
        "--tenant",
        "contoso",
        "--name",
        "Partner",
    ]);
    s.ok(&[
        "group",
        "add",
        "partners@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "owner@contoso.test",
        "--member",
        "partner@outside.test",
        "--require-sender-authentication",
        "false",
    ]);
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.test");
    let reply = c.send_mail(
        "someone@elsewhere.test",
        &["partners@contoso.test"],
        "Subject: <script>queued</script>\r\n\r\nhello\r\n",
    );
    let trace_id = trace_id_of(&reply);
    let waiting = |s: &Server| {
        s.api("GET", "/api/v1/queue?recipient=partner@outside.test", None)
            .1["rows"]
            .as_array()
            .map(|r| r.len())
            .unwrap_or(0)
    };
    s.wait_for("the first deferral", || {
        s.api("GET", "/api/v1/queue?recipient=partner@outside.test", None)
            .1["rows"][0]["attempts"]
            == 1
    });

    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/mail-flow/queue?status=Retry");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&trace_id), "{}", page.body);
    assert!(page.body.contains("partner@outside.test"));
    assert!(
        page.body.contains("4.4.312"),
        "the last error: {}",
        page.body
    );
    // Filters are the API's: a bad status is its 400, with the filters kept.
    let a = ga.get("/mail-flow/queue?status=Stuck");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("unknown status Stuck"), "{}", a.body);
    // Paged in the store: a page past the end is empty.
    let a = ga.get("/mail-flow/queue?page=2&page_size=25");
    assert!(!a.body.contains(&trace_id));
    let token = page.csrf();
    ga.post_and_expect(
        "/mail-flow/queue",
        &token,
        &[("op", "retry"), ("trace_id", &trace_id)],
        303,
        Some("/mail-flow/queue?done=retried"),
    );
    // Tried again at once (a second deferral), not 5 minutes later.
    s.wait_for("the retry", || {
        s.api("GET", "/api/v1/queue?recipient=partner@outside.test", None)
            .1["rows"][0]["attempts"]
            == 2
    });
    // A recipient admin may list and retry through the API, but Mail flow is not theirs.
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let ra_token = ra.get("/").csrf();
    ra.post_and_expect(
        "/mail-flow/queue",
        &ra_token,
        &[("op", "delete"), ("trace_id", &trace_id)],
        403,
        None,
    );
    assert_eq!(waiting(&s), 1);
    ga.post_and_expect(
        "/mail-flow/queue",
        &token,
        &[("op", "delete"), ("trace_id", &trace_id)],
        303,
        None,
    );
    s.wait_for("the deletion", || waiting(&s) == 0);
    assert!(!ga.get("/mail-flow/queue").body.contains(&trace_id));
}
