//! Mail flow: transport rules (list in priority order, create from the API's condition and
//! action lists, move up and down, enable, mode, delete, test a message), accepted domains
//! (add, verify, remove), connectors (inbound and outbound: create, edit, enable, delete,
//! validate with the SMTP transcript) and the queue (paged in the store; retry, delete).
//!
//! Every read and change is the API handler's own function (`routes::rules`, `routes::domains`,
//! `routes::connectors`, `routes::outbound_connectors`, `routes::queue`) called with the
//! session's principal: the same checks and authorization. The section is for global admins
//! and the operator (`Nav::MailFlow`), as the API's mail-flow calls: a recipient admin never
//! sees accepted domains or connectors.

use super::flow_kit::{
    Notice, Section, Tab, body, done_href, exchange_name, facts, field, given, hidden, href, input,
    list, tenant_query, text, typed, value, yes_no,
};
use super::i18n::{self, Lang};
use super::layout::Nav;
use super::session::Ctx;
use super::table::{Cell, Column, Table, TableParams};
use super::{error_page, see_other, url_encode};
use crate::error::ApiError;
use crate::routes::{connectors, domains, outbound_connectors, queue, rules};
use crate::state::{ApiResult, AppState, Path, TenantFilter};
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hato_core::directory::Tenant;
use hato_protection::rules::{Actions, Conditions};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

const RULES: &str = "/mail-flow";
const DOMAINS: &str = "/mail-flow/domains";
const CONNECTORS: &str = "/mail-flow/connectors";
const QUEUE: &str = "/mail-flow/queue";

const TABS: [Tab; 4] = [
    Tab {
        path: RULES,
        label: i18n::RULES,
    },
    Tab {
        path: DOMAINS,
        label: i18n::ACCEPTED_DOMAINS,
    },
    Tab {
        path: CONNECTORS,
        label: i18n::CONNECTORS,
    },
    Tab {
        path: QUEUE,
        label: i18n::QUEUE,
    },
];

/// The conditions the rule form offers: `Conditions`' fields (Exchange's `New-TransportRule`
/// parameters in snake case) that take one value or a list. A unit test checks each is one.
pub const CONDITIONS: &[&str] = &[
    "from",
    "from_scope",
    "from_member_of",
    "from_address_contains_words",
    "from_address_matches_patterns",
    "sender_domain_is",
    "sender_ip_ranges",
    "sender_ad_attribute_contains_words",
    "sent_to",
    "sent_to_scope",
    "sent_to_member_of",
    "recipient_domain_is",
    "recipient_address_contains_words",
    "any_of_to_cc_header",
    "subject_contains_words",
    "subject_matches_patterns",
    "subject_or_body_contains_words",
    "subject_or_body_matches_patterns",
    "attachment_name_matches_patterns",
    "attachment_extension_matches_words",
    "attachment_contains_words",
    "attachment_has_executable_content",
    "attachment_is_password_protected",
    "attachment_size_over",
    "message_size_over",
    "scl_over",
    "message_type_matches",
];

/// The actions the rule form offers (`Actions`' fields; `set_header` takes `Name: value`).
pub const ACTIONS: &[&str] = &[
    "prepend_subject",
    "set_scl",
    "reject_message_reason_text",
    "delete_message",
    "quarantine",
    "redirect_message_to",
    "blind_copy_to",
    "add_to_recipients",
    "copy_to",
    "set_header",
    "remove_header",
    "apply_html_disclaimer_text",
    "generate_incident_report",
    "route_message_outbound_connector",
];

/// The modes, as the API names them (Exchange's Enforce, Audit, AuditAndNotify: "test with
/// policy tips").
pub const MODES: [(&str, i18n::Text); 3] = [
    ("enforce", i18n::MODE_ENFORCE),
    ("audit", i18n::MODE_AUDIT),
    ("audit-and-notify", i18n::MODE_AUDIT_NOTIFY),
];

// ---------------------------------------------------------------------------------------------
// The frame.

#[derive(Deserialize, Default)]
pub struct PageQuery {
    tenant: Option<String>,
    done: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// The section: its navigation entry and tabs (`flow_kit::Section`: the handlers' common
/// start, frame and CSV export).
const SECTION: Section = Section {
    nav: Nav::MailFlow,
    tabs: &TABS,
};

async fn start(
    s: &AppState,
    ctx: &Ctx,
    named: Option<&str>,
    path: &str,
) -> Result<Tenant, Response> {
    SECTION.start(s, ctx, named, path).await
}

fn frame(
    ctx: &Ctx,
    t: &Tenant,
    tab: &str,
    status: StatusCode,
    notice: &Notice,
    body: Markup,
) -> Response {
    SECTION.frame(ctx, t, tab, status, notice, body)
}

// ---------------------------------------------------------------------------------------------
// Transport rules.

fn rule_columns() -> Vec<Column> {
    vec![
        Column {
            key: "priority",
            label: i18n::PRIORITY,
        },
        Column {
            key: "name",
            label: i18n::NAME,
        },
        Column {
            key: "enabled",
            label: i18n::ENABLED,
        },
        Column {
            key: "mode",
            label: i18n::MODE,
        },
        Column {
            key: "conditions",
            label: i18n::CONDITIONS,
        },
        Column {
            key: "exceptions",
            label: i18n::S9_EXCEPTIONS,
        },
        Column {
            key: "actions",
            label: i18n::ACTIONS,
        },
        Column {
            key: "hits",
            label: i18n::HITS,
        },
    ]
}

/// `key=value` of an object's fields, for a table cell.
fn pairs(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", exchange_name(k), text(v)))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}

async fn rules_of(s: &AppState, ctx: &Ctx, t: &Tenant) -> Result<Vec<Value>, ApiError> {
    let v = value(rules::list(State(s.clone()), ctx.p, Path(t.name.clone())).await)?;
    Ok(match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    })
}

fn rules_table(ctx: &Ctx, t: &Tenant, rules: &[Value]) -> Table {
    let lang = ctx.lang;
    Table {
        columns: rule_columns(),
        rows: rules
            .iter()
            .map(|r| {
                let name = field(r, "name");
                let rule = r.get("rule");
                vec![
                    Cell::text(field(r, "priority")),
                    Cell {
                        href: Some(href(
                            ctx,
                            t,
                            &format!("{RULES}/rule/{}", url_encode(&name)),
                            &[],
                        )),
                        text: name,
                        class: Some("rule-name".into()),
                    },
                    Cell::text(yes_no(lang, r, "enabled")),
                    Cell::text(rule.map(|r| field(r, "mode")).unwrap_or_default()),
                    Cell::text(pairs(rule.and_then(|r| r.get("conditions")))),
                    Cell::text(pairs(rule.and_then(|r| r.get("exceptions")))),
                    Cell::text(pairs(rule.and_then(|r| r.get("actions")))),
                    Cell::text(field(r, "hits")),
                ]
            })
            .collect(),
        more: false,
    }
}

/// The fields of the rule test.
#[derive(Deserialize, Default)]
pub struct TestForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    message: Option<String>,
    ip: Option<String>,
}

/// The rule form's fields (kept when the API refuses them). `condition`/`condition_value`,
/// `exception`/`exception_value` and `action`/`action_value` repeat, one pair a row, so the
/// form is read from its pairs in order (a browser sends every row, an empty value too).
#[derive(Default)]
pub struct RuleForm {
    csrf: Option<String>,
    tenant: Option<String>,
    name: Option<String>,
    mode: Option<String>,
    priority: Option<String>,
    activation_date: Option<String>,
    expiry_date: Option<String>,
    comments: Option<String>,
    stop_rule_processing: bool,
    conditions: Vec<(String, String)>,
    exceptions: Vec<(String, String)>,
    actions: Vec<(String, String)>,
}

/// At most this many rows of each kind are read from one form (the API's rules hold far fewer).
const ROWS_MAX: usize = 64;
/// Empty rows the form offers beside a rule's own.
const BLANK_ROWS: usize = 2;

impl RuleForm {
    fn read(pairs: Vec<(String, String)>) -> RuleForm {
        let mut f = RuleForm::default();
        let mut keys: [Vec<String>; 3] = Default::default();
        let mut values: [Vec<String>; 3] = Default::default();
        for (k, v) in pairs {
            let row = |i: usize, list: &mut [Vec<String>; 3], v: String| {
                if list[i].len() < ROWS_MAX {
                    list[i].push(v);
                }
            };
            match k.as_str() {
                "_csrf" => f.csrf = Some(v),
                "tenant" => f.tenant = Some(v),
                "name" => f.name = Some(v),
                "mode" => f.mode = Some(v),
                "priority" => f.priority = Some(v),
                "activation_date" => f.activation_date = Some(v),
                "expiry_date" => f.expiry_date = Some(v),
                "comments" => f.comments = Some(v),
                "stop_rule_processing" => f.stop_rule_processing = true,
                "condition" => row(0, &mut keys, v),
                "condition_value" => row(0, &mut values, v),
                "exception" => row(1, &mut keys, v),
                "exception_value" => row(1, &mut values, v),
                "action" => row(2, &mut keys, v),
                "action_value" => row(2, &mut values, v),
                _ => {}
            }
        }
        let [ck, ek, ak] = keys;
        let [cv, ev, av] = values;
        let rows = |k: Vec<String>, v: Vec<String>| -> Vec<(String, String)> {
            let mut v = v.into_iter();
            k.into_iter()
                .map(|k| (k.trim().to_string(), v.next().unwrap_or_default()))
                .filter(|(k, _)| !k.is_empty())
                .collect()
        };
        f.conditions = rows(ck, cv);
        f.exceptions = rows(ek, ev);
        f.actions = rows(ak, av);
        f
    }

    /// The form of a rule as the API shows it (`RuleView.rule`), for editing.
    fn of_rule(rule: &Value) -> RuleForm {
        let s = |k: &str| rule.get(k).map(text).filter(|v| !v.is_empty());
        let mut actions = rows_of(rule.get("actions"));
        // SetHeader is two parameters in Exchange, one row here (`Name: value`).
        let mut header = |k: &str| {
            actions
                .iter()
                .position(|(key, _)| key == k)
                .map(|i| actions.remove(i).1)
        };
        if let Some(name) = header("set_header_name") {
            let value = header("set_header_value").unwrap_or_default();
            actions.push(("set_header".into(), format!("{name}: {value}")));
        }
        RuleForm {
            name: s("name"),
            mode: s("mode"),
            priority: s("priority"),
            activation_date: s("activation_date"),
            expiry_date: s("expiry_date"),
            comments: s("comments"),
            stop_rule_processing: rule
                .get("stop_rule_processing")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            conditions: rows_of(rule.get("conditions")),
            exceptions: rows_of(rule.get("exceptions")),
            actions,
            ..Default::default()
        }
    }
}

/// An object's fields as form rows: lists one item a line (a pattern may hold a comma).
fn rows_of(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
                    other => text(other),
                };
                (k.clone(), shown)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A row's value as the API takes the field `key` of `T`: patterns one a line (a regular
/// expression may hold a comma, `a{1,3}`), anything else as `typed` reads it.
fn row_value<T: serde::de::DeserializeOwned>(key: &str, raw: &str) -> Value {
    if key.ends_with("_patterns") {
        return Value::Array(
            raw.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_string()))
                .collect(),
        );
    }
    typed::<T>(key, raw)
}

/// Rows as the API's object for `T` (`Conditions` or `Actions`); a key given twice adds its
/// values to the first's.
fn rows_json<T: serde::de::DeserializeOwned>(
    rows: &[(String, String)],
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (k, raw) in rows {
        if k == "set_header" {
            let (name, val) = raw.split_once(':').unwrap_or((raw.as_str(), ""));
            out.insert("set_header_name".into(), json!(name.trim()));
            out.insert("set_header_value".into(), json!(val.trim()));
            continue;
        }
        let v = row_value::<T>(k, raw);
        match (out.get_mut(k), v) {
            (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
            (_, v) => {
                out.insert(k.clone(), v);
            }
        }
    }
    out
}

/// The rows of one kind (conditions, exceptions or actions): each a choice of the API's names
/// and a value; the rule's own rows first, then empty ones.
fn rule_rows(
    lang: Lang,
    kind: &str,
    legend: i18n::Text,
    offered: &[&str],
    rows: &[(String, String)],
) -> Markup {
    let value_name = format!("{kind}_value");
    let blank = (String::new(), String::new());
    let shown = rows.iter().chain(std::iter::repeat_n(&blank, BLANK_ROWS));
    html! {
        fieldset.rule-rows data-kind=(kind) {
            legend { (legend.get(lang)) }
            @for (key, val) in shown {
                div.rule-row {
                    label { (i18n::S9_PARAMETER.get(lang))
                        select name=(kind) {
                            option value="" selected[key.is_empty()] { "—" }
                            @for o in offered {
                                option value=(o) selected[*o == key.as_str()] { (exchange_name(o)) }
                            }
                            // A field of the rule the list does not offer (set through the
                            // API): kept as it is.
                            @if !key.is_empty() && !offered.contains(&key.as_str()) {
                                option value=(key) selected { (exchange_name(key)) }
                            }
                        }
                    }
                    label { (i18n::VALUE.get(lang))
                        textarea name=(value_name) rows="1" placeholder=(i18n::LIST_HINT.get(lang)) { (val) }
                    }
                }
            }
        }
    }
}

/// The rule form: new (`editing` none) or the change of the rule named.
fn rule_form(ctx: &Ctx, t: &Tenant, f: &RuleForm, editing: Option<&str>) -> Markup {
    let lang = ctx.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let mode = v(&f.mode);
    let action = match editing {
        Some(name) => format!("{RULES}/rule/{}", url_encode(name)),
        None => format!("{RULES}/rules"),
    };
    html! {
        form.panel.rule-form method="post" action=(action) {
            h2 { @if editing.is_some() { (i18n::S9_EDIT_RULE.get(lang)) } @else { (i18n::NEW_RULE.get(lang)) } }
            p.note { (i18n::S9_RULE_FORM_HELP.get(lang)) }
            (hidden(ctx, t))
            label { (i18n::NAME.get(lang))
                input type="text" name="name" value=(v(&f.name)) required maxlength="64";
            }
            label { (i18n::MODE.get(lang))
                select name="mode" {
                    @for (m, label) in MODES {
                        option value=(m) selected[m == mode] { (label.get(lang)) }
                    }
                }
            }
            label { (i18n::PRIORITY.get(lang))
                input type="number" name="priority" min="0" value=(v(&f.priority));
            }
            label { (i18n::S9_ACTIVATION_DATE.get(lang))
                input type="text" name="activation_date" value=(v(&f.activation_date)) placeholder="2026-12-01T00:00:00Z";
            }
            label { (i18n::S9_EXPIRY_DATE.get(lang))
                input type="text" name="expiry_date" value=(v(&f.expiry_date)) placeholder="2027-01-01T00:00:00Z";
            }
            label.wide { (i18n::S9_COMMENTS.get(lang))
                input type="text" name="comments" value=(v(&f.comments));
            }
            (rule_rows(lang, "condition", i18n::S9_APPLY_IF, CONDITIONS, &f.conditions))
            (rule_rows(lang, "exception", i18n::S9_EXCEPT_IF, CONDITIONS, &f.exceptions))
            (rule_rows(lang, "action", i18n::S9_DO_THE_FOLLOWING, ACTIONS, &f.actions))
            label.check {
                input type="checkbox" name="stop_rule_processing" value="1" checked[f.stop_rule_processing];
                " " (i18n::STOP_PROCESSING.get(lang))
            }
            div.actions { button type="submit" { @if editing.is_some() { (i18n::SAVE.get(lang)) } @else { (i18n::CREATE.get(lang)) } } }
        }
    }
}

fn test_form(ctx: &Ctx, t: &Tenant, f: &TestForm) -> Markup {
    let lang = ctx.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        form.panel.rule-test method="post" action={ (RULES) "/test" } {
            h2 { (i18n::TEST_MESSAGE.get(lang)) }
            p.note { (i18n::TEST_HELP.get(lang)) }
            (hidden(ctx, t))
            label { (i18n::SENDER.get(lang)) input type="text" name="from" value=(v(&f.from)); }
            label { (i18n::RECIPIENTS_FIELD.get(lang)) input type="text" name="to" value=(v(&f.to)) required; }
            label { (i18n::SUBJECT.get(lang)) input type="text" name="subject" value=(v(&f.subject)); }
            label { (i18n::CLIENT_IP.get(lang)) input type="text" name="ip" value=(v(&f.ip)); }
            label.wide { (i18n::BODY.get(lang)) textarea name="body" rows="3" { (v(&f.body)) } }
            label.wide { (i18n::WHOLE_MESSAGE.get(lang)) textarea name="message" rows="6" { (v(&f.message)) } }
            div.actions { button type="submit" { (i18n::RUN_TEST.get(lang)) } }
        }
    }
}

fn test_result(lang: Lang, v: &Value) -> Markup {
    let recipients = v
        .pointer("/evaluation/recipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        section.panel #test-result {
            h2 { (i18n::TEST_RESULT.get(lang)) }
            ul.summary {
                @for line in v.get("summary").and_then(Value::as_array).into_iter().flatten() {
                    li { (text(line)) }
                }
            }
            @for r in &recipients {
                h3 { (field(r, "recipient")) }
                table.data.hits {
                    thead { tr {
                        th { (i18n::PRIORITY.get(lang)) } th { (i18n::RULE.get(lang)) }
                        th { (i18n::MODE.get(lang)) } th { (i18n::MATCHED.get(lang)) }
                    } }
                    tbody {
                        @for h in r.get("hits").and_then(Value::as_array).into_iter().flatten() {
                            tr {
                                td { (field(h, "priority")) }
                                td.hit-rule { (field(h, "rule")) }
                                td { (field(h, "mode")) }
                                td {
                                    @for m in h.get("matched").and_then(Value::as_array).into_iter().flatten() {
                                        @let pair = m.as_array().cloned().unwrap_or_default();
                                        span.hit-match { (exchange_name(&pair.first().map(text).unwrap_or_default())) ": " (pair.get(1).map(text).unwrap_or_default()) } br;
                                    }
                                }
                            }
                        }
                    }
                }
                ul.decisions {
                    @for d in r.get("decisions").and_then(Value::as_array).into_iter().flatten() {
                        li { (d.pointer("/reason/text").map(text).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn rules_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &TableParams,
    status: StatusCode,
    notice: Notice,
    kept: &RuleForm,
    test: (&TestForm, Option<Value>),
) -> Response {
    let lang = ctx.lang;
    let rules = match rules_of(s, ctx, t).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let mut table = rules_table(ctx, t, &rules);
    table.apply(q);
    let body = html! {
        // The test's answer first: it is what the person just asked for.
        @if let Some(v) = &test.1 { (test_result(lang, v)) }
        p.note { (i18n::RULES_HELP.get(lang)) }
        div #results {
            (table.render(lang, q, RULES, &tenant_query(ctx, t), &format!("{RULES}/rules.csv")))
        }
        (rule_form(ctx, t, kept, None))
        (test_form(ctx, t, test.0))
    };
    frame(ctx, t, RULES, status, &notice, body)
}

pub async fn rules_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            RULES,
            q.done.as_deref(),
            async |t, notice| {
                rules_page(
                    s,
                    ctx,
                    &t,
                    &q.table,
                    StatusCode::OK,
                    notice,
                    &RuleForm::default(),
                    (&TestForm::default(), None),
                )
                .await
            },
        )
        .await
}

pub async fn rules_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            RULES,
            &q.table,
            "transport-rules.csv",
            async |t| Ok(rules_table(ctx, &t, &rules_of(s, ctx, &t).await?)),
        )
        .await
}

/// The rule the form describes, as the API's JSON (`New-TransportRule`'s parameters).
fn rule_json(f: &RuleForm) -> ApiResult<Value> {
    let mut rule = json!({ "name": f.name.clone().unwrap_or_default().trim() });
    if let Some(m) = given(&f.mode) {
        rule["mode"] = json!(m);
    }
    if let Some(p) = priority_of(f)? {
        rule["priority"] = json!(p);
    }
    for (key, field) in [
        ("activation_date", &f.activation_date),
        ("expiry_date", &f.expiry_date),
        ("comments", &f.comments),
    ] {
        if let Some(v) = given(field) {
            rule[key] = json!(v);
        }
    }
    let conditions = rows_json::<Conditions>(&f.conditions);
    let exceptions = rows_json::<Conditions>(&f.exceptions);
    if !conditions.is_empty() {
        rule["conditions"] = Value::Object(conditions);
    }
    if !exceptions.is_empty() {
        rule["exceptions"] = Value::Object(exceptions);
    }
    rule["actions"] = Value::Object(rows_json::<Actions>(&f.actions));
    if f.stop_rule_processing {
        rule["stop_rule_processing"] = json!(true);
    }
    Ok(rule)
}

fn priority_of(f: &RuleForm) -> ApiResult<Option<u64>> {
    given(&f.priority)
        .map(|p| {
            p.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("--priority {p:?}: a whole number, 0 first"))
            })
        })
        .transpose()
}

/// The change of a rule the form describes, as the API's merge patch (RFC 7396) of `old`
/// (`RuleView.rule`): the form holds the whole rule, so what it no longer lists is removed
/// (`null`), a condition, an exception, an action or a date.
fn rule_patch(f: &RuleForm, old: &Value) -> ApiResult<Value> {
    let new = rule_json(f)?;
    let mut patch = serde_json::Map::new();
    for key in ["conditions", "exceptions", "actions"] {
        let mut part = serde_json::Map::new();
        if let Some(Value::Object(had)) = old.get(key) {
            for k in had.keys() {
                part.insert(k.clone(), Value::Null);
            }
        }
        if let Some(Value::Object(now)) = new.get(key) {
            for (k, v) in now {
                part.insert(k.clone(), v.clone());
            }
        }
        patch.insert(key.into(), Value::Object(part));
    }
    for key in [
        "name",
        "mode",
        "priority",
        "activation_date",
        "expiry_date",
        "comments",
    ] {
        patch.insert(key.into(), new.get(key).cloned().unwrap_or(Value::Null));
    }
    // Absent from the form: the rule's mode and priority stay as they are.
    for key in ["mode", "priority"] {
        if patch.get(key) == Some(&Value::Null) {
            patch.remove(key);
        }
    }
    patch.insert("stop_rule_processing".into(), json!(f.stop_rule_processing));
    Ok(Value::Object(patch))
}

pub async fn create_rule(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = RuleForm::read(pairs);
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), RULES).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let created = match rule_json(&f) {
        Ok(rule) => rules::create(
            State(s.clone()),
            ctx.p,
            Path(t.name.clone()),
            Ok(axum::Json(rule)),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => see_other(&done_href(&ctx, &t, RULES, "created")),
        Err(e) => {
            rules_page(
                &s,
                &ctx,
                &t,
                &TableParams::default(),
                e.status,
                Notice::error(&e),
                &f,
                (&TestForm::default(), None),
            )
            .await
        }
    }
}

/// A test message from the form: the pasted one (its line ends made CRLF, RFC 5322 §2.1), or
/// one built from the sender, recipients, subject and body (line breaks in header fields
/// dropped: one field stays one line).
fn test_message(f: &TestForm) -> Vec<u8> {
    if let Some(m) = given(&f.message) {
        return m.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes();
    }
    let one_line = |o: &Option<String>| o.clone().unwrap_or_default().replace(['\r', '\n'], " ");
    let mut m = String::new();
    if let Some(from) = given(&f.from) {
        m.push_str(&format!("From: {}\r\n", from.replace(['\r', '\n'], " ")));
    }
    m.push_str(&format!("To: {}\r\n", one_line(&f.to)));
    m.push_str(&format!("Subject: {}\r\n\r\n", one_line(&f.subject)));
    m.push_str(
        &f.body
            .clone()
            .unwrap_or_default()
            .replace("\r\n", "\n")
            .replace('\n', "\r\n"),
    );
    m.push_str("\r\n");
    m.into_bytes()
}

pub async fn test_rules(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<TestForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), RULES).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut params = json!({ "to": list(&f.to).join(",") });
    if let Some(from) = given(&f.from) {
        params["from"] = json!(from);
    }
    if let Some(ip) = given(&f.ip) {
        params["ip"] = json!(ip);
    }
    let answer = match input::<rules::TestParams>(params) {
        Ok(p) => value(
            rules::test(
                State(s.clone()),
                ctx.p,
                Path(t.name.clone()),
                Query(p),
                Bytes::from(test_message(&f)),
            )
            .await,
        ),
        Err(e) => Err(e),
    };
    let (status, notice, result) = match answer {
        Ok(v) => (StatusCode::OK, Notice::default(), Some(v)),
        Err(e) => (e.status, Notice::error(&e), None),
    };
    rules_page(
        &s,
        &ctx,
        &t,
        &TableParams::default(),
        status,
        notice,
        &RuleForm::default(),
        (&f, result),
    )
    .await
}

/// A rule's description as Exchange's admin centre words it: apply this rule if…, except if…,
/// do the following…, and its properties.
fn rule_description(lang: Lang, rule: &Value) -> Markup {
    let part = |key: &str| rows_of(rule.get(key));
    let items = |rows: Vec<(String, String)>| {
        html! {
            ul {
                @for (k, v) in rows {
                    li { span.param { (exchange_name(&k)) } " " (v.replace('\n', ", ")) }
                }
            }
        }
    };
    let (conditions, exceptions, actions) =
        (part("conditions"), part("exceptions"), part("actions"));
    html! {
        dl.rule-description {
            dt { (i18n::S9_APPLY_IF.get(lang)) }
            dd.conditions {
                @if conditions.is_empty() { (i18n::S9_EVERY_MESSAGE.get(lang)) } @else { (items(conditions)) }
            }
            @if !exceptions.is_empty() {
                dt { (i18n::S9_EXCEPT_IF.get(lang)) }
                dd.exceptions { (items(exceptions)) }
            }
            dt { (i18n::S9_DO_THE_FOLLOWING.get(lang)) }
            dd.actions { (items(actions)) }
            @if rule.get("stop_rule_processing").and_then(Value::as_bool) == Some(true) {
                dd { (i18n::STOP_PROCESSING.get(lang)) }
            }
            dt { (i18n::MODE.get(lang)) } dd { (field(rule, "mode")) }
            @for (key, label) in [("activation_date", i18n::S9_ACTIVATION_DATE), ("expiry_date", i18n::S9_EXPIRY_DATE), ("comments", i18n::S9_COMMENTS)] {
                @if !field(rule, key).is_empty() { dt { (label.get(lang)) } dd { (field(rule, key)) } }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RuleQuery {
    tenant: Option<String>,
}

/// One rule: its description, its buttons and the form that changes it.
pub async fn rule_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<RuleQuery>,
) -> Response {
    let t = match start(&s, &ctx, q.tenant.as_deref(), RULES).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    rule_page(
        &s,
        &ctx,
        &t,
        &name,
        StatusCode::OK,
        Notice::done(None),
        None,
    )
    .await
}

async fn rule_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    name: &str,
    status: StatusCode,
    notice: Notice,
    kept: Option<&RuleForm>,
) -> Response {
    let lang = ctx.lang;
    let rule = match value(
        rules::show(
            State(s.clone()),
            ctx.p,
            Path((t.name.clone(), name.to_string())),
        )
        .await,
    ) {
        Ok(v) => v,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let count = rules_of(s, ctx, t).await.map(|r| r.len()).unwrap_or(0);
    let priority = rule.get("priority").and_then(Value::as_u64).unwrap_or(0);
    let enabled = rule.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let name = field(&rule, "name");
    let whole = rule.get("rule").cloned().unwrap_or(Value::Null);
    let mode = field(&whole, "mode");
    let last = priority + 1 >= count as u64;
    let button = |op: &'static str, label: i18n::Text| {
        html! {
            form.inline method="post" action={ (RULES) "/rule-action" } {
                (hidden(ctx, t))
                input type="hidden" name="rule" value=(name);
                input type="hidden" name="op" value=(op);
                button type="submit" data-op=(op) { (label.get(lang)) }
            }
        }
    };
    let form = match kept {
        Some(f) => rule_form(ctx, t, f, Some(&name)),
        None => rule_form(ctx, t, &RuleForm::of_rule(&whole), Some(&name)),
    };
    let body = html! {
        p { a href=(href(ctx, t, RULES, &[])) { (i18n::BACK.get(lang)) } }
        h2.rule-title { (name) }
        div.buttons {
            @if priority > 0 { (button("up", i18n::MOVE_UP)) }
            @if !last { (button("down", i18n::MOVE_DOWN)) }
            @if enabled { (button("disable", i18n::DISABLE)) } @else { (button("enable", i18n::ENABLE)) }
            form.inline method="post" action={ (RULES) "/rule-action" } {
                (hidden(ctx, t))
                input type="hidden" name="rule" value=(name);
                input type="hidden" name="op" value="mode";
                select name="mode" {
                    @for (m, label) in MODES { option value=(m) selected[m == mode] { (label.get(lang)) } }
                }
                button type="submit" data-op="mode" { (i18n::SET_MODE.get(lang)) }
            }
            (button("delete", i18n::DELETE))
        }
        (rule_description(lang, &whole))
        (form)
        details.rule-facts {
            summary { (i18n::DETAILS.get(lang)) }
            (facts(&rule))
        }
    };
    frame(ctx, t, RULES, status, &notice, body)
}

/// Changes a rule (`Set-TransportRule`) to what its form holds: conditions, exceptions,
/// actions, name, mode, priority, dates, comments.
pub async fn edit_rule(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = RuleForm::read(pairs);
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), RULES).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let st = || State(s.clone());
    let path = || Path((t.name.clone(), name.clone()));
    let changed = async {
        let old = value(rules::show(st(), ctx.p, path()).await)?;
        let patch = rule_patch(&f, old.get("rule").unwrap_or(&Value::Null))?;
        value(rules::change(st(), ctx.p, path(), Ok(axum::Json(patch))).await)
    }
    .await;
    match changed {
        Ok(v) => see_other(&done_href(
            &ctx,
            &t,
            &format!("{RULES}/rule/{}", url_encode(&field(&v, "name"))),
            "changed",
        )),
        Err(e) => rule_page(&s, &ctx, &t, &name, e.status, Notice::error(&e), Some(&f)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct RuleActionForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    rule: Option<String>,
    op: Option<String>,
    mode: Option<String>,
}

/// Moves a rule, turns it on or off, sets its mode or deletes it; back to the list.
pub async fn rule_action(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<RuleActionForm>,
) -> Response {
    let lang = ctx.lang;
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), RULES).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let name = f.rule.clone().unwrap_or_default();
    let st = || State(s.clone());
    let path = || Path((t.name.clone(), name.clone()));
    let patch = |v: Value| rules::change(st(), ctx.p, path(), Ok(axum::Json(v)));
    let done = match f.op.as_deref().unwrap_or("") {
        op @ ("up" | "down") => {
            let current = value(rules::show(st(), ctx.p, path()).await)
                .map(|v| v.get("priority").and_then(Value::as_u64).unwrap_or(0));
            match current {
                Ok(p) => {
                    let to = if op == "up" {
                        p.saturating_sub(1)
                    } else {
                        p + 1
                    };
                    patch(json!({ "priority": to })).await.map(|_| "moved")
                }
                Err(e) => Err(e),
            }
        }
        "enable" => rules::enable(st(), ctx.p, path()).await.map(|_| "changed"),
        "disable" => rules::disable(st(), ctx.p, path()).await.map(|_| "changed"),
        "mode" => patch(json!({ "mode": f.mode.clone().unwrap_or_default() }))
            .await
            .map(|_| "changed"),
        "delete" => rules::remove(st(), ctx.p, path()).await.map(|_| "removed"),
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok(code) => see_other(&done_href(&ctx, &t, RULES, code)),
        Err(e) => error_page(Some(&ctx), lang, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Accepted domains.

fn domain_columns() -> Vec<Column> {
    vec![
        Column {
            key: "domain",
            label: i18n::DOMAIN,
        },
        Column {
            key: "type",
            label: i18n::DOMAIN_TYPE,
        },
        Column {
            key: "status",
            label: i18n::VERIFICATION,
        },
        Column {
            key: "record",
            label: i18n::VERIFICATION_RECORD,
        },
    ]
}

async fn domains_table(s: &AppState, ctx: &Ctx, t: &Tenant) -> Result<Table, ApiError> {
    let v = value(
        domains::list_domains(
            State(s.clone()),
            ctx.p,
            Query(TenantFilter {
                tenant: Some(t.name.clone()),
            }),
        )
        .await,
    )?;
    let rows = v.as_array().cloned().unwrap_or_default();
    Ok(Table {
        columns: domain_columns(),
        rows: rows
            .iter()
            .map(|d| {
                let status = field(d, "status");
                vec![
                    Cell::text(field(d, "domain")),
                    Cell::text(field(d, "type")),
                    Cell {
                        class: Some(format!(
                            "domain-{}",
                            if status == "verified" {
                                "verified"
                            } else {
                                "pending"
                            }
                        )),
                        text: status,
                        href: None,
                    },
                    Cell::text(field(d, "verification_record")),
                ]
            })
            .collect(),
        more: false,
    })
}

#[derive(Deserialize, Default)]
pub struct DomainForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    domain: Option<String>,
    #[serde(rename = "type")]
    domain_type: Option<String>,
    op: Option<String>,
}

async fn domains_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &TableParams,
    status: StatusCode,
    notice: Notice,
    kept: &DomainForm,
) -> Response {
    let lang = ctx.lang;
    let mut table = match domains_table(s, ctx, t).await {
        Ok(table) => table,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let names: Vec<String> = table.rows.iter().map(|r| r[0].text.clone()).collect();
    table.apply(q);
    let kind = kept.domain_type.clone().unwrap_or_default();
    let body = html! {
        p.note { (i18n::DOMAINS_HELP.get(lang)) }
        div #results {
            (table.render(lang, q, DOMAINS, &tenant_query(ctx, t), &format!("{DOMAINS}.csv")))
        }
        form.panel method="post" action=(DOMAINS) {
            h2 { (i18n::ADD_DOMAIN.get(lang)) }
            (hidden(ctx, t))
            input type="hidden" name="op" value="add";
            label { (i18n::DOMAIN.get(lang))
                input type="text" name="domain" value=(if kept.op.as_deref() == Some("add") { kept.domain.clone().unwrap_or_default() } else { String::new() }) required;
            }
            label { (i18n::DOMAIN_TYPE.get(lang))
                select name="type" {
                    @for k in ["authoritative", "internal-relay"] { option value=(k) selected[k == kind] { (k) } }
                }
            }
            div.actions { button type="submit" { (i18n::ADD.get(lang)) } }
        }
        @if !names.is_empty() {
            form.panel method="post" action=(DOMAINS) {
                h2 { (i18n::DOMAIN_ACTIONS.get(lang)) }
                (hidden(ctx, t))
                label { (i18n::DOMAIN.get(lang))
                    select name="domain" { @for n in &names { option value=(n) selected[Some(n) == kept.domain.as_ref()] { (n) } } }
                }
                div.actions {
                    button type="submit" name="op" value="verify" { (i18n::VERIFY.get(lang)) }
                    " "
                    button type="submit" name="op" value="remove" { (i18n::REMOVE.get(lang)) }
                }
            }
        }
    };
    frame(ctx, t, DOMAINS, status, &notice, body)
}

pub async fn domains_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            DOMAINS,
            q.done.as_deref(),
            async |t, notice| {
                domains_page(
                    s,
                    ctx,
                    &t,
                    &q.table,
                    StatusCode::OK,
                    notice,
                    &DomainForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn domains_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            DOMAINS,
            &q.table,
            "accepted-domains.csv",
            async |t| domains_table(s, ctx, &t).await,
        )
        .await
}

/// Adds, verifies or removes an accepted domain.
pub async fn domain_action(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<DomainForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), DOMAINS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let domain = f.domain.clone().unwrap_or_default().trim().to_string();
    let st = State(s.clone());
    let done = match f.op.as_deref().unwrap_or("") {
        "add" => {
            let mut v = json!({ "domain": domain, "tenant": t.name });
            if let Some(kind) = given(&f.domain_type) {
                v["type"] = json!(kind);
            }
            match body(v) {
                Ok(b) => domains::create_domain(st, ctx.p, b)
                    .await
                    .map(|_| "created"),
                Err(e) => Err(e),
            }
        }
        "verify" => domains::verify_domain(st, ctx.p, Path(domain))
            .await
            .map(|_| "verified"),
        "remove" => domains::delete_domain(st, ctx.p, Path(domain))
            .await
            .map(|_| "removed"),
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok(code) => see_other(&done_href(&ctx, &t, DOMAINS, code)),
        Err(e) => {
            domains_page(
                &s,
                &ctx,
                &t,
                &TableParams::default(),
                e.status,
                Notice::error(&e),
                &f,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connectors.

fn connector_columns() -> Vec<Column> {
    vec![
        Column {
            key: "direction",
            label: i18n::DIRECTION,
        },
        Column {
            key: "name",
            label: i18n::NAME,
        },
        Column {
            key: "type",
            label: i18n::CONNECTOR_TYPE,
        },
        Column {
            key: "enabled",
            label: i18n::ENABLED,
        },
        Column {
            key: "scope",
            label: i18n::CONNECTOR_SCOPE,
        },
        Column {
            key: "comment",
            label: i18n::COMMENT,
        },
    ]
}

/// Both lists of connectors: (direction, the API's JSON of each).
async fn connectors_of(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
) -> Result<Vec<(&'static str, Value)>, ApiError> {
    let inbound = value(connectors::list(State(s.clone()), ctx.p, Path(t.name.clone())).await)?;
    let outbound =
        value(outbound_connectors::list(State(s.clone()), ctx.p, Path(t.name.clone())).await)?;
    let mut out = Vec::new();
    for (dir, v) in [("inbound", inbound), ("outbound", outbound)] {
        for c in v.as_array().cloned().unwrap_or_default() {
            out.push((dir, c));
        }
    }
    Ok(out)
}

fn connectors_table(ctx: &Ctx, t: &Tenant, all: &[(&'static str, Value)]) -> Table {
    let lang = ctx.lang;
    Table {
        columns: connector_columns(),
        rows: all
            .iter()
            .map(|(dir, c)| {
                let name = field(c, "name");
                let scope = if *dir == "inbound" {
                    [field(c, "sender_ip_addresses"), field(c, "sender_domains")]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                } else {
                    [field(c, "recipient_domains"), field(c, "smart_hosts")]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" → ")
                };
                vec![
                    Cell::text(if *dir == "inbound" {
                        i18n::INBOUND.get(lang)
                    } else {
                        i18n::OUTBOUND.get(lang)
                    }),
                    Cell {
                        href: Some(href(
                            ctx,
                            t,
                            &format!("{CONNECTORS}/{dir}/{}", url_encode(&name)),
                            &[],
                        )),
                        text: name,
                        class: Some("connector-name".into()),
                    },
                    Cell::text(field(c, "connector_type")),
                    Cell::text(yes_no(lang, c, "enabled")),
                    Cell::text(scope),
                    Cell::text(field(c, "comment")),
                ]
            })
            .collect(),
        more: false,
    }
}

/// The connector form's fields (new or edit; kept when refused).
#[derive(Deserialize, Default, Clone)]
pub struct ConnectorForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    direction: Option<String>,
    name: Option<String>,
    connector_type: Option<String>,
    /// Inbound.
    sender_ip_addresses: Option<String>,
    sender_domains: Option<String>,
    /// Outbound.
    recipient_domains: Option<String>,
    smart_hosts: Option<String>,
    comment: Option<String>,
    /// `op` on the detail page: save, enable, disable, delete, validate.
    op: Option<String>,
    recipient: Option<String>,
    /// An inbound connector's validation: the connection to judge.
    sender_ip_address: Option<String>,
    sender_address: Option<String>,
    tls_certificate_name: Option<String>,
    tls: Option<String>,
}

impl ConnectorForm {
    /// The settings the form gives, as the API's JSON (for `direction`).
    fn settings(&self, inbound: bool) -> Value {
        let mut v = json!({});
        if let Some(t) = given(&self.connector_type) {
            v["connector_type"] = json!(t);
        }
        if inbound {
            v["sender_ip_addresses"] = json!(list(&self.sender_ip_addresses));
            v["sender_domains"] = json!(list(&self.sender_domains));
        } else {
            v["recipient_domains"] = json!(list(&self.recipient_domains));
            let hosts = list(&self.smart_hosts);
            if hosts.is_empty() {
                v["use_mx_record"] = json!(true);
            } else {
                v["smart_hosts"] = json!(hosts);
            }
        }
        v["comment"] = json!(self.comment.clone().unwrap_or_default());
        v
    }

    fn of(dir: &str, c: &Value) -> ConnectorForm {
        let lines = |k: &str| {
            Some(
                c.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default(),
            )
        };
        ConnectorForm {
            direction: Some(dir.to_string()),
            name: Some(field(c, "name")),
            connector_type: Some(field(c, "connector_type")),
            sender_ip_addresses: lines("sender_ip_addresses"),
            sender_domains: lines("sender_domains"),
            recipient_domains: lines("recipient_domains"),
            smart_hosts: lines("smart_hosts"),
            comment: Some(field(c, "comment")),
            ..Default::default()
        }
    }
}

/// The fields of a connector (for a new one, with its direction and name).
fn connector_fields(lang: Lang, f: &ConnectorForm, new: bool) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let dir = f.direction.clone().unwrap_or_else(|| "inbound".into());
    let kind = v(&f.connector_type);
    html! {
        @if new {
            label { (i18n::DIRECTION.get(lang))
                select name="direction" {
                    option value="inbound" selected[dir == "inbound"] { (i18n::INBOUND.get(lang)) }
                    option value="outbound" selected[dir == "outbound"] { (i18n::OUTBOUND.get(lang)) }
                }
            }
            label { (i18n::NAME.get(lang)) input type="text" name="name" value=(v(&f.name)) required maxlength="64"; }
        }
        label { (i18n::CONNECTOR_TYPE.get(lang))
            select name="connector_type" {
                option value="partner" selected[kind == "partner"] { (i18n::PARTNER.get(lang)) }
                option value="on-premises" selected[kind == "on-premises"] { (i18n::ON_PREMISES.get(lang)) }
            }
        }
        @if new || dir == "inbound" {
            label { (i18n::SENDER_IPS.get(lang)) textarea name="sender_ip_addresses" rows="2" placeholder=(i18n::INBOUND_ONLY.get(lang)) { (v(&f.sender_ip_addresses)) } }
            label { (i18n::SENDER_DOMAINS.get(lang)) textarea name="sender_domains" rows="2" placeholder=(i18n::INBOUND_ONLY.get(lang)) { (v(&f.sender_domains)) } }
        }
        @if new || dir == "outbound" {
            label { (i18n::RECIPIENT_DOMAINS.get(lang)) textarea name="recipient_domains" rows="2" placeholder=(i18n::OUTBOUND_ONLY.get(lang)) { (v(&f.recipient_domains)) } }
            label { (i18n::SMART_HOSTS.get(lang)) textarea name="smart_hosts" rows="2" placeholder=(i18n::OUTBOUND_ONLY.get(lang)) { (v(&f.smart_hosts)) } }
        }
        label { (i18n::COMMENT.get(lang)) input type="text" name="comment" value=(v(&f.comment)); }
    }
}

async fn connectors_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &TableParams,
    status: StatusCode,
    notice: Notice,
    kept: &ConnectorForm,
) -> Response {
    let lang = ctx.lang;
    let all = match connectors_of(s, ctx, t).await {
        Ok(all) => all,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let mut table = connectors_table(ctx, t, &all);
    table.apply(q);
    let body = html! {
        div #results {
            (table.render(lang, q, CONNECTORS, &tenant_query(ctx, t), &format!("{CONNECTORS}.csv")))
        }
        form.panel.connector-form method="post" action=(CONNECTORS) {
            h2 { (i18n::NEW_CONNECTOR.get(lang)) }
            (hidden(ctx, t))
            (connector_fields(lang, kept, true))
            div.actions { button type="submit" { (i18n::CREATE.get(lang)) } }
        }
    };
    frame(ctx, t, CONNECTORS, status, &notice, body)
}

pub async fn connectors_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            CONNECTORS,
            q.done.as_deref(),
            async |t, notice| {
                connectors_page(
                    s,
                    ctx,
                    &t,
                    &q.table,
                    StatusCode::OK,
                    notice,
                    &ConnectorForm::default(),
                )
                .await
            },
        )
        .await
}

pub async fn connectors_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, ctx) = (&s, &ctx);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            CONNECTORS,
            &q.table,
            "connectors.csv",
            async |t| Ok(connectors_table(ctx, &t, &connectors_of(s, ctx, &t).await?)),
        )
        .await
}

pub async fn create_connector(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<ConnectorForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), CONNECTORS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let inbound = f.direction.as_deref() != Some("outbound");
    let mut v = f.settings(inbound);
    v["name"] = json!(f.name.clone().unwrap_or_default());
    let st = State(s.clone());
    let path = Path(t.name.clone());
    let created = if inbound {
        match body(v) {
            Ok(b) => connectors::create(st, ctx.p, path, b).await.map(|_| ()),
            Err(e) => Err(e),
        }
    } else {
        match body(v) {
            Ok(b) => outbound_connectors::create(st, ctx.p, path, b)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    };
    match created {
        Ok(()) => see_other(&done_href(&ctx, &t, CONNECTORS, "created")),
        Err(e) => {
            connectors_page(
                &s,
                &ctx,
                &t,
                &TableParams::default(),
                e.status,
                Notice::error(&e),
                &f,
            )
            .await
        }
    }
}

async fn connector_value(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    dir: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let path = Path((t.name.clone(), name.to_string()));
    match dir {
        "inbound" => value(connectors::show(State(s.clone()), ctx.p, path).await),
        "outbound" => value(outbound_connectors::show(State(s.clone()), ctx.p, path).await),
        _ => Err(ApiError::not_found(format!("no connectors are {dir:?}"))),
    }
}

#[allow(clippy::too_many_arguments)]
async fn connector_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    dir: &str,
    name: &str,
    status: StatusCode,
    notice: Notice,
    kept: Option<&ConnectorForm>,
    validation: Option<Value>,
) -> Response {
    let lang = ctx.lang;
    let c = match connector_value(s, ctx, t, dir, name).await {
        Ok(c) => c,
        Err(e) => return error_page(Some(ctx), lang, e),
    };
    let form = kept.cloned().unwrap_or_else(|| ConnectorForm::of(dir, &c));
    let form = ConnectorForm {
        direction: Some(dir.to_string()),
        ..form
    };
    let enabled = c.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let action = format!("{CONNECTORS}/{dir}/{}", url_encode(name));
    let recipient = kept.and_then(|k| k.recipient.clone()).unwrap_or_default();
    let body = html! {
        p { a href=(href(ctx, t, CONNECTORS, &[])) { (i18n::BACK.get(lang)) } }
        h2.connector-title { (field(&c, "name")) " (" (if dir == "inbound" { i18n::INBOUND.get(lang) } else { i18n::OUTBOUND.get(lang) }) ")" }
        div.buttons {
            form.inline method="post" action=(action) {
                (hidden(ctx, t))
                @if enabled {
                    button type="submit" name="op" value="disable" { (i18n::DISABLE.get(lang)) }
                } @else {
                    button type="submit" name="op" value="enable" { (i18n::ENABLE.get(lang)) }
                }
                " "
                button type="submit" name="op" value="delete" { (i18n::DELETE.get(lang)) }
            }
        }
        (facts(&c))
        form.panel.connector-form method="post" action=(action) {
            h2 { (i18n::EDIT.get(lang)) }
            (hidden(ctx, t))
            (connector_fields(lang, &form, false))
            div.actions { button type="submit" name="op" value="save" { (i18n::SAVE.get(lang)) } }
        }
        @if dir == "outbound" {
            form.panel.validate method="post" action=(action) {
                h2 { (i18n::VALIDATE.get(lang)) }
                p.note { (i18n::VALIDATE_HELP.get(lang)) }
                (hidden(ctx, t))
                label { (i18n::RECIPIENT.get(lang)) input type="text" name="recipient" value=(recipient) required; }
                div.actions { button type="submit" name="op" value="validate" { (i18n::VALIDATE.get(lang)) } }
            }
        }
        @if dir == "inbound" {
            @let k = |o: Option<&String>| o.cloned().unwrap_or_default();
            form.panel.validate method="post" action=(action) {
                h2 { (i18n::VALIDATE.get(lang)) }
                p.note { (i18n::S9_VALIDATE_INBOUND_HELP.get(lang)) }
                (hidden(ctx, t))
                label { (i18n::S9_SENDER_IP.get(lang)) input type="text" name="sender_ip_address" value=(k(kept.and_then(|f| f.sender_ip_address.as_ref()))) required; }
                label { (i18n::S9_SENDER_ADDRESS.get(lang)) input type="text" name="sender_address" value=(k(kept.and_then(|f| f.sender_address.as_ref()))); }
                label { (i18n::S9_CERTIFICATE_NAME.get(lang)) input type="text" name="tls_certificate_name" value=(k(kept.and_then(|f| f.tls_certificate_name.as_ref()))); }
                label.check { input type="checkbox" name="tls" value="1" checked[kept.is_some_and(|f| f.tls.is_some())]; " " (i18n::S9_OVER_TLS.get(lang)) }
                div.actions { button type="submit" name="op" value="validate" { (i18n::VALIDATE.get(lang)) } }
            }
        }
        @if let Some(v) = validation.as_ref().filter(|v| v.get("reasons").is_some()) {
            section.panel #validation {
                h2 { (i18n::VALIDATION_RESULT.get(lang)) }
                dl.facts {
                    dt { (i18n::S9_ATTRIBUTED.get(lang)) } dd.attributed { (v.get("attributed_to").filter(|a| !a.is_null()).map(text).unwrap_or_else(|| "—".into())) }
                    dt { (i18n::S9_RELAY.get(lang)) } dd.relay { (yes_no(lang, v, "relay_allowed")) }
                    @if let Some(r) = v.get("refusal").filter(|r| !r.is_null()) { dt { (i18n::REPLY.get(lang)) } dd.refusal { (text(r)) } }
                }
                ol.reasons {
                    @for r in v.get("reasons").and_then(Value::as_array).into_iter().flatten() { li { (text(r)) } }
                }
            }
        } @else if let Some(v) = &validation {
            section.panel #validation {
                h2 { (i18n::VALIDATION_RESULT.get(lang)) }
                p.summary { (field(v, "summary")) }
                pre.transcript {
                    @for line in v.get("transcript").and_then(Value::as_array).into_iter().flatten() {
                        (text(line)) "\n"
                    }
                }
            }
        }
    };
    frame(ctx, t, CONNECTORS, status, &notice, body)
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    tenant: Option<String>,
    done: Option<String>,
}

pub async fn connector_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    axum::extract::Path((dir, name)): axum::extract::Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let t = match start(&s, &ctx, q.tenant.as_deref(), CONNECTORS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    connector_page(
        &s,
        &ctx,
        &t,
        &dir,
        &name,
        StatusCode::OK,
        Notice::done(q.done.as_deref()),
        None,
        None,
    )
    .await
}

/// Saves, enables, disables, deletes or validates a connector.
pub async fn connector_action(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    axum::extract::Path((dir, name)): axum::extract::Path<(String, String)>,
    Form(f): Form<ConnectorForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), CONNECTORS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let inbound = match dir.as_str() {
        "inbound" => true,
        "outbound" => false,
        _ => {
            return error_page(
                Some(&ctx),
                ctx.lang,
                ApiError::not_found(format!("no connectors are {dir:?}")),
            );
        }
    };
    let op = f.op.clone().unwrap_or_default();
    let st = || State(s.clone());
    let path = || Path((t.name.clone(), name.clone()));
    let change = |v: Value| async move {
        if inbound {
            connectors::change(st(), ctx.p, path(), body(v)?)
                .await
                .map(|_| ())
        } else {
            outbound_connectors::change(st(), ctx.p, path(), body(v)?)
                .await
                .map(|_| ())
        }
    };
    let detail = format!("{CONNECTORS}/{dir}/{}", url_encode(&name));
    let done = match op.as_str() {
        "save" => change(f.settings(inbound)).await.map(|_| ("changed", true)),
        "enable" => change(json!({ "enabled": true }))
            .await
            .map(|_| ("changed", true)),
        "disable" => change(json!({ "enabled": false }))
            .await
            .map(|_| ("changed", true)),
        "delete" => {
            let removed = if inbound {
                connectors::remove(st(), ctx.p, path()).await
            } else {
                outbound_connectors::remove(st(), ctx.p, path()).await
            };
            removed.map(|_| ("removed", false))
        }
        "validate" => {
            let answer = if inbound {
                let mut v = json!({
                    "sender_ip_address": f.sender_ip_address.clone().unwrap_or_default(),
                    "tls": f.tls.is_some(),
                });
                if let Some(a) = given(&f.sender_address) {
                    v["sender_address"] = json!(a);
                }
                if let Some(c) = given(&f.tls_certificate_name) {
                    v["tls_certificate_name"] = json!(c);
                }
                match body(v) {
                    Ok(b) => value(connectors::validate(st(), ctx.p, path(), b).await),
                    Err(e) => Err(e),
                }
            } else {
                let v = json!({ "recipient": f.recipient.clone().unwrap_or_default() });
                match body(v) {
                    Ok(b) => value(outbound_connectors::validate(st(), ctx.p, path(), b).await),
                    Err(e) => Err(e),
                }
            };
            // The transcript is the answer: shown here, not after a redirect.
            return match answer {
                Ok(v) => {
                    connector_page(
                        &s,
                        &ctx,
                        &t,
                        &dir,
                        &name,
                        StatusCode::OK,
                        Notice::default(),
                        Some(&f),
                        Some(v),
                    )
                    .await
                }
                Err(e) => {
                    connector_page(
                        &s,
                        &ctx,
                        &t,
                        &dir,
                        &name,
                        e.status,
                        Notice::error(&e),
                        Some(&f),
                        None,
                    )
                    .await
                }
            };
        }
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok((code, true)) => see_other(&done_href(&ctx, &t, &detail, code)),
        Ok((code, false)) => see_other(&done_href(&ctx, &t, CONNECTORS, code)),
        Err(e) => {
            connector_page(
                &s,
                &ctx,
                &t,
                &dir,
                &name,
                e.status,
                Notice::error(&e),
                (op == "save").then_some(&f),
                None,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The queue.

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    tenant: Option<String>,
    done: Option<String>,
    status: Option<String>,
    recipient: Option<String>,
    domain: Option<String>,
    trace_id: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

impl QueueQuery {
    fn filters(&self) -> Vec<(&'static str, String)> {
        let v = |o: &Option<String>| o.clone().unwrap_or_default().trim().to_string();
        vec![
            ("status", v(&self.status)),
            ("recipient", v(&self.recipient)),
            ("domain", v(&self.domain)),
            ("trace_id", v(&self.trace_id)),
        ]
    }
}

fn queue_columns() -> Vec<Column> {
    vec![
        Column {
            key: "received",
            label: i18n::RECEIVED,
        },
        Column {
            key: "trace_id",
            label: i18n::TRACE_ID,
        },
        Column {
            key: "sender",
            label: i18n::SENDER,
        },
        Column {
            key: "recipient",
            label: i18n::RECIPIENT,
        },
        Column {
            key: "status",
            label: i18n::QUEUE_STATUS,
        },
        Column {
            key: "attempts",
            label: i18n::ATTEMPTS,
        },
        Column {
            key: "last_error",
            label: i18n::LAST_ERROR,
        },
        Column {
            key: "next_attempt",
            label: i18n::NEXT_ATTEMPT,
        },
    ]
}

/// One page of the queue, read by the API's listing (paged in the store's query).
async fn queue_table(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &QueueQuery,
    page: usize,
    page_size: usize,
) -> Result<Table, ApiError> {
    let mut params = json!({
        "tenant": t.name,
        "page": page.to_string(),
        "page_size": page_size.to_string(),
    });
    for (k, v) in q.filters() {
        if !v.is_empty() {
            params[k] = json!(v);
        }
    }
    let params: queue::QueueParams = input(params)?;
    let v = value(queue::queue(State(s.clone()), ctx.p, Ok(Query(params))).await)?;
    let rows = v
        .get("rows")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tidy = |s: String| s.replace('T', " ").trim_end_matches('Z').to_string();
    Ok(Table {
        columns: queue_columns(),
        rows: rows
            .iter()
            .map(|r| {
                let trace_id = field(r, "trace_id");
                let last = r
                    .get("last_error")
                    .filter(|e| !e.is_null())
                    .map(|e| {
                        format!(
                            "{} {} {}",
                            field(e, "status"),
                            field(e, "enhanced_status"),
                            field(e, "text")
                        )
                    })
                    .unwrap_or_default();
                vec![
                    Cell::text(tidy(field(r, "received"))),
                    Cell {
                        href: Some(href(ctx, t, QUEUE, &[("trace_id", trace_id.clone())])),
                        text: trace_id,
                        class: None,
                    },
                    Cell::text(field(r, "sender")),
                    Cell::text(field(r, "recipient")),
                    Cell::text(field(r, "status")),
                    Cell::text(field(r, "attempts")),
                    Cell::text(last),
                    Cell::text(tidy(field(r, "next_attempt"))),
                ]
            })
            .collect(),
        more: v.get("more").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[derive(Deserialize, Default)]
pub struct QueueForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    tenant: Option<String>,
    trace_id: Option<String>,
    recipient: Option<String>,
    with_ndr: Option<String>,
    op: Option<String>,
}

async fn queue_page(
    s: &AppState,
    ctx: &Ctx,
    t: &Tenant,
    q: &QueueQuery,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let lang = ctx.lang;
    let (page, size) = (q.table.page(), q.table.page_size());
    let mut table = match queue_table(s, ctx, t, q, page, size).await {
        Ok(table) => table,
        Err(e) => {
            return frame(
                ctx,
                t,
                QUEUE,
                e.status,
                &Notice::error(&e),
                queue_filters(ctx, t, q),
            );
        }
    };
    table.apply(&q.table);
    let mut query = tenant_query(ctx, t);
    query.extend(q.filters());
    let trace_id = q.trace_id.clone().unwrap_or_default();
    let body = html! {
        (queue_filters(ctx, t, q))
        div #results {
            (table.render(lang, &q.table, QUEUE, &query, &format!("{QUEUE}.csv")))
        }
        form.panel method="post" action=(QUEUE) {
            h2 { (i18n::QUEUE_ACTIONS.get(lang)) }
            (hidden(ctx, t))
            label { (i18n::TRACE_ID.get(lang)) input type="text" name="trace_id" value=(trace_id) required; }
            label { (i18n::RECIPIENT.get(lang)) input type="text" name="recipient" value=(q.recipient.clone().unwrap_or_default()); }
            label.check { input type="checkbox" name="with_ndr" value="1"; " " (i18n::WITH_NDR.get(lang)) }
            div.actions {
                button type="submit" name="op" value="retry" { (i18n::RETRY.get(lang)) }
                " "
                button type="submit" name="op" value="delete" { (i18n::DELETE.get(lang)) }
            }
        }
    };
    frame(ctx, t, QUEUE, status, &notice, body)
}

fn queue_filters(ctx: &Ctx, t: &Tenant, q: &QueueQuery) -> Markup {
    let lang = ctx.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let status = v(&q.status);
    html! {
        form.query.panel method="get" action=(QUEUE) {
            @for (k, val) in tenant_query(ctx, t) { input type="hidden" name=(k) value=(val); }
            label { (i18n::QUEUE_STATUS.get(lang))
                select name="status" {
                    option value="" { (i18n::ANY.get(lang)) }
                    @for st in ["Active", "Ready", "Retry"] { option value=(st) selected[st == status] { (st) } }
                }
            }
            label { (i18n::RECIPIENT.get(lang)) input type="text" name="recipient" value=(v(&q.recipient)); }
            label { (i18n::DOMAIN.get(lang)) input type="text" name="domain" value=(v(&q.domain)); }
            label { (i18n::TRACE_ID.get(lang)) input type="text" name="trace_id" value=(v(&q.trace_id)); }
            input type="hidden" name="page_size" value=(q.table.page_size());
            div.actions { button type="submit" { (i18n::SEARCH.get(lang)) } }
        }
    }
}

pub async fn queue_tab(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<QueueQuery>,
) -> Response {
    let (s, ctx, q) = (&s, &ctx, &q);
    SECTION
        .tab_page(
            s,
            ctx,
            q.tenant.as_deref(),
            QUEUE,
            q.done.as_deref(),
            async |t, notice| queue_page(s, ctx, &t, q, StatusCode::OK, notice).await,
        )
        .await
}

pub async fn queue_csv(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<QueueQuery>,
) -> Response {
    let (s, ctx, q) = (&s, &ctx, &q);
    SECTION
        .tab_csv(
            s,
            ctx,
            q.tenant.as_deref(),
            QUEUE,
            &q.table,
            "queue.csv",
            async |t| queue_table(s, ctx, &t, q, 1, hato_store::TRACE_PAGE_SIZE_MAX).await,
        )
        .await
}

/// Retries or deletes a message's queued recipients.
pub async fn queue_action(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<QueueForm>,
) -> Response {
    if let Some(refusal) = ctx.csrf_refusal(&headers, f.csrf.as_deref()) {
        return refusal;
    }
    let t = match start(&s, &ctx, f.tenant.as_deref(), QUEUE).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut v = json!({
        "trace_id": f.trace_id.clone().unwrap_or_default(),
        "tenant": t.name,
    });
    if let Some(r) = given(&f.recipient) {
        v["recipient"] = json!(r);
    }
    let st = State(s.clone());
    let done = match f.op.as_deref().unwrap_or("") {
        "retry" => match body(v) {
            Ok(b) => queue::retry(st, ctx.p, b).await.map(|_| "retried"),
            Err(e) => Err(e),
        },
        "delete" => {
            v["with_ndr"] = json!(f.with_ndr.is_some());
            match body(v) {
                Ok(b) => queue::delete(st, ctx.p, b).await.map(|_| "removed"),
                Err(e) => Err(e),
            }
        }
        other => Err(ApiError::bad_request(format!("unknown action {other:?}"))),
    };
    match done {
        Ok(code) => see_other(&done_href(&ctx, &t, QUEUE, code)),
        Err(e) => {
            let q = QueueQuery {
                trace_id: f.trace_id.clone(),
                ..Default::default()
            };
            queue_page(&s, &ctx, &t, &q, e.status, Notice::error(&e)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_condition_and_action_is_one_the_api_takes() {
        // Each takes an address, a number, a switch or (scopes, message types) one of its names.
        let tries = ["a@b.test", "5", "", "in-organization", "oof"];
        let takes = |f: &dyn Fn(&str) -> bool| tries.iter().any(|t| f(t));
        for c in CONDITIONS {
            assert!(
                takes(&|raw| serde_json::from_value::<Conditions>(
                    json!({ *c: typed::<Conditions>(c, raw) })
                )
                .is_ok()),
                "{c}"
            );
        }
        for a in ACTIONS.iter().filter(|a| **a != "set_header") {
            assert!(
                takes(&|raw| serde_json::from_value::<Actions>(
                    json!({ *a: typed::<Actions>(a, raw) })
                )
                .is_ok()),
                "{a}"
            );
        }
        // A name the API does not know stays text, for the API to refuse by name.
        assert_eq!(typed::<Conditions>("no_such", "x"), json!("x"));
        assert_eq!(
            typed::<Conditions>("subject_contains_words", "a, b"),
            json!(["a", "b"])
        );
        assert_eq!(
            typed::<Conditions>("from_scope", "in-organization"),
            json!("in-organization")
        );
        assert_eq!(
            typed::<Conditions>("attachment_size_over", "100"),
            json!(100)
        );
        assert_eq!(
            typed::<Conditions>("attachment_has_executable_content", ""),
            json!(true)
        );
        assert_eq!(typed::<Actions>("delete_message", "false"), json!(false));
    }

    fn pairs_of(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_rule_form_pairs_its_rows_in_order_and_skips_empty_ones() {
        let f = RuleForm::read(pairs_of(&[
            ("name", "R"),
            ("condition", "subject_contains_words"),
            ("condition_value", "a, b"),
            ("condition", ""),
            ("condition_value", "ignored"),
            ("condition", "subject_contains_words"),
            ("condition_value", "c"),
            ("exception", "subject_matches_patterns"),
            ("exception_value", "x{1,3}\ny"),
            ("action", "set_header"),
            ("action_value", "X-A: b: c"),
            ("action", "delete_message"),
        ]));
        let rule = rule_json(&f).unwrap();
        // A key given twice adds its values; patterns are one a line, commas kept.
        assert_eq!(
            rule["conditions"],
            json!({ "subject_contains_words": ["a", "b", "c"] })
        );
        assert_eq!(
            rule["exceptions"],
            json!({ "subject_matches_patterns": ["x{1,3}", "y"] })
        );
        assert_eq!(
            rule["actions"],
            json!({ "set_header_name": "X-A", "set_header_value": "b: c", "delete_message": true })
        );
        // A row's value missing (a forged form) is an empty value, never another row's.
        assert_eq!(f.actions[1], ("delete_message".to_string(), String::new()));
    }

    #[test]
    fn an_edit_removes_what_the_form_no_longer_holds() {
        let old = json!({
            "name": "R", "mode": "audit", "comments": "c", "expiry_date": "2027-01-01T00:00:00Z",
            "conditions": { "sent_to": ["a@b.test"], "from": ["x@y.test"] },
            "exceptions": { "from": ["boss@y.test"] },
            "actions": { "set_header_name": "X-A", "set_header_value": "1", "quarantine": true }
        });
        let f = RuleForm::read(pairs_of(&[
            ("name", "R"),
            ("condition", "sent_to"),
            ("condition_value", "a@b.test"),
            ("action", "quarantine"),
            ("action_value", "true"),
        ]));
        let patch = rule_patch(&f, &old).unwrap();
        assert_eq!(
            patch["conditions"],
            json!({ "sent_to": ["a@b.test"], "from": null })
        );
        assert_eq!(patch["exceptions"], json!({ "from": null }));
        assert_eq!(
            patch["actions"],
            json!({ "set_header_name": null, "set_header_value": null, "quarantine": true })
        );
        assert_eq!(patch["expiry_date"], Value::Null);
        assert!(patch.get("mode").is_none(), "a mode not given stays");
        // And the form of a rule shows its header as one row.
        let back = RuleForm::of_rule(&old);
        assert!(
            back.actions
                .contains(&("set_header".into(), "X-A: 1".into()))
        );
        assert_eq!(back.mode.as_deref(), Some("audit"));
    }

    #[test]
    fn exchange_names() {
        assert_eq!(
            exchange_name("subject_contains_words"),
            "SubjectContainsWords"
        );
    }

    #[test]
    fn a_test_message_keeps_each_header_on_one_line() {
        let m = test_message(&TestForm {
            to: Some("a@b.test".into()),
            subject: Some("x\r\nBcc: evil@c.test".into()),
            ..Default::default()
        });
        let m = String::from_utf8(m).unwrap_or_default();
        assert!(m.contains("Subject: x  Bcc: evil@c.test\r\n"), "{m}");
    }
}
