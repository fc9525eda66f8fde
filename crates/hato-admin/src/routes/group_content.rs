//! Microsoft 365 group content: conversations, items, the calendar and files.

use super::common::{GROUP_PARAM, belongs, find_group, member_only};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Principal;
use hato_core::directory::{Group, GroupType};
use hato_directory::DirectoryIndex;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(conversations))
        .routes(routes!(conversation))
        .routes(routes!(group_item_raw))
        .routes(routes!(calendar))
        .routes(routes!(files))
        .routes(routes!(file_download))
}

/// A conversation of a group mailbox (`hato_store::Conversation`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `Conversation`; never built
struct Conversation {
    id: i64,
    /// The normalised subject.
    topic: String,
    /// RFC 3339, UTC.
    last_activity: String,
    messages: u64,
}

/// A message of a group mailbox (`hato_store::GroupItem`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `GroupItem`; never built
struct GroupItem {
    /// For `/items/{id}/raw`.
    id: i64,
    conversation_id: i64,
    /// RFC 3339, UTC.
    received: String,
    from: String,
    subject: String,
    size: u64,
    message_id: String,
}

/// An event of the group calendar (`hato_transport::delivery::calendar_to_json`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes `calendar_to_json`; never built
struct CalendarEvent {
    /// The iCalendar UID.
    uid: String,
    sequence: u32,
    cancelled: bool,
    summary: String,
    location: String,
    organizer: String,
    start: String,
    end: String,
    all_day: bool,
}

/// A file attached to a message of the group mailbox.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `files`' answer; never built
struct GroupFile {
    name: String,
    size: u64,
    /// Its MIME type.
    #[schema(rename = "type")]
    content_type: String,
    conversation: i64,
    item: i64,
    index: usize,
    /// Where to download it.
    download: String,
}

/// Anyone in the tenant reads a public group's content; a private group's (or one with hidden
/// membership) only its members and owners. Admins manage such a group but do not read it.
fn require_group_reader(p: &Principal, ix: &DirectoryIndex, g: &Group) -> ApiResult<()> {
    if g.group_type != GroupType::M365 {
        return Err(ApiError::bad_request(
            "only Microsoft 365 groups have a group mailbox",
        ));
    }
    if !member_only(g) || belongs(p, ix, g) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "only the group's members and owners can read its content (admins manage the group but do not read it)",
    ))
}

/// The group `ident`, if `p` may read its content.
fn readable_group(s: &AppState, p: &Principal, ident: &str) -> ApiResult<Group> {
    let (ix, g) = find_group(s, p, ident)?;
    require_group_reader(p, &ix, &g)?;
    Ok(g)
}

/// The conversations of a Microsoft 365 group's mailbox (members; anyone in the tenant for a
/// public group).
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/conversations",
    tag = "group content",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The conversations", body = [Conversation]),
        (status = 400, description = "Not a Microsoft 365 group", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
async fn conversations(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<hato_store::Conversation>>> {
    s.blocking(move |s| {
        let g = readable_group(s, &p, &ident)?;
        Ok(Json(s.store.conversations(g.id)?))
    })
    .await
}

/// The messages of one conversation.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/conversations/{id}",
    tag = "group content",
    params(
        ("group" = String, Path, description = GROUP_PARAM),
        ("id" = i64, Path, description = "The conversation's id"),
    ),
    responses(
        (status = 200, description = "The messages", body = [GroupItem]),
        (status = 400, description = "Not a Microsoft 365 group, or an id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group or conversation", body = ErrorBody),
    )
)]
async fn conversation(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Json<Vec<hato_store::GroupItem>>> {
    s.blocking(move |s| {
        let g = readable_group(s, &p, &ident)?;
        let items = s.store.group_items(g.id, Some(id))?;
        if items.is_empty() {
            return Err(ApiError::not_found(format!("conversation {id} not found")));
        }
        Ok(Json(items))
    })
    .await
}

fn group_item_bytes(s: &AppState, g: &Group, id: i64) -> ApiResult<Vec<u8>> {
    let item = s
        .store
        .group_items(g.id, None)?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("item {id} not found")))?;
    Ok(s.store.blob(&item.blob)?)
}

/// A message of the group mailbox as stored.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/items/{id}/raw",
    tag = "group content",
    params(
        ("group" = String, Path, description = GROUP_PARAM),
        ("id" = i64, Path, description = "The message's id"),
    ),
    responses(
        (status = 200, description = "The message", content_type = "message/rfc822", body = String),
        (status = 400, description = "Not a Microsoft 365 group, or an id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group or message", body = ErrorBody),
    )
)]
async fn group_item_raw(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Response> {
    let bytes = s
        .blocking(move |s| {
            let g = readable_group(s, &p, &ident)?;
            group_item_bytes(s, &g, id)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}

/// The group calendar (invitations sent to the group).
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/calendar",
    tag = "group content",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The events", body = [CalendarEvent]),
        (status = 400, description = "Not a Microsoft 365 group", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
async fn calendar(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    s.blocking(move |s| {
        let g = readable_group(s, &p, &ident)?;
        Ok(Json(
            s.store
                .group_calendar(g.id)?
                .into_iter()
                .filter_map(|(_, j)| serde_json::from_str(&j).ok())
                .collect(),
        ))
    })
    .await
}

/// The files attached to the group's messages.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/files",
    tag = "group content",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The files", body = [GroupFile]),
        (status = 400, description = "Not a Microsoft 365 group", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
async fn files(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    s.blocking(move |s| {
        let g = readable_group(s, &p, &ident)?;
        let mut out = Vec::new();
        for item in s.store.group_items(g.id, None)? {
            let bytes = s.store.blob(&item.blob)?;
            for a in hato_transport_files(&bytes) {
                out.push(json!({
                    "name": a.name, "size": a.size, "type": a.content_type,
                    "conversation": item.conversation_id, "item": item.id, "index": a.index,
                    "download": format!("/api/v1/groups/{ident}/files/{}/{}", item.id, a.index),
                }));
            }
        }
        Ok(Json(out))
    })
    .await
}

/// One file, as it was attached.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/files/{item}/{index}",
    tag = "group content",
    params(
        ("group" = String, Path, description = GROUP_PARAM),
        ("item" = i64, Path, description = "The message's id"),
        ("index" = usize, Path, description = "The file's place among the message's attachments, from 0"),
    ),
    responses(
        (status = 200, description = "The file, with its type and a Content-Disposition naming it", content_type = "application/octet-stream", body = String),
        (status = 400, description = "Not a Microsoft 365 group, or an id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A private or hidden-membership group, and not a member", body = ErrorBody),
        (status = 404, description = "No such group, message or file", body = ErrorBody),
    )
)]
async fn file_download(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, item, index)): Path<(String, i64, usize)>,
) -> ApiResult<Response> {
    let (info, data) = s
        .blocking(move |s| {
            let g = readable_group(s, &p, &ident)?;
            let bytes = group_item_bytes(s, &g, item)?;
            let info = hato_transport_files(&bytes)
                .into_iter()
                .find(|a| a.index == index)
                .ok_or_else(|| ApiError::not_found("no such file"))?;
            let data = hato_transport::groupmail::attachment_bytes(&bytes, index)
                .ok_or_else(|| ApiError::not_found("no such file"))?;
            Ok((info, data))
        })
        .await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        info.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, info.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        data,
    )
        .into_response())
}

fn hato_transport_files(bytes: &[u8]) -> Vec<hato_transport::groupmail::AttachmentInfo> {
    hato_transport::groupmail::attachments(bytes)
}
