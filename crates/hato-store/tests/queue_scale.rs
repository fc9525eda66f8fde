//! The queue under pathological load: a 100,000-member expansion, lookups that must use an
//! index, one big message among small ones. (Deferral, expiry and leases: `queue_state.rs`.)

use hato_core::Timestamp;
use hato_core::directory::{DomainType, Route};
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn lease(now: Timestamp) -> Lease {
    Lease {
        owner: hato_core::id::NodeId::new("node-test"),
        until: now.plus_seconds(300),
    }
}

fn tenant(s: &SqliteStore) -> i64 {
    let t = s.create_tenant("contoso").wait().unwrap();
    s.add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    t.id
}

fn message(trace_id: &str, tenant: i64, received: i64, to: &[(&str, Route)]) -> NewMessage {
    NewMessage {
        trace_id: trace_id.into(),
        received: Timestamp(received),
        sender: "bob@fabrikam.test".into(),
        client_ip: "192.0.2.1".into(),
        helo: "mx.fabrikam.test".into(),
        message_id: None,
        subject: Some(trace_id.into()),
        content: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        recipients: to
            .iter()
            .map(|(address, route)| NewRecipient {
                address: (*address).into(),
                tenant_id: tenant,
                route: *route,
                extra_events: vec![],
                receive_reason: None,
                quarantine: None,
                finished: None,
                stamp: String::new(),
                junk: false,
                connector: None,
                dsn: Default::default(),
            })
            .collect(),
        receive_detail: "received".into(),
        reports_on: vec![],
        spooled: None,
        authenticated: None,
        authenticated_from: None,
        sender_auth_failed: false,
        dsn: Default::default(),
        high_risk: false,
    }
}

fn query_plan(s: &SqliteStore, sql: &str) -> String {
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    s.read(|conn| {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows.join("; "))
    })
    .unwrap()
}

#[test]
fn per_message_lookups_use_an_index() {
    let (_d, s) = store();
    // Expansion's "already a recipient?" check: the (message_id, address) index, no scan of the
    // message's recipients.
    let plan = query_plan(
        &s,
        "SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = 1 AND address = 'a@b.test')",
    );
    assert!(
        plan.contains(
            "USING COVERING INDEX recipients_message_address (message_id=? AND address=?)"
        ),
        "{plan}"
    );
    // Releasing the spool after each batch: only the message's open recipients are looked at.
    let plan = query_plan(
        &s,
        "SELECT 1 FROM recipients WHERE message_id = 1 AND (status = 'Pending' OR ndr_state = 1)",
    );
    assert!(plan.contains("recipients_open"), "{plan}");
    // Taking due recipients: the due index, whatever their route or lease.
    let plan = query_plan(
        &s,
        "SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.status = 'Pending' AND r.next_attempt <= 10 \
           AND (r.lease_until IS NULL OR r.lease_until <= 10) ORDER BY r.next_attempt, r.id LIMIT 5",
    );
    assert!(plan.contains("USING INDEX recipients_due"), "{plan}");
    // The local step's and the outbound agent's share of them too (the route is a filter on
    // the due index, not another scan).
    for route in [
        "AND (r.route <> 'remote' OR r.quarantine_kind IS NOT NULL)",
        "AND r.route = 'remote' AND r.quarantine_kind IS NULL",
    ] {
        let plan = query_plan(
            &s,
            &format!(
                "SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.status = 'Pending' AND r.next_attempt <= 10 \
                   AND (r.lease_until IS NULL OR r.lease_until <= 10) {route} \
                 ORDER BY r.next_attempt, r.id LIMIT 5"
            ),
        );
        assert!(
            plan.contains("USING INDEX recipients_due"),
            "{route}: {plan}"
        );
    }
}

#[test]
fn a_100000_member_expansion_adds_each_address_once() {
    let (_d, s) = store();
    let t = tenant(&s);
    s.enqueue(message(
        "big",
        t,
        1,
        &[
            ("all@contoso.test", Route::Group(1)),
            ("m5@contoso.test", Route::Relay),
        ],
    ))
    .wait()
    .unwrap();
    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 10)
        .unwrap();
    let group = due[0]
        .recipients
        .iter()
        .find(|r| matches!(r.route, Route::Group(_)))
        .unwrap()
        .id;
    // 100,000 members; every tenth repeats an earlier one, and m5 is already a recipient.
    let members: Vec<ExpandedRecipient> = (0..100_000)
        .map(|i| {
            let n = if i % 10 == 9 { i / 10 } else { i };
            ExpandedRecipient {
                address: format!("m{n}@contoso.test"),
                tenant_id: t,
                route: Route::Relay,
                group_id: None,
                report_to: None,
                detail: "Recipient through group all".into(),
                fail: None,
            }
        })
        .collect();
    let outcome = GroupOutcome::Expand {
        detail: "Expanded".into(),
        reason: None,
        members,
    };
    assert!(
        s.route_group_recipient(group, due[0].id, outcome.clone(), Timestamp(11))
            .wait()
            .unwrap()
    );
    let count = |s: &SqliteStore| {
        s.read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*), count(DISTINCT address) FROM recipients",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?)
        })
        .unwrap()
    };
    // The group and 91,000 distinct members (m5 among them, once): 90,000 addresses of members
    // that are not repeats, and the 1,000 repeated ones (m9, m19, ...) that none of those has.
    assert_eq!(count(&s), (91_001, 91_001));
    // Replayed: the group is no longer pending, nothing is added.
    assert!(
        !s.route_group_recipient(group, due[0].id, outcome, Timestamp(12))
            .wait()
            .unwrap()
    );
    assert_eq!(count(&s).0, 91_001);

    // A small expansion of the same message (a nested group) is checked member by member.
    let nested = GroupOutcome::Expand {
        detail: "Expanded".into(),
        reason: None,
        members: ["m1@contoso.test", "new@contoso.test", "new@contoso.test"]
            .iter()
            .map(|a| ExpandedRecipient {
                address: (*a).into(),
                tenant_id: t,
                route: Route::Relay,
                group_id: None,
                report_to: None,
                detail: "nested".into(),
                fail: None,
            })
            .collect(),
    };
    let some_member = s
        .due_deliveries(Timestamp(20), &lease(Timestamp(20)), 1)
        .unwrap()[0]
        .recipients[0]
        .id;
    assert!(
        s.route_group_recipient(some_member, due[0].id, nested, Timestamp(21))
            .wait()
            .unwrap()
    );
    assert_eq!(count(&s).0, 91_002);
}

#[test]
fn newer_messages_are_not_queued_behind_a_big_one() {
    let (_d, s) = store();
    let t = tenant(&s);
    let addresses: Vec<String> = (0..600).map(|i| format!("m{i}@contoso.test")).collect();
    let big: Vec<(&str, Route)> = addresses
        .iter()
        .map(|a| (a.as_str(), Route::Relay))
        .collect();
    s.enqueue(message("big", t, 1, &big)).wait().unwrap();
    s.enqueue(message("small", t, 2, &[("x@contoso.test", Route::Relay)]))
        .wait()
        .unwrap();
    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 512)
        .unwrap();
    let big = due.iter().find(|m| m.trace_id == "big").unwrap();
    assert_eq!(big.recipients.len(), 512);
    assert!(
        due.iter().any(|m| m.trace_id == "small"),
        "the small message waits behind 600 recipients of the big one"
    );
}
