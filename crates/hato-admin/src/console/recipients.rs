//! Recipients: mailboxes (list, create, attributes, aliases, quota, password, permissions,
//! removal) and mail contacts (list, create, removal).
//!
//! Authorization is the API's: the lists need an admin role (`require_admin`, as `GET
//! /api/v1/mailboxes` and `/contacts`) over the API's scope (`listing_scope`: the caller's
//! tenant, every tenant for the operator); every action is the API handler's own function
//! (`routes::mailboxes`, `routes::contacts`, `routes::permissions`) called with the caller's
//! principal, so a recipient admin is refused an admin's password exactly as the API refuses
//! it. The lists are paged in the store query (`MailboxStore::mailbox_page`), sorted and
//! filtered there: a tenant of 100,000 mailboxes costs one page.

use super::i18n::{self, Lang};
use super::layout::{self, Nav};
use super::people::{
    Fields, answer_json, check_csrf, csrf_field, done_note, error_note, field, given, input,
    outcome, ticked,
};
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, query_string, see_other, url_encode};
use crate::error::ApiError;
use crate::routes::{contacts as contacts_api, mailboxes as api, permissions as perm_api};
use crate::state::{AppState, Path as ApiPath, listing_scope, require_admin};
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hato_core::directory::{Contact, Mailbox};
use hato_store::{RECIPIENT_PAGE_MAX, RecipientPage, RecipientSort};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The list's parameters: the table's, and the note of the last action.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    done: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// The messages `done=` may name.
const DONE: &[(&str, i18n::Text)] = &[
    ("created", i18n::P_CREATED),
    ("updated", i18n::P_SAVED),
    ("deleted", i18n::P_DELETED),
    ("password", i18n::P_PASSWORD_SET),
    ("alias", i18n::P_SAVED),
    ("permission", i18n::P_SAVED),
];

/// The most rows one CSV export holds (read a page of 1,000 at a time).
const CSV_ROWS: usize = 100_000;

fn sort_of(t: &TableParams) -> RecipientSort {
    match t.sort.as_deref() {
        Some("display_name") => RecipientSort::DisplayName,
        Some("type") => RecipientSort::Type,
        Some("quota_mb") => RecipientSort::Quota,
        Some("used") => RecipientSort::Used,
        _ => RecipientSort::Address,
    }
}

/// The store's page for the table's parameters, within `tenant` (the API's listing scope).
fn page_query(tenant: Option<i64>, t: &TableParams) -> RecipientPage {
    RecipientPage {
        tenant,
        filter: t.filter.clone().unwrap_or_default(),
        sort: sort_of(t),
        descending: t.desc.as_deref() == Some("1"),
        offset: (t.page() - 1).saturating_mul(t.page_size()),
        limit: t.page_size(),
    }
}

fn mailbox_href(address: &str) -> String {
    format!("/recipients/mailbox/{}", url_encode(address))
}

fn mailbox_table(lang: Lang, rows: Vec<Mailbox>, more: bool, links: bool) -> Table {
    let col = |key, label| Column { key, label };
    Table {
        columns: vec![
            col("display_name", i18n::P_DISPLAY_NAME),
            col("address", i18n::P_EMAIL_ADDRESS),
            col("type", i18n::P_RECIPIENT_TYPE),
            col("quota_mb", i18n::P_QUOTA_MB),
            col("used", i18n::P_USED_MB),
        ],
        rows: rows
            .into_iter()
            .map(|m| {
                let kind = match m.mailbox_type.as_str() {
                    "shared" => i18n::P_SHARED_MAILBOX.get(lang),
                    _ => i18n::P_USER_MAILBOX.get(lang),
                };
                vec![
                    Cell {
                        href: links.then(|| mailbox_href(&m.address)),
                        text: m.display_name,
                        class: None,
                    },
                    Cell::text(m.address),
                    Cell::text(kind),
                    Cell::text((m.quota_bytes / (1024 * 1024)).to_string()),
                    Cell::text(format!("{:.1}", m.used_bytes as f64 / (1024.0 * 1024.0))),
                ]
            })
            .collect(),
        more,
    }
}

/// The tabs of the Recipients page.
fn tabs(lang: Lang, current: &str) -> Markup {
    html! {
        nav.tabs aria-label=(i18n::RECIPIENTS.get(lang)) {
            @for (path, label) in [("/recipients", i18n::P_MAILBOXES), ("/recipients/contacts", i18n::P_CONTACTS)] {
                @if path == current {
                    a href=(path) aria-current="page" { (label.get(lang)) }
                } @else {
                    a href=(path) { (label.get(lang)) }
                }
            }
        }
    }
}

/// The admin check and scope of `GET /api/v1/mailboxes`, then one page from the store.
async fn mailbox_rows(
    s: &AppState,
    ctx: &Ctx,
    t: &TableParams,
) -> Result<(Vec<Mailbox>, bool), ApiError> {
    let p = ctx.p;
    require_admin(&p)?;
    let t = t.clone();
    s.blocking(move |s| {
        let tenant = listing_scope(s, &p, None)?;
        Ok(s.store.mailbox_page(&page_query(tenant, &t))?)
    })
    .await
}

/// The Mailboxes tab: the list and the form of a new mailbox (`error` and `values` after a
/// refused creation).
async fn mailboxes_page(
    s: &AppState,
    ctx: &Ctx,
    q: &ListQuery,
    error: Option<&str>,
    values: &Fields,
) -> Response {
    let lang = ctx.lang;
    let (rows, more) = match mailbox_rows(s, ctx, &q.table).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let table = mailbox_table(lang, rows, more, true);
    let body = html! {
        (tabs(lang, "/recipients"))
        (done_note(lang, q.done.as_deref(), DONE))
        details.panel open[error.is_some()] {
            summary { (i18n::P_ADD_MAILBOX.get(lang)) }
            (error_note(error))
            form.stack #new-mailbox method="post" action="/recipients" {
                (csrf_field(ctx))
                label { (i18n::P_EMAIL_ADDRESS.get(lang))
                    input type="text" name="address" value=(field(values, "address")) required autocomplete="off"; }
                label { (i18n::P_DISPLAY_NAME.get(lang))
                    input type="text" name="display_name" value=(field(values, "display_name")); }
                label { (i18n::PASSWORD.get(lang))
                    input type="password" name="password" autocomplete="new-password"; }
                label { (i18n::P_RECIPIENT_TYPE.get(lang))
                    select name="type" {
                        option value="user" { (i18n::P_USER_MAILBOX.get(lang)) }
                        option value="shared" selected[field(values, "type") == "shared"] { (i18n::P_SHARED_MAILBOX.get(lang)) }
                    }
                }
                div.actions { button type="submit" { (i18n::P_CREATE.get(lang)) } }
            }
        }
        div #results hx-boost="true" hx-target="#results" hx-select="#results" hx-swap="outerHTML" {
            (table.render_store_sorted(lang, &q.table, "/recipients", &[], "/recipients.csv"))
        }
    };
    layout::page(ctx, Some(Nav::Recipients), i18n::RECIPIENTS.get(lang), body).into_response()
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    mailboxes_page(&s, &ctx, &q, None, &Fields::new()).await
}

/// Every mailbox of the list's filter and order (up to 100,000), a store page at a time.
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let mut all = Vec::new();
    let mut t = q.table.clone();
    t.page_size = Some(RECIPIENT_PAGE_MAX.to_string());
    let mut page = 1;
    loop {
        t.page = Some(page.to_string());
        let mut pq = page_query(None, &t);
        pq.limit = RECIPIENT_PAGE_MAX;
        pq.offset = (page - 1) * RECIPIENT_PAGE_MAX;
        let p = ctx.p;
        let found = async {
            require_admin(&p)?;
            s.blocking(move |s| {
                pq.tenant = listing_scope(s, &p, None)?;
                Ok(s.store.mailbox_page(&pq)?)
            })
            .await
        }
        .await;
        let (rows, more) = match found {
            Ok(found) => found,
            Err(e) => return error_page(Some(&ctx), ctx.lang, e),
        };
        all.extend(rows);
        if !more || all.len() >= CSV_ROWS {
            break;
        }
        page += 1;
    }
    all.truncate(CSV_ROWS);
    super::table::csv_response(
        "mailboxes.csv",
        mailbox_table(ctx.lang, all, false, false).csv(ctx.lang),
    )
}

/// `POST /recipients`: a new mailbox (`POST /api/v1/mailboxes`).
pub async fn create(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let mut v = Map::new();
    v.insert("address".into(), json!(field(&f, "address")));
    if let Some(n) = given(&f, "display_name") {
        v.insert("display_name".into(), json!(n));
    }
    if let Some(pw) = f.get("password").filter(|p| !p.is_empty()) {
        v.insert("password".into(), json!(pw));
    }
    if let Some(t) = given(&f, "type") {
        v.insert("type".into(), json!(t));
    }
    let result = match input(Value::Object(v)) {
        Ok(i) => api::create_mailbox(State(s.clone()), ctx.p, Ok(Json(i))).await,
        Err(e) => Err(e),
    };
    // The closures below share the request's values.
    let (s, ctx, f) = (&s, &ctx, &f);
    outcome(
        ctx,
        result,
        |r| async move {
            let made = answer_json(r).await;
            let address = made["address"].as_str().unwrap_or_default().to_string();
            see_other(&format!("{}?done=created", mailbox_href(&address)))
        },
        |error| async move { mailboxes_page(s, ctx, &ListQuery::default(), Some(&error), f).await },
    )
    .await
}

/// The detail page's parameters.
#[derive(Deserialize, Default)]
pub struct DetailQuery {
    done: Option<String>,
}

/// The attributes the API lets an admin set on a mailbox, as its JSON names them.
const ATTRIBUTES: [(&str, i18n::Text); 7] = [
    ("department", i18n::P_DEPARTMENT),
    ("company", i18n::P_COMPANY),
    ("office", i18n::P_OFFICE),
    ("city", i18n::P_CITY),
    ("state_or_province", i18n::P_STATE),
    ("country_or_region", i18n::P_COUNTRY),
    ("title", i18n::P_JOB_TITLE),
];

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The mailbox and its rights, read through the API's own handlers (their authorization), for
/// admins only (the Recipients page is theirs, as `Nav::Recipients` says).
async fn read_mailbox(
    s: &AppState,
    ctx: &Ctx,
    address: &str,
) -> Result<(Value, Vec<Value>), ApiError> {
    require_admin(&ctx.p)?;
    let Json(m) = api::get_mailbox(State(s.clone()), ctx.p, ApiPath(address.to_string())).await?;
    let Json(rights) =
        perm_api::list_permissions(State(s.clone()), ctx.p, ApiPath(address.to_string())).await?;
    Ok((m, rights))
}

/// The mailbox's page; after a refused action, `error` and the values typed (`values`, for the
/// form named by its `action`).
async fn mailbox_page(
    s: &AppState,
    ctx: &Ctx,
    address: &str,
    done: Option<&str>,
    error: Option<&str>,
    values: &Fields,
) -> Response {
    let lang = ctx.lang;
    let (m, rights) = match read_mailbox(s, ctx, address).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let action = field(values, "action");
    // The typed value after a refused change of this form, else the stored one.
    let val = |form: &str, name: &str| -> String {
        if error.is_some() && action == form {
            values.get(name).cloned().unwrap_or_default()
        } else {
            text_of(&m[name])
        }
    };
    let typed = |form: &str, name: &str| -> String {
        if error.is_some() && action == form {
            field(values, name)
        } else {
            String::new()
        }
    };
    let here = mailbox_href(&text_of(&m["address"]));
    let aliases: Vec<String> = m["aliases"]
        .as_array()
        .map(|a| a.iter().map(text_of).collect())
        .unwrap_or_default();
    let auth_off = if error.is_some() && action == "update" {
        ticked(values, "smtp_client_authentication_disabled")
    } else {
        m["smtp_client_authentication_disabled"].as_bool() == Some(true)
    };
    let kind = val("update", "type");
    let hidden = |act: &'static str| {
        html! { (csrf_field(ctx)) input type="hidden" name="action" value=(act); }
    };
    let body = html! {
        p { a href="/recipients" { "← " (i18n::P_MAILBOXES.get(lang)) } }
        (done_note(lang, done, DONE))
        (error_note(error))
        div.panel {
            dl.facts {
                dt { (i18n::P_EMAIL_ADDRESS.get(lang)) } dd.address { (text_of(&m["address"])) }
                dt { (i18n::P_DISPLAY_NAME.get(lang)) } dd.display-name { (text_of(&m["display_name"])) }
                dt { (i18n::P_TENANT.get(lang)) } dd { (text_of(&m["tenant"])) }
                dt { (i18n::P_USED_MB.get(lang)) } dd {
                    (format!("{:.1}", m["used_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0)))
                    " / " (text_of(&m["quota_mb"])) " MB"
                }
            }
            p { a.junk-settings href={ "/junk-email?" (super::query_string(&[("address", text_of(&m["address"]))])) } { (i18n::JE_TITLE.get(lang)) } }
        }
        h2 { (i18n::P_GENERAL.get(lang)) }
        form.stack.panel #attributes method="post" action=(here) {
            (hidden("update"))
            label { (i18n::P_DISPLAY_NAME.get(lang))
                input type="text" name="display_name" value=(val("update", "display_name")); }
            label { (i18n::P_RECIPIENT_TYPE.get(lang))
                select name="type" {
                    option value="user" selected[kind == "user"] { (i18n::P_USER_MAILBOX.get(lang)) }
                    option value="shared" selected[kind == "shared"] { (i18n::P_SHARED_MAILBOX.get(lang)) }
                }
            }
            @for (name, label) in ATTRIBUTES {
                label { (label.get(lang)) input type="text" name=(name) value=(val("update", name)); }
            }
            label { (i18n::P_QUOTA_MB.get(lang))
                input type="text" inputmode="numeric" name="quota_mb" value=(val("update", "quota_mb")); }
            label.check {
                input type="checkbox" name="smtp_client_authentication_disabled" value="1" checked[auth_off];
                (i18n::P_SMTP_AUTH_OFF.get(lang))
            }
            details {
                summary { (i18n::P_CUSTOM_ATTRIBUTES.get(lang)) }
                @for n in 1..=15 {
                    @let name = format!("custom_attribute_{n}");
                    label { (i18n::P_CUSTOM_ATTRIBUTE.get(lang)) " " (n)
                        input type="text" name=(name) value=(val("update", &name)); }
                }
            }
            div.actions { button type="submit" { (i18n::P_SAVE.get(lang)) } }
        }
        h2 { (i18n::P_ALIASES.get(lang)) }
        div.panel {
            @if aliases.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
            ul.items #aliases {
                @for a in &aliases {
                    li {
                        span { (a) }
                        form.inline method="post" action=(here) {
                            (hidden("remove_alias"))
                            input type="hidden" name="alias" value=(a);
                            button.small type="submit" { (i18n::P_REMOVE.get(lang)) }
                        }
                    }
                }
            }
            form.inline method="post" action=(here) {
                (hidden("add_alias"))
                label { (i18n::P_ADD_ALIAS.get(lang)) " "
                    input type="text" name="alias" value=(typed("add_alias", "alias")) required; }
                " " button type="submit" { (i18n::P_ADD.get(lang)) }
            }
        }
        h2 { (i18n::P_PASSWORD_RESET.get(lang)) }
        form.inline.panel method="post" action=(here) {
            (hidden("password"))
            label { (i18n::P_NEW_PASSWORD.get(lang)) " "
                input type="password" name="password" autocomplete="new-password"; }
            " " button type="submit" { (i18n::P_SET_PASSWORD.get(lang)) }
            p.note { (i18n::P_PASSWORD_HINT.get(lang)) }
        }
        h2 { (i18n::P_PERMISSIONS.get(lang)) }
        div.panel {
            @if rights.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
            @else {
                table.data #permissions {
                    thead { tr { th { (i18n::P_TRUSTEE.get(lang)) } th { (i18n::P_RIGHT.get(lang)) } th {} } }
                    tbody {
                        @for r in &rights {
                            tr {
                                td { (text_of(&r["user"])) }
                                td { (right_label(lang, &text_of(&r["right"]))) }
                                td {
                                    form.inline method="post" action=(here) {
                                        (hidden("revoke"))
                                        input type="hidden" name="user" value=(text_of(&r["user"]));
                                        input type="hidden" name="right" value=(text_of(&r["right"]));
                                        button.small type="submit" { (i18n::P_REMOVE.get(lang)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action=(here) {
                (hidden("grant"))
                label { (i18n::P_TRUSTEE.get(lang)) " "
                    input type="text" name="user" value=(typed("grant", "user")) required; }
                " "
                label { (i18n::P_RIGHT.get(lang)) " "
                    select name="right" {
                        @for r in ["full-access", "send-as", "send-on-behalf"] {
                            option value=(r) selected[typed("grant", "right") == r] { (right_label(lang, r)) }
                        }
                    }
                }
                " " button type="submit" { (i18n::P_ADD.get(lang)) }
            }
            p.note { (i18n::P_SEND_ON_BEHALF_NOTE.get(lang)) }
        }
        h2 { (i18n::P_DELETE_MAILBOX.get(lang)) }
        form.inline.panel.danger method="post" action=(here) {
            (hidden("delete"))
            label { (i18n::P_TRANSFER_OWNERSHIP.get(lang)) " "
                input type="text" name="transfer_ownership_to" value=(typed("delete", "transfer_ownership_to")); }
            " " button.danger type="submit" { (i18n::P_DELETE.get(lang)) }
        }
    };
    let title = text_of(&m["display_name"]);
    layout::page(ctx, Some(Nav::Recipients), &title, body).into_response()
}

fn right_label(lang: Lang, right: &str) -> &'static str {
    match right {
        "full-access" => i18n::P_FULL_ACCESS.get(lang),
        "send-as" => i18n::P_SEND_AS.get(lang),
        "send-on-behalf" => i18n::QP_SEND_ON_BEHALF.get(lang),
        _ => "",
    }
}

pub async fn mailbox(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(address): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    mailbox_page(&s, &ctx, &address, q.done.as_deref(), None, &Fields::new()).await
}

/// The `PATCH /api/v1/mailboxes/{address}` body of the General form: the display name only when
/// it changes (the API lets only global admins rename an admin), the quota as typed (a number,
/// or the text for the API to refuse in its own words).
fn update_body(current: &Value, f: &Fields) -> Value {
    let mut v = Map::new();
    let name = field(f, "display_name");
    if !name.is_empty() && name != text_of(&current["display_name"]) {
        v.insert("display_name".into(), json!(name));
    }
    if let Some(t) = given(f, "type") {
        v.insert("type".into(), json!(t));
    }
    for (k, _) in ATTRIBUTES {
        if f.contains_key(k) {
            v.insert(k.into(), json!(field(f, k)));
        }
    }
    for n in 1..=15 {
        let k = format!("custom_attribute_{n}");
        if f.contains_key(&k) {
            v.insert(k.clone(), json!(field(f, &k)));
        }
    }
    let quota = field(f, "quota_mb");
    if !quota.is_empty() {
        v.insert(
            "quota_mb".into(),
            quota
                .parse::<u64>()
                .map(|n| json!(n))
                .unwrap_or(json!(quota)),
        );
    }
    v.insert(
        "smtp_client_authentication_disabled".into(),
        json!(ticked(f, "smtp_client_authentication_disabled")),
    );
    Value::Object(v)
}

/// One action of the mailbox page, through the API handler it maps to. `Ok(done)` names the
/// note to show after the redirect (or the list, after removal).
async fn mailbox_action(
    s: &AppState,
    ctx: &Ctx,
    address: &str,
    f: &Fields,
) -> Result<&'static str, ApiError> {
    let st = || State(s.clone());
    let path = || ApiPath(address.to_string());
    let p = ctx.p;
    let patch = |v: Value| async move {
        let i = input(v)?;
        api::update_mailbox(st(), p, path(), Ok(Json(i))).await
    };
    match field(f, "action").as_str() {
        "update" => {
            require_admin(&p)?;
            let Json(current) = api::get_mailbox(st(), p, path()).await?;
            let _ = patch(update_body(&current, f)).await?;
            Ok("updated")
        }
        act @ ("add_alias" | "remove_alias") => {
            require_admin(&p)?;
            let Json(current) = api::get_mailbox(st(), p, path()).await?;
            let alias = field(f, "alias");
            let mut aliases: Vec<String> = current["aliases"]
                .as_array()
                .map(|a| a.iter().map(text_of).collect())
                .unwrap_or_default();
            if act == "add_alias" {
                if alias.is_empty() {
                    return Err(ApiError::bad_request("alias: give an address"));
                }
                aliases.push(alias);
            } else {
                aliases.retain(|a| !a.eq_ignore_ascii_case(&alias));
            }
            let _ = patch(json!({ "aliases": aliases })).await?;
            Ok("alias")
        }
        "password" => {
            let pw = f.get("password").cloned().unwrap_or_default();
            let _ = patch(json!({ "password": pw })).await?;
            Ok("password")
        }
        "grant" => {
            let i = input(json!({ "user": field(f, "user"), "right": field(f, "right") }))?;
            perm_api::add_permission(st(), p, path(), Ok(Json(i))).await?;
            Ok("permission")
        }
        "revoke" => {
            let i = input(json!({ "user": field(f, "user"), "right": field(f, "right") }))?;
            perm_api::remove_permission(st(), p, path(), Ok(Json(i))).await?;
            Ok("permission")
        }
        "delete" => {
            let mut q = Map::new();
            if let Some(t) = given(f, "transfer_ownership_to") {
                q.insert("transfer_ownership_to".into(), json!(t));
            }
            api::delete_mailbox(st(), p, path(), Query(input(Value::Object(q))?)).await?;
            Ok("deleted")
        }
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    }
}

/// `POST /recipients/mailbox/{address}`: the page's forms, each naming its `action`.
pub async fn mailbox_post(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let result = mailbox_action(&s, &ctx, &address, &f).await;
    // The closures below share the request's values.
    let (s, ctx, f, address) = (&s, &ctx, &f, &address);
    outcome(
        ctx,
        result,
        |done| async move {
            match done {
                "deleted" => see_other("/recipients?done=deleted"),
                done => see_other(&format!("{}?done={done}", mailbox_href(address))),
            }
        },
        |error| async move { mailbox_page(s, ctx, address, None, Some(&error), f).await },
    )
    .await
}

// Contacts.

#[derive(Deserialize, Default)]
pub struct ContactsQuery {
    done: Option<String>,
    /// A contact whose removal the page asks to confirm.
    remove: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

const CONTACT_FIELDS: [(&str, i18n::Text); 5] = [
    ("department", i18n::P_DEPARTMENT),
    ("company", i18n::P_COMPANY),
    ("office", i18n::P_OFFICE),
    ("city", i18n::P_CITY),
    ("title", i18n::P_JOB_TITLE),
];

fn contact_table(rows: Vec<Contact>, more: bool, links: bool) -> Table {
    let col = |key, label| Column { key, label };
    Table {
        columns: vec![
            col("display_name", i18n::P_DISPLAY_NAME),
            col("address", i18n::P_EMAIL_ADDRESS),
            col("company", i18n::P_COMPANY),
        ],
        rows: rows
            .into_iter()
            .map(|c| {
                vec![
                    Cell::text(c.display_name),
                    Cell {
                        href: links.then(|| {
                            format!(
                                "/recipients/contacts?{}",
                                query_string(&[("remove", c.address.clone())])
                            )
                        }),
                        text: c.address,
                        class: None,
                    },
                    Cell::text(c.attributes.company),
                ]
            })
            .collect(),
        more,
    }
}

/// The admin check and scope of `GET /api/v1/contacts`, then one page from the store.
async fn contact_rows(
    s: &AppState,
    ctx: &Ctx,
    mut q: RecipientPage,
) -> Result<(Vec<Contact>, bool), ApiError> {
    let p = ctx.p;
    require_admin(&p)?;
    s.blocking(move |s| {
        q.tenant = listing_scope(s, &p, None)?;
        Ok(s.store.contact_page(&q)?)
    })
    .await
}

async fn contacts_page(
    s: &AppState,
    ctx: &Ctx,
    q: &ContactsQuery,
    error: Option<&str>,
    values: &Fields,
) -> Response {
    let lang = ctx.lang;
    let (rows, more) = match contact_rows(s, ctx, page_query(None, &q.table)).await {
        Ok(found) => found,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let table = contact_table(rows, more, true);
    let removing = q.remove.as_deref().filter(|r| !r.trim().is_empty());
    let body = html! {
        (tabs(lang, "/recipients/contacts"))
        (done_note(lang, q.done.as_deref(), DONE))
        @if let Some(address) = removing {
            form.inline.panel.danger method="post" action="/recipients/contacts/delete" {
                (csrf_field(ctx))
                input type="hidden" name="address" value=(address);
                span { (i18n::P_DELETE_CONTACT.get(lang)) ": " strong { (address) } }
                " " button.danger type="submit" { (i18n::P_DELETE.get(lang)) }
                " " a href="/recipients/contacts" { (i18n::P_CANCEL.get(lang)) }
            }
        }
        details.panel open[error.is_some()] {
            summary { (i18n::P_ADD_CONTACT.get(lang)) }
            (error_note(error))
            form.stack #new-contact method="post" action="/recipients/contacts" {
                (csrf_field(ctx))
                label { (i18n::P_EMAIL_ADDRESS.get(lang))
                    input type="text" name="address" value=(field(values, "address")) required; }
                label { (i18n::P_DISPLAY_NAME.get(lang))
                    input type="text" name="name" value=(field(values, "name")); }
                @for (name, label) in CONTACT_FIELDS {
                    label { (label.get(lang)) input type="text" name=(name) value=(field(values, name)); }
                }
                div.actions { button type="submit" { (i18n::P_CREATE.get(lang)) } }
            }
        }
        div #results hx-boost="true" hx-target="#results" hx-select="#results" hx-swap="outerHTML" {
            (table.render_store_sorted(lang, &q.table, "/recipients/contacts", &[], "/recipients/contacts.csv"))
        }
    };
    layout::page(ctx, Some(Nav::Recipients), i18n::RECIPIENTS.get(lang), body).into_response()
}

pub async fn contacts(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ContactsQuery>,
) -> Response {
    contacts_page(&s, &ctx, &q, None, &Fields::new()).await
}

/// Every contact of the list's filter and order (up to 100,000), a store page at a time.
pub async fn contacts_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ContactsQuery>,
) -> Response {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let mut pq = page_query(None, &q.table);
        pq.limit = RECIPIENT_PAGE_MAX;
        pq.offset = offset;
        let (rows, more) = match contact_rows(&s, &ctx, pq).await {
            Ok(found) => found,
            Err(e) => return error_page(Some(&ctx), ctx.lang, e),
        };
        offset += rows.len();
        all.extend(rows);
        if !more || all.len() >= CSV_ROWS {
            break;
        }
    }
    all.truncate(CSV_ROWS);
    super::table::csv_response(
        "contacts.csv",
        contact_table(all, false, false).csv(ctx.lang),
    )
}

/// `POST /recipients/contacts`: a new mail contact (`POST /api/v1/contacts`).
pub async fn contact_create(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let mut v = Map::new();
    v.insert("address".into(), json!(field(&f, "address")));
    if let Some(n) = given(&f, "name") {
        v.insert("name".into(), json!(n));
    }
    for (k, _) in CONTACT_FIELDS {
        if let Some(x) = given(&f, k) {
            v.insert(k.into(), json!(x));
        }
    }
    let result = match input(Value::Object(v)) {
        Ok(i) => contacts_api::create_contact(State(s.clone()), ctx.p, Ok(Json(i)))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    // The closures below share the request's values.
    let (s, ctx, f) = (&s, &ctx, &f);
    outcome(
        ctx,
        result,
        |()| async move { see_other("/recipients/contacts?done=created") },
        |error| async move {
            contacts_page(s, ctx, &ContactsQuery::default(), Some(&error), f).await
        },
    )
    .await
}

/// `POST /recipients/contacts/delete` (`DELETE /api/v1/contacts/{address}`).
pub async fn contact_delete(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Some(refusal) = check_csrf(&ctx, &headers, &f) {
        return refusal;
    }
    let address = field(&f, "address");
    let result = contacts_api::delete_contact(State(s.clone()), ctx.p, ApiPath(address)).await;
    // The closures below share the request's values.
    let (s, ctx, f) = (&s, &ctx, &f);
    outcome(
        ctx,
        result,
        |_| async move { see_other("/recipients/contacts?done=deleted") },
        |error| async move {
            contacts_page(s, ctx, &ContactsQuery::default(), Some(&error), f).await
        },
    )
    .await
}
