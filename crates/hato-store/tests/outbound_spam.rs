//! Outbound spam in the store (migration 32): the policy's defaults and persistence, each
//! sender's recipient counts in fixed UTC hours and days (kept across a reopen), restricted
//! senders lifting by themselves at the next UTC day (a manual clock) or when removed, and a
//! message's high-risk pool carried through the queue to the outbound agent.

use hato_core::Timestamp;
use hato_core::directory::{DomainType, Route};
use hato_core::id::NodeId;
use hato_protection::spam::outbound::{OutboundSpamPolicy, Tally, ThresholdAction, next_utc_day};
use hato_store::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_human(text).unwrap()
}

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir).unwrap()
}

fn tally(e: u32, i: u32, d: u32) -> Tally {
    Tally {
        external_hour: e,
        internal_hour: i,
        day: d,
    }
}

#[test]
fn the_policy_has_exchanges_defaults_until_changed_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t = s.create_tenant("contoso").wait().unwrap();
    assert_eq!(
        s.outbound_spam_filter(t.id).unwrap(),
        OutboundSpamPolicy::default()
    );
    let p = OutboundSpamPolicy {
        recipient_limit_external_per_hour: 500,
        action_when_threshold_reached: ThresholdAction::BlockUser,
        ..Default::default()
    };
    assert_eq!(
        s.set_outbound_spam_filter(t.id, p.clone()).wait().unwrap(),
        p
    );
    let bad = OutboundSpamPolicy {
        recipient_limit_per_day: 10_001,
        ..Default::default()
    };
    assert!(matches!(
        s.set_outbound_spam_filter(t.id, bad).wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.outbound_spam_filter(t.id + 100),
        Err(StoreError::NotFound(_))
    ));
    drop(s);
    assert_eq!(open(dir.path()).outbound_spam_filter(t.id).unwrap(), p);
}

#[test]
fn counts_are_per_utc_hour_and_day_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t = s.create_tenant("contoso").wait().unwrap();
    let count = |s: &SqliteStore, e: u32, i: u32, now: &str| {
        s.count_outbound_recipients(
            t.id,
            "alice@contoso.test",
            OutboundRecipients {
                external: e,
                internal: i,
            },
            at(now),
        )
        .wait()
        .unwrap()
    };
    assert_eq!(
        count(&s, 2, 1, "2026-12-01T10:15:00Z"),
        (tally(0, 0, 0), tally(2, 1, 3))
    );
    // Another sender has counts of its own.
    let other = s
        .count_outbound_recipients(
            t.id,
            "bob@contoso.test",
            OutboundRecipients {
                external: 1,
                internal: 0,
            },
            at("2026-12-01T10:16:00Z"),
        )
        .wait()
        .unwrap();
    assert_eq!(other.1, tally(1, 0, 1));
    drop(s);
    // A restart keeps them.
    let s = open(dir.path());
    assert_eq!(
        count(&s, 1, 0, "2026-12-01T10:59:59Z"),
        (tally(2, 1, 3), tally(3, 1, 4))
    );
    // The next hour starts the hourly counts again, not the day's.
    assert_eq!(
        count(&s, 1, 0, "2026-12-01T11:00:00Z"),
        (tally(0, 0, 4), tally(1, 0, 5))
    );
    // The next UTC day starts everything again.
    assert_eq!(
        count(&s, 0, 1, "2026-12-02T00:00:00Z"),
        (tally(0, 0, 0), tally(0, 1, 1))
    );
}

#[test]
fn block_user_for_today_lifts_at_the_next_utc_day_and_block_user_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t = s.create_tenant("contoso").wait().unwrap();
    let now = at("2026-12-01T17:30:00Z");
    let today = RestrictedSender {
        tenant_id: t.id,
        sender: "alice@contoso.test".into(),
        action: "block-user-for-today".into(),
        reason: "over RecipientLimitPerDay".into(),
        blocked_at: now,
        until: Some(next_utc_day(now)),
    };
    let forever = RestrictedSender {
        sender: "bob@contoso.test".into(),
        action: "block-user".into(),
        until: None,
        ..today.clone()
    };
    s.restrict_sender(today.clone()).wait().unwrap();
    s.restrict_sender(forever.clone()).wait().unwrap();
    assert_eq!(
        s.restricted_sender(t.id, "alice@contoso.test", now)
            .unwrap(),
        Some(today.clone())
    );
    assert_eq!(s.restricted_senders(t.id, now).unwrap().len(), 2);
    // Still restricted at the day's last second; free at midnight UTC.
    let last = at("2026-12-01T23:59:59Z");
    let midnight = at("2026-12-02T00:00:00Z");
    assert!(
        s.restricted_sender(t.id, "alice@contoso.test", last)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.restricted_sender(t.id, "alice@contoso.test", midnight)
            .unwrap(),
        None
    );
    assert_eq!(
        s.restricted_senders(t.id, midnight).unwrap(),
        vec![forever.clone()]
    );
    // Lifted by itself: removing it says it is not restricted.
    assert!(matches!(
        s.remove_restricted_sender(t.id, "alice@contoso.test", midnight)
            .wait(),
        Err(StoreError::NotFound(_))
    ));
    // block-user stays until removed; removal also starts its counts afresh.
    s.count_outbound_recipients(
        t.id,
        "bob@contoso.test",
        OutboundRecipients {
            external: 7,
            internal: 0,
        },
        midnight,
    )
    .wait()
    .unwrap();
    let removed = s
        .remove_restricted_sender(t.id, "bob@contoso.test", midnight)
        .wait()
        .unwrap();
    assert_eq!(removed, forever);
    assert!(s.restricted_senders(t.id, midnight).unwrap().is_empty());
    let (before, _) = s
        .count_outbound_recipients(
            t.id,
            "bob@contoso.test",
            OutboundRecipients {
                external: 1,
                internal: 0,
            },
            midnight,
        )
        .wait()
        .unwrap();
    assert_eq!(before, tally(0, 0, 0));
    // Everything goes with the tenant.
    s.remove_tenant(t.id).wait().unwrap();
}

#[test]
fn a_queued_messages_high_risk_pool_reaches_the_outbound_agent() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t = s.create_tenant("contoso").wait().unwrap();
    s.add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let now = at("2026-12-01T10:00:00Z");
    for (trace_id, high_risk) in [("t-normal", false), ("t-spam", true)] {
        s.enqueue(NewMessage {
            trace_id: trace_id.into(),
            received: now,
            sender: "alice@contoso.test".into(),
            client_ip: "127.0.0.1".into(),
            helo: "client".into(),
            message_id: None,
            subject: None,
            content: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            spooled: None,
            recipients: vec![NewRecipient {
                address: "carol@remote.test".into(),
                tenant_id: t.id,
                route: Route::Remote,
                extra_events: vec![],
                receive_reason: None,
                quarantine: None,
                finished: None,
                stamp: String::new(),
                junk: false,
                connector: None,
                dsn: Default::default(),
            }],
            receive_detail: String::new(),
            reports_on: vec![],
            authenticated: None,
            authenticated_from: None,
            sender_auth_failed: false,
            high_risk,
            dsn: Default::default(),
        })
        .wait()
        .unwrap();
    }
    let lease = Lease {
        owner: NodeId::new("node"),
        until: at("2026-12-01T11:00:00Z"),
    };
    let due = s.due_remote(now, &lease, 10).unwrap();
    let pools: Vec<(String, bool)> = due
        .iter()
        .map(|m| (m.trace_id.clone(), m.high_risk))
        .collect();
    assert!(pools.contains(&("t-normal".into(), false)), "{pools:?}");
    assert!(pools.contains(&("t-spam".into(), true)), "{pools:?}");
}
