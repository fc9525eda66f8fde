//! Mail contacts: outside addresses in a tenant's directory.

use crate::error::ApiError;
use crate::state::{ApiResult, AppState, body, listing_scope, require_admin, target_tenant};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hato_core::Address;
use hato_core::auth::Principal;
use hato_core::directory::{Contact, MailboxAttributes};
use hato_store::NewContact;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    use axum::routing::get;
    Router::new()
        .route("/api/v1/contacts", get(list_contacts).post(create_contact))
        .route(
            "/api/v1/contacts/{address}",
            axum::routing::delete(delete_contact),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactInput {
    address: String,
    name: Option<String>,
    tenant: Option<String>,
    department: Option<String>,
    company: Option<String>,
    office: Option<String>,
    city: Option<String>,
    title: Option<String>,
}

fn contact_json(c: &Contact) -> Value {
    json!({ "address": c.address, "name": c.display_name, "department": c.attributes.department,
            "company": c.attributes.company, "office": c.attributes.office, "city": c.attributes.city, "title": c.attributes.title })
}

async fn create_contact(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<ContactInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_admin(&p)?;
    let input = body(payload)?;
    let tenant = target_tenant(&s, &p, input.tenant.as_deref())?;
    let address = Address::parse(&input.address)
        .map_err(|e| ApiError::bad_request(format!("{}: {e}", input.address)))?;
    if s.store.domain(address.domain())?.is_some() {
        return Err(ApiError::bad_request(
            "a mail contact has an outside address; this domain is an accepted domain",
        ));
    }
    let attributes = MailboxAttributes {
        department: input.department.unwrap_or_default(),
        company: input.company.unwrap_or_default(),
        office: input.office.unwrap_or_default(),
        city: input.city.unwrap_or_default(),
        title: input.title.unwrap_or_default(),
        ..Default::default()
    };
    let c = s
        .store
        .create_contact(NewContact {
            tenant_id: tenant,
            address: address.to_string(),
            display_name: input.name.unwrap_or_else(|| address.to_string()),
            attributes,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(contact_json(&c))).into_response())
}

async fn list_contacts(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let tenant = listing_scope(&s, &p, None)?;
    Ok(Json(
        s.store.contacts(tenant)?.iter().map(contact_json).collect(),
    ))
}

async fn delete_contact(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let canonical = Address::parse(&address)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let tenant = listing_scope(&s, &p, None)?;
    let c = s
        .store
        .contacts(tenant)?
        .into_iter()
        .find(|c| c.address == canonical)
        .ok_or_else(|| ApiError::not_found(format!("contact {address} not found")))?;
    s.store.remove_contact(c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
