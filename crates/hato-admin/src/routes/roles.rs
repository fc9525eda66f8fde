//! Role groups: security groups whose members act as global or recipient admins.

use super::common::{GROUP_PARAM, GroupView, find_group, group_answer, refuse_non_security};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::auth::{Principal, Role};
use hato_core::directory::Group;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assign_role))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    /// `global-admin` (also `tenant-admin`) or `recipient-admin`.
    role: String,
    /// false takes the role away.
    #[serde(default = "yes")]
    #[schema(default = true)]
    assign: bool,
}

fn yes() -> bool {
    true
}

/// Makes a security group a role group: its members act as global or recipient admins (global
/// admins only).
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/roles",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    request_body = RoleInput,
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 400, description = "Not a security group, an unknown role, non-security groups nested in it, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
async fn assign_role(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<RoleInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_global_admin(&p)?;
    let (g, role, assign) = s
        .blocking(move |s| role_change(s, &p, &ident, payload))
        .await?;
    s.store.assign_role(g.id, role, assign).await?;
    group_answer(&s, p, g).await
}

/// The group `ident`, the role `payload` names and whether to give or take it, checked against
/// the tenant's directory.
fn role_change(
    s: &AppState,
    p: &Principal,
    ident: &str,
    payload: Result<Json<RoleInput>, JsonRejection>,
) -> ApiResult<(Group, Role, bool)> {
    let (ix, g) = find_group(s, p, ident)?;
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
    Ok((g, role, input.assign))
}
