//! Groups: the five group types and their settings, and the preview of a dynamic group's filter
//! (their lists — members, owners, subscribers — are `group_members.rs`).
//!
//! Authorization follows seed A1–A4 (see `hato_directory::policy::authorize`); another tenant's
//! objects answer 404 as if they did not exist.

use super::common::{
    GROUP_PARAM, GroupView, Recipient, check_member_kind, denied, find_group, group_answer,
    group_json, ref_json, resolve_mailbox, resolve_ref,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, TenantFilter, body, require_admin, target_tenant};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hato_core::Address;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{
    AccessType, GroupId, GroupSettings, GroupType, MemberRef, Restriction, TenantId,
};
use hato_directory::DirectoryIndex;
use hato_directory::opath::{self, IncludedRecipients, Precanned};
use hato_directory::policy::{self, GroupAction};
use hato_store::{GroupChange, NewGroup};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(preview))
        .routes(routes!(get_group, update_group, delete_group))
}

/// Group fields as the API takes them (create and PATCH). `address`, `type`, `tenant`, `owners`,
/// `members` and `hidden_group_membership_enabled` are for creation only.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupInput {
    /// Required for mail-enabled groups; none for `security`.
    address: Option<String>,
    /// Unique in the tenant (default: the address's local part).
    name: Option<String>,
    /// `distribution`, `security`, `mail-security`, `dynamic` or `m365` (required at creation).
    #[serde(rename = "type")]
    group_type: Option<String>,
    tenant: Option<String>,
    /// Mailboxes (default: the user who creates the group).
    owners: Option<Vec<String>>,
    /// Mailboxes, contacts, groups (by address or name).
    members: Option<Vec<String>>,
    require_sender_authentication: Option<bool>,
    accept_messages_only_from: Option<Vec<String>>,
    reject_messages_from: Option<Vec<String>>,
    moderation_enabled: Option<bool>,
    moderated_by: Option<Vec<String>>,
    bypass_moderation_from: Option<Vec<String>>,
    /// `open`, `closed` or `approval-required`.
    member_join_restriction: Option<String>,
    /// `open`, `closed` or `approval-required`.
    member_depart_restriction: Option<String>,
    /// Exchange's ReportToOriginatorEnabled; `report_to_originator` is its older name here.
    #[serde(alias = "report_to_originator")]
    report_to_originator_enabled: Option<bool>,
    report_to_manager_enabled: Option<bool>,
    /// Microsoft 365 groups, at creation only.
    hidden_group_membership_enabled: Option<bool>,
    /// A dynamic group's OPATH filter (or `precanned`).
    recipient_filter: Option<String>,
    precanned: Option<PrecannedInput>,
    /// `public` or `private` (Microsoft 365 groups).
    access_type: Option<String>,
    auto_subscribe_new_members: Option<bool>,
    /// A global admin changes a group it does not manage (Exchange's
    /// BypassSecurityGroupManagerCheck).
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

/// Exchange's precanned dynamic-group form.
#[derive(Deserialize, Default, Clone, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrecannedInput {
    /// `MailboxUsers`, `MailContacts`, `MailGroups`, `MailUsers`, `Resources` or `AllRecipients`.
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
        if let Some(v) = self.report_to_originator_enabled {
            st.report_to_originator = v;
        }
        if let Some(v) = self.report_to_manager_enabled {
            st.report_to_manager = v;
        }
        // Exchange: enabling moderation of a mail-enabled security group needs at least one
        // named moderator (its owners do not stand in, as they do for distribution groups).
        if kind == GroupType::MailSecurity && st.moderation_enabled && st.moderated_by.is_empty() {
            return Err(ApiError::bad_request(
                "moderation of a mail-enabled security group needs a named moderator: give moderated_by",
            ));
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
            let f = hato_directory::index::parse_recipient_filter(text).map_err(filter_error)?;
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

/// Create a group (users may create distribution and Microsoft 365 groups, admins any).
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    request_body = GroupInput,
    responses(
        (status = 201, description = "The new group", body = GroupView),
        (status = 400, description = "A missing or bad field, a member the type cannot have, no owner, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A user creating another type of group", body = ErrorBody),
        (status = 404, description = "No such tenant, or the domain is not the tenant's", body = ErrorBody),
        (status = 409, description = "The name or the address is taken", body = ErrorBody),
    )
)]
pub(crate) async fn create_group(
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
    let new = s.blocking(move |s| new_group(s, &p, kind, input)).await?;
    let g = s.store.create_group(new).await?;
    Ok((StatusCode::CREATED, group_answer(&s, p, g).await?).into_response())
}

/// The group `input` asks for, checked against its tenant's directory.
fn new_group(
    s: &AppState,
    p: &Principal,
    kind: GroupType,
    input: GroupInput,
) -> ApiResult<NewGroup> {
    let tenant = target_tenant(s, p, input.tenant.as_deref())?;
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
    if let Some(hidden) = input.hidden_group_membership_enabled {
        if hidden && kind != GroupType::M365 {
            return Err(ApiError::bad_request(
                "hidden_group_membership_enabled is for Microsoft 365 groups",
            ));
        }
        settings.hidden_group_membership_enabled = hidden;
    }
    if kind == GroupType::Dynamic && settings.recipient_filter.is_none() {
        return Err(ApiError::bad_request(
            "a dynamic group needs recipient_filter or precanned",
        ));
    }
    Ok(NewGroup {
        tenant_id: tenant,
        name,
        address,
        group_type: kind,
        settings,
        owners,
        members,
    })
}

/// The groups of the caller's tenant (all for the operator), or of `tenant`.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    params(TenantFilter),
    responses(
        (status = 200, description = "The groups", body = [GroupView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn list_groups(
    State(s): State<AppState>,
    p: Principal,
    Query(f): Query<TenantFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    s.blocking(move |s| {
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
                out.push(group_json(&ix, g, &p));
            }
        }
        Ok(Json(out))
    })
    .await
}

/// One group.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 400, description = "Several tenants have a group of this name (the operator): use its address", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn get_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    s.blocking(move |s| {
        let (ix, g) = find_group(s, &p, &ident)?;
        Ok(Json(group_json(&ix, &g, &p)))
    })
    .await
}

/// Change a group's settings or name (its managers; see the authorization rules).
#[utoipa::path(
    patch,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM)),
    request_body = GroupInput,
    responses(
        (status = 200, description = "The changed group", body = GroupView),
        (status = 400, description = "A field that cannot change, a bad setting, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
    )
)]
pub(crate) async fn update_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (id, change) = s
        .blocking(move |s| group_update(s, &p, &ident, payload))
        .await?;
    let updated = s.store.update_group(id, change).await?;
    group_answer(&s, p, updated).await
}

/// The change `payload` asks of the group `ident`, checked against its tenant's directory.
fn group_update(
    s: &AppState,
    p: &Principal,
    ident: &str,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<(GroupId, GroupChange)> {
    let (ix, g) = find_group(s, p, ident)?;
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
    if input.hidden_group_membership_enabled.is_some() {
        // Exchange: HiddenGroupMembershipEnabled cannot be changed after creation.
        return Err(ApiError::bad_request(
            "hidden_group_membership_enabled is set when the group is created and cannot be changed",
        ));
    }
    policy::authorize(
        p,
        &ix,
        &g,
        GroupAction::ChangeSettings,
        input.bypass_security_group_manager_check,
    )
    .map_err(denied)?;
    let mut settings = g.settings.clone();
    input.apply(&ix, g.group_type, &mut settings)?;
    let name = input
        .name
        .clone()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    // Groups are found by name, so two groups of a tenant never share one (the store checks
    // again in the write, so two concurrent renames cannot both win).
    if let Some(n) = &name
        && ix
            .dir
            .groups
            .iter()
            .any(|o| o.id != g.id && o.name.eq_ignore_ascii_case(n))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a group named {n} already exists"),
        ));
    }
    let change = GroupChange {
        name,
        settings: Some(settings),
        ..Default::default()
    };
    Ok((g.id, change))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BypassParam {
    /// A global admin removes a group it does not manage.
    #[serde(default)]
    bypass_security_group_manager_check: bool,
}

/// Remove a group (its managers).
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = GROUP_PARAM), BypassParam),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a manager of the group", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn delete_group(
    State(s): State<AppState>,
    p: Principal,
    Path(ident): Path<String>,
    Query(q): Query<BypassParam>,
) -> ApiResult<StatusCode> {
    let id = s
        .blocking(move |s| {
            let (ix, g) = find_group(s, &p, &ident)?;
            policy::authorize(
                &p,
                &ix,
                &g,
                GroupAction::Delete,
                q.bypass_security_group_manager_check,
            )
            .map_err(denied)?;
            Ok(g.id)
        })
        .await?;
    s.store.remove_group(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A filter to try: `filter` or `precanned`, not both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewInput {
    tenant: Option<String>,
    /// OPATH.
    filter: Option<String>,
    precanned: Option<PrecannedInput>,
}

/// The members any filter has now (the preview of a dynamic group; admins).
#[utoipa::path(
    post,
    path = "/api/v1/groups/preview",
    tag = "groups",
    request_body = PreviewInput,
    responses(
        (status = 200, description = "The recipients the filter matches now", body = [Recipient]),
        (status = 400, description = "A bad filter, neither or both forms, no tenant named, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    )
)]
pub(crate) async fn preview(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<PreviewInput>, JsonRejection>,
) -> ApiResult<Json<Vec<Value>>> {
    require_admin(&p)?;
    let input = body(payload)?;
    s.blocking(move |s| {
        let tenant = target_tenant(s, &p, input.tenant.as_deref())?;
        let filter = match (&input.filter, &input.precanned) {
            (Some(text), None) => {
                hato_directory::index::parse_recipient_filter(text).map_err(filter_error)?
            }
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
    })
    .await
}
