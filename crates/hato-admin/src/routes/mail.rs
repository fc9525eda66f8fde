//! The messages in a mailbox: listing (by folder, in pages) and the raw message.

use super::common::require_mailbox_read;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{ApiResult, AppState, Path, visible_mailbox};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Principal;
use hato_store::{Folder, MailItem};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(raw_message))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FolderFilter {
    /// `inbox` or `junk` (default: both).
    folder: Option<String>,
    /// Paging: at most `limit` messages (all when absent), after skipping `offset`.
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A message in a mailbox (`hato_store::MailItem` as the API writes it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes the store's `MailItem`; never built
struct Message {
    /// For `/messages/{id}/raw`.
    id: i64,
    /// RFC 3339, UTC.
    received: String,
    from: String,
    subject: String,
    /// Bytes, as stored.
    size: u64,
    /// `inbox` or `junk`.
    folder: String,
}

/// The messages in a mailbox, newest first: admins, its user and users with full access.
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}/messages",
    tag = "mail",
    params(
        ("address" = String, Path, description = "The primary address or an alias"),
        FolderFilter,
    ),
    responses(
        (status = 200, description = "One page of messages", body = [Message]),
        (status = 400, description = "Unknown folder or a bad number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "No access to this mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
async fn list_messages(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    Query(f): Query<FolderFilter>,
) -> ApiResult<Json<Vec<MailItem>>> {
    let folder = f
        .folder
        .as_deref()
        .map(|name| {
            Folder::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!("unknown folder {name}: use inbox or junk"))
            })
        })
        .transpose()?;
    s.blocking(move |s| {
        let m = visible_mailbox(s, &p, &address)?;
        require_mailbox_read(s, &p, &m)?;
        Ok(Json(s.store.mail_page(
            m.id,
            folder,
            f.limit.unwrap_or(i64::MAX as usize),
            f.offset.unwrap_or(0),
        )?))
    })
    .await
}

/// A message as stored (RFC 5322, with the Return-Path and Received fields hato added).
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}/messages/{id}/raw",
    tag = "mail",
    params(
        ("address" = String, Path, description = "The primary address or an alias"),
        ("id" = i64, Path, description = "The message's id in the listing"),
    ),
    responses(
        (status = 200, description = "The message", content_type = "message/rfc822", body = String),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "No access to this mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox or message", body = ErrorBody),
    )
)]
async fn raw_message(
    State(s): State<AppState>,
    p: Principal,
    Path((address, id)): Path<(String, i64)>,
) -> ApiResult<Response> {
    let bytes = s
        .blocking(move |s| {
            let m = visible_mailbox(s, &p, &address)?;
            require_mailbox_read(s, &p, &m)?;
            let not_found = || ApiError::not_found(format!("message {id} not found in {address}"));
            let item = s.store.mail_item(m.id, id)?.ok_or_else(not_found)?;
            Ok(s.store.blob(&item.blob)?)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}
