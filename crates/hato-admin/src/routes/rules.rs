//! A tenant's transport (mail flow) rules: Exchange's `New-`, `Set-`, `Get-`, `Remove-`,
//! `Enable-`, `Disable-TransportRule`, `Export-`/`Import-TransportRuleCollection` and the EAC's
//! rule test. Global admins of the tenant and the operator (Exchange's "Transport Rules" role is
//! in Organization Management); another tenant's rules are 404, a recipient admin gets 403.
//!
//! A rule's JSON is `hato_protection::rules::Rule` (the fields are `New-TransportRule`'s
//! parameters in snake case); every write checks it (`Rule::validate`, which also compiles its
//! patterns) and the tenant's limits (300 rules, 20 KB of patterns) before anything changes.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use hato_core::auth::Principal;
use hato_core::directory::Tenant;
use hato_directory::rules::RuleDirectoryView;
use hato_protection::rules::{Evaluation, Rule, RuleMessage, RuleSet, validate_all};
use hato_store::{NewTransportRule, TransportRuleChange, TransportRuleRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, change, remove))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(test))
}

/// Names the collection's own paths take (`rules/export`, `rules/import`, `rules/test`): no rule
/// may have them, so every rule stays reachable by name.
const RESERVED: [&str; 3] = ["export", "import", "test"];

/// A transport rule as stored.
#[derive(Serialize, ToSchema)]
pub(crate) struct RuleView {
    id: i64,
    name: String,
    /// 0 first; unique within the tenant.
    priority: u32,
    enabled: bool,
    /// Messages the rule matched.
    hits: u64,
    /// RFC 3339.
    created: String,
    modified: String,
    /// The whole rule: name, priority, enabled, mode, activation_date, expiry_date,
    /// sender_address_location, rule_error_action, comments, conditions, exceptions, actions,
    /// stop_rule_processing (docs/interfaces.md lists every field).
    #[schema(value_type = Object)]
    rule: Value,
}

/// All of a tenant's rules, as `rule export` writes and `rule import` reads them.
#[derive(Serialize, ToSchema)]
struct RuleCollection {
    /// `hato-transport-rules/1`.
    format: String,
    tenant: String,
    /// RFC 3339.
    exported: String,
    /// The rules in priority order (each as `RuleView.rule`).
    #[schema(value_type = Vec<Object>)]
    rules: Vec<Value>,
}

/// What an import does to the rules already there.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum ImportMode {
    /// The tenant's rules become exactly the imported ones (Exchange's
    /// `Import-TransportRuleCollection`).
    #[default]
    Replace,
    /// Each imported rule replaces the rule of its name or is added.
    Merge,
}

/// An import: a collection as exported (its `format`, `tenant` and `exported` are not needed),
/// and the mode.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    #[schema(value_type = Vec<Object>)]
    rules: Vec<Value>,
    #[serde(default)]
    mode: ImportMode,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    exported: Option<String>,
}

/// The envelope of a message to test the rules on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TestParams {
    /// The envelope sender (`MAIL FROM`); empty for `<>`.
    from: Option<String>,
    /// The recipients, comma-separated.
    to: String,
    /// The client's IP (for `sender_ip_ranges`).
    ip: Option<String>,
    /// Whether the client authenticated (for `from_scope`).
    #[serde(default)]
    authenticated: bool,
    /// The SCL so far (for `scl_over`).
    scl: Option<i8>,
}

/// What the rules would do with a message, per recipient, without sending it.
#[derive(Serialize, ToSchema)]
pub(crate) struct TestResult {
    /// Per recipient: `recipient`, `hits` (rule, priority, mode, the conditions that matched
    /// and their values) and `decisions` (each action with its reason).
    #[schema(value_type = Object)]
    evaluation: Value,
    /// One line per recipient saying what would happen.
    summary: Vec<String>,
}

fn tenant(s: &AppState, p: &Principal, name: &str) -> ApiResult<Tenant> {
    visible_tenant(s, p, name)
}

fn rule_of(r: &TransportRuleRecord) -> ApiResult<Rule> {
    Rule::from_stored(&r.definition, &r.name, r.priority, r.enabled).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stored rule {} is not readable: {e}", r.name),
        )
    })
}

fn view(r: &TransportRuleRecord) -> ApiResult<RuleView> {
    let rule = rule_of(r)?;
    Ok(RuleView {
        id: r.id,
        name: r.name.clone(),
        priority: r.priority,
        enabled: r.enabled,
        hits: r.hits,
        created: r.created.to_rfc3339(),
        modified: r.modified.to_rfc3339(),
        rule: serde_json::to_value(&rule).unwrap_or(Value::Null),
    })
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// A rule from its JSON, checked.
fn parse_rule(v: Value) -> ApiResult<Rule> {
    let mut rule: Rule =
        serde_json::from_value(v).map_err(|e| bad(format!("not a transport rule: {e}")))?;
    rule.validate().map_err(bad)?;
    check_name(&rule.name)?;
    Ok(rule)
}

fn check_name(name: &str) -> ApiResult<()> {
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(bad(format!(
            "--name {name:?}: export, import and test name the rule collection's own operations"
        )));
    }
    Ok(())
}

fn definition(rule: &Rule) -> String {
    serde_json::to_string(rule).unwrap_or_default()
}

/// The tenant's rules with `changed` in place of (or added to) the rule of its name, all
/// checked together (limits across rules).
fn check_with(s: &AppState, t: &Tenant, changed: &Rule, old_name: Option<&str>) -> ApiResult<()> {
    let mut rules = Vec::new();
    for r in s.store.transport_rules(t.id)? {
        let same = |n: &str| r.name.eq_ignore_ascii_case(n);
        if old_name.is_some_and(same) || same(&changed.name) && old_name.is_none() {
            continue;
        }
        rules.push(rule_of(&r)?);
    }
    rules.push(changed.clone());
    validate_all(&mut rules).map_err(bad)
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// A tenant's rules, in priority order.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/rules",
    tag = "transport rules",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The rules", body = Vec<RuleView>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RuleView>>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = tenant(s, &p, &name)?;
        let rules = s.store.transport_rules(t.id)?;
        Ok(Json(rules.iter().map(view).collect::<ApiResult<_>>()?))
    })
    .await
}

/// Add a rule (`New-TransportRule`): at its `priority` (the others from there shift down), or
/// last when it gives none.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/rules",
    tag = "transport rules",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body(content = Object, description = "The rule (RuleView.rule's fields; priority may be left out)"),
    responses(
        (status = 201, description = "The rule", body = RuleView),
        (status = 400, description = "A bad value (named with its flag), a priority beyond the last, or a limit", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The tenant has a rule of this name", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    require_global_admin(&p)?;
    let v = body(payload)?;
    let priority = v
        .get("priority")
        .and_then(Value::as_u64)
        .map(|p| p.min(u32::MAX.into()) as u32);
    let rule = parse_rule(v)?;
    let (t, rule) = s
        .blocking(move |s| {
            let t = tenant(s, &p, &name)?;
            check_with(s, &t, &rule, None)?;
            Ok((t, rule))
        })
        .await?;
    let record = s
        .store
        .add_transport_rule(
            t.id,
            NewTransportRule {
                name: rule.name.clone(),
                priority,
                enabled: rule.enabled,
                definition: definition(&rule),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&record)?)))
}

fn one(
    s: &AppState,
    p: &Principal,
    tenant_name: &str,
    rule: &str,
) -> ApiResult<(Tenant, TransportRuleRecord)> {
    let t = tenant(s, p, tenant_name)?;
    let r = s
        .store
        .transport_rule(t.id, rule)?
        .ok_or_else(|| ApiError::not_found(format!("transport rule {rule} not found")))?;
    Ok((t, r))
}

/// One rule.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/rules/{name}",
    tag = "transport rules",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The rule's name"),
    ),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or rule", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tn, rn)): Path<(String, String)>,
) -> ApiResult<Json<RuleView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| Ok(Json(view(&one(s, &p, &tn, &rn)?.1)?)))
        .await
}

/// Change a rule (`Set-TransportRule`): a JSON merge patch (RFC 7396) of the rule — the fields
/// given replace those there, `null` removes one (a condition, an exception, an action).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/rules/{name}",
    tag = "transport rules",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The rule's name"),
    ),
    request_body(content = Object, description = "A merge patch of the rule"),
    responses(
        (status = 200, description = "The rule after the change", body = RuleView),
        (status = 400, description = "A bad value (named with its flag)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or rule", body = ErrorBody),
        (status = 409, description = "Renamed to the name of another rule", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tn, rn)): Path<(String, String)>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<RuleView>> {
    require_global_admin(&p)?;
    let patch = body(payload)?;
    if !patch.is_object() {
        return Err(bad(
            "the change is a JSON object (a merge patch of the rule)",
        ));
    }
    let new_priority = patch
        .get("priority")
        .and_then(Value::as_u64)
        .map(|p| p.min(u32::MAX.into()) as u32);
    let (t, old, rule) = s
        .blocking(move |s| {
            let (t, old) = one(s, &p, &tn, &rn)?;
            let mut v = serde_json::to_value(rule_of(&old)?).unwrap_or(Value::Null);
            merge(&mut v, patch);
            let rule = parse_rule(v)?;
            check_with(s, &t, &rule, Some(&old.name))?;
            Ok((t, old, rule))
        })
        .await?;
    let record = s
        .store
        .change_transport_rule(
            t.id,
            &old.name,
            TransportRuleChange {
                name: (rule.name != old.name).then(|| rule.name.clone()),
                priority: new_priority,
                enabled: Some(rule.enabled),
                definition: Some(definition(&rule)),
            },
        )
        .await?;
    Ok(Json(view(&record)?))
}

/// Remove a rule; the rules after it move up.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/rules/{name}",
    tag = "transport rules",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The rule's name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or rule", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Path((tn, rn)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let (t, r) = s.blocking(move |s| one(s, &p, &tn, &rn)).await?;
    s.store.remove_transport_rule(t.id, &r.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    s: AppState,
    p: Principal,
    tn: String,
    rn: String,
    enabled: bool,
) -> ApiResult<Json<RuleView>> {
    require_global_admin(&p)?;
    let (t, r) = s.blocking(move |s| one(s, &p, &tn, &rn)).await?;
    let mut rule = rule_of(&r)?;
    rule.enabled = enabled;
    let record = s
        .store
        .change_transport_rule(
            t.id,
            &r.name,
            TransportRuleChange {
                enabled: Some(enabled),
                definition: Some(definition(&rule)),
                ..TransportRuleChange::default()
            },
        )
        .await?;
    Ok(Json(view(&record)?))
}

/// Turn a rule on (`Enable-TransportRule`).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/rules/{name}/enable",
    tag = "transport rules",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The rule's name"),
    ),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or rule", body = ErrorBody),
    )
)]
pub(crate) async fn enable(
    State(s): State<AppState>,
    p: Principal,
    Path((tn, rn)): Path<(String, String)>,
) -> ApiResult<Json<RuleView>> {
    set_enabled(s, p, tn, rn, true).await
}

/// Turn a rule off (`Disable-TransportRule`); it keeps its place.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/rules/{name}/disable",
    tag = "transport rules",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The rule's name"),
    ),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or rule", body = ErrorBody),
    )
)]
pub(crate) async fn disable(
    State(s): State<AppState>,
    p: Principal,
    Path((tn, rn)): Path<(String, String)>,
) -> ApiResult<Json<RuleView>> {
    set_enabled(s, p, tn, rn, false).await
}

/// All of a tenant's rules as one document (`Export-TransportRuleCollection`).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/rules/export",
    tag = "transport rules",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The rules", body = RuleCollection),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn export(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<RuleCollection>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = tenant(s, &p, &name)?;
        let mut rules = Vec::new();
        for r in s.store.transport_rules(t.id)? {
            rules.push(serde_json::to_value(rule_of(&r)?).unwrap_or(Value::Null));
        }
        Ok(Json(RuleCollection {
            format: "hato-transport-rules/1".into(),
            tenant: t.name,
            exported: s.clock.now().to_rfc3339(),
            rules,
        }))
    })
    .await
}

/// Import rules (`Import-TransportRuleCollection`): every rule is checked first, and the
/// tenant's rules change only if all are good (then in one write).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/rules/import",
    tag = "transport rules",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = ImportRequest,
    responses(
        (status = 200, description = "The tenant's rules after the import", body = Vec<RuleView>),
        (status = 400, description = "A bad rule (named, with its flag and value), or a limit", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn import(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    payload: Result<Json<ImportRequest>, JsonRejection>,
) -> ApiResult<Json<Vec<RuleView>>> {
    require_global_admin(&p)?;
    let req = body(payload)?;
    let _ = (&req.format, &req.tenant, &req.exported);
    let mode = req.mode;
    let mut incoming = Vec::with_capacity(req.rules.len());
    for (i, v) in req.rules.into_iter().enumerate() {
        let given = v.get("priority").is_some();
        let label = v.get("name").and_then(Value::as_str).map_or_else(
            || format!("rule {}", i + 1),
            |n| format!("rule {} ({n:?})", i + 1),
        );
        let rule = parse_rule(v).map_err(|e| bad(format!("{label}: {}", e.message)))?;
        incoming.push((rule, given));
    }
    let (t, incoming) = s
        .blocking(move |s| {
            let t = tenant(s, &p, &name)?;
            // The set after the import, checked as a whole (names, 300 rules, patterns).
            let mut after: Vec<Rule> = Vec::new();
            if mode == ImportMode::Merge {
                for r in s.store.transport_rules(t.id)? {
                    if !incoming
                        .iter()
                        .any(|(n, _)| n.name.eq_ignore_ascii_case(&r.name))
                    {
                        after.push(rule_of(&r)?);
                    }
                }
            }
            after.extend(incoming.iter().map(|(r, _)| r.clone()));
            validate_all(&mut after).map_err(bad)?;
            Ok((t, incoming))
        })
        .await?;
    let rules = incoming
        .iter()
        .map(|(r, given)| NewTransportRule {
            name: r.name.clone(),
            priority: given.then_some(r.priority),
            enabled: r.enabled,
            definition: definition(r),
        })
        .collect();
    let records = s
        .store
        .import_transport_rules(t.id, rules, mode == ImportMode::Replace)
        .await?;
    Ok(Json(records.iter().map(view).collect::<ApiResult<_>>()?))
}

/// One line saying what would happen to a recipient.
fn summary(e: &Evaluation) -> Vec<String> {
    e.recipients
        .iter()
        .map(|r| {
            if r.hits.is_empty() {
                return format!("{}: no rule matches; delivered", r.recipient);
            }
            let rules: Vec<&str> = r.hits.iter().map(|h| h.rule.as_str()).collect();
            let actions: Vec<String> = r
                .decisions
                .iter()
                .map(|d| match &d.action {
                    hato_protection::rules::RuleAction::Reject {
                        code,
                        enhanced_code,
                        text,
                    } => format!("reject {code} {enhanced_code} {text}"),
                    other => other.name().to_string(),
                })
                .collect();
            format!(
                "{}: rules {}; {}",
                r.recipient,
                rules.join(", "),
                if actions.is_empty() {
                    "no action".to_string()
                } else {
                    actions.join(", ")
                }
            )
        })
        .collect()
}

/// Test the tenant's rules on a message without sending it: which rules match for each
/// recipient, and what would happen. The body is the message (`.eml`, at most 2 MB).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/rules/test",
    tag = "transport rules",
    params(("tenant" = String, Path, description = "The tenant's name"), TestParams),
    request_body(content = String, content_type = "message/rfc822", description = "The message"),
    responses(
        (status = 200, description = "What the rules would do", body = TestResult),
        (status = 400, description = "A bad address or IP", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn test(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<TestParams>,
    eml: Bytes,
) -> ApiResult<Json<TestResult>> {
    require_global_admin(&p)?;
    let address = |flag: &str, a: &str| {
        hato_core::Address::parse(a.trim())
            .map(|a| a.to_string())
            .map_err(|e| bad(format!("--{flag} {a:?}: not an address: {e}")))
    };
    let from = match q.from.as_deref().map(str::trim) {
        None | Some("") | Some("<>") => None,
        Some(a) => Some(address("from", a)?),
    };
    let to =
        q.to.split(',')
            .filter(|a| !a.trim().is_empty())
            .map(|a| address("to", a))
            .collect::<ApiResult<Vec<String>>>()?;
    if to.is_empty() {
        return Err(bad("--to: give at least one recipient"));
    }
    let ip = match q.ip.as_deref() {
        None => None,
        Some(ip) => Some(
            ip.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| bad(format!("--ip {ip:?}: not an IP address")))?,
        ),
    };
    if let Some(scl) = q.scl
        && !(-1..=9).contains(&scl)
    {
        return Err(bad(format!("--scl {scl}: an SCL is -1 or 0 to 9")));
    }
    s.blocking(move |s| {
        let t = tenant(s, &p, &name)?;
        let stored: Vec<(i64, Rule)> = s
            .store
            .transport_rules(t.id)?
            .iter()
            .map(|r| Ok((r.id, rule_of(r)?)))
            .collect::<ApiResult<_>>()?;
        let set = RuleSet::from_stored(stored);
        let mut m = RuleMessage::from_message(&eml, from, to, ip);
        m.authenticated = q.authenticated;
        m.scl = q.scl;
        let index = s.directory.index(t.id)?;
        let domains: Vec<String> = s
            .store
            .domains(Some(t.id))?
            .into_iter()
            .map(|d| d.domain)
            .collect();
        let dir = RuleDirectoryView {
            index: &index,
            accepted_domains: &domains,
        };
        let evaluation = set.evaluate(&m, &dir, s.clock.now());
        Ok(Json(TestResult {
            summary: summary(&evaluation),
            evaluation: serde_json::to_value(&evaluation).unwrap_or(Value::Null),
        }))
    })
    .await
}
