//! TLS for the SMTP client: the outbound connector's `--tls-settings` (Exchange's
//! `TlsSettings`, `exchange-online-behaviour.md` §9.2) as rustls configurations.
//!
//! - no setting (Exchange's `$null`): STARTTLS when the server offers it, any certificate,
//!   plain text otherwise — as Exchange and Postfix (`smtp_tls_security_level = may`) deliver
//!   to the Internet, where self-signed certificates are common and refusing them would only
//!   push the mail back to plain text;
//! - `encryption-only`: TLS required, any certificate;
//! - `certificate-validation`: TLS required, the certificate chains to a trusted root (the
//!   system's, or the roots the caller gives); its names are not checked. Revocation, which
//!   Exchange also checks, is not: hato fetches no CRL or OCSP response;
//! - `domain-validation`: as `certificate-validation`, and the certificate names the TLS
//!   domain (`--tls-domain`); a `*.contoso.com` TLS domain takes a certificate for one label
//!   under contoso.com, or the wildcard itself (RFC 6125 §6.4.3's one-label wildcard).
//!
//! The handshake's signatures are checked in every mode; only what the certificate says is
//! taken on trust in the first two.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// How the client uses TLS with a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsSettings {
    /// Never STARTTLS (a peer known to break it; tests).
    Disabled,
    /// No connector setting: STARTTLS when offered, any certificate.
    #[default]
    Opportunistic,
    /// `encryption-only`.
    EncryptionOnly,
    /// `certificate-validation`.
    CertificateValidation,
    /// `domain-validation` with its `--tls-domain` (`mail.contoso.com` or `*.contoso.com`).
    DomainValidation(String),
}

impl TlsSettings {
    /// The outbound connector's value (`encryption-only`, `certificate-validation`,
    /// `domain-validation`; `domain-validation` needs the TLS domain).
    pub fn parse(value: &str, tls_domain: Option<&str>) -> Result<TlsSettings, TlsError> {
        match (value, tls_domain) {
            ("encryption-only", _) => Ok(TlsSettings::EncryptionOnly),
            ("certificate-validation", _) => Ok(TlsSettings::CertificateValidation),
            ("domain-validation", Some(d)) => Ok(TlsSettings::DomainValidation(check_domain(d)?)),
            ("domain-validation", None) => Err(TlsError::DomainNeeded),
            (other, _) => Err(TlsError::UnknownSetting(other.to_string())),
        }
    }

    /// Whether a session must use TLS.
    pub fn required(&self) -> bool {
        !matches!(self, TlsSettings::Disabled | TlsSettings::Opportunistic)
    }

    pub(crate) fn starttls(&self) -> super::StartTls {
        match self {
            TlsSettings::Disabled => super::StartTls::Never,
            TlsSettings::Opportunistic => super::StartTls::Opportunistic,
            _ => super::StartTls::Required,
        }
    }
}

/// A TLS domain: a DNS name, or `*.` and one.
fn check_domain(domain: &str) -> Result<String, TlsError> {
    let lower = domain.trim_end_matches('.').to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    if name.is_empty() || name.contains('*') || ServerName::try_from(name).is_err() {
        return Err(TlsError::BadDomain(domain.to_string()));
    }
    Ok(lower)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error(
        "unknown TLS setting {0:?}: use encryption-only, certificate-validation or domain-validation"
    )]
    UnknownSetting(String),
    #[error("domain-validation needs the TLS domain (--tls-domain)")]
    DomainNeeded,
    #[error("not a TLS domain: {0:?} (a DNS name, or *. and one)")]
    BadDomain(String),
    #[error("no trusted root certificate: the system has none, and none was given")]
    NoRoots,
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The system's trust anchors, read once.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("reading the system's root certificates: {e}");
        }
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(found.certs);
        Arc::new(store)
    });
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    Ok(roots.clone())
}

/// The system's trust anchors plus every certificate of the PEM file `extra` (a private CA's,
/// or a test's: `[outbound] extra_ca_file`), for certificate checks that must also accept it.
/// The system may have none; the file must give at least one.
pub fn roots_with(extra: &std::path::Path) -> Result<Arc<RootCertStore>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| TlsError::Config(format!("{}: {e}", extra.display()));
    let mut store = RootCertStore::empty();
    if let Ok(system) = system_roots() {
        store.roots.extend(system.roots.iter().cloned());
    }
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(extra).map_err(|e| bad(&e))? {
        let cert = cert.map_err(|e| bad(&e))?;
        store.add(cert).map_err(|e| bad(&e))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad(&"no certificate in the file"));
    }
    Ok(Arc::new(store))
}

/// The system's trust anchors (shared, read once).
pub fn system_trust_roots() -> Result<Arc<RootCertStore>, TlsError> {
    system_roots()
}

/// The rustls configuration for `settings`; `roots` replaces the system's trust anchors (a
/// private CA, or a test's).
pub fn client_config(
    settings: &TlsSettings,
    roots: Option<Arc<RootCertStore>>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match settings {
        TlsSettings::Disabled | TlsSettings::Opportunistic | TlsSettings::EncryptionOnly => {
            Arc::new(Verifier {
                algorithms,
                chain: None,
            })
        }
        TlsSettings::CertificateValidation | TlsSettings::DomainValidation(_) => {
            let roots = match roots {
                Some(r) => r,
                None => system_roots()?,
            };
            let names = match settings {
                TlsSettings::DomainValidation(d) => match d.strip_prefix("*.") {
                    Some(parent) => Names::UnderWildcard(parent.to_string()),
                    None => Names::Exact(
                        ServerName::try_from(d.clone())
                            .map_err(|_| TlsError::BadDomain(d.clone()))?,
                    ),
                },
                _ => Names::Any,
            };
            Arc::new(Verifier {
                algorithms,
                chain: Some((roots, names)),
            })
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Which names the certificate must carry.
#[derive(Debug)]
enum Names {
    Any,
    Exact(ServerName<'static>),
    /// One label under this domain, or the wildcard for it.
    UnderWildcard(String),
}

#[derive(Debug)]
struct Verifier {
    algorithms: WebPkiSupportedAlgorithms,
    /// The trust anchors and the names to check; `None` takes any certificate.
    chain: Option<(Arc<RootCertStore>, Names)>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some((roots, names)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        match names {
            Names::Any => {}
            Names::Exact(name) => verify_server_name(&cert, name)?,
            Names::UnderWildcard(parent) => {
                let ee = webpki::EndEntityCert::try_from(end_entity)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                if !ee.valid_dns_names().any(|n| under_wildcard(n, parent)) {
                    return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
                }
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether a certificate's DNS name `name` is one label under `parent`, or `*.parent`.
fn under_wildcard(name: &str, parent: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match name.split_once('.') {
        Some((label, rest)) => {
            rest == parent && !label.is_empty() && (label == "*" || !label.contains('*'))
        }
        None => false,
    }
}

/// What a certificate error means for the trace: a certificate the settings refuse (Exchange's
/// 4.7.320) rather than a handshake that failed otherwise.
pub(crate) fn is_certificate_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(_) | Error::NoCertificatesPresented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_the_connector_gives_them() {
        assert_eq!(
            TlsSettings::parse("encryption-only", None),
            Ok(TlsSettings::EncryptionOnly)
        );
        assert_eq!(
            TlsSettings::parse("domain-validation", Some("*.Contoso.test.")),
            Ok(TlsSettings::DomainValidation("*.contoso.test".into()))
        );
        assert_eq!(
            TlsSettings::parse("domain-validation", None),
            Err(TlsError::DomainNeeded)
        );
        for bad in ["*", "a.*.test", "*.", "bad domain.test", ""] {
            assert!(
                matches!(
                    TlsSettings::parse("domain-validation", Some(bad)),
                    Err(TlsError::BadDomain(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            TlsSettings::parse("EncryptionOnly", None),
            Err(TlsError::UnknownSetting(_))
        ));
    }

    #[test]
    fn wildcard_tls_domains_take_one_label() {
        assert!(under_wildcard("mail.contoso.test", "contoso.test"));
        assert!(under_wildcard("MAIL.Contoso.Test.", "contoso.test"));
        assert!(under_wildcard("*.contoso.test", "contoso.test"));
        assert!(!under_wildcard("a.b.contoso.test", "contoso.test"));
        assert!(!under_wildcard("contoso.test", "contoso.test"));
        assert!(!under_wildcard("mail.fabrikam.test", "contoso.test"));
        assert!(!under_wildcard("m*.contoso.test", "contoso.test"));
    }
}
