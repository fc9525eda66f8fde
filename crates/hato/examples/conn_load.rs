//! The load of `bench/edge.sh` section 3: many short SMTP sessions from many loopback source
//! addresses — connect, read the banner, EHLO, read its reply, QUIT, read the 221 — as fast as
//! the server takes them, CONCURRENCY at a time.
//!
//! Session `i` (counting from 0) comes from `SOURCE_FIRST + (i mod SOURCES)`: its socket is bound
//! to that address (port 0) before it connects, so the server sees SOURCES distinct clients, each
//! taking its turn in order (no two sessions from one address overlap while SOURCES >=
//! CONCURRENCY). The sources are in 127.0.0.0/8 (all local on Linux) or 198.18.0.0/15 (the
//! benchmark range, which `bench/edge.sh` puts on a network namespace's loopback device); others
//! are refused, and so is a target that is not a loopback address: nothing leaves the machine.
//!
//! A session counts as
//! - `ok`: 220 banner, 250 to EHLO, 221 to QUIT;
//! - `refused`: a 4xx/5xx banner (throttled, blocked, server busy) or a 4xx/5xx to EHLO (a bad
//!   HELO); the first few distinct replies are printed to stderr;
//! - `errors`: anything else (connection refused or reset, timeout, a reply that is not SMTP);
//!   the first few are printed to stderr.
//!
//! Prints one line to stdout:
//! `sessions=N ok=N refused=N errors=N secs=S rate=R p50_ms=X p99_ms=Y max_ms=Z cpu_us=U`,
//! rate being sessions per second of wall-clock time (all sessions, whatever their outcome),
//! the latencies those of one whole session (connect to 221), and `cpu_us` this program's own
//! CPU time (user + system) per session — to show it is not what limits the rate.
//!
//! It runs on one thread (tokio's current-thread runtime): the cheapest per session, and it
//! leaves the other core to the server.
//!
//! Usage: `conn_load TARGET SOURCE_FIRST SOURCES SESSIONS CONCURRENCY [EHLO_NAME] [TIMEOUT_SECS]`
//! e.g. `conn_load 127.0.0.1:2525 127.1.0.0 2000 20000 50 client.bench 30`

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The longest reply this client reads (an EHLO reply is a few hundred bytes): a server that
/// sends more is an error, not a reason to grow without bound.
const MAX_REPLY: usize = 16 * 1024;
/// Distinct refusal replies and errors printed to stderr.
const SHOWN: usize = 5;

struct Args {
    target: SocketAddr,
    first: u32,
    sources: u32,
    sessions: u64,
    concurrency: u64,
    ehlo: String,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 || args.len() > 7 {
        return Err(
            "usage: conn_load TARGET SOURCE_FIRST SOURCES SESSIONS CONCURRENCY \
                    [EHLO_NAME] [TIMEOUT_SECS]"
                .into(),
        );
    }
    let target: SocketAddr = args[0]
        .parse()
        .map_err(|e| format!("TARGET {:?}: {e}", args[0]))?;
    let first: Ipv4Addr = args[1]
        .parse()
        .map_err(|e| format!("SOURCE_FIRST {:?}: {e}", args[1]))?;
    let num = |i: usize, what: &str| -> Result<u64, String> {
        args[i]
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what} {:?} is not a whole number above 0", args[i]))
    };
    let sources = num(2, "SOURCES")?;
    let sessions = num(3, "SESSIONS")?;
    let concurrency = num(4, "CONCURRENCY")?;
    let first = u32::from(first);
    let last = u64::from(first) + sources - 1;
    // Only this machine's sources: 127.0.0.0/8 is all local (RFC 1122 §3.2.1.3), and 198.18.0.0/15
    // (RFC 2544's range for benchmarks) is bound only where bench/edge.sh put it on the loopback
    // device of a network namespace of its own; anywhere else the bind fails.
    let local = |a: u64| a >> 24 == 127 || a >> 17 == 0xc612_0000 >> 17;
    if !local(u64::from(first)) || !local(last) || (u64::from(first) >> 24) != (last >> 24) {
        return Err(format!(
            "sources {}..={} leave 127.0.0.0/8 or 198.18.0.0/15",
            Ipv4Addr::from(first),
            Ipv4Addr::from(last.min(u64::from(u32::MAX)) as u32)
        ));
    }
    if !target.ip().is_loopback() {
        return Err(format!("TARGET {target} is not a loopback address"));
    }
    let ehlo = args
        .get(5)
        .cloned()
        .unwrap_or_else(|| "client.bench".into());
    let timeout = match args.get(6) {
        Some(_) => num(6, "TIMEOUT_SECS")?,
        None => 30,
    };
    Ok(Args {
        target,
        first,
        sources: sources as u32,
        sessions,
        concurrency,
        ehlo,
        timeout: Duration::from_secs(timeout),
    })
}

enum Outcome {
    Ok,
    Refused(String),
    Error(String),
}

/// Reads one SMTP reply (RFC 5321 §4.2: lines "ddd-text", the last "ddd text" or "ddd") and
/// returns its code and last line. `buf` keeps what came after it.
async fn reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, String), String> {
    loop {
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let code = std::str::from_utf8(line.get(..3).unwrap_or(b""))
                .ok()
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("not an SMTP reply: {:?}", String::from_utf8_lossy(line)))?;
            let last = line.len() == 3 || line[3] == b' ';
            if last {
                let text = String::from_utf8_lossy(line).into_owned();
                buf.drain(..start + nl + 1);
                return Ok((code, text));
            }
            start += nl + 1;
        }
        if buf.len() > MAX_REPLY {
            return Err(format!("a reply longer than {MAX_REPLY} bytes"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed in a reply (got {:?})",
                String::from_utf8_lossy(buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn session(target: SocketAddr, source: Ipv4Addr, ehlo: &str) -> Outcome {
    let socket = match TcpSocket::new_v4() {
        Ok(s) => s,
        Err(e) => return Outcome::Error(format!("socket: {e}")),
    };
    if let Err(e) = socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0))) {
        return Outcome::Error(format!("bind {source}: {e}"));
    }
    let mut stream = match socket.connect(target).await {
        Ok(s) => s,
        Err(e) => return Outcome::Error(format!("connect from {source}: {e}")),
    };
    let mut buf = Vec::with_capacity(512);
    let steps: [(&str, u16); 3] = [("", 220), ("EHLO", 250), ("QUIT", 221)];
    for (command, want) in steps {
        if !command.is_empty() {
            let line = if command == "EHLO" {
                format!("EHLO {ehlo}\r\n")
            } else {
                format!("{command}\r\n")
            };
            if let Err(e) = stream.write_all(line.as_bytes()).await {
                return Outcome::Error(format!("{command} from {source}: write: {e}"));
            }
        }
        match reply(&mut stream, &mut buf).await {
            Ok((code, _)) if code == want => {}
            Ok((code, text)) if (400..600).contains(&code) && command != "QUIT" => {
                return Outcome::Refused(format!(
                    "{} {text}",
                    if command.is_empty() {
                        "banner"
                    } else {
                        command
                    }
                ));
            }
            Ok((_, text)) => {
                return Outcome::Error(format!(
                    "{} from {source}: unexpected {text:?}",
                    if command.is_empty() {
                        "banner"
                    } else {
                        command
                    }
                ));
            }
            Err(e) => return Outcome::Error(format!("{command} from {source}: {e}")),
        }
    }
    Outcome::Ok
}

#[derive(Default)]
struct Tally {
    ok: u64,
    refused: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    shown_refusals: Vec<(String, u64)>,
    shown_errors: Vec<String>,
}

fn cpu_us() -> u64 {
    // /proc/self/stat fields 14 and 15: utime and stime in clock ticks (proc(5)); 100 a second
    // on Linux (USER_HZ).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 10_000)
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("conn_load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conn_load: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = Arc::new(args);
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let cpu0 = cpu_us();
    let t0 = Instant::now();
    runtime.block_on(async {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency.min(args.sessions) {
            let (args, next, tally) = (args.clone(), next.clone(), tally.clone());
            workers.spawn(async move {
                let mut mine = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.sessions {
                        break;
                    }
                    let source = Ipv4Addr::from(args.first + (i % u64::from(args.sources)) as u32);
                    let started = Instant::now();
                    let outcome = match tokio::time::timeout(
                        args.timeout,
                        session(args.target, source, &args.ehlo),
                    )
                    .await
                    {
                        Ok(o) => o,
                        Err(_) => Outcome::Error(format!(
                            "session from {source}: no end within {:?}",
                            args.timeout
                        )),
                    };
                    mine.latencies_us
                        .push(started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
                    match outcome {
                        Outcome::Ok => mine.ok += 1,
                        Outcome::Refused(text) => {
                            mine.refused += 1;
                            // Counted by reply; the distinct replies kept are bounded.
                            let kept = mine.shown_refusals.len();
                            match mine.shown_refusals.iter_mut().find(|(t, _)| *t == text) {
                                Some((_, count)) => *count += 1,
                                None if kept < 4 * SHOWN => mine.shown_refusals.push((text, 1)),
                                None => {}
                            }
                        }
                        Outcome::Error(text) => {
                            mine.errors += 1;
                            if mine.shown_errors.len() < SHOWN {
                                mine.shown_errors.push(text);
                            }
                        }
                    }
                }
                let mut all = tally.lock().unwrap_or_else(|p| p.into_inner());
                all.ok += mine.ok;
                all.refused += mine.refused;
                all.errors += mine.errors;
                all.latencies_us.append(&mut mine.latencies_us);
                for (text, n) in mine.shown_refusals {
                    match all.shown_refusals.iter_mut().find(|(t, _)| *t == text) {
                        Some((_, count)) => *count += n,
                        None => all.shown_refusals.push((text, n)),
                    }
                }
                for e in mine.shown_errors {
                    if all.shown_errors.len() < SHOWN {
                        all.shown_errors.push(e);
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
    });
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_us().saturating_sub(cpu0);
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    tally.latencies_us.sort_unstable();
    tally.shown_refusals.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (text, n) in tally.shown_refusals.iter().take(SHOWN) {
        eprintln!("conn_load: refused x{n}: {text}");
    }
    for e in &tally.shown_errors {
        eprintln!("conn_load: error: {e}");
    }
    let sessions = args.sessions;
    println!(
        "sessions={sessions} ok={} refused={} errors={} secs={secs:.3} rate={:.0} p50_ms={:.2} \
         p99_ms={:.2} max_ms={:.2} cpu_us={:.1}",
        tally.ok,
        tally.refused,
        tally.errors,
        sessions as f64 / secs,
        percentile(&tally.latencies_us, 0.5),
        percentile(&tally.latencies_us, 0.99),
        percentile(&tally.latencies_us, 1.0),
        cpu as f64 / sessions as f64,
    );
    ExitCode::SUCCESS
}
