//! Mail contacts: outside addresses in a tenant's directory.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, listing_scope, require_admin, target_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Address;
use hato_core::auth::Principal;
use hato_core::directory::{Contact, MailboxAttributes};
use hato_store::NewContact;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(delete_contact))
}

/// A new mail contact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactInput {
    /// An outside address (not in an accepted domain).
    address: String,
    /// The display name (default: the address).
    name: Option<String>,
    /// Default: a tenant admin's own; the operator must name one.
    tenant: Option<String>,
    department: Option<String>,
    company: Option<String>,
    office: Option<String>,
    city: Option<String>,
    title: Option<String>,
}

/// A mail contact as `contact_json` writes it.
#[derive(ToSchema)]
#[schema(as = Contact)]
#[allow(dead_code)] // describes `contact_json`; never built
struct ContactView {
    address: String,
    /// The display name.
    name: String,
    department: String,
    company: String,
    office: String,
    city: String,
    title: String,
}

fn contact_json(c: &Contact) -> Value {
    json!({ "address": c.address, "name": c.display_name, "department": c.attributes.department,
            "company": c.attributes.company, "office": c.attributes.office, "city": c.attributes.city, "title": c.attributes.title })
}

/// Add a mail contact (admins).
#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    request_body = ContactInput,
    responses(
        (status = 201, description = "The new contact", body = ContactView),
        (status = 400, description = "A malformed address, one in an accepted domain, no tenant named, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The address is taken in the tenant", body = ErrorBody),
    )
)]
pub(crate) async fn create_contact(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<ContactInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_admin(&p)?;
    let input = body(payload)?;
    let (named, given) = (input.tenant.clone(), input.address.clone());
    let (tenant, address) = s
        .blocking(move |s| {
            let tenant = target_tenant(s, &p, named.as_deref())?;
            let address = Address::parse(&given)
                .map_err(|e| ApiError::bad_request(format!("{given}: {e}")))?;
            if s.store.domain(address.domain())?.is_some() {
                return Err(ApiError::bad_request(
                    "a mail contact has an outside address; this domain is an accepted domain",
                ));
            }
            Ok((tenant, address))
        })
        .await?;
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

/// The mail contacts of the caller's tenant (all for the operator; admins).
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    responses(
        (status = 200, description = "The contacts", body = [ContactView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn list_contacts(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let tenant = listing_scope(s, &p, None)?;
        Ok(Json(
            s.store.contacts(tenant)?.iter().map(contact_json).collect(),
        ))
    })
    .await
}

/// Remove a mail contact (admins).
#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{address}",
    tag = "contacts",
    params(("address" = String, Path, description = "The contact's address")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such contact (in the caller's tenant)", body = ErrorBody),
    )
)]
pub(crate) async fn delete_contact(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let canonical = Address::parse(&address)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let id = s
        .blocking(move |s| {
            let tenant = listing_scope(s, &p, None)?;
            s.store
                .contacts(tenant)?
                .into_iter()
                .find(|c| c.address == canonical)
                .map(|c| c.id)
                .ok_or_else(|| ApiError::not_found(format!("contact {address} not found")))
        })
        .await?;
    s.store.remove_contact(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
