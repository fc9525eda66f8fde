//! Warm-up plans for outbound pools end to end (issue 10 item 9): `hato warmup set|clear|status`,
//! pacing in the outbound agent against Postfix's smtp-sink on the test clock (a day's
//! allowance delivered, the rest deferred with the warm-up trace event and delivered on the next
//! days, today's count kept over a restart), and the back-off after throttling replies from a
//! scripted receiver (`421 4.7.0`), which also lowers the day's allowance.

mod common;

use common::sink::Sink;
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// hato on the test clock, MX delivery to `port`, tenant contoso with alice, and an
/// on-premises connector that lets 127.0.0.1 relay for contoso.test.
fn sender(dns: &Dns, port: u16) -> Server {
    let extra = format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {port}\n\n[testing]\nmanual_clock = true\n",
        dns.addr()
    );
    let s = Server::start_with_config("", "", &extra);
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.ok(&[
        "connector",
        "inbound",
        "add",
        "Relay",
        "--tenant",
        "contoso",
        "--connector-type",
        "on-premises",
        "--sender-ip-addresses",
        "127.0.0.1",
    ]);
    s
}

/// Relays one message per recipient over one session; their trace ids.
fn relay_each(s: &Server, to: &[String]) -> Vec<String> {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let ids = to
        .iter()
        .map(|r| {
            let reply = c.send_mail(
                "alice@contoso.test",
                &[r.as_str()],
                &format!("From: alice@contoso.test\nTo: {r}\nSubject: to {r}\n\nhello\n"),
            );
            assert!(reply.starts_with("250 2.6.0"), "{reply}");
            trace_id_of(&reply)
        })
        .collect();
    c.cmd("QUIT");
    ids
}

fn events_named(s: &Server, id: &str, rcpt: &str, name: &str) -> Vec<Value> {
    s.events(id, rcpt)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

/// The pool's status from `hato warmup status --pool P --json`.
fn status(s: &Server, pool: &str) -> Value {
    let out = s.ok(&["warmup", "status", "--pool", pool, "--json"]);
    let v: Value = serde_json::from_str(&out).expect("status JSON");
    v[0].clone()
}

/// Seconds from the server's time to one second past the next midnight UTC.
fn to_next_day(s: &Server) -> i64 {
    let now = hato_core::Timestamp::parse_human(&s.clock_now()).unwrap();
    let into_day = now.0.rem_euclid(86_400_000_000) / 1_000_000;
    86_400 - into_day + 1
}

/// Whether the message's recipient has a warm-up `Defer` event.
fn paced(s: &Server, id: &str, rcpt: &str) -> bool {
    events_named(s, id, rcpt, "Defer").iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Warm-up: daily limit 10 of pool normal reached")
    })
}

/// A plan of 10 a day (30-day, 300 a month) and 25 messages: 10 delivered on day 1, 15 deferred
/// with one warm-up `Defer` event each; a restart keeps day 1's count (2 more messages wait); the
/// next day delivers the next 10; the status says so at each step.
#[test]
fn a_pool_is_paced_to_its_daily_allowance_day_by_day() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&[]);
    dns.mx("sink.test", 10, "mx.sink.test");
    dns.a("mx.sink.test", Ipv4Addr::LOCALHOST);
    let mut s = sender(&dns, sink.port);

    let out = s.ok(&[
        "warmup",
        "set",
        "--pool",
        "normal",
        "--plan",
        "30-day",
        "--monthly-volume",
        "300",
    ]);
    assert!(out.contains("day 1 of 30"), "{out}");
    assert!(out.contains("today's allowance: 10"), "{out}");
    let st = status(&s, "normal");
    assert_eq!(st["state"], "active", "{st}");
    assert_eq!(st["plan"]["daily_limits"].as_array().unwrap().len(), 30);
    assert_eq!(
        (st["day"].as_u64(), st["days"].as_u64()),
        (Some(1), Some(30))
    );
    assert_eq!(st["allowance"], 10);
    assert_eq!(st["remaining"], 10);
    assert_eq!(status(&s, "high-risk")["state"], "none");

    let rcpts: Vec<String> = (0..25).map(|i| format!("user{i}@sink.test")).collect();
    let ids = relay_each(&s, &rcpts);
    wait("the sink's first 10", 60, || sink.messages() >= 10);
    wait("10 deliveries and 15 deferrals", 60, || {
        let sent = ids
            .iter()
            .zip(&rcpts)
            .filter(|(id, r)| !events_named(&s, id, r, "Send").is_empty())
            .count();
        let deferred = ids
            .iter()
            .zip(&rcpts)
            .filter(|(id, r)| paced(&s, id, r))
            .count();
        sent == 10 && deferred == 15
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages(), 10, "no more than the day's allowance");
    let st = status(&s, "normal");
    assert_eq!(
        (&st["sent_today"], &st["remaining"], &st["deferred_today"]),
        (&json!(10), &json!(0), &json!(15)),
        "{st}"
    );
    // The warm-up event: one per message, whatever the scans; its reason names the plan.
    let (id, rcpt) = ids
        .iter()
        .zip(&rcpts)
        .find(|(id, r)| paced(&s, id, r))
        .unwrap();
    let defers = events_named(&s, id, rcpt, "Defer");
    assert_eq!(defers.len(), 1, "{defers:?}");
    assert!(
        defers[0]["reason"]
            .to_string()
            .contains("warm-up: daily limit 10 of pool normal reached"),
        "{}",
        defers[0]
    );
    assert!(events_named(&s, id, rcpt, "Fail").is_empty());
    let text = s.ok(&["warmup", "status"]);
    assert!(
        text.contains("pool normal: plan 30-day, 300 a month, day 1 of 30"),
        "{text}"
    );
    assert!(
        text.contains("sent today: 10, remaining: 0, deferred by pacing: 15"),
        "{text}"
    );
    assert!(text.contains("pool high-risk: no warm-up plan"), "{text}");

    // A restart (SIGKILL) does not reset the day: two more messages wait too.
    s.restart();
    let more: Vec<String> = (25..27).map(|i| format!("user{i}@sink.test")).collect();
    let more_ids = relay_each(&s, &more);
    wait("the new messages paced", 30, || {
        more_ids.iter().zip(&more).all(|(id, r)| paced(&s, id, r))
    });
    assert_eq!(sink.messages(), 10);
    let st = status(&s, "normal");
    assert_eq!(
        (&st["sent_today"], &st["remaining"], &st["deferred_today"]),
        (&json!(10), &json!(0), &json!(17)),
        "{st}"
    );

    // The next day: the next 10 of the 17 waiting. (To just after midnight UTC: the messages
    // expire 24 hours after they arrived, and expiry still applies to paced mail.)
    s.advance_clock(to_next_day(&s));
    wait("day 2's allowance delivered", 60, || sink.messages() == 20);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages(), 20, "day 2's allowance, no more");
    let st = status(&s, "normal");
    assert_eq!(st["day"], 2, "{st}");
    assert_eq!(
        (&st["sent_today"], &st["remaining"], &st["deferred_today"]),
        (&json!(10), &json!(0), &json!(7)),
        "{st}"
    );
    // Still one warm-up event for a message paced on both days (same limit, same text).
    let all: Vec<(String, String)> = ids
        .iter()
        .cloned()
        .zip(rcpts.iter().cloned())
        .chain(more_ids.iter().cloned().zip(more.iter().cloned()))
        .collect();
    let waiting: Vec<&(String, String)> = all
        .iter()
        .filter(|(id, r)| events_named(&s, id, r, "Send").is_empty())
        .collect();
    assert_eq!(waiting.len(), 7);
    for (id, r) in &waiting {
        assert_eq!(events_named(&s, id, r, "Defer").len(), 1, "{r}");
    }

    // Clearing the plan: the rest go at once.
    s.ok(&["warmup", "clear", "--pool", "normal"]);
    s.advance_clock(86_400);
    wait("the rest delivered", 60, || sink.messages() == 27);
    assert_eq!(status(&s, "normal")["state"], "none");
}

// ---------------------------------------------------------------------------------------------
// A scripted receiver: in throttling mode it greets with `421 4.7.0 Try again later` and
// closes; otherwise it accepts everything.

struct Throttler {
    addr: SocketAddr,
    throttling: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    messages: Arc<AtomicUsize>,
}

impl Throttler {
    fn start() -> Throttler {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let throttling = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(AtomicUsize::new(0));
        let messages = Arc::new(AtomicUsize::new(0));
        let (t, c, m) = (throttling.clone(), connections.clone(), messages.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (t, m) = (t.clone(), m.clone());
                std::thread::spawn(move || session(conn, t.load(Ordering::SeqCst), m));
            }
        });
        Throttler {
            addr,
            throttling,
            connections,
            messages,
        }
    }
}

fn session(conn: TcpStream, throttling: bool, messages: Arc<AtomicUsize>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    if throttling {
        let _ = out.write_all(b"421 4.7.0 Try again later\r\n");
        return;
    }
    let mut lines = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    if !say("220 throttle.test ESMTP\r\n") {
        return;
    }
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-throttle.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("DATA") {
            if !say("354 go on\r\n") {
                return;
            }
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
            }
            messages.fetch_add(1, Ordering::SeqCst);
            "250 2.0.0 Ok\r\n"
        } else if upper.starts_with("QUIT") {
            say("221 2.0.0 Bye\r\n");
            return;
        } else {
            "250 2.0.0 Ok\r\n"
        };
        if !say(reply) {
            return;
        }
    }
}

/// `421 4.7.0` from the receiver: the pool backs off from the domain (10 minutes after the
/// first, 20 after the second in a row: longer than the 5-minute retry), holds back other mail
/// for it meanwhile without connecting, halves what remains of the day's allowance, and shows
/// it in `warmup status`; a delivery ends the back-off.
#[test]
fn throttling_replies_back_off_and_lower_the_allowance() {
    let dns = Dns::start(&["test"]);
    let remote = Throttler::start();
    dns.mx("throttle.test", 10, "mx.throttle.test");
    dns.a("mx.throttle.test", Ipv4Addr::LOCALHOST);
    let s = sender(&dns, remote.addr.port());
    s.ok(&[
        "warmup",
        "set",
        "--pool",
        "normal",
        "--plan",
        "custom",
        "--daily-limits",
        "10,20,40",
    ]);

    let first = relay_each(&s, &["a@throttle.test".to_string()]);
    wait("the throttling reply", 30, || {
        !events_named(&s, &first[0], "a@throttle.test", "Defer").is_empty()
    });
    let defer = &events_named(&s, &first[0], "a@throttle.test", "Defer")[0];
    assert_eq!(
        (&defer["status"], &defer["enhanced_status"]),
        (&json!(421), &json!("4.7.0")),
        "{defer}"
    );
    let st = status(&s, "normal");
    assert_eq!(st["throttled_today"], 1, "{st}");
    let b = &st["backoffs"][0];
    assert_eq!(
        (&b["domain"], &b["count"], &b["active"]),
        (&json!("throttle.test"), &json!(1), &json!(true)),
        "{st}"
    );
    assert!(
        b["last_reply"]
            .to_string()
            .contains("421 4.7.0 Try again later"),
        "{st}"
    );
    let now = hato_core::Timestamp::parse_human(&s.clock_now()).unwrap();
    let until = hato_core::Timestamp::parse_human(b["until"].as_str().unwrap()).unwrap();
    assert_eq!(
        (until.0 - now.0) / 1_000_000,
        600,
        "the first back-off: 10 minutes"
    );
    // Half of what remained (10, one of them reserved by the throttled message: 9 → 5).
    let reduced = st["reduced"].as_u64().unwrap();
    assert!(reduced >= 5, "{st}");
    assert_eq!(st["allowance"].as_u64().unwrap(), 10 - reduced, "{st}");
    let text = s.ok(&["warmup", "status", "--pool", "normal"]);
    assert!(
        text.contains("back-off from throttle.test until") && text.contains("(active)"),
        "{text}"
    );

    // Other mail for the domain waits without a connection.
    let second = relay_each(&s, &["b@throttle.test".to_string()]);
    wait("the second message held back", 30, || {
        events_named(&s, &second[0], "b@throttle.test", "Defer")
            .iter()
            .any(|e| {
                e["detail"]
                    .to_string()
                    .contains("Backing off from throttle.test")
            })
    });
    assert_eq!(remote.connections.load(Ordering::SeqCst), 1);
    // At 5 minutes (a normal retry's time) nothing is tried.
    s.advance_clock(300);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(remote.connections.load(Ordering::SeqCst), 1, "backing off");

    // After the back-off, throttled again: the back-off grows to 20 minutes.
    s.advance_clock(301);
    wait("the retry after the back-off", 30, || {
        remote.connections.load(Ordering::SeqCst) >= 2
    });
    wait("the second back-off", 30, || {
        status(&s, "normal")["backoffs"][0]["count"] == 2
    });
    let st = status(&s, "normal");
    let now = hato_core::Timestamp::parse_human(&s.clock_now()).unwrap();
    let until =
        hato_core::Timestamp::parse_human(st["backoffs"][0]["until"].as_str().unwrap()).unwrap();
    assert_eq!((until.0 - now.0) / 1_000_000, 1200, "{st}");
    assert_eq!(st["throttled_today"], 2, "{st}");
    assert!(
        st["reduced"].as_u64().unwrap() > reduced,
        "lowered again: {st}"
    );

    // The receiver takes mail again: after the back-off both go, and the back-off ends.
    remote.throttling.store(false, Ordering::SeqCst);
    s.advance_clock(1201);
    wait("both delivered", 30, || {
        remote.messages.load(Ordering::SeqCst) == 2
    });
    wait("the back-off forgotten", 30, || {
        status(&s, "normal")["backoffs"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
    assert_eq!(status(&s, "normal")["sent_today"], 2);
}

/// Bad input is refused with the flag named; the API is the operator's.
#[test]
fn bad_warmup_input_names_the_flag() {
    let s = Server::start();
    for (args, flag) in [
        (
            vec![
                "--pool",
                "nosuch",
                "--plan",
                "30-day",
                "--monthly-volume",
                "300",
            ],
            "--pool",
        ),
        (
            vec![
                "--pool",
                "normal",
                "--plan",
                "30-day",
                "--monthly-volume",
                "0",
            ],
            "--monthly-volume",
        ),
        (
            vec!["--pool", "normal", "--plan", "15-day"],
            "--monthly-volume",
        ),
        (
            vec![
                "--pool",
                "normal",
                "--plan",
                "custom",
                "--daily-limits",
                "50,,100",
            ],
            "--daily-limits",
        ),
        (
            vec![
                "--pool",
                "normal",
                "--plan",
                "custom",
                "--daily-limits",
                "50,0",
            ],
            "--daily-limits",
        ),
        (
            vec!["--pool", "normal", "--plan", "custom"],
            "--daily-limits",
        ),
        (
            vec![
                "--pool",
                "normal",
                "--plan",
                "weekly",
                "--monthly-volume",
                "300",
            ],
            "--plan",
        ),
        (
            vec![
                "--pool",
                "normal",
                "--plan",
                "30-day",
                "--monthly-volume",
                "300",
                "--start",
                "someday",
            ],
            "--start",
        ),
    ] {
        let mut full = vec!["warmup", "set"];
        full.extend(args.iter());
        let (ok, out, err) = s.cli(&full);
        assert!(!ok, "{full:?} succeeded: {out}");
        assert!(err.contains(flag), "{full:?}: {err}");
    }
    let (ok, _, err) = s.cli(&["warmup", "status", "--pool", "nosuch"]);
    assert!(!ok && err.contains("--pool"), "{err}");
    let (ok, _, err) = s.cli(&["warmup", "clear", "--pool", "normal"]);
    assert!(!ok && err.contains("no warm-up plan"), "{err}");
    // The API checks the same (and names the same flags).
    let (status, v) = s.api(
        "PUT",
        "/api/v1/warmup/normal",
        Some(json!({"plan": "30-day", "monthly_volume": 0})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].to_string().contains("--monthly-volume"), "{v}");
    // A tenant admin may not.
    s.tenant("contoso");
    let token = s
        .ok(&["token", "create", "--tenant", "contoso"])
        .trim()
        .to_string();
    let (status, _) = s.api_as(&token, "GET", "/api/v1/warmup", None);
    assert_eq!(status, 403);
    let (status, _) = s.api_as(
        &token,
        "PUT",
        "/api/v1/warmup/normal",
        Some(json!({"plan": "30-day", "monthly_volume": 300})),
    );
    assert_eq!(status, 403);
    // A later start: not paced yet.
    let out = s.ok(&[
        "warmup",
        "set",
        "--pool",
        "high-risk",
        "--plan",
        "15-day",
        "--monthly-volume",
        "90000",
        "--start",
        "2099-01-01",
    ]);
    assert!(out.contains("starts 2099-01-01T00:00:00Z"), "{out}");
    let st = s.ok(&["warmup", "status", "--pool", "high-risk", "--json"]);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st[0]["state"], "not-started");
    assert_eq!(st[0]["plan"]["daily_limits"][0], 6000);
    assert_eq!(st[0]["completes"], "2099-01-16T00:00:00Z");
}
