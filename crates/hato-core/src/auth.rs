//! Who is calling the admin API.

use crate::directory::TenantId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the platform: sees and changes every tenant.
    Operator,
    /// Administers one tenant (Exchange's Organization Management within that tenant).
    TenantAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::TenantAdmin => "tenant-admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Role::Operator),
            "tenant-admin" => Some(Role::TenantAdmin),
            _ => None,
        }
    }
}

/// An authenticated caller: a role, and for tenant roles the tenant it is confined to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub tenant_id: Option<TenantId>,
}

impl Principal {
    /// Whether this caller may see objects of `tenant`. Callers answer 404 when not, exactly as if
    /// the object did not exist, so one tenant cannot probe another's names.
    pub fn sees(&self, tenant: TenantId) -> bool {
        match self.role {
            Role::Operator => true,
            Role::TenantAdmin => self.tenant_id == Some(tenant),
        }
    }
}
