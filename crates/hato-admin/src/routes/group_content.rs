//! Microsoft 365 group content: conversations, items, the calendar and files.

use super::common::{belongs, find_group, member_only};
use crate::error::ApiError;
use crate::state::{ApiResult, AppState};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hato_core::auth::Principal;
use hato_core::directory::{Group, GroupType};
use hato_directory::DirectoryIndex;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    use axum::routing::get;
    Router::new()
        .route("/api/v1/groups/{group}/conversations", get(conversations))
        .route(
            "/api/v1/groups/{group}/conversations/{id}",
            get(conversation),
        )
        .route("/api/v1/groups/{group}/items/{id}/raw", get(group_item_raw))
        .route("/api/v1/groups/{group}/calendar", get(calendar))
        .route("/api/v1/groups/{group}/files", get(files))
        .route(
            "/api/v1/groups/{group}/files/{item}/{index}",
            get(file_download),
        )
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

async fn conversations(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    Ok(Json(
        serde_json::to_value(s.store.conversations(g.id)?).unwrap_or_default(),
    ))
}

async fn conversation(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let items = s.store.group_items(g.id, Some(id))?;
    if items.is_empty() {
        return Err(ApiError::not_found(format!("conversation {id} not found")));
    }
    Ok(Json(serde_json::to_value(items).unwrap_or_default()))
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

async fn group_item_raw(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Response> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let bytes = group_item_bytes(&s, &g, id)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}

async fn calendar(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    Ok(Json(
        s.store
            .group_calendar(g.id)?
            .into_iter()
            .filter_map(|(_, j)| serde_json::from_str(&j).ok())
            .collect(),
    ))
}

async fn files(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
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
}

async fn file_download(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, item, index)): Path<(String, i64, usize)>,
) -> ApiResult<Response> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let bytes = group_item_bytes(&s, &g, item)?;
    let info = hato_transport_files(&bytes)
        .into_iter()
        .find(|a| a.index == index)
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let data = hato_transport::groupmail::attachment_bytes(&bytes, index)
        .ok_or_else(|| ApiError::not_found("no such file"))?;
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
