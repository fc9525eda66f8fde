//! The provider's block list (the platform operator's, like Microsoft's blocked senders list;
//! seed C1-C3): entries added, listed and removed by the operator only (403 for anyone else), and
//! the record of requests made on the delist page with the operator's decision on each pending
//! one (approve: the entry is removed; deny: it stays and the request's link removes nothing;
//! once). Every change reloads the edge's snapshot.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, reload_block_list, require_operator};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Timestamp;
use hato_core::auth::Principal;
use hato_protection::IpNetwork;
use hato_protection::provider_block_list::parse_expiry;
use hato_store::{
    BlockEntry, DelistDecided, DelistDecision, DelistRequest, DelistRequestQuery, DelistStatus,
    NewBlockEntry,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries, add_entry))
        .routes(routes!(remove_entry))
        .routes(routes!(list_requests))
        .routes(routes!(approve_request))
        .routes(routes!(deny_request))
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
    /// `pending` (an entry listed the IP; the operator may approve or deny), `approved`,
    /// `denied`, or `closed` (nothing to decide: nothing listed the IP, or the link settled it).
    status: String,
    /// Who decided (`operator`), when (RFC 3339, UTC) and why.
    decided_by: Option<String>,
    decided: Option<String>,
    decision_reason: Option<String>,
}

impl From<DelistRequest> for DelistRecord {
    fn from(r: DelistRequest) -> Self {
        let status = r.status().as_str().to_string();
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
            status,
            decided_by: r.decided_by,
            decided: r.decided.map(Timestamp::to_rfc3339),
            decision_reason: r.decision_reason,
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
    // The pending delist requests for the entry are closed in the same write.
    let removed = s
        .store
        .remove_block(&network.to_string(), OPERATOR, s.clock.now())
        .await?;
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
    /// 1-1000, default 100: the newest ones (a page of this many).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The page (1 first, the newest), `limit` requests a page.
    #[param(minimum = 1)]
    page: Option<usize>,
    /// Only the requests in this state: `pending`, `approved`, `denied` or `closed`.
    status: Option<String>,
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
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(request_page(&s, p, params).await?.0))
}

/// One page of delist requests as `list_requests` answers it, and whether a next page has
/// any: the store is asked for one more than the page (so a "Next" link never leads to an
/// empty page).
pub(crate) async fn request_page(
    s: &AppState,
    p: Principal,
    params: RequestsParams,
) -> ApiResult<(Vec<DelistRecord>, bool)> {
    require_operator(&p)?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: from 1 to 1000"));
    }
    let page = params.page.unwrap_or(1);
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::bad_request("page: from 1"));
    }
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(DelistStatus::parse(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status: {v:?} is not one of pending, approved, denied, closed"
            ))
        })?),
    };
    let query = DelistRequestQuery {
        status,
        offset: (page - 1) * limit,
        limit: limit + 1,
    };
    s.blocking(move |s| {
        let mut requests = s.store.delist_request_page(&query)?;
        let more = requests.len() > limit;
        requests.truncate(limit);
        Ok((requests.into_iter().map(DelistRecord::from).collect(), more))
    })
    .await
}

/// Why the operator decided as they did (optional). The body may be empty.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionInput {
    /// At most 500 characters, one line.
    reason: Option<String>,
}

/// A decision taken: the request as it stands now, and the entry an approval removed.
#[derive(Serialize, ToSchema)]
pub(crate) struct DecisionAnswer {
    request: DelistRecord,
    /// The entry removed (an approval of a request whose entry was still listed); null when
    /// nothing was removed.
    removed: Option<BlockListEntry>,
}

/// The reason given with a decision, checked as an entry's reason is: `None` when none.
fn decision_reason(raw: &Bytes) -> ApiResult<Option<String>> {
    let input: DecisionInput = if raw.iter().all(u8::is_ascii_whitespace) {
        DecisionInput::default()
    } else {
        serde_json::from_slice(raw)
            .map_err(|e| ApiError::bad_request(format!("the body is not a decision: {e}")))?
    };
    let Some(reason) = input.reason.map(|r| r.trim().to_string()) else {
        return Ok(None);
    };
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
    Ok((!reason.is_empty()).then_some(reason))
}

/// Records the operator's decision on a request (one write in the store), logs it, and
/// reloads the edge's snapshot when an entry went.
pub(crate) async fn decide(
    s: &AppState,
    p: Principal,
    id: i64,
    decision: DelistDecision,
    raw: &Bytes,
) -> ApiResult<Json<DecisionAnswer>> {
    require_operator(&p)?;
    let reason = decision_reason(raw)?;
    let now = s.clock.now();
    let DelistDecided { request, removed } = s
        .store
        .decide_delist(id, decision, OPERATOR, reason.as_deref(), now)
        .await?;
    match &removed {
        Some(e) => tracing::info!(
            "block list: {OPERATOR} approved delist request {id} for {}: {} removed (listed by {} on {}: {})",
            request.ip,
            e.entry,
            e.added_by,
            e.added.to_rfc3339(),
            e.reason
        ),
        None => tracing::info!(
            "block list: {OPERATOR} {} delist request {id} for {}{}",
            decision.as_str(),
            request.ip,
            if decision == DelistDecision::Approved {
                " (its entry had gone already)"
            } else {
                ""
            }
        ),
    }
    if removed.is_some() {
        reload_block_list(s).await;
    }
    Ok(Json(DecisionAnswer {
        request: DelistRecord::from(request),
        removed: removed.map(BlockListEntry::from),
    }))
}

/// Approve a pending delist request: its entry is removed from the block list at once
/// (operator). A request decided already, or with nothing to decide, is a 409 saying so.
#[utoipa::path(
    post,
    path = "/api/v1/blocklist/requests/{id}/approve",
    tag = "block list",
    params(("id" = i64, Path, description = "The request's id")),
    request_body(content = DecisionInput, description = "Optional: why"),
    responses(
        (status = 200, description = "Approved; the entry removed (null: it had gone already)", body = DecisionAnswer),
        (status = 400, description = "A bad reason, or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Decided already (by whom and when), or nothing to decide", body = ErrorBody),
    )
)]
pub(crate) async fn approve_request(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    raw: Bytes,
) -> ApiResult<Json<DecisionAnswer>> {
    decide(&s, p, id, DelistDecision::Approved, &raw).await
}

/// Deny a pending delist request: the entry stays, and the request's confirmation link no
/// longer removes it (operator). A request decided already, or with nothing to decide, is a
/// 409 saying so.
#[utoipa::path(
    post,
    path = "/api/v1/blocklist/requests/{id}/deny",
    tag = "block list",
    params(("id" = i64, Path, description = "The request's id")),
    request_body(content = DecisionInput, description = "Optional: why"),
    responses(
        (status = 200, description = "Denied", body = DecisionAnswer),
        (status = 400, description = "A bad reason, or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Decided already (by whom and when), or nothing to decide", body = ErrorBody),
    )
)]
pub(crate) async fn deny_request(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    raw: Bytes,
) -> ApiResult<Json<DecisionAnswer>> {
    decide(&s, p, id, DelistDecision::Denied, &raw).await
}
