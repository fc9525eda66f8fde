//! A group's lists: members (a dynamic group's evaluated now), owners and, for Microsoft 365
//! groups, subscribers. Who may change them is `hato_directory::policy::authorize` (owners,
//! admins, the security-group manager check and its bypass; role groups only by global admins).

use super::common::{
    GROUP_PARAM, GroupView, Recipient, check_member_kind, denied, find_group, group_answer,
    ref_json, refuse_non_security, resolve_mailbox, resolve_ref, sees_members,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::auth::Principal;
use hato_core::directory::{GroupId, GroupType, MemberRef};
use hato_directory::policy::{self, GroupAction};
use hato_store::GroupChange;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, change_members))
        .routes(routes!(change_owners))
        .routes(routes!(change_subscribers))
}

/// A group's direct members now (a dynamic group's: its filter evaluated now).
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/members",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The members", body = [Recipient]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The membership is hidden from non-members", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list_members(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    s.blocking(move |s| {
        let (ix, g) = find_group(s, &p, &ident)?;
        if !sees_members(&p, &ix, &g) {
            return Err(ApiError::forbidden(
                "the group's membership is hidden: only its members and owners see it",
            ));
        }
        Ok(Json(
            ix.direct_members(g.id)
                .into_iter()
                .map(|m| ref_json(&ix, m))
                .collect(),
        ))
    })
    .await
}

/// Recipients to add to and remove from a list of a group.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListChange {
    /// Addresses (or names of groups).
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    /// A global admin changes a group it does not manage.
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

/// Add or remove members (the group's managers).
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/members",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    request_body = ListChange,
    responses(
        (status = 200, description = "The changed group", body = GroupView),
        (status = 400, description = "Not a recipient, a member the group's type cannot have, a dynamic group, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group (a role group's only by global admins)", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn change_members(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (id, change) = s
        .blocking(move |s| members_change(s, &p, &ident, payload))
        .await?;
    let updated = s.store.update_group(id, change).await?;
    group_answer(&s, p, updated).await
}

/// The members change `payload` asks of the group `ident`, checked against its directory.
fn members_change(
    s: &AppState,
    p: &Principal,
    ident: &str,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<(GroupId, GroupChange)> {
    let (ix, g) = find_group(s, p, ident)?;
    let input = body(payload)?;
    policy::authorize(
        p,
        &ix,
        &g,
        GroupAction::ChangeMembers,
        input.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    if g.group_type == GroupType::Dynamic && !(input.add.is_empty() && input.remove.is_empty()) {
        return Err(ApiError::bad_request(
            "a dynamic group's members come from its recipient filter; change the filter instead",
        ));
    }
    let mut change = GroupChange::default();
    let rights_bearing = ix.rights_bearing_groups().contains(&g.id);
    for m in &input.add {
        let r = resolve_ref(&ix, m)?;
        check_member_kind(&ix, g.group_type, r, m)?;
        if r == MemberRef::Group(g.id) {
            return Err(ApiError::bad_request(
                "a group cannot be a member of itself",
            ));
        }
        if let (true, MemberRef::Group(inner)) = (rights_bearing, r) {
            let what = format!(
                "{} holds a role or a mailbox right (or is nested in a group that does), and adding {m}",
                ix.name_of(MemberRef::Group(g.id))
            );
            refuse_non_security(&ix, &ix.non_security_within(inner), &what)?;
        }
        change.add_members.push(r);
    }
    for m in &input.remove {
        change.remove_members.push(resolve_ref(&ix, m)?);
    }
    Ok((g.id, change))
}

/// Add or remove owners (the group's managers).
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/owners",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    request_body = ListChange,
    responses(
        (status = 200, description = "The changed group", body = GroupView),
        (status = 400, description = "Not a mailbox, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The change would leave the group without an owner", body = ErrorBody),
    )
)]
pub(crate) async fn change_owners(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (id, change) = s
        .blocking(move |s| {
            let (ix, g) = find_group(s, &p, &ident)?;
            let input = body(payload)?;
            policy::authorize(
                &p,
                &ix,
                &g,
                GroupAction::ChangeOwners,
                input.bypass_security_group_manager_check,
            )
            .map_err(denied)?;
            let change = GroupChange {
                add_owners: input
                    .add
                    .iter()
                    .map(|o| resolve_mailbox(&ix, o))
                    .collect::<ApiResult<_>>()?,
                remove_owners: input
                    .remove
                    .iter()
                    .map(|o| resolve_mailbox(&ix, o))
                    .collect::<ApiResult<_>>()?,
                ..Default::default()
            };
            Ok((g.id, change))
        })
        .await?;
    let updated = s.store.update_group(id, change).await?;
    group_answer(&s, p, updated).await
}

/// Subscribers of a Microsoft 365 group: owners and admins change anyone's subscription; a
/// member changes their own.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/subscribers",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    request_body = ListChange,
    responses(
        (status = 200, description = "The changed group", body = GroupView),
        (status = 400, description = "Not a Microsoft 365 group, not a member, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member changing another's subscription", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
async fn change_subscribers(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (id, change) = s
        .blocking(move |s| subscribers_change(s, &p, &ident, payload))
        .await?;
    let updated = s.store.update_group(id, change).await?;
    group_answer(&s, p, updated).await
}

/// The subscription change `payload` asks of the group `ident`, checked against its directory.
fn subscribers_change(
    s: &AppState,
    p: &Principal,
    ident: &str,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<(GroupId, GroupChange)> {
    let (ix, g) = find_group(s, p, ident)?;
    if g.group_type != GroupType::M365 {
        return Err(ApiError::bad_request(
            "only Microsoft 365 groups have subscribers",
        ));
    }
    let input = body(payload)?;
    let add: Vec<i64> = input
        .add
        .iter()
        .map(|o| resolve_mailbox(&ix, o))
        .collect::<ApiResult<_>>()?;
    let remove: Vec<i64> = input
        .remove
        .iter()
        .map(|o| resolve_mailbox(&ix, o))
        .collect::<ApiResult<_>>()?;
    let manages = policy::authorize(p, &ix, &g, GroupAction::ChangeMembers, false).is_ok();
    let only_self = p
        .mailbox_id
        .is_some_and(|me| add.iter().chain(&remove).all(|m| *m == me));
    if !manages && !only_self {
        return Err(ApiError::forbidden(
            "members may change only their own subscription",
        ));
    }
    for m in &add {
        if !g.members.contains(&MemberRef::Mailbox(*m)) {
            return Err(ApiError::bad_request(format!(
                "{} is not a member of the group",
                ix.name_of(MemberRef::Mailbox(*m))
            )));
        }
    }
    Ok((
        g.id,
        GroupChange {
            add_subscribers: add,
            remove_subscribers: remove,
            ..Default::default()
        },
    ))
}
