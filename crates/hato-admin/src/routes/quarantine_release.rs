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

use super::common::{escape, page};
use crate::state::{AppState, ClientIp};
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use hato_core::Timestamp;
use hato_store::{QuarantineItem, QuarantineState, StoreError};
use hato_transport::digest::content::{MAX_SENDER_CHARS, MAX_SUBJECT_CHARS};
use hato_transport::digest::{TokenError, clean, token};
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

fn refusal(s: &AppState, r: Refused) -> Response {
    let host = &s.hostname;
    match r {
        Refused::NotValid => page(
            StatusCode::FORBIDDEN,
            host,
            "This link is not valid",
            "<p>This release link is not valid: it may have been cut short, changed or mistyped, \
             or it was not made by this server. Use the link in your quarantine notification as \
             it is, or ask your administrator.</p>\n",
        ),
        Refused::AdminOnly => page(
            StatusCode::FORBIDDEN,
            host,
            "Only an administrator can release this message",
            "<p>This message was held as malware, high confidence phishing or by a mail flow \
             rule: only an administrator can release it. Ask your administrator.</p>\n",
        ),
        Refused::Expired => page(
            StatusCode::GONE,
            host,
            "This link has expired",
            "<p>This release link has expired, and so has the message in quarantine: messages \
             are deleted from quarantine when they expire.</p>\n",
        ),
        Refused::Gone => page(
            StatusCode::GONE,
            host,
            "This message is no longer in quarantine",
            "<p>This message is no longer in quarantine: it expired and was deleted.</p>\n",
        ),
        Refused::Decided(state, decided) => {
            let (title, what) = match state {
                QuarantineState::Deleted => ("This message was deleted", "deleted"),
                _ => ("This message was released already", "released"),
            };
            page(
                StatusCode::CONFLICT,
                host,
                title,
                &format!(
                    "<p>This message was {what} from quarantine{}; it cannot be released \
                     again.</p>\n",
                    decided
                        .map(|at| format!(" on {}", escape(&at.to_rfc5322())))
                        .unwrap_or_default()
                ),
            )
        }
        Refused::Failed(e) => {
            tracing::error!("quarantine release page: {e}");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                host,
                "Try again later",
                "<p>The request could not be handled just now. Please try again later.</p>\n",
            )
        }
    }
}

/// The item a token releases, if it may release it at `now`: signed by this server, not
/// expired, naming the item's own recipient, of a kind users release, still held. Reads only
/// the secret and the one item the token names.
async fn authorized(s: &AppState, t: String, now: Timestamp) -> Result<QuarantineItem, Refused> {
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
            Ok(Ok((s.store.quarantine_item(claim.item)?, claim)))
        })
        .await
        .map_err(|e| Refused::Failed(e.message))?;
    let (item, claim) = match found {
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
    // Checked here, not trusted to the token: even a token made with this server's secret
    // for an admin-only item (a digest never lists one) does not release it.
    if item.kind.admin_only() {
        return Err(Refused::AdminOnly);
    }
    if now >= item.expires {
        return Err(Refused::Expired);
    }
    if item.state != QuarantineState::Held {
        return Err(Refused::Decided(item.state, item.decided));
    }
    Ok(item)
}

/// What the link would release, and the button that does it.
async fn show(
    State(s): State<AppState>,
    query: Result<Query<TokenForm>, QueryRejection>,
) -> Response {
    let t = query.map(|Query(q)| q.t).unwrap_or_default();
    let now = s.clock.now();
    let item = match authorized(&s, t.clone(), now).await {
        Ok(item) => item,
        Err(r) => return refusal(&s, r),
    };
    let sender = if item.sender.is_empty() {
        "<>".to_string()
    } else {
        clean(&item.sender, MAX_SENDER_CHARS)
    };
    let body = format!(
        "<p>This message to {to} is held in quarantine as {kind}. Release it to your Inbox? \
         Release only messages you trust.</p>\n\
         <dl>\n<dt>Sender</dt><dd>{sender}</dd>\n<dt>Subject</dt><dd>{subject}</dd>\n\
         <dt>Received</dt><dd>{received}</dd>\n<dt>Expires</dt><dd>{expires}</dd>\n</dl>\n\
         <form method=\"post\" action=\"release\">\n\
         <input type=\"hidden\" name=\"t\" value=\"{t}\">\n\
         <p><button type=\"submit\">Release</button></p>\n\
         </form>\n",
        to = escape(&item.recipient),
        kind = escape(item.kind.as_str()),
        sender = escape(&sender),
        subject = escape(&clean(&item.subject, MAX_SUBJECT_CHARS)),
        received = escape(&item.received.to_rfc5322()),
        expires = escape(&item.expires.to_rfc5322()),
        t = escape(&t),
    );
    page(
        StatusCode::OK,
        &s.hostname,
        "Release a message from quarantine",
        &body,
    )
}

/// Releases the one item the token names, to its recipient's Inbox, once.
async fn release(
    State(s): State<AppState>,
    ClientIp(client): ClientIp,
    payload: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let t = payload.map(|Form(f)| f.t).unwrap_or_default();
    let now = s.clock.now();
    let item = match authorized(&s, t, now).await {
        Ok(item) => item,
        Err(r) => {
            if !matches!(r, Refused::Failed(_)) {
                tracing::info!("quarantine release link from {client} refused");
            }
            return refusal(&s, r);
        }
    };
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
            page(
                StatusCode::OK,
                &s.hostname,
                "Released",
                &format!(
                    "<p>The message has been released to the Inbox of {}.</p>\n",
                    escape(&it.recipient)
                ),
            )
        }
        // Released or deleted meanwhile (another click), or the mailbox is full.
        Err(StoreError::InUse(why)) => match s
            .blocking(move |s| Ok(s.store.quarantine_item(item.id)?))
            .await
        {
            Ok(Some(now_item)) if now_item.state != QuarantineState::Held => {
                refusal(&s, Refused::Decided(now_item.state, now_item.decided))
            }
            _ => page(
                StatusCode::CONFLICT,
                &s.hostname,
                "The message could not be released",
                &format!(
                    "<p>The message could not be released: {}.</p>\n",
                    escape(&why)
                ),
            ),
        },
        // No mailbox takes it any more (the recipient's was removed).
        Err(StoreError::NotFound(why)) => page(
            StatusCode::GONE,
            &s.hostname,
            "The message could not be released",
            &format!(
                "<p>The message could not be released: {} not found.</p>\n",
                escape(&why)
            ),
        ),
        Err(e) => refusal(&s, Refused::Failed(e.to_string())),
    }
}
