//! Moderation expiry with an injected clock: an unanswered request expires after two days, the
//! group recipient fails and the sender is told by NDR. The clock only moves when the test says.

use hato_core::clock::ManualClock;
use hato_core::directory::{
    DomainType, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef, Route,
};
use hato_core::{Address, Timestamp};
use hato_directory::Directory;
use hato_smtp::{AcceptedRecipient, Envelope, MessageContext};
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::inbound::Inbound;
use std::sync::Arc;
use tokio::sync::Notify;

fn mailbox(tenant: i64, address: &str) -> NewMailbox {
    NewMailbox {
        tenant_id: tenant,
        address: address.into(),
        display_name: address.into(),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1 << 30,
    }
}

async fn run_until_idle(agent: &Arc<DeliveryAgent>) {
    for _ in 0..20 {
        if agent.clone().step().await.unwrap() == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn unanswered_moderation_expires_after_two_days_and_the_sender_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let owner = store
        .create_mailbox(mailbox(t.id, "owner@contoso.test"))
        .await
        .unwrap();
    let member = store
        .create_mailbox(mailbox(t.id, "member@contoso.test"))
        .await
        .unwrap();
    let sender = store
        .create_mailbox(mailbox(t.id, "sender@contoso.test"))
        .await
        .unwrap();
    let mut settings = GroupSettings::defaults_for(GroupType::Distribution);
    settings.require_sender_authentication = false;
    settings.moderation_enabled = true;
    let group = store
        .create_group(NewGroup {
            tenant_id: t.id,
            name: "list".into(),
            address: Some("list@contoso.test".into()),
            group_type: GroupType::Distribution,
            settings,
            owners: vec![owner.id],
            members: vec![MemberRef::Mailbox(member.id)],
        })
        .await
        .unwrap();

    let start = Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let directory = Arc::new(Directory::new(store.clone()));
    let queued = Arc::new(Notify::new());
    let agent = DeliveryAgent::new(
        directory,
        clock.clone(),
        "mx.hato.test".into(),
        queued.clone(),
        90,
        None,
        hato_core::id::NodeId::new("node-test"),
    );
    let inbound = Inbound::new(store.clone(), clock.clone(), "mx.hato.test".into(), queued);
    let envelope = Envelope {
        sender: Some(Address::parse("sender@contoso.test").unwrap()),
        recipients: vec![
            AcceptedRecipient {
                address: Address::parse("list@contoso.test").unwrap(),
                tenant_id: t.id,
                route: Route::Group(group.id),
            }
            .into(),
        ],
        smtputf8: false,
        dsn: Default::default(),
    };
    let envelope = MessageContext::new(
        envelope,
        hato_core::ClientContext {
            helo: Some("client.test".into()),
            ..hato_core::ClientContext::new(
                "127.0.0.1:40000".parse().unwrap(),
                "127.0.0.1:25".parse().unwrap(),
            )
        },
        "ESMTP",
        b"Subject: wait for me\r\n\r\nbody\r\n".to_vec().into(),
    )
    .unwrap();
    let message = inbound.prepare(envelope).unwrap();
    let trace_id = message.trace_id.clone();
    store.enqueue(message).await.unwrap();

    run_until_idle(&agent).await;
    let held = store
        .moderation_queue(None, None, Some(ModerationState::Pending))
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].expires, start.plus_seconds(2 * 86_400));
    assert!(store.mail_list(member.id, None).unwrap().is_empty());

    // One second before the two days are up: still waiting.
    clock.advance_seconds(2 * 86_400 - 1);
    run_until_idle(&agent).await;
    assert_eq!(
        store
            .moderation_queue(None, None, Some(ModerationState::Pending))
            .unwrap()
            .len(),
        1
    );

    clock.advance_seconds(2);
    run_until_idle(&agent).await;
    assert!(
        store
            .moderation_queue(None, None, Some(ModerationState::Pending))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .moderation_queue(None, None, Some(ModerationState::Expired))
            .unwrap()
            .len(),
        1
    );
    let rows = store
        .trace(&TraceQuery {
            trace_id: Some(trace_id.clone()),
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "Failed");
    let detail = store.trace_detail(None, &trace_id, None).unwrap();
    assert!(
        detail
            .iter()
            .any(|e| e.event == "Fail" && e.detail.contains("RESOLVER.MOD.Expired")),
        "{detail:?}"
    );
    // The sender was told.
    let inbox = store.mail_list(sender.id, None).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "Undeliverable: wait for me");
    assert!(store.mail_list(member.id, None).unwrap().is_empty());
}
