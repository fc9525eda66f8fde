//! Tenants (the operator's) and tenant admins' tokens.

use crate::error::ApiError;
use crate::state::{ApiResult, AppState, body, require_operator, visible_tenant};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hato_core::auth::{Principal, Role};
use hato_core::directory::Tenant;
use hato_core::id;
use hato_store::hash_token;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/api/v1/tenants/{name}",
            get(get_tenant).delete(delete_tenant),
        )
        .route(
            "/api/v1/tenants/{name}/tokens",
            axum::routing::post(create_token),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantInput {
    name: String,
}

fn tenant_json(t: &Tenant) -> Value {
    json!({ "name": t.name })
}

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

async fn list_tenants(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Value>>> {
    let all = s.store.tenants()?;
    Ok(Json(
        all.iter()
            .filter(|t| p.sees(t.id))
            .map(tenant_json)
            .collect(),
    ))
}

async fn get_tenant(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(tenant_json(&visible_tenant(&s, &p, &name)?)))
}

async fn delete_tenant(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let t = visible_tenant(&s, &p, &name)?;
    require_operator(&p)?;
    s.store.remove_tenant(t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenParams {
    role: Option<String>,
}

async fn create_token(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    payload: Option<Json<TokenParams>>,
) -> ApiResult<Response> {
    let params = payload.map(|Json(v)| v).unwrap_or_default();
    require_operator(&p)?;
    let t = visible_tenant(&s, &p, &name)?;
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
        Json(json!({ "token": token, "role": role.as_str(), "tenant": t.name })),
    )
        .into_response())
}
