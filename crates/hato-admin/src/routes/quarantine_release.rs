//! The quarantine release page: where a quarantine notification's release link leads
//! (`hato_transport::digest`). Plain HTML, outside `/api/v1/`, no session or password: the
//! link's token (signed by this server, for one item and one recipient, until the item expires;
//! `hato_transport::digest::token`) is the only authority, and it authorizes only that release.
//!
//! - `GET /quarantine/release?t=TOKEN`: the held message (sender, subject, received, expiry)
//!   and a "Release" button. A GET changes nothing: mail scanners and link previews follow
//!   links in mail by themselves, and a GET is safe (RFC 9110 §9.2.1).
//! - `POST /quarantine/release` (form field `t`): releases that one item to that recipient's
//!   Inbox through the quarantine's release (`release_quarantined`; trace `Release` by the
//!   recipient, then `Deliver`), once.
//!
//! Refused, with a page saying why and never a release: a token this server did not sign
//! (changed, forged, another server's) or naming another recipient than the item's, 403; an
//! item of a kind only admins release (malware, high-confidence phish, transport rule:
//! Exchange's AdminOnlyAccessPolicy, checked here whatever the token says), 403; an expired
//! token or item, or one no longer in quarantine, 410; an item released or deleted already,
//! 409.

use super::common::{escape, page_in};
use crate::state::{AppState, ClientIp};
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use hato_core::Timestamp;
use hato_store::{QuarantineItem, QuarantinePermission, QuarantineState, StoreError};
use hato_transport::digest::content::{MAX_SENDER_CHARS, MAX_SUBJECT_CHARS};
use hato_transport::digest::{DigestLanguage, TokenError, clean, date_text, kind_name, token};
use serde::Deserialize;

/// Where release links lead.
const RELEASE: &str = "/quarantine/release";
/// The pages this module serves (the router's tests check that they stay outside the API).
#[cfg(test)]
pub(super) const PATHS: [&str; 1] = [RELEASE];

/// The form holds one token; anything much longer is refused before it is read.
const MAX_FORM_BYTES: usize = 2 * token::MAX_TOKEN_CHARS;

pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route(RELEASE, get(show).post(release))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

#[derive(Deserialize, Default)]
struct TokenForm {
    #[serde(default)]
    t: String,
    /// The digest's language (`ja`; absent: English). Not signed: it only picks the words.
    #[serde(default)]
    l: String,
    /// `request`: ask an admin to release the item (the link of an item the recipient may not
    /// release itself); anything else: release it. Not signed: what the recipient may do is
    /// the item's quarantine policy's, checked at each use.
    #[serde(default)]
    op: String,
}

/// What the page says, in one language.
struct Texts {
    not_valid: (&'static str, &'static str),
    admin_only: (&'static str, &'static str),
    expired: (&'static str, &'static str),
    gone: (&'static str, &'static str),
    released_already: &'static str,
    deleted: &'static str,
    /// (deleted?, when) -> the paragraph.
    decided: fn(bool, Option<String>) -> String,
    failed: (&'static str, &'static str),
    title: &'static str,
    /// (recipient, kind) -> the question.
    intro: fn(&str, &str) -> String,
    labels: [&'static str; 4],
    button: &'static str,
    released: &'static str,
    released_to: fn(&str) -> String,
    could_not: &'static str,
    could_not_why: fn(&str) -> String,
    /// (recipient, kind) -> the question, for an item whose release is requested.
    request_intro: fn(&str, &str) -> String,
    request_button: &'static str,
    requested: &'static str,
    requested_text: &'static str,
}

const ENGLISH: Texts = Texts {
    not_valid: (
        "This link is not valid",
        "This release link is not valid: it may have been cut short, changed or mistyped, or it \
         was not made by this server. Use the link in your quarantine notification as it is, or \
         ask your administrator.",
    ),
    admin_only: (
        "Only an administrator can release this message",
        "This message was held as malware, high confidence phishing or by a mail flow rule: only \
         an administrator can release it. Ask your administrator.",
    ),
    expired: (
        "This link has expired",
        "This release link has expired, and so has the message in quarantine: messages are \
         deleted from quarantine when they expire.",
    ),
    gone: (
        "This message is no longer in quarantine",
        "This message is no longer in quarantine: it expired and was deleted.",
    ),
    released_already: "This message was released already",
    deleted: "This message was deleted",
    decided: |deleted, on| {
        format!(
            "This message was {} from quarantine{}; it cannot be released again.",
            if deleted { "deleted" } else { "released" },
            on.map(|d| format!(" on {d}")).unwrap_or_default()
        )
    },
    failed: (
        "Try again later",
        "The request could not be handled just now. Please try again later.",
    ),
    title: "Release a message from quarantine",
    intro: |to, kind| {
        format!(
            "This message to {to} is held in quarantine as {kind}. Release it to your Inbox? \
             Release only messages you trust."
        )
    },
    labels: ["Sender", "Subject", "Received", "Expires"],
    button: "Release",
    released: "Released",
    released_to: |to| format!("The message has been released to the Inbox of {to}."),
    could_not: "The message could not be released",
    could_not_why: |why| format!("The message could not be released: {why}."),
    request_intro: |to, kind| {
        format!(
            "This message to {to} is held in quarantine as {kind}: only an administrator can \
             release it. Ask your administrator to release it to your Inbox?"
        )
    },
    request_button: "Request release",
    requested: "Release requested",
    requested_text: "Your administrator has been asked to release this message. It stays in \
         quarantine until they decide.",
};

const JAPANESE: Texts = Texts {
    not_valid: (
        "このリンクは無効です",
        "この解放リンクは無効です。途中で切れているか、変更または入力を誤っているか、このサーバーが\
         作成したものではありません。検疫通知のリンクをそのまま使用するか、管理者に問い合わせて\
         ください。",
    ),
    admin_only: (
        "このメッセージは管理者のみが解放できます",
        "このメッセージはマルウェア、高確度のフィッシング、またはメール フロー ルールにより保留され\
         ました。解放できるのは管理者のみです。管理者に問い合わせてください。",
    ),
    expired: (
        "このリンクは有効期限が切れています",
        "この解放リンクと検疫のメッセージは有効期限が切れています。検疫のメッセージは有効期限を\
         過ぎると削除されます。",
    ),
    gone: (
        "このメッセージは検疫にありません",
        "このメッセージは有効期限が切れたため削除され、検疫にはありません。",
    ),
    released_already: "このメッセージは既に解放されています",
    deleted: "このメッセージは削除されました",
    decided: |deleted, on| {
        format!(
            "このメッセージは{}検疫から{}ため、再度解放することはできません。",
            on.map(|d| format!(" {d} に")).unwrap_or_default(),
            if deleted {
                "削除された"
            } else {
                "解放された"
            }
        )
    },
    failed: (
        "後でもう一度お試しください",
        "現在この要求を処理できません。後でもう一度お試しください。",
    ),
    title: "検疫からメッセージを解放",
    intro: |to, kind| {
        format!(
            "{to} 宛てのこのメッセージは {kind} として検疫に保留されています。受信トレイに解放しますか? \
             信頼できるメッセージのみを解放してください。"
        )
    },
    labels: ["送信者", "件名", "受信日時", "有効期限"],
    button: "解放",
    released: "解放しました",
    released_to: |to| format!("メッセージを {to} の受信トレイに解放しました。"),
    could_not: "メッセージを解放できませんでした",
    could_not_why: |why| format!("メッセージを解放できませんでした: {why}。"),
    request_intro: |to, kind| {
        format!(
            "{to} 宛てのこのメッセージは {kind} として検疫に保留されており、解放できるのは管理者の\
             みです。受信トレイへの解放を管理者に要求しますか?"
        )
    },
    request_button: "解放を要求",
    requested: "解放を要求しました",
    requested_text: "このメッセージの解放を管理者に要求しました。管理者が判断するまで検疫に保留\
         されます。",
};

/// The page's language: the digest's, from the link (`l`); English for anything else.
fn language(l: &str) -> DigestLanguage {
    DigestLanguage::resolve(l.get(..l.len().min(16)).unwrap_or(""), None)
}

fn texts(language: DigestLanguage) -> &'static Texts {
    match language {
        DigestLanguage::English => &ENGLISH,
        DigestLanguage::Japanese => &JAPANESE,
    }
}

/// A page in `language`; `body` is HTML already escaped.
fn page(
    language: DigestLanguage,
    status: StatusCode,
    s: &AppState,
    title: &str,
    body: &str,
) -> Response {
    page_in(language.tag(), status, &s.hostname, title, body)
}

/// A page of one paragraph of hato's own text.
fn said(
    language: DigestLanguage,
    status: StatusCode,
    s: &AppState,
    (title, text): (&str, &str),
) -> Response {
    page(
        language,
        status,
        s,
        title,
        &format!("<p>{}</p>\n", escape(text)),
    )
}

/// Why a link releases nothing.
enum Refused {
    /// Not made by this server, or not for this item's recipient.
    NotValid,
    /// Only admins release this kind.
    AdminOnly,
    Expired,
    /// No longer in quarantine (expired and removed).
    Gone,
    /// Released or deleted already: how, and when.
    Decided(QuarantineState, Option<Timestamp>),
    Failed(String),
}

fn refusal(s: &AppState, lang: DigestLanguage, r: Refused) -> Response {
    let t = texts(lang);
    match r {
        Refused::NotValid => said(lang, StatusCode::FORBIDDEN, s, t.not_valid),
        Refused::AdminOnly => said(lang, StatusCode::FORBIDDEN, s, t.admin_only),
        Refused::Expired => said(lang, StatusCode::GONE, s, t.expired),
        Refused::Gone => said(lang, StatusCode::GONE, s, t.gone),
        Refused::Decided(state, decided) => {
            let deleted = state == QuarantineState::Deleted;
            let title = if deleted {
                t.deleted
            } else {
                t.released_already
            };
            let on = decided.map(|at| date_text(lang, at));
            said(
                lang,
                StatusCode::CONFLICT,
                s,
                (title, &(t.decided)(deleted, on)),
            )
        }
        Refused::Failed(e) => {
            tracing::error!("quarantine release page: {e}");
            said(lang, StatusCode::INTERNAL_SERVER_ERROR, s, t.failed)
        }
    }
}

/// What a link lets its recipient do with the item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// Release it (a kind users release, under a policy that permits it).
    Release,
    /// Only ask an admin to (malware and high confidence phish, whose release Exchange turns
    /// into request release, or a policy granting only that): never a release.
    Request,
}

/// The item a token names and what its recipient may do with it at `now`: signed by this
/// server, not expired, naming the item's own recipient, still held, and a release or a
/// release request the item's quarantine policy permits. Reads only the secret and the one
/// item the token names.
async fn authorized(
    s: &AppState,
    t: String,
    now: Timestamp,
) -> Result<(QuarantineItem, Offer), Refused> {
    let found = s
        .blocking(move |s| {
            // No secret yet: no digest was ever sent, so no link can be genuine.
            let Some(secret) = s.store.existing_release_link_secret()? else {
                return Ok(Err(TokenError::BadSignature));
            };
            let claim = match token::verify(&secret, &t, now) {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            };
            let item = s.store.quarantine_item(claim.item)?;
            // What the item's quarantine policy lets its recipient do (a link is the
            // recipient's release, so it releases only what the policy permits).
            let releases = match &item {
                Some(it) => {
                    let perms = super::quarantine::permissions_of(s, it)?;
                    if perms.has(QuarantinePermission::Release) && !it.kind.admin_only() {
                        Some(Offer::Release)
                    } else if perms.has(QuarantinePermission::RequestRelease) {
                        Some(Offer::Request)
                    } else {
                        None
                    }
                }
                None => None,
            };
            Ok(Ok(((item, releases), claim)))
        })
        .await
        .map_err(|e| Refused::Failed(e.message))?;
    let ((item, releases), claim) = match found {
        Ok(found) => found,
        Err(TokenError::Expired) => return Err(Refused::Expired),
        Err(TokenError::Malformed | TokenError::BadSignature) => return Err(Refused::NotValid),
    };
    // A genuine token whose item was purged at its expiry.
    let Some(item) = item else {
        return Err(Refused::Gone);
    };
    // The token is for one recipient's copy: not another recipient's (item ids are not
    // secret), whatever the item.
    if item.recipient != claim.recipient {
        return Err(Refused::NotValid);
    }
    // Checked here, not trusted to the token: a token made with this server's secret for an
    // item its recipient may neither release nor request the release of does nothing.
    let Some(offer) = releases else {
        return Err(Refused::AdminOnly);
    };
    if now >= item.expires {
        return Err(Refused::Expired);
    }
    if item.state != QuarantineState::Held {
        return Err(Refused::Decided(item.state, item.decided));
    }
    Ok((item, offer))
}

/// What the link would release, and the button that does it.
async fn show(
    State(s): State<AppState>,
    query: Result<Query<TokenForm>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let lang = language(&q.l);
    let now = s.clock.now();
    let (item, offer) = match authorized(&s, q.t.clone(), now).await {
        Ok(found) => found,
        Err(r) => return refusal(&s, lang, r),
    };
    let t = texts(lang);
    let kind = kind_name(lang, item.kind);
    let (intro, op, button) = match offer {
        Offer::Release => ((t.intro)(&item.recipient, kind), "release", t.button),
        Offer::Request => (
            (t.request_intro)(&item.recipient, kind),
            "request",
            t.request_button,
        ),
    };
    let sender = if item.sender.is_empty() {
        "<>".to_string()
    } else {
        clean(&item.sender, MAX_SENDER_CHARS)
    };
    let [l_sender, l_subject, l_received, l_expires] = t.labels;
    let body = format!(
        "<p>{intro}</p>\n\
         <dl>\n<dt>{l_sender}</dt><dd>{sender}</dd>\n<dt>{l_subject}</dt><dd>{subject}</dd>\n\
         <dt>{l_received}</dt><dd>{received}</dd>\n<dt>{l_expires}</dt><dd>{expires}</dd>\n</dl>\n\
         <form method=\"post\" action=\"release\">\n\
         <input type=\"hidden\" name=\"t\" value=\"{token}\">\n\
         <input type=\"hidden\" name=\"l\" value=\"{lang_tag}\">\n\
         <input type=\"hidden\" name=\"op\" value=\"{op}\">\n\
         <p><button type=\"submit\">{button}</button></p>\n\
         </form>\n",
        intro = escape(&intro),
        sender = escape(&sender),
        subject = escape(&clean(&item.subject, MAX_SUBJECT_CHARS)),
        received = escape(&date_text(lang, item.received)),
        expires = escape(&date_text(lang, item.expires)),
        token = escape(&q.t),
        lang_tag = lang.tag(),
    );
    page(lang, StatusCode::OK, &s, t.title, &body)
}

/// Asks an admin to release the item (the quarantine's release request, as the API's
/// `request-release` makes it, by the recipient): once; a second request, or one denied,
/// says so.
async fn request(
    s: &AppState,
    lang: DigestLanguage,
    client: std::net::IpAddr,
    item: QuarantineItem,
    now: Timestamp,
) -> Response {
    let t = texts(lang);
    match s.store.request_release(item.id, &item.recipient, now).await {
        Ok(it) => {
            tracing::info!(
                "quarantine item {}: release requested by {} through its link, from {client}",
                it.id,
                it.recipient
            );
            said(lang, StatusCode::OK, s, (t.requested, t.requested_text))
        }
        Err(StoreError::InUse(why)) => said(
            lang,
            StatusCode::CONFLICT,
            s,
            (t.could_not, &(t.could_not_why)(&why)),
        ),
        Err(e) => refusal(s, lang, Refused::Failed(e.to_string())),
    }
}

/// Releases the one item the token names, to its recipient's Inbox, once (or, for an item
/// whose recipient may only ask, requests its release: `op=request`).
async fn release(
    State(s): State<AppState>,
    ClientIp(client): ClientIp,
    payload: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let f = payload.map(|Form(f)| f).unwrap_or_default();
    let lang = language(&f.l);
    let t = texts(lang);
    let now = s.clock.now();
    let (item, offer) = match authorized(&s, f.t, now).await {
        Ok(found) => found,
        Err(r) => {
            if !matches!(r, Refused::Failed(_)) {
                tracing::info!("quarantine release link from {client} refused");
            }
            return refusal(&s, lang, r);
        }
    };
    if f.op == "request" && offer == Offer::Request {
        return request(&s, lang, client, item, now).await;
    }
    // A release asked of an item whose recipient may only request it: refused, whatever the
    // form says.
    if offer != Offer::Release {
        tracing::info!("quarantine release link from {client} refused: release not permitted");
        return refusal(&s, lang, Refused::AdminOnly);
    }
    // Released by the recipient (the token's), as the trace's `Release` event says.
    match s
        .store
        .release_quarantined(item.id, &item.recipient, now)
        .await
    {
        Ok(it) => {
            tracing::info!(
                "quarantine item {} released to {} by its release link, from {client}",
                it.id,
                it.recipient
            );
            said(
                lang,
                StatusCode::OK,
                &s,
                (t.released, &(t.released_to)(&it.recipient)),
            )
        }
        // Released or deleted meanwhile (another click), or the mailbox is full.
        Err(StoreError::InUse(why)) => match s
            .blocking(move |s| Ok(s.store.quarantine_item(item.id)?))
            .await
        {
            Ok(Some(now_item)) if now_item.state != QuarantineState::Held => {
                refusal(&s, lang, Refused::Decided(now_item.state, now_item.decided))
            }
            _ => said(
                lang,
                StatusCode::CONFLICT,
                &s,
                (t.could_not, &(t.could_not_why)(&why)),
            ),
        },
        // No mailbox takes it any more (the recipient's was removed).
        Err(StoreError::NotFound(why)) => said(
            lang,
            StatusCode::GONE,
            &s,
            (t.could_not, &(t.could_not_why)(&format!("{why} not found"))),
        ),
        Err(e) => refusal(&s, lang, Refused::Failed(e.to_string())),
    }
}
