//! What the Mail flow and Protection pages share: calling the API's own handler functions (so
//! each action has the API's checks and authorization, never a copy), rendering their JSON
//! answers, the tenant a page is about, tabs, notices and the hidden fields of every form.
//!
//! The handlers are called as functions with the extractors built here (`State`, the session's
//! `Principal`, `Path`, `Query`, `Json`): the same code as over HTTP, without HTTP. Their
//! answers are serialised to JSON values, the very documents the API answers, and shown from
//! those (maud escapes every value).

use super::error_page;
use super::i18n::{self, Lang, Text};
use super::layout::{self, Nav};
use super::session::{CSRF_FIELD, Ctx};
use super::table::{Table, TableParams};
use crate::error::ApiError;
use crate::state::{ApiResult, AppState, requested_tenant};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::auth::Role;
use hato_core::directory::Tenant;
use maud::{Markup, html};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An API handler's JSON answer as a value to render.
pub fn value<T: Serialize>(r: ApiResult<Json<T>>) -> ApiResult<Value> {
    let Json(v) = r?;
    serde_json::to_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A typed input (a query or a body) from a JSON value; what does not fit is the API's 400.
pub fn input<T: DeserializeOwned>(v: Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A JSON body as the handlers take it.
pub fn body<T: DeserializeOwned>(v: Value) -> ApiResult<Result<Json<T>, JsonRejection>> {
    Ok(Ok(Json(input(v)?)))
}

/// A value as one line of text: strings as they are, lists joined by commas, nothing for null.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The field `key` of an object as text.
pub fn field(v: &Value, key: &str) -> String {
    v.get(key).map(text).unwrap_or_default()
}

/// Yes / No for a boolean field.
pub fn yes_no(lang: Lang, v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => i18n::YES.get(lang).to_string(),
        Some(false) => i18n::NO.get(lang).to_string(),
        None => String::new(),
    }
}

/// An object's fields as a definition list (nested objects as their own lists).
pub fn facts(v: &Value) -> Markup {
    html! {
        dl.facts {
            @if let Value::Object(map) = v {
                @for (k, val) in map {
                    dt { (k) }
                    dd {
                        @if val.is_object() { (facts(val)) }
                        @else { (text(val)) }
                    }
                }
            }
        }
    }
}

/// The tenant a page or action is about: a tenant admin's own; the operator's choice
/// (`tenant=`), or `None` when the operator has not chosen one yet.
pub async fn tenant_of(s: &AppState, ctx: &Ctx, named: Option<&str>) -> ApiResult<Option<Tenant>> {
    let named = named
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if ctx.p.role == Role::Operator && named.is_none() {
        return Ok(None);
    }
    let p = ctx.p;
    s.blocking(move |s| requested_tenant(s, &p, named.as_deref()).map(Some))
        .await
}

/// The operator's tenant picker (a GET form back to `path`).
pub async fn tenant_picker(s: &AppState, lang: Lang, path: &str) -> ApiResult<Markup> {
    let tenants = s.blocking(|s| Ok(s.store.tenants()?)).await?;
    Ok(html! {
        form.query.panel method="get" action=(path) {
            label { (i18n::TENANT.get(lang))
                select name="tenant" {
                    @for t in &tenants { option value=(t.name) { (t.name) } }
                }
            }
            div.actions { button type="submit" { (i18n::CHOOSE_TENANT.get(lang)) } }
        }
    })
}

/// The hidden fields of every form that changes something: the CSRF token and, for the
/// operator, the tenant.
pub fn hidden(ctx: &Ctx, tenant: &Tenant) -> Markup {
    html! {
        input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
        @if ctx.p.role == Role::Operator { input type="hidden" name="tenant" value=(tenant.name); }
    }
}

/// `tenant=…` for the operator's links (empty for others: their tenant is implied).
pub fn tenant_query(ctx: &Ctx, tenant: &Tenant) -> Vec<(&'static str, String)> {
    if ctx.p.role == Role::Operator {
        vec![("tenant", tenant.name.clone())]
    } else {
        Vec::new()
    }
}

/// A path with the operator's tenant and extra pairs as its query.
pub fn href(ctx: &Ctx, tenant: &Tenant, path: &str, extra: &[(&'static str, String)]) -> String {
    let mut q = tenant_query(ctx, tenant);
    q.extend(extra.iter().cloned());
    let q = super::query_string(&q);
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// A page of tabs about one tenant (Mail flow, Protection): its navigation entry and tabs. Every
/// tab's handler starts the same way (who may see the section, which tenant), and answers in
/// the same frame; the CSV exports share one shape too.
pub struct Section {
    pub nav: Nav,
    pub tabs: &'static [Tab],
}

impl Section {
    /// The page's tenant, or the answer to give instead: 403 to whom may not see the section
    /// (as the API refuses them), the operator's tenant picker until one is chosen.
    pub async fn start(
        &self,
        s: &AppState,
        ctx: &Ctx,
        named: Option<&str>,
        path: &str,
    ) -> Result<Tenant, Response> {
        let lang = ctx.lang;
        if !self.nav.visible_to(&ctx.p) {
            return Err(error_page(
                Some(ctx),
                lang,
                ApiError::forbidden(i18n::FORBIDDEN.get(lang)),
            ));
        }
        match tenant_of(s, ctx, named).await {
            Ok(Some(t)) => Ok(t),
            Ok(None) => match tenant_picker(s, lang, path).await {
                Ok(picker) => {
                    Err(
                        layout::page(ctx, Some(self.nav), self.nav.label().get(lang), picker)
                            .into_response(),
                    )
                }
                Err(e) => Err(error_page(Some(ctx), lang, e)),
            },
            Err(e) => Err(error_page(Some(ctx), lang, e)),
        }
    }

    /// A tab's page: the tenant, the tab bar, the notice, the body.
    pub fn frame(
        &self,
        ctx: &Ctx,
        t: &Tenant,
        tab: &str,
        status: StatusCode,
        notice: &Notice,
        body: Markup,
    ) -> Response {
        let lang = ctx.lang;
        let page = html! {
            p.tenant { (i18n::TENANT.get(lang)) ": " strong { (t.name) } }
            (tabs(lang, self.tabs, tab, &tenant_query(ctx, t)))
            (notice.render(lang))
            (body)
        };
        (
            status,
            layout::page(ctx, Some(self.nav), self.nav.label().get(lang), page),
        )
            .into_response()
    }

    /// A tab's GET handler: its tenant (or the answer instead), then `page` with the notice
    /// of the action that led here (`done=`).
    pub async fn tab_page(
        &self,
        s: &AppState,
        ctx: &Ctx,
        named: Option<&str>,
        path: &str,
        done: Option<&str>,
        page: impl AsyncFnOnce(Tenant, Notice) -> Response,
    ) -> Response {
        match self.start(s, ctx, named, path).await {
            Ok(t) => page(t, Notice::done(done)).await,
            Err(r) => r,
        }
    }

    /// A tab's CSV export: its tenant, then the table `rows` reads, with the page's filter
    /// and sort, every row (`name` is the file's).
    #[allow(clippy::too_many_arguments)]
    pub async fn tab_csv(
        &self,
        s: &AppState,
        ctx: &Ctx,
        named: Option<&str>,
        path: &str,
        params: &TableParams,
        name: &'static str,
        rows: impl AsyncFnOnce(Tenant) -> ApiResult<Table>,
    ) -> Response {
        let t = match self.start(s, ctx, named, path).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        match rows(t).await {
            Ok(table) => csv_of(table, params, ctx.lang, name),
            Err(e) => error_page(Some(ctx), ctx.lang, e),
        }
    }
}

/// The CSV of a table: its filter and sort, every row the page would list.
pub fn csv_of(mut table: Table, t: &TableParams, lang: Lang, name: &'static str) -> Response {
    table.apply(&TableParams {
        filter: t.filter.clone(),
        sort: t.sort.clone(),
        desc: t.desc.clone(),
        ..Default::default()
    });
    super::table::csv_response(name, table.csv(lang))
}

/// One tab: its path and label.
pub struct Tab {
    pub path: &'static str,
    pub label: Text,
}

/// The tab bar; `current` is the path of the page shown.
pub fn tabs(lang: Lang, tabs: &[Tab], current: &str, query: &[(&'static str, String)]) -> Markup {
    let q = super::query_string(query);
    html! {
        nav.tabs aria-label=(i18n::TABS.get(lang)) {
            @for t in tabs {
                @let to = if q.is_empty() { t.path.to_string() } else { format!("{}?{q}", t.path) };
                @if t.path == current {
                    a href=(to) aria-current="page" { (t.label.get(lang)) }
                } @else {
                    a href=(to) { (t.label.get(lang)) }
                }
            }
        }
    }
}

/// What the page says after an action: done (by a fixed code in `done=`, never text from the
/// request) or the API's refusal.
#[derive(Default)]
pub struct Notice {
    pub done: Option<Text>,
    pub error: Option<String>,
}

impl Notice {
    pub fn error(e: &ApiError) -> Notice {
        Notice {
            done: None,
            error: Some(e.message.clone()),
        }
    }

    pub fn done(code: Option<&str>) -> Notice {
        Notice {
            done: code.and_then(done_text),
            error: None,
        }
    }

    pub fn render(&self, lang: Lang) -> Markup {
        html! {
            @if let Some(d) = self.done { p.notice role="status" { (d.get(lang)) } }
            @if let Some(e) = &self.error { p.error role="alert" { (e) } }
        }
    }
}

/// The codes `done=` takes, with what they say.
pub const DONE: &[(&str, Text)] = &[
    ("created", i18n::DONE_CREATED),
    ("changed", i18n::DONE_CHANGED),
    ("removed", i18n::DONE_REMOVED),
    ("moved", i18n::DONE_MOVED),
    ("verified", i18n::DONE_VERIFIED),
    ("retried", i18n::DONE_RETRIED),
    ("released", i18n::DONE_RELEASED),
    ("approved", i18n::S10_DONE_APPROVED),
    ("denied", i18n::S10_DONE_DENIED),
];

fn done_text(code: &str) -> Option<Text> {
    DONE.iter().find(|(c, _)| *c == code).map(|(_, t)| *t)
}

/// A path with `done=code` added to the operator's tenant.
pub fn done_href(ctx: &Ctx, tenant: &Tenant, path: &str, code: &str) -> String {
    href(ctx, tenant, path, &[("done", code.to_string())])
}

/// `Value` of a form's text: trimmed, `None` when empty.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A comma- or line-separated list from a form field.
pub fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Exchange's name of a parameter: `subject_contains_words` → `SubjectContainsWords`.
pub fn exchange_name(key: &str) -> String {
    key.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The JSON value of a form's text for the field `key` of `T`: a list, a string, a number or a
/// boolean (`true`/`false`; nothing for a switch), whichever `T` takes (so the form needs no second table of types); the text itself
/// when none fits, for the API to refuse by name.
pub fn typed<T: serde::de::DeserializeOwned>(key: &str, raw: &str) -> Value {
    let raw = raw.trim();
    let items: Vec<Value> = raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_string()))
        .collect();
    let mut candidates = vec![Value::Array(items), Value::String(raw.to_string())];
    if let Ok(n) = raw.parse::<i64>() {
        candidates.push(json!(n));
    }
    match raw.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => candidates.push(Value::Bool(true)),
        "false" | "no" | "off" => candidates.push(Value::Bool(false)),
        // A switch named without a value (a condition such as AttachmentHasExecutableContent).
        "" => candidates.push(Value::Bool(true)),
        _ => {}
    }
    for c in candidates {
        let mut probe = serde_json::Map::new();
        probe.insert(key.to_string(), c.clone());
        if serde_json::from_value::<T>(Value::Object(probe)).is_ok() {
            return c;
        }
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_one_line() {
        assert_eq!(text(&json!(["a", "b"])), "a, b");
        assert_eq!(text(&json!(null)), "");
        assert_eq!(text(&json!(3)), "3");
        assert_eq!(field(&json!({"x": "y"}), "x"), "y");
        assert_eq!(list(&Some(" a, b\nc ,".into())), ["a", "b", "c"]);
    }

    #[test]
    fn done_takes_only_its_codes() {
        assert!(done_text("created").is_some());
        assert!(done_text("<script>").is_none());
    }
}
