//! The messages in a mailbox: listing (by folder, in pages) and the raw message.

use super::common::{SpamReportView, actor_name, counted_report, require_mailbox_read};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::{ApiResult, AppState, Path, body, visible_mailbox};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Principal;
use hato_store::{Folder, MailItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(raw_message))
        .routes(routes!(move_message))
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
    Ok(Json(
        messages(
            &s,
            p,
            address,
            folder,
            f.limit.unwrap_or(i64::MAX as usize),
            f.offset.unwrap_or(0),
        )
        .await?,
    ))
}

/// One page of the messages in mailbox `address` (one folder, or both), newest first, if `p`
/// may read it (the API's listing; the console's Junk Email too).
pub(crate) async fn messages(
    s: &AppState,
    p: Principal,
    address: String,
    folder: Option<Folder>,
    limit: usize,
    offset: usize,
) -> ApiResult<Vec<MailItem>> {
    s.blocking(move |s| {
        let m = visible_mailbox(s, &p, &address)?;
        require_mailbox_read(s, &p, &m)?;
        Ok(s.store.mail_page(m.id, folder, limit, offset)?)
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
    let (_, bytes) = message(&s, p, address, id).await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}

/// Message `id` of mailbox `address` and its stored bytes, if `p` may read the mailbox (the
/// API's raw message; the console's Junk Email preview).
pub(crate) async fn message(
    s: &AppState,
    p: Principal,
    address: String,
    id: i64,
) -> ApiResult<(MailItem, Vec<u8>)> {
    s.blocking(move |s| {
        let m = visible_mailbox(s, &p, &address)?;
        require_mailbox_read(s, &p, &m)?;
        let not_found = || ApiError::not_found(format!("message {id} not found in {address}"));
        let item = s.store.mail_item(m.id, id)?.ok_or_else(not_found)?;
        let bytes = s.store.blob(&item.blob)?;
        Ok((item, bytes))
    })
    .await
}

/// Where a message goes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveTo {
    /// `inbox` or `junk`.
    folder: String,
}

/// A message after a move, and the report the move made.
#[derive(Serialize, ToSchema)]
pub(crate) struct Moved {
    #[schema(value_type = Message)]
    pub(crate) message: MailItem,
    /// Junk Email → Inbox: a not-junk report; Inbox → Junk Email: a junk report; null when the
    /// message was in that folder already or its trace is no longer kept.
    pub(crate) report: Option<SpamReportView>,
}

/// Move a message between Inbox and Junk Email, as a user does in Outlook: out of Junk Email
/// it is reported as not junk, into it as junk (the same report as `POST /api/v1/reports`).
#[utoipa::path(
    post,
    path = "/api/v1/mailboxes/{address}/messages/{id}/move",
    tag = "mail",
    params(
        ("address" = String, Path, description = "The primary address or an alias"),
        ("id" = i64, Path, description = "The message's id in the listing"),
    ),
    request_body = MoveTo,
    responses(
        (status = 200, description = "The message in its new folder, and the report made", body = Moved),
        (status = 400, description = "Unknown folder, or an id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "No access to this mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox or message", body = ErrorBody),
    )
)]
async fn move_message(
    State(s): State<AppState>,
    p: Principal,
    Path((address, id)): Path<(String, i64)>,
    payload: Result<Json<MoveTo>, JsonRejection>,
) -> ApiResult<Json<Moved>> {
    let to = body(payload)?;
    let folder = Folder::parse(to.folder.trim()).ok_or_else(|| {
        ApiError::bad_request(format!("unknown folder {}: use inbox or junk", to.folder))
    })?;
    Ok(Json(move_to(&s, p, address, id, folder).await?))
}

/// Moves message `id` of mailbox `address` to `folder` if `p` may read the mailbox, with the
/// junk or not-junk report the move makes (the API's move; the console's Junk / Not junk).
pub(crate) async fn move_to(
    s: &AppState,
    p: Principal,
    address: String,
    id: i64,
    folder: Folder,
) -> ApiResult<Moved> {
    let (m, by) = s
        .blocking(move |s| {
            let m = visible_mailbox(s, &p, &address)?;
            require_mailbox_read(s, &p, &m)?;
            Ok((m, actor_name(s, &p)?))
        })
        .await?;
    let moved = s
        .store
        .move_mail(m.id, id, folder, &by, s.clock.now())
        .await
        .map_err(|e| match e {
            hato_store::StoreError::NotFound(_) => {
                ApiError::not_found(format!("message {id} not found in {}", m.address))
            }
            e => e.into(),
        })?;
    Ok(Moved {
        message: moved.item,
        report: moved.report.map(|r| counted_report(s, r)),
    })
}
