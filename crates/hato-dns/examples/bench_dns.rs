//! The DNS server of `bench/edge.sh` section 3: the authoritative test server
//! ([`hato_dns::testing::TestDnsServer`], hickory-server, zones in memory) on an address and
//! port of the script's choice, serving the records of a file, until SIGTERM or SIGINT.
//!
//! One server answers both hato (`[dns] servers = ["ADDR"]`) and a private Postfix instance
//! (whose C library resolver reads `nameserver ADDR-IP` from a resolv.conf and asks port 53:
//! hence the address of its own on port 53, e.g. `127.0.53.53:53`). Its answers are
//! authoritative (AA set) and a name it lacks is NXDOMAIN with the zone's SOA, whose minimum
//! ([`hato_dns::testing::NEGATIVE_TTL`], 300 s) is the negative TTL (RFC 2308 §5), as a real
//! DNS block list answers; a zone it does not serve is REFUSED.
//!
//! Usage: `bench_dns ADDR RECORDS ZONE...`, RECORDS a file of lines
//! `A NAME IPV4 TTL` or `PTR IPV4 NAME TTL` (`#` starts a comment). Prints
//! `bench_dns: serving N records of Z zones at ADDR` on stdout once it answers.
//!
//! It runs on one thread (tokio's current-thread runtime), as a DNS server like dnsmasq does.

use hato_dns::testing::TestDnsServer;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

enum Entry {
    A(String, Ipv4Addr, u32),
    Ptr(IpAddr, String, u32),
}

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [kind, a, b, ttl] = f[..] else {
            return Err(bad("not four fields"));
        };
        let ttl: u32 = ttl.parse().map_err(|_| bad("the TTL is not a number"))?;
        match kind {
            "A" => out.push(Entry::A(
                a.to_string(),
                b.parse().map_err(|_| bad("not an IPv4 address"))?,
                ttl,
            )),
            "PTR" => out.push(Entry::Ptr(
                IpAddr::V4(a.parse().map_err(|_| bad("not an IPv4 address"))?),
                b.to_string(),
                ttl,
            )),
            _ => return Err(bad("neither A nor PTR")),
        }
    }
    Ok(out)
}

async fn run(addr: SocketAddr, entries: Vec<Entry>, zones: Vec<String>) -> Result<(), String> {
    // Before the server starts: a signal arriving while the records are being added still ends it.
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = TestDnsServer::start_on(addr, &zone_refs)
        .await
        .map_err(|e| format!("listening at {addr}: {e}"))?;
    for entry in &entries {
        match entry {
            Entry::A(name, ip, ttl) => dns.add_a(name, *ttl, *ip).await,
            Entry::Ptr(ip, name, ttl) => dns.add_ptr(*ip, *ttl, name).await,
        }
        .map_err(|e| format!("adding a record: {e}"))?;
    }
    println!(
        "bench_dns: serving {} records of {} zones at {}",
        entries.len(),
        zones.len(),
        dns.addr()
    );
    // The script waits for that line: make sure it is out before the first query.
    std::io::stdout()
        .flush()
        .map_err(|e| format!("stdout: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: bench_dns ADDR RECORDS ZONE...");
        return ExitCode::from(2);
    }
    let result = (|| {
        let addr: SocketAddr = args[0]
            .parse()
            .map_err(|e| format!("ADDR {:?}: {e}", args[0]))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address"));
        }
        let text = std::fs::read_to_string(&args[1]).map_err(|e| format!("{}: {e}", args[1]))?;
        let entries = parse(&text).map_err(|e| format!("{}: {e}", args[1]))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(run(addr, entries, args[2..].to_vec()))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_dns: {e}");
            ExitCode::FAILURE
        }
    }
}
