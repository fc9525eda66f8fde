//! Home's top senders and recipients: after mail from several senders to several recipients of
//! two tenants (a bounce's null sender too) the store's top lists are exact, for each tenant and
//! for every tenant, and again after a restart and more mail; Home shows them. Home's throttled IPs, `GET /api/v1/throttle`,
//! `hato throttle list` and Protection's throttle tab list the IPs throttled now, paged.

mod common;
use common::console::Client;
use common::*;
use hato_core::{Clock, SystemClock};
use hato_protection::throttle::{Throttle, ThrottleSettings};
use hato_store::{AddressCount, ConsoleStore, SqliteStore, TenantStore};
use serde_json::{Value, json};
use std::net::IpAddr;

const PASSWORD: &str = "correct horse battery";

fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in [
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@fabrikam.test",
    ] {
        s.mailbox(m, &["--password", PASSWORD]);
    }
    s
}

/// `n` messages from `from` to `to`, each over its own SMTP transaction; waits for their rows.
fn send(s: &Server, from: &str, to: &[&str], n: usize) {
    for i in 0..n {
        let mut c = s.smtp();
        c.read_reply();
        c.cmd("EHLO client.outside.test");
        let reply = c.send_mail(
            from,
            to,
            &format!("From: <{from}>\r\nSubject: top {i}\r\n\r\nhello\r\n"),
        );
        assert!(reply.starts_with("250 "), "{reply}");
        c.cmd("QUIT");
    }
}

/// One round: a heavy sender, a light one, a bounce (null sender), a message to two tenants.
fn round(s: &Server) {
    send(s, "heavy@outside.test", &["alice@contoso.test"], 3);
    send(
        s,
        "heavy@outside.test",
        &["alice@contoso.test", "bob@contoso.test"],
        1,
    );
    send(s, "light@outside.test", &["bob@contoso.test"], 1);
    send(s, "", &["bob@contoso.test"], 1);
    send(
        s,
        "both@outside.test",
        &["alice@contoso.test", "carol@fabrikam.test"],
        2,
    );
}

fn pairs(v: &[AddressCount]) -> Vec<(String, u64)> {
    v.iter().map(|a| (a.address.clone(), a.count)).collect()
}

/// With the server stopped: contoso's and every tenant's top ten (senders, recipients), and
/// fabrikam's holding only its own recipient.
#[allow(clippy::type_complexity)]
fn top_lists(s: &mut Server) -> [(Vec<(String, u64)>, Vec<(String, u64)>); 2] {
    s.stop();
    let store = SqliteStore::open(&s.data_dir()).expect("store");
    let tenant = |name: &str| store.tenant_by_name(name).expect("read").expect("t").id;
    let since = SystemClock.now().plus_seconds(-86_400);
    let mut out = Vec::new();
    for t in [Some(tenant("contoso")), Some(tenant("fabrikam")), None] {
        let (cs, cr) = store.top_addresses(t, since, 10).expect("top lists");
        if t == Some(tenant("fabrikam")) {
            // fabrikam's recipients only, and as many as its senders sent it.
            assert!(
                cr.iter().all(|a| a.address == "carol@fabrikam.test"),
                "fabrikam: {cr:?}"
            );
            assert_eq!(
                cr.iter().map(|a| a.count).sum::<u64>(),
                cs.iter().map(|a| a.count).sum::<u64>(),
                "fabrikam: {cs:?} {cr:?}"
            );
        } else {
            out.push((pairs(&cs), pairs(&cr)));
        }
    }
    drop(store);
    s.restart();
    [out.remove(0), out.remove(0)]
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn top_senders_and_recipients_are_exact_after_mail_and_a_restart() {
    let mut s = setup();
    round(&s);
    let [contoso, all] = top_lists(&mut s);
    // heavy: 3 + 2 recipients; both: 2 at contoso; light: 1; the null sender is no sender.
    assert_eq!(
        contoso.0,
        owned(&[
            ("heavy@outside.test", 5),
            ("both@outside.test", 2),
            ("light@outside.test", 1)
        ])
    );
    assert_eq!(
        contoso.1,
        owned(&[("alice@contoso.test", 6), ("bob@contoso.test", 3)])
    );
    // Every tenant: fabrikam's carol counts too, and both's recipients there.
    assert_eq!(
        all.0,
        owned(&[
            ("heavy@outside.test", 5),
            ("both@outside.test", 4),
            ("light@outside.test", 1)
        ])
    );
    assert!(all.1.contains(&("carol@fabrikam.test".to_string(), 2)));

    // Home shows them, for the operator and for a tenant's admin, in its top lists.
    let mut op = Client::new(&s);
    assert_eq!(op.sign_in("operator", &s.token).status, 303);
    let home = op.get("/");
    assert_eq!(home.status, 200);
    let senders = home.body.split("Top senders").nth(1).expect("top senders");
    assert!(
        senders.find("heavy@outside.test") < senders.find("both@outside.test"),
        "{senders}"
    );
    assert!(senders.contains("<td>5</td>"), "{senders}");

    // After the restart: more mail, and grown.
    round(&s);
    let [contoso, _] = top_lists(&mut s);
    assert_eq!(contoso.0[0], ("heavy@outside.test".to_string(), 10));
    assert_eq!(contoso.1[0], ("alice@contoso.test".to_string(), 12));
}

fn token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// Three throttled IPs (the newest last) and a clean one, in the state `hato serve` reads at
/// start.
fn throttled_state(s: &mut Server) {
    let now = SystemClock.now();
    let th = Throttle::new(ThrottleSettings::default());
    for (i, ip) in ["203.0.113.9", "198.51.100.7", "2001:db8:1:2::5"]
        .iter()
        .enumerate()
    {
        let ip: IpAddr = ip.parse().unwrap();
        let at = now.plus_seconds(-600 + 60 * i as i64);
        th.record_connection(ip, at);
        th.record_message(ip, 150, at);
        assert!(th.check(ip, at).refuses());
    }
    let clean: IpAddr = "192.0.2.1".parse().unwrap();
    th.record_connection(clean, now);
    th.record_message(clean, 1, now);
    th.save(&s.data_dir().join("throttle.state")).unwrap();
    s.restart();
}

fn ips(v: &Value) -> Vec<String> {
    v["throttled"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["ip"].as_str().expect("ip").to_string())
        .collect()
}

#[test]
fn throttled_ips_are_listed_by_the_api_the_cli_home_and_the_protection_tab() {
    let mut s = setup();
    throttled_state(&mut s);
    // The API: newest first, the decision of each, paged.
    let (status, v) = s.api("GET", "/api/v1/throttle", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 3);
    assert_eq!(
        ips(&v),
        ["2001:db8:1:2::/64", "198.51.100.7", "203.0.113.9"]
    );
    assert_eq!(v["throttled"][2]["rule"], "AS1");
    assert_eq!(v["throttled"][2]["strikes"], 1);
    assert_eq!(v["more"], false);
    let (_, v) = s.api("GET", "/api/v1/throttle?page=2&page_size=1", None);
    assert_eq!(
        (ips(&v), &v["more"]),
        (vec!["198.51.100.7".to_string()], &json!(true))
    );
    let (status, v) = s.api("GET", "/api/v1/throttle?page_size=0", None);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("page_size"), "{v}");
    // A tenant's admins see the list (the decision, as for one IP); users do not.
    let admin = token(&s, "contoso", "recipient-admin");
    let (status, v) = s.api_as(&admin, "GET", "/api/v1/throttle", None);
    assert_eq!((status, v["total"].clone()), (200, json!(3)), "{v}");
    let (status, v) = s.api_as(
        "",
        "POST",
        "/api/v1/auth/login",
        Some(json!({"address": "alice@contoso.test", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{v}");
    let user = v["token"].as_str().expect("token").to_string();
    let (status, _) = s.api_as(&user, "GET", "/api/v1/throttle", None);
    assert_eq!(status, 403);

    // The CLI.
    let out = s.ok(&["throttle", "list"]);
    assert!(out.contains("198.51.100.7") && out.contains("AS1"), "{out}");
    assert!(out.trim_end().ends_with("3 throttled"), "{out}");
    let out = s.ok(&["throttle", "list", "--page-size", "2"]);
    assert!(out.contains("(more: --page 2)"), "{out}");
    let (ok, _, err) = s.cli(&["throttle", "list", "--page-size", "5000"]);
    assert!(!ok && err.contains("page_size"), "{err}");

    // Home: the count, the latest ten and a link to the tab.
    let mut op = Client::new(&s);
    assert_eq!(op.sign_in("operator", &s.token).status, 303);
    let home = op.get("/");
    let panel = home
        .body
        .split("id=\"throttled-ips\"")
        .nth(1)
        .expect("panel");
    assert!(panel.contains("id=\"throttled-count\">3<"), "{panel}");
    assert!(panel.contains("203.0.113.9") && panel.contains("2001:db8:1:2::/64"));
    assert!(panel.contains("href=\"/protection/throttle\""), "{panel}");
    // The tab: the paged table (one a page here), a link to each IP's status, and the CSV.
    let tab = op.get("/protection/throttle?tenant=contoso&page_size=25");
    assert_eq!(tab.status, 200);
    let list = tab
        .body
        .split("id=\"throttled-list\"")
        .nth(1)
        .expect("list");
    assert!(
        list.contains("href=\"/protection/throttle?ip=198.51.100.7&amp;tenant=contoso\""),
        "{list}"
    );
    let csv = op.get("/protection/throttle.csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 4, "{}", csv.body);
    assert!(csv.body.contains("\"2001:db8:1:2::/64\""), "{}", csv.body);

    // Released: no longer listed, anywhere.
    s.ok(&["throttle", "release", "198.51.100.7"]);
    let (_, v) = s.api("GET", "/api/v1/throttle", None);
    assert_eq!(ips(&v), ["2001:db8:1:2::/64", "203.0.113.9"]);
    assert!(op.get("/").body.contains("id=\"throttled-count\">2<"));

    // A user's Home has no such panel, and the CSV is refused them as the API refuses them.
    let mut user = Client::signed_in(&s, "alice@contoso.test", PASSWORD);
    assert!(!user.get("/").body.contains("throttled-ips"));
    assert_eq!(user.get("/protection/throttle.csv").status, 403);
}

#[test]
fn the_top_lists_skip_a_null_sender_and_the_store_reopens_with_them() {
    // A bounce (`<>`) has no sender to rank.
    let mut s = setup();
    send(&s, "", &["alice@contoso.test"], 2);
    let [contoso, _] = top_lists(&mut s);
    assert!(contoso.0.is_empty(), "{contoso:?}");
    assert_eq!(contoso.1, owned(&[("alice@contoso.test", 2)]));
}
