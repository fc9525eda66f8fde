//! The console's junk email settings against the real server, without a browser: a user's own
//! Safe Senders and Blocked Senders (add, remove, switch off, CSV, paging), an admin's view of
//! any mailbox of the tenant from Recipients, another user's and another tenant's refused with
//! the API's words and status, forged POSTs refused, a typed `<script>` shown as text; a
//! quarantined item's "Allow sender" / "Block sender" as its quarantine policy permits.

mod common;
use common::console::{Client, roles_fixture};
use common::*;
use serde_json::{Value, json};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "correct horse battery";

fn setup() -> Server {
    roles_fixture(Server::start(), PASSWORD)
}

fn config(s: &Server, address: &str) -> Value {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/mailboxes/{address}/junk-email-configuration"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn a_user_keeps_their_own_lists_and_nobody_elses() {
    let s = setup();
    let mut c = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let page = c.get("/junk-email");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("user@contoso.test"), "{}", page.body);
    assert!(page.body.len() < 150 * 1024);
    let token = c.csrf.clone();
    c.post_and_expect(
        "/junk-email",
        &token,
        &[
            ("op", "add-trusted"),
            ("entries", "Partner@Northwind.test, fabrikam.test"),
        ],
        303,
        Some("/junk-email?done=added"),
    );
    // The page's own form names the mailbox: still the user's own page afterwards.
    c.post_and_expect(
        "/junk-email",
        &token,
        &[
            ("address", "user@contoso.test"),
            ("op", "add-blocked"),
            ("entries", "spam.test"),
        ],
        303,
        Some("/junk-email?done=added"),
    );
    let v = config(&s, "user@contoso.test");
    assert_eq!(
        v["trusted_senders_and_domains"],
        json!(["fabrikam.test", "partner@northwind.test"])
    );
    assert_eq!(v["blocked_senders_and_domains"], json!(["spam.test"]));
    let page = c.get("/junk-email?done=added");
    assert!(
        page.body.contains("partner@northwind.test") && page.body.contains("Added to the list.")
    );
    // Remove one; switch the lists off.
    c.post_and_expect(
        "/junk-email",
        &token,
        &[("op", "remove-trusted"), ("entries", "fabrikam.test")],
        303,
        Some("/junk-email?done=removed"),
    );
    c.post_and_expect("/junk-email", &token, &[("op", "enabled")], 303, None);
    let v = config(&s, "user@contoso.test");
    assert_eq!(
        v["trusted_senders_and_domains"],
        json!(["partner@northwind.test"])
    );
    assert_eq!(v["enabled"], json!(false));
    // CSV of both lists.
    let csv = c.get("/junk-email.csv");
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    assert!(
        csv.body
            .contains("\"trusted-senders-and-domains\",\"partner@northwind.test\""),
        "{}",
        csv.body
    );
    assert!(
        csv.body
            .contains("\"blocked-senders-and-domains\",\"spam.test\""),
        "{}",
        csv.body
    );
    // A forged POST (no CSRF token): 403, nothing changed.
    let a = c.post_with(
        "/junk-email",
        &[("op", "add-blocked"), ("entries", "forged.test")],
        false,
    );
    assert_eq!(a.status, 403);
    assert!(
        !config(&s, "user@contoso.test")["blocked_senders_and_domains"]
            .to_string()
            .contains("forged.test")
    );
    // Someone else's: the API's 403 with its words, read or write.
    let a = c.get("/junk-email?address=ga@contoso.test");
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("junk email configuration"), "{}", a.body);
    let a = c.post_csrf(
        "/junk-email",
        &[
            ("address", "ga@contoso.test"),
            ("op", "add-blocked"),
            ("entries", "x.test"),
        ],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        config(&s, "ga@contoso.test")["blocked_senders_and_domains"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A typed script is refused (not an address) and shown as text.
    let a = c.post_csrf(
        "/junk-email",
        &[
            ("op", "add-blocked"),
            ("entries", "<script>alert(1)</script>"),
        ],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(!a.body.contains("<script>alert(1)"), "{}", a.body);
    assert!(a.body.contains("&lt;script&gt;"), "{}", a.body);
}

#[test]
fn admins_see_any_mailbox_of_their_tenant_and_no_other_tenants() {
    let s = setup();
    // The recipient admin, from the mailbox's page in Recipients.
    let mut ra = Client::signed_in_csrf(&s, "ra@contoso.test", PASSWORD);
    let m = ra.get("/recipients/mailbox/user@contoso.test");
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(
        m.body.contains("/junk-email?address=user%40contoso.test"),
        "{}",
        m.body
    );
    let page = ra.get("/junk-email?address=user%40contoso.test");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = ra.csrf.clone();
    ra.post_and_expect(
        "/junk-email",
        &token,
        &[
            ("address", "user@contoso.test"),
            ("op", "add-blocked"),
            ("entries", "bulk.test"),
        ],
        303,
        Some("/junk-email?address=user%40contoso.test&done=added"),
    );
    assert_eq!(
        config(&s, "user@contoso.test")["blocked_senders_and_domains"],
        json!(["bulk.test"])
    );
    // The global admin and the operator too.
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    assert_eq!(
        ga.get("/junk-email?address=user%40contoso.test").status,
        200
    );
    let mut op = Client::operator(&s);
    assert_eq!(
        op.get("/junk-email?address=user%40contoso.test").status,
        200
    );
    // Another tenant's admin or user: as if it did not exist.
    let mut other = Client::signed_in_csrf(&s, "other@fabrikam.test", PASSWORD);
    let a = other.get("/junk-email?address=user%40contoso.test");
    assert_eq!(a.status, 404, "{}", a.body);
}

#[test]
fn long_lists_are_paged() {
    let s = setup();
    let all: Vec<String> = (0..150).map(|i| format!("s{i:03}@spam.test")).collect();
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/mailboxes/user@contoso.test/junk-email-configuration",
        Some(json!({ "blocked_senders_and_domains": all })),
    );
    assert_eq!(status, 200, "{v}");
    let mut c = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let p1 = c.get("/junk-email");
    assert!(p1.body.contains("s099@spam.test") && !p1.body.contains("s100@spam.test"));
    assert!(p1.body.contains("bpage=2"), "a next link");
    assert!(p1.body.len() < 150 * 1024, "{} bytes", p1.body.len());
    let p2 = c.get("/junk-email?address=user%40contoso.test&tpage=1&bpage=2");
    assert!(p2.body.contains("s149@spam.test") && !p2.body.contains("s099@spam.test"));
}

#[test]
fn a_quarantined_items_sender_is_allowed_from_its_page() {
    let s = setup();
    s.ok(&[
        "spam-filter",
        "add",
        "Strict",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--recipient-domain-is",
        "contoso.test",
        "--high-confidence-spam-action",
        "quarantine",
    ]);
    let reply = send_mime(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["user@contoso.test"],
               "subject": "offer", "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let mut id = 0;
    s.wait_for("the quarantined item", || {
        let (_, v) = s.api(
            "GET",
            "/api/v1/quarantine?recipient=user@contoso.test",
            None,
        );
        id = v["items"][0]["id"].as_i64().unwrap_or_default();
        id != 0
    });
    let mut c = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let page = c.get(&format!("/quarantine/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    // DefaultFullAccessPolicy: allow sender, not block sender.
    assert!(
        page.body
            .contains(&format!("/quarantine/{id}/allow-sender")),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(&format!("/quarantine/{id}/block-sender"))
    );
    let token = c.csrf.clone();
    // Block sender, forged through the form: the API's 403.
    let a = c.post_and_expect(
        &format!("/quarantine/{id}/block-sender"),
        &token,
        &[],
        403,
        None,
    );
    assert!(a.body.contains("block sender"), "{}", a.body);
    // Without the CSRF token: refused.
    let a = c.post_with(&format!("/quarantine/{id}/allow-sender"), &[], false);
    assert_eq!(a.status, 403);
    let to = format!("/quarantine/{id}?done=sender-allowed");
    c.post_and_expect(
        &format!("/quarantine/{id}/allow-sender"),
        &token,
        &[],
        303,
        Some(&to),
    );
    let page = c.get(&to);
    assert!(page.body.contains("safe senders list"), "{}", page.body);
    assert_eq!(
        config(&s, "user@contoso.test")["trusted_senders_and_domains"],
        json!(["mallory@fabrikam.test"])
    );
    // The Junk email settings tab is in the quarantine section.
    assert!(page.body.contains("href=\"/junk-email\""), "{}", page.body);
}
