//! Mailboxes: create, read, change (attributes, aliases, quota, password), remove.

use super::common::{require_mailbox_read, require_may_manage_account};
use crate::error::ApiError;
use crate::state::{
    ApiResult, AppState, TenantFilter, body, listing_scope, require_admin, visible_mailbox,
    visible_tenant,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hato_core::Address;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{DEFAULT_QUOTA_MB, Mailbox, MailboxAttributes, MailboxType};
use hato_store::{MailboxChange, NewMailbox};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
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
}

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
    if input.password.is_some() || input.display_name.is_some() || input.aliases.is_some() {
        require_may_manage_account(&s, &p, &m)?;
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

#[derive(Deserialize)]
struct RemoveQuery {
    transfer_ownership_to: Option<String>,
}

async fn delete_mailbox(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let m = visible_mailbox(&s, &p, &address)?;
    require_may_manage_account(&s, &p, &m)?;
    let to = match q.transfer_ownership_to.as_deref() {
        Some(t) => {
            let to = visible_mailbox(&s, &p, t).map_err(|_| {
                ApiError::bad_request(format!("transfer_ownership_to: {t} is not a mailbox"))
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
    s.store.remove_mailbox_transferring(m.id, to).await?;
    Ok(StatusCode::NO_CONTENT)
}
