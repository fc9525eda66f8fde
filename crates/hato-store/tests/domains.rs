//! Accepted domains and their verification: pending until verified, a held name refused alike
//! whoever holds it, and the migration that verifies the domains added before verification.

use hato_core::directory::{DomainStatus, DomainType};
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn token_of(record: &str) -> &str {
    record
        .strip_prefix("hato-verification=")
        .unwrap_or_else(|| panic!("not a verification record: {record}"))
}

fn is_token(t: &str) -> bool {
    t.len() == 32
        && t.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn a_tenant_admins_domain_is_pending_until_verified() {
    let (_d, s) = store();
    let t = s.create_tenant("contoso").wait().unwrap();
    let d = s
        .add_pending_domain("contoso.test", t.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    assert_eq!(d.status, DomainStatus::Pending);
    assert_eq!(
        (d.domain.as_str(), d.tenant.as_str()),
        ("contoso.test", "contoso")
    );
    assert!(is_token(token_of(&d.verification_record)), "{d:?}");
    // Held by the tenant (its directory may use it), but not verified.
    assert_eq!(
        s.domain("contoso.test").unwrap(),
        Some((t.id, DomainType::Authoritative))
    );
    let e = s.domain_entry("contoso.test").unwrap().unwrap();
    assert_eq!((e.tenant, e.status), (t.id, DomainStatus::Pending));
    assert_eq!(e.verification_record, d.verification_record);
    assert_eq!(s.domains(Some(t.id)).unwrap(), std::slice::from_ref(&d));

    // Verifying changes the tenant's directory (mail for it is taken from now on), once.
    let before = s.directory_version(t.id).unwrap();
    let v = s.verify_domain("contoso.test").wait().unwrap();
    assert_eq!(v.status, DomainStatus::Verified);
    assert_eq!(v.verification_record, d.verification_record);
    let after = s.directory_version(t.id).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        s.domain_entry("contoso.test").unwrap().unwrap().status,
        DomainStatus::Verified
    );
    assert_eq!(s.verify_domain("contoso.test").wait().unwrap(), v);
    assert_eq!(s.directory_version(t.id).unwrap(), after);
    assert!(matches!(
        s.verify_domain("nothing.test").wait(),
        Err(StoreError::NotFound(_))
    ));

    // The operator's domain is verified at once; every claim gets a token of its own.
    let o = s
        .add_domain("relay.contoso.test", t.id, DomainType::InternalRelay)
        .wait()
        .unwrap();
    assert_eq!(o.status, DomainStatus::Verified);
    assert_ne!(o.verification_record, d.verification_record);
    s.remove_domain("relay.contoso.test").wait().unwrap();
    let again = s
        .add_pending_domain("relay.contoso.test", t.id, DomainType::InternalRelay)
        .wait()
        .unwrap();
    assert_ne!(again.verification_record, o.verification_record);
}

#[test]
fn a_held_domain_is_refused_alike_whoever_holds_it() {
    let (_d, s) = store();
    let contoso = s.create_tenant("contoso").wait().unwrap();
    let fabrikam = s.create_tenant("fabrikam").wait().unwrap();
    s.add_pending_domain("pending.test", contoso.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_domain("verified.test", contoso.id, DomainType::Authoritative)
        .wait()
        .unwrap();
    for domain in ["pending.test", "verified.test"] {
        for tenant in [contoso.id, fabrikam.id] {
            for pending in [true, false] {
                let r = if pending {
                    s.add_pending_domain(domain, tenant, DomainType::InternalRelay)
                } else {
                    s.add_domain(domain, tenant, DomainType::InternalRelay)
                };
                let err = r.wait().unwrap_err();
                // The same error whoever asks, whoever holds it, pending or verified.
                assert_eq!(err, StoreError::Conflict(format!("domain {domain}")));
                assert_eq!(err.to_string(), format!("domain {domain} already exists"));
            }
        }
    }
    // Nothing changed.
    assert!(s.domains(Some(fabrikam.id)).unwrap().is_empty());
    assert_eq!(
        s.domain_entry("pending.test").unwrap().unwrap().status,
        DomainStatus::Pending
    );
}

#[test]
fn domains_added_before_verification_are_verified_by_the_migration() {
    // The schema before verification: migrations 1 to 12.
    const OLD: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("hato.db")).unwrap();
        for sql in &MIGRATIONS[..OLD] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", OLD as i64)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO tenants(id, name, created) VALUES (1, 'contoso', 0);
             INSERT INTO domains(domain, tenant_id, type) VALUES
                ('contoso.test', 1, 'authoritative'), ('relay.contoso.test', 1, 'internal-relay');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let domains = s.domains(None).unwrap();
    assert_eq!(domains.len(), 2);
    for d in &domains {
        assert_eq!(d.status, DomainStatus::Verified, "{d:?}");
        assert!(is_token(token_of(&d.verification_record)), "{d:?}");
    }
    assert_ne!(
        domains[0].verification_record,
        domains[1].verification_record
    );
    // New claims after the migration are pending as usual.
    let d = s
        .add_pending_domain("new.test", 1, DomainType::Authoritative)
        .wait()
        .unwrap();
    assert_eq!(d.status, DomainStatus::Pending);
}
