//! The console's Recipients and Groups pages against the real server, without a browser: what
//! each role sees and may do (a forged form is refused as the API refuses the call), CSRF,
//! escaping, every action checked through the API afterwards, the API's errors shown in the
//! form with the values kept, paging in the store, the moderation queue (with "approve and stop
//! moderating this sender", also tested on the API), join requests, and a dynamic group's live
//! preview. `tests/console_browser_people.rs` drives a real browser.

mod common;
use common::console::{Answer, Client, roles_fixture};
use common::*;
use serde_json::json;

impl Answer {
    /// The number of rows in the body of the page's first data table.
    fn rows(&self) -> usize {
        let Some(at) = self.body.find("<tbody") else {
            return 0;
        };
        let end = self.body[at..]
            .find("</tbody>")
            .map_or(self.body.len(), |e| at + e);
        self.body[at..end].matches("<tr>").count()
    }
}

impl Client {
    /// A form posted with this session's CSRF token (read from `page`).
    fn submit(&mut self, page: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let csrf = self.get(page).csrf();
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("_csrf", &csrf));
        self.post(path, &all, &[])
    }
}

const PASSWORD: &str = "correct horse battery";

/// contoso with a user, a recipient admin, a global admin (through role groups, as Exchange
/// gives roles) and an owner of the role groups; fabrikam with a user.
fn setup() -> Server {
    roles_fixture(Server::start(), PASSWORD)
}

fn mailbox(s: &Server, address: &str) -> (u16, serde_json::Value) {
    s.api("GET", &format!("/api/v1/mailboxes/{address}"), None)
}

fn group(s: &Server, ident: &str) -> serde_json::Value {
    let (status, v) = s.api("GET", &format!("/api/v1/groups/{ident}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn each_role_gets_the_recipients_pages_the_api_gives_it() {
    let s = setup();
    // A user: no Recipients page, and a forged form (with the user's own valid token) is
    // refused as the API refuses it, creating nothing.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    assert_eq!(user.get("/recipients").status, 403);
    assert_eq!(user.get("/recipients/contacts").status, 403);
    assert_eq!(
        user.get("/recipients/mailbox/ra%40contoso.test").status,
        403
    );
    assert_eq!(user.get("/recipients.csv").status, 403);
    let a = user.submit(
        "/groups",
        "/recipients",
        &[("address", "forged@contoso.test"), ("display_name", "F")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(mailbox(&s, "forged@contoso.test").0, 404);
    let a = user.submit(
        "/groups",
        "/recipients/mailbox/ra%40contoso.test",
        &[("action", "password"), ("password", "taken over by user")],
    );
    assert_eq!(a.status, 403, "{}", a.body);

    // A recipient admin manages mailboxes but sees no accepted domains, and may not reset an
    // admin's password (the API's rule).
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let page = ra.get("/recipients");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.nav().contains(&"/mail-flow".to_string()));
    assert_eq!(ra.get("/mail-flow").status, 403);
    let a = ra.submit(
        "/recipients",
        "/recipients",
        &[
            ("address", "new@contoso.test"),
            ("display_name", "New Person"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some("/recipients/mailbox/new%40contoso.test?done=created")
    );
    let (status, m) = mailbox(&s, "new@contoso.test");
    assert_eq!(
        (status, m["display_name"].as_str()),
        (200, Some("New Person"))
    );
    let a = ra.submit(
        "/recipients",
        "/recipients/mailbox/ga%40contoso.test",
        &[("action", "password"), ("password", "taken over by ra")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body
            .contains("only global admins may change the password"),
        "the API's words: {}",
        a.body
    );
    // Another tenant's mailbox does not exist for this admin.
    assert_eq!(
        ra.get("/recipients/mailbox/other%40fabrikam.test").status,
        404
    );
    assert!(!ra.get("/recipients").body.contains("other@fabrikam.test"));

    // CSRF: missing, or another session's, is refused and changes nothing.
    let a = ra.post("/recipients", &[("address", "nocsrf@contoso.test")], &[]);
    assert_eq!(a.status, 403);
    let other_token = user.get("/groups").csrf();
    let a = ra.post(
        "/recipients",
        &[("address", "nocsrf@contoso.test"), ("_csrf", &other_token)],
        &[],
    );
    assert_eq!(a.status, 403);
    assert_eq!(mailbox(&s, "nocsrf@contoso.test").0, 404);

    // The operator sees every tenant's.
    let mut op = Client::new(&s);
    assert_eq!(op.sign_in("operator", &s.token).status, 303);
    let page = op.get("/recipients?filter=other");
    assert!(page.body.contains("other@fabrikam.test"), "{}", page.body);
}

#[test]
fn mailbox_actions_change_the_store_and_names_show_as_text() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let a = ga.submit(
        "/recipients",
        "/recipients",
        &[
            ("address", "Evil@Contoso.test"),
            ("display_name", "<script>alert(1)</script>"),
            ("type", "shared"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let page_path = "/recipients/mailbox/evil%40contoso.test";
    let page = ga.get(page_path);
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert(1)"), "not escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let list = ga.get("/recipients");
    assert!(!list.body.contains("<script>alert(1)"));
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, m) = mailbox(&s, "evil@contoso.test");
    assert_eq!(m["type"], "shared");

    // Attributes and quota.
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "update"),
            ("display_name", "Evil Corp"),
            ("type", "user"),
            ("department", "Sales"),
            ("city", "大阪"),
            ("quota_mb", "2048"),
            ("custom_attribute_3", "x3"),
            ("smtp_client_authentication_disabled", "1"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some("/recipients/mailbox/evil%40contoso.test?done=updated")
    );
    let (_, m) = mailbox(&s, "evil@contoso.test");
    assert_eq!(m["display_name"], "Evil Corp");
    assert_eq!(m["department"], "Sales");
    assert_eq!(m["city"], "大阪");
    assert_eq!(m["quota_mb"], 2048);
    assert_eq!(m["type"], "user");
    assert_eq!(m["custom_attribute_3"], "x3");
    assert_eq!(m["smtp_client_authentication_disabled"], true);
    assert!(
        ga.get(&format!("{page_path}?done=updated"))
            .body
            .contains("Saved.")
    );

    // Aliases.
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "add_alias"),
            ("alias", "evil.alias@contoso.test"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        mailbox(&s, "evil@contoso.test").1["aliases"],
        json!(["evil.alias@contoso.test"])
    );
    // A taken alias: the API's 409 and words, the typed value kept.
    let a = ga.submit(
        page_path,
        page_path,
        &[("action", "add_alias"), ("alias", "user@contoso.test")],
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("user@contoso.test"), "{}", a.body);
    assert!(
        a.body.contains("value=\"user@contoso.test\""),
        "kept: {}",
        a.body
    );
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "remove_alias"),
            ("alias", "evil.alias@contoso.test"),
        ],
    );
    assert_eq!(a.status, 303);
    assert_eq!(mailbox(&s, "evil@contoso.test").1["aliases"], json!([]));

    // Password: the API's length rule, then a real sign-in with the new one.
    let a = ga.submit(
        page_path,
        page_path,
        &[("action", "password"), ("password", "short")],
    );
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("a password has 8 to 256 characters"),
        "{}",
        a.body
    );
    let a = ga.submit(
        page_path,
        page_path,
        &[("action", "password"), ("password", "a brand new password")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let mut evil = Client::new(&s);
    assert_eq!(
        evil.sign_in("evil@contoso.test", "a brand new password")
            .status,
        303
    );

    // Permissions: full access for the user, then taken away.
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "grant"),
            ("user", "user@contoso.test"),
            ("right", "full-access"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let (_, rights) = s.api(
        "GET",
        "/api/v1/mailboxes/evil@contoso.test/permissions",
        None,
    );
    assert_eq!(
        rights,
        json!([{ "user": "user@contoso.test", "right": "full-access" }])
    );
    assert!(ga.get(page_path).body.contains("Full access"));
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "grant"),
            ("user", "nobody@contoso.test"),
            ("right", "send-as"),
        ],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("value=\"nobody@contoso.test\""), "kept");
    let a = ga.submit(
        page_path,
        page_path,
        &[
            ("action", "revoke"),
            ("user", "user@contoso.test"),
            ("right", "full-access"),
        ],
    );
    assert_eq!(a.status, 303);
    let (_, rights) = s.api(
        "GET",
        "/api/v1/mailboxes/evil@contoso.test/permissions",
        None,
    );
    assert_eq!(rights, json!([]));

    // Removal.
    let a = ga.submit(page_path, page_path, &[("action", "delete")]);
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), Some("/recipients?done=deleted"));
    assert_eq!(mailbox(&s, "evil@contoso.test").0, 404);
    assert_eq!(ga.get(page_path).status, 404);
}

#[test]
fn refused_creations_show_the_apis_words_with_the_values_kept() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    // A taken address.
    let a = ga.submit(
        "/recipients",
        "/recipients",
        &[
            ("address", "user@contoso.test"),
            ("display_name", "Second <User>"),
        ],
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("user@contoso.test"), "{}", a.body);
    assert!(
        a.body.contains("value=\"Second &lt;User&gt;\""),
        "kept: {}",
        a.body
    );
    assert!(a.body.contains("role=\"alert\""));
    // A domain that is not accepted (another tenant's looks the same).
    for domain in ["nowhere.test", "fabrikam.test"] {
        let address = format!("x@{domain}");
        let a = ga.submit(
            "/recipients",
            "/recipients",
            &[("address", &address), ("display_name", "Kept Name")],
        );
        assert_eq!(a.status, 404, "{}", a.body);
        assert!(
            a.body.contains(&format!(
                "{domain} is not an accepted domain of your tenant"
            )),
            "{}",
            a.body
        );
        assert!(a.body.contains("value=\"Kept Name\""));
        assert!(a.body.contains(&format!("value=\"{address}\"")));
    }
    // A malformed one.
    let a = ga.submit(
        "/recipients",
        "/recipients",
        &[("address", "not an address")],
    );
    assert_eq!(a.status, 400, "{}", a.body);

    // Contacts: created, refused for an accepted domain, removed.
    let a = ga.submit(
        "/recipients/contacts",
        "/recipients/contacts",
        &[
            ("address", "partner@outside.test"),
            ("name", "<b>Partner</b>"),
            ("company", "Outside"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let (_, contacts) = s.api("GET", "/api/v1/contacts", None);
    assert_eq!(contacts[0]["name"], "<b>Partner</b>");
    assert_eq!(contacts[0]["company"], "Outside");
    let page = ga.get("/recipients/contacts");
    assert!(page.body.contains("&lt;b&gt;Partner&lt;/b&gt;"));
    let a = ga.submit(
        "/recipients/contacts",
        "/recipients/contacts",
        &[("address", "someone@contoso.test"), ("name", "Inside")],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("this domain is an accepted domain"),
        "{}",
        a.body
    );
    assert!(a.body.contains("value=\"Inside\""));
    let a = ga.submit(
        "/recipients/contacts",
        "/recipients/contacts/delete",
        &[("address", "partner@outside.test")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let (_, contacts) = s.api("GET", "/api/v1/contacts", None);
    assert_eq!(contacts, json!([]));
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    let a = user.submit(
        "/groups",
        "/recipients/contacts",
        &[("address", "forged@outside.test")],
    );
    assert_eq!(a.status, 403);
}

#[test]
fn mailboxes_are_paged_in_the_store() {
    let s = setup();
    for i in 0..120 {
        let (status, v) = s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({ "address": format!("bulk{i:03}@contoso.test") })),
        );
        assert_eq!(status, 201, "{v}");
    }
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    // 120 bulk mailboxes and the 4 of setup: page 3 of 50 a page has 24 rows, of which the
    // filter keeps the bulk ones' last 20.
    let a = ga.get("/recipients?filter=bulk&page=3&page_size=50");
    assert_eq!(a.status, 200);
    assert_eq!(a.rows(), 20, "{}", a.body);
    assert!(a.body.contains("bulk100@contoso.test") && a.body.contains("bulk119@contoso.test"));
    assert!(!a.body.contains("bulk099@contoso.test"));
    assert!(!a.body.contains("rel=\"next\""));
    assert!(a.body.contains("rel=\"prev\""));
    let a = ga.get("/recipients?filter=bulk&page_size=50");
    assert_eq!(a.rows(), 50);
    // A page of 50 weighs far less than the 150 KB a first load may.
    eprintln!("/recipients with 50 rows: {} bytes", a.body.len());
    assert!(a.body.len() < 150 * 1024, "{} bytes", a.body.len());
    assert!(a.body.contains("rel=\"next\""));
    // Sorted in the store, over every row: the last address first.
    let a = ga.get("/recipients?filter=bulk&sort=address&desc=1&page_size=25");
    assert_eq!(a.rows(), 25);
    let first = a.body.find("bulk119@").expect("bulk119 on the first page");
    assert!(first < a.body.find("bulk118@").unwrap_or(usize::MAX));
    // CSV: every row of the filter.
    let csv = ga.get("/recipients.csv?filter=bulk");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 121, "header and 120 rows");
}

/// A group of `kind` made by the operator through the API.
fn api_group(s: &Server, body: serde_json::Value) {
    let (status, v) = s.api("POST", "/api/v1/groups", Some(body));
    assert_eq!(status, 201, "{v}");
}

#[test]
fn groups_per_type_members_owners_settings_as_the_api_allows() {
    let s = setup();
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    // A tab per type.
    let page = ga.get("/groups");
    assert_eq!(page.status, 200);
    for kind in [
        "distribution",
        "m365",
        "mail-security",
        "security",
        "dynamic",
    ] {
        assert!(
            page.body.contains(&format!("data-type=\"{kind}\"")),
            "{kind}"
        );
    }
    assert!(
        ga.get("/groups?type=security")
            .body
            .contains("Global Admins")
    );
    assert!(
        !ga.get("/groups?type=distribution")
            .body
            .contains("Global Admins")
    );
    // Create a distribution list with a member, by the form.
    let a = ga.submit(
        "/groups?type=distribution",
        "/groups",
        &[
            ("type", "distribution"),
            ("name", "<i>Sales</i>"),
            ("address", "sales@contoso.test"),
            ("owners", "owner@contoso.test"),
            ("members", "user@contoso.test"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some("/groups/g/sales%40contoso.test?done=created")
    );
    let g = group(&s, "sales@contoso.test");
    assert_eq!(g["members"], json!(["user@contoso.test"]));
    assert_eq!(g["owners"], json!(["owner@contoso.test"]));
    let page = ga.get("/groups/g/sales%40contoso.test");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("&lt;i&gt;Sales&lt;/i&gt;") && !page.body.contains("<i>Sales"));
    // A taken name: the API's 409, values kept.
    let a = ga.submit(
        "/groups?type=distribution",
        "/groups",
        &[
            ("type", "distribution"),
            ("name", "<i>Sales</i>"),
            ("address", "sales2@contoso.test"),
        ],
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("value=\"sales2@contoso.test\""));
    // Members and owners.
    let p = "/groups/g/sales%40contoso.test";
    let a = ga.submit(
        p,
        p,
        &[("action", "add_member"), ("who", "ra@contoso.test")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let a = ga.submit(
        p,
        p,
        &[("action", "remove_member"), ("who", "user@contoso.test")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        group(&s, "sales@contoso.test")["members"],
        json!(["ra@contoso.test"])
    );
    // Owners of a distribution list are its managers' to change: an admin who is not one
    // uses the bypass switch (the API's rule).
    let a = ga.submit(
        p,
        p,
        &[("action", "add_owner"), ("who", "user@contoso.test")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = ga.submit(
        p,
        p,
        &[
            ("action", "add_owner"),
            ("who", "user@contoso.test"),
            ("bypass_security_group_manager_check", "1"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let owners = group(&s, "sales@contoso.test")["owners"].clone();
    assert_eq!(owners.as_array().map(Vec::len), Some(2), "{owners}");
    assert!(
        owners
            .as_array()
            .unwrap()
            .contains(&json!("user@contoso.test"))
    );
    // Settings and sender restrictions.
    let a = ga.submit(
        p,
        p,
        &[
            ("action", "settings"),
            ("name", "Sales"),
            ("member_join_restriction", "approval-required"),
            ("member_depart_restriction", "open"),
            ("require_sender_authentication", "1"),
            (
                "accept_messages_only_from",
                "user@contoso.test\nra@contoso.test",
            ),
            ("reject_messages_from", ""),
            ("moderation_enabled", "1"),
            ("moderated_by", "owner@contoso.test"),
            ("bypass_moderation_from", ""),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let g = group(&s, "sales@contoso.test");
    assert_eq!(g["name"], "Sales");
    assert_eq!(g["member_join_restriction"], "approval-required");
    assert_eq!(g["require_sender_authentication"], true);
    assert_eq!(g["moderation_enabled"], true);
    assert_eq!(g["moderated_by"], json!(["owner@contoso.test"]));
    assert_eq!(
        g["accept_messages_only_from"],
        json!(["user@contoso.test", "ra@contoso.test"])
    );
    // A bad entry: the API's words, the text kept.
    let a = ga.submit(
        p,
        p,
        &[
            ("action", "settings"),
            ("accept_messages_only_from", "ghost@contoso.test"),
        ],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("ghost@contoso.test</textarea>"),
        "kept: {}",
        a.body
    );

    // A user who owns a group manages it as the API lets them; another group's forged form is
    // refused; a user may not create a security group.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    let page = user.get("/groups?type=security");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("id=\"new-group\""),
        "no form a user may not use"
    );
    let a = user.submit(p, "/groups", &[("type", "security"), ("name", "Mine")]);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = user.submit(
        p,
        p,
        &[("action", "add_member"), ("who", "ga@contoso.test")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let members = group(&s, "sales@contoso.test")["members"].clone();
    assert!(
        members.as_array().map(Vec::len) == Some(2)
            && members
                .as_array()
                .unwrap()
                .contains(&json!("ga@contoso.test")),
        "{members}"
    );
    let a = user.submit(
        p,
        "/groups/g/Global%20Admins",
        &[("action", "add_member"), ("who", "user@contoso.test")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        !group(&s, "Global%20Admins")["members"]
            .as_array()
            .unwrap()
            .contains(&json!("user@contoso.test"))
    );
    // A user creates a distribution list and owns it.
    let a = user.submit(
        "/groups",
        "/groups",
        &[
            ("type", "distribution"),
            ("name", "Book club"),
            ("address", "books@contoso.test"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        group(&s, "books@contoso.test")["owners"],
        json!(["user@contoso.test"])
    );

    // Join requests: ra asks to join Sales (approval required); an owner approves on the page.
    let mut ra = Client::signed_in(&s, "ra@contoso.test", PASSWORD);
    let a = ra.submit(p, p, &[("action", "leave")]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(a.header("location").unwrap_or("").ends_with("done=left"));
    let a = ra.submit(p, p, &[("action", "join")]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(
        a.header("location")
            .unwrap_or("")
            .ends_with("done=requested")
    );
    let page = user.get(p);
    assert!(page.body.contains("id=\"requests\""), "{}", page.body);
    let id = page
        .body
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .expect("a request id")
        .to_string();
    // Someone who does not manage the group may not decide it.
    let mut other = Client::signed_in(&s, "owner@contoso.test", PASSWORD);
    let a = other.submit(
        "/groups",
        "/groups/g/books%40contoso.test",
        &[("action", "approve_request"), ("id", &id)],
    );
    assert!(a.status == 403 || a.status == 404, "{}", a.status);
    let a = user.submit(p, p, &[("action", "approve_request"), ("id", &id)]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(
        group(&s, "sales@contoso.test")["members"]
            .as_array()
            .unwrap()
            .contains(&json!("ra@contoso.test"))
    );

    // Removal.
    let a = ga.submit(
        p,
        p,
        &[
            ("action", "delete"),
            ("bypass_security_group_manager_check", "1"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let (status, _) = s.api("GET", "/api/v1/groups/sales@contoso.test", None);
    assert_eq!(status, 404);

    // Japanese.
    let mut ja = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    ja.cookies.insert("hato_lang".into(), "ja".into());
    let page = ja.get("/groups");
    assert!(page.body.contains("配布リスト") && page.body.contains("動的配布リスト"));
    assert!(page.body.contains("<html lang=\"ja\">"));
}

#[test]
fn a_dynamic_groups_filter_previews_its_members_live() {
    let s = setup();
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/mailboxes/user@contoso.test",
        Some(json!({ "department": "Sales" })),
    );
    assert_eq!(status, 200, "{v}");
    let mut ga = Client::signed_in(&s, "ga@contoso.test", PASSWORD);
    let csrf = ga.get("/groups?type=dynamic").csrf();
    // htmx: the list alone.
    let a = ga.post(
        "/groups/preview",
        &[
            ("recipient_filter", "Department -eq 'Sales'"),
            ("_csrf", &csrf),
        ],
        &[("HX-Request", "true")],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("user@contoso.test"), "{}", a.body);
    assert!(!a.body.contains("ga@contoso.test"));
    assert!(!a.body.contains("<html"), "a fragment");
    // A bad filter: the API's words, in the list's place (htmx swaps only 2xx).
    let a = ga.post(
        "/groups/preview",
        &[("recipient_filter", "Department -eq"), ("_csrf", &csrf)],
        &[("HX-Request", "true")],
    );
    assert_eq!(a.status, 200);
    assert!(a.body.contains("recipient_filter"), "{}", a.body);
    // Without JavaScript: a page.
    let a = ga.post(
        "/groups/preview",
        &[
            ("recipient_filter", "Department -eq 'Sales'"),
            ("_csrf", &csrf),
        ],
        &[],
    );
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<html") && a.body.contains("user@contoso.test"));
    // No token: refused.
    let a = ga.post(
        "/groups/preview",
        &[("recipient_filter", "x")],
        &[("HX-Request", "true")],
    );
    assert_eq!(a.status, 403);
    // A user: the API's preview is admins'.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    let a = user.submit(
        "/groups",
        "/groups/preview",
        &[("recipient_filter", "Department -eq 'Sales'")],
    );
    assert_eq!(a.status, 403);

    // A dynamic group, created with its filter; its page shows the members it has.
    let a = ga.submit(
        "/groups?type=dynamic",
        "/groups",
        &[
            ("type", "dynamic"),
            ("name", "Sales people"),
            ("address", "salespeople@contoso.test"),
            ("recipient_filter", "Department -eq 'Sales'"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let page = ga.get("/groups/g/salespeople%40contoso.test");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("hx-post=\"/groups/preview\""));
    assert!(page.body.contains("user@contoso.test"));
    let p = "/groups/g/salespeople%40contoso.test";
    let a = ga.submit(
        p,
        p,
        &[
            ("action", "filter"),
            ("recipient_filter", "Department -eq 'Support'"),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let g = group(&s, "salespeople@contoso.test");
    assert!(
        g["recipient_filter"]
            .as_str()
            .unwrap_or("")
            .contains("Support"),
        "{g}"
    );
}

#[test]
fn the_moderation_queue_approves_rejects_and_stops_moderating_a_sender() {
    let s = setup();
    api_group(
        &s,
        json!({ "type": "distribution", "tenant": "contoso", "name": "Moderated",
                 "address": "moderated@contoso.test", "owners": ["owner@contoso.test"],
                 "members": ["ra@contoso.test"], "moderation_enabled": true,
                 "require_sender_authentication": false }),
    );
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    for (from, subject) in [
        ("user@contoso.test", "<script>alert(1)</script> first"),
        ("outside@elsewhere.test", "second"),
        ("outside@elsewhere.test", "third"),
    ] {
        let r = c.send_mail(
            from,
            &["moderated@contoso.test"],
            &format!("Subject: {subject}\r\n\r\nbody\r\n"),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    let held = |s: &Server| {
        let (_, v) = s.api("GET", "/api/v1/moderation?state=pending", None);
        v.as_array().cloned().unwrap_or_default()
    };
    s.wait_for("held", || held(&s).len() == 3);
    let id_of = |subject: &str| {
        held(&s)
            .iter()
            .find(|h| h["subject"].as_str().unwrap_or("").contains(subject))
            .map(|h| h["id"].as_i64().unwrap())
            .expect("held")
    };
    let (first, second, third) = (id_of("first"), id_of("second"), id_of("third"));

    // Someone who does not moderate the group sees nothing and is refused a forged decision.
    let mut user = Client::signed_in(&s, "user@contoso.test", PASSWORD);
    let page = user.get("/groups/moderation");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("second"));
    let a = user.submit(
        "/groups/moderation",
        &format!("/groups/moderation/{second}"),
        &[("decision", "approve")],
    );
    assert_eq!(a.status, 403, "{}", a.body);

    // The owner moderates (no moderators named): the subject shows as text.
    let mut owner = Client::signed_in(&s, "owner@contoso.test", PASSWORD);
    let page = owner.get("/groups/moderation");
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; first")
    );
    assert!(!page.body.contains("<script>alert(1)"));
    let a = owner.submit(
        "/groups/moderation",
        &format!("/groups/moderation/{first}"),
        &[("decision", "approve_bypass")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some("/groups/moderation?done=bypassed")
    );
    assert_eq!(
        group(&s, "moderated@contoso.test")["bypass_moderation_from"],
        json!(["user@contoso.test"])
    );
    s.wait_for("approved copy", || !s.mail("ra@contoso.test").is_empty());
    // An outside sender without a contact cannot bypass: the API's words, nothing decided.
    let a = owner.submit(
        "/groups/moderation",
        &format!("/groups/moderation/{second}"),
        &[("decision", "approve_bypass")],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("add a mail contact first"), "{}", a.body);
    let a = owner.submit(
        "/groups/moderation",
        &format!("/groups/moderation/{second}"),
        &[("decision", "reject"), ("comment", "not for this list")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let a = owner.submit(
        "/groups/moderation",
        &format!("/groups/moderation/{third}"),
        &[("decision", "approve")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let (_, all) = s.api("GET", "/api/v1/moderation", None);
    let state = |id: i64| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id)
            .map(|h| h["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(state(second).as_deref(), Some("rejected"));
    assert_eq!(state(third).as_deref(), Some("approved"));
    s.wait_for("both approved copies", || {
        s.mail("ra@contoso.test").len() == 2
    });
}

#[test]
fn api_approve_with_bypass_sender_adds_the_sender_to_the_bypass_list() {
    let s = setup();
    api_group(
        &s,
        json!({ "type": "distribution", "tenant": "contoso", "name": "Moderated",
                 "address": "moderated@contoso.test", "owners": ["owner@contoso.test"],
                 "moderated_by": ["user@contoso.test"],
                 "members": ["ra@contoso.test"], "moderation_enabled": true,
                 "require_sender_authentication": false }),
    );
    let (status, v) = s.api(
        "POST",
        "/api/v1/contacts",
        Some(json!({ "tenant": "contoso", "address": "partner@outside.test" })),
    );
    assert_eq!(status, 201, "{v}");
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    for subject in ["one", "two"] {
        let r = c.send_mail(
            "partner@outside.test",
            &["moderated@contoso.test"],
            &format!("Subject: {subject}\r\n\r\nbody\r\n"),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    let held = |s: &Server| {
        let (_, v) = s.api("GET", "/api/v1/moderation?state=pending", None);
        v.as_array().cloned().unwrap_or_default()
    };
    s.wait_for("held", || held(&s).len() == 2);
    let ids: Vec<i64> = held(&s).iter().map(|h| h["id"].as_i64().unwrap()).collect();
    // The named moderator (a plain user, not an owner) may approve but not change the group's
    // settings: refused as a whole, nothing decided.
    let token = {
        let (status, v) = s.api(
            "POST",
            "/api/v1/auth/login",
            Some(json!({ "address": "user@contoso.test", "password": PASSWORD })),
        );
        assert_eq!(status, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let (status, v) = s.api_as(
        &token,
        "POST",
        &format!("/api/v1/moderation/{}/approve", ids[0]),
        Some(json!({ "bypass_sender": true })),
    );
    assert_eq!(status, 403, "{v}");
    assert_eq!(held(&s).len(), 2);
    // With reject: refused.
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/moderation/{}/reject", ids[0]),
        Some(json!({ "bypass_sender": true })),
    );
    assert_eq!(status, 400, "{v}");
    // A global admin (the operator here): approved, and the contact bypasses from now on.
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/moderation/{}/approve", ids[0]),
        Some(json!({ "bypass_sender": true })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(
        group(&s, "moderated@contoso.test")["bypass_moderation_from"],
        json!(["partner@outside.test"])
    );
    // The approved message goes to the member. (The bypass itself applies to the contact's
    // authenticated mail only: an anonymous MAIL FROM proves nothing, see
    // `hato_directory::policy::needs_moderation`.)
    s.wait_for("approved copy", || !s.mail("ra@contoso.test").is_empty());
    assert_eq!(held(&s).len(), 1, "only \"two\" still waits");
    // The CLI's switch: the same call (the sender, already on the list, stays there once).
    let out = s.ok(&[
        "moderation",
        "approve",
        &ids[1].to_string(),
        "--bypass-sender",
    ]);
    assert!(out.contains("no longer moderated"), "{out}");
    assert!(held(&s).is_empty());
    assert_eq!(
        group(&s, "moderated@contoso.test")["bypass_moderation_from"],
        json!(["partner@outside.test"])
    );
}
