//! Mail for a domain pending verification is refused at RCPT as for a domain no tenant accepts
//! (`550 5.7.1 Unable to relay`), its postmaster@ included; once verified, it is accepted.

use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::{Address, Stage};
use hato_directory::Directory;
use hato_smtp::RcptVerdict;
use hato_store::*;
use hato_transport::routing::{DirectoryPolicy, Resolution, resolve};
use std::sync::Arc;

#[tokio::test]
async fn a_pending_domain_takes_no_mail_until_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_pending_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    // The tenant may prepare its recipients while the domain is pending.
    let alice = store
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "alice@contoso.test".into(),
            display_name: "Alice".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 20,
        })
        .await
        .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let directory = Arc::new(Directory::new(dyn_store));
    let policy = DirectoryPolicy::new(directory.clone());
    let sender = Address::parse("bob@fabrikam.test").unwrap();

    for rcpt in [
        "alice@contoso.test",
        "postmaster@contoso.test",
        "nobody@contoso.test",
    ] {
        let rcpt = Address::parse(rcpt).unwrap();
        assert_eq!(resolve(&directory, &rcpt).unwrap(), Resolution::NotAccepted);
        match policy.check_recipient_as(Some(&sender), None, &rcpt) {
            RcptVerdict::Reject(r) => {
                assert_eq!(r.reply.to_string(), "550 5.7.1 Unable to relay");
                assert_eq!(r.reason.stage, Stage::Recipient);
                assert_eq!(
                    r.reason.text,
                    "contoso.test is an accepted domain pending verification (its DNS TXT \
                     record hato-verification=... has not been seen yet): its mail is refused as \
                     for a domain no tenant accepts"
                );
            }
            other => panic!("{rcpt}: {other:?}"),
        }
    }

    store.verify_domain("contoso.test").await.unwrap();
    let rcpt = Address::parse("alice@contoso.test").unwrap();
    match policy.check_recipient_as(Some(&sender), None, &rcpt) {
        RcptVerdict::Accept(a) => {
            assert_eq!((a.tenant_id, a.route), (t.id, Route::Local(alice.id)));
        }
        other => panic!("{other:?}"),
    }
}
