//! Message trace's saved queries (the API's `/api/v1/trace/saved` and the console's forms) and
//! its live updates (the first page polls `/trace/live` for rows newer than the newest it
//! shows), against the real server without a browser: each person's own saved queries, every
//! filter checked as the trace checks it, a forged POST refused, a `<script>` name shown as
//! text; the poll returns a message received after the page was loaded, and neither one outside
//! the query nor another tenant's. `tests/console_browser_trace_live.rs` drives a real browser.

mod common;
use common::console::{Answer, Client, roles_fixture};
use common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// The console tests' tenants and roles (`roles_fixture`), with alice and bob at contoso and
/// carol at fabrikam.
fn setup() -> Server {
    let s = roles_fixture(Server::start(), PASSWORD);
    for m in [
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@fabrikam.test",
    ] {
        s.mailbox(m, &["--password", PASSWORD]);
    }
    s
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

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|q| q["name"].as_str().expect("name").to_string())
        .collect()
}

fn token(s: &Server, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/tokens",
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

#[test]
fn saved_queries_through_the_api_each_owner_its_own_filters_checked() {
    let s = setup();
    mail(&s, "alice@contoso.test", "for alice");
    mail(&s, "bob@contoso.test", "for bob");
    let q = json!({"name": "Alice's mail", "query": "recipient=alice%40contoso.test"});
    let (status, v) = s.api("POST", "/api/v1/trace/saved", Some(q.clone()));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["query"], "recipient=alice%40contoso.test");
    // The same name in another case replaces it.
    let (status, _) = s.api(
        "POST",
        "/api/v1/trace/saved",
        Some(json!({"name": "ALICE'S MAIL", "query": "?recipient=alice%40contoso.test&status=Delivered"})),
    );
    assert_eq!(status, 201);
    let (_, v) = s.api("GET", "/api/v1/trace/saved", None);
    assert_eq!(names(&v), ["ALICE'S MAIL"]);
    assert_eq!(
        v[0]["query"],
        "recipient=alice%40contoso.test&status=Delivered"
    );
    // Run: GET /api/v1/trace with its filters.
    s.wait_for("alice's message delivered", || {
        let (_, v) = s.api("GET", "/api/v1/trace/saved/alice's%20mail/run", None);
        v["rows"].as_array().is_some_and(|r| r.len() == 1)
    });
    let (status, v) = s.api("GET", "/api/v1/trace/saved/alice's%20mail/run", None);
    assert_eq!(status, 200);
    assert_eq!(v["rows"][0]["subject"], "for alice");
    // Filters are checked as the trace checks them; names too.
    for (body, words) in [
        (
            json!({"name": "x", "query": "status=Nope"}),
            "unknown status Nope",
        ),
        (json!({"name": "x", "query": "bogus=1"}), "unknown field"),
        (json!({"name": "x", "query": "start=yesterday"}), "start"),
        (json!({"name": " ", "query": ""}), "name: 1 to 100"),
        (
            json!({"name": "x".repeat(101), "query": ""}),
            "name: 1 to 100",
        ),
        (
            json!({"name": "x", "query": "a".repeat(2001)}),
            "at most 2000",
        ),
        (json!({"name": "x"}), "query"),
    ] {
        let (status, v) = s.api("POST", "/api/v1/trace/saved", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    // Another owner (a tenant's admins' token) has its own list; a tenant admin's query keeps
    // to its tenant whatever it names.
    let ga = token(&s, "global-admin");
    let (_, v) = s.api_as(&ga, "GET", "/api/v1/trace/saved", None);
    assert_eq!(names(&v), Vec::<String>::new());
    let (status, v) = s.api_as(
        &ga,
        "POST",
        "/api/v1/trace/saved",
        Some(json!({"name": "fabrikam", "query": "tenant=fabrikam"})),
    );
    assert_eq!(status, 404, "{v}");
    let (status, _) = s.api_as(&ga, "GET", "/api/v1/trace/saved/alice's%20mail/run", None);
    assert_eq!(status, 404);
    // Delete: gone; again, 404.
    let (status, _) = s.api("DELETE", "/api/v1/trace/saved/Alice's%20Mail", None);
    assert_eq!(status, 204);
    let (status, v) = s.api("DELETE", "/api/v1/trace/saved/Alice's%20Mail", None);
    assert_eq!(status, 404, "{v}");
    // At most 100 an owner.
    for i in 0..100 {
        let (status, v) = s.api(
            "POST",
            "/api/v1/trace/saved",
            Some(json!({"name": format!("q{i}"), "query": ""})),
        );
        assert_eq!(status, 201, "{v}");
    }
    let (status, v) = s.api(
        "POST",
        "/api/v1/trace/saved",
        Some(json!({"name": "one more", "query": ""})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 100"), "{v}");
}

fn saved_links(page: &Answer) -> Vec<String> {
    page.body
        .split("class=\"saved-query\"")
        .skip(1)
        .map(|p| p[p.find('>').expect(">") + 1..p.find("</a>").expect("</a>")].to_string())
        .collect()
}

#[test]
fn the_console_saves_runs_and_deletes_a_persons_own_queries_with_csrf() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let page = ga.get("/trace?recipient=alice%40contoso.test&status=Delivered");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"saved-queries\""), "{}", page.body);
    let csrf = page.csrf();
    // The form carries the page's query; saving answers 303 back to it with a note.
    assert_eq!(
        attr(
            &page.body[page.body.find("action=\"/trace/saved\"").unwrap()..],
            "value"
        ),
        csrf
    );
    let query = "recipient=alice%40contoso.test&status=Delivered";
    assert!(page.body.contains(&format!(
        "name=\"query\" value=\"{}\"",
        query.replace('&', "&amp;")
    )));
    let a = ga.post(
        "/trace/saved",
        &[
            ("_csrf", &csrf),
            ("name", "<script>alert(1)</script>"),
            ("query", query),
        ],
        &[],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let back = a.header("location").expect("location").to_string();
    assert_eq!(back, format!("/trace?{query}&done=saved"));
    let page = ga.get(&back);
    assert!(page.body.contains("Query saved."));
    // Shown as text, linked to the query it runs.
    assert_eq!(
        saved_links(&page),
        ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    );
    assert!(!page.body.contains("<script>alert(1)"));
    assert!(
        page.body
            .contains(&format!("href=\"/trace?{}\"", query.replace('&', "&amp;")))
    );
    // The API sees the same query, for the same person.
    // (A forged POST, without the token or with another's, is 403 and saves nothing.)
    for token in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let a = ga.post(
            "/trace/saved",
            &[("_csrf", token), ("name", "forged"), ("query", "")],
            &[],
        );
        assert_eq!(a.status, 403, "{}", a.body);
    }
    // A bad filter is the API's 400 with its words.
    let a = ga.post(
        "/trace/saved",
        &[("_csrf", &csrf), ("name", "bad"), ("query", "status=Nope")],
        &[],
    );
    assert_eq!(a.status, 400);
    assert!(a.body.contains("unknown status Nope"), "{}", a.body);
    // Another admin of the same tenant has their own (empty) list.
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let page = ra.get("/trace");
    assert_eq!(page.status, 200);
    assert!(saved_links(&page).is_empty());
    assert!(page.body.contains("No saved queries yet."));
    // A user may not use message trace, nor save into it.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    let csrf_user = user.get("/").csrf();
    let a = user.post(
        "/trace/saved",
        &[("_csrf", &csrf_user), ("name", "mine"), ("query", "")],
        &[],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // Delete (POST with the token): 303 with a note; gone.
    let csrf = ga.get("/trace").csrf();
    let a = ga.post(
        "/trace/saved/delete",
        &[("_csrf", &csrf), ("name", "<script>alert(1)</script>")],
        &[],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let page = ga.get("/trace?done=deleted");
    assert!(page.body.contains("Saved query deleted."));
    assert!(saved_links(&page).is_empty());
    let a = ga.post(
        "/trace/saved/delete",
        &[("_csrf", &csrf), ("name", "nothing")],
        &[],
    );
    assert_eq!(a.status, 404);
    let a = ga.post("/trace/saved/delete", &[("name", "nothing")], &[]);
    assert_eq!(a.status, 403);
}

/// The poll URL of a trace page, and what it answers now.
fn poll(c: &mut Client, page: &Answer) -> Answer {
    let live = &page.body[page.body.find("id=\"live\"").expect("the poller")..];
    let url = attr(live, "hx-get");
    assert!(url.starts_with("/trace/live?"), "{url}");
    assert!(live.contains("hx-trigger=\"every 5s\""), "{live}");
    let a = c.get(&url);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.starts_with("<div id=\"live\""), "{}", a.body);
    a
}

#[test]
fn the_live_fragment_returns_new_mail_of_the_query_and_tenant_only() {
    let s = setup();
    mail(&s, "alice@contoso.test", "before the page");
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    // Every contoso message, and only alice's.
    let all = ga.get("/trace");
    assert!(all.body.contains("before the page"));
    let alice = ga.get("/trace?recipient=alice%40contoso.test");
    // Without script: a Refresh link that runs the same query.
    assert!(
        alice
            .body
            .contains("href=\"/trace?recipient=alice%40contoso.test\"")
    );
    // Nothing new yet.
    assert!(!poll(&mut ga, &all).body.contains("<tr"));
    // After the pages were loaded: one for alice, one for bob, one for fabrikam's carol.
    mail(&s, "alice@contoso.test", "new for alice");
    mail(&s, "bob@contoso.test", "new for bob");
    mail(&s, "carol@fabrikam.test", "new for carol");
    let a = poll(&mut ga, &alice);
    assert!(a.body.contains("new for alice"), "{}", a.body);
    assert!(!a.body.contains("new for bob"), "{}", a.body);
    assert!(!a.body.contains("before the page"), "{}", a.body);
    assert!(a.body.contains("id=\"live-count\">1<"), "{}", a.body);
    let a = poll(&mut ga, &all);
    assert!(
        a.body.contains("new for alice") && a.body.contains("new for bob"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("new for carol"), "{}", a.body);
    assert!(!a.body.contains("before the page"), "{}", a.body);
    // The fragment polls on with the same query and the same newest row.
    assert_eq!(
        attr(&a.body, "hx-get"),
        attr(&all.body[all.body.find("id=\"live\"").unwrap()..], "hx-get")
    );
    // The operator's page over every tenant sees carol's too.
    let mut op = Client::new(&s);
    assert_eq!(op.sign_in("operator", &s.token).status, 303);
    let page = op.get("/trace?subject=new%20for");
    assert!(!poll(&mut op, &page).body.contains("<tr class=\"new\""));
    mail(&s, "carol@fabrikam.test", "new for carol again");
    let a = poll(&mut op, &page);
    assert!(a.body.contains("new for carol again"), "{}", a.body);
    // Same authorization as the page: a user is refused.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    assert_eq!(user.get("/trace/live").status, 403);
    // A malformed `since` is a 400.
    assert_eq!(ga.get("/trace/live?since=never&skip=1").status, 400);
}
