//! The IPs throttled now (issue 11: Home shows "throttled IPs"): the ten latest on Home with a
//! link, the whole list paged on Protection's throttle tab, and its CSV. Every figure comes from
//! `routes::throttle::list`, the API's own handler (`GET /api/v1/throttle`), called with the
//! session's principal: admins see the list, users are refused as the API refuses them.

use super::i18n::{self, Lang};
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, url_encode};
use crate::error::ApiError;
use crate::routes::throttle::{ListParams, ThrottledPage, list};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use maud::{Markup, html};

/// Where the whole list is.
pub const THROTTLE_TAB: &str = "/protection/throttle";
const CSV: &str = "/protection/throttle.csv";

/// One page of the list as `ctx` may see it.
pub async fn page_of(
    s: &AppState,
    ctx: &Ctx,
    page: usize,
    page_size: usize,
) -> Result<ThrottledPage, ApiError> {
    let params = ListParams {
        page: Some(page.to_string()),
        page_size: Some(page_size.to_string()),
    };
    let axum::Json(p) = list(State(s.clone()), ctx.p, Ok(Query(params))).await?;
    Ok(p)
}

fn columns() -> Vec<Column> {
    vec![
        Column {
            key: "ip",
            label: i18n::CLIENT_IP,
        },
        Column {
            key: "rule",
            label: i18n::RULE,
        },
        Column {
            key: "since",
            label: i18n::T_SINCE,
        },
        Column {
            key: "until",
            label: i18n::T_UNTIL,
        },
        Column {
            key: "strikes",
            label: i18n::T_STRIKES,
        },
    ]
}

fn time(t: &str) -> String {
    t.replace('T', " ").trim_end_matches('Z').to_string()
}

/// The rows, each IP linked to its status on the throttle tab (`tenant` kept for the operator).
fn table_of(p: ThrottledPage, tenant: &str) -> Table {
    Table {
        columns: columns(),
        rows: p
            .throttled
            .into_iter()
            .map(|t| {
                // The status lookup takes an address: an IPv6 prefix's first one.
                let ip = t.ip.split('/').next().unwrap_or_default().to_string();
                let mut href = format!("{THROTTLE_TAB}?ip={}", url_encode(&ip));
                if !tenant.is_empty() {
                    href.push_str(&format!("&tenant={}", url_encode(tenant)));
                }
                vec![
                    Cell {
                        text: t.ip,
                        href: Some(href),
                        class: None,
                    },
                    Cell::text(format!("{} ({})", t.rule, t.meaning)),
                    Cell::text(time(&t.since)),
                    Cell::text(time(&t.until)),
                    Cell::text(t.strikes.to_string()),
                ]
            })
            .collect(),
        more: p.more,
    }
}

/// Home's panel: the ten latest throttles and a link to the whole list.
pub fn home_panel(lang: Lang, found: Result<ThrottledPage, ApiError>) -> Markup {
    html! {
        div.panel #throttled-ips {
            h2 { (i18n::T_THROTTLED_IPS.get(lang)) }
            @match found {
                Err(e) => { p.error { (e.message) } }
                Ok(page) => {
                    p { (i18n::T_THROTTLED_NOW.get(lang)) ": " strong #throttled-count { (page.total) } }
                    @if !page.throttled.is_empty() {
                        table.data {
                            thead { tr {
                                th { (i18n::CLIENT_IP.get(lang)) } th { (i18n::RULE.get(lang)) }
                                th { (i18n::T_UNTIL.get(lang)) }
                            } }
                            tbody {
                                @for t in &page.throttled {
                                    tr { td { (t.ip) } td { (t.rule) } td { (time(&t.until)) } }
                                }
                            }
                        }
                    }
                    p { a href=(THROTTLE_TAB) { (i18n::T_ALL_THROTTLED.get(lang)) } }
                }
            }
        }
    }
}

/// The table's parameters and the tenant from a request's query (`ctx.here`).
fn params_of(here: &str) -> (TableParams, String) {
    #[derive(serde::Deserialize, Default)]
    struct Tenant {
        tenant: Option<String>,
    }
    let uri: Option<Uri> = here.parse().ok();
    let table = uri
        .as_ref()
        .and_then(|u| Query::<TableParams>::try_from_uri(u).ok())
        .map(|Query(t)| t)
        .unwrap_or_default();
    let tenant = uri
        .as_ref()
        .and_then(|u| Query::<Tenant>::try_from_uri(u).ok())
        .and_then(|Query(t)| t.tenant)
        .unwrap_or_default();
    (table, tenant.trim().to_string())
}

/// Protection's throttle tab: every IP throttled now, paged in the throttle's own walk (the
/// page and page size of the request), sortable and filterable within the page, with CSV.
pub async fn tab_panel(s: &AppState, ctx: &Ctx) -> Markup {
    let lang = ctx.lang;
    let (t, tenant) = params_of(&ctx.here);
    let found = page_of(s, ctx, t.page(), t.page_size()).await.map(|p| {
        let total = p.total;
        let mut table = table_of(p, &tenant);
        table.apply(&t);
        (total, table)
    });
    let query = vec![("tenant", tenant.clone())];
    html! {
        section.panel #throttled-list {
            h2 { (i18n::T_THROTTLED_IPS.get(lang)) }
            @match found {
                Err(e) => { p.error { (e.message) } }
                Ok((total, table)) => {
                    p { (i18n::T_THROTTLED_NOW.get(lang)) ": " strong #throttled-count { (total) } }
                    (table.render(lang, &t, THROTTLE_TAB, &query, CSV))
                }
            }
        }
    }
}

/// The list as CSV (the first 1,000).
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(t): Query<TableParams>) -> Response {
    let found = match page_of(&s, &ctx, 1, 1000).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&ctx), ctx.lang, e),
    };
    let mut table = table_of(found, "");
    table.apply(&TableParams {
        filter: t.filter,
        sort: t.sort,
        desc: t.desc,
        ..Default::default()
    });
    super::table::csv_response("throttled-ips.csv", table.csv(ctx.lang))
}
