//! The RCPT decision is made inline, without the hop to a blocking thread, when the directory's
//! cache knows what it reads (the recipient's domain, the tenant's index) under the store's
//! current generation — and never from a stale answer: every directory change moves the
//! generation, so the next RCPT reads again and decides as the store says now.

use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::{Address, ClientContext};
use hato_directory::Directory;
use hato_smtp::{Decision, RcptVerdict, SmtpPolicy};
use hato_store::*;
use hato_transport::routing::DirectoryPolicy;
use std::sync::Arc;

fn client() -> ClientContext {
    ClientContext::new(
        "192.0.2.10:40000".parse().unwrap(),
        "127.0.0.1:25".parse().unwrap(),
    )
}

/// The verdict, and whether it was decided inline.
async fn rcpt(policy: &DirectoryPolicy, to: &str) -> (RcptVerdict, bool) {
    let sender = Address::parse("bob@fabrikam.test").unwrap();
    let to = Address::parse(to).unwrap();
    match policy.rcpt(&client(), Some(&sender), &to) {
        Decision::Ready(v) => (v, true),
        Decision::Pending(f) => (f.await, false),
    }
}

fn accepted(v: &RcptVerdict) -> Option<(i64, Route)> {
    match v {
        RcptVerdict::Accept(a) => Some((a.tenant_id, a.route)),
        RcptVerdict::Reject(_) => None,
    }
}

fn refusal(v: &RcptVerdict) -> String {
    match v {
        RcptVerdict::Reject(r) => r.reply.to_string(),
        other => panic!("accepted: {other:?}"),
    }
}

#[tokio::test]
async fn a_known_recipient_is_decided_inline_and_a_change_is_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let new_mailbox = |address: &str| NewMailbox {
        tenant_id: t.id,
        address: address.into(),
        display_name: address.into(),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1 << 20,
    };
    let alice = store
        .create_mailbox(new_mailbox("alice@contoso.test"))
        .await
        .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let policy = DirectoryPolicy::new(Arc::new(Directory::new(dyn_store)));

    // Cold: read from the store; warm: from memory, the same answer.
    let (v, inline) = rcpt(&policy, "alice@contoso.test").await;
    assert!(!inline, "nothing is cached before the first read");
    assert_eq!(accepted(&v), Some((t.id, Route::Local(alice.id))));
    let (v, inline) = rcpt(&policy, "alice@contoso.test").await;
    assert!(inline, "the second RCPT is decided from the cache");
    assert_eq!(accepted(&v), Some((t.id, Route::Local(alice.id))));
    // Another recipient of the same domain and tenant needs no read either.
    let (v, inline) = rcpt(&policy, "nobody@contoso.test").await;
    assert!(inline);
    assert_eq!(
        refusal(&v),
        "550 5.4.1 Recipient address rejected: Access denied"
    );

    // A domain no tenant holds: cached as such too.
    let (v, _) = rcpt(&policy, "carol@elsewhere.test").await;
    assert_eq!(refusal(&v), "550 5.7.1 Unable to relay");
    let (v, inline) = rcpt(&policy, "carol@elsewhere.test").await;
    assert!(inline);
    assert_eq!(refusal(&v), "550 5.7.1 Unable to relay");

    // A new mailbox: the very next RCPT reads again and accepts it.
    let dave = store
        .create_mailbox(new_mailbox("dave@contoso.test"))
        .await
        .unwrap();
    let (v, inline) = rcpt(&policy, "dave@contoso.test").await;
    assert!(
        !inline,
        "a directory change makes the next RCPT read the store"
    );
    assert_eq!(accepted(&v), Some((t.id, Route::Local(dave.id))));

    // The domain now taken by the tenant: accepted at once, not the cached refusal.
    store
        .add_domain("elsewhere.test", t.id, DomainType::InternalRelay)
        .await
        .unwrap();
    let (v, _) = rcpt(&policy, "carol@elsewhere.test").await;
    assert_eq!(accepted(&v), Some((t.id, Route::Relay)));

    // Removed: refused at once, not the cached acceptance.
    store.remove_domain("elsewhere.test").await.unwrap();
    let (v, _) = rcpt(&policy, "carol@elsewhere.test").await;
    assert_eq!(refusal(&v), "550 5.7.1 Unable to relay");
    store.remove_mailbox(dave.id).await.unwrap();
    let (v, _) = rcpt(&policy, "dave@contoso.test").await;
    assert_eq!(
        refusal(&v),
        "550 5.4.1 Recipient address rejected: Access denied"
    );
    let (v, inline) = rcpt(&policy, "dave@contoso.test").await;
    assert!(inline);
    assert_eq!(
        refusal(&v),
        "550 5.4.1 Recipient address rejected: Access denied"
    );
}

/// An outside sender chooses the recipient domains: many distinct ones are each refused
/// correctly, and a known one is still decided right among them.
#[tokio::test]
async fn many_unknown_domains_are_each_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::InternalRelay)
        .await
        .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let policy = DirectoryPolicy::new(Arc::new(Directory::new(dyn_store)));
    for i in 0..10_000 {
        let (v, _) = rcpt(&policy, &format!("x@d{i}.invalid")).await;
        assert_eq!(refusal(&v), "550 5.7.1 Unable to relay");
        if i % 1000 == 0 {
            let (v, _) = rcpt(&policy, "anyone@contoso.test").await;
            assert_eq!(accepted(&v), Some((t.id, Route::Relay)));
        }
    }
}
