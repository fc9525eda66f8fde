//! The messages in a mailbox: listing (by folder, in pages) and the raw message.

use super::common::require_mailbox_read;
use crate::error::ApiError;
use crate::state::{ApiResult, AppState, visible_mailbox};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hato_core::auth::Principal;
use hato_store::Folder;
use serde::Deserialize;
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/mailboxes/{address}/messages", get(list_messages))
        .route(
            "/api/v1/mailboxes/{address}/messages/{id}/raw",
            get(raw_message),
        )
}

#[derive(Deserialize)]
struct FolderFilter {
    folder: Option<String>,
    /// Paging: at most `limit` messages (all when absent), after skipping `offset`.
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_messages(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    Query(f): Query<FolderFilter>,
) -> ApiResult<Json<Value>> {
    let m = visible_mailbox(&s, &p, &address)?;
    require_mailbox_read(&s, &p, &m)?;
    let folder = f
        .folder
        .as_deref()
        .map(|name| {
            Folder::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!("unknown folder {name}: use inbox or junk"))
            })
        })
        .transpose()?;
    Ok(Json(
        serde_json::to_value(s.store.mail_page(
            m.id,
            folder,
            f.limit.unwrap_or(i64::MAX as usize),
            f.offset.unwrap_or(0),
        )?)
        .unwrap_or_default(),
    ))
}

async fn raw_message(
    State(s): State<AppState>,
    p: Principal,
    Path((address, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let m = visible_mailbox(&s, &p, &address)?;
    require_mailbox_read(&s, &p, &m)?;
    let not_found = || ApiError::not_found(format!("message {id} not found in {address}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let item = s.store.mail_item(m.id, id)?.ok_or_else(not_found)?;
    let bytes = s.store.blob(&item.blob)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}
