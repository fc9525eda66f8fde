//! Evaluator tests on hand-made recipients, and precanned filters.

use std::collections::HashMap;

use hato_directory::opath::{
    Filter, FilterSubject, IncludedRecipients, Precanned, Property, parse,
};

/// A directory entry as a server would hold it: named fields.
#[derive(Default)]
struct Person {
    alias: &'static str,
    department: Option<&'static str>,
    office: Option<&'static str>,
    city: Option<&'static str>,
    title: Option<&'static str>,
    company: Option<&'static str>,
    state: Option<&'static str>,
    custom1: Option<&'static str>,
    custom15: Option<&'static str>,
    recipient_type: &'static str,
    recipient_type_details: &'static str,
    hidden: Option<&'static str>,
}

impl FilterSubject for Person {
    fn property(&self, p: Property) -> Option<&str> {
        match p {
            Property::Alias => Some(self.alias),
            Property::Department => self.department,
            Property::Office => self.office,
            Property::City => self.city,
            Property::Title => self.title,
            Property::Company => self.company,
            Property::StateOrProvince => self.state,
            Property::CustomAttribute(1) => self.custom1,
            Property::CustomAttribute(15) => self.custom15,
            Property::RecipientType => Some(self.recipient_type),
            Property::RecipientTypeDetails => Some(self.recipient_type_details),
            Property::HiddenFromAddressListsEnabled => self.hidden,
            _ => None,
        }
    }
}

fn people() -> Vec<Person> {
    vec![
        Person {
            alias: "aiko",
            department: Some("Sales"),
            office: Some("Tokyo HQ"),
            city: Some("Tokyo"),
            title: Some("Account Manager"),
            company: Some("Contoso"),
            state: Some("Tokyo"),
            custom1: Some("10"),
            recipient_type: "UserMailbox",
            recipient_type_details: "UserMailbox",
            hidden: Some("False"),
            ..Person::default()
        },
        Person {
            alias: "bob",
            department: Some("SALES"),
            office: Some("Osaka"),
            city: Some("Ōsaka"),
            title: Some("Intern"),
            company: Some("contoso"),
            state: Some("WA"),
            custom1: Some("9"),
            recipient_type: "UserMailbox",
            recipient_type_details: "SharedMailbox",
            hidden: Some("True"),
            ..Person::default()
        },
        Person {
            alias: "carol",
            department: Some("Engineering"),
            office: Some("tokyo annex"),
            city: Some("ZÜRICH"),
            title: Some("Sales Engineer"),
            company: Some("Fabrikam"),
            state: Some("Washington"),
            custom1: Some("abc"),
            custom15: Some("*"),
            recipient_type: "MailUser",
            recipient_type_details: "MailUser",
            ..Person::default()
        },
        Person {
            alias: "room1",
            department: Some(""),
            office: Some("Tokyo HQ"),
            recipient_type: "UserMailbox",
            recipient_type_details: "RoomMailbox",
            ..Person::default()
        },
        Person {
            alias: "partners",
            recipient_type: "MailUniversalDistributionGroup",
            recipient_type_details: "MailUniversalDistributionGroup",
            ..Person::default()
        },
        Person {
            alias: "vendor",
            company: Some("Litware"),
            recipient_type: "MailContact",
            recipient_type_details: "MailContact",
            ..Person::default()
        },
    ]
}

/// The aliases of the people the filter selects.
fn select(filter: &str) -> Vec<&'static str> {
    let f = parse(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    people()
        .into_iter()
        .filter(|p| f.matches(p))
        .map(|p| p.alias)
        .collect()
}

#[test]
fn eq_ignores_case() {
    assert_eq!(select("Department -eq 'sales'"), ["aiko", "bob"]);
    assert_eq!(select("department -EQ 'SALES'"), ["aiko", "bob"]);
    assert_eq!(select("City -eq 'zürich'"), ["carol"]);
    assert_eq!(select("City -eq 'ŌSAKA'"), ["bob"]);
    // Exact: no partial matches ("Washington" is not "WA").
    assert_eq!(select("StateOrProvince -eq 'WA'"), ["bob"]);
    assert_eq!(select("Title -eq 'Sales'"), Vec::<&str>::new());
}

#[test]
fn ne_matches_unset_properties() {
    // As LDAP's (!(department=Sales)): recipients without a department match.
    assert_eq!(
        select("Department -ne 'Sales'"),
        ["carol", "room1", "partners", "vendor"]
    );
}

#[test]
fn null_and_empty_mean_unset() {
    // room1 has Department "", which counts as not set.
    assert_eq!(
        select("Department -eq $null"),
        ["room1", "partners", "vendor"]
    );
    assert_eq!(select("Department -eq ''"), ["room1", "partners", "vendor"]);
    assert_eq!(select("Department -ne $null"), ["aiko", "bob", "carol"]);
    assert_eq!(select("Department -ne ''"), ["aiko", "bob", "carol"]);
}

#[test]
fn like_wildcards() {
    assert_eq!(select("Office -like 'Tokyo*'"), ["aiko", "carol", "room1"]);
    assert_eq!(select("Office -like '*HQ'"), ["aiko", "room1"]);
    assert_eq!(select("Title -like '*sales*'"), ["carol"]);
    assert_eq!(select("Title -like '*MANAGER*'"), ["aiko"]);
    // '*' is a presence test.
    assert_eq!(
        select("Office -like '*'"),
        ["aiko", "bob", "carol", "room1"]
    );
    assert_eq!(
        select("Office -like '**'"),
        ["aiko", "bob", "carol", "room1"]
    );
    // Without a wildcard, -like is an exact (case-insensitive) match.
    assert_eq!(select("Office -like 'osaka'"), ["bob"]);
    assert_eq!(select("City -like 'zür*'"), ["carol"]);
    assert_eq!(select("City -like '*SAKA'"), ["bob"]);
}

#[test]
fn notlike_matches_unset_properties() {
    assert_eq!(
        select("Office -notlike 'Tokyo*'"),
        ["bob", "partners", "vendor"]
    );
    assert_eq!(select("Office -notlike '*'"), ["partners", "vendor"]);
}

#[test]
fn eq_compares_a_star_literally() {
    assert_eq!(select("CustomAttribute15 -eq '*'"), ["carol"]);
    assert_eq!(select("Office -eq 'Tokyo*'"), Vec::<&str>::new());
}

#[test]
fn ordering_is_numeric_for_numbers() {
    // "10" > "9" numerically (as text, "10" < "9").
    assert_eq!(select("CustomAttribute1 -gt 9"), ["aiko", "carol"]);
    assert_eq!(select("CustomAttribute1 -gt '9.5'"), ["aiko", "carol"]);
    assert_eq!(select("CustomAttribute1 -ge '9'"), ["aiko", "bob", "carol"]);
    assert_eq!(select("CustomAttribute1 -lt 10"), ["bob"]);
    assert_eq!(select("CustomAttribute1 -le '10.0'"), ["aiko", "bob"]);
    assert_eq!(select("CustomAttribute1 -lt -1"), Vec::<&str>::new());
}

#[test]
fn ordering_is_textual_otherwise_and_needs_a_value() {
    // "abc" vs "b": text; "10" and "9" vs "b": text too ("1" < "9" < "b").
    assert_eq!(select("CustomAttribute1 -lt 'B'"), ["aiko", "bob", "carol"]);
    assert_eq!(select("CustomAttribute1 -gt 'ABB'"), ["carol"]);
    assert_eq!(select("Department -ge 'e'"), ["aiko", "bob", "carol"]);
    assert_eq!(select("Department -lt 'S'"), ["carol"]);
    // Unset (and "") never satisfies an ordering.
    assert_eq!(select("Department -lt 'zzz'"), ["aiko", "bob", "carol"]);
    assert_eq!(select("Department -gt ''"), ["aiko", "bob", "carol"]);
}

#[test]
fn booleans() {
    assert_eq!(select("HiddenFromAddressListsEnabled -eq $true"), ["bob"]);
    assert_eq!(select("HiddenFromAddressListsEnabled -eq $false"), ["aiko"]);
    assert_eq!(
        select("HiddenFromAddressListsEnabled -ne $true"),
        ["aiko", "carol", "room1", "partners", "vendor"]
    );
}

#[test]
fn logic_and_precedence() {
    assert_eq!(
        select("(Department -eq 'Sales') -and (Office -like 'Tokyo*')"),
        ["aiko"]
    );
    assert_eq!(
        select("Department -eq 'Sales' -or Department -eq 'Engineering' -and Office -like 'Osaka'"),
        ["aiko", "bob"]
    );
    assert_eq!(
        select(
            "(Department -eq 'Sales' -or Department -eq 'Engineering') -and Office -like 'Osaka'"
        ),
        ["bob"]
    );
    assert_eq!(
        select("-not Department -eq 'Sales' -and RecipientType -eq 'UserMailbox'"),
        ["room1"]
    );
    assert_eq!(
        select("-not (Department -eq 'Sales' -and RecipientType -eq 'UserMailbox')"),
        ["carol", "room1", "partners", "vendor"]
    );
    assert_eq!(select("-not -not Alias -eq 'BOB'"), ["bob"]);
}

#[test]
fn exchange_documentation_examples() {
    assert_eq!(
        select("(RecipientTypeDetails -eq 'UserMailbox') -and (CustomAttribute1 -eq '10')"),
        ["aiko"]
    );
    assert_eq!(
        select(
            "((RecipientTypeDetails -eq 'UserMailbox') -and (Company -eq 'Contoso') \
             -and (Office -eq 'Tokyo HQ'))"
        ),
        ["aiko"]
    );
    // Unquoted system values, as Exchange accepts them.
    assert_eq!(
        select("RecipientType -eq MailUser -or RecipientType -eq MailContact"),
        ["carol", "vendor"]
    );
}

#[test]
fn works_through_dyn_and_maps() {
    let f = parse("Department -eq 'Sales' -and Office -like 'Tokyo*'").unwrap();
    let aiko = &people()[0];
    let dynamic: &dyn FilterSubject = aiko;
    assert!(f.matches(dynamic));
    let boxed: Vec<Box<dyn FilterSubject>> = vec![Box::new(people().remove(0))];
    assert!(boxed.iter().all(|s| f.matches(s.as_ref())));
    let map = HashMap::from([
        (Property::Department, "sales".to_owned()),
        (Property::Office, "TOKYO".to_owned()),
    ]);
    assert!(f.matches(&map));
    let btree: std::collections::BTreeMap<Property, String> = map.into_iter().collect();
    assert!(f.matches(&btree));
    assert!(!f.matches(&HashMap::new()));
}

#[test]
fn unicode_folding() {
    let subject = |city: &str| HashMap::from([(Property::City, city.to_owned())]);
    let f = parse("City -like '*straße*'").unwrap();
    assert!(!f.matches(&subject("Große STRASSE")));
    assert!(f.matches(&subject("Hauptstraße 1")));
    assert!(f.matches(&subject("HAUPTSTRAßE 1")));
    let f = parse("City -eq 'kelvin'").unwrap();
    // KELVIN SIGN folds to an ASCII 'k'.
    assert!(f.matches(&subject("\u{212A}elvin")));
    let f = parse("City -like '*ΣΟΦΙΑ'").unwrap();
    assert!(f.matches(&subject("σοφια")));
}

fn precanned_select(p: &Precanned) -> Vec<&'static str> {
    let f = p.to_filter();
    people()
        .into_iter()
        .filter(|s| f.matches(s))
        .map(|s| s.alias)
        .collect()
}

#[test]
fn precanned_included_recipients() {
    let with = |classes: &[IncludedRecipients]| Precanned {
        included_recipients: classes.to_vec(),
        ..Precanned::default()
    };
    use IncludedRecipients::*;
    let everyone = ["aiko", "bob", "carol", "room1", "partners", "vendor"];
    assert_eq!(precanned_select(&Precanned::default()), everyone);
    assert_eq!(precanned_select(&with(&[AllRecipients])), everyone);
    assert_eq!(
        precanned_select(&with(&[MailContacts, AllRecipients])),
        everyone
    );
    // Shared and room mailboxes are UserMailbox too, as in Exchange.
    assert_eq!(
        precanned_select(&with(&[MailboxUsers])),
        ["aiko", "bob", "room1"]
    );
    assert_eq!(precanned_select(&with(&[MailContacts])), ["vendor"]);
    assert_eq!(precanned_select(&with(&[MailGroups])), ["partners"]);
    assert_eq!(precanned_select(&with(&[MailUsers])), ["carol"]);
    assert_eq!(precanned_select(&with(&[Resources])), ["room1"]);
    assert_eq!(
        precanned_select(&with(&[MailUsers, MailContacts, MailUsers])),
        ["carol", "vendor"]
    );
    assert_eq!(
        Precanned::default().to_filter().to_opath(),
        "(Alias -ne $null)"
    );
}

#[test]
fn precanned_conditions() {
    let mut p = Precanned {
        included_recipients: vec![IncludedRecipients::MailboxUsers],
        department: vec!["sales".into(), "Engineering".into()],
        ..Precanned::default()
    };
    assert_eq!(precanned_select(&p), ["aiko", "bob"]);
    p.included_recipients.clear();
    assert_eq!(precanned_select(&p), ["aiko", "bob", "carol"]);
    p.company = vec!["CONTOSO".into()];
    assert_eq!(precanned_select(&p), ["aiko", "bob"]);
    // Exact values: "WA" does not match "Washington".
    p.state_or_province = vec!["wa".into()];
    assert_eq!(precanned_select(&p), ["bob"]);
    p.state_or_province.clear();
    p.custom_attributes[0] = vec!["10".into(), "9".into()];
    assert_eq!(precanned_select(&p), ["aiko", "bob"]);
    // A star is literal, not a wildcard.
    let q = Precanned {
        custom_attributes: {
            let mut c: [Vec<String>; 15] = Default::default();
            c[14] = vec!["*".into()];
            c
        },
        ..Precanned::default()
    };
    assert_eq!(precanned_select(&q), ["carol"]);
    let r = Precanned {
        department: vec!["Sal*".into()],
        ..Precanned::default()
    };
    assert!(precanned_select(&r).is_empty());
}

#[test]
fn precanned_filter_text() {
    let p = Precanned {
        included_recipients: vec![
            IncludedRecipients::MailboxUsers,
            IncludedRecipients::Resources,
        ],
        department: vec!["Sales".into(), "R&D".into()],
        custom_attributes: {
            let mut c: [Vec<String>; 15] = Default::default();
            c[9] = vec!["FullTimeEmployee".into()];
            c
        },
        ..Precanned::default()
    };
    let f = p.to_filter();
    assert_eq!(
        f.to_opath(),
        "(((RecipientType -eq 'UserMailbox') -or (RecipientTypeDetails -eq 'RoomMailbox') \
         -or (RecipientTypeDetails -eq 'EquipmentMailbox')) -and ((Department -eq 'Sales') \
         -or (Department -eq 'R&D')) -and (CustomAttribute10 -eq 'FullTimeEmployee'))"
    );
    assert_eq!(parse(&f.to_opath()), Ok(f));
}

#[test]
fn included_recipients_names() {
    for v in IncludedRecipients::ALL {
        assert_eq!(IncludedRecipients::parse(v.name()), Some(v));
        assert_eq!(IncludedRecipients::parse(&v.name().to_lowercase()), Some(v));
        assert_eq!(v.to_string(), v.name());
    }
    assert_eq!(IncludedRecipients::parse("Everyone"), None);
    let json = serde_json::to_string(&Precanned {
        included_recipients: vec![IncludedRecipients::MailGroups],
        ..Precanned::default()
    })
    .unwrap();
    assert!(json.contains("\"MailGroups\""), "{json}");
    let back: Precanned = serde_json::from_str(&json).unwrap();
    assert_eq!(back.included_recipients, [IncludedRecipients::MailGroups]);
}

#[test]
fn filter_built_by_hand() {
    use hato_directory::opath::{Operator, Value};
    let f = Filter::and(
        Filter::compare(
            Property::Department,
            Operator::Eq,
            Value::Text("Sales".into()),
        )
        .unwrap(),
        Filter::negate(
            Filter::compare(
                Property::Title,
                Operator::Like,
                Value::Text("*intern*".into()),
            )
            .unwrap(),
        ),
    );
    assert_eq!(select(&f.to_opath()), ["aiko"]);
    assert!(Filter::compare(Property::Title, Operator::Like, Value::Text("a*b".into())).is_err());
    assert!(Filter::compare(Property::Title, Operator::Gt, Value::Null).is_err());
}
