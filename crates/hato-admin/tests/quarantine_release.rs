//! The quarantine release page with a manual clock over a store the real delivery agent
//! filled: a GET shows the held message and changes nothing, a POST releases it to the
//! recipient's Inbox once (trace `Release` by the recipient), and every refusal: a token for
//! another item or recipient, another server's, a changed one, an admin-only kind even with a
//! token signed by this server's secret, an expired link, an item released or deleted already.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hato_admin::{AppState, LoginLimiter, LoginLimits, router};
use hato_core::clock::ManualClock;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::{Clock, Reason, Stage, Timestamp};
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::digest::{ReleaseClaim, token};
use std::sync::Arc;
use tokio::sync::Notify;
use tower::ServiceExt;

const SUBJECT: &str = "<b>cheap</b> \"watches\" & more";

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    state: AppState,
    alice: i64,
    secret: Vec<u8>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").expect("time"),
    ));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store =
        Arc::new(SqliteStore::open_with_clock(dir.path(), dyn_clock.clone()).expect("store"));
    let t = store.create_tenant("contoso").await.expect("tenant");
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .expect("domain");
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let m = store
            .create_mailbox(NewMailbox {
                tenant_id: t.id,
                address: format!("{name}@contoso.test"),
                display_name: name.into(),
                mailbox_type: MailboxType::User,
                aliases: vec![],
                attributes: MailboxAttributes::default(),
                quota_bytes: 1 << 30,
            })
            .await
            .expect("mailbox");
        ids.push((m.id, m.address));
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let directory = Arc::new(hato_directory::Directory::new(dyn_store.clone()));
    // Alice's copy held as spam, bob's as spam; a second message to alice held as malware.
    for (trace_id, kind) in [
        ("0193a1b2-0000-7000-8000-000000000001", QuarantineKind::Spam),
        (
            "0193a1b2-0000-7000-8000-000000000002",
            QuarantineKind::Malware,
        ),
    ] {
        let recipients = ids
            .iter()
            .filter(|(_, a)| kind == QuarantineKind::Spam || a.starts_with("alice"))
            .map(|(id, address)| NewRecipient {
                address: address.clone(),
                tenant_id: t.id,
                route: Route::Local(*id),
                extra_events: vec![],
                receive_reason: None,
                finished: None,
                stamp: String::new(),
                junk: false,
                quarantine: Some(QuarantineHold {
                    kind,
                    policy: "Default".into(),
                    reason: Reason::new(Stage::Spam, "held by the test"),
                    days: None,
                    quarantine_policy: None,
                }),
                connector: None,
                dsn: Default::default(),
            })
            .collect();
        store
            .enqueue(NewMessage {
                trace_id: trace_id.into(),
                received: clock.now(),
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some(SUBJECT.into()),
                content: format!(
                    "From: mallory@fabrikam.test\r\nSubject: {SUBJECT}\r\n\r\nbuy\r\n"
                )
                .into_bytes(),
                spooled: None,
                recipients,
                receive_detail: "received".into(),
                reports_on: vec![],
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                dsn: Default::default(),
                high_risk: false,
            })
            .await
            .expect("enqueue");
    }
    let agent = DeliveryAgent::new(
        directory.clone(),
        dyn_clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
        90,
        None,
        NodeId::new("node-test"),
    );
    agent.clone().step().await.expect("delivered");
    let secret = store.release_link_secret([7; 32]).await.expect("secret");
    let state = AppState {
        directory,
        store: dyn_store,
        login: Arc::new(LoginLimiter::new(LoginLimits::default(), dyn_clock.clone())),
        block_list: Arc::new(hato_admin::BlockListService::new(
            "https://mx.hato.test/delist",
            hato_admin::DelistLimits::default(),
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
    World {
        _dir: dir,
        store,
        clock,
        state,
        alice: ids[0].0,
        secret,
    }
}

impl World {
    fn item(&self, recipient: &str, kind: QuarantineKind) -> QuarantineItem {
        self.store
            .quarantine_items(&QuarantineQuery {
                recipient: Some(recipient.into()),
                kind: Some(kind),
                ..Default::default()
            })
            .expect("listing")
            .items
            .remove(0)
    }

    /// A token for `item` signed with this server's secret, as a digest makes it.
    fn token_for(&self, item: &QuarantineItem) -> String {
        token::sign(
            &self.secret,
            &ReleaseClaim {
                item: item.id,
                recipient: item.recipient.clone(),
                expires: item.expires,
            },
        )
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

    async fn get(&self, t: &str) -> (StatusCode, String) {
        self.page("GET", &format!("/quarantine/release?t={t}"), None)
            .await
    }

    async fn post(&self, t: &str) -> (StatusCode, String) {
        self.page("POST", "/quarantine/release", Some(format!("t={t}")))
            .await
    }

    fn state_of(&self, id: i64) -> QuarantineState {
        self.store
            .quarantine_item(id)
            .expect("read")
            .expect("item")
            .state
    }

    fn inbox(&self) -> usize {
        self.store
            .mail_list(self.alice, Some(Folder::Inbox))
            .expect("mail")
            .len()
    }
}

#[tokio::test]
async fn a_get_shows_the_message_and_only_a_post_releases_it_once() {
    let w = world().await;
    let it = w.item("alice@contoso.test", QuarantineKind::Spam);
    let t = w.token_for(&it);
    // However often the link is fetched (a scanner, a preview), nothing changes.
    for _ in 0..3 {
        let (status, page) = w.get(&t).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("<button type=\"submit\">Release</button>"),
            "{page}"
        );
        assert!(
            page.contains(&format!("<input type=\"hidden\" name=\"t\" value=\"{t}\">")),
            "{page}"
        );
        assert!(page.contains("<dd>mallory@fabrikam.test</dd>"), "{page}");
        // The sender's subject, escaped.
        assert!(
            page.contains("<dd>&lt;b&gt;cheap&lt;/b&gt; &quot;watches&quot; &amp; more</dd>"),
            "{page}"
        );
        assert!(!page.contains("<b>cheap"), "{page}");
    }
    assert_eq!(w.state_of(it.id), QuarantineState::Held);
    assert_eq!(w.inbox(), 0);

    let (status, page) = w.post(&t).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("The message has been released to the Inbox of alice@contoso.test."),
        "{page}"
    );
    assert_eq!(w.inbox(), 1);
    let released = w.store.quarantine_item(it.id).expect("read").expect("item");
    assert_eq!(released.state, QuarantineState::Released);
    assert_eq!(released.decided_by.as_deref(), Some("alice@contoso.test"));
    let events = w
        .store
        .trace_detail(None, &it.trace_id, Some("alice@contoso.test"))
        .expect("trace");
    let release = events
        .iter()
        .find(|e| e.event == "Release")
        .expect("Release");
    assert_eq!(
        release.detail,
        "Released from quarantine by alice@contoso.test"
    );

    // Once: the same link again is a 409, and files nothing more.
    let (status, page) = w.post(&t).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("This message was released already"), "{page}");
    let (status, _) = w.get(&t).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(w.inbox(), 1);
}

#[tokio::test]
async fn a_token_releases_no_other_item_and_no_other_recipients_copy() {
    let w = world().await;
    let alices = w.item("alice@contoso.test", QuarantineKind::Spam);
    let bobs = w.item("bob@contoso.test", QuarantineKind::Spam);
    let t = w.token_for(&alices);
    // Alice's token with bob's item id put in: the signature no longer holds.
    let mut claim = t.clone();
    claim.replace_range(2..18, &format!("{:016x}", bobs.id));
    // Signed with this server's secret, but for bob's copy naming alice: the copy is not
    // hers.
    let foreign = token::sign(
        &w.secret,
        &ReleaseClaim {
            item: bobs.id,
            recipient: "alice@contoso.test".into(),
            expires: bobs.expires,
        },
    );
    for bad in [claim.as_str(), foreign.as_str()] {
        for (status, page) in [w.get(bad).await, w.post(bad).await] {
            assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
            assert!(page.contains("This link is not valid"), "{page}");
        }
    }
    assert_eq!(w.state_of(bobs.id), QuarantineState::Held);
    assert_eq!(w.state_of(alices.id), QuarantineState::Held);
}

#[tokio::test]
async fn another_servers_changed_or_malformed_tokens_are_refused() {
    let w = world().await;
    let it = w.item("alice@contoso.test", QuarantineKind::Spam);
    let elsewhere = token::sign(
        &[8; 32],
        &ReleaseClaim {
            item: it.id,
            recipient: it.recipient.clone(),
            expires: it.expires,
        },
    );
    let mut changed = w.token_for(&it).into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
    let changed = String::from_utf8(changed).expect("hex");
    for bad in [elsewhere.as_str(), changed.as_str(), "", "not-a-token"] {
        for (status, page) in [w.get(bad).await, w.post(bad).await] {
            assert_eq!(status, StatusCode::FORBIDDEN, "{bad}: {page}");
        }
    }
    // No token at all, and a form far too long to be one.
    let (status, _) = w.page("GET", "/quarantine/release", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.post(&"a".repeat(100_000)).await;
    assert_ne!(status, StatusCode::OK);
    assert_eq!(w.state_of(it.id), QuarantineState::Held);
}

#[tokio::test]
async fn an_admin_only_item_is_not_released_even_by_a_token_with_this_servers_secret() {
    let w = world().await;
    let it = w.item("alice@contoso.test", QuarantineKind::Malware);
    let t = w.token_for(&it);
    for (status, page) in [w.get(&t).await, w.post(&t).await] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(
            page.contains("Only an administrator can release this message"),
            "{page}"
        );
    }
    assert_eq!(w.state_of(it.id), QuarantineState::Held);
    assert_eq!(w.inbox(), 0);
}

#[tokio::test]
async fn an_expired_link_or_a_deleted_item_releases_nothing() {
    let w = world().await;
    let it = w.item("alice@contoso.test", QuarantineKind::Spam);
    // A link that expires in an hour, long before the item.
    let short = token::sign(
        &w.secret,
        &ReleaseClaim {
            item: it.id,
            recipient: it.recipient.clone(),
            expires: w.clock.now().plus_seconds(3600),
        },
    );
    assert_eq!(w.get(&short).await.0, StatusCode::OK);
    w.clock.advance_seconds(3600);
    for (status, page) in [w.get(&short).await, w.post(&short).await] {
        assert_eq!(status, StatusCode::GONE, "{page}");
        assert!(page.contains("This link has expired"), "{page}");
    }
    assert_eq!(w.state_of(it.id), QuarantineState::Held);

    // Deleted by an admin: the digest's link answers 409.
    let bobs = w.item("bob@contoso.test", QuarantineKind::Spam);
    let t = w.token_for(&bobs);
    w.store
        .delete_quarantined(bobs.id, "admin@contoso.test", w.clock.now())
        .await
        .expect("deleted");
    let (status, page) = w.post(&t).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("This message was deleted"), "{page}");

    // Past the item's own expiry, even before the purge removes it.
    let t = w.token_for(&it);
    w.clock.advance_seconds(31 * 86_400);
    let (status, _) = w.post(&t).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(w.state_of(it.id), QuarantineState::Held);
    // And once purged.
    w.store
        .purge_quarantine(w.clock.now())
        .await
        .expect("purged");
    let (status, _) = w.post(&t).await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn the_page_speaks_the_digests_language() {
    let w = world().await;
    let it = w.item("alice@contoso.test", QuarantineKind::Spam);
    let t = w.token_for(&it);
    let (status, page) = w.get(&format!("{t}&l=ja")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for part in [
        "<html lang=\"ja\">",
        "<h1>検疫からメッセージを解放</h1>",
        "alice@contoso.test 宛てのこのメッセージは 迷惑メール として検疫に保留されています。",
        "<dt>件名</dt>",
        "<dd>2026/11/28 12:00 UTC</dd>",
        "<input type=\"hidden\" name=\"l\" value=\"ja\">",
        "<button type=\"submit\">解放</button>",
    ] {
        assert!(page.contains(part), "{part} in {page}");
    }
    let (status, page) = w
        .page("POST", "/quarantine/release", Some(format!("t={t}&l=ja")))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("メッセージを alice@contoso.test の受信トレイに解放しました。"),
        "{page}"
    );
    let (status, page) = w
        .page("POST", "/quarantine/release", Some(format!("t={t}&l=ja")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("このメッセージは既に解放されています"),
        "{page}"
    );
    // Refusals too; an unknown or overlong language is English.
    let (status, page) = w.get("0123&l=ja").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("このリンクは無効です"), "{page}");
    let (_, page) = w.get(&format!("0123&l={}", "x".repeat(10_000))).await;
    assert!(page.contains("This link is not valid"), "{page}");
}
