//! Conversions between protobuf time types and chrono.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use samsyn_proto::common::v1::CalendarDate;

/// A protobuf timestamp of a UTC time.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// The UTC time of a protobuf timestamp; `None` when it is out of range.
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// The protobuf form of a calendar date.
pub fn to_calendar_date(date: NaiveDate) -> CalendarDate {
    CalendarDate {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    }
}

/// The calendar date of its protobuf form; `None` for an impossible date.
pub fn from_calendar_date(date: &CalendarDate) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(date.year, date.month, date.day)
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
