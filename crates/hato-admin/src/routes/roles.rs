//! Role groups: security groups whose members act as global or recipient admins.

use super::common::{find_group, group_json, refuse_non_security};
use crate::error::ApiError;
use crate::state::{ApiResult, AppState, body, require_global_admin};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Json, Router};
use hato_core::auth::{Principal, Role};
use serde::Deserialize;
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    use axum::routing::post;
    Router::new().route("/api/v1/groups/{group}/roles", post(assign_role))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    role: String,
    #[serde(default = "yes")]
    assign: bool,
}

fn yes() -> bool {
    true
}

/// Makes a security group a role group: its members act as global or recipient admins.
async fn assign_role(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<RoleInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_global_admin(&p)?;
    let (ix, g) = find_group(&s, &p, &ident)?;
    let input = body(payload)?;
    if !g.group_type.grants_rights() {
        return Err(ApiError::bad_request(
            "only security and mail-enabled security groups can hold admin roles",
        ));
    }
    let role = match input.role.as_str() {
        "global-admin" | "tenant-admin" => Role::TenantAdmin,
        "recipient-admin" => Role::RecipientAdmin,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown role {other}: use global-admin or recipient-admin"
            )));
        }
    };
    if input.assign {
        let what = format!("the role given to {ident}");
        refuse_non_security(&ix, &ix.non_security_within(g.id), &what)?;
    }
    s.store.assign_role(g.id, role, input.assign).await?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &g, &p)))
}
