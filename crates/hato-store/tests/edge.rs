//! The edge's resources in the embedded store: tenants' connection filter policies (deltas,
//! versions, the entry limit) and the connection log (tenant scope, filters, paging, retention).

use hato_core::reply::{self, Reply};
use hato_core::{Reason, Stage, Timestamp};
use hato_store::*;

fn store(max: usize) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path())
        .unwrap()
        .with_connection_filter_max_entries(max);
    (dir, s)
}

fn change(allow_add: &[&str], allow_remove: &[&str], block_add: &[&str]) -> ConnectionFilterChange {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    ConnectionFilterChange {
        ip_allow_list_add: v(allow_add),
        ip_allow_list_remove: v(allow_remove),
        ip_block_list_add: v(block_add),
        ip_block_list_remove: vec![],
    }
}

#[test]
fn a_policy_changes_by_deltas_and_its_version_moves_with_each_change() {
    let (_dir, s) = store(DEFAULT_CONNECTION_FILTER_MAX_ENTRIES);
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let other = s.create_tenant("fabrikam").wait().unwrap().id;
    assert_eq!(
        s.connection_filter(t).unwrap(),
        ConnectionFilterPolicy::default()
    );
    assert_eq!(s.connection_filter_version(t).unwrap(), 0);

    let p = s
        .change_connection_filter(
            t,
            change(&["192.0.2.0/24", "198.51.100.7"], &[], &["203.0.113.9"]),
        )
        .wait()
        .unwrap();
    assert_eq!(p.ip_allow_list, ["192.0.2.0/24", "198.51.100.7"]);
    assert_eq!(p.ip_block_list, ["203.0.113.9"]);
    assert_eq!(p.version, 1);
    // Adding a listed entry again adds nothing; removing one not listed removes nothing;
    // removals come first, so remove-and-add of one entry keeps it (at the end).
    let p = s
        .change_connection_filter(
            t,
            change(
                &["198.51.100.7", "192.0.2.0/24"],
                &["192.0.2.0/24", "10.9.9.9"],
                &[],
            ),
        )
        .wait()
        .unwrap();
    assert_eq!(p.ip_allow_list, ["198.51.100.7", "192.0.2.0/24"]);
    assert_eq!(p.version, 2);
    assert_eq!(s.connection_filter_version(t).unwrap(), 2);
    assert_eq!(s.connection_filter(t).unwrap(), p);
    // Other tenants' policies are their own.
    assert_eq!(
        s.connection_filter(other).unwrap(),
        ConnectionFilterPolicy::default()
    );
    // No such tenant.
    assert!(matches!(
        s.change_connection_filter(9999, change(&["192.0.2.1"], &[], &[]))
            .wait(),
        Err(StoreError::NotFound(_))
    ));
    // The policy goes with its tenant.
    s.remove_tenant(t).wait().unwrap();
    assert_eq!(
        s.connection_filter(t).unwrap(),
        ConnectionFilterPolicy::default()
    );
}

#[test]
fn a_list_holds_at_most_the_limit_and_a_refused_change_changes_nothing() {
    let (_dir, s) = store(3);
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let p = s
        .change_connection_filter(
            t,
            change(
                &["192.0.2.1", "192.0.2.2", "192.0.2.3"],
                &[],
                &["192.0.2.9"],
            ),
        )
        .wait()
        .unwrap();
    assert_eq!(p.ip_allow_list.len(), 3);
    let err = s
        .change_connection_filter(t, change(&["192.0.2.4"], &[], &["192.0.2.10"]))
        .wait()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ip_allow_list would hold 4 entries; a list holds at most 3 (edge.connection_filter_max_entries)"
    );
    // Nothing of the refused change was kept (not even the block list's part).
    assert_eq!(s.connection_filter(t).unwrap(), p);
    // Making room in the same change is fine.
    let p = s
        .change_connection_filter(t, change(&["192.0.2.4"], &["192.0.2.1"], &[]))
        .wait()
        .unwrap();
    assert_eq!(p.ip_allow_list, ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
}

fn record(
    time: i64,
    ip: &str,
    tenant: Option<i64>,
    reply: Reply,
    stage: Stage,
) -> NewConnectionRecord {
    NewConnectionRecord {
        time: Timestamp(time),
        ip: ip.into(),
        ptr: String::new(),
        helo: "client.test".into(),
        tenant,
        reply,
        reason: Reason::new(stage, "why")
            .rule("the rule")
            .figure("entry", ip),
        notes: vec![Reason::new(
            Stage::DnsBlockList,
            "a zone timed out; failed open",
        )],
    }
}

const SECOND: i64 = 1_000_000;

#[test]
fn the_connection_log_is_tenant_scoped_filtered_paged_and_purged() {
    let (_dir, s) = store(DEFAULT_CONNECTION_FILTER_MAX_ENTRIES);
    let contoso = s.create_tenant("contoso").wait().unwrap().id;
    let fabrikam = s.create_tenant("fabrikam").wait().unwrap().id;
    let t0 = 1_800_000_000 * SECOND;
    let blocked = reply::customer_block_list("192.0.2.7", "contoso.test");
    for (i, (ip, tenant, reply, stage)) in [
        (
            "192.0.2.7",
            Some(contoso),
            blocked.clone(),
            Stage::ConnectionFilter,
        ),
        (
            "192.0.2.8",
            Some(fabrikam),
            blocked.clone(),
            Stage::ConnectionFilter,
        ),
        ("192.0.2.7", None, reply::BAD_HELO, Stage::Helo),
        ("192.0.2.9", None, reply::EARLY_TALKER, Stage::EarlyTalker),
    ]
    .into_iter()
    .enumerate()
    {
        s.log_connection(record(t0 + i as i64 * SECOND, ip, tenant, reply, stage))
            .wait()
            .unwrap();
    }
    let all = |q: ConnectionQuery| s.connections(&q).unwrap();
    // The operator's view: every row, newest first.
    let page = all(ConnectionQuery::default());
    let stages: Vec<&str> = page.rows.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(
        stages,
        [
            "early_talker",
            "helo",
            "connection_filter",
            "connection_filter"
        ]
    );
    assert!(!page.more);
    let first = &page.rows[3];
    assert_eq!(first.time, Timestamp(t0).to_rfc3339());
    assert_eq!(
        (first.ip.as_str(), first.helo.as_str()),
        ("192.0.2.7", "client.test")
    );
    assert_eq!(first.tenant.as_deref(), Some("contoso"));
    assert_eq!(
        (first.status, first.enhanced_status.as_str()),
        (550, "5.7.513")
    );
    assert_eq!(
        first.reply,
        "550 5.7.513 Service unavailable, Client host [192.0.2.7] blocked by contoso.test using Customer Block list"
    );
    assert_eq!(first.rule.as_deref(), Some("the rule"));
    assert_eq!(
        first.reason.as_ref().map(|r| r.stage),
        Some(Stage::ConnectionFilter)
    );
    assert_eq!(first.notes.len(), 1);
    assert_eq!(page.rows[1].tenant, None);

    // A tenant sees the refusals made on its policy only.
    let mine = all(ConnectionQuery {
        tenant: Some(contoso),
        ..Default::default()
    });
    assert_eq!(mine.rows.len(), 1);
    assert_eq!(mine.rows[0].tenant.as_deref(), Some("contoso"));
    // By client address, and by time.
    let by_ip = all(ConnectionQuery {
        ip: Some("192.0.2.7".into()),
        ..Default::default()
    });
    assert_eq!(by_ip.rows.len(), 2);
    let window = all(ConnectionQuery {
        start: Some(Timestamp(t0 + SECOND)),
        end: Some(Timestamp(t0 + 2 * SECOND)),
        ..Default::default()
    });
    let ips: Vec<&str> = window.rows.iter().map(|r| r.ip.as_str()).collect();
    assert_eq!(ips, ["192.0.2.7", "192.0.2.8"]);
    // Pages of three rows: the first says more follow, the second not.
    let p1 = all(ConnectionQuery {
        page: 1,
        page_size: 3,
        ..Default::default()
    });
    let p2 = all(ConnectionQuery {
        page: 2,
        page_size: 3,
        ..Default::default()
    });
    assert_eq!(
        (p1.rows.len(), p1.more, p2.rows.len(), p2.more),
        (3, true, 1, false)
    );
    assert_eq!(p2.rows[0].stage, "connection_filter");

    // Retention: rows older than the bound go; a tenant's rows go with it.
    assert_eq!(
        s.purge_connections(Timestamp(t0 + 2 * SECOND))
            .wait()
            .unwrap(),
        2
    );
    assert_eq!(all(ConnectionQuery::default()).rows.len(), 2);
    s.log_connection(record(
        t0 + 9 * SECOND,
        "192.0.2.1",
        Some(fabrikam),
        blocked,
        Stage::ConnectionFilter,
    ))
    .wait()
    .unwrap();
    s.remove_tenant(fabrikam).wait().unwrap();
    let left: Vec<String> = all(ConnectionQuery::default())
        .rows
        .into_iter()
        .map(|r| r.stage)
        .collect();
    assert_eq!(left, ["early_talker", "helo"]);
}
