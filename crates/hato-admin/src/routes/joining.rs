//! Users joining and leaving groups, and the join/leave requests owners decide.

use super::common::{GROUP_PARAM, denied, find_group};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path};
use axum::Json;
use axum::extract::State;
use hato_core::auth::Principal;
use hato_core::directory::{AccessType, Group, GroupType, MemberRef, Restriction};
use hato_directory::DirectoryIndex;
use hato_directory::policy::{self, GroupAction};
use hato_store::{GroupChange, JoinRequestKind};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(list_requests))
        .routes(routes!(decide_request))
}

/// What became of a join, a leave or a decision.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the `json!` answers below; never built
struct MembershipResult {
    /// `joined`, `already-member`, `left`, `requested` (the owners decide), or the decision
    /// (`approve`, `reject`).
    result: String,
    /// The request's id, when `requested`.
    request: Option<i64>,
}

/// A waiting join or leave request.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `list_requests`' answer; never built
struct JoinRequestView {
    id: i64,
    /// The user's address.
    mailbox: String,
    /// `join` or `depart`.
    kind: String,
    /// RFC 3339, UTC.
    created: String,
}

fn me(p: &Principal) -> ApiResult<i64> {
    p.mailbox_id.ok_or_else(|| {
        ApiError::bad_request("only a user (logged in as a mailbox) can join or leave a group")
    })
}

/// A user joins: open groups (and public Microsoft 365 groups) at once; approval-required (and
/// private) groups by a request to the owners; closed groups not at all.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/join",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "Joined, already a member, or requested", body = MembershipResult),
        (status = 400, description = "Not a user (logged in as a mailbox), or a dynamic group", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A closed group, or a role group (or one nested in it)", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn join(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (ix, g, me) = s
        .blocking(move |s| {
            let (ix, g) = find_group(s, &p, &ident)?;
            let me = me(&p)?;
            // Joining a role group (or one nested in it) would make the user an admin: only a
            // global admin may add them.
            if ix.role_protected_groups().contains(&g.id) {
                return Err(ApiError::forbidden(policy::role_group_refusal(&g)));
            }
            Ok((ix, g, me))
        })
        .await?;
    if g.group_type == GroupType::Dynamic {
        return Err(ApiError::bad_request(
            "a dynamic group's members come from its recipient filter",
        ));
    }
    if g.members.contains(&MemberRef::Mailbox(me)) {
        return Ok(Json(json!({ "result": "already-member" })));
    }
    let restriction = if g.group_type == GroupType::M365 {
        match g.settings.access_type {
            AccessType::Public => Restriction::Open,
            AccessType::Private => Restriction::ApprovalRequired,
        }
    } else {
        g.settings.member_join_restriction
    };
    let answer = membership_change(&s, &g, me, JoinRequestKind::Join, restriction).await?;
    if restriction == Restriction::ApprovalRequired {
        notify_owners(&s, &ix, &g, me).await?;
    }
    Ok(answer)
}

/// Exchange mails a join request to the group's owners: tell them who asks and how to decide,
/// once per request (asking again while it waits sends nothing new).
async fn notify_owners(s: &AppState, ix: &DirectoryIndex, g: &Group, me: i64) -> ApiResult<()> {
    let group = g.id;
    let Some(request) = s
        .blocking(move |s| {
            Ok(s.store
                .join_requests(group)?
                .into_iter()
                .find(|r| r.mailbox_id == me && r.kind == JoinRequestKind::Join))
        })
        .await?
    else {
        return Ok(());
    };
    // A repeated request keeps its id; the owners were told the first time.
    if s.store.mark_join_request_notified(request.id).await? {
        return Ok(());
    }
    let Some(requester) = ix.mailbox(me) else {
        return Ok(());
    };
    let owners: Vec<(i64, String)> = g
        .owners
        .iter()
        .filter_map(|o| ix.mailbox(*o).map(|m| (*o, m.address.clone())))
        .collect();
    let address = g.address.clone().unwrap_or_else(|| g.name.clone());
    if let Some(notice) = hato_transport::delivery::join_request_notice(
        &s.hostname,
        s.clock.now(),
        g.tenant_id,
        &address,
        &g.name,
        (&requester.address, &requester.display_name),
        &owners,
        request.id,
    ) {
        s.store.enqueue(notice).await?;
    }
    Ok(())
}

/// Carries out a user's own join or leave under the group's restriction: at once when open, as a
/// request to the owners when approval is required, not at all when closed.
async fn membership_change(
    s: &AppState,
    g: &Group,
    me: i64,
    kind: JoinRequestKind,
    restriction: Restriction,
) -> ApiResult<Json<Value>> {
    let member = vec![MemberRef::Mailbox(me)];
    let (change, done, verb) = match kind {
        JoinRequestKind::Join => (
            GroupChange {
                add_members: member,
                ..Default::default()
            },
            "joined",
            "add",
        ),
        JoinRequestKind::Depart => (
            GroupChange {
                remove_members: member,
                ..Default::default()
            },
            "left",
            "remove",
        ),
    };
    match restriction {
        Restriction::Open => {
            s.store.update_group(g.id, change).await?;
            Ok(Json(json!({ "result": done })))
        }
        Restriction::ApprovalRequired => {
            let r = s.store.add_join_request(g.id, me, kind).await?;
            Ok(Json(json!({ "result": "requested", "request": r.id })))
        }
        Restriction::Closed => Err(ApiError::forbidden(format!(
            "this group is closed: only its owners can {verb} members"
        ))),
    }
}

/// A user leaves: at once, by a request to the owners, or not at all, as the group's depart
/// restriction says (Microsoft 365 groups: at once).
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/leave",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "Left, or requested", body = MembershipResult),
        (status = 400, description = "Not a user, or not a member", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A closed group", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn leave(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, g) = s.blocking(move |s| find_group(s, &p, &ident)).await?;
    let me = me(&p)?;
    if !g.members.contains(&MemberRef::Mailbox(me)) {
        return Err(ApiError::bad_request("you are not a member of this group"));
    }
    let restriction = if g.group_type == GroupType::M365 {
        Restriction::Open
    } else {
        g.settings.member_depart_restriction
    };
    membership_change(&s, &g, me, JoinRequestKind::Depart, restriction).await
}

/// Waiting join and leave requests (the group's managers).
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/requests",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The requests", body = [JoinRequestView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    s.blocking(move |s| {
        let (ix, g) = find_group(s, &p, &ident)?;
        policy::authorize(&p, &ix, &g, GroupAction::ChangeMembers, false).map_err(denied)?;
        Ok(Json(
            s.store
                .join_requests(g.id)?
                .into_iter()
                .map(|r| json!({ "id": r.id, "mailbox": ix.name_of(MemberRef::Mailbox(r.mailbox_id)), "kind": r.kind, "created": r.created.to_rfc3339() }))
                .collect(),
        ))
    })
    .await
}

/// Approve or reject a request (the group's managers).
#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/requests/{id}/{decision}",
    tag = "groups",
    params(
        ("group" = String, Path, description = GROUP_PARAM),
        ("id" = i64, Path, description = "The request's id"),
        ("decision" = String, Path, description = "`approve` or `reject`"),
    ),
    responses(
        (status = 200, description = "Decided", body = MembershipResult),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group", body = ErrorBody),
        (status = 404, description = "No such group or request, or a decision other than approve or reject", body = ErrorBody),
    )
)]
pub(crate) async fn decide_request(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id, decision)): Path<(String, i64, String)>,
) -> ApiResult<Json<Value>> {
    let (g, request) = s
        .blocking(move |s| {
            let (ix, g) = find_group(s, &p, &ident)?;
            policy::authorize(&p, &ix, &g, GroupAction::ChangeMembers, false).map_err(denied)?;
            let request = s
                .store
                .join_requests(g.id)?
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| ApiError::not_found(format!("request {id} not found")))?;
            Ok((g, request))
        })
        .await?;
    match decision.as_str() {
        "approve" => {
            let m = MemberRef::Mailbox(request.mailbox_id);
            let change = match request.kind {
                JoinRequestKind::Join => GroupChange {
                    add_members: vec![m],
                    ..Default::default()
                },
                JoinRequestKind::Depart => GroupChange {
                    remove_members: vec![m],
                    ..Default::default()
                },
            };
            s.store.update_group(g.id, change).await?;
        }
        "reject" => {}
        _ => return Err(ApiError::not_found("use approve or reject")),
    }
    s.store.remove_join_request(id).await?;
    Ok(Json(json!({ "result": decision })))
}
