//! The quarantine in the store: a recipient queued with a quarantine decision becomes one item
//! when its outcome is applied (once, however often the outcome is replayed), the listing's
//! filters, and the malware filter policy's persistence with Exchange's defaults.

use hato_core::clock::{Clock, ManualClock};
use hato_core::directory::{DomainType, MailboxAttributes, MailboxType, Route};
use hato_core::id::NodeId;
use hato_core::{Reason, Stage, Timestamp};
use hato_store::*;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    clock: ManualClock,
    tenant: i64,
    other: i64,
    mailbox: i64,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = store.create_tenant("contoso").wait().unwrap();
    let other = store.create_tenant("fabrikam").wait().unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    let m = store
        .create_mailbox(NewMailbox {
            tenant_id: t.id,
            address: "bob@contoso.test".into(),
            display_name: "Bob".into(),
            mailbox_type: MailboxType::User,
            aliases: vec![],
            attributes: MailboxAttributes::default(),
            quota_bytes: 1 << 20,
        })
        .wait()
        .unwrap();
    World {
        _dir: dir,
        store,
        clock: ManualClock::new(Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap()),
        tenant: t.id,
        other: other.id,
        mailbox: m.id,
    }
}

fn hold(kind: QuarantineKind) -> QuarantineHold {
    QuarantineHold {
        kind,
        policy: "Default".into(),
        reason: Reason::new(Stage::Malware, "found something").rule("r"),
        days: None,
        quarantine_policy: None,
    }
}

impl World {
    /// Queues a message to `to` (tenant, address, route, hold) and applies quarantine outcomes
    /// to every held recipient, `times` times (a replayed step). Returns the trace id.
    fn quarantine(&self, trace_id: &str, to: &[(i64, &str, Route, QuarantineKind)], times: usize) {
        self.store
            .enqueue(NewMessage {
                trace_id: trace_id.into(),
                received: self.clock.now(),
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some(trace_id.into()),
                content: format!("Subject: {trace_id}\r\n\r\nbody\r\n").into_bytes(),
                spooled: None,
                recipients: to
                    .iter()
                    .map(|(tenant, address, route, kind)| NewRecipient {
                        address: (*address).into(),
                        tenant_id: *tenant,
                        route: *route,
                        extra_events: vec![],
                        receive_reason: None,
                        quarantine: Some(hold(*kind)),
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
            owner: NodeId::new("n"),
            until: self.clock.now().plus_seconds(300),
        };
        let due = self
            .store
            .due_deliveries(self.clock.now(), &lease, 100)
            .unwrap();
        let message = due.into_iter().find(|m| m.trace_id == trace_id).unwrap();
        let outcome = DeliveryOutcome {
            message_id: message.id,
            blob: self
                .store
                .stage_blob(format!("content of {trace_id}").into_bytes())
                .unwrap(),
            size: 20,
            from_header: "mallory@fabrikam.test".into(),
            subject: trace_id.into(),
            null_sender: false,
            recipients: message
                .recipients
                .iter()
                .map(|r| {
                    // The hold queued with the recipient comes back with it.
                    let hold = r.quarantine.clone().expect("queued with its hold");
                    (
                        r.id,
                        RecipientOutcome::Quarantine {
                            hold,
                            mailbox: match r.route {
                                Route::Local(m) => Some(m),
                                _ => None,
                            },
                            expires: self.clock.now().plus_seconds(30 * 86_400),
                        },
                    )
                })
                .collect(),
        };
        for _ in 0..times {
            let failed = self
                .store
                .complete_deliveries(vec![outcome.clone()], self.clock.now())
                .wait()
                .unwrap();
            assert!(failed.is_empty(), "{failed:?}");
        }
    }

    fn list(&self, q: QuarantineQuery) -> Vec<(String, QuarantineKind)> {
        self.store
            .quarantine_items(&q)
            .unwrap()
            .items
            .into_iter()
            .map(|i| (i.recipient, i.kind))
            .collect()
    }
}

#[test]
fn a_replayed_outcome_stores_one_item_per_recipient() {
    let w = world();
    w.quarantine(
        "t1",
        &[(
            w.tenant,
            "bob@contoso.test",
            Route::Local(w.mailbox),
            QuarantineKind::Malware,
        )],
        3,
    );
    let items = w
        .store
        .quarantine_items(&QuarantineQuery::default())
        .unwrap()
        .items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].reason, Some(hold(QuarantineKind::Malware).reason));
    let events: Vec<String> = w
        .store
        .trace_detail(None, "t1", None)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["Receive", "Quarantine"]);
}

#[test]
fn listing_filters_by_tenant_recipient_mailbox_kind_and_state() {
    let w = world();
    w.quarantine(
        "t1",
        &[
            (
                w.tenant,
                "bob@contoso.test",
                Route::Local(w.mailbox),
                QuarantineKind::Malware,
            ),
            (
                w.tenant,
                "carol@contoso.test",
                Route::Relay,
                QuarantineKind::Spam,
            ),
        ],
        1,
    );
    w.clock.advance_seconds(60);
    w.quarantine(
        "t2",
        &[
            (
                w.tenant,
                "bob@contoso.test",
                Route::Local(w.mailbox),
                QuarantineKind::Bulk,
            ),
            (
                w.other,
                "dave@fabrikam.test",
                Route::Relay,
                QuarantineKind::Phish,
            ),
        ],
        1,
    );
    let all = w.list(QuarantineQuery::default());
    assert_eq!(all.len(), 4);
    // Newest first (the same time: the later row first).
    assert_eq!(all[0].1, QuarantineKind::Phish);
    assert_eq!(all[1].1, QuarantineKind::Bulk);
    let ours = w.list(QuarantineQuery {
        tenant: Some(w.tenant),
        ..Default::default()
    });
    assert_eq!(ours.len(), 3);
    assert!(ours.iter().all(|(a, _)| a.ends_with("@contoso.test")));
    let bobs = w.list(QuarantineQuery {
        recipient: Some("BOB@contoso.test".into()),
        ..Default::default()
    });
    assert_eq!(
        bobs,
        [
            ("bob@contoso.test".to_string(), QuarantineKind::Bulk),
            ("bob@contoso.test".to_string(), QuarantineKind::Malware)
        ]
    );
    // A user's own, without the kinds only admins see.
    let own = w.list(QuarantineQuery {
        mailbox: Some(w.mailbox),
        without_admin_only: true,
        ..Default::default()
    });
    assert_eq!(
        own,
        [("bob@contoso.test".to_string(), QuarantineKind::Bulk)]
    );
    let spam = w.list(QuarantineQuery {
        kind: Some(QuarantineKind::Spam),
        ..Default::default()
    });
    assert_eq!(
        spam,
        [("carol@contoso.test".to_string(), QuarantineKind::Spam)]
    );
    // By policy (any case) and by expiry: t1's items expire a minute before t2's.
    let by_policy = w.list(QuarantineQuery {
        policy: Some("default".into()),
        ..Default::default()
    });
    assert_eq!(by_policy.len(), 4);
    assert!(
        w.list(QuarantineQuery {
            policy: Some("Strict".into()),
            ..Default::default()
        })
        .is_empty()
    );
    let soon = w.list(QuarantineQuery {
        expires_before: Some(w.clock.now().plus_seconds(30 * 86_400 - 30)),
        ..Default::default()
    });
    assert_eq!(
        soon,
        [
            ("carol@contoso.test".to_string(), QuarantineKind::Spam),
            ("bob@contoso.test".to_string(), QuarantineKind::Malware)
        ]
    );
    // Paging: one row, and more follow.
    let page = w
        .store
        .quarantine_items(&QuarantineQuery {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.more);
    // Released: only the released one.
    let bulk = w
        .store
        .quarantine_items(&QuarantineQuery {
            kind: Some(QuarantineKind::Bulk),
            ..Default::default()
        })
        .unwrap()
        .items[0]
        .id;
    w.store
        .release_quarantined(bulk, "bob@contoso.test", w.clock.now())
        .wait()
        .unwrap();
    let released = w.list(QuarantineQuery {
        state: Some(QuarantineState::Released),
        ..Default::default()
    });
    assert_eq!(
        released,
        [("bob@contoso.test".to_string(), QuarantineKind::Bulk)]
    );
}

#[test]
fn release_without_a_mailbox_or_over_quota_is_refused_and_keeps_the_item() {
    let w = world();
    w.quarantine(
        "t1",
        &[(
            w.tenant,
            "nobody@contoso.test",
            Route::Relay,
            QuarantineKind::Spam,
        )],
        1,
    );
    let id = w
        .store
        .quarantine_items(&QuarantineQuery::default())
        .unwrap()
        .items[0]
        .id;
    let r = w
        .store
        .release_quarantined(id, "admin", w.clock.now())
        .wait();
    assert!(
        matches!(&r, Err(StoreError::NotFound(m)) if m.contains("nobody@contoso.test")),
        "{r:?}"
    );
    // Bob's mailbox: full.
    w.store
        .update_mailbox(
            w.mailbox,
            MailboxChange {
                quota_bytes: Some(10),
                ..Default::default()
            },
        )
        .wait()
        .unwrap();
    w.quarantine(
        "t2",
        &[(
            w.tenant,
            "bob@contoso.test",
            Route::Local(w.mailbox),
            QuarantineKind::Spam,
        )],
        1,
    );
    let bob = w
        .store
        .quarantine_items(&QuarantineQuery {
            mailbox: Some(w.mailbox),
            ..Default::default()
        })
        .unwrap()
        .items[0]
        .id;
    let r = w
        .store
        .release_quarantined(bob, "admin", w.clock.now())
        .wait();
    assert!(
        matches!(&r, Err(StoreError::InUse(m)) if m.contains("full")),
        "{r:?}"
    );
    for id in [id, bob] {
        let it = w.store.quarantine_item(id).unwrap().unwrap();
        assert_eq!(it.state, QuarantineState::Held);
    }
}

#[test]
fn the_malware_filter_policy_has_exchanges_defaults_and_persists() {
    let w = world();
    let p = w.store.malware_filter(w.tenant).unwrap();
    assert_eq!(p.name, "Default");
    assert!(p.enable_file_filter);
    assert_eq!(p.file_types.len(), 53);
    assert!(p.file_types.iter().any(|t| t == "exe"));
    assert_eq!(p.file_type_action, FileTypeAction::Reject);
    assert_eq!(p.action, MalwareAction::DeleteMessage);
    assert_eq!(p.encrypted_archive_action, EncryptedArchiveAction::Pass);
    assert!(!p.enable_internal_sender_admin_notifications);

    let mut changed = p.clone();
    changed.file_types = vec!["exe".into(), "js".into()];
    changed.file_type_action = FileTypeAction::Quarantine;
    changed.action = MalwareAction::DeleteAttachmentAndUseCustomAlert;
    changed.custom_alert_text = "Removed.".into();
    let stored = w
        .store
        .set_malware_filter(w.tenant, changed.clone())
        .wait()
        .unwrap();
    assert_eq!(stored, changed);
    // A policy is named: a name the tenant does not have is not found.
    let mut unknown = changed.clone();
    unknown.name = "Renamed".into();
    assert!(matches!(
        w.store.set_malware_filter(w.tenant, unknown).wait(),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(w.store.malware_filter(w.tenant).unwrap(), changed);
    // Another tenant keeps the defaults; a tenant that does not exist is not found.
    assert_eq!(
        w.store.malware_filter(w.other).unwrap(),
        MalwareFilterPolicy::default()
    );
    assert!(matches!(
        w.store.malware_filter(9999),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        w.store
            .set_malware_filter(9999, MalwareFilterPolicy::default())
            .wait(),
        Err(StoreError::NotFound(_))
    ));
}

fn custom(name: &str, priority: Option<u32>) -> MalwareFilterPolicy {
    MalwareFilterPolicy {
        name: name.into(),
        priority,
        recipient_domain_is: vec!["contoso.test".into()],
        ..MalwareFilterPolicy::default()
    }
}

fn order(w: &World) -> Vec<(String, Option<u32>)> {
    w.store
        .malware_filters(w.tenant)
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.priority))
        .collect()
}

fn named(list: &[(&str, Option<u32>)]) -> Vec<(String, Option<u32>)> {
    list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

#[test]
fn custom_policies_keep_unique_priorities_and_the_default_comes_last() {
    let w = world();
    assert_eq!(order(&w), named(&[("Default", None)]));
    w.store
        .add_malware_filter(w.tenant, custom("A", None))
        .wait()
        .unwrap();
    w.store
        .add_malware_filter(w.tenant, custom("B", None))
        .wait()
        .unwrap();
    // Inserting at 0 moves the others down.
    w.store
        .add_malware_filter(w.tenant, custom("C", Some(0)))
        .wait()
        .unwrap();
    assert_eq!(
        order(&w),
        named(&[
            ("C", Some(0)),
            ("A", Some(1)),
            ("B", Some(2)),
            ("Default", None)
        ])
    );
    // Moving C to the end.
    let mut c = w.store.malware_filter_named(w.tenant, "c").unwrap();
    c.priority = Some(2);
    w.store.set_malware_filter(w.tenant, c).wait().unwrap();
    assert_eq!(
        order(&w),
        named(&[
            ("A", Some(0)),
            ("B", Some(1)),
            ("C", Some(2)),
            ("Default", None)
        ])
    );
    // Removing A moves the others up; the default cannot go.
    w.store.remove_malware_filter(w.tenant, "A").wait().unwrap();
    assert_eq!(
        order(&w),
        named(&[("B", Some(0)), ("C", Some(1)), ("Default", None)])
    );
    assert!(matches!(
        w.store.remove_malware_filter(w.tenant, "Default").wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        w.store.remove_malware_filter(w.tenant, "A").wait(),
        Err(StoreError::NotFound(_))
    ));
    // Refusals: a taken name, the default's name, a priority past the end.
    assert!(matches!(
        w.store
            .add_malware_filter(w.tenant, custom("b", None))
            .wait(),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        w.store
            .add_malware_filter(w.tenant, custom("default", None))
            .wait(),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        w.store
            .add_malware_filter(w.tenant, custom("D", Some(3)))
            .wait(),
        Err(StoreError::Invalid(_))
    ));
    // The default keeps no priority whatever it is given.
    let mut d = w.store.malware_filter(w.tenant).unwrap();
    d.priority = Some(0);
    d.enabled = false;
    let d = w.store.set_malware_filter(w.tenant, d).wait().unwrap();
    assert_eq!((d.priority, d.enabled), (None, true));
}

#[test]
fn the_first_matching_custom_policy_by_priority_applies_else_the_default() {
    let sales = MalwareFilterPolicy {
        name: "Sales".into(),
        priority: Some(0),
        sent_to_member_of: vec!["sales@contoso.test".into()],
        recipient_domain_is: vec!["contoso.test".into()],
        ..MalwareFilterPolicy::default()
    };
    let ceo = MalwareFilterPolicy {
        name: "Ceo".into(),
        priority: Some(1),
        sent_to: vec!["ceo@contoso.test".into(), "ceo@fabrikam.test".into()],
        ..MalwareFilterPolicy::default()
    };
    let off = MalwareFilterPolicy {
        name: "Off".into(),
        priority: Some(2),
        enabled: false,
        recipient_domain_is: vec!["contoso.test".into()],
        ..MalwareFilterPolicy::default()
    };
    let policies = [sales, ceo, off, MalwareFilterPolicy::default()];
    let pick = |rcpt: &str, member: bool| {
        malware_policy_for(&policies, rcpt, |g| member && g == "sales@contoso.test")
            .map(|p| p.name.clone())
            .unwrap()
    };
    // Both conditions of Sales hold: Sales, though Ceo matches too (priority).
    assert_eq!(pick("ceo@contoso.test", true), "Sales");
    // Not a member: the next that matches.
    assert_eq!(pick("CEO@contoso.test", false), "Ceo");
    // A member outside contoso.test: Sales's domain condition fails (AND).
    assert_eq!(pick("bob@fabrikam.test", true), "Default");
    // A disabled policy applies to nobody.
    assert_eq!(pick("bob@contoso.test", false), "Default");
    // A custom policy without conditions applies to nobody.
    let bare = [
        MalwareFilterPolicy {
            name: "Bare".into(),
            priority: Some(0),
            ..MalwareFilterPolicy::default()
        },
        MalwareFilterPolicy::default(),
    ];
    assert_eq!(
        malware_policy_for(&bare, "a@contoso.test", |_| true).map(|p| p.name.as_str()),
        Some("Default")
    );
}

#[test]
fn items_record_their_quarantine_policy_and_release_requests_are_asked_once_then_decided() {
    let w = world();
    w.quarantine(
        "q1",
        &[(
            w.tenant,
            "bob@contoso.test",
            Route::Local(w.mailbox),
            QuarantineKind::Spam,
        )],
        1,
    );
    w.quarantine(
        "q2",
        &[(
            w.tenant,
            "bob@contoso.test",
            Route::Local(w.mailbox),
            QuarantineKind::Malware,
        )],
        1,
    );
    let all = w
        .store
        .quarantine_items(&QuarantineQuery::default())
        .unwrap();
    let of = |kind| {
        all.items
            .iter()
            .find(|i| i.kind == kind)
            .cloned()
            .expect("item")
    };
    let (spam, malware) = (of(QuarantineKind::Spam), of(QuarantineKind::Malware));
    // No policy named by the stage: Exchange's default of the kind.
    assert_eq!(spam.quarantine_policy, "DefaultFullAccessPolicy");
    assert_eq!(malware.quarantine_policy, "AdminOnlyAccessPolicy");
    assert_eq!(spam.request, None);
    // A user's view: only the policies that give access (any case).
    let users = w
        .store
        .quarantine_items(&QuarantineQuery {
            quarantine_policies: Some(vec!["defaultfullaccesspolicy".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(users.items[0].id, spam.id);
    let none = w
        .store
        .quarantine_items(&QuarantineQuery {
            quarantine_policies: Some(vec![]),
            ..Default::default()
        })
        .unwrap();
    assert!(none.items.is_empty());

    // Asked once; a second ask is refused naming the first.
    let now = w.clock.now();
    let asked = w
        .store
        .request_release(spam.id, "bob@contoso.test", now)
        .wait()
        .unwrap();
    let r = asked.request.clone().expect("a request");
    assert_eq!(
        (r.state, r.by.as_str(), r.at),
        (ReleaseRequestState::Pending, "bob@contoso.test", now)
    );
    let again = w
        .store
        .request_release(spam.id, "bob@contoso.test", now)
        .wait()
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("requested already by bob@contoso.test"),
        "{again}"
    );
    let pending = w
        .store
        .quarantine_items(&QuarantineQuery {
            request: Some(ReleaseRequestState::Pending),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pending.items.len(), 1);
    // Denied: still held, and not asked again.
    let denied = w.store.deny_release(spam.id, "ga", now).wait().unwrap();
    assert_eq!(denied.state, QuarantineState::Held);
    let r = denied.request.expect("the request");
    assert_eq!(
        (r.state, r.decided_by.as_deref()),
        (ReleaseRequestState::Denied, Some("ga"))
    );
    let e = w
        .store
        .request_release(spam.id, "bob@contoso.test", now)
        .wait()
        .unwrap_err();
    assert!(e.to_string().contains("was denied by ga"), "{e}");
    // Nothing pending to deny on the other item.
    let e = w
        .store
        .deny_release(malware.id, "ga", now)
        .wait()
        .unwrap_err();
    assert!(e.to_string().contains("no pending release request"), "{e}");
    // A pending request released is approved.
    w.store
        .request_release(malware.id, "bob@contoso.test", now)
        .wait()
        .unwrap();
    let released = w
        .store
        .release_quarantined(malware.id, "ga", now)
        .wait()
        .unwrap();
    assert_eq!(released.state, QuarantineState::Released);
    let r = released.request.expect("the request");
    assert_eq!(
        (r.state, r.decided_by.as_deref()),
        (ReleaseRequestState::Approved, Some("ga"))
    );
}

#[test]
fn custom_quarantine_policies_are_kept_per_tenant() {
    let w = world();
    let now = w.clock.now();
    let p = QuarantinePolicy {
        name: "RequestOnly".into(),
        permissions: QuarantinePermissions::NO_ACCESS
            .with(QuarantinePermission::RequestRelease)
            .with(QuarantinePermission::Preview),
        notifications: true,
        built_in: false,
    };
    w.store
        .put_quarantine_policy(w.tenant, p.clone(), true, now)
        .wait()
        .unwrap();
    assert_eq!(
        w.store.quarantine_policies(w.tenant).unwrap(),
        vec![p.clone()]
    );
    assert!(w.store.quarantine_policies(w.other).unwrap().is_empty());
    // The name is taken (any case); a change needs an existing one.
    let mut taken = p.clone();
    taken.name = "requestonly".into();
    let e = w
        .store
        .put_quarantine_policy(w.tenant, taken, true, now)
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let mut missing = p.clone();
    missing.name = "Nope".into();
    let e = w
        .store
        .put_quarantine_policy(w.tenant, missing, false, now)
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    let mut changed = p.clone();
    changed.permissions = QuarantinePermissions::FULL_ACCESS;
    w.store
        .put_quarantine_policy(w.tenant, changed.clone(), false, now)
        .wait()
        .unwrap();
    assert_eq!(
        w.store.quarantine_policies(w.tenant).unwrap(),
        vec![changed]
    );
    w.store
        .remove_quarantine_policy(w.tenant, "requestonly")
        .wait()
        .unwrap();
    assert!(w.store.quarantine_policies(w.tenant).unwrap().is_empty());
    assert!(matches!(
        w.store
            .remove_quarantine_policy(w.tenant, "RequestOnly")
            .wait()
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
}

#[test]
fn permissions_follow_exchanges_bits_presets_and_the_malware_rule() {
    use QuarantinePermission as P;
    // EndUserQuarantinePermissionsValue: Limited 43 and Full 39 (exchange-online-behaviour.md §6.4).
    assert_eq!(
        QuarantinePermissions::LIMITED_ACCESS.names(),
        ["allow-sender", "request-release", "preview", "delete"]
    );
    assert_eq!(
        QuarantinePermissions::FULL_ACCESS.names(),
        ["allow-sender", "release", "preview", "delete"]
    );
    assert_eq!(
        P::parse("PermissionToRequestRelease"),
        Some(P::RequestRelease)
    );
    assert_eq!(P::parse("block_sender"), Some(P::BlockSender));
    assert_eq!(P::parse("view"), Some(P::ViewHeader));
    assert_eq!(P::parse("fly"), None);
    // Users never release their own malware or high confidence phishing: release becomes
    // request release; other kinds keep the policy's.
    let full = QuarantinePermissions::FULL_ACCESS;
    for kind in [QuarantineKind::Malware, QuarantineKind::HighConfidencePhish] {
        let p = full.for_kind(kind);
        assert!(!p.has(P::Release) && p.has(P::RequestRelease), "{kind}");
    }
    assert_eq!(full.for_kind(QuarantineKind::Spam), full);
    assert!(!QuarantinePermissions::NO_ACCESS.any());
    let built = QuarantinePolicy::built_ins();
    let names: Vec<&str> = built.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "AdminOnlyAccessPolicy",
            "DefaultFullAccessPolicy",
            "DefaultFullAccessWithNotificationPolicy",
            "NotificationEnabledPolicy"
        ]
    );
    assert!(
        QuarantinePolicy::built_in("adminonlyaccesspolicy").is_some_and(|p| !p.permissions.any())
    );
}
