//! Lookups and JSON shapes several route modules share (groups, recipients, mailbox access).
//! Imports no other route module.

use crate::error::ApiError;
use crate::state::{ApiResult, AppState};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hato_core::Address;
use hato_core::Timestamp;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{AccessType, Group, GroupType, Mailbox, MemberRef, TenantId};
use hato_directory::DirectoryIndex;
use hato_directory::policy::{self, Denied};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;

/// A read of one tenant's settings by its global admin (or the operator): the role checked,
/// the tenant resolved as the caller may see it (another tenant's is a 404), then `f` on the
/// blocking pool. The list handlers of connectors and quarantine policies share it.
pub(crate) async fn tenant_read<R, F>(
    s: &AppState,
    p: Principal,
    tenant: String,
    f: F,
) -> ApiResult<R>
where
    F: FnOnce(&AppState, hato_core::directory::Tenant) -> ApiResult<R> + Send + 'static,
    R: Send + 'static,
{
    crate::state::require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = crate::state::visible_tenant(s, &p, &tenant)?;
        f(s, t)
    })
    .await
}

/// The `{group}` of a path: a group's address, or its name (security groups have none).
pub(super) const GROUP_PARAM: &str = "The group's address, or its name";

/// A group as `group_json` writes it.
#[derive(ToSchema)]
#[schema(as = Group)]
#[allow(dead_code)] // describes `group_json`; never built
pub(super) struct GroupView {
    name: String,
    /// None for a security group.
    address: Option<String>,
    /// `distribution`, `security`, `mail-security`, `dynamic` or `m365`.
    #[schema(rename = "type")]
    group_type: String,
    tenant: String,
    /// Owners' addresses.
    owners: Vec<String>,
    /// Members (addresses, or names of groups without one); null for a dynamic group (see
    /// `/members`); `"hidden"` to non-members of a group with hidden membership.
    members: Option<MemberList>,
    /// Subscribers of a Microsoft 365 group; `"hidden"` as `members`.
    subscribers: MemberList,
    require_sender_authentication: bool,
    accept_messages_only_from: Vec<String>,
    reject_messages_from: Vec<String>,
    moderation_enabled: bool,
    moderated_by: Vec<String>,
    bypass_moderation_from: Vec<String>,
    /// `open`, `closed` or `approval-required`.
    member_join_restriction: String,
    /// `open`, `closed` or `approval-required`.
    member_depart_restriction: String,
    /// The older name of `report_to_originator_enabled`.
    report_to_originator: bool,
    report_to_originator_enabled: bool,
    report_to_manager_enabled: bool,
    hidden_group_membership_enabled: bool,
    /// A dynamic group's filter (OPATH), also when given as `precanned`.
    recipient_filter: Option<String>,
    /// A dynamic group's precanned form, as it was given.
    #[schema(value_type = Option<Object>)]
    precanned: Option<Value>,
    /// `public` or `private`.
    access_type: String,
    auto_subscribe_new_members: bool,
    /// The admin roles its members act with (`global-admin`, `recipient-admin`).
    roles: Vec<String>,
}

/// Addresses, or the string `"hidden"`.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes a field of `group_json`; never built
pub(super) enum MemberList {
    Addresses(Vec<String>),
    /// `"hidden"`
    Hidden(String),
}

pub(super) fn denied(d: Denied) -> ApiError {
    match d {
        Denied::NotManager => ApiError::forbidden(policy::NOT_MANAGER),
        Denied::Forbidden(m) => ApiError::forbidden(m),
    }
}

/// The group named by address or display name, if the caller may see it, with its tenant's index.
pub(super) fn find_group(
    s: &AppState,
    p: &Principal,
    ident: &str,
) -> ApiResult<(Arc<DirectoryIndex>, Group)> {
    let not_found = || ApiError::not_found(format!("group {ident} not found"));
    let canonical = Address::parse(ident).ok().map(|a| a.to_string());
    let tenants: Vec<TenantId> = match (p.role, p.tenant_id) {
        (Role::Operator, _) => s.store.tenants()?.into_iter().map(|t| t.id).collect(),
        (_, Some(t)) => vec![t],
        _ => vec![],
    };
    let mut found = Vec::new();
    for t in tenants {
        let ix = s.directory.index(t)?;
        let hit = ix.dir.groups.iter().find(|g| match &canonical {
            Some(a) => g.address.as_deref() == Some(a.as_str()),
            None => g.name.eq_ignore_ascii_case(ident.trim()),
        });
        if let Some(g) = hit.cloned() {
            found.push((ix.clone(), g));
        }
    }
    match found.len() {
        0 => Err(not_found()),
        1 => found.pop().ok_or_else(not_found),
        _ => Err(ApiError::bad_request(format!(
            "several tenants have a group named {ident}; use its address"
        ))),
    }
}

/// A recipient reference given by address (mailbox, alias, group or contact) or, for groups
/// without an address, by name.
pub(super) fn resolve_ref(ix: &DirectoryIndex, text: &str) -> ApiResult<MemberRef> {
    if let Ok(a) = Address::parse(text)
        && let Some(r) = ix.sender(&a.to_string())
    {
        return Ok(r);
    }
    if let Some(g) = ix
        .dir
        .groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(text.trim()))
    {
        return Ok(MemberRef::Group(g.id));
    }
    Err(ApiError::bad_request(format!(
        "{text} is not a recipient of this tenant"
    )))
}

/// Refuses to let rights or roles reach through groups that cannot carry them: `inner` are
/// the non-security groups (distribution lists, dynamic and Microsoft 365 groups) a change would
/// put inside a role group, a rights group or a group nested in either. Exchange gives
/// permissions and roles only to security principals.
pub(super) fn refuse_non_security(
    ix: &DirectoryIndex,
    inner: &[hato_core::directory::GroupId],
    what: &str,
) -> ApiResult<()> {
    if inner.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = inner
        .iter()
        .map(|g| {
            let kind = ix
                .group(*g)
                .map(|g| g.group_type.as_str())
                .unwrap_or("group");
            format!("{} ({kind})", ix.name_of(MemberRef::Group(*g)))
        })
        .collect();
    Err(ApiError::bad_request(format!(
        "rights and roles flow only through security groups: {what} would reach {}; nest only security or mail-enabled security groups",
        names.join(", ")
    )))
}

pub(super) fn resolve_mailbox(ix: &DirectoryIndex, text: &str) -> ApiResult<i64> {
    match resolve_ref(ix, text)? {
        MemberRef::Mailbox(id) => Ok(id),
        _ => Err(ApiError::bad_request(format!("{text} is not a mailbox"))),
    }
}

fn refs_text(ix: &DirectoryIndex, refs: &[MemberRef]) -> Vec<String> {
    refs.iter().map(|r| ix.name_of(*r)).collect()
}

/// Role names as admins give them.
fn role_name(r: Role) -> &'static str {
    match r {
        Role::TenantAdmin => "global-admin",
        other => other.as_str(),
    }
}

/// Whether `p` may see who is in `g`, and read its content when it has any: for a private
/// Microsoft 365 group or one with hidden membership, only its members and owners — not even
/// admins, who manage the group without reading it (Exchange: a private group's content is
/// for members only; HiddenGroupMembershipEnabled hides the members from non-members).
pub(super) fn member_only(g: &Group) -> bool {
    g.group_type == GroupType::M365
        && (g.settings.access_type == AccessType::Private
            || g.settings.hidden_group_membership_enabled)
}

/// Whether `p` is a member or an owner of `g`.
pub(super) fn belongs(p: &Principal, ix: &DirectoryIndex, g: &Group) -> bool {
    p.mailbox_id
        .is_some_and(|me| g.owners.contains(&me) || ix.is_member(MemberRef::Mailbox(me), g.id))
}

/// Whether `p` may see `g`'s members.
pub(super) fn sees_members(p: &Principal, ix: &DirectoryIndex, g: &Group) -> bool {
    !g.settings.hidden_group_membership_enabled || belongs(p, ix, g)
}

/// A group as `p` sees it: a hidden group's members and subscribers show as "hidden" to anyone
/// who is neither a member nor an owner.
pub(super) fn group_json(ix: &DirectoryIndex, g: &Group, p: &Principal) -> Value {
    let hidden = !sees_members(p, ix, g);
    let st = &g.settings;
    let mailboxes = |ids: &[i64]| -> Vec<String> {
        ids.iter()
            .filter_map(|i| ix.mailbox(*i).map(|m| m.address.clone()))
            .collect()
    };
    json!({
        "name": g.name,
        "address": g.address,
        "type": g.group_type.as_str(),
        "tenant": ix.dir.tenant_name,
        "owners": mailboxes(&g.owners),
        "members": if hidden { json!("hidden") } else if g.group_type == GroupType::Dynamic { Value::Null } else { json!(refs_text(ix, &g.members)) },
        "subscribers": if hidden { json!("hidden") } else { json!(mailboxes(&g.subscribers)) },
        "require_sender_authentication": st.require_sender_authentication,
        "accept_messages_only_from": refs_text(ix, &st.accept_messages_only_from),
        "reject_messages_from": refs_text(ix, &st.reject_messages_from),
        "moderation_enabled": st.moderation_enabled,
        "moderated_by": mailboxes(&st.moderated_by),
        "bypass_moderation_from": refs_text(ix, &st.bypass_moderation_from),
        "member_join_restriction": st.member_join_restriction.as_str(),
        "member_depart_restriction": st.member_depart_restriction.as_str(),
        "report_to_originator": st.report_to_originator,
        "report_to_originator_enabled": st.report_to_originator,
        "report_to_manager_enabled": st.report_to_manager,
        "hidden_group_membership_enabled": st.hidden_group_membership_enabled,
        "recipient_filter": st.recipient_filter,
        "precanned": st.precanned,
        "access_type": match st.access_type { AccessType::Public => "public", AccessType::Private => "private" },
        "auto_subscribe_new_members": st.auto_subscribe_new_members,
        "roles": ix.dir.role_groups.iter().filter(|(gid, _)| *gid == g.id).map(|(_, r)| role_name(*r)).collect::<Vec<_>>(),
    })
}

/// The answer to a change of a group: `g` as `p` sees it, through its tenant's index as it is
/// after the change (read on the blocking pool).
pub(super) async fn group_answer(s: &AppState, p: Principal, g: Group) -> ApiResult<Json<Value>> {
    s.blocking(move |s| {
        let ix = s.directory.index(g.tenant_id)?;
        Ok(Json(group_json(&ix, &g, &p)))
    })
    .await
}

/// Admins read any mailbox of their tenant; a user reads their own, and those they have
/// full access to (directly or through a security group).
pub(super) fn require_mailbox_read(s: &AppState, p: &Principal, m: &Mailbox) -> ApiResult<()> {
    if p.is_admin() || p.mailbox_id == Some(m.id) {
        return Ok(());
    }
    if let Some(user) = p.mailbox_id {
        let ix = s.directory.index(m.tenant_id)?;
        if ix.has_right(user, m.id, hato_core::directory::MailboxRight::FullAccess) {
            return Ok(());
        }
    }
    Err(ApiError::forbidden(format!(
        "you have no access to the mailbox {}",
        m.address
    )))
}

/// A recipient admin may not take over an admin's account: setting or clearing the password
/// of, renaming, re-aliasing or removing a mailbox whose user holds an admin role (through a
/// role group, at any depth) is for global admins only. Exchange: Recipient Management cannot
/// reset the password of an administrator; only a Global or Privileged Authentication
/// Administrator can. The same holds for mailbox rights on such a mailbox: full access would let
/// a recipient admin read an admin's mail, send-as would let it write as the admin.
pub(super) fn require_may_manage_account(
    s: &AppState,
    p: &Principal,
    m: &Mailbox,
) -> ApiResult<()> {
    if p.is_global_admin() {
        return Ok(());
    }
    let ix = s.directory.index(m.tenant_id)?;
    if ix.role_of(m.id).is_some() {
        return Err(ApiError::forbidden(format!(
            "only global admins may change the password, name, addresses or permissions of, or remove, {}: its user holds an admin role",
            m.address
        )));
    }
    Ok(())
}

/// A recipient as `ref_json` writes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `ref_json`; never built
pub(super) struct Recipient {
    /// `mailbox`, `contact` or `group`.
    kind: String,
    /// None for a group without an address.
    address: Option<String>,
    /// The display name (a group's name).
    name: Option<String>,
}

pub(super) fn ref_json(ix: &DirectoryIndex, r: MemberRef) -> Value {
    let (kind, name) = match r {
        MemberRef::Mailbox(id) => ("mailbox", ix.mailbox(id).map(|m| m.display_name.clone())),
        MemberRef::Contact(id) => ("contact", ix.contact(id).map(|c| c.display_name.clone())),
        MemberRef::Group(id) => ("group", ix.group(id).map(|g| g.name.clone())),
    };
    json!({ "kind": kind, "address": ix.address_of(r), "name": name })
}

/// Checks that `m` may be a member of a group of `kind`.
pub(super) fn check_member_kind(
    ix: &DirectoryIndex,
    kind: GroupType,
    m: MemberRef,
    text: &str,
) -> ApiResult<()> {
    match (kind, m) {
        (GroupType::Dynamic, _) => Err(ApiError::bad_request(
            "a dynamic group's members come from its recipient filter; change the filter instead",
        )),
        (GroupType::M365, MemberRef::Mailbox(_)) => Ok(()),
        (GroupType::M365, _) => Err(ApiError::bad_request(format!(
            "{text}: Microsoft 365 groups have only mailboxes as members"
        ))),
        // Exchange (Add-DistributionGroupMember): Microsoft 365 groups are not allowed members
        // of distribution or mail-enabled security groups.
        (GroupType::Distribution | GroupType::MailSecurity, MemberRef::Group(g))
            if ix.group(g).is_some_and(|g| g.group_type == GroupType::M365) =>
        {
            Err(ApiError::bad_request(format!(
                "{text}: a Microsoft 365 group cannot be a member of a distribution or mail-enabled security group"
            )))
        }
        (GroupType::Security, MemberRef::Contact(_)) => Err(ApiError::bad_request(format!(
            "{text}: contacts cannot be members of a security group"
        ))),
        (GroupType::Security, MemberRef::Group(g))
            if !ix.group(g).is_some_and(|g| g.group_type.grants_rights()) =>
        {
            Err(ApiError::bad_request(format!(
                "{text}: only security groups can be members of a security group"
            )))
        }
        (_, MemberRef::Group(g))
            if kind.is_mail_enabled()
                && !ix.group(g).is_some_and(|g| g.group_type.is_mail_enabled()) =>
        {
            Err(ApiError::bad_request(format!(
                "{text}: a group without an address cannot be a member of a mail-enabled group"
            )))
        }
        _ => Ok(()),
    }
}

// ----- what listings share (message trace, the queue) --------------------------------------------

/// A paging parameter: a whole number from 1 to `max`, `default` when absent. Exchange refuses
/// values out of range rather than clamping them (`Get-MessageTrace -PageSize 1..5000`,
/// `-Page 1..1000`), and so does hato, naming the limits.
pub(super) fn page_param(
    name: &str,
    v: Option<&str>,
    default: usize,
    max: usize,
) -> ApiResult<usize> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be a whole number from 1 to {max} (default {default}), not {v:?}"
        ))),
    }
}

/// A time filter (`start`, `end`): RFC 3339, a date, or `YYYY-MM-DD HH:MM[:SS]` (UTC); `None`
/// when empty; a 400 naming the parameter when it is not a time.
pub(super) fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<Timestamp>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            Timestamp::parse_human(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name}: cannot read {s:?} as a time (use 2026-11-28T21:00:00Z or 2026-11-28)"
                ))
            })
        })
        .transpose()
}

/// A query value with its spaces trimmed; `None` when nothing is left.
pub(super) fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// An address filter (`sender`, `recipient`, ...) in canonical form; `None` when empty; a 400
/// naming the parameter when it is not an address.
pub(super) fn address_param(name: &str, v: Option<String>) -> ApiResult<Option<String>> {
    nonempty(v)
        .map(|a| {
            Address::parse(&a)
                .map(|a| a.to_string())
                .map_err(|e| ApiError::bad_request(format!("{name} {a}: {e}")))
        })
        .transpose()
}

/// Why a stage decided (`hato_core::Reason`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes `hato_core::Reason`; never built
pub(super) struct TraceReason {
    /// `session`, `recipient`, `group_restriction`, `moderation`, `delivery`, `queue`,
    /// `connection_filter`, `provider_block_list`, `dns_block_list`, `throttling`,
    /// `early_talker`, `helo`, `malware`, `transport_rule` or `spam`.
    stage: String,
    /// The rule, list or setting that decided (a group's setting, `mailbox quota`,
    /// `smtp.postmaster`, a transport rule's name); absent when none did.
    rule: Option<String>,
    /// A sentence for people.
    text: String,
    /// The figures that decided, in order (`size`, `used`, `limit`, `scl`, …); absent when none.
    figures: Option<Vec<TraceFigure>>,
}

/// One named figure of a reason.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `hato_core::reason::Figure`; never built
pub(super) struct TraceFigure {
    name: String,
    value: TraceFigureValue,
}

/// A figure's value: a whole number (bytes, counts, an SCL) or a text (a time, an address).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes `hato_core::reason::FigureValue`; never built
pub(super) enum TraceFigureValue {
    Integer(i64),
    Text(String),
}

// ----- users' junk / not-junk reports (reports and mail moves make them) -------------------------

/// The name recorded as having acted (a report's reporter): a user's address, else the role
/// (`tenant-admin of contoso`, `operator`).
pub(super) fn actor_name(s: &AppState, p: &Principal) -> ApiResult<String> {
    if let (Some(m), Some(t)) = (p.mailbox_id, p.tenant_id)
        && let Some(mb) = s.directory.index(t)?.mailbox(m)
    {
        return Ok(mb.address.clone());
    }
    Ok(match (p.role, p.tenant_id) {
        (Role::Operator, _) | (_, None) => p.role.as_str().to_string(),
        (role, Some(t)) => {
            let tenant = s
                .store
                .tenants()?
                .into_iter()
                .find(|x| x.id == t)
                .map(|x| x.name)
                .unwrap_or_default();
            format!("{} of {tenant}", role.as_str())
        }
    })
}

/// A stored junk / not-junk report as the API writes it.
#[derive(Serialize, ToSchema)]
pub(crate) struct SpamReportView {
    /// Reports are numbered in the order they were made.
    pub(crate) id: i64,
    pub(crate) trace_id: String,
    pub(crate) recipient: String,
    /// `junk` or `not-junk`.
    pub(crate) verdict: String,
    /// The verdict this report replaced (the same reporter said the opposite before).
    pub(crate) replaces: Option<String>,
    pub(crate) reporter: String,
    /// RFC 3339, UTC.
    pub(crate) reported: String,
    /// False when the same reporter had said the same already: nothing changed.
    pub(crate) recorded: bool,
}

/// Counts a new junk report for the sending IP's reputation (the throttle's junk figure, as a
/// spam verdict counts) and answers the report's view. A repeated report counts nothing.
pub(super) fn counted_report(
    s: &AppState,
    outcome: hato_store::SpamReportOutcome,
) -> SpamReportView {
    let r = outcome.report;
    if outcome.recorded
        && r.verdict == hato_store::SpamReportVerdict::Junk
        && let Ok(ip) = r.client_ip.parse::<std::net::IpAddr>()
    {
        s.throttle.record_junk_report(ip, s.clock.now());
    }
    SpamReportView {
        id: r.id,
        trace_id: r.trace_id,
        recipient: r.recipient,
        verdict: r.verdict.as_str().into(),
        replaces: r.replaces.map(|v| v.as_str().to_string()),
        reporter: r.reporter,
        reported: r.reported.to_rfc3339(),
        recorded: outcome.recorded,
    }
}

// ----- the HTML pages ------------------------------------------------------------------------------

/// `text` safe inside HTML text and quoted attribute values: the five characters that could end
/// either or start markup become character references (HTML §13.1.4); linear in its length.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page of the pages for people without a token (the delist page, the quarantine
/// release page). `body` is HTML already escaped. No script, style or outside resource: the
/// Content-Security-Policy forbids them, forms post only here, and no Referer (a confirmation
/// or release page's address holds its token) leaves.
pub(super) fn page(status: StatusCode, hostname: &str, title: &str, body: &str) -> Response {
    page_in("en", status, hostname, title, body)
}

/// [`page`] in the language `lang` (an RFC 5646 tag of hato's own, never a visitor's text).
pub(super) fn page_in(
    lang: &'static str,
    status: StatusCode,
    hostname: &str,
    title: &str,
    body: &str,
) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} - {}</title>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n{body}</main>\n</body>\n</html>\n",
        escape(title),
        escape(hostname),
        escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}
