//! The throttle's figures for `bench/edge.sh` (release build):
//!
//! - `cost`: the decision cost per connection without DNS — `check` and the recording calls the
//!   edge and delivery make for it — over a realistic mix: established IPs with a month of
//!   history, new IPs on probation (IPv4 and IPv6), a few bursting IPs that get throttled and
//!   keep knocking. Prints the median, p90, p99 and largest cost of one connection.
//! - `memory`: the process's RSS after tracking N distinct IPs (a million by default; the bound
//!   `max_tracked_ips` set 15% above, so that all of them are tracked), then after N more (the
//!   bound holds: a full shard drops its least valuable eighth, so between 7/8 of the bound and
//!   the bound are tracked), and the snapshot's size and the time to write and read it.
//!
//! Usage: `edge_bench cost [CONNECTIONS] [KNOWN_IPS]` | `edge_bench memory [IPS] [MAX_TRACKED]`

use hato_core::Timestamp;
use hato_protection::throttle::{Throttle, ThrottleSettings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// xorshift64*: a fixed, reproducible mix without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The `i`-th of a run of distinct client addresses: three in ten IPv6 (each in its own /64),
/// the others IPv4.
fn distinct(i: u64, salt: u64) -> IpAddr {
    if i % 10 < 3 {
        // 2001:db8:SSII:IIII::/64, a prefix of its own for each of 16 million i.
        let low = (salt << 24) | (i & 0xff_ffff);
        let prefix = (0x2001_0db8u128 << 96) | (u128::from(low as u32) << 64);
        IpAddr::V6(Ipv6Addr::from(prefix | 0x25))
    } else {
        // Spread over the IPv4 space without repeats (an odd multiplier is a bijection).
        let v = (i.wrapping_add(salt << 28) as u32).wrapping_mul(0x9e37_79b1);
        IpAddr::V4(Ipv4Addr::from(v))
    }
}

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    args.get(i)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("cost") => cost(arg(&args, 2, 1_000_000), arg(&args, 3, 100_000)),
        Some("memory") => {
            let ips = arg(&args, 2, 1_000_000);
            memory(ips, arg(&args, 3, ips + ips * 15 / 100))
        }
        _ => {
            eprintln!(
                "usage: edge_bench cost [CONNECTIONS] [KNOWN_IPS] | memory [IPS] [MAX_TRACKED]"
            );
            std::process::exit(2);
        }
    }
}

fn cost(connections: u64, known: u64) {
    let th = Throttle::new(ThrottleSettings::default());
    let start = Timestamp::parse_human("2026-03-02T00:00:00Z").unwrap_or(Timestamp(0));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // A month of history for the known IPs: one visit a day, a few messages each.
    for day in 0..30i64 {
        let t = start.plus_seconds((day - 30) * 86_400);
        for i in 0..known {
            let ip = distinct(i, 1);
            th.record_connection(ip, t);
            th.record_message(ip, 1 + rng.below(5) as u32, t);
        }
    }
    let bursting: Vec<IpAddr> = (0..100).map(|i| distinct(i, 3)).collect();
    let mut new_ips = 0u64;
    let mut refused = 0u64;
    let mut costs: Vec<u64> = Vec::with_capacity(connections as usize);
    for n in 0..connections {
        // A thousand connections a second.
        let now = Timestamp(start.0 + n as i64 * 1_000);
        let roll = rng.below(100);
        let ip = if roll < 80 {
            distinct(rng.below(known), 1)
        } else if roll < 95 {
            new_ips += 1;
            distinct(new_ips, 2)
        } else {
            bursting[rng.below(100) as usize]
        };
        let (rcpts, unknown, spam) = if roll >= 95 {
            (20, false, false)
        } else {
            (
                1 + rng.below(5) as u32,
                rng.below(20) == 0,
                rng.below(200) == 0,
            )
        };
        let began = Instant::now();
        if th.check(ip, now).refuses() {
            refused += 1;
        } else {
            th.record_connection(ip, now);
            if unknown {
                th.record_unknown_recipient(ip, now);
            }
            th.record_message(ip, rcpts, now);
            if spam {
                th.record_spam(ip, now);
            }
        }
        costs.push(began.elapsed().as_nanos() as u64);
    }
    costs.sort_unstable();
    let at = |q: f64| costs[((costs.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    println!(
        "decision cost per connection (check + record_*), {connections} connections: {known} established IPs (80%), {new_ips} new IPs (15%), 100 bursting IPs (5%); {refused} refused"
    );
    println!(
        "  median {:.2} us, p90 {:.2} us, p99 {:.2} us, max {:.1} us (target: median < 50 us)",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    println!("  IPs tracked at the end: {}", th.tracked());
}

fn memory(ips: u64, max: u64) {
    let rss0 = status_kb("VmRSS:");
    let settings = ThrottleSettings {
        max_tracked_ips: max as usize,
        ..ThrottleSettings::default()
    };
    let th = Throttle::new(ThrottleSettings {
        max_tracked_ips: max as usize,
        ..ThrottleSettings::default()
    });
    let start = Timestamp::parse_human("2026-03-02T00:00:00Z").unwrap_or(Timestamp(0));
    let began = Instant::now();
    for i in 0..ips {
        let now = Timestamp(start.0 + i as i64 * 100);
        let ip = distinct(i, 5);
        th.record_connection(ip, now);
        th.record_message(ip, 1 + (i % 5) as u32, now);
    }
    let took = began.elapsed();
    let rss1 = status_kb("VmRSS:");
    println!(
        "memory: {} distinct IPs tracked ({} recorded in {:.2} s; max_tracked_ips {max}): RSS {:.0} MB (at start {:.1} MB; target < 200 MB)",
        th.tracked(),
        ips,
        took.as_secs_f64(),
        mb(rss1),
        mb(rss0)
    );
    for i in 0..ips {
        let now = Timestamp(start.0 + (ips + i) as i64 * 100);
        th.record_connection(distinct(i, 6), now);
    }
    println!(
        "  after {} more distinct IPs: {} tracked (within the bound), RSS {:.0} MB, peak {:.0} MB",
        ips,
        th.tracked(),
        mb(status_kb("VmRSS:")),
        mb(status_kb("VmHWM:"))
    );
    let dir = std::env::temp_dir().join(format!("hato-edge-bench-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("throttle.state");
        let t = Instant::now();
        let written = th.save(&path);
        let write_s = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        drop(th);
        let t = Instant::now();
        let loaded = Throttle::load(settings, &path);
        let read_s = t.elapsed().as_secs_f64();
        match (written, loaded) {
            (Ok(n), Ok(Some(back))) => println!(
                "  snapshot: {n} records, {:.0} MB, written (synced) in {write_s:.2} s, read in {read_s:.2} s ({} back)",
                size as f64 / 1_048_576.0,
                back.tracked()
            ),
            (w, r) => println!("  snapshot failed: {:?} / {:?}", w.err(), r.err()),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
