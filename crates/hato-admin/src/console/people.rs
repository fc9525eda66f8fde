//! Pieces the Recipients and Groups pages share: the forms' fields, the API's input built from
//! them, the outcome of an action (a 303 back with a message, the API's refusal as 403, or the
//! form again with the API's words and the values kept).
//!
//! Every action calls the API's own handler function (`crate::routes::mailboxes::create_mailbox`,
//! …) with the caller's principal and an input deserialized exactly as the API deserializes its
//! JSON body, so each check, refusal and message is the API's: there is no second copy of a rule.

use super::error_page;
use super::i18n::{Lang, Text};
use super::session::{CSRF_FIELD, Ctx};
use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

/// A submitted form: one value a name (the last wins).
pub type Fields = HashMap<String, String>;

/// A field, trimmed; empty when missing.
pub fn field(f: &Fields, name: &str) -> String {
    f.get(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A field, trimmed, `None` when missing or empty.
pub fn given(f: &Fields, name: &str) -> Option<String> {
    Some(field(f, name)).filter(|v| !v.is_empty())
}

/// Whether a checkbox was ticked (browsers send nothing for an unticked one).
pub fn ticked(f: &Fields, name: &str) -> bool {
    f.get(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A list typed into a text area: one entry a line, or split by commas or semicolons; blanks
/// dropped. Linear in the text.
pub fn list(text: &str) -> Vec<String> {
    text.split(['\n', ',', ';'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The API's input type built from `v` as the API would build it from a JSON body (its
/// `deny_unknown_fields`, its types): a value it would refuse is refused with its words.
pub use super::flow_kit::input;

/// The CSRF refusal of a state-changing form, if any.
pub fn check_csrf(ctx: &Ctx, headers: &HeaderMap, f: &Fields) -> Option<Response> {
    ctx.csrf_refusal(headers, f.get(CSRF_FIELD).map(String::as_str))
}

/// The hidden field every form of these pages carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf); }
}

/// A refusal the API answers 403 (or 401) is the console's 403 page: the form is not for this
/// caller, and showing it again would not help. Anything else (a taken address, a domain not
/// accepted, a bad value) is for the caller to show with its form again, with the API's words
/// and status and the values typed ([`again`]).
pub fn refusal(ctx: &Ctx, e: &ApiError) -> Option<Response> {
    (e.status == StatusCode::FORBIDDEN || e.status == StatusCode::UNAUTHORIZED).then(|| {
        error_page(
            Some(ctx),
            ctx.lang,
            ApiError::new(e.status, e.message.clone()),
        )
    })
}

/// A page shown again after a refused action, with the API's status.
pub fn again(mut page: Response, e: &ApiError) -> Response {
    if page.status().is_success() {
        *page.status_mut() = e.status;
    }
    page
}

/// The outcome of a form's action, the one place the pages write it: `done` makes the answer
/// of a success (a 303 back with a note); a refusal the API answers 403/401 is the console's
/// 403 page ([`refusal`]); any other refusal shows `form` again, given the API's words, with
/// the API's status ([`again`]).
pub async fn outcome<T, D, F>(
    ctx: &Ctx,
    result: Result<T, ApiError>,
    done: impl FnOnce(T) -> D,
    form: impl FnOnce(String) -> F,
) -> Response
where
    D: Future<Output = Response>,
    F: Future<Output = Response>,
{
    match result {
        Ok(answer) => done(answer).await,
        Err(e) => {
            if let Some(r) = refusal(ctx, &e) {
                return r;
            }
            again(form(e.message.clone()).await, &e)
        }
    }
}

/// The note after a redirect: `done=<key>` names one of the page's own messages (never text
/// from the URL).
pub fn done_note(lang: Lang, done: Option<&str>, messages: &[(&str, Text)]) -> Markup {
    let text = done.and_then(|d| messages.iter().find(|(k, _)| *k == d).map(|(_, t)| *t));
    html! {
        @if let Some(t) = text { p.done role="status" { (t.get(lang)) } }
    }
}

/// The error of a failed action, above the form it came from.
pub fn error_note(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
    }
}

/// The JSON body of an API handler's answer (a created object), read back in memory: the
/// handler wrote it a moment ago, and it is small.
pub async fn answer_json(r: Response) -> Value {
    match axum::body::to_bytes(r.into_body(), 1 << 20).await {
        Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_lines_commas_and_semicolons() {
        assert_eq!(
            list(" a@x.test\r\nb@x.test, c@x.test;;\n "),
            ["a@x.test", "b@x.test", "c@x.test"]
        );
        assert!(list("").is_empty());
    }
}
