//! Who is calling the admin API.

use crate::id::{MailboxId, TenantId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the platform: sees and changes every tenant.
    Operator,
    /// Administers one tenant: Exchange's global admin (Organization Management). Its tokens
    /// say `tenant-admin`, which stays accepted.
    TenantAdmin,
    /// Manages a tenant's recipients (mailboxes, contacts, groups) but not its settings, and may
    /// not use the security-group manager bypass (Exchange's Recipient Management).
    RecipientAdmin,
    /// A person, authenticated as their mailbox.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::TenantAdmin => "tenant-admin",
            Role::RecipientAdmin => "recipient-admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Role::Operator),
            "tenant-admin" | "global-admin" => Some(Role::TenantAdmin),
            "recipient-admin" => Some(Role::RecipientAdmin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// An authenticated caller: a role, and for tenant roles the tenant it is confined to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub tenant_id: Option<TenantId>,
    /// For users: the mailbox they authenticated as.
    pub mailbox_id: Option<MailboxId>,
}

impl Principal {
    /// Whether this caller may see objects of `tenant`. Callers answer 404 when not, exactly as if
    /// the object did not exist, so one tenant cannot probe another's names.
    pub fn sees(&self, tenant: TenantId) -> bool {
        match self.role {
            Role::Operator => true,
            Role::TenantAdmin | Role::RecipientAdmin | Role::User => self.tenant_id == Some(tenant),
        }
    }

    /// Whether this caller administers recipients of its tenant (global or recipient admin, or
    /// the operator).
    pub fn is_admin(&self) -> bool {
        matches!(
            self.role,
            Role::Operator | Role::TenantAdmin | Role::RecipientAdmin
        )
    }

    /// Whether this caller is a global admin (or the operator, who stands above them).
    pub fn is_global_admin(&self) -> bool {
        matches!(self.role, Role::Operator | Role::TenantAdmin)
    }
}
