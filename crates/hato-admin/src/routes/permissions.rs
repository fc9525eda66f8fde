//! Mailbox permissions (full access, send as) for users and security groups.

use super::common::{refuse_non_security, require_may_manage_account, resolve_ref};
use crate::error::ApiError;
use crate::state::{ApiResult, AppState, body, require_admin, visible_mailbox};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hato_core::auth::Principal;
use hato_core::directory::{MailboxRight, MemberRef, Permission};
use hato_directory::DirectoryIndex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<AppState> {
    use axum::routing::get;
    Router::new().route(
        "/api/v1/mailboxes/{address}/permissions",
        get(list_permissions)
            .post(add_permission)
            .delete(remove_permission),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionInput {
    /// A mailbox address, or a security / mail-enabled security group (address or name).
    user: String,
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
    let right = MailboxRight::parse(&input.right)
        .ok_or_else(|| ApiError::bad_request("right: use full-access or send-as"))?;
    Ok((
        ix,
        Permission {
            mailbox: mb.id,
            trustee,
            right,
        },
    ))
}

async fn add_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<Response> {
    let input = body(payload)?;
    let (ix, perm) = permission_target(&s, &p, &address, &input)?;
    if let MemberRef::Group(g) = perm.trustee {
        let what = format!("the right given to {}", input.user);
        refuse_non_security(&ix, &ix.non_security_within(g), &what)?;
    }
    s.store.grant(perm).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "mailbox": address, "user": input.user, "right": input.right })),
    )
        .into_response())
}

async fn remove_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let input = body(payload)?;
    let (_, perm) = permission_target(&s, &p, &address, &input)?;
    s.store.revoke(perm).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_permissions(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let mb = visible_mailbox(&s, &p, &address)?;
    let ix = s.directory.index(mb.tenant_id)?;
    Ok(Json(
        ix.dir
            .permissions
            .iter()
            .filter(|perm| perm.mailbox == mb.id)
            .map(|perm| json!({ "user": ix.name_of(perm.trustee), "right": perm.right.as_str() }))
            .collect(),
    ))
}
