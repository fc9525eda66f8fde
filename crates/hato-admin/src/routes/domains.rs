//! Accepted domains.

use crate::error::ApiError;
use crate::state::{
    ApiResult, AppState, TenantFilter, body, listing_scope, require_admin, require_global_admin,
    target_tenant,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hato_core::address::canonical_domain_name;
use hato_core::auth::Principal;
use hato_core::directory::DomainType;
use serde::Deserialize;
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/domains", get(list_domains).post(create_domain))
        .route(
            "/api/v1/domains/{domain}",
            get(get_domain).delete(delete_domain),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainInput {
    domain: String,
    tenant: Option<String>,
    #[serde(rename = "type")]
    domain_type: Option<String>,
}

async fn create_domain(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<DomainInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let tenant = target_tenant(&s, &p, input.tenant.as_deref())?;
    let domain = canonical_domain_name(&input.domain)
        .map_err(|e| ApiError::bad_request(format!("{}: {e}", input.domain)))?;
    if domain.starts_with('[') {
        return Err(ApiError::bad_request(
            "an accepted domain must be a domain name",
        ));
    }
    let kind = match input.domain_type.as_deref() {
        None => DomainType::Authoritative,
        Some(t) => DomainType::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown domain type {t}: use authoritative or internal-relay"
            ))
        })?,
    };
    let d = s.store.add_domain(&domain, tenant, kind).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(d).unwrap_or_default()),
    )
        .into_response())
}

async fn list_domains(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let scope = listing_scope(&s, &p, f.tenant.as_deref())?;
    Ok(Json(
        serde_json::to_value(s.store.domains(scope)?).unwrap_or_default(),
    ))
}

fn visible_domain(s: &AppState, p: &Principal, domain: &str) -> ApiResult<String> {
    let name = canonical_domain_name(domain)
        .map_err(|_| ApiError::not_found(format!("domain {domain} not found")))?;
    match s.store.domain(&name)? {
        Some((tenant, _)) if p.sees(tenant) => Ok(name),
        _ => Err(ApiError::not_found(format!("domain {domain} not found"))),
    }
}

async fn get_domain(
    State(s): State<AppState>,
    p: Principal,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let name = visible_domain(&s, &p, &domain)?;
    let d = s
        .store
        .domains(None)?
        .into_iter()
        .find(|d| d.domain == name);
    d.map(|d| Json(serde_json::to_value(d).unwrap_or_default()))
        .ok_or_else(|| ApiError::not_found(format!("domain {domain} not found")))
}

async fn delete_domain(
    State(s): State<AppState>,
    p: Principal,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let name = visible_domain(&s, &p, &domain)?;
    s.store.remove_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
