//! A HELO/EHLO name that claims to be this server (what Exchange Online refuses with
//! `550 5.7.506 Access Denied, Bad HELO`, and Postfix with `reject_unknown_helo_hostname`-style
//! restrictions): a client that names itself with our host name, or with an address we listen
//! on, is lying about who it is, since no other host has our name or our addresses.
//!
//! A client connecting from one of our own addresses (a program on this host) is this host, and
//! may say so.

use crate::Outcome;
use crate::ip::canonical_ip;
use hato_core::reply;
use hato_core::{ClientContext, Reason, Refusal, Stage};
use std::net::IpAddr;

/// The setting that turns the check on (`[edge] reject_bad_helo`), named in the reasons.
pub const SETTING: &str = "edge.reject_bad_helo";

/// Who this server is: its host name, and the addresses it listens on (besides the one each
/// client connected to, which is always ours).
#[derive(Clone, Debug, Default)]
pub struct HeloCheck {
    hostname: String,
    addresses: Vec<IpAddr>,
}

impl HeloCheck {
    /// `addresses` that are unspecified (`0.0.0.0`, `::`: a listener on every address) name
    /// none; the address each client reached stands for them.
    pub fn new(hostname: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        HeloCheck {
            hostname: name_of(hostname),
            addresses: addresses
                .into_iter()
                .map(canonical_ip)
                .filter(|a| !a.is_unspecified())
                .collect(),
        }
    }

    fn ours(&self, client: &ClientContext, ip: IpAddr) -> bool {
        ip == canonical_ip(client.local.ip()) || self.addresses.contains(&ip)
    }

    /// The decision for the name `helo` given by `client`.
    pub fn check(&self, client: &ClientContext, helo: &str) -> Outcome {
        let from = canonical_ip(client.ip());
        if self.ours(client, from) {
            return Outcome::Pass;
        }
        let name = name_of(helo);
        let claim = match literal(&name) {
            Some(ip) if self.ours(client, ip) => {
                format!("the address {ip}, which is this server's")
            }
            Some(_) => return Outcome::Pass,
            None if !self.hostname.is_empty() && name == self.hostname => {
                format!("{name}, this server's host name")
            }
            None => return Outcome::Pass,
        };
        Outcome::Refuse(Refusal::new(
            reply::BAD_HELO,
            Reason::new(
                Stage::Helo,
                format!("The client {from} named itself in EHLO/HELO with {claim}"),
            )
            .rule(SETTING)
            .figure("helo", helo.chars().take(255).collect::<String>()),
        ))
    }
}

/// A name as compared: without surrounding space or a final dot, in lower case (DNS names are
/// case-insensitive, RFC 4343).
fn name_of(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The address of an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321 §4.1.3), or
/// of a bare address, which some clients send though RFC 5321 wants brackets.
fn literal(name: &str) -> Option<IpAddr> {
    let inner = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    let inner = inner.strip_prefix("ipv6:").unwrap_or(inner);
    inner.parse().ok().map(canonical_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, local: &str) -> ClientContext {
        ClientContext::new(peer.parse().unwrap(), local.parse().unwrap())
    }

    #[test]
    fn a_name_or_address_of_this_server_is_refused_from_another_host() {
        let check = HeloCheck::new(
            "MX.Hato.Test",
            ["0.0.0.0".parse().unwrap(), "2001:db8::25".parse().unwrap()],
        );
        let outside = client("192.0.2.7:40000", "198.51.100.1:25");
        for helo in [
            "mx.hato.test",
            "MX.HATO.TEST.",
            " mx.hato.test ",
            "[198.51.100.1]",
            "198.51.100.1",
            "[IPv6:2001:db8::25]",
            "[ipv6:2001:DB8::25]",
            "[IPv6:::ffff:198.51.100.1]",
        ] {
            let Outcome::Refuse(r) = check.check(&outside, helo) else {
                panic!("{helo:?} passed")
            };
            assert_eq!(r.reply.to_string(), "550 5.7.506 Access Denied, Bad HELO");
            assert_eq!(r.reason.stage, Stage::Helo);
            assert_eq!(r.reason.rule.as_deref(), Some(SETTING));
        }
        let Outcome::Refuse(r) = check.check(&outside, "mx.hato.test") else {
            panic!()
        };
        assert_eq!(
            r.reason.text,
            "The client 192.0.2.7 named itself in EHLO/HELO with mx.hato.test, this server's host name"
        );
        for helo in [
            "mail.fabrikam.test",
            "hato.test",
            "mx.hato.test.evil",
            "[192.0.2.7]",
            "[0.0.0.0]",
            "[203.0.113.9]",
        ] {
            assert_eq!(check.check(&outside, helo), Outcome::Pass, "{helo:?}");
        }
    }

    #[test]
    fn this_host_may_name_itself() {
        let check = HeloCheck::new("mx.hato.test", ["127.0.0.1".parse().unwrap()]);
        // A program on this host, connecting to the address it listens on or another of ours.
        for (peer, local) in [
            ("127.0.0.1:40000", "127.0.0.1:25"),
            ("198.51.100.1:40000", "198.51.100.1:25"),
            ("127.0.0.1:40000", "198.51.100.1:25"),
            ("[::ffff:127.0.0.1]:40000", "[::ffff:127.0.0.1]:25"),
        ] {
            let c = client(peer, local);
            assert_eq!(check.check(&c, "mx.hato.test"), Outcome::Pass, "{peer}");
            assert_eq!(check.check(&c, "[127.0.0.1]"), Outcome::Pass, "{peer}");
        }
        // Another loopback address is another client.
        let other = client("127.0.0.2:40000", "127.0.0.1:25");
        assert!(check.check(&other, "mx.hato.test").refuses());
        assert!(check.check(&other, "[127.0.0.1]").refuses());
    }
}
