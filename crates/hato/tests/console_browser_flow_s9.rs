//! Rule exceptions and editing, inbound connector validation and custom malware policies in a
//! real browser (`tests/browser/flow_s9.py`): a tenant admin creates a rule from the form's
//! condition, exception and action rows, edits its condition, validates an inbound connector
//! and creates a malware policy; the API then holds what the browser did. Screenshots
//! `flow-s9-NN-*.png` go to `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

#[test]
fn a_rule_with_an_exception_is_made_and_edited_a_connector_validated_and_a_malware_policy_made() {
    if !browser::available() {
        return;
    }
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("admin@contoso.test", &["--password", "browser-test-pw"]);
    for (path, body) in [
        (
            "/api/v1/groups",
            json!({ "type": "security", "tenant": "contoso", "name": "Global Admins",
                     "owners": ["admin@contoso.test"], "members": ["admin@contoso.test"] }),
        ),
        (
            "/api/v1/groups/Global%20Admins/roles",
            json!({ "role": "global-admin" }),
        ),
        (
            "/api/v1/tenants/contoso/connectors/inbound",
            json!({ "name": "Onprem", "connector_type": "on-premises",
                     "sender_ip_addresses": ["127.0.0.9"] }),
        ),
    ] {
        let (status, v) = s.api("POST", path, Some(body));
        assert!(status == 200 || status == 201, "{path}: {v}");
    }
    let shots = browser::screenshot_dir();
    browser::run(
        "flow_s9.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "browser-test-pw",
            &shots.to_string_lossy(),
        ],
    );
    let (status, v) = s.api("GET", "/api/v1/tenants/contoso/rules/Tag%20invoices", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["rule"]["conditions"],
        json!({ "subject_contains_words": ["payment"] })
    );
    assert_eq!(
        v["rule"]["exceptions"],
        json!({ "from": ["boss@outside.test"] })
    );
    let (_, v) = s.api("GET", "/api/v1/malware-filters?tenant=contoso", None);
    assert!(
        v.as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "Finance")),
        "{v}"
    );
    for name in [
        "flow-s9-01-rule-form",
        "flow-s9-02-rule-description",
        "flow-s9-03-rule-edited",
        "flow-s9-04-connector-validated",
        "flow-s9-05-malware-policy",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
