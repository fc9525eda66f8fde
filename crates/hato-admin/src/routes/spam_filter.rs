//! A tenant's anti-spam policies (Exchange's `Get-`/`Set-`/`New-`/`Remove-HostedContentFilterPolicy`
//! with their `HostedContentFilterRule`s): the actions per verdict, the bulk threshold, the
//! allowed and blocked senders, the ASF options, the language and region block lists, end-user
//! notifications; custom policies with a priority, recipient conditions and exceptions, tried
//! before the default. Global admins of the tenant and the operator, as the malware filter's.
//! A change names only what it changes; every value is checked before anything is stored
//! (`SpamFilterPolicy::validate` last, as `Set-HostedContentFilterPolicy` does), and each refusal
//! names the setting and the value.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::Address;
use hato_core::auth::Principal;
use hato_core::directory::Tenant;
use hato_protection::spam::policy::{BulkMode, TestModeAction};
use hato_protection::spam::{Asf, AsfMode, SpamAction};
use hato_store::{DEFAULT_SPAM_FILTER, SpamFilterPolicyRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, change, remove))
}

/// At most this many entries in a list setting (Exchange's allowed and blocked sender lists
/// take about 1,024) or values in a condition.
pub const LIST_MAX: usize = 1024;
/// `ModifySubjectValue`'s bound, in characters.
const SUBJECT_PREFIX_MAX: usize = 255;

/// A tenant's anti-spam policy, Exchange's parameters in snake case; every setting with its
/// value, defaults included.
#[derive(Serialize, ToSchema)]
pub(crate) struct SpamFilterView {
    tenant: String,
    /// `Default`, or a custom policy's name.
    name: String,
    /// A custom policy's priority (0 first); null for the default, tried last.
    priority: Option<u32>,
    /// A custom policy's rule is on.
    enabled: bool,
    /// A custom policy's conditions: it applies to a recipient when every kind given holds
    /// (one value of a kind is enough) and no exception does.
    sent_to: Vec<String>,
    sent_to_member_of: Vec<String>,
    recipient_domain_is: Vec<String>,
    except_if_sent_to: Vec<String>,
    except_if_sent_to_member_of: Vec<String>,
    except_if_recipient_domain_is: Vec<String>,
    /// `SpamAction`: `move-to-jmf`, `add-x-header`, `modify-subject`, `redirect`, `delete`,
    /// `quarantine`.
    spam_action: String,
    high_confidence_spam_action: String,
    phish_spam_action: String,
    /// `quarantine` or `redirect`.
    high_confidence_phish_action: String,
    /// Also `no-action`.
    bulk_spam_action: String,
    /// 1–9: the bulk verdict at BCL ≥ this.
    bulk_threshold: u8,
    /// `on` or `off`.
    mark_as_spam_bulk_mail: String,
    /// 1–30 days.
    quarantine_retention_period: u16,
    redirect_to_recipients: Vec<String>,
    modify_subject_value: String,
    /// The header name `add-x-header` adds.
    add_x_header_value: String,
    allowed_senders: Vec<String>,
    allowed_sender_domains: Vec<String>,
    blocked_senders: Vec<String>,
    blocked_sender_domains: Vec<String>,
    /// Every ASF option by its kebab-case name: `off`, `on` or `test`.
    asf: BTreeMap<String, String>,
    /// `none` or `add-x-header`.
    test_mode_action: String,
    enable_language_block_list: bool,
    /// ISO 639-1 codes, lower case.
    language_block_list: Vec<String>,
    enable_region_block_list: bool,
    /// ISO 3166-1 alpha-2 codes, upper case.
    region_block_list: Vec<String>,
    enable_end_user_spam_notifications: bool,
    /// 1–15 days.
    end_user_spam_notification_frequency: u16,
    /// `default` or a language code.
    end_user_spam_notification_language: String,
    /// The quarantine policy (`routes::quarantine_policies`) each verdict's quarantined items
    /// get: Exchange's `SpamQuarantineTag`, `HighConfidenceSpamQuarantineTag`,
    /// `PhishQuarantineTag`, `HighConfidencePhishQuarantineTag`, `BulkQuarantineTag`.
    spam_quarantine_tag: String,
    high_confidence_spam_quarantine_tag: String,
    phish_quarantine_tag: String,
    high_confidence_phish_quarantine_tag: String,
    bulk_quarantine_tag: String,
}

/// A list setting's change: an array replaces the list; `{"add": [...], "remove": [...]}`
/// edits it, as Exchange's `@{Add=...; Remove=...}` does.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum ListChange {
    Replace(Vec<String>),
    Edit(ListEdit),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ListEdit {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// A change: only the settings given change.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyChange {
    /// Custom policies only: where it goes (0 first; the others move to make room).
    priority: Option<u32>,
    /// Custom policies only.
    enabled: Option<bool>,
    /// Custom policies only: replace the condition's values (`[]` clears it).
    sent_to: Option<Vec<String>>,
    sent_to_member_of: Option<Vec<String>>,
    recipient_domain_is: Option<Vec<String>>,
    except_if_sent_to: Option<Vec<String>>,
    except_if_sent_to_member_of: Option<Vec<String>>,
    except_if_recipient_domain_is: Option<Vec<String>>,
    spam_action: Option<String>,
    high_confidence_spam_action: Option<String>,
    phish_spam_action: Option<String>,
    high_confidence_phish_action: Option<String>,
    bulk_spam_action: Option<String>,
    bulk_threshold: Option<i64>,
    /// `on` or `off`.
    mark_as_spam_bulk_mail: Option<String>,
    quarantine_retention_period: Option<i64>,
    redirect_to_recipients: Option<ListChange>,
    modify_subject_value: Option<String>,
    add_x_header_value: Option<String>,
    allowed_senders: Option<ListChange>,
    allowed_sender_domains: Option<ListChange>,
    blocked_senders: Option<ListChange>,
    blocked_sender_domains: Option<ListChange>,
    /// ASF options by kebab-case name (`increase-score-with-image-links`): `off`, `on`, `test`.
    asf: Option<BTreeMap<String, String>>,
    /// `none` or `add-x-header`.
    test_mode_action: Option<String>,
    enable_language_block_list: Option<bool>,
    language_block_list: Option<ListChange>,
    enable_region_block_list: Option<bool>,
    region_block_list: Option<ListChange>,
    enable_end_user_spam_notifications: Option<bool>,
    end_user_spam_notification_frequency: Option<i64>,
    end_user_spam_notification_language: Option<String>,
    /// A quarantine policy's name (built-in or the tenant's own) per verdict.
    spam_quarantine_tag: Option<String>,
    high_confidence_spam_quarantine_tag: Option<String>,
    phish_quarantine_tag: Option<String>,
    high_confidence_phish_quarantine_tag: Option<String>,
    bulk_quarantine_tag: Option<String>,
}

/// A value as an admin writes it, folded for comparison: any case, `-` and `_` ignored, so
/// Exchange's PascalCase (`MoveToJmf`) and kebab case (`move-to-jmf`) are the same.
fn folded(v: &str) -> String {
    v.trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// An action by name, or a refusal naming the setting, the value and the allowed names.
fn action(setting: &str, v: &str) -> Result<SpamAction, String> {
    SpamAction::parse(v.trim()).ok_or_else(|| {
        let names: Vec<&str> = SpamAction::ALL.iter().map(|a| a.name()).collect();
        format!("{setting}: {v:?} is not one of {}", names.join(", "))
    })
}

fn asf_mode(setting: &str, v: &str) -> Result<AsfMode, String> {
    match folded(v).as_str() {
        "off" => Ok(AsfMode::Off),
        "on" => Ok(AsfMode::On),
        "test" => Ok(AsfMode::Test),
        _ => Err(format!("{setting}: {v:?} is not one of off, on, test")),
    }
}

fn asf_name(m: AsfMode) -> &'static str {
    match m {
        AsfMode::Off => "off",
        AsfMode::On => "on",
        AsfMode::Test => "test",
    }
}

fn address_value(v: &str) -> Result<String, String> {
    Address::parse(v.trim())
        .map(|a| a.to_string())
        .map_err(|e| format!("is not an address: {e}"))
}

/// A domain name: letters, digits, `-` and dots, lower case.
fn domain_value(v: &str) -> Result<String, String> {
    let d = v.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err("is not a domain name".into())
    }
}

/// An ISO 639-1 language code (two letters), lower case.
fn language_value(v: &str) -> Result<String, String> {
    let l = v.trim().to_ascii_lowercase();
    if l.len() == 2 && l.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(l)
    } else {
        Err("is not an ISO 639-1 language code (two letters, such as en or ja)".into())
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
fn region_value(v: &str) -> Result<String, String> {
    let r = v.trim().to_ascii_uppercase();
    if r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(r)
    } else {
        Err("is not an ISO 3166-1 alpha-2 country code (two letters, such as JP or US)".into())
    }
}

/// Values checked and made canonical (`check`), without repeats, at most [`LIST_MAX`]; every
/// bad value named.
fn values(
    name: &str,
    given: &[String],
    check: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, Vec<String>> {
    if given.len() > LIST_MAX {
        return Err(vec![format!(
            "{name}: at most {LIST_MAX} values, not {}",
            given.len()
        )]);
    }
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for v in given {
        match check(v) {
            Ok(c) if !out.contains(&c) => out.push(c),
            Ok(_) => {}
            Err(e) => bad.push(format!("{name}: {v:?} {e}")),
        }
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// A list after `change`: replaced, or with `add` added (once) and `remove` removed.
fn list_after(
    name: &str,
    current: &[String],
    change: ListChange,
    check: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, Vec<String>> {
    match change {
        ListChange::Replace(v) => values(name, &v, check),
        ListChange::Edit(ListEdit { add, remove }) => {
            let add = values(name, &add, check);
            let remove = values(name, &remove, check);
            let (add, remove) = match (add, remove) {
                (Ok(a), Ok(r)) => (a, r),
                (a, r) => {
                    let mut bad = a.err().unwrap_or_default();
                    bad.extend(r.err().unwrap_or_default());
                    return Err(bad);
                }
            };
            let mut out: Vec<String> = current
                .iter()
                .filter(|v| !remove.contains(v))
                .cloned()
                .collect();
            for a in add {
                if !out.contains(&a) && !remove.contains(&a) {
                    out.push(a);
                }
            }
            if out.len() > LIST_MAX {
                return Err(vec![format!(
                    "{name}: at most {LIST_MAX} values, not {}",
                    out.len()
                )]);
            }
            Ok(out)
        }
    }
}

/// A number setting's value in its type's range, or the refusal `validate()` would give (with
/// the value as given, not as it would have been cut to fit).
fn small<T: TryFrom<i64>>(v: i64, setting: &str, range: &str, bad: &mut Vec<String>) -> Option<T> {
    let fits = T::try_from(v).ok();
    if fits.is_none() {
        bad.push(format!("{setting} must be between {range} (is {v})"));
    }
    fits
}

/// A value's check: its canonical form, or why it is not one.
type Check<'a> = &'a dyn Fn(&str) -> Result<String, String>;
/// A list setting: its name, the change given, the list, the check of its values.
type ListSetting<'a> = (&'a str, Option<ListChange>, &'a mut Vec<String>, Check<'a>);

/// The policy after `change`, or every reason it is refused. `lookup` says what a tenant's
/// address is (`Some(true)` a group, `Some(false)` another recipient, `None` nobody), for the
/// conditions that name recipients.
fn apply(
    mut p: SpamFilterPolicyRecord,
    c: PolicyChange,
    lookup: &dyn Fn(&str) -> Option<bool>,
) -> Result<SpamFilterPolicyRecord, String> {
    let mut bad: Vec<String> = Vec::new();
    if p.is_default()
        && (c.priority.is_some()
            || c.enabled.is_some()
            || c.sent_to.is_some()
            || c.sent_to_member_of.is_some()
            || c.recipient_domain_is.is_some()
            || c.except_if_sent_to.is_some()
            || c.except_if_sent_to_member_of.is_some()
            || c.except_if_recipient_domain_is.is_some())
    {
        bad.push(
            "the default policy applies to every recipient: priority, enabled and the \
             conditions and exceptions are for custom policies"
                .to_string(),
        );
    }
    if let Some(v) = c.priority {
        p.priority = Some(v);
    }
    if let Some(v) = c.enabled {
        p.enabled = v;
    }
    let recipient = |v: &str, group: bool| -> Result<String, String> {
        let a = address_value(v)?;
        match (lookup(&a), group) {
            (Some(true), true) | (Some(false), false) => Ok(a),
            (Some(false), true) => Err("is not a group".into()),
            (Some(true), false) => Err("is a group (use sent_to_member_of)".into()),
            (None, _) => Err("is not a recipient of this tenant".into()),
        }
    };
    let person = |v: &str| recipient(v, false);
    let group = |v: &str| recipient(v, true);
    let cond = &mut p.conditions;
    for (name, given, slot, check) in [
        (
            "sent_to",
            c.sent_to,
            &mut cond.sent_to,
            &person as &dyn Fn(&str) -> Result<String, String>,
        ),
        (
            "sent_to_member_of",
            c.sent_to_member_of,
            &mut cond.sent_to_member_of,
            &group,
        ),
        (
            "recipient_domain_is",
            c.recipient_domain_is,
            &mut cond.recipient_domain_is,
            &domain_value,
        ),
        (
            "except_if_sent_to",
            c.except_if_sent_to,
            &mut cond.except_if_sent_to,
            &person,
        ),
        (
            "except_if_sent_to_member_of",
            c.except_if_sent_to_member_of,
            &mut cond.except_if_sent_to_member_of,
            &group,
        ),
        (
            "except_if_recipient_domain_is",
            c.except_if_recipient_domain_is,
            &mut cond.except_if_recipient_domain_is,
            &domain_value,
        ),
    ] {
        if let Some(v) = given {
            match values(name, &v, check) {
                Ok(v) => *slot = v,
                Err(e) => bad.extend(e),
            }
        }
    }
    let s = &mut p.policy;
    for (name, given, slot) in [
        ("spam_action", c.spam_action, &mut s.spam_action),
        (
            "high_confidence_spam_action",
            c.high_confidence_spam_action,
            &mut s.high_confidence_spam_action,
        ),
        (
            "phish_spam_action",
            c.phish_spam_action,
            &mut s.phish_spam_action,
        ),
        (
            "high_confidence_phish_action",
            c.high_confidence_phish_action,
            &mut s.high_confidence_phish_action,
        ),
        (
            "bulk_spam_action",
            c.bulk_spam_action,
            &mut s.bulk_spam_action,
        ),
    ] {
        if let Some(v) = given {
            match action(name, &v) {
                Ok(a) => *slot = a,
                Err(e) => bad.push(e),
            }
        }
    }
    if let Some(v) = c
        .bulk_threshold
        .and_then(|v| small(v, "bulk-threshold", "1 and 9", &mut bad))
    {
        s.bulk_threshold = v;
    }
    if let Some(v) = c.mark_as_spam_bulk_mail {
        match folded(&v).as_str() {
            "on" => s.mark_as_spam_bulk_mail = BulkMode::On,
            "off" => s.mark_as_spam_bulk_mail = BulkMode::Off,
            _ => bad.push(format!(
                "mark_as_spam_bulk_mail: {v:?} is not one of on, off"
            )),
        }
    }
    if let Some(v) = c
        .quarantine_retention_period
        .and_then(|v| small(v, "quarantine-retention-period", "1 and 30 days", &mut bad))
    {
        s.quarantine_retention_period = v;
    }
    if let Some(v) = c.end_user_spam_notification_frequency.and_then(|v| {
        small(
            v,
            "end-user-spam-notification-frequency",
            "1 and 15 days",
            &mut bad,
        )
    }) {
        s.end_user_spam_notification_frequency = v;
    }
    let lists: [ListSetting<'_>; 7] = [
        (
            "redirect_to_recipients",
            c.redirect_to_recipients,
            &mut s.redirect_to_recipients,
            &address_value,
        ),
        (
            "allowed_senders",
            c.allowed_senders,
            &mut s.allowed_senders,
            &address_value,
        ),
        (
            "allowed_sender_domains",
            c.allowed_sender_domains,
            &mut s.allowed_sender_domains,
            &domain_value,
        ),
        (
            "blocked_senders",
            c.blocked_senders,
            &mut s.blocked_senders,
            &address_value,
        ),
        (
            "blocked_sender_domains",
            c.blocked_sender_domains,
            &mut s.blocked_sender_domains,
            &domain_value,
        ),
        (
            "language_block_list",
            c.language_block_list,
            &mut s.language_block_list,
            &language_value,
        ),
        (
            "region_block_list",
            c.region_block_list,
            &mut s.region_block_list,
            &region_value,
        ),
    ];
    for (name, given, slot, check) in lists {
        if let Some(change) = given {
            match list_after(name, slot, change, check) {
                Ok(v) => *slot = v,
                Err(e) => bad.extend(e),
            }
        }
    }
    if let Some(v) = c.modify_subject_value {
        // Put into the Subject field: a line break would let it write header fields.
        if v.chars().count() > SUBJECT_PREFIX_MAX {
            bad.push(format!(
                "modify_subject_value: at most {SUBJECT_PREFIX_MAX} characters"
            ));
        } else if v.chars().any(char::is_control) {
            bad.push(
                "modify_subject_value: control characters (line breaks) are not allowed".into(),
            );
        } else {
            s.modify_subject_value = v;
        }
    }
    if let Some(v) = c.add_x_header_value {
        let v = v.trim().to_string();
        // A header field name (RFC 5322 §3.6.8: printable ASCII but the colon), ≤ 255
        // characters, as Exchange describes AddXHeaderValue; refused here rather than
        // silently replaced by X-This-Is-Spam.
        let valid = v.is_empty()
            || (v.len() <= 255 && v.bytes().all(|b| (33..=126).contains(&b) && b != b':'));
        if valid {
            s.add_x_header_value = v;
        } else {
            bad.push(format!(
                "add_x_header_value: {v:?} is not a header field name (at most 255 printable \
                 characters, no spaces or colons)"
            ));
        }
    }
    if let Some(modes) = c.asf {
        for (name, mode) in modes {
            let option = Asf::ALL
                .into_iter()
                .find(|a| folded(a.name()) == folded(&name));
            match (option, asf_mode(&name, &mode)) {
                (Some(o), Ok(m)) => {
                    s.asf.insert(o, m);
                }
                (None, _) => bad.push(format!(
                    "asf: {name:?} is not an ASF option (one of {})",
                    Asf::ALL.map(Asf::name).join(", ")
                )),
                (_, Err(e)) => bad.push(format!("asf: {e}")),
            }
        }
        // Off is the default: stored only when on or test.
        s.asf.retain(|_, m| *m != AsfMode::Off);
    }
    if let Some(v) = c.test_mode_action {
        match folded(&v).as_str() {
            "none" => s.test_mode_action = TestModeAction::None,
            "addxheader" => s.test_mode_action = TestModeAction::AddXHeader,
            _ => bad.push(format!(
                "test_mode_action: {v:?} is not one of none, add-x-header"
            )),
        }
    }
    if let Some(v) = c.enable_language_block_list {
        s.enable_language_block_list = v;
    }
    if let Some(v) = c.enable_region_block_list {
        s.enable_region_block_list = v;
    }
    if let Some(v) = c.enable_end_user_spam_notifications {
        s.enable_end_user_spam_notifications = v;
    }
    if let Some(v) = c.end_user_spam_notification_language {
        let l = v.trim().to_ascii_lowercase();
        if l == "default" {
            s.end_user_spam_notification_language = l;
        } else {
            match language_value(&l) {
                Ok(l) => s.end_user_spam_notification_language = l,
                Err(e) => bad.push(format!(
                    "end_user_spam_notification_language: {v:?} is not default and {e}"
                )),
            }
        }
    }
    for (v, to) in [
        (c.spam_quarantine_tag, &mut s.spam_quarantine_tag),
        (
            c.high_confidence_spam_quarantine_tag,
            &mut s.high_confidence_spam_quarantine_tag,
        ),
        (c.phish_quarantine_tag, &mut s.phish_quarantine_tag),
        (
            c.high_confidence_phish_quarantine_tag,
            &mut s.high_confidence_phish_quarantine_tag,
        ),
        (c.bulk_quarantine_tag, &mut s.bulk_quarantine_tag),
    ] {
        if let Some(v) = v {
            *to = v.trim().to_string();
        }
    }
    // What the policy as a whole needs: the cmdlet's checks, and a rule needs a condition.
    if bad.is_empty() {
        if let Err(e) = p.policy.validate() {
            bad.push(e.to_string());
        }
        if !p.is_default() && !p.conditions.has_condition() {
            bad.push(
                "a custom policy needs a condition: sent_to, sent_to_member_of or recipient_domain_is"
                    .into(),
            );
        }
    }
    if bad.is_empty() {
        Ok(p)
    } else {
        Err(bad.join("; "))
    }
}

fn view(t: &Tenant, r: SpamFilterPolicyRecord) -> SpamFilterView {
    let p = r.policy;
    let asf = Asf::ALL
        .into_iter()
        .map(|a| (a.name().to_string(), asf_name(p.asf_mode(a)).to_string()))
        .collect();
    SpamFilterView {
        tenant: t.name.clone(),
        name: r.name,
        priority: r.priority,
        enabled: r.enabled,
        sent_to: r.conditions.sent_to,
        sent_to_member_of: r.conditions.sent_to_member_of,
        recipient_domain_is: r.conditions.recipient_domain_is,
        except_if_sent_to: r.conditions.except_if_sent_to,
        except_if_sent_to_member_of: r.conditions.except_if_sent_to_member_of,
        except_if_recipient_domain_is: r.conditions.except_if_recipient_domain_is,
        spam_action: p.spam_action.name().into(),
        high_confidence_spam_action: p.high_confidence_spam_action.name().into(),
        phish_spam_action: p.phish_spam_action.name().into(),
        high_confidence_phish_action: p.high_confidence_phish_action.name().into(),
        bulk_spam_action: p.bulk_spam_action.name().into(),
        bulk_threshold: p.bulk_threshold,
        mark_as_spam_bulk_mail: match p.mark_as_spam_bulk_mail {
            BulkMode::On => "on",
            BulkMode::Off => "off",
        }
        .into(),
        quarantine_retention_period: p.quarantine_retention_period,
        redirect_to_recipients: p.redirect_to_recipients,
        modify_subject_value: p.modify_subject_value,
        add_x_header_value: p.add_x_header_value,
        allowed_senders: p.allowed_senders,
        allowed_sender_domains: p.allowed_sender_domains,
        blocked_senders: p.blocked_senders,
        blocked_sender_domains: p.blocked_sender_domains,
        asf,
        test_mode_action: match p.test_mode_action {
            TestModeAction::None => "none",
            TestModeAction::AddXHeader => "add-x-header",
        }
        .into(),
        enable_language_block_list: p.enable_language_block_list,
        language_block_list: p.language_block_list,
        enable_region_block_list: p.enable_region_block_list,
        region_block_list: p.region_block_list,
        enable_end_user_spam_notifications: p.enable_end_user_spam_notifications,
        end_user_spam_notification_frequency: p.end_user_spam_notification_frequency,
        end_user_spam_notification_language: p.end_user_spam_notification_language,
        spam_quarantine_tag: p.spam_quarantine_tag,
        high_confidence_spam_quarantine_tag: p.high_confidence_spam_quarantine_tag,
        phish_quarantine_tag: p.phish_quarantine_tag,
        high_confidence_phish_quarantine_tag: p.high_confidence_phish_quarantine_tag,
        bulk_quarantine_tag: p.bulk_quarantine_tag,
    }
}

/// Each quarantine tag of `r` names a quarantine policy of the tenant (built-in or its own):
/// written as the policy spells its name, else refused naming the setting (Exchange refuses a
/// tag that names no policy).
fn check_quarantine_tags(
    s: &AppState,
    tenant: i64,
    r: &mut SpamFilterPolicyRecord,
) -> ApiResult<()> {
    let known = super::quarantine::tenant_policies(s, tenant)?;
    let p = &mut r.policy;
    for (setting, tag) in [
        ("spam_quarantine_tag", &mut p.spam_quarantine_tag),
        (
            "high_confidence_spam_quarantine_tag",
            &mut p.high_confidence_spam_quarantine_tag,
        ),
        ("phish_quarantine_tag", &mut p.phish_quarantine_tag),
        (
            "high_confidence_phish_quarantine_tag",
            &mut p.high_confidence_phish_quarantine_tag,
        ),
        ("bulk_quarantine_tag", &mut p.bulk_quarantine_tag),
    ] {
        match known
            .iter()
            .find(|q| q.name.eq_ignore_ascii_case(tag.trim()))
        {
            Some(q) => *tag = q.name.clone(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "{setting}: {tag:?} is not a quarantine policy of the tenant (hato quarantine-policy list)"
                )));
            }
        }
    }
    Ok(())
}

/// What a tenant's address is, for the conditions: a group, another recipient, or nobody.
fn lookup_in(s: &AppState, tenant: i64) -> ApiResult<impl Fn(&str) -> Option<bool> + use<>> {
    let ix = s.directory.index(tenant)?;
    Ok(move |a: &str| {
        ix.lookup(a)
            .map(|x| matches!(x, hato_directory::index::Addressee::Group(_)))
    })
}

/// A tenant's anti-spam policies in the order they are tried: custom ones by priority, then
/// the default.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/spam-filter/policies",
    tag = "spam filter",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The policies", body = [SpamFilterView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<SpamFilterView>>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let all = s.store.spam_filters(t.id)?;
        Ok(Json(all.into_iter().map(|x| view(&t, x)).collect()))
    })
    .await
}

/// One anti-spam policy (`Default`: the tenant's default policy).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/spam-filter/policies/{name}",
    tag = "spam filter",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name (Default: the default policy)"),
    ),
    responses(
        (status = 200, description = "The policy, every setting with its value", body = SpamFilterView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy (or another tenant's)", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<Json<SpamFilterView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let policy = s.store.spam_filter_named(t.id, &name)?;
        Ok(Json(view(&t, policy)))
    })
    .await
}

/// Change an anti-spam policy (`Set-HostedContentFilterPolicy` and, for a custom policy,
/// `Set-HostedContentFilterRule`): nothing changes when one value is refused.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/spam-filter/policies/{name}",
    tag = "spam filter",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name (Default: the default policy)"),
    ),
    request_body = PolicyChange,
    responses(
        (status = 200, description = "The policy after the change", body = SpamFilterView),
        (status = 400, description = "A bad value (the setting and the value named) or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
    payload: Result<Json<PolicyChange>, JsonRejection>,
) -> ApiResult<Json<SpamFilterView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let (t, changed) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let current = s.store.spam_filter_named(t.id, &name)?;
            let lookup = lookup_in(s, t.id)?;
            let mut changed = apply(current, input, &lookup).map_err(ApiError::bad_request)?;
            check_quarantine_tags(s, t.id, &mut changed)?;
            Ok((t, changed))
        })
        .await?;
    let stored = s.store.set_spam_filter(t.id, changed).await?;
    Ok(Json(view(&t, stored)))
}

/// A new custom policy: its name, and what `PATCH` takes (a condition at least).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    name: String,
    #[serde(flatten)]
    settings: PolicyChange,
}

/// Add a custom anti-spam policy (`New-HostedContentFilterPolicy` with its
/// `New-HostedContentFilterRule`): Exchange's defaults for what is not given; last unless
/// `priority` says where (the others from there move down).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/spam-filter/policies",
    tag = "spam filter",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = NewPolicy,
    responses(
        (status = 201, description = "The new policy", body = SpamFilterView),
        (status = 400, description = "A bad value (named), no condition, the name Default, a priority past the end", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The tenant has a policy of that name", body = ErrorBody),
    )
)]
async fn create(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<NewPolicy>, JsonRejection>,
) -> ApiResult<(axum::http::StatusCode, Json<SpamFilterView>)> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "name {name:?}: 1 to 64 characters, no control characters"
        )));
    }
    if name.eq_ignore_ascii_case(DEFAULT_SPAM_FILTER) {
        return Err(ApiError::bad_request(format!(
            "name {name:?}: the default policy exists already; a custom policy needs another name"
        )));
    }
    let (t, new) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let start = SpamFilterPolicyRecord {
                name,
                // Placed by the store: at the end unless the change says where.
                priority: Some(u32::MAX),
                ..SpamFilterPolicyRecord::default()
            };
            let lookup = lookup_in(s, t.id)?;
            let mut new = apply(start, input.settings, &lookup).map_err(ApiError::bad_request)?;
            check_quarantine_tags(s, t.id, &mut new)?;
            if new.priority == Some(u32::MAX) {
                new.priority = None;
            }
            Ok((t, new))
        })
        .await?;
    let stored = s.store.add_spam_filter(t.id, new).await?;
    Ok((axum::http::StatusCode::CREATED, Json(view(&t, stored))))
}

/// Remove a custom anti-spam policy (the ones after it move up); not the default.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/spam-filter/policies/{name}",
    tag = "spam filter",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The policy's name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The default policy", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or policy", body = ErrorBody),
    )
)]
async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<axum::http::StatusCode> {
    require_global_admin(&p)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    s.store.remove_spam_filter(t.id, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom() -> SpamFilterPolicyRecord {
        SpamFilterPolicyRecord {
            name: "Sales".into(),
            priority: Some(0),
            ..SpamFilterPolicyRecord::default()
        }
    }

    /// sales@ is a group, alice@ a mailbox; nothing else exists.
    fn lookup(a: &str) -> Option<bool> {
        match a {
            "sales@contoso.test" => Some(true),
            "alice@contoso.test" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn actions_take_both_spellings_and_a_bad_one_lists_the_allowed() {
        let ok = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                spam_action: Some("Quarantine".into()),
                bulk_spam_action: Some("no-action".into()),
                high_confidence_spam_action: Some("ModifySubject".into()),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap();
        assert_eq!(ok.policy.spam_action, SpamAction::Quarantine);
        assert_eq!(ok.policy.bulk_spam_action, SpamAction::NoAction);
        assert_eq!(
            ok.policy.high_confidence_spam_action,
            SpamAction::ModifySubject
        );
        let e = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                spam_action: Some("junk".into()),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "spam_action: \"junk\" is not one of move-to-jmf, add-x-header, modify-subject, \
             redirect, delete, quarantine, no-action"
        );
        // validate()'s own refusals come through as they are.
        let e = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                spam_action: Some("no-action".into()),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert!(e.contains("spam-action cannot be no-action"), "{e}");
        let e = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                quarantine_retention_period: Some(100_000),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        // The value as given, not as it would have been cut to fit a number type.
        assert_eq!(
            e,
            "quarantine-retention-period must be between 1 and 30 days (is 100000)"
        );
        let e = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                bulk_threshold: Some(-1),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert_eq!(e, "bulk-threshold must be between 1 and 9 (is -1)");
    }

    #[test]
    fn lists_are_replaced_or_edited_and_every_bad_value_is_named() {
        let mut p = SpamFilterPolicyRecord::default();
        p.policy.allowed_senders = vec!["a@x.test".into(), "b@x.test".into()];
        let edit = |add: &[&str], remove: &[&str]| {
            Some(ListChange::Edit(ListEdit {
                add: add.iter().map(|s| s.to_string()).collect(),
                remove: remove.iter().map(|s| s.to_string()).collect(),
            }))
        };
        let ok = apply(
            p.clone(),
            PolicyChange {
                allowed_senders: edit(&["C@X.test", "a@x.test"], &["b@x.test"]),
                region_block_list: Some(ListChange::Replace(vec!["jp".into(), "US".into()])),
                language_block_list: edit(&["ZH"], &[]),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap();
        assert_eq!(ok.policy.allowed_senders, ["a@x.test", "c@x.test"]);
        assert_eq!(ok.policy.region_block_list, ["JP", "US"]);
        assert_eq!(ok.policy.language_block_list, ["zh"]);

        let e = apply(
            p,
            PolicyChange {
                blocked_senders: Some(ListChange::Replace(vec!["not an address".into()])),
                blocked_sender_domains: edit(&["bad domain"], &[]),
                region_block_list: Some(ListChange::Replace(vec!["Japan".into()])),
                modify_subject_value: Some("[SPAM]\r\nBcc: x@y".into()),
                add_x_header_value: Some("X Spam".into()),
                asf: Some(BTreeMap::from([
                    ("mark-as-spam-frames-in-html".into(), "maybe".into()),
                    ("mark-as-spam-everything".into(), "on".into()),
                ])),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        for part in [
            "blocked_senders: \"not an address\" is not an address",
            "blocked_sender_domains: \"bad domain\" is not a domain name",
            "region_block_list: \"Japan\" is not an ISO 3166-1 alpha-2 country code",
            "modify_subject_value: control characters",
            "add_x_header_value: \"X Spam\" is not a header field name",
            "asf: mark-as-spam-frames-in-html: \"maybe\" is not one of off, on, test",
            "asf: \"mark-as-spam-everything\" is not an ASF option",
        ] {
            assert!(e.contains(part), "{part} in {e}");
        }
    }

    #[test]
    fn conditions_and_exceptions_name_recipients_of_the_tenant() {
        let ok = apply(
            custom(),
            PolicyChange {
                recipient_domain_is: Some(vec!["Contoso.TEST.".into()]),
                except_if_sent_to: Some(vec!["Alice@contoso.test".into()]),
                except_if_sent_to_member_of: Some(vec!["sales@contoso.test".into()]),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap();
        assert_eq!(ok.conditions.recipient_domain_is, ["contoso.test"]);
        assert_eq!(ok.conditions.except_if_sent_to, ["alice@contoso.test"]);
        assert_eq!(
            ok.conditions.except_if_sent_to_member_of,
            ["sales@contoso.test"]
        );
        let e = apply(
            custom(),
            PolicyChange {
                sent_to: Some(vec!["nobody@contoso.test".into()]),
                except_if_sent_to_member_of: Some(vec!["alice@contoso.test".into()]),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert!(
            e.contains("sent_to: \"nobody@contoso.test\" is not a recipient"),
            "{e}"
        );
        assert!(
            e.contains("except_if_sent_to_member_of: \"alice@contoso.test\" is not a group"),
            "{e}"
        );
        // Exceptions alone are no condition.
        let e = apply(
            custom(),
            PolicyChange {
                except_if_sent_to: Some(vec!["alice@contoso.test".into()]),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert!(e.contains("needs a condition"), "{e}");
        let e = apply(
            SpamFilterPolicyRecord::default(),
            PolicyChange {
                sent_to: Some(vec!["alice@contoso.test".into()]),
                ..Default::default()
            },
            &lookup,
        )
        .unwrap_err();
        assert!(
            e.contains("the default policy applies to every recipient"),
            "{e}"
        );
    }
}
