//! What a client is counted under, wherever hato counts clients: the SMTP listener's per-IP
//! connection cap and the throttle's reputation per sending IP.

use std::net::{IpAddr, Ipv6Addr};

/// What a client's connections are counted under. An IPv4 address is its own key, and so is an
/// IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2: the same client reached over a dual-stack
/// socket). An IPv6 address is cut to its first `v6_prefix` bits (1–128): a client that holds a
/// /64 can use any of its 2^64 addresses, so counting per address would cap nothing.
pub fn client_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(v6_prefix.clamp(1, 128));
                let mask = u128::MAX << (128 - bits);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_are_counted_per_prefix() {
        let key = |a: &str, p: u8| client_key(ip(a), p);
        assert_eq!(key("2001:db8:1:2:a::1", 64), ip("2001:db8:1:2::"));
        assert_eq!(
            key("2001:db8:1:2:a::1", 64),
            key("2001:db8:1:2:ffff:1:2:3", 64)
        );
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 48), key("2001:db8:1:ffff::1", 48));
        assert_eq!(key("2001:db8::7", 128), ip("2001:db8::7"));
        assert_ne!(key("2001:db8::7", 128), key("2001:db8::8", 128));
        assert_eq!(key("2001:db8::7", 1), ip("::"));
        // IPv4 stays per address, also when it arrives IPv4-mapped on an IPv6 socket.
        assert_eq!(key("192.0.2.1", 64), ip("192.0.2.1"));
        assert_eq!(key("::ffff:192.0.2.1", 64), ip("192.0.2.1"));
        assert_eq!(key("::ffff:192.0.2.1", 128), ip("192.0.2.1"));
    }
}
