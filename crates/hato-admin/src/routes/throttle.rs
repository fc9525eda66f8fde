//! IP throttling: what the throttle knows about a sending IP and why it decides what it decides
//! (the transparency the seed says Exchange Online lacks, D2), the operator's release, and
//! tenants' exemption lists.
//!
//! Who reads what: a throttle is about a sender, not a tenant, and its figures (the volume an IP
//! sends, its junk share) count the mail of every tenant. So the operator sees everything; a
//! tenant's admins see the decision — throttled or not, by which rule and what it means, since
//! and until when, probation, first seen — and their own tenant's exemption entries, but not the
//! platform-wide figures (`figures` is null, and a throttle's value and limit too). Users may
//! not ask. Only the operator releases a throttle. Exemption lists are a tenant's: its global
//! admins (and the operator) change them, its admins read them.

use super::common::page_param;
use crate::error::{ApiError, ErrorBody};
use crate::state::{
    ApiResult, AppState, Path, TenantFilter, body, listing_scope, reload_throttle_exemptions,
    require_admin, require_global_admin, require_operator, target_tenant,
};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Timestamp;
use hato_core::auth::{Principal, Role};
use hato_protection::throttle::{Network, ThrottleStatus};
use hato_store::ThrottleExemptionRow;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_exemptions, add_exemption))
        .routes(routes!(remove_exemption))
        .routes(routes!(status))
        .routes(routes!(release))
        .routes(routes!(list))
}

/// What the throttle knows about one sending IP.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusBody {
    /// The address asked about.
    ip: String,
    /// What it is tracked under: the IPv4 address, or its IPv6 prefix (`2001:db8:1:2::/64`).
    key: String,
    /// Whether the throttle has a record of it; an IP never seen is on probation from its first
    /// connection.
    tracked: bool,
    /// RFC 3339, UTC.
    first_seen: Option<String>,
    on_probation: bool,
    /// RFC 3339, UTC.
    probation_until: Option<String>,
    /// Whether it is answered `451 4.7.500` now.
    throttled: bool,
    throttle: Option<ThrottleBody>,
    /// An operator's release whose grace period still runs.
    release: Option<ReleaseBody>,
    /// The exemption entries that cover it (then it is never throttled); a tenant's admins see
    /// only their own tenant's.
    exemptions: Vec<ExemptionBody>,
    /// A loopback client (this host) while `throttle.exempt_loopback` is on: never throttled.
    exempt_loopback: bool,
    /// The platform-wide figures (operator only; null for a tenant's admins).
    figures: Option<FiguresBody>,
}

/// A throttle that is on.
#[derive(Serialize, ToSchema)]
struct ThrottleBody {
    /// The rule that fired (`AS1`…`AS6`, as in the reply's `(ASn)`).
    rule: String,
    /// What the rule means.
    meaning: String,
    /// RFC 3339, UTC.
    since: String,
    /// When it ends by itself (RFC 3339, UTC).
    until: String,
    /// Throttles in a row; this one lasts `throttle_minutes` × 2^(strikes-1).
    strikes: u8,
    /// The figure the rule compares.
    figure: String,
    /// Its value when the rule fired (operator only).
    value: Option<u64>,
    /// Its limit then (operator only).
    limit: Option<u64>,
}

/// An operator's release.
#[derive(Serialize, ToSchema)]
struct ReleaseBody {
    /// RFC 3339, UTC.
    released: String,
    /// When the throttle rules apply to it again (RFC 3339, UTC).
    rules_resume: String,
}

/// An exemption entry that covers the IP.
#[derive(Serialize, ToSchema)]
struct ExemptionBody {
    tenant: String,
    network: String,
}

/// The figures the rules read, over all tenants' mail.
#[derive(Serialize, ToSchema)]
struct FiguresBody {
    connections_last_minute: u64,
    recipients_last_hour: u64,
    recipients_last_day: u64,
    /// Recipients per day its history supports (0 before its first full day).
    daily_baseline: u64,
    /// Messages accepted, and judged spam or reported as junk, in the decayed history
    /// (`history_days`).
    messages_history: u64,
    junk_history: u64,
    /// Thousandths.
    junk_share_permille: u64,
    unknown_recipients_last_hour: u64,
    /// Thousandths.
    unknown_recipient_share_permille: u64,
    /// Recipients in an hour (AS1; on probation only).
    limit_recipients_per_hour: Option<u64>,
    /// Recipients in 24 hours (AS2 on probation, AS3 after).
    limit_recipients_per_day: u64,
    /// Connections in a minute (AS6).
    limit_connections_per_minute: u64,
}

/// The answer to a release.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReleaseAnswer {
    /// Whether a throttle was on.
    was_throttled: bool,
    status: StatusBody,
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// The status as `p` may see it: everything for the operator, the decision for a tenant's
/// admins (with `own` as their tenant's exemption entries).
fn status_body(s: ThrottleStatus, full: bool, own: Option<Vec<ExemptionBody>>) -> StatusBody {
    let exemptions = own.unwrap_or_else(|| {
        s.exemptions
            .iter()
            .map(|e| ExemptionBody {
                tenant: e.tenant.clone(),
                network: e.network.to_string(),
            })
            .collect()
    });
    StatusBody {
        ip: s.ip.to_string(),
        key: s.key.clone(),
        tracked: s.tracked,
        first_seen: s.first_seen.map(time),
        on_probation: s.on_probation,
        probation_until: s.probation_until.map(time),
        throttled: s.throttle.is_some(),
        throttle: s.throttle.as_ref().map(|t| ThrottleBody {
            rule: t.rule.into(),
            meaning: t.meaning.into(),
            since: time(t.since),
            until: time(t.until),
            strikes: t.strikes,
            figure: t.figure.into(),
            value: full.then_some(t.value),
            limit: full.then_some(t.limit),
        }),
        release: s.release.as_ref().map(|r| ReleaseBody {
            released: time(r.released),
            rules_resume: time(r.rules_resume),
        }),
        exemptions,
        exempt_loopback: s.exempt_loopback,
        figures: full.then_some(FiguresBody {
            connections_last_minute: s.connections_last_minute,
            recipients_last_hour: s.recipients_last_hour,
            recipients_last_day: s.recipients_last_day,
            daily_baseline: s.daily_baseline,
            messages_history: s.messages_history,
            junk_history: s.junk_history,
            junk_share_permille: s.junk_share_permille,
            unknown_recipients_last_hour: s.unknown_recipients_last_hour,
            unknown_recipient_share_permille: s.unknown_recipient_share_permille,
            limit_recipients_per_hour: s.limits.recipients_per_hour,
            limit_recipients_per_day: s.limits.recipients_per_day,
            limit_connections_per_minute: s.limits.connections_per_minute,
        }),
    }
}

fn ip_param(text: &str) -> ApiResult<IpAddr> {
    text.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("path parameter ip: {text:?} is not an IP address"))
    })
}

/// What the throttle knows about a sending IP: whether it is throttled, by which rule, since
/// and until when, its probation and, for the operator, the figures the rules read.
#[utoipa::path(
    get,
    path = "/api/v1/throttle/{ip}",
    tag = "throttle",
    params(("ip" = String, Path, description = "An IPv4 or IPv6 address")),
    responses(
        (status = 200, description = "The IP's status", body = StatusBody),
        (status = 400, description = "Not an IP address", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub(crate) async fn status(
    State(s): State<AppState>,
    p: Principal,
    Path(ip): Path<String>,
) -> ApiResult<Json<StatusBody>> {
    require_admin(&p)?;
    let ip = ip_param(&ip)?;
    let status = s.throttle.status(ip, s.clock.now());
    if p.role == Role::Operator {
        return Ok(Json(status_body(status, true, None)));
    }
    // A tenant's admins see their own tenant's entries only, read from the store.
    let tenant = p.tenant_id;
    let own = s
        .blocking(move |s| {
            let rows = match tenant {
                Some(t) => s.store.throttle_exemptions(Some(t))?,
                None => Vec::new(),
            };
            Ok(rows
                .into_iter()
                .filter(|r| Network::parse(&r.network).is_ok_and(|n| n.contains(ip)))
                .map(|r| ExemptionBody {
                    tenant: r.tenant,
                    network: r.network,
                })
                .collect())
        })
        .await?;
    Ok(Json(status_body(status, false, Some(own))))
}

/// The paging of `GET /api/v1/throttle`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page: Option<String>,
    /// 1-1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page_size: Option<String>,
}

/// One throttled IP in the list.
#[derive(Serialize, ToSchema)]
pub(crate) struct ThrottledBody {
    /// What is throttled: the IPv4 address, or the IPv6 prefix (`2001:db8:1:2::/64`).
    pub(crate) ip: String,
    /// The rule that fired (`AS1`…`AS6`).
    pub(crate) rule: String,
    pub(crate) meaning: String,
    /// RFC 3339, UTC.
    pub(crate) since: String,
    /// When it ends by itself (RFC 3339, UTC).
    pub(crate) until: String,
    pub(crate) strikes: u8,
}

/// One page of the throttled IPs.
#[derive(Serialize, ToSchema)]
pub(crate) struct ThrottledPage {
    /// The latest throttle first.
    pub(crate) throttled: Vec<ThrottledBody>,
    /// How many IPs are throttled now.
    pub(crate) total: usize,
    pub(crate) page: usize,
    pub(crate) page_size: usize,
    /// Whether a later page has rows.
    pub(crate) more: bool,
}

/// The IPs throttled now (answered `451 4.7.500 … (ASn)` at connect), the latest throttle
/// first: the decision only (rule, since, until, strikes), as a tenant's admins see it for one
/// IP; `GET /api/v1/throttle/{ip}` says more about each.
#[utoipa::path(
    get,
    path = "/api/v1/throttle",
    tag = "throttle",
    params(ListParams),
    responses(
        (status = 200, description = "One page of throttled IPs", body = ThrottledPage),
        (status = 400, description = "A bad page or page_size (the limits are named)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ThrottledPage>> {
    require_admin(&p)?;
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let page = page_param("page", q.page.as_deref(), 1, 1000)?;
    let page_size = page_param("page_size", q.page_size.as_deref(), 100, 1000)?;
    let now = s.clock.now();
    // A pass over the throttle's table (up to `max_tracked_ips` records): the blocking pool,
    // not a worker every request shares.
    let (rows, total) = s
        .blocking(move |s| Ok(s.throttle.throttled(now, (page - 1) * page_size, page_size)))
        .await?;
    Ok(Json(ThrottledPage {
        more: page * page_size < total,
        throttled: rows
            .into_iter()
            .map(|t| ThrottledBody {
                ip: t.key,
                rule: t.rule.into(),
                meaning: t.meaning.into(),
                since: time(t.since),
                until: time(t.until),
                strikes: t.strikes,
            })
            .collect(),
        total,
        page,
        page_size,
    }))
}

/// End an IP's throttle (the operator): the throttle rules stay off for it for
/// `throttle.release_grace_hours`.
#[utoipa::path(
    post,
    path = "/api/v1/throttle/{ip}/release",
    tag = "throttle",
    params(("ip" = String, Path, description = "An IPv4 or IPv6 address")),
    responses(
        (status = 200, description = "Released; the IP's status after it", body = ReleaseAnswer),
        (status = 400, description = "Not an IP address", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(s): State<AppState>,
    p: Principal,
    Path(ip): Path<String>,
) -> ApiResult<Json<ReleaseAnswer>> {
    require_operator(&p)?;
    let ip = ip_param(&ip)?;
    let now = s.clock.now();
    let was_throttled = s.throttle.release(ip, now);
    tracing::info!("throttle of {ip} released by the operator (was throttled: {was_throttled})");
    Ok(Json(ReleaseAnswer {
        was_throttled,
        status: status_body(s.throttle.status(ip, now), true, None),
    }))
}

/// A new exemption entry.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExemptionInput {
    /// An IPv4 address or network /24–/32, an IPv6 address or network /48–/128.
    network: String,
    /// The tenant (default: a tenant admin's own; the operator must name one).
    tenant: Option<String>,
}

/// An exemption entry.
#[derive(Serialize, ToSchema)]
struct Exemption {
    tenant: String,
    /// Canonical form: `192.0.2.0/24`, `192.0.2.7`, `2001:db8:1::/48`.
    network: String,
    /// When it was added (RFC 3339, UTC).
    created: String,
    /// The on-premises inbound connector that registers it (it goes with the connector); null
    /// for an entry added as such.
    connector: Option<String>,
}

impl From<ThrottleExemptionRow> for Exemption {
    fn from(r: ThrottleExemptionRow) -> Self {
        Exemption {
            tenant: r.tenant,
            network: r.network,
            created: time(r.created),
            connector: r.connector,
        }
    }
}

fn network_param(text: &str) -> ApiResult<Network> {
    Network::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The exemption entries of the caller's tenant (every tenant's for the operator), or of
/// `tenant`.
#[utoipa::path(
    get,
    path = "/api/v1/throttle/exemptions",
    tag = "throttle",
    params(TenantFilter),
    responses(
        (status = 200, description = "The entries, by tenant and network", body = [Exemption]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn list_exemptions(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<Exemption>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let scope = listing_scope(s, &p, f.tenant.as_deref())?;
        let rows = s.store.throttle_exemptions(scope)?;
        Ok(Json(rows.into_iter().map(Exemption::from).collect()))
    })
    .await
}

/// Exempt an IP address or network from throttling for a tenant (global admins): its on-premises
/// servers, which send for the whole organisation. It takes effect at once, even for an IP
/// throttled now.
#[utoipa::path(
    post,
    path = "/api/v1/throttle/exemptions",
    tag = "throttle",
    request_body = ExemptionInput,
    responses(
        (status = 201, description = "The new entry", body = Exemption),
        (status = 400, description = "Not an address or network of the allowed sizes (the entry and the rule are named), too many entries, no tenant named, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The tenant already has the entry", body = ErrorBody),
    )
)]
async fn add_exemption(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<ExemptionInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let network = network_param(&input.network)?;
    let named = input.tenant;
    let tenant = s
        .blocking(move |s| target_tenant(s, &p, named.as_deref()))
        .await?;
    let row = s
        .store
        .add_throttle_exemption(tenant, &network.to_string())
        .await?;
    s.blocking(reload_throttle_exemptions).await?;
    Ok((StatusCode::CREATED, Json(Exemption::from(row))).into_response())
}

/// The tenant whose entry a DELETE names.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RemoveParams {
    /// The tenant (default: a tenant admin's own; the operator must name one).
    tenant: Option<String>,
}

/// Remove an exemption entry (global admins); the IP is throttled as any other from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/throttle/exemptions/{network}",
    tag = "throttle",
    params(
        ("network" = String, Path, description = "The address or network, `/` percent-encoded (`192.0.2.0%2F24`)"),
        RemoveParams,
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an address or network of the allowed sizes, or no tenant named", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such entry, or no such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn remove_exemption(
    State(s): State<AppState>,
    p: Principal,
    Path(network): Path<String>,
    Query(q): Query<RemoveParams>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let network = network_param(&network)?;
    let tenant = s
        .blocking(move |s| target_tenant(s, &p, q.tenant.as_deref()))
        .await?;
    s.store
        .remove_throttle_exemption(tenant, &network.to_string())
        .await?;
    s.blocking(reload_throttle_exemptions).await?;
    Ok(StatusCode::NO_CONTENT)
}
