//! The OpenAPI 3.1 description of the admin API, served at `/api/v1/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, tag: &str) -> Value {
    json!({ "summary": summary, "tags": [tag], "responses": {
        "200": { "description": "OK" },
        "400": { "$ref": "#/components/responses/Error" },
        "401": { "$ref": "#/components/responses/Error" },
        "404": { "$ref": "#/components/responses/Error" }
    }})
}

fn with_body(mut v: Value, schema: &str) -> Value {
    v["requestBody"] = json!({ "required": true, "content": { "application/json": {
        "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    v
}

fn with_response(mut v: Value, schema: &str) -> Value {
    v["responses"]["200"]["content"] = json!({ "application/json": {
        "schema": { "$ref": format!("#/components/schemas/{schema}") } } });
    v
}

fn with_params(mut v: Value, params: &[(&str, &str)]) -> Value {
    v["parameters"] = params
        .iter()
        .map(|(name, place)| json!({ "name": name, "in": place, "required": *place == "path", "schema": { "type": "string" } }))
        .collect();
    v
}

pub async fn document() -> Json<Value> {
    let s = |t: &str| json!({ "type": t });
    let mailbox_props = {
        let mut m = serde_json::Map::new();
        for k in [
            "address",
            "tenant",
            "display_name",
            "department",
            "company",
            "office",
            "city",
            "state_or_province",
            "country_or_region",
            "title",
        ] {
            m.insert(k.into(), s("string"));
        }
        m.insert(
            "type".into(),
            json!({ "type": "string", "enum": ["user", "shared"] }),
        );
        m.insert(
            "aliases".into(),
            json!({ "type": "array", "items": { "type": "string" } }),
        );
        for i in 1..=15 {
            m.insert(format!("custom_attribute_{i}"), s("string"));
        }
        m.insert("quota_mb".into(), s("integer"));
        m.insert(
            "used_bytes".into(),
            json!({ "type": "integer", "readOnly": true }),
        );
        Value::Object(m)
    };
    let trace_params = [
        "tenant",
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
        "page",
        "page_size",
    ];
    let trace_params: Vec<(&str, &str)> = trace_params.iter().map(|p| (*p, "query")).collect();
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "hato admin API", "version": env!("CARGO_PKG_VERSION") },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/openapi.json": {
                "get": { "summary": "This OpenAPI document (no authentication)", "tags": ["meta"], "security": [],
                    "responses": { "200": { "description": "OK" } } }
            },
            "/api/v1/tenants": {
                "get": op("List tenants (a tenant admin sees its own)", "tenants"),
                "post": with_body(op("Create a tenant (operator)", "tenants"), "Tenant")
            },
            "/api/v1/tenants/{name}": {
                "get": with_params(op("Show a tenant", "tenants"), &[("name", "path")]),
                "delete": with_params(op("Remove a tenant and everything in it (operator)", "tenants"), &[("name", "path")])
            },
            "/api/v1/tenants/{name}/tokens": {
                "post": with_params(op("Create a tenant-admin token (operator)", "tenants"), &[("name", "path")])
            },
            "/api/v1/domains": {
                "get": with_params(op("List accepted domains", "domains"), &[("tenant", "query")]),
                "post": with_body(op("Add an accepted domain", "domains"), "Domain")
            },
            "/api/v1/domains/{domain}": {
                "get": with_params(op("Show an accepted domain", "domains"), &[("domain", "path")]),
                "delete": with_params(op("Remove an accepted domain", "domains"), &[("domain", "path")])
            },
            "/api/v1/mailboxes": {
                "get": with_params(op("List mailboxes", "mailboxes"), &[("tenant", "query")]),
                "post": with_body(op("Create a mailbox", "mailboxes"), "Mailbox")
            },
            "/api/v1/mailboxes/{address}": {
                "get": with_params(op("Show a mailbox", "mailboxes"), &[("address", "path")]),
                "patch": with_body(with_params(op("Change a mailbox", "mailboxes"), &[("address", "path")]), "Mailbox"),
                "delete": with_params(op("Remove a mailbox (409 when it is a group's last owner, unless ownership is transferred)", "mailboxes"), &[("address", "path"), ("transfer_ownership_to", "query")])
            },
            "/api/v1/mailboxes/{address}/messages": {
                "get": with_params(op("Messages in a mailbox, newest first", "mail"), &[("address", "path"), ("folder", "query")])
            },
            "/api/v1/mailboxes/{address}/messages/{id}/raw": {
                "get": with_params(op("The RFC 5322 message (message/rfc822)", "mail"), &[("address", "path"), ("id", "path")])
            },
            "/api/v1/trace": {
                "get": with_response(
                    with_params(op("Message trace: one page of rows, one row per recipient, newest first; \
                        page_size 1-5000 (default 1000), page 1-1000 (default 1), as Get-MessageTrace", "trace"), &trace_params),
                    "TracePage")
            },
            "/api/v1/trace/{trace_id}": {
                "get": with_params(op("Message trace detail: a recipient's events", "trace"), &[("trace_id", "path"), ("recipient", "query")])
            },
            "/api/v1/auth/login": { "post": op("Log in as a mailbox user (no token needed); 429 with Retry-After while locked", "users") },
            "/api/v1/groups": {
                "get": with_params(op("List groups", "groups"), &[("tenant", "query")]),
                "post": op("Create a group (distribution, security, mail-security, dynamic, m365)", "groups")
            },
            "/api/v1/groups/preview": { "post": op("Recipients a filter (OPATH or precanned) matches now", "groups") },
            "/api/v1/groups/{group}": {
                "get": with_params(op("Show a group", "groups"), &[("group", "path")]),
                "patch": with_params(op("Change a group's settings", "groups"), &[("group", "path")]),
                "delete": with_params(op("Remove a group", "groups"), &[("group", "path"), ("bypass_security_group_manager_check", "query")])
            },
            "/api/v1/groups/{group}/members": {
                "get": with_params(op("A group's members now", "groups"), &[("group", "path")]),
                "post": with_params(op("Add or remove members", "groups"), &[("group", "path")])
            },
            "/api/v1/groups/{group}/owners": { "post": with_params(op("Add or remove owners", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/subscribers": { "post": with_params(op("Add or remove subscribers (m365)", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/join": { "post": with_params(op("Join (a user)", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/leave": { "post": with_params(op("Leave (a user)", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/requests": { "get": with_params(op("Join and leave requests", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/requests/{id}/{decision}": { "post": with_params(op("Approve or reject a request", "groups"), &[("group", "path"), ("id", "path"), ("decision", "path")]) },
            "/api/v1/groups/{group}/roles": { "post": with_params(op("Make a security group a role group", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/conversations": { "get": with_params(op("Conversations of a group mailbox", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/conversations/{id}": { "get": with_params(op("Messages of a conversation", "groups"), &[("group", "path"), ("id", "path")]) },
            "/api/v1/groups/{group}/items/{id}/raw": { "get": with_params(op("A group mailbox message (message/rfc822)", "groups"), &[("group", "path"), ("id", "path")]) },
            "/api/v1/groups/{group}/calendar": { "get": with_params(op("The group calendar", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/files": { "get": with_params(op("The group's files", "groups"), &[("group", "path")]) },
            "/api/v1/groups/{group}/files/{item}/{index}": { "get": with_params(op("Download a file", "groups"), &[("group", "path"), ("item", "path"), ("index", "path")]) },
            "/api/v1/moderation": { "get": with_params(op("Messages held for moderation", "moderation"), &[("group", "query"), ("state", "query")]) },
            "/api/v1/moderation/{id}/{decision}": { "post": with_params(op("Approve or reject a held message", "moderation"), &[("id", "path"), ("decision", "path")]) },
            "/api/v1/contacts": { "get": op("List mail contacts", "contacts"), "post": op("Add a mail contact", "contacts") },
            "/api/v1/contacts/{address}": { "delete": with_params(op("Remove a mail contact", "contacts"), &[("address", "path")]) },
            "/api/v1/mailboxes/{address}/permissions": {
                "get": with_params(op("Rights on a mailbox", "mailboxes"), &[("address", "path")]),
                "post": with_params(op("Grant full-access or send-as", "mailboxes"), &[("address", "path")]),
                "delete": with_params(op("Revoke a right", "mailboxes"), &[("address", "path")])
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "Error", "content": { "application/json": {
                "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } } },
            "schemas": {
                "Tenant": { "type": "object", "required": ["name"], "properties": { "name": s("string") } },
                "Domain": { "type": "object", "required": ["domain"], "properties": {
                    "domain": s("string"), "tenant": s("string"),
                    "type": { "type": "string", "enum": ["authoritative", "internal-relay"] } } },
                "Mailbox": { "type": "object", "properties": mailbox_props },
                "TraceRow": { "type": "object", "properties": {
                    "received": s("string"), "sender": s("string"), "recipient": s("string"), "subject": s("string"),
                    "status": { "type": "string", "enum": ["Pending", "Delivered", "Failed", "Expanded", "Quarantined", "FilteredAsSpam"] },
                    "trace_id": s("string"), "message_id": s("string"), "from_ip": s("string"), "size": s("integer") } },
                "TracePage": { "type": "object", "required": ["rows", "page", "page_size", "more"], "properties": {
                    "rows": { "type": "array", "items": { "$ref": "#/components/schemas/TraceRow" } },
                    "page": s("integer"), "page_size": s("integer"),
                    "more": { "type": "boolean", "description": "whether a next page has rows" } } }
            }
        }
    }))
}
