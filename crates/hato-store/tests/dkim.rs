//! DKIM signing configs: only for the tenant's own verified accepted domains, one per domain,
//! rotation swapping the active selector and replacing the key that signed until then, the
//! version the signer caches by, and removal with the domain and with the tenant.

use hato_core::directory::DomainType;
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn key(tag: u8) -> NewDkimKey {
    NewDkimKey {
        key_type: DkimKeyType::Ed25519,
        bits: 256,
        private_key: vec![tag; 48],
        public_key: vec![tag; 32],
    }
}

#[test]
fn a_config_is_only_for_the_tenants_own_verified_domains_and_one_per_domain() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let b = s.create_tenant("fabrikam").wait().unwrap().id;
    s.add_domain("contoso.test", a, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_domain("fabrikam.test", b, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_pending_domain("pending.test", a, DomainType::Authoritative)
        .wait()
        .unwrap();
    for (domain, says) in [
        ("fabrikam.test", "not an accepted domain of this tenant"),
        ("nowhere.test", "not an accepted domain of this tenant"),
        ("pending.test", "pending verification"),
    ] {
        let e = s
            .add_dkim_signing_config(a, domain, true, [key(1), key(2)])
            .wait()
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid(m) if m.contains(says) && !m.contains("fabrikam ")),
            "{domain}: {e:?}"
        );
    }
    let c = s
        .add_dkim_signing_config(a, "Contoso.TEST.", true, [key(1), key(2)])
        .wait()
        .unwrap();
    assert_eq!(c.domain, "contoso.test");
    assert_eq!(c.tenant, "contoso");
    assert_eq!(c.active, 1);
    assert_eq!(c.active_selector().selector, "selector1");
    assert_eq!(c.selectors[0].key, key(1));
    assert_eq!(c.selectors[1].key, key(2));
    assert_eq!(c.rotated, None);
    let e = s
        .add_dkim_signing_config(a, "contoso.test", true, [key(3), key(4)])
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    // Another tenant sees none of it.
    assert!(s.dkim_signing_configs(Some(b)).unwrap().is_empty());
    assert!(matches!(
        s.dkim_signing_config(b, "contoso.test"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.dkim_signing_configs(None).unwrap(), vec![c.clone()]);
    assert_eq!(s.dkim_signing_config(a, "contoso.test").unwrap(), c);
}

#[test]
fn rotation_swaps_the_signing_selector_and_replaces_the_key_that_signed() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    s.add_domain("contoso.test", a, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_dkim_signing_config(a, "contoso.test", true, [key(1), key(2)])
        .wait()
        .unwrap();
    let v0 = s.dkim_version().unwrap();
    let r = s
        .rotate_dkim_signing_config(a, "contoso.test", key(3))
        .wait()
        .unwrap();
    assert_eq!(r.active, 2);
    assert_eq!(r.active_selector().key, key(2));
    assert_eq!(r.selectors[0].key, key(3), "selector1 got the new key");
    assert!(r.rotated.is_some());
    assert!(s.dkim_version().unwrap() > v0);
    let r = s
        .rotate_dkim_signing_config(a, "contoso.test", key(4))
        .wait()
        .unwrap();
    assert_eq!(r.active, 1);
    assert_eq!(r.active_selector().key, key(3));
    assert_eq!(r.selectors[1].key, key(4));
}

#[test]
fn only_enabled_configs_sign_and_every_change_moves_the_version() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    for d in ["contoso.test", "sales.contoso.test"] {
        s.add_domain(d, a, DomainType::Authoritative)
            .wait()
            .unwrap();
    }
    let v0 = s.dkim_version().unwrap();
    s.add_dkim_signing_config(a, "contoso.test", true, [key(1), key(2)])
        .wait()
        .unwrap();
    s.add_dkim_signing_config(a, "sales.contoso.test", false, [key(3), key(4)])
        .wait()
        .unwrap();
    let v1 = s.dkim_version().unwrap();
    assert!(v1 > v0);
    let enabled: Vec<String> = s
        .enabled_dkim_signing_configs()
        .unwrap()
        .into_iter()
        .map(|c| c.domain)
        .collect();
    assert_eq!(enabled, ["contoso.test"]);
    s.set_dkim_signing_enabled(a, "contoso.test", false)
        .wait()
        .unwrap();
    assert!(s.enabled_dkim_signing_configs().unwrap().is_empty());
    assert!(s.dkim_version().unwrap() > v1);
    let v2 = s.dkim_version().unwrap();
    s.remove_dkim_signing_config(a, "sales.contoso.test")
        .wait()
        .unwrap();
    assert!(s.dkim_version().unwrap() > v2);
    assert!(matches!(
        s.remove_dkim_signing_config(a, "sales.contoso.test").wait(),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_config_goes_with_its_domain_and_with_its_tenant() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let b = s.create_tenant("fabrikam").wait().unwrap().id;
    s.add_domain("contoso.test", a, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_domain("fabrikam.test", b, DomainType::Authoritative)
        .wait()
        .unwrap();
    s.add_dkim_signing_config(a, "contoso.test", true, [key(1), key(2)])
        .wait()
        .unwrap();
    s.add_dkim_signing_config(b, "fabrikam.test", true, [key(3), key(4)])
        .wait()
        .unwrap();
    let v = s.dkim_version().unwrap();
    s.remove_domain("contoso.test").wait().unwrap();
    assert!(s.dkim_signing_configs(Some(a)).unwrap().is_empty());
    assert!(
        s.dkim_version().unwrap() > v,
        "the signer must drop the key"
    );
    s.remove_tenant(b).wait().unwrap();
    assert!(s.dkim_signing_configs(None).unwrap().is_empty());
    assert!(s.enabled_dkim_signing_configs().unwrap().is_empty());
    // No key is left behind in the database either.
    drop(s);
    let conn = rusqlite::Connection::open(_d.path().join("hato.db")).unwrap();
    let keys: i64 = conn
        .query_row("SELECT count(*) FROM dkim_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(keys, 0);
}
