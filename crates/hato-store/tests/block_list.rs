//! The provider's block list in the embedded store: entries (unique, expiring, purged) and the
//! delist requests with their single-use, expiring confirmation tokens.

use hato_core::Timestamp;
use hato_store::*;
use std::sync::Arc;

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
    (dir, s)
}

fn t0() -> Timestamp {
    Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap()
}

fn new_entry(entry: &str, expires: Option<Timestamp>) -> NewBlockEntry {
    NewBlockEntry {
        entry: entry.into(),
        reason: format!("listed {entry}"),
        added_by: "operator".into(),
        added: t0(),
        expires,
    }
}

fn request(
    ip: &str,
    entry: Option<&BlockEntry>,
    token: Option<(&str, Timestamp)>,
) -> NewDelistRequest {
    NewDelistRequest {
        requested: t0(),
        ip: ip.into(),
        address: "alice@contoso.test".into(),
        client_ip: "127.0.0.1".into(),
        outcome: if token.is_some() {
            DelistOutcome::ConfirmationSent
        } else {
            DelistOutcome::NotListed
        },
        entry: entry.map(|e| (e.id, e.entry.clone())),
        token: token.map(|(h, t)| (h.to_string(), t)),
    }
}

#[test]
fn entries_are_added_listed_and_removed() {
    let (_dir, s) = store();
    let a = s.add_block(new_entry("192.0.2.7", None)).wait().unwrap();
    let b = s
        .add_block(new_entry("2001:db8::/32", Some(t0().plus_seconds(3600))))
        .wait()
        .unwrap();
    assert_eq!(
        (
            a.entry.as_str(),
            a.reason.as_str(),
            a.added_by.as_str(),
            a.added,
            a.expires
        ),
        ("192.0.2.7", "listed 192.0.2.7", "operator", t0(), None)
    );
    assert_eq!(s.block_entries(t0()).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.block_entry("2001:db8::/32").unwrap(), Some(b.clone()));
    assert_eq!(s.block_entry("2001:db8::").unwrap(), None);
    // The same entry twice is a conflict naming it.
    let e = s
        .add_block(new_entry("192.0.2.7", None))
        .wait()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the block list entry 192.0.2.7 already exists"
    );
    assert_eq!(
        s.remove_block("192.0.2.7", "operator", t0())
            .wait()
            .unwrap(),
        a
    );
    assert_eq!(
        s.remove_block("192.0.2.7", "operator", t0())
            .wait()
            .unwrap_err()
            .to_string(),
        "the block list entry 192.0.2.7 not found"
    );
    assert_eq!(s.block_entries(t0()).unwrap(), vec![b]);
}

#[test]
fn expired_entries_stop_being_listed_at_their_time_and_are_purged() {
    let (_dir, s) = store();
    let end = t0().plus_seconds(7 * 86_400);
    s.add_block(new_entry("192.0.2.7", Some(end)))
        .wait()
        .unwrap();
    s.add_block(new_entry("192.0.2.8", None)).wait().unwrap();
    let listed = |at: Timestamp| -> Vec<String> {
        s.block_entries(at)
            .unwrap()
            .into_iter()
            .map(|e| e.entry)
            .collect()
    };
    assert_eq!(listed(Timestamp(end.0 - 1)), ["192.0.2.7", "192.0.2.8"]);
    assert_eq!(listed(end), ["192.0.2.8"]);
    // An expired entry not purged yet does not stop it being listed anew.
    let again = NewBlockEntry {
        added: end,
        ..new_entry("192.0.2.7", None)
    };
    let relisted = s.add_block(again).wait().unwrap();
    assert_eq!(listed(end), ["192.0.2.8", "192.0.2.7"]);
    s.remove_block("192.0.2.7", "operator", t0())
        .wait()
        .unwrap();
    s.add_block(new_entry("192.0.2.9", Some(end)))
        .wait()
        .unwrap();
    // Purging removes what has expired (not a second early), and old delist requests.
    s.add_delist_request(request("192.0.2.9", None, None))
        .wait()
        .unwrap();
    assert_eq!(
        s.purge_block_list(Timestamp(end.0 - 1), t0())
            .wait()
            .unwrap(),
        (0, 0)
    );
    assert_eq!(
        s.purge_block_list(end, t0().plus_seconds(1))
            .wait()
            .unwrap(),
        (1, 1)
    );
    assert_eq!(listed(t0()), ["192.0.2.8"]);
    assert!(s.delist_requests(10).unwrap().is_empty());
    assert!(relisted.id > 0);
}

#[test]
fn a_confirmation_token_removes_its_entry_once_and_only_before_it_expires() {
    let (_dir, s) = store();
    let entry = s.add_block(new_entry("192.0.2.7", None)).wait().unwrap();
    let until = t0().plus_seconds(86_400);
    let id = s
        .add_delist_request(request("192.0.2.7", Some(&entry), Some(("hash-1", until))))
        .wait()
        .unwrap();
    let recorded = s.delist_request_by_token("hash-1").unwrap().unwrap();
    assert_eq!(
        (
            recorded.id,
            recorded.ip.as_str(),
            recorded.outcome,
            recorded.entry_id,
            recorded.entry.as_deref(),
            recorded.token_expires,
            recorded.confirmed
        ),
        (
            id,
            "192.0.2.7",
            DelistOutcome::ConfirmationSent,
            Some(entry.id),
            Some("192.0.2.7"),
            Some(until),
            None
        )
    );
    assert_eq!(
        s.confirm_delist("unknown", t0()).wait().unwrap(),
        DelistConfirmation::Unknown
    );
    let used_at = t0().plus_seconds(60);
    assert_eq!(
        s.confirm_delist("hash-1", used_at).wait().unwrap(),
        DelistConfirmation::Removed {
            ip: "192.0.2.7".into(),
            entry: "192.0.2.7".into()
        }
    );
    assert!(s.block_entries(used_at).unwrap().is_empty());
    // Single use.
    assert_eq!(
        s.confirm_delist("hash-1", used_at.plus_seconds(1))
            .wait()
            .unwrap(),
        DelistConfirmation::AlreadyUsed {
            ip: "192.0.2.7".into(),
            at: used_at
        }
    );
    let done = &s.delist_requests(10).unwrap()[0];
    assert_eq!(
        (done.outcome, done.confirmed),
        (DelistOutcome::Removed, Some(used_at))
    );

    // A token used at its expiry is expired, and removes nothing.
    let entry = s.add_block(new_entry("192.0.2.8", None)).wait().unwrap();
    s.add_delist_request(request("192.0.2.8", Some(&entry), Some(("hash-2", until))))
        .wait()
        .unwrap();
    assert_eq!(
        s.confirm_delist("hash-2", until).wait().unwrap(),
        DelistConfirmation::Expired {
            ip: "192.0.2.8".into()
        }
    );
    assert_eq!(s.block_entries(until).unwrap(), vec![entry]);
}

/// A link removes only the entry it was mailed for: once that entry is gone (removed by the
/// operator, or removed and listed anew), following it removes nothing and says so.
#[test]
fn a_link_for_an_entry_no_longer_listed_removes_nothing() {
    let (_dir, s) = store();
    let until = t0().plus_seconds(86_400);
    let first = s.add_block(new_entry("192.0.2.7", None)).wait().unwrap();
    s.add_delist_request(request("192.0.2.7", Some(&first), Some(("hash-1", until))))
        .wait()
        .unwrap();
    s.remove_block("192.0.2.7", "operator", t0())
        .wait()
        .unwrap();
    // The request waiting for the operator is closed by the removal, in its write.
    let closed = &s.delist_requests(1).unwrap()[0];
    assert_eq!(closed.status(), DelistStatus::Closed);
    assert_eq!(
        (
            closed.decided_by.as_deref(),
            closed.decided,
            closed.decision_reason.as_deref()
        ),
        (Some("operator"), Some(t0()), Some("entry removed"))
    );
    let relisted = s.add_block(new_entry("192.0.2.7", None)).wait().unwrap();
    assert_eq!(
        s.confirm_delist("hash-1", t0()).wait().unwrap(),
        DelistConfirmation::NoLongerListed {
            ip: "192.0.2.7".into()
        }
    );
    assert_eq!(s.block_entries(t0()).unwrap(), vec![relisted]);
    assert_eq!(
        s.delist_requests(1).unwrap()[0].outcome,
        DelistOutcome::NoLongerListed
    );
}

#[test]
fn requests_are_recorded_newest_first() {
    let (_dir, s) = store();
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        s.add_delist_request(request(ip, None, None))
            .wait()
            .unwrap();
    }
    let ips: Vec<String> = s
        .delist_requests(2)
        .unwrap()
        .into_iter()
        .map(|r| r.ip)
        .collect();
    assert_eq!(ips, ["192.0.2.3", "192.0.2.2"]);
    let r = &s.delist_requests(1).unwrap()[0];
    assert_eq!(
        (
            r.address.as_str(),
            r.client_ip.as_str(),
            r.outcome,
            r.requested,
            r.token_expires
        ),
        (
            "alice@contoso.test",
            "127.0.0.1",
            DelistOutcome::NotListed,
            t0(),
            None
        )
    );
}

/// The list survives a restart (it is the store's, the snapshot is only a copy).
#[test]
fn entries_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.add_block(new_entry("198.51.100.0/24", None))
            .wait()
            .unwrap();
        s.close();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let entries = s.block_entries(t0()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry, "198.51.100.0/24");
}

/// The operator's decisions (migration 38): approving a pending request removes its entry,
/// denying keeps it and makes the request's link remove nothing; neither twice, and a request
/// with nothing to decide is refused; the listing filters by status and pages in the query.
#[test]
fn the_operator_approves_or_denies_a_pending_request_once() {
    let (_dir, s) = store();
    let until = t0().plus_seconds(86_400);
    let a = s.add_block(new_entry("192.0.2.7", None)).wait().unwrap();
    let b = s.add_block(new_entry("192.0.2.8", None)).wait().unwrap();
    let approve_me = s
        .add_delist_request(request("192.0.2.7", Some(&a), Some(("hash-a", until))))
        .wait()
        .unwrap();
    let deny_me = s
        .add_delist_request(request("192.0.2.8", Some(&b), Some(("hash-b", until))))
        .wait()
        .unwrap();
    let nothing = s
        .add_delist_request(request("192.0.2.9", None, None))
        .wait()
        .unwrap();
    let status = |id| s.delist_request(id).unwrap().unwrap().status();
    assert_eq!(status(approve_me), DelistStatus::Pending);
    assert_eq!(status(nothing), DelistStatus::Closed);
    let page = |status, offset, limit| -> Vec<i64> {
        s.delist_request_page(&DelistRequestQuery {
            status,
            offset,
            limit,
        })
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    };
    assert_eq!(
        page(Some(DelistStatus::Pending), 0, 10),
        [deny_me, approve_me]
    );
    assert_eq!(page(None, 1, 1), [deny_me]);
    assert_eq!(page(Some(DelistStatus::Closed), 0, 10), [nothing]);

    let at = t0().plus_seconds(60);
    let done = s
        .decide_delist(
            approve_me,
            DelistDecision::Approved,
            "operator",
            Some("cleaned up"),
            at,
        )
        .wait()
        .unwrap();
    assert_eq!(done.removed, Some(a));
    assert_eq!(
        (
            done.request.status(),
            done.request.decided_by.as_deref(),
            done.request.decided,
            done.request.decision_reason.as_deref()
        ),
        (
            DelistStatus::Approved,
            Some("operator"),
            Some(at),
            Some("cleaned up")
        )
    );
    assert_eq!(s.block_entries(at).unwrap(), vec![b.clone()]);
    let denied = s
        .decide_delist(deny_me, DelistDecision::Denied, "operator", None, at)
        .wait()
        .unwrap();
    assert_eq!(
        (denied.removed, denied.request.status()),
        (None, DelistStatus::Denied)
    );
    // The denied request's link removes nothing, and is not used up by trying.
    assert_eq!(
        s.confirm_delist("hash-b", at).wait().unwrap(),
        DelistConfirmation::Denied {
            ip: "192.0.2.8".into()
        }
    );
    assert_eq!(s.block_entries(at).unwrap(), vec![b]);
    // Decided once: a second decision, either way, is a conflict saying who decided.
    for (id, d) in [
        (approve_me, DelistDecision::Denied),
        (deny_me, DelistDecision::Approved),
    ] {
        let e = s
            .decide_delist(id, d, "operator", None, at)
            .wait()
            .unwrap_err();
        assert!(matches!(e, StoreError::InUse(_)), "{e}");
        assert!(e.to_string().contains("already, by operator"), "{e}");
    }
    let e = s
        .decide_delist(nothing, DelistDecision::Approved, "operator", None, at)
        .wait()
        .unwrap_err();
    assert!(e.to_string().contains("nothing listed its IP"), "{e}");
    let e = s
        .decide_delist(9999, DelistDecision::Approved, "operator", None, at)
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert_eq!(page(Some(DelistStatus::Approved), 0, 10), [approve_me]);
    assert_eq!(page(Some(DelistStatus::Denied), 0, 10), [deny_me]);
    assert_eq!(page(Some(DelistStatus::Pending), 0, 10), Vec::<i64>::new());
}
