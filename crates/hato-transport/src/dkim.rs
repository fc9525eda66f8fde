//! DKIM signing of outbound mail per tenant domain (issue 10, item 6; Exchange's
//! `New-DkimSigningConfig`): the keys (`generate_key`), the DNS records to publish
//! (`dns_record_*`), and the signer the delivery agent calls just before sending
//! ([`DkimSigner`], the outbound agent's [`OutboundSigner`]).
//!
//! Signatures are relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4, what Exchange uses), rsa-sha256
//! (RFC 6376 §3.3.1) or ed25519-sha256 (RFC 8463), over the header fields Exchange signs with
//! From signed once more than it occurs (RFC 6376 §5.4.2, so no From can be added), and never
//! with `l=` (RFC 6376 §8.2: a body length lets anyone append content). Only key generation uses
//! the `rsa` crate (ring cannot make RSA keys); signing goes through mail-auth's ring-backed keys.
//!
//! The message is read once, in chunks: the header block (at most
//! [`MAX_HEADER_BYTES`](hato_core::header::MAX_HEADER_BYTES)) is held, the body streams
//! through the body hash, so a spooled message of any size costs linear time and bounded memory.

use crate::outbound::OutboundSigner;
use hato_core::directory::TenantId;
use hato_core::header::MAX_HEADER_BYTES;
use hato_smtp::client::conn::Message;
use hato_store::{DkimKeyType, DkimSigningConfig, DkimStore, NewDkimKey, StoreError};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, Done};
use rustls_pki_types::PrivateKeyDer;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// `New-DkimSigningConfig -KeySize`: Exchange takes 1024 or 2048; hato makes 2048-bit keys
/// only, because it signs with ring, which refuses RSA keys under 2048 bits (and RFC 8301 §3.2
/// has signers use 2048 where they can). `--key-size 1024` is refused with that reason.
pub const RSA_KEY_SIZES: [u32; 1] = [2048];
/// The key size of a new config when none is given: 2048 bits.
pub const DEFAULT_RSA_KEY_SIZE: u32 = 2048;
/// Exchange's two selector names; `selector1` signs first.
pub const SELECTORS: [&str; 2] = ["selector1", "selector2"];

/// The header fields signed (those Exchange signs, RFC 6376 §5.4.1's recommended set), each
/// signed as often as it occurs; the second `From` oversigns it (RFC 6376 §5.4.2: a verifier
/// then fails a message to which a From field was added).
pub const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "MIME-Version",
    "From",
];

/// How much of the message is read at a time.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error(
        "key size {0} is not supported: hato signs with 2048-bit RSA keys (its crypto library, ring, signs with no smaller key; RFC 8301 section 3.2), or use --key-type ed25519"
    )]
    KeySize(u32),
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("the stored DKIM key of {domain} ({selector}) is unusable: {reason}")]
    Key {
        domain: String,
        selector: String,
        reason: String,
    },
    #[error("reading the message failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the message's header block is over {0} bytes")]
    HeaderTooLarge(usize),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new key pair: RSA of `bits` (2048, [`RSA_KEY_SIZES`]), or Ed25519 (`bits` ignored, 256).
pub fn generate_key(key_type: DkimKeyType, bits: u32) -> Result<NewDkimKey, DkimError> {
    match key_type {
        DkimKeyType::Rsa => {
            if !RSA_KEY_SIZES.contains(&bits) {
                return Err(DkimError::KeySize(bits));
            }
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits as usize)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            let private_key = key
                .to_pkcs8_der()
                .map_err(|e| DkimError::Generate(e.to_string()))?
                .as_bytes()
                .to_vec();
            // RFC 6376 §3.6.1: an RSA key's p= is its SubjectPublicKeyInfo, DER.
            let public_key = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| DkimError::Generate(e.to_string()))?
                .into_vec();
            Ok(NewDkimKey {
                key_type,
                bits,
                private_key,
                public_key,
            })
        }
        DkimKeyType::Ed25519 => {
            let private_key =
                Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Generate(e.to_string()))?;
            // RFC 8463 §4.2: p= is the raw 32-byte public key.
            let public_key = Ed25519Key::from_pkcs8_der(&private_key)
                .map_err(|e| DkimError::Generate(e.to_string()))?
                .public_key();
            Ok(NewDkimKey {
                key_type,
                bits: 256,
                private_key,
                public_key,
            })
        }
    }
}

/// `selector1._domainkey.example.com` (RFC 6376 §3.6.2.1).
pub fn dns_record_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

/// The key record's text: `v=DKIM1; k=rsa; p=...` (RFC 6376 §3.6.1).
pub fn dns_record_text(key: &NewDkimKey) -> String {
    format!(
        "v=DKIM1; k={}; p={}",
        key.key_type.as_str(),
        base64(&key.public_key)
    )
}

/// The record's text as the character-strings of a TXT record: at most 255 bytes each
/// (RFC 1035 §3.3.14; a 2048-bit key's record is longer), which a verifier joins (RFC 6376
/// §3.6.2.2).
pub fn dns_txt_strings(text: &str) -> Vec<&str> {
    // The text is ASCII, so every 255-byte cut is on a character boundary.
    text.as_bytes()
        .chunks(255)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect()
}

/// The record in zone-file form: `selector1._domainkey.example.com. IN TXT "..." "..."`.
pub fn dns_zone_line(selector: &str, domain: &str, key: &NewDkimKey) -> String {
    let text = dns_record_text(key);
    let strings: Vec<String> = dns_txt_strings(&text)
        .into_iter()
        .map(|s| format!("\"{s}\""))
        .collect();
    format!(
        "{}. IN TXT {}",
        dns_record_name(selector, domain),
        strings.join(" ")
    )
}

/// Standard base64 with padding (RFC 4648 §4), unwrapped.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A config's active key, ready to sign.
enum Key {
    Rsa(mail_auth::dkim::DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(mail_auth::dkim::DkimSigner<Ed25519Key, Done>),
}

/// One domain's signer: its domain, the active selector and its key.
pub struct DomainSigner {
    pub domain: String,
    pub selector: String,
    key: Key,
}

fn template<T: SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> mail_auth::dkim::DkimSigner<T, Done> {
    mail_auth::dkim::DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

impl DomainSigner {
    /// The signer of a config's active selector; its stored key parsed (PKCS#8 DER).
    pub fn from_config(c: &DkimSigningConfig) -> Result<DomainSigner, DkimError> {
        let active = c.active_selector();
        let unusable = |e: mail_auth::Error| DkimError::Key {
            domain: c.domain.clone(),
            selector: active.selector.clone(),
            reason: e.to_string(),
        };
        let key = match active.key.key_type {
            DkimKeyType::Rsa => Key::Rsa(template(
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(
                    active.key.private_key.as_slice().into(),
                ))
                .map_err(unusable)?,
                &c.domain,
                &active.selector,
            )),
            DkimKeyType::Ed25519 => Key::Ed25519(template(
                Ed25519Key::from_pkcs8_der(&active.key.private_key).map_err(unusable)?,
                &c.domain,
                &active.selector,
            )),
        };
        Ok(DomainSigner {
            domain: c.domain.clone(),
            selector: active.selector.clone(),
            key,
        })
    }

    /// Signs a message whose header block (with the empty line that ends it, if any) is
    /// `head`, read already, and whose rest `body` yields: the `DKIM-Signature` field with its
    /// CRLF.
    fn sign_parts(&self, head: &[u8], body: &mut dyn Read) -> Result<String, DkimError> {
        match &self.key {
            Key::Rsa(s) => stream(s, head, body),
            Key::Ed25519(s) => stream(s, head, body),
        }
    }

    /// Signs a whole message read from `message` (whatever its From says: the caller chose this
    /// domain).
    pub fn sign_reader(&self, message: &mut dyn Read) -> Result<String, DkimError> {
        let head = read_head(message)?;
        self.sign_parts(&head, message)
    }
}

fn stream<T: SigningKey>(
    signer: &mail_auth::dkim::DkimSigner<T, Done>,
    head: &[u8],
    body: &mut dyn Read,
) -> Result<String, DkimError>
where
    <<T as SigningKey>::Hasher as mail_auth::common::crypto::HashImpl>::Context:
        mail_auth::common::crypto::HashContext,
{
    let mut s = signer.sign_streaming();
    // The header block in one write: mail-auth looks for its end in what it holds, once.
    s.write(head);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        s.write(&buf[..n]);
    }
    let sig = s.finish().map_err(|e| DkimError::Sign(e.to_string()))?;
    Ok(sig.to_header())
}

/// Reads the header block and the empty line that ends it (RFC 5322 §2.1), and at most a chunk
/// more, which [`stream`] hashes as the body's start: `HeaderTooLarge` past
/// [`MAX_HEADER_BYTES`]. Each byte is searched once (the search restarts 3 bytes back).
fn read_head(message: &mut dyn Read) -> Result<Vec<u8>, DkimError> {
    let mut head = Vec::with_capacity(CHUNK);
    let mut searched = 0usize;
    loop {
        let start = head.len();
        head.resize(start + CHUNK, 0);
        let n = loop {
            match message.read(&mut head[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        head.truncate(start + n);
        if n == 0 {
            // No empty line: a message of header fields only.
            return Ok(head);
        }
        if memchr::memmem::find(&head[searched..], b"\r\n\r\n").is_some() {
            return Ok(head);
        }
        searched = head.len().saturating_sub(3);
        if head.len() > MAX_HEADER_BYTES {
            return Err(DkimError::HeaderTooLarge(MAX_HEADER_BYTES));
        }
    }
}

/// The RFC 5322.From domain (lower case, no final dot) of a message (or its header block) when
/// the From field names exactly one domain (RFC 7489 §6.6.1: a message with several From
/// domains has none to align with).
pub fn from_domain(head: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(head, b"\r\n\r\n").map_or(head.len(), |p| p + 4);
    let block = &head[..end];
    // The header block only, parsed as the inbound verification parses it.
    let parsed = mail_auth::AuthenticatedMessage::parse(block)?;
    let mut domains: Vec<String> = parsed
        .from
        .iter()
        .filter_map(|f| f.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    domains.sort();
    domains.dedup();
    match domains.as_slice() {
        [one] if !one.is_empty() => Some(one.clone()),
        _ => None,
    }
}

/// The enabled configs' signers, by tenant and domain, as of a `dkim_version`.
struct Snapshot {
    version: i64,
    signers: HashMap<(TenantId, String), Arc<DomainSigner>>,
}

/// Every tenant's enabled DKIM configs, loaded from the store and reloaded when its
/// `dkim_version` moves. The version is read (one indexed read) only when the store's
/// generation ([`DkimStore::dkim_generation`]) moved since the snapshot was last confirmed
/// current: not once per message.
pub struct DkimSigner {
    store: Arc<dyn DkimStore>,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    /// The generation at which the snapshot was last confirmed current (read before the version
    /// was: a change committed after that read moves the generation past it).
    confirmed: Mutex<Option<u64>>,
}

impl DkimSigner {
    pub fn new(store: Arc<dyn DkimStore>) -> DkimSigner {
        DkimSigner {
            store,
            snapshot: Mutex::new(None),
            confirmed: Mutex::new(None),
        }
    }

    fn current(&self) -> Result<Arc<Snapshot>, DkimError> {
        let generation = self.store.dkim_generation();
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut slot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let (Some(g), Some(s)) = (generation, &*slot)
            && *confirmed == Some(g)
        {
            return Ok(s.clone());
        }
        *confirmed = None;
        let version = self.store.dkim_version();
        match (&*slot, &version) {
            (Some(s), Ok(v)) if s.version == *v => {
                *confirmed = generation;
                return Ok(s.clone());
            }
            // The store cannot say: keep signing with what it said last.
            (Some(s), Err(e)) => {
                tracing::warn!(error = %e, "DKIM: configs not reloaded");
                return Ok(s.clone());
            }
            // Nothing loaded yet: the error below.
            _ => {}
        }
        let version = version?;
        let mut signers = HashMap::new();
        for c in self.store.enabled_dkim_signing_configs()? {
            match DomainSigner::from_config(&c) {
                Ok(s) => {
                    signers.insert((c.tenant_id, c.domain.clone()), Arc::new(s));
                }
                // One bad key stops only its domain's signing.
                Err(e) => tracing::error!(error = %e, "DKIM: config not loaded"),
            }
        }
        let s = Arc::new(Snapshot { version, signers });
        *slot = Some(s.clone());
        *confirmed = generation;
        Ok(s)
    }

    /// The signer for `tenant`'s mail from `domain`: only an enabled config of exactly that
    /// domain (a subdomain is signed only by its own config, as in Exchange).
    pub fn signer_for(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Option<Arc<DomainSigner>>, DkimError> {
        let snapshot = self.current()?;
        Ok(snapshot
            .signers
            .get(&(tenant, domain.to_ascii_lowercase()))
            .cloned())
    }

    /// Signs the message `message` yields (a spooled file, say) for `tenant` when its From
    /// domain has an enabled config of the tenant: the `DKIM-Signature` field to prepend.
    pub fn sign_reader(
        &self,
        tenant: TenantId,
        message: &mut dyn Read,
    ) -> Result<Option<String>, DkimError> {
        let head = read_head(message)?;
        let Some(domain) = from_domain(&head) else {
            return Ok(None);
        };
        let Some(signer) = self.signer_for(tenant, &domain)? else {
            return Ok(None);
        };
        signer.sign_parts(&head, message).map(Some)
    }
}

impl DkimSigner {
    /// Signs `message` (all of it in memory) for `tenant` when its From domain has an enabled
    /// config of the tenant: the `DKIM-Signature` field to prepend, or `None` (no config, or
    /// signing failed, which is logged: the message then goes unsigned).
    pub fn sign(&self, tenant: TenantId, message: &[u8]) -> Option<String> {
        let mut reader = message;
        match self.sign_reader(tenant, &mut reader) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "DKIM: message sent unsigned");
                None
            }
        }
    }
}

/// The delivery agent's signer: called once per message, just before it is sent (after every
/// change hato makes to it), with the message as it will go out — its head in memory and, for
/// a large one, the rest in its queue file, read once.
impl OutboundSigner for DkimSigner {
    fn sign(&self, tenant: TenantId, from_domain: &str, message: &Message) -> Option<Vec<u8>> {
        let signed = (|| -> Result<Option<String>, DkimError> {
            let Some(signer) = self.signer_for(tenant, from_domain)? else {
                return Ok(None);
            };
            let mut reader: Box<dyn Read> = match &message.file {
                None => Box::new(&message.head[..]),
                Some(path) => Box::new((&message.head[..]).chain(std::fs::File::open(path)?)),
            };
            let head = read_head(&mut reader)?;
            signer.sign_parts(&head, &mut reader).map(Some)
        })();
        match signed {
            Ok(field) => field.map(String::into_bytes),
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "DKIM: message sent unsigned");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_sizes_ring_signs_with_are_made() {
        let e = generate_key(DkimKeyType::Rsa, 1024).unwrap_err();
        assert!(matches!(e, DkimError::KeySize(1024)), "{e:?}");
        assert!(e.to_string().contains("2048"), "{e}");
        assert!(generate_key(DkimKeyType::Rsa, 4096).is_err());
    }

    #[test]
    fn base64_is_rfc_4648() {
        // RFC 4648 §10's test vectors.
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
    }

    #[test]
    fn long_records_are_cut_into_strings_of_255_bytes() {
        let text = "x".repeat(600);
        let parts = dns_txt_strings(&text);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn the_from_domain_is_the_one_domain_of_the_from_field() {
        let one = b"From: Alice <alice@Contoso.TEST.>\r\nTo: b@x.test\r\n\r\nbody";
        assert_eq!(from_domain(one).as_deref(), Some("contoso.test"));
        let two = b"From: a@contoso.test, b@fabrikam.test\r\n\r\n";
        assert_eq!(from_domain(two), None);
        let none = b"To: b@x.test\r\n\r\n";
        assert_eq!(from_domain(none), None);
    }

    #[test]
    fn a_header_block_over_the_bound_is_refused_after_reading_only_that_much() {
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                buf.fill(b'a');
                Ok(buf.len())
            }
        }
        let mut r = Endless(0);
        let e = read_head(&mut r).unwrap_err();
        assert!(matches!(e, DkimError::HeaderTooLarge(_)), "{e:?}");
        assert!(r.0 <= MAX_HEADER_BYTES + 2 * CHUNK, "read {}", r.0);
    }
}
