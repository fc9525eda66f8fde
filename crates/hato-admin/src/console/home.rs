//! Home: mail flow over the last 24 hours, 7 and 30 days as bar charts (SVG drawn here, no
//! script), the queue, the top senders and recipients, the throttled IPs. The figures are
//! message trace's, so they are shown to whom message trace is (`require_admin`), for the same
//! scope (`listing_scope`: a tenant admin's tenant, every tenant for the operator). Every figure
//! is read from counters the store keeps as mail is written (per tenant and UTC hour), and the
//! top ten from hourly Space-Saving summaries of at most `TOP_CAPACITY` addresses (kept by
//! `hato serve` every 2 seconds), never from a pass over the trace, so Home costs the same at a
//! million trace rows, or 400,000 distinct senders a day, as at ten; the throttled IPs come
//! from `routes::throttle::list`.

use super::error_page;
use super::i18n::{self, Lang, Text};
use super::layout::{self, Nav};
use super::session::Ctx;
use super::throttled;
use crate::state::{AppState, listing_scope, require_admin};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hato_store::{AddressCount, MailFlowCounts};
use maud::{Markup, html};

const DAY_SECS: i64 = 86_400;
/// Addresses in each top list, throttled IPs in theirs.
const TOP: usize = 10;

struct Figures {
    windows: [(Text, MailFlowCounts); 3],
    queued: u64,
    senders: Vec<AddressCount>,
    recipients: Vec<AddressCount>,
}

fn metrics(c: &MailFlowCounts) -> [(Text, u64); 8] {
    [
        (i18n::M_RECEIVED, c.received),
        (i18n::M_DELIVERED, c.delivered),
        (i18n::M_FAILED, c.failed),
        (i18n::M_REFUSED, c.refused),
        (i18n::M_MALWARE, c.malware),
        (i18n::M_RULES, c.rule_actions),
        (i18n::M_SPAM, c.spam),
        (i18n::M_QUARANTINED, c.quarantined),
    ]
}

/// A horizontal bar chart: one bar a metric, scaled to the largest. Presentation attributes
/// only (no `style`), which the Content-Security-Policy allows.
fn chart(lang: Lang, title: Text, c: &MailFlowCounts) -> Markup {
    let rows = metrics(c);
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (150u64, 220u64, 24u64);
    let height = row_h * rows.len() as u64 + 8;
    html! {
        figure.chart {
            figcaption { (title.get(lang)) }
            svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title.get(lang))
                viewBox={ "0 0 " (label_w + bar_w + 70) " " (height) } {
                @for (i, (name, n)) in rows.iter().enumerate() {
                    @let y = i as u64 * row_h + 4;
                    @let w = if *n == 0 { 0 } else { (n * bar_w / max).max(2) };
                    text x="0" y=(y + 16) { (name.get(lang)) }
                    rect.bar x=(label_w) y=(y + 3) width=(w) height=(row_h - 8) rx="2" {}
                    text.value x=(label_w + w + 6) y=(y + 16) data-metric=(i) { (n) }
                }
            }
        }
    }
}

fn top(lang: Lang, title: Text, rows: &[AddressCount]) -> Markup {
    html! {
        div.panel {
            h2 { (title.get(lang)) }
            @if rows.is_empty() { p.note { (i18n::NO_ROWS.get(lang)) } }
            @else {
                table.data {
                    thead { tr { th { (i18n::ADDRESS.get(lang)) } th { (i18n::COUNT.get(lang)) } } }
                    // A range when the hour's summaries were full (a spammer's many
                    // addresses): at least `count`, at most `count + error`.
                    tbody { @for r in rows { tr { td { (r.address) } td {
                        (r.count) @if r.error > 0 { "–" (r.count + r.error) }
                    } } } }
                }
            }
        }
    }
}

pub async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    let lang = ctx.lang;
    if require_admin(&ctx.p).is_err() {
        let body = html! {
            p { (i18n::WELCOME.get(lang)) ", " (ctx.name) }
            p.note { (i18n::USER_HOME_TEXT.get(lang)) }
        };
        return layout::page(&ctx, Some(Nav::Home), i18n::HOME.get(lang), body).into_response();
    }
    let p = ctx.p;
    let now = s.clock.now();
    let figures = s
        .blocking(move |s| {
            let tenant = listing_scope(s, &p, None)?;
            let since = |days: i64| now.plus_seconds(-days * DAY_SECS);
            let (senders, recipients) = s.store.top_addresses(tenant, since(1), TOP)?;
            let counts = s
                .store
                .mail_flow_counts(tenant, &[since(1), since(7), since(30)])?;
            let at = |i: usize| counts.get(i).copied().unwrap_or_default();
            Ok(Figures {
                windows: [
                    (i18n::LAST_24H, at(0)),
                    (i18n::LAST_7D, at(1)),
                    (i18n::LAST_30D, at(2)),
                ],
                queued: s.store.queued_recipients(tenant)?,
                senders,
                recipients,
            })
        })
        .await;
    let f = match figures {
        Ok(f) => f,
        Err(e) => return error_page(Some(&ctx), lang, e),
    };
    let throttled = throttled::page_of(&s, &ctx, 1, TOP).await;
    let body = html! {
        h2 { (i18n::MAIL_FLOW_STATUS.get(lang)) }
        div.cards {
            @for (title, counts) in &f.windows { div.panel { (chart(lang, *title, counts)) } }
        }
        div.cards {
            div.panel {
                h2 { (i18n::QUEUE.get(lang)) }
                p { (i18n::QUEUED.get(lang)) ": " strong #queued { (f.queued) } }
            }
            (top(lang, i18n::TOP_SENDERS, &f.senders))
            (top(lang, i18n::TOP_RECIPIENTS, &f.recipients))
            (throttled::home_panel(lang, throttled))
        }
    };
    layout::page(&ctx, Some(Nav::Home), i18n::HOME.get(lang), body).into_response()
}
