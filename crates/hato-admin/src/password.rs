//! Mailbox passwords, stored as argon2id hashes in PHC string form (RFC 9106 parameters as the
//! argon2 crate's defaults).

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};

/// Hashes a new password; `None` only if the hasher fails (it does not for valid input).
pub fn hash(password: &str) -> Option<String> {
    let salt = SaltString::encode_b64(&hato_core::id::random_bytes::<16>()).ok()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

/// A hash of a password nobody has, to verify against when the address is unknown or has no
/// password: the same argon2 work as for a real account, so timing does not tell which
/// addresses exist (the API's login and SMTP AUTH).
pub fn dummy_hash() -> Option<&'static str> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash(&hato_core::id::new_token()))
        .as_deref()
}

pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong", &h));
        assert!(!super::verify("x", "not a hash"));
    }
}
