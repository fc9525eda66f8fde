//! Mailboxes: create, read, change (attributes, aliases, quota, password), remove.

use super::common::{require_mailbox_read, require_may_manage_account};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{
    ApiResult, AppState, Path, TenantFilter, body, listing_scope, require_admin, visible_mailbox,
    visible_tenant,
};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Address;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{DEFAULT_QUOTA_MB, Mailbox, MailboxAttributes, MailboxType};
use hato_store::{MailboxChange, NewMailbox};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mailboxes, create_mailbox))
        .routes(routes!(get_mailbox, update_mailbox, delete_mailbox))
}

/// Mailbox fields as the API takes them; every field optional (PATCH changes only those given).
#[derive(Deserialize, Default, ToSchema)]
pub(crate) struct MailboxInput {
    /// The primary address (creation only; its domain names the tenant).
    address: Option<String>,
    /// Sets the password the user logs in with (stored as an argon2 hash); empty clears it.
    #[schema(write_only)]
    password: Option<String>,
    /// Must be the tenant of the address's domain (creation only).
    tenant: Option<String>,
    /// Default: the address's local part.
    display_name: Option<String>,
    /// `user` (the default) or `shared`.
    #[serde(rename = "type")]
    mailbox_type: Option<String>,
    /// Further addresses of the mailbox (the whole list).
    aliases: Option<Vec<String>>,
    department: Option<String>,
    company: Option<String>,
    office: Option<String>,
    city: Option<String>,
    state_or_province: Option<String>,
    country_or_region: Option<String>,
    title: Option<String>,
    /// Default 51200; at least 1.
    #[schema(minimum = 1)]
    quota_mb: Option<u64>,
    /// SMTP AUTH off for this mailbox (Exchange's `Set-CASMailbox
    /// -SmtpClientAuthenticationDisabled`): the submission listener answers its right password
    /// with `535 5.7.139`. Default `false`.
    smtp_client_authentication_disabled: Option<bool>,
    /// `custom_attribute_1` … `custom_attribute_15`; anything else is refused.
    #[serde(flatten)]
    #[schema(value_type = CustomAttributes)]
    other: BTreeMap<String, Value>,
}

/// Exchange's CustomAttribute1–15: given as strings (`null` clears one), always in a mailbox
/// as the API writes it (`""` when unset).
#[derive(ToSchema)]
#[allow(dead_code)] // describes `custom_attribute_N` of `MailboxInput` and `mailbox_json`
struct CustomAttributes {
    custom_attribute_1: Option<String>,
    custom_attribute_2: Option<String>,
    custom_attribute_3: Option<String>,
    custom_attribute_4: Option<String>,
    custom_attribute_5: Option<String>,
    custom_attribute_6: Option<String>,
    custom_attribute_7: Option<String>,
    custom_attribute_8: Option<String>,
    custom_attribute_9: Option<String>,
    custom_attribute_10: Option<String>,
    custom_attribute_11: Option<String>,
    custom_attribute_12: Option<String>,
    custom_attribute_13: Option<String>,
    custom_attribute_14: Option<String>,
    custom_attribute_15: Option<String>,
}

/// A mailbox as `mailbox_json` writes it.
#[derive(ToSchema)]
#[schema(as = Mailbox)]
#[allow(dead_code)] // describes `mailbox_json`; never built
struct MailboxView {
    /// The primary address, canonical (lower case, U-labels).
    address: String,
    tenant: String,
    display_name: String,
    #[schema(rename = "type")]
    mailbox_type: MailboxKind,
    aliases: Vec<String>,
    department: String,
    company: String,
    office: String,
    city: String,
    state_or_province: String,
    country_or_region: String,
    title: String,
    #[serde(flatten)]
    custom_attributes: CustomAttributes,
    quota_mb: u64,
    /// Whether SMTP AUTH is off for the mailbox (`Set-CASMailbox -SmtpClientAuthenticationDisabled`).
    smtp_client_authentication_disabled: bool,
    /// What the mailbox's messages take now.
    #[schema(read_only)]
    used_bytes: u64,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // describes `MailboxType::as_str`; never built
enum MailboxKind {
    User,
    Shared,
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

/// `m` as the API shows it, with its SMTP AUTH setting (a store read).
fn mailbox_view(s: &AppState, m: &Mailbox) -> ApiResult<Value> {
    let disabled = s.store.smtp_client_authentication_disabled(m.id)?;
    Ok(mailbox_json(m, disabled))
}

fn mailbox_json(m: &Mailbox, smtp_client_authentication_disabled: bool) -> Value {
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
    o.insert(
        "smtp_client_authentication_disabled".into(),
        json!(smtp_client_authentication_disabled),
    );
    o.insert("used_bytes".into(), json!(m.used_bytes));
    Value::Object(o)
}

/// Create a mailbox; its tenant is its domain's (admins).
#[utoipa::path(
    post,
    path = "/api/v1/mailboxes",
    tag = "mailboxes",
    request_body = MailboxInput,
    responses(
        (status = 201, description = "The new mailbox", body = MailboxView),
        (status = 400, description = "A malformed or reserved address, a bad field or password, another tenant named, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "The domain is not an accepted domain (of the caller's tenant)", body = ErrorBody),
        (status = 409, description = "The address is taken (by a mailbox, alias, group or contact)", body = ErrorBody),
    )
)]
pub(crate) async fn create_mailbox(
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
    let (domain, named) = (address.domain().to_string(), input.tenant.clone());
    let tenant = s
        .blocking(move |s| {
            let tenant = match s.store.domain(&domain)? {
                Some((tenant, _)) if p.sees(tenant) => tenant,
                _ => {
                    return Err(ApiError::not_found(format!(
                        "{domain} is not an accepted domain{}",
                        if p.role == Role::Operator {
                            ""
                        } else {
                            " of your tenant"
                        }
                    )));
                }
            };
            if let Some(named) = named.as_deref() {
                let t = visible_tenant(s, &p, named)?;
                if t.id != tenant {
                    return Err(ApiError::bad_request(format!(
                        "{domain} belongs to another tenant than {named}"
                    )));
                }
            }
            Ok(tenant)
        })
        .await?;
    let mut attributes = MailboxAttributes::default();
    input.apply_attributes(&mut attributes)?;
    let display_name = input
        .display_name
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| address.local().to_string());
    // The password is checked and hashed first: a refused password creates no mailbox.
    let password = match input.password.as_deref() {
        Some(pw) => Some(password_hash(pw).await?),
        None => None,
    };
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
    if let Some(hash) = password {
        s.store.set_password(m.id, hash).await?;
    }
    let disabled = input.smtp_client_authentication_disabled.unwrap_or(false);
    if disabled {
        s.store
            .set_smtp_client_authentication_disabled(m.id, true)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(mailbox_json(&m, disabled))).into_response())
}

/// The mailboxes of the caller's tenant (all for the operator), or of `tenant` (admins).
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes",
    tag = "mailboxes",
    params(TenantFilter),
    responses(
        (status = 200, description = "The mailboxes", body = [MailboxView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn list_mailboxes(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let scope = listing_scope(s, &p, f.tenant.as_deref())?;
        let mut out = Vec::new();
        for m in s.store.mailboxes(scope)? {
            out.push(mailbox_view(s, &m)?);
        }
        Ok(Json(out))
    })
    .await
}

/// One mailbox: admins, its user, and users with full access to it.
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}",
    tag = "mailboxes",
    params(("address" = String, Path, description = "The primary address or an alias")),
    responses(
        (status = 200, description = "The mailbox", body = MailboxView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "No access to this mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn get_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Value>> {
    s.blocking(move |s| {
        let m = visible_mailbox(s, &p, &address)?;
        require_mailbox_read(s, &p, &m)?;
        Ok(Json(mailbox_view(s, &m)?))
    })
    .await
}

/// Change the fields given (admins; an admin's password, name and addresses only by global admins).
#[utoipa::path(
    patch,
    path = "/api/v1/mailboxes/{address}",
    tag = "mailboxes",
    params(("address" = String, Path, description = "The primary address or an alias")),
    request_body = MailboxInput,
    responses(
        (status = 200, description = "The changed mailbox", body = MailboxView),
        (status = 400, description = "address or tenant given, a bad field or password, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a recipient admin changing an admin's account", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
        (status = 409, description = "An alias is taken", body = ErrorBody),
    )
)]
pub(crate) async fn update_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<MailboxInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&p)?;
    let m = s
        .blocking(move |s| visible_mailbox(s, &p, &address))
        .await?;
    let input = body(payload)?;
    if input.address.is_some() || input.tenant.is_some() {
        return Err(ApiError::bad_request(
            "address and tenant cannot be changed; use aliases",
        ));
    }
    if input.password.is_some() || input.display_name.is_some() || input.aliases.is_some() {
        let m = m.clone();
        s.blocking(move |s| require_may_manage_account(s, &p, &m))
            .await?;
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
    // The password is checked and hashed before anything changes, and set only once the other
    // changes are stored: a refused change (an alias taken) leaves the password, and so the
    // user's sessions, as they were.
    let password = match input.password.as_deref() {
        Some(pw) => Some(password_hash(pw).await?),
        None => None,
    };
    let updated = s.store.update_mailbox(m.id, change).await?;
    if let Some(hash) = password {
        s.store.set_password(m.id, hash).await?;
    }
    if let Some(disabled) = input.smtp_client_authentication_disabled {
        s.store
            .set_smtp_client_authentication_disabled(m.id, disabled)
            .await?;
    }
    s.blocking(move |s| Ok(Json(mailbox_view(s, &updated)?)))
        .await
}

/// RFC 8265-ish sanity: a password is 8–256 characters; an empty one clears the password
/// (`None`). Returns the argon2 hash to store.
async fn password_hash(password: &str) -> ApiResult<Option<String>> {
    if password.is_empty() {
        return Ok(None);
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
    Ok(Some(hash))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RemoveQuery {
    /// A mailbox of the same tenant that becomes owner of the groups this one is the last owner of.
    transfer_ownership_to: Option<String>,
}

/// Remove a mailbox (admins; an admin's only by global admins).
#[utoipa::path(
    delete,
    path = "/api/v1/mailboxes/{address}",
    tag = "mailboxes",
    params(
        ("address" = String, Path, description = "The primary address or an alias"),
        RemoveQuery,
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "transfer_ownership_to is not another mailbox of the tenant", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a recipient admin removing an admin's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The mailbox is the last owner of groups (named), and ownership is not transferred", body = ErrorBody),
    )
)]
pub(crate) async fn delete_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let (m, to) = s
        .blocking(move |s| {
            let m = visible_mailbox(s, &p, &address)?;
            require_may_manage_account(s, &p, &m)?;
            let to = match q.transfer_ownership_to.as_deref() {
                Some(t) => {
                    let to = visible_mailbox(s, &p, t).map_err(|_| {
                        ApiError::bad_request(format!(
                            "transfer_ownership_to: {t} is not a mailbox"
                        ))
                    })?;
                    if to.tenant_id != m.tenant_id || to.id == m.id {
                        return Err(ApiError::bad_request(
                            "transfer_ownership_to: name another mailbox of the same tenant",
                        ));
                    }
                    Some(to.id)
                }
                None => None,
            };
            Ok((m.id, to))
        })
        .await?;
    s.store.remove_mailbox_transferring(m, to).await?;
    Ok(StatusCode::NO_CONTENT)
}
