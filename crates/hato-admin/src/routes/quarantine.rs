//! The hosted quarantine: listing, one item, its preview, release into the Inbox, deletion.
//!
//! Who sees what (Exchange's quarantine, exchange-online-behaviour.md §4.3 and §6.4): global
//! admins of a tenant see and act on every item of their tenant, the operator on every tenant's;
//! a user acts only on the items held for their own mailbox, and only as the item's quarantine
//! policy permits (its end-user permissions, `routes::quarantine_policies`): a policy without
//! any (AdminOnlyAccessPolicy, the default of malware, high-confidence phishing and transport
//! rule items) hides the item from its user, who gets 403 saying so when asking for it; preview,
//! release, request release and delete each need their permission, and a user can never release
//! their own malware or high-confidence phishing, whatever the policy says: *release* becomes
//! *request release* (Exchange). A request is approved by an admin's release or denied.
//! Anyone else's item, and another tenant's, answers 404 as if it did not exist. Recipient
//! admins (Exchange's Recipient Management) do not manage quarantine: 403.

use super::common::{TraceReason, address_param, nonempty, page_param, time_param};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, listing_scope};
use axum::Json;
use axum::extract::{Query, State};
use hato_core::auth::{Principal, Role};
use hato_core::directory::TenantId;
use hato_core::message::QuarantineKind;
use hato_store::{
    QuarantineItem, QuarantinePermission, QuarantinePermissions, QuarantinePolicy, QuarantineQuery,
    QuarantineState, ReleaseRequestState, TRACE_PAGE_SIZE_MAX,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, delete))
        .routes(routes!(preview))
        .routes(routes!(release))
        .routes(routes!(release_all))
        .routes(routes!(request_release))
        .routes(routes!(deny_release))
        .routes(routes!(allow_sender))
        .routes(routes!(block_sender))
}

/// Rows per page unless asked otherwise.
const PAGE_SIZE_DEFAULT: usize = 100;
/// Pages go this far.
const PAGE_MAX: usize = 1000;

/// The listing's filters; all optional, empty ones ignored.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// The tenant's name (default: the caller's own; all tenants for the operator).
    pub(crate) tenant: Option<String>,
    /// The recipient the item was held for.
    pub(crate) recipient: Option<String>,
    /// `malware`, `transport-rule`, `spam`, `high-confidence-spam`, `phish`,
    /// `high-confidence-phish` or `bulk`.
    pub(crate) kind: Option<String>,
    /// `held`, `released` or `deleted` (default: all).
    pub(crate) state: Option<String>,
    /// The release request: `pending` (Exchange's "Release requested"), `approved` or
    /// `denied`.
    pub(crate) request: Option<String>,
    /// One message's copies.
    pub(crate) trace_id: Option<String>,
    /// The policy or transport rule that held the item (its name, any case).
    pub(crate) policy: Option<String>,
    /// Only items expiring before this time: RFC 3339, a date, or `YYYY-MM-DD HH:MM` (UTC).
    pub(crate) expires_before: Option<String>,
    /// 1-1000, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page: Option<String>,
    /// 1-5000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub(crate) page_size: Option<String>,
}

/// One recipient's copy of a message held in quarantine.
#[derive(Serialize, ToSchema)]
pub(crate) struct Item {
    pub(crate) id: i64,
    pub(crate) tenant: String,
    pub(crate) trace_id: String,
    pub(crate) recipient: String,
    /// The envelope sender (empty for `<>`).
    pub(crate) sender: String,
    /// The From field, decoded.
    pub(crate) from: String,
    pub(crate) subject: String,
    /// RFC 3339, UTC.
    pub(crate) received: String,
    pub(crate) quarantined: String,
    pub(crate) expires: String,
    /// `malware`, `transport-rule`, `spam`, `high-confidence-spam`, `phish`,
    /// `high-confidence-phish` or `bulk`.
    pub(crate) kind: String,
    /// The policy or rule that held it.
    pub(crate) policy: String,
    #[schema(value_type = Option<TraceReason>)]
    pub(crate) reason: Option<hato_core::Reason>,
    pub(crate) size: u64,
    /// `held`, `released` or `deleted`.
    pub(crate) state: String,
    /// Who released or deleted it, and when.
    pub(crate) decided_by: Option<String>,
    pub(crate) decided: Option<String>,
    /// The quarantine policy that applied (Exchange's quarantine tag).
    pub(crate) quarantine_policy: String,
    /// What the recipient may do with it: the policy's end-user permissions for its kind
    /// (`view-header`, `download`, `allow-sender`, `block-sender`, `request-release`,
    /// `release`, `preview`, `delete`; release becomes request-release for malware and high
    /// confidence phishing).
    pub(crate) permissions: Vec<String>,
    /// The recipient's release request: `pending`, `approved` or `denied`; none asked.
    pub(crate) release_request: Option<String>,
    /// Who asked, and when.
    pub(crate) requested_by: Option<String>,
    pub(crate) requested: Option<String>,
    /// Who approved or denied the request, and when.
    pub(crate) request_decided_by: Option<String>,
    pub(crate) request_decided: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ItemPage {
    /// Newest first.
    pub(crate) items: Vec<Item>,
    pub(crate) page: usize,
    pub(crate) page_size: usize,
    /// Whether a later page has items.
    pub(crate) more: bool,
}

/// A header field of the preview.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewHeader {
    pub(crate) name: String,
    /// Unfolded, control characters removed, not decoded.
    pub(crate) value: String,
}

/// What the preview shows of a held message: its header fields and its plain text, bounded.
/// HTML is never shown or rendered (only its text, when there is no plain part); attachments
/// only by name.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewView {
    pub(crate) id: i64,
    pub(crate) headers: Vec<PreviewHeader>,
    /// The text/plain parts, decoded, at most 65,536 characters, control characters removed;
    /// without one, the HTML body's text (tags, styles and scripts dropped, never rendered).
    pub(crate) text: String,
    /// The text was cut at its bound.
    pub(crate) truncated: bool,
    /// The text is the HTML body's, converted (the message has no plain text part).
    pub(crate) text_from_html: bool,
    /// The message has an HTML body, not shown as HTML.
    pub(crate) has_html: bool,
    pub(crate) attachments: Vec<String>,
}

/// Tenants' names by id, read once per request.
fn tenant_names(s: &AppState) -> ApiResult<HashMap<i64, String>> {
    Ok(s.store
        .tenants()?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

fn view(s: &AppState, it: QuarantineItem) -> ApiResult<Item> {
    let names = tenant_names(s)?;
    let perms = permissions_of(s, &it)?;
    Ok(item_view(&names, it, perms))
}

/// Every quarantine policy of a tenant: the built-in ones, then its custom ones.
pub(crate) fn tenant_policies(s: &AppState, tenant: TenantId) -> ApiResult<Vec<QuarantinePolicy>> {
    let mut all = QuarantinePolicy::built_ins();
    all.extend(s.store.quarantine_policies(tenant)?);
    Ok(all)
}

/// The end-user permissions an item's recipient has ([`QuarantineItem::permissions_in`]).
fn permissions_in(policies: &[QuarantinePolicy], it: &QuarantineItem) -> QuarantinePermissions {
    it.permissions_in(policies)
}

/// The end-user permissions of an item's recipient (see [`permissions_in`]).
pub(crate) fn permissions_of(
    s: &AppState,
    it: &QuarantineItem,
) -> ApiResult<QuarantinePermissions> {
    Ok(permissions_in(&tenant_policies(s, it.tenant_id)?, it))
}

fn item_view(
    names: &HashMap<i64, String>,
    it: QuarantineItem,
    perms: QuarantinePermissions,
) -> Item {
    let request = it.request.clone();
    Item {
        quarantine_policy: it.quarantine_policy.clone(),
        permissions: perms.names().into_iter().map(String::from).collect(),
        release_request: request.as_ref().map(|r| r.state.as_str().to_string()),
        requested_by: request.as_ref().map(|r| r.by.clone()),
        requested: request.as_ref().map(|r| r.at.to_rfc3339()),
        request_decided_by: request.as_ref().and_then(|r| r.decided_by.clone()),
        request_decided: request
            .as_ref()
            .and_then(|r| r.decided.map(|t| t.to_rfc3339())),
        id: it.id,
        tenant: names.get(&it.tenant_id).cloned().unwrap_or_default(),
        trace_id: it.trace_id,
        recipient: it.recipient,
        sender: it.sender,
        from: it.from_header,
        subject: it.subject,
        received: it.received.to_rfc3339(),
        quarantined: it.quarantined.to_rfc3339(),
        expires: it.expires.to_rfc3339(),
        kind: it.kind.as_str().into(),
        policy: it.policy,
        reason: it.reason,
        size: it.size,
        state: it.state.as_str().into(),
        decided_by: it.decided_by,
        decided: it.decided.map(|t| t.to_rfc3339()),
    }
}

/// Global admins, the operator and users manage quarantine; recipient admins do not.
fn require_quarantine_access(p: &Principal) -> ApiResult<()> {
    match p.role {
        Role::Operator | Role::TenantAdmin | Role::User => Ok(()),
        Role::RecipientAdmin => Err(ApiError::forbidden(
            "quarantine needs the global admin role (or a user's own items)",
        )),
    }
}

/// The item `id` if the caller may see it (see the module's rules), with what its recipient
/// may do with it.
fn visible_item(s: &AppState, p: &Principal, id: i64) -> ApiResult<QuarantineItem> {
    Ok(visible_item_with(s, p, id)?.0)
}

/// What a user's action needs, refused with the policy's name when it does not permit it.
fn require_permission(
    p: &Principal,
    it: &QuarantineItem,
    perms: QuarantinePermissions,
    needed: QuarantinePermission,
) -> ApiResult<()> {
    if p.is_global_admin() || perms.has(needed) {
        return Ok(());
    }
    let mut text = format!(
        "the quarantine policy {} does not permit you to {} this message",
        it.quarantine_policy,
        needed.as_str().replace('-', " ")
    );
    if needed == QuarantinePermission::Release && perms.has(QuarantinePermission::RequestRelease) {
        text.push_str(": request its release instead (an admin decides)");
    }
    Err(ApiError::forbidden(text))
}

fn visible_item_with(
    s: &AppState,
    p: &Principal,
    id: i64,
) -> ApiResult<(QuarantineItem, QuarantinePermissions)> {
    let not_found = || ApiError::not_found(format!("quarantined message {id} not found"));
    let it = s.store.quarantine_item(id)?.ok_or_else(not_found)?;
    if !p.sees(it.tenant_id) {
        return Err(not_found());
    }
    let perms = permissions_of(s, &it)?;
    if p.is_global_admin() {
        return Ok((it, perms));
    }
    if p.role != Role::User || p.mailbox_id.is_none() || it.mailbox_id != p.mailbox_id {
        return Err(not_found());
    }
    if !perms.any() {
        return Err(ApiError::forbidden(format!(
            "only admins may see or release messages quarantined as {} (quarantine policy {})",
            it.kind, it.quarantine_policy
        )));
    }
    Ok((it, perms))
}

/// The name recorded as having released or deleted: a user's address, else the role.
fn actor(s: &AppState, p: &Principal) -> ApiResult<String> {
    if let (Some(m), Some(t)) = (p.mailbox_id, p.tenant_id)
        && let Some(mb) = s.directory.index(t)?.mailbox(m)
    {
        return Ok(mb.address.clone());
    }
    Ok(match (p.role, p.tenant_id) {
        (Role::Operator, _) | (_, None) => p.role.as_str().to_string(),
        (role, Some(t)) => format!(
            "{} of {}",
            role.as_str(),
            tenant_names(s)?.remove(&t).unwrap_or_default()
        ),
    })
}

/// The quarantine: one page of items, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/quarantine",
    tag = "quarantine",
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = ItemPage),
        (status = 400, description = "A bad filter or paging value (named)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A recipient admin", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn list(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ItemPage>> {
    require_quarantine_access(&p)?;
    let Query(q) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(list_page(&s, p, q).await?))
}

/// One page of the quarantine as `p` may see it (the API's listing; the console's too).
pub(crate) async fn list_page(s: &AppState, p: Principal, q: ListParams) -> ApiResult<ItemPage> {
    require_quarantine_access(&p)?;
    let kind = nonempty(q.kind)
        .map(|k| {
            QuarantineKind::parse(&k).ok_or_else(|| {
                let all: Vec<&str> = QuarantineKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::bad_request(format!("unknown kind {k}: use one of {}", all.join(", ")))
            })
        })
        .transpose()?;
    let state = nonempty(q.state)
        .map(|st| {
            QuarantineState::parse(&st).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown state {st}: use one of held, released, deleted"
                ))
            })
        })
        .transpose()?;
    let recipient = address_param("recipient", q.recipient)?;
    let expires_before = time_param("expires_before", nonempty(q.expires_before).as_deref())?;
    let page = page_param("page", q.page.as_deref(), 1, PAGE_MAX)?;
    let page_size = page_param(
        "page_size",
        q.page_size.as_deref(),
        PAGE_SIZE_DEFAULT,
        TRACE_PAGE_SIZE_MAX,
    )?;
    let request = nonempty(q.request)
        .map(|r| {
            ReleaseRequestState::parse(&r).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown request {r}: use one of pending, approved, denied"
                ))
            })
        })
        .transpose()?;
    let named = q.tenant;
    let trace_id = nonempty(q.trace_id);
    let policy = nonempty(q.policy);
    s.blocking(move |s| {
        let tenant = listing_scope(s, &p, named.as_deref())?;
        let user = !p.is_global_admin();
        // A user's items are those under a policy that gives users any access (Exchange: "No
        // access" hides them), never a transport rule's.
        let user_policies = match (user, p.tenant_id) {
            (true, Some(t)) => Some(
                tenant_policies(s, t)?
                    .into_iter()
                    .filter(|q| q.permissions.any())
                    .map(|q| q.name)
                    .collect(),
            ),
            (true, None) => Some(Vec::new()),
            (false, _) => None,
        };
        let query = QuarantineQuery {
            quarantine_policies: user_policies,
            request,
            tenant,
            recipient,
            // A user's own items, without the kinds only admins see.
            mailbox: if user {
                Some(p.mailbox_id.unwrap_or(-1))
            } else {
                None
            },
            without_admin_only: false,
            trace_id,
            kind,
            policy,
            expires_before,
            state,
            limit: page_size,
            offset: (page - 1).saturating_mul(page_size),
        };
        let found = s.store.quarantine_items(&query)?;
        let names = tenant_names(s)?;
        let mut policies: HashMap<TenantId, Vec<QuarantinePolicy>> = HashMap::new();
        let mut items = Vec::with_capacity(found.items.len());
        for it in found.items {
            let known = match policies.entry(it.tenant_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(tenant_policies(s, it.tenant_id)?)
                }
            };
            let perms = permissions_in(known, &it);
            items.push(item_view(&names, it, perms));
        }
        Ok(ItemPage {
            items,
            page,
            page_size,
            more: found.more,
        })
    })
    .await
}

/// One quarantined message.
#[utoipa::path(
    get,
    path = "/api/v1/quarantine/{id}",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A user's own item of a kind only admins see, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item (or one the caller may not see)", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Item>> {
    Ok(Json(item(&s, p, id).await?))
}

/// The item `id` as `p` may see it (the API's `show`).
pub(crate) async fn item(s: &AppState, p: Principal, id: i64) -> ApiResult<Item> {
    require_quarantine_access(&p)?;
    s.blocking(move |s| view(s, visible_item(s, &p, id)?)).await
}

/// A quarantined message's header fields and plain text (bounded; HTML never shown).
#[utoipa::path(
    get,
    path = "/api/v1/quarantine/{id}/preview",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The preview", body = PreviewView),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A user's own item of a kind only admins see, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item, or its content was deleted", body = ErrorBody),
    )
)]
async fn preview(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<PreviewView>> {
    Ok(Json(preview_of(&s, p, id).await?))
}

/// The preview of item `id` as `p` may see it (the API's `preview`).
pub(crate) async fn preview_of(s: &AppState, p: Principal, id: i64) -> ApiResult<PreviewView> {
    require_quarantine_access(&p)?;
    s.blocking(move |s| {
        let (it, perms) = visible_item_with(s, &p, id)?;
        require_permission(&p, &it, perms, QuarantinePermission::Preview)?;
        let Some(blob) = it.blob else {
            return Err(ApiError::not_found(format!(
                "quarantined message {id} was deleted: its content is gone"
            )));
        };
        let content = s.store.blob(&blob)?;
        let shown = hato_transport::preview::preview(&content);
        Ok(PreviewView {
            id,
            headers: shown
                .headers
                .into_iter()
                .map(|(name, value)| PreviewHeader { name, value })
                .collect(),
            text: shown.text,
            truncated: shown.truncated,
            text_from_html: shown.text_from_html,
            has_html: shown.has_html,
            attachments: shown.attachments,
        })
    })
    .await
}

/// Release a held message: it is delivered to the recipient's Inbox (the stage that held it is
/// not run again), and the trace records who released it. Once only.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/release",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item, released", body = Item),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A user's own item of a kind only admins release, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item, or no mailbox takes its recipient any more", body = ErrorBody),
        (status = 409, description = "Released or deleted already, or the mailbox is full", body = ErrorBody),
    )
)]
async fn release(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Item>> {
    Ok(Json(release_one(&s, p, id).await?))
}

/// Releases item `id` if `p` may (the API's `release`).
pub(crate) async fn release_one(s: &AppState, p: Principal, id: i64) -> ApiResult<Item> {
    require_quarantine_access(&p)?;
    let by = s
        .blocking(move |s| {
            let (it, perms) = visible_item_with(s, &p, id)?;
            require_permission(&p, &it, perms, QuarantinePermission::Release)?;
            actor(s, &p)
        })
        .await?;
    let released = s.store.release_quarantined(id, &by, s.clock.now()).await?;
    s.blocking(move |s| view(s, released)).await
}

/// Ask an admin to release a held message (a user whose quarantine policy grants *request
/// release*, Exchange's `PermissionToRequestRelease`; for malware and high confidence
/// phishing, *release* grants it too). Once: a pending or denied request is not made again.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/request-release",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item, its release requested", body = Item),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The item's policy does not permit it, an admin (who releases instead), or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item (or one the caller may not see)", body = ErrorBody),
        (status = 409, description = "Released or deleted already, or requested or denied already", body = ErrorBody),
    )
)]
async fn request_release(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Item>> {
    Ok(Json(request_one(&s, p, id).await?))
}

/// Requests the release of item `id` if `p` may (the API's `request-release`).
pub(crate) async fn request_one(s: &AppState, p: Principal, id: i64) -> ApiResult<Item> {
    require_quarantine_access(&p)?;
    if p.is_global_admin() {
        return Err(ApiError::forbidden(
            "admins release quarantined messages themselves; a release request is a user's",
        ));
    }
    let by = s
        .blocking(move |s| {
            let (it, perms) = visible_item_with(s, &p, id)?;
            require_permission(&p, &it, perms, QuarantinePermission::RequestRelease)?;
            actor(s, &p)
        })
        .await?;
    let asked = s.store.request_release(id, &by, s.clock.now()).await?;
    s.blocking(move |s| view(s, asked)).await
}

/// Deny a user's pending release request: the message stays in quarantine, and the user sees
/// the request denied. To approve, release the message.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/deny-release",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item, its request denied", body = Item),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin nor the operator", body = ErrorBody),
        (status = 404, description = "No such item (or another tenant's)", body = ErrorBody),
        (status = 409, description = "No pending request, or the item is not held", body = ErrorBody),
    )
)]
async fn deny_release(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Item>> {
    Ok(Json(deny_one(&s, p, id).await?))
}

/// Denies item `id`'s release request if `p` may (the API's `deny-release`).
pub(crate) async fn deny_one(s: &AppState, p: Principal, id: i64) -> ApiResult<Item> {
    if !p.is_global_admin() {
        return Err(ApiError::forbidden(
            "deciding release requests needs the global admin role",
        ));
    }
    let by = s
        .blocking(move |s| {
            visible_item(s, &p, id)?;
            actor(s, &p)
        })
        .await?;
    let denied = s.store.deny_release(id, &by, s.clock.now()).await?;
    s.blocking(move |s| view(s, denied)).await
}

/// One recipient's copy that `release-all` could not release, and why.
#[derive(Serialize, ToSchema)]
pub(crate) struct Refused {
    pub(crate) id: i64,
    pub(crate) recipient: String,
    pub(crate) error: String,
}

/// What `release-all` did.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReleasedAll {
    pub(crate) released: Vec<Item>,
    /// Copies not released: released or deleted already, no mailbox, a full mailbox.
    pub(crate) refused: Vec<Refused>,
}

/// Release every recipient's held copy of the message this item belongs to (admins: the
/// copies in the tenants they see). Each copy as `release` does it; one that cannot be released
/// is listed with the reason, the others go on.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/release-all",
    tag = "quarantine",
    params(("id" = i64, Path, description = "Any item of the message")),
    responses(
        (status = 200, description = "What was released and what was not", body = ReleasedAll),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin nor the operator", body = ErrorBody),
        (status = 404, description = "No such item (or another tenant's)", body = ErrorBody),
    )
)]
async fn release_all(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<ReleasedAll>> {
    Ok(Json(release_every(&s, p, id).await?))
}

/// Releases every held copy of item `id`'s message if `p` may (the API's `release-all`).
pub(crate) async fn release_every(s: &AppState, p: Principal, id: i64) -> ApiResult<ReleasedAll> {
    if !p.is_global_admin() {
        return Err(ApiError::forbidden(
            "releasing a message to all its recipients needs the global admin role",
        ));
    }
    let (by, copies) = s
        .blocking(move |s| {
            let it = visible_item(s, &p, id)?;
            let copies = s.store.quarantine_items(&QuarantineQuery {
                tenant: listing_scope(s, &p, None)?,
                trace_id: Some(it.trace_id),
                state: Some(QuarantineState::Held),
                limit: TRACE_PAGE_SIZE_MAX,
                ..Default::default()
            })?;
            Ok((actor(s, &p)?, copies.items))
        })
        .await?;
    let (mut released, mut refused) = (Vec::new(), Vec::new());
    for copy in copies {
        match s
            .store
            .release_quarantined(copy.id, &by, s.clock.now())
            .await
        {
            Ok(done) => released.push(done),
            Err(e) => refused.push(Refused {
                id: copy.id,
                recipient: copy.recipient,
                error: e.to_string(),
            }),
        }
    }
    s.blocking(move |s| {
        let names = tenant_names(s)?;
        let mut views = Vec::with_capacity(released.len());
        for it in released {
            let perms = permissions_of(s, &it)?;
            views.push(item_view(&names, it, perms));
        }
        Ok(ReleasedAll {
            released: views,
            refused,
        })
    })
    .await
}

/// Delete a quarantined message: its content goes; the item stays listed as deleted until it
/// expires.
#[utoipa::path(
    delete,
    path = "/api/v1/quarantine/{id}",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item, deleted", body = Item),
        (status = 400, description = "An id that is not a whole number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A user's own item of a kind only admins see, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item (or one the caller may not see)", body = ErrorBody),
        (status = 409, description = "Deleted already", body = ErrorBody),
    )
)]
async fn delete(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<Item>> {
    Ok(Json(delete_one(&s, p, id).await?))
}

/// Deletes item `id` if `p` may (the API's `delete`).
pub(crate) async fn delete_one(s: &AppState, p: Principal, id: i64) -> ApiResult<Item> {
    require_quarantine_access(&p)?;
    let by = s
        .blocking(move |s| {
            let (it, perms) = visible_item_with(s, &p, id)?;
            require_permission(&p, &it, perms, QuarantinePermission::Delete)?;
            actor(s, &p)
        })
        .await?;
    let deleted = s.store.delete_quarantined(id, &by, s.clock.now()).await?;
    s.blocking(move |s| view(s, deleted)).await
}

/// What allow-sender / block-sender did: the entry added to the recipient's list.
#[derive(Serialize, ToSchema)]
pub(crate) struct SenderListed {
    /// The item, unchanged (still held: releasing is its own action).
    pub(crate) item: Item,
    /// `trusted_senders_and_domains` or `blocked_senders_and_domains`.
    pub(crate) list: String,
    /// The address added (lower case).
    pub(crate) entry: String,
}

/// The address a held item's sender is listed by: the From field's address, else the
/// envelope sender (the lists match either, `hato_protection::spam::junk`).
fn item_sender(it: &QuarantineItem) -> Option<String> {
    let from = it.from_header.as_str();
    let inner = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    };
    [inner, it.sender.as_str()].into_iter().find_map(|a| {
        hato_protection::spam::junk::normalize_entry(a)
            .ok()
            .filter(|e| e.contains('@'))
    })
}

/// Adds a held item's sender to its recipient's Safe Senders (`allow`) or Blocked Senders
/// list, if `p` may: the item's quarantine policy grants the user *allow sender* / *block
/// sender* (Exchange's `PermissionToAllowSender` / `PermissionToBlockSender`), or a global
/// admin acts for the recipient. The item stays held (releasing is its own permission).
pub(crate) async fn list_sender(
    s: &AppState,
    p: Principal,
    id: i64,
    allow: bool,
) -> ApiResult<SenderListed> {
    require_quarantine_access(&p)?;
    let needed = if allow {
        QuarantinePermission::AllowSender
    } else {
        QuarantinePermission::BlockSender
    };
    let (mailbox, entry) = s
        .blocking(move |s| {
            let (it, perms) = visible_item_with(s, &p, id)?;
            require_permission(&p, &it, perms, needed)?;
            let mailbox = it.mailbox_id.ok_or_else(|| {
                ApiError::new(axum::http::StatusCode::CONFLICT, format!(
                    "quarantined message {id} was held for {}, which is not a mailbox: it has no safe or blocked senders",
                    it.recipient
                ))
            })?;
            let entry = item_sender(&it).ok_or_else(|| {
                ApiError::new(axum::http::StatusCode::CONFLICT, format!(
                    "quarantined message {id} has no sender address to list (null sender, no From address)"
                ))
            })?;
            Ok((mailbox, entry))
        })
        .await?;
    let (change, list) = if allow {
        (
            hato_store::JunkEmailChange {
                trusted: hato_store::JunkListChange::Edit {
                    add: vec![entry.clone()],
                    remove: Vec::new(),
                },
                ..Default::default()
            },
            "trusted_senders_and_domains",
        )
    } else {
        (
            hato_store::JunkEmailChange {
                blocked: hato_store::JunkListChange::Edit {
                    add: vec![entry.clone()],
                    remove: Vec::new(),
                },
                ..Default::default()
            },
            "blocked_senders_and_domains",
        )
    };
    s.store.set_junk_email_config(mailbox, change).await?;
    let item = s
        .blocking(move |s| {
            let it = s.store.quarantine_item(id)?.ok_or_else(|| {
                ApiError::not_found(format!("quarantined message {id} not found"))
            })?;
            view(s, it)
        })
        .await?;
    Ok(SenderListed {
        item,
        list: list.into(),
        entry,
    })
}

/// Allow the sender of a held message: its address goes on the recipient's Safe Senders list
/// (`trusted_senders_and_domains`), so their next messages reach the Inbox (`SFV:SFE`). Needs
/// the item's quarantine policy's *allow sender* permission for a user.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/allow-sender",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The sender is on the recipient's Safe Senders list", body = SenderListed),
        (status = 400, description = "An id that is not a whole number, or the list is full (1,024 entries)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The item's policy does not permit it, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item (or one the caller may not see)", body = ErrorBody),
        (status = 409, description = "No sender address, or the recipient is not a mailbox", body = ErrorBody),
    )
)]
async fn allow_sender(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<SenderListed>> {
    Ok(Json(list_sender(&s, p, id, true).await?))
}

/// Block the sender of a held message: its address goes on the recipient's Blocked Senders
/// list (`blocked_senders_and_domains`), so their next messages go to Junk Email
/// (`SFV:BLK`). Needs the item's quarantine policy's *block sender* permission for a user.
#[utoipa::path(
    post,
    path = "/api/v1/quarantine/{id}/block-sender",
    tag = "quarantine",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The sender is on the recipient's Blocked Senders list", body = SenderListed),
        (status = 400, description = "An id that is not a whole number, or the list is full (1,024 entries)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The item's policy does not permit it, or a recipient admin", body = ErrorBody),
        (status = 404, description = "No such item (or one the caller may not see)", body = ErrorBody),
        (status = 409, description = "No sender address, or the recipient is not a mailbox", body = ErrorBody),
    )
)]
async fn block_sender(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<SenderListed>> {
    Ok(Json(list_sender(&s, p, id, false).await?))
}
