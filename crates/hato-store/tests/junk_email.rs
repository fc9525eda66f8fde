//! Mailboxes' junk email configuration (migration 39): defaults, Exchange's add/remove and
//! replace semantics, normalization, the 1,024-entry limit, the policy generation moving, and
//! the rows going with the mailbox.

use hato_core::directory::{DomainType, MailboxAttributes, MailboxType};
use hato_store::*;
use std::sync::Arc;

fn setup() -> (tempfile::TempDir, Arc<SqliteStore>, i64) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
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
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 10_000,
        })
        .wait()
        .unwrap();
    (dir, s, m.id)
}

fn edit(add: &[&str], remove: &[&str]) -> JunkListChange {
    JunkListChange::Edit {
        add: add.iter().map(|s| s.to_string()).collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn defaults_then_add_remove_and_replace_as_exchange_does() {
    let (_d, s, m) = setup();
    let c = s.junk_email_config(m).unwrap();
    assert!(c.enabled);
    assert!(c.trusted_senders_and_domains.is_empty() && c.blocked_senders_and_domains.is_empty());

    let generation = s.content_policy_generation();
    let c = s
        .set_junk_email_config(
            m,
            JunkEmailChange {
                trusted: edit(&["Carol@Fabrikam.test", "@northwind.test"], &[]),
                blocked: edit(&["spam.test"], &[]),
                ..Default::default()
            },
        )
        .wait()
        .unwrap();
    assert_eq!(
        c.trusted_senders_and_domains,
        vec!["carol@fabrikam.test", "northwind.test"]
    );
    assert_eq!(c.blocked_senders_and_domains, vec!["spam.test"]);
    assert_ne!(
        s.content_policy_generation(),
        generation,
        "the pipeline's cache must end"
    );

    // Add again (no duplicate), remove one (any case), remove one that is not there.
    let c = s
        .set_junk_email_config(
            m,
            JunkEmailChange {
                trusted: edit(&["carol@fabrikam.test"], &["NORTHWIND.test", "nobody.test"]),
                enabled: Some(false),
                ..Default::default()
            },
        )
        .wait()
        .unwrap();
    assert_eq!(c.trusted_senders_and_domains, vec!["carol@fabrikam.test"]);
    assert_eq!(c.blocked_senders_and_domains, vec!["spam.test"], "kept");
    assert!(!c.enabled);

    // Replace: the whole value; an empty one clears.
    let c = s
        .set_junk_email_config(
            m,
            JunkEmailChange {
                blocked: JunkListChange::Replace(vec![]),
                trusted: JunkListChange::Replace(vec!["a@b.test".into()]),
                ..Default::default()
            },
        )
        .wait()
        .unwrap();
    assert_eq!(c.trusted_senders_and_domains, vec!["a@b.test"]);
    assert!(c.blocked_senders_and_domains.is_empty());
    assert_eq!(s.junk_email_config(m).unwrap(), c);
}

#[test]
fn bad_entries_and_more_than_1024_are_refused_and_change_nothing() {
    let (_d, s, m) = setup();
    let bad = s
        .set_junk_email_config(
            m,
            JunkEmailChange {
                trusted: edit(&["ok.test", "not an address"], &[]),
                ..Default::default()
            },
        )
        .wait();
    assert!(matches!(bad, Err(StoreError::Invalid(ref t)) if t.contains("not an address")));
    let full: Vec<String> = (0..1024).map(|i| format!("s{i}@spam.test")).collect();
    s.set_junk_email_config(
        m,
        JunkEmailChange {
            blocked: JunkListChange::Replace(full),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    let over = s
        .set_junk_email_config(
            m,
            JunkEmailChange {
                blocked: edit(&["one-more@spam.test"], &[]),
                trusted: edit(&["x.test"], &[]),
                ..Default::default()
            },
        )
        .wait();
    match over {
        Err(StoreError::Invalid(t)) => assert!(t.contains("1024") && t.contains("1025"), "{t}"),
        other => panic!("{other:?}"),
    }
    let c = s.junk_email_config(m).unwrap();
    assert_eq!(c.blocked_senders_and_domains.len(), 1024);
    assert!(
        c.trusted_senders_and_domains.is_empty(),
        "the whole change refused"
    );
}

#[test]
fn the_configuration_goes_with_its_mailbox() {
    let (_d, s, m) = setup();
    s.set_junk_email_config(
        m,
        JunkEmailChange {
            trusted: edit(&["a@b.test"], &[]),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    s.remove_mailbox(m).wait().unwrap();
    assert!(matches!(
        s.junk_email_config(m),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_junk_email_config(m, JunkEmailChange::default())
            .wait(),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_list_is_read_a_page_at_a_time() {
    let (_d, s, m) = setup();
    let all: Vec<String> = (0..30).map(|i| format!("s{i:02}@spam.test")).collect();
    s.set_junk_email_config(
        m,
        JunkEmailChange {
            blocked: JunkListChange::Replace(all),
            trusted: edit(&["friend.test"], &[]),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    let (page, more) = s.junk_email_entries(m, false, "", 10, 10).unwrap();
    assert_eq!(page.first().map(String::as_str), Some("s10@spam.test"));
    assert_eq!((page.len(), more), (10, true));
    let (page, more) = s.junk_email_entries(m, false, "", 20, 10).unwrap();
    assert_eq!((page.len(), more), (10, false));
    let (page, _) = s.junk_email_entries(m, false, "S2", 0, 100).unwrap();
    assert_eq!(page.len(), 10, "{page:?}");
    let (page, more) = s.junk_email_entries(m, true, "", 0, 10).unwrap();
    assert_eq!((page, more), (vec!["friend.test".to_string()], false));
}
