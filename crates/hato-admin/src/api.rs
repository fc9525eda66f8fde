//! Routes and handlers.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hato_core::address::canonical_domain_name;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{
    DEFAULT_QUOTA_MB, DomainType, Mailbox, MailboxAttributes, MailboxType, Tenant, TenantId,
};
use hato_core::trace::RecipientStatus;
use hato_core::{Address, Timestamp, id};
use hato_store::{Folder, MailboxChange, NewMailbox, Store, SubjectFilter, TraceQuery, hash_token};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub directory: Arc<hato_directory::Directory>,
    pub clock: Arc<dyn hato_core::Clock>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/api/v1/tenants/{name}",
            get(get_tenant).delete(delete_tenant),
        )
        .route(
            "/api/v1/tenants/{name}/tokens",
            axum::routing::post(create_token),
        )
        .route("/api/v1/domains", get(list_domains).post(create_domain))
        .route(
            "/api/v1/domains/{domain}",
            get(get_domain).delete(delete_domain),
        )
        .route(
            "/api/v1/mailboxes",
            get(list_mailboxes).post(create_mailbox),
        )
        .route(
            "/api/v1/mailboxes/{address}",
            get(get_mailbox)
                .patch(update_mailbox)
                .delete(delete_mailbox),
        )
        .route("/api/v1/mailboxes/{address}/messages", get(list_messages))
        .route(
            "/api/v1/mailboxes/{address}/messages/{id}/raw",
            get(raw_message),
        )
        .route("/api/v1/trace", get(trace))
        .route("/api/v1/trace/{trace_id}", get(trace_detail))
        .merge(crate::groups::routes())
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this endpoint",
            )
        })
        .with_state(state)
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

// ----- authentication -----------------------------------------------------------------------------

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // The scheme is case-insensitive (RFC 9110 §11.1).
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let Some(info) = state.store.token(&hash_token(token))? else {
            return Err(ApiError::unauthorized());
        };
        if info.expires.is_some_and(|e| e <= state.clock.now()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the token has expired; log in again",
            ));
        }
        let mut p = Principal {
            role: info.role,
            tenant_id: info.tenant_id,
            mailbox_id: info.mailbox_id,
        };
        // A user who belongs to a role group acts with that role (seed A2: rights follow
        // membership, so a transfer is one membership change).
        if let (Role::User, Some(tenant)) = (p.role, p.tenant_id) {
            let ix = state.directory.index(tenant)?;
            p.role = hato_directory::policy::effective_role(&p, &ix);
        }
        Ok(p)
    }
}

pub(crate) fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs an admin role (global or recipient admin)",
        ))
    }
}

pub(crate) fn require_global_admin(p: &Principal) -> ApiResult<()> {
    if p.is_global_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this needs the global admin role"))
    }
}

fn require_operator(p: &Principal) -> ApiResult<()> {
    if p.role == Role::Operator {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the platform operator may do this",
        ))
    }
}

/// The tenant named in a request, if the caller may see it; 404 otherwise.
fn visible_tenant(state: &AppState, p: &Principal, name: &str) -> ApiResult<Tenant> {
    match state.store.tenant_by_name(name)? {
        Some(t) if p.sees(t.id) => Ok(t),
        _ => Err(ApiError::not_found(format!("tenant {name} not found"))),
    }
}

/// Which tenant a listing covers: `?tenant=` if given (and visible), else the caller's own
/// (all tenants for the operator).
pub(crate) fn listing_scope(
    state: &AppState,
    p: &Principal,
    tenant: Option<&str>,
) -> ApiResult<Option<TenantId>> {
    match tenant {
        Some(name) => Ok(Some(visible_tenant(state, p, name)?.id)),
        None => Ok(match p.role {
            Role::Operator => None,
            _ => p.tenant_id,
        }),
    }
}

pub(crate) fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload
        .map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

// ----- tenants ------------------------------------------------------------------------------------

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

// ----- accepted domains ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainInput {
    domain: String,
    tenant: Option<String>,
    #[serde(rename = "type")]
    domain_type: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct TenantFilter {
    pub(crate) tenant: Option<String>,
}

/// The tenant a new object goes to: the named one (if visible), else a tenant admin's own.
pub(crate) fn target_tenant(
    s: &AppState,
    p: &Principal,
    named: Option<&str>,
) -> ApiResult<TenantId> {
    match (named, p.role, p.tenant_id) {
        (Some(name), _, _) => Ok(visible_tenant(s, p, name)?.id),
        (None, role, Some(id)) if role != Role::Operator => Ok(id),
        _ => Err(ApiError::bad_request("name the tenant (\"tenant\")")),
    }
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

// ----- mailboxes ----------------------------------------------------------------------------------

/// Mailbox fields as the API takes them; every field optional (PATCH changes only those given).
#[derive(Deserialize, Default)]
struct MailboxInput {
    address: Option<String>,
    /// Sets the password the user logs in with (stored as an argon2 hash); empty clears it.
    password: Option<String>,
    tenant: Option<String>,
    display_name: Option<String>,
    #[serde(rename = "type")]
    mailbox_type: Option<String>,
    aliases: Option<Vec<String>>,
    department: Option<String>,
    company: Option<String>,
    office: Option<String>,
    city: Option<String>,
    state_or_province: Option<String>,
    country_or_region: Option<String>,
    title: Option<String>,
    quota_mb: Option<u64>,
    /// `custom_attribute_1` … `custom_attribute_15`; anything else is refused.
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

impl MailboxInput {
    fn apply_attributes(&self, a: &mut MailboxAttributes) -> ApiResult<bool> {
        let mut changed = false;
        for (field, value) in [
            (&mut a.department, &self.department),
            (&mut a.company, &self.company),
            (&mut a.office, &self.office),
            (&mut a.city, &self.city),
            (&mut a.state_or_province, &self.state_or_province),
            (&mut a.country_or_region, &self.country_or_region),
            (&mut a.title, &self.title),
        ] {
            if let Some(v) = value {
                *field = v.trim().to_string();
                changed = true;
            }
        }
        for (key, value) in &self.other {
            let n: usize = key
                .strip_prefix("custom_attribute_")
                .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=15).contains(n))
                .ok_or_else(|| ApiError::bad_request(format!("unknown field {key}")))?;
            let text = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Null => String::new(),
                _ => return Err(ApiError::bad_request(format!("{key} must be a string"))),
            };
            a.custom_attributes[n - 1] = text;
            changed = true;
        }
        Ok(changed)
    }

    fn aliases(&self) -> ApiResult<Option<Vec<String>>> {
        self.aliases
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|a| {
                        Address::parse(a)
                            .map(|a| a.to_string())
                            .map_err(|e| ApiError::bad_request(format!("alias {a}: {e}")))
                    })
                    .collect()
            })
            .transpose()
    }

    fn mailbox_type(&self) -> ApiResult<Option<MailboxType>> {
        self.mailbox_type
            .as_deref()
            .map(|t| {
                MailboxType::parse(t).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown mailbox type {t}: use user or shared"))
                })
            })
            .transpose()
    }

    fn quota_bytes(&self) -> ApiResult<Option<u64>> {
        match self.quota_mb {
            Some(0) => Err(ApiError::bad_request("quota_mb must be at least 1")),
            // The store keeps bytes as a signed 64-bit number.
            Some(mb) if mb > i64::MAX as u64 / (1024 * 1024) => {
                Err(ApiError::bad_request(format!(
                    "quota_mb must be at most {}",
                    i64::MAX as u64 / (1024 * 1024)
                )))
            }
            Some(mb) => Ok(Some(mb.saturating_mul(1024 * 1024))),
            None => Ok(None),
        }
    }
}

fn mailbox_json(m: &Mailbox) -> Value {
    let a = &m.attributes;
    let mut o = Map::new();
    o.insert("address".into(), json!(m.address));
    o.insert("tenant".into(), json!(m.tenant));
    o.insert("display_name".into(), json!(m.display_name));
    o.insert("type".into(), json!(m.mailbox_type.as_str()));
    o.insert("aliases".into(), json!(m.aliases));
    for (k, v) in [
        ("department", &a.department),
        ("company", &a.company),
        ("office", &a.office),
        ("city", &a.city),
        ("state_or_province", &a.state_or_province),
        ("country_or_region", &a.country_or_region),
        ("title", &a.title),
    ] {
        o.insert(k.into(), json!(v));
    }
    for (i, v) in a.custom_attributes.iter().enumerate() {
        o.insert(format!("custom_attribute_{}", i + 1), json!(v));
    }
    o.insert("quota_mb".into(), json!(m.quota_bytes / (1024 * 1024)));
    o.insert("used_bytes".into(), json!(m.used_bytes));
    Value::Object(o)
}

/// The mailbox at `address` (primary or alias), if the caller may see it.
pub(crate) fn visible_mailbox(s: &AppState, p: &Principal, address: &str) -> ApiResult<Mailbox> {
    let not_found = || ApiError::not_found(format!("mailbox {address} not found"));
    let addr = Address::parse(address).map_err(|_| not_found())?;
    match s.store.mailbox_by_address(&addr.to_string())? {
        Some(m) if p.sees(m.tenant_id) => Ok(m),
        _ => Err(not_found()),
    }
}

async fn create_mailbox(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<MailboxInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_admin(&p)?;
    let input = body(payload)?;
    let raw = input
        .address
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("\"address\" is required"))?;
    let address = Address::parse(raw).map_err(|e| ApiError::bad_request(format!("{raw}: {e}")))?;
    let tenant = match s.store.domain(address.domain())? {
        Some((tenant, _)) if p.sees(tenant) => tenant,
        _ => {
            return Err(ApiError::not_found(format!(
                "{} is not an accepted domain{}",
                address.domain(),
                if p.role == Role::Operator {
                    ""
                } else {
                    " of your tenant"
                }
            )));
        }
    };
    if let Some(named) = input.tenant.as_deref() {
        let t = visible_tenant(&s, &p, named)?;
        if t.id != tenant {
            return Err(ApiError::bad_request(format!(
                "{} belongs to another tenant than {named}",
                address.domain()
            )));
        }
    }
    let mut attributes = MailboxAttributes::default();
    input.apply_attributes(&mut attributes)?;
    let display_name = input
        .display_name
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| address.local().to_string());
    let m = s
        .store
        .create_mailbox(NewMailbox {
            tenant_id: tenant,
            address: address.to_string(),
            display_name,
            mailbox_type: input.mailbox_type()?.unwrap_or_default(),
            aliases: input.aliases()?.unwrap_or_default(),
            attributes,
            quota_bytes: input
                .quota_bytes()?
                .unwrap_or(DEFAULT_QUOTA_MB * 1024 * 1024),
        })
        .await?;
    if let Some(pw) = input.password.as_deref() {
        set_password(&s, m.id, pw).await?;
    }
    Ok((StatusCode::CREATED, Json(mailbox_json(&m))).into_response())
}

async fn list_mailboxes(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let scope = listing_scope(&s, &p, f.tenant.as_deref())?;
    Ok(Json(
        s.store.mailboxes(scope)?.iter().map(mailbox_json).collect(),
    ))
}

/// Admins read any mailbox of their tenant; a user reads their own, and those they have
/// full access to (directly or through a security group).
fn require_mailbox_read(s: &AppState, p: &Principal, m: &Mailbox) -> ApiResult<()> {
    if p.is_admin() || p.mailbox_id == Some(m.id) {
        return Ok(());
    }
    if let Some(user) = p.mailbox_id {
        let ix = s.directory.index(m.tenant_id)?;
        if ix.has_right(user, m.id, hato_core::directory::MailboxRight::FullAccess) {
            return Ok(());
        }
    }
    Err(ApiError::forbidden(format!(
        "you have no access to the mailbox {}",
        m.address
    )))
}

async fn get_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = visible_mailbox(&s, &p, &address)?;
    require_mailbox_read(&s, &p, &m)?;
    Ok(Json(mailbox_json(&m)))
}

async fn update_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<MailboxInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let m = visible_mailbox(&s, &p, &address)?;
    let input = body(payload)?;
    if input.address.is_some() || input.tenant.is_some() {
        return Err(ApiError::bad_request(
            "address and tenant cannot be changed; use aliases",
        ));
    }
    let mut attributes = m.attributes.clone();
    let attrs_changed = input.apply_attributes(&mut attributes)?;
    let change = MailboxChange {
        display_name: input
            .display_name
            .clone()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        mailbox_type: input.mailbox_type()?,
        aliases: input.aliases()?,
        attributes: attrs_changed.then_some(attributes),
        quota_bytes: input.quota_bytes()?,
    };
    if let Some(pw) = input.password.as_deref() {
        set_password(&s, m.id, pw).await?;
    }
    let updated = s.store.update_mailbox(m.id, change).await?;
    Ok(Json(mailbox_json(&updated)))
}

/// RFC 8265-ish sanity: a password is 8–256 characters; an empty one clears the password.
async fn set_password(s: &AppState, mailbox: i64, password: &str) -> ApiResult<()> {
    if password.is_empty() {
        s.store.set_password(mailbox, None).await?;
        return Ok(());
    }
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return Err(ApiError::bad_request("a password has 8 to 256 characters"));
    }
    let pw = password.to_string();
    let hash = tokio::task::spawn_blocking(move || crate::password::hash(&pw))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not hash the password",
            )
        })?;
    s.store.set_password(mailbox, Some(hash)).await?;
    Ok(())
}

async fn delete_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let m = visible_mailbox(&s, &p, &address)?;
    s.store.remove_mailbox(m.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct FolderFilter {
    folder: Option<String>,
    /// Paging: at most `limit` messages (all when absent), after skipping `offset`.
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_messages(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    Query(f): Query<FolderFilter>,
) -> ApiResult<Json<Value>> {
    let m = visible_mailbox(&s, &p, &address)?;
    require_mailbox_read(&s, &p, &m)?;
    let folder = f
        .folder
        .as_deref()
        .map(|name| {
            Folder::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!("unknown folder {name}: use inbox or junk"))
            })
        })
        .transpose()?;
    Ok(Json(
        serde_json::to_value(s.store.mail_page(
            m.id,
            folder,
            f.limit.unwrap_or(i64::MAX as usize),
            f.offset.unwrap_or(0),
        )?)
        .unwrap_or_default(),
    ))
}

async fn raw_message(
    State(s): State<AppState>,
    p: Principal,
    Path((address, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let m = visible_mailbox(&s, &p, &address)?;
    require_mailbox_read(&s, &p, &m)?;
    let not_found = || ApiError::not_found(format!("message {id} not found in {address}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let item = s.store.mail_item(m.id, id)?.ok_or_else(not_found)?;
    let bytes = s.store.blob(&item.blob)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}

// ----- message trace ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TraceParams {
    tenant: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    status: Option<String>,
    message_id: Option<String>,
    trace_id: Option<String>,
    from_ip: Option<String>,
    start: Option<String>,
    end: Option<String>,
    subject: Option<String>,
    subject_filter: Option<String>,
    limit: Option<usize>,
}

fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<Timestamp>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            Timestamp::parse_human(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name}: cannot read {s:?} as a time (use 2026-11-28T21:00:00Z or 2026-11-28)"
                ))
            })
        })
        .transpose()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn trace(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let tenant = listing_scope(&s, &p, q.tenant.as_deref())?;
    let status = nonempty(q.status)
        .map(|st| {
            RecipientStatus::parse(&st).ok_or_else(|| {
                let all: Vec<&str> = RecipientStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!(
                    "unknown status {st}: use one of {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let subject_filter = match q
        .subject_filter
        .as_deref()
        .map(|f| f.to_ascii_lowercase().replace('-', "_"))
    {
        None => SubjectFilter::Contains,
        Some(f) if f == "contains" => SubjectFilter::Contains,
        Some(f) if f == "starts_with" || f == "startswith" => SubjectFilter::StartsWith,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown subject_filter {f}: use contains or starts_with"
            )));
        }
    };
    let canonical = |name: &str, v: Option<String>| -> ApiResult<Option<String>> {
        nonempty(v)
            .map(|a| {
                Address::parse(&a)
                    .map(|a| a.to_string())
                    .map_err(|e| ApiError::bad_request(format!("{name} {a}: {e}")))
            })
            .transpose()
    };
    let query = TraceQuery {
        tenant,
        sender: canonical("sender", q.sender)?,
        recipient: canonical("recipient", q.recipient)?,
        status,
        message_id: nonempty(q.message_id),
        trace_id: nonempty(q.trace_id),
        from_ip: nonempty(q.from_ip),
        start: time_param("start", q.start.as_deref())?,
        end: time_param("end", q.end.as_deref())?,
        subject: nonempty(q.subject),
        subject_filter,
        limit: q.limit.unwrap_or(5000).clamp(1, 50_000),
    };
    if let (Some(a), Some(b)) = (query.start, query.end)
        && a > b
    {
        return Err(ApiError::bad_request("start is after end"));
    }
    Ok(Json(
        serde_json::to_value(s.store.trace(&query)?).unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
struct DetailParams {
    recipient: Option<String>,
}

async fn trace_detail(
    State(s): State<AppState>,
    p: Principal,
    Path(trace_id): Path<String>,
    Query(d): Query<DetailParams>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let tenant = match p.role {
        Role::Operator => None,
        _ => Some(p.tenant_id.ok_or_else(ApiError::unauthorized)?),
    };
    let recipient = nonempty(d.recipient)
        .map(|a| {
            Address::parse(&a)
                .map(|a| a.to_string())
                .map_err(|e| ApiError::bad_request(format!("recipient {a}: {e}")))
        })
        .transpose()?;
    let rows = s
        .store
        .trace_detail(tenant, &trace_id, recipient.as_deref())?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no trace for {trace_id}")));
    }
    Ok(Json(serde_json::to_value(rows).unwrap_or_default()))
}
