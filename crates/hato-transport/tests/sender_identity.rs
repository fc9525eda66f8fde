//! A sender's directory identity comes from authentication only. With an authenticated
//! identity (what SMTP AUTH or an attributed connector will hand the routing functions), the
//! group's owner bypasses moderation and an allowed sender passes the accept list; the same
//! envelope address without it is an outside sender. The identity the RCPT decision used is
//! queued with the message, and routing at delivery uses that one.

use hato_core::client::{AuthMethod, AuthenticatedIdentity, ClientContext, Principal};
use hato_core::clock::ManualClock;
use hato_core::directory::{
    DomainType, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef, Route,
};
use hato_core::{Address, Timestamp};
use hato_directory::Directory;
use hato_smtp::{AcceptedRecipient, Envelope, MessageContext, RcptVerdict};
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::inbound::Inbound;
use hato_transport::routing::DirectoryPolicy;
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

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    tenant: i64,
    owner: i64,
    member: i64,
    allowed: i64,
    moderated: i64,
    board: i64,
}

/// contoso: owner@ owns moderated@ (moderation on, open to outside senders) and board@ (accepts
/// only allowed@, sender authentication required as by Exchange's default); member@ is in both.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for a in ["owner", "member", "allowed"] {
        let m = store
            .create_mailbox(mailbox(t.id, &format!("{a}@contoso.test")))
            .await
            .unwrap();
        ids.push(m.id);
    }
    let (owner, member, allowed) = (ids[0], ids[1], ids[2]);
    let group = |address: &str, settings: GroupSettings| NewGroup {
        tenant_id: t.id,
        name: address.into(),
        address: Some(address.into()),
        group_type: GroupType::Distribution,
        settings,
        owners: vec![owner],
        members: vec![MemberRef::Mailbox(member)],
    };
    let mut s = GroupSettings::defaults_for(GroupType::Distribution);
    s.moderation_enabled = true;
    // Outside senders may send, moderated.
    s.require_sender_authentication = false;
    let moderated = store
        .create_group(group("moderated@contoso.test", s))
        .await
        .unwrap()
        .id;
    let mut s = GroupSettings::defaults_for(GroupType::Distribution);
    s.accept_messages_only_from = vec![MemberRef::Mailbox(allowed)];
    let board = store
        .create_group(group("board@contoso.test", s))
        .await
        .unwrap()
        .id;
    World {
        _dir: dir,
        directory: Arc::new(Directory::new(store.clone())),
        store,
        tenant: t.id,
        owner,
        member,
        allowed,
        moderated,
        board,
    }
}

fn addr(a: &str) -> Address {
    Address::parse(a).unwrap()
}

fn code(v: &RcptVerdict) -> String {
    match v {
        RcptVerdict::Accept(_) => "250".into(),
        RcptVerdict::Reject(r) => r.reply.to_string().chars().take(9).collect(),
    }
}

#[tokio::test]
async fn the_rcpt_decision_trusts_only_the_authenticated_identity() {
    let w = world().await;
    let policy = DirectoryPolicy::new(w.directory.clone());
    let board = addr("board@contoso.test");
    let allowed = addr("allowed@contoso.test");
    let owner = addr("owner@contoso.test");
    // Authenticated as the allowed sender: accepted.
    let v = policy.check_recipient_as(Some(&allowed), Some(w.allowed), &board);
    assert_eq!(code(&v), "250");
    // Its address over direct send: not authenticated (5.7.133), whatever MAIL FROM says.
    assert_eq!(
        code(&policy.check_recipient_as(Some(&allowed), None, &board)),
        "550 5.7.1"
    );
    // The refusal says why: the group's setting that refused, for the log (and later the
    // connection log); the client gets the reply only.
    let refusal = match policy.check_recipient_as(Some(&allowed), None, &board) {
        RcptVerdict::Reject(r) => r,
        _ => unreachable!(),
    };
    assert!(
        refusal.reply.to_string().starts_with("550 5.7.133"),
        "{refusal}"
    );
    assert_eq!(refusal.reason.stage, hato_core::Stage::GroupRestriction);
    assert_eq!(
        refusal.reason.rule.as_deref(),
        Some("board@contoso.test: RequireSenderAuthenticationEnabled")
    );
    // Authenticated as someone else, claiming the allowed address: not in the list (5.7.124).
    let refusal = match policy.check_recipient_as(Some(&allowed), Some(w.owner), &board) {
        RcptVerdict::Reject(r) => r,
        _ => panic!("accepted a sender that is not on the list"),
    };
    assert!(
        refusal.reply.to_string().starts_with("550 5.7.124"),
        "{refusal}"
    );
    assert_eq!(
        refusal.reason.rule.as_deref(),
        Some("board@contoso.test: AcceptMessagesOnlyFromSendersOrMembers")
    );
    // A domain no tenant accepts, from a sender no tenant has: the recipient stage says which.
    let outside = addr("someone@outside.test");
    match policy.check_recipient_as(Some(&outside), None, &addr("x@elsewhere.test")) {
        RcptVerdict::Reject(r) => {
            assert_eq!(r.reply, hato_core::reply::UNABLE_TO_RELAY);
            assert_eq!(r.reason.stage, hato_core::Stage::Recipient);
            assert!(r.reason.text.contains("elsewhere.test"), "{r}");
        }
        _ => panic!("relayed"),
    }
    // From a tenant's domain, relay needs that tenant's on-premises connector (issue 10): no
    // connector attributes a client here, so Exchange's 5.7.64.
    match policy.check_recipient_as(Some(&allowed), None, &addr("x@elsewhere.test")) {
        RcptVerdict::Reject(r) => {
            assert_eq!(r.reply, hato_core::reply::TENANT_ATTRIBUTION_RELAY_DENIED);
            assert_eq!(r.reason.stage, hato_core::Stage::Connector);
        }
        _ => panic!("relayed"),
    }
    // The owner, authenticated, may send to the moderated group.
    let v = policy.check_recipient_as(Some(&owner), Some(w.owner), &addr("moderated@contoso.test"));
    assert_eq!(code(&v), "250");
}

async fn run_until_idle(agent: &Arc<DeliveryAgent>) {
    for _ in 0..20 {
        if agent.clone().step().await.unwrap() == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn routing_at_delivery_uses_the_identity_queued_with_the_message() {
    let w = world().await;
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
    let queued = Arc::new(Notify::new());
    let agent = DeliveryAgent::new(
        w.directory.clone(),
        clock.clone(),
        "mx.hato.test".into(),
        queued.clone(),
        90,
        None,
        hato_core::id::NodeId::new("node-test"),
    );
    let inbound = Inbound::new(w.store.clone(), clock, "mx.hato.test".into(), queued);
    let send = |to: &str, group: i64, subject: &str, identity: Option<i64>| {
        let envelope = Envelope {
            sender: Some(addr("owner@contoso.test")),
            recipients: vec![
                AcceptedRecipient {
                    address: addr(to),
                    tenant_id: w.tenant,
                    route: Route::Group(group),
                }
                .into(),
            ],
            smtputf8: false,
            dsn: Default::default(),
        };
        let envelope = MessageContext::new(
            envelope,
            // The identity comes with the session's client context, as SMTP AUTH will set it.
            ClientContext {
                helo: Some("client.test".into()),
                identity: identity.map(|m| AuthenticatedIdentity {
                    tenant: w.tenant,
                    principal: Principal::Mailbox(m),
                    address: addr("owner@contoso.test"),
                    method: AuthMethod::SmtpAuth,
                }),
                ..ClientContext::new(
                    "127.0.0.1:2525".parse().unwrap(),
                    "127.0.0.1:25".parse().unwrap(),
                )
            },
            "ESMTPA",
            format!("Subject: {subject}\r\n\r\nbody\r\n")
                .into_bytes()
                .into(),
        )
        .unwrap();
        let message = inbound.prepare(envelope).unwrap();
        assert_eq!(message.authenticated, identity);
        message
    };
    // The authenticated owner's message skips moderation.
    w.store
        .enqueue(send(
            "moderated@contoso.test",
            w.moderated,
            "from the owner",
            Some(w.owner),
        ))
        .await
        .unwrap();
    run_until_idle(&agent).await;
    let pending = || {
        w.store
            .moderation_queue(None, None, Some(ModerationState::Pending))
            .unwrap()
    };
    assert!(pending().is_empty());
    let inbox = w.store.mail_list(w.member, None).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "from the owner");
    // The same envelope without an identity (queued, say, while the rules were off): held.
    w.store
        .enqueue(send(
            "moderated@contoso.test",
            w.moderated,
            "anonymous",
            None,
        ))
        .await
        .unwrap();
    run_until_idle(&agent).await;
    assert_eq!(pending().len(), 1);
    assert_eq!(w.store.mail_list(w.member, None).unwrap().len(), 1);
    // The authenticated allowed sender passes board@'s accept list at delivery too; an
    // anonymous message to it fails there (its RCPT would have been refused).
    let mut m = send(
        "board@contoso.test",
        w.board,
        "from the allowed sender",
        Some(w.allowed),
    );
    m.sender = "allowed@contoso.test".into();
    w.store.enqueue(m).await.unwrap();
    run_until_idle(&agent).await;
    let inbox = w.store.mail_list(w.member, None).unwrap();
    assert!(
        inbox.iter().any(|i| i.subject == "from the allowed sender"),
        "{inbox:?}"
    );
    let m = send("board@contoso.test", w.board, "forged", None);
    let trace_id = m.trace_id.clone();
    w.store.enqueue(m).await.unwrap();
    run_until_idle(&agent).await;
    assert!(
        !w.store
            .mail_list(w.member, None)
            .unwrap()
            .iter()
            .any(|i| i.subject == "forged")
    );
    let rows = w
        .store
        .trace(&TraceQuery {
            trace_id: Some(trace_id),
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(rows[0].status, "Failed", "{rows:?}");
}
