//! Groups: a tab per type (the API's five), a group's page (members, owners, settings, sender
//! restrictions, join and leave requests), the moderation queue with approve, reject and
//! "approve and stop moderating this sender", and a dynamic group's live preview.
//!
//! Everything goes through the API's handlers (`routes::groups`, `group_members`, `joining`,
//! `moderation`) with the caller's principal: who sees a group, its hidden membership, who may
//! change what (owners, admins, the security-group manager check and its bypass, role groups
//! for global admins only), who moderates — all exactly as the API decides. Plain users see the
//! page too: they manage the groups they own, join and leave, and moderate what they moderate.
//! The list of groups comes from the tenant's directory index (the in-memory snapshot routing
//! reads), so paging it reads no table.

use super::i18n::{self, Lang, Text};
use super::layout::{self, Nav};
use super::people::{
    Fields, answer_json, check_csrf, csrf_field, done_note, error_note, field, given, input, list,
    outcome, refusal, ticked,
};
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, query_string, see_other, url_encode};
use crate::error::ApiError;
use crate::routes::{group_members, groups as api, joining, moderation};
use crate::state::{AppState, Path as ApiPath, TenantFilter};
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Role;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The API's group types, in the tabs' order, with their names in the admin centre.
static TYPES: [(&str, Text); 5] = [
    ("distribution", i18n::G_DISTRIBUTION),
    ("m365", i18n::G_M365),
    ("mail-security", i18n::G_MAIL_SECURITY),
    ("security", i18n::G_SECURITY),
    ("dynamic", i18n::G_DYNAMIC),
];

/// The messages `done=` may name.
const DONE: &[(&str, Text)] = &[
    ("created", i18n::P_CREATED),
    ("updated", i18n::P_SAVED),
    ("deleted", i18n::P_DELETED),
    ("joined", i18n::G_JOINED),
    ("left", i18n::G_LEFT),
    ("requested", i18n::G_REQUESTED),
    ("already-member", i18n::G_ALREADY_MEMBER),
    ("approved", i18n::G_APPROVED),
    ("rejected", i18n::G_REJECTED),
    ("bypassed", i18n::G_BYPASSED),
];

fn type_label(kind: &str) -> Text {
    TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, t)| *t)
        .unwrap_or(i18n::G_DISTRIBUTION)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text_of).collect())
        .unwrap_or_default()
}

/// How the API finds a group: its address, or its name for one without.
fn ident_of(g: &Value) -> String {
    match g["address"].as_str() {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => text_of(&g["name"]),
    }
}

fn group_href(ident: &str) -> String {
    format!("/groups/g/{}", url_encode(ident))
}

/// Who may create a group of `kind`, as `POST /api/v1/groups` decides (users: distribution and
/// Microsoft 365 groups); only to decide whether to show the form.
fn may_create(ctx: &Ctx, kind: &str) -> bool {
    ctx.p.is_admin() || matches!(kind, "distribution" | "m365")
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    done: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

fn tabs(lang: Lang, current: &str) -> Markup {
    html! {
        nav.tabs aria-label=(i18n::GROUPS.get(lang)) {
            @for &(kind, label) in TYPES.iter() {
                @let href = format!("/groups?type={kind}");
                @if kind == current {
                    a href=(href) aria-current="page" data-type=(kind) { (label.get(lang)) }
                } @else {
                    a href=(href) data-type=(kind) { (label.get(lang)) }
                }
            }
            @if current == "moderation" {
                a href="/groups/moderation" aria-current="page" { (i18n::G_MODERATION.get(lang)) }
            } @else {
                a href="/groups/moderation" { (i18n::G_MODERATION.get(lang)) }
            }
        }
    }
}

fn group_table(lang: Lang, groups: &[Value], links: bool) -> Table {
    let col = |key, label| Column { key, label };
    Table {
        columns: vec![
            col("name", i18n::G_NAME),
            col("address", i18n::P_EMAIL_ADDRESS),
            col("owners", i18n::G_OWNERS),
            col("members", i18n::G_MEMBER_COUNT),
        ],
        rows: groups
            .iter()
            .map(|g| {
                let members = match &g["members"] {
                    Value::Array(a) => a.len().to_string(),
                    Value::Null => "—".into(),
                    _ => i18n::G_HIDDEN.get(lang).into(),
                };
                vec![
                    Cell {
                        text: text_of(&g["name"]),
                        href: links.then(|| group_href(&ident_of(g))),
                        class: None,
                    },
                    Cell::text(text_of(&g["address"])),
                    Cell::text(texts(&g["owners"]).join(", ")),
                    Cell::text(members),
                ]
            })
            .collect(),
        more: false,
    }
}

/// The groups of one type the caller sees (`GET /api/v1/groups`).
async fn groups_of(s: &AppState, ctx: &Ctx, kind: &str) -> Result<Vec<Value>, ApiError> {
    let Json(all) = api::list_groups(
        State(s.clone()),
        ctx.p,
        Query(TenantFilter { tenant: None }),
    )
    .await?;
    Ok(all
        .into_iter()
        .filter(|g| g["type"].as_str() == Some(kind))
        .collect())
}

fn kind_of(q: &Option<String>) -> &'static str {
    let asked = q.as_deref().unwrap_or("");
    TYPES
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == asked)
        .unwrap_or("distribution")
}

/// The tenant field the operator fills (every other caller's tenant is their own).
fn tenant_field(ctx: &Ctx, lang: Lang, value: &str) -> Markup {
    html! {
        @if ctx.p.role == Role::Operator {
            label { (i18n::P_TENANT.get(lang))
                input #preview-tenant type="text" name="tenant" value=(value) required; }
        }
    }
}

/// A dynamic group's filter box: typing shows the members it would have (htmx posts the form
/// to `/groups/preview` and puts the answer in `#preview`); without JavaScript, the Preview
/// button ([`preview_button`]) posts the same form there and the answer is a page.
fn filter_box(lang: Lang, value: &str, preview: Markup) -> Markup {
    html! {
        label { (i18n::G_FILTER.get(lang))
            textarea name="recipient_filter" rows="3" hx-post="/groups/preview"
                hx-trigger="input changed delay:400ms" hx-target="#preview" hx-swap="innerHTML" { (value) }
        }
        p.note { (i18n::G_FILTER_HINT.get(lang)) }
        div #preview.preview aria-live="polite" { (preview) }
    }
}

/// The Preview button of a form with a filter box: after the form's own button, so that Enter
/// in a field still submits the form (a form's default button is its first).
fn preview_button(lang: Lang) -> Markup {
    html! {
        button.secondary type="submit" formaction="/groups/preview" formnovalidate { (i18n::G_PREVIEW.get(lang)) }
    }
}

async fn list_page(
    s: &AppState,
    ctx: &Ctx,
    q: &ListQuery,
    error: Option<&str>,
    values: &Fields,
) -> Response {
    let lang = ctx.lang;
    let kind = kind_of(&q.kind);
    let groups = match groups_of(s, ctx, kind).await {
        Ok(g) => g,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let mut table = group_table(lang, &groups, true);
    table.apply(&q.table);
    // Paged here: the rows are the directory index's, already in memory.
    let (page, size) = (q.table.page(), q.table.page_size());
    let start = (page - 1).saturating_mul(size).min(table.rows.len());
    let end = start.saturating_add(size).min(table.rows.len());
    table.more = end < table.rows.len();
    table.rows = table.rows.drain(start..end).collect();
    let query = [("type", kind.to_string())];
    let body = html! {
        (tabs(lang, kind))
        (done_note(lang, q.done.as_deref(), DONE))
        @if may_create(ctx, kind) {
            details.panel open[error.is_some()] {
                summary { (i18n::G_ADD_GROUP.get(lang)) " — " (type_label(kind).get(lang)) }
                (error_note(error))
                form.stack #new-group method="post" action="/groups" {
                    (csrf_field(ctx))
                    input type="hidden" name="type" value=(kind);
                    (tenant_field(ctx, lang, &field(values, "tenant")))
                    label { (i18n::G_NAME.get(lang))
                        input type="text" name="name" value=(field(values, "name")); }
                    @if kind != "security" {
                        label { (i18n::P_EMAIL_ADDRESS.get(lang))
                            input type="text" name="address" value=(field(values, "address")) required; }
                    }
                    label { (i18n::G_OWNERS.get(lang))
                        textarea name="owners" rows="2" placeholder=(i18n::G_ONE_A_LINE.get(lang)) { (field(values, "owners")) } }
                    @if kind == "dynamic" {
                        (filter_box(lang, &field(values, "recipient_filter"), html! {}))
                    } @else {
                        label { (i18n::G_MEMBERS.get(lang))
                            textarea name="members" rows="3" placeholder=(i18n::G_ONE_A_LINE.get(lang)) { (field(values, "members")) } }
                    }
                    div.actions {
                        button type="submit" { (i18n::P_CREATE.get(lang)) }
                        @if kind == "dynamic" { " " (preview_button(lang)) }
                    }
                }
            }
        }
        div #results hx-boost="true" hx-target="#results" hx-select="#results" hx-swap="outerHTML" {
            (table.render(lang, &q.table, "/groups", &query, "/groups.csv"))
        }
    };
    layout::page(ctx, Some(Nav::Groups), i18n::GROUPS.get(lang), body).into_response()
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    list_page(&s, &ctx, &q, None, &Fields::new()).await
}

pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let groups = match groups_of(&s, &ctx, kind_of(&q.kind)).await {
        Ok(g) => g,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let mut table = group_table(ctx.lang, &groups, false);
    table.apply(&TableParams {
        filter: q.table.filter.clone(),
        sort: q.table.sort.clone(),
        desc: q.table.desc.clone(),
        ..Default::default()
    });
    super::table::csv_response("groups.csv", table.csv(ctx.lang))
}

/// `POST /groups`: a new group (`POST /api/v1/groups`).
pub async fn create(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let kind = field(&f, "type");
    let mut v = Map::new();
    v.insert("type".into(), json!(kind));
    for k in ["name", "address", "tenant", "recipient_filter"] {
        if let Some(x) = given(&f, k) {
            v.insert(k.into(), json!(x));
        }
    }
    for k in ["owners", "members"] {
        let l = list(&field(&f, k));
        if !l.is_empty() {
            v.insert(k.into(), json!(l));
        }
    }
    let result = match input(Value::Object(v)) {
        Ok(i) => api::create_group(State(s.clone()), ctx.p, Ok(Json(i))).await,
        Err(e) => Err(e),
    };
    // The closures below share the request's values.
    let (s, ctx, f) = (&s, &ctx, &f);
    outcome(
        ctx,
        result,
        |r| async move {
            let g = answer_json(r).await;
            see_other(&format!("{}?done=created", group_href(&ident_of(&g))))
        },
        |error| async move {
            let q = ListQuery {
                kind: Some(kind),
                ..Default::default()
            };
            list_page(s, ctx, &q, Some(&error), f).await
        },
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    done: Option<String>,
}

/// The members a filter has now, from the API's preview (the directory's own evaluator).
async fn preview_of(
    s: &AppState,
    ctx: &Ctx,
    tenant: Option<String>,
    filter: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut v = Map::new();
    v.insert("filter".into(), json!(filter));
    if let Some(t) = tenant {
        v.insert("tenant".into(), json!(t));
    }
    let i = input(Value::Object(v))?;
    let Json(found) = api::preview(State(s.clone()), ctx.p, Ok(Json(i))).await?;
    Ok(found)
}

fn preview_list(lang: Lang, found: &Result<Vec<Value>, ApiError>) -> Markup {
    html! {
        @match found {
            Ok(rows) => {
                p.note { (i18n::G_PREVIEW_COUNT.get(lang).replace("{}", &rows.len().to_string())) }
                ul.items.preview-list {
                    @for r in rows.iter().take(200) {
                        li { (text_of(&r["name"])) " " span.note { "<" (text_of(&r["address"])) ">" } }
                    }
                }
            }
            Err(e) => { p.error role="alert" { (e.message) } }
        }
    }
}

/// The settings each type of group has in the admin centre (what the API lets each change).
fn has(kind: &str, what: &str) -> bool {
    let mail = kind != "security";
    match what {
        "sender" | "moderation" | "reports" => mail,
        "join" => matches!(kind, "distribution" | "mail-security" | "security"),
        "m365" => kind == "m365",
        "filter" => kind == "dynamic",
        _ => false,
    }
}

/// A checkbox the global admins get on forms that change a group: Exchange's
/// BypassSecurityGroupManagerCheck (the API refuses it to everyone else).
fn bypass_box(ctx: &Ctx, lang: Lang) -> Markup {
    html! {
        @if ctx.p.is_global_admin() {
            label.check {
                input type="checkbox" name="bypass_security_group_manager_check" value="1";
                (i18n::G_BYPASS_CHECK.get(lang))
            }
        }
    }
}

async fn group_page(
    s: &AppState,
    ctx: &Ctx,
    ident: &str,
    done: Option<&str>,
    error: Option<&str>,
    values: &Fields,
) -> Response {
    let lang = ctx.lang;
    let path = || ApiPath(ident.to_string());
    let g = match api::get_group(State(s.clone()), ctx.p, path()).await {
        Ok(Json(g)) => g,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let members = group_members::list_members(State(s.clone()), ctx.p, path()).await;
    // Join and leave requests: shown to those the API shows them to (its managers).
    let requests = joining::list_requests(State(s.clone()), ctx.p, path())
        .await
        .map(|Json(r)| r)
        .ok();
    let kind = text_of(&g["type"]);
    let here = group_href(&ident_of(&g));
    let action = field(values, "action");
    let failed_here = |form: &str| error.is_some() && action == form;
    let val = |form: &str, name: &str, stored: String| -> String {
        if failed_here(form) {
            field(values, name)
        } else {
            stored
        }
    };
    let lines = |name: &str| texts(&g[name]).join("\n");
    let check = |name: &str| -> bool {
        if failed_here("settings") {
            ticked(values, name)
        } else {
            g[name].as_bool() == Some(true)
        }
    };
    let hidden = |act: &'static str| {
        html! { (csrf_field(ctx)) input type="hidden" name="action" value=(act); }
    };
    let tenant = text_of(&g["tenant"]);
    let tenant_hidden = html! {
        @if ctx.p.role == Role::Operator { input #preview-tenant type="hidden" name="tenant" value=(tenant); }
    };
    let preview = if has(&kind, "filter") && ctx.p.is_admin() {
        let filter = val(
            "filter",
            "recipient_filter",
            text_of(&g["recipient_filter"]),
        );
        let tenant = (ctx.p.role == Role::Operator).then(|| tenant.clone());
        Some((filter.clone(), preview_of(s, ctx, tenant, &filter).await))
    } else {
        None
    };
    let restriction = |name: &str| {
        let current = val("settings", name, text_of(&g[name]));
        html! {
            select name=(name) {
                @for (v, label) in [("open", i18n::G_OPEN), ("closed", i18n::G_CLOSED), ("approval-required", i18n::G_APPROVAL)] {
                    option value=(v) selected[current == v] { (label.get(lang)) }
                }
            }
        }
    };
    let body = html! {
        p { a href={ "/groups?type=" (kind) } { "← " (type_label(&kind).get(lang)) } }
        (done_note(lang, done, DONE))
        (error_note(error))
        div.panel {
            dl.facts {
                dt { (i18n::G_NAME.get(lang)) } dd.group-name { (text_of(&g["name"])) }
                dt { (i18n::P_EMAIL_ADDRESS.get(lang)) } dd { (text_of(&g["address"])) }
                dt { (i18n::G_TYPE.get(lang)) } dd { (type_label(&kind).get(lang)) }
                dt { (i18n::P_TENANT.get(lang)) } dd { (tenant) }
            }
            @if ctx.p.mailbox_id.is_some() && kind != "dynamic" {
                div.actions {
                    form.inline method="post" action=(here) { (hidden("join")) button.secondary type="submit" { (i18n::G_JOIN.get(lang)) } }
                    form.inline method="post" action=(here) { (hidden("leave")) button.secondary type="submit" { (i18n::G_LEAVE.get(lang)) } }
                }
            }
        }
        h2 { (i18n::G_OWNERS.get(lang)) }
        div.panel {
            ul.items #owners {
                @for o in texts(&g["owners"]) {
                    li {
                        span { (o) }
                        form.inline method="post" action=(here) {
                            (hidden("remove_owner")) input type="hidden" name="who" value=(o);
                            button.small type="submit" { (i18n::P_REMOVE.get(lang)) }
                        }
                    }
                }
            }
            form.inline method="post" action=(here) {
                (hidden("add_owner"))
                label { (i18n::G_ADD_OWNER.get(lang)) " "
                    input type="text" name="who" value=(val("add_owner", "who", String::new())) required; }
                " " (bypass_box(ctx, lang)) " " button type="submit" { (i18n::P_ADD.get(lang)) }
            }
        }
        h2 { (i18n::G_MEMBERS.get(lang)) }
        div.panel {
            @match &members {
                Err(e) => { p.note { (e.message) } }
                Ok(Json(list)) => {
                    @if list.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
                    @else {
                        table.data #members {
                            thead { tr { th { (i18n::P_DISPLAY_NAME.get(lang)) } th { (i18n::P_EMAIL_ADDRESS.get(lang)) } th {} } }
                            tbody {
                                @for m in list {
                                    @let who = if m["address"].is_string() { text_of(&m["address"]) } else { text_of(&m["name"]) };
                                    tr {
                                        td { (text_of(&m["name"])) }
                                        td { (text_of(&m["address"])) }
                                        td {
                                            @if kind != "dynamic" {
                                                form.inline method="post" action=(here) {
                                                    (hidden("remove_member")) input type="hidden" name="who" value=(who);
                                                    button.small type="submit" { (i18n::P_REMOVE.get(lang)) }
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
            @if kind != "dynamic" {
                form.inline #add-member method="post" action=(here) {
                    (hidden("add_member"))
                    label { (i18n::G_ADD_MEMBER.get(lang)) " "
                        input type="text" name="who" value=(val("add_member", "who", String::new())) required; }
                    " " (bypass_box(ctx, lang)) " " button type="submit" { (i18n::P_ADD.get(lang)) }
                }
            }
        }
        @if let Some((filter, found)) = &preview {
            h2 { (i18n::G_FILTER.get(lang)) }
            form.stack.panel #filter method="post" action=(here) {
                (hidden("filter")) (tenant_hidden)
                (filter_box(lang, filter, preview_list(lang, found)))
                div.actions { button type="submit" { (i18n::P_SAVE.get(lang)) } " " (preview_button(lang)) }
            }
        }
        @if let Some(reqs) = &requests {
            h2 { (i18n::G_REQUESTS.get(lang)) }
            div.panel {
                @if reqs.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
                @else {
                    table.data #requests {
                        thead { tr { th { (i18n::P_EMAIL_ADDRESS.get(lang)) } th { (i18n::G_REQUEST_KIND.get(lang)) } th { (i18n::TIME.get(lang)) } th {} } }
                        tbody {
                            @for r in reqs {
                                tr {
                                    td { (text_of(&r["mailbox"])) }
                                    td { @if text_of(&r["kind"]) == "depart" { (i18n::G_LEAVE.get(lang)) } @else { (i18n::G_JOIN.get(lang)) } }
                                    td { (text_of(&r["created"]).replace('T', " ").trim_end_matches('Z')) }
                                    td {
                                        @for (act, label) in [("approve_request", i18n::G_APPROVE), ("reject_request", i18n::G_REJECT)] {
                                            form.inline method="post" action=(here) {
                                                (hidden(act)) input type="hidden" name="id" value=(text_of(&r["id"]));
                                                button.small type="submit" { (label.get(lang)) }
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
        h2 { (i18n::G_SETTINGS.get(lang)) }
        form.stack.panel #settings method="post" action=(here) {
            (hidden("settings"))
            label { (i18n::G_NAME.get(lang))
                input type="text" name="name" value=(val("settings", "name", text_of(&g["name"]))); }
            @if has(&kind, "join") {
                label { (i18n::G_JOIN_RESTRICTION.get(lang)) (restriction("member_join_restriction")) }
                label { (i18n::G_DEPART_RESTRICTION.get(lang)) (restriction("member_depart_restriction")) }
            }
            @if has(&kind, "m365") {
                @let access = val("settings", "access_type", text_of(&g["access_type"]));
                label { (i18n::G_PRIVACY.get(lang))
                    select name="access_type" {
                        option value="public" selected[access == "public"] { (i18n::G_PUBLIC.get(lang)) }
                        option value="private" selected[access == "private"] { (i18n::G_PRIVATE.get(lang)) }
                    }
                }
                label.check { input type="checkbox" name="auto_subscribe_new_members" value="1" checked[check("auto_subscribe_new_members")]; (i18n::G_AUTO_SUBSCRIBE.get(lang)) }
            }
            @if has(&kind, "sender") {
                h3 { (i18n::G_DELIVERY.get(lang)) }
                label.check { input type="checkbox" name="require_sender_authentication" value="1" checked[check("require_sender_authentication")]; (i18n::G_SENDER_AUTH.get(lang)) }
                label { (i18n::G_ACCEPT_FROM.get(lang))
                    textarea name="accept_messages_only_from" rows="2" { (val("settings", "accept_messages_only_from", lines("accept_messages_only_from"))) } }
                label { (i18n::G_REJECT_FROM.get(lang))
                    textarea name="reject_messages_from" rows="2" { (val("settings", "reject_messages_from", lines("reject_messages_from"))) } }
            }
            @if has(&kind, "moderation") {
                h3 { (i18n::G_MODERATION.get(lang)) }
                label.check { input type="checkbox" name="moderation_enabled" value="1" checked[check("moderation_enabled")]; (i18n::G_MODERATION_ENABLED.get(lang)) }
                label { (i18n::G_MODERATED_BY.get(lang))
                    textarea name="moderated_by" rows="2" { (val("settings", "moderated_by", lines("moderated_by"))) } }
                label { (i18n::G_BYPASS_FROM.get(lang))
                    textarea name="bypass_moderation_from" rows="2" { (val("settings", "bypass_moderation_from", lines("bypass_moderation_from"))) } }
            }
            @if has(&kind, "reports") {
                label.check { input type="checkbox" name="report_to_originator_enabled" value="1" checked[check("report_to_originator_enabled")]; (i18n::G_REPORT_ORIGINATOR.get(lang)) }
                label.check { input type="checkbox" name="report_to_manager_enabled" value="1" checked[check("report_to_manager_enabled")]; (i18n::G_REPORT_MANAGER.get(lang)) }
            }
            p.note { (i18n::G_ONE_A_LINE.get(lang)) }
            (bypass_box(ctx, lang))
            div.actions { button type="submit" { (i18n::P_SAVE.get(lang)) } }
        }
        h2 { (i18n::G_DELETE_GROUP.get(lang)) }
        form.inline.panel.danger method="post" action=(here) {
            (hidden("delete")) (bypass_box(ctx, lang)) " "
            button.danger type="submit" { (i18n::P_DELETE.get(lang)) }
        }
    };
    let title = text_of(&g["name"]);
    layout::page(ctx, Some(Nav::Groups), &title, body).into_response()
}

pub async fn group(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    group_page(&s, &ctx, &ident, q.done.as_deref(), None, &Fields::new()).await
}

/// The `PATCH /api/v1/groups/{group}` body of the settings form: the fields the group's type
/// shows, the name only when it changes.
fn settings_body(g: &Value, f: &Fields) -> Value {
    let kind = text_of(&g["type"]);
    let mut v = Map::new();
    let name = field(f, "name");
    if !name.is_empty() && name != text_of(&g["name"]) {
        v.insert("name".into(), json!(name));
    }
    // Selects are always sent by a browser; a field left out is left as it is.
    if has(&kind, "join") {
        for k in ["member_join_restriction", "member_depart_restriction"] {
            if let Some(x) = given(f, k) {
                v.insert(k.into(), json!(x));
            }
        }
    }
    if has(&kind, "m365") {
        if let Some(x) = given(f, "access_type") {
            v.insert("access_type".into(), json!(x));
        }
        v.insert(
            "auto_subscribe_new_members".into(),
            json!(ticked(f, "auto_subscribe_new_members")),
        );
    }
    if has(&kind, "sender") {
        v.insert(
            "require_sender_authentication".into(),
            json!(ticked(f, "require_sender_authentication")),
        );
        for k in ["accept_messages_only_from", "reject_messages_from"] {
            if f.contains_key(k) {
                v.insert(k.into(), json!(list(&field(f, k))));
            }
        }
    }
    if has(&kind, "moderation") {
        v.insert(
            "moderation_enabled".into(),
            json!(ticked(f, "moderation_enabled")),
        );
        for k in ["moderated_by", "bypass_moderation_from"] {
            if f.contains_key(k) {
                v.insert(k.into(), json!(list(&field(f, k))));
            }
        }
    }
    if has(&kind, "reports") {
        for k in ["report_to_originator_enabled", "report_to_manager_enabled"] {
            v.insert(k.into(), json!(ticked(f, k)));
        }
    }
    if ticked(f, "bypass_security_group_manager_check") {
        v.insert("bypass_security_group_manager_check".into(), json!(true));
    }
    Value::Object(v)
}

/// One action of the group page, through the API handler it maps to; `Ok(done)` names the note
/// shown after the redirect.
async fn group_action(
    s: &AppState,
    ctx: &Ctx,
    ident: &str,
    f: &Fields,
) -> Result<String, ApiError> {
    let st = || State(s.clone());
    let path = || ApiPath(ident.to_string());
    let p = ctx.p;
    let bypass = ticked(f, "bypass_security_group_manager_check");
    let change = |add: bool| {
        let who = field(f, "who");
        let (a, r) = if add {
            (vec![who], vec![])
        } else {
            (vec![], vec![who])
        };
        input::<group_members::ListChange>(
            json!({ "add": a, "remove": r, "bypass_security_group_manager_check": bypass }),
        )
    };
    match field(f, "action").as_str() {
        "settings" => {
            let Json(g) = api::get_group(st(), p, path()).await?;
            let i = input(settings_body(&g, f))?;
            let _ = api::update_group(st(), p, path(), Ok(Json(i))).await?;
            Ok("updated".into())
        }
        "filter" => {
            let i = input(json!({ "recipient_filter": field(f, "recipient_filter") }))?;
            let _ = api::update_group(st(), p, path(), Ok(Json(i))).await?;
            Ok("updated".into())
        }
        act @ ("add_member" | "remove_member") => {
            let i = change(act == "add_member")?;
            let _ = group_members::change_members(st(), p, path(), Ok(Json(i))).await?;
            Ok("updated".into())
        }
        act @ ("add_owner" | "remove_owner") => {
            let i = change(act == "add_owner")?;
            let _ = group_members::change_owners(st(), p, path(), Ok(Json(i))).await?;
            Ok("updated".into())
        }
        act @ ("approve_request" | "reject_request") => {
            let id: i64 = field(f, "id")
                .parse()
                .map_err(|_| ApiError::bad_request("id: not a request's number"))?;
            let decision = if act == "approve_request" {
                "approve"
            } else {
                "reject"
            };
            let _ =
                joining::decide_request(st(), p, ApiPath((ident.to_string(), id, decision.into())))
                    .await?;
            Ok(if act == "approve_request" {
                "approved"
            } else {
                "rejected"
            }
            .into())
        }
        act @ ("join" | "leave") => {
            let Json(r) = if act == "join" {
                joining::join(st(), p, path()).await?
            } else {
                joining::leave(st(), p, path()).await?
            };
            Ok(text_of(&r["result"]))
        }
        "delete" => {
            let q = input(json!({ "bypass_security_group_manager_check": bypass }))?;
            api::delete_group(st(), p, path(), Query(q)).await?;
            Ok("deleted".into())
        }
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    }
}

/// `POST /groups/g/{group}`: the page's forms, each naming its `action`.
pub async fn group_post(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(ident): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let result = group_action(&s, &ctx, &ident, &f).await;
    // The closures below share the request's values.
    let (s, ctx, f, ident) = (&s, &ctx, &f, &ident);
    outcome(
        ctx,
        result,
        |done| async move {
            if done == "deleted" {
                return see_other("/groups?done=deleted");
            }
            // A rename changes how the group is found: go to it by its new name.
            let to = match api::get_group(State(s.clone()), ctx.p, ApiPath(ident.clone())).await {
                Ok(_) => ident.clone(),
                Err(_) => given(f, "name").unwrap_or_else(|| ident.clone()),
            };
            see_other(&format!(
                "{}?{}",
                group_href(&to),
                query_string(&[("done", done)])
            ))
        },
        |error| async move { group_page(s, ctx, ident, None, Some(&error), f).await },
    )
    .await
}

/// `POST /groups/preview`: the members a filter would have. To htmx (`HX-Request`), the list
/// alone for `#preview`; without JavaScript, a page with the filter and the list.
pub async fn preview(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let lang = ctx.lang;
    let filter = field(&f, "recipient_filter");
    let found = preview_of(&s, &ctx, given(&f, "tenant"), &filter).await;
    if let Err(e) = &found
        && let Some(r) = refusal(&ctx, e)
    {
        return r;
    }
    if headers.contains_key("hx-request") {
        // htmx swaps only 2xx answers: a bad filter is the list's own message.
        return axum::response::Html(preview_list(lang, &found).into_string()).into_response();
    }
    let body = html! {
        form.stack.panel method="post" action="/groups/preview" {
            (csrf_field(&ctx))
            (tenant_field(&ctx, lang, &field(&f, "tenant")))
            (filter_box(lang, &filter, preview_list(lang, &found)))
            div.actions { (preview_button(lang)) }
        }
    };
    let status = match &found {
        Ok(_) => axum::http::StatusCode::OK,
        Err(e) => e.status,
    };
    (
        status,
        layout::page(&ctx, Some(Nav::Groups), i18n::G_PREVIEW.get(lang), body),
    )
        .into_response()
}

// The moderation queue.

#[derive(Deserialize, Default)]
pub struct ModerationQuery {
    done: Option<String>,
    /// `pending` (the default), `approved`, `rejected`, `expired` or `all`.
    state: Option<String>,
}

pub async fn moderation_page(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ModerationQuery>,
) -> Response {
    let lang = ctx.lang;
    let state = q.state.clone().unwrap_or_else(|| "pending".into());
    let filter = if state == "all" {
        json!({})
    } else {
        json!({ "state": state })
    };
    let held = match input(filter) {
        Ok(f) => moderation::moderation_list(State(s.clone()), ctx.p, Query(f)).await,
        Err(e) => Err(e),
    };
    let held = match held {
        Ok(Json(h)) => h,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let body = html! {
        (tabs(lang, "moderation"))
        (done_note(lang, q.done.as_deref(), DONE))
        form.inline method="get" action="/groups/moderation" {
            label { (i18n::STATUS.get(lang)) " "
                select name="state" {
                    @for (v, label) in [("pending", i18n::G_PENDING), ("approved", i18n::G_APPROVED_STATE), ("rejected", i18n::G_REJECTED_STATE), ("expired", i18n::G_EXPIRED), ("all", i18n::ANY)] {
                        option value=(v) selected[state == v] { (label.get(lang)) }
                    }
                }
            }
            " " button type="submit" { (i18n::APPLY.get(lang)) }
        }
        @if held.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
        @else {
            table.data #held {
                thead { tr {
                    th { (i18n::RECEIVED.get(lang)) } th { (i18n::GROUPS.get(lang)) } th { (i18n::SENDER.get(lang)) }
                    th { (i18n::SUBJECT.get(lang)) } th { (i18n::G_EXPIRES.get(lang)) } th { (i18n::STATUS.get(lang)) } th {}
                } }
                tbody {
                    @for h in &held {
                        @let id = text_of(&h["id"]);
                        tr {
                            td { (text_of(&h["received"]).replace('T', " ").trim_end_matches('Z')) }
                            td { (text_of(&h["group"])) }
                            td { (text_of(&h["sender"])) }
                            td.subject { (text_of(&h["subject"])) }
                            td { (text_of(&h["expires"]).replace('T', " ").trim_end_matches('Z')) }
                            td { (text_of(&h["state"])) }
                            td {
                                @if h["state"].as_str() == Some("pending") {
                                    form.decide method="post" action={ "/groups/moderation/" (id) } {
                                        (csrf_field(&ctx))
                                        input type="text" name="comment" placeholder=(i18n::G_COMMENT.get(lang)) maxlength="1000";
                                        button.small type="submit" name="decision" value="approve" { (i18n::G_APPROVE.get(lang)) }
                                        button.small type="submit" name="decision" value="approve_bypass" { (i18n::G_APPROVE_BYPASS.get(lang)) }
                                        button.small.danger type="submit" name="decision" value="reject" { (i18n::G_REJECT.get(lang)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, Some(Nav::Groups), i18n::G_MODERATION.get(lang), body).into_response()
}

/// `POST /groups/moderation/{id}`: a moderator's decision (`POST /api/v1/moderation/{id}/…`).
pub async fn moderation_post(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let Ok(id) = id.parse::<i64>() else {
        return error_page(
            Some(&ctx),
            ctx.lang,
            ApiError::not_found(format!("held message {id} not found")),
        );
    };
    let (decision, bypass, done) = match field(&f, "decision").as_str() {
        "approve" => ("approve", false, "approved"),
        "approve_bypass" => ("approve", true, "bypassed"),
        "reject" => ("reject", false, "rejected"),
        other => {
            return error_page(
                Some(&ctx),
                ctx.lang,
                ApiError::bad_request(format!("decision {other:?}: use approve or reject")),
            );
        }
    };
    let result = match input(json!({ "comment": field(&f, "comment"), "bypass_sender": bypass })) {
        Ok(d) => {
            moderation::moderation_decide(
                State(s.clone()),
                ctx.p,
                ApiPath((id, decision.to_string())),
                Some(Json(d)),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("/groups/moderation?done={done}")),
        Err(e) => error_page(Some(&ctx), ctx.lang, e),
    }
}
