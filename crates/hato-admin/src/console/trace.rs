//! Message trace: the query builder, one row per recipient, a detail panel with every event and
//! its reasons, "find related", CSV export, saved queries (`routes::trace::{saved_queries,
//! save_query, delete_saved_query}`) and live updates: the first page polls `/trace/live` every
//! 5 seconds with htmx for the rows of the same query newer than the newest it shows (without
//! script, a Refresh link). Rows and events come from `routes::trace::run` and
//! `routes::trace::detail`, the API's own functions, with the API's authorization: admins see
//! their tenant's messages (the operator every tenant's), users are refused as the API refuses
//! them.

use super::i18n::{self, Lang};
use super::layout::{self, Nav};
use super::people::{Fields, check_csrf, csrf_field, done_note, field, refusal};
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, query_string, see_other, url_encode};
use crate::routes::trace::{
    SaveQueryInput, SavedQuery, TraceParams, delete_saved_query, detail as trace_detail, run,
    save_query, saved_queries,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hato_core::trace::RecipientStatus;
use hato_store::{TraceDirection, TraceRow};
use maud::{Markup, html};
use serde::Deserialize;

/// The query builder's fields and the table's parameters (all optional; unknown ones ignored).
#[derive(Deserialize, Default, Clone)]
pub struct TraceForm {
    sender: Option<String>,
    recipient: Option<String>,
    start: Option<String>,
    end: Option<String>,
    status: Option<String>,
    direction: Option<String>,
    message_id: Option<String>,
    from_ip: Option<String>,
    subject: Option<String>,
    /// The note after a redirect (`saved`, `deleted`): one of the page's own messages.
    done: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// The most rows one CSV export holds (Get-MessageTrace's largest page).
const CSV_ROWS: usize = hato_store::TRACE_PAGE_SIZE_MAX;

impl TraceForm {
    fn v(o: &Option<String>) -> String {
        o.as_deref().unwrap_or("").trim().to_string()
    }

    /// The builder's fields as query pairs (kept by the table's links and the export).
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sender", Self::v(&self.sender)),
            ("recipient", Self::v(&self.recipient)),
            ("start", Self::v(&self.start)),
            ("end", Self::v(&self.end)),
            ("status", Self::v(&self.status)),
            ("direction", Self::v(&self.direction)),
            ("message_id", Self::v(&self.message_id)),
            ("from_ip", Self::v(&self.from_ip)),
            ("subject", Self::v(&self.subject)),
        ]
    }

    fn params(&self, page: usize, page_size: usize) -> TraceParams {
        TraceParams {
            sender: self.sender.clone(),
            recipient: self.recipient.clone(),
            status: self.status.clone(),
            direction: self.direction.clone(),
            message_id: self.message_id.clone(),
            from_ip: self.from_ip.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
            subject: self.subject.clone(),
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
            key: "status",
            label: i18n::STATUS,
        },
        Column {
            key: "from_ip",
            label: i18n::CLIENT_IP,
        },
        Column {
            key: "size",
            label: i18n::SIZE,
        },
    ]
}

fn detail_href(r: &TraceRow) -> String {
    format!(
        "/trace/{}?recipient={}",
        url_encode(&r.trace_id),
        url_encode(&r.recipient)
    )
}

fn table_of(rows: Vec<TraceRow>, more: bool) -> Table {
    Table {
        columns: columns(),
        rows: rows
            .into_iter()
            .map(|r| {
                let href = detail_href(&r);
                vec![
                    Cell::text(
                        r.received
                            .replace('T', " ")
                            .trim_end_matches('Z')
                            .to_string(),
                    ),
                    Cell::text(r.sender),
                    Cell::text(r.recipient),
                    Cell {
                        text: r.subject,
                        href: Some(href),
                        class: None,
                    },
                    Cell {
                        class: RecipientStatus::parse(&r.status)
                            .map(|s| format!("status-{}", s.as_str())),
                        text: r.status,
                        href: None,
                    },
                    Cell::text(r.from_ip),
                    Cell::text(r.size.to_string()),
                ]
            })
            .collect(),
        more,
    }
}

fn builder(lang: Lang, f: &TraceForm) -> Markup {
    let status = TraceForm::v(&f.status);
    let direction = TraceForm::v(&f.direction);
    let field = |name: &'static str, label: i18n::Text, value: String, hint: Option<&str>| {
        html! {
            label { (label.get(lang))
                input type="text" name=(name) value=(value) placeholder=[hint];
            }
        }
    };
    html! {
        form.query.panel method="get" action="/trace" role="search"
            hx-get="/trace" hx-target="#results" hx-select="#results" hx-swap="outerHTML" hx-push-url="true" {
            (field("sender", i18n::SENDERS, TraceForm::v(&f.sender), Some(i18n::WILDCARD_HINT.get(lang))))
            (field("recipient", i18n::RECIPIENTS_FIELD, TraceForm::v(&f.recipient), Some(i18n::WILDCARD_HINT.get(lang))))
            (field("start", i18n::START, TraceForm::v(&f.start), Some("2026-11-28 09:00")))
            (field("end", i18n::END, TraceForm::v(&f.end), Some("2026-11-29")))
            label { (i18n::STATUS.get(lang))
                select name="status" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for s in RecipientStatus::ALL {
                        option value=(s.as_str()) selected[s.as_str() == status] { (s.as_str()) }
                    }
                }
            }
            label { (i18n::DIRECTION.get(lang))
                select name="direction" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for (d, label) in [(TraceDirection::Inbound, i18n::INBOUND), (TraceDirection::Outbound, i18n::OUTBOUND)] {
                        option value=(d.as_str()) selected[d.as_str() == direction] { (label.get(lang)) }
                    }
                }
            }
            (field("message_id", i18n::MESSAGE_ID, TraceForm::v(&f.message_id), None))
            (field("from_ip", i18n::CLIENT_IP, TraceForm::v(&f.from_ip), None))
            (field("subject", i18n::SUBJECT, TraceForm::v(&f.subject), None))
            input type="hidden" name="page_size" value=(f.table.page_size());
            div.actions { button type="submit" { (i18n::SEARCH.get(lang)) } }
        }
    }
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(f): Query<TraceForm>) -> Response {
    let (page, size) = (f.table.page(), f.table.page_size());
    let found = match run(&s, ctx.p, f.params(page, size)).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    // Live updates from the first page only: "newer than the newest shown".
    let newest = (page == 1).then(|| Newest::of(&found.rows));
    let saved = match saved_queries(State(s.clone()), ctx.p).await {
        Ok(Json(saved)) => saved,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let mut table = table_of(found.rows, found.more);
    table.apply(&f.table);
    let lang = ctx.lang;
    let body = html! {
        (done_note(lang, f.done.as_deref(), &[("saved", i18n::TR_DONE_SAVED), ("deleted", i18n::TR_DONE_DELETED)]))
        (builder(lang, &f))
        div #results hx-boost="true" hx-target="#results" hx-select="#results" hx-swap="outerHTML" {
            @if let Some(n) = &newest { (live_panel(lang, &f, n, &[], false)) }
            (table.render(lang, &f.table, "/trace", &f.query(), "/trace.csv"))
        }
        (saved_panel(&ctx, &f, &saved))
        div #detail {}
    };
    layout::page(&ctx, Some(Nav::Trace), i18n::MESSAGE_TRACE.get(lang), body).into_response()
}

/// The rows of the query (the first 5,000) as CSV.
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(f): Query<TraceForm>) -> Response {
    let found = match run(&s, ctx.p, f.params(1, CSV_ROWS)).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let mut table = table_of(found.rows, found.more);
    table.apply(&TableParams {
        filter: f.table.filter.clone(),
        sort: f.table.sort.clone(),
        desc: f.table.desc.clone(),
        ..Default::default()
    });
    super::table::csv_response("message-trace.csv", table.csv(ctx.lang))
}

#[derive(Deserialize)]
pub struct DetailQuery {
    recipient: Option<String>,
}

pub async fn detail(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(trace_id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let lang = ctx.lang;
    let recipient = q
        .recipient
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let summary = TraceParams {
        trace_id: Some(trace_id.clone()),
        recipient: recipient.clone(),
        page_size: Some("1".into()),
        ..Default::default()
    };
    let rows = match run(&s, ctx.p, summary).await {
        Ok(found) => found.rows,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let recipient = match recipient
        .map(|r| hato_core::Address::parse(&r).map(|a| a.to_string()))
        .transpose()
    {
        Ok(r) => r,
        Err(e) => {
            return error_page(
                Some(&ctx),
                lang,
                crate::ApiError::bad_request(e.to_string()),
            );
        }
    };
    let events = match trace_detail(&s, ctx.p, trace_id.clone(), recipient).await {
        Ok(events) => events,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let first = rows.first();
    let related = first.map(|r| {
        (
            format!(
                "/trace?{}",
                query_string(&[("message_id", r.message_id.clone())])
            ),
            format!("/trace?{}", query_string(&[("sender", r.sender.clone())])),
        )
    });
    let body = html! {
        div #detail.panel {
            @if let Some(r) = first {
                dl.facts {
                    dt { (i18n::SUBJECT.get(lang)) } dd.subject { (r.subject) }
                    dt { (i18n::SENDER.get(lang)) } dd { (r.sender) }
                    dt { (i18n::RECIPIENT.get(lang)) } dd { (r.recipient) }
                    dt { (i18n::RECEIVED.get(lang)) } dd { (r.received) }
                    dt { (i18n::STATUS.get(lang)) } dd { (r.status) }
                    dt { (i18n::MESSAGE_ID.get(lang)) } dd { (r.message_id) }
                    dt { (i18n::TRACE_ID.get(lang)) } dd { (r.trace_id) }
                    dt { (i18n::CLIENT_IP.get(lang)) } dd { (r.from_ip) }
                }
            }
            @if let Some((same_id, same_sender)) = &related {
                p.related { (i18n::FIND_RELATED.get(lang)) ": "
                    a href=(same_id) { (i18n::SAME_MESSAGE_ID.get(lang)) } " · "
                    a href=(same_sender) { (i18n::SAME_SENDER.get(lang)) }
                }
            }
            h2 { (i18n::MESSAGE_EVENTS.get(lang)) }
            table.data.events {
                thead { tr {
                    th { (i18n::TIME.get(lang)) } th { (i18n::RECIPIENT.get(lang)) }
                    th { (i18n::EVENT.get(lang)) } th { (i18n::ACTION.get(lang)) }
                    th { (i18n::REASON.get(lang)) }
                } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (e.time.replace('T', " ").trim_end_matches('Z')) }
                            td { (e.recipient) }
                            td.event { (e.event) }
                            td {
                                (e.detail)
                                @if let Some(code) = e.status {
                                    br; span.note { (i18n::REPLY.get(lang)) ": " (code) " " (e.enhanced_status.as_deref().unwrap_or("")) }
                                }
                                @if !e.remote_host.is_empty() { br; span.note { (e.remote_host) } }
                            }
                            td {
                                @if let Some(r) = &e.reason {
                                    span.stage { (i18n::STAGE.get(lang)) ": " (r.stage.as_str()) }
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
    };
    layout::page(&ctx, Some(Nav::Trace), i18n::DETAILS.get(lang), body).into_response()
}

// ----- live updates ----------------------------------------------------------------------------

/// The newest row a page shows: its arrival (to the second, as rows show it) and how many of the
/// rows shown arrived in that second (those the poll leaves out). `None`: the page showed no
/// row, so every row of the query is new.
struct Newest(Option<(String, usize)>);

impl Newest {
    fn of(rows: &[TraceRow]) -> Newest {
        Newest(rows.first().map(|first| {
            let same = rows.iter().filter(|r| r.received == first.received).count();
            (first.received.clone(), same)
        }))
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        match &self.0 {
            Some((since, skip)) => vec![("since", since.clone()), ("skip", skip.to_string())],
            None => Vec::new(),
        }
    }
}

/// The most new rows a poll shows; beyond them, the Refresh link.
const LIVE_ROWS: usize = 100;

/// The poller: replaced by `/trace/live`'s answer every 5 seconds (the rows arrived since the
/// page was loaded, all of them each time, so a missed poll loses nothing); without script, a
/// link that runs the query again. Its own `hx-target`/`hx-select`, not those of `#results`
/// around it, which htmx would otherwise let it inherit.
fn live_panel(lang: Lang, f: &TraceForm, n: &Newest, rows: &[TraceRow], more: bool) -> Markup {
    let mut q = f.query();
    q.extend(n.query());
    let poll = format!("/trace/live?{}", query_string(&q));
    let refresh = format!("/trace?{}", query_string(&f.query()));
    let cells = table_of(rows.to_vec(), false);
    html! {
        div #live hx-get=(poll) hx-trigger="every 5s" hx-target="this" hx-select="#live" hx-swap="outerHTML" {
            p.note { (i18n::TR_LIVE_NOTE.get(lang)) " " a.refresh href=(refresh) { (i18n::TR_REFRESH.get(lang)) } }
            @if !rows.is_empty() {
                h2 { (i18n::TR_LIVE.get(lang)) " (" span #live-count { (rows.len()) @if more { "+" } } ")" }
                table.data.live {
                    thead { tr { @for c in &cells.columns { th { (c.label.get(lang)) } } } }
                    tbody hx-boost="false" {
                        @for r in &cells.rows {
                            tr.new {
                                @for c in r {
                                    td class=[c.class.as_deref()] {
                                        @if let Some(h) = &c.href { a href=(h) { (c.text) } }
                                        @else { (c.text) }
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

/// The query of a poll: the page's, and where its newest row was.
#[derive(Deserialize, Default)]
pub struct LiveForm {
    since: Option<String>,
    skip: Option<String>,
    #[serde(flatten)]
    form: TraceForm,
}

/// A poll without a valid session (expired, signed out, or never): the sign-in page, then back
/// to the trace page with the same query (not to the poll's fragment). htmx follows an XHR's
/// redirect by itself and would swap in nothing from the sign-in page, leaving the page silent;
/// so an htmx request gets `HX-Redirect`, which htmx turns into the whole page going there
/// (htmx 2 reads it whatever the status), with a line saying so in place of the poller should
/// htmx not follow. Anything else gets the usual 303. A stale session cookie goes either way.
fn live_signed_out(lang: Lang, headers: &HeaderMap, f: &TraceForm, refused: Response) -> Response {
    if refused.status() != axum::http::StatusCode::SEE_OTHER {
        // Not a sign-in redirect (the store failed): as it is.
        return refused;
    }
    let page = format!("/trace?{}", super::query_string(&f.query()));
    let login = format!(
        "/login?next={}",
        super::url_encode(page.trim_end_matches('?'))
    );
    let mut r = if headers.get("HX-Request").is_some_and(|v| v == "true") {
        let body = html! {
            div #live {
                p.note.expired role="alert" {
                    (i18n::S10_SESSION_EXPIRED.get(lang)) " "
                    a href=(login) { (i18n::S10_SIGN_IN_AGAIN.get(lang)) }
                }
            }
        };
        let mut r = axum::response::Html(body.into_string()).into_response();
        if let Ok(v) = HeaderValue::from_str(&login) {
            r.headers_mut().insert("HX-Redirect", v);
        }
        r
    } else {
        see_other(&login)
    };
    if let Some(c) = refused.headers().get(header::SET_COOKIE) {
        r.headers_mut().insert(header::SET_COOKIE, c.clone());
    }
    r
}

/// The rows of the page's query that arrived after its newest row, as the poller's new self:
/// `run`, the API's function, with the session's principal (the same authorization and tenant
/// scope as the page), the query's own start moved up to that row's second.
pub async fn live(
    State(s): State<AppState>,
    ctx: Result<Ctx, Response>,
    headers: HeaderMap,
    Query(l): Query<LiveForm>,
) -> Response {
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(refused) => {
            return live_signed_out(super::i18n::Lang::of(&headers), &headers, &l.form, refused);
        }
    };
    let lang = ctx.lang;
    let since = l.since.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let newest = match since {
        Some(since) => {
            let skip = l
                .skip
                .as_deref()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            Newest(Some((since.to_string(), skip)))
        }
        None => Newest(None),
    };
    let mut params = l.form.params(1, LIVE_ROWS + 1);
    if let Some((since, skip)) = &newest.0 {
        let Some(t) = hato_core::Timestamp::parse_human(since) else {
            return error_page(
                Some(&ctx),
                lang,
                crate::ApiError::bad_request(format!("since: cannot read {since:?} as a time")),
            );
        };
        // The later of the query's own start and the newest row's second; rows of that second
        // come too, and the ones the page showed (the oldest of them) are left out below.
        let own = params
            .start
            .as_deref()
            .and_then(hato_core::Timestamp::parse_human);
        if own.is_none_or(|own| own < t) {
            params.start = Some(since.clone());
        }
        params.page_size = Some((LIVE_ROWS + 1 + (*skip).min(LIVE_ROWS)).to_string());
    }
    let found = match run(&s, ctx.p, params).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let mut rows = found.rows;
    if let Some((since, skip)) = &newest.0 {
        // Newest first: the rows of the newest shown second that the page had are the last
        // `skip` of that second's rows (mail that came later arrived later in it).
        let same: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| &r.received == since)
            .map(|(i, _)| i)
            .collect();
        let shown: Vec<usize> = same.iter().rev().take(*skip).copied().collect();
        let mut i = 0;
        rows.retain(|_| {
            let keep = !shown.contains(&i);
            i += 1;
            keep
        });
    }
    let more = rows.len() > LIVE_ROWS || found.more;
    rows.truncate(LIVE_ROWS);
    axum::response::Html(live_panel(lang, &l.form, &newest, &rows, more).into_string())
        .into_response()
}

// ----- saved queries ---------------------------------------------------------------------------

/// The caller's saved queries (each runs as a link and has a delete form) and the form that
/// saves the current query.
fn saved_panel(ctx: &Ctx, f: &TraceForm, saved: &[SavedQuery]) -> Markup {
    let lang = ctx.lang;
    html! {
        section.panel #saved-queries {
            h2 { (i18n::TR_SAVED.get(lang)) }
            @if saved.is_empty() { p.note { (i18n::TR_NO_SAVED.get(lang)) } }
            @else {
                ul.saved {
                    @for q in saved {
                        li {
                            a.saved-query href={ "/trace?" (q.query) } { (q.name) }
                            " "
                            form.inline method="post" action="/trace/saved/delete" {
                                (csrf_field(ctx))
                                input type="hidden" name="name" value=(q.name);
                                button type="submit" { (i18n::TR_DELETE.get(lang)) }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action="/trace/saved" {
                (csrf_field(ctx))
                input type="hidden" name="query" value=(query_string(&f.query()));
                label { (i18n::TR_SAVE_AS.get(lang)) " "
                    input type="text" name="name" required maxlength="100";
                }
                " "
                button type="submit" { (i18n::SAVE.get(lang)) }
            }
        }
    }
}

/// Saves the current query under a name: `routes::trace::save_query` with the session's
/// principal, so the names, limits and the checks of each filter are the API's.
pub async fn save(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = check_csrf(&ctx, &headers, &f) {
        return r;
    }
    let query = field(&f, "query");
    let input = SaveQueryInput {
        name: field(&f, "name"),
        query: query.clone(),
    };
    match save_query(State(s), ctx.p, Ok(Json(input))).await {
        Ok(_) => {
            let sep = if query.is_empty() { "" } else { "&" };
            see_other(&format!("/trace?{query}{sep}done=saved"))
        }
        Err(e) => refusal(&ctx, &e).unwrap_or_else(|| error_page(Some(&ctx), ctx.lang, e)),
    }
}

/// Deletes one of the caller's saved queries (`routes::trace::delete_saved_query`).
pub async fn delete_saved(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(r) = check_csrf(&ctx, &headers, &f) {
        return r;
    }
    match delete_saved_query(State(s), ctx.p, crate::state::Path(field(&f, "name"))).await {
        Ok(_) => see_other("/trace?done=deleted"),
        Err(e) => refusal(&ctx, &e).unwrap_or_else(|| error_page(Some(&ctx), ctx.lang, e)),
    }
}
