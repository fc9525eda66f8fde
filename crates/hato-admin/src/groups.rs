//! The groups API: the five group types, owners and members, join and leave, moderation,
//! Microsoft 365 group content, mail contacts, mailbox permissions, role groups and users' login.
//!
//! Authorization follows seed A1–A4 (see `hato_directory::policy::authorize`); another tenant's
//! objects answer 404 as if they did not exist.

use crate::api::{
    ApiResult, AppState, TenantFilter, body, listing_scope, require_admin, require_global_admin,
    target_tenant, visible_mailbox,
};
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hato_core::auth::{Principal, Role};
use hato_core::directory::{
    AccessType, Contact, Group, GroupSettings, GroupType, MailboxAttributes, MailboxRight,
    MemberRef, Permission, Restriction, TenantId,
};
use hato_core::{Address, Timestamp, id};
use hato_directory::DirectoryIndex;
use hato_directory::opath::{self, IncludedRecipients, Precanned};
use hato_directory::policy::{self, Denied, GroupAction};
use hato_store::{
    GroupChange, JoinRequestKind, ModerationState, NewContact, NewGroup, TokenInfo, hash_token,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/preview", post(preview))
        .route(
            "/api/v1/groups/{group}",
            get(get_group).patch(update_group).delete(delete_group),
        )
        .route(
            "/api/v1/groups/{group}/members",
            get(list_members).post(change_members),
        )
        .route("/api/v1/groups/{group}/owners", post(change_owners))
        .route(
            "/api/v1/groups/{group}/subscribers",
            post(change_subscribers),
        )
        .route("/api/v1/groups/{group}/join", post(join))
        .route("/api/v1/groups/{group}/leave", post(leave))
        .route("/api/v1/groups/{group}/requests", get(list_requests))
        .route(
            "/api/v1/groups/{group}/requests/{id}/{decision}",
            post(decide_request),
        )
        .route("/api/v1/groups/{group}/roles", post(assign_role))
        .route("/api/v1/groups/{group}/conversations", get(conversations))
        .route(
            "/api/v1/groups/{group}/conversations/{id}",
            get(conversation),
        )
        .route("/api/v1/groups/{group}/items/{id}/raw", get(group_item_raw))
        .route("/api/v1/groups/{group}/calendar", get(calendar))
        .route("/api/v1/groups/{group}/files", get(files))
        .route(
            "/api/v1/groups/{group}/files/{item}/{index}",
            get(file_download),
        )
        .route("/api/v1/moderation", get(moderation_list))
        .route(
            "/api/v1/moderation/{id}/{decision}",
            post(moderation_decide),
        )
        .route("/api/v1/contacts", get(list_contacts).post(create_contact))
        .route(
            "/api/v1/contacts/{address}",
            axum::routing::delete(delete_contact),
        )
        .route(
            "/api/v1/mailboxes/{address}/permissions",
            get(list_permissions)
                .post(add_permission)
                .delete(remove_permission),
        )
}

fn denied(d: Denied) -> ApiError {
    match d {
        Denied::NotManager => ApiError::forbidden(policy::NOT_MANAGER),
        Denied::Forbidden(m) => ApiError::forbidden(m),
    }
}

// ----- finding things -----------------------------------------------------------------------------

/// The group named by address or display name, if the caller may see it, with its tenant's index.
fn find_group(s: &AppState, p: &Principal, ident: &str) -> ApiResult<(Arc<DirectoryIndex>, Group)> {
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
fn resolve_ref(ix: &DirectoryIndex, text: &str) -> ApiResult<MemberRef> {
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

fn resolve_mailbox(ix: &DirectoryIndex, text: &str) -> ApiResult<i64> {
    match resolve_ref(ix, text)? {
        MemberRef::Mailbox(id) => Ok(id),
        _ => Err(ApiError::bad_request(format!("{text} is not a mailbox"))),
    }
}

fn ref_json(ix: &DirectoryIndex, r: MemberRef) -> Value {
    let (kind, name) = match r {
        MemberRef::Mailbox(id) => ("mailbox", ix.mailbox(id).map(|m| m.display_name.clone())),
        MemberRef::Contact(id) => ("contact", ix.contact(id).map(|c| c.display_name.clone())),
        MemberRef::Group(id) => ("group", ix.group(id).map(|g| g.name.clone())),
    };
    json!({ "kind": kind, "address": ix.address_of(r), "name": name })
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

fn group_json(ix: &DirectoryIndex, g: &Group) -> Value {
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
        "members": if g.group_type == GroupType::Dynamic { Value::Null } else { json!(refs_text(ix, &g.members)) },
        "subscribers": mailboxes(&g.subscribers),
        "require_sender_authentication": st.require_sender_authentication,
        "accept_messages_only_from": refs_text(ix, &st.accept_messages_only_from),
        "reject_messages_from": refs_text(ix, &st.reject_messages_from),
        "moderation_enabled": st.moderation_enabled,
        "moderated_by": mailboxes(&st.moderated_by),
        "bypass_moderation_from": refs_text(ix, &st.bypass_moderation_from),
        "member_join_restriction": st.member_join_restriction.as_str(),
        "member_depart_restriction": st.member_depart_restriction.as_str(),
        "report_to_originator": st.report_to_originator,
        "recipient_filter": st.recipient_filter,
        "precanned": st.precanned,
        "access_type": match st.access_type { AccessType::Public => "public", AccessType::Private => "private" },
        "auto_subscribe_new_members": st.auto_subscribe_new_members,
        "roles": ix.dir.role_groups.iter().filter(|(gid, _)| *gid == g.id).map(|(_, r)| role_name(*r)).collect::<Vec<_>>(),
    })
}

// ----- settings input -----------------------------------------------------------------------------

/// Group fields as the API takes them (create and PATCH).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupInput {
    address: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    group_type: Option<String>,
    tenant: Option<String>,
    owners: Option<Vec<String>>,
    members: Option<Vec<String>>,
    require_sender_authentication: Option<bool>,
    accept_messages_only_from: Option<Vec<String>>,
    reject_messages_from: Option<Vec<String>>,
    moderation_enabled: Option<bool>,
    moderated_by: Option<Vec<String>>,
    bypass_moderation_from: Option<Vec<String>>,
    member_join_restriction: Option<String>,
    member_depart_restriction: Option<String>,
    report_to_originator: Option<bool>,
    recipient_filter: Option<String>,
    precanned: Option<PrecannedInput>,
    access_type: Option<String>,
    auto_subscribe_new_members: Option<bool>,
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

/// Exchange's precanned dynamic-group form.
#[derive(Deserialize, Default, Clone, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct PrecannedInput {
    #[serde(default)]
    included_recipients: Vec<String>,
    #[serde(default)]
    conditional_department: Vec<String>,
    #[serde(default)]
    conditional_company: Vec<String>,
    #[serde(default)]
    conditional_state_or_province: Vec<String>,
    /// `{"1": ["x"], "15": ["y"]}`
    #[serde(default)]
    conditional_custom_attributes: std::collections::BTreeMap<String, Vec<String>>,
}

impl PrecannedInput {
    fn to_precanned(&self) -> ApiResult<Precanned> {
        let mut p = Precanned {
            included_recipients: Vec::new(),
            department: self.conditional_department.clone(),
            company: self.conditional_company.clone(),
            state_or_province: self.conditional_state_or_province.clone(),
            custom_attributes: Default::default(),
        };
        for name in &self.included_recipients {
            p.included_recipients.push(IncludedRecipients::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown included_recipients value {name}: use MailboxUsers, MailContacts, MailGroups, MailUsers, Resources or AllRecipients"
                ))
            })?);
        }
        for (n, values) in &self.conditional_custom_attributes {
            let i: usize = n
                .parse()
                .ok()
                .filter(|i| (1..=15).contains(i))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "conditional_custom_attributes: {n} is not 1 to 15"
                    ))
                })?;
            p.custom_attributes[i - 1] = values.clone();
        }
        Ok(p)
    }
}

fn restriction(name: &str, v: &Option<String>) -> ApiResult<Option<Restriction>> {
    v.as_deref()
        .map(|t| {
            Restriction::parse(t).ok_or_else(|| {
                ApiError::bad_request(format!("{name}: use open, closed or approval-required"))
            })
        })
        .transpose()
}

fn filter_error(e: opath::FilterError) -> ApiError {
    ApiError::bad_request(format!("recipient_filter: {e}"))
}

impl GroupInput {
    /// Applies the settings fields to `st`, resolving recipients through `ix`.
    fn apply(&self, ix: &DirectoryIndex, kind: GroupType, st: &mut GroupSettings) -> ApiResult<()> {
        let refs = |list: &Option<Vec<String>>| -> ApiResult<Option<Vec<MemberRef>>> {
            list.as_ref()
                .map(|l| l.iter().map(|t| resolve_ref(ix, t)).collect())
                .transpose()
        };
        if let Some(v) = self.require_sender_authentication {
            st.require_sender_authentication = v;
        }
        if let Some(v) = refs(&self.accept_messages_only_from)? {
            st.accept_messages_only_from = v;
        }
        if let Some(v) = refs(&self.reject_messages_from)? {
            st.reject_messages_from = v;
        }
        if let Some(v) = self.moderation_enabled {
            st.moderation_enabled = v;
        }
        if let Some(list) = &self.moderated_by {
            st.moderated_by = list
                .iter()
                .map(|t| resolve_mailbox(ix, t))
                .collect::<ApiResult<_>>()?;
        }
        if let Some(v) = refs(&self.bypass_moderation_from)? {
            st.bypass_moderation_from = v;
        }
        if let Some(r) = restriction("member_join_restriction", &self.member_join_restriction)? {
            st.member_join_restriction = r;
        }
        if let Some(r) = restriction("member_depart_restriction", &self.member_depart_restriction)?
        {
            st.member_depart_restriction = r;
        }
        // Exchange: security groups can't be open to joining or leaving.
        if kind.grants_rights()
            && (st.member_join_restriction == Restriction::Open
                || st.member_depart_restriction == Restriction::Open)
        {
            return Err(ApiError::bad_request(
                "security groups cannot be open: use closed or approval-required",
            ));
        }
        if let Some(v) = self.report_to_originator {
            st.report_to_originator = v;
        }
        if let Some(a) = &self.access_type {
            st.access_type = match a.to_ascii_lowercase().as_str() {
                "public" => AccessType::Public,
                "private" => AccessType::Private,
                _ => return Err(ApiError::bad_request("access_type: use public or private")),
            };
        }
        if let Some(v) = self.auto_subscribe_new_members {
            st.auto_subscribe_new_members = v;
        }
        if self.recipient_filter.is_some() && self.precanned.is_some() {
            return Err(ApiError::bad_request(
                "give recipient_filter or precanned, not both",
            ));
        }
        if let Some(text) = &self.recipient_filter {
            let f = opath::parse(text).map_err(filter_error)?;
            st.recipient_filter = Some(f.to_opath());
            st.precanned = None;
        }
        if let Some(p) = &self.precanned {
            st.recipient_filter = Some(p.to_precanned()?.to_filter().to_opath());
            st.precanned = serde_json::to_value(p).ok();
        }
        if (self.recipient_filter.is_some() || self.precanned.is_some())
            && kind != GroupType::Dynamic
        {
            return Err(ApiError::bad_request(
                "only dynamic groups have a recipient filter",
            ));
        }
        Ok(())
    }
}

/// Checks that `m` may be a member of a group of `kind`.
fn check_member_kind(
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

// ----- groups -------------------------------------------------------------------------------------

async fn create_group(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<Response> {
    let input = body(payload)?;
    let kind_text = input.group_type.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "\"type\" is required: distribution, security, mail-security, dynamic or m365",
        )
    })?;
    let kind = GroupType::parse(kind_text)
        .ok_or_else(|| ApiError::bad_request(format!("unknown group type {kind_text}: use distribution, security, mail-security, dynamic or m365")))?;
    // Users may create distribution and Microsoft 365 groups (Exchange's default for end users);
    // everything else is an admin's.
    if !p.is_admin() && !matches!(kind, GroupType::Distribution | GroupType::M365) {
        return Err(ApiError::forbidden(
            "only admins may create this type of group",
        ));
    }
    let tenant = target_tenant(&s, &p, input.tenant.as_deref())?;
    let ix = s.directory.index(tenant)?;
    let address = match (kind, input.address.as_deref()) {
        (GroupType::Security, Some(_)) => {
            return Err(ApiError::bad_request(
                "a security group is not mail-enabled and has no address; use mail-security for one that has",
            ));
        }
        (GroupType::Security, None) => None,
        (_, None) => {
            return Err(ApiError::bad_request(
                "\"address\" is required for a mail-enabled group",
            ));
        }
        (_, Some(a)) => {
            let addr = Address::parse(a).map_err(|e| ApiError::bad_request(format!("{a}: {e}")))?;
            match s.store.domain(addr.domain())? {
                Some((t, _)) if t == tenant => Some(addr.to_string()),
                _ => {
                    return Err(ApiError::not_found(format!(
                        "{} is not an accepted domain of the tenant",
                        addr.domain()
                    )));
                }
            }
        }
    };
    let name = input
        .name
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            address
                .as_ref()
                .map(|a| a.split('@').next().unwrap_or(a).to_string())
        })
        .ok_or_else(|| ApiError::bad_request("\"name\" is required"))?;
    if ix
        .dir
        .groups
        .iter()
        .any(|g| g.name.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a group named {name} already exists"),
        ));
    }
    let mut owners: Vec<i64> = input
        .owners
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|o| resolve_mailbox(&ix, o))
        .collect::<ApiResult<_>>()?;
    if let (true, Some(me)) = (owners.is_empty(), p.mailbox_id) {
        owners.push(me);
    }
    if owners.is_empty() {
        return Err(ApiError::bad_request(
            "a group needs at least one owner (\"owners\")",
        ));
    }
    let mut members = Vec::new();
    for m in input.members.clone().unwrap_or_default() {
        let r = resolve_ref(&ix, &m)?;
        check_member_kind(&ix, kind, r, &m)?;
        members.push(r);
    }
    let mut settings = GroupSettings::defaults_for(kind);
    input.apply(&ix, kind, &mut settings)?;
    if kind == GroupType::Dynamic && settings.recipient_filter.is_none() {
        return Err(ApiError::bad_request(
            "a dynamic group needs recipient_filter or precanned",
        ));
    }
    let g = s
        .store
        .create_group(NewGroup {
            tenant_id: tenant,
            name,
            address,
            group_type: kind,
            settings,
            owners,
            members,
        })
        .await?;
    let ix = s.directory.index(tenant)?;
    Ok((StatusCode::CREATED, Json(group_json(&ix, &g))).into_response())
}

async fn list_groups(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    let tenants: Vec<TenantId> = match (f.tenant.as_deref(), p.role, p.tenant_id) {
        (Some(name), _, _) => match s.store.tenant_by_name(name)? {
            Some(t) if p.sees(t.id) => vec![t.id],
            _ => return Err(ApiError::not_found(format!("tenant {name} not found"))),
        },
        (None, Role::Operator, _) => s.store.tenants()?.into_iter().map(|t| t.id).collect(),
        (None, _, Some(t)) => vec![t],
        _ => vec![],
    };
    let mut out = Vec::new();
    for t in tenants {
        let ix = s.directory.index(t)?;
        for g in &ix.dir.groups {
            out.push(group_json(&ix, g));
        }
    }
    Ok(Json(out))
}

async fn get_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    Ok(Json(group_json(&ix, &g)))
}

async fn update_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    let input = body(payload)?;
    if input.address.is_some()
        || input.group_type.is_some()
        || input.tenant.is_some()
        || input.owners.is_some()
        || input.members.is_some()
    {
        return Err(ApiError::bad_request(
            "address, type and tenant cannot be changed; owners and members change through /owners and /members",
        ));
    }
    policy::authorize(
        &p,
        &ix,
        &g,
        GroupAction::ChangeSettings,
        input.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    let mut settings = g.settings.clone();
    input.apply(&ix, g.group_type, &mut settings)?;
    let change = GroupChange {
        name: input
            .name
            .clone()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        settings: Some(settings),
        ..Default::default()
    };
    let updated = s.store.update_group(g.id, change).await?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &updated)))
}

#[derive(Deserialize, Default)]
struct BypassParam {
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

async fn delete_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    Query(q): Query<BypassParam>,
) -> ApiResult<StatusCode> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    policy::authorize(
        &p,
        &ix,
        &g,
        GroupAction::Delete,
        q.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    s.store.remove_group(g.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_members(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    Ok(Json(
        ix.direct_members(g.id)
            .into_iter()
            .map(|m| ref_json(&ix, m))
            .collect(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

async fn change_members(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    let input = body(payload)?;
    policy::authorize(
        &p,
        &ix,
        &g,
        GroupAction::ChangeMembers,
        input.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    if g.group_type == GroupType::Dynamic && !(input.add.is_empty() && input.remove.is_empty()) {
        return Err(ApiError::bad_request(
            "a dynamic group's members come from its recipient filter; change the filter instead",
        ));
    }
    let mut change = GroupChange::default();
    for m in &input.add {
        let r = resolve_ref(&ix, m)?;
        check_member_kind(&ix, g.group_type, r, m)?;
        if r == MemberRef::Group(g.id) {
            return Err(ApiError::bad_request(
                "a group cannot be a member of itself",
            ));
        }
        change.add_members.push(r);
    }
    for m in &input.remove {
        change.remove_members.push(resolve_ref(&ix, m)?);
    }
    let updated = s.store.update_group(g.id, change).await?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &updated)))
}

async fn change_owners(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    let input = body(payload)?;
    policy::authorize(
        &p,
        &ix,
        &g,
        GroupAction::ChangeOwners,
        input.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    let change = GroupChange {
        add_owners: input
            .add
            .iter()
            .map(|o| resolve_mailbox(&ix, o))
            .collect::<ApiResult<_>>()?,
        remove_owners: input
            .remove
            .iter()
            .map(|o| resolve_mailbox(&ix, o))
            .collect::<ApiResult<_>>()?,
        ..Default::default()
    };
    let updated = s
        .store
        .update_group(g.id, change)
        .await
        .map_err(ApiError::from)?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &updated)))
}

/// Subscribers of a Microsoft 365 group: owners and admins change anyone's subscription; a
/// member changes their own.
async fn change_subscribers(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<ListChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    if g.group_type != GroupType::M365 {
        return Err(ApiError::bad_request(
            "only Microsoft 365 groups have subscribers",
        ));
    }
    let input = body(payload)?;
    let add: Vec<i64> = input
        .add
        .iter()
        .map(|o| resolve_mailbox(&ix, o))
        .collect::<ApiResult<_>>()?;
    let remove: Vec<i64> = input
        .remove
        .iter()
        .map(|o| resolve_mailbox(&ix, o))
        .collect::<ApiResult<_>>()?;
    let manages = policy::authorize(&p, &ix, &g, GroupAction::ChangeMembers, false).is_ok();
    let only_self = p
        .mailbox_id
        .is_some_and(|me| add.iter().chain(&remove).all(|m| *m == me));
    if !manages && !only_self {
        return Err(ApiError::forbidden(
            "members may change only their own subscription",
        ));
    }
    for m in &add {
        if !g.members.contains(&MemberRef::Mailbox(*m)) {
            return Err(ApiError::bad_request(format!(
                "{} is not a member of the group",
                ix.name_of(MemberRef::Mailbox(*m))
            )));
        }
    }
    let updated = s
        .store
        .update_group(
            g.id,
            GroupChange {
                add_subscribers: add,
                remove_subscribers: remove,
                ..Default::default()
            },
        )
        .await?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &updated)))
}

fn me(p: &Principal) -> ApiResult<i64> {
    p.mailbox_id.ok_or_else(|| {
        ApiError::bad_request("only a user (logged in as a mailbox) can join or leave a group")
    })
}

/// A user joins: open groups (and public Microsoft 365 groups) at once; approval-required (and
/// private) groups by a request to the owners; closed groups not at all.
async fn join(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, g) = find_group(&s, &p, &ident)?;
    let me = me(&p)?;
    if g.group_type == GroupType::Dynamic {
        return Err(ApiError::bad_request(
            "a dynamic group's members come from its recipient filter",
        ));
    }
    if g.members.contains(&MemberRef::Mailbox(me)) {
        return Ok(Json(json!({ "result": "already-member" })));
    }
    let restriction = if g.group_type == GroupType::M365 {
        match g.settings.access_type {
            AccessType::Public => Restriction::Open,
            AccessType::Private => Restriction::ApprovalRequired,
        }
    } else {
        g.settings.member_join_restriction
    };
    membership_change(&s, &g, me, JoinRequestKind::Join, restriction).await
}

/// Carries out a user's own join or leave under the group's restriction: at once when open, as a
/// request to the owners when approval is required, not at all when closed.
async fn membership_change(
    s: &AppState,
    g: &Group,
    me: i64,
    kind: JoinRequestKind,
    restriction: Restriction,
) -> ApiResult<Json<Value>> {
    let member = vec![MemberRef::Mailbox(me)];
    let (change, done, verb) = match kind {
        JoinRequestKind::Join => (
            GroupChange {
                add_members: member,
                ..Default::default()
            },
            "joined",
            "add",
        ),
        JoinRequestKind::Depart => (
            GroupChange {
                remove_members: member,
                ..Default::default()
            },
            "left",
            "remove",
        ),
    };
    match restriction {
        Restriction::Open => {
            s.store.update_group(g.id, change).await?;
            Ok(Json(json!({ "result": done })))
        }
        Restriction::ApprovalRequired => {
            let r = s.store.add_join_request(g.id, me, kind).await?;
            Ok(Json(json!({ "result": "requested", "request": r.id })))
        }
        Restriction::Closed => Err(ApiError::forbidden(format!(
            "this group is closed: only its owners can {verb} members"
        ))),
    }
}

async fn leave(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, g) = find_group(&s, &p, &ident)?;
    let me = me(&p)?;
    if !g.members.contains(&MemberRef::Mailbox(me)) {
        return Err(ApiError::bad_request("you are not a member of this group"));
    }
    let restriction = if g.group_type == GroupType::M365 {
        Restriction::Open
    } else {
        g.settings.member_depart_restriction
    };
    membership_change(&s, &g, me, JoinRequestKind::Depart, restriction).await
}

async fn list_requests(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    policy::authorize(&p, &ix, &g, GroupAction::ChangeMembers, false).map_err(denied)?;
    Ok(Json(
        s.store
            .join_requests(g.id)?
            .into_iter()
            .map(|r| json!({ "id": r.id, "mailbox": ix.name_of(MemberRef::Mailbox(r.mailbox_id)), "kind": r.kind, "created": r.created.to_rfc3339() }))
            .collect(),
    ))
}

async fn decide_request(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id, decision)): Path<(String, i64, String)>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    policy::authorize(&p, &ix, &g, GroupAction::ChangeMembers, false).map_err(denied)?;
    let request = s
        .store
        .join_requests(g.id)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found(format!("request {id} not found")))?;
    match decision.as_str() {
        "approve" => {
            let m = MemberRef::Mailbox(request.mailbox_id);
            let change = match request.kind {
                JoinRequestKind::Join => GroupChange {
                    add_members: vec![m],
                    ..Default::default()
                },
                JoinRequestKind::Depart => GroupChange {
                    remove_members: vec![m],
                    ..Default::default()
                },
            };
            s.store.update_group(g.id, change).await?;
        }
        "reject" => {}
        _ => return Err(ApiError::not_found("use approve or reject")),
    }
    s.store.remove_join_request(id).await?;
    Ok(Json(json!({ "result": decision })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    role: String,
    #[serde(default = "yes")]
    assign: bool,
}

fn yes() -> bool {
    true
}

/// Makes a security group a role group: its members act as global or recipient admins.
async fn assign_role(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<RoleInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_global_admin(&p)?;
    let (_, g) = find_group(&s, &p, &ident)?;
    let input = body(payload)?;
    if !g.group_type.grants_rights() {
        return Err(ApiError::bad_request(
            "only security and mail-enabled security groups can hold admin roles",
        ));
    }
    let role = match input.role.as_str() {
        "global-admin" | "tenant-admin" => Role::TenantAdmin,
        "recipient-admin" => Role::RecipientAdmin,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown role {other}: use global-admin or recipient-admin"
            )));
        }
    };
    s.store.assign_role(g.id, role, input.assign).await?;
    let ix = s.directory.index(g.tenant_id)?;
    Ok(Json(group_json(&ix, &g)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewInput {
    tenant: Option<String>,
    filter: Option<String>,
    precanned: Option<PrecannedInput>,
}

/// The members any filter has now (the preview of a dynamic group).
async fn preview(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<PreviewInput>, JsonRejection>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let input = body(payload)?;
    let tenant = target_tenant(&s, &p, input.tenant.as_deref())?;
    let filter = match (&input.filter, &input.precanned) {
        (Some(text), None) => opath::parse(text).map_err(filter_error)?,
        (None, Some(p)) => p.to_precanned()?.to_filter(),
        _ => return Err(ApiError::bad_request("give filter or precanned")),
    };
    let ix = s.directory.index(tenant)?;
    Ok(Json(
        ix.evaluate(&filter, None)
            .into_iter()
            .map(|m| ref_json(&ix, m))
            .collect(),
    ))
}

// ----- Microsoft 365 group content -------------------------------------------------------------------

/// Members, owners and admins read a group's content; in a public group, anyone in the tenant.
fn require_group_reader(p: &Principal, ix: &DirectoryIndex, g: &Group) -> ApiResult<()> {
    if g.group_type != GroupType::M365 {
        return Err(ApiError::bad_request(
            "only Microsoft 365 groups have a group mailbox",
        ));
    }
    if p.is_admin() || g.settings.access_type == AccessType::Public {
        return Ok(());
    }
    match p.mailbox_id {
        Some(me) if g.owners.contains(&me) || ix.is_member(MemberRef::Mailbox(me), g.id) => Ok(()),
        _ => Err(ApiError::forbidden(
            "only members can read this private group",
        )),
    }
}

async fn conversations(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    Ok(Json(
        serde_json::to_value(s.store.conversations(g.id)?).unwrap_or_default(),
    ))
}

async fn conversation(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let items = s.store.group_items(g.id, Some(id))?;
    if items.is_empty() {
        return Err(ApiError::not_found(format!("conversation {id} not found")));
    }
    Ok(Json(serde_json::to_value(items).unwrap_or_default()))
}

fn group_item_bytes(s: &AppState, g: &Group, id: i64) -> ApiResult<Vec<u8>> {
    let item = s
        .store
        .group_items(g.id, None)?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("item {id} not found")))?;
    Ok(s.store.blob(&item.blob)?)
}

async fn group_item_raw(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, id)): Path<(String, i64)>,
) -> ApiResult<Response> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let bytes = group_item_bytes(&s, &g, id)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response())
}

async fn calendar(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    Ok(Json(
        s.store
            .group_calendar(g.id)?
            .into_iter()
            .filter_map(|(_, j)| serde_json::from_str(&j).ok())
            .collect(),
    ))
}

async fn files(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let mut out = Vec::new();
    for item in s.store.group_items(g.id, None)? {
        let bytes = s.store.blob(&item.blob)?;
        for a in hato_transport_files(&bytes) {
            out.push(json!({
                "name": a.name, "size": a.size, "type": a.content_type,
                "conversation": item.conversation_id, "item": item.id, "index": a.index,
                "download": format!("/api/v1/groups/{ident}/files/{}/{}", item.id, a.index),
            }));
        }
    }
    Ok(Json(out))
}

async fn file_download(
    State(s): State<AppState>,
    p: Principal,
    Path((ident, item, index)): Path<(String, i64, usize)>,
) -> ApiResult<Response> {
    let (ix, g) = find_group(&s, &p, &ident)?;
    require_group_reader(&p, &ix, &g)?;
    let bytes = group_item_bytes(&s, &g, item)?;
    let info = hato_transport_files(&bytes)
        .into_iter()
        .find(|a| a.index == index)
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let data = hato_transport::groupmail::attachment_bytes(&bytes, index)
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        info.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, info.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        data,
    )
        .into_response())
}

fn hato_transport_files(bytes: &[u8]) -> Vec<hato_transport::groupmail::AttachmentInfo> {
    hato_transport::groupmail::attachments(bytes)
}

// ----- moderation ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ModerationFilter {
    group: Option<String>,
    state: Option<String>,
}

fn held_json(ix: &DirectoryIndex, h: &hato_store::HeldMessage) -> Value {
    json!({
        "id": h.id, "group": ix.group(h.group_id).and_then(|g| g.address.clone()),
        "trace_id": h.trace_id, "sender": h.sender, "subject": h.subject,
        "received": h.received.to_rfc3339(), "expires": h.expires.to_rfc3339(),
        "state": h.state.as_str(), "decided_by": h.decided_by, "comment": h.comment,
    })
}

/// Whether the caller moderates `group` (its moderators, or owners when none are named) or is a
/// global admin.
fn may_moderate(p: &Principal, g: &Group) -> bool {
    p.is_global_admin()
        || p.mailbox_id
            .is_some_and(|me| policy::moderators(g).contains(&me))
}

async fn moderation_list(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<ModerationFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    let state = f
        .state
        .as_deref()
        .map(|t| {
            ModerationState::parse(t).ok_or_else(|| {
                ApiError::bad_request("state: use pending, approved, rejected or expired")
            })
        })
        .transpose()?;
    let group = f
        .group
        .as_deref()
        .map(|g| find_group(&s, &p, g))
        .transpose()?;
    let tenant = listing_scope(&s, &p, None)?;
    let held = s
        .store
        .moderation_queue(tenant, group.as_ref().map(|(_, g)| g.id), state)?;
    let mut out = Vec::new();
    for h in held {
        let ix = s.directory.index(h.tenant_id)?;
        if let Some(g) = ix.group(h.group_id)
            && may_moderate(&p, g)
        {
            out.push(held_json(&ix, &h));
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Decision {
    #[serde(default)]
    comment: String,
}

async fn moderation_decide(
    State(s): State<AppState>,
    p: Principal,
    Path((id, decision)): Path<(i64, String)>,
    payload: Option<Json<Decision>>,
) -> ApiResult<Json<Value>> {
    let comment = payload.map(|Json(d)| d.comment).unwrap_or_default();
    let tenant = listing_scope(&s, &p, None)?;
    let held = s
        .store
        .moderation_queue(tenant, None, None)?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::not_found(format!("held message {id} not found")))?;
    let ix = s.directory.index(held.tenant_id)?;
    let g = ix
        .group(held.group_id)
        .ok_or_else(|| ApiError::not_found("the group was removed"))?;
    if !may_moderate(&p, g) {
        return Err(ApiError::forbidden(
            "only the group's moderators may decide",
        ));
    }
    let state = match decision.as_str() {
        "approve" => ModerationState::Approved,
        "reject" => ModerationState::Rejected,
        _ => return Err(ApiError::not_found("use approve or reject")),
    };
    let by = p
        .mailbox_id
        .and_then(|m| ix.mailbox(m))
        .map(|m| m.address.clone())
        .unwrap_or_else(|| p.role.as_str().to_string());
    let decided = s
        .store
        .decide_moderation(id, state, by, comment, s.clock.now())
        .await?;
    Ok(Json(held_json(&ix, &decided)))
}

// ----- contacts -----------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactInput {
    address: String,
    name: Option<String>,
    tenant: Option<String>,
    department: Option<String>,
    company: Option<String>,
    office: Option<String>,
    city: Option<String>,
    title: Option<String>,
}

fn contact_json(c: &Contact) -> Value {
    json!({ "address": c.address, "name": c.display_name, "department": c.attributes.department,
            "company": c.attributes.company, "office": c.attributes.office, "city": c.attributes.city, "title": c.attributes.title })
}

async fn create_contact(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<ContactInput>, JsonRejection>,
) -> ApiResult<Response> {
    require_admin(&p)?;
    let input = body(payload)?;
    let tenant = target_tenant(&s, &p, input.tenant.as_deref())?;
    let address = Address::parse(&input.address)
        .map_err(|e| ApiError::bad_request(format!("{}: {e}", input.address)))?;
    if s.store.domain(address.domain())?.is_some() {
        return Err(ApiError::bad_request(
            "a mail contact has an outside address; this domain is an accepted domain",
        ));
    }
    let attributes = MailboxAttributes {
        department: input.department.unwrap_or_default(),
        company: input.company.unwrap_or_default(),
        office: input.office.unwrap_or_default(),
        city: input.city.unwrap_or_default(),
        title: input.title.unwrap_or_default(),
        ..Default::default()
    };
    let c = s
        .store
        .create_contact(NewContact {
            tenant_id: tenant,
            address: address.to_string(),
            display_name: input.name.unwrap_or_else(|| address.to_string()),
            attributes,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(contact_json(&c))).into_response())
}

async fn list_contacts(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let tenant = listing_scope(&s, &p, None)?;
    Ok(Json(
        s.store.contacts(tenant)?.iter().map(contact_json).collect(),
    ))
}

async fn delete_contact(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&p)?;
    let canonical = Address::parse(&address)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let tenant = listing_scope(&s, &p, None)?;
    let c = s
        .store
        .contacts(tenant)?
        .into_iter()
        .find(|c| c.address == canonical)
        .ok_or_else(|| ApiError::not_found(format!("contact {address} not found")))?;
    s.store.remove_contact(c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- mailbox permissions --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionInput {
    /// A mailbox address, or a security / mail-enabled security group (address or name).
    user: String,
    right: String,
}

fn permission_target(
    s: &AppState,
    p: &Principal,
    address: &str,
    input: &PermissionInput,
) -> ApiResult<(Arc<DirectoryIndex>, Permission)> {
    require_admin(p)?;
    let mb = visible_mailbox(s, p, address)?;
    let ix = s.directory.index(mb.tenant_id)?;
    let trustee = resolve_ref(&ix, &input.user)?;
    match trustee {
        MemberRef::Mailbox(_) => {}
        MemberRef::Group(g) if ix.group(g).is_some_and(|g| g.group_type.grants_rights()) => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "{}: rights go to users or security groups",
                input.user
            )));
        }
    }
    let right = MailboxRight::parse(&input.right)
        .ok_or_else(|| ApiError::bad_request("right: use full-access or send-as"))?;
    Ok((
        ix,
        Permission {
            mailbox: mb.id,
            trustee,
            right,
        },
    ))
}

async fn add_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<Response> {
    let input = body(payload)?;
    let (_, perm) = permission_target(&s, &p, &address, &input)?;
    s.store.grant(perm).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "mailbox": address, "user": input.user, "right": input.right })),
    )
        .into_response())
}

async fn remove_permission(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
    payload: Result<Json<PermissionInput>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let input = body(payload)?;
    let (_, perm) = permission_target(&s, &p, &address, &input)?;
    s.store.revoke(perm).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_permissions(
    State(s): State<AppState>,
    p: Principal,
    Path(address): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let mb = visible_mailbox(&s, &p, &address)?;
    let ix = s.directory.index(mb.tenant_id)?;
    Ok(Json(
        ix.dir
            .permissions
            .iter()
            .filter(|perm| perm.mailbox == mb.id)
            .map(|perm| json!({ "user": ix.name_of(perm.trustee), "right": perm.right.as_str() }))
            .collect(),
    ))
}

// ----- users' login ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    address: String,
    password: String,
}

/// How long a user's token lasts.
const USER_TOKEN_SECS: i64 = 12 * 3600;

/// A user logs in with their mailbox address and password (argon2-hashed by the admin who set
/// it) and gets a user token.
async fn login(
    State(s): State<AppState>,
    payload: Result<Json<LoginInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = body(payload)?;
    let refused = || ApiError::unauthorized_with("wrong address or password");
    let a = Address::parse(&input.address).map_err(|_| refused())?;
    let mb = s
        .store
        .mailbox_by_address(&a.to_string())?
        .ok_or_else(refused)?;
    let hash = s.store.password_hash(mb.id)?.ok_or_else(refused)?;
    let password = input.password;
    let ok = tokio::task::spawn_blocking(move || crate::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(refused());
    }
    let token = id::new_token();
    let expires = s.clock.now().plus_seconds(USER_TOKEN_SECS);
    s.store
        .add_token(
            &hash_token(&token),
            TokenInfo {
                role: Role::User,
                tenant_id: Some(mb.tenant_id),
                mailbox_id: Some(mb.id),
                expires: Some(expires),
            },
        )
        .await?;
    Ok(Json(
        json!({ "token": token, "role": "user", "address": mb.address, "expires": Timestamp::to_rfc3339(expires) }),
    ))
}
