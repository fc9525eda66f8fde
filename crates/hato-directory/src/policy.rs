//! Group policies evaluated against the directory: who may send to a group (Exchange's
//! RequireSenderAuthenticationEnabled, AcceptMessagesOnlyFrom(SendersOrMembers),
//! RejectMessagesFrom(SendersOrMembers)), moderation, one level of expansion, and who may change
//! a group (owners, admins, the security-group manager check and its bypass).

use crate::index::DirectoryIndex;
use hato_core::auth::{Principal, Role};
use hato_core::directory::{Group, GroupType, MailboxId, MemberRef, Route};
use hato_core::reason::{Reason, Refusal, Stage};
use hato_core::reply;

/// Who is sending, as far as a group's restrictions care.
///
/// The envelope address is whatever the client typed in `MAIL FROM`; anyone can type an
/// owner's address over anonymous direct send. So a sender's directory identity comes only
/// from authentication (SMTP AUTH, an attributed connector, a DMARC-aligned pass of the From
/// domain), never from the envelope: restrictions and moderation bypass look at `identity` and
/// `domain_authenticated` alone. An unauthenticated sender is an outside sender.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sender<'a> {
    /// Envelope sender, canonical; `None` for the null reverse-path.
    pub address: Option<&'a str>,
    /// The mailbox the sender authenticated as; `None` for direct send. A mailbox of another
    /// tenant is an outside sender to this tenant's groups.
    pub identity: Option<MailboxId>,
    /// The RFC 5322.From address, canonical, when its domain passed DMARC aligned (RFC 7489
    /// §3.1: SPF or DKIM authenticated that very domain): the domain vouches for the address,
    /// so it names the mailbox or mail contact with that address in the group's tenant.
    pub domain_authenticated: Option<&'a str>,
}

impl Sender<'_> {
    /// The sender's directory object in `ix`'s tenant, from authentication only: the
    /// authenticated mailbox, else the mailbox or contact a DMARC-authenticated From names (a
    /// group address never sends).
    fn who(&self, ix: &DirectoryIndex) -> Option<MemberRef> {
        self.identity
            .filter(|m| ix.mailbox(*m).is_some())
            .map(MemberRef::Mailbox)
            .or_else(|| {
                self.domain_authenticated
                    .and_then(|a| ix.sender(a))
                    .filter(|w| !matches!(w, MemberRef::Group(_)))
            })
    }
}

/// Checks a group's sender restrictions. The refusal names the group, so that an NDR for a
/// nested group says which one refused; its reason names the setting that refused.
pub fn check_sender(ix: &DirectoryIndex, group: &Group, sender: Sender<'_>) -> Result<(), Refusal> {
    let name = group.address.clone().unwrap_or_else(|| group.name.clone());
    let who = sender.who(ix);
    let refusal = |reply, setting: &str, text: &str| {
        Refusal::new(
            reply,
            Reason::new(Stage::GroupRestriction, format!("The group {name} {text}"))
                .rule(format!("{name}: {setting}")),
        )
    };
    // Only an authenticated mailbox of the tenant is inside; mail contacts are always outside
    // senders, whatever their address and however well their domain authenticates (Exchange,
    // "Manage distribution groups").
    if group.settings.require_sender_authentication && !matches!(who, Some(MemberRef::Mailbox(_))) {
        return Err(refusal(
            reply::group_sender_not_authenticated(&name),
            "RequireSenderAuthenticationEnabled",
            "accepts mail only from authenticated senders of its organization, and the sender did not authenticate",
        ));
    }
    // A reject list may also match the envelope address: trusting a forged address here can
    // only refuse more mail, never let more through.
    let claimed = sender.address.and_then(|a| ix.sender(a));
    if [who, claimed].into_iter().flatten().any(|w| {
        group
            .settings
            .reject_messages_from
            .iter()
            .any(|r| ix.matches_ref(w, *r))
    }) {
        return Err(refusal(
            reply::group_sender_rejected(&name),
            "RejectMessagesFromSendersOrMembers",
            "rejects mail from this sender",
        ));
    }
    let allowed = &group.settings.accept_messages_only_from;
    if !allowed.is_empty() && !who.is_some_and(|w| allowed.iter().any(|a| ix.matches_ref(w, *a))) {
        return Err(refusal(
            reply::group_sender_not_allowed(&name),
            "AcceptMessagesOnlyFromSendersOrMembers",
            "accepts mail only from its allowed senders, and the sender is not one of them",
        ));
    }
    Ok(())
}

/// The group's moderators: `moderated_by`, or its owners when that is empty.
pub fn moderators(group: &Group) -> Vec<MailboxId> {
    if group.settings.moderated_by.is_empty() {
        group.owners.clone()
    } else {
        group.settings.moderated_by.clone()
    }
}

/// Whether mail from `sender` to `group` waits for a moderator. Owners', moderators' and
/// bypass-list senders' mail goes straight through.
pub fn needs_moderation(ix: &DirectoryIndex, group: &Group, sender: Sender<'_>) -> bool {
    if !group.settings.moderation_enabled {
        return false;
    }
    // An unauthenticated sender is never an owner, moderator or bypass sender, whatever
    // `MAIL FROM` says.
    let Some(who) = sender.who(ix) else {
        return true;
    };
    if let MemberRef::Mailbox(m) = who
        && (group.owners.contains(&m) || moderators(group).contains(&m))
    {
        return false;
    }
    !group
        .settings
        .bypass_moderation_from
        .iter()
        .any(|b| ix.matches_ref(who, *b))
}

/// One recipient produced by expanding a group one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecipient {
    pub member: MemberRef,
    pub address: String,
    pub route: Route,
}

/// A group's members as recipients, one level deep: mailboxes (local delivery), mail contacts
/// (their external address) and nested mail-enabled groups (routed, and so expanded or
/// refused, in their turn). Nesting and loops are handled by routing each group address at
/// most once per message.
pub fn expansion(ix: &DirectoryIndex, group: &Group) -> Vec<MemberRecipient> {
    let mut out = Vec::new();
    for m in ix.direct_members(group.id) {
        let (route, address) = match m {
            MemberRef::Mailbox(id) => match ix.mailbox(id) {
                Some(mb) => (Route::Local(id), mb.address.clone()),
                None => continue,
            },
            MemberRef::Contact(id) => match ix.contact(id) {
                Some(c) => (Route::Remote, c.address.clone()),
                None => continue,
            },
            MemberRef::Group(id) => match ix.group(id).and_then(|g| g.address.clone()) {
                Some(a) => (Route::Group(id), a),
                None => continue,
            },
        };
        out.push(MemberRecipient {
            member: m,
            address,
            route,
        });
    }
    out
}

/// What a caller wants to do to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAction {
    ChangeMembers,
    ChangeOwners,
    ChangeSettings,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Exchange's refusal for a non-owner changing a mail-enabled security group.
    NotManager,
    Forbidden(String),
}

pub const NOT_MANAGER: &str = "This operation can only be performed by a manager of the group.";

/// The caller's effective role: a user who belongs to a role group acts with that role.
pub fn effective_role(p: &Principal, ix: &DirectoryIndex) -> Role {
    match (p.role, p.mailbox_id) {
        (Role::User, Some(m)) => ix.role_of(m).unwrap_or(Role::User),
        (r, _) => r,
    }
}

/// The refusal for anyone but a global admin changing who is in (or owns) a role group or a
/// group nested in one.
pub fn role_group_refusal(group: &Group) -> String {
    format!(
        "only global admins may change the members or owners of {}: it holds an admin role or is nested in a group that does",
        group.address.as_deref().unwrap_or(&group.name)
    )
}

/// Seed A1–A4 and Exchange's ManagedBy rules:
/// - who is in (or owns) a role group, or a group nested in one at any depth, decides who is
///   an admin: only global admins (and the operator) change that, never recipient admins or
///   owners without the global admin role (Exchange: role groups are managed by Organization
///   Management or the Role Management role);
/// - owners may change their group;
/// - a security, dynamic or Microsoft 365 group may also be changed by the tenant's admins;
/// - a distribution group's members and settings may be changed by the tenant's admins, but
///   changing its owners or deleting it needs ownership or the bypass switch (seed A4: even a
///   global admin cannot change owners or delete the group unless an owner, except through
///   `-BypassSecurityGroupManagerCheck`);
/// - a mail-enabled security group only by its owners; a global admin who is not an owner is
///   refused ("This operation can only be performed by a manager of the group.") unless the
///   request carries the bypass switch, which only global admins may use.
pub fn authorize(
    p: &Principal,
    ix: &DirectoryIndex,
    group: &Group,
    action: GroupAction,
    bypass: bool,
) -> Result<(), Denied> {
    let role = effective_role(p, ix);
    let global = matches!(role, Role::Operator | Role::TenantAdmin);
    if bypass && !global {
        return Err(Denied::Forbidden(
            "only global admins may use bypass_security_group_manager_check".into(),
        ));
    }
    if matches!(
        action,
        GroupAction::ChangeMembers | GroupAction::ChangeOwners
    ) && !global
        && ix.role_protected_groups().contains(&group.id)
    {
        return Err(Denied::Forbidden(role_group_refusal(group)));
    }
    if p.mailbox_id.is_some_and(|m| group.owners.contains(&m)) {
        return Ok(());
    }
    let admin = matches!(
        role,
        Role::Operator | Role::TenantAdmin | Role::RecipientAdmin
    );
    let managers_only = match group.group_type {
        GroupType::MailSecurity => true,
        GroupType::Distribution => {
            matches!(action, GroupAction::ChangeOwners | GroupAction::Delete)
        }
        GroupType::Security | GroupType::Dynamic | GroupType::M365 => false,
    };
    match (managers_only, admin) {
        (true, true) if bypass => Ok(()),
        (true, _) => Err(Denied::NotManager),
        (false, true) => Ok(()),
        (false, false) => Err(Denied::NotManager),
    }
}
