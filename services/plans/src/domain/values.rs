//! Small value types that can only hold valid values: ids, bounded texts, days. The ids
//! shared with other services are `samsyn_proto::ids`'s.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Why a value was refused; the text is shown to callers next to the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Required but empty (or only whitespace).
    #[error("required")]
    Empty,
    /// Longer than allowed.
    #[error("at most {0} characters")]
    TooLong(usize),
    /// Holds control characters other than line breaks and tabs.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Not an id of the allowed characters.
    #[error("1 to {0} characters of A-Z, a-z, 0-9, '-', '_', '.', ':'")]
    BadId(usize),
    /// Not a catalogue code.
    #[error("1 to 64 characters of a-z, 0-9, '_', '.'")]
    BadCode,
    /// Not a possible day, or outside 1900–2200.
    #[error("must be a real date between 1900 and 2200")]
    BadDate,
}

pub use samsyn_proto::ids::{IdError, OrganisationId, ParticipantId, StaffId};

samsyn_proto::uuid_id!(
    /// A plan's id.
    PlanId
);
samsyn_proto::uuid_id!(
    /// The id of an item inside a plan: goal, need, intervention, action, follow-up, meeting.
    ItemId
);

macro_rules! code_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted.
            pub const MAX: usize = $max;

            /// Parses an id: 1–MAX characters of letters, digits and `-_.:`.
            pub fn parse(value: &str) -> Result<Self, ValueError> {
                if value.is_empty() {
                    return Err(ValueError::Empty);
                }
                let ok = value.len() <= Self::MAX
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
                if ok { Ok(Self(value.to_owned())) } else { Err(ValueError::BadId(Self::MAX)) }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

code_id!(
    /// A team's id.
    TeamId,
    64
);
code_id!(
    /// A deciding system's own decision id.
    ExternalDecisionId,
    128
);

/// A catalogue entry's stable code, such as `municipality.housing_support`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CatalogueCode(String);

impl CatalogueCode {
    /// Parses a code: 1–64 characters of `a-z`, `0-9`, `_`, `.`.
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValueError::BadCode)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text as the user wrote it (never trimmed or rewritten), bounded in length, without
/// control characters other than line breaks and tabs. May be empty unless parsed as required.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Short texts: names, actors, contacts, relatives.
    pub const SHORT: usize = 200;
    /// Ordinary texts: goals, need and intervention descriptions, decisions.
    pub const MEDIUM: usize = 2_000;
    /// Long texts: strengths and resources, evaluation comments.
    pub const LONG: usize = 8_000;

    /// Text of at most `max` characters, possibly empty.
    pub fn optional(value: &str, max: usize) -> Result<Self, ValueError> {
        // Checking bytes first keeps a megabyte of input from being walked char by char.
        if value.len() > max.saturating_mul(4) || value.chars().count() > max {
            return Err(ValueError::TooLong(max));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValueError::ControlCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// Text of 1 to `max` characters that is not only whitespace.
    pub fn required(value: &str, max: usize) -> Result<Self, ValueError> {
        if value.trim().is_empty() {
            return Err(ValueError::Empty);
        }
        Self::optional(value, max)
    }

    /// The text exactly as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A calendar day between 1900 and 2200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(NaiveDate);

impl Day {
    /// The day of year/month/day, if it exists and lies in range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Self, ValueError> {
        if !(1900..=2200).contains(&year) {
            return Err(ValueError::BadDate);
        }
        NaiveDate::from_ymd_opt(year, month, day)
            .map(Self)
            .ok_or(ValueError::BadDate)
    }

    /// The day of a date, if it lies in range.
    pub fn from_date(date: NaiveDate) -> Result<Self, ValueError> {
        Self::from_ymd(date.year(), date.month(), date.day())
    }

    /// The wrapped date.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The day `days` later.
    pub fn plus_days(self, days: u32) -> Self {
        Self(
            self.0
                .checked_add_days(chrono::Days::new(u64::from(days)))
                .unwrap_or(self.0),
        )
    }

    /// `YYYY-MM-DD`, which sorts like the days themselves.
    pub fn iso(self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }

    /// Parses the `iso` form.
    pub fn parse_iso(value: &str) -> Result<Self, ValueError> {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|_| ValueError::BadDate)
            .and_then(Self::from_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_keep_swedish_exactly_and_refuse_what_they_must() {
        let cases: [(&str, usize, bool, Result<(), ValueError>); 8] = [
            ("Få en egen lägenhet i Malmö", 100, true, Ok(())),
            ("  Åka till sjön \n med min bror  ", 100, true, Ok(())),
            ("", 100, true, Err(ValueError::Empty)),
            ("   \n", 100, true, Err(ValueError::Empty)),
            ("", 100, false, Ok(())),
            ("åäö", 2, false, Err(ValueError::TooLong(2))),
            ("åä", 2, false, Ok(())),
            ("a\u{0}b", 10, false, Err(ValueError::ControlCharacter)),
        ];
        for (input, max, required, expected) in cases {
            let parsed = if required {
                Text::required(input, max)
            } else {
                Text::optional(input, max)
            };
            assert_eq!(parsed.clone().map(|_| ()), expected, "{input:?}");
            if let Ok(text) = parsed {
                assert_eq!(text.as_str(), input);
            }
        }
    }

    #[test]
    fn a_megabyte_is_refused_without_walking_it() {
        let huge = "ö".repeat(500_000);
        assert_eq!(
            Text::optional(&huge, Text::LONG),
            Err(ValueError::TooLong(Text::LONG))
        );
    }

    #[test]
    fn ids_and_days() {
        assert!(ParticipantId::parse("3f2b8c3e-8a5e-4c1e-9d7a-1b2c3d4e5f60").is_ok());
        assert_eq!(ParticipantId::parse("197001011234"), Err(IdError::NotUuid));
        assert_eq!(ParticipantId::parse(""), Err(IdError::Missing));
        assert!(OrganisationId::parse("SE2321000016-1003").is_ok());
        assert_eq!(OrganisationId::parse("Malmö"), Err(IdError::NotCode));
        assert!(CatalogueCode::parse("municipality.housing_support").is_ok());
        assert_eq!(CatalogueCode::parse("Boendestöd"), Err(ValueError::BadCode));
        assert_eq!(Day::from_ymd(2027, 2, 29), Err(ValueError::BadDate));
        assert_eq!(Day::from_ymd(1850, 1, 1), Err(ValueError::BadDate));
        let day = Day::from_ymd(2026, 12, 30).unwrap();
        assert_eq!(day.iso(), "2026-12-30");
        assert_eq!(Day::parse_iso("2026-12-30"), Ok(day));
        assert_eq!(day.plus_days(3).iso(), "2027-01-02");
    }
}
