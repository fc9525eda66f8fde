//! The console's one table: columns with sortable headers, a row filter, paging with a page
//! size the person picks, and CSV export of the same rows. Pages give it their rows and the
//! query that produced them; every link keeps that query, so tables work without JavaScript
//! (htmx, when present, swaps only `#results`).

use super::i18n::{self, Lang, Text};
use super::query_string;
use maud::{Markup, html};
use serde::Deserialize;

/// The page sizes offered.
pub const PAGE_SIZES: [usize; 5] = [25, 50, 100, 500, 1000];
pub const DEFAULT_PAGE_SIZE: usize = 50;

pub struct Column {
    pub key: &'static str,
    pub label: Text,
}

pub struct Cell {
    pub text: String,
    /// A link (a local path) on the cell's text.
    pub href: Option<String>,
    /// A CSS class (`status-Delivered`, …); hato's own words only.
    pub class: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: None,
            class: None,
        }
    }
}

/// The table's own parameters, beside the page's query: `sort` (a column key), `desc`,
/// `filter`, `page`, `page_size`.
#[derive(Deserialize, Default, Clone)]
pub struct TableParams {
    pub sort: Option<String>,
    pub desc: Option<String>,
    pub filter: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

impl TableParams {
    pub fn page(&self) -> usize {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    pub fn page_size(&self) -> usize {
        self.page_size
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| PAGE_SIZES.contains(p))
            .unwrap_or(DEFAULT_PAGE_SIZE)
    }

    fn descending(&self) -> bool {
        self.desc.as_deref() == Some("1")
    }

    fn filter_text(&self) -> String {
        self.filter.as_deref().unwrap_or("").trim().to_string()
    }
}

pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Whether the source has rows after this page.
    pub more: bool,
}

impl Table {
    /// Keeps the rows whose text contains the filter (any case), then sorts them by the chosen
    /// column (stable; numbers as numbers). Linear in the rows' text, then n log n.
    pub fn apply(&mut self, t: &TableParams) {
        let needle = t.filter_text().to_lowercase();
        if !needle.is_empty() {
            self.rows
                .retain(|r| r.iter().any(|c| c.text.to_lowercase().contains(&needle)));
        }
        if let Some(i) = t
            .sort
            .as_deref()
            .and_then(|k| self.columns.iter().position(|c| c.key == k))
        {
            self.rows.sort_by(|a, b| {
                let (x, y) = (&a[i].text, &b[i].text);
                match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    _ => x.cmp(y),
                }
            });
            if t.descending() {
                self.rows.reverse();
            }
        }
    }

    /// The table, its tools and pager. `path` and `query` are the page's own (its filters),
    /// kept in every link; `csv` is the export's path.
    pub fn render(
        &self,
        lang: Lang,
        t: &TableParams,
        path: &str,
        query: &[(&str, String)],
        csv: &str,
    ) -> Markup {
        // Sorting this page's rows is sorting all of them when they fit on one page.
        let paged = self.more || t.page() > 1;
        self.render_noted(lang, t, path, query, csv, paged.then_some(i18n::SORT_NOTE))
    }

    /// [`Table::render`] for a list the store sorts and pages (the sort column is the
    /// store's order over every row): no note that sorting applies to this page only.
    pub fn render_store_sorted(
        &self,
        lang: Lang,
        t: &TableParams,
        path: &str,
        query: &[(&str, String)],
        csv: &str,
    ) -> Markup {
        self.render_noted(lang, t, path, query, csv, Some(i18n::S9_STORE_SORT_NOTE))
    }

    fn render_noted(
        &self,
        lang: Lang,
        t: &TableParams,
        path: &str,
        query: &[(&str, String)],
        csv: &str,
        note: Option<Text>,
    ) -> Markup {
        let (page, size) = (t.page(), t.page_size());
        let link = |sort: Option<&str>, desc: bool, page: usize| {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if let Some(s) = sort {
                q.push(("sort", s.to_string()));
                if desc {
                    q.push(("desc", "1".into()));
                }
            }
            q.push(("filter", t.filter_text()));
            q.push(("page_size", size.to_string()));
            if page > 1 {
                q.push(("page", page.to_string()));
            }
            format!("{path}?{}", query_string(&q))
        };
        let sorted = t.sort.as_deref();
        let csv_href = format!("{csv}?{}", query_string(query));
        html! {
            div.tools {
                form.inline method="get" action=(path) {
                    @for (k, v) in query {
                        @if !v.is_empty() { input type="hidden" name=(k) value=(v); }
                    }
                    @if let Some(s) = sorted { input type="hidden" name="sort" value=(s); }
                    @if t.descending() { input type="hidden" name="desc" value="1"; }
                    label { (i18n::FILTER.get(lang)) " "
                        input type="search" name="filter" value=(t.filter_text());
                    }
                    " "
                    label { (i18n::PAGE_SIZE.get(lang)) " "
                        select name="page_size" {
                            @for n in PAGE_SIZES {
                                option value=(n) selected[n == size] { (n) }
                            }
                        }
                    }
                    " "
                    button type="submit" { (i18n::APPLY.get(lang)) }
                }
                a.export href=(csv_href) download { (i18n::EXPORT_CSV.get(lang)) }
            }
            @if self.rows.is_empty() {
                p.note { (i18n::NO_ROWS.get(lang)) }
            } @else {
                table.data {
                    thead { tr {
                        @for c in &self.columns {
                            @let now = sorted == Some(c.key);
                            @let desc = now && !t.descending();
                            th aria-sort=(if !now { "none" } else if t.descending() { "descending" } else { "ascending" }) {
                                a href=(link(Some(c.key), desc, page)) {
                                    (c.label.get(lang))
                                    @if now { @if t.descending() { " ▼" } @else { " ▲" } }
                                }
                            }
                        }
                    } }
                    // Links in rows lead to other pages (a detail): not swapped into the table.
                    tbody hx-boost="false" {
                        @for r in &self.rows {
                            tr {
                                @for c in r {
                                    td class=[c.class.as_deref()] {
                                        @if let Some(h) = &c.href { a href=(h) { (c.text) } }
                                        @else { (c.text) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label=(i18n::PAGE.get(lang)) {
                @if page > 1 { a rel="prev" href=(link(sorted, t.descending(), page - 1)) { (i18n::PREVIOUS.get(lang)) } }
                span { (i18n::PAGE.get(lang)) " " (page) }
                @if self.more { a rel="next" href=(link(sorted, t.descending(), page + 1)) { (i18n::NEXT.get(lang)) } }
            }
            @if let Some(n) = note { p.note.sort-note { (n.get(lang)) } }
        }
    }

    /// The rows as CSV (RFC 4180: quoted fields, CRLF). A field that a spreadsheet would read
    /// as a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'` (OWASP CSV injection),
    /// since these fields come from mail.
    pub fn csv(&self, lang: Lang) -> String {
        let mut out = String::new();
        let field = |out: &mut String, s: &str| {
            let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
            out.push('"');
            if risky {
                out.push('\'');
            }
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        };
        let header: Vec<&str> = self.columns.iter().map(|c| c.label.get(lang)).collect();
        for (i, h) in header.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, h);
        }
        out.push_str("\r\n");
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                field(&mut out, &c.text);
            }
            out.push_str("\r\n");
        }
        out
    }
}

/// A CSV download (RFC 4180 §3's `text/csv`, UTF-8) saved as `name` (RFC 6266
/// `attachment`): every export of the console answers through this.
pub fn csv_response(name: &str, body: String) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // The names are the console's own (ASCII, no quote); one that is not a header value
    // leaves the browser to name the file.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    key: "a",
                    label: Text("A", "A"),
                },
                Column {
                    key: "n",
                    label: Text("N", "N"),
                },
            ],
            rows: vec![
                vec![Cell::text("beta"), Cell::text("10")],
                vec![Cell::text("alpha"), Cell::text("9")],
                vec![Cell::text("=cmd|x"), Cell::text("100")],
            ],
            more: false,
        }
    }

    #[test]
    fn sorts_numbers_as_numbers_and_filters_any_cell() {
        let mut t = table();
        t.apply(&TableParams {
            sort: Some("n".into()),
            desc: Some("1".into()),
            ..Default::default()
        });
        let firsts: Vec<&str> = t.rows.iter().map(|r| r[1].text.as_str()).collect();
        assert_eq!(firsts, ["100", "10", "9"]);
        let mut t = table();
        t.apply(&TableParams {
            filter: Some("ALP".into()),
            ..Default::default()
        });
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn csv_quotes_fields_and_defuses_formulas() {
        let csv = table().csv(Lang::En);
        assert!(csv.starts_with("\"A\",\"N\"\r\n"), "{csv}");
        assert!(csv.contains("\"'=cmd|x\",\"100\"\r\n"), "{csv}");
    }

    #[test]
    fn page_size_is_one_of_the_offered() {
        let t = TableParams {
            page_size: Some("100000".into()),
            ..Default::default()
        };
        assert_eq!(t.page_size(), DEFAULT_PAGE_SIZE);
        let t = TableParams {
            page_size: Some("100".into()),
            page: Some("0".into()),
            ..Default::default()
        };
        assert_eq!((t.page_size(), t.page()), (100, 1));
    }
}
