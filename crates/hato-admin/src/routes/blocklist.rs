//! The provider's block list (the platform operator's, like Microsoft's blocked senders list;
//! seed C1-C3): entries added, listed and removed by the operator only (403 for anyone else), and
//! the record of requests made on the delist page. Every change reloads the edge's snapshot.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, reload_block_list, require_operator};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Timestamp;
use hato_core::auth::Principal;
use hato_protection::IpNetwork;
use hato_protection::provider_block_list::parse_expiry;
use hato_store::{BlockEntry, DelistRequest, NewBlockEntry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries, add_entry))
        .routes(routes!(remove_entry))
        .routes(routes!(list_requests))
}

/// The longest reason kept (it goes into the connection log with every refusal).
const MAX_REASON_CHARS: usize = 500;
/// Who adds and removes entries through the API: only the operator's token may.
const OPERATOR: &str = "operator";

/// A new entry.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockListEntryInput {
    /// One IPv4 or IPv6 address (`192.0.2.7`, `2001:db8::7`) or a network in CIDR form
    /// (`192.0.2.0/24`, at most a /8; `2001:db8::/32`, at most a /16).
    entry: String,
    /// Why it is listed, for the operator and the connection log (never shown to the client);
    /// at most 500 characters, no control characters.
    reason: String,
    /// How long it stays listed: `7d`, `12h` or `30m` (at most 3650 days). Default: until
    /// removed.
    expires_in: Option<String>,
}

/// An entry of the provider's block list.
#[derive(Serialize, ToSchema)]
pub(crate) struct BlockListEntry {
    /// The address or network, in canonical form (a single address without a prefix).
    entry: String,
    reason: String,
    /// Who added it (`operator`).
    added_by: String,
    /// RFC 3339, UTC.
    added: String,
    /// When it stops matching (RFC 3339, UTC); null: never.
    expires: Option<String>,
}

impl From<BlockEntry> for BlockListEntry {
    fn from(e: BlockEntry) -> Self {
        BlockListEntry {
            entry: e.entry,
            reason: e.reason,
            added_by: e.added_by,
            added: e.added.to_rfc3339(),
            expires: e.expires.map(Timestamp::to_rfc3339),
        }
    }
}

/// A request made on the delist page.
#[derive(Serialize, ToSchema)]
#[schema(as = DelistRequest)]
pub(crate) struct DelistRecord {
    id: i64,
    /// When it was made (RFC 3339, UTC).
    requested: String,
    /// The IP asked to be removed.
    ip: String,
    /// Where the answer was mailed.
    address: String,
    /// Who asked: the web client's IP.
    client_ip: String,
    /// `not_listed` (nothing mailed), `listed_in_range` (a network entry: the mail said to
    /// write to the postmaster), `confirmation_sent`, `removed` (the link was followed),
    /// `no_longer_listed` (the link was followed after the entry had gone).
    outcome: String,
    /// The entry that listed the IP when asked.
    entry: Option<String>,
    /// Until when the link worked (RFC 3339, UTC), when one was mailed.
    link_expires: Option<String>,
    /// When the link was followed (RFC 3339, UTC).
    confirmed: Option<String>,
}

impl From<DelistRequest> for DelistRecord {
    fn from(r: DelistRequest) -> Self {
        DelistRecord {
            id: r.id,
            requested: r.requested.to_rfc3339(),
            ip: r.ip,
            address: r.address,
            client_ip: r.client_ip,
            outcome: r.outcome.as_str().to_string(),
            entry: r.entry,
            link_expires: r.token_expires.map(Timestamp::to_rfc3339),
            confirmed: r.confirmed.map(Timestamp::to_rfc3339),
        }
    }
}

/// An entry as given, parsed strictly; a 400 naming the entry and the rule otherwise.
fn parse_entry(text: &str) -> ApiResult<IpNetwork> {
    IpNetwork::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Add an entry to the provider's block list (operator).
#[utoipa::path(
    post,
    path = "/api/v1/blocklist",
    tag = "block list",
    request_body = BlockListEntryInput,
    responses(
        (status = 201, description = "The new entry, in force at once", body = BlockListEntry),
        (status = 400, description = "Not an address or network (the entry and the rule are named), a bad reason or expiry, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 409, description = "The entry is listed already", body = ErrorBody),
    )
)]
pub(crate) async fn add_entry(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<BlockListEntryInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_operator(&p)?;
    let input = body(payload)?;
    let network = parse_entry(&input.entry)?;
    let reason = input.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request("reason: say why the entry is listed"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!(
            "reason: at most {MAX_REASON_CHARS} characters"
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "reason: no control characters (one line of text)",
        ));
    }
    let now = s.clock.now();
    let expires = match input.expires_in.as_deref() {
        None => None,
        Some(text) => Some(now.plus_seconds(
            parse_expiry(text).map_err(|e| ApiError::bad_request(format!("expires_in: {e}")))?,
        )),
    };
    let entry = s
        .store
        .add_block(NewBlockEntry {
            entry: network.to_string(),
            reason: reason.to_string(),
            added_by: OPERATOR.into(),
            added: now,
            expires,
        })
        .await?;
    tracing::info!(
        "block list: {} added {} ({}), until {}",
        entry.added_by,
        entry.entry,
        entry.reason,
        entry
            .expires
            .map_or_else(|| "removed".to_string(), Timestamp::to_rfc3339)
    );
    reload_block_list(&s).await;
    Ok((StatusCode::CREATED, Json(BlockListEntry::from(entry))).into_response())
}

/// The provider's block list: the entries in force, oldest first (operator).
#[utoipa::path(
    get,
    path = "/api/v1/blocklist",
    tag = "block list",
    responses(
        (status = 200, description = "The entries in force", body = [BlockListEntry]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
    )
)]
pub(crate) async fn list_entries(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<BlockListEntry>>> {
    require_operator(&p)?;
    s.blocking(|s| {
        let entries = s.store.block_entries(s.clock.now())?;
        Ok(Json(
            entries.into_iter().map(BlockListEntry::from).collect(),
        ))
    })
    .await
}

/// Remove an entry from the provider's block list (operator).
#[utoipa::path(
    delete,
    path = "/api/v1/blocklist/{entry}",
    tag = "block list",
    params(("entry" = String, Path, description = "The address or network as listed; a network's `/` percent-encoded (`192.0.2.0%2F24`)")),
    responses(
        (status = 204, description = "Removed, at once"),
        (status = 400, description = "Not an address or network", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "Not on the list", body = ErrorBody),
    )
)]
pub(crate) async fn remove_entry(
    State(s): State<AppState>,
    p: Principal,
    Path(entry): Path<String>,
) -> ApiResult<StatusCode> {
    require_operator(&p)?;
    let network = parse_entry(&entry)?;
    let removed = s.store.remove_block(&network.to_string()).await?;
    tracing::info!(
        "block list: {OPERATOR} removed {} (listed by {} on {}: {})",
        removed.entry,
        removed.added_by,
        removed.added.to_rfc3339(),
        removed.reason
    );
    reload_block_list(&s).await;
    Ok(StatusCode::NO_CONTENT)
}

/// How many delist requests to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestsParams {
    /// 1-1000, default 100: the newest ones.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The requests made on the delist page, newest first: who asked (the web client's IP), when,
/// for which IP and address, and what came of it (operator). Kept 90 days.
#[utoipa::path(
    get,
    path = "/api/v1/blocklist/requests",
    tag = "block list",
    params(RequestsParams),
    responses(
        (status = 200, description = "The requests, newest first", body = [DelistRecord]),
        (status = 400, description = "A limit out of 1-1000", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
    )
)]
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<RequestsParams>, QueryRejection>,
) -> ApiResult<Json<Vec<DelistRecord>>> {
    require_operator(&p)?;
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: from 1 to 1000"));
    }
    s.blocking(move |s| {
        let requests = s.store.delist_requests(limit)?;
        Ok(Json(requests.into_iter().map(DelistRecord::from).collect()))
    })
    .await
}
