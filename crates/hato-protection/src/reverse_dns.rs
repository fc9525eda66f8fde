//! The client's name by reverse DNS, forward-confirmed (FCrDNS, RFC 8601 §3's "iprev" check;
//! what Postfix's smtpd calls a "verified" client name and Exchange's antispam header reports
//! as `PTR:`): the PTR records of the client's address, then the address records of each name,
//! and the first name whose records include the client's address is its name. A PTR anyone
//! can publish for their own addresses proves nothing until its name points back.
//!
//! Not a refusal: a client without a confirmed name goes on unnamed. A lookup that failed (a
//! timeout, a server failure) fails open with a note, so the connection log and the trace say
//! why the name is missing.

use hato_core::dns::{DnsError, Resolver};
use hato_core::{Reason, Stage};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

/// At most this many PTR names are confirmed (RFC 8601 §3 lets the check stop after a few; a
/// hostile zone could list hundreds).
pub const MAX_NAMES: usize = 4;

/// Whether `name` may stand as a host name in a header (the Received field's TCP-info, RFC 5321
/// §4.4) and a log: letters, digits, `-`, `_` and dots, at most 253 characters (RFC 1035
/// §2.3.4). A DNS label may hold any byte; a PTR with a space or a line break in it names no
/// host and is not repeated anywhere.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What reverse DNS said about a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientName {
    /// The forward-confirmed name, without the trailing dot, in lower case.
    pub name: Option<String>,
    /// Why there is no name, when that is worth recording: a lookup failed, or a PTR name did
    /// not resolve back to the client. `None` for a confirmed name and for an address without
    /// PTR records (most dynamic ranges have none; that is no news).
    pub note: Option<Reason>,
}

/// Reverse DNS over a resolver (its cache and timeout bound every lookup).
#[derive(Clone)]
pub struct ReverseDns {
    resolver: Arc<dyn Resolver>,
}

fn failed(ip: IpAddr, what: &str, error: &DnsError) -> Reason {
    Reason::new(
        Stage::ReverseDns,
        format!("the reverse DNS of {ip} could not be checked ({what}: {error}); the client goes on unnamed"),
    )
    .rule("iprev")
    .figure("result", if error.is_temporary() { "temperror" } else { "permerror" })
}

impl ReverseDns {
    pub fn new(resolver: Arc<dyn Resolver>) -> Self {
        ReverseDns { resolver }
    }

    /// The confirmed name of `ip`. At most one PTR lookup and [`MAX_NAMES`] address lookups,
    /// the latter at once, each bounded by the resolver's timeout.
    pub fn name(&self, ip: IpAddr) -> impl Future<Output = ClientName> + Send + 'static {
        let ip = ip.to_canonical();
        let resolver = self.resolver.clone();
        async move {
            if ip.is_loopback() {
                // This host, named without a lookup as resolvers name it (RFC 6761 §6.3:
                // `localhost` is 127.0.0.1 and ::1; another 127/8 address has no name that
                // resolves back to it, and nothing about it is worth a note).
                let name = (ip == IpAddr::from([127, 0, 0, 1])
                    || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
                .then(|| "localhost".to_string());
                return ClientName { name, note: None };
            }
            let names = match resolver.lookup_ptr(ip).await {
                Ok(names) => names,
                Err(e) if e.is_not_found() => return ClientName::default(),
                Err(e) => {
                    return ClientName {
                        name: None,
                        note: Some(failed(ip, "PTR", &e)),
                    };
                }
            };
            let names: Vec<String> = names
                .into_iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| is_host_name(n))
                .take(MAX_NAMES)
                .collect();
            if names.is_empty() {
                return ClientName::default();
            }
            let lookups = names.iter().map(|n| {
                let resolver = resolver.clone();
                let n = n.clone();
                async move {
                    match ip {
                        IpAddr::V4(v4) => {
                            resolver.lookup_a(&n).await.map(|addrs| addrs.contains(&v4))
                        }
                        IpAddr::V6(v6) => resolver
                            .lookup_aaaa(&n)
                            .await
                            .map(|addrs| addrs.contains(&v6)),
                    }
                }
            });
            let answers = futures_util::future::join_all(lookups).await;
            let mut first_failure = None;
            for (name, answer) in names.iter().zip(answers) {
                match answer {
                    Ok(true) => {
                        return ClientName {
                            name: Some(name.clone()),
                            note: None,
                        };
                    }
                    Ok(false) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        first_failure.get_or_insert_with(|| failed(ip, name, &e));
                    }
                }
            }
            let note = first_failure.unwrap_or_else(|| {
                Reason::new(
                    Stage::ReverseDns,
                    format!(
                        "{ip} has PTR {} but no such name resolves back to it (not forward-confirmed); the client goes on unnamed",
                        names.join(", ")
                    ),
                )
                .rule("iprev")
                .figure("result", "fail")
                .figure("ptr", names.join(" "))
            });
            ClientName {
                name: None,
                note: Some(note),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_dns::testing::{SilentDnsServer, TestDnsServer};
    use hato_dns::{DnsSettings, HickoryResolver};
    use std::net::Ipv4Addr;

    fn resolver(addr: std::net::SocketAddr, timeout_ms: u64) -> Arc<dyn Resolver> {
        Arc::new(
            HickoryResolver::new(&DnsSettings {
                servers: vec![addr.to_string()],
                timeout_ms,
                ..DnsSettings::default()
            })
            .unwrap(),
        )
    }

    async fn server() -> TestDnsServer {
        let dns = TestDnsServer::start(&["in-addr.arpa", "example.test"])
            .await
            .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Confirmed: PTR and A agree.
        dns.add_ptr(ip("192.0.2.10"), 300, "mail.example.test")
            .await
            .unwrap();
        dns.add_a("mail.example.test", 300, Ipv4Addr::new(192, 0, 2, 10))
            .await
            .unwrap();
        // A PTR whose name points elsewhere.
        dns.add_ptr(ip("192.0.2.11"), 300, "forged.example.test")
            .await
            .unwrap();
        dns.add_a("forged.example.test", 300, Ipv4Addr::new(203, 0, 113, 1))
            .await
            .unwrap();
        // A PTR whose name has no address at all.
        dns.add_ptr(ip("192.0.2.12"), 300, "nowhere.example.test")
            .await
            .unwrap();
        dns
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_name_counts_only_when_it_resolves_back_to_the_client() {
        let dns = server().await;
        let rdns = ReverseDns::new(resolver(dns.addr(), 3000));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();

        let confirmed = rdns.name(ip("192.0.2.10")).await;
        assert_eq!(confirmed.name.as_deref(), Some("mail.example.test"));
        assert_eq!(confirmed.note, None);

        for (client, ptr) in [
            ("192.0.2.11", "forged.example.test"),
            ("192.0.2.12", "nowhere.example.test"),
        ] {
            let out = rdns.name(ip(client)).await;
            assert_eq!(out.name, None, "{client}");
            let note = out.note.expect("a note says why");
            assert_eq!(note.stage, Stage::ReverseDns);
            assert!(note.text.contains("not forward-confirmed"), "{}", note.text);
            assert!(note.text.contains(ptr), "{}", note.text);
        }

        // No PTR at all: unnamed, and nothing to note.
        assert_eq!(rdns.name(ip("192.0.2.99")).await, ClientName::default());

        // This host: `localhost` for 127.0.0.1 and ::1, as resolvers name it (RFC 6761); another
        // loopback address goes unnamed without a note.
        assert_eq!(
            rdns.name(ip("127.0.0.1")).await.name.as_deref(),
            Some("localhost")
        );
        assert_eq!(rdns.name(ip("127.0.0.9")).await, ClientName::default());
        assert_eq!(
            rdns.name(ip("::1")).await.name.as_deref(),
            Some("localhost")
        );
    }

    #[test]
    fn only_host_names_are_taken() {
        assert!(is_host_name("mail-1.example_x.test"));
        for bad in [
            "",
            "a b.test",
            "evil.test\r\nX-Injected: 1",
            "ünicode.test",
            &"a".repeat(254),
        ] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_lookup_that_times_out_fails_open_with_a_note() {
        let silent = SilentDnsServer::start().unwrap();
        let rdns = ReverseDns::new(resolver(silent.addr(), 200));
        let started = std::time::Instant::now();
        let out = rdns.name("192.0.2.10".parse().unwrap()).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(out.name, None);
        let note = out.note.expect("a note says the lookup failed");
        assert!(note.text.contains("could not be checked"), "{}", note.text);
        assert!(note.text.contains("goes on unnamed"), "{}", note.text);
    }
}
