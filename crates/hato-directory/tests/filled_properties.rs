//! A recipient filter may name only the properties hato's directory fills in: the others are
//! `None` for every mailbox, contact and group, so a filter on them would silently match nobody.
//! They are refused at parse time, with the list of supported properties.

use hato_core::directory::{
    Contact, Group, GroupSettings, GroupType, Mailbox, MailboxAttributes, MailboxType,
};
use hato_directory::index::{FILLED_PROPERTIES, Subject, parse_recipient_filter};
use hato_directory::opath::{self, FilterSubject, Property};

fn attributes() -> MailboxAttributes {
    MailboxAttributes {
        department: "d".into(),
        company: "c".into(),
        office: "o".into(),
        city: "ci".into(),
        state_or_province: "s".into(),
        country_or_region: "cr".into(),
        title: "t".into(),
        custom_attributes: std::array::from_fn(|i| format!("ca{i}")),
    }
}

#[test]
fn the_filled_properties_are_exactly_those_some_recipient_has() {
    let mailbox = Mailbox {
        id: 1,
        tenant_id: 1,
        tenant: "contoso".into(),
        address: "m@contoso.test".into(),
        display_name: "M".into(),
        mailbox_type: MailboxType::User,
        aliases: vec!["x@contoso.test".into()],
        attributes: attributes(),
        quota_bytes: 1,
        used_bytes: 0,
    };
    let contact = Contact {
        id: 1,
        tenant_id: 1,
        address: "c@fabrikam.test".into(),
        display_name: "C".into(),
        attributes: attributes(),
    };
    let group = Group {
        id: 1,
        tenant_id: 1,
        name: "G".into(),
        address: Some("g@contoso.test".into()),
        group_type: GroupType::Distribution,
        settings: GroupSettings::default(),
        owners: vec![1],
        members: vec![],
        subscribers: vec![],
    };
    let subjects = [
        Subject::Mailbox(&mailbox),
        Subject::Contact(&contact),
        Subject::Group(&group),
    ];
    for p in Property::ALL {
        let filled = subjects.iter().any(|s| s.property(p).is_some());
        assert_eq!(
            filled,
            FILLED_PROPERTIES.contains(&p),
            "{p}: filled by the directory = {filled}"
        );
    }
}

#[test]
fn a_filter_on_an_unfilled_property_is_refused_with_the_supported_list() {
    for name in [
        "FirstName",
        "Manager",
        "HiddenFromAddressListsEnabled",
        "Notes",
    ] {
        let text = format!("(Department -eq 'Sales') -and ({name} -eq 'x')");
        // The OPATH language itself knows the property…
        assert!(opath::parse(&text).is_ok(), "{name}");
        // …but hato's directory never fills it.
        let e = parse_recipient_filter(&text).unwrap_err();
        assert_eq!(e.position, 31, "{name}: {e:?}");
        assert!(
            e.message.contains(&format!("'{name}' is not filled in"))
                && e.message
                    .contains("Department, Company, Office, City, StateOrProvince")
                && e.message.contains("CustomAttribute1 to CustomAttribute15")
                && !e.message.contains("FirstName,"),
            "{e:?}"
        );
    }
    assert!(parse_recipient_filter("CustomAttribute7 -like 'Tok*' -and Alias -ne 'x'").is_ok());
}
