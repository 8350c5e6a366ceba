//! Newtypes that can only hold valid values.

use serde::{Deserialize, Serialize};

/// Why a value was refused; the adapter adds the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<IdError> for Invalid {
    fn from(error: IdError) -> Self {
        Self(error.to_string())
    }
}

impl Invalid {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

pub use samsyn_proto::ids::{IdError, OrganisationId, ParticipantId, StaffId, UnitId};

samsyn_proto::uuid_id!(
    /// A team's id.
    TeamId
);
samsyn_proto::uuid_id!(
    /// A board entry's id.
    EntryId
);
samsyn_proto::uuid_id!(
    /// An agreed action's id.
    ActionId
);
samsyn_proto::uuid_id!(
    /// A meeting's id.
    MeetingId
);
samsyn_proto::uuid_id!(
    /// A discussion's id (one participant's part of a meeting's minutes).
    DiscussionId
);

/// Text of `MIN..=MAX` characters, trimmed of nothing: what the caller wrote is kept exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    /// Parses text with a length bound in characters and no control characters but newline/tab.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if MIN > 0 && value.trim().is_empty() {
            return Err(Invalid::new("required"));
        }
        let chars = value.chars().count();
        if chars > MAX {
            return Err(Invalid::new(format!("at most {MAX} characters")));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(Invalid::new("contains control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps text read back from storage, where it was validated on the way in.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
}

/// A team's name.
pub type TeamName = Text<1, 200>;
/// Why a participant is on, or comes off, the board.
pub type Reason = Text<1, 2000>;
/// An optional note on a status assessment.
pub type StatusNote = Text<0, 2000>;
/// What an agreed action is.
pub type ActionDescription = Text<1, 1000>;
/// One decision of a meeting.
pub type Decision = Text<1, 1000>;
/// Minutes about one participant.
pub type MinutesNotes = Text<0, 8000>;
/// A criterion's label as staff read it.
pub type CriterionLabel = Text<1, 200>;
/// What a status level means.
pub type LevelMeaning = Text<1, 200>;

/// A member of staff acting for an organisation (and optionally a unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    /// HSA-style staff id.
    pub staff_id: StaffId,
    /// The organisation they act for.
    pub organisation_id: OrganisationId,
    /// Their unit; may be empty.
    pub unit_id: String,
}

/// Which part of a staff reference was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffInvalid {
    /// `staff_id`, `organisation_id.value` or `unit_id`.
    pub field: &'static str,
    /// Why.
    pub reason: Invalid,
}

impl Staff {
    /// Parses the three parts of a staff reference.
    pub fn parse(
        staff_id: &str,
        organisation_id: &str,
        unit_id: &str,
    ) -> Result<Self, StaffInvalid> {
        let invalid = |field| {
            move |reason: IdError| StaffInvalid {
                field,
                reason: reason.into(),
            }
        };
        let staff_id = StaffId::parse(staff_id).map_err(invalid("staff_id"))?;
        let organisation_id =
            OrganisationId::parse(organisation_id).map_err(invalid("organisation_id.value"))?;
        UnitId::parse_optional(unit_id).map_err(invalid("unit_id"))?;
        Ok(Self {
            staff_id,
            organisation_id,
            unit_id: unit_id.to_owned(),
        })
    }
}

/// A criterion's stable code: 1–40 of lowercase ASCII letters, digits and '_'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CriterionCode(String);

impl CriterionCode {
    /// Parses a code.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("required"));
        }
        if value.len() > 40
            || !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Invalid::new(
                "1 to 40 lowercase ASCII letters, digits or '_'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A code from this crate's own constants (the defaults, checked by a test).
    pub(crate) fn trusted(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A colour for the screen: a CSS colour name or `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Colour(String);

impl Colour {
    /// Parses `#rrggbb` or 1–32 ASCII letters.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let hex = value.len() == 7
            && value.starts_with('#')
            && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
        let name = !value.is_empty()
            && value.len() <= 32
            && value.bytes().all(|b| b.is_ascii_alphabetic());
        if hex || name {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new("a colour name or #rrggbb"))
        }
    }

    /// The colour as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A colour from this crate's own constants (the defaults, checked by a test).
    pub(crate) fn trusted(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// How the participant's status is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trend {
    /// Getting worse.
    Worsening,
    /// No clear change.
    Unchanged,
    /// Getting better.
    Improving,
}

impl Trend {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worsening => "worsening",
            Self::Unchanged => "unchanged",
            Self::Improving => "improving",
        }
    }

    /// The trend of a stored name; unknown names read as unchanged.
    pub fn from_stored(value: &str) -> Self {
        match value {
            "worsening" => Self::Worsening,
            "improving" => Self::Improving,
            _ => Self::Unchanged,
        }
    }
}

/// A status assessment whose level is not yet checked against a team's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Level on the team's scale (1 = most acute).
    pub level: u32,
    /// The trend.
    pub trend: Trend,
    /// An optional note.
    pub note: StatusNote,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bounds_and_swedish() {
        type T = Text<1, 5>;
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("   ", false),
            ("åäö", true),
            ("ÅÄÖåä", true),
            ("sexxxx", false),
            ("a\u{0}", false),
            ("a\nb", true),
        ];
        for (input, ok) in cases {
            assert_eq!(T::parse(input).is_ok(), *ok, "{input:?}");
        }
        assert_eq!(T::parse("åäö").unwrap().as_str(), "åäö");
        assert!(Text::<0, 3>::parse("").is_ok());
    }

    #[test]
    fn ids_colours_codes() {
        assert!(TeamId::parse("").is_err());
        assert!(TeamId::parse("not-a-uuid").is_err());
        let id = TeamId::generate();
        assert_eq!(TeamId::parse(&id.to_string()), Ok(id));
        for (colour, ok) in [
            ("red", true),
            ("#00ff7F", true),
            ("#0f0", false),
            ("röd", false),
            ("", false),
        ] {
            assert_eq!(Colour::parse(colour).is_ok(), ok, "{colour}");
        }
        for (code, ok) in [
            ("crisis", true),
            ("relapse_risk2", true),
            ("Crisis", false),
            ("kris-x", false),
            ("", false),
        ] {
            assert_eq!(CriterionCode::parse(code).is_ok(), ok, "{code}");
        }
        assert!(OrganisationId::parse("1280").unwrap().is_municipality());
        assert!(
            !OrganisationId::parse("SE2321000081-1")
                .unwrap()
                .is_municipality()
        );
        assert!(OrganisationId::parse("a b").is_err());
    }

    #[test]
    fn staff_names_the_wrong_part() {
        assert_eq!(Staff::parse("", "1280", "").unwrap_err().field, "staff_id");
        assert_eq!(
            Staff::parse("SE1-s1", "", "").unwrap_err().field,
            "organisation_id.value"
        );
        assert!(Staff::parse("SE1-s1", "1280", "").is_ok());
    }
}
