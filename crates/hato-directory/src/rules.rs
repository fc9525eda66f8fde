//! What transport rules ask of the directory (`hato_protection::rules::RuleDirectory`), answered
//! from a tenant's [`DirectoryIndex`] and its accepted domains.

use crate::index::{Addressee, DirectoryIndex};
use hato_core::directory::{MailboxAttributes, MemberRef};
use hato_protection::rules::RuleDirectory;

/// A tenant's directory as rules see it.
pub struct RuleDirectoryView<'a> {
    pub index: &'a DirectoryIndex,
    /// The tenant's accepted domains (canonical).
    pub accepted_domains: &'a [String],
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The attribute called `name` (as `SENDER_ATTRIBUTES` names them) of a directory object.
fn attribute(
    a: &MailboxAttributes,
    display_name: &str,
    address: &str,
    name: &str,
) -> Option<String> {
    let v = match name {
        "City" => &a.city,
        "Company" => &a.company,
        "Country" => &a.country_or_region,
        "Department" => &a.department,
        "Office" => &a.office,
        "State" => &a.state_or_province,
        "Title" => &a.title,
        "DisplayName" => display_name,
        "Email" => address,
        other => {
            let n: usize = other.strip_prefix("CustomAttribute")?.parse().ok()?;
            a.custom_attributes.get(n.checked_sub(1)?)?
        }
    };
    Some(v.to_string())
}

impl RuleDirectory for RuleDirectoryView<'_> {
    /// Exchange's `InOrganization` for senders: a mailbox or group of the tenant (a mail contact
    /// is outside), or an address in an accepted domain over an authenticated connection.
    fn sender_in_organization(&self, address: &str, authenticated: bool) -> bool {
        matches!(
            self.index.sender(address),
            Some(MemberRef::Mailbox(_) | MemberRef::Group(_))
        ) || (authenticated
            && self
                .accepted_domains
                .iter()
                .any(|d| d == domain_of(address)))
    }

    /// A recipient of the tenant, or any address in one of its accepted domains.
    fn recipient_in_organization(&self, address: &str) -> bool {
        self.index.lookup(address).is_some()
            || self
                .accepted_domains
                .iter()
                .any(|d| d == domain_of(address))
    }

    fn is_member_of(&self, address: &str, group: &str) -> bool {
        let (Some(who), Some(Addressee::Group(g))) =
            (self.index.sender(address), self.index.lookup(group))
        else {
            return false;
        };
        self.index.is_member(who, g)
    }

    fn attribute(&self, address: &str, name: &str) -> Option<String> {
        match self.index.sender(address)? {
            MemberRef::Mailbox(id) => {
                let m = self.index.mailbox(id)?;
                attribute(&m.attributes, &m.display_name, &m.address, name)
            }
            MemberRef::Contact(id) => {
                let c = self.index.contact(id)?;
                attribute(&c.attributes, &c.display_name, &c.address, name)
            }
            MemberRef::Group(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::directory::TenantDirectory;

    #[test]
    fn scope_membership_and_attributes_come_from_the_tenants_directory() {
        let dir = TenantDirectory {
            tenant_id: 1,
            tenant_name: "contoso".into(),
            ..TenantDirectory::default()
        };
        let index = DirectoryIndex::new(dir);
        let domains = vec!["contoso.test".to_string()];
        let view = RuleDirectoryView {
            index: &index,
            accepted_domains: &domains,
        };
        // An accepted domain's sender is inside only over an authenticated connection.
        assert!(!view.sender_in_organization("x@contoso.test", false));
        assert!(view.sender_in_organization("x@contoso.test", true));
        assert!(!view.sender_in_organization("x@fabrikam.test", true));
        assert!(view.recipient_in_organization("x@contoso.test"));
        assert!(!view.recipient_in_organization("x@fabrikam.test"));
        assert!(!view.is_member_of("x@contoso.test", "sales@contoso.test"));
        assert_eq!(view.attribute("x@contoso.test", "Department"), None);
        let a = MailboxAttributes {
            department: "Sales".into(),
            custom_attributes: std::array::from_fn(|i| format!("c{}", i + 1)),
            ..MailboxAttributes::default()
        };
        assert_eq!(
            attribute(&a, "D", "e@x", "Department").as_deref(),
            Some("Sales")
        );
        assert_eq!(
            attribute(&a, "D", "e@x", "CustomAttribute15").as_deref(),
            Some("c15")
        );
        assert_eq!(attribute(&a, "D", "e@x", "CustomAttribute16"), None);
        assert_eq!(attribute(&a, "D", "e@x", "CustomAttribute0"), None);
        assert_eq!(
            attribute(&a, "D", "e@x", "DisplayName").as_deref(),
            Some("D")
        );
    }
}
