//! Rights and roles flow only through security-type groups: a distribution list (or dynamic or
//! Microsoft 365 group) nested in a role group or a rights group passes nothing on, even when the
//! directory holds such nesting (made before the API refused it).

use hato_core::auth::Role;
use hato_core::directory::{
    Group, GroupSettings, GroupType, Mailbox, MailboxAttributes, MailboxRight, MailboxType,
    MemberRef, Permission, TenantDirectory,
};
use hato_directory::DirectoryIndex;

fn mailbox(id: i64) -> Mailbox {
    Mailbox {
        id,
        tenant_id: 1,
        tenant: "contoso".into(),
        address: format!("m{id}@contoso.test"),
        display_name: format!("m{id}"),
        mailbox_type: MailboxType::User,
        aliases: vec![],
        attributes: MailboxAttributes::default(),
        quota_bytes: 1,
        used_bytes: 0,
    }
}

fn group(id: i64, kind: GroupType, members: Vec<MemberRef>) -> Group {
    Group {
        id,
        tenant_id: 1,
        name: format!("g{id}"),
        address: kind
            .is_mail_enabled()
            .then(|| format!("g{id}@contoso.test")),
        group_type: kind,
        settings: GroupSettings::defaults_for(kind),
        owners: vec![1],
        members,
        subscribers: vec![],
    }
}

/// m1 owns everything; m2 is directly in the role group; m3 through a nested security group;
/// m4 through a distribution list nested in the mail-enabled security group; m5 through a
/// security group inside that distribution list; m6 through a Microsoft 365 group.
fn directory() -> DirectoryIndex {
    use MemberRef::{Group as G, Mailbox as M};
    DirectoryIndex::new(TenantDirectory {
        tenant_id: 1,
        tenant_name: "contoso".into(),
        version: 1,
        mailboxes: (1..=7).map(mailbox).collect(),
        contacts: vec![],
        groups: vec![
            group(10, GroupType::MailSecurity, vec![M(2), G(11), G(12), G(14)]),
            group(11, GroupType::Security, vec![M(3)]),
            group(12, GroupType::Distribution, vec![M(4), G(13)]),
            group(13, GroupType::Security, vec![M(5)]),
            group(14, GroupType::M365, vec![M(6)]),
        ],
        permissions: vec![Permission {
            mailbox: 7,
            trustee: G(10),
            right: MailboxRight::FullAccess,
        }],
        role_groups: vec![(10, Role::TenantAdmin)],
    })
}

#[test]
fn roles_reach_only_through_security_groups() {
    let ix = directory();
    assert_eq!(ix.role_of(2), Some(Role::TenantAdmin), "direct member");
    assert_eq!(
        ix.role_of(3),
        Some(Role::TenantAdmin),
        "through a security group"
    );
    assert_eq!(ix.role_of(4), None, "through a distribution list");
    assert_eq!(
        ix.role_of(5),
        None,
        "through a security group inside a distribution list"
    );
    assert_eq!(ix.role_of(6), None, "through a Microsoft 365 group");
    assert_eq!(ix.role_of(1), None, "owning is not membership");
}

#[test]
fn mailbox_rights_reach_only_through_security_groups() {
    let ix = directory();
    let full = |m| ix.has_right(m, 7, MailboxRight::FullAccess);
    assert!(full(2));
    assert!(full(3));
    assert!(!full(4));
    assert!(!full(5));
    assert!(!full(6));
    assert!(
        !ix.has_right(2, 7, MailboxRight::SendAs),
        "only the right given"
    );
    // Mail still reaches everyone: expansion is not about rights.
    assert!(ix.is_member(MemberRef::Mailbox(5), 10));
}

#[test]
fn protected_and_rights_bearing_groups_include_every_nested_group() {
    let ix = directory();
    let mut protected: Vec<_> = ix.role_protected_groups().into_iter().collect();
    protected.sort();
    assert_eq!(protected, [10, 11, 12, 13, 14]);
    let mut bearing: Vec<_> = ix.rights_bearing_groups().into_iter().collect();
    bearing.sort();
    assert_eq!(bearing, [10, 11, 12, 13, 14]);
    assert_eq!(ix.non_security_within(10), [12, 14]);
    assert_eq!(ix.non_security_within(11), Vec::<i64>::new());
}
