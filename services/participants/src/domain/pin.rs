//! The Swedish personal identity number (personnummer) and coordination number
//! (samordningsnummer).

use chrono::{Datelike, NaiveDate};

/// The longest input looked at; anything longer is refused before it is read.
const MAX_INPUT_CHARS: usize = 13;

/// How far back a date of birth may lie: nobody alive is older.
const MAX_AGE_YEARS: i32 = 150;

/// Why a string is not a personal identity number. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// Not 10 or 12 digits with an optional '-' or '+' before the last four.
    #[error("10 or 12 digits, optionally with '-' or '+' before the last four")]
    Format,
    /// The digits do not name a possible date of birth.
    #[error("not a possible date of birth")]
    Date,
    /// The last digit does not match the others.
    #[error("wrong check digit")]
    CheckDigit,
}

/// A valid personnummer or samordningsnummer, held normalised as 12 digits (YYYYMMDDNNNC).
///
/// `Debug` and `Display` print a mask, never the digits, so the number cannot reach a log by
/// accident; [`PersonalIdentityNumber::as_normalised`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonalIdentityNumber(String);

impl PersonalIdentityNumber {
    /// Parses 10 or 12 digits, with an optional '-' or '+' before the last four.
    ///
    /// In the 10-digit form the century is the one that makes the person younger than 100 on
    /// `today`, or 100 or older with '+'. In the 12-digit form the separator is not used.
    /// A coordination number has 60 added to the day of birth.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, PinError> {
        let input = input.trim();
        if input.len() > MAX_INPUT_CHARS || !input.is_ascii() {
            return Err(PinError::Format);
        }
        let (digits, plus) = match input.len() {
            10 | 12 => (input.to_owned(), false),
            11 | 13 => {
                let split = input.len() - 5;
                let separator = &input[split..=split];
                if separator != "-" && separator != "+" {
                    return Err(PinError::Format);
                }
                (
                    format!("{}{}", &input[..split], &input[split + 1..]),
                    separator == "+",
                )
            }
            _ => return Err(PinError::Format),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinError::Format);
        }
        // All ASCII digits from here on, so byte slicing and arithmetic are safe.
        let number =
            |text: &str| -> u32 { text.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0')) };
        // `ten` is YYMMDDNNNC, the part the check digit covers.
        let ten = &digits[digits.len() - 10..];
        let month = number(&ten[2..4]);
        let raw_day = number(&ten[4..6]);
        let day = if raw_day > 60 { raw_day - 60 } else { raw_day };
        let year = if digits.len() == 12 {
            i32::try_from(number(&digits[..4])).map_err(|_| PinError::Format)?
        } else {
            let yy = i32::try_from(number(&ten[..2])).map_err(|_| PinError::Format)?;
            century_year(yy, month, day, plus, today)
        };
        let birth = NaiveDate::from_ymd_opt(year, month, day).ok_or(PinError::Date)?;
        if birth > today || year < today.year() - MAX_AGE_YEARS {
            return Err(PinError::Date);
        }
        if !luhn_valid(ten) {
            return Err(PinError::CheckDigit);
        }
        Ok(Self(format!("{year:04}{}", &ten[2..])))
    }

    /// The 12 normalised digits, for storage and for the participant's own record.
    pub fn as_normalised(&self) -> &str {
        &self.0
    }

    /// The 10-digit form with its separator as of `today`: '+' from the 100th birthday.
    pub fn to_ten_digit_form(&self, today: NaiveDate) -> String {
        let birth = self.birth_date();
        let hundredth = (birth.year() + 100, birth.month(), birth.day());
        let separator = if hundredth <= (today.year(), today.month(), today.day()) {
            '+'
        } else {
            '-'
        };
        format!("{}{separator}{}", &self.0[2..8], &self.0[8..])
    }

    /// The date of birth (for a coordination number, with the 60 taken off the day).
    pub fn birth_date(&self) -> NaiveDate {
        let digit = |i: usize| u32::from(self.0.as_bytes()[i] - b'0');
        let year = (0..4).fold(0u32, |n, i| n * 10 + digit(i));
        let month = digit(4) * 10 + digit(5);
        let day = (digit(6) * 10 + digit(7)) % 60;
        // Only valid dates are ever stored in `self`.
        i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
            .unwrap_or_default()
    }

    /// Whether this is a coordination number (samordningsnummer).
    pub fn is_coordination_number(&self) -> bool {
        self.0.as_bytes()[6] >= b'6'
    }

    /// Age in whole years on `today`.
    pub fn age_on(&self, today: NaiveDate) -> i32 {
        let birth = self.birth_date();
        let mut age = today.year() - birth.year();
        if (today.month(), today.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        age
    }
}

impl std::fmt::Debug for PersonalIdentityNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalIdentityNumber(********-****)")
    }
}

impl std::fmt::Display for PersonalIdentityNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********-****")
    }
}

/// The full year of a 10-digit number: the latest birth on or before `today` (a year with
/// the same last two digits), a century earlier with '+'.
fn century_year(yy: i32, month: u32, day: u32, plus: bool, today: NaiveDate) -> i32 {
    let mut year = today.year() - (today.year() - yy).rem_euclid(100);
    if (year, month, day) > (today.year(), today.month(), today.day()) {
        year -= 100;
    }
    if plus { year - 100 } else { year }
}

/// The Luhn check over the 10 digits YYMMDDNNNC.
fn luhn_valid(ten: &str) -> bool {
    let digits: Vec<u32> = ten.bytes().map(|b| u32::from(b - b'0')).collect();
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    check_digit(body) == check
}

/// The Luhn check digit of the first nine digits.
pub fn check_digit(nine: &[u32]) -> u32 {
    let sum: u32 = nine
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = if i % 2 == 0 { d * 2 } else { d };
            p / 10 + p % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default()
    }

    #[test]
    fn accepted_forms_normalise_to_twelve_digits() {
        // Skatteverket's own example numbers, and forms of them.
        let cases = [
            ("811218-9876", "198112189876"),
            ("8112189876", "198112189876"),
            ("19811218-9876", "198112189876"),
            ("198112189876", "198112189876"),
            (" 811218-9876 ", "198112189876"),
            // '+' means 100 or older.
            ("121212+1212", "191212121212"),
            ("121212-1212", "201212121212"),
            // Coordination number: day + 60.
            ("701063-2391", "197010632391"),
        ];
        for (input, normalised) in cases {
            let pin = PersonalIdentityNumber::parse(input, today())
                .unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(pin.as_normalised(), normalised, "{input}");
        }
    }

    #[test]
    fn refused_forms_say_why_without_the_digits() {
        let long = "1".repeat(1000);
        let cases = [
            ("811218-9875", PinError::CheckDigit),
            ("811318-9876", PinError::Date),
            ("810230-9876", PinError::Date),
            ("811200-9876", PinError::Date),
            ("701093-2391", PinError::Date),
            ("20991218-9876", PinError::Date),
            ("abcdefghij", PinError::Format),
            ("811218/9876", PinError::Format),
            ("81121-89876", PinError::Format),
            ("", PinError::Format),
            ("8112189876å", PinError::Format),
            (long.as_str(), PinError::Format),
        ];
        for (input, error) in cases {
            assert_eq!(
                PersonalIdentityNumber::parse(input, today()),
                Err(error),
                "{input}"
            );
        }
    }

    #[test]
    fn century_turns_on_the_birthday() {
        let before = NaiveDate::from_ymd_opt(2026, 12, 17).unwrap_or_default();
        let on = NaiveDate::from_ymd_opt(2026, 12, 18).unwrap_or_default();
        let pin = |s: &str, d| PersonalIdentityNumber::parse(s, d).map(|p| p.birth_date().year());
        // 1926-12-18 is 99 the day before and 100 on the day.
        assert_eq!(pin("261218-9874", before), Ok(1926));
        assert_eq!(pin("261218-9874", on), Ok(2026));
        assert_eq!(pin("261218+9874", on), Ok(1926));
        let p =
            PersonalIdentityNumber::parse("19261218-9874", on).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_ten_digit_form(before), "261218-9874");
        assert_eq!(p.to_ten_digit_form(on), "261218+9874");
    }

    #[test]
    fn debug_and_display_hide_the_digits() {
        let pin =
            PersonalIdentityNumber::parse("811218-9876", today()).unwrap_or_else(|e| panic!("{e}"));
        for shown in [
            format!("{pin}"),
            format!("{pin:?}"),
            format!("{:?}", Some(&pin)),
        ] {
            assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
        }
        assert!(!pin.is_coordination_number());
        assert_eq!(pin.age_on(today()), 44);
    }
}
