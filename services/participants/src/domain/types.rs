//! Small domain newtypes: each holds only valid values.

/// Longest free text accepted (reasons, notes).
pub const MAX_TEXT_CHARS: usize = 2000;

/// Longest name accepted.
pub const MAX_NAME_CHARS: usize = 200;

pub use samsyn_proto::ids::{
    ConsentId as ConsentReference, IdError, OrganisationId, ParticipantId, StaffId, UnitId,
};

samsyn_proto::uuid_id!(
    /// The id of an assignment row (coordinator, care-team member, fixed care contact).
    AssignmentId
);

/// A person's name: 1–200 characters, no control characters, surrounding space trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a name.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim();
        if value.is_empty() {
            return Err("required");
        }
        if value.chars().count() > MAX_NAME_CHARS || value.chars().any(char::is_control) {
            return Err("at most 200 characters, no control characters");
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonName(..)")
    }
}

/// Free text (reasons, notes): at most 2000 characters, may be empty.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FreeText(String);

impl FreeText {
    /// Parses optional text; control characters other than line breaks and tabs are refused.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        if value.chars().count() > MAX_TEXT_CHARS
            || value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("at most 2000 characters, no control characters");
        }
        Ok(Self(value.to_owned()))
    }

    /// Parses text that must not be blank.
    pub fn parse_required(value: &str) -> Result<Self, &'static str> {
        if value.trim().is_empty() {
            return Err("required");
        }
        Self::parse(value)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is blank.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for FreeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FreeText({} chars)", self.0.chars().count())
    }
}

/// A Swedish municipality code: four digits (1283 is Helsingborg).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct MunicipalityCode(String);

impl From<MunicipalityCode> for String {
    fn from(code: MunicipalityCode) -> Self {
        code.0
    }
}

impl MunicipalityCode {
    /// Parses four ASCII digits.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        if value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err("four digits")
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MunicipalityCode {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

/// A member of staff acting for an organisation (and optionally a unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// The staff member's id.
    pub staff_id: StaffId,
    /// The organisation they act for.
    pub organisation_id: OrganisationId,
    /// Their unit, when given.
    pub unit_id: Option<UnitId>,
}

/// A principal (huvudman) that takes part in referral, review and coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The region: health care.
    Region,
    /// The municipality: social services.
    Municipality,
}

impl Principal {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Region => "region",
            Self::Municipality => "municipality",
        }
    }

    /// The principal of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "region" => Some(Self::Region),
            "municipality" => Some(Self::Municipality),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_and_swedish_letters() {
        assert_eq!(
            PersonName::parse("  Åsa Öberg-Ängström ").map(|n| n.as_str().to_owned()),
            Ok("Åsa Öberg-Ängström".to_owned())
        );
        assert!(PersonName::parse(" ").is_err());
        assert!(PersonName::parse(&"å".repeat(201)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert!(FreeText::parse(&"ö".repeat(2000)).is_ok());
        assert!(FreeText::parse(&"ö".repeat(2001)).is_err());
        assert!(FreeText::parse_required("\n").is_err());
        assert!(MunicipalityCode::parse("1283").is_ok());
        for bad in ["128", "12834", "12a3", "١٢٨٣"] {
            assert!(MunicipalityCode::parse(bad).is_err(), "{bad}");
        }
        assert!(StaffId::parse("SE2321000016-F123").is_ok());
        for bad in ["", "a b", "å", &"x".repeat(65)] {
            assert!(StaffId::parse(bad).is_err(), "{bad}");
        }
        assert!(ConsentReference::parse("not-a-uuid").is_err());
        assert!(ConsentReference::parse("0190f3b4-7c1e-7d4a-9a51-3f2e9c0b1a22").is_ok());
        assert!(ConsentReference::parse("0190f3b47c1e7d4a9a513f2e9c0b1a22").is_err());
    }
}
