//! End-user quarantine notifications in the store: which recipients are owed a digest (only
//! the kinds users manage, only items held since the last digest covered, not expired), the
//! items one lists (bounded, with the total), the record of the last digest, which a restart
//! keeps, and the release-link secret, made once.

use hato_core::clock::{Clock, ManualClock};
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::{Reason, Stage, Timestamp};
use hato_store::*;

struct World {
    dir: tempfile::TempDir,
    store: SqliteStore,
    clock: ManualClock,
    tenant: i64,
    alice: i64,
    bob: i64,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.create_tenant("contoso").wait().unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let mailbox = |address: &str| {
        store
            .create_mailbox(NewMailbox {
                tenant_id: t.id,
                address: address.into(),
                display_name: address.into(),
                mailbox_type: MailboxType::User,
                aliases: vec![],
                attributes: MailboxAttributes::default(),
                quota_bytes: 1 << 20,
            })
            .wait()
            .unwrap()
            .id
    };
    let (alice, bob) = (mailbox("alice@contoso.test"), mailbox("bob@contoso.test"));
    World {
        dir,
        store,
        clock: ManualClock::new(Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap()),
        tenant: t.id,
        alice,
        bob,
    }
}

impl World {
    /// Queues a message to the mailboxes `to`, each held as `kind`, and delivery's quarantine
    /// outcome for each, at the clock's time; the items expire `days` later.
    fn hold(&self, trace_id: &str, to: &[(i64, &str)], kind: QuarantineKind, days: i64) {
        self.hold_under(
            trace_id,
            to,
            kind,
            days,
            Some("DefaultFullAccessWithNotificationPolicy"),
        );
    }

    /// [`World::hold`] under the quarantine policy `policy` (`None`: the kind's default).
    fn hold_under(
        &self,
        trace_id: &str,
        to: &[(i64, &str)],
        kind: QuarantineKind,
        days: i64,
        policy: Option<&str>,
    ) {
        let now = self.clock.now();
        self.store
            .enqueue(NewMessage {
                trace_id: trace_id.into(),
                received: now,
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some(trace_id.into()),
                content: format!("Subject: {trace_id}\r\n\r\nbody\r\n").into_bytes(),
                spooled: None,
                recipients: to
                    .iter()
                    .map(|(mailbox, address)| NewRecipient {
                        address: (*address).into(),
                        tenant_id: self.tenant,
                        route: Route::Local(*mailbox),
                        extra_events: vec![],
                        receive_reason: None,
                        quarantine: Some(QuarantineHold {
                            kind,
                            policy: "Default".into(),
                            reason: Reason::new(Stage::Spam, "held by the test"),
                            days: None,
                            quarantine_policy: policy.map(str::to_owned),
                        }),
                        finished: None,
                        stamp: String::new(),
                        junk: false,
                        connector: None,
                        dsn: Default::default(),
                    })
                    .collect(),
                receive_detail: "received".into(),
                reports_on: vec![],
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                dsn: Default::default(),
                high_risk: false,
            })
            .wait()
            .unwrap();
        let lease = Lease {
            owner: NodeId::new("n"),
            until: now.plus_seconds(300),
        };
        let message = self
            .store
            .due_deliveries(now, &lease, 100)
            .unwrap()
            .into_iter()
            .find(|m| m.trace_id == trace_id)
            .unwrap();
        let outcome = DeliveryOutcome {
            message_id: message.id,
            blob: self
                .store
                .stage_blob(format!("content of {trace_id}").into_bytes())
                .unwrap(),
            size: 20,
            from_header: "mallory@fabrikam.test".into(),
            subject: trace_id.into(),
            null_sender: false,
            recipients: message
                .recipients
                .iter()
                .map(|r| {
                    let hold = r.quarantine.clone().unwrap();
                    let mailbox = match r.route {
                        Route::Local(m) => Some(m),
                        _ => None,
                    };
                    let expires = now.plus_seconds(days * 86_400);
                    (
                        r.id,
                        RecipientOutcome::Quarantine {
                            hold,
                            mailbox,
                            expires,
                        },
                    )
                })
                .collect(),
        };
        let failed = self
            .store
            .complete_deliveries(vec![outcome], now)
            .wait()
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
    }

    fn candidates(&self) -> Vec<(String, Option<Timestamp>, Timestamp)> {
        self.store
            .digest_candidates(self.clock.now(), None, 100)
            .unwrap()
            .into_iter()
            .map(|c| (c.recipient, c.covered_until, c.newest))
            .collect()
    }
}

/// Exchange notifies for any quarantined item whose quarantine policy has `ESNEnabled`: the
/// admin-only kinds under their default (`AdminOnlyAccessPolicy`, no notifications) owe
/// nothing, but malware held under a policy with notifications is listed (its link then
/// requests the release: the digest's and the release page's business, not the store's).
#[test]
fn any_kind_under_a_policy_with_notifications_makes_a_recipient_owed_a_digest() {
    let w = world();
    let alice = (w.alice, "alice@contoso.test");
    let bob = (w.bob, "bob@contoso.test");
    for (i, kind) in [
        QuarantineKind::Malware,
        QuarantineKind::HighConfidencePhish,
        QuarantineKind::TransportRule,
    ]
    .into_iter()
    .enumerate()
    {
        w.hold_under(&format!("admin-{i}"), &[alice], kind, 30, None);
    }
    assert_eq!(w.candidates(), vec![]);
    let t0 = w.clock.now();
    w.hold("spam-1", &[alice, bob], QuarantineKind::Spam, 30);
    w.clock.advance_seconds(60);
    w.hold("bulk-1", &[bob], QuarantineKind::Bulk, 30);
    w.hold("malware-1", &[bob], QuarantineKind::Malware, 30);
    let t1 = w.clock.now();
    assert_eq!(
        w.candidates(),
        vec![
            ("alice@contoso.test".into(), None, t0),
            ("bob@contoso.test".into(), None, t1),
        ]
    );
    let items = w
        .store
        .digest_items(w.tenant, "bob@contoso.test", None, t1, w.clock.now(), 10)
        .unwrap();
    assert_eq!(items.total, 3);
    let kinds: Vec<QuarantineKind> = items.items.iter().map(|i| i.kind).collect();
    // Newest first (the same time: the newest id first).
    assert_eq!(
        kinds,
        [
            QuarantineKind::Malware,
            QuarantineKind::Bulk,
            QuarantineKind::Spam
        ]
    );
    // Alice's admin-only items under AdminOnlyAccessPolicy are not listed with her spam.
    let items = w
        .store
        .digest_items(w.tenant, "alice@contoso.test", None, t1, w.clock.now(), 10)
        .unwrap();
    assert_eq!(items.total, 1);
    assert_eq!(items.items[0].kind, QuarantineKind::Spam);
}

#[test]
fn only_items_under_a_quarantine_policy_with_notifications_are_owed_a_digest() {
    let w = world();
    let alice = (w.alice, "alice@contoso.test");
    let bob = (w.bob, "bob@contoso.test");
    let custom = |name: &str, notifications| QuarantinePolicy {
        name: name.into(),
        permissions: QuarantinePermissions::FULL_ACCESS,
        notifications,
        built_in: false,
    };
    for p in [custom("Quiet", false), custom("Loud", true)] {
        w.store
            .put_quarantine_policy(w.tenant, p, true, w.clock.now())
            .wait()
            .unwrap();
    }
    // ESNEnabled off: the kind's default (DefaultFullAccessPolicy for spam), the built-in
    // policies without notifications, a custom one without, one that does not exist.
    for (i, policy) in [
        None,
        Some("DefaultFullAccessPolicy"),
        Some("AdminOnlyAccessPolicy"),
        Some("Quiet"),
        Some("Gone"),
    ]
    .into_iter()
    .enumerate()
    {
        w.hold_under(
            &format!("quiet-{i}"),
            &[alice, bob],
            QuarantineKind::Spam,
            30,
            policy,
        );
    }
    assert_eq!(w.candidates(), vec![]);
    // On: a built-in with notifications (any case), and the tenant's own with ESNEnabled.
    w.clock.advance_seconds(60);
    let t1 = w.clock.now();
    w.hold_under(
        "loud-1",
        &[alice],
        QuarantineKind::Spam,
        30,
        Some("notificationenabledpolicy"),
    );
    w.hold_under("loud-2", &[bob], QuarantineKind::Bulk, 30, Some("LOUD"));
    assert_eq!(
        w.candidates(),
        vec![
            ("alice@contoso.test".into(), None, t1),
            ("bob@contoso.test".into(), None, t1),
        ]
    );
    // The listing leaves out the quiet ones held before.
    let items = w
        .store
        .digest_items(w.tenant, "bob@contoso.test", None, t1, w.clock.now(), 10)
        .unwrap();
    assert_eq!(items.total, 1);
    assert_eq!(items.items[0].subject, "loud-2");
}

#[test]
fn a_recorded_digest_covers_what_it_listed_and_survives_a_restart() {
    let w = world();
    let alice = (w.alice, "alice@contoso.test");
    w.hold("spam-1", &[alice], QuarantineKind::Spam, 30);
    let covered = w.clock.now();
    w.clock.advance_seconds(10);
    let sent = w.clock.now();
    w.store
        .record_digest(w.tenant, "Alice@contoso.test", sent, covered)
        .wait()
        .unwrap();
    assert_eq!(w.candidates(), vec![]);
    // Held after the digest: owed again, and only the new item is listed.
    w.clock.advance_seconds(10);
    w.hold("spam-2", &[alice], QuarantineKind::Phish, 30);
    let newest = w.clock.now();
    assert_eq!(
        w.candidates(),
        vec![("alice@contoso.test".into(), Some(covered), newest)]
    );
    let items = w
        .store
        .digest_items(
            w.tenant,
            "alice@contoso.test",
            Some(covered),
            newest,
            w.clock.now(),
            10,
        )
        .unwrap();
    assert_eq!(items.total, 1);
    assert_eq!(items.items[0].trace_id, "spam-2");
    // A record never moves the covered time back.
    w.store
        .record_digest(w.tenant, "alice@contoso.test", newest, Timestamp(0))
        .wait()
        .unwrap();
    let World {
        dir, store, tenant, ..
    } = w;
    store.close();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .digest_record(tenant, "alice@contoso.test")
            .unwrap()
            .expect("kept"),
        DigestRecord {
            last_sent: newest,
            covered_until: covered,
        }
    );
}

#[test]
fn expired_and_released_items_are_owed_nothing() {
    let w = world();
    let alice = (w.alice, "alice@contoso.test");
    let bob = (w.bob, "bob@contoso.test");
    w.hold("short", &[alice], QuarantineKind::Spam, 1);
    w.hold("released", &[bob], QuarantineKind::Spam, 30);
    let id = w
        .store
        .quarantine_items(&QuarantineQuery {
            trace_id: Some("released".into()),
            ..Default::default()
        })
        .unwrap()
        .items[0]
        .id;
    assert_eq!(w.candidates().len(), 2);
    w.store
        .release_quarantined(id, "bob@contoso.test", w.clock.now())
        .wait()
        .unwrap();
    w.clock.advance_seconds(86_400);
    assert_eq!(w.candidates(), vec![]);
}

#[test]
fn a_huge_quarantine_makes_bounded_pages_and_a_bounded_listing() {
    let w = world();
    // Candidates are paged by (tenant, address); one recipient's
    // 300 items are listed 50 at a time with the total.
    let alice = (w.alice, "alice@contoso.test");
    for i in 0..300 {
        w.hold(&format!("m{i:03}"), &[alice], QuarantineKind::Bulk, 30);
    }
    let items = w
        .store
        .digest_items(
            w.tenant,
            "alice@contoso.test",
            None,
            w.clock.now(),
            w.clock.now(),
            50,
        )
        .unwrap();
    assert_eq!((items.items.len(), items.total), (50, 300));
    let page = w.store.digest_candidates(w.clock.now(), None, 1).unwrap();
    assert_eq!(page.len(), 1);
    let next = w
        .store
        .digest_candidates(
            w.clock.now(),
            Some((page[0].tenant_id, page[0].recipient.clone())),
            1,
        )
        .unwrap();
    assert_eq!(next, vec![]);
}

#[test]
fn the_release_link_secret_is_made_once() {
    let w = world();
    assert_eq!(w.store.existing_release_link_secret().unwrap(), None);
    let first = w.store.release_link_secret([7; 32]).wait().unwrap();
    assert_eq!(first, vec![7; 32]);
    let again = w.store.release_link_secret([9; 32]).wait().unwrap();
    assert_eq!(again, first);
    assert_eq!(w.store.existing_release_link_secret().unwrap(), Some(first));
}
