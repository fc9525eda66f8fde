//! The admin API over HTTP against a real `hato serve`: authentication, tenant isolation,
//! mailbox CRUD and message-trace queries.

mod common;
use common::*;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Sends `head` (request line and headers, without the final blank line) and returns the status
/// and the JSON body; lets a test send any Authorization header it likes.
fn raw_get(addr: SocketAddr, path: &str, headers: &str) -> (u16, Value) {
    let (status, body) = http_raw(addr, "GET", path, headers, "");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Asserts an error answer: this status and a body that is exactly `{"error": "<non-empty>"}`;
/// returns the message.
#[track_caller]
fn assert_error(got: &(u16, Value), status: u16) -> String {
    assert_eq!(got.0, status, "{}", got.1);
    let obj = got
        .1
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {}", got.1));
    assert_eq!(obj.len(), 1, "error body has other fields: {}", got.1);
    let msg = obj["error"]
        .as_str()
        .expect("error is a string")
        .to_string();
    assert!(!msg.is_empty());
    assert!(!msg.contains('\n'), "one line: {msg:?}");
    msg
}

/// A tenant-admin token for `tenant`, created by the operator.
fn admin_token(s: &Server, tenant: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["role"], "tenant-admin");
    assert_eq!(v["tenant"], tenant);
    let token = v["token"].as_str().expect("token").to_string();
    assert!(token.len() >= 20, "a token should be long: {token}");
    token
}

/// Sends one message over SMTP; returns its trace id.
fn send(s: &Server, from: &str, to: &[&str], content: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let reply = c.send_mail(from, to, content);
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
    trace_id_of(&reply)
}

fn message(subject: &str, message_id: &str) -> String {
    format!(
        "From: Sender <sender@example.net>\nTo: someone\nSubject: {subject}\nMessage-ID: {message_id}\nDate: Sat, 28 Nov 2026 21:00:00 +0000\n\nHello.\n"
    )
}

/// Waits until every recipient row of `trace_id` is `Delivered`.
fn wait_delivered(s: &Server, trace_id: &str, recipients: usize) {
    s.wait_for("delivery", || {
        let rows = s.trace(&format!("trace_id={trace_id}"));
        rows.len() == recipients && rows.iter().all(|r| r["status"] == "Delivered")
    });
}

fn names(v: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

// ----- authentication and the OpenAPI document ------------------------------------------------

#[test]
fn requests_without_a_valid_token_are_refused_with_401() {
    let s = Server::start();
    for path in [
        "/api/v1/tenants",
        "/api/v1/mailboxes",
        "/api/v1/trace",
        "/api/v1/domains/x.test",
    ] {
        // No Authorization header at all.
        let got = raw_get(s.admin, path, "");
        assert_error(&got, 401);
        // A well-formed header with a token the server never issued.
        let got = s.api_as("not-a-real-token-0123456789", "GET", path, None);
        assert_error(&got, 401);
        // Malformed headers.
        for header in [
            "Authorization: Basic dXNlcjpwYXNz\r\n".to_string(),
            "Authorization: Bearer\r\n".to_string(),
            "Authorization: Bearer    \r\n".to_string(),
            format!("Authorization: {}\r\n", s.token),
            format!("Authorization: Token {}\r\n", s.token),
        ] {
            let got = raw_get(s.admin, path, &header);
            assert_error(&got, 401);
        }
    }
    // A write with a wrong token changes nothing.
    let got = s.api_as(
        "wrong",
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "evil"})),
    );
    assert_error(&got, 401);
    let (status, v) = s.api("GET", "/api/v1/tenants", None);
    assert_eq!(status, 200);
    assert_eq!(v, json!([]));
    // The real token in the same header form works.
    let got = raw_get(
        s.admin,
        "/api/v1/tenants",
        &format!("Authorization: Bearer {}\r\n", s.token),
    );
    assert_eq!(got, (200, json!([])));
    // The scheme is case-insensitive (RFC 9110 §11.1).
    for scheme in ["bearer", "BEARER"] {
        let got = raw_get(
            s.admin,
            "/api/v1/tenants",
            &format!("Authorization: {scheme} {}\r\n", s.token),
        );
        assert_eq!(got, (200, json!([])), "{scheme}");
    }
}

#[test]
fn openapi_document_is_served_without_auth_and_lists_every_path() {
    let s = Server::start();
    let (status, doc) = raw_get(s.admin, "/api/v1/openapi.json", "");
    assert_eq!(status, 200, "{doc}");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/api/v1/tenants", &["get", "post"][..]),
        ("/api/v1/tenants/{name}", &["get", "delete"]),
        ("/api/v1/tenants/{name}/tokens", &["post"]),
        ("/api/v1/domains", &["get", "post"]),
        ("/api/v1/domains/{domain}", &["delete"]),
        ("/api/v1/domains/{domain}/verify", &["post"]),
        ("/api/v1/mailboxes", &["get", "post"]),
        ("/api/v1/mailboxes/{address}", &["get", "patch", "delete"]),
        ("/api/v1/mailboxes/{address}/messages", &["get"]),
        ("/api/v1/mailboxes/{address}/messages/{id}/raw", &["get"]),
        ("/api/v1/trace", &["get"]),
        ("/api/v1/trace/{trace_id}", &["get"]),
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/groups/{group}", &["get", "patch", "delete"]),
        (
            "/api/v1/mailboxes/{address}/permissions",
            &["get", "post", "delete"],
        ),
    ] {
        let entry = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from openapi.json"));
        for m in methods {
            assert!(
                entry.get(*m).is_some(),
                "{m} {path} missing from openapi.json"
            );
        }
    }
    // The trace query parameters are documented.
    let params: Vec<&str> = paths["/api/v1/trace"]["get"]["parameters"]
        .as_array()
        .expect("trace parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in [
        "sender",
        "recipient",
        "status",
        "message_id",
        "trace_id",
        "from_ip",
        "start",
        "end",
        "subject",
        "subject_filter",
        "tenant",
        "page",
        "page_size",
    ] {
        assert!(
            params.contains(&p),
            "trace parameter {p} missing: {params:?}"
        );
    }
    // The answer is a page of rows.
    assert_eq!(
        paths["/api/v1/trace"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/TracePage"
    );
    let page = &doc["components"]["schemas"]["TracePage"]["properties"];
    for field in ["rows", "page", "page_size", "more"] {
        assert!(
            page.get(field).is_some(),
            "TracePage.{field} missing: {page}"
        );
    }
    // Bearer authentication is declared.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // The document lists itself, without authentication.
    assert!(
        paths["/api/v1/openapi.json"]["get"].is_object(),
        "openapi.json path missing"
    );
    assert_eq!(paths["/api/v1/openapi.json"]["get"]["security"], json!([]));
    // So does the login; every other operation needs the token.
    assert_eq!(paths["/api/v1/auth/login"]["post"]["security"], json!([]));
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert!(paths["/api/v1/tenants"]["get"].get("security").is_none());
    // Errors have their shape and statuses.
    assert_eq!(
        paths["/api/v1/tenants/{name}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // An unknown endpoint is a JSON 404, a wrong method a JSON 405, not empty bodies.
    let got = s.api("GET", "/api/v1/no-such-thing", None);
    assert_error(&got, 404);
    let got = s.api("PUT", "/api/v1/mailboxes", Some(json!({})));
    assert_error(&got, 405);
    let got = s.api("POST", "/api/v1/trace", Some(json!({})));
    assert_error(&got, 405);
}

/// The properties a schema of the document gives an object (following `$ref` and `allOf`).
fn schema_fields(doc: &Value, schema: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or_default();
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{r} does not resolve");
        return schema_fields(doc, target);
    }
    if let Some(p) = schema["properties"].as_object() {
        out.extend(p.keys().cloned());
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(schema_fields(doc, part));
    }
    out
}

/// Asserts that `answer` has exactly the fields the document's schema `name` lists.
#[track_caller]
fn assert_shape(doc: &Value, name: &str, answer: &Value) {
    let want = schema_fields(
        doc,
        &json!({ "$ref": format!("#/components/schemas/{name}") }),
    );
    assert!(!want.is_empty(), "schema {name} has no properties");
    let got: std::collections::BTreeSet<String> = answer
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {answer}"))
        .keys()
        .cloned()
        .collect();
    assert_eq!(got, want, "{name}: {answer}");
}

/// The shapes the document gives the answers are the answers' shapes: the handlers write most of
/// them with `json!`, so this is what keeps the schemas from drifting.
#[test]
fn the_documented_schemas_are_the_shapes_of_the_answers() {
    let s = Server::start();
    let (status, doc) = raw_get(s.admin, "/api/v1/openapi.json", "");
    assert_eq!(status, 200);
    let ok = |(status, v): (u16, Value), want: u16| -> Value {
        assert_eq!(status, want, "{v}");
        v
    };
    let v = ok(
        s.api("POST", "/api/v1/tenants", Some(json!({"name": "contoso"}))),
        201,
    );
    assert_shape(&doc, "Tenant", &v);
    assert_shape(
        &doc,
        "Tenant",
        &ok(s.api("GET", "/api/v1/tenants/contoso", None), 200),
    );
    let v = ok(
        s.api("POST", "/api/v1/tenants/contoso/tokens", Some(json!({}))),
        201,
    );
    assert_shape(&doc, "TenantToken", &v);
    let v = ok(
        s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "contoso.test", "tenant": "contoso"})),
        ),
        201,
    );
    assert_shape(&doc, "Domain", &v);
    for (address, password) in [
        ("alice@contoso.test", "correct horse battery"),
        ("carol@contoso.test", "another good password"),
    ] {
        let v = ok(
            s.api(
                "POST",
                "/api/v1/mailboxes",
                Some(json!({"address": address, "password": password, "custom_attribute_3": "x"})),
            ),
            201,
        );
        assert_shape(&doc, "Mailbox", &v);
    }
    let user = ok(
        s.api_as(
            "",
            "POST",
            "/api/v1/auth/login",
            Some(json!({"address": "alice@contoso.test", "password": "correct horse battery"})),
        ),
        200,
    );
    assert_shape(&doc, "UserToken", &user);
    let v = ok(
        s.api(
            "POST",
            "/api/v1/groups",
            Some(
                json!({"type": "distribution", "address": "sales@contoso.test",
                "tenant": "contoso", "owners": ["carol@contoso.test"],
                "members": ["carol@contoso.test"], "member_join_restriction": "open"}),
            ),
        ),
        201,
    );
    assert_shape(&doc, "Group", &v);
    let v = ok(
        s.api("GET", "/api/v1/groups/sales@contoso.test/members", None),
        200,
    );
    assert_shape(&doc, "Recipient", &v[0]);
    let alice = user["token"].as_str().expect("token");
    let v = ok(
        s.api_as(
            alice,
            "POST",
            "/api/v1/groups/sales@contoso.test/join",
            None,
        ),
        200,
    );
    let fields = schema_fields(&doc, &doc["components"]["schemas"]["MembershipResult"]);
    let obj = v.as_object().expect("object");
    assert!(obj.keys().all(|k| fields.contains(k)), "{v} vs {fields:?}");
    let v = ok(
        s.api(
            "POST",
            "/api/v1/contacts",
            Some(json!({"address": "bob@example.net", "tenant": "contoso"})),
        ),
        201,
    );
    assert_shape(&doc, "Contact", &v);
    let v = ok(
        s.api(
            "POST",
            "/api/v1/mailboxes/alice@contoso.test/permissions",
            Some(json!({"user": "carol@contoso.test", "right": "send-as"})),
        ),
        201,
    );
    assert_shape(&doc, "Granted", &v);
    let v = ok(
        s.api(
            "GET",
            "/api/v1/mailboxes/alice@contoso.test/permissions",
            None,
        ),
        200,
    );
    assert_shape(&doc, "PermissionView", &v[0]);

    let trace_id = send(
        &s,
        "sender@example.net",
        &["alice@contoso.test"],
        &message("Shapes", "<shapes@example.net>"),
    );
    wait_delivered(&s, &trace_id, 1);
    let page = ok(s.api("GET", "/api/v1/trace", None), 200);
    assert_shape(&doc, "TracePage", &page);
    assert_shape(&doc, "TraceRow", &page["rows"][0]);
    let v = ok(
        s.api("GET", &format!("/api/v1/trace/{trace_id}"), None),
        200,
    );
    assert_shape(&doc, "TraceEvent", &v[0]);
    let v = ok(
        s.api("GET", "/api/v1/mailboxes/alice@contoso.test/messages", None),
        200,
    );
    assert_shape(&doc, "Message", &v[0]);
    // And an error.
    let v = ok(s.api("GET", "/api/v1/tenants/nope", None), 404);
    assert_shape(&doc, "ErrorBody", &v);
}

// ----- tenant isolation -----------------------------------------------------------------------

#[test]
fn a_tenant_admin_sees_only_its_own_tenant() {
    let s = Server::start();
    for name in ["contoso", "fabrikam"] {
        let (status, v) = s.api("POST", "/api/v1/tenants", Some(json!({"name": name})));
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["name"], name);
        let (status, v) = s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": format!("{name}.test"), "tenant": name})),
        );
        assert_eq!(status, 201, "{v}");
        // The operator's domain is verified at once; its record is shown all the same.
        let record = v["verification_record"].as_str().unwrap_or("").to_string();
        assert!(record.starts_with("hato-verification="), "{v}");
        assert_eq!(
            v,
            json!({"domain": format!("{name}.test"), "tenant": name, "type": "authoritative",
                   "status": "verified", "verification_record": record})
        );
    }
    // Creating the same tenant twice is a conflict.
    assert_error(
        &s.api("POST", "/api/v1/tenants", Some(json!({"name": "contoso"}))),
        409,
    );
    let contoso = admin_token(&s, "contoso");
    let fabrikam = admin_token(&s, "fabrikam");
    assert_ne!(contoso, fabrikam);

    // A tenant admin creates mailboxes in its own domain.
    let (status, v) = s.api_as(
        &contoso,
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "alice@contoso.test"})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["tenant"], "contoso");
    let (status, v) = s.api_as(
        &fabrikam,
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "bob@fabrikam.test", "department": "Sales"})),
    );
    assert_eq!(status, 201, "{v}");

    // Another tenant's mailbox answers exactly like a mailbox that does not exist.
    let absent = s.api_as(
        &contoso,
        "GET",
        "/api/v1/mailboxes/nobody@contoso.test",
        None,
    );
    let absent_msg = assert_error(&absent, 404);
    assert_eq!(absent_msg, "mailbox nobody@contoso.test not found");
    let absent_other = s.api_as(
        &contoso,
        "GET",
        "/api/v1/mailboxes/nobody@fabrikam.test",
        None,
    );
    assert_eq!(
        assert_error(&absent_other, 404),
        "mailbox nobody@fabrikam.test not found"
    );
    let hidden = s.api_as(&contoso, "GET", "/api/v1/mailboxes/bob@fabrikam.test", None);
    assert_eq!(
        assert_error(&hidden, 404),
        "mailbox bob@fabrikam.test not found"
    );
    let patched = s.api_as(
        &contoso,
        "PATCH",
        "/api/v1/mailboxes/bob@fabrikam.test",
        Some(json!({"department": "Hacked"})),
    );
    assert_eq!(
        assert_error(&patched, 404),
        "mailbox bob@fabrikam.test not found"
    );
    let deleted = s.api_as(
        &contoso,
        "DELETE",
        "/api/v1/mailboxes/bob@fabrikam.test",
        None,
    );
    assert_eq!(
        assert_error(&deleted, 404),
        "mailbox bob@fabrikam.test not found"
    );
    // ... and neither the PATCH nor the DELETE did anything.
    let (status, bob) = s.api_as(
        &fabrikam,
        "GET",
        "/api/v1/mailboxes/bob@fabrikam.test",
        None,
    );
    assert_eq!(status, 200, "{bob}");
    assert_eq!(bob["department"], "Sales");

    // Domains.
    let got = s.api_as(&contoso, "GET", "/api/v1/domains/fabrikam.test", None);
    assert_eq!(assert_error(&got, 404), "domain fabrikam.test not found");
    let got = s.api_as(&contoso, "DELETE", "/api/v1/domains/fabrikam.test", None);
    assert_eq!(assert_error(&got, 404), "domain fabrikam.test not found");
    let got = s.api_as(&contoso, "GET", "/api/v1/domains/nonexistent.test", None);
    assert_eq!(assert_error(&got, 404), "domain nonexistent.test not found");
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/domains/contoso.test", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tenant"], "contoso");

    // Tenants.
    let got = s.api_as(&contoso, "GET", "/api/v1/tenants/fabrikam", None);
    assert_eq!(assert_error(&got, 404), "tenant fabrikam not found");
    let got = s.api_as(&contoso, "GET", "/api/v1/tenants/nosuch", None);
    assert_eq!(assert_error(&got, 404), "tenant nosuch not found");
    let got = s.api_as(&contoso, "DELETE", "/api/v1/tenants/fabrikam", None);
    assert_eq!(assert_error(&got, 404), "tenant fabrikam not found");
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/tenants/contoso", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "contoso");

    // Listings show only the caller's own objects.
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/tenants", None);
    assert_eq!(status, 200);
    assert_eq!(names(&v, "name"), ["contoso"]);
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/domains", None);
    assert_eq!(status, 200);
    assert_eq!(names(&v, "domain"), ["contoso.test"]);
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/mailboxes", None);
    assert_eq!(status, 200);
    assert_eq!(names(&v, "address"), ["alice@contoso.test"]);
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/mailboxes?tenant=contoso", None);
    assert_eq!(status, 200);
    assert_eq!(names(&v, "address"), ["alice@contoso.test"]);
    for path in [
        "/api/v1/domains?tenant=fabrikam",
        "/api/v1/mailboxes?tenant=fabrikam",
        "/api/v1/trace?tenant=fabrikam",
    ] {
        let got = s.api_as(&contoso, "GET", path, None);
        assert_eq!(
            assert_error(&got, 404),
            "tenant fabrikam not found",
            "{path}"
        );
    }
    // The operator sees everything.
    let (_, v) = s.api("GET", "/api/v1/tenants", None);
    assert_eq!(names(&v, "name"), ["contoso", "fabrikam"]);
    let (_, v) = s.api("GET", "/api/v1/mailboxes", None);
    assert_eq!(
        names(&v, "address"),
        ["alice@contoso.test", "bob@fabrikam.test"]
    );
    let (_, v) = s.api("GET", "/api/v1/mailboxes?tenant=fabrikam", None);
    assert_eq!(names(&v, "address"), ["bob@fabrikam.test"]);
    let (_, v) = s.api("GET", "/api/v1/domains", None);
    assert_eq!(names(&v, "domain"), ["contoso.test", "fabrikam.test"]);

    // Creating objects in the other tenant.
    let got = s.api_as(
        &contoso,
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "eve@fabrikam.test"})),
    );
    assert_error(&got, 404);
    let got = s.api_as(
        &contoso,
        "POST",
        "/api/v1/domains",
        Some(json!({"domain": "sub.fabrikam.test", "tenant": "fabrikam"})),
    );
    assert_eq!(assert_error(&got, 404), "tenant fabrikam not found");
    // Without "tenant", a tenant admin's domain goes to its own tenant.
    let (status, v) = s.api_as(
        &contoso,
        "POST",
        "/api/v1/domains",
        Some(json!({"domain": "contoso.example"})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["tenant"], "contoso");
    // Operator-only actions.
    let got = s.api_as(
        &contoso,
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "evil"})),
    );
    assert_error(&got, 403);
    for t in ["contoso", "fabrikam"] {
        let got = s.api_as(
            &contoso,
            "POST",
            &format!("/api/v1/tenants/{t}/tokens"),
            Some(json!({})),
        );
        assert_error(&got, 403);
    }
    let got = s.api_as(&contoso, "DELETE", "/api/v1/tenants/contoso", None);
    assert_error(&got, 403);
    let (_, v) = s.api("GET", "/api/v1/tenants", None);
    assert_eq!(names(&v, "name"), ["contoso", "fabrikam"]);

    // Message trace and mail: one message to each tenant, and one to both.
    let to_contoso = send(
        &s,
        "sender@example.net",
        &["alice@contoso.test"],
        &message("For Contoso", "<c1@example.net>"),
    );
    let to_fabrikam = send(
        &s,
        "sender@example.net",
        &["bob@fabrikam.test"],
        &message("For Fabrikam", "<f1@example.net>"),
    );
    let to_both = send(
        &s,
        "sender@example.net",
        &["alice@contoso.test", "bob@fabrikam.test"],
        &message("For Both", "<b1@example.net>"),
    );
    wait_delivered(&s, &to_contoso, 1);
    wait_delivered(&s, &to_fabrikam, 1);
    wait_delivered(&s, &to_both, 2);

    let (status, rows) = s.api_as(&contoso, "GET", "/api/v1/trace", None);
    assert_eq!(status, 200, "{rows}");
    let rows = rows["rows"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["recipient"] == "alice@contoso.test"),
        "{rows:?}"
    );
    let mut ids: Vec<&str> = rows
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap_or_default())
        .collect();
    ids.sort();
    let mut want = vec![to_contoso.as_str(), to_both.as_str()];
    want.sort();
    assert_eq!(ids, want);
    // Filtering for the other tenant's recipient finds nothing.
    let (status, rows) = s.api_as(
        &contoso,
        "GET",
        "/api/v1/trace?recipient=bob@fabrikam.test",
        None,
    );
    assert_eq!((status, &rows["rows"]), (200, &json!([])));
    let (status, rows) = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/trace?trace_id={to_fabrikam}"),
        None,
    );
    assert_eq!((status, &rows["rows"]), (200, &json!([])));
    // Details: the other tenant's message does not exist; a shared one shows only our recipient.
    let got = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/trace/{to_fabrikam}"),
        None,
    );
    assert_eq!(
        assert_error(&got, 404),
        format!("no trace for {to_fabrikam}")
    );
    let (status, events) = s.api_as(&contoso, "GET", &format!("/api/v1/trace/{to_both}"), None);
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().expect("events").clone();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["recipient"] == "alice@contoso.test"),
        "{events:?}"
    );
    let got = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/trace/{to_both}?recipient=bob@fabrikam.test"),
        None,
    );
    assert_error(&got, 404);
    // Mail in the other tenant's mailbox.
    let got = s.api_as(
        &contoso,
        "GET",
        "/api/v1/mailboxes/bob@fabrikam.test/messages",
        None,
    );
    assert_eq!(
        assert_error(&got, 404),
        "mailbox bob@fabrikam.test not found"
    );
    let bob_mail = s.mail("bob@fabrikam.test");
    assert_eq!(bob_mail.len(), 2);
    let bob_id = bob_mail[0]["id"].as_i64().expect("id");
    let got = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/mailboxes/bob@fabrikam.test/messages/{bob_id}/raw"),
        None,
    );
    assert_eq!(
        assert_error(&got, 404),
        "mailbox bob@fabrikam.test not found"
    );
    // Nor can alice's mailbox be used to read bob's message by id.
    let got = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/mailboxes/alice@contoso.test/messages/{bob_id}/raw"),
        None,
    );
    assert_error(&got, 404);
    let (status, v) = s.api_as(
        &contoso,
        "GET",
        "/api/v1/mailboxes/alice@contoso.test/messages",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    // Fabrikam's admin, symmetrically, sees its own.
    let (_, rows) = s.api_as(&fabrikam, "GET", "/api/v1/trace", None);
    assert_eq!(
        names(&rows["rows"], "recipient"),
        ["bob@fabrikam.test", "bob@fabrikam.test"]
    );

    // The operator sees both tenants' rows and every event.
    let rows = s.trace("");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        names(&Value::Array(rows), "recipient"),
        [
            "alice@contoso.test",
            "alice@contoso.test",
            "bob@fabrikam.test",
            "bob@fabrikam.test"
        ]
    );
    let rows = s.trace("tenant=fabrikam");
    assert_eq!(rows.len(), 2);
    let (status, events) = s.api("GET", &format!("/api/v1/trace/{to_both}"), None);
    assert_eq!(status, 200);
    let mut rcpts = names(&events, "recipient");
    rcpts.dedup();
    assert_eq!(rcpts, ["alice@contoso.test", "bob@fabrikam.test"]);
    let (status, events) = s.api("GET", &format!("/api/v1/trace/{to_fabrikam}"), None);
    assert_eq!(status, 200, "{events}");
}

// ----- mailboxes --------------------------------------------------------------------------------

fn full_mailbox() -> Value {
    let mut v = json!({
        "address": "frontdesk@contoso.test",
        "display_name": "Front Desk",
        "type": "shared",
        "aliases": ["lobby@contoso.test", "reception@contoso.test"],
        "department": "Facilities",
        "company": "Contoso Ltd",
        "office": "Building 7",
        "city": "Redmond",
        "state_or_province": "WA",
        "country_or_region": "US",
        "title": "Reception",
        "quota_mb": 2048,
        "smtp_client_authentication_disabled": true,
    });
    for i in 1..=15 {
        v[format!("custom_attribute_{i}")] = json!(format!("value {i}"));
    }
    v
}

#[test]
fn mailbox_fields_round_trip_and_patch_changes_only_what_is_given() {
    let s = Server::start();
    s.tenant("contoso");
    let mut input = full_mailbox();
    // Given in any order, aliases come back sorted.
    input["aliases"] = json!(["reception@contoso.test", "lobby@contoso.test"]);
    let (status, created) = s.api("POST", "/api/v1/mailboxes", Some(input.clone()));
    assert_eq!(status, 201, "{created}");
    let mut expected = full_mailbox();
    expected["tenant"] = json!("contoso");
    expected["used_bytes"] = json!(0);
    assert_eq!(created, expected);
    let (status, got) = s.api("GET", "/api/v1/mailboxes/frontdesk@contoso.test", None);
    assert_eq!(status, 200);
    assert_eq!(got, expected);
    // An alias finds the mailbox; so does any letter case.
    for addr in [
        "reception@contoso.test",
        "Lobby@Contoso.TEST",
        "FrontDesk@CONTOSO.test",
    ] {
        let (status, got) = s.api("GET", &format!("/api/v1/mailboxes/{addr}"), None);
        assert_eq!(status, 200, "{addr}: {got}");
        assert_eq!(got["address"], "frontdesk@contoso.test");
    }
    // The listing holds the same object.
    let (status, list) = s.api("GET", "/api/v1/mailboxes", None);
    assert_eq!(status, 200);
    assert_eq!(list, json!([expected.clone()]));

    // Defaults of a minimal mailbox.
    let (status, min) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "Alice@Contoso.TEST"})),
    );
    assert_eq!(status, 201, "{min}");
    assert_eq!(min["address"], "alice@contoso.test");
    assert_eq!(min["display_name"], "alice");
    assert_eq!(min["type"], "user");
    assert_eq!(min["aliases"], json!([]));
    assert_eq!(min["quota_mb"], 51200);
    assert_eq!(min["custom_attribute_15"], "");
    assert_eq!(min["department"], "");
    let (status, got) = s.api("GET", "/api/v1/mailboxes/ALICE@contoso.test", None);
    assert_eq!(status, 200);
    assert_eq!(got["address"], "alice@contoso.test");

    // PATCH changes only the given fields.
    let (status, patched) = s.api(
        "PATCH",
        "/api/v1/mailboxes/frontdesk@contoso.test",
        Some(json!({"department": "Operations", "custom_attribute_7": "seven", "quota_mb": 100})),
    );
    assert_eq!(status, 200, "{patched}");
    let mut after = expected.clone();
    after["department"] = json!("Operations");
    after["custom_attribute_7"] = json!("seven");
    after["quota_mb"] = json!(100);
    assert_eq!(patched, after);
    let (_, got) = s.api("GET", "/api/v1/mailboxes/frontdesk@contoso.test", None);
    assert_eq!(got, after);
    // Through an alias, with the type, name and the alias list replaced.
    let (status, patched) = s.api(
        "PATCH",
        "/api/v1/mailboxes/reception@contoso.test",
        Some(json!({"type": "user", "display_name": "Desk", "aliases": ["desk@contoso.test"]})),
    );
    assert_eq!(status, 200, "{patched}");
    after["type"] = json!("user");
    after["display_name"] = json!("Desk");
    after["aliases"] = json!(["desk@contoso.test"]);
    assert_eq!(patched, after);
    // The old alias is gone; the new one answers.
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/reception@contoso.test", None),
        404,
    );
    let (status, got) = s.api("GET", "/api/v1/mailboxes/desk@contoso.test", None);
    assert_eq!(status, 200);
    assert_eq!(got["address"], "frontdesk@contoso.test");
    // An empty PATCH changes nothing.
    let (status, got) = s.api(
        "PATCH",
        "/api/v1/mailboxes/frontdesk@contoso.test",
        Some(json!({})),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, after);
    // Address and tenant cannot be changed.
    let got = s.api(
        "PATCH",
        "/api/v1/mailboxes/frontdesk@contoso.test",
        Some(json!({"address": "other@contoso.test"})),
    );
    assert_error(&got, 400);

    // DELETE, then it is gone (and so are its aliases).
    let (status, v) = s.api("DELETE", "/api/v1/mailboxes/frontdesk@contoso.test", None);
    assert_eq!((status, v), (204, Value::Null));
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/frontdesk@contoso.test", None),
        404,
    );
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/desk@contoso.test", None),
        404,
    );
    assert_error(
        &s.api("DELETE", "/api/v1/mailboxes/frontdesk@contoso.test", None),
        404,
    );
    // Its addresses are free again.
    let (status, v) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "desk@contoso.test"})),
    );
    assert_eq!(status, 201, "{v}");
}

#[test]
fn mailbox_conflicts_and_bad_input_are_refused() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    let (status, v) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "alice@contoso.test", "aliases": ["al@contoso.test"]})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "bob@contoso.test"})),
    );
    assert_eq!(status, 201, "{v}");

    // Duplicate address (any case), an address that is someone's alias, an alias that is taken.
    for body in [
        json!({"address": "alice@contoso.test"}),
        json!({"address": "ALICE@contoso.test"}),
        json!({"address": "al@contoso.test"}),
        json!({"address": "carol@contoso.test", "aliases": ["alice@contoso.test"]}),
        json!({"address": "carol@contoso.test", "aliases": ["al@contoso.test"]}),
    ] {
        assert_error(&s.api("POST", "/api/v1/mailboxes", Some(body.clone())), 409);
    }
    // The failed creations left nothing behind.
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/carol@contoso.test", None),
        404,
    );
    let got = s.api(
        "PATCH",
        "/api/v1/mailboxes/bob@contoso.test",
        Some(json!({"aliases": ["al@contoso.test"]})),
    );
    assert_error(&got, 409);
    let got = s.api(
        "PATCH",
        "/api/v1/mailboxes/bob@contoso.test",
        Some(json!({"aliases": ["alice@contoso.test"]})),
    );
    assert_error(&got, 409);
    let (_, bob) = s.api("GET", "/api/v1/mailboxes/bob@contoso.test", None);
    assert_eq!(bob["aliases"], json!([]));

    // An alias in a domain the tenant does not own (another tenant's, or nobody's).
    for alias in ["bob@fabrikam.test", "bob@unknown.test"] {
        let got = s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", "aliases": [alias]})),
        );
        assert_error(&got, 400);
        let got = s.api(
            "PATCH",
            "/api/v1/mailboxes/bob@contoso.test",
            Some(json!({"aliases": [alias]})),
        );
        assert_error(&got, 400);
    }
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/carol@contoso.test", None),
        404,
    );

    // Unknown fields, bad values, bad JSON.
    let msg = assert_error(
        &s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", "nickname": "C"})),
        ),
        400,
    );
    assert!(msg.contains("nickname"), "{msg}");
    let msg = assert_error(
        &s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", "custom_attribute_16": "x"})),
        ),
        400,
    );
    assert!(msg.contains("custom_attribute_16"), "{msg}");
    let msg = assert_error(
        &s.api(
            "PATCH",
            "/api/v1/mailboxes/bob@contoso.test",
            Some(json!({"colour": "red"})),
        ),
        400,
    );
    assert!(msg.contains("colour"), "{msg}");
    // Only custom_attribute_1 .. custom_attribute_15, spelled exactly.
    for key in [
        "custom_attribute_0",
        "custom_attribute_01",
        "custom_attribute_+1",
        "custom_attribute_",
        "Custom_Attribute_1",
    ] {
        let got = s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", key: "x"})),
        );
        assert_eq!(assert_error(&got, 400), format!("unknown field {key}"));
        let got = s.api(
            "PATCH",
            "/api/v1/mailboxes/bob@contoso.test",
            Some(json!({key: "x"})),
        );
        assert_eq!(assert_error(&got, 400), format!("unknown field {key}"));
    }
    assert_error(
        &s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", "custom_attribute_3": 3})),
        ),
        400,
    );
    // A quota too large to keep in bytes is refused, not wrapped around.
    for mb in [u64::MAX, 1 << 44] {
        let got = s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@contoso.test", "quota_mb": mb})),
        );
        assert!(assert_error(&got, 400).contains("quota_mb"));
        let got = s.api(
            "PATCH",
            "/api/v1/mailboxes/bob@contoso.test",
            Some(json!({"quota_mb": mb})),
        );
        assert!(assert_error(&got, 400).contains("quota_mb"));
    }
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/mailboxes/bob@contoso.test",
        Some(json!({"quota_mb": 1u64 << 40})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["quota_mb"], 1u64 << 40);
    for body in [
        json!({"address": "carol@contoso.test", "type": "room"}),
        json!({"address": "carol@contoso.test", "quota_mb": 0}),
        json!({"address": "carol@contoso.test", "quota_mb": "big"}),
        json!({"address": "carol@contoso.test", "aliases": "x@contoso.test"}),
        json!({"address": "not an address"}),
        json!({"display_name": "No Address"}),
    ] {
        assert_error(&s.api("POST", "/api/v1/mailboxes", Some(body.clone())), 400);
    }
    assert_error(
        &s.api(
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "carol@nowhere.test"})),
        ),
        404,
    );
    assert_error(
        &s.api("GET", "/api/v1/mailboxes/carol@contoso.test", None),
        404,
    );
    for raw in ["{\"address\": \"carol@contoso.test\"", "not json", "[1,2]"] {
        let (status, bytes) = raw_request(s.admin, "POST", "/api/v1/mailboxes", &s.token, raw);
        assert_eq!(status, 400, "{raw}: {bytes}");
        assert!(bytes["error"].is_string(), "{bytes}");
        let (status, bytes) = raw_request(
            s.admin,
            "PATCH",
            "/api/v1/mailboxes/bob@contoso.test",
            &s.token,
            raw,
        );
        assert_eq!(status, 400, "{raw}: {bytes}");
        assert!(bytes["error"].is_string(), "{bytes}");
    }
    // Tenants: bad names, unknown fields.
    assert_error(
        &s.api(
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "has space"})),
        ),
        400,
    );
    assert_error(
        &s.api("POST", "/api/v1/tenants", Some(json!({"name": ""}))),
        400,
    );
    assert_error(
        &s.api(
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "x", "plan": "gold"})),
        ),
        400,
    );
    // Domains: duplicates, bad types.
    assert_error(
        &s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "CONTOSO.test", "tenant": "contoso"})),
        ),
        409,
    );
    assert_error(
        &s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "contoso.test", "tenant": "fabrikam"})),
        ),
        409,
    );
    assert_error(
        &s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "x.test", "tenant": "contoso", "type": "relay"})),
        ),
        400,
    );
    assert_error(
        &s.api(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "x.test", "tenant": "nosuch"})),
        ),
        404,
    );
    assert_error(
        &s.api("POST", "/api/v1/domains", Some(json!({"domain": "x.test"}))),
        400,
    );
    let (status, v) = s.api(
        "POST",
        "/api/v1/domains",
        Some(
            json!({"domain": "Relay.Contoso.TEST", "tenant": "contoso", "type": "internal-relay"}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (&v["domain"], &v["tenant"], &v["type"], &v["status"]),
        (
            &json!("relay.contoso.test"),
            &json!("contoso"),
            &json!("internal-relay"),
            &json!("verified")
        )
    );
}

/// The status line and headers of a GET.
fn response_head(addr: SocketAddr, path: &str, token: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head");
    String::from_utf8_lossy(&resp[..split + 2]).into_owned()
}

/// Any request with a raw (possibly invalid) JSON body.
fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, Value) {
    let headers = format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n");
    let (status, body) = http_raw(addr, method, path, &headers, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn domains_in_use_stay_and_delivery_counts_against_the_mailbox() {
    let s = Server::start();
    s.tenant("contoso");
    let (status, v) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "alice@contoso.test", "aliases": ["a@contoso.test"]})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["used_bytes"], 0);
    // The domain holds a mailbox: it cannot go.
    let msg = assert_error(&s.api("DELETE", "/api/v1/domains/contoso.test", None), 400);
    assert!(msg.contains("contoso.test"), "{msg}");
    let (_, v) = s.api("GET", "/api/v1/domains", None);
    assert_eq!(names(&v, "domain"), ["contoso.test"]);

    let trace_id = send(
        &s,
        "sender@example.net",
        &["a@contoso.test"],
        &message("Hello", "<u1@example.net>"),
    );
    wait_delivered(&s, &trace_id, 1);
    let mail = s.mail("alice@contoso.test");
    assert_eq!(mail.len(), 1);
    let size = mail[0]["size"].as_u64().expect("size");
    assert!(size > 100, "{size}");
    let (status, v) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(status, 200);
    assert_eq!(v["used_bytes"].as_u64(), Some(size), "{v}");
    // used_bytes is read-only.
    assert_error(
        &s.api(
            "PATCH",
            "/api/v1/mailboxes/alice@contoso.test",
            Some(json!({"used_bytes": 0})),
        ),
        400,
    );
    let (_, v) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(v["used_bytes"].as_u64(), Some(size));

    // A second message adds to it.
    let trace_id = send(
        &s,
        "sender@example.net",
        &["alice@contoso.test"],
        &message("Again", "<u2@example.net>"),
    );
    wait_delivered(&s, &trace_id, 1);
    let mail = s.mail("alice@contoso.test");
    assert_eq!(mail.len(), 2);
    let total: u64 = mail.iter().map(|m| m["size"].as_u64().unwrap_or(0)).sum();
    let (_, v) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(v["used_bytes"].as_u64(), Some(total));
    assert!(total > size);

    // The message listing and the raw message.
    assert_eq!(mail[0]["subject"], "Again");
    assert_eq!(mail[1]["subject"], "Hello");
    assert_eq!(mail[0]["folder"], "inbox");
    assert_eq!(mail[0]["from"], "Sender <sender@example.net>");
    let id = mail[1]["id"].as_i64().expect("id");
    let raw = s.raw_mail("alice@contoso.test", id);
    let head = response_head(
        s.admin,
        &format!("/api/v1/mailboxes/alice@contoso.test/messages/{id}/raw"),
        &s.token,
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\ncontent-type: message/rfc822\r\n"),
        "{head}"
    );
    assert!(
        raw.starts_with("Return-Path: <sender@example.net>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Hello\r\n"));
    assert_eq!(raw.len() as u64, mail[1]["size"].as_u64().unwrap_or(0));
    let (status, _) = http(
        s.admin,
        "GET",
        "/api/v1/mailboxes/alice@contoso.test/messages/999999/raw",
        Some(&s.token),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = http(
        s.admin,
        "GET",
        "/api/v1/mailboxes/alice@contoso.test/messages?folder=junk",
        Some(&s.token),
        None,
    );
    assert_eq!(status, 200);
    assert_error(
        &s.api(
            "GET",
            "/api/v1/mailboxes/alice@contoso.test/messages?folder=spam",
            None,
        ),
        400,
    );

    // Once the mailbox is gone, the domain can be removed.
    let (status, _) = s.api("DELETE", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(status, 204);
    let (status, v) = s.api("DELETE", "/api/v1/domains/contoso.test", None);
    assert_eq!((status, v), (204, Value::Null));
    let (_, v) = s.api("GET", "/api/v1/domains", None);
    assert_eq!(v, json!([]));
    assert_error(&s.api("DELETE", "/api/v1/domains/contoso.test", None), 404);
}

// ----- message trace ----------------------------------------------------------------------------

#[test]
fn trace_query_parameters_filter_rows() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    let before = s.trace("");
    assert!(before.is_empty());

    let t1 = send(
        &s,
        "news@example.net",
        &["alice@contoso.test"],
        &message("Weekly report: sales", "<report-1@example.net>"),
    );
    let t2 = send(
        &s,
        "boss@example.org",
        &["alice@contoso.test", "bob@contoso.test"],
        &message("Re: Weekly report", "<reply-2@example.org>"),
    );
    wait_delivered(&s, &t1, 1);
    wait_delivered(&s, &t2, 2);

    let all = s.trace("");
    assert_eq!(all.len(), 3, "{all:?}");
    for row in &all {
        let obj = row.as_object().expect("row");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "from_ip",
                "message_id",
                "received",
                "recipient",
                "sender",
                "size",
                "status",
                "subject",
                "trace_id"
            ]
        );
        assert_eq!(row["from_ip"], "127.0.0.1");
        assert_eq!(row["status"], "Delivered");
        assert!(row["size"].as_u64().unwrap_or(0) > 100);
        let received = row["received"].as_str().expect("received");
        assert!(
            received.ends_with('Z') && received.len() >= 20 && &received[10..11] == "T",
            "{received}"
        );
    }
    // Newest first.
    assert_eq!(all[0]["trace_id"], t2.as_str());
    assert_eq!(all[2]["trace_id"], t1.as_str());
    let t1_row = all
        .iter()
        .find(|r| r["trace_id"] == t1.as_str())
        .expect("t1 row");
    assert_eq!(t1_row["sender"], "news@example.net");
    assert_eq!(t1_row["recipient"], "alice@contoso.test");
    assert_eq!(t1_row["subject"], "Weekly report: sales");
    assert_eq!(t1_row["message_id"], "<report-1@example.net>");

    let ids = |q: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .trace(q)
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["trace_id"].as_str().unwrap_or_default(),
                    r["recipient"].as_str().unwrap_or_default()
                )
            })
            .collect();
        v.sort();
        v
    };
    let row = |t: &str, r: &str| format!("{t} {r}@contoso.test");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    assert_eq!(ids("sender=news@example.net"), [row(&t1, "alice")]);
    assert_eq!(ids("sender=NEWS@Example.NET"), [row(&t1, "alice")]);
    assert_eq!(ids("sender=nobody@example.net"), Vec::<String>::new());
    assert_eq!(ids("recipient=bob@contoso.test"), [row(&t2, "bob")]);
    assert_eq!(
        ids("recipient=Alice@Contoso.test"),
        sorted(vec![row(&t1, "alice"), row(&t2, "alice")])
    );
    assert_eq!(ids("status=Delivered").len(), 3);
    assert_eq!(ids("status=Failed"), Vec::<String>::new());
    assert_eq!(ids("status=Pending"), Vec::<String>::new());
    let msg = assert_error(&s.api("GET", "/api/v1/trace?status=Lost", None), 400);
    for st in [
        "Pending",
        "Delivered",
        "Failed",
        "Expanded",
        "Quarantined",
        "FilteredAsSpam",
    ] {
        assert!(msg.contains(st), "{msg} should list {st}");
    }
    assert!(msg.contains("Lost"), "{msg}");
    // Message-ID with or without angle brackets (percent-encoded or not).
    assert_eq!(ids("message_id=report-1@example.net"), [row(&t1, "alice")]);
    assert_eq!(
        ids("message_id=%3Creport-1@example.net%3E"),
        [row(&t1, "alice")]
    );
    assert_eq!(ids("message_id=%3Creply-2@example.org%3E").len(), 2);
    assert_eq!(ids("message_id=report-1"), Vec::<String>::new());
    // Trace id.
    assert_eq!(
        ids(&format!("trace_id={t2}")),
        sorted(vec![row(&t2, "alice"), row(&t2, "bob")])
    );
    assert_eq!(
        ids(&format!("trace_id={}", t1.to_uppercase())),
        [row(&t1, "alice")]
    );
    assert_eq!(ids("trace_id=nonexistent"), Vec::<String>::new());
    // Client IP.
    assert_eq!(ids("from_ip=127.0.0.1").len(), 3);
    assert_eq!(ids("from_ip=192.0.2.1"), Vec::<String>::new());
    // Time window: everything was received between a minute ago and a minute from now.
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let past = fmt(now - chrono::Duration::minutes(1));
    let future = fmt(now + chrono::Duration::minutes(1));
    assert_eq!(ids(&format!("start={past}&end={future}")).len(), 3);
    assert_eq!(ids(&format!("start={future}")), Vec::<String>::new());
    assert_eq!(ids(&format!("end={past}")), Vec::<String>::new());
    assert_eq!(ids("end=2000-01-01"), Vec::<String>::new());
    assert_eq!(ids("start=2000-01-01").len(), 3);
    // The received time of a row is inside [start, end] at the second it names.
    let received = t1_row["received"].as_str().expect("received");
    let r = chrono::DateTime::parse_from_rfc3339(received)
        .expect("rfc3339")
        .with_timezone(&chrono::Utc);
    let at = fmt(r - chrono::Duration::seconds(1));
    let after = fmt(r + chrono::Duration::seconds(2));
    assert!(ids(&format!("start={at}&end={after}")).contains(&row(&t1, "alice")));
    let msg = assert_error(&s.api("GET", "/api/v1/trace?start=yesterday", None), 400);
    assert!(msg.contains("start"), "{msg}");
    let msg = assert_error(&s.api("GET", "/api/v1/trace?end=2026-13-45", None), 400);
    assert!(msg.contains("end"), "{msg}");
    let msg = assert_error(
        &s.api(
            "GET",
            &format!("/api/v1/trace?start={future}&end={past}"),
            None,
        ),
        400,
    );
    assert_eq!(msg, "start is after end");
    // Subject: contains (default) vs starts_with.
    assert_eq!(ids("subject=weekly%20report").len(), 3);
    assert_eq!(ids("subject=sales"), [row(&t1, "alice")]);
    assert_eq!(ids("subject=Weekly&subject_filter=contains").len(), 3);
    assert_eq!(
        ids("subject=Weekly&subject_filter=starts_with"),
        [row(&t1, "alice")]
    );
    assert_eq!(ids("subject=Re:&subject_filter=starts_with").len(), 2);
    assert_eq!(
        ids("subject=sales&subject_filter=starts_with"),
        Vec::<String>::new()
    );
    // LIKE wildcards are literal.
    assert_eq!(ids("subject=%25"), Vec::<String>::new());
    assert_eq!(ids("subject=_"), Vec::<String>::new());
    assert_error(
        &s.api("GET", "/api/v1/trace?subject=x&subject_filter=regex", None),
        400,
    );
    // Filters combine.
    assert_eq!(
        ids("sender=boss@example.org&recipient=bob@contoso.test"),
        [row(&t2, "bob")]
    );
    assert_eq!(
        ids("sender=news@example.net&recipient=bob@contoso.test"),
        Vec::<String>::new()
    );
    // Unknown parameters and bad addresses are refused.
    assert_error(&s.api("GET", "/api/v1/trace?colour=red", None), 400);
    assert_error(
        &s.api("GET", "/api/v1/trace?sender=not%20an%20address", None),
        400,
    );
}

#[test]
fn trace_is_paged_like_get_messagetrace() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let mut sent = Vec::new();
    for i in 0..12 {
        let reply = c.send_mail(
            "news@example.net",
            &["alice@contoso.test"],
            &message(&format!("page test {i}"), &format!("<p{i}@example.net>")),
        );
        assert!(reply.starts_with("250"), "{reply}");
        sent.push(trace_id_of(&reply));
    }
    c.cmd("QUIT");

    // The defaults are Exchange's: page 1 of 1,000 rows.
    let (status, v) = s.api("GET", "/api/v1/trace", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["page"], &v["page_size"], &v["more"]),
        (&json!(1), &json!(1000), &json!(false))
    );
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(12));

    let mut seen = Vec::new();
    let mut shape = Vec::new();
    for page in 1..=3 {
        let (status, v) = s.api(
            "GET",
            &format!("/api/v1/trace?page_size=5&page={page}"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!((&v["page"], &v["page_size"]), (&json!(page), &json!(5)));
        let rows = v["rows"].as_array().expect("rows");
        shape.push((rows.len(), v["more"].as_bool().expect("more")));
        seen.extend(
            rows.iter()
                .map(|r| r["trace_id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(shape, [(5, true), (5, true), (2, false)]);
    // Every message once, newest first.
    sent.reverse();
    assert_eq!(seen, sent);
    // Past the end: no rows, nothing more.
    let (_, v) = s.api("GET", "/api/v1/trace?page_size=5&page=4", None);
    assert_eq!((&v["rows"], &v["more"]), (&json!([]), &json!(false)));

    // Out of range is refused, naming the limits, never cut silently.
    for (query, name, limit) in [
        ("page_size=5001", "page_size", "5000"),
        ("page_size=0", "page_size", "5000"),
        ("page_size=lots", "page_size", "5000"),
        ("page=0", "page", "1000"),
        ("page=1001", "page", "1000"),
        ("page=-1", "page", "1000"),
    ] {
        let msg = assert_error(&s.api("GET", &format!("/api/v1/trace?{query}"), None), 400);
        assert!(
            msg.starts_with(name) && msg.contains("from 1 to") && msg.contains(limit),
            "{query}: {msg}"
        );
    }
    // The upper limits themselves are fine.
    let (status, v) = s.api("GET", "/api/v1/trace?page_size=5000&page=1000", None);
    assert_eq!((status, &v["rows"]), (200, &json!([])));
}

#[test]
fn trace_detail_lists_a_recipients_events() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    let t = send(
        &s,
        "sender@example.net",
        &["alice@contoso.test", "bob@contoso.test"],
        &message("Detail", "<d1@example.net>"),
    );
    wait_delivered(&s, &t, 2);

    let (status, events) = s.api(
        "GET",
        &format!("/api/v1/trace/{t}?recipient=bob@contoso.test"),
        None,
    );
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().expect("events").clone();
    for e in &events {
        let mut keys: Vec<&str> = e
            .as_object()
            .expect("event")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "detail",
                "enhanced_status",
                "event",
                "reason",
                "recipient",
                "remote_host",
                "status",
                "time"
            ]
        );
        assert_eq!(e["recipient"], "bob@contoso.test");
        assert!(e["time"].as_str().unwrap_or_default().ends_with('Z'));
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.first(), Some(&"Receive"), "{kinds:?}");
    assert!(kinds.contains(&"Deliver"), "{kinds:?}");
    let receive = &events[0];
    assert!(
        receive["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{receive}"
    );
    // Events are in time order.
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["time"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    // Case of the recipient does not matter.
    let (status, again) = s.api(
        "GET",
        &format!("/api/v1/trace/{t}?recipient=BOB@contoso.test"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(again, Value::Array(events.clone()));

    // Without ?recipient=, both recipients' events.
    let (status, all) = s.api("GET", &format!("/api/v1/trace/{t}"), None);
    assert_eq!(status, 200);
    let all = all.as_array().expect("events").clone();
    for r in ["alice@contoso.test", "bob@contoso.test"] {
        let mine: Vec<&str> = all
            .iter()
            .filter(|e| e["recipient"] == r)
            .map(|e| e["event"].as_str().unwrap_or_default())
            .collect();
        assert!(
            mine.contains(&"Receive") && mine.contains(&"Deliver"),
            "{r}: {mine:?}"
        );
    }
    assert_eq!(all.len(), events.len() * 2);
    // A recipient the message did not have, an unknown trace id.
    let got = s.api(
        "GET",
        &format!("/api/v1/trace/{t}?recipient=carol@contoso.test"),
        None,
    );
    assert_error(&got, 404);
    let got = s.api("GET", "/api/v1/trace/00000000000000000000", None);
    assert_eq!(assert_error(&got, 404), "no trace for 00000000000000000000");
    assert_error(
        &s.api(
            "GET",
            &format!("/api/v1/trace/{t}?recipient=not%20valid"),
            None,
        ),
        400,
    );
}

/// Tenant ids are reused by SQLite once the highest one is deleted, and the trace rows of a
/// removed tenant stay behind keyed by that id: a tenant created afterwards must not see them.
#[test]
fn a_new_tenant_does_not_inherit_a_removed_tenants_trace() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("bob@fabrikam.test", &[]);
    let t = send(
        &s,
        "sender@example.net",
        &["bob@fabrikam.test"],
        &message("Secret", "<s1@example.net>"),
    );
    wait_delivered(&s, &t, 1);
    s.ok(&["tenant", "remove", "fabrikam"]);
    let (status, _) = s.api("POST", "/api/v1/tenants", Some(json!({"name": "newcorp"})));
    assert_eq!(status, 201);
    let newcorp = admin_token(&s, "newcorp");
    let (status, rows) = s.api_as(&newcorp, "GET", "/api/v1/trace", None);
    assert_eq!((status, &rows["rows"]), (200, &json!([])));
    let got = s.api_as(&newcorp, "GET", &format!("/api/v1/trace/{t}"), None);
    assert_error(&got, 404);
}

/// A password is checked before anything changes: a refused password creates no mailbox, and a
/// change refused for another reason (an alias already taken) leaves the password (and so the
/// user's sessions) as they were.
#[test]
fn a_refused_mailbox_change_leaves_the_password_alone() {
    let s = Server::start();
    s.tenant("contoso");
    let login = |password: &str| {
        s.api(
            "POST",
            "/api/v1/auth/login",
            Some(json!({ "address": "ann@contoso.test", "password": password })),
        )
        .0
    };
    let got = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({ "address": "ann@contoso.test", "password": "short" })),
    );
    assert_error(&got, 400);
    let (status, _) = s.api("GET", "/api/v1/mailboxes/ann@contoso.test", None);
    assert_eq!(status, 404, "a refused password created the mailbox");

    s.mailbox("bob@contoso.test", &[]);
    let (status, v) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({ "address": "ann@contoso.test", "password": "the first password" })),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(login("the first password"), 200);
    let got = s.api(
        "PATCH",
        "/api/v1/mailboxes/ann@contoso.test",
        Some(json!({ "password": "a second password", "aliases": ["bob@contoso.test"] })),
    );
    assert_error(&got, 409);
    assert_eq!(
        login("the first password"),
        200,
        "the password changed anyway"
    );
    assert_eq!(login("a second password"), 401);
}
