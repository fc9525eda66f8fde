//! Accepted domains.

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{
    ApiResult, AppState, Path, TenantFilter, body, listing_scope, require_admin,
    require_global_admin, target_tenant,
};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::address::canonical_domain_name;
use hato_core::auth::Principal;
use hato_core::auth::Role;
use hato_core::directory::{AcceptedDomain, DomainStatus, DomainType};
use hato_core::dns::RecordKind;
use hato_store::StoreError;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_domains, create_domain))
        .routes(routes!(get_domain, delete_domain))
        .routes(routes!(verify_domain))
}

/// A new accepted domain.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainInput {
    /// A domain name (U-labels or A-labels), not an address literal.
    domain: String,
    /// The tenant (default: a tenant admin's own; the operator must name one).
    tenant: Option<String>,
    /// `authoritative` (the default) or `internal-relay`.
    #[serde(rename = "type")]
    domain_type: Option<String>,
}

/// An accepted domain (`hato_core::directory::AcceptedDomain` as the API writes it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `AcceptedDomain`; never built
struct Domain {
    /// Lower-case, internationalised domains in U-labels.
    domain: String,
    tenant: String,
    #[schema(rename = "type")]
    domain_type: DomainKind,
    status: VerificationStatus,
    /// The DNS TXT record to publish at the domain to verify it:
    /// `hato-verification=<token>`, the token random per domain and claim.
    verification_record: String,
}

/// Whether mail for the domain is taken.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // describes `hato_core::directory::DomainStatus`; never built
enum VerificationStatus {
    /// Added by a tenant admin; mail for it is refused (`550 5.7.1 Unable to relay`) until its
    /// verification record is seen (`POST /api/v1/domains/{domain}/verify`).
    Pending,
    /// Mail for it is taken (added by the operator, or verified).
    Verified,
}

/// Exchange's `DomainType`.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // describes `hato_core::directory::DomainType`; never built
enum DomainKind {
    /// Every recipient must exist; unknown ones are refused at RCPT.
    Authoritative,
    /// Unknown recipients are relayed to the organisation's own server.
    InternalRelay,
}

/// Add an accepted domain (global admins). A tenant admin's domain is `pending` until its
/// verification record is seen in the DNS; the operator's is `verified` at once.
#[utoipa::path(
    post,
    path = "/api/v1/domains",
    tag = "domains",
    request_body = DomainInput,
    responses(
        (status = 201, description = "The new domain, with the verification record to publish", body = Domain),
        (status = 400, description = "Not a domain name, an unknown type, no tenant named, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The domain is held by a tenant (which one is not said)", body = ErrorBody),
    )
)]
pub(crate) async fn create_domain(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<DomainInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let named = input.tenant.clone();
    let tenant = s
        .blocking(move |s| target_tenant(s, &p, named.as_deref()))
        .await?;
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
    // The operator vouches for the domain; a tenant admin shows control of it in the DNS.
    let added = if p.role == Role::Operator {
        s.store.add_domain(&domain, tenant, kind).await
    } else {
        s.store.add_pending_domain(&domain, tenant, kind).await
    };
    let d = added.map_err(|e| match e {
        // Whoever holds it, pending or verified: the answer names no tenant and no state, so
        // a tenant admin learns only that the name is taken here (see docs/interfaces.md).
        StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "domain {domain} is already an accepted domain here (of this or another tenant; \
                 which is not said); if your organisation owns it, ask the platform operator"
            ),
        ),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// The accepted domains of the caller's tenant (all for the operator), or of `tenant`.
#[utoipa::path(
    get,
    path = "/api/v1/domains",
    tag = "domains",
    params(TenantFilter),
    responses(
        (status = 200, description = "The domains", body = [Domain]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn list_domains(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<AcceptedDomain>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let scope = listing_scope(s, &p, f.tenant.as_deref())?;
        Ok(Json(s.store.domains(scope)?))
    })
    .await
}

fn visible_domain(s: &AppState, p: &Principal, domain: &str) -> ApiResult<String> {
    let name = canonical_domain_name(domain)
        .map_err(|_| ApiError::not_found(format!("domain {domain} not found")))?;
    match s.store.domain(&name)? {
        Some((tenant, _)) if p.sees(tenant) => Ok(name),
        _ => Err(ApiError::not_found(format!("domain {domain} not found"))),
    }
}

/// One accepted domain.
#[utoipa::path(
    get,
    path = "/api/v1/domains/{domain}",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain name")),
    responses(
        (status = 200, description = "The domain", body = Domain),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such domain (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn get_domain(
    State(s): State<AppState>,
    p: Principal,
    Path(domain): Path<String>,
) -> ApiResult<Json<AcceptedDomain>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let name = visible_domain(s, &p, &domain)?;
        s.store
            .domains(None)?
            .into_iter()
            .find(|d| d.domain == name)
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("domain {domain} not found")))
    })
    .await
}

/// Remove an accepted domain (global admins).
#[utoipa::path(
    delete,
    path = "/api/v1/domains/{domain}",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such domain (or another tenant's)", body = ErrorBody),
        (status = 400, description = "Addresses still use the domain", body = ErrorBody),
    )
)]
pub(crate) async fn delete_domain(
    State(s): State<AppState>,
    p: Principal,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let name = s.blocking(move |s| visible_domain(s, &p, &domain)).await?;
    s.store.remove_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify a pending domain (global admins): its TXT records are looked up now (past any cached
/// answer) and, if one is its verification record, it is verified and its mail taken from then
/// on. A verified domain stays verified.
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/verify",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain name")),
    responses(
        (status = 200, description = "The domain, verified", body = Domain),
        (status = 400, description = "The verification record is not in the DNS (the answer says what was found)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such domain (or another tenant's)", body = ErrorBody),
        (status = 503, description = "The DNS lookup failed or timed out; try again", body = ErrorBody),
    )
)]
pub(crate) async fn verify_domain(
    State(s): State<AppState>,
    p: Principal,
    Path(domain): Path<String>,
) -> ApiResult<Json<AcceptedDomain>> {
    require_global_admin(&p)?;
    let (name, entry) = s
        .blocking(move |s| {
            let name = visible_domain(s, &p, &domain)?;
            let entry = s
                .store
                .domain_entry(&name)?
                .ok_or_else(|| ApiError::not_found(format!("domain {domain} not found")))?;
            Ok((name, entry))
        })
        .await?;
    if entry.status == DomainStatus::Verified {
        return Ok(Json(s.store.verify_domain(&name).await?));
    }
    let record = entry.verification_record;
    // A person runs this right after publishing the record: a "no such record" cached from an
    // earlier try must not answer for the DNS.
    s.resolver.forget(&name, RecordKind::Txt);
    let how_to = format!(
        "publish the DNS TXT record \"{record}\" at {name} and verify again (a change can take \
         as long as the zone's TTL to be seen)"
    );
    match s.resolver.lookup_txt(&name).await {
        // Linear in the answer, which one DNS message bounds.
        Ok(found) if found.iter().any(|t| t.trim() == record) => {
            Ok(Json(s.store.verify_domain(&name).await?))
        }
        Ok(found) => Err(ApiError::bad_request(format!(
            "{name} is not verified: none of its {} TXT record(s) is \"{record}\"; {how_to}",
            found.len()
        ))),
        Err(e) if e.is_not_found() => Err(ApiError::bad_request(format!(
            "{name} is not verified: {e}; {how_to}"
        ))),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{name} could not be verified now: {e}; try again"),
        )),
    }
}
