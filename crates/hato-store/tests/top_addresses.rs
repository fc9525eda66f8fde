//! Home's top senders and recipients under a spammer's attack: 20,000 recipients from as many
//! distinct senders, mixed with five real heavy senders, over three hours. The hourly summaries
//! stay at most `TOP_CAPACITY` rows each, the catch-up reads each recipient once and skips those
//! older than its window, and the top list names the real heavy senders first, in their order,
//! with counts whose bounds hold.

use hato_core::Timestamp;
use hato_core::directory::DomainType;
use hato_store::{ConsoleStore, SqliteStore, TOP_CAPACITY, TenantStore};
use rusqlite::params;
use std::collections::HashMap;

const HOUR: i64 = 3_600_000_000;

fn now() -> i64 {
    hato_core::Clock::now(&hato_core::SystemClock).0
}

/// Writes `rows` (sender, recipient, received) straight into the trace tables, as the console
/// bench does, with the store closed.
fn write_rows(dir: &std::path::Path, tenant: i64, rows: &[(String, String, i64)]) {
    let conn = rusqlite::Connection::open(dir.join("hato.db")).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let mut mid: i64 = conn
        .query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
            r.get(0)
        })
        .unwrap();
    for (i, (sender, rcpt, at)) in rows.iter().enumerate() {
        mid += 1;
        conn.execute(
            "INSERT INTO messages(id, trace_id, received, sender, client_ip, helo, message_id, subject, size) \
             VALUES (?1, ?2, ?3, ?4, '192.0.2.1', 'client.test', '', 'x', 100)",
            params![mid, format!("t-{mid}-{i}"), at, sender],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO recipients(message_id, tenant_id, address, route, status, next_attempt, updated) \
             VALUES (?1, ?2, ?3, 'local', 'Delivered', ?4, ?4)",
            params![mid, tenant, rcpt, at],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// xorshift64*, for a reproducible mix.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn catch_up_all(s: &SqliteStore, from: Timestamp) -> usize {
    let mut total = 0;
    loop {
        let n = s.top_address_catch_up(from, 1_000).wait().unwrap();
        total += n;
        if n < 1_000 {
            return total;
        }
    }
}

#[test]
fn the_top_lists_stay_bounded_and_right_under_a_spammers_distinct_senders() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    s.add_domain("contoso.test", t, DomainType::Authoritative)
        .wait()
        .unwrap();
    drop(s);

    let now = now();
    let start = now - 3 * HOUR;
    let heavy = [
        ("big0@real.test", 300u64),
        ("big1@real.test", 220),
        ("big2@real.test", 160),
        ("big3@real.test", 110),
        ("big4@real.test", 70),
    ];
    let mut items: Vec<String> = heavy
        .iter()
        .flat_map(|(a, n)| std::iter::repeat_n(a.to_string(), *n as usize))
        .collect();
    items.extend((0..20_000).map(|i| format!("spam{i}@random{}.test", i % 997)));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..items.len()).rev() {
        let j = (rng(&mut state) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    let n = items.len() as i64;
    let rows: Vec<(String, String, i64)> = items
        .iter()
        .enumerate()
        .map(|(i, sender)| {
            let rcpt = format!("u{}@contoso.test", i % 7);
            (sender.clone(), rcpt, start + 3 * HOUR * i as i64 / n)
        })
        .collect();
    // A day and a half ago: outside every window Home shows, never read.
    let old = vec![
        (
            "old@real.test".to_string(),
            "u0@contoso.test".to_string(),
            now - 36 * HOUR
        );
        500
    ];
    write_rows(dir.path(), t, &old);
    write_rows(dir.path(), t, &rows);

    let s = SqliteStore::open(dir.path()).unwrap();
    let from = Timestamp(now - 25 * HOUR);
    assert_eq!(
        catch_up_all(&s, from),
        rows.len(),
        "each row of the window once"
    );
    assert_eq!(catch_up_all(&s, from), 0, "nothing twice");

    // Bounded: at most TOP_CAPACITY counters a summary (tenant or every tenant, kind, hour).
    let conn = rusqlite::Connection::open(dir.path().join("hato.db")).unwrap();
    let largest: i64 = conn
        .query_row(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM top_address_hours GROUP BY tenant_id, kind, hour)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(largest <= TOP_CAPACITY as i64, "{largest}");
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM top_address_hours", [], |r| r.get(0))
        .unwrap();
    assert!(total <= 2 * 2 * 4 * TOP_CAPACITY as i64, "{total}");

    let since = Timestamp(now - 24 * HOUR);
    for tenant in [Some(t), None] {
        let (senders, recipients) = s.top_addresses(tenant, since, 10).unwrap();
        let listed: Vec<&str> = senders.iter().map(|a| a.address.as_str()).collect();
        assert_eq!(listed[..heavy.len()], heavy.map(|(a, _)| a), "{senders:?}");
        // Space-Saving's bounds: at least `count`, at most `count + error`, and short of the
        // truth by at most an hour's rows over the capacity, for each of the hours.
        let slack = (rows.len() / TOP_CAPACITY) as u64;
        for (a, truth) in heavy {
            let c = senders.iter().find(|c| c.address == a).unwrap();
            assert!(
                c.count <= truth && truth <= c.count + c.error,
                "{c:?} vs {truth}"
            );
            assert!(truth - c.count <= slack, "{c:?} vs {truth}");
        }
        assert!(!listed.contains(&"old@real.test"));
        // Seven recipients only: exact.
        let mut want: HashMap<String, u64> = HashMap::new();
        for (_, r, _) in &rows {
            *want.entry(r.clone()).or_default() += 1;
        }
        assert_eq!(recipients.len(), 7);
        for r in &recipients {
            assert_eq!((r.count, r.error), (want[&r.address], 0), "{r:?}");
        }
    }

    // More mail later: only the new rows are read, and they count.
    drop(s);
    let more = vec![
        (
            "big4@real.test".to_string(),
            "u1@contoso.test".to_string(),
            now
        );
        300
    ];
    write_rows(dir.path(), t, &more);
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(catch_up_all(&s, from), 300);
    let (senders, _) = s.top_addresses(Some(t), since, 10).unwrap();
    assert_eq!(senders[0].address, "big4@real.test", "{senders:?}");
    assert!(
        senders[0].count >= 300 && senders[0].count <= 370,
        "{senders:?}"
    );

    // The hours before the window go at the next catch-up.
    assert_eq!(
        s.top_address_catch_up(Timestamp(now + HOUR), 10)
            .wait()
            .unwrap(),
        0
    );
    assert_eq!(s.top_addresses(None, since, 10).unwrap().0, []);
}
