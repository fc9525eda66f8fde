//! Release links' tokens: who may release which held item, until when, signed with the
//! server's secret (HMAC-SHA256, RFC 2104 over SHA-256; the secret never leaves the store).
//!
//! A token is the hex form of `version (1) | item id (8, big-endian) | expiry (8, microseconds
//! since the epoch, big-endian) | recipient (its canonical address, UTF-8) | MAC (32)`, the MAC
//! taken over a fixed label and everything before it. It names exactly one item and one
//! recipient and stops working at its expiry (the item's own at the latest): the page checks
//! both against the item it loads, and the kind, so a token is no more than the authority to
//! release that one copy for that one person. Another server (another secret) cannot make or
//! check one.

use hato_core::Timestamp;
use sha2::{Digest, Sha256};

/// The only version so far.
const VERSION: u8 = 1;
/// Separates this use of the secret from any other it might be put to later.
const LABEL: &[u8] = b"hato quarantine release link\0";
/// SHA-256's block size (RFC 2104 §2: B).
const BLOCK: usize = 64;
const MAC_LEN: usize = 32;
/// Version, item id and expiry.
const FIXED_LEN: usize = 1 + 8 + 8;
/// RFC 5321 §4.5.3.1.3: an address is at most 254 octets.
const MAX_RECIPIENT: usize = 254;
/// The longest token the page reads; anything longer is refused before it is decoded.
pub const MAX_TOKEN_CHARS: usize = 2 * (FIXED_LEN + MAX_RECIPIENT + MAC_LEN);

/// HMAC-SHA256 (RFC 2104 §2) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    // A key longer than the block is hashed first; a shorter one is padded with zeros.
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..MAC_LEN].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Equal without returning early, so the time taken says nothing about how much of a forged
/// MAC was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a release token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseClaim {
    /// The quarantine item.
    pub item: i64,
    /// The canonical address it was held for.
    pub recipient: String,
    /// When the token stops working.
    pub expires: Timestamp,
}

/// Why a token grants nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this form (cut short, mistyped, too long).
    #[error("the link is not valid")]
    Malformed,
    /// Well formed, but not signed by this server: changed, forged, or another server's.
    #[error("the link was not made by this server")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

fn payload(claim: &ReleaseClaim) -> Vec<u8> {
    let mut p = Vec::with_capacity(FIXED_LEN + claim.recipient.len() + MAC_LEN);
    p.push(VERSION);
    p.extend_from_slice(&claim.item.to_be_bytes());
    p.extend_from_slice(&claim.expires.0.to_be_bytes());
    p.extend_from_slice(claim.recipient.as_bytes());
    p
}

/// The token for `claim`, signed with `secret`. Linear in the recipient's length.
pub fn sign(secret: &[u8], claim: &ReleaseClaim) -> String {
    let mut p = payload(claim);
    let mac = hmac_sha256(secret, &[LABEL, &p]);
    p.extend_from_slice(&mac);
    hex::encode(p)
}

/// What `token` grants at `now`, if `secret` signed it and it has not expired. Linear in the
/// token's length, which is bounded before anything is decoded.
pub fn verify(secret: &[u8], token: &str, now: Timestamp) -> Result<ReleaseClaim, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = hex::decode(token).map_err(|_| TokenError::Malformed)?;
    if bytes.len() < FIXED_LEN + MAC_LEN || bytes[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let (signed, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    // The signature first: nothing in a token this server did not make is believed, not even
    // its expiry.
    if !same(&hmac_sha256(secret, &[LABEL, signed]), mac) {
        return Err(TokenError::BadSignature);
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&signed[at..at + 8]);
        i64::from_be_bytes(b)
    };
    let item = word(1);
    let expires = Timestamp(word(9));
    let recipient = std::str::from_utf8(&signed[FIXED_LEN..])
        .map_err(|_| TokenError::Malformed)?
        .to_string();
    if now >= expires {
        return Err(TokenError::Expired);
    }
    Ok(ReleaseClaim {
        item,
        recipient,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> ReleaseClaim {
        ReleaseClaim {
            item: 42,
            recipient: "alice@contoso.test".into(),
            expires: Timestamp::parse_human("2026-12-15T12:00:00Z").unwrap(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::parse_human("2026-11-30T12:00:00Z").unwrap()
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 §4.2 (test case 1), §4.3 (case 2), §4.7 (case 6: a key longer than a block).
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(hex::encode(hmac_sha256(key, &[data])), mac);
            // Parts are hashed as one text.
            let (a, b) = data.split_at(3);
            assert_eq!(hex::encode(hmac_sha256(key, &[a, b])), mac);
        }
    }

    #[test]
    fn a_token_grants_what_it_was_signed_for_until_it_expires() {
        let secret = [1u8; 32];
        let token = sign(&secret, &claim());
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(verify(&secret, &token, now()), Ok(claim()));
        // One microsecond before its expiry, and at it.
        let expires = claim().expires;
        assert_eq!(
            verify(&secret, &token, Timestamp(expires.0 - 1)),
            Ok(claim())
        );
        assert_eq!(verify(&secret, &token, expires), Err(TokenError::Expired));
    }

    #[test]
    fn another_servers_secret_checks_nothing() {
        let token = sign(&[1u8; 32], &claim());
        assert_eq!(
            verify(&[2u8; 32], &token, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn any_change_to_a_token_is_refused() {
        let secret = [1u8; 32];
        let token = sign(&secret, &claim());
        // Every hex digit changed in turn: the item, the expiry, the recipient, the MAC.
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(t).unwrap();
            let err = verify(&secret, &t, now()).unwrap_err();
            assert!(
                matches!(err, TokenError::BadSignature | TokenError::Malformed),
                "{i}: {err:?}"
            );
        }
        // Another item or recipient signed by nobody: the claim re-encoded with the old MAC.
        let mut other = claim();
        other.item = 43;
        let forged = format!(
            "{}{}",
            hex::encode(payload(&other)),
            &token[token.len() - 2 * MAC_LEN..]
        );
        assert_eq!(
            verify(&secret, &forged, now()),
            Err(TokenError::BadSignature)
        );
        // Cut short by one byte: still hex, but the MAC is not where it was.
        assert_eq!(
            verify(&secret, &token[..token.len() - 2], now()),
            Err(TokenError::BadSignature)
        );
        // Too short to hold a MAC, too long, not hex, empty.
        for bad in [&token[..10], "", "zz", &"0".repeat(MAX_TOKEN_CHARS + 2)] {
            assert_eq!(
                verify(&secret, bad, now()),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
