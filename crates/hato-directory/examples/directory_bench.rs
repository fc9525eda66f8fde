//! Directory benchmark for `bench/groups.sh`: a tenant of 100,000 recipients in the embedded
//! store; the time to evaluate a dynamic group's filter and to expand groups over it, as the
//! router does for every message (median and p99 of many runs), and the time to load the
//! directory after a change.
//!
//! Run: `cargo run --release -p hato-directory --example directory_bench [RECIPIENTS] [RUNS]`

use hato_core::directory::{
    DomainType, GroupSettings, GroupType, MailboxAttributes, MailboxType, MemberRef,
};
use hato_directory::Directory;
use hato_directory::policy;
use hato_store::{GroupStore, MailboxStore, NewGroup, NewMailbox, SqliteStore, Store, TenantStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn measure(label: &str, runs: usize, mut f: impl FnMut() -> usize) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed());
    }
    times.sort();
    let (med, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "{label}: {n} recipients; median {:.2} ms, p99 {:.2} ms over {runs} runs (target < 20 ms)",
        med.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (med, p99)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("hato-directory-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SqliteStore::open(&dir)?);
    let tenant = store.create_tenant("bench").wait()?;
    store
        .add_domain("bench.test", tenant.id, DomainType::Authoritative)
        .wait()?;

    let departments = [
        "Sales",
        "Engineering",
        "Support",
        "Finance",
        "Legal",
        "Marketing",
        "HR",
        "Operations",
    ];
    let offices = [
        "Tokyo",
        "Osaka",
        "London",
        "Paris",
        "New York",
        "Berlin",
        "Sydney",
        "Toronto",
        "Tokyo Annex",
        "Nagoya",
    ];
    let t = Instant::now();
    // Hand all writes to the store at once: the group commit batches them.
    let pending: Vec<_> = (0..total)
        .map(|i| {
            let attributes = MailboxAttributes {
                department: departments[i % departments.len()].into(),
                office: offices[(i / 7) % offices.len()].into(),
                city: offices[(i / 7) % offices.len()].into(),
                company: if i % 3 == 0 {
                    "Contoso".into()
                } else {
                    "Fabrikam".into()
                },
                title: if i % 50 == 0 {
                    "Manager".into()
                } else {
                    "Staff".into()
                },
                ..Default::default()
            };
            store.create_mailbox(NewMailbox {
                tenant_id: tenant.id,
                address: format!("user{i}@bench.test"),
                display_name: format!("User {i}"),
                mailbox_type: MailboxType::User,
                aliases: vec![],
                attributes,
                quota_bytes: 1 << 30,
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(total);
    for p in pending {
        ids.push(p.wait()?.id);
    }
    println!(
        "created {total} mailboxes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut settings = GroupSettings::defaults_for(GroupType::Dynamic);
    settings.recipient_filter =
        Some("(Department -eq 'Sales') -and (Office -like 'Tokyo*')".into());
    let dynamic = store
        .create_group(NewGroup {
            tenant_id: tenant.id,
            name: "tokyo-sales".into(),
            address: Some("tokyo-sales@bench.test".into()),
            group_type: GroupType::Dynamic,
            settings,
            owners: vec![ids[0]],
            members: vec![],
        })
        .wait()?;
    let members: Vec<MemberRef> = ids
        .iter()
        .take(1000)
        .map(|id| MemberRef::Mailbox(*id))
        .collect();
    let static_group = store
        .create_group(NewGroup {
            tenant_id: tenant.id,
            name: "thousand".into(),
            address: Some("thousand@bench.test".into()),
            group_type: GroupType::Distribution,
            settings: GroupSettings::defaults_for(GroupType::Distribution),
            owners: vec![ids[0]],
            members,
        })
        .wait()?;

    let store_dyn: Arc<dyn Store> = store.clone();
    let directory = Directory::new(store_dyn);
    let t = Instant::now();
    let ix = directory.index(tenant.id)?;
    println!(
        "loading the directory of {total} recipients after a change: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    measure(
        "dynamic group evaluation (filter over the whole directory)",
        runs,
        || ix.evaluate_dynamic(dynamic.id).len(),
    );
    measure(
        "dynamic group expansion as routing does it (directory index and members cached until the directory changes)",
        runs,
        || match directory.index(tenant.id) {
            Ok(ix) => ix
                .group(dynamic.id)
                .map(|g| policy::expansion(&ix, g).len())
                .unwrap_or(0),
            Err(_) => 0,
        },
    );
    measure("1,000-member distribution group expansion", runs, || {
        ix.group(static_group.id)
            .map(|g| policy::expansion(&ix, g).len())
            .unwrap_or(0)
    });
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
