//! Quarantine at delivery: a stage's quarantine verdict for one recipient, recorded in the
//! message context, committed through `Inbound` and carried out by the `DeliveryAgent`. The
//! quarantined recipient is not delivered and gets a quarantine item and a `Quarantine` trace
//! event; the message's other recipient is delivered (per-recipient outcomes). Release files
//! the held copy in the Inbox once; expiry removes the item and, with it, the content nothing
//! else needs. The real store, commit and agent, with a clock that moves only when told.

use hato_core::clock::ManualClock;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::message::{Action, Envelope, QuarantineKind, Recipient, RecipientVerdict};
use hato_core::{Address, ClientContext, Clock, MessageContext, Reason, Stage, Timestamp};
use hato_directory::Directory;
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::inbound::Inbound;
use std::sync::Arc;
use tokio::sync::Notify;

const DAY: i64 = 86_400;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    agent: Arc<DeliveryAgent>,
    inbound: Inbound,
    tenant: i64,
    alice: i64,
    bob: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
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
            .unwrap();
        ids.push(m.id);
    }
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
    let dyn_store: Arc<dyn Store> = store.clone();
    let agent = DeliveryAgent::new(
        Arc::new(Directory::new(dyn_store.clone())),
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
        90,
        None,
        NodeId::new("node-test"),
    );
    let inbound = Inbound::new(
        dyn_store,
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
    );
    World {
        _dir: dir,
        store,
        clock,
        agent,
        inbound,
        tenant: t.id,
        alice: ids[0],
        bob: ids[1],
    }
}

fn malware_reason() -> Reason {
    Reason::new(
        Stage::Malware,
        "Malware: \"Eicar-Test-Signature\" was detected in attachment eicar.com",
    )
    .rule("Eicar-Test-Signature")
}

impl World {
    /// Commits a message to alice and bob through `Inbound`; `held` gets a verdict for each
    /// (index, kind) pair, as the content stages record it. Returns the trace id.
    async fn receive(&self, held: &[(usize, QuarantineKind)]) -> String {
        let rcpt = |name: &str, mailbox| Recipient {
            address: Address::parse(&format!("{name}@contoso.test")).unwrap(),
            tenant_id: self.tenant,
            route: Route::Local(mailbox),
            verdicts: vec![],
            content: Default::default(),
            dsn: Default::default(),
        };
        let mut message = MessageContext::new(
            Envelope {
                sender: Address::parse("mallory@fabrikam.test").ok(),
                recipients: vec![rcpt("alice", self.alice), rcpt("bob", self.bob)],
                smtputf8: false,
                dsn: Default::default(),
            },
            ClientContext::new(
                "192.0.2.1:40000".parse().unwrap(),
                "192.0.2.2:25".parse().unwrap(),
            ),
            "ESMTP",
            b"From: mallory@fabrikam.test\r\nSubject: invoice\r\n\r\nX5O!P%@AP\r\n"
                .to_vec()
                .into(),
        )
        .unwrap();
        for (index, kind) in held {
            assert!(message.record(
                *index,
                RecipientVerdict {
                    action: Action::Quarantine {
                        kind: *kind,
                        policy: "Default".into(),
                    },
                    reason: malware_reason(),
                },
            ));
        }
        let queued = self.inbound.prepare(message).unwrap();
        let trace_id = queued.trace_id.clone();
        self.store.enqueue(queued).await.unwrap();
        trace_id
    }

    fn events(&self, trace_id: &str, rcpt: &str) -> Vec<String> {
        self.store
            .trace_detail(None, trace_id, Some(rcpt))
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    /// Blob garbage collection, with no minimum age (it blocks: off the runtime's thread).
    async fn collect_garbage(&self) -> (usize, usize) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.collect_garbage(std::time::Duration::ZERO))
            .await
            .unwrap()
            .unwrap()
    }

    fn items(&self) -> Vec<QuarantineItem> {
        self.store
            .quarantine_items(&QuarantineQuery::default())
            .unwrap()
            .items
    }
}

#[tokio::test]
async fn a_quarantined_recipient_is_held_and_the_other_delivered() {
    let w = world().await;
    let trace_id = w.receive(&[(1, QuarantineKind::Malware)]).await;
    w.agent.clone().step().await.unwrap();

    // Alice is delivered; bob is not.
    assert_eq!(w.store.mail_list(w.alice, None).unwrap().len(), 1);
    assert!(w.store.mail_list(w.bob, None).unwrap().is_empty());
    assert_eq!(
        w.events(&trace_id, "alice@contoso.test"),
        ["Receive", "Deliver"]
    );
    assert_eq!(
        w.events(&trace_id, "bob@contoso.test"),
        ["Receive", "Malware", "Quarantine"]
    );
    let detail = w
        .store
        .trace_detail(None, &trace_id, Some("bob@contoso.test"))
        .unwrap();
    let quarantine = &detail[2];
    assert_eq!(quarantine.reason, Some(malware_reason()));
    assert!(
        quarantine.detail.contains("malware") && quarantine.detail.contains("Default"),
        "{}",
        quarantine.detail
    );

    // One item, for bob, with what the stage decided and the default 30 days.
    let items = w.items();
    assert_eq!(items.len(), 1, "{items:?}");
    let it = &items[0];
    assert_eq!(it.recipient, "bob@contoso.test");
    assert_eq!(it.tenant_id, w.tenant);
    assert_eq!(it.mailbox_id, Some(w.bob));
    assert_eq!(it.sender, "mallory@fabrikam.test");
    assert_eq!(it.subject, "invoice");
    assert_eq!(it.kind, QuarantineKind::Malware);
    assert_eq!(it.policy, "Default");
    assert_eq!(it.reason, Some(malware_reason()));
    assert_eq!(it.state, QuarantineState::Held);
    assert_eq!(it.trace_id, trace_id);
    assert_eq!(it.expires, w.clock.now().plus_seconds(30 * DAY));
    // The held copy is the stored form, as a mailbox would have received it.
    let content = w.store.blob(it.blob.as_deref().unwrap()).unwrap();
    assert!(content.starts_with(b"Return-Path: <mallory@fabrikam.test>\r\n"));
    assert!(content.ends_with(b"X5O!P%@AP\r\n"));

    // Another step does nothing more: the recipient is no longer pending.
    assert_eq!(w.agent.clone().step().await.unwrap(), 0);
    assert_eq!(w.items().len(), 1);
    // No NDR: the quarantined recipient owes none.
    assert!(w.store.due_ndrs(w.clock.now(), 10).unwrap().is_empty());
}

#[tokio::test]
async fn retention_is_per_kind() {
    let w = world().await;
    w.agent
        .set_quarantine_retention_days(QuarantineKind::Spam, 15);
    w.receive(&[(0, QuarantineKind::Spam), (1, QuarantineKind::Malware)])
        .await;
    w.agent.clone().step().await.unwrap();
    let items = w.items();
    let expiry = |kind| items.iter().find(|i| i.kind == kind).unwrap().expires;
    assert_eq!(
        expiry(QuarantineKind::Spam),
        w.clock.now().plus_seconds(15 * DAY)
    );
    assert_eq!(
        expiry(QuarantineKind::Malware),
        w.clock.now().plus_seconds(30 * DAY)
    );
}

#[tokio::test]
async fn release_delivers_to_the_inbox_once_with_a_trace_event() {
    let w = world().await;
    let trace_id = w.receive(&[(1, QuarantineKind::Malware)]).await;
    w.agent.clone().step().await.unwrap();
    let id = w.items()[0].id;
    w.clock.advance_seconds(3600);

    let released = w
        .store
        .release_quarantined(id, "admin@contoso.test", w.clock.now())
        .await
        .unwrap();
    assert_eq!(released.state, QuarantineState::Released);
    assert_eq!(released.decided_by.as_deref(), Some("admin@contoso.test"));
    assert_eq!(released.decided, Some(w.clock.now()));
    let inbox = w.store.mail_list(w.bob, Some(Folder::Inbox)).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "invoice");
    let detail = w
        .store
        .trace_detail(None, &trace_id, Some("bob@contoso.test"))
        .unwrap();
    let kinds: Vec<&str> = detail.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["Receive", "Malware", "Quarantine", "Release", "Deliver"]
    );
    assert!(detail[3].detail.contains("admin@contoso.test"));

    // A second release and a release after deletion are refused; nothing is filed twice.
    let again = w
        .store
        .release_quarantined(id, "admin@contoso.test", w.clock.now())
        .await;
    assert!(
        matches!(&again, Err(StoreError::InUse(m)) if m.contains("released")),
        "{again:?}"
    );
    w.store
        .delete_quarantined(id, "admin@contoso.test", w.clock.now())
        .await
        .unwrap();
    let after_delete = w
        .store
        .release_quarantined(id, "admin@contoso.test", w.clock.now())
        .await;
    assert!(
        matches!(&after_delete, Err(StoreError::InUse(m)) if m.contains("deleted")),
        "{after_delete:?}"
    );
    assert_eq!(w.store.mail_list(w.bob, None).unwrap().len(), 1);
}

#[tokio::test]
async fn expiry_purges_items_and_keeps_content_still_needed() {
    let w = world().await;
    // Both recipients held: two items naming one blob, no mailbox item names it.
    w.receive(&[(0, QuarantineKind::Spam), (1, QuarantineKind::Malware)])
        .await;
    w.agent
        .set_quarantine_retention_days(QuarantineKind::Spam, 15);
    w.agent.clone().step().await.unwrap();
    let items = w.items();
    assert_eq!(items.len(), 2);
    let blob = items[0].blob.clone().unwrap();
    assert_eq!(items[1].blob.as_deref(), Some(blob.as_str()));

    // Deleting one item keeps the content the other needs.
    let spam = items
        .iter()
        .find(|i| i.kind == QuarantineKind::Spam)
        .unwrap();
    w.store
        .delete_quarantined(spam.id, "admin", w.clock.now())
        .await
        .unwrap();
    w.collect_garbage().await;
    assert!(
        w.store.blob(&blob).is_ok(),
        "still needed by the malware item"
    );

    // Day 16: the spam item expired, the malware item is kept (30 days).
    w.clock.advance_seconds(16 * DAY);
    assert_eq!(w.store.purge_quarantine(w.clock.now()).await.unwrap(), 1);
    w.collect_garbage().await;
    assert_eq!(w.items().len(), 1);
    assert!(w.store.blob(&blob).is_ok());

    // Day 31: gone, and its content with it.
    w.clock.advance_seconds(15 * DAY);
    assert_eq!(w.store.purge_quarantine(w.clock.now()).await.unwrap(), 1);
    let (rows, _) = w.collect_garbage().await;
    assert_eq!(rows, 1);
    assert!(w.items().is_empty());
    assert!(w.store.blob(&blob).is_err());
}

#[tokio::test]
async fn a_released_copy_keeps_its_content_after_the_item_expires() {
    let w = world().await;
    w.receive(&[(0, QuarantineKind::Malware), (1, QuarantineKind::Malware)])
        .await;
    w.agent.clone().step().await.unwrap();
    let items = w.items();
    let blob = items[0].blob.clone().unwrap();
    let bob_item = items.iter().find(|i| i.mailbox_id == Some(w.bob)).unwrap();
    w.store
        .release_quarantined(bob_item.id, "admin", w.clock.now())
        .await
        .unwrap();
    w.clock.advance_seconds(31 * DAY);
    assert_eq!(w.store.purge_quarantine(w.clock.now()).await.unwrap(), 2);
    w.collect_garbage().await;
    // Bob's Inbox names the blob: it stays.
    let inbox = w.store.mail_list(w.bob, None).unwrap();
    assert_eq!(inbox[0].blob, blob);
    assert!(w.store.blob(&blob).is_ok());
}
