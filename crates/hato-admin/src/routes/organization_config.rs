//! A tenant's organisation-wide settings (Exchange's `Get-`/`Set-OrganizationConfig`) under
//! `/api/v1/tenants/{tenant}/organization-config`: global admins of the tenant and the operator.
//! Only `reject_direct_send` so far (`RejectDirectSend`, default false,
//! `exchange-online-behaviour.md` §9.1).

use crate::error::ErrorBody;
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::auth::Principal;
use hato_core::directory::Tenant;
use hato_store::OrganizationConfig;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, change))
}

/// The tenant's organisation settings.
#[derive(Serialize, ToSchema)]
struct OrganizationConfigView {
    tenant: String,
    /// `RejectDirectSend`: anonymous mail whose MAIL FROM domain is one of the tenant's accepted
    /// domains, from a client no inbound connector of the tenant matches, is refused
    /// (`550 5.7.68`).
    reject_direct_send: bool,
}

fn view(t: &Tenant, c: OrganizationConfig) -> OrganizationConfigView {
    OrganizationConfigView {
        tenant: t.name.clone(),
        reject_direct_send: c.reject_direct_send,
    }
}

/// A change: only the settings given change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrganizationConfigChange {
    reject_direct_send: Option<bool>,
}

/// The tenant's organisation settings (the defaults until changed).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/organization-config",
    tag = "organization",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The settings", body = OrganizationConfigView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<OrganizationConfigView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let c = s.store.organization_config(t.id)?;
        Ok(Json(view(&t, c)))
    })
    .await
}

/// Change the tenant's organisation settings (`Set-OrganizationConfig`); the edge takes the
/// change with the next MAIL FROM.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/organization-config",
    tag = "organization",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = OrganizationConfigChange,
    responses(
        (status = 200, description = "The settings after the change", body = OrganizationConfigView),
        (status = 400, description = "Not JSON, or a setting hato does not have", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<OrganizationConfigChange>, JsonRejection>,
) -> ApiResult<Json<OrganizationConfigView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let (t, mut config) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let c = s.store.organization_config(t.id)?;
            Ok((t, c))
        })
        .await?;
    if let Some(v) = input.reject_direct_send {
        config.reject_direct_send = v;
    }
    let stored = s.store.set_organization_config(t.id, config).await?;
    Ok(Json(view(&t, stored)))
}
