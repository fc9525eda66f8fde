//! Quarantine: the list with filters by reason, policy, recipient, expiry and release status
//! (paged in the store), CSV; a message's page with why it was held (the stage, the rule, the
//! figures such as SCL, and for admins its trace events with their reasons), its header fields
//! and plain text (never its HTML); release to its recipient, to all or to some of the message's
//! recipients, delete. Users' own Junk Email and Inbox, where a message is reported junk or not
//! junk by moving it, as Outlook does.
//!
//! Every read and action is the API's own function (`routes::quarantine::list_page`, `item`,
//! `preview_of`, `release_one`, `release_every`, `delete_one`, `request_one`, `deny_one`;
//! `routes::mail::messages`, `message`, `move_to`), so the authorization is the API's: a global
//! admin acts on their tenant's items (the operator on every tenant's), a user on their own
//! items as each item's quarantine policy permits (release, request release, preview, delete;
//! never a release of their own malware or high-confidence phishing, and nothing of an item
//! whose policy gives no access: the API's 403, shown on the page with its words); a recipient
//! admin is refused as the API refuses. Admins see the release requests (the "release request"
//! filter) and approve one by releasing or deny it.
//! Each change is a form (POST, the session's CSRF token), answered with a 303 back to the page
//! and a message of hato's own words.

use super::i18n::{self, Lang, Text};
use super::layout::{self, Nav};
use super::session::{CSRF_FIELD, Ctx};
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, query_string, see_other};
use crate::error::ApiError;
use crate::routes::mail::{message as mail_message, messages as mail_messages, move_to};
use crate::routes::quarantine::{
    Item, ListParams, delete_one, deny_one, item, list_page, preview_of, release_every,
    release_one, request_one,
};
use crate::routes::trace::detail as trace_detail;
use crate::state::{AppState, require_admin};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hato_core::message::QuarantineKind;
use hato_store::Folder;
use hato_transport::digest::{DigestLanguage, kind_name};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The most rows one CSV export holds (the API's largest page).
const CSV_ROWS: usize = hato_store::TRACE_PAGE_SIZE_MAX;
/// The most copies of one message offered for "release to some recipients".
const COPIES_MAX: usize = 500;

/// A kind of quarantine in the page's language (the words of the digest and release page).
fn kind_label(lang: Lang, kind: &str) -> String {
    let language = match lang {
        Lang::En => DigestLanguage::English,
        Lang::Ja => DigestLanguage::Japanese,
    };
    QuarantineKind::parse(kind)
        .map(|k| kind_name(language, k).to_string())
        .unwrap_or_else(|| kind.to_string())
}

fn state_label(state: &str) -> Text {
    match state {
        "held" => i18n::Q_HELD,
        "released" => i18n::Q_RELEASED,
        _ => i18n::Q_DELETED,
    }
}

/// `2026-11-28T09:00:00Z` as `2026-11-28 09:00:00`.
fn time(t: &str) -> String {
    t.replace('T', " ").trim_end_matches('Z').to_string()
}

/// The filters and the table's parameters (all optional; unknown ones ignored).
#[derive(Deserialize, Default, Clone)]
pub struct QuarantineForm {
    kind: Option<String>,
    policy: Option<String>,
    recipient: Option<String>,
    expires_before: Option<String>,
    state: Option<String>,
    /// The release request: `pending`, `approved`, `denied`.
    request: Option<String>,
    /// The message a change was made to (`released`, …), for the page's note.
    done: Option<String>,
    n: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

impl QuarantineForm {
    fn v(o: &Option<String>) -> String {
        o.as_deref().unwrap_or("").trim().to_string()
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kind", Self::v(&self.kind)),
            ("policy", Self::v(&self.policy)),
            ("recipient", Self::v(&self.recipient)),
            ("expires_before", Self::v(&self.expires_before)),
            ("state", Self::v(&self.state)),
            ("request", Self::v(&self.request)),
        ]
    }

    fn params(&self, page: usize, page_size: usize) -> ListParams {
        ListParams {
            kind: self.kind.clone(),
            policy: self.policy.clone(),
            recipient: self.recipient.clone(),
            expires_before: self.expires_before.clone(),
            state: self.state.clone(),
            request: self.request.clone(),
            page: Some(page.to_string()),
            page_size: Some(page_size.to_string()),
            ..Default::default()
        }
    }
}

fn columns() -> Vec<Column> {
    vec![
        Column {
            key: "received",
            label: i18n::RECEIVED,
        },
        Column {
            key: "sender",
            label: i18n::SENDER,
        },
        Column {
            key: "recipient",
            label: i18n::RECIPIENT,
        },
        Column {
            key: "subject",
            label: i18n::SUBJECT,
        },
        Column {
            key: "kind",
            label: i18n::Q_REASON,
        },
        Column {
            key: "policy",
            label: i18n::Q_POLICY,
        },
        Column {
            key: "expires",
            label: i18n::Q_EXPIRES,
        },
        Column {
            key: "state",
            label: i18n::Q_RELEASE_STATUS,
        },
        Column {
            key: "quarantine_policy",
            label: i18n::QP_QUARANTINE_POLICY,
        },
    ]
}

/// A release request's state in the page's language.
fn request_label(state: &str) -> Text {
    match state {
        "pending" => i18n::QP_REQ_PENDING,
        "approved" => i18n::QP_REQ_APPROVED,
        _ => i18n::QP_REQ_DENIED,
    }
}

fn table_of(lang: Lang, items: Vec<Item>, more: bool) -> Table {
    Table {
        columns: columns(),
        rows: items
            .into_iter()
            .map(|it| {
                vec![
                    Cell::text(time(&it.received)),
                    Cell::text(it.sender),
                    Cell::text(it.recipient),
                    Cell {
                        text: it.subject,
                        href: Some(format!("/quarantine/{}", it.id)),
                        class: None,
                    },
                    Cell::text(kind_label(lang, &it.kind)),
                    Cell::text(it.policy),
                    Cell::text(time(&it.expires)),
                    match it.release_request.as_deref() {
                        // A pending request is what an admin looks for (Exchange's "Release
                        // requested" status).
                        Some("pending") if it.state == "held" => Cell {
                            text: i18n::QP_REQ_PENDING.get(lang).to_string(),
                            href: None,
                            class: Some("q-requested".into()),
                        },
                        _ => Cell {
                            text: state_label(&it.state).get(lang).to_string(),
                            href: None,
                            class: Some(format!("q-{}", it.state)),
                        },
                    },
                    Cell::text(it.quarantine_policy),
                ]
            })
            .collect(),
        more,
    }
}

/// The tabs of the section: quarantine, and a mailbox's Junk Email and Inbox for whoever has
/// one (a user; an admin signed in with their mailbox).
fn tabs(ctx: &Ctx, current: &str) -> Markup {
    let lang = ctx.lang;
    let mut list = vec![("/quarantine", i18n::QUARANTINE)];
    if ctx.p.mailbox_id.is_some() {
        list.push(("/quarantine/mail?folder=junk", i18n::Q_JUNK_EMAIL));
        list.push(("/quarantine/mail?folder=inbox", i18n::Q_INBOX));
        list.push(("/junk-email", i18n::JE_TITLE));
    }
    html! {
        nav.tabs aria-label=(i18n::QUARANTINE.get(lang)) {
            @for (href, label) in list {
                @if href == current {
                    a href=(href) aria-current="page" { (label.get(lang)) }
                } @else {
                    a href=(href) { (label.get(lang)) }
                }
            }
        }
    }
}

/// The note after a change (hato's own words; the count is a number or nothing).
fn done_note(lang: Lang, done: Option<&str>, n: Option<&str>) -> Markup {
    let n: usize = n.and_then(|n| n.parse().ok()).unwrap_or(1);
    let text = match done {
        Some("released") => i18n::Q_DONE_RELEASED
            .get(lang)
            .replace("{}", &n.to_string()),
        Some("deleted") => i18n::Q_DONE_DELETED.get(lang).to_string(),
        Some("not-junk") => i18n::Q_DONE_NOT_JUNK.get(lang).to_string(),
        Some("requested") => i18n::QP_DONE_REQUESTED.get(lang).to_string(),
        Some("denied") => i18n::QP_DONE_DENIED.get(lang).to_string(),
        Some("junk") => i18n::Q_DONE_JUNK.get(lang).to_string(),
        d => match super::junk::sender_note(lang, d) {
            Some(t) => t.to_string(),
            None => return html! {},
        },
    };
    html! { p.done role="status" { (text) } }
}

fn filters(ctx: &Ctx, f: &QuarantineForm) -> Markup {
    let lang = ctx.lang;
    let kind = QuarantineForm::v(&f.kind);
    let state = QuarantineForm::v(&f.state);
    let request = QuarantineForm::v(&f.request);
    let admin = ctx.p.is_global_admin();
    // Users never see a transport rule's items (admin-only whatever the policy); the others
    // are theirs as their policies say.
    let kinds: Vec<QuarantineKind> = QuarantineKind::ALL
        .into_iter()
        .filter(|k| admin || *k != QuarantineKind::TransportRule)
        .collect();
    html! {
        form.query.panel method="get" action="/quarantine" role="search" {
            label { (i18n::Q_REASON.get(lang))
                select name="kind" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for k in kinds {
                        option value=(k.as_str()) selected[k.as_str() == kind] { (kind_label(lang, k.as_str())) }
                    }
                }
            }
            label { (i18n::Q_POLICY.get(lang))
                input type="text" name="policy" value=(QuarantineForm::v(&f.policy));
            }
            @if admin {
                label { (i18n::RECIPIENT.get(lang))
                    input type="text" name="recipient" value=(QuarantineForm::v(&f.recipient));
                }
            }
            label { (i18n::Q_EXPIRES_BEFORE.get(lang))
                input type="text" name="expires_before" value=(QuarantineForm::v(&f.expires_before)) placeholder="2026-12-31";
            }
            label { (i18n::Q_RELEASE_STATUS.get(lang))
                select name="state" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for s in ["held", "released", "deleted"] {
                        option value=(s) selected[s == state] { (state_label(s).get(lang)) }
                    }
                }
            }
            label { (i18n::QP_REQUEST.get(lang))
                select name="request" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for r in ["pending", "approved", "denied"] {
                        option value=(r) selected[r == request] { (request_label(r).get(lang)) }
                    }
                }
            }
            input type="hidden" name="page_size" value=(f.table.page_size());
            div.actions { button type="submit" { (i18n::SEARCH.get(lang)) } }
        }
    }
}

/// `GET /quarantine`: the list.
pub async fn page(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(f): Query<QuarantineForm>,
) -> Response {
    let lang = ctx.lang;
    let (page, size) = (f.table.page(), f.table.page_size());
    let found = match list_page(&s, ctx.p, f.params(page, size)).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let mut table = table_of(lang, found.items, found.more);
    table.apply(&f.table);
    let body = html! {
        (tabs(&ctx, "/quarantine"))
        (done_note(lang, f.done.as_deref(), f.n.as_deref()))
        @if !ctx.p.is_global_admin() { p.note { (i18n::Q_USER_NOTE.get(lang)) } }
        (filters(&ctx, &f))
        div #results {
            (table.render(lang, &f.table, "/quarantine", &f.query(), "/quarantine.csv"))
        }
    };
    layout::page(
        &ctx,
        Some(Nav::Quarantine),
        i18n::QUARANTINE.get(lang),
        body,
    )
    .into_response()
}

/// `GET /quarantine.csv`: the list's rows (the first 5,000) as CSV.
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(f): Query<QuarantineForm>) -> Response {
    let found = match list_page(&s, ctx.p, f.params(1, CSV_ROWS)).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let mut table = table_of(ctx.lang, found.items, found.more);
    table.apply(&TableParams {
        filter: f.table.filter.clone(),
        sort: f.table.sort.clone(),
        desc: f.table.desc.clone(),
        ..Default::default()
    });
    super::table::csv_response("quarantine.csv", table.csv(ctx.lang))
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
    n: Option<String>,
}

/// A POST form of one button, with the session's CSRF token.
fn button_form(ctx: &Ctx, action: &str, label: Text, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
            button class=(class) type="submit" { (label.get(ctx.lang)) }
        }
    }
}

/// `GET /quarantine/{id}`: one held message: its facts, why it was held, its preview, and what
/// the caller may do with it.
pub async fn detail(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let lang = ctx.lang;
    let admin = ctx.p.is_global_admin();
    let it = match item(&s, ctx.p, id).await {
        Ok(it) => it,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    // The content goes when the item is deleted: the page still shows the facts.
    // A user whose item's policy does not permit preview sees the facts without it.
    let mut preview_refused = false;
    let preview = match preview_of(&s, ctx.p, id).await {
        Ok(p) => Some(p),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => None,
        Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => {
            preview_refused = true;
            None
        }
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    // What the caller may do: everything for admins, the item's policy's permissions for its
    // user (the API refuses the rest with its words).
    let may = |perm: &str| admin || it.permissions.iter().any(|p| p == perm);
    let pending = it.release_request.as_deref() == Some("pending");
    // The trace's events and their reasons, to whom the trace is shown (`require_admin`).
    let events = if require_admin(&ctx.p).is_ok() {
        trace_detail(&s, ctx.p, it.trace_id.clone(), Some(it.recipient.clone()))
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // The message's other held copies, for "release to some recipients" (admins).
    let copies = if admin && it.state == "held" {
        let q = ListParams {
            trace_id: Some(it.trace_id.clone()),
            state: Some("held".into()),
            page_size: Some(COPIES_MAX.to_string()),
            tenant: Some(it.tenant.clone()).filter(|_| ctx.p.tenant_id.is_none()),
            ..Default::default()
        };
        match list_page(&s, ctx.p, q).await {
            Ok(found) => found.items,
            Err(e) => return error_page(Some(&ctx), lang, e),
        }
    } else {
        Vec::new()
    };
    let held = it.state == "held";
    let sender = if it.sender.is_empty() {
        "<>".to_string()
    } else {
        it.sender.clone()
    };
    let body = html! {
        (tabs(&ctx, ""))
        (done_note(lang, q.done.as_deref(), q.n.as_deref()))
        div.panel {
            dl.facts {
                dt { (i18n::SUBJECT.get(lang)) } dd.subject { (it.subject) }
                dt { (i18n::SENDER.get(lang)) } dd { (sender) }
                dt { (i18n::Q_FROM.get(lang)) } dd { (it.from) }
                dt { (i18n::RECIPIENT.get(lang)) } dd { (it.recipient) }
                dt { (i18n::RECEIVED.get(lang)) } dd { (time(&it.received)) }
                dt { (i18n::Q_EXPIRES.get(lang)) } dd { (time(&it.expires)) }
                dt { (i18n::Q_REASON.get(lang)) } dd.kind { (kind_label(lang, &it.kind)) }
                dt { (i18n::Q_POLICY.get(lang)) } dd { (it.policy) }
                dt { (i18n::QP_QUARANTINE_POLICY.get(lang)) } dd.quarantine-policy { (it.quarantine_policy) }
                dt { (i18n::QP_PERMISSIONS.get(lang)) } dd.permissions {
                    @if it.permissions.is_empty() { (i18n::QP_NO_ACCESS.get(lang)) }
                    @else { (it.permissions.join(", ")) }
                }
                @if let (Some(state), Some(by), Some(at)) = (&it.release_request, &it.requested_by, &it.requested) {
                    dt { (i18n::QP_REQUEST.get(lang)) }
                    dd.request {
                        (request_label(state).get(lang)) " · " (by) " · " (time(at))
                        @if let (Some(dby), Some(dat)) = (&it.request_decided_by, &it.request_decided) {
                            " · " (dby) " · " (time(dat))
                        }
                    }
                }
                dt { (i18n::Q_RELEASE_STATUS.get(lang)) } dd.state { (state_label(&it.state).get(lang)) }
                @if let (Some(by), Some(at)) = (&it.decided_by, &it.decided) {
                    dt { (i18n::Q_DECIDED.get(lang)) } dd { (by) " · " (time(at)) }
                }
                dt { (i18n::TRACE_ID.get(lang)) } dd { (it.trace_id) }
            }
        }
        h2 { (i18n::Q_WHY.get(lang)) }
        div.panel.why {
            @if let Some(r) = &it.reason {
                p { span.stage { (i18n::STAGE.get(lang)) ": " (r.stage.as_str()) } }
                @if let Some(rule) = &r.rule { p.rule { (i18n::RULE.get(lang)) ": " (rule) } }
                p.why { (r.text) }
                @if !r.figures.is_empty() {
                    ul.figures {
                        @for fig in &r.figures { li { (fig.name) " = " (fig.value.to_string()) } }
                    }
                }
            } @else {
                p.note { (kind_label(lang, &it.kind)) }
            }
            @if !events.is_empty() {
                h3 { (i18n::MESSAGE_EVENTS.get(lang)) }
                table.data.events {
                    thead { tr {
                        th { (i18n::TIME.get(lang)) } th { (i18n::EVENT.get(lang)) }
                        th { (i18n::ACTION.get(lang)) } th { (i18n::REASON.get(lang)) }
                    } }
                    tbody {
                        @for e in &events {
                            tr {
                                td { (time(&e.time)) }
                                td.event { (e.event) }
                                td { (e.detail) }
                                td {
                                    @if let Some(r) = &e.reason {
                                        span.stage { (r.stage.as_str()) }
                                        @if let Some(rule) = &r.rule { br; span { (i18n::RULE.get(lang)) ": " (rule) } }
                                        br; span.why { (r.text) }
                                        @if !r.figures.is_empty() {
                                            ul.figures {
                                                @for fig in &r.figures { li { (fig.name) " = " (fig.value.to_string()) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if held {
            h2 { (i18n::Q_ACTIONS.get(lang)) }
            div.panel.actions {
                @if may("release") {
                    (button_form(&ctx, &format!("/quarantine/{id}/release"), if admin && pending { i18n::QP_APPROVE } else { i18n::Q_RELEASE }, "release"))
                }
                @if !admin && !may("release") && may("request-release") && it.release_request.is_none() {
                    (button_form(&ctx, &format!("/quarantine/{id}/request-release"), i18n::QP_REQUEST_RELEASE, "request-release"))
                }
                @if admin && pending {
                    " " (button_form(&ctx, &format!("/quarantine/{id}/deny-release"), i18n::QP_DENY, "deny-release"))
                }
                @if admin {
                    " " (button_form(&ctx, &format!("/quarantine/{id}/release-all"), i18n::Q_RELEASE_ALL, "release-all"))
                }
                @if may("delete") {
                    " " (button_form(&ctx, &format!("/quarantine/{id}/delete"), i18n::Q_DELETE, "delete"))
                }
                @if may("allow-sender") {
                    " " (button_form(&ctx, &format!("/quarantine/{id}/allow-sender"), i18n::JE_ALLOW_SENDER, "allow-sender"))
                }
                @if may("block-sender") {
                    " " (button_form(&ctx, &format!("/quarantine/{id}/block-sender"), i18n::JE_BLOCK_SENDER, "block-sender"))
                }
                @if admin && copies.len() > 1 {
                    form.copies method="post" action={ "/quarantine/" (id) "/release-some" } {
                        input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                        fieldset {
                            legend { (i18n::Q_RELEASE_SOME_TITLE.get(lang)) }
                            @for c in &copies {
                                label.copy {
                                    input type="checkbox" name={ "copy-" (c.id) } value="1";
                                    " " (c.recipient)
                                }
                            }
                        }
                        button.release-some type="submit" { (i18n::Q_RELEASE_SOME.get(lang)) }
                    }
                }
            }
        }
        h2 { (i18n::Q_PREVIEW.get(lang)) }
        @match &preview {
            None if preview_refused => p.note.no-preview { (i18n::QP_NO_PREVIEW.get(lang)) },
            None => p.note { (i18n::Q_NO_CONTENT.get(lang)) },
            Some(pv) => div.panel.preview {
                h3 { (i18n::Q_HEADERS.get(lang)) }
                table.data.headers {
                    tbody {
                        @for h in &pv.headers { tr { th { (h.name) } td { (h.value) } } }
                    }
                }
                h3 { (i18n::Q_TEXT.get(lang)) }
                @if pv.text_from_html { p.note { (i18n::Q_TEXT_FROM_HTML.get(lang)) } }
                @else if pv.has_html { p.note { (i18n::Q_HTML_HIDDEN.get(lang)) } }
                pre.text { (pv.text) }
                @if pv.truncated { p.note { (i18n::Q_TRUNCATED.get(lang)) } }
                @if !pv.attachments.is_empty() {
                    h3 { (i18n::Q_ATTACHMENTS.get(lang)) }
                    ul.attachments { @for a in &pv.attachments { li { (a) } } }
                }
            },
        }
    };
    layout::page(&ctx, Some(Nav::Quarantine), i18n::DETAILS.get(lang), body).into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// What every one-button action of an item does: the CSRF check, then the API's call (a
/// future: nothing runs when the check refuses), then what its answer makes of the page (a 303
/// back with a note), or the API's refusal as a page with its words and status.
async fn act<T>(
    ctx: &Ctx,
    headers: &HeaderMap,
    f: &CsrfForm,
    call: impl Future<Output = Result<T, ApiError>>,
    done: impl FnOnce(T) -> Response,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(headers, f.csrf.as_deref()) {
        return refusal;
    }
    match call.await {
        Ok(answer) => done(answer),
        Err(e) => error_page(Some(ctx), ctx.lang, e),
    }
}

/// `POST /quarantine/{id}/release`: the API's release of one recipient's copy (for a pending
/// release request, its approval).
pub async fn release(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(&ctx, &headers, &f, release_one(&s, ctx.p, id), |_| {
        see_other(&format!("/quarantine/{id}?done=released&n=1"))
    })
    .await
}

/// `POST /quarantine/{id}/request-release`: the API's release request (a user whose item's
/// policy grants request release).
pub async fn request_release(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(&ctx, &headers, &f, request_one(&s, ctx.p, id), |_| {
        see_other(&format!("/quarantine/{id}?done=requested"))
    })
    .await
}

/// `POST /quarantine/{id}/deny-release`: the API's denial of a pending release request.
pub async fn deny_release(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(&ctx, &headers, &f, deny_one(&s, ctx.p, id), |_| {
        see_other(&format!("/quarantine/{id}?done=denied"))
    })
    .await
}

/// `POST /quarantine/{id}/release-all`: the API's release to every recipient (global admins).
pub async fn release_all(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(&ctx, &headers, &f, release_every(&s, ctx.p, id), |done| {
        if !done.released.is_empty() {
            return see_other(&format!(
                "/quarantine/{id}?done=released&n={}",
                done.released.len()
            ));
        }
        match done.refused.into_iter().next() {
            // Nothing released: the first copy's reason, as the API lists it.
            Some(r) => error_page(
                Some(&ctx),
                ctx.lang,
                ApiError::new(axum::http::StatusCode::CONFLICT, r.error),
            ),
            None => see_other(&format!("/quarantine/{id}?done=released&n=0")),
        }
    })
    .await
}

/// `POST /quarantine/{id}/release-some`: releases the checked copies (`copy-<id>`) of the
/// message, each through the API's release of one copy, with its authorization: a copy the
/// caller may not release stops the rest and shows the API's refusal.
pub async fn release_some(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.get(CSRF_FIELD).map(String::as_str)) {
        return refusal;
    }
    let lang = ctx.lang;
    // The message whose copies these must be: read as the API reads an item (its refusal
    // first), so a copy of another message cannot ride along.
    let first = match item(&s, ctx.p, id).await {
        Ok(it) => it,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let mut chosen: Vec<i64> = f
        .keys()
        .filter_map(|k| k.strip_prefix("copy-"))
        .filter_map(|n| n.parse().ok())
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    if chosen.is_empty() || chosen.len() > COPIES_MAX {
        return error_page(
            Some(&ctx),
            lang,
            ApiError::bad_request(i18n::Q_CHOOSE.get(lang)),
        );
    }
    let mut released = 0;
    for copy in chosen {
        let it = match item(&s, ctx.p, copy).await {
            Ok(it) => it,
            Err(e) => return error_page(Some(&ctx), lang, e),
        };
        if it.trace_id != first.trace_id {
            return error_page(
                Some(&ctx),
                lang,
                ApiError::bad_request(format!(
                    "quarantined message {copy} is not a copy of message {}",
                    first.trace_id
                )),
            );
        }
        match release_one(&s, ctx.p, copy).await {
            Ok(_) => released += 1,
            Err(e) => return error_page(Some(&ctx), lang, e),
        }
    }
    see_other(&format!("/quarantine/{id}?done=released&n={released}"))
}

/// `POST /quarantine/{id}/delete`: the API's delete.
pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    act(&ctx, &headers, &f, delete_one(&s, ctx.p, id), |_| {
        see_other(&format!("/quarantine/{id}?done=deleted"))
    })
    .await
}

// ----- a mailbox's Junk Email and Inbox -----------------------------------------------------------

/// The signed-in person's own mailbox address, if they have one.
async fn own_address(s: &AppState, ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let p = ctx.p;
    s.blocking(move |s| {
        let (Some(m), Some(t)) = (p.mailbox_id, p.tenant_id) else {
            return Ok(None);
        };
        Ok(s.directory
            .index(t)?
            .mailbox(m)
            .map(|mb| mb.address.clone()))
    })
    .await
}

#[derive(Deserialize, Default, Clone)]
pub struct MailForm {
    folder: Option<String>,
    done: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

fn folder_of(name: Option<&str>) -> Folder {
    name.and_then(Folder::parse).unwrap_or(Folder::Junk)
}

fn folder_label(folder: Folder) -> Text {
    match folder {
        Folder::Junk => i18n::Q_JUNK_EMAIL,
        Folder::Inbox => i18n::Q_INBOX,
    }
}

fn mail_path(folder: Folder) -> String {
    format!("/quarantine/mail?folder={}", folder.as_str())
}

fn no_mailbox(ctx: &Ctx) -> Response {
    error_page(
        Some(ctx),
        ctx.lang,
        ApiError::not_found(i18n::Q_NO_MAILBOX.get(ctx.lang)),
    )
}

/// `GET /quarantine/mail?folder=junk|inbox`: the caller's own folder, paged in the store.
pub async fn mail(State(s): State<AppState>, ctx: Ctx, Query(f): Query<MailForm>) -> Response {
    let lang = ctx.lang;
    let folder = folder_of(f.folder.as_deref());
    let address = match own_address(&s, &ctx).await {
        Ok(Some(a)) => a,
        Ok(None) => return no_mailbox(&ctx),
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let (page, size) = (f.table.page(), f.table.page_size());
    // One row more than the page tells whether another follows.
    let offset = (page - 1).saturating_mul(size);
    let mut items = match mail_messages(&s, ctx.p, address, Some(folder), size + 1, offset).await {
        Ok(items) => items,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let more = items.len() > size;
    items.truncate(size);
    let mut table = Table {
        columns: vec![
            Column {
                key: "received",
                label: i18n::RECEIVED,
            },
            Column {
                key: "from",
                label: i18n::Q_FROM,
            },
            Column {
                key: "subject",
                label: i18n::SUBJECT,
            },
            Column {
                key: "size",
                label: i18n::SIZE,
            },
        ],
        rows: items
            .into_iter()
            .map(|m| {
                vec![
                    Cell::text(time(&m.received)),
                    Cell::text(m.from),
                    Cell {
                        text: m.subject,
                        href: Some(format!("/quarantine/mail/{}", m.id)),
                        class: None,
                    },
                    Cell::text(m.size.to_string()),
                ]
            })
            .collect(),
        more,
    };
    table.apply(&f.table);
    let path = mail_path(folder);
    let body = html! {
        (tabs(&ctx, &path))
        (done_note(lang, f.done.as_deref(), None))
        p.note { (match folder { Folder::Junk => i18n::Q_JUNK_NOTE, Folder::Inbox => i18n::Q_INBOX_NOTE }.get(lang)) }
        div #results {
            (table.render(lang, &f.table, "/quarantine/mail", &[("folder", folder.as_str().to_string())], "/quarantine/mail.csv"))
        }
    };
    layout::page(
        &ctx,
        Some(Nav::Quarantine),
        folder_label(folder).get(lang),
        body,
    )
    .into_response()
}

/// `GET /quarantine/mail.csv?folder=…`: the folder's first 5,000 messages as CSV.
pub async fn mail_csv(State(s): State<AppState>, ctx: Ctx, Query(f): Query<MailForm>) -> Response {
    let folder = folder_of(f.folder.as_deref());
    let address = match own_address(&s, &ctx).await {
        Ok(Some(a)) => a,
        Ok(None) => return no_mailbox(&ctx),
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let items = match mail_messages(&s, ctx.p, address, Some(folder), CSV_ROWS, 0).await {
        Ok(items) => items,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let table = Table {
        columns: vec![
            Column {
                key: "received",
                label: i18n::RECEIVED,
            },
            Column {
                key: "from",
                label: i18n::Q_FROM,
            },
            Column {
                key: "subject",
                label: i18n::SUBJECT,
            },
        ],
        rows: items
            .into_iter()
            .map(|m| {
                vec![
                    Cell::text(time(&m.received)),
                    Cell::text(m.from),
                    Cell::text(m.subject),
                ]
            })
            .collect(),
        more: false,
    };
    super::table::csv_response("messages.csv", table.csv(ctx.lang))
}

/// `GET /quarantine/mail/{id}`: one message of the caller's mailbox, its plain text (never its
/// HTML), and the button that reports it: "Not junk" in Junk Email, "Junk" in the Inbox.
pub async fn mail_item(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let lang = ctx.lang;
    let address = match own_address(&s, &ctx).await {
        Ok(Some(a)) => a,
        Ok(None) => return no_mailbox(&ctx),
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let (m, bytes) = match mail_message(&s, ctx.p, address, id).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let shown = hato_transport::preview::preview(&bytes);
    let (to, label) = match m.folder {
        Folder::Junk => (Folder::Inbox, i18n::Q_NOT_JUNK),
        Folder::Inbox => (Folder::Junk, i18n::Q_REPORT_JUNK),
    };
    let body = html! {
        (tabs(&ctx, &mail_path(m.folder)))
        div.panel {
            dl.facts {
                dt { (i18n::SUBJECT.get(lang)) } dd.subject { (m.subject) }
                dt { (i18n::Q_FROM.get(lang)) } dd { (m.from) }
                dt { (i18n::RECEIVED.get(lang)) } dd { (time(&m.received)) }
                dt { (i18n::Q_FOLDER.get(lang)) } dd.folder { (folder_label(m.folder).get(lang)) }
            }
        }
        div.panel.actions {
            form.inline method="post" action={ "/quarantine/mail/" (id) "/move" } {
                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                input type="hidden" name="folder" value=(to.as_str());
                button.report type="submit" { (label.get(lang)) }
            }
            p.note { (match m.folder { Folder::Junk => i18n::Q_NOT_JUNK_NOTE, Folder::Inbox => i18n::Q_REPORT_JUNK_NOTE }.get(lang)) }
        }
        h2 { (i18n::Q_PREVIEW.get(lang)) }
        div.panel.preview {
            @if shown.text_from_html { p.note { (i18n::Q_TEXT_FROM_HTML.get(lang)) } }
            @else if shown.has_html { p.note { (i18n::Q_HTML_HIDDEN.get(lang)) } }
            pre.text { (shown.text) }
            @if shown.truncated { p.note { (i18n::Q_TRUNCATED.get(lang)) } }
        }
    };
    layout::page(&ctx, Some(Nav::Quarantine), i18n::DETAILS.get(lang), body).into_response()
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    folder: Option<String>,
}

/// `POST /quarantine/mail/{id}/move`: the API's move (a not-junk report out of Junk Email, a
/// junk report into it), then back to the folder the message left.
pub async fn move_message(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<MoveForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let lang = ctx.lang;
    let Some(to) = f.folder.as_deref().and_then(Folder::parse) else {
        return error_page(
            Some(&ctx),
            lang,
            ApiError::bad_request("unknown folder: use inbox or junk"),
        );
    };
    let address = match own_address(&s, &ctx).await {
        Ok(Some(a)) => a,
        Ok(None) => return no_mailbox(&ctx),
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    match move_to(&s, ctx.p, address, id, to).await {
        Ok(_) => {
            let (from, done) = match to {
                Folder::Inbox => (Folder::Junk, "not-junk"),
                Folder::Junk => (Folder::Inbox, "junk"),
            };
            see_other(&format!(
                "/quarantine/mail?{}",
                query_string(&[("folder", from.as_str().into()), ("done", done.into())])
            ))
        }
        Err(e) => error_page(Some(&ctx), lang, e),
    }
}
