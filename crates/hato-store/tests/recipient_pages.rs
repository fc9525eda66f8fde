//! The console's recipient listings, paged in the store: one tenant's rows only, filtered by
//! address or display name, sorted by the column asked (the address breaking ties), one page
//! at a time with a flag for more.

use hato_core::directory::{DomainType, MailboxAttributes, MailboxType};
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn mailboxes_and_contacts_come_one_sorted_filtered_page_at_a_time() {
    let (_d, s) = store();
    let t = s.create_tenant("contoso").wait().unwrap();
    let other = s.create_tenant("fabrikam").wait().unwrap();
    s.add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_domain("fabrikam.test", other.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    for i in 0..120 {
        s.create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: format!("user{i:03}@contoso.test"),
            display_name: format!("Person {}", 119 - i),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: (i as u64 + 1) * 1024 * 1024,
        })
        .wait()
        .unwrap();
    }
    s.create_mailbox(NewMailbox {
        tenant_id: other.id,
        address: "user000@fabrikam.test".into(),
        display_name: "Elsewhere".into(),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1,
    })
    .wait()
    .unwrap();
    let q = RecipientPage {
        tenant: Some(t.id),
        limit: 50,
        ..Default::default()
    };
    let (page1, more) = s.mailbox_page(&q).unwrap();
    assert_eq!((page1.len(), more), (50, true));
    assert_eq!(page1[0].address, "user000@contoso.test");
    let (page3, more) = s
        .mailbox_page(&RecipientPage {
            offset: 100,
            ..q.clone()
        })
        .unwrap();
    assert_eq!((page3.len(), more), (20, false));
    assert_eq!(page3[19].address, "user119@contoso.test");
    // Sorted by quota, largest first.
    let (top, _) = s
        .mailbox_page(&RecipientPage {
            sort: RecipientSort::Quota,
            descending: true,
            limit: 2,
            ..q.clone()
        })
        .unwrap();
    assert_eq!(top[0].address, "user119@contoso.test");
    // The filter matches the display name too, in any case; the other tenant's never.
    let (found, more) = s
        .mailbox_page(&RecipientPage {
            filter: "PERSON 11".into(),
            ..q.clone()
        })
        .unwrap();
    assert!(!more);
    assert_eq!(found.len(), 11, "Person 11 and Person 110..119");
    let (all, _) = s
        .mailbox_page(&RecipientPage {
            tenant: None,
            filter: "user000@".into(),
            ..q.clone()
        })
        .unwrap();
    assert_eq!(all.len(), 2);

    for (address, name) in [("b@outside.test", "Zed"), ("a@outside.test", "Amy")] {
        s.create_contact(NewContact {
            tenant_id: t.id,
            address: address.into(),
            display_name: name.into(),
            attributes: MailboxAttributes::default(),
        })
        .wait()
        .unwrap();
    }
    let (contacts, more) = s
        .contact_page(&RecipientPage {
            sort: RecipientSort::DisplayName,
            descending: true,
            ..q.clone()
        })
        .unwrap();
    assert!(!more);
    let names: Vec<&str> = contacts.iter().map(|c| c.display_name.as_str()).collect();
    assert_eq!(names, ["Zed", "Amy"]);
    let (none, _) = s
        .contact_page(&RecipientPage {
            tenant: Some(other.id),
            ..q
        })
        .unwrap();
    assert!(none.is_empty());
}
