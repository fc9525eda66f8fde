//! Protection: the connection filter (IP allow and block lists), the provider block list (the
//! operator's), throttle status with release, the malware policy, the spam policies (inbound
//! and outbound) and the connection log (paged in the store, by IP and time).
//!
//! As on the Mail flow page, every read and change is the API handler's own function
//! (`routes::connection_filter`, `routes::blocklist`, `routes::throttle`,
//! `routes::malware_filter`, `routes::spam_filter`, `routes::outbound_spam`,
//! `routes::connections`) with the session's principal. The section is for global admins and
//! the operator (`Nav::Protection`); within it, what only the operator may do (the provider
//! block list, releasing a throttle) is refused to a tenant's admins by the API's own check.

use super::flow_kit::{
    Notice, Section, Tab, body, csv_of, done_href, exchange_name, facts, field, given, hidden,
    href, input, list, tenant_query, text, typed, value, yes_no,
};
use super::i18n::{self, Lang};
use super::layout::Nav;
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, see_other};
use crate::error::ApiError;
use crate::routes::{
    blocklist, connection_filter, connections, malware_filter, outbound_spam, spam_filter, throttle,
};
use crate::state::{ApiResult, AppState, Path, TenantFilter};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hato_core::auth::Role;
use hato_core::directory::Tenant;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

const FILTER: &str = "/protection";
const BLOCKLIST: &str = "/protection/blocklist";
const THROTTLE: &str = "/protection/throttle";
const MALWARE: &str = "/protection/malware";
const SPAM: &str = "/protection/spam";
const CONNECTIONS: &str = "/protection/connections";

const TABS: [Tab; 6] = [
    Tab {
        path: FILTER,
        label: i18n::CONNECTION_FILTER,
    },
    Tab {
        path: BLOCKLIST,
        label: i18n::PROVIDER_BLOCK_LIST,
    },
    Tab {
        path: THROTTLE,
        label: i18n::THROTTLE,
    },
    Tab {
        path: MALWARE,
        label: i18n::MALWARE_POLICY,
    },
    Tab {
        path: SPAM,
        label: i18n::SPAM_POLICIES,
    },
    Tab {
        path: CONNECTIONS,
        label: i18n::CONNECTION_LOG,
    },
];

#[derive(Deserialize, Default)]
pub struct PageQuery {
    tenant: Option<String>,
    done: Option<String>,
    /// The block list tab's delist requests: the status shown and the page.
    status: Option<String>,
    dpage: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// The section: its navigation entry and tabs (`flow_kit::Section`: the handlers' common
/// start, frame and CSV export).
const SECTION: Section = Section {
    nav: Nav::Protection,
    tabs: &TABS,
};

async fn start(
    s: &AppState,
    ctx: &Ctx,
    named: Option<&str>,
    path: &str,
) -> Result<Tenant, Response> {
    SECTION.start(s, ctx, named, path).await
}

fn frame(
    ctx: &Ctx,
    t: &Tenant,
    tab: &str,
    status: StatusCode,
    notice: &Notice,
    body: Markup,
) -> Response {
    SECTION.frame(ctx, t, tab, status, notice, body)
}

fn col(key: &'static str, label: i18n::Text) -> Column {
    Column { key, label }
}

// ---------------------------------------------------------------------------------------------
// The connection filter.

async fn filter_table(s: &AppState, ctx: &Ctx, t: &Tenant) -> Result<Table, ApiError> {
    let lang = ctx.lang;
    let v = value(
        connection_filter::show(
            State(s.clone()),
            ctx.p,
            Query(TenantFilter {
                tenant: Some(t.name.clone()),
            }),
        )
        .await,
    )?;
    let mut rows = Vec::new();
    for (key, label) in [
        ("ip_allow_list", i18n::IP_ALLOW_LIST),
        ("ip_block_list", i18n::IP_BLOCK_LIST),
    ] {
        for e in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            rows.push(vec![
                Cell {
                    text: label.get(lang).to_string(),
                    href: None,
                    class: Some(key.replace('_', "-")),
                },
                Cell::text(text(e)),
            ]);
        }
    }
    Ok(Table {
        columns: vec![col("list", i18n::IP_LIST), col("entry", i18n::IP_ENTRY)],
        rows,
        more: false,
    })
}

#[derive(Deserialize, Default)]
pub struct FilterForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    list: Option<String>,
    entry: Option<String>,
    op: Option<String>,
}

async fn filter_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &TableParams,
    status: StatusCode,
    notice: Notice,
    kept: &FilterForm,
) -> Response {
    let lang = ctx.lang;
    let mut table = match filter_table(s, ctx, t).await {
        Ok(table) => table,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    table.apply(q);
    let which = kept.list.clone().unwrap_or_default();
    let body = html! {
        p.note { (i18n::CONNECTION_FILTER_HELP.get(lang)) }
        div #results {
            (table.render(lang, q, FILTER, &tenant_query(ctx, t), &format!("{FILTER}/connection-filter.csv")))
        }
        form.panel.ip-form method="post" action={ (FILTER) "/connection-filter" } {
            h2 { (i18n::CHANGE_IP_LISTS.get(lang)) }
            (hidden(ctx, t))
            label { (i18n::IP_LIST.get(lang))
                select name="list" {
                    option value="ip_block_list" selected[which == "ip_block_list"] { (i18n::IP_BLOCK_LIST.get(lang)) }
                    option value="ip_allow_list" selected[which == "ip_allow_list"] { (i18n::IP_ALLOW_LIST.get(lang)) }
                }
            }
            label { (i18n::IP_ENTRY.get(lang))
                input type="text" name="entry" value=(kept.entry.clone().unwrap_or_default()) placeholder="192.0.2.0/24, 192.0.2.1-192.0.2.9" required;
            }
            div.actions {
                button type="submit" name="op" value="add" { (i18n::ADD.get(lang)) }
                " "
                button type="submit" name="op" value="remove" { (i18n::REMOVE.get(lang)) }
            }
        }
    };
    frame(ctx, t, FILTER, status, &notice, body)
}

pub async fn filter_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            FILTER,
            q.done.as_deref(),
            async |t, notice| {
                filter_page(
                    s,
                    ctx,
                    &t,
                    &q.table,
                    StatusCode::OK,
                    notice,
                    &FilterForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn filter_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            FILTER,
            &q.table,
            "connection-filter.csv",
            async |t| filter_table(s, ctx, &t).await,
        )
        .await
}

/// Adds entries to, or removes them from, the IP allow or block list.
pub async fn filter_change(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<FilterForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), FILTER).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let which = f.list.clone().unwrap_or_default();
    let op = f.op.clone().unwrap_or_default();
    let entries = list(&f.entry);
    let changed = match (which.as_str(), op.as_str()) {
        ("ip_allow_list" | "ip_block_list", "add" | "remove") => {
            match body(json!({ which.clone(): { op.clone(): entries } })) {
                Ok(b) => connection_filter::change(
                    State(s.clone()),
                    ctx.p,
                    Query(TenantFilter {
                        tenant: Some(t.name.clone()),
                    }),
                    b,
                )
                .await
                .map(|_| ()),
                Err(e) => Err(e),
            }
        }
        _ => Err(ApiError::bad_request(format!(
            "unknown list or action {which:?} {op:?}: ip_allow_list or ip_block_list, add or remove"
        ))),
    };
    match changed {
        Ok(()) => see_other(&done_href(
            &ctx,
            &t,
            FILTER,
            if op == "add" { "created" } else { "removed" },
        )),
        Err(e) => {
            filter_page(
                &s,
                &ctx,
                &t,
                &TableParams::default(),
                e.status,
                Notice::error(&e),
                &f,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The provider block list (the operator's).

async fn blocklist_table(s: &AppState, ctx: &Ctx) -> Result<Table, ApiError> {
    let v = value(blocklist::list_entries(State(s.clone()), ctx.p).await)?;
    Ok(Table {
        columns: vec![
            col("entry", i18n::IP_ENTRY),
            col("reason", i18n::REASON),
            col("added_by", i18n::ADDED_BY),
            col("added", i18n::ADDED),
            col("expires", i18n::EXPIRES),
        ],
        rows: v
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                ["entry", "reason", "added_by", "added", "expires"]
                    .iter()
                    .map(|k| Cell::text(field(e, k)))
                    .collect()
            })
            .collect(),
        more: false,
    })
}

/// Delist requests shown a page.
const DELIST_PAGE: usize = 50;

/// The statuses the requests' filter offers (the API's names) and their labels.
const DELIST_STATUSES: [(&str, i18n::Text); 4] = [
    ("pending", i18n::S10_PENDING),
    ("approved", i18n::S10_APPROVED),
    ("denied", i18n::S10_DENIED),
    ("closed", i18n::S10_CLOSED),
];

/// The requests' filter as asked: one of [`DELIST_STATUSES`], or all.
fn delist_status(q: &PageQuery) -> Option<&'static str> {
    let asked = q.status.as_deref().unwrap_or("").trim();
    DELIST_STATUSES
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.eq_ignore_ascii_case(asked))
}

/// The requests' page as asked (1 first).
fn delist_page_no(q: &PageQuery) -> usize {
    q.dpage
        .as_deref()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1)
}

/// One page of the requests made on the delist page, newest first, in the status asked for:
/// the API's listing (filtered and paged in the store's query).
/// With whether a next page has any (`blocklist::request_page` reads one more).
async fn delist_requests(
    s: &AppState,
    ctx: &Ctx,
    status: Option<&str>,
    page: usize,
) -> ApiResult<(Vec<Value>, bool)> {
    let mut q = json!({ "limit": DELIST_PAGE, "page": page });
    if let Some(st) = status {
        q["status"] = json!(st);
    }
    let params: blocklist::RequestsParams = input(q)?;
    let (rows, more) = blocklist::request_page(s, ctx.p, params).await?;
    let v = value(Ok(axum::Json(rows)))?;
    Ok((v.as_array().cloned().unwrap_or_default(), more))
}

/// The delist requests with their status, a filter by status, and the operator's decision on
/// each pending one: Approve (the entry is removed) or Deny (it stays; the request's link no
/// longer removes it), with an optional reason; `blocklist::approve_request`/`deny_request`.
fn delist_section(
    ctx: &Ctx,
    t: &Tenant,
    (requests, more): (&[Value], bool),
    status: Option<&str>,
    page: usize,
) -> Markup {
    let lang = ctx.lang;
    let tidy = |s: String| s.replace('T', " ").trim_end_matches('Z').to_string();
    let label = |st: &str| {
        DELIST_STATUSES
            .iter()
            .find(|(k, _)| *k == st)
            .map(|(_, l)| l.get(lang).to_string())
            .unwrap_or_else(|| st.to_string())
    };
    let link = |p: usize| {
        let mut extra = vec![("dpage", p.to_string())];
        if let Some(st) = status {
            extra.push(("status", st.to_string()));
        }
        format!("{}#delist-requests", href(ctx, t, BLOCKLIST, &extra))
    };
    html! {
        section.panel #delist-requests {
            h2 { (i18n::S9_DELIST_REQUESTS.get(lang)) }
            p.note { (i18n::S10_DELIST_HELP.get(lang)) }
            form.query.inline method="get" action=(BLOCKLIST) {
                @for (k, val) in tenant_query(ctx, t) { input type="hidden" name=(k) value=(val); }
                label { (i18n::S10_REQUEST_STATUS.get(lang)) " "
                    select name="status" {
                        option value="" selected[status.is_none()] { (i18n::S10_ALL.get(lang)) }
                        @for (k, l) in DELIST_STATUSES {
                            option value=(k) selected[status == Some(k)] { (l.get(lang)) }
                        }
                    }
                }
                " "
                button type="submit" { (i18n::SEARCH.get(lang)) }
            }
            @if requests.is_empty() {
                p.note { (i18n::NO_ROWS.get(lang)) }
            } @else {
                table.data.delist {
                    thead { tr {
                        th { (i18n::RECEIVED.get(lang)) } th { (i18n::IP_ENTRY.get(lang)) }
                        th { (i18n::ADDRESS.get(lang)) } th { (i18n::S9_REQUESTED_BY.get(lang)) }
                        th { (i18n::S9_OUTCOME.get(lang)) } th { (i18n::S9_CONFIRMED.get(lang)) }
                        th { (i18n::S10_REQUEST_STATUS.get(lang)) } th { (i18n::S10_DECIDED.get(lang)) }
                    } }
                    tbody {
                        @for r in requests {
                            @let st = field(r, "status");
                            tr class=(format!("request-{st}")) {
                                td { (tidy(field(r, "requested"))) }
                                td { (field(r, "ip")) @let e = field(r, "entry"); @if !e.is_empty() { " (" (e) ")" } }
                                td { (field(r, "address")) }
                                td { (field(r, "client_ip")) }
                                td.outcome { (field(r, "outcome")) }
                                td { (tidy(field(r, "confirmed"))) }
                                td.status { (label(&st)) }
                                td.decision {
                                    @if st == "pending" {
                                        form.inline.decide method="post" action=(BLOCKLIST) {
                                            (hidden(ctx, t))
                                            input type="hidden" name="id" value=(field(r, "id"));
                                            label { (i18n::S10_DECISION_REASON.get(lang)) " "
                                                input type="text" name="reason" maxlength="500";
                                            }
                                            " "
                                            button type="submit" name="op" value="approve" { (i18n::S10_APPROVE.get(lang)) }
                                            " "
                                            button type="submit" name="op" value="deny" { (i18n::S10_DENY.get(lang)) }
                                        }
                                    } @else {
                                        (field(r, "decided_by")) " " (tidy(field(r, "decided")))
                                        @let why = field(r, "decision_reason");
                                        @if !why.is_empty() { br; span.reason { (why) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { (i18n::PREVIOUS.get(lang)) } " " }
                @if more { a rel="next" href=(link(page + 1)) { (i18n::NEXT.get(lang)) } }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct BlockForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    entry: Option<String>,
    reason: Option<String>,
    expires_in: Option<String>,
    op: Option<String>,
    /// A delist request's id (`op` approve or deny).
    id: Option<String>,
}

async fn blocklist_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &PageQuery,
    status: StatusCode,
    notice: Notice,
    kept: &BlockForm,
) -> Response {
    let lang = ctx.lang;
    if ctx.p.role != Role::Operator {
        // The list is the platform's: the API shows and changes it to the operator only.
        let body = html! { p.note { (i18n::BLOCK_LIST_OPERATOR.get(lang)) } };
        return frame(ctx, t, BLOCKLIST, status, &notice, body);
    }
    let mut table = match blocklist_table(s, ctx).await {
        Ok(table) => table,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    table.apply(&q.table);
    let (filter, page) = (delist_status(q), delist_page_no(q));
    let requests = match delist_requests(s, ctx, filter, page).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        (delist_section(ctx, t, (&requests.0, requests.1), filter, page))
        p.note { (i18n::BLOCK_LIST_HELP.get(lang)) }
        div #results {
            (table.render(lang, &q.table, BLOCKLIST, &tenant_query(ctx, t), &format!("{BLOCKLIST}.csv")))
        }
        form.panel method="post" action=(BLOCKLIST) {
            h2 { (i18n::CHANGE_BLOCK_LIST.get(lang)) }
            (hidden(ctx, t))
            label { (i18n::IP_ENTRY.get(lang)) input type="text" name="entry" value=(v(&kept.entry)) required; }
            label { (i18n::REASON.get(lang)) input type="text" name="reason" value=(v(&kept.reason)); }
            label { (i18n::EXPIRES_IN.get(lang)) input type="text" name="expires_in" value=(v(&kept.expires_in)) placeholder="30d"; }
            div.actions {
                button type="submit" name="op" value="add" { (i18n::ADD.get(lang)) }
                " "
                button type="submit" name="op" value="remove" { (i18n::REMOVE.get(lang)) }
            }
        }
    };
    frame(ctx, t, BLOCKLIST, status, &notice, body)
}

pub async fn blocklist_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            BLOCKLIST,
            q.done.as_deref(),
            async |t, notice| {
                blocklist_page(
                    s,
                    ctx,
                    &t,
                    &q,
                    StatusCode::OK,
                    notice,
                    &BlockForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn blocklist_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    match blocklist_table(&s, &ctx).await {
        Ok(table) => csv_of(table, &q.table, ctx.lang, "provider-block-list.csv"),
        Err(e) => error_page(Some(&ctx), ctx.lang, e),
    }
}

pub async fn blocklist_change(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<BlockForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), BLOCKLIST).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let entry = f.entry.clone().unwrap_or_default().trim().to_string();
    let st = State(s.clone());
    let done = match f.op.as_deref().unwrap_or("") {
        "add" => {
            let mut v = json!({ "entry": entry, "reason": f.reason.clone().unwrap_or_default() });
            if let Some(e) = given(&f.expires_in) {
                v["expires_in"] = json!(e);
            }
            match body(v) {
                Ok(b) => blocklist::add_entry(st, ctx.p, b).await.map(|_| "created"),
                Err(e) => Err(e),
            }
        }
        "remove" => blocklist::remove_entry(st, ctx.p, Path(entry))
            .await
            .map(|_| "removed"),
        op @ ("approve" | "deny") => {
            let id = f.id.as_deref().unwrap_or("").trim();
            match id.parse::<i64>() {
                Ok(id) => {
                    let reason = given(&f.reason).map(|r| json!({ "reason": r }).to_string());
                    let raw = axum::body::Bytes::from(reason.unwrap_or_default());
                    let (decision, code) = if op == "approve" {
                        (hato_store::DelistDecision::Approved, "approved")
                    } else {
                        (hato_store::DelistDecision::Denied, "denied")
                    };
                    blocklist::decide(&s, ctx.p, id, decision, &raw)
                        .await
                        .map(|_| code)
                }
                Err(_) => Err(ApiError::bad_request(format!(
                    "id: {id:?} is not a delist request's id"
                ))),
            }
        }
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok(code) => see_other(&done_href(&ctx, &t, BLOCKLIST, code)),
        Err(e) => {
            blocklist_page(
                &s,
                &ctx,
                &t,
                &PageQuery::default(),
                e.status,
                Notice::error(&e),
                &f,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Throttle status and release.

#[derive(Deserialize, Default)]
pub struct ThrottleQuery {
    tenant: Option<String>,
    done: Option<String>,
    ip: Option<String>,
}

async fn throttle_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    ip: Option<String>,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let lang = ctx.lang;
    let found = match &ip {
        Some(ip) => Some(value(
            throttle::status(State(s.clone()), ctx.p, Path(ip.clone())).await,
        )),
        None => None,
    };
    let (status, notice) = match &found {
        Some(Err(e)) if notice.error.is_none() => (e.status, Notice::error(e)),
        _ => (status, notice),
    };
    let throttled = super::throttled::tab_panel(s, ctx).await;
    let body = html! {
        p.note { (i18n::THROTTLE_HELP.get(lang)) }
        form.query.panel method="get" action=(THROTTLE) {
            @for (k, val) in tenant_query(ctx, t) { input type="hidden" name=(k) value=(val); }
            label { (i18n::CLIENT_IP.get(lang)) input type="text" name="ip" value=(ip.clone().unwrap_or_default()) required; }
            div.actions { button type="submit" { (i18n::LOOK_UP.get(lang)) } }
        }
        @if let Some(Ok(v)) = &found {
            section.panel #throttle-status {
                @let throttled = v.get("throttled").and_then(Value::as_bool).unwrap_or(false);
                p.throttle-state { strong {
                    @if throttled { (i18n::THROTTLED.get(lang)) } @else { (i18n::NOT_THROTTLED.get(lang)) }
                } }
                (facts(v))
                @if ctx.p.role == Role::Operator {
                    form method="post" action={ (THROTTLE) "/release" } {
                        (hidden(ctx, t))
                        input type="hidden" name="ip" value=(field(v, "ip"));
                        button type="submit" { (i18n::RELEASE.get(lang)) }
                    }
                }
            }
        }
        (throttled)
    };
    frame(ctx, t, THROTTLE, status, &notice, body)
}

pub async fn throttle_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ThrottleQuery>,
) -> Response {
    let t = match start(&s, &ctx, q.tenant.as_deref(), THROTTLE).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    throttle_page(
        &s,
        &ctx,
        &t,
        given(&q.ip),
        StatusCode::OK,
        Notice::done(q.done.as_deref()),
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct ReleaseForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    ip: Option<String>,
}

/// Ends an IP's throttle (the operator, as the API allows).
pub async fn throttle_release(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<ReleaseForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), THROTTLE).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ip = f.ip.clone().unwrap_or_default().trim().to_string();
    match throttle::release(State(s.clone()), ctx.p, Path(ip.clone())).await {
        Ok(_) => see_other(&href(
            &ctx,
            &t,
            THROTTLE,
            &[("ip", ip), ("done", "released".into())],
        )),
        Err(e) => error_page(Some(&ctx), ctx.lang, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Malware and spam policies: each shown whole, one setting changed at a time (the API's names;
// the value typed as the API takes it).

#[derive(Deserialize, Default)]
pub struct SettingForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    /// `inbound` (a spam policy, named by `policy`) or `outbound` on the spam tab.
    kind: Option<String>,
    policy: Option<String>,
    setting: Option<String>,
    value: Option<String>,
}

/// The form that changes one setting of a policy shown as `v` (its fields but the read-only
/// ones).
fn setting_form(
    ctx: &Ctx,
    t: &Tenant,
    action: &str,
    v: &Value,
    extra: &[(&str, String)],
    kept: &SettingForm,
) -> Markup {
    let lang = ctx.lang;
    let chosen = kept.setting.clone().unwrap_or_default();
    let keys: Vec<&String> = v
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !matches!(k.as_str(), "tenant" | "name" | "effective_limits"))
                .collect()
        })
        .unwrap_or_default();
    html! {
        form.panel.setting-form method="post" action=(action) {
            h2 { (i18n::CHANGE_SETTING.get(lang)) }
            (hidden(ctx, t))
            @for (k, val) in extra { input type="hidden" name=(k) value=(val); }
            label { (i18n::SETTING.get(lang))
                select name="setting" {
                    @for k in keys { option value=(k) selected[*k == chosen] { (exchange_name(k)) } }
                }
            }
            label { (i18n::VALUE.get(lang))
                input type="text" name="value" value=(kept.value.clone().unwrap_or_default()) placeholder=(i18n::LIST_HINT.get(lang));
            }
            div.actions { button type="submit" { (i18n::SAVE.get(lang)) } }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct MalwareQuery {
    tenant: Option<String>,
    done: Option<String>,
    /// The policy shown (default: `Default`).
    policy: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// The policy parameters of the API for `name` (the default policy when none).
fn malware_params(t: &Tenant, name: Option<&str>) -> ApiResult<malware_filter::PolicyParams> {
    let mut v = json!({ "tenant": t.name });
    if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
        v["name"] = json!(n);
    }
    input(v)
}

fn malware_table(ctx: &Ctx, t: &Tenant, policies: &[Value]) -> Table {
    let lang = ctx.lang;
    Table {
        columns: vec![
            col("priority", i18n::PRIORITY),
            col("name", i18n::NAME),
            col("enabled", i18n::ENABLED),
            col("sent_to", i18n::S9_SENT_TO),
            col("sent_to_member_of", i18n::S9_SENT_TO_MEMBER_OF),
            col("recipient_domain_is", i18n::S9_RECIPIENT_DOMAIN_IS),
            col("action", i18n::ACTION),
            col("enable_file_filter", i18n::S9_FILE_FILTER),
            col("quarantine_tag", i18n::S10_QUARANTINE_TAG),
        ],
        rows: policies
            .iter()
            .map(|p| {
                let name = field(p, "name");
                vec![
                    Cell::text(field(p, "priority")),
                    Cell {
                        href: Some(href(ctx, t, MALWARE, &[("policy", name.clone())])),
                        text: name,
                        class: Some("policy-name".into()),
                    },
                    Cell::text(yes_no(lang, p, "enabled")),
                    Cell::text(field(p, "sent_to")),
                    Cell::text(field(p, "sent_to_member_of")),
                    Cell::text(field(p, "recipient_domain_is")),
                    Cell::text(field(p, "action")),
                    Cell::text(yes_no(lang, p, "enable_file_filter")),
                    Cell::text(field(p, "quarantine_tag")),
                ]
            })
            .collect(),
        more: false,
    }
}

async fn malware_policies(s: &AppState, ctx: &Ctx, t: &Tenant) -> ApiResult<Vec<Value>> {
    let v = value(
        malware_filter::list(
            State(s.clone()),
            ctx.p,
            Query(TenantFilter {
                tenant: Some(t.name.clone()),
            }),
        )
        .await,
    )?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The fields of the new-policy form (kept when the API refuses them).
#[derive(Deserialize, Default)]
pub struct MalwarePolicyForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    /// `create` or `remove`.
    op: Option<String>,
    name: Option<String>,
    priority: Option<String>,
    sent_to: Option<String>,
    sent_to_member_of: Option<String>,
    recipient_domain_is: Option<String>,
    action: Option<String>,
    enable_file_filter: Option<String>,
    /// `QuarantineTag`: a quarantine policy of the tenant.
    quarantine_tag: Option<String>,
}

/// The names of the tenant's quarantine policies (built-in first), for the quarantine tag's
/// choice: the API's own listing.
async fn quarantine_policy_names(s: &AppState, ctx: &Ctx, t: &Tenant) -> ApiResult<Vec<String>> {
    let v = value(
        crate::routes::quarantine_policies::list(State(s.clone()), ctx.p, Path(t.name.clone()))
            .await,
    )?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|p| field(p, "name"))
        .filter(|n| !n.is_empty())
        .collect())
}

/// `New-MalwareFilterPolicy`'s actions, as the API names them.
const MALWARE_ACTIONS: [&str; 3] = [
    "delete-message",
    "delete-attachment-and-use-default-alert",
    "delete-attachment-and-use-custom-alert",
];

fn malware_policy_form(
    ctx: &Ctx,
    t: &Tenant,
    f: &MalwarePolicyForm,
    quarantine_policies: &[String],
) -> Markup {
    let lang = ctx.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let action = v(&f.action);
    let tag = given(&f.quarantine_tag)
        .unwrap_or_else(|| hato_core::message::ADMIN_ONLY_ACCESS_POLICY.to_string());
    html! {
        form.panel.malware-policy-form method="post" action={ (MALWARE) "/policies" } {
            h2 { (i18n::S9_NEW_MALWARE_POLICY.get(lang)) }
            (hidden(ctx, t))
            input type="hidden" name="op" value="create";
            label { (i18n::NAME.get(lang)) input type="text" name="name" value=(v(&f.name)) required maxlength="64"; }
            label { (i18n::PRIORITY.get(lang)) input type="number" name="priority" min="0" value=(v(&f.priority)); }
            label { (i18n::S9_SENT_TO.get(lang)) input type="text" name="sent_to" value=(v(&f.sent_to)) placeholder=(i18n::LIST_HINT.get(lang)); }
            label { (i18n::S9_SENT_TO_MEMBER_OF.get(lang)) input type="text" name="sent_to_member_of" value=(v(&f.sent_to_member_of)) placeholder=(i18n::LIST_HINT.get(lang)); }
            label { (i18n::S9_RECIPIENT_DOMAIN_IS.get(lang)) input type="text" name="recipient_domain_is" value=(v(&f.recipient_domain_is)) placeholder=(i18n::LIST_HINT.get(lang)); }
            label { (i18n::ACTION.get(lang))
                select name="action" {
                    @for a in MALWARE_ACTIONS { option value=(a) selected[a == action] { (a) } }
                }
            }
            label { (i18n::S10_QUARANTINE_TAG.get(lang)) " (QuarantineTag)"
                select name="quarantine_tag" {
                    @for q in quarantine_policies { option value=(q) selected[q.eq_ignore_ascii_case(&tag)] { (q) } }
                }
            }
            label.check {
                input type="checkbox" name="enable_file_filter" value="1" checked[f.enable_file_filter.is_some() || f.name.is_none()];
                " " (i18n::S9_FILE_FILTER.get(lang))
            }
            div.actions { button type="submit" { (i18n::CREATE.get(lang)) } }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn malware_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &MalwareQuery,
    status: StatusCode,
    notice: Notice,
    kept: &SettingForm,
    kept_new: &MalwarePolicyForm,
) -> Response {
    let lang = ctx.lang;
    let policies = match malware_policies(s, ctx, t).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let shown_name = q
        .policy
        .clone()
        .or_else(|| kept.policy.clone())
        .filter(|p| !p.trim().is_empty());
    let shown = match malware_params(t, shown_name.as_deref()) {
        Ok(params) => value(malware_filter::show(State(s.clone()), ctx.p, Query(params)).await),
        Err(e) => Err(e),
    };
    let shown = match shown {
        Ok(v) => v,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let name = field(&shown, "name");
    let custom = !shown.get("priority").is_none_or(Value::is_null);
    let quarantine_policies = match quarantine_policy_names(s, ctx, t).await {
        Ok(names) => names,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let mut table = malware_table(ctx, t, &policies);
    table.apply(&q.table);
    let body = html! {
        p.note { (i18n::S9_MALWARE_POLICIES_HELP.get(lang)) }
        h2 { (i18n::S9_CUSTOM_POLICIES.get(lang)) }
        div #results {
            (table.render(lang, &q.table, MALWARE, &tenant_query(ctx, t), &format!("{MALWARE}.csv")))
        }
        section.panel.policy #malware-policy {
            h2.policy-title { (i18n::S9_POLICY.get(lang)) ": " (name) }
            @if !custom { p.note { (i18n::MALWARE_HELP.get(lang)) } }
            (facts(&shown))
            @if custom {
                form.inline method="post" action={ (MALWARE) "/policies" } {
                    (hidden(ctx, t))
                    input type="hidden" name="op" value="remove";
                    input type="hidden" name="name" value=(name);
                    button type="submit" data-op="remove" { (i18n::DELETE.get(lang)) }
                }
            }
        }
        (setting_form(ctx, t, MALWARE, &shown, &[("policy", name.clone())], kept))
        (malware_policy_form(ctx, t, kept_new, &quarantine_policies))
    };
    frame(ctx, t, MALWARE, status, &notice, body)
}

pub async fn malware_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<MalwareQuery>,
) -> Response {
    let (s, ctx, q) = (&s, &ctx, &q);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            MALWARE,
            q.done.as_deref(),
            async |t, notice| {
                malware_page(
                    s,
                    ctx,
                    &t,
                    q,
                    StatusCode::OK,
                    notice,
                    &SettingForm::default(),
                    &MalwarePolicyForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn malware_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<MalwareQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            MALWARE,
            &q.table,
            "malware-policies.csv",
            async |t| Ok(malware_table(ctx, &t, &malware_policies(s, ctx, &t).await?)),
        )
        .await
}

/// The one-setting change as the API's JSON for the change type `T`.
fn setting_change<T: serde::de::DeserializeOwned>(f: &SettingForm) -> ApiResult<Value> {
    let setting = given(&f.setting).ok_or_else(|| ApiError::bad_request("choose a setting"))?;
    let raw = f.value.clone().unwrap_or_default();
    Ok(json!({ setting.clone(): typed::<T>(&setting, &raw) }))
}

/// Changes one setting of the policy named (`Set-MalwareFilterPolicy`, and for a custom
/// policy `Set-MalwareFilterRule`'s conditions, priority and state).
pub async fn malware_change(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<SettingForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), MALWARE).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let changed = async {
        let params = malware_params(&t, f.policy.as_deref())?;
        let change = setting_change::<malware_filter::PolicyChange>(&f)?;
        malware_filter::change(State(s.clone()), ctx.p, Query(params), body(change)?).await
    }
    .await;
    let back = match given(&f.policy) {
        Some(p) => href(
            &ctx,
            &t,
            MALWARE,
            &[("policy", p), ("done", "changed".into())],
        ),
        None => done_href(&ctx, &t, MALWARE, "changed"),
    };
    match changed {
        Ok(_) => see_other(&back),
        Err(e) => {
            let q = MalwareQuery {
                policy: f.policy.clone(),
                ..Default::default()
            };
            malware_page(
                &s,
                &ctx,
                &t,
                &q,
                e.status,
                Notice::error(&e),
                &f,
                &MalwarePolicyForm::default(),
            )
            .await
        }
    }
}

/// Creates a custom malware policy (`New-MalwareFilterPolicy` with its
/// `New-MalwareFilterRule`) or removes one.
pub async fn malware_policy_action(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<MalwarePolicyForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), MALWARE).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let filter = || {
        Query(TenantFilter {
            tenant: Some(t.name.clone()),
        })
    };
    let name = f.name.clone().unwrap_or_default().trim().to_string();
    let done = match f.op.as_deref().unwrap_or("") {
        "create" => {
            let created = async {
                let mut v = json!({ "name": name });
                if let Some(p) = given(&f.priority) {
                    v["priority"] = json!(p.parse::<u32>().map_err(|_| {
                        ApiError::bad_request(format!("priority {p:?}: a whole number, 0 first"))
                    })?);
                }
                for (key, field) in [
                    ("sent_to", &f.sent_to),
                    ("sent_to_member_of", &f.sent_to_member_of),
                    ("recipient_domain_is", &f.recipient_domain_is),
                ] {
                    let items = list(field);
                    if !items.is_empty() {
                        v[key] = json!(items);
                    }
                }
                if let Some(a) = given(&f.action) {
                    v["action"] = json!(a);
                }
                v["enable_file_filter"] = json!(f.enable_file_filter.is_some());
                if let Some(q) = given(&f.quarantine_tag) {
                    v["quarantine_tag"] = json!(q);
                }
                malware_filter::create(State(s.clone()), ctx.p, filter(), body(v)?).await
            }
            .await;
            created.map(|_| ("created", Some(name.clone())))
        }
        "remove" => malware_filter::remove(State(s.clone()), ctx.p, Path(name.clone()), filter())
            .await
            .map(|_| ("removed", None)),
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok((code, shown)) => {
            let mut extra = vec![("done", code.to_string())];
            if let Some(p) = shown {
                extra.push(("policy", p));
            }
            see_other(&href(&ctx, &t, MALWARE, &extra))
        }
        Err(e) => {
            let q = MalwareQuery::default();
            malware_page(
                &s,
                &ctx,
                &t,
                &q,
                e.status,
                Notice::error(&e),
                &SettingForm::default(),
                &f,
            )
            .await
        }
    }
}

async fn spam_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &TableParams,
    status: StatusCode,
    notice: Notice,
    kept: &SettingForm,
) -> Response {
    let lang = ctx.lang;
    let policies =
        match value(spam_filter::list(State(s.clone()), ctx.p, Path(t.name.clone())).await) {
            Ok(v) => v.as_array().cloned().unwrap_or_default(),
            Err(e) => return error_page(Some(ctx), lang, e),
        };
    let outbound =
        match value(outbound_spam::show(State(s.clone()), ctx.p, Path(t.name.clone())).await) {
            Ok(v) => v,
            Err(e) => return error_page(Some(ctx), lang, e),
        };
    let mut table = spam_table(lang, &policies);
    table.apply(q);
    let chosen = kept.policy.clone().unwrap_or_else(|| "Default".into());
    let shown = policies
        .iter()
        .find(|p| field(p, "name") == chosen)
        .or(policies.first())
        .cloned()
        .unwrap_or(Value::Null);
    let empty = SettingForm::default();
    let (inbound_kept, outbound_kept) = if kept.kind.as_deref() == Some("outbound") {
        (&empty, kept)
    } else {
        (kept, &empty)
    };
    let body = html! {
        h2 { (i18n::INBOUND_SPAM.get(lang)) }
        div #results {
            (table.render(lang, q, SPAM, &tenant_query(ctx, t), &format!("{SPAM}.csv")))
        }
        details.policy {
            summary { (field(&shown, "name")) }
            (facts(&shown))
        }
        (setting_form(ctx, t, SPAM, &shown, &[("kind", "inbound".into()), ("policy", field(&shown, "name"))], inbound_kept))
        h2 { (i18n::OUTBOUND_SPAM.get(lang)) }
        (facts(&outbound))
        (setting_form(ctx, t, SPAM, &outbound, &[("kind", "outbound".into())], outbound_kept))
    };
    frame(ctx, t, SPAM, status, &notice, body)
}

fn spam_table(lang: Lang, policies: &[Value]) -> Table {
    Table {
        columns: vec![
            col("name", i18n::NAME),
            col("priority", i18n::PRIORITY),
            col("enabled", i18n::ENABLED),
            col("spam_action", i18n::SPAM_ACTION),
            col(
                "high_confidence_spam_action",
                i18n::HIGH_CONFIDENCE_SPAM_ACTION,
            ),
            col("phish_spam_action", i18n::PHISH_ACTION),
            col("bulk_threshold", i18n::BULK_THRESHOLD),
        ],
        rows: policies
            .iter()
            .map(|p| {
                vec![
                    Cell::text(field(p, "name")),
                    Cell::text(field(p, "priority")),
                    Cell::text(yes_no(lang, p, "enabled")),
                    Cell::text(field(p, "spam_action")),
                    Cell::text(field(p, "high_confidence_spam_action")),
                    Cell::text(field(p, "phish_spam_action")),
                    Cell::text(field(p, "bulk_threshold")),
                ]
            })
            .collect(),
        more: false,
    }
}

pub async fn spam_tab(State(s): State<AppState>, ctx: Ctx, Query(q): Query<PageQuery>) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            SPAM,
            q.done.as_deref(),
            async |t, notice| {
                spam_page(
                    s,
                    ctx,
                    &t,
                    &q.table,
                    StatusCode::OK,
                    notice,
                    &SettingForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn spam_csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<PageQuery>) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            SPAM,
            &q.table,
            "spam-policies.csv",
            async |t| {
                let v =
                    value(spam_filter::list(State(s.clone()), ctx.p, Path(t.name.clone())).await)?;
                Ok(spam_table(
                    ctx.lang,
                    v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                ))
            },
        )
        .await
}

pub async fn spam_change(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<SettingForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), SPAM).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let changed = async {
        if f.kind.as_deref() == Some("outbound") {
            let change = setting_change::<outbound_spam::OutboundSpamFilterChange>(&f)?;
            outbound_spam::change(State(s.clone()), ctx.p, Path(t.name.clone()), body(change)?)
                .await
                .map(|_| ())
        } else {
            let change = setting_change::<spam_filter::PolicyChange>(&f)?;
            let policy = given(&f.policy).unwrap_or_else(|| "Default".into());
            spam_filter::change(
                State(s.clone()),
                ctx.p,
                Path((t.name.clone(), policy)),
                body(change)?,
            )
            .await
            .map(|_| ())
        }
    }
    .await;
    match changed {
        Ok(()) => see_other(&done_href(&ctx, &t, SPAM, "changed")),
        Err(e) => {
            spam_page(
                &s,
                &ctx,
                &t,
                &TableParams::default(),
                e.status,
                Notice::error(&e),
                &f,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The connection log.

#[derive(Deserialize, Default)]
pub struct ConnectionsQuery {
    tenant: Option<String>,
    ip: Option<String>,
    start: Option<String>,
    end: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

impl ConnectionsQuery {
    fn filters(&self) -> Vec<(&'static str, String)> {
        let v = |o: &Option<String>| o.clone().unwrap_or_default().trim().to_string();
        vec![
            ("ip", v(&self.ip)),
            ("start", v(&self.start)),
            ("end", v(&self.end)),
        ]
    }
}

/// One page of the log, read by the API's listing (paged in the store's query).
async fn connections_table(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &ConnectionsQuery,
    page: usize,
    page_size: usize,
) -> Result<Table, ApiError> {
    let mut params = json!({
        "tenant": t.name,
        "page": page.to_string(),
        "page_size": page_size.to_string(),
    });
    for (k, v) in q.filters() {
        if !v.is_empty() {
            params[k] = json!(v);
        }
    }
    let params: connections::ConnectionParams = input(params)?;
    let v = value(connections::connections(State(s.clone()), ctx.p, Ok(Query(params))).await)?;
    let tidy = |s: String| s.replace('T', " ").trim_end_matches('Z').to_string();
    Ok(Table {
        columns: vec![
            col("time", i18n::TIME),
            col("ip", i18n::CLIENT_IP),
            col("ptr", i18n::PTR),
            col("helo", i18n::HELO),
            col("stage", i18n::STAGE),
            col("rule", i18n::RULE),
            col("reply", i18n::REPLY),
            col("reason", i18n::REASON),
        ],
        rows: v
            .get("rows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                vec![
                    Cell::text(tidy(field(r, "time"))),
                    Cell::text(field(r, "ip")),
                    Cell::text(field(r, "ptr")),
                    Cell::text(field(r, "helo")),
                    Cell::text(field(r, "stage")),
                    Cell::text(field(r, "rule")),
                    Cell::text(field(r, "reply")),
                    Cell::text(r.pointer("/reason/text").map(text).unwrap_or_default()),
                ]
            })
            .collect(),
        more: v.get("more").and_then(Value::as_bool).unwrap_or(false),
    })
}

pub async fn connections_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ConnectionsQuery>,
) -> Response {
    let (s, ctx, q) = (&s, &ctx, &q);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            CONNECTIONS,
            None,
            async |t, notice| connections_page(s, ctx, &t, q, notice).await,
        )
        .await
}

async fn connections_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &ConnectionsQuery,
    notice: Notice,
) -> Response {
    let lang = ctx.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let filters = html! {
        form.query.panel method="get" action=(CONNECTIONS) {
            @for (k, val) in tenant_query(ctx, t) { input type="hidden" name=(k) value=(val); }
            label { (i18n::CLIENT_IP.get(lang)) input type="text" name="ip" value=(v(&q.ip)); }
            label { (i18n::START.get(lang)) input type="text" name="start" value=(v(&q.start)) placeholder="2026-11-28 09:00"; }
            label { (i18n::END.get(lang)) input type="text" name="end" value=(v(&q.end)) placeholder="2026-11-29"; }
            input type="hidden" name="page_size" value=(q.table.page_size());
            div.actions { button type="submit" { (i18n::SEARCH.get(lang)) } }
        }
    };
    let (page, size) = (q.table.page(), q.table.page_size());
    let mut table = match connections_table(s, ctx, t, q, page, size).await {
        Ok(table) => table,
        Err(e) => return frame(ctx, t, CONNECTIONS, e.status, &Notice::error(&e), filters),
    };
    table.apply(&q.table);
    let mut query = tenant_query(ctx, t);
    query.extend(q.filters());
    let body = html! {
        p.note { (i18n::CONNECTION_LOG_HELP.get(lang)) }
        (filters)
        div #results {
            (table.render(lang, &q.table, CONNECTIONS, &query, &format!("{CONNECTIONS}.csv")))
        }
    };
    frame(ctx, t, CONNECTIONS, StatusCode::OK, &notice, body)
}

pub async fn connections_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ConnectionsQuery>,
) -> Response {
    let (s, ctx, q) = (&s, &ctx, &q);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            CONNECTIONS,
            &q.table,
            "connection-log.csv",
            async |t| connections_table(s, ctx, &t, q, 1, hato_store::TRACE_PAGE_SIZE_MAX).await,
        )
        .await
}
