//! Outbound connectors (migration 29): names unique per tenant in any case, the settings
//! checked in the write, a tenant's removal taking them along, and the connector version the
//! outbound agent's selector caches by, moved by connector and accepted domain changes.

use hato_core::directory::DomainType;
use hato_protection::outbound_connector::OutboundConnector;
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn to(domains: &[&str]) -> OutboundConnector {
    OutboundConnector {
        recipient_domains: domains.iter().map(|s| s.to_string()).collect(),
        ..OutboundConnector::default()
    }
}

#[test]
fn outbound_connectors_are_stored_checked_and_move_the_version() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let b = s.create_tenant("fabrikam").wait().unwrap().id;
    let v0 = s.connector_version().unwrap();
    s.add_outbound_connector(a, "Partner", to(&["fabrikam.test"]))
        .wait()
        .unwrap();
    let v1 = s.connector_version().unwrap();
    assert!(v1 > v0);
    let e = s
        .add_outbound_connector(a, "PARTNER", to(&["x.test"]))
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    // Checked in the write too: neither domains nor all accepted domains.
    let e = s
        .add_outbound_connector(a, "Bad", OutboundConnector::default())
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    s.add_outbound_connector(b, "partner", to(&["*"]))
        .wait()
        .unwrap();
    s.add_outbound_connector(a, "Archive", to(&["archive.test"]))
        .wait()
        .unwrap();
    let names: Vec<String> = s
        .outbound_connectors(a)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Archive", "Partner"]);
    assert_eq!(s.all_outbound_connectors().unwrap().len(), 3);

    let changed = OutboundConnector {
        enabled: false,
        ..to(&["fabrikam.test"])
    };
    let v2 = s.connector_version().unwrap();
    let got = s
        .set_outbound_connector(a, "partner", changed)
        .wait()
        .unwrap();
    assert!(!got.connector.enabled);
    assert_eq!(got.name, "Partner");
    assert!(s.connector_version().unwrap() > v2);

    // An accepted domain's change moves it too (all-accepted-domains connectors reach them).
    let v3 = s.connector_version().unwrap();
    s.add_domain("hybrid.contoso.test", a, DomainType::InternalRelay)
        .wait()
        .unwrap();
    assert!(s.connector_version().unwrap() > v3);

    s.remove_outbound_connector(a, "archive").wait().unwrap();
    assert!(matches!(
        s.outbound_connector(a, "Archive"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.remove_outbound_connector(a, "Archive").wait(),
        Err(StoreError::NotFound(_))
    ));
    // A tenant's removal takes its connectors along.
    s.remove_tenant(b).wait().unwrap();
    assert_eq!(s.all_outbound_connectors().unwrap().len(), 1);
}
