//! Directory objects of a tenant: accepted domains and mailboxes.

use crate::auth::Role;
pub use crate::id::{ContactId, GroupId, MailboxId, TenantId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
}

/// How an accepted domain treats recipients that are not in the directory
/// (Exchange's `DomainType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DomainType {
    /// Every recipient must exist; unknown ones are refused at RCPT (`550 5.4.1`).
    #[default]
    Authoritative,
    /// Unknown recipients are relayed through an outbound connector to the organisation's
    /// own server.
    InternalRelay,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Authoritative => "authoritative",
            DomainType::InternalRelay => "internal-relay",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "authoritative" => Some(DomainType::Authoritative),
            "internal-relay" | "internalrelay" => Some(DomainType::InternalRelay),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedDomain {
    pub domain: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub domain_type: DomainType,
    pub status: DomainStatus,
    /// The DNS TXT record at the domain that proves the tenant controls it:
    /// `hato-verification=<token>`, the token random per domain and claim.
    pub verification_record: String,
}

/// Whether mail for an accepted domain is taken. A domain a tenant admin adds is `Pending`
/// until its verification record is seen in the DNS (as Microsoft 365 verifies a domain with a
/// TXT record before Exchange Online accepts mail for it); until then mail for it is refused as
/// for a domain no tenant accepts. A domain the operator adds is `Verified` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DomainStatus {
    Pending,
    #[default]
    Verified,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Pending => "pending",
            DomainStatus::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DomainStatus::Pending),
            "verified" => Some(DomainStatus::Verified),
            _ => None,
        }
    }
}

/// What a verification record starts with; the domain's token follows.
pub const VERIFICATION_PREFIX: &str = "hato-verification=";

/// One accepted domain as the recipient decision and the API's checks read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEntry {
    pub tenant: TenantId,
    pub domain_type: DomainType,
    pub status: DomainStatus,
    /// `hato-verification=<token>`.
    pub verification_record: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxType {
    #[default]
    User,
    Shared,
}

impl MailboxType {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxType::User => "user",
            MailboxType::Shared => "shared",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Some(MailboxType::User),
            "shared" => Some(MailboxType::Shared),
            _ => None,
        }
    }
}

/// The attributes recipient filters and transport rules read (Exchange's names in the comments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MailboxAttributes {
    /// Department
    pub department: String,
    /// Company
    pub company: String,
    /// Office (physicalDeliveryOfficeName)
    pub office: String,
    /// City
    pub city: String,
    /// StateOrProvince
    pub state_or_province: String,
    /// CountryOrRegion
    pub country_or_region: String,
    /// Title
    pub title: String,
    /// CustomAttribute1..15
    pub custom_attributes: [String; 15],
}

/// Default mailbox quota: Exchange Online's 50 GB ProhibitSendReceiveQuota.
pub const DEFAULT_QUOTA_MB: u64 = 51_200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub tenant_id: TenantId,
    pub tenant: String,
    /// Primary SMTP address, canonical form.
    pub address: String,
    pub display_name: String,
    pub mailbox_type: MailboxType,
    /// Proxy addresses besides the primary one, canonical form.
    pub aliases: Vec<String>,
    pub attributes: MailboxAttributes,
    pub quota_bytes: u64,
    pub used_bytes: u64,
}

/// Where a recipient's copy goes, decided at RCPT time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A mailbox of this node.
    Local(MailboxId),
    /// An unknown recipient of an internal-relay domain: to the organisation's own server.
    Relay,
    /// Outside every tenant (NDRs to outside senders, mail contacts): outbound delivery.
    Remote,
    /// A group of this node: expanded (or filed in its group mailbox) at routing.
    Group(GroupId),
    /// `<postmaster>`, or `postmaster@`/`abuse@` of an accepted domain (reserved for it)
    /// (RFC 5321 §4.5.1, RFC 2142): the platform's postmaster mailbox (`smtp.postmaster`),
    /// resolved at delivery, so mail waits in the queue until one is configured.
    Postmaster,
}

impl Route {
    pub fn kind(self) -> &'static str {
        match self {
            Route::Local(_) => "local",
            Route::Relay => "relay",
            Route::Remote => "remote",
            Route::Group(_) => "group",
            Route::Postmaster => "postmaster",
        }
    }
}

// ----- groups and contacts ------------------------------------------------------------------------

/// The five kinds of group (seed A1–A3, A5, A6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupType {
    /// A mailing list: mail-enabled, grants no rights.
    Distribution,
    /// Grants rights; not mail-enabled (it has no address).
    Security,
    /// Mail-enabled security group: both.
    MailSecurity,
    /// Dynamic distribution group: members are whoever matches its recipient filter at send time.
    Dynamic,
    /// Microsoft 365-style group: a group mailbox with conversations, calendar and files. Its
    /// owners are members too.
    M365,
}

impl GroupType {
    pub const ALL: [GroupType; 5] = [
        GroupType::Distribution,
        GroupType::Security,
        GroupType::MailSecurity,
        GroupType::Dynamic,
        GroupType::M365,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Distribution => "distribution",
            GroupType::Security => "security",
            GroupType::MailSecurity => "mail-security",
            GroupType::Dynamic => "dynamic",
            GroupType::M365 => "m365",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_mail_enabled(self) -> bool {
        self != GroupType::Security
    }

    /// Security groups (mail-enabled or not) can be granted permissions and admin roles.
    pub fn grants_rights(self) -> bool {
        matches!(self, GroupType::Security | GroupType::MailSecurity)
    }

    /// Exchange's `RecipientType` of a group of this type.
    pub fn recipient_type(self) -> &'static str {
        match self {
            GroupType::Distribution => "MailUniversalDistributionGroup",
            GroupType::Security => "Group",
            GroupType::MailSecurity => "MailUniversalSecurityGroup",
            GroupType::Dynamic => "DynamicDistributionGroup",
            GroupType::M365 => "MailUniversalDistributionGroup",
        }
    }

    /// Exchange's `RecipientTypeDetails`.
    pub fn recipient_type_details(self) -> &'static str {
        match self {
            GroupType::Distribution => "MailUniversalDistributionGroup",
            GroupType::Security => "UniversalSecurityGroup",
            GroupType::MailSecurity => "MailUniversalSecurityGroup",
            GroupType::Dynamic => "DynamicDistributionGroup",
            GroupType::M365 => "GroupMailbox",
        }
    }
}

/// Who may join or leave without an owner (Exchange's MemberJoinRestriction /
/// MemberDepartRestriction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restriction {
    Open,
    Closed,
    ApprovalRequired,
}

impl Restriction {
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::Open => "open",
            Restriction::Closed => "closed",
            Restriction::ApprovalRequired => "approval-required",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "open" => Some(Restriction::Open),
            "closed" => Some(Restriction::Closed),
            "approval-required" | "approvalrequired" => Some(Restriction::ApprovalRequired),
            _ => None,
        }
    }
}

/// A Microsoft 365 group's privacy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AccessType {
    /// Anyone in the tenant may join.
    #[default]
    Public,
    /// Joining needs an owner's approval.
    Private,
}

/// A directory object that can be a member, a sender in a restriction list, or a trustee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum MemberRef {
    Mailbox(MailboxId),
    Contact(ContactId),
    Group(GroupId),
}

/// A group's behaviour: who may send, moderation, joining, and (dynamic) its filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSettings {
    /// Only senders inside the tenant may send (Exchange's RequireSenderAuthenticationEnabled,
    /// default on).
    pub require_sender_authentication: bool,
    /// When not empty, only these senders (and members of these groups) may send.
    pub accept_messages_only_from: Vec<MemberRef>,
    /// These senders (and members of these groups) may not send.
    pub reject_messages_from: Vec<MemberRef>,
    pub moderation_enabled: bool,
    /// Moderators; the owners when empty.
    pub moderated_by: Vec<MailboxId>,
    /// Senders whose mail skips moderation (and members of these groups).
    pub bypass_moderation_from: Vec<MemberRef>,
    pub member_join_restriction: Restriction,
    pub member_depart_restriction: Restriction,
    /// NDRs for members' failures go to the sender (Exchange's ReportToOriginatorEnabled,
    /// default on)…
    pub report_to_originator: bool,
    /// …and/or to the group's first owner (ReportToManagerEnabled, default off). With neither,
    /// no NDR is sent (Exchange, Set-DistributionGroup).
    pub report_to_manager: bool,
    /// Dynamic groups: the OPATH recipient filter.
    pub recipient_filter: Option<String>,
    /// Dynamic groups made from the precanned form keep it here too, to show it back.
    pub precanned: Option<serde_json::Value>,
    /// M365 groups.
    pub access_type: AccessType,
    pub auto_subscribe_new_members: bool,
    /// M365 groups: only members and owners see the member list (Exchange's
    /// HiddenGroupMembershipEnabled); set at creation only.
    pub hidden_group_membership_enabled: bool,
}

impl GroupSettings {
    /// Exchange's defaults for a new group of this type: distribution groups are open to
    /// departure and closed to joining; security groups are closed both ways (they can never
    /// be open); Microsoft 365 groups are public with open joining.
    pub fn defaults_for(kind: GroupType) -> Self {
        let (join, depart) = match kind {
            GroupType::Distribution | GroupType::Dynamic => {
                (Restriction::Closed, Restriction::Open)
            }
            GroupType::Security | GroupType::MailSecurity => {
                (Restriction::Closed, Restriction::Closed)
            }
            GroupType::M365 => (Restriction::Open, Restriction::Open),
        };
        GroupSettings {
            require_sender_authentication: true,
            accept_messages_only_from: vec![],
            reject_messages_from: vec![],
            moderation_enabled: false,
            moderated_by: vec![],
            bypass_moderation_from: vec![],
            member_join_restriction: join,
            member_depart_restriction: depart,
            report_to_originator: true,
            report_to_manager: false,
            recipient_filter: None,
            precanned: None,
            access_type: AccessType::Public,
            hidden_group_membership_enabled: false,
            // Exchange's AutoSubscribeNewMembers is off unless asked for.
            auto_subscribe_new_members: false,
        }
    }
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self::defaults_for(GroupType::Distribution)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Primary SMTP address (canonical); `None` for security groups, which are not mail-enabled.
    pub address: Option<String>,
    pub group_type: GroupType,
    pub settings: GroupSettings,
    pub owners: Vec<MailboxId>,
    pub members: Vec<MemberRef>,
    /// M365 groups: members who get a copy of group mail in their Inbox.
    pub subscribers: Vec<MailboxId>,
}

/// A mail contact: an external address in the tenant's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub tenant_id: TenantId,
    pub address: String,
    pub display_name: String,
    pub attributes: MailboxAttributes,
}

/// Mailbox permissions (Exchange's FullAccess and SendAs, and `GrantSendOnBehalfTo`: the
/// delegate sends with the mailbox in `From:` and itself in `Sender:`, RFC 5322 §3.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxRight {
    FullAccess,
    SendAs,
    SendOnBehalf,
}

impl MailboxRight {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxRight::FullAccess => "full-access",
            MailboxRight::SendAs => "send-as",
            MailboxRight::SendOnBehalf => "send-on-behalf",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "full-access" | "fullaccess" => Some(MailboxRight::FullAccess),
            "send-as" | "sendas" => Some(MailboxRight::SendAs),
            "send-on-behalf" | "sendonbehalf" | "send-on-behalf-to" | "grant-send-on-behalf-to" => {
                Some(MailboxRight::SendOnBehalf)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub mailbox: MailboxId,
    /// A mailbox (user) or a security / mail-enabled security group.
    pub trustee: MemberRef,
    pub right: MailboxRight,
}

/// Everything of one tenant's directory that routing, expansion and authorization read, loaded
/// at once. Rebuilt when the directory changes (see the store's directory version).
#[derive(Clone, Debug, Default)]
pub struct TenantDirectory {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub version: i64,
    pub mailboxes: Vec<Mailbox>,
    pub contacts: Vec<Contact>,
    pub groups: Vec<Group>,
    pub permissions: Vec<Permission>,
    /// Admin roles given to security groups (role groups): (group, role).
    pub role_groups: Vec<(GroupId, Role)>,
}
