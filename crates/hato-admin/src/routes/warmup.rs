//! Outbound pools' warm-up (issue 10 item 9) under `/api/v1/warmup`: each pool's plan, where it
//! stands today (day N of M, the allowance, what was sent, deferred by pacing, the throttling
//! back-offs), setting and clearing plans. Pools are the server's (`[outbound]` and
//! `[outbound.high_risk]`), not a tenant's: the operator only.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_operator};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use hato_core::Timestamp;
use hato_core::auth::Principal;
use hato_store::{OutboundBackoff, WarmupDay, WarmupPlan};
use hato_transport::outbound::warmup::{self, PlanDay, PlanKind};
use hato_transport::outbound::{HIGH_RISK_POOL, NORMAL_POOL};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, set, clear))
}

/// A pool's plan as set.
#[derive(Serialize, ToSchema)]
struct PlanView {
    /// `30-day`, `15-day` or `custom`.
    kind: String,
    monthly_volume: Option<u64>,
    /// One allowance (recipients) per UTC day of the plan.
    daily_limits: Vec<u64>,
    /// RFC 3339, UTC; day 1 is this UTC day.
    start: String,
    created: String,
}

/// A pool's back-off from a destination domain after throttling replies.
#[derive(Serialize, ToSchema)]
struct BackoffView {
    domain: String,
    /// Throttling replies in a row (no delivery to the domain since).
    count: u32,
    /// RFC 3339, UTC.
    until: String,
    /// Whether it holds mail back now.
    active: bool,
    last_reply: String,
    last_host: String,
}

/// Where a pool stands today (the server's UTC day).
#[derive(Serialize, ToSchema)]
struct PoolStatus {
    pool: String,
    plan: Option<PlanView>,
    /// `none`, `not-started`, `active` or `complete`.
    state: String,
    /// The plan day today is (1-based), while active.
    day: Option<usize>,
    /// The plan's days.
    days: Option<usize>,
    /// The plan's allowance for today, while active.
    daily_limit: Option<u64>,
    /// Taken from today's allowance by throttling replies.
    reduced: u64,
    /// Today's allowance after that: recipients the pool may deliver today.
    allowance: Option<u64>,
    /// Recipients delivered today.
    sent_today: u64,
    /// What remains of today's allowance.
    remaining: Option<u64>,
    /// Recipients deferred to the next day by pacing today.
    deferred_today: u64,
    /// Throttling back-offs begun today.
    throttled_today: u64,
    backoffs: Vec<BackoffView>,
    /// When the plan completes (the start of the UTC day after its last), RFC 3339.
    completes: Option<String>,
    /// The server's time, RFC 3339.
    now: String,
}

/// A plan to set. `plan` `30-day` and `15-day` take `monthly_volume`; `custom` takes
/// `daily_limits` (`"50,100,200"`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    plan: String,
    monthly_volume: Option<u64>,
    daily_limits: Option<String>,
    /// When day 1 is (RFC 3339, or a date: its UTC day); default now.
    start: Option<String>,
}

/// The server's pools: the normal and the high-risk one, by their configured names.
fn pools(s: &AppState) -> Vec<String> {
    match &s.outbound {
        Some(o) => vec![o.normal.name.clone(), o.high_risk.name.clone()],
        None => vec![NORMAL_POOL.to_string(), HIGH_RISK_POOL.to_string()],
    }
}

fn known_pool(s: &AppState, pool: &str) -> ApiResult<()> {
    let pools = pools(s);
    if pools.iter().any(|p| p == pool) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "--pool: no outbound pool named {pool:?} (pools: {})",
            pools.join(", ")
        )))
    }
}

fn status(
    pool: &str,
    plan: Option<WarmupPlan>,
    day: Option<&WarmupDay>,
    backoffs: Vec<OutboundBackoff>,
    now: Timestamp,
) -> PoolStatus {
    let today = warmup::utc_day(now);
    let counts = day.cloned().unwrap_or_default();
    let standing = plan.as_ref().map(|p| warmup::plan_day(p, today));
    let (state, n, of, limit) = match standing {
        None => ("none", None, None, None),
        Some(PlanDay::NotStarted) => ("not-started", None, None, None),
        Some(PlanDay::Day { n, of, limit }) => ("active", Some(n), Some(of), Some(limit)),
        Some(PlanDay::Complete) => ("complete", None, None, None),
    };
    let allowance = limit.map(|l| l.saturating_sub(counts.reduced));
    PoolStatus {
        pool: pool.to_string(),
        days: of.or(plan.as_ref().map(|p| p.daily_limits.len())),
        completes: plan.as_ref().map(|p| warmup::completes(p).to_rfc3339()),
        plan: plan.map(|p| PlanView {
            kind: p.kind,
            monthly_volume: p.monthly_volume,
            daily_limits: p.daily_limits,
            start: p.start.to_rfc3339(),
            created: p.created.to_rfc3339(),
        }),
        state: state.to_string(),
        day: n,
        daily_limit: limit,
        reduced: counts.reduced,
        allowance,
        sent_today: counts.sent,
        remaining: allowance.map(|a| a.saturating_sub(counts.sent)),
        deferred_today: counts.deferred,
        throttled_today: counts.throttled,
        backoffs: backoffs
            .into_iter()
            .map(|b| BackoffView {
                active: b.until > now,
                domain: b.domain,
                count: b.count,
                until: b.until.to_rfc3339(),
                last_reply: b.last_reply,
                last_host: b.last_host,
            })
            .collect(),
        now: now.to_rfc3339(),
    }
}

/// Every pool's status, or one's.
fn statuses(s: &AppState, only: Option<&str>) -> ApiResult<Vec<PoolStatus>> {
    let now = s.clock.now();
    let plans = s.store.warmup_plans()?;
    let days = s.store.warmup_days(warmup::utc_day(now))?;
    let backoffs = s.store.outbound_backoffs()?;
    Ok(pools(s)
        .into_iter()
        .filter(|p| only.is_none_or(|o| o == p))
        .map(|pool| {
            let plan = plans.iter().find(|p| p.pool == pool).cloned();
            let day = days.iter().find(|d| d.pool == pool);
            let backoffs = backoffs
                .iter()
                .filter(|b| b.pool == pool)
                .cloned()
                .collect();
            status(&pool, plan, day, backoffs, now)
        })
        .collect())
}

/// Every outbound pool's warm-up status.
#[utoipa::path(
    get,
    path = "/api/v1/warmup",
    tag = "warm-up",
    responses(
        (status = 200, description = "Each pool's plan and where it stands today", body = Vec<PoolStatus>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
    )
)]
async fn list(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<PoolStatus>>> {
    require_operator(&p)?;
    s.blocking(|s| statuses(s, None).map(Json)).await
}

/// One pool's warm-up status.
#[utoipa::path(
    get,
    path = "/api/v1/warmup/{pool}",
    tag = "warm-up",
    params(("pool" = String, Path, description = "The pool's name (normal, high-risk)")),
    responses(
        (status = 200, description = "The pool's plan and where it stands today", body = PoolStatus),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such pool", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(pool): Path<String>,
) -> ApiResult<Json<PoolStatus>> {
    require_operator(&p)?;
    known_pool(&s, &pool)?;
    s.blocking(move |s| {
        statuses(s, Some(&pool))?
            .pop()
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("--pool: no outbound pool named {pool:?}")))
    })
    .await
}

/// Set (or replace) a pool's warm-up plan; the outbound agent paces to it from its next look at
/// the queue. Today's counts stay.
#[utoipa::path(
    put,
    path = "/api/v1/warmup/{pool}",
    tag = "warm-up",
    params(("pool" = String, Path, description = "The pool's name (normal, high-risk)")),
    request_body = PlanInput,
    responses(
        (status = 200, description = "The pool's status with the plan", body = PoolStatus),
        (status = 400, description = "A bad value, named by its flag", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such pool", body = ErrorBody),
    )
)]
async fn set(
    State(s): State<AppState>,
    p: Principal,
    Path(pool): Path<String>,
    payload: Result<Json<PlanInput>, JsonRejection>,
) -> ApiResult<Json<PoolStatus>> {
    require_operator(&p)?;
    known_pool(&s, &pool)?;
    let input = body(payload)?;
    let kind = PlanKind::parse(&input.plan).ok_or_else(|| {
        ApiError::bad_request(warmup::PlanError::UnknownPlan(input.plan.clone()).to_string())
    })?;
    let limits = warmup::daily_limits(kind, input.monthly_volume, input.daily_limits.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let start = match input.start.as_deref() {
        None => s.clock.now(),
        Some(text) => Timestamp::parse_human(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "--start: {text:?} is not a time (give 2026-12-01 or 2026-12-01T09:00:00Z)"
            ))
        })?,
    };
    s.store
        .set_warmup_plan(WarmupPlan {
            pool: pool.clone(),
            kind: kind.as_str().to_string(),
            monthly_volume: input.monthly_volume,
            daily_limits: limits,
            start,
            created: start,
        })
        .await?;
    tracing::info!("warm-up plan {} set for pool {pool}", kind.as_str());
    s.blocking(move |s| {
        statuses(s, Some(&pool))?
            .pop()
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("--pool: no outbound pool named {pool:?}")))
    })
    .await
}

/// Remove a pool's warm-up plan: it is no longer paced.
#[utoipa::path(
    delete,
    path = "/api/v1/warmup/{pool}",
    tag = "warm-up",
    params(("pool" = String, Path, description = "The pool's name (normal, high-risk)")),
    responses(
        (status = 204, description = "The plan is gone"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such pool, or it has no plan", body = ErrorBody),
    )
)]
async fn clear(
    State(s): State<AppState>,
    p: Principal,
    Path(pool): Path<String>,
) -> ApiResult<StatusCode> {
    require_operator(&p)?;
    known_pool(&s, &pool)?;
    if s.store.clear_warmup_plan(&pool).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "pool {pool} has no warm-up plan"
        )))
    }
}
