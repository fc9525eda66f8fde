//! The recipient properties a filter can read, under their Exchange names.

use std::fmt;

/// A recipient property that a `RecipientFilter` can compare.
///
/// The names are the ones Exchange's OPATH filters use ("Filterable
/// properties for the -RecipientFilter parameter"), matched without regard
/// to case as Exchange does (`department -eq 'Sales'` is accepted).
/// `EmailAddresses` and `MemberOfGroup` are left out on purpose: they are
/// multi-valued (or hold distinguished names) and [`FilterSubject`]
/// returns one value per property.
///
/// [`FilterSubject`]: super::filter::FilterSubject
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// `Department`: the most common dynamic group condition in Exchange
    /// (also one of the precanned `-ConditionalDepartment` properties).
    Department,
    /// `Company` (`-ConditionalCompany`).
    Company,
    /// `Office` (Active Directory's `physicalDeliveryOfficeName`).
    Office,
    /// `City`.
    City,
    /// `StateOrProvince` (`-ConditionalStateOrProvince`).
    StateOrProvince,
    /// `CountryOrRegion`.
    CountryOrRegion,
    /// `Title` (job title).
    Title,
    /// `CustomAttribute1` … `CustomAttribute15`; the number must be in
    /// `1..=15` as in Exchange. Values built through [`Property::parse`] or
    /// [`Property::custom_attribute`] always are; any other number is not a
    /// property Exchange knows, is refused by
    /// [`Comparison::new`](super::filter::Comparison::new) and renders as the
    /// unparseable name `CustomAttribute`.
    CustomAttribute(u8),
    /// `DisplayName`.
    DisplayName,
    /// `Alias` (Exchange's `mailNickname`; every Exchange recipient has one).
    Alias,
    /// `PrimarySmtpAddress`.
    PrimarySmtpAddress,
    /// `RecipientType`, e.g. `UserMailbox`, `MailUser`, `MailContact`,
    /// `MailUniversalDistributionGroup`, `DynamicDistributionGroup`.
    RecipientType,
    /// `RecipientTypeDetails`, e.g. `UserMailbox`, `SharedMailbox`,
    /// `RoomMailbox`, `EquipmentMailbox`.
    RecipientTypeDetails,
    /// `FirstName`.
    FirstName,
    /// `LastName`.
    LastName,
    /// `Name` (the object's common name).
    Name,
    /// `Initials`.
    Initials,
    /// `Manager`.
    Manager,
    /// `PostalCode`.
    PostalCode,
    /// `StreetAddress`.
    StreetAddress,
    /// `Phone` (business telephone).
    Phone,
    /// `MobilePhone`.
    MobilePhone,
    /// `Fax`.
    Fax,
    /// `HomePhone`.
    HomePhone,
    /// `Notes`.
    Notes,
    /// `WindowsEmailAddress`.
    WindowsEmailAddress,
    /// `HiddenFromAddressListsEnabled`: a Boolean property, the usual
    /// target of `$true` / `$false` in Exchange filters. Subjects report it
    /// as `"True"` or `"False"`.
    HiddenFromAddressListsEnabled,
}

const CUSTOM_ATTRIBUTE_NAMES: [&str; 15] = [
    "CustomAttribute1",
    "CustomAttribute2",
    "CustomAttribute3",
    "CustomAttribute4",
    "CustomAttribute5",
    "CustomAttribute6",
    "CustomAttribute7",
    "CustomAttribute8",
    "CustomAttribute9",
    "CustomAttribute10",
    "CustomAttribute11",
    "CustomAttribute12",
    "CustomAttribute13",
    "CustomAttribute14",
    "CustomAttribute15",
];

impl Property {
    /// Every property, in the order error messages list them.
    pub const ALL: [Property; 41] = [
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
        Property::FirstName,
        Property::LastName,
        Property::Name,
        Property::Initials,
        Property::Manager,
        Property::PostalCode,
        Property::StreetAddress,
        Property::Phone,
        Property::MobilePhone,
        Property::Fax,
        Property::HomePhone,
        Property::Notes,
        Property::WindowsEmailAddress,
        Property::HiddenFromAddressListsEnabled,
    ];

    /// `CustomAttribute{n}` for `n` in `1..=15`, the range Exchange has.
    pub fn custom_attribute(n: u8) -> Option<Property> {
        (1..=15)
            .contains(&n)
            .then_some(Property::CustomAttribute(n))
    }

    /// Looks a property up by its Exchange name, ignoring case as Exchange
    /// does. Returns `None` for names hato does not know.
    pub fn parse(name: &str) -> Option<Property> {
        Property::ALL
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The Exchange name, in Exchange's spelling (`StateOrProvince`).
    pub fn name(&self) -> &'static str {
        match *self {
            Property::Department => "Department",
            Property::Company => "Company",
            Property::Office => "Office",
            Property::City => "City",
            Property::StateOrProvince => "StateOrProvince",
            Property::CountryOrRegion => "CountryOrRegion",
            Property::Title => "Title",
            Property::CustomAttribute(n) => usize::from(n)
                .checked_sub(1)
                .and_then(|i| CUSTOM_ATTRIBUTE_NAMES.get(i))
                .copied()
                .unwrap_or("CustomAttribute"),
            Property::DisplayName => "DisplayName",
            Property::Alias => "Alias",
            Property::PrimarySmtpAddress => "PrimarySmtpAddress",
            Property::RecipientType => "RecipientType",
            Property::RecipientTypeDetails => "RecipientTypeDetails",
            Property::FirstName => "FirstName",
            Property::LastName => "LastName",
            Property::Name => "Name",
            Property::Initials => "Initials",
            Property::Manager => "Manager",
            Property::PostalCode => "PostalCode",
            Property::StreetAddress => "StreetAddress",
            Property::Phone => "Phone",
            Property::MobilePhone => "MobilePhone",
            Property::Fax => "Fax",
            Property::HomePhone => "HomePhone",
            Property::Notes => "Notes",
            Property::WindowsEmailAddress => "WindowsEmailAddress",
            Property::HiddenFromAddressListsEnabled => "HiddenFromAddressListsEnabled",
        }
    }

    /// Whether this value names a property Exchange has (only
    /// `CustomAttribute` numbers outside `1..=15` do not).
    pub fn is_valid(&self) -> bool {
        match *self {
            Property::CustomAttribute(n) => (1..=15).contains(&n),
            _ => true,
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Property {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Property {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Property::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown property '{name}'")))
    }
}
