//! Outside recipients (mail contacts reached through groups, NDRs to outside senders) that the
//! outbound agent cannot deliver (here: their MX lookup never gets an answer) wait with a real
//! deferral — attempts, the outbound backoff, the outbound expiry — instead of staying queued for
//! ever; mail for an unconfigured postmaster waits without expiring. The real agents over a real
//! store, with a clock that only moves when the test says.

use hato_core::clock::ManualClock;
use hato_core::directory::{
    DomainType, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef, Route,
};
use hato_core::dns::{DnsError, DnsFuture, Mx, RecordKind, Resolver};
use hato_core::id::NodeId;
use hato_core::{Clock, Timestamp};
use hato_directory::Directory;
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::outbound::{OutboundAgent, OutboundSettings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use tokio::sync::Notify;

/// A resolver whose every lookup times out (a DNS server that does not answer).
struct Unanswered;

fn timeout<T: Send + 'static>(name: &str, kind: RecordKind) -> DnsFuture<T> {
    let e = DnsError::Timeout {
        name: name.into(),
        kind,
        ms: 5000,
    };
    Box::pin(async move { Err(e) })
}

impl Resolver for Unanswered {
    fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>> {
        timeout(name, RecordKind::A)
    }
    fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>> {
        timeout(name, RecordKind::Aaaa)
    }
    fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
        timeout(name, RecordKind::Txt)
    }
    fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
        timeout(name, RecordKind::Mx)
    }
    fn lookup_ptr(&self, ip: IpAddr) -> DnsFuture<Vec<String>> {
        timeout(&ip.to_string(), RecordKind::Ptr)
    }
}

const HOUR: i64 = 3600;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    agent: Arc<DeliveryAgent>,
    outbound: Arc<OutboundAgent>,
    tenant: i64,
    sender: i64,
    list: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let sender = store
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "sender@contoso.test".into(),
            display_name: "Sender".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 30,
        })
        .await
        .unwrap();
    let partner = store
        .create_contact(NewContact {
            tenant_id: t.id,
            address: "partner@fabrikam.test".into(),
            display_name: "Partner".into(),
            attributes: MailboxAttributes::default(),
        })
        .await
        .unwrap();
    let mut settings = GroupSettings::defaults_for(GroupType::Distribution);
    settings.require_sender_authentication = false;
    let list = store
        .create_group(NewGroup {
            tenant_id: t.id,
            name: "partners".into(),
            address: Some("partners@contoso.test".into()),
            group_type: GroupType::Distribution,
            settings,
            owners: vec![sender.id],
            members: vec![MemberRef::Contact(partner.id)],
        })
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
    let dyn_store: Arc<dyn Store> = store.clone();
    let queued = Arc::new(Notify::new());
    let agent = DeliveryAgent::new(
        Arc::new(Directory::new(dyn_store.clone())),
        clock.clone(),
        "mx.hato.test".into(),
        queued.clone(),
        90,
        None,
        NodeId::new("node-test"),
    );
    let outbound = Arc::new(OutboundAgent::new(
        dyn_store,
        Arc::new(Unanswered),
        clock.clone(),
        NodeId::new("node-test"),
        OutboundSettings::new("mx.hato.test"),
        queued,
    ));
    World {
        _dir: dir,
        store,
        clock,
        agent,
        outbound,
        tenant: t.id,
        sender: sender.id,
        list: list.id,
    }
}

impl World {
    async fn send(&self, trace_id: &str, from: &str, to: &str, route: Route) {
        self.store
            .enqueue(NewMessage {
                trace_id: trace_id.into(),
                received: self.clock.now(),
                sender: from.into(),
                client_ip: "192.0.2.1".into(),
                helo: "client.test".into(),
                message_id: Some(format!("<{trace_id}@client.test>")),
                subject: Some(trace_id.into()),
                content: format!("From: {from}\r\nSubject: {trace_id}\r\n\r\nbody\r\n")
                    .into_bytes(),
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
    }

    /// Both agents' steps until neither finds work (the outbound agent's connections, which
    /// it runs as tasks, finished).
    async fn run_until_idle(&self) {
        for _ in 0..20 {
            let local = self.agent.clone().step().await.unwrap();
            let outside = self.outbound.clone().step().await.unwrap();
            for _ in 0..1000 {
                if !self.outbound.busy() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(!self.outbound.busy(), "the outbound agent never finished");
            if local == 0 && outside == 0 {
                return;
            }
        }
        panic!("the agents never became idle");
    }

    /// Lets `hours` pass, an hour at a time, the agent working after each.
    async fn wait_hours(&self, hours: i64) {
        for _ in 0..hours {
            self.clock.advance_seconds(HOUR);
            self.run_until_idle().await;
        }
    }

    fn row(&self, recipient: &str) -> Option<QueueRow> {
        let mut q = QueueQuery::at(self.clock.now());
        q.recipient = Some(recipient.into());
        self.store.queue(&q).unwrap().rows.into_iter().next()
    }

    /// The events of `recipient` in the message(s) whose subject is `subject`.
    fn events(&self, subject: &str, recipient: &str) -> Vec<TraceDetailRow> {
        let rows = self
            .store
            .trace(&TraceQuery {
                subject: Some(subject.into()),
                recipient: Some(recipient.into()),
                ..Default::default()
            })
            .unwrap()
            .rows;
        assert_eq!(rows.len(), 1, "{subject} to {recipient}: {rows:?}");
        self.store
            .trace_detail(None, &rows[0].trace_id, Some(recipient))
            .unwrap()
    }

    fn status(&self, subject: &str, recipient: &str) -> String {
        self.store
            .trace(&TraceQuery {
                subject: Some(subject.into()),
                recipient: Some(recipient.into()),
                ..Default::default()
            })
            .unwrap()
            .rows[0]
            .status
            .clone()
    }

    fn mail(&self, mailbox: i64) -> Vec<String> {
        self.store
            .mail_list(mailbox, None)
            .unwrap()
            .into_iter()
            .map(|m| m.subject)
            .collect()
    }
}

fn names(events: &[TraceDetailRow]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn a_mail_contact_whose_mx_cannot_be_looked_up_waits_then_expires_with_an_ndr() {
    let w = world().await;
    let start = w.clock.now();
    w.send(
        "to partners",
        "sender@contoso.test",
        "partners@contoso.test",
        Route::Group(w.list),
    )
    .await;
    w.run_until_idle().await;
    let contact = "partner@fabrikam.test";
    assert_eq!(w.status("to partners", contact), "Pending");
    let row = w.row(contact).expect("queued");
    assert_eq!(
        (row.route.as_str(), row.status.as_str(), row.attempts),
        ("remote", "Retry", 1)
    );
    // The first retry after `outbound.retry_first_secs` (5 minutes).
    assert_eq!(row.next_attempt, start.plus_seconds(300).to_rfc3339());
    assert_eq!(row.expires, start.plus_seconds(48 * HOUR).to_rfc3339());
    let last = row.last_error.expect("a last error");
    // Exchange's text for a DNS failure (reference §9.4).
    assert_eq!(
        (last.status, last.enhanced_status.as_str()),
        (450, "4.4.312")
    );
    let events = w.events("to partners", contact);
    assert_eq!(names(&events), ["Expand", "Defer"]);
    let reason = events[1].reason.as_ref().expect("a reason");
    assert!(
        reason
            .text
            .contains("The MX lookup of fabrikam.test got no answer"),
        "{reason:?}"
    );

    // Retried with backoff (not every step) for the outbound expiration (24 hours), then
    // failed; the sender is told.
    w.run_until_idle().await;
    assert_eq!(w.row(contact).map(|r| r.attempts), Some(1));
    w.clock.advance_seconds(299);
    w.run_until_idle().await;
    assert_eq!(
        w.row(contact).map(|r| r.attempts),
        Some(1),
        "not before 5 minutes"
    );
    w.clock.advance_seconds(1);
    w.run_until_idle().await;
    let row = w.row(contact).expect("still queued");
    assert_eq!(row.attempts, 2);
    // Then 10 minutes.
    assert_eq!(row.next_attempt, start.plus_seconds(300 + 600).to_rfc3339());
    w.wait_hours(23).await;
    assert_eq!(w.status("to partners", contact), "Pending");
    let attempts = w.row(contact).expect("still queued").attempts;
    assert!((20..=30).contains(&attempts), "{attempts} attempts");
    w.wait_hours(1).await;
    assert_eq!(w.status("to partners", contact), "Failed");
    assert!(w.row(contact).is_none());
    let events = w.events("to partners", contact);
    // A delay notice after 4 hours (a `Dsn` event), the NDR at the expiry.
    assert_eq!(names(&events), ["Expand", "Defer", "Dsn", "Fail", "Dsn"]);
    assert!(events[2].detail.contains("Delay notice sent"), "{events:?}");
    assert_eq!(
        (events[3].status, events[3].enhanced_status.as_deref()),
        (Some(550), Some("4.4.7"))
    );
    assert_eq!(
        w.mail(w.sender),
        [
            "Undeliverable: to partners",
            "Delivery delayed: to partners"
        ]
    );
}

#[tokio::test]
async fn an_ndr_to_an_outside_sender_waits_then_fails_without_an_ndr_of_its_own() {
    let w = world().await;
    // A recipient whose mailbox went away: the outside sender is owed an NDR.
    w.send(
        "to nobody",
        "someone@outside.test",
        "gone@contoso.test",
        Route::Relay,
    )
    .await;
    w.run_until_idle().await;
    assert_eq!(w.status("to nobody", "gone@contoso.test"), "Failed");
    let ndr = "Undeliverable: to nobody";
    let outside = "someone@outside.test";
    assert_eq!(w.status(ndr, outside), "Pending");
    let row = w.row(outside).expect("the NDR is queued");
    assert_eq!((row.route.as_str(), row.attempts), ("remote", 1));
    assert_eq!(names(&w.events(ndr, outside)), ["Receive", "Defer"]);

    w.wait_hours(24).await;
    assert_eq!(w.status(ndr, outside), "Failed");
    assert!(w.row(outside).is_none());
    let events = w.events(ndr, outside);
    assert_eq!(names(&events), ["Receive", "Defer", "Fail"]);
    assert_eq!(events[2].enhanced_status.as_deref(), Some("4.4.7"));
    // No NDR of the NDR: nothing else was ever queued.
    let all = w
        .store
        .trace(&TraceQuery {
            page_size: 100,
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(all.len(), 2, "{all:?}");
}

#[tokio::test]
async fn mail_for_an_unconfigured_postmaster_waits_past_its_expiry() {
    let w = world().await;
    w.send(
        "for the postmaster",
        "reporter@outside.test",
        "postmaster",
        Route::Postmaster,
    )
    .await;
    w.run_until_idle().await;
    let first = w.row("postmaster").expect("queued");
    assert_eq!(first.attempts, 1);
    w.wait_hours(50).await;
    assert_eq!(w.status("for the postmaster", "postmaster"), "Pending");
    // Retried every 10 seconds (the clock moved an hour at a time: once per hour here), with one
    // Defer event that says it does not expire.
    let row = w.row("postmaster").expect("still queued");
    assert_eq!(row.attempts, 51);
    let events = w.events("for the postmaster", "postmaster");
    // Its sender was told of the delay once, after 4 hours (a `Dsn` event).
    assert_eq!(names(&events), ["Receive", "Defer", "Dsn"]);
    assert!(events[1].detail.contains("without expiry"), "{events:?}");
}
