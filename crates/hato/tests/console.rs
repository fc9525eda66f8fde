//! The web console against the real server, without a browser: each page's authorization per
//! role (status codes, which navigation entries appear), escaping of what mail carries, CSRF
//! refusal, session expiry and sign-out, the security headers, `next=` open redirects, and the
//! login limits on the sign-in form. `tests/console_browser.rs` drives a real browser.

mod common;
use common::console::{Client, roles_fixture};
use common::*;
use serde_json::json;

/// One message over a new SMTP session.
fn send(s: &Server, from: &str, to: &[&str], content: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    c.send_mail(from, to, content)
}

const PASSWORD: &str = "correct horse battery";

/// contoso with a user, a recipient admin and a global admin (both through role groups, as
/// Exchange gives roles), and fabrikam with a user.
fn setup(admin: &str) -> Server {
    roles_fixture(Server::start_with_sections("", admin), PASSWORD)
}

#[test]
fn pages_without_a_session_go_to_sign_in_and_every_answer_has_the_security_headers() {
    let s = setup("");
    let mut c = Client::new(&s);
    let a = c.get("/trace?sender=a%40b.test");
    assert_eq!(a.status, 303);
    assert_eq!(
        a.header("location"),
        Some("/login?next=%2Ftrace%3Fsender%3Da%2540b.test")
    );
    for path in ["/", "/login", "/trace", "/lang?set=ja"] {
        let a = c.get(path);
        assert_eq!(
            a.header("content-security-policy"),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
            ),
            "{path}"
        );
        assert_eq!(a.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(a.header("referrer-policy"), Some("same-origin"), "{path}");
    }
    // No inline script or style anywhere in a page: only the two files, by URL.
    let login = c.get("/login");
    assert_eq!(login.status, 200);
    assert!(!login.body.contains("<style"), "{}", login.body);
    assert!(!login.body.contains("style="), "{}", login.body);
    assert_eq!(login.body.matches("<script").count(), 1, "{}", login.body);
    assert!(login.body.contains("<script src=\"/assets/htmx-2.0.11-"));
    // The assets: long-cached, by content hash.
    let css = login
        .body
        .split("href=\"/assets/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("stylesheet link")
        .to_string();
    let a = c.get(&format!("/assets/{css}"));
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        a.header("content-type")
            .unwrap_or("")
            .starts_with("text/css")
    );
    assert_eq!(c.get("/assets/console-0000000000000000.css").status, 404);
    // The API is where it was.
    let (status, _) = s.api("GET", "/api/v1/tenants", None);
    assert_eq!(status, 200);
}

#[test]
fn each_role_sees_its_navigation_and_is_refused_the_rest() {
    let s = setup("");
    let op = {
        let mut c = Client::new(&s);
        let a = c.sign_in("operator", &s.token);
        assert_eq!(a.status, 303, "{}", a.body);
        c
    };
    let all = [
        "/",
        "/recipients",
        "/groups",
        "/mail-flow",
        "/trace",
        "/protection",
        "/quarantine",
    ];
    let cases: Vec<(&str, Client, Vec<&str>, &str)> = vec![
        ("operator", op, all.to_vec(), "Platform operator"),
        (
            "global admin",
            Client::signed_in(&s, "ga@contoso.test", PASSWORD),
            all.to_vec(),
            "Global admin",
        ),
        (
            "recipient admin",
            Client::signed_in(&s, "ra@contoso.test", PASSWORD),
            vec!["/", "/recipients", "/groups", "/trace"],
            "Recipient admin",
        ),
        (
            "user",
            Client::signed_in(&s, "user@contoso.test", PASSWORD),
            vec!["/", "/groups", "/quarantine"],
            "User",
        ),
    ];
    for (who, mut c, visible, role) in cases {
        let home = c.get("/");
        assert_eq!(home.status, 200, "{who}: {}", home.body);
        assert_eq!(home.nav(), visible, "{who}");
        assert!(home.body.contains(role), "{who}");
        for path in all {
            let a = c.get(path);
            let want = if visible.contains(&path) { 200 } else { 403 };
            assert_eq!(a.status, want, "{who} {path}: {}", a.body);
        }
        // Message trace's rows and the CSV answer exactly as the trace API does.
        let a = c.get("/trace.csv");
        let want = if visible.contains(&"/trace") {
            200
        } else {
            403
        };
        assert_eq!(a.status, want, "{who} trace.csv");
    }
}

#[test]
fn trace_shows_a_tenants_messages_escaped_with_detail_and_related_links() {
    let s = setup("");
    let reply = send(
        &s,
        "sender@outside.test",
        &["user@contoso.test"],
        "Subject: <script>alert(1)</script>\r\nMessage-ID: <evil@outside.test>\r\n\r\nhello\r\n",
    );
    let trace_id = trace_id_of(&reply);
    let reply = send(
        &s,
        "sender@outside.test",
        &["other@fabrikam.test"],
        "Subject: fabrikam only\r\n\r\nhello\r\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    s.wait_for("delivery", || {
        s.trace("recipient=user@contoso.test")
            .iter()
            .any(|r| r["status"] == "Delivered")
    });

    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/trace");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert(1)"), "not escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("user@contoso.test"));
    assert!(!page.body.contains("fabrikam only"), "another tenant's row");
    // The query builder: a domain wildcard, a status.
    let a = ga.get("/trace?sender=*%40outside.test&status=Delivered");
    assert!(a.body.contains("user@contoso.test"), "{}", a.body);
    let a = ga.get("/trace?sender=*%40outside.test&direction=Outbound");
    assert!(
        !a.body.contains("user@contoso.test"),
        "delivered here is inbound"
    );
    let a = ga.get("/trace?direction=Inbound");
    assert!(a.body.contains("user@contoso.test"));
    let a = ga.get("/trace?sender=*%40elsewhere.test");
    assert!(!a.body.contains("user@contoso.test"));
    assert!(a.body.contains("No results."));
    // A bad filter answers the API's message, as a page.
    let a = ga.get("/trace?sender=*%40");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("not *@ followed by a domain"), "{}", a.body);

    // The detail: every event, escaped; find related.
    let a = ga.get(&format!("/trace/{trace_id}?recipient=user%40contoso.test"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!a.body.contains("<script>alert"));
    for event in ["Receive", "Deliver"] {
        assert!(
            a.body
                .contains(&format!("<td class=\"event\">{event}</td>")),
            "{event}: {}",
            a.body
        );
    }
    assert!(
        a.body
            .contains("/trace?message_id=%3Cevil%40outside.test%3E"),
        "{}",
        a.body
    );
    assert!(a.body.contains("/trace?sender=sender%40outside.test"));
    // Another tenant's admin finds nothing of it.
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "fabrikam", "name": "Fab Admins",
                     "owners": ["other@fabrikam.test"], "members": ["other@fabrikam.test"] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, _) = s.api(
        "POST",
        "/api/v1/groups/Fab%20Admins/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200);
    let mut fab = Client::signed_in(&s, "other@fabrikam.test", PASSWORD);
    assert_eq!(fab.get(&format!("/trace/{trace_id}")).status, 404);
    assert!(!fab.get("/trace").body.contains("alert(1)"));

    // CSV: the same rows, quoted.
    let csv = ga.get("/trace.csv?recipient=user%40contoso.test");
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert!(
        csv.body.contains("\"<script>alert(1)</script>\""),
        "{}",
        csv.body
    );
    // Sorting, the filter and page size keep the query in their links.
    let a = ga.get("/trace?sender=sender%40outside.test&sort=recipient&desc=1&page_size=25");
    assert!(a.body.contains("aria-sort=\"descending\""), "{}", a.body);
    assert!(
        a.body.contains("<option value=\"25\" selected>"),
        "{}",
        a.body
    );

    // Home: the figures of the tenant, drawn as SVG.
    let home = ga.get("/");
    assert!(home.body.contains("<svg"), "{}", home.body);
    assert!(home.body.contains("sender@outside.test"));
    assert!(
        !home.body.contains("fabrikam.test"),
        "another tenant's figures"
    );
}

#[test]
fn csrf_sign_out_and_expiry() {
    let s = setup("console_idle_secs = 2\n");
    let mut c = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let home = c.get("/");
    let token = home.csrf();
    // Missing and wrong tokens, and another origin with the right token: 403, still signed in.
    assert_eq!(c.post("/logout", &[], &[]).status, 403);
    assert_eq!(
        c.post("/logout", &[("_csrf", &"0".repeat(64))], &[]).status,
        403
    );
    let a = c.post(
        "/logout",
        &[("_csrf", &token)],
        &[("Origin", "http://evil.test")],
    );
    assert_eq!(a.status, 403);
    let a = c.post(
        "/logout",
        &[("_csrf", &token)],
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(a.status, 403);
    assert_eq!(c.get("/").status, 200);
    // The right token signs out, and the old cookie is worth nothing after.
    let cookie = c.cookies["hato_session"].clone();
    let a = c.post("/logout", &[("_csrf", &token)], &[]);
    assert_eq!(a.status, 303);
    assert!(!c.cookies.contains_key("hato_session"));
    c.cookies.insert("hato_session".into(), cookie);
    assert_eq!(c.get("/").status, 303);

    // Idle for longer than console_idle_secs: signed out.
    let mut c = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    assert_eq!(c.get("/").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(c.get("/").status, 200, "used within the idle time");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(c.get("/").status, 200, "each use counts");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let a = c.get("/trace");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/login?next=%2Ftrace"));
}

#[test]
fn sign_in_refuses_foreign_next_and_origins_and_applies_the_login_limits() {
    let s = setup("login_max_failures = 3\n");
    let mut c = Client::new(&s);
    for (next, want) in [
        ("/trace?sender=a", "/trace?sender=a"),
        ("//evil.test/x", "/"),
        ("https://evil.test/", "/"),
        ("/\\evil.test", "/"),
    ] {
        let a = c.post(
            "/login",
            &[
                ("address", "ga@contoso.test"),
                ("password", PASSWORD),
                ("next", next),
            ],
            &[],
        );
        assert_eq!(a.status, 303, "{next}");
        assert_eq!(a.header("location"), Some(want), "{next}");
    }
    // The sign-in page keeps only a local next in its form.
    let a = c.get("/login?next=https%3A%2F%2Fevil.test%2F");
    assert!(a.body.contains("name=\"next\" value=\"/\""), "{}", a.body);
    // A sign-in form posted from another site.
    let a = c.post(
        "/login",
        &[("address", "ga@contoso.test"), ("password", PASSWORD)],
        &[("Origin", "http://evil.test")],
    );
    assert_eq!(a.status, 403);
    // Wrong passwords, then the lockout even for the right one (the API's limits).
    let mut c = Client::new(&s);
    for _ in 0..3 {
        let a = c.sign_in("user@contoso.test", "wrong");
        assert_eq!(a.status, 401);
        assert!(a.body.contains("Wrong address or password."));
    }
    let a = c.sign_in("user@contoso.test", PASSWORD);
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.header("retry-after").is_some());
    assert!(!c.cookies.contains_key("hato_session"));
    // The same account is locked for the API too: one limiter.
    let (status, _) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({ "address": "user@contoso.test", "password": PASSWORD })),
    );
    assert_eq!(status, 429);
    // The operator's token is checked under the same limits.
    let mut c = Client::new(&s);
    for _ in 0..3 {
        assert_eq!(c.sign_in("operator", "not-the-token").status, 401);
    }
    assert_eq!(c.sign_in("operator", &s.token).status, 429);
}

#[test]
fn the_language_follows_the_switch_and_accept_language() {
    let s = setup("");
    let mut c = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let a = c.get("/trace");
    assert!(a.body.contains("<html lang=\"en\">"));
    assert!(a.body.contains("Message trace"));
    let a = c.get("/lang?set=ja&next=%2Ftrace");
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/trace"));
    let a = c.get("/trace");
    assert!(a.body.contains("<html lang=\"ja\">"), "{}", a.body);
    for label in [
        "メッセージ追跡",
        "検疫",
        "メール フロー",
        "送信者",
        "サインアウト",
    ] {
        assert!(a.body.contains(label), "{label}");
    }
    let a = c.get("/lang?set=en&next=https%3A%2F%2Fevil.test");
    assert_eq!(a.header("location"), Some("/"));
    // Before any choice, Accept-Language decides.
    let r = ureq::get(&format!("http://{}/login", s.admin))
        .set("Accept-Language", "ja-JP,ja;q=0.9,en;q=0.5")
        .call()
        .expect("login page");
    assert!(r.into_string().unwrap_or_default().contains("サインイン"));
}
