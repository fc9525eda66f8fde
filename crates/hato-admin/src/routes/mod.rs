//! The admin API's routes: one module per resource, each with its own `routes()`, merged here.
//! Shared lookups live in `common.rs`, the state and the caller in `crate::state`; route modules
//! import only those, never each other. A new resource gets `routes/<resource>.rs` and a line
//! below.
//!
//! Every handler is documented (`#[utoipa::path]`) and routed by `utoipa_axum::routes!`, which
//! takes the method and path from that documentation: [`api`] is both the router and the OpenAPI
//! document, and the tests below check that the router serves exactly what the document lists.
//! The only other routes are HTML pages for people without a token (the delist page, the
//! quarantine release page), outside `/api/v1/`, listed in `delist::PATHS` and
//! `quarantine_release::PATHS`; the tests check that the router serves those and no more.

pub(crate) mod blocklist;
pub(crate) mod common;
pub(crate) mod connection_filter;
pub(crate) mod connections;
pub(crate) mod connectors;
pub(crate) mod contacts;
mod delist;
mod dkim;
pub(crate) mod domains;
mod group_content;
pub(crate) mod group_members;
pub(crate) mod groups;
pub(crate) mod joining;
pub(crate) mod junk_email;
pub(crate) mod login;
pub(crate) mod mail;
pub(crate) mod mailboxes;
pub(crate) mod malware_filter;
pub(crate) mod moderation;
mod organization_config;
pub(crate) mod outbound_connectors;
pub(crate) mod outbound_spam;
pub(crate) mod permissions;
pub(crate) mod quarantine;
pub(crate) mod quarantine_policies;
mod quarantine_release;
pub(crate) mod queue;
mod reports;
mod roles;
pub(crate) mod rules;
pub(crate) mod spam_filter;
mod tenants;
mod testing;
pub(crate) mod throttle;
pub(crate) mod trace;
mod warmup;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::http::StatusCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its documentation. Route modules add theirs only with
/// `.routes(routes!(handler, ...))` (handlers of one path per `routes!`), never with `.route()`,
/// which would serve a path the document does not have.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(crate::openapi::document))
        .merge(tenants::routes())
        .merge(domains::routes())
        .merge(mailboxes::routes())
        .merge(mail::routes())
        .merge(junk_email::routes())
        .merge(trace::routes())
        .merge(queue::routes())
        .merge(login::routes())
        .merge(groups::routes())
        .merge(group_members::routes())
        .merge(joining::routes())
        .merge(roles::routes())
        .merge(group_content::routes())
        .merge(moderation::routes())
        .merge(contacts::routes())
        .merge(permissions::routes())
        .merge(throttle::routes())
        .merge(connection_filter::routes())
        .merge(connections::routes())
        .merge(blocklist::routes())
        .merge(rules::routes())
        .merge(quarantine::routes())
        .merge(quarantine_policies::routes())
        .merge(malware_filter::routes())
        .merge(spam_filter::routes())
        .merge(connectors::routes())
        .merge(outbound_connectors::routes())
        .merge(organization_config::routes())
        .merge(outbound_spam::routes())
        .merge(dkim::routes())
        .merge(reports::routes())
        .merge(warmup::routes())
        .merge(testing::routes())
}

/// The API's routes and the pages', before the fallbacks and the state.
fn routes() -> Router<AppState> {
    let (api, _) = api().split_for_parts();
    api.merge(delist::pages())
        .merge(quarantine_release::pages())
        .merge(crate::console::pages())
}

/// The answers to a path no route has and to a method a route does not take.
const NO_SUCH_ENDPOINT: &str = "no such API endpoint";
const METHOD_NOT_ALLOWED: &str = "this method is not allowed on this endpoint";

pub fn router(state: AppState) -> Router {
    routes()
        .fallback(|| async { ApiError::not_found(NO_SUCH_ENDPOINT) })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED)
        })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use hato_core::{Clock, SystemClock};
    use hato_store::{SqliteStore, Store};
    use serde_json::{Value, json};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The methods probed; HEAD (answered for every GET) and OPTIONS are axum's, not the API's.
    const METHODS: [Method; 5] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    fn document() -> Value {
        serde_json::to_value(api().into_openapi()).expect("the document as JSON")
    }

    /// The document's paths, each with its methods (upper case).
    fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .expect("a path item")
                    .keys()
                    .map(|k| k.to_ascii_uppercase())
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    /// The paths a router has routes for. axum lists them nowhere but in its `Debug` output
    /// (`Router { path_router: … Node { paths: {RouteId(1): "/api/v1/…", …} }, fallback_router:
    /// …`); should that change, this finds other paths or none, and the comparison below fails
    /// rather than passes.
    fn routed_paths(routes: &Router<AppState>) -> BTreeSet<String> {
        let text = format!("{routes:?}");
        let (path_router, _) = text
            .split_once(", fallback_router:")
            .expect("axum's Debug output of a Router has changed");
        path_router
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| s.starts_with('/') && !s.contains("__private__axum"))
            .map(str::to_string)
            .collect()
    }

    /// A request path for a documented one: numbers where ids go, a word elsewhere.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|seg| match seg {
                "{id}" | "{item}" | "{index}" => "1",
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn state(dir: &std::path::Path) -> AppState {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).expect("store"));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        AppState {
            directory: Arc::new(hato_directory::Directory::new(store.clone())),
            store,
            login: Arc::new(crate::LoginLimiter::new(
                crate::LoginLimits::default(),
                clock.clone(),
            )),
            block_list: Arc::new(crate::BlockListService::new(
                "http://127.0.0.1:8025/delist",
                crate::DelistLimits::default(),
                clock.clone(),
            )),
            clock,
            hostname: "mx.hato.test".into(),
            throttle: Arc::new(hato_protection::throttle::Throttle::new(Default::default())),
            // Nothing listens there: these tests make no lookups, and none may leave loopback.
            resolver: Arc::new(
                hato_dns::HickoryResolver::new(&hato_dns::DnsSettings {
                    servers: vec!["127.0.0.1:9".into()],
                    ..Default::default()
                })
                .expect("resolver"),
            ),
            outbound: None,
            console: Default::default(),
            test_clock: None,
        }
    }

    #[test]
    fn the_router_has_a_route_for_every_documented_path_and_no_other() {
        let (routes, doc) = api().split_for_parts();
        let documented: BTreeSet<String> = doc.paths.paths.keys().cloned().collect();
        assert!(documented.len() > 30, "{documented:?}");
        assert_eq!(routed_paths(&routes), documented);
    }

    /// The router the server runs serves the documented API and the listed pages, nothing
    /// else: a page is never under `/api/` (where everything is documented), and a route added
    /// beside the API without being listed here fails this test.
    #[test]
    fn besides_the_api_the_router_serves_only_the_listed_pages_outside_the_api() {
        let doc = document();
        let documented: BTreeSet<String> = documented(&doc).into_keys().collect();
        let pages: BTreeSet<String> = delist::PATHS
            .iter()
            .chain(quarantine_release::PATHS.iter())
            .chain(crate::console::PATHS.iter())
            .map(|p| p.to_string())
            .collect();
        for page in &pages {
            assert!(!page.starts_with("/api/"), "{page} is under /api/");
            assert!(!documented.contains(page), "{page}");
        }
        let all: BTreeSet<String> = documented.union(&pages).cloned().collect();
        assert_eq!(routed_paths(&routes()), all);
    }

    /// Every documented method of every path reaches a handler, and every other method gets the
    /// 405 fallback: nothing served is missing from the document, nothing documented is missing
    /// from the router.
    #[tokio::test]
    async fn every_documented_method_is_served_and_no_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = router(state(dir.path()));
        for (path, methods) in documented(&document()) {
            let uri = concrete(&path);
            for method in METHODS {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&uri)
                    .body(Body::empty())
                    .expect("request");
                let answer = app.clone().oneshot(request).await.expect("answer");
                let status = answer.status();
                let body = axum::body::to_bytes(answer.into_body(), 1 << 24)
                    .await
                    .expect("body");
                let error = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string));
                let fallback = match status {
                    StatusCode::METHOD_NOT_ALLOWED => error.as_deref() == Some(METHOD_NOT_ALLOWED),
                    StatusCode::NOT_FOUND => error.as_deref() == Some(NO_SUCH_ENDPOINT),
                    _ => false,
                };
                assert_eq!(
                    !fallback,
                    methods.contains(method.as_str()),
                    "{method} {uri} (documented: {methods:?}) answered {status} {error:?}"
                );
            }
        }
    }

    /// A path segment where a number goes that is not one answers the API's JSON error, naming
    /// the parameter, for every such route (documented with an integer path parameter).
    /// The router over a new store whose operator's token is `operator`.
    async fn operator_app(dir: &std::path::Path) -> Router {
        let state = state(dir);
        let operator = hato_store::TokenInfo {
            role: hato_core::auth::Role::Operator,
            tenant_id: None,
            mailbox_id: None,
            expires: None,
        };
        state
            .store
            .add_token(&hato_store::hash_token("operator"), operator)
            .await
            .expect("token");
        router(state)
    }

    /// A request as the operator: the status, the content type and the body.
    async fn ask(
        app: &Router,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", "Bearer operator")
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let answer = app.clone().oneshot(request).await.expect("answer");
        let status = answer.status();
        let kind = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_malformed_id_in_a_path_answers_json_naming_the_parameter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = operator_app(dir.path()).await;
        for (method, uri, name, value) in [
            (Method::POST, "/api/v1/moderation/abc/approve", "id", "abc"),
            (
                Method::POST,
                "/api/v1/groups/g/requests/x/approve",
                "id",
                "x",
            ),
            (Method::GET, "/api/v1/groups/g/items/x/raw", "id", "x"),
            (
                Method::GET,
                "/api/v1/groups/g/conversations/1.5",
                "id",
                "1.5",
            ),
            (Method::GET, "/api/v1/groups/g/files/one/0", "item", "one"),
            (Method::GET, "/api/v1/groups/g/files/1/-1", "index", "-1"),
            (
                Method::GET,
                "/api/v1/mailboxes/a@b.test/messages/x/raw",
                "id",
                "x",
            ),
            (
                Method::POST,
                "/api/v1/mailboxes/a@b.test/messages/x/move",
                "id",
                "x",
            ),
            (Method::GET, "/api/v1/quarantine/x", "id", "x"),
            (Method::DELETE, "/api/v1/quarantine/x", "id", "x"),
            (Method::GET, "/api/v1/quarantine/x/preview", "id", "x"),
            (Method::POST, "/api/v1/quarantine/x/release", "id", "x"),
            (Method::POST, "/api/v1/quarantine/x/release-all", "id", "x"),
            (
                Method::POST,
                "/api/v1/quarantine/x/request-release",
                "id",
                "x",
            ),
            (Method::POST, "/api/v1/quarantine/x/deny-release", "id", "x"),
            (
                Method::POST,
                "/api/v1/blocklist/requests/x/approve",
                "id",
                "x",
            ),
            (
                Method::POST,
                "/api/v1/blocklist/requests/1.5/deny",
                "id",
                "1.5",
            ),
            (Method::POST, "/api/v1/quarantine/x/allow-sender", "id", "x"),
            (Method::POST, "/api/v1/quarantine/x/block-sender", "id", "x"),
        ] {
            let (status, kind, body) = ask(&app, method.clone(), uri, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
            assert_eq!(kind, "application/json", "{method} {uri}: {body}");
            let error: Value = serde_json::from_str(&body).expect("JSON");
            let text = error["error"].as_str().expect("an error text");
            assert!(
                text.starts_with(&format!(
                    "path parameter {name}: \"{value}\" is not a whole number"
                )),
                "{method} {uri}: {text}"
            );
        }
        // Every documented integer path parameter is among those tried.
        let mut integers = BTreeSet::new();
        for (path, item) in document()["paths"].as_object().expect("paths") {
            for op in item.as_object().expect("path item").values() {
                for p in op["parameters"].as_array().cloned().unwrap_or_default() {
                    if p["in"] == "path" && p["schema"]["type"] == "integer" {
                        integers.insert(format!("{path} {}", p["name"].as_str().unwrap_or("")));
                    }
                }
            }
        }
        assert_eq!(
            integers,
            BTreeSet::from(
                [
                    "/api/v1/blocklist/requests/{id}/approve id",
                    "/api/v1/blocklist/requests/{id}/deny id",
                    "/api/v1/groups/{group}/conversations/{id} id",
                    "/api/v1/groups/{group}/files/{item}/{index} index",
                    "/api/v1/groups/{group}/files/{item}/{index} item",
                    "/api/v1/groups/{group}/items/{id}/raw id",
                    "/api/v1/groups/{group}/requests/{id}/{decision} id",
                    "/api/v1/mailboxes/{address}/messages/{id}/move id",
                    "/api/v1/mailboxes/{address}/messages/{id}/raw id",
                    "/api/v1/moderation/{id}/{decision} id",
                    "/api/v1/quarantine/{id} id",
                    "/api/v1/quarantine/{id}/preview id",
                    "/api/v1/quarantine/{id}/release id",
                    "/api/v1/quarantine/{id}/release-all id",
                    "/api/v1/quarantine/{id}/request-release id",
                    "/api/v1/quarantine/{id}/deny-release id",
                    "/api/v1/quarantine/{id}/allow-sender id",
                    "/api/v1/quarantine/{id}/block-sender id",
                ]
                .map(String::from)
            )
        );
    }

    /// A moderator's comment is at most 1,000 characters (not bytes): one more is refused
    /// before anything is looked up; 1,000 pass on (to find no such held message).
    #[tokio::test]
    async fn a_moderation_comment_over_1000_characters_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = operator_app(dir.path()).await;
        let uri = "/api/v1/moderation/1/reject";
        let (status, _, body) = ask(
            &app,
            Method::POST,
            uri,
            Some(json!({ "comment": "é".repeat(1001) })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("comment: at most 1000 characters"), "{body}");
        let (status, _, body) = ask(
            &app,
            Method::POST,
            uri,
            Some(json!({ "comment": "é".repeat(1000) })),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("held message 1 not found"), "{body}");
    }

    /// Every `$ref` in `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_operation_is_described_with_its_parameters_errors_and_security() {
        let doc = document();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        assert_eq!(doc["info"]["title"], "hato admin API");
        assert_eq!(doc["security"], json!([{ "bearer": [] }]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"],
            json!({ "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"] })
        );
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} is not a schema"));
            assert!(schemas.contains_key(name), "{r} does not resolve");
        }
        let error_body = json!({ "$ref": "#/components/schemas/ErrorBody" });
        assert_eq!(
            schemas["ErrorBody"]["required"],
            json!(["error"]),
            "{}",
            schemas["ErrorBody"]
        );
        let anonymous = ["/api/v1/auth/login", "/api/v1/openapi.json"];
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let what = format!("{method} {path}");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{what}: no summary"
                );
                assert!(
                    op["tags"].as_array().is_some_and(|t| t.len() == 1),
                    "{what}: tags"
                );
                // The parameters in the path are exactly those the template names.
                let in_template: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let in_path: BTreeSet<&str> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(in_path, in_template, "{what}: path parameters");
                for p in &params {
                    assert!(
                        p["in"] == "path" || p["in"] == "query",
                        "{what}: {p} is neither in the path nor in the query"
                    );
                }
                // A success and its errors, each error with the {"error": "..."} body and
                // nothing else (a malformed id in the path too).
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{what}: no success"
                );
                for (status, r) in responses {
                    if status.starts_with('2') {
                        continue;
                    }
                    let content = r["content"].as_object().expect("error content");
                    for (kind, body) in content {
                        match kind.as_str() {
                            "application/json" => {
                                assert_eq!(body["schema"], error_body, "{what}: {status}")
                            }
                            other => panic!("{what}: {status} as {other}"),
                        }
                    }
                    assert!(!content.is_empty(), "{what}: {status} without a body");
                }
                // Every operation needs the bearer token (the document's `security`) but the
                // login and this document, which say so with an empty list.
                if anonymous.contains(&path.as_str()) {
                    assert_eq!(op["security"], json!([]), "{what}");
                } else {
                    assert!(op.get("security").is_none(), "{what}: {}", op["security"]);
                    assert!(responses.contains_key("401"), "{what}: no 401");
                }
            }
        }
    }
}
