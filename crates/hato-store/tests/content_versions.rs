//! The versions the content pipeline caches by: each moves with every change to what it
//! versions (and only then), so a cached policy is never used after it changed.

use hato_core::directory::{DomainType, MailboxAttributes, MailboxType};
use hato_store::*;

#[test]
fn each_version_moves_with_its_own_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.create_tenant("contoso").wait().unwrap();
    let v0 = store.content_policy_versions(t.id).unwrap();

    let mut p = store.malware_filter(t.id).unwrap();
    p.file_types = vec!["exe".into()];
    store.set_malware_filter(t.id, p).wait().unwrap();
    let v1 = store.content_policy_versions(t.id).unwrap();
    assert!(v1.malware_filters > v0.malware_filters, "{v0:?} {v1:?}");
    assert_eq!(
        (v1.directory, v1.transport_rules),
        (v0.directory, v0.transport_rules)
    );

    let custom = MalwareFilterPolicy {
        name: "Custom".into(),
        priority: Some(0),
        sent_to: vec!["a@contoso.test".into()],
        ..MalwareFilterPolicy::default()
    };
    store.add_malware_filter(t.id, custom).wait().unwrap();
    let v2 = store.content_policy_versions(t.id).unwrap();
    assert!(v2.malware_filters > v1.malware_filters);
    store.remove_malware_filter(t.id, "Custom").wait().unwrap();
    let v3 = store.content_policy_versions(t.id).unwrap();
    assert!(v3.malware_filters > v2.malware_filters);

    store
        .add_transport_rule(
            t.id,
            NewTransportRule {
                name: "R".into(),
                priority: None,
                enabled: true,
                definition: "{}".into(),
            },
        )
        .wait()
        .unwrap();
    let v4 = store.content_policy_versions(t.id).unwrap();
    assert!(v4.transport_rules > v3.transport_rules);
    assert_eq!(v4.malware_filters, v3.malware_filters);

    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    store
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "a@contoso.test".into(),
            display_name: "A".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 20,
        })
        .wait()
        .unwrap();
    let v5 = store.content_policy_versions(t.id).unwrap();
    assert!(v5.directory > v4.directory);
    assert_eq!(
        (v5.transport_rules, v5.malware_filters),
        (v4.transport_rules, v4.malware_filters)
    );
    // Another tenant's changes leave these alone.
    let other = store.create_tenant("fabrikam").wait().unwrap();
    let mut p = store.malware_filter(other.id).unwrap();
    p.enable_file_filter = false;
    store.set_malware_filter(other.id, p).wait().unwrap();
    assert_eq!(store.content_policy_versions(t.id).unwrap(), v5);
}

/// The generation moves, without a read, after every committed policy change of any tenant,
/// before the change's caller hears of it; mail does not move it.
#[test]
fn the_generation_moves_with_policy_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.create_tenant("contoso").wait().unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let g0 = store
        .content_policy_generation()
        .expect("the embedded store knows");
    let mut p = store.malware_filter(t.id).unwrap();
    p.file_types = vec!["exe".into()];
    store.set_malware_filter(t.id, p).wait().unwrap();
    let g1 = store.content_policy_generation().unwrap();
    assert!(g1 > g0);
    store
        .add_transport_rule(
            t.id,
            NewTransportRule {
                name: "R".into(),
                priority: None,
                enabled: true,
                definition: "{}".into(),
            },
        )
        .wait()
        .unwrap();
    let g2 = store.content_policy_generation().unwrap();
    assert!(g2 > g1);
    // A message queued is not a policy change.
    store
        .enqueue(NewMessage {
            trace_id: "0193a1b2-0000-7000-8000-0000000000aa".into(),
            received: hato_core::Timestamp(1),
            sender: "a@fabrikam.test".into(),
            client_ip: "192.0.2.1".into(),
            helo: "x".into(),
            message_id: None,
            subject: None,
            content: b"Subject: x\r\n\r\nx\r\n".to_vec(),
            spooled: None,
            recipients: vec![],
            receive_detail: "r".into(),
            reports_on: vec![],
            authenticated: None,
            authenticated_from: None,
            sender_auth_failed: false,
            dsn: Default::default(),
            high_risk: false,
        })
        .wait()
        .unwrap();
    assert_eq!(store.content_policy_generation().unwrap(), g2);
    // A refused change (no such policy) moves nothing.
    assert!(store.remove_malware_filter(t.id, "Nope").wait().is_err());
    assert_eq!(store.content_policy_generation().unwrap(), g2);
}
