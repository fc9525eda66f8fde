//! A tenant's connection filter policy (Exchange's `Get-`/`Set-HostedConnectionFilterPolicy
//! -Identity Default`): its IP allow list and IP block list. Global admins of the tenant and the
//! operator; a change is a set of additions and removals per list (Exchange's
//! `@{Add=…; Remove=…}`), every entry checked before anything changes.

use crate::error::{ApiError, ErrorBody};
use crate::state::{
    ApiResult, AppState, TenantFilter, body, requested_tenant, require_global_admin,
};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use hato_core::auth::Principal;
use hato_core::directory::Tenant;
use hato_protection::ip::IpEntry;
use hato_store::{ConnectionFilterChange, ConnectionFilterPolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, change))
}

/// A tenant's connection filter policy.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConnectionFilterView {
    tenant: String,
    /// Exchange's `IPAllowList`: these clients are let in (spam filtering skipped, the
    /// provider's block list lifted for this tenant's recipients; DNS block lists and the
    /// malware filter still apply). An address on both lists is allowed.
    ip_allow_list: Vec<String>,
    /// Exchange's `IPBlockList`: these clients get `550 5.7.513` at RCPT.
    ip_block_list: Vec<String>,
}

/// Entries to add to and remove from one list: an IPv4 address, a range `a-b` of at most 256
/// addresses, a CIDR block /24 to /32, an IPv6 address or CIDR block /48 to /128.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// A change of the policy: removals first, then additions, in one write.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyChange {
    #[serde(default)]
    ip_allow_list: ListChange,
    #[serde(default)]
    ip_block_list: ListChange,
}

fn view(t: Tenant, policy: ConnectionFilterPolicy) -> ConnectionFilterView {
    ConnectionFilterView {
        tenant: t.name,
        ip_allow_list: policy.ip_allow_list,
        ip_block_list: policy.ip_block_list,
    }
}

/// Each entry in its canonical text; every bad one named, with the rule it breaks.
fn canonical(list: &str, entries: &[String], bad: &mut Vec<String>) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match IpEntry::parse(e) {
            Ok(entry) => Some(entry.to_string()),
            Err(error) => {
                bad.push(format!("{list}: {error}"));
                None
            }
        })
        .collect()
}

/// A tenant's connection filter policy.
#[utoipa::path(
    get,
    path = "/api/v1/connection-filter",
    tag = "connection filter",
    params(TenantFilter),
    responses(
        (status = 200, description = "The policy", body = ConnectionFilterView),
        (status = 400, description = "The operator named no tenant", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<TenantFilter>,
) -> ApiResult<Json<ConnectionFilterView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = requested_tenant(s, &p, q.tenant.as_deref())?;
        let policy = s.store.connection_filter(t.id)?;
        Ok(Json(view(t, policy)))
    })
    .await
}

/// Change a tenant's IP allow and block lists.
#[utoipa::path(
    patch,
    path = "/api/v1/connection-filter",
    tag = "connection filter",
    params(TenantFilter),
    request_body = PolicyChange,
    responses(
        (status = 200, description = "The policy after the change", body = ConnectionFilterView),
        (status = 400, description = "A bad entry (named, with the rule it breaks), a list over its limit, not JSON, or no tenant named by the operator", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<TenantFilter>,
    payload: Result<Json<PolicyChange>, JsonRejection>,
) -> ApiResult<Json<ConnectionFilterView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let mut bad = Vec::new();
    let change = ConnectionFilterChange {
        ip_allow_list_add: canonical("ip_allow_list", &input.ip_allow_list.add, &mut bad),
        ip_allow_list_remove: canonical("ip_allow_list", &input.ip_allow_list.remove, &mut bad),
        ip_block_list_add: canonical("ip_block_list", &input.ip_block_list.add, &mut bad),
        ip_block_list_remove: canonical("ip_block_list", &input.ip_block_list.remove, &mut bad),
    };
    if !bad.is_empty() {
        return Err(ApiError::bad_request(bad.join("; ")));
    }
    let t = s
        .blocking(move |s| requested_tenant(s, &p, q.tenant.as_deref()))
        .await?;
    let policy = s.store.change_connection_filter(t.id, change).await?;
    Ok(Json(view(t, policy)))
}
