//! The console's remaining protection and trace behaviours against the real server, without a
//! browser: the operator approves or denies delist requests from the block list tab (filtered
//! by status, a `<script>` reason shown as text, a second decision refused with the API's
//! words), a tenant's admins cannot (the API's own 403), a forged POST is refused; the live
//! trace's poll after the session expired (the test clock moved past the idle time) answers
//! htmx with `HX-Redirect` to the sign-in page and anything else with a 303; the malware
//! policy's quarantine tag is shown, chosen when creating a policy and changed as a setting,
//! an unknown one refused with the API's words.

mod common;
use common::console::{Client, roles_fixture};
use common::*;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

fn setup() -> Server {
    roles_fixture(
        Server::start_with_config("", "", "[testing]\nmanual_clock = true\n"),
        PASSWORD,
    )
}

/// A request on the public delist page.
fn ask(s: &Server, address: &str, ip: &str) {
    let mut public = Client::new(s);
    let a = public.post("/delist", &[("address", address), ("ip", ip)], &[]);
    assert_eq!(a.status, 200, "{}", a.body);
}

fn requests(s: &Server) -> Vec<Value> {
    let (status, v) = s.api("GET", "/api/v1/blocklist/requests", None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

fn request_id(s: &Server, ip: &str) -> String {
    requests(s)
        .iter()
        .find(|r| r["ip"] == ip)
        .map(|r| r["id"].to_string())
        .unwrap_or_else(|| panic!("no request for {ip}"))
}

fn entries(s: &Server) -> Vec<String> {
    let (_, v) = s.api("GET", "/api/v1/blocklist", None);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| e["entry"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The delist requests' section of a block list page.
fn section(body: &str) -> &str {
    let at = body
        .find("id=\"delist-requests\"")
        .unwrap_or_else(|| panic!("no delist requests: {body}"));
    let rest = &body[at..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[test]
fn the_operator_approves_and_denies_delist_requests_in_the_console() {
    let s = setup();
    for entry in ["192.0.2.0/24", "198.51.100.0/24"] {
        s.ok(&["blocklist", "add", entry, "--reason", "spam run"]);
    }
    ask(&s, "user@contoso.test", "192.0.2.7");
    ask(&s, "user@contoso.test", "198.51.100.9");
    ask(&s, "user@contoso.test", "203.0.113.1");
    let (seven, nine) = (request_id(&s, "192.0.2.7"), request_id(&s, "198.51.100.9"));

    let mut op = Client::operator(&s);
    let page = op.get("/protection/blocklist?tenant=contoso");
    assert_eq!(page.status, 200, "{}", page.body);
    let requests_html = section(&page.body);
    for want in [
        "<td>192.0.2.7 (192.0.2.0/24)</td>",
        "<td class=\"status\">Pending</td>",
        "<td class=\"status\">Closed</td>",
        &format!("name=\"id\" value=\"{seven}\""),
        &format!("name=\"id\" value=\"{nine}\""),
        "<button type=\"submit\" name=\"op\" value=\"approve\">Approve</button>",
        "<button type=\"submit\" name=\"op\" value=\"deny\">Deny</button>",
        "<select name=\"status\">",
    ] {
        assert!(requests_html.contains(want), "{want}: {requests_html}");
    }
    assert_eq!(requests_html.matches("value=\"approve\"").count(), 2);
    // The filter: only the closed one.
    let page = op.get("/protection/blocklist?tenant=contoso&status=closed");
    let closed = section(&page.body);
    assert!(
        closed.contains("203.0.113.1") && !closed.contains("192.0.2.7"),
        "{closed}"
    );
    assert!(
        closed.contains("<option value=\"closed\" selected>"),
        "{closed}"
    );
    assert!(!closed.contains("value=\"approve\""), "{closed}");

    // A forged POST (no token) is refused and changes nothing.
    let a = op.post(
        "/protection/blocklist",
        &[("tenant", "contoso"), ("op", "approve"), ("id", &seven)],
        &[],
    );
    assert_eq!(a.status, 403);
    // A tenant's global admin has neither the requests nor the decision (the API's check).
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/protection/blocklist");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("delist-requests"));
    let a = ga.post_csrf(
        "/protection/blocklist",
        &[("op", "approve"), ("id", &seven)],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains("only the platform operator may do this"),
        "{}",
        a.body
    );
    // A recipient admin and a user do not reach the section at all.
    for who in ["ra@contoso.test", "user@contoso.test"] {
        let mut c = Client::signed_in_csrf(&s, who, PASSWORD);
        assert_eq!(c.get("/protection/blocklist").status, 403, "{who}");
        let a = c.post_csrf(
            "/protection/blocklist",
            &[("op", "approve"), ("id", &seven)],
        );
        assert_eq!(a.status, 403, "{who}");
    }
    assert_eq!(entries(&s), ["192.0.2.0/24", "198.51.100.0/24"]);

    // Approve, with a reason that is markup: the entry goes; the reason shows as text.
    let token = op.get("/protection/blocklist?tenant=contoso").csrf();
    op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[
            ("tenant", "contoso"),
            ("op", "approve"),
            ("id", &seven),
            ("reason", "<script>alert(1)</script>"),
        ],
        303,
        Some("/protection/blocklist?tenant=contoso&done=approved"),
    );
    assert_eq!(entries(&s), ["198.51.100.0/24"]);
    // Deny: the entry stays.
    op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[("tenant", "contoso"), ("op", "deny"), ("id", &nine)],
        303,
        Some("/protection/blocklist?tenant=contoso&done=denied"),
    );
    assert_eq!(entries(&s), ["198.51.100.0/24"]);
    let page = op.get("/protection/blocklist?tenant=contoso&done=approved");
    assert!(
        page.body
            .contains("Approved: the entry was removed from the block list."),
        "{}",
        page.body
    );
    let decided = section(&page.body);
    assert!(
        decided.contains("<td class=\"status\">Approved</td>"),
        "{decided}"
    );
    assert!(
        decided.contains("<td class=\"status\">Denied</td>"),
        "{decided}"
    );
    assert!(
        decided.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            && !decided.contains("<script>alert(1)"),
        "{decided}"
    );
    assert!(!decided.contains("value=\"approve\""), "{decided}");
    // Decided once: the API's 409 and its words.
    let a = op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[("tenant", "contoso"), ("op", "deny"), ("id", &seven)],
        409,
        None,
    );
    assert!(
        a.body.contains(&format!(
            "delist request {seven} was approved already, by operator"
        )),
        "{}",
        a.body
    );
    let a = op.post_and_expect(
        "/protection/blocklist",
        &token,
        &[("tenant", "contoso"), ("op", "approve"), ("id", "x")],
        400,
        None,
    );
    assert!(a.body.contains("is not a delist request"), "{}", a.body);
    // Japanese.
    op.cookies.insert("hato_lang".into(), "ja".into());
    let page = op.get("/protection/blocklist?tenant=contoso&status=approved");
    assert!(section(&page.body).contains("承認済み"), "{}", page.body);
}

fn mail(s: &Server, to: &str, subject: &str) {
    let mut c = s.smtp();
    c.read_reply();
    c.cmd("EHLO client.outside.test");
    let reply = c.send_mail(
        "sender@outside.test",
        &[to],
        &format!("From: <sender@outside.test>\r\nSubject: {subject}\r\n\r\nhello\r\n"),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    c.cmd("QUIT");
}

/// The value of the first `attr="…"` in `html`, HTML entities of a URL undone.
fn attr(html: &str, attr: &str) -> String {
    let key = format!("{attr}=\"");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {html}"))
        + key.len();
    html[at..at + html[at..].find('"').expect("end")].replace("&amp;", "&")
}

#[test]
fn the_live_trace_sends_an_expired_session_to_sign_in() {
    let s = setup();
    s.mailbox("alice@contoso.test", &[]);
    mail(&s, "alice@contoso.test", "first");
    s.wait_for("the message in trace", || {
        !s.trace("recipient=alice@contoso.test").is_empty()
    });
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/trace?recipient=alice%40contoso.test");
    assert_eq!(page.status, 200, "{}", page.body);
    let poll = attr(
        &page.body[page.body.find("id=\"live\"").expect("live")..],
        "hx-get",
    );
    assert!(poll.starts_with("/trace/live?"), "{poll}");
    let htmx = [("HX-Request", "true"), ("HX-Current-URL", "http://x/trace")];
    let get_htmx = |c: &mut Client| {
        let mut req = c.agent.get(&format!("{}{poll}", c.base));
        req = req.set("Cookie", &c.cookie_header());
        for (k, v) in htmx {
            req = req.set(k, v);
        }
        let r = req.call();
        c.finish(r)
    };
    // Signed in: the poller itself, no redirect.
    let a = get_htmx(&mut ga);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.header("HX-Redirect").is_none());
    assert!(a.body.contains("id=\"live\""), "{}", a.body);

    // Idle past the console's idle time (30 minutes) on the server's clock.
    s.advance_clock(31 * 60);
    let expired_cookie = ga.cookies.get("hato_session").cloned().expect("cookie");
    let a = get_htmx(&mut ga);
    let sign_in = "/login?next=%2Ftrace%3Frecipient%3Dalice%2540contoso.test";
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("HX-Redirect"), Some(sign_in));
    assert!(
        a.body
            .contains("Your session has expired: live updates have stopped.")
            && a.body
                .contains(&format!("href=\"{}\"", sign_in.replace('&', "&amp;"))),
        "{}",
        a.body
    );
    // The stale cookie is cleared.
    assert!(!ga.cookies.contains_key("hato_session"));
    // Without htmx (a plain GET): the usual 303 to the sign-in page, same place to come back to.
    ga.cookies.insert("hato_session".into(), expired_cookie);
    let a = ga.get(&poll);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some(sign_in));
    // Signing in again from there leads back to the page.
    let mut again = Client::new(&s);
    let a = again.post(
        "/login",
        &[
            ("address", "ga@contoso.test"),
            ("password", PASSWORD),
            ("next", "/trace?recipient=alice%40contoso.test"),
        ],
        &[],
    );
    assert_eq!(a.status, 303);
    assert_eq!(
        a.header("location"),
        Some("/trace?recipient=alice%40contoso.test")
    );
    // Never signed in at all: the same.
    let mut nobody = Client::new(&s);
    let a = get_htmx(&mut nobody);
    assert_eq!(a.header("HX-Redirect"), Some(sign_in));
}

#[test]
fn the_malware_policy_quarantine_tag_in_the_console() {
    let s = setup();
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/protection/malware");
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        "<dt>quarantine_tag</dt><dd>AdminOnlyAccessPolicy</dd>",
        "<option value=\"quarantine_tag\">QuarantineTag</option>",
        "<select name=\"quarantine_tag\">",
        "<option value=\"AdminOnlyAccessPolicy\" selected>AdminOnlyAccessPolicy</option>",
        "<option value=\"NotificationEnabledPolicy\">",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    let token = page.csrf();
    // An unknown tag: the API's refusal, nothing changed.
    let a = ga.post_and_expect(
        "/protection/malware",
        &token,
        &[("setting", "quarantine_tag"), ("value", "<b>Nope</b>")],
        400,
        None,
    );
    assert!(
        a.body.contains(
            "quarantine_tag: &quot;&lt;b&gt;Nope&lt;/b&gt;&quot; is not a quarantine policy of the tenant"
        ),
        "{}",
        a.body
    );
    ga.post_and_expect(
        "/protection/malware",
        &token,
        &[
            ("setting", "quarantine_tag"),
            ("value", "defaultfullaccesspolicy"),
        ],
        303,
        Some("/protection/malware?done=changed"),
    );
    let (_, v) = s.api("GET", "/api/v1/malware-filter?tenant=contoso", None);
    assert_eq!(v["quarantine_tag"], "DefaultFullAccessPolicy");
    // A new policy with its tag chosen from the list.
    ga.post_and_expect(
        "/protection/malware/policies",
        &token,
        &[
            ("op", "create"),
            ("name", "Finance"),
            ("recipient_domain_is", "contoso.test"),
            ("action", "delete-message"),
            ("quarantine_tag", "NotificationEnabledPolicy"),
        ],
        303,
        Some("/protection/malware?done=created&policy=Finance"),
    );
    let (_, v) = s.api(
        "GET",
        "/api/v1/malware-filter?tenant=contoso&name=Finance",
        None,
    );
    assert_eq!(v["quarantine_tag"], "NotificationEnabledPolicy");
    let page = ga.get("/protection/malware");
    assert!(
        page.body.contains("<td>NotificationEnabledPolicy</td>")
            && page.body.contains("<td>DefaultFullAccessPolicy</td>"),
        "{}",
        page.body
    );
    // A forged POST may not change it, nor may a recipient admin or a user.
    let a = ga.post_with(
        "/protection/malware",
        &[
            ("setting", "quarantine_tag"),
            ("value", "AdminOnlyAccessPolicy"),
        ],
        false,
    );
    assert_eq!(a.status, 403);
    for who in ["ra@contoso.test", "user@contoso.test"] {
        let mut c = Client::signed_in_csrf(&s, who, PASSWORD);
        assert_eq!(c.get("/protection/malware").status, 403, "{who}");
        let a = c.post_csrf(
            "/protection/malware",
            &[
                ("setting", "quarantine_tag"),
                ("value", "AdminOnlyAccessPolicy"),
            ],
        );
        assert_eq!(a.status, 403, "{who}");
    }
    let (_, v) = s.api("GET", "/api/v1/malware-filter?tenant=contoso", None);
    assert_eq!(v["quarantine_tag"], "DefaultFullAccessPolicy");
    // The operator sees it for the tenant it names.
    let mut op = Client::operator(&s);
    let page = op.get("/protection/malware?tenant=contoso");
    assert!(
        page.body
            .contains("<dt>quarantine_tag</dt><dd>DefaultFullAccessPolicy</dd>"),
        "{}",
        page.body
    );
}
