//! The Mail flow and Protection pages in a real browser (`tests/browser/flow.py`): a tenant
//! admin creates two transport rules and reorders them (the page's order and the API's
//! priorities change), tests a message against them, adds an IP to the connection filter's
//! block list and switches Mail flow to Japanese. Screenshots `flow-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

#[test]
fn reorder_two_rules_test_a_message_block_an_ip_and_switch_to_japanese() {
    if !browser::available() {
        return;
    }
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("admin@contoso.test", &["--password", "browser-test-pw"]);
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Global Admins",
                     "owners": ["admin@contoso.test"], "members": ["admin@contoso.test"] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/Global%20Admins/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    let shots = browser::screenshot_dir();
    browser::run(
        "flow.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "browser-test-pw",
            &shots.to_string_lossy(),
        ],
    );
    // What the browser did is in the store, as the API reports it.
    let (status, v) = s.api("GET", "/api/v1/tenants/contoso/rules", None);
    assert_eq!(status, 200, "{v}");
    let order: Vec<(&str, u64)> = v
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or(""),
                r["priority"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    assert_eq!(order, [("Tag urgent", 0), ("Tag invoices", 1)]);
    let (_, v) = s.api("GET", "/api/v1/connection-filter?tenant=contoso", None);
    assert_eq!(v["ip_block_list"], json!(["192.0.2.55"]), "{v}");
    for name in [
        "flow-01-rules",
        "flow-02-rule-detail",
        "flow-03-reordered",
        "flow-04-rule-test",
        "flow-05-connection-filter",
        "flow-06-mail-flow-ja",
        "flow-07-accepted-domains-ja",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
