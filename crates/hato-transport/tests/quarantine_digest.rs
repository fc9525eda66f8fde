//! End-user quarantine notifications over the real store, commit and delivery agent, with a
//! clock that moves only when told: a digest per recipient with new held items of the kinds
//! users manage, at the policy's frequency, never twice for the same items (not after a
//! restart either), none when notifications are off, one bounded digest for a huge quarantine,
//! and release links signed with the store's secret for exactly that item and recipient.

use hato_core::clock::ManualClock;
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::message::{Action, Envelope, QuarantineKind, Recipient, RecipientVerdict};
use hato_core::{Address, ClientContext, Clock, MessageContext, Reason, Stage, Timestamp};
use hato_directory::Directory;
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::digest::{
    DigestLanguage, DigestOptions, DigestPass, DigestSettings, Digester, FixedSettings, token,
};
use hato_transport::inbound::Inbound;
use mail_parser::MessageParser;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const DAY: i64 = 86_400;
const RELEASE_URL: &str = "https://mx.hato.test/quarantine/release";

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    directory: Arc<Directory>,
    clock: Arc<ManualClock>,
    agent: Arc<DeliveryAgent>,
    inbound: Inbound,
    tenant: i64,
    alice: i64,
    bob: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
    ));
    let store = Arc::new(SqliteStore::open_with_clock(dir.path(), clock.clone()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let m = store
            .create_mailbox(NewMailbox {
                tenant_id: t.id,
                address: format!("{name}@contoso.test"),
                display_name: name.into(),
                mailbox_type: MailboxType::User,
                aliases: vec![],
                attributes: MailboxAttributes::default(),
                quota_bytes: 1 << 30,
            })
            .await
            .unwrap();
        ids.push(m.id);
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let directory = Arc::new(Directory::new(dyn_store.clone()));
    let agent = DeliveryAgent::new(
        directory.clone(),
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
        90,
        None,
        NodeId::new("node-test"),
    );
    let inbound = Inbound::new(
        dyn_store,
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
    );
    World {
        _dir: dir,
        store,
        directory,
        clock,
        agent,
        inbound,
        tenant: t.id,
        alice: ids[0],
        bob: ids[1],
    }
}

fn daily(language: DigestLanguage) -> FixedSettings {
    FixedSettings(Some(DigestSettings {
        frequency_days: 1,
        language,
    }))
}

impl World {
    /// Commits a message to alice and bob with `subject`; each (index, kind) is held, the rest
    /// delivered; then the agent carries it out.
    async fn receive(&self, subject: &str, held: &[(usize, QuarantineKind)]) {
        let rcpt = |name: &str, mailbox| Recipient {
            address: Address::parse(&format!("{name}@contoso.test")).unwrap(),
            tenant_id: self.tenant,
            route: Route::Local(mailbox),
            verdicts: vec![],
            // Held under a quarantine policy with notifications on (ESNEnabled): only such
            // items are in a digest.
            content: hato_core::message::RecipientContent {
                quarantine_tag: Some("NotificationEnabledPolicy".into()),
                ..Default::default()
            },
            dsn: Default::default(),
        };
        let mut message = MessageContext::new(
            Envelope {
                sender: Address::parse("mallory@fabrikam.test").ok(),
                recipients: vec![rcpt("alice", self.alice), rcpt("bob", self.bob)],
                smtputf8: false,
                dsn: Default::default(),
            },
            ClientContext::new(
                "192.0.2.1:40000".parse().unwrap(),
                "192.0.2.2:25".parse().unwrap(),
            ),
            "ESMTP",
            format!("From: mallory@fabrikam.test\r\nSubject: {subject}\r\n\r\nbuy now\r\n")
                .into_bytes()
                .into(),
        )
        .unwrap();
        for (index, kind) in held {
            assert!(message.record(
                *index,
                RecipientVerdict {
                    action: Action::Quarantine {
                        kind: *kind,
                        policy: "Default".into(),
                    },
                    reason: Reason::new(Stage::Spam, "held by the test"),
                },
            ));
        }
        let queued = self.inbound.prepare(message).unwrap();
        self.store.enqueue(queued).await.unwrap();
        self.agent.clone().step().await.unwrap();
    }

    fn digester(&self, settings: FixedSettings, max_items: usize) -> Arc<Digester> {
        let store: Arc<dyn Store> = self.store.clone();
        Arc::new(Digester::new(
            store,
            self.directory.clone(),
            Arc::new(settings),
            self.clock.clone(),
            DigestOptions {
                hostname: "mx.hato.test".into(),
                release_url: RELEASE_URL.into(),
                max_items,
                interval: Duration::from_secs(60),
            },
        ))
    }

    /// One pass (on the blocking pool, as the task runs it), then the agent delivers.
    async fn pass(&self, d: &Arc<Digester>) -> DigestPass {
        let d = d.clone();
        let pass = tokio::task::spawn_blocking(move || d.run_once())
            .await
            .unwrap()
            .unwrap();
        self.agent.clone().step().await.unwrap();
        pass
    }

    /// The digests in a mailbox (hato's own messages, by their sender), oldest first.
    fn digests(&self, mailbox: i64) -> Vec<String> {
        let mut items = self.store.mail_list(mailbox, Some(Folder::Inbox)).unwrap();
        items.reverse();
        items
            .into_iter()
            .filter(|i| i.from.contains("postmaster@mx.hato.test"))
            .map(|i| String::from_utf8(self.store.blob(&i.blob).unwrap()).unwrap())
            .collect()
    }
}

/// The text part of a digest and its release links.
fn text_and_links(raw: &str) -> (String, Vec<String>) {
    let msg = MessageParser::new().parse(raw.as_bytes()).expect("parses");
    let text = msg.body_text(0).expect("a text part").into_owned();
    let links = text
        .lines()
        .filter_map(|l| l.strip_prefix("Release: "))
        .map(str::to_string)
        .collect();
    (text, links)
}

#[tokio::test]
async fn a_digest_lists_new_user_items_once_per_frequency() {
    let w = world().await;
    w.receive(
        "cheap watches",
        &[(0, QuarantineKind::Spam), (1, QuarantineKind::Malware)],
    )
    .await;
    let d = w.digester(daily(DigestLanguage::English), 50);
    let pass = w.pass(&d).await;
    assert_eq!((pass.considered, pass.sent), (2, 2), "{pass:?}");
    // Alice hears of her spam. Bob's malware, held under a policy with notifications, is in
    // his digest too (Exchange notifies for any kind), but only admins release malware: its
    // link requests the release, never releases it.
    let digests = w.digests(w.alice);
    assert_eq!(digests.len(), 1);
    let bobs = w.digests(w.bob);
    assert_eq!(bobs.len(), 1);
    let (bob_text, bob_links) = text_and_links(&bobs[0]);
    assert!(bob_links.is_empty(), "{bob_text}");
    assert!(bob_text.contains("Reason: Malware"), "{bob_text}");
    assert!(
        bob_text
            .lines()
            .any(|l| l.starts_with(&format!("Request release: {RELEASE_URL}?t="))),
        "{bob_text}"
    );
    let (text, links) = text_and_links(&digests[0]);
    assert!(text.contains("Subject: cheap watches"), "{text}");
    assert!(text.contains("Sender: mallory@fabrikam.test"), "{text}");
    assert!(text.contains("Reason: Spam"), "{text}");
    assert_eq!(links.len(), 1, "{text}");

    // The link names alice's item, signed with the store's secret, until the item expires.
    let item = w
        .store
        .quarantine_items(&QuarantineQuery {
            recipient: Some("alice@contoso.test".into()),
            ..Default::default()
        })
        .unwrap()
        .items
        .remove(0);
    let t = links[0]
        .strip_prefix(&format!("{RELEASE_URL}?t="))
        .expect("the release page's address");
    let secret = w.store.existing_release_link_secret().unwrap().unwrap();
    let claim = token::verify(&secret, t, w.clock.now()).expect("valid");
    assert_eq!(claim.item, item.id);
    assert_eq!(claim.recipient, "alice@contoso.test");
    assert_eq!(claim.expires, item.expires);

    // Nothing new: nothing sent, however often it looks.
    w.clock.advance_seconds(2 * DAY);
    assert_eq!(w.pass(&d).await.sent, 0);
    // A new item an hour after a digest waits for the frequency (a day)...
    w.receive("more watches", &[(0, QuarantineKind::Bulk)])
        .await;
    assert_eq!(w.pass(&d).await.sent, 1);
    w.clock.advance_seconds(3600);
    w.receive("even more watches", &[(0, QuarantineKind::Phish)])
        .await;
    let pass = w.pass(&d).await;
    assert_eq!((pass.sent, pass.not_due), (0, 1), "{pass:?}");
    // ...and a restarted server (a new task over the same store) does not send early either.
    let restarted = w.digester(daily(DigestLanguage::English), 50);
    assert_eq!(w.pass(&restarted).await.sent, 0);
    w.clock.advance_seconds(DAY);
    assert_eq!(w.pass(&restarted).await.sent, 1);
    let digests = w.digests(w.alice);
    assert_eq!(digests.len(), 3);
    // The last lists only what came after the one before.
    let (text, links) = text_and_links(&digests[2]);
    assert!(text.contains("Subject: even more watches"), "{text}");
    assert!(text.contains("Reason: Phishing"), "{text}");
    assert!(!text.contains("Subject: more watches"), "{text}");
    assert_eq!(links.len(), 1);
}

#[tokio::test]
async fn a_japanese_digest_links_to_the_page_in_japanese() {
    let w = world().await;
    w.receive("安い時計", &[(0, QuarantineKind::Spam)]).await;
    assert_eq!(
        w.pass(&w.digester(daily(DigestLanguage::Japanese), 50))
            .await
            .sent,
        1
    );
    let digests = w.digests(w.alice);
    assert_eq!(digests.len(), 1);
    let msg = MessageParser::new()
        .parse(digests[0].as_bytes())
        .expect("parses");
    assert_eq!(msg.subject(), Some("検疫に新しいメッセージが 1 件あります"));
    let text = msg.body_text(0).expect("text").into_owned();
    assert!(text.contains("件名: 安い時計"), "{text}");
    let link = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("解放: "))
        .expect("a release link");
    assert!(link.starts_with(&format!("{RELEASE_URL}?t=")), "{link}");
    assert!(link.ends_with("&l=ja"), "{link}");
}

#[tokio::test]
async fn notifications_off_send_nothing() {
    let w = world().await;
    w.receive("cheap watches", &[(0, QuarantineKind::Spam)])
        .await;
    let pass = w.pass(&w.digester(FixedSettings(None), 50)).await;
    assert_eq!((pass.considered, pass.sent, pass.skipped), (1, 0, 1));
    assert!(w.digests(w.alice).is_empty());
}

#[tokio::test]
async fn a_huge_quarantine_makes_one_bounded_digest() {
    let w = world().await;
    for i in 0..120 {
        w.receive(&format!("offer {i}"), &[(0, QuarantineKind::Bulk)])
            .await;
    }
    let pass = w
        .pass(&w.digester(daily(DigestLanguage::English), 50))
        .await;
    assert_eq!(pass.sent, 1);
    let digests = w.digests(w.alice);
    assert_eq!(digests.len(), 1);
    let (text, links) = text_and_links(&digests[0]);
    assert_eq!(links.len(), 50);
    assert!(
        text.contains("...and 70 more messages, not listed here."),
        "{text}"
    );
    // The newest 50: 119 down to 70.
    let subjects: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("Subject: offer "))
        .collect();
    let expected: Vec<String> = (70..120).rev().map(|i| i.to_string()).collect();
    assert_eq!(subjects, expected);
    // Bounded: 50 entries of at most a few hundred bytes each, whatever is held.
    assert!(digests[0].len() < 100_000, "{}", digests[0].len());
}
