//! Microsoft 365 group content: conversations, items, the calendar and files.

use super::common::{GROUP_PARAM, belongs, find_group, member_only};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
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
    Ok((
        [
            (header::CONTENT_TYPE, media_type(&info.content_type)),
            (
                header::CONTENT_DISPOSITION,
                attachment_disposition(&info.name),
            ),
        ],
        data,
    )
        .into_response())
}

/// `Content-Disposition: attachment` naming `name` (RFC 6266 §4): `filename*` carries the name
/// in UTF-8, percent-encoded (RFC 8187 §3.2), and `filename` an ASCII stand-in for clients that
/// read only that (RFC 6266 appendix D). The name comes from a message and may hold anything, so
/// every byte outside RFC 8187's `attr-char` is encoded and the value is always a valid header;
/// control characters (no file name has them, and they are dangerous where the file is saved)
/// become `_` in both.
fn attachment_disposition(name: &str) -> HeaderValue {
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    // Appendix D: no `%` in the stand-in, which some clients would decode; no quote or
    // backslash, which would end or escape the quoted string.
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '%') => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The attachment's `type/subtype` as its Content-Type, if it is one (RFC 9110 §8.3.1: two
/// tokens); anything else is served as what it is to us, bytes.
fn media_type(content_type: &str) -> HeaderValue {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match content_type.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
        _ => HeaderValue::from_static("application/octet-stream"),
    }
}

fn hato_transport_files(bytes: &[u8]) -> Vec<hato_transport::groupmail::AttachmentInfo> {
    hato_transport::groupmail::attachments(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters of a disposition this module wrote: the quoted `filename` and the
    /// percent-decoded `filename*`.
    fn names_of(v: &HeaderValue) -> (String, String) {
        let text = v.to_str().expect("visible ASCII");
        let rest = text.strip_prefix("attachment; filename=\"").expect(text);
        let (fallback, rest) = rest.split_once("\"; filename*=UTF-8''").expect(text);
        let mut bytes = Vec::new();
        let mut it = rest.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex: String = [it.next(), it.next()]
                    .iter()
                    .map(|h| char::from(h.expect(text)))
                    .collect();
                bytes.push(u8::from_str_radix(&hex, 16).expect(text));
            } else {
                assert!(
                    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b),
                    "{text}"
                );
                bytes.push(b);
            }
        }
        (
            fallback.to_string(),
            String::from_utf8(bytes).expect("UTF-8"),
        )
    }

    #[test]
    fn any_file_name_gives_a_valid_disposition_that_names_it() {
        for (name, fallback, full) in [
            ("plan.pdf", "plan.pdf", "plan.pdf"),
            (
                "Präsentation Q3 – endgültig.pptx",
                "Pr_sentation Q3 _ endg_ltig.pptx",
                "Präsentation Q3 – endgültig.pptx",
            ),
            ("日本語の資料.txt", "______.txt", "日本語の資料.txt"),
            (
                "a\u{1}b\tc\u{7f}d\u{85}e.txt",
                "a_b_c_d_e.txt",
                "a_b_c_d_e.txt",
            ),
            (
                "x\r\nSet-Cookie: s=1\r\n.txt",
                "x__Set-Cookie: s=1__.txt",
                "x__Set-Cookie: s=1__.txt",
            ),
            (
                "say \"hi\" \\ 100%25.txt",
                "say _hi_ _ 100_25.txt",
                "say \"hi\" \\ 100%25.txt",
            ),
            ("", "", ""),
        ] {
            let v = attachment_disposition(name);
            assert!(
                v.as_bytes().iter().all(|b| (b' '..=b'~').contains(b)),
                "{name:?}: {v:?}"
            );
            assert_eq!(names_of(&v), (fallback.into(), full.into()), "{name:?}");
        }
    }

    #[test]
    fn a_content_type_that_is_not_one_is_served_as_bytes() {
        assert_eq!(media_type("application/pdf"), "application/pdf");
        for bad in [
            "",
            "pdf",
            "text/",
            "text/plain; x=\u{1}",
            "a b/c",
            "text/pl\u{e4}in",
        ] {
            assert_eq!(media_type(bad), "application/octet-stream", "{bad:?}");
        }
    }
}
