//! A tenant's outbound spam filter policy (Exchange's `Get-`/`Set-HostedOutboundSpamFilterPolicy`)
//! under `/api/v1/tenants/{tenant}/outbound-spam-filter`, and its restricted senders (the
//! "Restricted entities" page, `Get-`/`Remove-BlockedSenderAddress`) under
//! `/api/v1/tenants/{tenant}/restricted-senders`: global admins of the tenant and the operator
//! (Exchange: Organization Management or Security Administrator,
//! `exchange-online-behaviour.md` §7.3).

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::auth::Principal;
use hato_core::directory::Tenant;
use hato_protection::spam::outbound::{
    MAX_RECIPIENT_LIMIT, OutboundSpamPolicy, SERVICE_RECIPIENT_LIMIT, ThresholdAction,
};
use hato_store::RestrictedSender;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, change))
        .routes(routes!(list_restricted))
        .routes(routes!(remove_restricted))
}

/// The tenant's outbound spam filter policy.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutboundSpamFilterView {
    tenant: String,
    /// `RecipientLimitExternalPerHour`: recipients outside the organisation a sender may send to
    /// per hour (UTC clock hour); 0 = the service default.
    recipient_limit_external_per_hour: u32,
    /// `RecipientLimitInternalPerHour`: recipients inside the organisation per hour.
    recipient_limit_internal_per_hour: u32,
    /// `RecipientLimitPerDay`: all recipients per day (UTC).
    recipient_limit_per_day: u32,
    /// The limits in force (0 replaced by the service default, 10,000 recipients).
    effective_limits: EffectiveLimits,
    /// `ActionWhenThresholdReached`: `alert`, `block-user`, `block-user-for-today` (default).
    action_when_threshold_reached: String,
    /// `NotifyOutboundSpam`: alerts go to `notify_outbound_spam_recipients` too (the tenant's
    /// global admins always get them).
    notify_outbound_spam: bool,
    notify_outbound_spam_recipients: Vec<String>,
    /// `BccSuspiciousOutboundMail`: a copy of each outbound message judged spam goes to
    /// `bcc_suspicious_outbound_additional_recipients`.
    bcc_suspicious_outbound_mail: bool,
    bcc_suspicious_outbound_additional_recipients: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct EffectiveLimits {
    external_per_hour: u32,
    internal_per_hour: u32,
    per_day: u32,
}

fn view(t: &Tenant, p: OutboundSpamPolicy) -> OutboundSpamFilterView {
    let (external_per_hour, internal_per_hour, per_day) = p.limits();
    OutboundSpamFilterView {
        tenant: t.name.clone(),
        recipient_limit_external_per_hour: p.recipient_limit_external_per_hour,
        recipient_limit_internal_per_hour: p.recipient_limit_internal_per_hour,
        recipient_limit_per_day: p.recipient_limit_per_day,
        effective_limits: EffectiveLimits {
            external_per_hour,
            internal_per_hour,
            per_day,
        },
        action_when_threshold_reached: p.action_when_threshold_reached.as_str().to_string(),
        notify_outbound_spam: p.notify_outbound_spam,
        notify_outbound_spam_recipients: p.notify_outbound_spam_recipients,
        bcc_suspicious_outbound_mail: p.bcc_suspicious_outbound_mail,
        bcc_suspicious_outbound_additional_recipients: p
            .bcc_suspicious_outbound_additional_recipients,
    }
}

/// A change: only the settings given change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboundSpamFilterChange {
    recipient_limit_external_per_hour: Option<i64>,
    recipient_limit_internal_per_hour: Option<i64>,
    recipient_limit_per_day: Option<i64>,
    action_when_threshold_reached: Option<String>,
    notify_outbound_spam: Option<bool>,
    notify_outbound_spam_recipients: Option<Vec<String>>,
    bcc_suspicious_outbound_mail: Option<bool>,
    bcc_suspicious_outbound_additional_recipients: Option<Vec<String>>,
}

/// A list of addresses as given, canonical; 400 naming the setting for one that is not one.
fn addresses(name: &str, list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for a in list {
        let parsed = hato_core::Address::parse(a.trim()).map_err(|e| {
            ApiError::bad_request(format!("{name}: {a:?} is not an email address: {e}"))
        })?;
        out.push(parsed.to_string());
    }
    Ok(out)
}

fn limit(name: &str, v: i64) -> Result<u32, ApiError> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v <= MAX_RECIPIENT_LIMIT)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} must be 0 (the service default, {SERVICE_RECIPIENT_LIMIT}) to {MAX_RECIPIENT_LIMIT}, not {v}"
            ))
        })
}

/// The tenant's outbound spam filter policy (Exchange's defaults until changed).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/outbound-spam-filter",
    tag = "outbound spam",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The policy", body = OutboundSpamFilterView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<OutboundSpamFilterView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let policy = s.store.outbound_spam_filter(t.id)?;
        Ok(Json(view(&t, policy)))
    })
    .await
}

/// Change the tenant's outbound spam filter policy (`Set-HostedOutboundSpamFilterPolicy`); the
/// next message counted uses it.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/outbound-spam-filter",
    tag = "outbound spam",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = OutboundSpamFilterChange,
    responses(
        (status = 200, description = "The policy after the change", body = OutboundSpamFilterView),
        (status = 400, description = "Not JSON, a setting hato does not have, or a value out of range", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<OutboundSpamFilterChange>, JsonRejection>,
) -> ApiResult<Json<OutboundSpamFilterView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let (t, mut policy) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let policy = s.store.outbound_spam_filter(t.id)?;
            Ok((t, policy))
        })
        .await?;
    if let Some(v) = input.recipient_limit_external_per_hour {
        policy.recipient_limit_external_per_hour = limit("recipient_limit_external_per_hour", v)?;
    }
    if let Some(v) = input.recipient_limit_internal_per_hour {
        policy.recipient_limit_internal_per_hour = limit("recipient_limit_internal_per_hour", v)?;
    }
    if let Some(v) = input.recipient_limit_per_day {
        policy.recipient_limit_per_day = limit("recipient_limit_per_day", v)?;
    }
    if let Some(a) = input.action_when_threshold_reached {
        policy.action_when_threshold_reached = ThresholdAction::parse(&a).ok_or_else(|| {
            ApiError::bad_request(format!(
                "action_when_threshold_reached must be alert, block-user or block-user-for-today, not {a:?}"
            ))
        })?;
    }
    if let Some(v) = input.notify_outbound_spam {
        policy.notify_outbound_spam = v;
    }
    if let Some(list) = input.notify_outbound_spam_recipients {
        policy.notify_outbound_spam_recipients =
            addresses("notify_outbound_spam_recipients", list)?;
    }
    if let Some(v) = input.bcc_suspicious_outbound_mail {
        policy.bcc_suspicious_outbound_mail = v;
    }
    if let Some(list) = input.bcc_suspicious_outbound_additional_recipients {
        policy.bcc_suspicious_outbound_additional_recipients =
            addresses("bcc_suspicious_outbound_additional_recipients", list)?;
    }
    let stored = s.store.set_outbound_spam_filter(t.id, policy).await?;
    Ok(Json(view(&t, stored)))
}

/// A restricted sender.
#[derive(Serialize, ToSchema)]
struct RestrictedSenderView {
    sender: String,
    /// The action that restricted it: `block-user` (until unblocked) or `block-user-for-today`.
    action: String,
    reason: String,
    /// When it was restricted (RFC 3339, UTC).
    blocked_at: String,
    /// When the restriction lifts by itself (the next UTC day); `null`: when an admin unblocks it.
    until: Option<String>,
}

fn restricted_view(r: RestrictedSender) -> RestrictedSenderView {
    RestrictedSenderView {
        sender: r.sender,
        action: r.action,
        reason: r.reason,
        blocked_at: r.blocked_at.to_rfc3339(),
        until: r.until.map(|t| t.to_rfc3339()),
    }
}

/// The tenant's restricted senders (`Get-BlockedSenderAddress`): those whose restriction is in
/// force now.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/restricted-senders",
    tag = "outbound spam",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The restricted senders, oldest first", body = Vec<RestrictedSenderView>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn list_restricted(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<RestrictedSenderView>>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let now = s.clock.now();
        let list = s.store.restricted_senders(t.id, now)?;
        Ok(Json(list.into_iter().map(restricted_view).collect()))
    })
    .await
}

/// Unblock a restricted sender (`Remove-BlockedSenderAddress`): it may send again at once, with
/// its recipient counts started afresh.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/restricted-senders/{sender}",
    tag = "outbound spam",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("sender" = String, Path, description = "The restricted sender's address"),
    ),
    responses(
        (status = 200, description = "The restriction that was removed", body = RestrictedSenderView),
        (status = 400, description = "Not an email address", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant, or the sender is not restricted", body = ErrorBody),
    )
)]
async fn remove_restricted(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, sender)): Path<(String, String)>,
) -> ApiResult<Json<RestrictedSenderView>> {
    require_global_admin(&p)?;
    let address = hato_core::Address::parse(sender.trim())
        .map_err(|e| ApiError::bad_request(format!("{sender:?} is not an email address: {e}")))?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    let now = s.clock.now();
    let removed = s
        .store
        .remove_restricted_sender(t.id, &address.to_string(), now)
        .await?;
    Ok(Json(restricted_view(removed)))
}
