//! Anti-spam policies (resolution per recipient by priority and conditions, versions moving with
//! each change), the tenant's classifier model, and users' junk / not-junk reports (idempotent,
//! in order, on the trace, only for mail delivered to the reporter's mailbox) and the moves
//! between Inbox and Junk Email that make them.

use hato_core::Timestamp;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_protection::spam::{SpamAction, SpamFilterPolicy};
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn mailbox(s: &SqliteStore, tenant: i64, address: &str) -> i64 {
    s.create_mailbox(NewMailbox {
        tenant_id: tenant,
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
}

fn custom(name: &str, conditions: RecipientConditions) -> SpamFilterPolicyRecord {
    SpamFilterPolicyRecord {
        name: name.into(),
        priority: None,
        enabled: true,
        conditions,
        policy: SpamFilterPolicy::default(),
    }
}

fn sent_to(a: &str) -> RecipientConditions {
    RecipientConditions {
        sent_to: vec![a.into()],
        ..Default::default()
    }
}

fn names(s: &SqliteStore, t: i64) -> Vec<(String, Option<u32>)> {
    s.spam_filters(t)
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.priority))
        .collect()
}

#[test]
fn the_default_is_exchanges_until_changed_and_custom_policies_take_places_by_priority() {
    let (_d, s) = store();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let d = s.spam_filter(t).unwrap();
    assert_eq!(d.name, DEFAULT_SPAM_FILTER);
    assert_eq!(d.policy, SpamFilterPolicy::default());
    assert_eq!(names(&s, t), [("Default".to_string(), None)]);

    s.add_spam_filter(t, custom("A", sent_to("a@contoso.test")))
        .wait()
        .unwrap();
    s.add_spam_filter(t, custom("B", sent_to("b@contoso.test")))
        .wait()
        .unwrap();
    // Inserting at a taken priority moves the others down, as Exchange does.
    let mut c = custom("C", sent_to("c@contoso.test"));
    c.priority = Some(0);
    s.add_spam_filter(t, c).wait().unwrap();
    assert_eq!(
        names(&s, t),
        [
            ("C".to_string(), Some(0)),
            ("A".to_string(), Some(1)),
            ("B".to_string(), Some(2)),
            ("Default".to_string(), None)
        ]
    );
    // Moving B first; removing C closes the gap.
    let mut b = s.spam_filter_named(t, "b").unwrap();
    b.priority = Some(0);
    s.set_spam_filter(t, b).wait().unwrap();
    s.remove_spam_filter(t, "C").wait().unwrap();
    assert_eq!(
        names(&s, t),
        [
            ("B".to_string(), Some(0)),
            ("A".to_string(), Some(1)),
            ("Default".to_string(), None)
        ]
    );

    // Refusals change nothing.
    let mut past = custom("D", sent_to("d@contoso.test"));
    past.priority = Some(5);
    assert!(matches!(
        s.add_spam_filter(t, past).wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_spam_filter(t, custom("a", sent_to("x@contoso.test")))
            .wait(),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.add_spam_filter(t, custom("NoCondition", RecipientConditions::default()))
            .wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.remove_spam_filter(t, "Default").wait(),
        Err(StoreError::Invalid(_))
    ));
    let mut bad = s.spam_filter(t).unwrap();
    bad.policy.high_confidence_phish_action = SpamAction::MoveToJmf;
    let e = s.set_spam_filter(t, bad).wait().unwrap_err();
    assert!(
        e.to_string()
            .contains("high-confidence-phish-action cannot be move-to-jmf"),
        "{e}"
    );
    assert_eq!(
        s.spam_filter(t).unwrap().policy,
        SpamFilterPolicy::default()
    );
    assert_eq!(names(&s, t).len(), 3);
}

#[test]
fn each_recipient_gets_the_first_matching_enabled_policy_never_a_merge() {
    let (_d, s) = store();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let mut sales = custom(
        "Sales",
        RecipientConditions {
            sent_to_member_of: vec!["sales@contoso.test".into()],
            except_if_sent_to: vec!["boss@contoso.test".into()],
            ..Default::default()
        },
    );
    sales.policy.spam_action = SpamAction::Quarantine;
    s.add_spam_filter(t, sales).wait().unwrap();
    let mut domain = custom(
        "Fabrikam",
        RecipientConditions {
            recipient_domain_is: vec!["fabrikam.test".into()],
            except_if_recipient_domain_is: vec![],
            ..Default::default()
        },
    );
    domain.policy.spam_action = SpamAction::Delete;
    domain.policy.bulk_threshold = 4;
    s.add_spam_filter(t, domain).wait().unwrap();
    let mut off = custom("Off", sent_to("carol@fabrikam.test"));
    off.priority = Some(0);
    off.enabled = false;
    off.policy.spam_action = SpamAction::AddXHeader;
    s.add_spam_filter(t, off).wait().unwrap();
    let mut default = s.spam_filter(t).unwrap();
    default.policy.bulk_threshold = 6;
    s.set_spam_filter(t, default).wait().unwrap();

    let policies = s.spam_filters(t).unwrap();
    let member = |a: &str| {
        let a = a.to_string();
        move |g: &str| {
            g == "sales@contoso.test"
                && ["ann@contoso.test", "boss@contoso.test", "dan@fabrikam.test"]
                    .contains(&a.as_str())
        }
    };
    let pick = |a: &str| {
        spam_policy_for(&policies, a, member(a))
            .map(|p| p.name.clone())
            .unwrap()
    };
    assert_eq!(pick("ann@contoso.test"), "Sales");
    // An exception takes the recipient out of the rule: the next one (here the default).
    assert_eq!(pick("boss@contoso.test"), "Default");
    // The first by priority wins (Sales before Fabrikam), the disabled one is skipped.
    assert_eq!(pick("dan@fabrikam.test"), "Sales");
    assert_eq!(pick("Carol@Fabrikam.test"), "Fabrikam");
    assert_eq!(pick("zed@contoso.test"), "Default");
    // Never merged: the custom policy's settings are its own, not the default's changes.
    let fabrikam = spam_policy_for(&policies, "carol@fabrikam.test", |_| false).unwrap();
    assert_eq!(fabrikam.policy.bulk_threshold, 4);
    let sales = spam_policy_for(&policies, "ann@contoso.test", member("ann@contoso.test")).unwrap();
    assert_eq!(sales.policy.bulk_threshold, 7);
    assert_eq!(sales.policy.spam_action, SpamAction::Quarantine);
}

#[test]
fn every_spam_policy_and_model_change_moves_the_versions_and_the_generation() {
    let (_d, s) = store();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let other = s.create_tenant("fabrikam").wait().unwrap().id;
    let mut last = s.content_policy_versions(t).unwrap();
    let mut generation = s.content_policy_generation().unwrap();
    let mut moved = |what: &str, spam: bool| {
        let now = s.content_policy_versions(t).unwrap();
        let g = s.content_policy_generation().unwrap();
        assert!(g > generation, "{what}: the generation did not move");
        if spam {
            assert!(
                now.spam_filters > last.spam_filters,
                "{what}: {last:?} {now:?}"
            );
            assert_eq!(now.spam_model, last.spam_model, "{what}");
        } else {
            assert!(now.spam_model > last.spam_model, "{what}: {last:?} {now:?}");
            assert_eq!(now.spam_filters, last.spam_filters, "{what}");
        }
        assert_eq!(
            (now.directory, now.transport_rules, now.malware_filters),
            (last.directory, last.transport_rules, last.malware_filters),
            "{what}"
        );
        last = now;
        generation = g;
    };
    let mut d = s.spam_filter(t).unwrap();
    d.policy.bulk_threshold = 5;
    s.set_spam_filter(t, d).wait().unwrap();
    moved("set default", true);
    s.add_spam_filter(t, custom("A", sent_to("a@contoso.test")))
        .wait()
        .unwrap();
    moved("add", true);
    let mut a = s.spam_filter_named(t, "A").unwrap();
    a.enabled = false;
    s.set_spam_filter(t, a).wait().unwrap();
    moved("disable", true);
    s.remove_spam_filter(t, "A").wait().unwrap();
    moved("remove", true);

    assert_eq!(s.spam_tenant_model(t).unwrap(), None);
    assert_eq!(s.set_spam_tenant_model(t, vec![1, 2, 3]).wait().unwrap(), 1);
    moved("model", false);
    assert_eq!(s.set_spam_tenant_model(t, vec![4]).wait().unwrap(), 2);
    moved("model again", false);
    assert_eq!(s.spam_tenant_model(t).unwrap(), Some((vec![4], 2)));

    // A refused change and another tenant's changes leave this tenant's versions alone.
    let before = s.content_policy_versions(t).unwrap();
    let mut bad = s.spam_filter(t).unwrap();
    bad.policy.bulk_threshold = 10;
    assert!(s.set_spam_filter(t, bad).wait().is_err());
    let mut o = s.spam_filter(other).unwrap();
    o.policy.spam_action = SpamAction::Quarantine;
    s.set_spam_filter(other, o).wait().unwrap();
    s.set_spam_tenant_model(other, vec![9]).wait().unwrap();
    assert_eq!(s.content_policy_versions(t).unwrap(), before);
    assert_eq!(s.spam_tenant_model(other).unwrap(), Some((vec![9], 1)));
}

/// A tenant with alice@ and bob@, and one message from 192.0.2.7 delivered to both.
struct Delivered {
    _d: tempfile::TempDir,
    s: SqliteStore,
    tenant: i64,
    alice: i64,
    bob: i64,
}

fn delivered(trace_id: &str) -> Delivered {
    let (d, s) = store();
    let tenant = s.create_tenant("contoso").wait().unwrap().id;
    s.add_domain("contoso.test", tenant, DomainType::Authoritative)
        .wait()
        .unwrap();
    let alice = mailbox(&s, tenant, "alice@contoso.test");
    let bob = mailbox(&s, tenant, "bob@contoso.test");
    deliver(
        &s,
        tenant,
        trace_id,
        &[(alice, "alice@contoso.test"), (bob, "bob@contoso.test")],
        Folder::Inbox,
    );
    Delivered {
        _d: d,
        s,
        tenant,
        alice,
        bob,
    }
}

fn deliver(s: &SqliteStore, tenant: i64, trace_id: &str, to: &[(i64, &str)], folder: Folder) {
    s.enqueue(NewMessage {
        trace_id: trace_id.into(),
        received: Timestamp(1),
        sender: "spammer@example.test".into(),
        client_ip: "192.0.2.7".into(),
        helo: "mx.example.test".into(),
        message_id: None,
        subject: Some("Cheap".into()),
        content: format!("Subject: Cheap {trace_id}\r\n\r\nbuy\r\n").into_bytes(),
        spooled: None,
        recipients: to
            .iter()
            .map(|(m, a)| NewRecipient {
                address: a.to_string(),
                tenant_id: tenant,
                route: Route::Local(*m),
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
    })
    .wait()
    .unwrap();
    let lease = Lease {
        owner: hato_core::id::NodeId::new("node-test"),
        until: Timestamp(10).plus_seconds(300),
    };
    let due = s.due_deliveries(Timestamp(10), &lease, 100).unwrap();
    let outcomes = due
        .iter()
        .map(|q| DeliveryOutcome {
            message_id: q.id,
            blob: s.stage_blob(q.content.clone()).unwrap(),
            size: q.content.len() as u64,
            from_header: "spammer".into(),
            subject: "Cheap".into(),
            null_sender: false,
            recipients: q
                .recipients
                .iter()
                .map(|r| {
                    let (m, _) = to.iter().find(|(_, a)| *a == r.address).unwrap();
                    (
                        r.id,
                        RecipientOutcome::Store {
                            mailbox: *m,
                            folder,
                        },
                    )
                })
                .collect(),
        })
        .collect();
    s.complete_deliveries(outcomes, Timestamp(11))
        .wait()
        .unwrap();
}

fn report(
    d: &Delivered,
    recipient: &str,
    mailbox: Option<i64>,
    verdict: SpamReportVerdict,
    reporter: &str,
) -> Result<SpamReportOutcome> {
    d.s.report_spam(NewSpamReport {
        tenant: d.tenant,
        trace_id: "tr-1".into(),
        recipient: recipient.into(),
        mailbox,
        verdict,
        reporter: reporter.into(),
        now: Timestamp(20),
    })
    .wait()
}

fn events(d: &Delivered, recipient: &str) -> Vec<String> {
    d.s.trace_detail(Some(d.tenant), "tr-1", Some(recipient))
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "AgentInfo")
        .map(|e| e.detail)
        .collect()
}

#[test]
fn a_report_is_stored_once_per_reporter_traced_and_a_later_opposite_one_replaces_it() {
    let d = delivered("tr-1");
    let a = "alice@contoso.test";
    let first = report(&d, a, Some(d.alice), SpamReportVerdict::Junk, a).unwrap();
    assert!(first.recorded);
    assert_eq!(first.report.client_ip, "192.0.2.7");
    assert_eq!(first.report.replaces, None);
    // The report names the delivered content, which the classifier reads.
    let content = d.s.blob(&first.report.blob).unwrap();
    assert!(String::from_utf8_lossy(&content).contains("Cheap tr-1"));
    // The same again: counted once.
    let again = report(&d, a, Some(d.alice), SpamReportVerdict::Junk, a).unwrap();
    assert!(!again.recorded);
    assert_eq!(again.report, first.report);
    assert_eq!(events(&d, a), ["Reported as junk by alice@contoso.test"]);

    // bob's own report of his copy, and an admin's of alice's copy, are other reports.
    let b = "bob@contoso.test";
    report(&d, b, Some(d.bob), SpamReportVerdict::Junk, b).unwrap();
    report(
        &d,
        a,
        None,
        SpamReportVerdict::Junk,
        "tenant-admin of contoso",
    )
    .unwrap();
    // alice changes her mind: the earlier report is replaced, after the others in order.
    let changed = report(&d, a, Some(d.alice), SpamReportVerdict::NotJunk, a).unwrap();
    assert!(changed.recorded);
    assert_eq!(changed.report.replaces, Some(SpamReportVerdict::Junk));

    let all = d.s.spam_reports_after(d.tenant, 0, 100).unwrap();
    let seen: Vec<(&str, &str, SpamReportVerdict)> = all
        .iter()
        .map(|r| (r.recipient.as_str(), r.reporter.as_str(), r.verdict))
        .collect();
    assert_eq!(
        seen,
        [
            (b, b, SpamReportVerdict::Junk),
            (a, "tenant-admin of contoso", SpamReportVerdict::Junk),
            (a, a, SpamReportVerdict::NotJunk),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    // Consumed in pages, from the last id seen.
    let page = d.s.spam_reports_after(d.tenant, all[0].id, 1).unwrap();
    assert_eq!(page, [all[1].clone()]);
    assert!(
        d.s.spam_reports_after(d.tenant, all[2].id, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        events(&d, a),
        [
            "Reported as junk by alice@contoso.test",
            "Reported as junk by tenant-admin of contoso",
            "Reported as not junk by alice@contoso.test"
        ]
    );
}

#[test]
fn only_mail_delivered_to_the_reporters_mailbox_or_tenant_can_be_reported() {
    let d = delivered("tr-1");
    let a = "alice@contoso.test";
    // alice cannot report bob's copy; nobody can report a recipient or trace id that is not
    // there; another tenant sees nothing of this one's mail.
    for (recipient, mailbox, tenant, trace) in [
        ("bob@contoso.test", Some(d.alice), d.tenant, "tr-1"),
        ("carol@contoso.test", None, d.tenant, "tr-1"),
        (a, None, d.tenant, "tr-2"),
    ] {
        let e =
            d.s.report_spam(NewSpamReport {
                tenant,
                trace_id: trace.into(),
                recipient: recipient.into(),
                mailbox,
                verdict: SpamReportVerdict::Junk,
                reporter: a.into(),
                now: Timestamp(20),
            })
            .wait()
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{recipient}: {e}");
    }
    let other = d.s.create_tenant("fabrikam").wait().unwrap().id;
    let e =
        d.s.report_spam(NewSpamReport {
            tenant: other,
            trace_id: "tr-1".into(),
            recipient: a.into(),
            mailbox: None,
            verdict: SpamReportVerdict::Junk,
            reporter: "tenant-admin of fabrikam".into(),
            now: Timestamp(20),
        })
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert!(d.s.spam_reports_after(d.tenant, 0, 10).unwrap().is_empty());
    assert!(events(&d, a).is_empty());
}

#[test]
fn moving_between_junk_and_inbox_reports_and_the_reported_content_outlives_the_item() {
    let (_dir, s) = store();
    let tenant = s.create_tenant("contoso").wait().unwrap().id;
    s.add_domain("contoso.test", tenant, DomainType::Authoritative)
        .wait()
        .unwrap();
    let alice = mailbox(&s, tenant, "alice@contoso.test");
    deliver(
        &s,
        tenant,
        "tr-1",
        &[(alice, "alice@contoso.test")],
        Folder::Junk,
    );
    let item = s.mail_list(alice, Some(Folder::Junk)).unwrap().remove(0);

    let moved = s
        .move_mail(
            alice,
            item.id,
            Folder::Inbox,
            "alice@contoso.test",
            Timestamp(30),
        )
        .wait()
        .unwrap();
    assert_eq!(moved.item.folder, Folder::Inbox);
    let r = moved.report.unwrap();
    assert!(r.recorded);
    assert_eq!(r.report.verdict, SpamReportVerdict::NotJunk);
    assert_eq!(r.report.trace_id, "tr-1");
    assert_eq!(s.mail_list(alice, Some(Folder::Inbox)).unwrap().len(), 1);
    assert!(s.mail_list(alice, Some(Folder::Junk)).unwrap().is_empty());
    // Moving it where it is changes nothing and reports nothing.
    let stay = s
        .move_mail(
            alice,
            item.id,
            Folder::Inbox,
            "alice@contoso.test",
            Timestamp(31),
        )
        .wait()
        .unwrap();
    assert!(stay.report.is_none());
    // Back to Junk: a junk report replacing the not-junk one.
    let back = s
        .move_mail(
            alice,
            item.id,
            Folder::Junk,
            "alice@contoso.test",
            Timestamp(32),
        )
        .wait()
        .unwrap();
    let r = back.report.unwrap();
    assert_eq!(r.report.verdict, SpamReportVerdict::Junk);
    assert_eq!(r.report.replaces, Some(SpamReportVerdict::NotJunk));
    let details: Vec<String> = s
        .trace_detail(Some(tenant), "tr-1", None)
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "AgentInfo")
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        details,
        [
            "Reported as not junk by alice@contoso.test (moved from Junk Email to Inbox)",
            "Reported as junk by alice@contoso.test (moved from Inbox to Junk Email)"
        ]
    );
    assert!(matches!(
        s.move_mail(alice, item.id + 100, Folder::Inbox, "a", Timestamp(33))
            .wait(),
        Err(StoreError::NotFound(_))
    ));

    // The mailbox goes; the reported content stays for the classifier until the report does.
    s.remove_mailbox(alice).wait().unwrap();
    s.collect_garbage(std::time::Duration::ZERO).unwrap();
    assert!(s.blob(&r.report.blob).is_ok());
}

#[test]
fn a_copy_delivered_to_an_alias_is_reported_by_either_address_once() {
    let (_dir, s) = store();
    let tenant = s.create_tenant("contoso").wait().unwrap().id;
    s.add_domain("contoso.test", tenant, DomainType::Authoritative)
        .wait()
        .unwrap();
    let carol = s
        .create_mailbox(NewMailbox {
            tenant_id: tenant,
            address: "carol@contoso.test".into(),
            display_name: "Carol".into(),
            mailbox_type: MailboxType::User,
            aliases: vec!["c@contoso.test".into()],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 20,
        })
        .wait()
        .unwrap()
        .id;
    deliver(
        &s,
        tenant,
        "tr-1",
        &[(carol, "c@contoso.test")],
        Folder::Inbox,
    );
    let report = |recipient: &str| {
        s.report_spam(NewSpamReport {
            tenant,
            trace_id: "tr-1".into(),
            recipient: recipient.into(),
            mailbox: Some(carol),
            verdict: SpamReportVerdict::Junk,
            reporter: "carol@contoso.test".into(),
            now: Timestamp(20),
        })
        .wait()
        .unwrap()
    };
    let first = report("carol@contoso.test");
    assert!(first.recorded);
    // Stored under the address the message was traced to.
    assert_eq!(first.report.recipient, "c@contoso.test");
    assert!(!report("c@contoso.test").recorded);
    assert_eq!(s.spam_reports_after(tenant, 0, 10).unwrap().len(), 1);
}
