//! Exchange's precanned dynamic-group filters: `-IncludedRecipients` plus
//! the `-Conditional*` parameters of `New-DynamicDistributionGroup`.

use std::fmt;

use super::filter::{Comparison, Filter};
use super::property::Property;

/// A recipient class for `-IncludedRecipients`.
///
/// Exchange's values; several are OR-ed. Exchange requires `AllRecipients`
/// to be used alone; [`Precanned::to_filter`] lets it win over any others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IncludedRecipients {
    /// Mailboxes: `RecipientType -eq 'UserMailbox'`. As in Exchange this
    /// includes shared, room and equipment mailboxes, whose
    /// `RecipientType` is also `UserMailbox` (only `RecipientTypeDetails`
    /// tells them apart).
    MailboxUsers,
    /// Mail contacts: `RecipientType -eq 'MailContact'`.
    MailContacts,
    /// Mail-enabled groups: `RecipientType` one of
    /// `MailUniversalDistributionGroup`, `MailUniversalSecurityGroup`,
    /// `MailNonUniversalGroup`, `DynamicDistributionGroup` (Exchange's four
    /// group recipient types).
    MailGroups,
    /// Mail users (external addresses with a directory account):
    /// `RecipientType -eq 'MailUser'`.
    MailUsers,
    /// Room and equipment mailboxes: `RecipientTypeDetails` is
    /// `RoomMailbox` or `EquipmentMailbox`.
    Resources,
    /// Every recipient: no recipient-type condition.
    AllRecipients,
}

impl IncludedRecipients {
    /// Every value, in Exchange's documentation order.
    pub const ALL: [IncludedRecipients; 6] = [
        IncludedRecipients::MailboxUsers,
        IncludedRecipients::MailContacts,
        IncludedRecipients::MailGroups,
        IncludedRecipients::MailUsers,
        IncludedRecipients::Resources,
        IncludedRecipients::AllRecipients,
    ];

    /// Parses Exchange's name, ignoring case.
    pub fn parse(name: &str) -> Option<IncludedRecipients> {
        IncludedRecipients::ALL
            .iter()
            .copied()
            .find(|v| v.name().eq_ignore_ascii_case(name))
    }

    /// Exchange's name, e.g. `MailboxUsers`.
    pub fn name(&self) -> &'static str {
        match self {
            IncludedRecipients::MailboxUsers => "MailboxUsers",
            IncludedRecipients::MailContacts => "MailContacts",
            IncludedRecipients::MailGroups => "MailGroups",
            IncludedRecipients::MailUsers => "MailUsers",
            IncludedRecipients::Resources => "Resources",
            IncludedRecipients::AllRecipients => "AllRecipients",
        }
    }

    /// The (property, value) pairs, OR-ed, that select this class; empty
    /// for `AllRecipients`.
    fn conditions(&self) -> &'static [(Property, &'static str)] {
        match self {
            IncludedRecipients::MailboxUsers => &[(Property::RecipientType, "UserMailbox")],
            IncludedRecipients::MailContacts => &[(Property::RecipientType, "MailContact")],
            IncludedRecipients::MailGroups => &[
                (Property::RecipientType, "MailUniversalDistributionGroup"),
                (Property::RecipientType, "MailUniversalSecurityGroup"),
                (Property::RecipientType, "MailNonUniversalGroup"),
                (Property::RecipientType, "DynamicDistributionGroup"),
            ],
            IncludedRecipients::MailUsers => &[(Property::RecipientType, "MailUser")],
            IncludedRecipients::Resources => &[
                (Property::RecipientTypeDetails, "RoomMailbox"),
                (Property::RecipientTypeDetails, "EquipmentMailbox"),
            ],
            IncludedRecipients::AllRecipients => &[],
        }
    }
}

impl fmt::Display for IncludedRecipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precanned filter, the form `New-DynamicDistributionGroup` builds from
/// `-IncludedRecipients` and `-ConditionalDepartment`,
/// `-ConditionalCompany`, `-ConditionalStateOrProvince`,
/// `-ConditionalCustomAttribute1` … `15`.
///
/// Exchange's rules: values given for one property are OR-ed, the
/// properties are AND-ed, and each value must match exactly ("Washington"
/// does not match "WA"; no wildcards, a `*` is literal) though without
/// regard to case. Empty lists impose no condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Precanned {
    /// `-IncludedRecipients`; empty means `AllRecipients`.
    pub included_recipients: Vec<IncludedRecipients>,
    /// `-ConditionalDepartment`.
    pub department: Vec<String>,
    /// `-ConditionalCompany`.
    pub company: Vec<String>,
    /// `-ConditionalStateOrProvince`.
    pub state_or_province: Vec<String>,
    /// `-ConditionalCustomAttribute1` … `15`, index 0 is attribute 1.
    pub custom_attributes: [Vec<String>; 15],
}

/// OR-s `Property -eq 'value'` over `pairs`; `None` when there are none.
fn any_equal<'a>(pairs: impl IntoIterator<Item = (Property, &'a str)>) -> Option<Filter> {
    pairs
        .into_iter()
        .map(|(property, value)| Filter::Comparison(Comparison::eq_text(property, value)))
        .reduce(Filter::or)
}

impl Precanned {
    /// The equivalent custom filter:
    /// `(type1 -or type2 …) -and (Department -eq 'a' -or …) -and …`.
    ///
    /// With no condition at all (no class other than `AllRecipients`, no
    /// conditional values) the filter is `Alias -ne $null`: Exchange treats
    /// every object with an alias as a recipient (the LDAP filters it
    /// generates all start with `(mailNickname=*)`), so a
    /// [`FilterSubject`](super::filter::FilterSubject) must report `Alias`.
    /// A value of `''` in a conditional list matches recipients without
    /// that property, as `-eq ''` does.
    pub fn to_filter(&self) -> Filter {
        let mut parts: Vec<Filter> = Vec::new();

        let mut classes: Vec<IncludedRecipients> = Vec::new();
        for class in &self.included_recipients {
            if !classes.contains(class) {
                classes.push(*class);
            }
        }
        // AllRecipients (or nothing) means no recipient-type condition.
        if !classes.contains(&IncludedRecipients::AllRecipients)
            && let Some(types) =
                any_equal(classes.iter().flat_map(|c| c.conditions().iter().copied()))
        {
            parts.push(types);
        }

        let mut conditional = |property: Property, values: &[String]| {
            if let Some(f) = any_equal(values.iter().map(|v| (property, v.as_str()))) {
                parts.push(f);
            }
        };
        conditional(Property::Department, &self.department);
        conditional(Property::Company, &self.company);
        conditional(Property::StateOrProvince, &self.state_or_province);
        for (n, values) in (1u8..).zip(self.custom_attributes.iter()) {
            conditional(Property::CustomAttribute(n), values);
        }

        parts
            .into_iter()
            .reduce(Filter::and)
            .unwrap_or_else(|| Filter::Comparison(Comparison::is_set(Property::Alias)))
    }
}
