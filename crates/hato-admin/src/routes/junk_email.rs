//! A mailbox's junk email configuration (Exchange's `Get-`/`Set-MailboxJunkEmailConfiguration`)
//! under `/api/v1/mailboxes/{address}/junk-email-configuration`: `enabled`, the Safe Senders
//! (`trusted_senders_and_domains`) and Blocked Senders (`blocked_senders_and_domains`) lists,
//! which the spam filter applies for that mailbox (`hato_protection::spam::junk`).
//!
//! Who: a user their own mailbox only (Exchange: a user edits their own junk email options in
//! Outlook; a delegate with full access does not); recipient admins, global admins and the
//! operator any mailbox of their tenant (Exchange's Recipient Management role holds the
//! cmdlet). Another tenant's mailbox answers 404, as if it did not exist.
//!
//! A change takes a whole new list (`trusted_senders_and_domains: [...]`, Exchange's
//! `-TrustedSendersAndDomains a,b`) or additions and removals (`add_trusted`,
//! `remove_trusted`, `add_blocked`, `remove_blocked`: Exchange's `@{Add=...; Remove=...}`);
//! not both for one list.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, visible_mailbox};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use hato_core::auth::Principal;
use hato_core::directory::Mailbox;
use hato_store::{JunkEmailChange, JunkEmailConfig, JunkListChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, change))
        .routes(routes!(list_page))
}

/// A mailbox's junk email configuration.
#[derive(Serialize, ToSchema)]
pub(crate) struct JunkEmailView {
    /// The mailbox's primary address (Exchange's `Identity`).
    pub(crate) identity: String,
    /// `Enabled`: off, the lists do nothing.
    pub(crate) enabled: bool,
    /// `TrustedSendersAndDomains` (Safe Senders): addresses and domains, lower case, sorted.
    pub(crate) trusted_senders_and_domains: Vec<String>,
    /// `BlockedSendersAndDomains` (Blocked Senders).
    pub(crate) blocked_senders_and_domains: Vec<String>,
}

fn view(m: &Mailbox, c: JunkEmailConfig) -> JunkEmailView {
    JunkEmailView {
        identity: m.address.clone(),
        enabled: c.enabled,
        trusted_senders_and_domains: c.trusted_senders_and_domains,
        blocked_senders_and_domains: c.blocked_senders_and_domains,
    }
}

/// A change: only what is given changes.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct JunkEmailInput {
    pub(crate) enabled: Option<bool>,
    /// The whole new Safe Senders list (empty clears it).
    pub(crate) trusted_senders_and_domains: Option<Vec<String>>,
    /// The whole new Blocked Senders list (empty clears it).
    pub(crate) blocked_senders_and_domains: Option<Vec<String>>,
    /// Added to Safe Senders (`@{Add=...}`).
    #[serde(default)]
    pub(crate) add_trusted: Vec<String>,
    /// Removed from Safe Senders (`@{Remove=...}`).
    #[serde(default)]
    pub(crate) remove_trusted: Vec<String>,
    #[serde(default)]
    pub(crate) add_blocked: Vec<String>,
    #[serde(default)]
    pub(crate) remove_blocked: Vec<String>,
}

fn list_change(
    name: &str,
    all: Option<Vec<String>>,
    add: Vec<String>,
    remove: Vec<String>,
) -> ApiResult<JunkListChange> {
    match (all, add.is_empty() && remove.is_empty()) {
        (Some(_), false) => Err(ApiError::bad_request(format!(
            "give either the whole {name} list or entries to add and remove, not both"
        ))),
        (Some(all), true) => Ok(JunkListChange::Replace(all)),
        (None, true) => Ok(JunkListChange::Keep),
        (None, false) => Ok(JunkListChange::Edit { add, remove }),
    }
}

impl JunkEmailInput {
    fn change(self) -> ApiResult<JunkEmailChange> {
        Ok(JunkEmailChange {
            enabled: self.enabled,
            trusted: list_change(
                "trusted_senders_and_domains",
                self.trusted_senders_and_domains,
                self.add_trusted,
                self.remove_trusted,
            )?,
            blocked: list_change(
                "blocked_senders_and_domains",
                self.blocked_senders_and_domains,
                self.add_blocked,
                self.remove_blocked,
            )?,
        })
    }
}

/// The mailbox `address` if `p` may read and change its junk email configuration (see the
/// module's rules).
pub(crate) fn junk_mailbox(s: &AppState, p: &Principal, address: &str) -> ApiResult<Mailbox> {
    let m = visible_mailbox(s, p, address)?;
    if p.is_admin() || p.mailbox_id == Some(m.id) {
        return Ok(m);
    }
    Err(ApiError::forbidden(format!(
        "only {}'s user and admins may see or change its junk email configuration",
        m.address
    )))
}

/// Reads the configuration of mailbox `address` if `p` may (the API's `show`; the console's).
pub(crate) async fn read(s: &AppState, p: Principal, address: String) -> ApiResult<JunkEmailView> {
    s.blocking(move |s| {
        let m = junk_mailbox(s, &p, &address)?;
        let c = s.store.junk_email_config(m.id)?;
        Ok(view(&m, c))
    })
    .await
}

/// Changes the configuration of mailbox `address` if `p` may (the API's `change`; the
/// console's).
pub(crate) async fn write(
    s: &AppState,
    p: Principal,
    address: String,
    input: JunkEmailInput,
) -> ApiResult<JunkEmailView> {
    let change = input.change()?;
    let m = s.blocking(move |s| junk_mailbox(s, &p, &address)).await?;
    let c = s.store.set_junk_email_config(m.id, change).await?;
    Ok(view(&m, c))
}

/// A mailbox's junk email configuration (`Get-MailboxJunkEmailConfiguration`).
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}/junk-email-configuration",
    tag = "mail",
    params(("address" = String, Path, description = "The primary address or an alias")),
    responses(
        (status = 200, description = "The configuration", body = JunkEmailView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Another user's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<JunkEmailView>> {
    Ok(Json(read(&s, p, address).await?))
}

/// Change a mailbox's junk email configuration (`Set-MailboxJunkEmailConfiguration`); the spam
/// filter applies it from the next message on.
#[utoipa::path(
    patch,
    path = "/api/v1/mailboxes/{address}/junk-email-configuration",
    tag = "mail",
    params(("address" = String, Path, description = "The primary address or an alias")),
    request_body = JunkEmailInput,
    responses(
        (status = 200, description = "The configuration after the change", body = JunkEmailView),
        (status = 400, description = "Not JSON, an entry that is neither an address nor a domain, a list past 1,024 entries, or a list both replaced and edited", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Another user's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's)", body = ErrorBody),
    )
)]
async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<JunkEmailInput>, JsonRejection>,
) -> ApiResult<Json<JunkEmailView>> {
    let input = body(payload)?;
    Ok(Json(write(&s, p, address, input).await?))
}

/// Rows per page of a list unless asked otherwise, and the most.
pub(crate) const PAGE_SIZE_DEFAULT: usize = 100;
pub(crate) const PAGE_SIZE_MAX: usize = 1024;

/// A page of one list.
#[derive(Serialize, ToSchema)]
pub(crate) struct EntryPage {
    pub(crate) identity: String,
    pub(crate) enabled: bool,
    /// `trusted-senders-and-domains` or `blocked-senders-and-domains`.
    pub(crate) list: String,
    /// Sorted.
    pub(crate) entries: Vec<String>,
    pub(crate) page: usize,
    pub(crate) page_size: usize,
    /// Whether a later page has entries.
    pub(crate) more: bool,
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryParams {
    /// Only entries containing this (any case).
    pub(crate) filter: Option<String>,
    /// 1-based, default 1.
    pub(crate) page: Option<usize>,
    /// 1-1024, default 100.
    pub(crate) page_size: Option<usize>,
}

/// Which list a path names.
pub(crate) fn list_of(name: &str) -> ApiResult<bool> {
    match name {
        "trusted-senders-and-domains" | "trusted" => Ok(true),
        "blocked-senders-and-domains" | "blocked" => Ok(false),
        other => Err(ApiError::not_found(format!(
            "no list {other:?}: trusted-senders-and-domains or blocked-senders-and-domains"
        ))),
    }
}

/// One page of a list of mailbox `address` if `p` may see it (the API's `list_page`; the
/// console's), read a page at a time from the store.
pub(crate) async fn entries(
    s: &AppState,
    p: Principal,
    address: String,
    trusted: bool,
    q: EntryParams,
) -> ApiResult<EntryPage> {
    let page = q.page.unwrap_or(1);
    let page_size = q.page_size.unwrap_or(PAGE_SIZE_DEFAULT);
    if page == 0 || !(1..=PAGE_SIZE_MAX).contains(&page_size) {
        return Err(ApiError::bad_request(format!(
            "page is 1 or more and page_size 1-{PAGE_SIZE_MAX}"
        )));
    }
    let filter = q.filter.unwrap_or_default();
    s.blocking(move |s| {
        let m = junk_mailbox(s, &p, &address)?;
        let enabled = s.store.junk_email_config(m.id)?.enabled;
        let offset = (page - 1).saturating_mul(page_size);
        let (entries, more) = s
            .store
            .junk_email_entries(m.id, trusted, &filter, offset, page_size)?;
        Ok(EntryPage {
            identity: m.address.clone(),
            enabled,
            list: if trusted {
                "trusted-senders-and-domains"
            } else {
                "blocked-senders-and-domains"
            }
            .into(),
            entries,
            page,
            page_size,
            more,
        })
    })
    .await
}

/// One page of a mailbox's Safe Senders or Blocked Senders list.
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{address}/junk-email-configuration/{list}",
    tag = "mail",
    params(
        ("address" = String, Path, description = "The primary address or an alias"),
        ("list" = String, Path, description = "`trusted-senders-and-domains` or `blocked-senders-and-domains`"),
        EntryParams,
    ),
    responses(
        (status = 200, description = "One page of the list", body = EntryPage),
        (status = 400, description = "A bad page or page size", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Another user's mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or another tenant's), or no such list", body = ErrorBody),
    )
)]
async fn list_page(
    State(s): State<AppState>,
    p: Principal,
    Path((address, list)): Path<(String, String)>,
    Query(q): Query<EntryParams>,
) -> ApiResult<Json<EntryPage>> {
    let trusted = list_of(&list)?;
    Ok(Json(entries(&s, p, address, trusted, q).await?))
}
