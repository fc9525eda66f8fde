//! Directory objects of a tenant: accepted domains and mailboxes.

use serde::{Deserialize, Serialize};

pub type TenantId = i64;
pub type MailboxId = i64;

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
    /// Outside every tenant (only NDRs to outside senders go here): outbound delivery.
    Remote,
}

impl Route {
    pub fn kind(self) -> &'static str {
        match self {
            Route::Local(_) => "local",
            Route::Relay => "relay",
            Route::Remote => "remote",
        }
    }
}
