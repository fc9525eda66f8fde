//! The agent's steps against a real store: threading's store lookups stay bounded, and every
//! write of a step can be replayed (a retry after a crash, by whichever node takes the work once
//! the crashed one's lease has run out) without doing anything twice.

use super::*;
use hato_core::clock::ManualClock;
use hato_core::directory::{
    DomainType, GroupId, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef,
};
use hato_store::{
    Conversation, GroupItem, GroupMailboxStore, GroupStore as _, MailStore as _, MailboxStore as _,
    NewGroup, NewMailbox, NewRecipient, Pending, QueueStore as _, SqliteStore, TenantStore as _,
    TraceStore as _,
};
use std::sync::atomic::{AtomicUsize, Ordering};

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    agent: Arc<DeliveryAgent>,
    tenant: i64,
    member: i64,
    team: i64,
    moderated: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let mailbox = |local: &str| NewMailbox {
        tenant_id: t.id,
        address: format!("{local}@contoso.test"),
        display_name: local.into(),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1 << 30,
    };
    let member = store.create_mailbox(mailbox("member")).await.unwrap();
    let moderator = store.create_mailbox(mailbox("moderator")).await.unwrap();
    let group = |kind: GroupType, local: &str, moderated: bool| {
        let mut settings = GroupSettings::defaults_for(kind);
        settings.require_sender_authentication = false;
        settings.auto_subscribe_new_members = true;
        settings.moderation_enabled = moderated;
        NewGroup {
            tenant_id: t.id,
            name: local.into(),
            address: Some(format!("{local}@contoso.test")),
            group_type: kind,
            settings,
            owners: vec![moderator.id],
            members: vec![MemberRef::Mailbox(member.id)],
        }
    };
    let team = store
        .create_group(group(GroupType::M365, "team", false))
        .await
        .unwrap();
    let moderated = store
        .create_group(group(GroupType::Distribution, "moderated", true))
        .await
        .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
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
        tenant: t.id,
        member: member.id,
        team: team.id,
        moderated: moderated.id,
    }
}

impl World {
    async fn send(&self, to: &str, route: Route, headers: &str) -> String {
        let trace_id = hato_core::id::new_trace_id(self.agent.clock.as_ref());
        self.store
            .enqueue(NewMessage {
                trace_id: trace_id.clone(),
                received: self.agent.clock.now(),
                sender: "x@outside.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "client.test".into(),
                message_id: None,
                subject: None,
                content: format!("From: x@outside.test\r\n{headers}\r\nbody\r\n").into_bytes(),
                recipients: vec![NewRecipient {
                    address: to.into(),
                    tenant_id: self.tenant,
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
                receive_detail: "Received".into(),
                reports_on: vec![],
                spooled: None,
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                dsn: Default::default(),
                high_risk: false,
            })
            .await
            .unwrap();
        trace_id
    }

    fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.store
            .read(|conn| Ok(conn.query_row(&sql, [], |r| r.get(0))?))
            .unwrap()
    }

    /// One step's preparation (it takes leases, so it blocks on the store's writer).
    async fn prepare(&self) -> Prepared {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || agent.prepare_deliveries())
            .await
            .unwrap()
            .unwrap()
    }

    async fn group_work(&self) -> Vec<GroupWork> {
        let prepared = self.prepare().await;
        assert!(prepared.deferrals.is_empty());
        prepared.groups
    }

    /// The node that prepared the work died: its leases run out and the work is due again.
    fn lease_runs_out(&self) {
        self.clock.advance_seconds(LEASE_SECS + 1);
    }
}

/// A group mailbox store that counts the reference lookups made through it.
struct Counting {
    inner: Arc<SqliteStore>,
    by_message_id: AtomicUsize,
}

impl GroupMailboxStore for Counting {
    fn file_group_item(&self, item: NewGroupItem) -> Pending<bool> {
        self.inner.file_group_item(item)
    }
    fn conversation_of_message(
        &self,
        group: GroupId,
        message_id: &str,
    ) -> hato_store::Result<Option<i64>> {
        self.by_message_id.fetch_add(1, Ordering::Relaxed);
        self.inner.conversation_of_message(group, message_id)
    }
    fn conversation_by_subject(
        &self,
        group: GroupId,
        normalized: &str,
    ) -> hato_store::Result<Option<i64>> {
        self.inner.conversation_by_subject(group, normalized)
    }
    fn group_calendar_entries(
        &self,
        group: GroupId,
        uids: &[String],
    ) -> hato_store::Result<Vec<(String, String)>> {
        self.inner.group_calendar_entries(group, uids)
    }
    fn conversations(&self, group: GroupId) -> hato_store::Result<Vec<Conversation>> {
        self.inner.conversations(group)
    }
    fn group_items(
        &self,
        group: GroupId,
        conversation: Option<i64>,
    ) -> hato_store::Result<Vec<GroupItem>> {
        self.inner.group_items(group, conversation)
    }
    fn group_calendar(&self, group: GroupId) -> hato_store::Result<Vec<(String, String)>> {
        self.inner.group_calendar(group)
    }
}

#[tokio::test]
async fn filing_a_message_with_100000_references_looks_up_a_bounded_number() {
    let w = world().await;
    w.send(
        "team@contoso.test",
        Route::Group(w.team),
        "Subject: Plan\r\nMessage-ID: <root@x.test>\r\n",
    )
    .await;
    w.agent.clone().step().await.unwrap();
    let root = w.store.group_items(w.team, None).unwrap();
    assert_eq!(root.len(), 1);

    let mut references = String::from("References:");
    for i in 0..100_000 {
        references.push_str(&format!(" <r{i}@x.test>\r\n"));
    }
    let counting = Counting {
        inner: w.store.clone(),
        by_message_id: AtomicUsize::new(0),
    };
    // The parent is the newest reference: found with the first lookup.
    let reply = groupmail::thread_headers(
        format!("Subject: other\r\n{references} <root@x.test>\r\n\r\n").as_bytes(),
    );
    assert_eq!(reply.references.len(), groupmail::MAX_THREAD_LOOKUPS);
    let found = groups::group_conversation(&counting, w.team, &reply).unwrap();
    assert_eq!(found, Some(root[0].conversation_id));
    assert_eq!(counting.by_message_id.load(Ordering::Relaxed), 1);

    // The parent is the oldest of 100,001: beyond the bound, so the subject decides, after at
    // most MAX_THREAD_LOOKUPS lookups (the store once looked up every reference).
    counting.by_message_id.store(0, Ordering::Relaxed);
    let stray = groupmail::thread_headers(
        format!(
            "Subject: Re: Plan\r\nReferences: <root@x.test>\r\n{}\r\n",
            &references[11..]
        )
        .as_bytes(),
    );
    assert!(!stray.references.contains(&"root@x.test".to_string()));
    let found = groups::group_conversation(&counting, w.team, &stray).unwrap();
    assert_eq!(found, Some(root[0].conversation_id));
    assert_eq!(
        counting.by_message_id.load(Ordering::Relaxed),
        groupmail::MAX_THREAD_LOOKUPS
    );
    let unrelated = groupmail::thread_headers(
        format!(
            "Subject: Unrelated\r\nReferences: <root@x.test>\r\n{}\r\n",
            &references[11..]
        )
        .as_bytes(),
    );
    assert_eq!(
        groups::group_conversation(&counting, w.team, &unrelated).unwrap(),
        None
    );
}

#[tokio::test]
async fn group_mailbox_routing_replayed_files_and_copies_once() {
    let w = world().await;
    let trace = w
        .send(
            "team@contoso.test",
            Route::Group(w.team),
            "Subject: Once\r\nMessage-ID: <once@x.test>\r\n",
        )
        .await;
    // The same work, prepared twice (the second time once the first node's lease ran out), for
    // the retry and the replay.
    let work = w.group_work().await;
    assert!(w.group_work().await.is_empty(), "leased to the first");
    w.lease_runs_out();
    let replay = w.group_work().await;
    assert_eq!(work.len(), 1);
    let now = w.agent.clock.now();

    // A crash after filing, before routing: only the filing was committed.
    let (item, _) = work[0].item.clone().unwrap();
    assert!(w.store.file_group_item(item.clone()).await.unwrap());
    assert!(!w.store.file_group_item(item).await.unwrap());
    // The retried step, then the same step replayed once more.
    for work in [work, replay] {
        w.agent
            .apply_group_work(work.into_iter().next().unwrap(), now)
            .await
            .unwrap();
    }

    assert_eq!(w.store.group_items(w.team, None).unwrap().len(), 1);
    assert_eq!(w.store.conversations(w.team).unwrap().len(), 1);
    let copies = w.count(&format!(
        "SELECT count(*) FROM recipients WHERE address = 'member@contoso.test' \
         AND message_id = (SELECT id FROM messages WHERE trace_id = '{trace}')"
    ));
    assert_eq!(copies, 1);
    let expands = w
        .store
        .trace_detail(None, &trace, Some("team@contoso.test"))
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "Expand")
        .count();
    assert_eq!(expands, 1);
    w.agent.clone().step().await.unwrap();
    assert_eq!(w.store.mail_list(w.member, None).unwrap().len(), 1);
}

#[tokio::test]
async fn a_held_message_replayed_sends_one_approval_request() {
    let w = world().await;
    let trace = w
        .send(
            "moderated@contoso.test",
            Route::Group(w.moderated),
            "Subject: Please approve\r\n",
        )
        .await;
    // The same work, prepared three times, each once the lease before ran out (the crashed
    // step's approval request, the retry, the replay).
    let mut crashed = w.group_work().await;
    w.lease_runs_out();
    let work = w.group_work().await;
    w.lease_runs_out();
    let replay = w.group_work().await;
    let notice = crashed[0].notice.take().expect("an approval request");
    let now = w.agent.clock.now();
    // A crash after the approval request was queued, before the hold was recorded.
    enqueue_generated(&*w.store, notice).await.unwrap();
    // The retried step, then the same step replayed, and the routing decided again from scratch.
    for work in [work, replay] {
        w.agent
            .apply_group_work(work.into_iter().next().unwrap(), now)
            .await
            .unwrap();
    }
    w.lease_runs_out();
    let again = w.group_work().await;
    assert!(again.is_empty(), "a held recipient is not due");

    let requests =
        w.count("SELECT count(*) FROM messages WHERE subject LIKE 'Approval requested:%'");
    assert_eq!(requests, 1);
    assert_eq!(w.count("SELECT count(*) FROM moderation"), 1);
    let defers = w
        .store
        .trace_detail(None, &trace, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "Defer")
        .count();
    assert_eq!(defers, 1);
}

#[tokio::test]
async fn an_ndr_replayed_is_queued_once() {
    let w = world().await;
    // A local recipient whose mailbox is gone fails, and the sender is owed an NDR.
    let gone = w
        .store
        .create_mailbox(NewMailbox {
            tenant_id: w.tenant,
            address: "gone@contoso.test".into(),
            display_name: "gone".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 30,
        })
        .await
        .unwrap();
    let trace = w
        .send(
            "gone@contoso.test",
            Route::Local(gone.id),
            "Subject: Nobody home\r\n",
        )
        .await;
    w.store.remove_mailbox(gone.id).await.unwrap();
    let prepared = w.prepare().await;
    let now = w.agent.clock.now();
    w.store
        .complete_deliveries(prepared.outcomes, now)
        .await
        .unwrap();
    let ndrs = w.store.due_ndrs(now, 10).unwrap();
    assert_eq!(ndrs.len(), 1);
    // Built and queued twice (a replayed step): the same message, queued once.
    let first = w.agent.ndr_message(&ndrs[0]).unwrap();
    let second = w.agent.ndr_message(&ndrs[0]).unwrap();
    assert_eq!(first.trace_id, second.trace_id);
    enqueue_generated(&*w.store, first).await.unwrap();
    enqueue_generated(&*w.store, second).await.unwrap();
    assert_eq!(
        w.count("SELECT count(*) FROM messages WHERE subject = 'Undeliverable: Nobody home'"),
        1
    );
    assert!(w.store.due_ndrs(now, 10).unwrap().is_empty());
    let dsn = w
        .store
        .trace_detail(None, &trace, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "Dsn")
        .count();
    assert_eq!(dsn, 1);
}

#[test]
fn derived_trace_ids_are_uuid_shaped_stable_and_distinct() {
    let at = Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap();
    let a = generated::derived_trace_id(at, "NDR for 1");
    assert_eq!(a, generated::derived_trace_id(at, "NDR for 1"));
    assert_ne!(a, generated::derived_trace_id(at, "NDR for 2"));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "8");
    assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    // Sorted by the original's arrival, like the random trace ids.
    let later = generated::derived_trace_id(at.plus_seconds(1), "NDR for 1");
    assert!(later > a);
}

/// The admin notices of the content stages: the admin's address routed like any recipient,
/// the notice queued once however often it is built, and delivered to the admin's Inbox.
#[tokio::test]
async fn a_malware_notification_is_routed_queued_once_and_delivered() {
    let w = world().await;
    let agent = w.agent.clone();
    let tenant = w.tenant;
    let (local, outside, postmaster, bad) = tokio::task::spawn_blocking(move || {
        let d = &*agent.directory;
        (
            notification_recipient(d, "member@contoso.test", tenant),
            notification_recipient(d, "soc@fabrikam.test", tenant),
            notification_recipient(d, "postmaster@contoso.test", tenant),
            notification_recipient(d, "not an address", tenant),
        )
    })
    .await
    .unwrap();
    let local = local.unwrap();
    assert_eq!(
        (local.route, local.tenant_id),
        (Route::Local(w.member), w.tenant)
    );
    let outside = outside.unwrap();
    assert_eq!(
        (outside.route, outside.tenant_id),
        (Route::Remote, w.tenant)
    );
    assert_eq!(postmaster.unwrap().route, Route::Postmaster);
    let bad = bad.unwrap_err().to_string();
    assert!(bad.contains("\"not an address\" is not valid"), "{bad}");

    let recipients = vec!["moderator@contoso.test".to_string()];
    let detections = vec![hato_protection::malware::Detection {
        name: "Eicar-Test-Signature".into(),
        location: "part 2 (eicar.com)".into(),
        true_type: Some("com"),
        engine: "hato".into(),
        item: Some(1),
    }];
    let notice = MalwareNotice {
        scope: SenderScope::External,
        org_domain: "contoso.test",
        envelope_sender: "x@outside.test",
        from: "x@outside.test",
        recipients: &recipients,
        subject: "Quarterly report",
        message_id: "<m1@outside.test>",
        trace_id: "0190f0f0-0000-7000-8000-00000000000a",
        received: w.agent.clock.now(),
        detections: &detections,
        policy: "Default",
        outcome: &hato_protection::malware::MalwareOutcome::Quarantine,
    };
    let now = w.agent.clock.now();
    for _ in 0..2 {
        let m = malware_admin_notification(&notice, local.clone(), "mx.hato.test", now);
        enqueue_generated(&*w.store, m).await.unwrap();
    }
    let subject = "Malware detected (external sender): Quarterly report";
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM messages WHERE subject = '{subject}' AND sender = ''"
        )),
        1
    );
    let prepared = w.prepare().await;
    w.store
        .complete_deliveries(prepared.outcomes, now)
        .await
        .unwrap();
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM mail_items WHERE mailbox_id = {} AND folder = 'inbox' AND subject = '{subject}'",
            w.member
        )),
        1
    );
}
