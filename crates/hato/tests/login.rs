//! Login limits against the real server: after N failures the right password gets 429 with
//! Retry-After; the per-IP limit catches guessing spread over many addresses (a second client IP,
//! 127.0.0.2, is not affected); an unknown address gets exactly what a wrong password gets.

mod common;
use common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

/// One login request from `from` (a loopback address); returns (status, head, body).
fn login_from(
    from: IpAddr,
    admin: SocketAddr,
    address: &str,
    password: &str,
) -> (u16, String, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        socket.connect(admin).await.unwrap()
    });
    let mut s = stream.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    let body = json!({ "address": address, "password": password }).to_string();
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let v = serde_json::from_slice(&resp[split + 4..]).unwrap_or(Value::Null);
    (status, head, v)
}

const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

fn server(admin: &str) -> Server {
    let s = Server::start_with_sections("", admin);
    s.tenant("contoso");
    for m in ["alice", "bob", "carol"] {
        s.mailbox(
            &format!("{m}@contoso.test"),
            &["--password", &format!("password-{m}")],
        );
    }
    s
}

fn retry_after(head: &str) -> u64 {
    head.lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {head}"))
}

#[test]
fn after_max_failures_even_the_right_password_gets_429() {
    let s = server(
        "login_max_failures = 3\nlogin_max_failures_per_ip = 100\nlogin_lockout_secs = 120\n",
    );
    let alice = "alice@contoso.test";
    for i in 0..3 {
        let (status, _, v) = login_from(ONE, s.admin, alice, "wrong-password");
        assert_eq!(status, 401, "failure {i}: {v}");
    }
    let (status, head, v) = login_from(ONE, s.admin, alice, "password-alice");
    assert_eq!(status, 429, "{v}");
    let secs = retry_after(&head);
    assert!((119..=120).contains(&secs), "{head}");
    assert_eq!(
        v["error"],
        format!("too many failed logins; try again in {secs} seconds")
    );
    // From another IP too: the address is locked, wherever the guesses come from.
    let (status, _, _) = login_from(TWO, s.admin, alice, "password-alice");
    assert_eq!(status, 429);
    // Another address is not affected.
    let (status, _, v) = login_from(ONE, s.admin, "bob@contoso.test", "password-bob");
    assert_eq!(status, 200, "{v}");
}

#[test]
fn the_ip_limit_stops_guessing_spread_over_addresses() {
    let s = server("login_max_failures = 10\nlogin_max_failures_per_ip = 4\n");
    // One failure each for four addresses (known and unknown) from 127.0.0.1.
    for a in ["alice", "bob", "nobody", "carol"] {
        let (status, _, _) =
            login_from(ONE, s.admin, &format!("{a}@contoso.test"), "wrong-password");
        assert_eq!(status, 401);
    }
    // Now carol, who never failed, is refused from that IP, with her right password.
    let (status, head, _) = login_from(ONE, s.admin, "carol@contoso.test", "password-carol");
    assert_eq!(status, 429);
    assert!(retry_after(&head) > 0);
    // …but not from another client IP.
    let (status, _, v) = login_from(TWO, s.admin, "carol@contoso.test", "password-carol");
    assert_eq!(status, 200, "{v}");
}

#[test]
fn an_unknown_address_gets_what_a_wrong_password_gets() {
    let s = server("");
    let wrong = login_from(ONE, s.admin, "alice@contoso.test", "wrong-password");
    let unknown = login_from(ONE, s.admin, "nobody@contoso.test", "wrong-password");
    let no_password = {
        s.mailbox("nopassword@contoso.test", &[]);
        login_from(ONE, s.admin, "nopassword@contoso.test", "wrong-password")
    };
    let not_an_address = login_from(ONE, s.admin, "not an address", "wrong-password");
    for (what, got) in [
        ("unknown", &unknown),
        ("no password", &no_password),
        ("not an address", &not_an_address),
    ] {
        assert_eq!(got.0, wrong.0, "{what}");
        assert_eq!(got.2, wrong.2, "{what}");
    }
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.2, json!({ "error": "wrong address or password" }));
    // Unknown addresses are locked like known ones (so locking does not tell them apart).
    for _ in 0..4 {
        login_from(ONE, s.admin, "nobody@contoso.test", "wrong-password");
    }
    let (status, _, _) = login_from(ONE, s.admin, "nobody@contoso.test", "wrong-password");
    assert_eq!(status, 429);
}

#[test]
fn a_success_resets_the_count() {
    let s = server("login_max_failures = 3\n");
    let alice = "alice@contoso.test";
    for _ in 0..2 {
        assert_eq!(login_from(ONE, s.admin, alice, "wrong-password").0, 401);
    }
    assert_eq!(login_from(ONE, s.admin, alice, "password-alice").0, 200);
    for _ in 0..2 {
        assert_eq!(login_from(ONE, s.admin, alice, "wrong-password").0, 401);
    }
    assert_eq!(login_from(ONE, s.admin, alice, "password-alice").0, 200);
    // Three in a row do lock it.
    for _ in 0..3 {
        assert_eq!(login_from(ONE, s.admin, alice, "wrong-password").0, 401);
    }
    assert_eq!(login_from(ONE, s.admin, alice, "password-alice").0, 429);
}
