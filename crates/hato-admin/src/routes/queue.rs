//! The queue, read-only: the recipients waiting for delivery, one row each, with their attempts,
//! last error, next attempt, expiry and lease (Exchange's `Get-Queue` / `Get-QueueMessage`).

use super::common::{TraceReason, actor_name, address_param, nonempty, page_param};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, body, listing_scope, require_admin, require_global_admin};
use axum::Json;
use axum::extract::{Query, State};
use hato_core::address::canonical_domain_name;
use hato_core::auth::Principal;
use hato_store::{
    QueueActed, QueueAction, QueueQuery, QueueStatus, TRACE_PAGE_MAX, TRACE_PAGE_SIZE_DEFAULT,
    TRACE_PAGE_SIZE_MAX,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(retry))
        .routes(routes!(delete))
}

/// Which queued recipients an action is for: one message's, or one recipient of it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueTarget {
    trace_id: String,
    /// Only this recipient of the message.
    recipient: Option<String>,
    /// The tenant's name (default: the caller's own; any tenant's for the operator).
    tenant: Option<String>,
    /// `delete` only: send the sender an NDR (Exchange's `Remove-Message -WithNDR`); default
    /// false, as Postfix's `postsuper -d`.
    #[serde(default)]
    with_ndr: bool,
}

/// What an action did.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueueActedView {
    trace_id: String,
    /// Recipients retried or deleted.
    changed: usize,
    /// Recipients left alone: a node is delivering them right now, or a moderator holds them.
    busy: usize,
}

/// Applies `action` to the target's recipients, in the caller's scope; 404 when none waits.
async fn act(
    s: AppState,
    p: Principal,
    target: QueueTarget,
    action: impl FnOnce(String) -> QueueAction + Send + 'static,
) -> ApiResult<Json<QueueActedView>> {
    let trace_id = target.trace_id.trim().to_lowercase();
    if trace_id.is_empty() {
        return Err(ApiError::bad_request("trace_id is required"));
    }
    let recipient = address_param("recipient", target.recipient)?;
    let named = target.tenant.clone();
    let (tenant, by) = s
        .blocking(move |s| Ok((listing_scope(s, &p, named.as_deref())?, actor_name(s, &p)?)))
        .await?;
    let now = s.clock.now();
    let id = trace_id.clone();
    let acted: QueueActed = s
        .store
        .queue_act(tenant, &id, recipient.as_deref(), action(by), now)
        .await?;
    if acted.changed == 0 && acted.busy == 0 {
        return Err(ApiError::not_found(format!(
            "no recipient of message {trace_id} waits in the queue{}",
            if tenant.is_some() {
                " of this tenant"
            } else {
                ""
            }
        )));
    }
    Ok(Json(QueueActedView {
        trace_id,
        changed: acted.changed,
        busy: acted.busy,
    }))
}

/// Retries a queued message's recipients now, whatever their back-off (Postfix's `postqueue
/// -i`, Exchange's `Retry-Queue`). Admins, in their tenant.
#[utoipa::path(
    post,
    path = "/api/v1/queue/retry",
    tag = "queue",
    request_body = QueueTarget,
    responses(
        (status = 200, description = "Retried", body = QueueActedView),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such message waiting (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn retry(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<QueueTarget>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<QueueActedView>> {
    require_admin(&p)?;
    let target = body(payload)?;
    if target.with_ndr {
        return Err(ApiError::bad_request("with_ndr is for delete only"));
    }
    act(s, p, target, |_| QueueAction::Retry).await
}

/// Deletes a queued message's recipients (Postfix's `postsuper -d`, Exchange's
/// `Remove-Message`): they fail with `550 4.3.2 QUEUE.Admin; message deleted by administrative
/// action`, with an NDR only when `with_ndr`. Global admins, in their tenant.
#[utoipa::path(
    post,
    path = "/api/v1/queue/delete",
    tag = "queue",
    request_body = QueueTarget,
    responses(
        (status = 200, description = "Deleted", body = QueueActedView),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such message waiting (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<QueueTarget>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<QueueActedView>> {
    require_global_admin(&p)?;
    let target = body(payload)?;
    let with_ndr = target.with_ndr;
    act(s, p, target, move |by| QueueAction::Delete { with_ndr, by }).await
}

/// The listing's filters; all optional, empty ones ignored.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueParams {
    /// The tenant's name (default: the caller's own; all tenants for the operator).
    tenant: Option<String>,
    /// `Active` (a node is working on it), `Ready` (not attempted yet) or `Retry` (deferred,
    /// waiting for its next attempt).
    status: Option<String>,
    /// A recipient address.
    recipient: Option<String>,
    /// The recipients' domain.
    domain: Option<String>,
    /// One message's trace id.
    trace_id: Option<String>,
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    page: Option<String>,
    /// 1-5000, default 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    page_size: Option<String>,
}

/// One page of the queue, paged as message trace is.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueuePage {
    /// One row per waiting recipient, oldest message first.
    #[schema(value_type = Vec<QueueRow>)]
    rows: Vec<hato_store::QueueRow>,
    page: usize,
    page_size: usize,
    /// Whether a later page has rows.
    more: bool,
}

/// One recipient waiting in the queue (`hato_store::QueueRow` as the API writes it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `QueueRow`; never built
struct QueueRow {
    trace_id: String,
    /// RFC 3339, UTC.
    received: String,
    /// The envelope sender; empty for the null sender (an NDR).
    sender: String,
    recipient: String,
    /// `local`, `relay`, `remote` (outside every tenant), `group` or `postmaster`.
    route: String,
    /// `Active`, `Ready` or `Retry`.
    status: String,
    /// Attempts deferred so far.
    attempts: u32,
    /// The last deferral's reply and why; null before the first.
    last_error: Option<QueueLastError>,
    /// RFC 3339, UTC; for an `Active` recipient, when its lease runs out.
    next_attempt: String,
    /// When it fails with `550 4.4.7 QUEUE.Expired` if still deferred (RFC 3339, UTC); mail
    /// for an unconfigured platform postmaster is kept past it.
    expires: String,
    /// The node working on it (its lease); null when none is.
    lease_owner: Option<String>,
    /// Until when (RFC 3339, UTC); null when no lease runs.
    lease_until: Option<String>,
}

/// A recipient's last transient failure (`hato_store::LastError`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `LastError`; never built
struct QueueLastError {
    /// The reply's SMTP code, e.g. 451.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// Its RFC 3463 enhanced status code, e.g. `4.4.4`.
    enhanced_status: String,
    text: String,
    /// The server the attempt talked to; empty when it talked to none.
    remote_host: String,
    reason: Option<TraceReason>,
}

/// The queue: one page of the recipients waiting for delivery, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/queue",
    tag = "queue",
    params(QueueParams),
    responses(
        (status = 200, description = "One page", body = QueuePage),
        (status = 400, description = "A bad filter, status or paging value (the limits are named)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn queue(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<QueueParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<QueuePage>> {
    require_admin(&p)?;
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // Tenant-scoped like message trace: a tenant's admins see its recipients, the operator all.
    // A named tenant is read from the store: on the blocking pool, as trace does.
    let named = q.tenant.clone();
    let tenant = s
        .blocking(move |s| listing_scope(s, &p, named.as_deref()))
        .await?;
    let status = nonempty(q.status)
        .map(|st| {
            QueueStatus::parse(&st).ok_or_else(|| {
                let all: Vec<&str> = QueueStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!(
                    "unknown status {st}: use one of {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let recipient = address_param("recipient", q.recipient)?;
    let domain = nonempty(q.domain)
        .map(|d| {
            canonical_domain_name(&d).map_err(|e| ApiError::bad_request(format!("domain {d}: {e}")))
        })
        .transpose()?;
    let query = QueueQuery {
        tenant,
        status,
        recipient,
        domain,
        trace_id: nonempty(q.trace_id),
        now: s.clock.now(),
        page: page_param("page", q.page.as_deref(), 1, TRACE_PAGE_MAX)?,
        page_size: page_param(
            "page_size",
            q.page_size.as_deref(),
            TRACE_PAGE_SIZE_DEFAULT,
            TRACE_PAGE_SIZE_MAX,
        )?,
    };
    // A page may be thousands of rows: read on the blocking pool, not on an async worker.
    let (page, page_size) = (query.page, query.page_size);
    let found = s.blocking(move |s| Ok(s.store.queue(&query)?)).await?;
    Ok(Json(QueuePage {
        rows: found.rows,
        page,
        page_size,
        more: found.more,
    }))
}
