//! Sign-in, sessions and CSRF.
//!
//! A session is a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie; the store keeps
//! only its SHA-256 (`ConsoleStore`), with the role it acts as, so a copy of the database signs
//! nobody in. It ends when unused for `idle_secs`, `max_secs` after sign-in, or at sign-out.
//! Mailbox users (and members of role groups, who act with the group's role exactly as with an
//! API token) sign in with their address and password through the API's login check and its
//! limits (`routes::login::check_password`); the platform operator signs in as `operator` with
//! the operator token, under the same per-IP and per-account limits.
//!
//! Every state-changing request carries the session's CSRF token (a synchronizer token: the
//! SHA-256 of a fixed label and the session id, so it is tied to the session, is never stored,
//! and cannot be computed without the `HttpOnly` cookie), in the `_csrf` form field or the
//! `X-CSRF-Token` header htmx sends; it is compared in constant time. A cross-origin `Origin`
//! or `Sec-Fetch-Site` is refused outright (OWASP CSRF cheat sheet: defence in depth).

use super::i18n::{self, Lang};
use super::{cookie, layout, local_path, see_other, url_encode};
use crate::routes::login::{LoginRefused, check_password};
use crate::state::{AppState, ClientIp, acting_principal};
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hato_core::auth::{Principal, Role};
use hato_store::{ConsoleSession, hash_token};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hato_session";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header htmx sends it in (set on `<body hx-headers>`).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is signed in, for one request.
pub struct Ctx {
    /// The caller, as the API would see them (role groups applied).
    pub p: Principal,
    /// Who signed in (an address, or `operator`).
    pub name: String,
    pub lang: Lang,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// The path and query of this request (for the language switch's way back).
    pub here: String,
    session_hash: String,
}

/// The CSRF token of a session id.
fn csrf_of(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hato console csrf\0");
    h.update(session_id.as_bytes());
    hex::encode(h.finalize())
}

/// Equality that takes as long whatever the first differing byte (no timing oracle).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request comes from this origin as far as the browser says: a `Sec-Fetch-Site`
/// other than `same-origin` or `none` (typed by the person), or an `Origin` whose host is not
/// the one asked, is another site's.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
    }
    true
}

fn refused(ctx: Option<&Ctx>, lang: Lang) -> Response {
    super::error_page(
        ctx,
        lang,
        crate::ApiError::forbidden(i18n::CSRF_REFUSED.get(lang)),
    )
}

impl Ctx {
    /// The refusal (403) of a state-changing request without this session's CSRF token or
    /// from another origin; `None` when it may go on.
    pub fn csrf_refusal(&self, headers: &HeaderMap, form_token: Option<&str>) -> Option<Response> {
        let token = form_token
            .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
            .unwrap_or("");
        if same_origin(headers) && same(token.as_bytes(), self.csrf.as_bytes()) {
            None
        } else {
            Some(refused(Some(self), self.lang))
        }
    }
}

/// Where an unauthenticated request goes: the sign-in page, then back here.
fn to_login(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next = if parts.method == axum::http::Method::GET {
        here
    } else {
        "/"
    };
    let mut r = see_other(&format!("/login?next={}", url_encode(next)));
    // A stale cookie goes.
    if cookie(&parts.headers, SESSION_COOKIE).is_some() {
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static("hato_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
    }
    r
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).filter(|v| v.len() == 64) else {
            return Err(to_login(parts));
        };
        let hash = hash_token(&id);
        let now = s.clock.now();
        let settings = s.console.clone();
        let lookup = hash.clone();
        let found = s
            .blocking(move |s| {
                let Some(session) = s.store.console_session(&lookup)? else {
                    return Ok(None);
                };
                let idle =
                    now.0.saturating_sub(session.last_seen.0) > settings.idle_secs * 1_000_000;
                let old = now.0.saturating_sub(session.created.0) > settings.max_secs * 1_000_000;
                if idle || old {
                    return Ok(Some(Err(())));
                }
                let p = acting_principal(
                    s,
                    Principal {
                        role: session.role,
                        tenant_id: session.tenant_id,
                        mailbox_id: session.mailbox_id,
                    },
                )?;
                Ok(Some(Ok((p, session.name))))
            })
            .await
            .map_err(|e| super::error_page(None, lang, e))?;
        let (p, name) = match found {
            Some(Ok(found)) => found,
            Some(Err(())) => {
                // Expired: gone from the store too, so the id is worth nothing from now on.
                let _ = s.store.delete_console_session(&hash).await;
                return Err(to_login(parts));
            }
            None => return Err(to_login(parts)),
        };
        if let Err(e) = s.store.touch_console_session(&hash, now).await {
            tracing::warn!("console: a session's last use was not recorded: {e}");
        }
        Ok(Ctx {
            p,
            name,
            lang,
            csrf: csrf_of(&id),
            here: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
            session_hash: hash,
        })
    }
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

fn login_form(lang: Lang, next: &str, error: Option<String>, address: &str) -> maud::Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.login.panel method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label { (i18n::ADDRESS.get(lang))
                input type="text" name="address" value=(address) autocomplete="username" required autofocus;
            }
            label { (i18n::PASSWORD.get(lang))
                input type="password" name="password" autocomplete="current-password" required;
            }
            button type="submit" { (i18n::SIGN_IN.get(lang)) }
            p.note { (i18n::SIGN_IN_HELP.get(lang)) }
        }
    }
}

pub async fn login_page(headers: HeaderMap, Query(q): Query<NextParam>) -> Response {
    let lang = Lang::of(&headers);
    let next = local_path(q.next.as_deref());
    layout::bare(
        lang,
        i18n::SIGN_IN.get(lang),
        login_form(lang, &next, None, ""),
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// The operator's account name on the sign-in form.
const OPERATOR: &str = "operator";

pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let next = local_path(f.next.as_deref());
    // Before a session there is no token to check: the browser's word on the origin is (a login
    // CSRF would sign the victim in as the attacker).
    if !same_origin(&headers) {
        return refused(None, lang);
    }
    let again = |status: StatusCode, message: String| {
        let mut r = (
            status,
            layout::bare(
                lang,
                i18n::SIGN_IN.get(lang),
                login_form(lang, &next, Some(message), &f.address),
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    let signed_in = if f.address.trim().eq_ignore_ascii_case(OPERATOR) {
        operator_sign_in(&s, ip, &f.password).await
    } else {
        check_password(&s, ip, &f.address, f.password.clone())
            .await
            .map(|mb| (Role::User, Some(mb.tenant_id), Some(mb.id), mb.address))
    };
    let (role, tenant_id, mailbox_id, name) = match signed_in {
        Ok(who) => who,
        Err(LoginRefused::Locked(secs)) => {
            let mut r = again(
                StatusCode::TOO_MANY_REQUESTS,
                i18n::LOCKED.get(lang).replace("{}", &secs.to_string()),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return r;
        }
        Err(LoginRefused::Wrong) => {
            return again(StatusCode::UNAUTHORIZED, i18n::WRONG_LOGIN.get(lang).into());
        }
        Err(LoginRefused::Busy) => {
            return again(StatusCode::SERVICE_UNAVAILABLE, i18n::BUSY.get(lang).into());
        }
        Err(LoginRefused::Failed(e)) => return super::error_page(None, lang, e),
    };
    // A new id at every sign-in: an id planted before it (session fixation) is worth nothing.
    let id = hato_core::id::new_token();
    let now = s.clock.now();
    let session = ConsoleSession {
        role,
        tenant_id,
        mailbox_id,
        name,
        created: now,
        last_seen: now,
    };
    if let Err(e) = s.store.add_console_session(&hash_token(&id), session).await {
        return super::error_page(None, lang, e.into());
    }
    // Ended sessions go now and then: here, at each sign-in.
    let (idle, max) = (s.console.idle_secs, s.console.max_secs);
    let _ = s
        .store
        .purge_console_sessions(now.plus_seconds(-idle), now.plus_seconds(-max))
        .await;
    let mut r = see_other(&next);
    let secure = if s.console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The operator's sign-in: the operator token as the password, within the login limits (the
/// account key `operator` and the client IP), with the same work whether it is right or not.
async fn operator_sign_in(
    s: &AppState,
    ip: std::net::IpAddr,
    token: &str,
) -> Result<
    (
        Role,
        Option<hato_core::directory::TenantId>,
        Option<i64>,
        String,
    ),
    LoginRefused,
> {
    if let Err(locked) = s.login.check(OPERATOR, ip) {
        return Err(LoginRefused::Locked(locked.retry_after_secs));
    }
    let hash = hash_token(token);
    let info = s
        .blocking(move |s| Ok(s.store.token(&hash)?))
        .await
        .map_err(LoginRefused::Failed)?;
    let now = s.clock.now();
    match info {
        Some(i) if i.role == Role::Operator && i.expires.is_none_or(|e| e > now) => {
            s.login.succeeded(OPERATOR);
            Ok((Role::Operator, None, None, OPERATOR.to_string()))
        }
        _ => {
            s.login.failed(OPERATOR, ip);
            Err(LoginRefused::Wrong)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

pub async fn logout(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    if let Err(e) = s.store.delete_console_session(&ctx.session_hash).await {
        return super::error_page(Some(&ctx), ctx.lang, e.into());
    }
    let mut r = see_other("/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hato_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[derive(Deserialize)]
pub struct LangParams {
    set: Option<String>,
    next: Option<String>,
}

/// `GET /lang?set=ja&next=/trace`: keeps the language in a cookie for a year and goes back. A
/// preference, not a change of anything stored: a link, usable before sign-in.
pub async fn set_language(Query(q): Query<LangParams>) -> Response {
    let next = local_path(q.next.as_deref());
    let mut r = see_other(&next);
    if let Some(lang) = q.set.as_deref().and_then(Lang::parse)
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{}={}; Path=/; SameSite=Strict; Max-Age=31536000",
            i18n::LANG_COOKIE,
            lang.code()
        ))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_tied_to_the_session_and_compared_whole() {
        let (a, b) = (hato_core::id::new_token(), hato_core::id::new_token());
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert_eq!(csrf_of(&a), csrf_of(&a));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }

    #[test]
    fn only_the_same_origin_passes() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8025"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8025"),
        );
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }

    #[test]
    fn next_is_a_local_path_or_home() {
        assert_eq!(local_path(Some("/trace?x=1")), "/trace?x=1");
        for bad in [
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
