//! Inbound connectors and the organisation settings: names unique per tenant in any case, the
//! shared-IP refusal across tenants (seed E3) and `force`, the version the edge caches by, and
//! the throttle exemptions an on-premises connector registers while it exists and is enabled.

use hato_protection::connector::{ConnectorType, InboundConnector};
use hato_store::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

fn on_premises(ips: &[&str]) -> InboundConnector {
    InboundConnector {
        connector_type: ConnectorType::OnPremises,
        sender_ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
        ..InboundConnector::default()
    }
}

#[test]
fn connectors_are_named_once_per_tenant_in_any_case_and_listed_by_name() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let b = s.create_tenant("fabrikam").wait().unwrap().id;
    s.add_inbound_connector(a, "Relay", on_premises(&["192.0.2.1"]), false)
        .wait()
        .unwrap();
    let e = s
        .add_inbound_connector(a, "RELAY", on_premises(&["192.0.2.2"]), false)
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    // Another tenant may use the name.
    s.add_inbound_connector(b, "relay", on_premises(&["198.51.100.1"]), false)
        .wait()
        .unwrap();
    s.add_inbound_connector(a, "Backup", on_premises(&["192.0.2.9"]), false)
        .wait()
        .unwrap();
    let names: Vec<String> = s
        .inbound_connectors(a)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Backup", "Relay"]);
    let got = s.inbound_connector(a, "relay").unwrap();
    assert_eq!(got.tenant, "contoso");
    assert_eq!(got.connector.sender_ip_addresses, ["192.0.2.1"]);
    assert!(matches!(
        s.inbound_connector(a, "nope"),
        Err(StoreError::NotFound(_))
    ));
    // The settings are checked in the write too.
    let e = s
        .add_inbound_connector(a, "Bad", on_premises(&[]), false)
        .wait()
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains("sender-ip-addresses or tls-sender-certificate-name")),
        "{e:?}"
    );
    s.remove_inbound_connector(a, "RELAY").wait().unwrap();
    assert!(matches!(
        s.remove_inbound_connector(a, "Relay").wait(),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn an_ip_on_another_tenants_on_premises_connector_is_refused_unless_forced() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let b = s.create_tenant("fabrikam").wait().unwrap().id;
    s.add_inbound_connector(a, "Relay", on_premises(&["192.0.2.0/24"]), false)
        .wait()
        .unwrap();
    // The same tenant may overlap itself.
    s.add_inbound_connector(a, "Printer", on_premises(&["192.0.2.7"]), false)
        .wait()
        .unwrap();
    let e = s
        .add_inbound_connector(b, "Mine", on_premises(&["192.0.2.7"]), false)
        .wait()
        .unwrap_err();
    let StoreError::InUse(text) = e else {
        panic!("{e:?}")
    };
    assert!(
        text.contains("192.0.2.7 is on another organisation's on-premises inbound connector")
            && !text.contains("contoso")
            && !text.contains("Relay")
            && text.contains("shared-IP pitfall")
            && text.contains("--force"),
        "{text}"
    );
    // A partner connector's IPs attribute nothing: no clash.
    let partner = InboundConnector {
        connector_type: ConnectorType::Partner,
        sender_ip_addresses: vec!["192.0.2.7".into()],
        sender_domains: vec!["example.com".into()],
        restrict_domains_to_ip_addresses: true,
        ..InboundConnector::default()
    };
    s.add_inbound_connector(b, "Partner", partner, false)
        .wait()
        .unwrap();
    // Becoming on-premises is checked like an add.
    let mut changed = s.inbound_connector(b, "Partner").unwrap().connector;
    changed.connector_type = ConnectorType::OnPremises;
    changed.restrict_domains_to_ip_addresses = false;
    changed.sender_domains.clear();
    assert!(matches!(
        s.set_inbound_connector(b, "Partner", changed.clone(), false)
            .wait(),
        Err(StoreError::InUse(_))
    ));
    // Forced: registered; later changes that add no IP are not refused again.
    s.add_inbound_connector(b, "Shared", on_premises(&["192.0.2.128/25"]), true)
        .wait()
        .unwrap();
    let mut shared = s.inbound_connector(b, "Shared").unwrap().connector;
    shared.comment = "the shared relay".into();
    s.set_inbound_connector(b, "Shared", shared.clone(), false)
        .wait()
        .unwrap();
    shared.sender_ip_addresses.push("192.0.2.9".into());
    assert!(matches!(
        s.set_inbound_connector(b, "Shared", shared, false).wait(),
        Err(StoreError::InUse(_))
    ));
}

#[test]
fn the_version_moves_with_every_change_a_tenants_removal_included() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    let v0 = s.connector_version().unwrap();
    s.add_inbound_connector(a, "Relay", on_premises(&["192.0.2.1"]), false)
        .wait()
        .unwrap();
    let v1 = s.connector_version().unwrap();
    assert!(v1 > v0);
    let mut c = s.inbound_connector(a, "Relay").unwrap().connector;
    c.enabled = false;
    s.set_inbound_connector(a, "Relay", c, false)
        .wait()
        .unwrap();
    let v2 = s.connector_version().unwrap();
    assert!(v2 > v1);
    assert!(s.enabled_inbound_connectors().unwrap().is_empty());
    assert!(!s.organization_config(a).unwrap().reject_direct_send);
    s.set_organization_config(
        a,
        OrganizationConfig {
            reject_direct_send: true,
        },
    )
    .wait()
    .unwrap();
    assert!(s.organization_config(a).unwrap().reject_direct_send);
    assert_eq!(s.reject_direct_send_tenants().unwrap(), [a]);
    let v3 = s.connector_version().unwrap();
    assert!(v3 > v2);
    s.remove_tenant(a).wait().unwrap();
    assert!(s.connector_version().unwrap() > v3);
    assert!(s.reject_direct_send_tenants().unwrap().is_empty());
    assert!(matches!(
        s.organization_config(a),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn an_on_premises_connectors_ips_are_throttle_exemptions_while_it_is_enabled() {
    let (_d, s) = store();
    let a = s.create_tenant("contoso").wait().unwrap().id;
    s.add_throttle_exemption(a, "203.0.113.0/24")
        .wait()
        .unwrap();
    s.add_inbound_connector(
        a,
        "Relay",
        on_premises(&["192.0.2.0/24", "2001:db8::/48"]),
        false,
    )
    .wait()
    .unwrap();
    let rows = |s: &SqliteStore| -> Vec<(String, Option<String>)> {
        s.throttle_exemptions(Some(a))
            .unwrap()
            .into_iter()
            .map(|r| (r.network, r.connector))
            .collect()
    };
    assert_eq!(
        rows(&s),
        [
            ("192.0.2.0/24".to_string(), Some("Relay".to_string())),
            ("2001:db8::/48".to_string(), Some("Relay".to_string())),
            ("203.0.113.0/24".to_string(), None),
        ]
    );
    assert_eq!(s.throttle_exemptions(None).unwrap().len(), 3);
    // Not removable as an entry: it goes with the connector.
    let e = s
        .remove_throttle_exemption(a, "192.0.2.0/24")
        .wait()
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::InUse(m) if m.contains("inbound connector \"Relay\"")),
        "{e:?}"
    );
    let mut c = s.inbound_connector(a, "Relay").unwrap().connector;
    c.enabled = false;
    s.set_inbound_connector(a, "Relay", c.clone(), false)
        .wait()
        .unwrap();
    assert_eq!(rows(&s), [("203.0.113.0/24".to_string(), None)]);
    c.enabled = true;
    s.set_inbound_connector(a, "Relay", c, false)
        .wait()
        .unwrap();
    assert_eq!(rows(&s).len(), 3);
    s.remove_inbound_connector(a, "Relay").wait().unwrap();
    assert_eq!(rows(&s), [("203.0.113.0/24".to_string(), None)]);
}
