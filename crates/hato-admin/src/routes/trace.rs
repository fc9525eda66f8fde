//! Message trace: one row per recipient, and the events of one message.

use super::common::{TraceReason, address_param, nonempty, page_param, time_param};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{ApiResult, AppState, Path, listing_scope, require_admin};
use axum::Json;
use axum::extract::{Query, State};
use hato_core::auth::{Principal, Role};
use hato_core::trace::RecipientStatus;
use hato_store::{
    SubjectFilter, TRACE_PAGE_MAX, TRACE_PAGE_SIZE_DEFAULT, TRACE_PAGE_SIZE_MAX, TraceDetailRow,
    TraceDirection, TraceQuery,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trace))
        .routes(routes!(trace_detail))
        .routes(routes!(saved_queries, save_query))
        .routes(routes!(delete_saved_query))
        .routes(routes!(run_saved_query))
}

/// Get-MessageTrace's filters; all optional, empty ones ignored.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceParams {
    /// The tenant's name (default: the caller's own; all tenants for the operator).
    pub(crate) tenant: Option<String>,
    /// The envelope sender, or `*@domain` for every sender of a domain.
    pub(crate) sender: Option<String>,
    /// A recipient, or `*@domain` for every recipient of a domain.
    pub(crate) recipient: Option<String>,
    /// `Pending`, `Delivered`, `Failed`, `Expanded`, `Quarantined` or `FilteredAsSpam`.
    pub(crate) status: Option<String>,
    pub(crate) message_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// The connecting client's IP.
    pub(crate) from_ip: Option<String>,
    /// Received at or after: RFC 3339 (`2026-11-28T21:00:00Z`), a date or `YYYY-MM-DD HH:MM`, UTC.
    pub(crate) start: Option<String>,
    /// Received at or before, as `start`.
    pub(crate) end: Option<String>,
    pub(crate) subject: Option<String>,
    /// `contains` (the default) or `starts_with`.
    pub(crate) subject_filter: Option<String>,
    /// `Inbound` (delivered here) or `Outbound` (relayed or sent to the Internet).
    pub(crate) direction: Option<String>,
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page: Option<String>,
    /// 1-5000, default 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub(crate) page_size: Option<String>,
}

/// One page of message trace, as `Get-MessageTrace -PageSize -Page`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TracePage {
    /// One row per recipient, newest first.
    #[schema(value_type = Vec<TraceRow>)]
    pub(crate) rows: Vec<hato_store::TraceRow>,
    pub(crate) page: usize,
    pub(crate) page_size: usize,
    /// Whether a later page has rows.
    pub(crate) more: bool,
}

/// One recipient of one message (`hato_store::TraceRow` as the API writes it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `TraceRow`; never built
struct TraceRow {
    /// RFC 3339, UTC.
    received: String,
    sender: String,
    recipient: String,
    subject: String,
    /// `Pending`, `Delivered`, `Failed`, `Expanded`, `Quarantined` or `FilteredAsSpam`.
    status: String,
    trace_id: String,
    message_id: String,
    from_ip: String,
    size: u64,
}

/// One event of a recipient (`hato_store::TraceDetailRow`), as Get-MessageTraceDetail. Events
/// recorded before hato stored these fields have `status`, `enhanced_status` and `reason` null
/// and `remote_host` empty.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `TraceDetailRow`; never built
struct TraceEvent {
    recipient: String,
    /// RFC 3339, UTC.
    time: String,
    /// `Receive`, `Deliver`, `Fail`, `Defer`, `Expand`, `Dsn`, `Drop`, `TransportRule`, `Spam`,
    /// `Malware`, `AgentInfo`, …
    event: String,
    /// What happened, for people; for a `Fail` or `Defer` event with a reply, that reply's text
    /// (after its codes).
    detail: String,
    /// The SMTP reply code of the reply the event is about (a `Fail` or `Defer` event's), e.g.
    /// 554.
    #[schema(minimum = 200, maximum = 599)]
    status: Option<u16>,
    /// Its RFC 3463 enhanced status code, e.g. `5.2.2`.
    enhanced_status: Option<String>,
    /// The server a delivery attempt talked to; empty until outbound delivery exists.
    remote_host: String,
    /// Why: which stage decided, by which rule, and the figures that decided it.
    reason: Option<TraceReason>,
}

/// Message trace: one page of rows, one per recipient, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/trace",
    tag = "trace",
    params(TraceParams),
    responses(
        (status = 200, description = "One page", body = TracePage),
        (status = 400, description = "A bad filter, time, status or paging value (the limits are named)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
async fn trace(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<TracePage>> {
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(run(&s, p, q).await?))
}

/// Message trace as `p` may see it: the API's `GET /api/v1/trace` and the console's trace page
/// both answer from here (admins only; a tenant admin their tenant's rows; the operator every
/// tenant's or the named one's).
pub(crate) async fn run(s: &AppState, p: Principal, q: TraceParams) -> ApiResult<TracePage> {
    let query = query_of(s, p, q).await?;
    let (page_number, page_size) = (query.page, query.page_size);
    let found = s.blocking(move |s| Ok(s.store.trace(&query)?)).await?;
    Ok(TracePage {
        rows: found.rows,
        page: page_number,
        page_size,
        more: found.more,
    })
}

/// The store's query for `q` as `p` may ask it: every value checked (a 400 naming it), the
/// tenant scope `p`'s.
async fn query_of(s: &AppState, p: Principal, q: TraceParams) -> ApiResult<TraceQuery> {
    require_admin(&p)?;
    let named = q.tenant.clone();
    let tenant = s
        .blocking(move |s| listing_scope(s, &p, named.as_deref()))
        .await?;
    let status = nonempty(q.status)
        .map(|st| {
            RecipientStatus::parse(&st).ok_or_else(|| {
                let all: Vec<&str> = RecipientStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!(
                    "unknown status {st}: use one of {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let subject_filter = match q
        .subject_filter
        .as_deref()
        .map(|f| f.to_ascii_lowercase().replace('-', "_"))
    {
        None => SubjectFilter::Contains,
        Some(f) if f == "contains" || f.is_empty() => SubjectFilter::Contains,
        Some(f) if f == "starts_with" || f == "startswith" => SubjectFilter::StartsWith,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown subject_filter {f}: use contains or starts_with"
            )));
        }
    };
    let direction = nonempty(q.direction)
        .map(|d| {
            TraceDirection::parse(&d).ok_or_else(|| {
                ApiError::bad_request(format!("unknown direction {d}: use Inbound or Outbound"))
            })
        })
        .transpose()?;
    let query = TraceQuery {
        tenant,
        direction,
        sender: address_pattern("sender", q.sender)?,
        recipient: address_pattern("recipient", q.recipient)?,
        status,
        message_id: nonempty(q.message_id),
        trace_id: nonempty(q.trace_id),
        from_ip: nonempty(q.from_ip),
        start: time_param("start", q.start.as_deref())?,
        end: time_param("end", q.end.as_deref())?,
        subject: nonempty(q.subject),
        subject_filter,
        page: page_param("page", q.page.as_deref(), 1, TRACE_PAGE_MAX)?,
        page_size: page_param(
            "page_size",
            q.page_size.as_deref(),
            TRACE_PAGE_SIZE_DEFAULT,
            TRACE_PAGE_SIZE_MAX,
        )?,
    };
    if let (Some(a), Some(b)) = (query.start, query.end)
        && a > b
    {
        return Err(ApiError::bad_request("start is after end"));
    }
    Ok(query)
}

/// A sender or recipient filter: one address, or `*@domain` for every address of a domain
/// (Get-MessageTrace takes wildcards in SenderAddress and RecipientAddress).
fn address_pattern(name: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match nonempty(v) {
        Some(v) if v.starts_with("*@") => {
            let domain = v[2..].trim().to_ascii_lowercase();
            let valid = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .split('.')
                    .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
            if valid {
                Ok(Some(format!("*@{domain}")))
            } else {
                Err(ApiError::bad_request(format!(
                    "{name} {v}: not *@ followed by a domain"
                )))
            }
        }
        other => address_param(name, other),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DetailParams {
    /// Only this recipient's events.
    recipient: Option<String>,
}

/// Message trace detail: the events of a message's recipients.
#[utoipa::path(
    get,
    path = "/api/v1/trace/{trace_id}",
    tag = "trace",
    params(
        ("trace_id" = String, Path, description = "The message's trace id (from the 250 reply or a trace row)"),
        DetailParams,
    ),
    responses(
        (status = 200, description = "The events, in order", body = [TraceEvent]),
        (status = 400, description = "A malformed recipient", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No trace for this id (in the caller's tenant)", body = ErrorBody),
    )
)]
async fn trace_detail(
    State(s): State<AppState>,
    p: Principal,
    Path(trace_id): Path<String>,
    Query(d): Query<DetailParams>,
) -> ApiResult<Json<Vec<TraceDetailRow>>> {
    let recipient = address_param("recipient", d.recipient)?;
    Ok(Json(detail(&s, p, trace_id, recipient).await?))
}

/// The events of a message, as `p` may see them (the API's and the console's detail).
pub(crate) async fn detail(
    s: &AppState,
    p: Principal,
    trace_id: String,
    recipient: Option<String>,
) -> ApiResult<Vec<TraceDetailRow>> {
    require_admin(&p)?;
    let tenant = match p.role {
        Role::Operator => None,
        _ => Some(p.tenant_id.ok_or_else(ApiError::unauthorized)?),
    };
    s.blocking(move |s| {
        let rows = s
            .store
            .trace_detail(tenant, &trace_id, recipient.as_deref())?;
        if rows.is_empty() {
            return Err(ApiError::not_found(format!("no trace for {trace_id}")));
        }
        Ok(rows)
    })
    .await
}

// ----- saved queries ---------------------------------------------------------------------------

/// The longest name of a saved query, in characters.
const SAVED_NAME_MAX: usize = 100;
/// The longest saved query string, in bytes.
const SAVED_QUERY_MAX: usize = 2_000;

/// A message trace query saved under a name.
#[derive(Serialize, ToSchema)]
pub(crate) struct SavedQuery {
    pub(crate) name: String,
    /// The query string `GET /api/v1/trace` and the console's trace page take
    /// (`sender=*%40contoso.com&status=Failed`).
    pub(crate) query: String,
    /// RFC 3339, UTC.
    pub(crate) created: String,
}

impl From<hato_store::SavedTraceQuery> for SavedQuery {
    fn from(q: hato_store::SavedTraceQuery) -> Self {
        SavedQuery {
            name: q.name,
            query: q.query,
            created: q.created.to_rfc3339(),
        }
    }
}

/// A query to save.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SaveQueryInput {
    /// 1-100 characters; a query of the same name (any case) is replaced.
    pub(crate) name: String,
    /// The filters as `GET /api/v1/trace` takes them, as a query string (at most 2,000 bytes;
    /// `page` and `page_size` are left out when it runs).
    pub(crate) query: String,
}

/// Whose saved queries these are: the caller's mailbox, or without one its tenant's admins'
/// (a token) or the operator's.
fn owner(p: &Principal) -> hato_store::SavedQueryOwner {
    hato_store::SavedQueryOwner {
        tenant_id: p.tenant_id,
        mailbox_id: p.mailbox_id,
    }
}

/// A saved query string as the trace's parameters: refused with the API's words for a value
/// `GET /api/v1/trace` would refuse (an unknown parameter too).
fn saved_params(query: &str) -> ApiResult<TraceParams> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| ApiError::bad_request("query: not a query string"))?;
    let Query(q) = Query::<TraceParams>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    Ok(q)
}

/// The caller's saved message trace queries, by name.
#[utoipa::path(
    get,
    path = "/api/v1/trace/saved",
    tag = "trace",
    responses(
        (status = 200, description = "The saved queries", body = [SavedQuery]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub(crate) async fn saved_queries(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<SavedQuery>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let rows = s.store.saved_trace_queries(owner(&p))?;
        Ok(Json(rows.into_iter().map(SavedQuery::from).collect()))
    })
    .await
}

/// Saves a message trace query under a name for the caller (replacing one of that name); its
/// filters are checked as `GET /api/v1/trace` checks them.
#[utoipa::path(
    post,
    path = "/api/v1/trace/saved",
    tag = "trace",
    request_body = SaveQueryInput,
    responses(
        (status = 201, description = "Saved", body = SavedQuery),
        (status = 400, description = "A bad name or filter (named), too many saved queries, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub(crate) async fn save_query(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<SaveQueryInput>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(axum::http::StatusCode, Json<SavedQuery>)> {
    require_admin(&p)?;
    let input = crate::state::body(payload)?;
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > SAVED_NAME_MAX {
        return Err(ApiError::bad_request(format!(
            "name: 1 to {SAVED_NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("name: no control characters"));
    }
    let query = input.query.trim().trim_start_matches('?').to_string();
    if query.len() > SAVED_QUERY_MAX {
        return Err(ApiError::bad_request(format!(
            "query: at most {SAVED_QUERY_MAX} bytes"
        )));
    }
    // Checked as it will run: each filter value, the caller's tenant scope.
    query_of(&s, p, saved_params(&query)?).await?;
    let saved = s.store.save_trace_query(owner(&p), &name, &query).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(SavedQuery::from(saved)),
    ))
}

/// Deletes one of the caller's saved queries.
#[utoipa::path(
    delete,
    path = "/api/v1/trace/saved/{name}",
    tag = "trace",
    params(("name" = String, Path, description = "The saved query's name (any case)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No saved query of that name", body = ErrorBody),
    )
)]
pub(crate) async fn delete_saved_query(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    require_admin(&p)?;
    s.store.delete_trace_query(owner(&p), name.trim()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The paging of a saved query's run.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunParams {
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page: Option<String>,
    /// 1-5000, default 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub(crate) page_size: Option<String>,
}

/// Runs one of the caller's saved queries: `GET /api/v1/trace` with its filters, now.
#[utoipa::path(
    get,
    path = "/api/v1/trace/saved/{name}/run",
    tag = "trace",
    params(("name" = String, Path, description = "The saved query's name (any case)"), RunParams),
    responses(
        (status = 200, description = "One page", body = TracePage),
        (status = 400, description = "A bad paging value, or a saved filter no longer valid", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No saved query of that name", body = ErrorBody),
    )
)]
pub(crate) async fn run_saved_query(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    params: Result<Query<RunParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<TracePage>> {
    require_admin(&p)?;
    let Query(paging) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let wanted = name.trim().to_string();
    let saved = s
        .blocking(move |s| {
            let rows = s.store.saved_trace_queries(owner(&p))?;
            rows.into_iter()
                .find(|q| q.name.eq_ignore_ascii_case(&wanted))
                .ok_or_else(|| ApiError::not_found(format!("saved query {wanted} not found")))
        })
        .await?;
    let mut q = saved_params(&saved.query)?;
    q.page = paging.page;
    q.page_size = paging.page_size;
    Ok(Json(run(&s, p, q).await?))
}
