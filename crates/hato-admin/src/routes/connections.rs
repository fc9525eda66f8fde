//! The connection log: every connection the edge refused, deferred or cut (what Exchange Online
//! does not show: its connection-filter refusals leave no trace). A tenant's admins see the
//! refusals made on their tenant's policy; the operator sees every row. Paged as message trace.

use super::common::{TraceReason, nonempty, page_param, time_param};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, listing_scope, require_admin};
use axum::Json;
use axum::extract::{Query, State};
use hato_core::auth::{Principal, Role};
use hato_protection::ip::canonical_ip;
use hato_store::{ConnectionQuery, TRACE_PAGE_MAX, TRACE_PAGE_SIZE_DEFAULT, TRACE_PAGE_SIZE_MAX};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connections))
}

/// The listing's filters; all optional, empty ones ignored.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionParams {
    /// One client's address.
    ip: Option<String>,
    /// The tenant's name (default: the caller's own; every row for the operator).
    tenant: Option<String>,
    /// At or after: RFC 3339 (`2026-11-28T21:00:00Z`), a date or `YYYY-MM-DD HH:MM`, UTC.
    start: Option<String>,
    /// At or before, as `start`.
    end: Option<String>,
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    page: Option<String>,
    /// 1-5000, default 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    page_size: Option<String>,
}

/// One page of the connection log.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConnectionPage {
    /// Newest first.
    #[schema(value_type = Vec<ConnectionRow>)]
    rows: Vec<hato_store::ConnectionRow>,
    page: usize,
    page_size: usize,
    /// Whether a later page has rows.
    more: bool,
}

/// One refused, deferred or cut connection (`hato_store::ConnectionRow` as the API writes it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `ConnectionRow`; never built
struct ConnectionRow {
    /// RFC 3339, UTC.
    time: String,
    ip: String,
    /// The client's reverse DNS name; empty when not looked up.
    ptr: String,
    /// The EHLO/HELO name it gave; empty before it gave one.
    helo: String,
    /// `connection_filter`, `provider_block_list`, `dns_block_list`, `throttling`,
    /// `early_talker` or `helo`.
    stage: String,
    /// The list or rule that decided (`IPBlockList`, a DNS zone, a throttle rule, a setting).
    rule: Option<String>,
    /// The reply's SMTP code, e.g. 550 (4xx: deferred).
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// Its RFC 3463 enhanced status code, e.g. `5.7.513`.
    enhanced_status: String,
    /// The whole reply the client got.
    reply: String,
    /// The tenant whose policy refused; null for the platform's own stages.
    tenant: Option<String>,
    /// Why: the stage, rule, sentence and figures (the list entry, the zone and return code,
    /// the throttle rule's figures).
    reason: Option<TraceReason>,
    /// What the edge noted about the connection before refusing it.
    notes: Vec<TraceReason>,
}

/// The connection log: one page of refused, deferred or cut connections, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    tag = "connections",
    params(ConnectionParams),
    responses(
        (status = 200, description = "One page", body = ConnectionPage),
        (status = 400, description = "A bad address, time or paging value (the limits are named)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn connections(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<ConnectionParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ConnectionPage>> {
    require_admin(&p)?;
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // As the log writes it: an IPv4 client on a dual-stack listener is its IPv4 address.
    let ip = nonempty(q.ip)
        .map(|a| {
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map(|ip| canonical_ip(ip).to_string())
                .map_err(|_| ApiError::bad_request(format!("ip: {a:?} is not an IP address")))
        })
        .transpose()?;
    let start = time_param("start", q.start.as_deref())?;
    let end = time_param("end", q.end.as_deref())?;
    if let (Some(a), Some(b)) = (start, end)
        && a > b
    {
        return Err(ApiError::bad_request("start is after end"));
    }
    let page = page_param("page", q.page.as_deref(), 1, TRACE_PAGE_MAX)?;
    let page_size = page_param(
        "page_size",
        q.page_size.as_deref(),
        TRACE_PAGE_SIZE_DEFAULT,
        TRACE_PAGE_SIZE_MAX,
    )?;
    let named = q.tenant;
    let found = s
        .blocking(move |s| {
            // A tenant's admins see the refusals made on their tenant's policy; the operator
            // every row, or one tenant's.
            let tenant = listing_scope(s, &p, named.as_deref())?;
            if tenant.is_none() && p.role != Role::Operator {
                return Err(ApiError::forbidden(
                    "only the operator sees every tenant's rows",
                ));
            }
            Ok(s.store.connections(&ConnectionQuery {
                tenant,
                ip,
                start,
                end,
                page,
                page_size,
            })?)
        })
        .await?;
    Ok(Json(ConnectionPage {
        rows: found.rows,
        page,
        page_size,
        more: found.more,
    }))
}
