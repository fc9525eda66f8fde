//! Tenants (the operator's) and tenant admins' tokens.

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{ApiResult, AppState, Path, body, require_operator, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::auth::{Principal, Role};
use hato_core::directory::Tenant;
use hato_core::id;
use hato_store::hash_token;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, delete_tenant))
        .routes(routes!(create_token))
}

/// A new tenant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantInput {
    /// 1-64 letters, digits, `-`, `_` and `.`.
    name: String,
}

/// A tenant.
#[derive(Serialize, ToSchema)]
#[schema(as = Tenant)]
struct TenantView {
    name: String,
}

/// A new tenant admin's token; shown once, only its hash is kept.
#[derive(Serialize, ToSchema)]
struct TenantToken {
    token: String,
    /// `tenant-admin` (a global admin of the tenant) or `recipient-admin`.
    role: String,
    tenant: String,
}

fn tenant_json(t: &Tenant) -> TenantView {
    TenantView {
        name: t.name.clone(),
    }
}

/// Create a tenant (the operator only).
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = TenantInput,
    responses(
        (status = 201, description = "The new tenant", body = TenantView),
        (status = 400, description = "Not a valid tenant name, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 409, description = "The tenant exists already", body = ErrorBody),
    )
)]
async fn create_tenant(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<TenantInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_operator(&p)?;
    let input = body(payload)?;
    let name = input.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::bad_request(
            "a tenant name is 1-64 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    let t = s.store.create_tenant(name).await?;
    Ok((StatusCode::CREATED, Json(tenant_json(&t))).into_response())
}

/// The tenants the caller sees: all for the operator, its own for anyone else.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    responses(
        (status = 200, description = "The tenants", body = [TenantView]),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn list_tenants(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<TenantView>>> {
    let all = s.blocking(|s| Ok(s.store.tenants()?)).await?;
    Ok(Json(
        all.iter()
            .filter(|t| p.sees(t.id))
            .map(tenant_json)
            .collect(),
    ))
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{name}",
    tag = "tenants",
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn get_tenant(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let t = s.blocking(move |s| visible_tenant(s, &p, &name)).await?;
    Ok(Json(tenant_json(&t)))
}

/// Remove a tenant and everything in it (the operator only).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{name}",
    tag = "tenants",
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn delete_tenant(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let t = s.blocking(move |s| visible_tenant(s, &p, &name)).await?;
    require_operator(&p)?;
    s.store.remove_tenant(t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the token may do; the body may be left out (a global admin's token).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenParams {
    /// `global-admin` (also `tenant-admin`, the default) or `recipient-admin`.
    role: Option<String>,
}

/// Create a tenant admin's token (the operator only).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{name}/tokens",
    tag = "tenants",
    params(("name" = String, Path, description = "The tenant's name")),
    request_body(content = Option<TokenParams>, description = "May be left out"),
    responses(
        (status = 201, description = "The token (shown once)", body = TenantToken),
        (status = 400, description = "Unknown role", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
async fn create_token(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    payload: Option<Json<TokenParams>>,
) -> ApiResult<Response> {
    let params = payload.map(|Json(v)| v).unwrap_or_default();
    require_operator(&p)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &name)).await?;
    let role = match params.role.as_deref() {
        None | Some("tenant-admin") | Some("global-admin") => Role::TenantAdmin,
        Some("recipient-admin") => Role::RecipientAdmin,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown role {other}: use global-admin or recipient-admin"
            )));
        }
    };
    let token = id::new_token();
    let info = hato_store::TokenInfo {
        role,
        tenant_id: Some(t.id),
        mailbox_id: None,
        expires: None,
    };
    s.store.add_token(&hash_token(&token), info).await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantToken {
            token,
            role: role.as_str().to_string(),
            tenant: t.name,
        }),
    )
        .into_response())
}
