//! The delist page: where a sender refused with `550 5.7.606` asks for its IP to be removed from
//! the provider's block list, as on Microsoft's delist portal (one email address and one IP per
//! request; a confirmation link is mailed; following it and pressing "Delist IP" removes the
//! entry). Plain HTML forms, no JavaScript, outside `/api/v1/`, no token.
//!
//! - `GET /delist`: the form (email address, IP).
//! - `POST /delist`: a request. Limited per web client IP and per address
//!   (`crate::delist_limit`: 429 with `Retry-After` beyond). When a single-address entry lists
//!   the IP, a confirmation link (a random single-use token, stored only as its SHA-256, valid
//!   24 hours) is mailed to the address; when a network entry lists it, the mail says to write to
//!   the postmaster instead (one sender does not speak for a whole network); when nothing lists
//!   it, nothing is mailed. The page says the same in every case ("if this IP is listed, a
//!   message has been sent"): someone who only asks learns nothing about the list, and nothing
//!   about why or since when an IP is listed (seed C1: listing criteria are not disclosed). The
//!   client at that IP learns that it is listed from the refusal itself; the page hides no more
//!   than that, so it does not mask timing.
//! - `GET /delist/confirm?token=T`: what the link would do, and a "Delist IP" button. Following
//!   a link changes nothing: mail scanners and link previews fetch links by themselves, and a
//!   GET is safe (RFC 9110 §9.2.1).
//! - `POST /delist/confirm`: uses the token once and removes the entry it was mailed for; a used
//!   or expired token, or an entry gone meanwhile, is said so (200), an unknown token too (404);
//!   so is a request the operator denied (`POST /api/v1/blocklist/requests/{id}/deny`): its link
//!   removes nothing.
//!
//! Every request and removal is logged and recorded (`GET /api/v1/blocklist/requests`).
//! Everything echoed is HTML-escaped; forms are at most [`MAX_FORM_BYTES`].

use super::common::{escape, page};
use crate::error::ApiError;
use crate::state::{AppState, ClientIp, reload_block_list};
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use hato_core::{Address, Timestamp, id};
use hato_store::{DelistConfirmation, DelistDecision, DelistOutcome, NewDelistRequest, hash_token};
use hato_transport::delivery::{DelistNotice, DelistNoticeKind, delist_notice};
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The request form.
const FORM: &str = "/delist";
/// Where a confirmation link leads.
const CONFIRM: &str = "/delist/confirm";
/// The pages this module serves (the router's tests check that they stay outside the API).
#[cfg(test)]
pub(super) const PATHS: [&str; 2] = [FORM, CONFIRM];

/// A form is two short fields; anything longer is refused before it is read.
pub(super) const MAX_FORM_BYTES: usize = 4096;
/// At most this much of what a visitor typed is shown back.
const MAX_ECHO_CHARS: usize = 320;

pub(super) fn pages() -> Router<AppState> {
    Router::new()
        .route(FORM, get(form).post(request))
        .route(CONFIRM, get(confirm_page).post(confirm))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// What a visitor typed, cut and escaped, to show back.
fn echo(text: &str) -> String {
    let cut: String = text.chars().take(MAX_ECHO_CHARS).collect();
    escape(&cut)
}

/// The request form, with what was typed and why it was refused, if it was.
fn form_page(s: &AppState, status: StatusCode, error: Option<&str>, f: &DelistForm) -> Response {
    let mut body = String::new();
    if let Some(e) = error {
        let _ = writeln!(body, "<p role=\"alert\"><strong>{e}</strong></p>");
    }
    let _ = write!(
        body,
        "<p>If mail from your server was refused with \"550 5.7.606 Access denied, banned sending \
         IP\", you can ask for the IP address to be removed from the block list of {host}. Give \
         one email address and one IP address; a message with a confirmation link is sent to \
         that address if the IP address is listed.</p>\n\
         <form method=\"post\" action=\"delist\">\n\
         <p><label for=\"address\">Your email address</label><br>\n\
         <input id=\"address\" name=\"address\" type=\"email\" required maxlength=\"254\" value=\"{address}\"></p>\n\
         <p><label for=\"ip\">The IP address to remove</label><br>\n\
         <input id=\"ip\" name=\"ip\" required maxlength=\"45\" value=\"{ip}\"></p>\n\
         <p><button type=\"submit\">Send the confirmation link</button></p>\n\
         </form>\n",
        host = escape(&s.hostname),
        address = echo(&f.address),
        ip = echo(&f.ip),
    );
    page(
        status,
        &s.hostname,
        "Remove an IP address from the block list",
        &body,
    )
}

/// The page of a request that could not be handled (the store failed): nothing was recorded
/// or mailed, try again.
fn failed(s: &AppState, e: &ApiError) -> Response {
    tracing::error!("delist page: {}", e.message);
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &s.hostname,
        "Try again later",
        "<p>The request could not be handled just now. Please try again later.</p>\n",
    )
}

#[derive(Deserialize, Default)]
struct DelistForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    ip: String,
}

/// The request form.
async fn form(State(s): State<AppState>) -> Response {
    form_page(&s, StatusCode::OK, None, &DelistForm::default())
}

/// A request: checked, limited, recorded, answered by mail, and always the same answer here.
async fn request(
    State(s): State<AppState>,
    ClientIp(client): ClientIp,
    payload: Result<Form<DelistForm>, FormRejection>,
) -> Response {
    let f = match payload {
        Ok(Form(f)) => f,
        Err(e) => {
            tracing::info!("delist request from {client} not read: {e}");
            return form_page(
                &s,
                e.status(),
                Some("The form could not be read; please fill it in again."),
                &DelistForm::default(),
            );
        }
    };
    let address = match Address::parse(&f.address) {
        Ok(a) if !a.is_bare_postmaster() => a,
        _ => {
            let e = format!("\"{}\" is not an email address.", echo(f.address.trim()));
            return form_page(&s, StatusCode::BAD_REQUEST, Some(&e), &f);
        }
    };
    let Ok(ip) = f.ip.trim().parse::<IpAddr>() else {
        let e = format!(
            "\"{}\" is not an IP address: give one IPv4 or IPv6 address, as the refusal shows it \
             between [ and ].",
            echo(f.ip.trim())
        );
        return form_page(&s, StatusCode::BAD_REQUEST, Some(&e), &f);
    };
    let ip = ip.to_canonical();
    if let Err(limited) = s.block_list.limiter().admit(client, &address.to_string()) {
        tracing::warn!(
            "delist request from {client} for {ip} to {address} refused: too many requests \
             (retry after {} s)",
            limited.retry_after_secs
        );
        let minutes = limited.retry_after_secs.div_ceil(60);
        let mut r = page(
            StatusCode::TOO_MANY_REQUESTS,
            &s.hostname,
            "Too many requests",
            &format!(
                "<p>Too many requests from your network or for this email address. Please try \
                 again in {minutes} minute{}.</p>\n",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_secs),
        );
        return r;
    }
    match handle_request(&s, client, ip, &address).await {
        Ok(outcome) => tracing::info!(
            "delist request from {client} for {ip} to {address}: {}",
            outcome.as_str()
        ),
        Err(e) => return failed(&s, &e),
    }
    let body = format!(
        "<p>If {ip} is on the block list of {host}, a message has been sent to {address} \
         saying how to have it removed: a link to confirm the removal, which works once, for 24 \
         hours (or, for an address listed as part of a network, whom to write to). If no \
         message arrives, the IP address is not listed here.</p>\n\
         <p><a href=\"delist\">Another request</a></p>\n",
        ip = escape(&ip.to_string()),
        host = escape(&s.hostname),
        address = escape(&address.to_string()),
    );
    page(StatusCode::OK, &s.hostname, "Check your mail", &body)
}

/// Looks the IP up, records the request and queues the notice it calls for.
async fn handle_request(
    s: &AppState,
    client: IpAddr,
    ip: IpAddr,
    address: &Address,
) -> Result<DelistOutcome, ApiError> {
    let now = s.clock.now();
    let listed = s.block_list.list().lookup(ip, now);
    let entry = match &listed {
        Some(e) => {
            let text = e.network.to_string();
            s.blocking(move |s| Ok(s.store.block_entry(&text)?)).await?
        }
        None => None,
    };
    let (outcome, token) = match (&listed, &entry) {
        (Some(l), Some(_)) if l.network.is_single() => {
            (DelistOutcome::ConfirmationSent, Some(id::new_token()))
        }
        (Some(_), Some(_)) => (DelistOutcome::ListedInRange, None),
        // Not listed, or removed from the store since the snapshot was taken.
        _ => (DelistOutcome::NotListed, None),
    };
    let expires = now.plus_seconds(crate::block_list::CONFIRMATION_SECS);
    s.store
        .add_delist_request(NewDelistRequest {
            requested: now,
            ip: ip.to_string(),
            address: address.to_string(),
            client_ip: client.to_string(),
            outcome,
            entry: entry.as_ref().map(|e| (e.id, e.entry.clone())),
            token: token.as_ref().map(|t| (hash_token(t), expires)),
        })
        .await?;
    if outcome == DelistOutcome::NotListed {
        return Ok(outcome);
    }
    let link = token.map(|t| {
        format!(
            "{}/confirm?token={t}",
            s.block_list.delist_url().trim_end_matches('/')
        )
    });
    let to = address.clone();
    // Routing the notice reads the directory: on the blocking pool, like every store read.
    let message = s
        .blocking(move |s| {
            let kind = match &link {
                Some(link) => DelistNoticeKind::Confirm { link, expires },
                None => DelistNoticeKind::ListedInRange,
            };
            let notice = DelistNotice {
                hostname: &s.hostname,
                to: &to,
                ip,
                client_ip: client,
                now,
                kind,
            };
            Ok(delist_notice(&s.directory, &notice)?)
        })
        .await?;
    s.store.enqueue(message).await?;
    Ok(outcome)
}

#[derive(Deserialize, Default)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

/// The stored hash of a token as mailed (`id::new_token`: 64 hex digits); `None` for anything
/// else, which no request can have.
fn token_hash(token: &str) -> Option<String> {
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash_token(token))
}

fn not_valid(s: &AppState) -> Response {
    page(
        StatusCode::NOT_FOUND,
        &s.hostname,
        "This link is not valid",
        "<p>This link is not valid: it may have been cut short or mistyped. \
         <a href=\"../delist\">Ask again</a> for a new one.</p>\n",
    )
}

fn used(s: &AppState, ip: &str, at: Timestamp) -> Response {
    page(
        StatusCode::OK,
        &s.hostname,
        "This link has been used",
        &format!(
            "<p>This link for {} has been used already, on {}; each link works once.</p>\n",
            escape(ip),
            escape(&at.to_rfc5322())
        ),
    )
}

fn expired(s: &AppState, ip: &str) -> Response {
    page(
        StatusCode::OK,
        &s.hostname,
        "This link has expired",
        &format!(
            "<p>This link for {} has expired: links work for 24 hours. \
             <a href=\"../delist\">Ask again</a> for a new one.</p>\n",
            escape(ip)
        ),
    )
}

/// The operator denied the request this link was mailed for: the link removes nothing.
fn denied(s: &AppState, ip: &str) -> Response {
    page(
        StatusCode::OK,
        &s.hostname,
        "This request was declined",
        &format!(
            "<p>The request to remove {} from the block list of {} was declined, so this link \
             removes nothing. Write to postmaster@{} about it.</p>\n",
            escape(ip),
            escape(&s.hostname),
            escape(&s.hostname)
        ),
    )
}

fn no_longer_listed(s: &AppState, ip: &str) -> Response {
    page(
        StatusCode::OK,
        &s.hostname,
        "Not listed",
        &format!(
            "<p>{} is no longer on the block list of {}: there is nothing to remove.</p>\n",
            escape(ip),
            escape(&s.hostname)
        ),
    )
}

/// What a confirmation link would do, and the button that does it.
async fn confirm_page(
    State(s): State<AppState>,
    query: Result<Query<TokenForm>, QueryRejection>,
) -> Response {
    let token = query.map(|Query(q)| q.token).unwrap_or_default();
    let Some(hash) = token_hash(&token) else {
        return not_valid(&s);
    };
    let now = s.clock.now();
    // The request, and whether the entry it was mailed for (that row: not one listed anew
    // since) is still in force. Pressing the button decides for sure; this spares the visitor
    // a button that would do nothing.
    let found = s
        .blocking(move |s| {
            let Some(r) = s.store.delist_request_by_token(&hash)? else {
                return Ok(None);
            };
            let current = match &r.entry {
                Some(text) => s.store.block_entry(text)?,
                None => None,
            };
            let listed = current
                .is_some_and(|e| Some(e.id) == r.entry_id && e.expires.is_none_or(|end| now < end));
            Ok(Some((r, listed)))
        })
        .await;
    let (r, listed) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return not_valid(&s),
        Err(e) => return failed(&s, &e),
    };
    if r.decision == Some(DelistDecision::Denied) {
        return denied(&s, &r.ip);
    }
    if let Some(at) = r.confirmed {
        return used(&s, &r.ip, at);
    }
    if r.token_expires.is_none_or(|e| now >= e) {
        return expired(&s, &r.ip);
    }
    if !listed {
        return no_longer_listed(&s, &r.ip);
    }
    let body = format!(
        "<p>Remove {ip} from the block list of {host}? Mail from it is accepted again at \
         once.</p>\n\
         <form method=\"post\" action=\"confirm\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\n\
         <p><button type=\"submit\">Delist IP</button></p>\n\
         </form>\n",
        ip = escape(&r.ip),
        host = escape(&s.hostname),
        token = escape(&token),
    );
    page(StatusCode::OK, &s.hostname, "Confirm the removal", &body)
}

/// Uses a confirmation token: the entry it was mailed for is removed, once.
async fn confirm(
    State(s): State<AppState>,
    ClientIp(client): ClientIp,
    payload: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let token = payload.map(|Form(f)| f.token).unwrap_or_default();
    let Some(hash) = token_hash(&token) else {
        tracing::info!("delist confirmation from {client} with a malformed token");
        return not_valid(&s);
    };
    let now = s.clock.now();
    let answer = match s.store.confirm_delist(&hash, now).await {
        Ok(answer) => answer,
        Err(e) => return failed(&s, &ApiError::from(e)),
    };
    match answer {
        DelistConfirmation::Removed { ip, entry } => {
            tracing::info!(
                "block list: {entry} removed by a delist request, confirmed from {client}"
            );
            reload_block_list(&s).await;
            let mut body = format!(
                "<p>{} has been removed from the block list of {}.</p>\n",
                escape(&ip),
                escape(&s.hostname)
            );
            // A wider entry may list it still; that one is not removed on request.
            if let Some(wider) = ip
                .parse::<IpAddr>()
                .ok()
                .and_then(|a| s.block_list.list().lookup(a, now))
            {
                let _ = writeln!(
                    body,
                    "<p>It is still listed as part of the network {}, which is not removed on \
                     request: write to postmaster@{} about it.</p>",
                    escape(&wider.network.to_string()),
                    escape(&s.hostname)
                );
            }
            page(StatusCode::OK, &s.hostname, "Removed", &body)
        }
        DelistConfirmation::NoLongerListed { ip } => {
            tracing::info!(
                "delist confirmation from {client} for {ip}: no longer listed, nothing removed"
            );
            no_longer_listed(&s, &ip)
        }
        DelistConfirmation::AlreadyUsed { ip, at } => {
            tracing::info!("delist confirmation from {client} for {ip}: the link was used before");
            used(&s, &ip, at)
        }
        DelistConfirmation::Expired { ip } => {
            tracing::info!("delist confirmation from {client} for {ip}: the link has expired");
            expired(&s, &ip)
        }
        DelistConfirmation::Denied { ip } => {
            tracing::info!(
                "delist confirmation from {client} for {ip}: the operator denied the request"
            );
            denied(&s, &ip)
        }
        DelistConfirmation::Unknown => {
            tracing::info!("delist confirmation from {client} with an unknown token");
            not_valid(&s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_and_no_way_out_of_an_attribute() {
        let hostile = "\"><script>alert('x')</script>&amp;<img src=x onerror=alert(1)>";
        let e = escape(hostile);
        assert_eq!(
            e,
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;&lt;img \
             src=x onerror=alert(1)&gt;"
        );
        assert!(!e.contains(['<', '>', '"', '\'']));
        assert_eq!(escape("plain text é"), "plain text é");
        // What is echoed is cut first.
        assert_eq!(echo(&"<".repeat(10_000)), "&lt;".repeat(MAX_ECHO_CHARS));
    }

    #[test]
    fn only_a_token_of_the_mailed_form_is_looked_up() {
        let token = id::new_token();
        assert_eq!(token_hash(&token), Some(hash_token(&token)));
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(65),
            &format!("{token} "),
        ] {
            assert_eq!(token_hash(bad), None, "{bad}");
        }
    }
}
