//! Per-recipient queue state: one deferral mechanism (attempts, last error, backoff schedule,
//! expiry with `550 4.4.7`), leases that let several nodes share one queue, and the queue
//! listing. Times come from a `ManualClock`.

use hato_core::clock::{Clock, ManualClock};
use hato_core::directory::{DomainType, Route};
use hato_core::id::NodeId;
use hato_core::reason::{FigureValue, Stage};
use hato_core::trace::RecipientStatus;
use hato_core::{Reason, Refusal, Timestamp, reply};
use hato_store::*;

const HOUR: i64 = 3600;

struct World {
    dir: tempfile::TempDir,
    store: SqliteStore,
    clock: ManualClock,
    tenant: i64,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.create_tenant("contoso").wait().unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    World {
        dir,
        store,
        clock: ManualClock::new(Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap()),
        tenant: t.id,
    }
}

fn message(
    trace_id: &str,
    sender: &str,
    received: Timestamp,
    to: &[(&str, i64, Route)],
) -> NewMessage {
    NewMessage {
        trace_id: trace_id.into(),
        received,
        sender: sender.into(),
        client_ip: "192.0.2.1".into(),
        helo: "mx.fabrikam.test".into(),
        message_id: None,
        subject: Some(trace_id.into()),
        content: format!("Subject: {trace_id}\r\n\r\nbody\r\n").into_bytes(),
        spooled: None,
        recipients: to
            .iter()
            .map(|(address, tenant, route)| NewRecipient {
                address: (*address).into(),
                tenant_id: *tenant,
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
        authenticated: None,
        authenticated_from: None,
        sender_auth_failed: false,
        dsn: Default::default(),
        high_risk: false,
    }
}

/// A transient failure to route (RFC 3463 X.4.4), as a remote server's reply could be.
const UNROUTABLE: reply::Reply = reply::Reply::new(
    451,
    "4.4.4",
    "Unable to route to an outside domain; the message stays queued until it expires",
);

/// Waiting for outbound delivery, on the backoff schedule.
fn outside() -> Deferral {
    Deferral::new(
        UNROUTABLE,
        Reason::new(Stage::Delivery, "Waiting for outbound delivery"),
    )
}

fn lease(node: &str, now: Timestamp) -> Lease {
    Lease {
        owner: NodeId::new(node),
        until: now.plus_seconds(300),
    }
}

impl World {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Queues a message received now, to recipients of this world's tenant.
    fn send(&self, trace_id: &str, sender: &str, to: &[(&str, Route)]) {
        let to: Vec<(&str, i64, Route)> = to.iter().map(|(a, r)| (*a, self.tenant, *r)).collect();
        self.store
            .enqueue(message(trace_id, sender, self.now(), &to))
            .wait()
            .unwrap();
    }

    /// What is due now, taken by `node`: the local step's and the outbound agent's.
    fn take(&self, node: &str) -> Vec<QueuedMessage> {
        let mut due = self
            .store
            .due_deliveries(self.now(), &lease(node, self.now()), 100)
            .unwrap();
        due.extend(
            self.store
                .due_remote(self.now(), &lease(node, self.now()), 100)
                .unwrap(),
        );
        due
    }

    /// Applies one outcome to every recipient of `due`, now.
    fn complete(&self, due: &[QueuedMessage], outcome: RecipientOutcome) {
        let outcomes = due
            .iter()
            .map(|q| DeliveryOutcome {
                message_id: q.id,
                blob: StagedBlob::default(),
                size: 0,
                from_header: String::new(),
                subject: String::new(),
                null_sender: q.sender.is_empty(),
                recipients: q
                    .recipients
                    .iter()
                    .map(|r| (r.id, outcome.clone()))
                    .collect(),
            })
            .collect();
        let failed = self
            .store
            .complete_deliveries(outcomes, self.now())
            .wait()
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
    }

    fn rows(&self, q: QueueQuery) -> Vec<QueueRow> {
        self.store.queue(&q).unwrap().rows
    }

    /// The queue row of the message's (only) waiting recipient.
    fn row(&self, trace_id: &str) -> QueueRow {
        let mut q = QueueQuery::at(self.now());
        q.trace_id = Some(trace_id.into());
        let mut rows = self.rows(q);
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows.remove(0)
    }

    fn events(&self, trace_id: &str, event: &str) -> Vec<TraceDetailRow> {
        self.store
            .trace_detail(None, trace_id, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == event)
            .collect()
    }

    fn status(&self, trace_id: &str) -> String {
        self.store
            .trace(&TraceQuery {
                trace_id: Some(trace_id.into()),
                ..Default::default()
            })
            .unwrap()
            .rows[0]
            .status
            .clone()
    }
}

fn figure<'a>(reason: &'a Reason, name: &str) -> &'a FigureValue {
    reason
        .figure_value(name)
        .unwrap_or_else(|| panic!("no figure {name} in {reason:?}"))
}

fn text(s: impl Into<String>) -> FigureValue {
    FigureValue::Text(s.into())
}

#[test]
fn a_deferral_counts_the_attempt_keeps_the_last_error_and_follows_the_backoff_schedule() {
    let w = world();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("partner@fabrikam.test", Route::Remote)],
    );
    let start = w.now();
    let row = w.row("m");
    assert_eq!((row.status.as_str(), row.attempts), ("Ready", 0));
    assert_eq!(row.last_error, None);
    assert_eq!(row.expires, start.plus_seconds(48 * HOUR).to_rfc3339());
    // 1, 5, 15 and 30 minutes, then hourly.
    for (attempt, wait) in [
        (1, 60),
        (2, 300),
        (3, 900),
        (4, 1800),
        (5, 3600),
        (6, 3600),
        (7, 3600),
    ] {
        let due = w.take("node-a");
        assert_eq!(due.len(), 1, "attempt {attempt}");
        w.complete(&due, RecipientOutcome::Defer(outside()));
        let row = w.row("m");
        assert_eq!((row.status.as_str(), row.attempts), ("Retry", attempt));
        assert_eq!(row.next_attempt, w.now().plus_seconds(wait).to_rfc3339());
        assert_eq!((row.lease_owner, row.lease_until), (None, None));
        w.clock.advance_seconds(wait - 1);
        assert!(w.take("node-a").is_empty(), "due before its next attempt");
        w.clock.advance_seconds(1);
    }
    let row = w.row("m");
    assert_eq!(row.route, "remote");
    assert_eq!(
        row.last_error,
        Some(LastError {
            status: 451,
            enhanced_status: "4.4.4".into(),
            text: UNROUTABLE.text.to_string(),
            remote_host: String::new(),
            reason: Some(Reason::new(
                Stage::Delivery,
                "Waiting for outbound delivery"
            )),
        })
    );
    // One Defer event for the one error however often it was retried, with the reply's codes
    // (its text the detail), the remote host and the reason, attempt and times as figures.
    let defers = w.events("m", "Defer");
    assert_eq!(defers.len(), 1, "{defers:?}");
    let d = &defers[0];
    assert_eq!(
        (
            d.status,
            d.enhanced_status.as_deref(),
            d.detail.as_str(),
            d.remote_host.as_str()
        ),
        (Some(451), Some("4.4.4"), &*UNROUTABLE.text, "")
    );
    let reason = d.reason.as_ref().expect("a reason");
    assert_eq!(reason.text, "Waiting for outbound delivery");
    assert_eq!(figure(reason, "attempt"), &FigureValue::Integer(1));
    assert_eq!(
        figure(reason, "next_attempt"),
        &text(start.plus_seconds(60).to_rfc3339())
    );
    assert_eq!(
        figure(reason, "expires"),
        &text(start.plus_seconds(48 * HOUR).to_rfc3339())
    );

    // Another error is another event, and the new last error.
    let due = w.take("node-a");
    let other = Deferral::new(
        reply::processing_deferred("database error: disk I/O error"),
        Reason::new(
            Stage::Queue,
            "Processing failed: database error: disk I/O error",
        ),
    );
    w.complete(&due, RecipientOutcome::Defer(other));
    assert_eq!(w.events("m", "Defer").len(), 2);
    let last = w.row("m").last_error.unwrap();
    assert_eq!((last.status, last.enhanced_status.as_str()), (451, "4.3.0"));
    assert!(last.text.contains("disk I/O error"), "{last:?}");
    assert_eq!(retry_delay_secs(1), 60);
    assert_eq!(retry_delay_secs(100), 3600);
}

#[test]
fn a_recipient_deferred_at_its_expiry_fails_with_4_4_7_and_owes_an_ndr() {
    let w = world();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("partner@fabrikam.test", Route::Remote)],
    );
    let expires = w.now().plus_seconds(48 * HOUR);
    w.clock.advance_seconds(48 * HOUR - 30);
    let due = w.take("node-a");
    w.complete(&due, RecipientOutcome::Defer(outside()));
    // The last attempt is at the expiry, not a backoff step after it.
    let row = w.row("m");
    assert_eq!(row.next_attempt, expires.to_rfc3339());
    w.clock.advance_seconds(29);
    assert!(w.take("node-a").is_empty());
    w.clock.advance_seconds(1);
    let due = w.take("node-a");
    w.complete(&due, RecipientOutcome::Defer(outside()));

    assert_eq!(w.status("m"), "Failed");
    assert!(w.rows(QueueQuery::at(w.now())).is_empty());
    let fail = w.events("m", "Fail");
    assert_eq!(fail.len(), 1);
    assert_eq!(
        (
            fail[0].status,
            fail[0].enhanced_status.as_deref(),
            fail[0].detail.as_str()
        ),
        (Some(550), Some("4.4.7"), "QUEUE.Expired; message expired")
    );
    let reason = fail[0].reason.as_ref().expect("a reason");
    assert_eq!(reason.stage, Stage::Queue);
    assert_eq!(
        reason.rule.as_deref(),
        Some("queue.message_expiration_hours")
    );
    // The last error, quoted for admins.
    assert!(
        reason.text.contains("48 hours")
            && reason.text.contains("451 4.4.4")
            && reason.text.contains("Waiting for outbound delivery"),
        "{reason:?}"
    );
    assert_eq!(figure(reason, "attempts"), &FigureValue::Integer(2));
    assert_eq!(figure(reason, "last_status"), &FigureValue::Integer(451));
    assert_eq!(figure(reason, "last_enhanced_status"), &text("4.4.4"));
    // The sender is owed an NDR, which reports the expiry.
    let ndrs = w.store.due_ndrs(w.now(), 10).unwrap();
    assert_eq!(ndrs.len(), 1);
    assert_eq!(ndrs[0].sender, "bob@fabrikam.test");
    assert_eq!(ndrs[0].failed[0].reply, reply::MESSAGE_EXPIRED);
}

#[test]
fn the_message_expiration_is_the_stores_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path())
        .unwrap()
        .with_message_expiration(2);
    let received = Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap();
    store
        .enqueue(message(
            "m",
            "bob@fabrikam.test",
            received,
            &[("x@fabrikam.test", 1, Route::Remote)],
        ))
        .wait()
        .unwrap();
    let rows = store.queue(&QueueQuery::at(received)).unwrap().rows;
    assert_eq!(
        rows[0].expires,
        received.plus_seconds(2 * HOUR).to_rfc3339()
    );
}

#[test]
fn a_null_sender_message_expires_without_an_ndr() {
    let w = world();
    // An NDR to an outside sender, queued with the null reverse-path.
    w.send("ndr", "", &[("bob@fabrikam.test", Route::Remote)]);
    w.clock.advance_seconds(48 * HOUR);
    let due = w.take("node-a");
    w.complete(&due, RecipientOutcome::Defer(outside()));
    assert_eq!(w.status("ndr"), "Failed");
    let events: Vec<String> = w
        .store
        .trace_detail(None, "ndr", None)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["Receive", "Fail", "Drop"]);
    let drop = &w.events("ndr", "Drop")[0];
    assert!(drop.detail.contains("RFC 5321 4.5.5"), "{drop:?}");
    assert!(w.store.due_ndrs(w.now(), 10).unwrap().is_empty());
}

#[test]
fn a_wait_kept_past_expiry_stays_pending_with_its_own_retry_time() {
    let w = world();
    w.send(
        "pm",
        "x@fabrikam.test",
        &[("postmaster", Route::Postmaster)],
    );
    w.clock.advance_seconds(49 * HOUR);
    let waiting = || {
        Deferral::new(
            reply::POSTMASTER_NOT_CONFIGURED,
            Reason::new(
                Stage::Delivery,
                "No platform postmaster mailbox is configured",
            )
            .rule("smtp.postmaster"),
        )
        .retry_at(w.now().plus_seconds(10))
        .kept_past_expiry()
    };
    for attempt in 1..=3 {
        let due = w.take("node-a");
        assert_eq!(due.len(), 1);
        w.complete(&due, RecipientOutcome::Defer(waiting()));
        let row = w.row("pm");
        assert_eq!(row.attempts, attempt);
        assert_eq!(row.next_attempt, w.now().plus_seconds(10).to_rfc3339());
        w.clock.advance_seconds(10);
    }
    assert_eq!(w.status("pm"), "Pending");
    // One event, which says it does not expire.
    let defers = w.events("pm", "Defer");
    assert_eq!(defers.len(), 1);
    assert!(defers[0].detail.contains("without expiry"), "{defers:?}");
    let reason = defers[0].reason.as_ref().unwrap();
    assert_eq!(figure(reason, "expires"), &text("never"));
}

#[test]
fn a_lease_hides_recipients_from_another_node_until_it_runs_out() {
    let w = world();
    // A second node on the same database (its own connections and writer).
    let other = SqliteStore::open(w.dir.path()).unwrap();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("partner@fabrikam.test", Route::Remote)],
    );
    let start = w.now();
    let took = w.take("node-a");
    assert_eq!(took.len(), 1);
    let row = w.row("m");
    assert_eq!(row.status, "Active");
    assert_eq!(row.lease_owner.as_deref(), Some("node-a"));
    assert_eq!(row.lease_until, Some(start.plus_seconds(300).to_rfc3339()));
    let mut active = QueueQuery::at(w.now());
    active.status = Some(QueueStatus::Active);
    assert_eq!(w.rows(active).len(), 1);

    // Nobody else is handed it while the lease runs (nor node-a itself, which has it).
    let take_other = |now: Timestamp| other.due_remote(now, &lease("node-b", now), 10).unwrap();
    assert!(take_other(w.now()).is_empty());
    assert!(w.take("node-a").is_empty());
    w.clock.advance_seconds(299);
    assert!(take_other(w.now()).is_empty());
    // node-a died: once its lease has run out, anyone may take the recipient.
    w.clock.advance_seconds(1);
    assert_eq!(w.row("m").status, "Ready", "a lease that ran out is void");
    let took = take_other(w.now());
    assert_eq!(took.len(), 1);
    assert_eq!(w.row("m").lease_owner.as_deref(), Some("node-b"));

    // Completing (a deferral, here) ends the lease.
    let outcome = DeliveryOutcome {
        message_id: took[0].id,
        blob: StagedBlob::default(),
        size: 0,
        from_header: String::new(),
        subject: String::new(),
        null_sender: false,
        recipients: vec![(took[0].recipients[0].id, RecipientOutcome::Defer(outside()))],
    };
    other
        .complete_deliveries(vec![outcome], w.now())
        .wait()
        .unwrap();
    let row = w.row("m");
    assert_eq!(
        (row.status.as_str(), row.lease_owner, row.lease_until),
        ("Retry", None, None)
    );
}

#[test]
fn completing_a_delivery_ends_its_lease() {
    let w = world();
    let mailbox = w
        .store
        .create_mailbox(NewMailbox {
            tenant_id: w.tenant,
            address: "alice@contoso.test".into(),
            display_name: "Alice".into(),
            mailbox_type: hato_core::directory::MailboxType::User,
            aliases: vec![],
            attributes: Default::default(),
            quota_bytes: 1 << 20,
        })
        .wait()
        .unwrap();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("alice@contoso.test", Route::Local(mailbox.id))],
    );
    let due = w.take("node-a");
    let leased = |w: &World| {
        w.store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM recipients WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap()
    };
    assert_eq!(leased(&w), 1);
    w.complete(
        &due,
        RecipientOutcome::Store {
            mailbox: mailbox.id,
            folder: Folder::Inbox,
        },
    );
    assert_eq!(w.status("m"), "Delivered");
    assert_eq!(leased(&w), 0);
}

#[test]
fn leases_of_a_process_that_is_gone_are_released_when_the_store_opens() {
    let w = world();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("partner@fabrikam.test", Route::Remote)],
    );
    assert_eq!(w.take("node-a").len(), 1);
    let World {
        dir, store, clock, ..
    } = w;
    // The process is killed with the lease running; the next one opens the store.
    store.close();
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    let now = clock.now();
    assert_eq!(
        reopened
            .due_remote(now, &lease("node-b", now), 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_ndr_that_cannot_be_generated_is_retried_then_given_up() {
    let w = world();
    w.send(
        "m",
        "bob@fabrikam.test",
        &[("gone@contoso.test", Route::Relay)],
    );
    let due = w.take("node-a");
    let refusal = Refusal::new(
        reply::RECIPIENT_NOT_FOUND,
        Reason::new(
            Stage::Recipient,
            "No recipient answers to gone@contoso.test",
        ),
    );
    w.complete(&due, RecipientOutcome::Fail(refusal));
    let failed_at = w.now();
    let ndr = w.store.due_ndrs(w.now(), 10).unwrap();
    assert_eq!(ndr.len(), 1);
    let defer_ndr = |w: &World| {
        w.store
            .defer(
                vec![DeferredWork {
                    recipients: vec![ndr[0].failed[0].id],
                    work: QueueWork::Ndr,
                    deferral: Deferral::new(
                        reply::ndr_deferred("disk full"),
                        Reason::new(
                            Stage::Queue,
                            "Generating the non-delivery report failed: disk full",
                        ),
                    ),
                }],
                w.now(),
            )
            .wait()
            .unwrap()
    };
    defer_ndr(&w);
    assert!(w.store.due_ndrs(w.now(), 10).unwrap().is_empty());
    w.clock.advance_seconds(59);
    assert!(w.store.due_ndrs(w.now(), 10).unwrap().is_empty());
    w.clock.advance_seconds(1);
    assert_eq!(w.store.due_ndrs(w.now(), 10).unwrap().len(), 1);
    // Retried until the message expiration has passed since the failure, then given up.
    w.clock.advance_seconds(48 * HOUR - 60 - 10);
    defer_ndr(&w);
    assert!(w.store.due_ndrs(w.now(), 10).unwrap().is_empty());
    w.clock.advance_seconds(10);
    assert_eq!(w.now(), failed_at.plus_seconds(48 * HOUR));
    assert_eq!(w.store.due_ndrs(w.now(), 10).unwrap().len(), 1);
    defer_ndr(&w);
    w.clock.advance_seconds(30 * 24 * HOUR);
    assert!(
        w.store.due_ndrs(w.now(), 10).unwrap().is_empty(),
        "given up"
    );
    let dsn = w.events("m", "Dsn");
    assert_eq!(dsn.len(), 1);
    assert!(
        dsn[0].detail.contains("No non-delivery report was sent"),
        "{dsn:?}"
    );
    let reason = dsn[0].reason.as_ref().unwrap();
    assert!(reason.text.contains("disk full"), "{reason:?}");
    assert_eq!(figure(reason, "attempts"), &FigureValue::Integer(3));
    assert_eq!(w.events("m", "Defer").len(), 1);
}

#[test]
fn members_expire_with_their_group_and_an_approval_restarts_the_clock() {
    let w = world();
    w.send(
        "g",
        "bob@fabrikam.test",
        &[
            ("list@contoso.test", Route::Group(1)),
            ("held@contoso.test", Route::Group(2)),
        ],
    );
    let received = w.now();
    let due = w.take("node-a");
    let ids: Vec<i64> = due[0].recipients.iter().map(|r| r.id).collect();
    w.clock.advance_seconds(HOUR);
    let expand = GroupOutcome::Expand {
        detail: "Expanded".into(),
        reason: None,
        members: vec![ExpandedRecipient {
            address: "partner@fabrikam.test".into(),
            tenant_id: w.tenant,
            route: Route::Remote,
            group_id: None,
            report_to: None,
            detail: "Recipient through group list".into(),
            fail: None,
        }],
    };
    assert!(
        w.store
            .route_group_recipient(ids[0], due[0].id, expand, w.now())
            .wait()
            .unwrap()
    );
    let hold = GroupOutcome::Hold {
        group_id: 2,
        tenant_id: w.tenant,
        expires: w.now().plus_seconds(48 * HOUR),
        reason: Reason::new(Stage::Moderation, "Held"),
    };
    assert!(
        w.store
            .route_group_recipient(ids[1], due[0].id, hold, w.now())
            .wait()
            .unwrap()
    );
    // The member expires with the message; the held recipient is not in the delivery queue.
    let rows = w.rows(QueueQuery::at(w.now()));
    let addresses: Vec<&str> = rows.iter().map(|r| r.recipient.as_str()).collect();
    assert_eq!(addresses, ["partner@fabrikam.test"]);
    assert_eq!(
        rows[0].expires,
        received.plus_seconds(48 * HOUR).to_rfc3339()
    );
    // A moderator approves a day later: the message gets its time in the queue again.
    w.clock.advance_seconds(24 * HOUR);
    let held = w.store.moderation_queue(None, None, None).unwrap();
    w.store
        .decide_moderation(
            held[0].id,
            ModerationState::Approved,
            "mod@contoso.test".into(),
            String::new(),
            w.now(),
        )
        .wait()
        .unwrap();
    let mut q = QueueQuery::at(w.now());
    q.recipient = Some("held@contoso.test".into());
    assert_eq!(
        w.rows(q)[0].expires,
        w.now().plus_seconds(48 * HOUR).to_rfc3339()
    );
}

#[test]
fn the_queue_lists_waiting_recipients_by_tenant_status_address_and_page() {
    let w = world();
    let fabrikam = w.store.create_tenant("fabrikam").wait().unwrap();
    let to = |address: &'static str, tenant: i64| (address, tenant, Route::Remote);
    let send = |trace_id: &str, to: &[(&str, i64, Route)]| {
        w.store
            .enqueue(message(trace_id, "bob@fabrikam.test", w.now(), to))
            .wait()
            .unwrap();
        w.clock.advance_seconds(1);
    };
    send(
        "m1",
        &[
            to("a@outside.test", w.tenant),
            to("b@elsewhere.test", w.tenant),
        ],
    );
    send("m2", &[to("c@outside.test", fabrikam.id)]);
    // m1's first recipient and m2's are deferred (Retry); m1's second stays leased (Active).
    let due = w.take("node-a");
    let outcomes: Vec<DeliveryOutcome> = due
        .iter()
        .map(|q| DeliveryOutcome {
            message_id: q.id,
            blob: StagedBlob::default(),
            size: 0,
            from_header: String::new(),
            subject: String::new(),
            null_sender: false,
            recipients: vec![(q.recipients[0].id, RecipientOutcome::Defer(outside()))],
        })
        .collect();
    w.store
        .complete_deliveries(outcomes, w.now())
        .wait()
        .unwrap();
    send("m3", &[to("d@outside.test", w.tenant)]);

    let list = |f: &dyn Fn(&mut QueueQuery)| {
        let mut q = QueueQuery::at(w.now());
        f(&mut q);
        w.rows(q)
            .into_iter()
            .map(|r| format!("{} {}", r.recipient, r.status))
            .collect::<Vec<_>>()
    };
    // The operator's view: everything waiting, oldest message first.
    assert_eq!(
        list(&|_| {}),
        [
            "a@outside.test Retry",
            "b@elsewhere.test Active",
            "c@outside.test Retry",
            "d@outside.test Ready"
        ]
    );
    let contoso = w.tenant;
    assert_eq!(
        list(&|q| q.tenant = Some(contoso)),
        [
            "a@outside.test Retry",
            "b@elsewhere.test Active",
            "d@outside.test Ready"
        ]
    );
    assert_eq!(
        list(&|q| q.tenant = Some(fabrikam.id)),
        ["c@outside.test Retry"]
    );
    assert_eq!(
        list(&|q| q.status = Some(QueueStatus::Retry)),
        ["a@outside.test Retry", "c@outside.test Retry"]
    );
    assert_eq!(
        list(&|q| q.status = Some(QueueStatus::Ready)),
        ["d@outside.test Ready"]
    );
    assert_eq!(
        list(&|q| q.recipient = Some("B@Elsewhere.test".into())),
        ["b@elsewhere.test Active"]
    );
    assert_eq!(
        list(&|q| q.domain = Some("outside.test".into())),
        [
            "a@outside.test Retry",
            "c@outside.test Retry",
            "d@outside.test Ready"
        ]
    );
    // A domain is matched whole, after the `@`.
    assert!(list(&|q| q.domain = Some("side.test".into())).is_empty());
    assert_eq!(
        list(&|q| q.trace_id = Some("m1".into())),
        ["a@outside.test Retry", "b@elsewhere.test Active"]
    );
    // Pages of two: the first says more follow, the last does not.
    let page = |n: usize| {
        let mut q = QueueQuery::at(w.now());
        q.page_size = 2;
        q.page = n;
        w.store.queue(&q).unwrap()
    };
    let (first, second) = (page(1), page(2));
    assert_eq!((first.rows.len(), first.more), (2, true));
    assert_eq!((second.rows.len(), second.more), (2, false));
    assert_eq!(second.rows[0].recipient, "c@outside.test");
    assert!(page(3).rows.is_empty());
}

/// Migration 12: recipients queued before it get an expiry (received + 48 hours), no last error
/// and no lease, and outside recipients, which nothing looked at before, are due.
#[test]
fn migrating_gives_queued_recipients_an_expiry_and_makes_outside_ones_due() {
    const OLD: usize = 11;
    let dir = tempfile::tempdir().unwrap();
    let received = Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("hato.db")).unwrap();
        for sql in &MIGRATIONS[..OLD] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", OLD as i64)
            .unwrap();
        conn.execute_batch(&format!(
            r#"
            INSERT INTO messages(id, trace_id, received, sender, client_ip, helo, message_id, subject, size, content)
                VALUES (1, 'old', {r}, '', '192.0.2.1', 'mx', '<old@x>', 'Undeliverable: x', 10,
                        CAST('Subject: x' || char(13, 10, 13, 10) || 'body' || char(13, 10) AS BLOB));
            INSERT INTO recipients(id, message_id, tenant_id, address, route, status, next_attempt, updated)
                VALUES (1, 1, 1, 'bob@fabrikam.test', 'remote', 'Pending', {r}, {r});
            "#,
            r = received.0
        ))
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let rows = s.queue(&QueueQuery::at(received)).unwrap().rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].expires,
        received.plus_seconds(48 * HOUR).to_rfc3339()
    );
    assert_eq!(
        (rows[0].attempts, &rows[0].last_error, &rows[0].lease_owner),
        (0, &None, &None)
    );
    let due = s
        .due_remote(received, &lease("node-a", received), 10)
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recipients[0].route, Route::Remote);
    // The pending outside recipient, deferred past its expiry, leaves the queue (an NDR: no
    // NDR of its own).
    let late = received.plus_seconds(72 * HOUR);
    let outcome = DeliveryOutcome {
        message_id: due[0].id,
        blob: StagedBlob::default(),
        size: 0,
        from_header: String::new(),
        subject: String::new(),
        null_sender: true,
        recipients: vec![(due[0].recipients[0].id, RecipientOutcome::Defer(outside()))],
    };
    s.complete_deliveries(vec![outcome], late).wait().unwrap();
    let status = s.trace(&TraceQuery::default()).unwrap().rows[0]
        .status
        .clone();
    assert_eq!(status, RecipientStatus::Failed.as_str());
    assert!(s.due_ndrs(late, 10).unwrap().is_empty());
}

/// Outside recipients are the outbound agent's: `due_remote` hands them out and
/// `due_deliveries` does not (nor `due_remote` the others); `Sent` delivers one with a `Send`
/// event carrying the remote host, its reply and the session's facts.
#[test]
fn outside_recipients_go_to_the_outbound_agent_and_are_sent() {
    let w = world();
    w.send(
        "mixed",
        "sender@contoso.test",
        &[
            ("partner@fabrikam.test", Route::Remote),
            ("bob@contoso.test", Route::Relay),
        ],
    );
    let now = w.now();
    let local = w
        .store
        .due_deliveries(now, &lease("node-a", now), 10)
        .unwrap();
    assert_eq!(local.len(), 1);
    assert_eq!(
        local[0]
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>(),
        ["bob@contoso.test"]
    );
    let remote = w.store.due_remote(now, &lease("node-a", now), 10).unwrap();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].recipients.len(), 1);
    assert_eq!(remote[0].recipients[0].address, "partner@fabrikam.test");
    assert_eq!(remote[0].recipients[0].attempts, 0);
    assert!(String::from_utf8_lossy(&remote[0].content).contains("Subject: mixed"));
    let sent = SentRecord {
        reply: hato_core::reply::Reply::stored(250, "2.0.0", "Ok: queued as 4F2"),
        remote_host: "mx.fabrikam.test".into(),
        remote_ip: "192.0.2.25:25".into(),
        tls: Some(hato_core::TlsInfo {
            version: "TLS1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
        }),
        pool: "normal".into(),
        connector: None,
        relayed_dsn: false,
        mta_sts: None,
    };
    w.complete(&remote, RecipientOutcome::Sent(sent));
    let send = w.events("mixed", "Send");
    assert_eq!(send.len(), 1);
    let e = &send[0];
    assert_eq!(e.recipient, "partner@fabrikam.test");
    assert_eq!(
        (e.status, e.enhanced_status.as_deref(), e.detail.as_str()),
        (Some(250), Some("2.0.0"), "Ok: queued as 4F2")
    );
    assert_eq!(e.remote_host, "mx.fabrikam.test");
    let reason = e.reason.as_ref().unwrap();
    assert_eq!(figure(reason, "remote_ip"), &text("192.0.2.25:25"));
    assert_eq!(figure(reason, "pool"), &text("normal"));
    assert_eq!(figure(reason, "tls_version"), &text("TLS1.3"));
    let rows = w
        .store
        .trace(&TraceQuery {
            recipient: Some("partner@fabrikam.test".into()),
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(rows[0].status, "Delivered");
    // Sent is done: nobody is handed it again.
    assert!(
        w.store
            .due_remote(now, &lease("node-b", now), 10)
            .unwrap()
            .is_empty()
    );
}

/// No backscatter: a message whose sender failed SPF or DMARC never owes an NDR; a `Dsn`
/// event says why. The same failure for a sender that passed owes one.
#[test]
fn a_sender_that_failed_sender_authentication_is_owed_no_ndr() {
    let w = world();
    for (trace_id, failed) in [("forged", true), ("genuine", false)] {
        let mut m = message(
            trace_id,
            "someone@outside.test",
            w.now(),
            &[("partner@fabrikam.test", w.tenant, Route::Remote)],
        );
        m.sender_auth_failed = failed;
        w.store.enqueue(m).wait().unwrap();
    }
    let due = w.take("node-a");
    assert_eq!(due.len(), 2);
    w.complete(
        &due,
        RecipientOutcome::Fail(Refusal::new(
            hato_core::reply::Reply::stored(550, "5.1.1", "User unknown"),
            Reason::new(Stage::Delivery, "refused"),
        )),
    );
    let owed: Vec<String> = w
        .store
        .due_ndrs(w.now(), 10)
        .unwrap()
        .into_iter()
        .map(|n| n.trace_id)
        .collect();
    assert_eq!(owed, ["genuine"]);
    let dsn = w.events("forged", "Dsn");
    assert_eq!(dsn.len(), 1);
    assert!(dsn[0].detail.contains("failed SPF or DMARC"), "{dsn:?}");
    assert!(w.events("genuine", "Dsn").is_empty());
}
