//! The embedded store: group commit, isolation of failing writes, delivery bookkeeping, trace
//! queries and retention, migrations.

use hato_core::Timestamp;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::reason::{FigureValue, Stage};
use hato_core::trace::RecipientStatus;
use hato_store::*;
use std::sync::Arc;

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
    (dir, s)
}

/// The lease a test's single node takes due recipients under.
fn lease(now: Timestamp) -> Lease {
    Lease {
        owner: hato_core::id::NodeId::new("node-test"),
        until: now.plus_seconds(300),
    }
}

fn setup(s: &SqliteStore) -> (i64, i64) {
    let t = s.create_tenant("contoso").wait().unwrap();
    s.add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let m = s
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "alice@contoso.test".into(),
            display_name: "Alice".into(),
            mailbox_type: MailboxType::User,
            aliases: vec!["a@contoso.test".into()],
            attributes: MailboxAttributes::default(),
            quota_bytes: 10_000,
        })
        .wait()
        .unwrap();
    (t.id, m.id)
}

fn message(trace_id: &str, tenant: i64, mailbox: i64, received: i64, subject: &str) -> NewMessage {
    NewMessage {
        trace_id: trace_id.into(),
        received: Timestamp(received),
        sender: "bob@fabrikam.test".into(),
        client_ip: "192.0.2.1".into(),
        helo: "mx.fabrikam.test".into(),
        message_id: Some(format!("<{trace_id}@fabrikam.test>")),
        subject: Some(subject.into()),
        content: format!("Subject: {subject}\r\n\r\nbody\r\n").into_bytes(),
        spooled: None,
        recipients: vec![NewRecipient {
            address: "alice@contoso.test".into(),
            tenant_id: tenant,
            route: Route::Local(mailbox),
            extra_events: vec![],
            receive_reason: None,
            quarantine: None,
            finished: None,
            stamp: String::new(),
            junk: false,
            connector: None,
            dsn: Default::default(),
        }],
        receive_detail: "received".into(),
        reports_on: vec![],
        authenticated: None,
        authenticated_from: None,
        sender_auth_failed: false,
        dsn: Default::default(),
        high_risk: false,
    }
}

#[test]
fn concurrent_writes_are_all_committed() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    s.enqueue(message(&format!("t-{i}-{j}"), t, m, 1, "x"))
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let rows = s
        .trace(&TraceQuery {
            page_size: 10_000,
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 400);
}

#[test]
fn a_failing_write_does_not_spoil_its_batch() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    // Queue many writes at once so they share transactions; every other one is a duplicate.
    let pendings: Vec<_> = (0..200)
        .map(|i| s.enqueue(message(&format!("dup-{}", i / 2), t, m, 1, "x")))
        .collect();
    let results: Vec<_> = pendings.into_iter().map(|p| p.wait()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 100);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::Conflict(_))))
    );
    assert_eq!(
        s.trace(&TraceQuery {
            page_size: 10_000,
            ..Default::default()
        })
        .unwrap()
        .rows
        .len(),
        100
    );
}

#[test]
fn delivery_applies_quota_and_is_idempotent() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    s.enqueue(message("one", t, m, 1, "first")).wait().unwrap();
    s.enqueue(message("two", t, m, 2, "second")).wait().unwrap();
    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
        .unwrap();
    assert_eq!(due.len(), 2);
    let outcome = |q: &QueuedMessage, size| DeliveryOutcome {
        message_id: q.id,
        blob: s.stage_blob(q.content.clone()).unwrap(),
        size,
        from_header: "bob".into(),
        subject: "s".into(),
        null_sender: false,
        recipients: vec![(
            q.recipients[0].id,
            RecipientOutcome::Store {
                mailbox: m,
                folder: Folder::Inbox,
            },
        )],
    };
    let outcomes = vec![outcome(&due[0], 6_000), outcome(&due[1], 6_000)];
    s.complete_deliveries(outcomes.clone(), Timestamp(11))
        .wait()
        .unwrap();
    // Applying the same outcomes again changes nothing.
    s.complete_deliveries(outcomes, Timestamp(12))
        .wait()
        .unwrap();
    assert_eq!(s.mail_list(m, None).unwrap().len(), 1);
    let failed = s
        .trace(&TraceQuery {
            status: Some(RecipientStatus::Failed),
            ..Default::default()
        })
        .unwrap()
        .rows;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].trace_id, "two");
    // The failure is recorded as data: the reply's codes in their fields, its text as the
    // detail, and why, with the figures that decided it.
    let detail = s.trace_detail(None, "two", None).unwrap();
    let fail = &detail[1];
    assert_eq!(fail.event, "Fail");
    assert_eq!(
        (
            fail.status,
            fail.enhanced_status.as_deref(),
            fail.remote_host.as_str()
        ),
        (Some(554), Some("5.2.2"), "")
    );
    assert_eq!(fail.detail, hato_core::reply::MAILBOX_FULL.text);
    let reason = fail.reason.as_ref().expect("a reason");
    assert_eq!(reason.stage, Stage::Delivery);
    assert_eq!(reason.rule.as_deref(), Some("mailbox quota"));
    let figures: Vec<(&str, &FigureValue)> = reason
        .figures
        .iter()
        .map(|f| (f.name.as_str(), &f.value))
        .collect();
    assert_eq!(
        figures,
        [
            ("size", &FigureValue::Integer(6_000)),
            ("used", &FigureValue::Integer(6_000)),
            ("limit", &FigureValue::Integer(10_000))
        ]
    );
    // The other events have no reply.
    assert_eq!((detail[0].status, &detail[0].reason), (None, &None));
    let mb = s.mailbox_by_address("a@contoso.test").unwrap().unwrap();
    assert_eq!(mb.used_bytes, 6_000);
    let ndrs = s.due_ndrs(Timestamp(12), 10).unwrap();
    assert_eq!(ndrs.len(), 1);
    assert_eq!(ndrs[0].failed[0].address, "alice@contoso.test");
    // The NDR reports the reply as it was recorded.
    assert_eq!(ndrs[0].failed[0].reply, hato_core::reply::MAILBOX_FULL);
    assert!(
        s.due_deliveries(Timestamp(20), &lease(Timestamp(20)), 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn trace_filters() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    s.enqueue(message("a", t, m, 1_000, "Invoice 100% paid"))
        .wait()
        .unwrap();
    s.enqueue(message("b", t, m, 2_000, "Re: Invoice"))
        .wait()
        .unwrap();
    let q = |f: TraceQuery| {
        s.trace(&f)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.trace_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        q(TraceQuery {
            subject: Some("Invoice".into()),
            ..Default::default()
        }),
        ["b", "a"]
    );
    assert_eq!(
        q(TraceQuery {
            subject: Some("invoice".into()),
            subject_filter: SubjectFilter::StartsWith,
            ..Default::default()
        }),
        ["a"]
    );
    // LIKE wildcards in the search text are literal.
    assert_eq!(
        q(TraceQuery {
            subject: Some("100%".into()),
            ..Default::default()
        }),
        ["a"]
    );
    assert!(
        q(TraceQuery {
            subject: Some("pai_".into()),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        q(TraceQuery {
            start: Some(Timestamp(1_500)),
            ..Default::default()
        }),
        ["b"]
    );
    assert_eq!(
        q(TraceQuery {
            end: Some(Timestamp(1_500)),
            ..Default::default()
        }),
        ["a"]
    );
    assert_eq!(
        q(TraceQuery {
            message_id: Some("a@fabrikam.test".into()),
            ..Default::default()
        }),
        ["a"]
    );
    assert_eq!(
        q(TraceQuery {
            message_id: Some("<b@fabrikam.test>".into()),
            ..Default::default()
        }),
        ["b"]
    );
    assert_eq!(
        q(TraceQuery {
            from_ip: Some("192.0.2.1".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert!(
        q(TraceQuery {
            tenant: Some(t + 1),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        q(TraceQuery {
            sender: Some("BOB@fabrikam.test".into()),
            ..Default::default()
        })
        .len(),
        2
    );
}

#[test]
fn retention_removes_finished_old_trace_only() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let day = 86_400_000_000i64;
    s.enqueue(message("old-done", t, m, day, "x"))
        .wait()
        .unwrap();
    s.enqueue(message("old-pending", t, m, day, "x"))
        .wait()
        .unwrap();
    s.enqueue(message("new-done", t, m, 100 * day, "x"))
        .wait()
        .unwrap();
    let due = s
        .due_deliveries(Timestamp(200 * day), &lease(Timestamp(200 * day)), 10)
        .unwrap();
    let outcomes: Vec<_> = due
        .iter()
        .filter(|q| q.trace_id != "old-pending")
        .map(|q| DeliveryOutcome {
            message_id: q.id,
            blob: s.stage_blob(q.content.clone()).unwrap(),
            size: 10,
            from_header: String::new(),
            subject: String::new(),
            null_sender: false,
            recipients: vec![(
                q.recipients[0].id,
                RecipientOutcome::Store {
                    mailbox: m,
                    folder: Folder::Inbox,
                },
            )],
        })
        .collect();
    s.complete_deliveries(outcomes, Timestamp(200 * day))
        .wait()
        .unwrap();
    let removed = s
        .purge_trace(Timestamp(100 * day).minus_days(90))
        .wait()
        .unwrap();
    assert_eq!(removed, 1);
    let left: Vec<_> = s
        .trace(&TraceQuery::default())
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.trace_id)
        .collect();
    assert_eq!(left, ["new-done", "old-pending"]);
    // The mailbox keeps its message; only trace goes.
    assert_eq!(s.mail_list(m, None).unwrap().len(), 2);
}

#[test]
fn reopening_keeps_data_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        setup(&s);
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.tenants().unwrap().len(), 1);
    assert!(
        s.mailbox_by_address("alice@contoso.test")
            .unwrap()
            .is_some()
    );
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("hato.db")).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn directory_rules() {
    let (_d, s) = store();
    let (t, _) = setup(&s);
    let other = s.create_tenant("fabrikam").wait().unwrap();
    s.add_domain("fabrikam.test", other.id, DomainType::InternalRelay)
        .wait()
        .unwrap();
    assert!(matches!(
        s.add_domain("contoso.test", other.id, DomainType::Authoritative)
            .wait(),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_tenant("CONTOSO").wait(),
        Err(StoreError::Conflict(_))
    ));
    let mk = |tenant, address: &str, aliases: Vec<String>| NewMailbox {
        tenant_id: tenant,
        address: address.into(),
        display_name: String::new(),
        mailbox_type: MailboxType::Shared,
        aliases,
        attributes: MailboxAttributes::default(),
        quota_bytes: 1,
    };
    // An address of another tenant's domain, or one already taken, is refused.
    assert!(matches!(
        s.create_mailbox(mk(t, "x@fabrikam.test", vec![])).wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.create_mailbox(mk(t, "a@contoso.test", vec![])).wait(),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_mailbox(mk(t, "new@contoso.test", vec!["alice@contoso.test".into()]))
            .wait(),
        Err(StoreError::Conflict(_))
    ));
    // A refused mailbox leaves nothing behind.
    assert!(s.mailbox_by_address("new@contoso.test").unwrap().is_none());
    assert!(matches!(
        s.remove_domain("contoso.test").wait(),
        Err(StoreError::Invalid(_))
    ));
    s.remove_tenant(t).wait().unwrap();
    assert!(
        s.mailbox_by_address("alice@contoso.test")
            .unwrap()
            .is_none()
    );
    assert!(s.domain("contoso.test").unwrap().is_none());
}

#[test]
fn directory_versions_move_per_tenant() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let other = s.create_tenant("fabrikam").wait().unwrap();
    s.add_domain("fabrikam.test", other.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let before = (
        s.directory_version(t).unwrap(),
        s.directory_version(other.id).unwrap(),
    );
    let change = MailboxChange {
        display_name: Some("Alice W.".into()),
        ..Default::default()
    };
    s.update_mailbox(m, change).wait().unwrap();
    assert_eq!(s.directory_version(t).unwrap(), before.0 + 1);
    assert_eq!(
        s.directory_version(other.id).unwrap(),
        before.1,
        "the other tenant's cache stays valid"
    );
    // The snapshot carries the version it was read at.
    assert_eq!(s.tenant_directory(t).unwrap().version, before.0 + 1);
    // Removing a mailbox counts as a change of its tenant too.
    s.remove_mailbox(m).wait().unwrap();
    assert_eq!(s.directory_version(t).unwrap(), before.0 + 2);
}

#[test]
fn garbage_collection_removes_only_unreferenced_blobs() {
    let (dir, s) = store();
    let (t, m) = setup(&s);
    let other = s
        .create_mailbox(NewMailbox {
            tenant_id: t,
            address: "bob@contoso.test".into(),
            display_name: "Bob".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 30,
        })
        .wait()
        .unwrap();
    s.update_mailbox(
        m,
        MailboxChange {
            quota_bytes: Some(1 << 30),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    let deliver = |mailbox: i64, content: Vec<u8>, id: &str| {
        s.enqueue(message(id, t, mailbox, 1, "x")).wait().unwrap();
        let q = s
            .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
            .unwrap()
            .into_iter()
            .find(|q| q.trace_id == id)
            .unwrap();
        let size = content.len() as u64;
        let blob = s.stage_blob(content).unwrap();
        let hash = blob.hash.clone();
        let o = DeliveryOutcome {
            message_id: q.id,
            blob,
            size,
            from_header: String::new(),
            subject: String::new(),
            null_sender: false,
            recipients: vec![(
                q.recipients[0].id,
                RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
            )],
        };
        s.complete_deliveries(vec![o], Timestamp(11))
            .wait()
            .unwrap();
        hash
    };
    let small_gone = deliver(m, b"small, alice's".to_vec(), "a1");
    let large_gone = deliver(m, vec![b'L'; 100_000], "a2");
    let small_kept = deliver(other.id, b"small, bob's".to_vec(), "b1");
    let large_kept = deliver(other.id, vec![b'K'; 100_000], "b2");
    let files = || tempfile_count(&dir.path().join("blobs"));
    assert_eq!(files(), 2);
    // Nothing is unreferenced yet.
    assert_eq!(
        s.collect_garbage(std::time::Duration::ZERO).unwrap(),
        (0, 0)
    );
    s.remove_mailbox(m).wait().unwrap();
    // Young files are spared.
    assert_eq!(
        s.collect_garbage(std::time::Duration::from_secs(3600))
            .unwrap(),
        (1, 0)
    );
    assert_eq!(
        s.collect_garbage(std::time::Duration::ZERO).unwrap(),
        (0, 1)
    );
    assert_eq!(files(), 1);
    assert!(matches!(s.blob(&small_gone), Err(StoreError::NotFound(_))));
    assert!(matches!(s.blob(&large_gone), Err(StoreError::NotFound(_))));
    assert_eq!(s.blob(&small_kept).unwrap(), b"small, bob's");
    assert_eq!(s.blob(&large_kept).unwrap().len(), 100_000);
}

/// Blob files under `dir`, not counting the temporary directory.
fn tempfile_count(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name() == "tmp" {
            continue;
        }
        n += std::fs::read_dir(e.path()).map(|r| r.count()).unwrap_or(0);
    }
    n
}

/// Stores `q`'s first recipient in `mailbox`, as the delivery agent does.
fn deliver_to(s: &SqliteStore, q: &QueuedMessage, mailbox: i64, now: i64) -> Result<()> {
    s.complete_deliveries(
        vec![DeliveryOutcome {
            message_id: q.id,
            blob: s.stage_blob(q.content.clone())?,
            size: 10,
            from_header: String::new(),
            subject: q.trace_id.clone(),
            null_sender: false,
            recipients: vec![(
                q.recipients[0].id,
                RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
            )],
        }],
        Timestamp(now),
    )
    .wait()
    .map(|failed| assert!(failed.is_empty(), "{failed:?}"))
}

#[test]
fn ids_are_not_reused_after_retention_removes_the_newest_message() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let day = 86_400_000_000i64;
    s.enqueue(message("first", t, m, day, "x")).wait().unwrap();
    let first = s
        .due_deliveries(Timestamp(day), &lease(Timestamp(day)), 10)
        .unwrap()
        .remove(0);
    deliver_to(&s, &first, m, day).unwrap();
    // Retention removes the newest (and only) message; its mailbox item stays and still names
    // the recipient it came from.
    assert_eq!(s.purge_trace(Timestamp(2 * day)).wait().unwrap(), 1);
    s.enqueue(message("second", t, m, 3 * day, "y"))
        .wait()
        .unwrap();
    let second = s
        .due_deliveries(Timestamp(3 * day), &lease(Timestamp(3 * day)), 10)
        .unwrap()
        .remove(0);
    assert!(second.id > first.id, "message id {} reused", second.id);
    assert!(
        second.recipients[0].id > first.recipients[0].id,
        "recipient id {} reused",
        second.recipients[0].id
    );
    deliver_to(&s, &second, m, 3 * day).unwrap();
    let items = s.mail_list(m, None).unwrap();
    let subjects: Vec<&str> = items.iter().map(|i| i.subject.as_str()).collect();
    assert_eq!(subjects, ["second", "first"]);
    assert!(items[0].id > items[1].id);
    // And a mailbox item id is not reused once the newest item went with its mailbox.
    let bob = s
        .create_mailbox(NewMailbox {
            tenant_id: t,
            address: "bob@contoso.test".into(),
            display_name: "Bob".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 10_000,
        })
        .wait()
        .unwrap();
    let newest_item = items[0].id;
    s.remove_mailbox(m).wait().unwrap();
    let mut third = message("third", t, bob.id, 4 * day, "z");
    third.recipients[0].address = "bob@contoso.test".into();
    s.enqueue(third).wait().unwrap();
    let third = s
        .due_deliveries(Timestamp(4 * day), &lease(Timestamp(4 * day)), 10)
        .unwrap()
        .remove(0);
    deliver_to(&s, &third, bob.id, 4 * day).unwrap();
    let bobs = s.mail_list(bob.id, None).unwrap();
    assert!(
        bobs[0].id > newest_item,
        "mailbox item id {} reused",
        bobs[0].id
    );
}

/// The columns and indexes of a table, to compare a migrated schema with a fresh one.
fn table_shape(conn: &rusqlite::Connection, table: &str) -> (Vec<String>, Vec<String>) {
    let columns = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{} {} notnull={} default={:?} pk={}",
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?
            ))
        })
        .unwrap()
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    let mut indexes = conn
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1")
        .unwrap()
        .query_map([table], |r| {
            Ok(format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    indexes.sort();
    (columns, indexes)
}

#[test]
fn migrating_an_old_database_keeps_every_row_and_never_reuses_ids() {
    // The schema before ids were made permanent: migrations 1 to 5.
    const OLD: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hato.db");
    let old_shapes;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..OLD] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", OLD as i64)
            .unwrap();
        old_shapes = ["messages", "recipients", "mail_items"].map(|t| table_shape(&conn, t));
        conn.execute_batch(
            r#"
            PRAGMA foreign_keys = ON;
            INSERT INTO tenants(id, name, created) VALUES (1, 'contoso', 0);
            INSERT INTO domains(domain, tenant_id, type) VALUES ('contoso.test', 1, 'authoritative');
            INSERT INTO mailboxes(id, tenant_id, address, display_name, type, attributes, quota_bytes, created)
                VALUES (1, 1, 'alice@contoso.test', 'Alice', 'user', '{}', 1000000, 0);
            INSERT INTO addresses(address, mailbox_id, is_primary) VALUES ('alice@contoso.test', 1, 1);
            INSERT INTO groups(id, tenant_id, name, address, type, settings, created)
                VALUES (1, 1, 'Sales', 'sales@contoso.test', 'm365', '{}', 0);
            INSERT INTO conversations(id, group_id, topic, normalized, last_activity) VALUES (1, 1, 'Hi', 'hi', 0);
            -- Message 1 was delivered; message 2 is still pending; messages 3 and 4 (recipients
            -- 3 to 9) were delivered and then removed by retention, but their items remain.
            INSERT INTO messages(id, trace_id, received, sender, client_ip, helo, message_id, subject, size, content)
                VALUES (1, 'done', 1000, 'bob@fabrikam.test', '192.0.2.1', 'mx', '<done@x>', 'Delivered one', 10, NULL),
                       (2, 'pending', 2000, 'bob@fabrikam.test', '192.0.2.1', 'mx', '<pending@x>', 'Pending one', 31,
                        CAST('Subject: Pending one' || char(13, 10, 13, 10) || 'body' || char(13, 10) AS BLOB));
            INSERT INTO recipients(id, message_id, tenant_id, address, route, mailbox_id, status, ndr_state,
                                   next_attempt, updated, group_id, report_to, approved)
                VALUES (1, 1, 1, 'alice@contoso.test', 'local', 1, 'Delivered', 0, 1000, 1000, NULL, NULL, 0),
                       (2, 2, 1, 'alice@contoso.test', 'local', 1, 'Pending', 0, 2000, 2000, NULL, 'owner@contoso.test', 1);
            INSERT INTO trace_events(recipient_id, time, event, detail)
                VALUES (1, 1000, 'Receive', 'received'), (1, 1001, 'Deliver', 'delivered'),
                       (2, 2000, 'Receive', 'received');
            INSERT INTO mail_items(id, mailbox_id, folder, blob, received, from_header, subject, size, recipient_id)
                VALUES (1, 1, 'inbox', 'h1', 1001, 'bob', 'Delivered one', 10, 1),
                       (5, 1, 'inbox', 'h3', 3001, 'bob', 'Purged three', 10, 7);
            INSERT INTO group_items(id, group_id, conversation_id, blob, received, from_header, subject, size, message_id, recipient_id)
                VALUES (1, 1, 1, 'h4', 4001, 'bob', 'Purged four', 10, '<four@x>', 9);
            "#,
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    // Every row is still there, with its id.
    let rows = s.trace(&TraceQuery::default()).unwrap().rows;
    let traces: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.trace_id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(traces, [("pending", "Pending"), ("done", "Delivered")]);
    let events: Vec<String> = s
        .trace_detail(None, "done", None)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["Receive", "Deliver"]);
    let items: Vec<(i64, String)> = s
        .mail_list(1, None)
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.subject))
        .collect();
    assert_eq!(
        items,
        [
            (5, "Purged three".to_string()),
            (1, "Delivered one".to_string())
        ]
    );
    let pending = s
        .due_deliveries(Timestamp(10_000), &lease(Timestamp(10_000)), 10)
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id, pending[0].recipients[0].id), (2, 2));
    assert!(pending[0].recipients[0].approved);
    assert_eq!(pending[0].content, b"Subject: Pending one\r\n\r\nbody\r\n");
    // New ids start above every id still referenced anywhere (recipient 9, in a group item).
    s.enqueue(message("new", 1, 1, 5000, "New one"))
        .wait()
        .unwrap();
    let new = s
        .due_deliveries(Timestamp(10_000), &lease(Timestamp(10_000)), 10)
        .unwrap()
        .into_iter()
        .find(|q| q.trace_id == "new")
        .unwrap();
    assert!(new.id > 2, "message id {}", new.id);
    assert!(
        new.recipients[0].id > 9,
        "recipient id {}",
        new.recipients[0].id
    );
    deliver_to(&s, &new, 1, 6000).unwrap();
    deliver_to(&s, &pending[0], 1, 6000).unwrap();
    let newest = s.mail_list(1, None).unwrap();
    assert_eq!(newest.len(), 4);
    assert!(newest.iter().filter(|i| i.id > 5).count() == 2);
    // Foreign keys still cascade: retention takes the events with their message.
    assert_eq!(s.purge_trace(Timestamp(1500)).wait().unwrap(), 1);
    assert!(s.trace_detail(None, "done", None).unwrap().is_empty());
    s.close();
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM trace_events WHERE recipient_id NOT IN (SELECT id FROM recipients)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    // The same columns and indexes as before, and the same as a database made fresh.
    let fresh_dir = tempfile::tempdir().unwrap();
    SqliteStore::open(fresh_dir.path()).unwrap().close();
    let fresh = rusqlite::Connection::open(fresh_dir.path().join("hato.db")).unwrap();
    for (table, old) in ["messages", "recipients", "mail_items"]
        .iter()
        .zip(&old_shapes)
    {
        let migrated = table_shape(&conn, table);
        // Every old column is kept, in order (later migrations may add columns after them).
        assert_eq!(&migrated.0[..old.0.len()], &old.0[..], "{table} columns");
        // The indexes are those of a fresh database (later migrations replace some of the old
        // ones).
        assert_eq!(migrated, table_shape(&fresh, table), "{table} fresh");
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("AUTOINCREMENT"), "{sql}");
    }
}

/// Migration 11 adds the structured fields of trace events. Events written before it survive
/// with the new fields empty; a Fail event's reply (its detail began with it) is moved into the
/// fields, so an NDR still owed for it reports the right status.
#[test]
fn migrating_trace_events_keeps_them_and_moves_fail_replies_into_fields() {
    const OLD: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hato.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..OLD] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", OLD as i64)
            .unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO messages(id, trace_id, received, sender, client_ip, helo, message_id, subject, size, content)
                VALUES (1, 'old', 1000, 'bob@fabrikam.test', '192.0.2.1', 'mx', '<old@x>', 'Old', 10,
                        CAST('Subject: Old' || char(13, 10, 13, 10) || 'body' || char(13, 10) AS BLOB));
            INSERT INTO recipients(id, message_id, tenant_id, address, route, mailbox_id, status, ndr_state,
                                   next_attempt, updated)
                VALUES (1, 1, 1, 'alice@contoso.test', 'local', 1, 'Failed', 1, 1000, 1000),
                       (2, 1, 1, 'carol@contoso.test', 'local', 2, 'Delivered', 0, 1000, 1000);
            INSERT INTO trace_events(recipient_id, time, event, detail)
                VALUES (1, 1000, 'Receive', 'Received by mx from client'),
                       (1, 1001, 'Fail', '554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException (mailbox uses 1 of 2 bytes)'),
                       (2, 1000, 'Receive', 'Received by mx from client'),
                       (2, 1001, 'Deliver', 'Delivered to folder Inbox of mailbox carol@contoso.test');
            "#,
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let events = s.trace_detail(None, "old", None).unwrap();
    // Recipient, event, status, enhanced status, detail, and whether it has a reason or a
    // remote host.
    type Shown<'a> = (
        &'a str,
        &'a str,
        Option<u16>,
        Option<&'a str>,
        &'a str,
        bool,
    );
    let shown: Vec<Shown<'_>> = events
        .iter()
        .map(|e| {
            (
                e.recipient.as_str(),
                e.event.as_str(),
                e.status,
                e.enhanced_status.as_deref(),
                e.detail.as_str(),
                e.reason.is_some() || !e.remote_host.is_empty(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "alice@contoso.test",
                "Receive",
                None,
                None,
                "Received by mx from client",
                false
            ),
            (
                "alice@contoso.test",
                "Fail",
                Some(554),
                Some("5.2.2"),
                "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException (mailbox uses 1 of 2 bytes)",
                false
            ),
            (
                "carol@contoso.test",
                "Receive",
                None,
                None,
                "Received by mx from client",
                false
            ),
            (
                "carol@contoso.test",
                "Deliver",
                None,
                None,
                "Delivered to folder Inbox of mailbox carol@contoso.test",
                false
            ),
        ]
    );
    let ndrs = s.due_ndrs(Timestamp(2000), 10).unwrap();
    assert_eq!(ndrs.len(), 1);
    let reply = &ndrs[0].failed[0].reply;
    assert_eq!((reply.code, &*reply.status), (554, "5.2.2"));
    assert!(reply.text.starts_with("mailbox full;"), "{reply}");
}

#[test]
fn trace_pages_cover_every_row_once() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    // Pairs of messages share a receive time: the order must still be total.
    for i in 0..12 {
        s.enqueue(message(&format!("p{i:02}"), t, m, 1_000 + i / 2, "x"))
            .wait()
            .unwrap();
    }
    let page = |page| {
        s.trace(&TraceQuery {
            page,
            page_size: 5,
            ..Default::default()
        })
        .unwrap()
    };
    let pages: Vec<TracePage> = (1..=4).map(page).collect();
    let shape: Vec<(usize, bool)> = pages.iter().map(|p| (p.rows.len(), p.more)).collect();
    assert_eq!(shape, [(5, true), (5, true), (2, false), (0, false)]);
    let mut seen: Vec<String> = pages
        .iter()
        .flat_map(|p| p.rows.iter().map(|r| r.trace_id.clone()))
        .collect();
    // Newest first; the same time, in the order received.
    assert_eq!(seen[..3], ["p10", "p11", "p08"]);
    assert_eq!(seen[11], "p01");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);
    // A page that ends exactly at the last row says no more follow.
    let exact = s
        .trace(&TraceQuery {
            page: 2,
            page_size: 6,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((exact.rows.len(), exact.more), (6, false));
}

#[test]
fn two_concurrent_renames_to_one_name_cannot_both_win() {
    use hato_core::directory::{GroupSettings, GroupType};
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let group = |name: &str| {
        s.create_group(NewGroup {
            tenant_id: t,
            name: name.into(),
            address: None,
            group_type: GroupType::Security,
            settings: GroupSettings::defaults_for(GroupType::Security),
            owners: vec![m],
            members: vec![],
        })
        .wait()
        .unwrap()
    };
    let (a, b) = (group("Alpha"), group("Beta"));
    // Both renames are handed to the writer before either is committed.
    let rename = |id, name: &str| {
        s.update_group(
            id,
            GroupChange {
                name: Some(name.into()),
                ..Default::default()
            },
        )
    };
    let (first, second) = (rename(a.id, "Gamma"), rename(b.id, "GAMMA"));
    let results = [first.wait(), second.wait()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Conflict(_)))),
        "{results:?}"
    );
    let mut names: Vec<String> = s
        .groups(Some(t))
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    names.sort();
    assert!(
        names == ["Beta", "Gamma"] || names == ["Alpha", "GAMMA"],
        "{names:?}"
    );
    // A new group cannot take a taken name either, in any case.
    assert!(matches!(
        s.create_group(NewGroup {
            tenant_id: t,
            name: names[0].to_lowercase(),
            address: None,
            group_type: GroupType::Security,
            settings: GroupSettings::defaults_for(GroupType::Security),
            owners: vec![m],
            members: vec![],
        })
        .wait(),
        Err(StoreError::Conflict(_))
    ));
}

// ----- spooled (large) messages -------------------------------------------------------------------

/// The prefix hato puts in front of a spooled message, kept in the database.
const PREFIX: &[u8] = b"Received: from client.test by mx.hato.test; now\r\n";

/// A message whose content went to a spool file of the store; returns it, its body, and the
/// spool file's inode.
fn spooled_message(
    s: &SqliteStore,
    trace_id: &str,
    tenant: i64,
    mailbox: i64,
    size: usize,
) -> (NewMessage, Vec<u8>, u64) {
    use hato_core::MessageBody;
    use hato_core::body::StoredBody;
    use std::os::unix::fs::MetadataExt;
    let mut content = format!("Subject: {trace_id}\r\n\r\n").into_bytes();
    let mut i = 0;
    while content.len() < size {
        content.extend_from_slice(format!("line {i} of a large message\r\n").as_bytes());
        i += 1;
    }
    let mut body = MessageBody::new(4096, Some(s.spool()));
    for piece in content.chunks(1000) {
        body.append(piece);
    }
    let StoredBody::Spooled(spooled) = body.into_stored().unwrap() else {
        panic!("not spooled")
    };
    let inode = std::fs::metadata(spooled.file.path().unwrap())
        .unwrap()
        .ino();
    let mut m = message(trace_id, tenant, mailbox, 1, trace_id);
    m.content = PREFIX.to_vec();
    m.spooled = Some(spooled);
    (m, content, inode)
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A spooled message's file is moved (the same inode: not copied) into the queue when the
/// message is committed; delivery streams it into a blob; the queue file is removed once no
/// recipient needs it.
#[test]
fn a_spooled_message_is_moved_into_the_queue_and_removed_once_delivered() {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let (d, s) = store();
    let (t, m) = setup(&s);
    s.update_mailbox(
        m,
        MailboxChange {
            quota_bytes: Some(1 << 30),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    let (msg, body, inode) = spooled_message(&s, "big-1", t, m, 300_000);
    s.enqueue(msg).wait().unwrap();
    let queue_file = d.path().join("queue").join("big-1");
    assert_eq!(std::fs::metadata(&queue_file).unwrap().ino(), inode);
    assert_eq!(std::fs::read(&queue_file).unwrap(), body);
    assert!(files_in(&d.path().join("spool")).is_empty());
    let rows = s.trace(&TraceQuery::default()).unwrap().rows;
    assert_eq!(rows[0].size, (PREFIX.len() + body.len()) as u64);

    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
        .unwrap();
    let q = &due[0];
    assert_eq!(q.spool.as_deref(), Some(queue_file.as_path()));
    assert_eq!(q.content, PREFIX);
    let head = q.head().unwrap();
    assert!(head.starts_with(PREFIX) && head[PREFIX.len()..].starts_with(b"Subject: big-1\r\n"));

    let return_path = b"Return-Path: <bob@fabrikam.test>\r\n".to_vec();
    let mut stored = return_path.clone();
    stored.extend_from_slice(PREFIX);
    let (blob, size) = s
        .stage_spooled(
            [return_path, PREFIX.to_vec()].concat(),
            q.spool.as_deref().unwrap(),
        )
        .unwrap();
    stored.extend_from_slice(&body);
    assert_eq!(size, stored.len() as u64);
    assert_eq!(blob.hash, hex::encode(sha2::Sha256::digest(&stored)));
    assert_eq!(s.blob(&blob.hash).unwrap(), stored);

    let outcome = DeliveryOutcome {
        message_id: q.id,
        blob,
        size,
        from_header: "bob".into(),
        subject: "big".into(),
        null_sender: false,
        recipients: vec![(
            q.recipients[0].id,
            RecipientOutcome::Store {
                mailbox: m,
                folder: Folder::Inbox,
            },
        )],
    };
    s.complete_deliveries(vec![outcome], Timestamp(11))
        .wait()
        .unwrap();
    // It is removed right after the commit, off the writer thread.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while queue_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue file outlived its message"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(s.mail_list(m, None).unwrap().len(), 1);
}

/// At start-up, spool files (never committed) and queue files no message names are removed; a
/// committed message's queue file is found again.
#[test]
fn startup_removes_uncommitted_spool_files_and_keeps_committed_queue_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        let (t, m) = setup(&s);
        let (msg, _, _) = spooled_message(&s, "kept-1", t, m, 100_000);
        s.enqueue(msg).wait().unwrap();
        s.close();
    }
    std::fs::write(dir.path().join("spool").join("999-1"), b"half a message").unwrap();
    std::fs::write(
        dir.path().join("queue").join("orphan-1"),
        b"moved, never committed",
    )
    .unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    assert!(files_in(&dir.path().join("spool")).is_empty());
    assert_eq!(files_in(&dir.path().join("queue")), ["kept-1"]);
    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].spool.as_ref().is_some_and(|p| p.exists()));
}

/// A failing row (here: a duplicate trace id) leaves no queue file behind.
#[test]
fn a_spooled_message_that_cannot_be_committed_leaves_no_file() {
    let (d, s) = store();
    let (t, m) = setup(&s);
    s.enqueue(message("dup-1", t, m, 1, "x")).wait().unwrap();
    let (msg, _, _) = spooled_message(&s, "dup-1", t, m, 100_000);
    assert!(s.enqueue(msg).wait().is_err());
    assert!(files_in(&d.path().join("queue")).is_empty());
    assert!(files_in(&d.path().join("spool")).is_empty());
}

/// One batch of due deliveries loads a bounded amount of content (at least one message), and
/// leases only what it hands out.
#[test]
fn due_deliveries_load_a_bounded_amount_of_content() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let big = DUE_CONTENT_BUDGET / 2 + 1024 * 1024;
    for i in 0..3 {
        let mut msg = message(&format!("b-{i}"), t, m, i, "big");
        msg.content = vec![b'x'; big];
        s.enqueue(msg).wait().unwrap();
    }
    let due = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
        .unwrap();
    assert_eq!(due.len(), 2, "loaded {} bytes", due.len() * big);
    assert!(due.iter().all(|q| q.content.len() == big));
    // The message left out was not leased with the others: the next batch takes it at once.
    let rest = s
        .due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
        .unwrap();
    let left: Vec<&str> = rest.iter().map(|q| q.trace_id.as_str()).collect();
    assert_eq!(left, ["b-2"]);
    let mut msg = message("huge", t, m, 0, "huge");
    msg.content = vec![b'x'; DUE_CONTENT_BUDGET + 1];
    let (_d2, s2) = store();
    let (t2, m2) = setup(&s2);
    msg.recipients[0].tenant_id = t2;
    msg.recipients[0].route = Route::Local(m2);
    s2.enqueue(msg).wait().unwrap();
    assert_eq!(
        s2.due_deliveries(Timestamp(10), &lease(Timestamp(10)), 100)
            .unwrap()
            .len(),
        1
    );
}

// ----- the injected clock -------------------------------------------------------------------------

/// Every row the store stamps itself (`created` of tenants, mailboxes, groups, tokens and join
/// requests) carries the time of the clock it was opened with, not the system's.
#[test]
fn rows_the_store_stamps_carry_the_injected_clock_time() {
    use hato_core::clock::ManualClock;
    use hato_core::directory::{GroupSettings, GroupType};
    let dir = tempfile::tempdir().unwrap();
    // 2030-01-01T00:00:00Z: years away from any system clock this test runs under.
    let start = Timestamp(1_893_456_000_000_000);
    let clock = Arc::new(ManualClock::new(start));
    let s = SqliteStore::open_with_clock(dir.path(), clock.clone()).unwrap();
    // Each row is made a minute after the one before, so a row stamped with another row's time
    // (or the system's) shows.
    let at = |minutes: i64| start.plus_seconds(60 * minutes).0;

    let t = s.create_tenant("contoso").wait().unwrap();
    s.add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    clock.advance_seconds(60);
    let m = s
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "alice@contoso.test".into(),
            display_name: "Alice".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 10_000,
        })
        .wait()
        .unwrap();
    clock.advance_seconds(60);
    let g = s
        .create_group(NewGroup {
            tenant_id: t.id,
            name: "Sales".into(),
            address: Some("sales@contoso.test".into()),
            group_type: GroupType::Distribution,
            settings: GroupSettings::defaults_for(GroupType::Distribution),
            owners: vec![m.id],
            members: vec![],
        })
        .wait()
        .unwrap();
    clock.advance_seconds(60);
    s.add_token(
        &hash_token("secret"),
        TokenInfo {
            role: hato_core::auth::Role::TenantAdmin,
            tenant_id: Some(t.id),
            mailbox_id: None,
            expires: None,
        },
    )
    .wait()
    .unwrap();
    clock.advance_seconds(60);
    let request = s
        .add_join_request(g.id, m.id, JoinRequestKind::Join)
        .wait()
        .unwrap();

    // Through the API type that carries the time…
    assert_eq!(request.created, Timestamp(at(4)));
    assert_eq!(s.join_requests(g.id).unwrap()[0].created, Timestamp(at(4)));
    // …and in the columns themselves.
    let created = |sql: &str, key: &dyn rusqlite::ToSql| -> i64 {
        s.read(|conn| Ok(conn.query_row(sql, [key], |r| r.get(0))?))
            .unwrap()
    };
    assert_eq!(
        created("SELECT created FROM tenants WHERE id = ?1", &t.id),
        at(0)
    );
    assert_eq!(
        created("SELECT created FROM mailboxes WHERE id = ?1", &m.id),
        at(1)
    );
    assert_eq!(
        created("SELECT created FROM groups WHERE id = ?1", &g.id),
        at(2)
    );
    assert_eq!(
        created(
            "SELECT created FROM tokens WHERE hash = ?1",
            &hash_token("secret")
        ),
        at(3)
    );
}

#[test]
fn a_domain_in_use_by_a_group_stays_and_wildcards_match_nothing() {
    use hato_core::directory::{GroupSettings, GroupType};
    let (_d, s) = store();
    let (t, m) = setup(&s);
    s.add_domain("lists.test", t, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_domain("l_sts.test", t, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.create_group(NewGroup {
        tenant_id: t,
        name: "Everyone".into(),
        address: Some("everyone@lists.test".into()),
        group_type: GroupType::Distribution,
        settings: GroupSettings::defaults_for(GroupType::Distribution),
        owners: vec![m],
        members: vec![],
    })
    .wait()
    .unwrap();
    // The group's address keeps its domain, as a mailbox's does.
    let refused = s.remove_domain("lists.test").wait();
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert!(s.domain("lists.test").unwrap().is_some());
    // `_` is a character of the domain, not a wildcard: l_sts.test has no address.
    s.remove_domain("l_sts.test").wait().unwrap();
    assert!(s.domain("l_sts.test").unwrap().is_none());
    // The mailbox's domain stays too.
    assert!(s.remove_domain("contoso.test").wait().is_err());
}

/// The console's sessions: kept by hash, touched, purged by idle and absolute age, deleted.
#[test]
fn console_sessions_are_found_touched_purged_and_deleted() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    let session = |created: i64| ConsoleSession {
        role: hato_core::auth::Role::User,
        tenant_id: Some(t),
        mailbox_id: Some(m),
        name: "alice@contoso.test".into(),
        created: Timestamp(created),
        last_seen: Timestamp(created),
    };
    s.add_console_session("h1", session(100)).wait().unwrap();
    s.add_console_session("h2", session(100)).wait().unwrap();
    s.add_console_session("h3", session(900)).wait().unwrap();
    assert_eq!(s.console_session("h1").unwrap(), Some(session(100)));
    assert_eq!(s.console_session("nope").unwrap(), None);
    s.touch_console_session("h1", Timestamp(500))
        .wait()
        .unwrap();
    // An older touch never moves last use back.
    s.touch_console_session("h1", Timestamp(300))
        .wait()
        .unwrap();
    assert_eq!(
        s.console_session("h1").unwrap().map(|x| x.last_seen),
        Some(Timestamp(500))
    );
    // Idle since before 400: h2 goes; h1 (used at 500) and h3 stay.
    assert_eq!(
        s.purge_console_sessions(Timestamp(400), Timestamp(0))
            .wait()
            .unwrap(),
        1
    );
    assert!(s.console_session("h2").unwrap().is_none());
    // Begun before 200: h1 goes whatever its use.
    assert_eq!(
        s.purge_console_sessions(Timestamp(0), Timestamp(200))
            .wait()
            .unwrap(),
        1
    );
    assert!(s.console_session("h1").unwrap().is_none());
    s.delete_console_session("h3").wait().unwrap();
    assert!(s.console_session("h3").unwrap().is_none());
}

/// `*@domain` in a trace query matches the domain's addresses only, its text taken literally.
#[test]
fn trace_sender_and_recipient_take_a_domain_wildcard() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    s.enqueue(message("w1", t, m, 1, "x")).wait().unwrap();
    let mut other = message("w2", t, m, 2, "y");
    other.sender = "carol@fabrikamXtest.example".into();
    s.enqueue(other).wait().unwrap();
    let ids = |sender: &str, recipient: Option<&str>| -> Vec<String> {
        s.trace(&TraceQuery {
            sender: Some(sender.into()),
            recipient: recipient.map(String::from),
            ..Default::default()
        })
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.trace_id)
        .collect()
    };
    assert_eq!(ids("*@fabrikam.test", None), ["w1"]);
    assert_eq!(ids("*@FABRIKAM.test", Some("*@contoso.test")), ["w1"]);
    assert!(ids("*@fabrikam.test", Some("*@other.test")).is_empty());
    // `_` and `%` are not LIKE's wildcards here.
    assert!(ids("*@fabrikam_test", None).is_empty());
    assert!(ids("*@%", None).is_empty());
}

/// The home page's figures: received messages and recipients by status, since a time, per
/// tenant, from the hourly counters (each window from the start of its hour), equal to a
/// recount from the trace; top senders and recipients; the queue.
#[test]
fn mail_flow_counts_and_top_addresses_since_a_time() {
    let (_d, s) = store();
    let (t, m) = setup(&s);
    const H: i64 = 3_600_000_000;
    for (i, at) in [10 * H, 20 * H, 30 * H + 5].into_iter().enumerate() {
        s.enqueue(message(&format!("c{i}"), t, m, at, "x"))
            .wait()
            .unwrap();
    }
    // 15 h: from hour 15 (two); 30 h 30 min: from hour 30 (one: its hour counts whole).
    let windows = [Timestamp(0), Timestamp(15 * H), Timestamp(30 * H + H / 2)];
    let counts = s.mail_flow_counts(Some(t), &windows).unwrap();
    let received: Vec<u64> = counts.iter().map(|c| c.received).collect();
    assert_eq!(received, [3, 2, 1]);
    assert_eq!(counts, s.mail_flow_recount(Some(t), &windows).unwrap());
    assert_eq!(
        s.mail_flow_counts(Some(t + 1), &[Timestamp(0)]).unwrap()[0].received,
        0
    );
    assert_eq!(
        s.mail_flow_counts(None, &[Timestamp(0)]).unwrap()[0].received,
        3
    );
    assert_eq!(
        s.mail_flow_counts(None, &windows).unwrap(),
        s.mail_flow_recount(None, &windows).unwrap()
    );
    // The hourly summaries are fed from the recipients written (from hour 0 on, here).
    assert_eq!(
        s.top_address_catch_up(Timestamp(0), 1000).wait().unwrap(),
        3
    );
    let (senders, recipients) = s.top_addresses(Some(t), Timestamp(15 * H), 5).unwrap();
    assert_eq!(
        senders,
        [AddressCount {
            address: "bob@fabrikam.test".into(),
            count: 2,
            error: 0
        }]
    );
    assert_eq!(recipients[0].address, "alice@contoso.test");
    // Just queued: all three wait.
    assert_eq!(s.queued_recipients(Some(t)).unwrap(), 3);
    assert_eq!(s.queued_recipients(Some(t + 1)).unwrap(), 0);
}
