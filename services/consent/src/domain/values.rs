//! Newtypes that can only hold valid values: ids, codes, bounded text, periods, categories.

use chrono::{DateTime, Utc};
use samsyn_consent_rule::{Categories, Category};
use serde::{Deserialize, Serialize};

/// Why a value was refused; the api names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Text that is empty or too long.
    #[error("must be 1 to {max} characters")]
    BadText {
        /// The longest allowed.
        max: usize,
    },
    /// A period that ends before (or when) it starts.
    #[error("must be after the start")]
    EndsBeforeStart,
    /// A temporary lift longer than allowed.
    #[error("must be at most 7 days after the start")]
    LiftTooLong,
    /// An empty set of categories.
    #[error("must name at least one category")]
    NoCategories,
    /// A category that is unspecified or holds no participant data.
    #[error("must be a category of participant data")]
    UnknownCategory,
}

pub use samsyn_proto::ids::{
    ConsentId, IdError, OrganisationId as OrgId, ParticipantId, RestrictionId, StaffId, UnitId,
};

samsyn_proto::uuid_id!(
    /// A temporary lift's id.
    LiftId
);

/// A research study's id ("fact-rct-2025"), as the reports part's configuration names it:
/// written like an organisation id.
pub type StudyId = samsyn_proto::ids::OrganisationId;

/// Free text of 1 to `MAX` characters (not bytes); Swedish text is kept exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Parses text that must be present.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let chars = value.chars().count();
        if value.trim().is_empty() || chars > MAX {
            return Err(ValueError::BadText { max: MAX });
        }
        Ok(Self(value.to_owned()))
    }

    /// Parses optional text: empty means none.
    pub fn parse_optional(value: &str) -> Result<Option<Self>, ValueError> {
        if value.is_empty() {
            Ok(None)
        } else {
            Self::parse(value).map(Some)
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(&value)
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(value: Text<MAX>) -> String {
        value.0
    }
}

/// A free-text note; personal data, never logged.
pub type Note = Text<2000>;
/// Why something was ended or voided; never logged.
pub type Reason = Text<500>;
/// A representative's name; personal data, never logged.
pub type PersonName = Text<200>;

/// A non-empty set of categories of participant data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct CategorySet(Categories);

impl CategorySet {
    /// A set that holds at least one category.
    pub fn new(categories: impl IntoIterator<Item = Category>) -> Result<Self, ValueError> {
        let set: Categories = categories.into_iter().collect();
        if set.is_empty() {
            return Err(ValueError::NoCategories);
        }
        Ok(Self(set))
    }

    /// The rule's form of the set.
    pub fn categories(self) -> Categories {
        self.0
    }

    /// Whether every category of `other` is in this set.
    pub fn contains_all(self, other: CategorySet) -> bool {
        self.0.contains_all(other.0)
    }
}

impl TryFrom<Vec<String>> for CategorySet {
    type Error = ValueError;
    fn try_from(codes: Vec<String>) -> Result<Self, ValueError> {
        let categories = codes
            .iter()
            .map(|code| Category::from_code(code).ok_or(ValueError::UnknownCategory))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(categories)
    }
}

impl From<CategorySet> for Vec<String> {
    fn from(set: CategorySet) -> Self {
        set.0.iter().map(|c| c.code().to_owned()).collect()
    }
}

/// When a consent or restriction counts: from a moment, until a later one or open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl Validity {
    /// A period whose end, if any, is after its start.
    pub fn new(from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<Self, ValueError> {
        if until.is_some_and(|until| until <= from) {
            return Err(ValueError::EndsBeforeStart);
        }
        Ok(Self { from, until })
    }

    /// The start.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// The end; `None` is open-ended.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }
}

/// The period of a temporary lift: after its start, and at most 7 days long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiftPeriod {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl LiftPeriod {
    /// A lift period of at most [`samsyn_consent_rule::MAX_LIFT`].
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, ValueError> {
        if end <= start {
            return Err(ValueError::EndsBeforeStart);
        }
        if end.signed_duration_since(start) > samsyn_consent_rule::MAX_LIFT {
            return Err(ValueError::LiftTooLong);
        }
        Ok(Self { start, end })
    }

    /// The start.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The end.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::Duration;

    #[test]
    fn ids_and_codes() {
        assert!(ParticipantId::parse("0198c0de-0000-7000-8000-000000000001").is_ok());
        assert_eq!(ParticipantId::parse("19121212-1212"), Err(IdError::NotUuid));
        assert_eq!(
            ParticipantId::parse("0198c0de00007000800000000000000001"),
            Err(IdError::NotUuid)
        );
        assert!(OrgId::parse("SE2321000016-F00D").is_ok());
        assert!(OrgId::parse("").is_err());
        assert!(OrgId::parse("a b").is_err());
        assert!(OrgId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn text_counts_characters_and_keeps_swedish() {
        let note = Note::parse("Samtycke lämnat muntligt på mottagningen i Höör").unwrap();
        assert_eq!(
            note.as_str(),
            "Samtycke lämnat muntligt på mottagningen i Höör"
        );
        assert!(PersonName::parse(&"å".repeat(200)).is_ok());
        assert!(PersonName::parse(&"å".repeat(201)).is_err());
        assert!(Note::parse("   ").is_err());
    }

    #[test]
    fn periods() {
        let t = DateTime::from_timestamp(1_780_308_000, 0).unwrap();
        assert!(Validity::new(t, None).is_ok());
        assert_eq!(Validity::new(t, Some(t)), Err(ValueError::EndsBeforeStart));
        assert!(LiftPeriod::new(t, t + Duration::days(7)).is_ok());
        assert_eq!(
            LiftPeriod::new(t, t + Duration::days(7) + Duration::seconds(1)),
            Err(ValueError::LiftTooLong)
        );
    }
}
