//! The embedded store: group commit, isolation of failing writes, delivery bookkeeping, trace
//! queries and retention, migrations.

use hato_core::Timestamp;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::trace::RecipientStatus;
use hato_store::*;
use std::sync::Arc;

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
    (dir, s)
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
        recipients: vec![NewRecipient {
            address: "alice@contoso.test".into(),
            tenant_id: tenant,
            route: Route::Local(mailbox),
            extra_events: vec![],
        }],
        receive_detail: "received".into(),
        reports_on: vec![],
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
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
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
            limit: 10_000,
            ..Default::default()
        })
        .unwrap()
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
    let due = s.due_deliveries(Timestamp(10), 100).unwrap();
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
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].trace_id, "two");
    let detail = s.trace_detail(None, "two", None).unwrap();
    assert!(detail[1].detail.starts_with("554 5.2.2 mailbox full"));
    let mb = s.mailbox_by_address("a@contoso.test").unwrap().unwrap();
    assert_eq!(mb.used_bytes, 6_000);
    let ndrs = s.due_ndrs(Timestamp(12), 10).unwrap();
    assert_eq!(ndrs.len(), 1);
    assert_eq!(ndrs[0].failed[0].address, "alice@contoso.test");
    assert!(s.due_deliveries(Timestamp(20), 100).unwrap().is_empty());
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
    let due = s.due_deliveries(Timestamp(200 * day), 10).unwrap();
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
            .due_deliveries(Timestamp(10), 100)
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
