//! The API's store reads run on tokio's blocking pool: a read that waits (every reader
//! connection busy, a directory index being rebuilt) holds up no worker, so requests that need
//! no read go on meanwhile.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hato_admin::{AppState, LoginLimiter, LoginLimits, router};
use hato_core::auth::Role;
use hato_core::{Clock, SystemClock};
use hato_store::{SqliteStore, Store, TenantStore, TokenInfo, TokenStore, hash_token};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tower::ServiceExt;

/// How long the test holds the store's readers at most: a safety net, so that a server which
/// does block its worker fails the test instead of hanging it.
const HOLD_AT_MOST: Duration = Duration::from_secs(20);

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
        // Nothing listens there: these tests make no lookups, and none may leave loopback.
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

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().uri(uri);
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::empty()).expect("request")
}

/// One worker, as when every worker of a busy server is taken: a handler that read the store on
/// it would stop every other request until the read ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_waiting_store_read_does_not_stall_other_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let operator = TokenInfo {
        role: Role::Operator,
        tenant_id: None,
        mailbox_id: None,
        expires: None,
    };
    store
        .add_token(&hash_token("operator"), operator)
        .await
        .expect("token");
    store.create_tenant("contoso").await.expect("tenant");
    let app = router(state(store.clone()));

    // Take every reader connection until released: any further read waits.
    let (held_tx, held_rx) = mpsc::channel();
    let timed_out = Arc::new(AtomicBool::new(false));
    let mut releases = Vec::new();
    let mut holders = Vec::new();
    for _ in 0..SqliteStore::READERS {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        releases.push(release_tx);
        let (store, held_tx, timed_out) = (store.clone(), held_tx.clone(), timed_out.clone());
        holders.push(std::thread::spawn(move || {
            store
                .read(|_| {
                    let _ = held_tx.send(());
                    if release_rx.recv_timeout(HOLD_AT_MOST).is_err() {
                        timed_out.store(true, Ordering::SeqCst);
                    }
                    Ok(())
                })
                .expect("holding a reader");
        }));
    }
    for _ in 0..SqliteStore::READERS {
        held_rx
            .recv_timeout(HOLD_AT_MOST)
            .expect("a holder took its reader");
    }

    // A request that reads (its token, then the tenants): it waits for a reader. Once it has
    // started, a request that needs no read (the OpenAPI document) is sent.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let slow = tokio::spawn({
        let app = app.clone();
        async move {
            let _ = started_tx.send(());
            app.oneshot(get("/api/v1/tenants", Some("operator"))).await
        }
    });
    started_rx.await.expect("the reading request started");
    let quick = tokio::spawn(app.clone().oneshot(get("/api/v1/openapi.json", None)))
        .await
        .expect("the document request ran")
        .expect("an answer");
    assert_eq!(quick.status(), StatusCode::OK);
    assert!(
        !timed_out.load(Ordering::SeqCst),
        "the document waited until the store's readers were free: a read blocked the worker"
    );
    assert!(!slow.is_finished(), "the reading request did not wait");

    // Released, the waiting read goes on and its request is answered.
    for r in releases {
        let _ = r.send(());
    }
    for h in holders {
        h.join().expect("holder");
    }
    let slow = slow
        .await
        .expect("the reading request ran")
        .expect("an answer");
    assert_eq!(slow.status(), StatusCode::OK);
    let body = axum::body::to_bytes(slow.into_body(), 1 << 20)
        .await
        .expect("body");
    let tenants: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(tenants, serde_json::json!([{ "name": "contoso" }]));
}
