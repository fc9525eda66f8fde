mod common;
use common::*;
use serde_json::json;

#[test]
fn probe() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    let p = |m: &str, path: &str, b: Option<serde_json::Value>| {
        let r = s.api(m, path, b.clone());
        println!("{m} {path} {b:?} -> {} {}", r.0, r.1);
        r
    };
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"a@contoso.test","aliases":["a@contoso.test"]})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"b@contoso.test","aliases":["x@contoso.test","X@contoso.test"]})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"c@contoso.test","quota_mb": 18446744073709551615u64})),
    );
    p("GET", "/api/v1/mailboxes/c@contoso.test", None);
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"d@contoso.test","quota_mb": -1})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"e@contoso.test","tenant":"fabrikam"})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"f@contoso.test","custom_attribute_01":"x"})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"g@contoso.test","used_bytes":5})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"h@contoso.test","aliases":["h@contoso.test"]})),
    );
    p(
        "PATCH",
        "/api/v1/mailboxes/g@contoso.test",
        Some(json!({"aliases":["g@contoso.test"]})),
    );
    p("GET", "/api/v1/mailboxes/g@contoso.test", None);
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"i@contoso.test","display_name":"  "})),
    );
    p(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address":"j@[127.0.0.1]"})),
    );
    p("GET", "/api/v1/mailboxes/not%20an%20address", None);
    p(
        "POST",
        "/api/v1/domains",
        Some(json!({"domain":"[1.2.3.4]","tenant":"contoso"})),
    );
    p(
        "POST",
        "/api/v1/domains",
        Some(json!({"domain":"bad domain","tenant":"contoso"})),
    );
    p("POST", "/api/v1/tenants", Some(json!({"name":"Contoso"})));
    p("GET", "/api/v1/tenants/Contoso", None);
    p("POST", "/api/v1/tenants/nosuch/tokens", Some(json!({})));
    p("DELETE", "/api/v1/tenants/fabrikam", None);
    p("GET", "/api/v1/domains", None);
    p("POST", "/api/v1/tenants", Some(json!({"name":"fabrikam"})));
    p("GET", "/api/v1/trace?limit=0", None);
    p("GET", "/api/v1/trace?start=2026-11-28%2021:00", None);
    p("GET", "/api/v1/trace?status=delivered", None);
    p("GET", "/api/v1/mailboxes?tenant=nosuch", None);
    p("PUT", "/api/v1/mailboxes", None);
    p("DELETE", "/api/v1/domains/contoso.test", None);
    p("DELETE", "/api/v1/tenants/contoso", None);
    p("GET", "/api/v1/mailboxes", None);
    p("GET", "/api/v1/domains", None);
}
