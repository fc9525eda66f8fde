//! A tenant's directory, indexed for the questions routing and authorization ask: who answers
//! to an address, who is in a group (static, nested or dynamic), what a user may do.
//!
//! Built from a [`TenantDirectory`] snapshot; rebuilt when the store's directory version moves,
//! so every answer reflects the directory as it is now (a dynamic group's members are whoever
//! matches its filter at the moment mail is sent to it).

use crate::opath::{self, Filter, FilterSubject, Property};
use hato_core::auth::Role;
use hato_core::directory::{
    Contact, ContactId, Group, GroupId, GroupType, Mailbox, MailboxId, MailboxRight, MailboxType,
    MemberRef, TenantDirectory,
};
use std::collections::{HashMap, HashSet};

/// What an address of the tenant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressee {
    Mailbox(MailboxId),
    Group(GroupId),
}

pub struct DirectoryIndex {
    pub dir: TenantDirectory,
    by_address: HashMap<String, Addressee>,
    contact_by_address: HashMap<String, ContactId>,
    mailbox_pos: HashMap<MailboxId, usize>,
    group_pos: HashMap<GroupId, usize>,
    contact_pos: HashMap<ContactId, usize>,
    /// Parsed recipient filters of dynamic groups (a filter that no longer parses matches nobody).
    filters: HashMap<GroupId, Filter>,
    /// Dynamic groups' members, evaluated on first use. The index is rebuilt whenever the
    /// directory changes, so a remembered result is always what evaluating now would give.
    dynamic_cache: std::sync::Mutex<HashMap<GroupId, Vec<MemberRef>>>,
}

/// The filter properties [`Subject`] fills in for some recipient (every other [`Property`] is
/// `None` for every mailbox, contact and group, so a filter on it would match nobody).
pub const FILLED_PROPERTIES: [Property; 27] = [
    Property::Department,
    Property::Company,
    Property::Office,
    Property::City,
    Property::StateOrProvince,
    Property::CountryOrRegion,
    Property::Title,
    Property::CustomAttribute(1),
    Property::CustomAttribute(2),
    Property::CustomAttribute(3),
    Property::CustomAttribute(4),
    Property::CustomAttribute(5),
    Property::CustomAttribute(6),
    Property::CustomAttribute(7),
    Property::CustomAttribute(8),
    Property::CustomAttribute(9),
    Property::CustomAttribute(10),
    Property::CustomAttribute(11),
    Property::CustomAttribute(12),
    Property::CustomAttribute(13),
    Property::CustomAttribute(14),
    Property::CustomAttribute(15),
    Property::DisplayName,
    Property::Alias,
    Property::PrimarySmtpAddress,
    Property::RecipientType,
    Property::RecipientTypeDetails,
];

/// Parses a recipient filter for hato's directory: only [`FILLED_PROPERTIES`] are accepted.
pub fn parse_recipient_filter(text: &str) -> Result<Filter, opath::FilterError> {
    opath::parse_supported(text, &FILLED_PROPERTIES)
}

/// A mailbox, contact or group seen through the properties recipient filters read.
pub enum Subject<'a> {
    Mailbox(&'a Mailbox),
    Contact(&'a Contact),
    Group(&'a Group),
}

fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map(|(l, _)| l).unwrap_or(address)
}

impl FilterSubject for Subject<'_> {
    fn property(&self, p: Property) -> Option<&str> {
        let attrs = match self {
            Subject::Mailbox(m) => Some(&m.attributes),
            Subject::Contact(c) => Some(&c.attributes),
            Subject::Group(_) => None,
        };
        let text: &str = match p {
            Property::Department => &attrs?.department,
            Property::Company => &attrs?.company,
            Property::Office => &attrs?.office,
            Property::City => &attrs?.city,
            Property::StateOrProvince => &attrs?.state_or_province,
            Property::CountryOrRegion => &attrs?.country_or_region,
            Property::Title => &attrs?.title,
            Property::CustomAttribute(n) => attrs?
                .custom_attributes
                .get(usize::from(n).checked_sub(1)?)?,
            Property::DisplayName => match self {
                Subject::Mailbox(m) => &m.display_name,
                Subject::Contact(c) => &c.display_name,
                Subject::Group(g) => &g.name,
            },
            Property::Alias => match self {
                Subject::Mailbox(m) => local_part(&m.address),
                Subject::Contact(c) => local_part(&c.address),
                Subject::Group(g) => local_part(g.address.as_deref()?),
            },
            Property::PrimarySmtpAddress => match self {
                Subject::Mailbox(m) => &m.address,
                Subject::Contact(c) => &c.address,
                Subject::Group(g) => g.address.as_deref()?,
            },
            Property::RecipientType => match self {
                Subject::Mailbox(_) => "UserMailbox",
                Subject::Contact(_) => "MailContact",
                Subject::Group(g) => g.group_type.recipient_type(),
            },
            Property::RecipientTypeDetails => match self {
                Subject::Mailbox(m) => match m.mailbox_type {
                    MailboxType::User => "UserMailbox",
                    MailboxType::Shared => "SharedMailbox",
                },
                Subject::Contact(_) => "MailContact",
                Subject::Group(g) => g.group_type.recipient_type_details(),
            },
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        if text.is_empty() { None } else { Some(text) }
    }
}

impl DirectoryIndex {
    pub fn new(dir: TenantDirectory) -> Self {
        let mut by_address = HashMap::new();
        let mut mailbox_pos = HashMap::new();
        for (i, m) in dir.mailboxes.iter().enumerate() {
            mailbox_pos.insert(m.id, i);
            by_address.insert(m.address.clone(), Addressee::Mailbox(m.id));
            for a in &m.aliases {
                by_address.insert(a.clone(), Addressee::Mailbox(m.id));
            }
        }
        let mut group_pos = HashMap::new();
        let mut filters = HashMap::new();
        for (i, g) in dir.groups.iter().enumerate() {
            group_pos.insert(g.id, i);
            if let Some(a) = &g.address {
                by_address.insert(a.clone(), Addressee::Group(g.id));
            }
            if g.group_type == GroupType::Dynamic
                && let Some(text) = &g.settings.recipient_filter
                && let Ok(f) = opath::parse(text)
            {
                filters.insert(g.id, f);
            }
        }
        let mut contact_pos = HashMap::new();
        let mut contact_by_address = HashMap::new();
        for (i, c) in dir.contacts.iter().enumerate() {
            contact_pos.insert(c.id, i);
            contact_by_address.insert(c.address.clone(), c.id);
        }
        DirectoryIndex {
            dir,
            by_address,
            contact_by_address,
            mailbox_pos,
            group_pos,
            contact_pos,
            filters,
            dynamic_cache: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn version(&self) -> i64 {
        self.dir.version
    }

    /// The tenant's name.
    pub fn tenant_name(&self) -> &str {
        &self.dir.tenant_name
    }

    pub fn mailbox(&self, id: MailboxId) -> Option<&Mailbox> {
        self.mailbox_pos.get(&id).map(|&i| &self.dir.mailboxes[i])
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.group_pos.get(&id).map(|&i| &self.dir.groups[i])
    }

    pub fn contact(&self, id: ContactId) -> Option<&Contact> {
        self.contact_pos.get(&id).map(|&i| &self.dir.contacts[i])
    }

    /// Who answers to `address` (canonical form) in this tenant.
    pub fn lookup(&self, address: &str) -> Option<Addressee> {
        self.by_address.get(address).copied()
    }

    /// The directory object a sender address is: a mailbox (by any of its addresses) or a
    /// mail contact.
    pub fn sender(&self, address: &str) -> Option<MemberRef> {
        match self.by_address.get(address) {
            Some(Addressee::Mailbox(id)) => Some(MemberRef::Mailbox(*id)),
            Some(Addressee::Group(id)) => Some(MemberRef::Group(*id)),
            None => self
                .contact_by_address
                .get(address)
                .map(|id| MemberRef::Contact(*id)),
        }
    }

    /// The address mail for a member goes to.
    pub fn address_of(&self, m: MemberRef) -> Option<&str> {
        match m {
            MemberRef::Mailbox(id) => self.mailbox(id).map(|m| m.address.as_str()),
            MemberRef::Contact(id) => self.contact(id).map(|c| c.address.as_str()),
            MemberRef::Group(id) => self.group(id).and_then(|g| g.address.as_deref()),
        }
    }

    pub fn name_of(&self, m: MemberRef) -> String {
        match m {
            MemberRef::Mailbox(id) => self.mailbox(id).map(|m| m.address.clone()),
            MemberRef::Contact(id) => self.contact(id).map(|c| c.address.clone()),
            MemberRef::Group(id) => self
                .group(id)
                .map(|g| g.address.clone().unwrap_or_else(|| g.name.clone())),
        }
        .unwrap_or_else(|| "(removed)".into())
    }

    /// The members of a dynamic group now: every recipient its filter matches (mailboxes,
    /// contacts and mail-enabled groups other than itself).
    pub fn dynamic_members(&self, group: GroupId) -> Vec<MemberRef> {
        if let Ok(cache) = self.dynamic_cache.lock()
            && let Some(members) = cache.get(&group)
        {
            return members.clone();
        }
        let members = self.evaluate_dynamic(group);
        if let Ok(mut cache) = self.dynamic_cache.lock() {
            cache.insert(group, members.clone());
        }
        members
    }

    /// Evaluates a dynamic group's filter over the directory, without the cache.
    pub fn evaluate_dynamic(&self, group: GroupId) -> Vec<MemberRef> {
        let Some(filter) = self.filters.get(&group) else {
            return Vec::new();
        };
        self.evaluate(filter, Some(group))
    }

    /// Everything in the tenant a filter matches (a preview of a dynamic group).
    pub fn evaluate(&self, filter: &Filter, except: Option<GroupId>) -> Vec<MemberRef> {
        let mut out = Vec::new();
        for m in &self.dir.mailboxes {
            if filter.matches(&Subject::Mailbox(m)) {
                out.push(MemberRef::Mailbox(m.id));
            }
        }
        for c in &self.dir.contacts {
            if filter.matches(&Subject::Contact(c)) {
                out.push(MemberRef::Contact(c.id));
            }
        }
        for g in &self.dir.groups {
            if Some(g.id) != except
                && g.group_type.is_mail_enabled()
                && filter.matches(&Subject::Group(g))
            {
                out.push(MemberRef::Group(g.id));
            }
        }
        out
    }

    /// A group's direct members: its member list, or its filter's matches for a dynamic group.
    pub fn direct_members(&self, group: GroupId) -> Vec<MemberRef> {
        match self.group(group) {
            Some(g) if g.group_type == GroupType::Dynamic => self.dynamic_members(group),
            Some(g) => g.members.clone(),
            None => Vec::new(),
        }
    }

    /// Whether `who` is a member of `group`, directly or through nested groups (loops are
    /// followed once).
    pub fn is_member(&self, who: MemberRef, group: GroupId) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            for m in self.direct_members(g) {
                if m == who {
                    return true;
                }
                if let MemberRef::Group(inner) = m {
                    stack.push(inner);
                }
            }
        }
        false
    }

    /// Whether `who` is `target` or, when `target` is a group, one of its members (transitively).
    pub fn matches_ref(&self, who: MemberRef, target: MemberRef) -> bool {
        who == target || matches!(target, MemberRef::Group(g) if self.is_member(who, g))
    }

    pub fn is_owner(&self, mailbox: MailboxId, group: GroupId) -> bool {
        self.group(group)
            .is_some_and(|g| g.owners.contains(&mailbox))
    }

    /// Whether `who` belongs to `group` as far as rights and admin roles go: only security-type
    /// groups (security, mail-enabled security) carry them, so nesting is followed only through
    /// those. Exchange: permissions granted to a mail-enabled security group apply only to
    /// members that are security principals; a distribution list inside it gets nothing
    /// (`Add-DistributionGroupMember`).
    pub fn is_security_member(&self, who: MemberRef, group: GroupId) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            let Some(grp) = self.group(g) else { continue };
            if !grp.group_type.grants_rights() {
                continue;
            }
            for m in &grp.members {
                if *m == who {
                    return true;
                }
                if let MemberRef::Group(inner) = m {
                    stack.push(*inner);
                }
            }
        }
        false
    }

    /// The strongest admin role a mailbox holds through role groups (security groups that were
    /// given a role), if any; membership counts only through security-type groups.
    pub fn role_of(&self, mailbox: MailboxId) -> Option<Role> {
        let mut best: Option<Role> = None;
        for (group, role) in &self.dir.role_groups {
            if self.is_security_member(MemberRef::Mailbox(mailbox), *group) {
                best = match (best, role) {
                    (_, Role::TenantAdmin) => Some(Role::TenantAdmin),
                    (Some(Role::TenantAdmin), _) => best,
                    (_, r) => Some(*r),
                };
            }
        }
        best
    }

    /// The tenant's global admins that have a mailbox: members (through security-type groups)
    /// of a role group with the global admin role, Exchange's TenantAdmins, whom its default
    /// alert policies notify (`exchange-online-behaviour.md` §7.1). Walks every mailbox: for
    /// rare notices, not per message.
    pub fn admins(&self) -> Vec<&Mailbox> {
        if !self
            .dir
            .role_groups
            .iter()
            .any(|(_, r)| *r == Role::TenantAdmin)
        {
            return Vec::new();
        }
        self.dir
            .mailboxes
            .iter()
            .filter(|m| self.role_of(m.id) == Some(Role::TenantAdmin))
            .collect()
    }

    /// Whether `user` holds `right` on `mailbox`, directly or through security-type groups.
    pub fn has_right(&self, user: MailboxId, mailbox: MailboxId, right: MailboxRight) -> bool {
        let who = MemberRef::Mailbox(user);
        self.dir.permissions.iter().any(|p| {
            p.mailbox == mailbox
                && p.right == right
                && match p.trustee {
                    MemberRef::Group(g) => self.is_security_member(who, g),
                    t => t == who,
                }
        })
    }

    /// `roots` and every group nested in one of them, at any depth (static membership; a
    /// dynamic group has no nested groups of its own).
    fn closure(&self, roots: impl IntoIterator<Item = GroupId>) -> HashSet<GroupId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<GroupId> = roots.into_iter().collect();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(grp) = self.group(g) {
                for m in &grp.members {
                    if let MemberRef::Group(inner) = m {
                        stack.push(*inner);
                    }
                }
            }
        }
        seen
    }

    /// Role groups and every group nested in one, at any depth: changing their members or
    /// owners changes who holds an admin role.
    pub fn role_protected_groups(&self) -> HashSet<GroupId> {
        self.closure(self.dir.role_groups.iter().map(|(g, _)| *g))
    }

    /// Groups through which rights or roles flow: role groups, trustees of mailbox permissions,
    /// and every group nested in one of them.
    pub fn rights_bearing_groups(&self) -> HashSet<GroupId> {
        let trustees = self.dir.permissions.iter().filter_map(|p| match p.trustee {
            MemberRef::Group(g) => Some(g),
            _ => None,
        });
        self.closure(self.dir.role_groups.iter().map(|(g, _)| *g).chain(trustees))
    }

    /// `group` and the groups nested in it (at any depth) that are not security-type, and so
    /// cannot carry rights or roles: distribution lists, dynamic and Microsoft 365 groups.
    pub fn non_security_within(&self, group: GroupId) -> Vec<GroupId> {
        let mut out: Vec<GroupId> = self
            .closure([group])
            .into_iter()
            .filter(|g| {
                self.group(*g)
                    .is_some_and(|g| !g.group_type.grants_rights())
            })
            .collect();
        out.sort_unstable();
        out
    }
}
