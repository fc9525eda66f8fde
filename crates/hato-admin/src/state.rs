//! What every route shares: the application state and its blocking pool (`AppState::blocking`),
//! the caller (the `Principal` extractor), path parameters (`Path`), role checks, tenant scope
//! and request bodies. Imports no route module.

use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use hato_core::Address;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{Mailbox, Tenant, TenantId};
use hato_store::{Store, hash_token};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub directory: Arc<hato_directory::Directory>,
    pub clock: Arc<dyn hato_core::Clock>,
    /// Login lockouts and the bound on concurrent password hashes.
    pub login: Arc<crate::login_limit::LoginLimiter>,
    /// The server's host name (for the messages the API writes, e.g. join requests).
    pub hostname: String,
    /// IP throttling: its status, releases, and the exemption lists it holds in memory.
    pub throttle: Arc<hato_protection::throttle::Throttle>,
    /// The provider's block list: the edge's snapshot, reloaded after each change, and the
    /// delist page's request limits.
    pub block_list: Arc<crate::block_list::BlockListService>,
    /// DNS, for domain verification (and outbound connector validation).
    pub resolver: Arc<dyn hato_core::dns::Resolver>,
    /// The outbound agent's settings (MX port, pool, timeouts), for `validate`; `None`: the
    /// defaults.
    pub outbound: Option<Arc<hato_transport::outbound::OutboundSettings>>,
    /// The web console's session lifetimes and cookie settings.
    pub console: crate::console::ConsoleSettings,
    /// The test clock (`[testing] manual_clock`), which the operator moves; `None`: the server
    /// runs on the system clock and `/api/v1/testing/clock` answers 404.
    pub test_clock: Option<Arc<crate::TestClock>>,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl AppState {
    /// Runs `f` on tokio's blocking pool and answers what it returns. Store reads and directory
    /// index builds are synchronous (a rebuild takes ~200 ms for 100,000 recipients): on one of
    /// tokio's few workers they would hold up every other request that worker serves, so every
    /// handler does its reads in here. Writes are handed to the store's writer and awaited
    /// outside (`Pending`). A closure that panics answers 500.
    pub(crate) async fn blocking<R, F>(&self, f: F) -> ApiResult<R>
    where
        F: FnOnce(&AppState) -> ApiResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let state = self.clone();
        match tokio::task::spawn_blocking(move || f(&state)).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!("a request's store work did not finish: {e}");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request failed inside the server",
                ))
            }
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // The scheme is case-insensitive (RFC 9110 §11.1).
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let hash = hash_token(token);
        state
            .blocking(move |state| {
                let Some(info) = state.store.token(&hash)? else {
                    return Err(ApiError::unauthorized());
                };
                if info.expires.is_some_and(|e| e <= state.clock.now()) {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "the token has expired; log in again",
                    ));
                }
                acting_principal(
                    state,
                    Principal {
                        role: info.role,
                        tenant_id: info.tenant_id,
                        mailbox_id: info.mailbox_id,
                    },
                )
            })
            .await
    }
}

/// The caller as they act now: a user who belongs to a role group acts with that role (seed A2:
/// rights follow membership, so a transfer is one membership change). The API's bearer tokens
/// and the console's sessions both go through here, so both authorize alike.
pub(crate) fn acting_principal(state: &AppState, mut p: Principal) -> ApiResult<Principal> {
    if let (Role::User, Some(tenant)) = (p.role, p.tenant_id) {
        let ix = state.directory.index(tenant)?;
        p.role = hato_directory::policy::effective_role(&p, &ix);
    }
    Ok(p)
}

/// The client's IP, from the connection (`hato serve` serves with connect info). Without it (a
/// router used in-process) every caller counts as one unspecified client. Never from a header
/// (`X-Forwarded-For`): any client could write one, and limits counted by it would count nothing.
pub(crate) struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// The parameters of a request's path, as axum's `Path` takes them, but a segment that does not
/// parse (`/moderation/abc/approve`) answers the API's `{"error": "..."}` naming the parameter,
/// not axum's plain-text rejection.
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => {
                // A tuple's errors name the parameter by its place; the route's names are in
                // the raw parameters, in the same order.
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(k, _)| k.to_string()).collect())
                    .unwrap_or_default();
                Err(path_error(rejection, &names))
            }
        }
    }
}

/// The API's error for a path that did not deserialize: a parameter that does not parse is the
/// client's (400, naming it and what it must be); a handler asking for parameters its route does
/// not have is the server's (500), as axum has it.
fn path_error(rejection: PathRejection, names: &[String]) -> ApiError {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        tracing::error!("path parameters: {rejection}");
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, rejection.body_text());
    };
    if e.status().is_server_error() {
        tracing::error!("path parameters: {}", e.body_text());
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.body_text());
    }
    let what = |expected: &str| match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_string(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number from 0".to_string(),
        other => format!("a {other}"),
    };
    let name_at = |index: usize| {
        names
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("#{index}"))
    };
    let message = match e.into_kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => format!("{key}: {value:?} is not {}", what(expected_type)),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => format!(
            "{}: {value:?} is not {}",
            name_at(index),
            what(expected_type)
        ),
        // A path of one parameter.
        ErrorKind::ParseError {
            value,
            expected_type,
        } => format!("{}: {value:?} is not {}", name_at(0), what(expected_type)),
        ErrorKind::InvalidUtf8InPathParam { key } => format!("{key}: not UTF-8 once decoded"),
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => format!("{key}: {value:?}: {message}"),
        other => other.to_string(),
    };
    ApiError::bad_request(format!("path parameter {message}"))
}

/// Installs the provider's block list as the store now has it, after a change (the API's, the
/// delist page's). The change is committed whatever happens here; should the read fail, the
/// next maintenance round (`BlockListService::run_maintenance`, within a minute) installs it.
pub(crate) async fn reload_block_list(s: &AppState) {
    let now = s.clock.now();
    let result = s
        .blocking(move |s| Ok(s.block_list.reload(&*s.store, now)?))
        .await;
    if let Err(e) = result {
        tracing::error!(
            "block list: the edge's copy was not reloaded: {}",
            e.message
        );
    }
}

pub(crate) fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs an admin role (global or recipient admin)",
        ))
    }
}

pub(crate) fn require_global_admin(p: &Principal) -> ApiResult<()> {
    if p.is_global_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this needs the global admin role"))
    }
}

pub(crate) fn require_operator(p: &Principal) -> ApiResult<()> {
    if p.role == Role::Operator {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the platform operator may do this",
        ))
    }
}

/// The tenant named in a request, if the caller may see it; 404 otherwise.
pub(crate) fn visible_tenant(state: &AppState, p: &Principal, name: &str) -> ApiResult<Tenant> {
    match state.store.tenant_by_name(name)? {
        Some(t) if p.sees(t.id) => Ok(t),
        _ => Err(ApiError::not_found(format!("tenant {name} not found"))),
    }
}

/// Which tenant a listing covers: `?tenant=` if given (and visible), else the caller's own
/// (all tenants for the operator).
pub(crate) fn listing_scope(
    state: &AppState,
    p: &Principal,
    tenant: Option<&str>,
) -> ApiResult<Option<TenantId>> {
    match tenant {
        Some(name) => Ok(Some(visible_tenant(state, p, name)?.id)),
        None => Ok(match p.role {
            Role::Operator => None,
            _ => p.tenant_id,
        }),
    }
}

pub(crate) fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload
        .map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `?tenant=`: a listing of one tenant rather than the caller's own (all tenants for the operator).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantFilter {
    /// The tenant's name (the operator sees any, others only their own).
    pub(crate) tenant: Option<String>,
}

/// The tenant a request about one tenant's policy is about: the named one (if the caller sees
/// it), else a tenant admin's own; the operator must name one.
pub(crate) fn requested_tenant(
    s: &AppState,
    p: &Principal,
    named: Option<&str>,
) -> ApiResult<Tenant> {
    if let Some(name) = named.map(str::trim).filter(|n| !n.is_empty()) {
        return visible_tenant(s, p, name);
    }
    let id = target_tenant(s, p, None)?;
    s.store
        .tenants()?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("tenant not found"))
}

/// The tenant a new object goes to: the named one (if visible), else a tenant admin's own.
pub(crate) fn target_tenant(
    s: &AppState,
    p: &Principal,
    named: Option<&str>,
) -> ApiResult<TenantId> {
    match (named, p.role, p.tenant_id) {
        (Some(name), _, _) => Ok(visible_tenant(s, p, name)?.id),
        (None, role, Some(id)) if role != Role::Operator => Ok(id),
        _ => Err(ApiError::bad_request("name the tenant (\"tenant\")")),
    }
}

/// The mailbox at `address` (primary or alias), if the caller may see it.
pub(crate) fn visible_mailbox(s: &AppState, p: &Principal, address: &str) -> ApiResult<Mailbox> {
    let not_found = || ApiError::not_found(format!("mailbox {address} not found"));
    let addr = Address::parse(address).map_err(|_| not_found())?;
    match s.store.mailbox_by_address(&addr.to_string())? {
        Some(m) if p.sees(m.tenant_id) => Ok(m),
        _ => Err(not_found()),
    }
}

/// The throttle's view of the stored exemption lists (entries added as such and enabled
/// on-premises inbound connectors' IPs), again: after a change of either, so it takes effect
/// at once.
pub(crate) fn reload_throttle_exemptions(s: &AppState) -> ApiResult<()> {
    let rows = s.store.throttle_exemptions(None)?;
    let skipped = s
        .throttle
        .set_exemption_texts(rows.into_iter().map(|r| (r.tenant, r.network)));
    if skipped > 0 {
        tracing::warn!("{skipped} stored throttle exemption(s) do not parse; ignored");
    }
    Ok(())
}
