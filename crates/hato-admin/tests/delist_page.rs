//! The delist page and the block list's upkeep with a manual clock: a confirmation link that
//! has expired, one whose entry has gone, and expired entries purged from the store and from
//! the edge's snapshot.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hato_admin::{AppState, BlockListService, DelistLimits, LoginLimiter, LoginLimits, router};
use hato_core::clock::ManualClock;
use hato_core::{Clock, Timestamp};
use hato_protection::Outcome;
use hato_store::{DelistOutcome, NewBlockEntry, NewDelistRequest, SqliteStore, Store, hash_token};
use std::sync::Arc;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    state: AppState,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").expect("time"),
    ));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_with_clock(dir.path(), dyn_clock.clone()).expect("store"));
    let state = AppState {
        directory: Arc::new(hato_directory::Directory::new(store.clone())),
        store: store.clone(),
        login: Arc::new(LoginLimiter::new(LoginLimits::default(), dyn_clock.clone())),
        block_list: Arc::new(BlockListService::new(
            "https://mx.hato.test/delist",
            DelistLimits::default(),
            dyn_clock.clone(),
        )),
        throttle: Arc::new(hato_protection::throttle::Throttle::new(Default::default())),
        // Nothing listens there: these tests make no lookups, and none may leave loopback.
        resolver: Arc::new(
            hato_dns::HickoryResolver::new(&hato_dns::DnsSettings {
                servers: vec!["127.0.0.1:9".into()],
                ..Default::default()
            })
            .expect("resolver"),
        ),
        clock: dyn_clock,
        hostname: "mx.hato.test".into(),
        outbound: None,
        console: Default::default(),
        test_clock: None,
    };
    Fixture {
        _dir: dir,
        clock,
        store,
        state,
    }
}

impl Fixture {
    async fn list(&self, entry: &str, expires_in: Option<i64>) -> i64 {
        let now = self.clock.now();
        let e = self
            .store
            .add_block(NewBlockEntry {
                entry: entry.into(),
                reason: "test".into(),
                added_by: "operator".into(),
                added: now,
                expires: expires_in.map(|s| now.plus_seconds(s)),
            })
            .await
            .expect("listed");
        self.state
            .block_list
            .reload(&*self.store, now)
            .expect("reload");
        e.id
    }

    /// A request whose mailed token is `token`, for the entry `id` listing `ip`.
    async fn request(&self, ip: &str, id: i64, token: &str) {
        let now = self.clock.now();
        self.store
            .add_delist_request(NewDelistRequest {
                requested: now,
                ip: ip.into(),
                address: "alice@contoso.test".into(),
                client_ip: "192.0.2.200".into(),
                outcome: DelistOutcome::ConfirmationSent,
                entry: Some((id, ip.into())),
                token: Some((hash_token(token), now.plus_seconds(24 * 3600))),
            })
            .await
            .expect("recorded");
    }

    async fn page(&self, method: &str, uri: &str, form: Option<String>) -> (StatusCode, String) {
        let mut r = Request::builder().method(method).uri(uri);
        if form.is_some() {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = r
            .body(form.map_or_else(Body::empty, Body::from))
            .expect("request");
        let answer = router(self.state.clone())
            .oneshot(request)
            .await
            .expect("answer");
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_link_stops_working_after_24_hours() {
    let f = fixture();
    let id = f.list("192.0.2.7", None).await;
    f.request("192.0.2.7", id, TOKEN).await;
    let uri = format!("/delist/confirm?token={TOKEN}");
    f.clock.advance_seconds(24 * 3600 - 1);
    let (status, page) = f.page("GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<button type=\"submit\">Delist IP</button>"),
        "{page}"
    );
    f.clock.advance_seconds(1);
    let expired = "<p>This link for 192.0.2.7 has expired: links work for 24 hours. \
                   <a href=\"../delist\">Ask again</a> for a new one.</p>";
    let (status, page) = f.page("GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(expired), "{page}");
    let (status, page) = f
        .page("POST", "/delist/confirm", Some(format!("token={TOKEN}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(expired), "{page}");
    // Nothing was removed.
    assert!(
        f.state
            .block_list
            .list()
            .check("192.0.2.7".parse().expect("ip"), f.clock.now())
            .refuses()
    );
    assert_eq!(f.store.block_entries(f.clock.now()).expect("list").len(), 1);
}

#[tokio::test]
async fn a_link_whose_entry_has_gone_says_so_and_removes_nothing() {
    let f = fixture();
    let id = f.list("192.0.2.7", None).await;
    f.request("192.0.2.7", id, TOKEN).await;
    // The operator removes the entry and lists the IP anew: the link was for the old entry.
    f.store
        .remove_block("192.0.2.7", "operator", f.clock.now())
        .await
        .expect("removed");
    f.list("192.0.2.7", None).await;
    let gone = "<p>192.0.2.7 is no longer on the block list of mx.hato.test: there is nothing to \
                remove.</p>";
    let (_, page) = f
        .page("GET", &format!("/delist/confirm?token={TOKEN}"), None)
        .await;
    assert!(page.contains(gone), "{page}");
    let (status, page) = f
        .page("POST", "/delist/confirm", Some(format!("token={TOKEN}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(gone), "{page}");
    assert_eq!(f.store.block_entries(f.clock.now()).expect("list").len(), 1);
}

#[tokio::test]
async fn removing_by_link_takes_effect_in_the_edges_copy_at_once() {
    let f = fixture();
    let id = f.list("192.0.2.7", None).await;
    f.list("192.0.2.0/24", None).await;
    f.request("192.0.2.7", id, TOKEN).await;
    let check = || match f
        .state
        .block_list
        .list()
        .check("192.0.2.7".parse().expect("ip"), f.clock.now())
    {
        Outcome::Refuse(r) => r.reason.rule.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(check().as_deref(), Some("192.0.2.7"));
    let (status, page) = f
        .page("POST", "/delist/confirm", Some(format!("token={TOKEN}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<p>192.0.2.7 has been removed from the block list of mx.hato.test.</p>"),
        "{page}"
    );
    // The /24 still lists it, and the page says so.
    assert!(
        page.contains(
            "<p>It is still listed as part of the network 192.0.2.0/24, which is not removed on \
             request: write to postmaster@mx.hato.test about it.</p>"
        ),
        "{page}"
    );
    assert_eq!(check().as_deref(), Some("192.0.2.0/24"));
}

#[tokio::test]
async fn expired_entries_are_purged_from_the_store_and_the_snapshot() {
    let f = fixture();
    f.list("192.0.2.7", Some(3600)).await;
    f.list("192.0.2.8", None).await;
    let store = f.store.clone();
    let clock: Arc<dyn Clock> = f.clock.clone();
    let service = f.state.block_list.clone();
    assert_eq!(service.list().len(), 2);
    f.clock.advance_seconds(3600);
    // It stops matching at its time, before any purge.
    assert_eq!(
        service
            .list()
            .check("192.0.2.7".parse().expect("ip"), f.clock.now()),
        Outcome::Pass
    );
    service.maintain(&store, &clock).await.expect("maintained");
    assert_eq!(service.list().len(), 1);
    // Gone from the store, not only hidden by its time.
    assert_eq!(store.block_entry("192.0.2.7").expect("read"), None);
    assert!(
        service
            .list()
            .check("192.0.2.8".parse().expect("ip"), f.clock.now())
            .refuses()
    );
}
