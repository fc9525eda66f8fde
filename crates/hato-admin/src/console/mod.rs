//! The web console (issue 11): server-rendered HTML at `/` on the admin listener, beside the API
//! under `/api/v1/`. Every page calls the same service functions and authorization as the API
//! handler it maps to (`crate::routes::trace::run`, `crate::state::require_admin`, …), never the
//! API over HTTP and never a second copy of its rules.
//!
//! Layout: `session.rs` (sign-in, sessions, CSRF), `layout.rs` (the page frame and navigation),
//! `table.rs` (the one table: sort, filter, paging, CSV), `i18n.rs` (every string in English
//! and Japanese), `assets.rs` (the stylesheet and htmx, embedded), one module per page
//! (`home.rs`, `trace.rs`, `recipients.rs`, `groups.rs`, `mail_flow.rs`, `protection.rs`,
//! `quarantine.rs`). A new page is a module with its handlers, a
//! `layout::Nav` entry and its lines in `PATHS` and [`pages`].

mod assets;
mod flow_kit;
mod groups;
mod home;
pub mod i18n;
mod junk;
mod layout;
mod mail_flow;
mod people;
mod protection;
mod quarantine;
mod recipients;
mod session;
mod table;
mod throttled;
mod trace;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use i18n::{Lang, Text};

pub use session::SESSION_COOKIE;

/// How long console sessions last and how their cookie is set.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// A session unused this long ends (seconds).
    pub idle_secs: i64,
    /// A session ends this long after sign-in, used or not (seconds).
    pub max_secs: i64,
    /// Marks the cookie `Secure` (RFC 6265 §4.1.2.5): set this when a TLS proxy serves the
    /// console, so the browser never sends the session over plain HTTP. The admin listener itself
    /// speaks plain HTTP (on loopback by default), where a `Secure` cookie would not be stored.
    pub secure_cookies: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_secs: 30 * 60,
            max_secs: 12 * 3600,
            secure_cookies: false,
        }
    }
}

/// The console's paths (besides the API's); `routes::tests` checks the router serves these.
pub const PATHS: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/lang",
    "/assets/{name}",
    "/trace",
    "/trace.csv",
    "/trace/{trace_id}",
    "/trace/live",
    "/trace/saved",
    "/trace/saved/delete",
    "/recipients",
    "/recipients.csv",
    "/recipients/mailbox/{address}",
    "/recipients/contacts",
    "/recipients/contacts.csv",
    "/recipients/contacts/delete",
    "/groups",
    "/groups.csv",
    "/groups/g/{group}",
    "/groups/preview",
    "/groups/moderation",
    "/groups/moderation/{id}",
    "/mail-flow",
    "/mail-flow/rules",
    "/mail-flow/rules.csv",
    "/mail-flow/rule/{name}",
    "/mail-flow/rule-action",
    "/mail-flow/test",
    "/mail-flow/domains",
    "/mail-flow/domains.csv",
    "/mail-flow/connectors",
    "/mail-flow/connectors.csv",
    "/mail-flow/connectors/{direction}/{name}",
    "/mail-flow/queue",
    "/mail-flow/queue.csv",
    "/protection",
    "/protection/connection-filter",
    "/protection/connection-filter.csv",
    "/protection/blocklist",
    "/protection/blocklist.csv",
    "/protection/throttle",
    "/protection/throttle/release",
    "/protection/throttle.csv",
    "/protection/malware",
    "/protection/malware.csv",
    "/protection/malware/policies",
    "/protection/spam",
    "/protection/spam.csv",
    "/protection/connections",
    "/protection/connections.csv",
    "/quarantine",
    "/quarantine.csv",
    "/quarantine/{id}",
    "/quarantine/{id}/release",
    "/quarantine/{id}/release-all",
    "/quarantine/{id}/release-some",
    "/quarantine/{id}/request-release",
    "/quarantine/{id}/deny-release",
    "/quarantine/{id}/delete",
    "/quarantine/mail",
    "/quarantine/mail.csv",
    "/quarantine/mail/{id}",
    "/quarantine/mail/{id}/move",
    "/quarantine/{id}/allow-sender",
    "/quarantine/{id}/block-sender",
    "/junk-email",
    "/junk-email.csv",
];

/// The console's routes, each answer with the security headers.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang", get(session::set_language))
        .route("/assets/{name}", get(assets::serve))
        .route("/trace", get(trace::page))
        .route("/trace.csv", get(trace::csv))
        .route("/trace/{trace_id}", get(trace::detail))
        .route("/trace/live", get(trace::live))
        .route("/trace/saved", post(trace::save))
        .route("/trace/saved/delete", post(trace::delete_saved))
        .route("/mail-flow", get(mail_flow::rules_tab))
        .route("/mail-flow/rules", post(mail_flow::create_rule))
        .route("/mail-flow/rules.csv", get(mail_flow::rules_csv))
        .route(
            "/mail-flow/rule/{name}",
            get(mail_flow::rule_detail).post(mail_flow::edit_rule),
        )
        .route("/mail-flow/rule-action", post(mail_flow::rule_action))
        .route("/mail-flow/test", post(mail_flow::test_rules))
        .route(
            "/mail-flow/domains",
            get(mail_flow::domains_tab).post(mail_flow::domain_action),
        )
        .route("/mail-flow/domains.csv", get(mail_flow::domains_csv))
        .route(
            "/mail-flow/connectors",
            get(mail_flow::connectors_tab).post(mail_flow::create_connector),
        )
        .route("/mail-flow/connectors.csv", get(mail_flow::connectors_csv))
        .route(
            "/mail-flow/connectors/{direction}/{name}",
            get(mail_flow::connector_detail).post(mail_flow::connector_action),
        )
        .route(
            "/mail-flow/queue",
            get(mail_flow::queue_tab).post(mail_flow::queue_action),
        )
        .route("/mail-flow/queue.csv", get(mail_flow::queue_csv))
        .route("/protection", get(protection::filter_tab))
        .route(
            "/protection/connection-filter",
            post(protection::filter_change),
        )
        .route(
            "/protection/connection-filter.csv",
            get(protection::filter_csv),
        )
        .route(
            "/protection/blocklist",
            get(protection::blocklist_tab).post(protection::blocklist_change),
        )
        .route("/protection/blocklist.csv", get(protection::blocklist_csv))
        .route("/protection/throttle", get(protection::throttle_tab))
        .route("/protection/throttle.csv", get(throttled::csv))
        .route(
            "/protection/throttle/release",
            post(protection::throttle_release),
        )
        .route(
            "/protection/malware",
            get(protection::malware_tab).post(protection::malware_change),
        )
        .route("/protection/malware.csv", get(protection::malware_csv))
        .route(
            "/protection/malware/policies",
            post(protection::malware_policy_action),
        )
        .route(
            "/protection/spam",
            get(protection::spam_tab).post(protection::spam_change),
        )
        .route("/protection/spam.csv", get(protection::spam_csv))
        .route("/protection/connections", get(protection::connections_tab))
        .route(
            "/protection/connections.csv",
            get(protection::connections_csv),
        )
        .route(
            "/recipients",
            get(recipients::page).post(recipients::create),
        )
        .route("/recipients.csv", get(recipients::csv))
        .route(
            "/recipients/mailbox/{address}",
            get(recipients::mailbox).post(recipients::mailbox_post),
        )
        .route(
            "/recipients/contacts",
            get(recipients::contacts).post(recipients::contact_create),
        )
        .route("/recipients/contacts.csv", get(recipients::contacts_csv))
        .route(
            "/recipients/contacts/delete",
            post(recipients::contact_delete),
        )
        .route("/groups", get(groups::page).post(groups::create))
        .route("/groups.csv", get(groups::csv))
        .route(
            "/groups/g/{group}",
            get(groups::group).post(groups::group_post),
        )
        .route("/groups/preview", post(groups::preview))
        .route("/groups/moderation", get(groups::moderation_page))
        .route("/groups/moderation/{id}", post(groups::moderation_post))
        .route("/quarantine", get(quarantine::page))
        .route("/quarantine.csv", get(quarantine::csv))
        .route("/quarantine/{id}", get(quarantine::detail))
        .route("/quarantine/{id}/release", post(quarantine::release))
        .route(
            "/quarantine/{id}/release-all",
            post(quarantine::release_all),
        )
        .route(
            "/quarantine/{id}/release-some",
            post(quarantine::release_some),
        )
        .route(
            "/quarantine/{id}/request-release",
            post(quarantine::request_release),
        )
        .route(
            "/quarantine/{id}/deny-release",
            post(quarantine::deny_release),
        )
        .route("/quarantine/{id}/delete", post(quarantine::delete))
        .route("/quarantine/mail", get(quarantine::mail))
        .route("/quarantine/mail.csv", get(quarantine::mail_csv))
        .route("/quarantine/mail/{id}", get(quarantine::mail_item))
        .route("/quarantine/mail/{id}/move", post(quarantine::move_message))
        .route("/quarantine/{id}/allow-sender", post(junk::allow_sender))
        .route("/quarantine/{id}/block-sender", post(junk::block_sender))
        .route("/junk-email", get(junk::page).post(junk::change))
        .route("/junk-email.csv", get(junk::csv))
        .layer(axum::middleware::map_response(security_headers))
}

/// The Content-Security-Policy of every console answer: scripts and styles only from this
/// origin's files (no inline script or style anywhere, so an injected `<script>` or `style=`
/// does nothing), no framing (clickjacking), forms post only here, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        // Older browsers' clickjacking protection (RFC 7034), beside frame-ancestors.
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Pages show a person's data: never kept by a shared cache or the back button after sign-out.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The value of the cookie `name` in the request (RFC 6265 §5.4: `name=value` pairs split by
/// `; `). The first one wins.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A local path to go to after sign-in or a language switch: only `/…` within this origin, never
/// `//host` or `/\host` (which browsers read as another origin), nor anything with control
/// characters; `/` otherwise.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// `303 See Other` to `to` (after a form: the browser follows with a GET).
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Percent-encodes a query value (RFC 3986 §2.3: everything but the unreserved characters).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string from pairs, empty values left out.
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The title an error status shows.
fn error_title(status: StatusCode) -> Text {
    match status {
        StatusCode::FORBIDDEN => i18n::FORBIDDEN,
        StatusCode::NOT_FOUND => i18n::NOT_FOUND,
        s if s.is_client_error() => i18n::BAD_REQUEST,
        _ => i18n::ERROR,
    }
}

/// An error from the service layer as a console page: the API's status and its one line (the
/// same words the API answers), inside the layout when someone is signed in.
pub(crate) fn error_page(ctx: Option<&session::Ctx>, lang: Lang, e: ApiError) -> Response {
    let title = error_title(e.status).get(lang);
    let body = maud::html! { p.error { (e.message) } };
    let html = match ctx {
        Some(ctx) => layout::page(ctx, None, title, body),
        None => layout::bare(lang, title, body),
    };
    (e.status, html).into_response()
}
