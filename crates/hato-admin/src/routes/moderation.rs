//! Messages held for moderated groups: the queue and moderators' decisions.

use super::common::{denied, find_group, resolve_ref};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, listing_scope};
use axum::Json;
use axum::extract::{Query, State};
use hato_core::auth::Principal;
use hato_core::directory::{Group, GroupId};
use hato_directory::DirectoryIndex;
use hato_directory::policy::{self, GroupAction};
use hato_store::{GroupChange, ModerationState};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(moderation_list))
        .routes(routes!(moderation_decide))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ModerationFilter {
    /// Only this group's (address or name).
    group: Option<String>,
    /// `pending`, `approved`, `rejected` or `expired`.
    state: Option<String>,
}

/// A message held for moderation, as `held_json` writes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `held_json`; never built
struct HeldMessage {
    id: i64,
    /// The moderated group's address.
    group: Option<String>,
    trace_id: String,
    sender: String,
    subject: String,
    /// RFC 3339, UTC.
    received: String,
    /// When it is rejected unless decided (RFC 3339, UTC).
    expires: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    state: String,
    /// Who decided: a moderator's address, or a role (`""` while pending).
    decided_by: String,
    /// The moderator's comment.
    comment: String,
}

fn held_json(ix: &DirectoryIndex, h: &hato_store::HeldMessage) -> Value {
    json!({
        "id": h.id, "group": ix.group(h.group_id).and_then(|g| g.address.clone()),
        "trace_id": h.trace_id, "sender": h.sender, "subject": h.subject,
        "received": h.received.to_rfc3339(), "expires": h.expires.to_rfc3339(),
        "state": h.state.as_str(), "decided_by": h.decided_by, "comment": h.comment,
    })
}

/// Whether the caller moderates `group` (its moderators, or owners when none are named) or is a
/// global admin.
fn may_moderate(p: &Principal, g: &Group) -> bool {
    p.is_global_admin()
        || p.mailbox_id
            .is_some_and(|me| policy::moderators(g).contains(&me))
}

/// The held messages of the groups the caller moderates (all for global admins).
#[utoipa::path(
    get,
    path = "/api/v1/moderation",
    tag = "moderation",
    params(ModerationFilter),
    responses(
        (status = 200, description = "The held messages", body = [HeldMessage]),
        (status = 400, description = "An unknown state", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub(crate) async fn moderation_list(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<ModerationFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    let state = f
        .state
        .as_deref()
        .map(|t| {
            ModerationState::parse(t).ok_or_else(|| {
                ApiError::bad_request("state: use pending, approved, rejected or expired")
            })
        })
        .transpose()?;
    s.blocking(move |s| {
        let group = f
            .group
            .as_deref()
            .map(|g| find_group(s, &p, g))
            .transpose()?;
        let tenant = listing_scope(s, &p, None)?;
        let held = s
            .store
            .moderation_queue(tenant, group.as_ref().map(|(_, g)| g.id), state)?;
        let mut out = Vec::new();
        for h in held {
            let ix = s.directory.index(h.tenant_id)?;
            if let Some(g) = ix.group(h.group_id)
                && may_moderate(&p, g)
            {
                out.push(held_json(&ix, &h));
            }
        }
        Ok(Json(out))
    })
    .await
}

/// The change that adds the held message's sender to the group's moderation bypass list
/// ("approve and stop moderating this sender"): only with an approval, only for a sender the
/// directory knows, and only by someone who may change the group's settings.
fn sender_bypass(
    p: &Principal,
    ix: &DirectoryIndex,
    g: &Group,
    held: &hato_store::HeldMessage,
    state: ModerationState,
) -> ApiResult<(GroupId, GroupChange)> {
    if state != ModerationState::Approved {
        return Err(ApiError::bad_request(
            "bypass_sender goes with approve: a rejected sender stays moderated",
        ));
    }
    policy::authorize(p, ix, g, GroupAction::ChangeSettings, p.is_global_admin())
        .map_err(denied)?;
    let sender = resolve_ref(ix, &held.sender).map_err(|_| {
        ApiError::bad_request(format!(
            "{} is not a recipient of the tenant: only mailboxes, contacts and groups can bypass moderation (add a mail contact first)",
            held.sender
        ))
    })?;
    let mut settings = g.settings.clone();
    if !settings.bypass_moderation_from.contains(&sender) {
        settings.bypass_moderation_from.push(sender);
    }
    Ok((
        g.id,
        GroupChange {
            settings: Some(settings),
            ..Default::default()
        },
    ))
}

/// The longest comment a moderator may give, in characters: it goes into the sender's NDR and
/// stays with the held message, so its size is bounded as every other field of either.
pub(crate) const MAX_COMMENT_CHARS: usize = 1000;

/// A moderator's decision; the body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// Goes into the rejection's NDR; at most 1,000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    comment: String,
    /// With `approve`: "approve and stop moderating this sender" — the sender joins the group's
    /// `bypass_moderation_from` (Exchange's BypassModerationFromSendersOrMembers), so their
    /// next messages to it go straight through. The sender must be a recipient of the tenant
    /// (a mailbox, contact or group), and the caller must be allowed to change the group's
    /// settings (its owners; admins as for any settings change).
    #[serde(default)]
    bypass_sender: bool,
}

/// Approve (deliver) or reject (NDR to the sender) a held message (its moderators).
#[utoipa::path(
    post,
    path = "/api/v1/moderation/{id}/{decision}",
    tag = "moderation",
    params(
        ("id" = i64, Path, description = "The held message's id"),
        ("decision" = String, Path, description = "`approve` or `reject`"),
    ),
    request_body(content = Option<Decision>, description = "May be left out"),
    responses(
        (status = 200, description = "The decided message", body = HeldMessage),
        (status = 400, description = "Decided already, a comment over 1,000 characters, or an id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a moderator of the group", body = ErrorBody),
        (status = 404, description = "No such held message, or a decision other than approve or reject", body = ErrorBody),
    )
)]
pub(crate) async fn moderation_decide(
    State(s): State<AppState>,
    p: Principal,
    Path((id, decision)): Path<(i64, String)>,
    payload: Option<Json<Decision>>,
) -> ApiResult<Json<Value>> {
    let (comment, bypass_sender) = payload
        .map(|Json(d)| (d.comment, d.bypass_sender))
        .unwrap_or_default();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::bad_request(format!(
            "comment: at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let (ix, state, by, bypass) = s
        .blocking(move |s| {
            let tenant = listing_scope(s, &p, None)?;
            let held = s
                .store
                .moderation_queue(tenant, None, None)?
                .into_iter()
                .find(|h| h.id == id)
                .ok_or_else(|| ApiError::not_found(format!("held message {id} not found")))?;
            let ix = s.directory.index(held.tenant_id)?;
            let g = ix
                .group(held.group_id)
                .ok_or_else(|| ApiError::not_found("the group was removed"))?;
            if !may_moderate(&p, g) {
                return Err(ApiError::forbidden(
                    "only the group's moderators may decide",
                ));
            }
            let state = match decision.as_str() {
                "approve" => ModerationState::Approved,
                "reject" => ModerationState::Rejected,
                _ => return Err(ApiError::not_found("use approve or reject")),
            };
            // Checked in full before the decision, so a refused bypass decides nothing.
            let bypass = if bypass_sender {
                Some(sender_bypass(&p, &ix, g, &held, state)?)
            } else {
                None
            };
            let by = p
                .mailbox_id
                .and_then(|m| ix.mailbox(m))
                .map(|m| m.address.clone())
                .unwrap_or_else(|| p.role.as_str().to_string());
            Ok((ix, state, by, bypass))
        })
        .await?;
    let decided = s
        .store
        .decide_moderation(id, state, by, comment, s.clock.now())
        .await?;
    if let Some((group, change)) = bypass {
        s.store.update_group(group, change).await?;
    }
    Ok(Json(held_json(&ix, &decided)))
}
