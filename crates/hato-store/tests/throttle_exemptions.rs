//! Tenants' throttle exemption lists in the embedded store.

use hato_store::*;

#[test]
fn exemptions_are_kept_per_tenant_bounded_and_go_with_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    let contoso = s.create_tenant("contoso").wait().unwrap();
    let fabrikam = s.create_tenant("fabrikam").wait().unwrap();
    let row = s
        .add_throttle_exemption(contoso.id, "192.0.2.0/24")
        .wait()
        .unwrap();
    assert_eq!(
        (row.tenant.as_str(), row.network.as_str()),
        ("contoso", "192.0.2.0/24")
    );
    s.add_throttle_exemption(contoso.id, "2001:db8:1::/48")
        .wait()
        .unwrap();
    // Two tenants may list the same network; one tenant once.
    s.add_throttle_exemption(fabrikam.id, "192.0.2.0/24")
        .wait()
        .unwrap();
    assert_eq!(
        s.add_throttle_exemption(contoso.id, "192.0.2.0/24")
            .wait()
            .unwrap_err(),
        StoreError::Conflict("throttle exemption 192.0.2.0/24 of tenant contoso".into())
    );
    let listed = |t| -> Vec<(String, String)> {
        s.throttle_exemptions(t)
            .unwrap()
            .into_iter()
            .map(|r| (r.tenant, r.network))
            .collect()
    };
    assert_eq!(
        listed(Some(contoso.id)),
        [
            ("contoso".into(), "192.0.2.0/24".into()),
            ("contoso".into(), "2001:db8:1::/48".into())
        ]
    );
    assert_eq!(listed(None).len(), 3);
    s.remove_throttle_exemption(contoso.id, "2001:db8:1::/48")
        .wait()
        .unwrap();
    assert_eq!(
        s.remove_throttle_exemption(contoso.id, "2001:db8:1::/48")
            .wait()
            .unwrap_err(),
        StoreError::NotFound("throttle exemption 2001:db8:1::/48".into())
    );
    // Another tenant's entry is not removed through this one.
    assert!(
        s.remove_throttle_exemption(fabrikam.id, "2001:db8:9::/48")
            .wait()
            .is_err()
    );
    // At most THROTTLE_EXEMPTIONS_MAX per tenant.
    for i in 1..THROTTLE_EXEMPTIONS_MAX {
        s.add_throttle_exemption(contoso.id, &format!("10.{}.{}.0/24", i / 256, i % 256))
            .wait()
            .unwrap();
    }
    let err = s
        .add_throttle_exemption(contoso.id, "10.99.99.0/24")
        .wait()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tenant contoso already has 1000 throttle exemptions, the most it may have"
    );
    // A removed tenant's entries go with it.
    s.remove_tenant(contoso.id).wait().unwrap();
    assert_eq!(listed(None), [("fabrikam".into(), "192.0.2.0/24".into())]);
    assert!(
        s.add_throttle_exemption(contoso.id, "192.0.2.1")
            .wait()
            .is_err()
    );
}
