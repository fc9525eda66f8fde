//! The console's quarantine policies, release requests and send on behalf against the real
//! server, without a browser: a user whose item's quarantine policy grants only *request
//! release* sees that button (not Release nor Delete), is refused a forged release with the
//! API's words, asks; the admin finds the request under the "release request" filter, denies
//! or approves it; the user sees the status. Per role (user, recipient admin, global admin,
//! operator), forged POSTs without the CSRF token refused, a `<script>` policy name shown as
//! text. Recipients: the send-on-behalf permission granted from the mailbox page.

mod common;
use common::console::Client;
use common::*;
use serde_json::{Value, json};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "correct horse battery";
const POLICY: &str = "Ask <script>alert(1)</script>";
const POLICY_SHOWN: &str = "Ask &lt;script&gt;alert(1)&lt;/script&gt;";

/// contoso with a user, bob, a recipient admin and a global admin (role groups); an anti-spam
/// policy quarantining high confidence spam under a custom quarantine policy that grants
/// request release and preview only.
fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    for m in ["user", "bob", "ra", "ga", "owner"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", PASSWORD]);
    }
    console::admin_groups(&s);
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/quarantine-policies",
        Some(json!({ "name": POLICY, "permissions": ["request-release", "preview"] })),
    );
    assert_eq!(status, 201, "{v}");
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
        "--high-confidence-spam-quarantine-tag",
        POLICY,
    ]);
    s
}

/// GTUBE to `to` with `subject`, held; its item id.
fn held(s: &Server, to: &str, subject: &str) -> String {
    let reply = send_mime(
        s,
        json!({"from": "mallory@fabrikam.test", "to": [to], "subject": subject,
               "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let mut id = Value::Null;
    s.wait_for(&format!("{subject} held"), || {
        let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        if let Some(it) = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["subject"] == subject)
        {
            id = it["id"].clone();
        }
        !id.is_null()
    });
    id.to_string()
}

fn item(s: &Server, id: &str) -> Value {
    let (status, v) = s.api("GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn a_user_requests_release_in_the_console_and_an_admin_denies_or_approves_it() {
    let s = setup();
    let first = held(&s, "user@contoso.test", "first ask");
    let second = held(&s, "user@contoso.test", "second ask");

    // The user: the item with its policy (as text) and only what it permits.
    let mut user = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let a = user.get("/quarantine");
    assert_eq!((a.status, a.table_rows()), (200, 2), "{}", a.body);
    assert!(
        a.body.contains(POLICY_SHOWN) && !a.body.contains(POLICY),
        "{}",
        a.body
    );
    let a = user.get(&format!("/quarantine/{first}"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains(POLICY_SHOWN) && !a.body.contains(POLICY));
    assert!(a.body.contains("request-release, preview"), "{}", a.body);
    assert!(
        a.body
            .contains(&format!("action=\"/quarantine/{first}/request-release\"")),
        "{}",
        a.body
    );
    for absent in ["release", "delete", "release-all"] {
        assert!(
            !a.body
                .contains(&format!("action=\"/quarantine/{first}/{absent}\"")),
            "{absent}: {}",
            a.body
        );
    }
    // The preview is permitted: the text is there.
    assert!(a.body.contains("buy now"), "{}", a.body);
    // A forged release (no button, a valid token) is the API's refusal with its words.
    let a = user.post_csrf(&format!("/quarantine/{first}/release"), &[]);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains(
            "does not permit you to release this message: request its release instead (an admin decides)"
        ),
        "{}",
        a.body
    );
    let a = user.post_csrf(&format!("/quarantine/{first}/delete"), &[]);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = user.post_csrf(&format!("/quarantine/{first}/deny-release"), &[]);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(item(&s, &first)["state"], "held");
    // Without the CSRF token: 403, nothing asked.
    let a = user.post_with(&format!("/quarantine/{first}/request-release"), &[], false);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(item(&s, &first)["release_request"], Value::Null);

    // The button: asked, the note, the status on the page.
    let a = user.post_csrf(&format!("/quarantine/{first}/request-release"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some(format!("/quarantine/{first}?done=requested").as_str())
    );
    let a = user.get(&format!("/quarantine/{first}?done=requested"));
    assert!(
        a.body
            .contains("Release requested: an admin will approve or deny it."),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("Release requested · user@contoso.test"),
        "{}",
        a.body
    );
    assert!(
        !a.body
            .contains(&format!("action=\"/quarantine/{first}/request-release\"")),
        "asked once: {}",
        a.body
    );
    let a = user.post_csrf(&format!("/quarantine/{first}/request-release"), &[]);
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("requested already"), "{}", a.body);
    user.post_csrf(&format!("/quarantine/{second}/request-release"), &[]);

    // A recipient admin does not manage quarantine; the operator and the global admin do.
    let mut ra = Client::signed_in_csrf(&s, "ra@contoso.test", PASSWORD);
    assert_eq!(ra.get("/quarantine?request=pending").status, 403);
    let a = ra.post_csrf(&format!("/quarantine/{first}/deny-release"), &[]);
    assert_eq!(a.status, 403, "{}", a.body);
    let mut op = Client::signed_in_csrf(&s, "operator", &s.token);
    let a = op.get("/quarantine?request=pending");
    assert_eq!((a.status, a.table_rows()), (200, 2), "{}", a.body);

    // The global admin: the "release request" filter lists what waits.
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let a = ga.get("/quarantine?request=pending");
    assert_eq!((a.status, a.table_rows()), (200, 2), "{}", a.body);
    assert!(a.body.contains("class=\"q-requested\""), "{}", a.body);
    assert!(
        a.body.contains("<option value=\"pending\" selected"),
        "{}",
        a.body
    );
    let a = ga.get(&format!("/quarantine/{first}"));
    for action in ["release", "deny-release", "delete"] {
        assert!(
            a.body
                .contains(&format!("action=\"/quarantine/{first}/{action}\"")),
            "{action}: {}",
            a.body
        );
    }
    assert!(a.body.contains("Approve and release"), "{}", a.body);
    // Forged deny: refused, the request stays.
    let a = ga.post_with(&format!("/quarantine/{first}/deny-release"), &[], false);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(item(&s, &first)["release_request"], "pending");
    // Denied: the note, the item still held, the user sees it denied.
    let a = ga.post_csrf(&format!("/quarantine/{first}/deny-release"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    let a = ga.get(a.header("location").unwrap_or_default());
    assert!(
        a.body
            .contains("The release request was denied: the message stays in quarantine."),
        "{}",
        a.body
    );
    let v = item(&s, &first);
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("held"), Some("denied"))
    );
    let a = user.get(&format!("/quarantine/{first}"));
    assert!(a.body.contains("Denied · user@contoso.test"), "{}", a.body);
    let a = ga.get("/quarantine?request=denied");
    assert_eq!(a.table_rows(), 1, "{}", a.body);
    // Approved: the release.
    let a = ga.post_csrf(&format!("/quarantine/{second}/release"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    let v = item(&s, &second);
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("released"), Some("approved"))
    );
    let a = user.get(&format!("/quarantine/{second}"));
    assert!(
        a.body.contains("Approved · user@contoso.test"),
        "{}",
        a.body
    );
    let a = ga.get("/quarantine?request=pending");
    assert_eq!(a.table_rows(), 0, "{}", a.body);
}

#[test]
fn send_on_behalf_is_granted_from_the_mailbox_page() {
    let s = setup();
    let page = "/recipients/mailbox/bob%40contoso.test";
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let a = ga.get(page);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains("<option value=\"send-on-behalf\">Send on behalf</option>"),
        "{}",
        a.body
    );
    let form = [
        ("action", "grant"),
        ("user", "user@contoso.test"),
        ("right", "send-on-behalf"),
    ];
    // Forged: refused, nothing granted.
    let a = ga.post_with(page, &form, false);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = ga.post_csrf(page, &form);
    assert_eq!(a.status, 303, "{}", a.body);
    let (status, v) = s.api(
        "GET",
        "/api/v1/mailboxes/bob@contoso.test/permissions",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!([{"user": "user@contoso.test", "right": "send-on-behalf"}])
    );
    let a = ga.get(page);
    assert!(a.body.contains("<td>Send on behalf</td>"), "{}", a.body);
    // A user may not grant rights: the API's 403 as the console's page.
    let mut user = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let a = user.post_csrf(
        page,
        &[
            ("action", "grant"),
            ("user", "user@contoso.test"),
            ("right", "send-as"),
        ],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // An unknown right: the form again with the API's words.
    let a = ga.post_csrf(
        page,
        &[
            ("action", "grant"),
            ("user", "user@contoso.test"),
            ("right", "send-for"),
        ],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body
            .contains("right: use full-access, send-as or send-on-behalf"),
        "{}",
        a.body
    );
}
