//! Conversions between protobuf time types and chrono, and the one range check of times
//! and dates that arrive in requests.
//!
//! chrono holds years far beyond protobuf's 0001–9999: without the check a consent valid
//! until year 10000 would be stored, and would permit forever.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use samsyn_proto::common::v1::CalendarDate;

/// 0001-01-01T00:00:00Z, the earliest instant a `google.protobuf.Timestamp` may hold.
const MIN_SECONDS: i64 = -62_135_596_800;

/// 9999-12-31T23:59:59Z, the last whole second a `google.protobuf.Timestamp` may hold.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Why a protobuf time or date is refused; the description of a field violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Outside protobuf's timestamp range, or nanos outside `0..1_000_000_000`.
    #[error("not a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z")]
    OutOfRange,
    /// An impossible date (2027-02-29), or a year outside 1 to 9999.
    #[error("not a date between 0001-01-01 and 9999-12-31")]
    NotADate,
}

/// A protobuf timestamp of a UTC time.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// The UTC time of a protobuf timestamp within 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z.
pub fn parse_timestamp(timestamp: &prost_types::Timestamp) -> Result<DateTime<Utc>, TimeError> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds) {
        return Err(TimeError::OutOfRange);
    }
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or(TimeError::OutOfRange)?;
    DateTime::from_timestamp(timestamp.seconds, nanos).ok_or(TimeError::OutOfRange)
}

/// The UTC time of a protobuf timestamp; `None` when it is out of range (see
/// [`parse_timestamp`]).
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    parse_timestamp(timestamp).ok()
}

/// The protobuf form of a calendar date.
pub fn to_calendar_date(date: NaiveDate) -> CalendarDate {
    CalendarDate {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    }
}

/// The calendar date of its protobuf form, in the years 1 to 9999.
pub fn parse_calendar_date(date: &CalendarDate) -> Result<NaiveDate, TimeError> {
    if !(1..=9999).contains(&date.year) {
        return Err(TimeError::NotADate);
    }
    NaiveDate::from_ymd_opt(date.year, date.month, date.day).ok_or(TimeError::NotADate)
}

/// The calendar date of its protobuf form; `None` for an impossible date or a year outside
/// 1 to 9999.
pub fn from_calendar_date(date: &CalendarDate) -> Option<NaiveDate> {
    parse_calendar_date(date).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let time = DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(time)), Some(time));
    }

    #[test]
    fn negative_nanos_are_out_of_range() {
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }

    fn at(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    fn new_year(year: i32) -> i64 {
        crate::testing::new_year(year).seconds
    }

    #[test]
    fn timestamps_are_bounded_by_protobufs_range() {
        let first = new_year(1);
        let last = new_year(10_000) - 1;
        assert_eq!((first, last), (MIN_SECONDS, MAX_SECONDS));
        for inside in [at(first, 0), at(last, 999_999_999), at(0, 0)] {
            assert!(parse_timestamp(&inside).is_ok(), "{inside:?}");
        }
        for outside in [
            at(first - 1, 999_999_999),
            at(last + 1, 0),
            at(new_year(10_000), 0),
            at(new_year(-1200), 0),
            at(i64::MAX, 0),
            at(i64::MIN, 0),
            at(0, 1_000_000_000),
            at(0, -1),
        ] {
            assert_eq!(
                parse_timestamp(&outside),
                Err(TimeError::OutOfRange),
                "{outside:?}"
            );
            assert_eq!(from_timestamp(&outside), None);
        }
    }

    #[test]
    fn calendar_years_are_bounded_by_1_and_9999() {
        let date = |year| CalendarDate {
            year,
            month: 1,
            day: 1,
        };
        for year in [1, 2026, 9999] {
            assert!(parse_calendar_date(&date(year)).is_ok(), "{year}");
        }
        for year in [0, -1200, 10_000, i32::MAX, i32::MIN] {
            assert_eq!(
                parse_calendar_date(&date(year)),
                Err(TimeError::NotADate),
                "{year}"
            );
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        let leap = CalendarDate {
            year: 2028,
            month: 2,
            day: 29,
        };
        assert_eq!(from_calendar_date(&leap).map(to_calendar_date), Some(leap));
        let impossible = CalendarDate {
            year: 2027,
            month: 2,
            day: 29,
        };
        assert_eq!(from_calendar_date(&impossible), None);
    }
}
