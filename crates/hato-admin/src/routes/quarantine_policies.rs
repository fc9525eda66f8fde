//! Quarantine policies (Exchange's `New-`/`Get-`/`Set-`/`Remove-QuarantinePolicy`) under
//! `/api/v1/tenants/{tenant}/quarantine-policies`: what end users may do with the items a
//! policy governs, and whether they get quarantine notifications. Global admins of the tenant
//! and the operator.
//!
//! The built-in policies (`AdminOnlyAccessPolicy`, `DefaultFullAccessPolicy`,
//! `DefaultFullAccessWithNotificationPolicy`, `NotificationEnabledPolicy`;
//! exchange-online-behaviour.md §6.4) are listed with every tenant's and cannot be changed or
//! removed; custom ones are the tenant's. Anti-spam policies name one per verdict
//! (`*_quarantine_tag`); a policy one of them names cannot be removed (Exchange refuses to
//! remove a policy in use).

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use hato_core::auth::Principal;
use hato_store::{QuarantinePermission, QuarantinePermissions, QuarantinePolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(show, change, remove))
}

/// A quarantine policy.
#[derive(Serialize, ToSchema)]
pub(crate) struct QuarantinePolicyView {
    pub(crate) tenant: String,
    pub(crate) name: String,
    /// The end-user permissions, kebab case: `view-header`, `download`, `allow-sender`,
    /// `block-sender`, `request-release`, `release`, `preview`, `delete`.
    pub(crate) permissions: Vec<String>,
    /// Exchange's `EndUserQuarantinePermissionsValue` (the same, as its bits).
    pub(crate) permissions_value: u8,
    /// `ESNEnabled`: quarantine notifications for the items it governs.
    pub(crate) notifications: bool,
    /// One of Exchange's built-in policies (not changed, not removed).
    pub(crate) built_in: bool,
}

fn view(tenant: &str, p: QuarantinePolicy) -> QuarantinePolicyView {
    QuarantinePolicyView {
        tenant: tenant.to_string(),
        permissions: p
            .permissions
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
        permissions_value: p.permissions.0,
        name: p.name,
        notifications: p.notifications,
        built_in: p.built_in,
    }
}

/// A new policy, or a change to one (PATCH: only what is given changes).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuarantinePolicyInput {
    /// The new policy's name (POST only).
    pub(crate) name: Option<String>,
    /// The end-user permissions (they replace the policy's): kebab case, or Exchange's
    /// `PermissionTo…` names; `view` stands for `view-header`.
    pub(crate) permissions: Option<Vec<String>>,
    /// Exchange's `EndUserQuarantinePermissionsValue` (0-255), instead of `permissions`.
    pub(crate) permissions_value: Option<u8>,
    /// `ESNEnabled` (default false).
    pub(crate) notifications: Option<bool>,
}

/// The permissions an input names; `None` when it names none.
fn permissions_of(i: &QuarantinePolicyInput) -> ApiResult<Option<QuarantinePermissions>> {
    match (&i.permissions, i.permissions_value) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give permissions or permissions_value, not both",
        )),
        (None, Some(v)) => Ok(Some(QuarantinePermissions(v))),
        (None, None) => Ok(None),
        (Some(names), None) => {
            let mut set = QuarantinePermissions::NO_ACCESS;
            for n in names.iter().filter(|n| !n.trim().is_empty()) {
                let perm = QuarantinePermission::parse(n).ok_or_else(|| {
                    let all: Vec<&str> = QuarantinePermission::ALL
                        .iter()
                        .map(|p| p.as_str())
                        .collect();
                    ApiError::bad_request(format!(
                        "unknown permission {n:?}: use {}",
                        all.join(", ")
                    ))
                })?;
                set = set.with(perm);
            }
            Ok(Some(set))
        }
    }
}

/// The policy `name` of the tenant: a built-in one or a custom one.
pub(crate) fn find(s: &AppState, tenant: i64, name: &str) -> ApiResult<Option<QuarantinePolicy>> {
    Ok(super::quarantine::tenant_policies(s, tenant)?
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim())))
}

fn refuse_built_in(name: &str) -> ApiResult<()> {
    if QuarantinePolicy::built_in(name).is_some() {
        return Err(ApiError::bad_request(format!(
            "{name} is a built-in quarantine policy: it cannot be changed or removed"
        )));
    }
    Ok(())
}

/// A name Exchange would take: 1-64 characters, no control characters.
fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name: 1 to 64 characters, no control characters",
        ));
    }
    Ok(name.to_string())
}

/// The tenant's quarantine policies: the built-in ones, then its own by name.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/quarantine-policies",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The policies", body = [QuarantinePolicyView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<QuarantinePolicyView>>> {
    super::common::tenant_read(&s, p, tenant, |s, t| {
        Ok(Json(
            super::quarantine::tenant_policies(s, t.id)?
                .into_iter()
                .map(|q| view(&t.name, q))
                .collect(),
        ))
    })
    .await
}

/// One quarantine policy.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/quarantine-policies/{name}",
    tag = "quarantine",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name (any case)"),
    ),
    responses(
        (status = 200, description = "The policy", body = QuarantinePolicyView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<Json<QuarantinePolicyView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let found = find(s, t.id, &name)?
            .ok_or_else(|| ApiError::not_found(format!("quarantine policy {name} not found")))?;
        Ok(Json(view(&t.name, found)))
    })
    .await
}

/// Create a custom quarantine policy (`New-QuarantinePolicy`).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/quarantine-policies",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = QuarantinePolicyInput,
    responses(
        (status = 201, description = "The new policy", body = QuarantinePolicyView),
        (status = 400, description = "No name, a bad name or permission, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The name is taken (a built-in policy's too)", body = ErrorBody),
    )
)]
pub(crate) async fn add(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<QuarantinePolicyInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<QuarantinePolicyView>)> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let name = check_name(input.name.as_deref().unwrap_or_default())?;
    if QuarantinePolicy::built_in(&name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{name} is a built-in quarantine policy"),
        ));
    }
    let policy = QuarantinePolicy {
        name,
        permissions: permissions_of(&input)?.unwrap_or_default(),
        notifications: input.notifications.unwrap_or(false),
        built_in: false,
    };
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    s.store
        .put_quarantine_policy(t.id, policy.clone(), true, s.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&t.name, policy))))
}

/// Change a custom quarantine policy (`Set-QuarantinePolicy`): only what is given changes; the
/// items it governs follow at once.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/quarantine-policies/{name}",
    tag = "quarantine",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name (any case)"),
    ),
    request_body = QuarantinePolicyInput,
    responses(
        (status = 200, description = "The policy after the change", body = QuarantinePolicyView),
        (status = 400, description = "A built-in policy, a bad permission, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
    payload: Result<Json<QuarantinePolicyInput>, JsonRejection>,
) -> ApiResult<Json<QuarantinePolicyView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    if input.name.is_some() {
        return Err(ApiError::bad_request(
            "name: a policy is not renamed (its items name it)",
        ));
    }
    refuse_built_in(&name)?;
    let perms = permissions_of(&input)?;
    let (t, mut policy) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let found = find(s, t.id, &name)?.ok_or_else(|| {
                ApiError::not_found(format!("quarantine policy {name} not found"))
            })?;
            Ok((t, found))
        })
        .await?;
    if let Some(perms) = perms {
        policy.permissions = perms;
    }
    if let Some(n) = input.notifications {
        policy.notifications = n;
    }
    s.store
        .put_quarantine_policy(t.id, policy.clone(), false, s.clock.now())
        .await?;
    Ok(Json(view(&t.name, policy)))
}

/// Remove a custom quarantine policy (`Remove-QuarantinePolicy`); refused while an anti-spam
/// policy names it. Items held under it keep its name and are then for admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/quarantine-policies/{name}",
    tag = "quarantine",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name (any case)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A built-in policy", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy", body = ErrorBody),
        (status = 409, description = "An anti-spam or malware filter policy names it", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    refuse_built_in(&name)?;
    let (t, stored) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let found = find(s, t.id, &name)?.ok_or_else(|| {
                ApiError::not_found(format!("quarantine policy {name} not found"))
            })?;
            for sp in s.store.spam_filters(t.id)? {
                if let Some((setting, _)) = sp
                    .policy
                    .quarantine_tags()
                    .into_iter()
                    .find(|(_, tag)| tag.eq_ignore_ascii_case(&found.name))
                {
                    return Err(ApiError::new(StatusCode::CONFLICT, format!(
                        "quarantine policy {} is in use: the anti-spam policy {} names it as {setting}",
                        found.name, sp.name
                    )));
                }
            }
            for mp in s.store.malware_filters(t.id)? {
                if mp.quarantine_tag.eq_ignore_ascii_case(&found.name) {
                    return Err(ApiError::new(StatusCode::CONFLICT, format!(
                        "quarantine policy {} is in use: the malware filter policy {} names it as quarantine_tag",
                        found.name, mp.name
                    )));
                }
            }
            Ok((t, found.name))
        })
        .await?;
    s.store.remove_quarantine_policy(t.id, &stored).await?;
    Ok(StatusCode::NO_CONTENT)
}
