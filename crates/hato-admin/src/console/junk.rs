//! Junk email settings: a mailbox's Safe Senders and Blocked Senders (Exchange's mailbox junk
//! email configuration, as Outlook's "Junk email options" shows them to a user). A user sees
//! and changes their own (`/junk-email`, a tab of the quarantine section); an admin any
//! mailbox of their tenant from its page in Recipients (`/junk-email?address=…`). Each list is
//! read a page at a time from the store and exports as CSV (`/junk-email.csv`). A quarantined
//! item's "Allow sender" / "Block sender" (`/quarantine/{id}/allow-sender`, `…/block-sender`)
//! put its sender on the recipient's lists as the item's quarantine policy permits.
//!
//! Every read and change is the API's own function (`routes::junk_email::entries`, `write`;
//! `routes::quarantine::list_sender`), so the authorization is the API's: a user their own
//! mailbox only (403 otherwise, with the API's words), admins any of their tenant's, nobody
//! another tenant's (404). Every change is a POST form with the session's CSRF token, answered
//! with a 303 back and a note.

use super::i18n::{self, Lang, Text};
use super::layout::{self, Nav};
use super::session::{CSRF_FIELD, Ctx};
use super::table::{Cell, Column, Table};
use super::{error_page, query_string, see_other, url_encode};
use crate::error::ApiError;
use crate::routes::junk_email::{EntryPage, EntryParams, JunkEmailInput, entries, write};
use crate::routes::quarantine::list_sender;
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// Entries shown per page of each list (the lists hold at most 1,024 each).
const PAGE_SIZE: usize = 100;

#[derive(Deserialize, Default)]
pub struct JunkQuery {
    /// The mailbox (default: the caller's own).
    address: Option<String>,
    /// The page of the Safe Senders list, and of the Blocked Senders list.
    tpage: Option<String>,
    bpage: Option<String>,
    done: Option<String>,
}

fn page_number(v: &Option<String>) -> usize {
    v.as_deref()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// The mailbox a request names, else the caller's own address (none: a 404 page's words).
async fn address_of(s: &AppState, ctx: &Ctx, given: Option<&str>) -> Result<String, ApiError> {
    if let Some(a) = given.map(str::trim).filter(|a| !a.is_empty()) {
        return Ok(a.to_string());
    }
    let p = ctx.p;
    let own = s
        .blocking(move |s| {
            let (Some(m), Some(t)) = (p.mailbox_id, p.tenant_id) else {
                return Ok(None);
            };
            Ok(s.directory
                .index(t)?
                .mailbox(m)
                .map(|mb| mb.address.clone()))
        })
        .await?;
    own.ok_or_else(|| ApiError::not_found(i18n::Q_NO_MAILBOX.get(ctx.lang)))
}

/// Whether `address` is the caller's own mailbox's primary address.
async fn is_own(s: &AppState, ctx: &Ctx, address: &str) -> bool {
    address_of(s, ctx, None)
        .await
        .is_ok_and(|own| own.eq_ignore_ascii_case(address))
}

fn done_note(lang: Lang, done: Option<&str>) -> Markup {
    let text = match done {
        Some("added") => i18n::JE_DONE_ADDED,
        Some("removed") => i18n::JE_DONE_REMOVED,
        Some("enabled") => i18n::JE_DONE_SAVED,
        _ => return html! {},
    };
    html! { p.done role="status" { (text.get(lang)) } }
}

fn page_href(address: &str, tpage: usize, bpage: usize) -> String {
    format!(
        "/junk-email?{}",
        query_string(&[
            ("address", address.to_string()),
            ("tpage", tpage.to_string()),
            ("bpage", bpage.to_string()),
        ])
    )
}

/// One list: its add form, its entries (each with a remove button), its pager.
#[allow(clippy::too_many_arguments)]
fn list_section(
    ctx: &Ctx,
    address: &str,
    list: &EntryPage,
    trusted: bool,
    title: Text,
    hint: Text,
    prev: Option<String>,
    next: Option<String>,
) -> Markup {
    let lang = ctx.lang;
    let (add, remove, class) = if trusted {
        ("add-trusted", "remove-trusted", "trusted")
    } else {
        ("add-blocked", "remove-blocked", "blocked")
    };
    html! {
        section class={ "junk-list " (class) } {
            h2 { (title.get(lang)) " (" (list.entries.len()) @if list.more || list.page > 1 { "+" } ")" }
            p.note { (hint.get(lang)) }
            form.inline.panel method="post" action="/junk-email" {
                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                input type="hidden" name="address" value=(address);
                input type="hidden" name="op" value=(add);
                label { (i18n::JE_ENTRIES.get(lang)) " "
                    input type="text" name="entries" required placeholder="someone@example.com, example.com"; }
                " " button class=(add) type="submit" { (i18n::JE_ADD.get(lang)) }
            }
            @if list.entries.is_empty() {
                p.note.empty { (i18n::JE_EMPTY.get(lang)) }
            } @else {
                table.data {
                    thead { tr { th { (i18n::JE_ENTRY.get(lang)) } th { } } }
                    tbody {
                        @for e in &list.entries {
                            tr {
                                td.entry { (e) }
                                td {
                                    form.inline method="post" action="/junk-email" {
                                        input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                                        input type="hidden" name="address" value=(address);
                                        input type="hidden" name="op" value=(remove);
                                        input type="hidden" name="entries" value=(e);
                                        button class=(remove) type="submit" { (i18n::JE_REMOVE.get(lang)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if prev.is_some() || next.is_some() {
                nav.pager {
                    @if let Some(p) = prev { a href=(p) rel="prev" { (i18n::JE_PREVIOUS.get(lang)) } " " }
                    @if let Some(n) = next { a href=(n) rel="next" { (i18n::JE_NEXT.get(lang)) } }
                }
            }
        }
    }
}

/// `GET /junk-email[?address=…]`: the mailbox's junk email settings.
pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<JunkQuery>) -> Response {
    let lang = ctx.lang;
    let address = match address_of(&s, &ctx, q.address.as_deref()).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let (tpage, bpage) = (page_number(&q.tpage), page_number(&q.bpage));
    let read = |trusted: bool, page: usize| {
        entries(
            &s,
            ctx.p,
            address.clone(),
            trusted,
            EntryParams {
                page: Some(page),
                page_size: Some(PAGE_SIZE),
                filter: None,
            },
        )
    };
    let trusted = match read(true, tpage).await {
        Ok(t) => t,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let blocked = match read(false, bpage).await {
        Ok(b) => b,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let identity = trusted.identity.clone();
    // The caller's own mailbox (a user's tab in the quarantine section), else an admin's view
    // from Recipients.
    let own = is_own(&s, &ctx, &identity).await;
    let pager = |page: usize, more: bool, trusted: bool| {
        let at = |p: usize| {
            if trusted {
                page_href(&identity, p, bpage)
            } else {
                page_href(&identity, tpage, p)
            }
        };
        ((page > 1).then(|| at(page - 1)), more.then(|| at(page + 1)))
    };
    let (tprev, tnext) = pager(tpage, trusted.more, true);
    let (bprev, bnext) = pager(bpage, blocked.more, false);
    let back = if own {
        html! { p { a href="/quarantine" { "← " (i18n::QUARANTINE.get(lang)) } } }
    } else {
        html! { p { a href={ "/recipients/mailbox/" (url_encode(&identity)) } { "← " (identity) } } }
    };
    let body = html! {
        (back)
        (done_note(lang, q.done.as_deref()))
        div.panel {
            dl.facts {
                dt { (i18n::P_EMAIL_ADDRESS.get(lang)) } dd.address { (identity) }
            }
            form.inline method="post" action="/junk-email" {
                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                input type="hidden" name="address" value=(identity);
                input type="hidden" name="op" value="enabled";
                label.check {
                    input type="checkbox" name="enabled" value="1" checked[trusted.enabled];
                    " " (i18n::JE_ENABLED.get(lang))
                }
                " " button.save type="submit" { (i18n::JE_SAVE.get(lang)) }
            }
            p { a.export href={ "/junk-email.csv?" (query_string(&[("address", identity.clone())])) } download { (i18n::EXPORT_CSV.get(lang)) } }
        }
        (list_section(&ctx, &identity, &trusted, true, i18n::JE_SAFE_SENDERS, i18n::JE_SAFE_HINT, tprev, tnext))
        (list_section(&ctx, &identity, &blocked, false, i18n::JE_BLOCKED_SENDERS, i18n::JE_BLOCKED_HINT, bprev, bnext))
    };
    let nav = if own {
        Nav::Quarantine
    } else {
        Nav::Recipients
    };
    layout::page(&ctx, Some(nav), i18n::JE_TITLE.get(lang), body).into_response()
}

#[derive(Deserialize)]
pub struct JunkForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    address: Option<String>,
    op: Option<String>,
    entries: Option<String>,
    enabled: Option<String>,
}

/// Entries typed in one field: separated by commas, semicolons or white space.
fn split_entries(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /junk-email`: add to or remove from a list, or switch the lists on or off (the API's
/// change), then back to the page with a note.
pub async fn change(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<JunkForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let lang = ctx.lang;
    let given = f.address.clone();
    let address = match address_of(&s, &ctx, given.as_deref()).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let typed = split_entries(f.entries.as_deref().unwrap_or(""));
    let mut input = JunkEmailInput::default();
    let done = match f.op.as_deref() {
        Some("add-trusted") => {
            input.add_trusted = typed;
            "added"
        }
        Some("add-blocked") => {
            input.add_blocked = typed;
            "added"
        }
        Some("remove-trusted") => {
            input.remove_trusted = typed;
            "removed"
        }
        Some("remove-blocked") => {
            input.remove_blocked = typed;
            "removed"
        }
        Some("enabled") => {
            input.enabled = Some(f.enabled.as_deref() == Some("1"));
            "enabled"
        }
        _ => {
            return error_page(
                Some(&ctx),
                lang,
                ApiError::bad_request("unknown change: add or remove an entry, or save"),
            );
        }
    };
    if done != "enabled"
        && input.add_trusted.is_empty()
        && input.add_blocked.is_empty()
        && input.remove_trusted.is_empty()
        && input.remove_blocked.is_empty()
    {
        return error_page(
            Some(&ctx),
            lang,
            ApiError::bad_request(i18n::JE_NOTHING.get(lang)),
        );
    }
    match write(&s, ctx.p, address.clone(), input).await {
        Ok(v) => {
            let mut pairs = vec![("done", done.to_string())];
            if !is_own(&s, &ctx, &v.identity).await {
                pairs.insert(0, ("address", v.identity));
            }
            see_other(&format!("/junk-email?{}", query_string(&pairs)))
        }
        Err(e) => error_page(Some(&ctx), lang, e),
    }
}

/// `GET /junk-email.csv[?address=…]`: both lists as CSV (list, entry).
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<JunkQuery>) -> Response {
    let lang = ctx.lang;
    let address = match address_of(&s, &ctx, q.address.as_deref()).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let mut rows = Vec::new();
    for trusted in [true, false] {
        let list = match entries(
            &s,
            ctx.p,
            address.clone(),
            trusted,
            EntryParams {
                page: Some(1),
                page_size: Some(crate::routes::junk_email::PAGE_SIZE_MAX),
                filter: None,
            },
        )
        .await
        {
            Ok(l) => l,
            Err(e) => return error_page(Some(&ctx), lang, e),
        };
        for e in list.entries {
            rows.push(vec![Cell::text(list.list.clone()), Cell::text(e)]);
        }
    }
    let table = Table {
        columns: vec![
            Column {
                key: "list",
                label: i18n::JE_LIST,
            },
            Column {
                key: "entry",
                label: i18n::JE_ENTRY,
            },
        ],
        rows,
        more: false,
    };
    super::table::csv_response("junk-email.csv", table.csv(lang))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

async fn list_item_sender(
    s: AppState,
    ctx: Ctx,
    headers: HeaderMap,
    id: i64,
    f: CsrfForm,
    allow: bool,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    match list_sender(&s, ctx.p, id, allow).await {
        Ok(_) => see_other(&format!(
            "/quarantine/{id}?done={}",
            if allow {
                "sender-allowed"
            } else {
                "sender-blocked"
            }
        )),
        Err(e) => error_page(Some(&ctx), ctx.lang, e),
    }
}

/// `POST /quarantine/{id}/allow-sender`: the API's allow-sender (the item's sender on the
/// recipient's Safe Senders list).
pub async fn allow_sender(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    list_item_sender(s, ctx, headers, id, f, true).await
}

/// `POST /quarantine/{id}/block-sender`: the API's block-sender.
pub async fn block_sender(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    list_item_sender(s, ctx, headers, id, f, false).await
}

/// The note the quarantine item's page shows after allow-sender / block-sender.
pub fn sender_note(lang: Lang, done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("sender-allowed") => Some(i18n::JE_DONE_SENDER_ALLOWED.get(lang)),
        Some("sender-blocked") => Some(i18n::JE_DONE_SENDER_BLOCKED.get(lang)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_entries_split_on_commas_semicolons_and_spaces() {
        assert_eq!(
            split_entries(" a@b.test, c.test;d.test\n e@f.test ,,"),
            vec!["a@b.test", "c.test", "d.test", "e@f.test"]
        );
        assert!(split_entries("  ").is_empty());
    }
}
