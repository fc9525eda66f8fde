//! The Mail flow and Protection pages' rule exceptions and editing, inbound connector
//! validation (API, CLI, console), custom malware policies and delist requests, against the
//! real server: each change checked through the API, rules also by sending mail over SMTP,
//! validation also against the edge's own answer to a real SMTP client on loopback.

mod common;
use common::console::{Client, roles_fixture};
use common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// contoso with a user, a recipient admin and a global admin (through role groups), and
/// fabrikam.
fn setup() -> Server {
    roles_fixture(Server::start(), PASSWORD)
}

fn rule(s: &Server, name: &str) -> Value {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/tenants/contoso/rules/{}", name.replace(' ', "%20")),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v["rule"].clone()
}

/// Sends a message to user@contoso.test and returns the subject it is delivered with.
fn delivered_subject(s: &Server, from: &str, subject: &str) -> String {
    let before = s.mail("user@contoso.test").len();
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    let reply = c.send_mail(
        from,
        &["user@contoso.test"],
        &format!("From: <{from}>\nTo: <user@contoso.test>\nSubject: {subject}\n\nhello\n"),
    );
    assert!(reply.starts_with("250"), "{reply}");
    s.wait_for("delivery", || s.mail("user@contoso.test").len() > before);
    let mail = s.mail("user@contoso.test");
    mail.iter()
        .filter_map(|m| m["subject"].as_str())
        .find(|got| got.ends_with(subject))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_rule_with_several_conditions_exceptions_and_actions_is_created_edited_and_applied() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/mail-flow");
    assert_eq!(page.status, 200);
    // Rows for conditions, exceptions and actions.
    for kind in ["condition", "exception", "action"] {
        assert!(
            page.body.contains(&format!("<select name=\"{kind}\">")),
            "{kind}"
        );
    }
    // Every rule of the tenant fits on this page: no note that sorting is per page.
    assert!(!page.body.contains("sort-note"), "{}", page.body);
    let token = page.csrf();
    // Two conditions, two exceptions (a pattern with a comma in it), three actions.
    ga.post_and_expect(
        "/mail-flow/rules",
        &token,
        &[
            ("name", "Tag invoices"),
            ("mode", "enforce"),
            ("condition", "subject_contains_words"),
            ("condition_value", "invoice"),
            ("condition", "sent_to"),
            ("condition_value", "user@contoso.test"),
            ("condition", ""),
            ("condition_value", ""),
            ("exception", "from"),
            ("exception_value", "boss@outside.test"),
            ("exception", "subject_matches_patterns"),
            ("exception_value", "^RE\\d{1,3}:"),
            ("action", "prepend_subject"),
            ("action_value", "[ext]"),
            ("action", "set_header"),
            ("action_value", "X-Tagged: yes"),
            ("action", "set_scl"),
            ("action_value", "-1"),
            ("comments", "<script>alert(1)</script>"),
        ],
        303,
        Some("/mail-flow?done=created"),
    );
    let r = rule(&s, "Tag invoices");
    assert_eq!(
        r["conditions"],
        json!({ "subject_contains_words": ["invoice"], "sent_to": ["user@contoso.test"] })
    );
    assert_eq!(
        r["exceptions"],
        json!({ "from": ["boss@outside.test"], "subject_matches_patterns": ["^RE\\d{1,3}:"] })
    );
    assert_eq!(
        r["actions"],
        json!({ "prepend_subject": "[ext]", "set_header_name": "X-Tagged",
                "set_header_value": "yes", "set_scl": -1 })
    );

    // The list shows the exceptions; the detail page describes the rule as Exchange does and
    // offers it for editing, every row filled in; the comment shows as text.
    let list = ga.get("/mail-flow");
    assert!(
        list.body.contains("From: boss@outside.test"),
        "{}",
        list.body
    );
    let detail = ga.get("/mail-flow/rule/Tag%20invoices");
    assert_eq!(detail.status, 200, "{}", detail.body);
    for want in [
        "Apply this rule if",
        "Except if",
        "Do the following",
        "<span class=\"param\">From</span> boss@outside.test",
        "<option value=\"from\" selected>From</option>",
        "<option value=\"set_header\" selected>SetHeader</option>",
        ">X-Tagged: yes</textarea>",
        "action=\"/mail-flow/rule/Tag%20invoices\"",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    ] {
        assert!(detail.body.contains(want), "{want}: {}", detail.body);
    }
    assert!(!detail.body.contains("<script>alert(1)"));

    // By mail: the condition tags, the exception keeps the boss's message as it is.
    assert_eq!(
        delivered_subject(&s, "clerk@outside.test", "invoice 1"),
        "[ext] invoice 1"
    );
    assert_eq!(
        delivered_subject(&s, "boss@outside.test", "invoice 2"),
        "invoice 2"
    );

    // Edit: another word, one exception fewer, a comment, audit mode, and no more SCL action.
    let edit = |c: &mut Client, word: &str, status: u16, location: Option<&str>| {
        c.post_and_expect(
            "/mail-flow/rule/Tag%20invoices",
            &token,
            &[
                ("name", "Tag invoices"),
                ("mode", "enforce"),
                ("priority", "0"),
                ("condition", "subject_contains_words"),
                ("condition_value", word),
                ("condition", "sent_to"),
                ("condition_value", "user@contoso.test"),
                ("exception", "from"),
                ("exception_value", "boss@outside.test"),
                ("exception", "subject_matches_patterns"),
                ("exception_value", ""),
                ("exception", ""),
                ("exception_value", ""),
                ("action", "prepend_subject"),
                ("action_value", "[ext]"),
                ("action", "set_header"),
                ("action_value", "X-Tagged: yes"),
                ("comments", "edited"),
            ],
            status,
            location,
        )
    };
    edit(
        &mut ga,
        "payment",
        303,
        Some("/mail-flow/rule/Tag%20invoices?done=changed"),
    );
    let r = rule(&s, "Tag invoices");
    assert_eq!(
        r["conditions"],
        json!({ "subject_contains_words": ["payment"], "sent_to": ["user@contoso.test"] })
    );
    assert_eq!(r["exceptions"], json!({ "from": ["boss@outside.test"] }));
    assert_eq!(
        r["actions"],
        json!({ "prepend_subject": "[ext]", "set_header_name": "X-Tagged",
                "set_header_value": "yes" })
    );
    assert_eq!(r["comments"], "edited");
    assert_eq!(
        delivered_subject(&s, "clerk@outside.test", "payment 3"),
        "[ext] payment 3"
    );
    assert_eq!(
        delivered_subject(&s, "clerk@outside.test", "invoice 4"),
        "invoice 4"
    );
    assert_eq!(
        delivered_subject(&s, "boss@outside.test", "payment 5"),
        "payment 5"
    );

    // A bad value: the API's refusal, the form kept, nothing changed.
    let a = ga.post_and_expect(
        "/mail-flow/rule/Tag%20invoices",
        &token,
        &[
            ("name", "Tag invoices"),
            ("condition", "sender_ip_ranges"),
            ("condition_value", "300.0.0.1"),
            ("action", "delete_message"),
            ("action_value", ""),
        ],
        400,
        None,
    );
    assert!(a.body.contains("300.0.0.1"), "{}", a.body);
    assert!(
        a.body
            .contains("<option value=\"sender_ip_ranges\" selected>"),
        "{}",
        a.body
    );
    assert_eq!(
        rule(&s, "Tag invoices")["conditions"]["subject_contains_words"],
        json!(["payment"])
    );
    // A priority that is no number: named.
    let a = ga.post_and_expect(
        "/mail-flow/rules",
        &token,
        &[
            ("name", "X"),
            ("priority", "first"),
            ("action", "delete_message"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("--priority"), "{}", a.body);

    // Without the CSRF token, or as a recipient admin or a user: 403, nothing changes.
    let a = ga.post(
        "/mail-flow/rule/Tag%20invoices",
        &[("name", "Renamed"), ("action", "delete_message")],
        &[],
    );
    assert_eq!(a.status, 403);
    for who in ["ra@contoso.test", "user@contoso.test"] {
        let mut c = Client::signed_in(&s, who, PASSWORD);
        let token = c.get("/").csrf();
        c.post_and_expect(
            "/mail-flow/rule/Tag%20invoices",
            &token,
            &[("name", "Renamed"), ("action", "delete_message")],
            403,
            None,
        );
    }
    assert_eq!(rule(&s, "Tag invoices")["name"], "Tag invoices");

    // The operator edits it for the tenant it names: renamed, in audit mode, with dates.
    let mut op = Client::operator(&s);
    let token = op
        .get("/mail-flow/rule/Tag%20invoices?tenant=contoso")
        .csrf();
    op.post_and_expect(
        "/mail-flow/rule/Tag%20invoices",
        &token,
        &[
            ("tenant", "contoso"),
            ("name", "Tagged"),
            ("mode", "audit"),
            ("activation_date", "2026-01-01T00:00:00Z"),
            ("condition", "subject_contains_words"),
            ("condition_value", "payment"),
            ("action", "prepend_subject"),
            ("action_value", "[ext]"),
        ],
        303,
        Some("/mail-flow/rule/Tagged?tenant=contoso&done=changed"),
    );
    let r = rule(&s, "Tagged");
    assert_eq!(
        (
            r["mode"].as_str(),
            r["activation_date"].as_str(),
            r["exceptions"].clone()
        ),
        (Some("audit"), Some("2026-01-01T00:00:00Z"), json!({}))
    );
}

#[test]
fn an_inbound_connector_is_validated_as_the_edge_attributes_and_relays() {
    let s = setup();
    for (tenant, name, kind, extra) in [
        (
            "contoso",
            "Onprem",
            "on-premises",
            json!({ "sender_ip_addresses": ["127.0.0.9"] }),
        ),
        (
            "contoso",
            "Partner",
            "partner",
            json!({ "sender_domains": ["partner.test"], "sender_ip_addresses": ["127.0.0.11"],
                    "restrict_domains_to_ip_addresses": true, "require_tls": false }),
        ),
        // fabrikam's server shares an IP with contoso's, registered after it (seed E3).
        (
            "fabrikam",
            "Shared",
            "on-premises",
            json!({ "sender_ip_addresses": ["127.0.0.9"], "force": true }),
        ),
    ] {
        let mut body = extra;
        body["name"] = json!(name);
        body["connector_type"] = json!(kind);
        let (status, v) = s.api(
            "POST",
            &format!("/api/v1/tenants/{tenant}/connectors/inbound"),
            Some(body),
        );
        assert_eq!(status, 201, "{v}");
    }
    let validate = |name: &str, body: Value| {
        s.api(
            "POST",
            &format!("/api/v1/tenants/contoso/connectors/inbound/{name}/validate"),
            Some(body),
        )
    };
    let (status, v) = validate(
        "Onprem",
        json!({ "sender_ip_address": "127.0.0.9", "sender_address": "app@contoso.test" }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            &v["attributed_to"],
            &v["attributed_here"],
            &v["relay_allowed"],
            &v["lists_ip"]
        ),
        (
            &json!("contoso/Onprem"),
            &json!(true),
            &json!(true),
            &json!(true)
        )
    );
    assert!(
        v["reasons"]
            .to_string()
            .contains("2 enabled on-premises connectors hold 127.0.0.9"),
        "{v}"
    );
    // fabrikam's domain from the shared IP: fabrikam's connector (the operator sees its name).
    let (_, v) = validate(
        "Onprem",
        json!({ "sender_ip_address": "127.0.0.9", "sender_address": "app@fabrikam.test" }),
    );
    assert_eq!(
        (
            &v["attributed_to"],
            &v["attributed_here"],
            &v["relay_allowed"]
        ),
        (&json!("fabrikam/Shared"), &json!(false), &json!(true))
    );
    // An outside domain: attributed to the connector made first, but nothing to relay for.
    let (_, v) = validate(
        "Onprem",
        json!({ "sender_ip_address": "127.0.0.9", "sender_address": "x@outside.test" }),
    );
    assert_eq!(
        (&v["attributed_to"], &v["relay_allowed"]),
        (&json!("contoso/Onprem"), &json!(false))
    );
    assert!(v["reasons"].to_string().contains("5.7.1"), "{v}");
    // Another IP: no attribution, relay refused as 5.7.64.
    let (_, v) = validate(
        "Onprem",
        json!({ "sender_ip_address": "127.0.0.10", "sender_address": "app@contoso.test" }),
    );
    assert_eq!(
        (&v["attributed_to"], &v["lists_ip"], &v["relay_allowed"]),
        (&Value::Null, &json!(false), &json!(false))
    );
    assert!(v["reasons"].to_string().contains("5.7.64"), "{v}");

    // The edge answers real clients as validation said.
    let rcpt = |source: &str, from: &str| {
        let mut c = Smtp::connect_from(s.smtp, source);
        assert!(c.read_reply().starts_with("220"));
        assert!(c.cmd("EHLO client.test").starts_with("250"));
        assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        let reply = c.cmd("RCPT TO:<someone@outside.example>");
        c.cmd("QUIT");
        reply
    };
    assert!(rcpt("127.0.0.9", "app@contoso.test").starts_with("250"));
    assert!(rcpt("127.0.0.10", "app@contoso.test").starts_with("550 5.7.64"));
    assert!(rcpt("127.0.0.9", "x@outside.test").starts_with("550 5.7.1"));

    // A partner connector restricted to its IP: the refusal the edge would give elsewhere.
    let (_, v) = validate(
        "Partner",
        json!({ "sender_ip_address": "127.0.0.12", "sender_address": "a@partner.test" }),
    );
    assert!(
        v["refusal"]
            .as_str()
            .unwrap_or("")
            .starts_with("550 5.7.51"),
        "{v}"
    );
    let (_, v) = validate(
        "Partner",
        json!({ "sender_ip_address": "127.0.0.11", "sender_address": "a@partner.test" }),
    );
    assert_eq!(v["refusal"], Value::Null, "{v}");

    // Bad input is named; another tenant's connector is not found.
    let (status, v) = validate("Onprem", json!({ "sender_ip_address": "300.1.1.1" }));
    assert_eq!(status, 400);
    assert!(v.to_string().contains("300.1.1.1"), "{v}");
    let (status, _) = validate(
        "Onprem",
        json!({ "sender_ip_address": "127.0.0.9", "sender_address": "not an address" }),
    );
    assert_eq!(status, 400);
    let (status, _) = validate("Shared", json!({ "sender_ip_address": "127.0.0.9" }));
    assert_eq!(status, 404);

    // The CLI.
    let out = s.ok(&[
        "connector",
        "inbound",
        "validate",
        "Onprem",
        "--tenant",
        "contoso",
        "--sender-ip-address",
        "127.0.0.9",
        "--sender-address",
        "app@contoso.test",
    ]);
    assert!(out.contains("attributed-to: contoso/Onprem"), "{out}");
    assert!(out.contains("relay-allowed: true"), "{out}");
    let (ok, _, err) = s.cli(&[
        "connector",
        "inbound",
        "validate",
        "Onprem",
        "--tenant",
        "contoso",
        "--sender-ip-address",
        "nonsense",
    ]);
    assert!(!ok);
    assert!(err.contains("nonsense"), "{err}");

    // The console: the tenant's admin is not told another tenant's connector's name.
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/mail-flow/connectors/inbound/Onprem");
    assert!(
        page.body.contains("name=\"sender_ip_address\""),
        "{}",
        page.body
    );
    let token = page.csrf();
    let a = ga.post_and_expect(
        "/mail-flow/connectors/inbound/Onprem",
        &token,
        &[
            ("op", "validate"),
            ("sender_ip_address", "127.0.0.9"),
            ("sender_address", "app@fabrikam.test"),
        ],
        200,
        None,
    );
    assert!(a.body.contains("id=\"validation\""), "{}", a.body);
    assert!(
        a.body
            .contains("<dd class=\"attributed\">another tenant&#x27;s on-premises connector</dd>")
            || a.body
                .contains("<dd class=\"attributed\">another tenant's on-premises connector</dd>"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("Shared"), "{}", a.body);
    assert!(
        a.body.contains("value=\"app@fabrikam.test\""),
        "the form is kept"
    );
    let a = ga.post_and_expect(
        "/mail-flow/connectors/inbound/Onprem",
        &token,
        &[("op", "validate"), ("sender_ip_address", "<script>")],
        400,
        None,
    );
    assert!(a.body.contains("&lt;script&gt;"), "{}", a.body);
    assert!(!a.body.contains("<script>"));
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let token = ra.get("/").csrf();
    ra.post_and_expect(
        "/mail-flow/connectors/inbound/Onprem",
        &token,
        &[("op", "validate"), ("sender_ip_address", "127.0.0.9")],
        403,
        None,
    );
}

#[test]
fn custom_malware_policies_are_listed_created_changed_and_removed() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/protection/malware");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(">Default</a>"), "{}", page.body);
    let token = page.csrf();
    ga.post_and_expect(
        "/protection/malware/policies",
        &token,
        &[
            ("op", "create"),
            ("name", "Finance <b>"),
            ("priority", "0"),
            ("sent_to", "user@contoso.test"),
            ("action", "delete-attachment-and-use-default-alert"),
            ("enable_file_filter", "1"),
        ],
        303,
        Some("/protection/malware?done=created&policy=Finance%20%3Cb%3E"),
    );
    let policies = || {
        let (status, v) = s.api("GET", "/api/v1/malware-filters?tenant=contoso", None);
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    };
    let finance = policies()
        .into_iter()
        .find(|p| p["name"] == "Finance <b>")
        .expect("the new policy");
    assert_eq!(finance["sent_to"], json!(["user@contoso.test"]));
    assert_eq!(finance["priority"], json!(0));
    assert_eq!(finance["action"], "delete-attachment-and-use-default-alert");

    let page = ga.get("/protection/malware?policy=Finance%20%3Cb%3E");
    assert!(page.body.contains("Finance &lt;b&gt;"), "{}", page.body);
    assert!(!page.body.contains("Finance <b>"));
    assert!(page.body.contains("data-op=\"remove\""));
    // One setting changed: the rule's condition.
    ga.post_and_expect(
        "/protection/malware",
        &token,
        &[
            ("policy", "Finance <b>"),
            ("setting", "recipient_domain_is"),
            ("value", "contoso.test"),
        ],
        303,
        Some("/protection/malware?policy=Finance%20%3Cb%3E&done=changed"),
    );
    let finance = policies()
        .into_iter()
        .find(|p| p["name"] == "Finance <b>")
        .expect("the policy");
    assert_eq!(finance["recipient_domain_is"], json!(["contoso.test"]));
    let csv = ga.get("/protection/malware.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.body.contains("Finance <b>"), "{}", csv.body);

    // Refusals, with the form kept: the default's name, a condition-less policy.
    let a = ga.post_and_expect(
        "/protection/malware/policies",
        &token,
        &[
            ("op", "create"),
            ("name", "Default"),
            ("sent_to", "user@contoso.test"),
        ],
        400,
        None,
    );
    assert!(a.body.contains("role=\"alert\""), "{}", a.body);
    let a = ga.post_and_expect(
        "/protection/malware/policies",
        &token,
        &[("op", "create"), ("name", "No condition")],
        400,
        None,
    );
    assert!(a.body.contains("value=\"No condition\""), "{}", a.body);
    assert_eq!(policies().len(), 2);

    // A recipient admin may not; the policy is removed by the admin.
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let ra_token = ra.get("/").csrf();
    ra.post_and_expect(
        "/protection/malware/policies",
        &ra_token,
        &[("op", "remove"), ("name", "Finance <b>")],
        403,
        None,
    );
    ga.post_and_expect(
        "/protection/malware/policies",
        &token,
        &[("op", "remove"), ("name", "Finance <b>")],
        303,
        Some("/protection/malware?done=removed"),
    );
    assert_eq!(policies().len(), 1);
}

#[test]
fn delist_requests_show_on_the_block_list_and_the_operator_removes_the_entry() {
    let s = setup();
    let (status, v) = s.api(
        "POST",
        "/api/v1/blocklist",
        Some(json!({ "entry": "192.0.2.0/24", "reason": "spam run" })),
    );
    assert_eq!(status, 201, "{v}");
    // A sender asks on the public delist page (a network entry: the operator decides).
    let mut public = Client::new(&s);
    let a = public.post(
        "/delist",
        &[("address", "user@contoso.test"), ("ip", "192.0.2.7")],
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.body);

    let mut op = Client::operator(&s);
    let page = op.get("/protection/blocklist?tenant=contoso");
    assert_eq!(page.status, 200);
    for want in [
        "id=\"delist-requests\"",
        "<td>192.0.2.7 (192.0.2.0/24)</td>",
        "<td class=\"outcome\">listed_in_range</td>",
        "<button type=\"submit\" name=\"op\" value=\"approve\">Approve</button>",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    let token = page.csrf();
    op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[
            ("tenant", "contoso"),
            ("op", "remove"),
            ("entry", "192.0.2.0/24"),
        ],
        303,
        None,
    );
    let (_, v) = s.api("GET", "/api/v1/blocklist", None);
    assert_eq!(v, json!([]));
    // The request stays in the record (its decisions: tests/console_s10.rs).
    let page = op.get("/protection/blocklist?tenant=contoso");
    assert!(page.body.contains("listed_in_range"));
    // A tenant's admin sees neither the list nor the requests.
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/protection/blocklist");
    assert!(!page.body.contains("delist-requests"));
}

#[test]
fn a_store_sorted_list_says_its_sort_covers_every_row() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/recipients");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Sorting applies to every row"),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains("apply to the rows of this page; the query")
    );
}
