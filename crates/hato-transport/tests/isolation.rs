//! One bad message or tenant never stalls delivery for the others: what fails for one item is
//! deferred (Pending, an attempt counted, a later next attempt, a `Defer` event saying why) and
//! the rest of the batch is delivered. Real store in a temporary directory, injected clock, the real delivery agent.
//!
//! In each test tenant A's message is queued first and breaks; tenant B's message, queued after
//! it and handled in the same step, must be delivered.

use hato_core::Timestamp;
use hato_core::clock::ManualClock;
use hato_core::directory::{
    DomainType, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef, Route,
};
use hato_directory::Directory;
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use std::sync::Arc;
use tokio::sync::Notify;

struct Tenant {
    id: i64,
    domain: &'static str,
    member: i64,
    sender: i64,
    list: i64,
    team: i64,
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    agent: Arc<DeliveryAgent>,
    a: Tenant,
    b: Tenant,
}

async fn tenant(store: &SqliteStore, name: &str, domain: &'static str) -> Tenant {
    let t = store.create_tenant(name).await.unwrap();
    store
        .add_domain(domain, t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let mailbox = |local: &str| NewMailbox {
        tenant_id: t.id,
        address: format!("{local}@{domain}"),
        display_name: local.into(),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1 << 30,
    };
    let member = store.create_mailbox(mailbox("member")).await.unwrap();
    let sender = store.create_mailbox(mailbox("sender")).await.unwrap();
    let group = |kind: GroupType, local: &str| {
        let mut settings = GroupSettings::defaults_for(kind);
        settings.require_sender_authentication = false;
        settings.auto_subscribe_new_members = true;
        NewGroup {
            tenant_id: t.id,
            name: local.into(),
            address: Some(format!("{local}@{domain}")),
            group_type: kind,
            settings,
            owners: vec![member.id],
            members: vec![MemberRef::Mailbox(member.id)],
        }
    };
    let list = store
        .create_group(group(GroupType::Distribution, "list"))
        .await
        .unwrap();
    let team = store
        .create_group(group(GroupType::M365, "team"))
        .await
        .unwrap();
    Tenant {
        id: t.id,
        domain,
        member: member.id,
        sender: sender.id,
        list: list.id,
        team: team.id,
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let a = tenant(&store, "contoso", "contoso.test").await;
    let b = tenant(&store, "fabrikam", "fabrikam.test").await;
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
    let dyn_store: Arc<dyn Store> = store.clone();
    let agent = DeliveryAgent::new(
        Arc::new(Directory::new(dyn_store)),
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
        90,
        None,
        hato_core::id::NodeId::new("node-test"),
    );
    World {
        _dir: dir,
        store,
        clock,
        agent,
        a,
        b,
    }
}

impl World {
    /// Queues a message from `from` to `to` (a local part of the tenant's domain); returns its
    /// trace id.
    async fn send(&self, from: &str, t: &Tenant, to: &str, route: Route, subject: &str) -> String {
        let trace_id = hato_core::id::new_trace_id(&*self.clock);
        self.store
            .enqueue(NewMessage {
                trace_id: trace_id.clone(),
                received: hato_core::Clock::now(&*self.clock),
                sender: from.into(),
                client_ip: "192.0.2.1".into(),
                helo: "client.test".into(),
                message_id: Some(format!("<{trace_id}@client.test>")),
                subject: Some(subject.into()),
                content: format!(
                    "From: {from}\r\nSubject: {subject}\r\nMessage-ID: <{trace_id}@client.test>\r\n\r\nbody\r\n"
                )
                .into_bytes(),
                recipients: vec![NewRecipient {
                    address: format!("{to}@{}", t.domain),
                    tenant_id: t.id,
                    route,
                    extra_events: vec![],
                    receive_reason: None,
                    quarantine: None,
                    finished: None,
                    stamp: String::new(),
                    junk: false,
                    connector: None,
                    dsn: Default::default(),
                }],
                spooled: None,
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                high_risk: false,
                receive_detail: "Received".into(),
                reports_on: vec![],
                dsn: Default::default(),
            })
            .await
            .unwrap();
        trace_id
    }

    async fn run_until_idle(&self) {
        for _ in 0..20 {
            if self.agent.clone().step().await.unwrap() == 0 {
                return;
            }
        }
        panic!("the agent never became idle");
    }

    fn events(&self, trace_id: &str, event: &str) -> Vec<String> {
        self.store
            .trace_detail(None, trace_id, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == event)
            .map(|e| e.detail)
            .collect()
    }

    /// The recipient's row in the queue listing (none once it left the queue).
    fn queued(&self, trace_id: &str) -> Option<QueueRow> {
        let mut q = QueueQuery::at(hato_core::Clock::now(&*self.clock));
        q.trace_id = Some(trace_id.into());
        self.store.queue(&q).unwrap().rows.into_iter().next()
    }

    fn status(&self, trace_id: &str, recipient: &str) -> String {
        self.store
            .trace(&TraceQuery {
                trace_id: Some(trace_id.into()),
                recipient: Some(recipient.into()),
                ..Default::default()
            })
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.status)
            .next()
            .unwrap_or_default()
    }

    fn subjects(&self, mailbox: i64) -> Vec<String> {
        self.store
            .mail_list(mailbox, None)
            .unwrap()
            .into_iter()
            .map(|m| m.subject)
            .collect()
    }

    async fn sql(&self, sql: String) {
        self.store
            .write(move |conn| Ok(conn.execute_batch(&sql)?))
            .await
            .unwrap();
    }

    fn recipient_id(&self, trace_id: &str) -> i64 {
        let trace_id = trace_id.to_string();
        self.store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id \
                     WHERE m.trace_id = ?1 ORDER BY r.id LIMIT 1",
                    [&trace_id],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    }
}

#[tokio::test]
async fn a_deleted_tenant_is_deferred_with_backoff_then_failed_with_an_ndr() {
    let w = world().await;
    // The sender is in the other tenant, so the final NDR has somewhere to go.
    let bad = w
        .send(
            "sender@fabrikam.test",
            &w.a,
            "list",
            Route::Group(w.a.list),
            "to a tenant that goes",
        )
        .await;
    let good = w
        .send(
            "sender@fabrikam.test",
            &w.b,
            "list",
            Route::Group(w.b.list),
            "to a tenant that stays",
        )
        .await;
    w.store.remove_tenant(w.a.id).await.unwrap();

    w.run_until_idle().await;
    assert_eq!(w.subjects(w.b.member), vec!["to a tenant that stays"]);
    assert_eq!(w.status(&good, "list@fabrikam.test"), "Expanded");
    assert_eq!(w.status(&bad, "list@contoso.test"), "Pending");
    let defers = w.events(&bad, "Defer");
    assert_eq!(defers.len(), 1, "{defers:?}");
    assert!(defers[0].contains("tenant"), "{defers:?}");
    let start = hato_core::Clock::now(&*w.clock);
    let row = w.queued(&bad).expect("queued");
    assert_eq!((row.status.as_str(), row.attempts), ("Retry", 1));
    assert_eq!(row.next_attempt, start.plus_seconds(60).to_rfc3339());
    let last = row.last_error.expect("a last error");
    assert_eq!((last.status, last.enhanced_status.as_str()), (451, "4.3.0"));
    assert!(last.text.contains("tenant"), "{last:?}");

    // No tight loop: nothing is retried before the backoff is over.
    w.run_until_idle().await;
    w.clock.advance_seconds(59);
    w.run_until_idle().await;
    assert_eq!(w.queued(&bad).map(|r| r.attempts), Some(1));
    w.clock.advance_seconds(2);
    w.run_until_idle().await;
    let row = w.queued(&bad).expect("queued");
    assert_eq!(row.attempts, 2);
    // The second wait is the schedule's second step.
    assert_eq!(row.next_attempt, start.plus_seconds(61 + 300).to_rfc3339());
    // The same error again: the row counts it, trace does not repeat it.
    assert_eq!(w.events(&bad, "Defer").len(), 1);

    // Until the message expires (48 hours after it arrived), then it fails, and the sender gets
    // an NDR.
    let mut hours = 0;
    while w.status(&bad, "list@contoso.test") == "Pending" && hours < 60 {
        w.clock.advance_seconds(3600);
        hours += 1;
        w.run_until_idle().await;
    }
    assert_eq!(hours, 48, "failed after {hours} hours");
    assert_eq!(w.status(&bad, "list@contoso.test"), "Failed");
    assert!(w.queued(&bad).is_none());
    assert_eq!(w.events(&bad, "Defer").len(), 1);
    let fail: Vec<TraceDetailRow> = w
        .store
        .trace_detail(None, &bad, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "Fail")
        .collect();
    assert!(
        fail.len() == 1
            && fail[0].status == Some(550)
            && fail[0].enhanced_status.as_deref() == Some("4.4.7")
            && fail[0].detail == "QUEUE.Expired; message expired",
        "{fail:?}"
    );
    let reason = fail[0].reason.as_ref().expect("a reason");
    assert_eq!(reason.stage, hato_core::Stage::Queue);
    // The last error is quoted for admins.
    assert!(reason.text.contains("tenant"), "{reason:?}");
    assert!(
        matches!(reason.figure_value("attempts"), Some(hato_core::reason::FigureValue::Integer(n)) if *n > 40),
        "{reason:?}"
    );
    // The sender heard after 4 hours that delivery was delayed (RFC 3461's default NOTIFY is
    // FAILURE,DELAY), then got the NDR.
    assert_eq!(
        w.subjects(w.b.sender),
        vec![
            "Undeliverable: to a tenant that goes",
            "Delivery delayed: to a tenant that goes"
        ]
    );
}

#[tokio::test]
async fn a_group_whose_directory_cannot_be_loaded_is_deferred() {
    let w = world().await;
    let bad = w
        .send(
            "x@outside.test",
            &w.a,
            "list",
            Route::Group(w.a.list),
            "broken",
        )
        .await;
    let good = w
        .send(
            "x@outside.test",
            &w.b,
            "list",
            Route::Group(w.b.list),
            "fine",
        )
        .await;
    // A group row the directory index cannot read (as a bad migration or a disk error leaves it).
    w.sql(format!(
        "UPDATE groups SET settings = 'not json' WHERE id = {}; \
         UPDATE tenant_directory_version SET version = version + 1 WHERE tenant_id = {};",
        w.a.list, w.a.id
    ))
    .await;
    w.run_until_idle().await;
    assert_eq!(w.subjects(w.b.member), vec!["fine"]);
    assert_eq!(w.status(&good, "list@fabrikam.test"), "Expanded");
    assert_eq!(w.status(&bad, "list@contoso.test"), "Pending");
    let defers = w.events(&bad, "Defer");
    assert!(
        defers.len() == 1 && defers[0].contains("settings"),
        "{defers:?}"
    );
    assert!(w.subjects(w.a.member).is_empty());
}

#[tokio::test]
async fn lost_content_defers_only_its_own_message() {
    let w = world().await;
    let bad = w
        .send(
            "x@outside.test",
            &w.a,
            "member",
            Route::Local(w.a.member),
            "lost",
        )
        .await;
    let good = w
        .send(
            "x@outside.test",
            &w.b,
            "list",
            Route::Group(w.b.list),
            "kept",
        )
        .await;
    w.sql(format!(
        "UPDATE messages SET content = NULL WHERE trace_id = '{bad}'"
    ))
    .await;
    w.run_until_idle().await;
    assert_eq!(w.subjects(w.b.member), vec!["kept"]);
    assert_eq!(w.status(&good, "member@fabrikam.test"), "Delivered");
    assert_eq!(w.status(&bad, "member@contoso.test"), "Pending");
    let defers = w.events(&bad, "Defer");
    assert!(
        defers.len() == 1 && defers[0].contains("lost its spooled content"),
        "{defers:?}"
    );
}

#[tokio::test]
async fn a_failing_delivery_write_is_rolled_back_alone() {
    let w = world().await;
    let bad = w
        .send(
            "x@outside.test",
            &w.a,
            "member",
            Route::Local(w.a.member),
            "refused by the database",
        )
        .await;
    let good = w
        .send(
            "x@outside.test",
            &w.b,
            "member",
            Route::Local(w.b.member),
            "same batch",
        )
        .await;
    // The write of A's delivery fails the way a UNIQUE conflict does.
    w.sql(format!(
        "CREATE TRIGGER refuse BEFORE INSERT ON mail_items WHEN NEW.mailbox_id = {} BEGIN \
         SELECT RAISE(ABORT, 'UNIQUE constraint failed: mail_items.recipient_id'); END;",
        w.a.member
    ))
    .await;
    w.run_until_idle().await;
    assert_eq!(w.subjects(w.b.member), vec!["same batch"]);
    assert_eq!(w.status(&good, "member@fabrikam.test"), "Delivered");
    assert_eq!(w.status(&bad, "member@contoso.test"), "Pending");
    let defers = w.events(&bad, "Defer");
    assert!(
        defers.len() == 1 && defers[0].contains("UNIQUE constraint failed"),
        "{defers:?}"
    );

    // Once the cause is gone, the retry delivers it.
    w.sql("DROP TRIGGER refuse".into()).await;
    w.clock.advance_seconds(61);
    w.run_until_idle().await;
    assert_eq!(w.subjects(w.a.member), vec!["refused by the database"]);
    assert_eq!(w.status(&bad, "member@contoso.test"), "Delivered");
}

#[tokio::test]
async fn a_group_item_filed_before_a_crash_is_recognised() {
    let w = world().await;
    let bad = w
        .send(
            "x@outside.test",
            &w.a,
            "team",
            Route::Group(w.a.team),
            "filed twice?",
        )
        .await;
    let good = w
        .send(
            "x@outside.test",
            &w.b,
            "list",
            Route::Group(w.b.list),
            "after it",
        )
        .await;
    // The state a crash between filing and routing leaves: the item is filed, the group
    // recipient still Pending.
    let rcpt = w.recipient_id(&bad);
    w.sql(format!(
        "INSERT INTO conversations(id, group_id, topic, normalized, last_activity) \
           VALUES (900, {team}, 'filed twice?', 'filed twice?', 1); \
         INSERT INTO group_items(group_id, conversation_id, blob, received, from_header, subject, size, message_id, recipient_id) \
           VALUES ({team}, 900, 'x', 1, 'x@outside.test', 'filed twice?', 1, '{bad}@client.test', {rcpt});",
        team = w.a.team
    )).await;
    w.run_until_idle().await;
    assert_eq!(w.subjects(w.b.member), vec!["after it"]);
    assert_eq!(w.status(&good, "list@fabrikam.test"), "Expanded");
    // A's routing completed: one item in the group mailbox, the subscriber's copy delivered.
    assert_eq!(w.status(&bad, "team@contoso.test"), "Expanded");
    assert_eq!(w.store.group_items(w.a.team, None).unwrap().len(), 1);
    assert_eq!(w.subjects(w.a.member), vec!["filed twice?"]);
    assert!(w.events(&bad, "Defer").is_empty());
}
