//! The quarantine API over items the delivery agent held: a message to alice and bob, each
//! recipient held by a stage's quarantine verdict (malware for one message, spam for another),
//! queued and run through the real `DeliveryAgent`. The real `hato serve` cannot quarantine
//! anything until the content pipeline is wired in, so these run the router in-process over a
//! store the agent filled. Checked: what admins, users and recipient admins see and may do;
//! tenant isolation; release once (409 after); preview; delete.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hato_admin::{AppState, LoginLimiter, LoginLimits, router};
use hato_core::auth::Role;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::{Clock, Reason, Stage, SystemClock};
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;
use tower::ServiceExt;

fn state(store: Arc<SqliteStore>) -> AppState {
    let store: Arc<dyn Store> = store;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    AppState {
        directory: Arc::new(hato_directory::Directory::new(store.clone())),
        store,
        login: Arc::new(LoginLimiter::new(LoginLimits::default(), clock.clone())),
        block_list: Arc::new(hato_admin::BlockListService::new(
            "http://127.0.0.1:8025/delist",
            hato_admin::DelistLimits::default(),
            clock.clone(),
        )),
        clock,
        hostname: "mx.hato.test".into(),
        throttle: Arc::new(hato_protection::throttle::Throttle::new(Default::default())),
        // Nothing listens there: these tests make no lookups.
        resolver: Arc::new(
            hato_dns::HickoryResolver::new(&hato_dns::DnsSettings {
                servers: vec!["127.0.0.1:9".into()],
                ..Default::default()
            })
            .expect("resolver"),
        ),
        outbound: None,
        console: Default::default(),
        test_clock: None,
    }
}

struct World {
    _dir: tempfile::TempDir,
    app: axum::Router,
    store: Arc<SqliteStore>,
    bob: i64,
}

async fn token(store: &SqliteStore, name: &str, role: Role, tenant: Option<i64>, mb: Option<i64>) {
    store
        .add_token(
            &hash_token(name),
            TokenInfo {
                role,
                tenant_id: tenant,
                mailbox_id: mb,
                expires: None,
            },
        )
        .await
        .expect("token");
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let contoso = store.create_tenant("contoso").await.expect("tenant");
    let fabrikam = store.create_tenant("fabrikam").await.expect("tenant");
    store
        .add_domain("contoso.test", contoso.id, DomainType::Authoritative)
        .await
        .expect("domain");
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let m = store
            .create_mailbox(NewMailbox {
                tenant_id: contoso.id,
                address: format!("{name}@contoso.test"),
                display_name: name.into(),
                mailbox_type: MailboxType::User,
                aliases: vec![],
                attributes: MailboxAttributes::default(),
                quota_bytes: 1 << 30,
            })
            .await
            .expect("mailbox");
        ids.push(m.id);
    }
    token(&store, "operator", Role::Operator, None, None).await;
    token(
        &store,
        "contoso-admin",
        Role::TenantAdmin,
        Some(contoso.id),
        None,
    )
    .await;
    token(
        &store,
        "fabrikam-admin",
        Role::TenantAdmin,
        Some(fabrikam.id),
        None,
    )
    .await;
    token(
        &store,
        "recipient-admin",
        Role::RecipientAdmin,
        Some(contoso.id),
        None,
    )
    .await;
    token(&store, "alice", Role::User, Some(contoso.id), Some(ids[0])).await;
    token(&store, "bob", Role::User, Some(contoso.id), Some(ids[1])).await;

    // Two messages to alice and bob, every recipient held: malware, then spam.
    for (trace_id, kind, stage) in [
        ("malware-1", QuarantineKind::Malware, Stage::Malware),
        ("spam-1", QuarantineKind::Spam, Stage::Spam),
    ] {
        let rcpt = |name: &str, mailbox| NewRecipient {
            address: format!("{name}@contoso.test"),
            tenant_id: contoso.id,
            route: Route::Local(mailbox),
            extra_events: vec![],
            receive_reason: None,
            finished: None,
            stamp: String::new(),
            junk: false,
            quarantine: Some(QuarantineHold {
                kind,
                policy: "Default".into(),
                reason: Reason::new(stage, format!("{trace_id} found")),
                days: None,
                quarantine_policy: None,
            }),
            connector: None,
            dsn: Default::default(),
        };
        store
            .enqueue(NewMessage {
                trace_id: trace_id.into(),
                received: SystemClock.now(),
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some(trace_id.into()),
                content: format!(
                    "From: mallory@fabrikam.test\r\nSubject: {trace_id}\r\n\r\nthe text of {trace_id}\r\n"
                )
                .into_bytes(),
                spooled: None,
                recipients: vec![rcpt("alice", ids[0]), rcpt("bob", ids[1])],
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
    let dyn_store: Arc<dyn Store> = store.clone();
    let agent = DeliveryAgent::new(
        Arc::new(hato_directory::Directory::new(dyn_store)),
        Arc::new(SystemClock),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
        90,
        None,
        NodeId::new("node-test"),
    );
    agent.step().await.expect("step");
    World {
        _dir: dir,
        app: router(state(store.clone())),
        store,
        bob: ids[1],
    }
}

impl World {
    async fn ask(&self, method: Method, uri: &str, token: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        let answer = self.app.clone().oneshot(request).await.expect("answer");
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 24)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The listing's (recipient, kind) pairs, as `token` sees them.
    async fn list(&self, query: &str, token: &str) -> Vec<(String, String)> {
        let (status, v) = self
            .ask(Method::GET, &format!("/api/v1/quarantine{query}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let mut rows: Vec<(String, String)> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["recipient"].as_str().unwrap_or_default().into(),
                    i["kind"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    fn id(&self, recipient: &str, kind: QuarantineKind) -> i64 {
        self.store
            .quarantine_items(&QuarantineQuery {
                recipient: Some(recipient.into()),
                kind: Some(kind),
                ..Default::default()
            })
            .expect("items")
            .items[0]
            .id
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn who_sees_what() {
    let w = world().await;
    let all = pairs(&[
        ("alice@contoso.test", "malware"),
        ("alice@contoso.test", "spam"),
        ("bob@contoso.test", "malware"),
        ("bob@contoso.test", "spam"),
    ]);
    assert_eq!(w.list("", "operator").await, all);
    assert_eq!(w.list("", "contoso-admin").await, all);
    assert_eq!(
        w.list("?kind=malware&recipient=bob@contoso.test", "contoso-admin")
            .await,
        pairs(&[("bob@contoso.test", "malware")])
    );
    // A user: only their own, never malware.
    assert_eq!(
        w.list("", "bob").await,
        pairs(&[("bob@contoso.test", "spam")])
    );
    assert!(w.list("?kind=malware", "bob").await.is_empty());
    // Another tenant's admin sees none and cannot name contoso.
    assert!(w.list("", "fabrikam-admin").await.is_empty());
    let (status, _) = w
        .ask(
            Method::GET,
            "/api/v1/quarantine?tenant=contoso",
            "fabrikam-admin",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Recipient admins do not manage quarantine.
    let (status, v) = w
        .ask(Method::GET, "/api/v1/quarantine", "recipient-admin")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // Bad filters are named.
    let (status, v) = w
        .ask(Method::GET, "/api/v1/quarantine?kind=virus", "operator")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown kind virus"),
        "{v}"
    );

    let bob_malware = w.id("bob@contoso.test", QuarantineKind::Malware);
    let alice_spam = w.id("alice@contoso.test", QuarantineKind::Spam);
    let item = format!("/api/v1/quarantine/{bob_malware}");
    // The admin sees the item with its reason; bob is refused his own malware (403);
    // alice's spam is not bob's (404); another tenant's admin gets 404.
    let (status, v) = w.ask(Method::GET, &item, "contoso-admin").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "malware");
    assert_eq!(v["policy"], "Default");
    assert_eq!(v["tenant"], "contoso");
    assert_eq!(v["reason"]["stage"], "malware");
    assert_eq!(v["state"], "held");
    for (uri, token, expected) in [
        (item.clone(), "bob", StatusCode::FORBIDDEN),
        (format!("{item}/preview"), "bob", StatusCode::FORBIDDEN),
        (item.clone(), "fabrikam-admin", StatusCode::NOT_FOUND),
        (item.clone(), "alice", StatusCode::NOT_FOUND),
        (
            format!("/api/v1/quarantine/{alice_spam}"),
            "bob",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/quarantine/999999".into(),
            "operator",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, v) = w.ask(Method::GET, &uri, token).await;
        assert_eq!(status, expected, "{token} GET {uri}: {v}");
    }
}

#[tokio::test]
async fn a_user_cannot_release_malware_but_an_admin_can_once() {
    let w = world().await;
    let bob_malware = w.id("bob@contoso.test", QuarantineKind::Malware);
    let release = format!("/api/v1/quarantine/{bob_malware}/release");
    let (status, v) = w.ask(Method::POST, &release, "bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("only admins"),
        "{v}"
    );
    let (status, _) = w.ask(Method::POST, &release, "fabrikam-admin").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(w.store.mail_list(w.bob, None).expect("mail").is_empty());

    let (status, v) = w.ask(Method::POST, &release, "contoso-admin").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "released");
    assert_eq!(v["decided_by"], "tenant-admin of contoso");
    let inbox = w.store.mail_list(w.bob, Some(Folder::Inbox)).expect("mail");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "malware-1");
    let trace = w
        .store
        .trace_detail(None, "malware-1", Some("bob@contoso.test"))
        .expect("trace");
    let release_event = trace
        .iter()
        .find(|e| e.event == "Release")
        .expect("Release");
    assert!(release_event.detail.contains("tenant-admin of contoso"));

    let (status, v) = w.ask(Method::POST, &release, "contoso-admin").await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("released"),
        "{v}"
    );
    assert_eq!(w.store.mail_list(w.bob, None).expect("mail").len(), 1);
}

#[tokio::test]
async fn a_user_releases_and_deletes_their_own_spam() {
    let w = world().await;
    let bob_spam = w.id("bob@contoso.test", QuarantineKind::Spam);
    let (status, v) = w
        .ask(
            Method::GET,
            &format!("/api/v1/quarantine/{bob_spam}/preview"),
            "bob",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["text"]
            .as_str()
            .unwrap_or_default()
            .contains("the text of spam-1"),
        "{v}"
    );
    let headers = v["headers"].as_array().expect("headers");
    assert!(
        headers
            .iter()
            .any(|h| h["name"] == "Subject" && h["value"] == "spam-1"),
        "{v}"
    );

    let (status, v) = w
        .ask(
            Method::POST,
            &format!("/api/v1/quarantine/{bob_spam}/release"),
            "bob",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["decided_by"], "bob@contoso.test");
    assert_eq!(w.store.mail_list(w.bob, None).expect("mail").len(), 1);

    // Alice deletes her spam; its preview is then gone, a second delete is refused.
    let alice_spam = w.id("alice@contoso.test", QuarantineKind::Spam);
    let item = format!("/api/v1/quarantine/{alice_spam}");
    let (status, _) = w.ask(Method::DELETE, &item, "bob").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not bob's");
    let (status, v) = w.ask(Method::DELETE, &item, "alice").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "deleted");
    let (status, _) = w
        .ask(Method::GET, &format!("{item}/preview"), "alice")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.ask(Method::DELETE, &item, "alice").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = w
        .ask(Method::POST, &format!("{item}/release"), "alice")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_admin_releases_a_message_to_all_its_recipients() {
    let w = world().await;
    let bob_malware = w.id("bob@contoso.test", QuarantineKind::Malware);
    let uri = format!("/api/v1/quarantine/{bob_malware}/release-all");
    let (status, v) = w.ask(Method::POST, &uri, "bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, _) = w.ask(Method::POST, &uri, "fabrikam-admin").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, v) = w.ask(Method::POST, &uri, "contoso-admin").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut released: Vec<&str> = v["released"]
        .as_array()
        .expect("released")
        .iter()
        .map(|i| i["recipient"].as_str().unwrap_or_default())
        .collect();
    released.sort();
    assert_eq!(released, ["alice@contoso.test", "bob@contoso.test"], "{v}");
    assert_eq!(v["refused"], serde_json::json!([]));
    // Only that message: the spam copies are still held.
    assert_eq!(
        w.list("?state=held", "contoso-admin").await,
        pairs(&[("alice@contoso.test", "spam"), ("bob@contoso.test", "spam")])
    );
    // Again: nothing is left to release, nothing is filed twice.
    let (status, v) = w.ask(Method::POST, &uri, "contoso-admin").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["released"], serde_json::json!([]));
    assert_eq!(w.store.mail_list(w.bob, None).expect("mail").len(), 1);
}
