//! Mailbox permissions (full access, send as, send on behalf: Exchange's `Add-MailboxPermission`,
//! `Add-RecipientPermission` and `Set-Mailbox -GrantSendOnBehalfTo`) for users and security groups.

use super::common::{refuse_non_security, require_may_manage_account, resolve_ref};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_admin, visible_mailbox};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Principal;
use hato_core::directory::{MailboxRight, MemberRef, Permission};
use hato_directory::DirectoryIndex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_permissions, add_permission, remove_permission))
}

/// A right on a mailbox, given to a user or a security group.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PermissionInput {
    /// A mailbox address, or a security / mail-enabled security group (address or name).
    user: String,
    /// `full-access`, `send-as` or `send-on-behalf`.
    right: String,
}

/// A right as `add_permission` answers it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `add_permission`'s answer; never built
struct Granted {
    /// The mailbox, as given in the path.
    mailbox: String,
    /// As given.
    user: String,
    right: String,
}

/// A right as `list_permissions` writes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `list_permissions`' answer; never built
struct PermissionView {
    /// The user's address, or the group's address or name.
    user: String,
    /// `full-access`, `send-as` or `send-on-behalf`.
    right: String,
}

fn permission_target(
    s: &AppState,
    p: &Principal,
    address: &str,
    input: &PermissionInput,
) -> ApiResult<(Arc<DirectoryIndex>, Permission)> {
    require_admin(p)?;
    let mb = visible_mailbox(s, p, address)?;
    require_may_manage_account(s, p, &mb)?;
    let ix = s.directory.index(mb.tenant_id)?;
    let trustee = resolve_ref(&ix, &input.user)?;
    match trustee {
        MemberRef::Mailbox(_) => {}
        MemberRef::Group(g) if ix.group(g).is_some_and(|g| g.group_type.grants_rights()) => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "{}: rights go to users or security groups",
                input.user
            )));
        }
    }
    let right = MailboxRight::parse(&input.right).ok_or_else(|| {
        ApiError::bad_request("right: use full-access, send-as or send-on-behalf")
    })?;
    Ok((
        ix,
        Permission {
            mailbox: mb.id,
            trustee,
            right,
        },
    ))
}

/// Give a user or a security group full access to or send-as on a mailbox (admins; on an admin's
/// mailbox, global admins).
#[utoipa::path(
    post,
    path = "/api/v1/mailboxes/{address}/permissions",
    tag = "mailboxes",
    params(("address" = String, Path, description = "The mailbox's primary address or an alias")),
    request_body = PermissionInput,
    responses(
        (status = 201, description = "Given", body = Granted),
        (status = 400, description = "Not a user or security group, an unknown right, non-security groups nested in the group, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a recipient admin on an admin's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn add_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<Response> {
    let input = body(payload)?;
    let (target, asked) = (address.clone(), (input.user.clone(), input.right.clone()));
    let perm = s
        .blocking(move |s| {
            let (ix, perm) = permission_target(s, &p, &target, &input)?;
            if let MemberRef::Group(g) = perm.trustee {
                let what = format!("the right given to {}", input.user);
                refuse_non_security(&ix, &ix.non_security_within(g), &what)?;
            }
            Ok(perm)
        })
        .await?;
    s.store.grant(perm).await?;
    let (user, right) = asked;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "mailbox": address, "user": user, "right": right })),
    )
        .into_response())
}

/// Take a right away (as `POST`).
#[utoipa::path(
    delete,
    path = "/api/v1/mailboxes/{address}/permissions",
    tag = "mailboxes",
    params(("address" = String, Path, description = "The mailbox's primary address or an alias")),
    request_body = PermissionInput,
    responses(
        (status = 204, description = "Taken away"),
        (status = 400, description = "Not a user or security group, an unknown right, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a recipient admin on an admin's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox, or no such right", body = ErrorBody),
    )
)]
pub(crate) async fn remove_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let input = body(payload)?;
    let (_, perm) = s
        .blocking(move |s| permission_target(s, &p, &address, &input))
        .await?;
    s.store.revoke(perm).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The rights on a mailbox (admins).
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}/permissions",
    tag = "mailboxes",
    params(("address" = String, Path, description = "The mailbox's primary address or an alias")),
    responses(
        (status = 200, description = "The rights", body = [PermissionView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list_permissions(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    s.blocking(move |s| {
        let mb = visible_mailbox(s, &p, &address)?;
        let ix = s.directory.index(mb.tenant_id)?;
        Ok(Json(
            ix.dir
                .permissions
                .iter()
                .filter(|perm| perm.mailbox == mb.id)
                .map(|perm| json!({ "user": ix.name_of(perm.trustee), "right": perm.right.as_str() }))
                .collect(),
        ))
    })
    .await
}
