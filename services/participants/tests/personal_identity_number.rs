//! Properties of the personal identity number: every valid number round-trips through
//! parse/format, and changing any one digit the check digit covers is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Datelike, Days, NaiveDate};
use proptest::prelude::*;
use samsyn_participants::domain::PersonalIdentityNumber;
use samsyn_participants::domain::pin::check_digit;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// A valid number as 12 digits: birth `days_ago` days before today, a coordination number
/// when `coordination`, any serial.
fn valid(days_ago: u64, coordination: bool, serial: u32) -> String {
    let birth = today().checked_sub_days(Days::new(days_ago)).unwrap();
    let day = birth.day() + if coordination { 60 } else { 0 };
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.year() % 100,
        birth.month(),
        day,
        serial
    );
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!("{:02}{nine}{}", birth.year() / 100, check_digit(&digits))
}

fn with_digit(s: &str, index: usize, digit: u8) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[index] = b'0' + digit;
    String::from_utf8(bytes).unwrap()
}

proptest! {
    #[test]
    fn valid_numbers_round_trip(days in 0u64..(120 * 365), coordination: bool, serial in 0u32..1000) {
        let twelve = valid(days, coordination, serial);
        let pin = PersonalIdentityNumber::parse(&twelve, today()).unwrap();
        prop_assert_eq!(pin.as_normalised(), twelve.as_str());
        prop_assert_eq!(pin.is_coordination_number(), coordination);
        // The 10-digit form with its separator, and the 12-digit form with a hyphen, parse
        // back to the same number.
        let ten = pin.to_ten_digit_form(today());
        prop_assert_eq!(PersonalIdentityNumber::parse(&ten, today()).unwrap(), pin.clone());
        let hyphenated = format!("{}-{}", &twelve[..8], &twelve[8..]);
        prop_assert_eq!(PersonalIdentityNumber::parse(&hyphenated, today()).unwrap(), pin.clone());
        // Without a separator a 10-digit number means "younger than 100".
        if !ten.contains('+') {
            let bare = ten.replace('-', "");
            prop_assert_eq!(PersonalIdentityNumber::parse(&bare, today()).unwrap(), pin);
        }
    }

    #[test]
    fn changing_any_covered_digit_is_refused(
        days in 0u64..(120 * 365),
        coordination: bool,
        serial in 0u32..1000,
        index in 2usize..12,
        delta in 1u8..10,
    ) {
        // The check digit covers YYMMDDNNNC (positions 2..12 of the 12-digit form). The
        // century digits are not covered; in the 10-digit form the separator stands for them.
        let twelve = valid(days, coordination, serial);
        let old = twelve.as_bytes()[index] - b'0';
        let changed = with_digit(&twelve, index, (old + delta) % 10);
        prop_assert!(PersonalIdentityNumber::parse(&changed, today()).is_err(), "{}", changed);
        let ten = PersonalIdentityNumber::parse(&twelve, today()).unwrap().to_ten_digit_form(today());
        // The same digit in the 10-digit form (which has the separator at index 6).
        let at = if index - 2 < 6 { index - 2 } else { index - 1 };
        let changed_ten = with_digit(&ten, at, (old + delta) % 10);
        prop_assert!(PersonalIdentityNumber::parse(&changed_ten, today()).is_err(), "{}", changed_ten);
    }
}
