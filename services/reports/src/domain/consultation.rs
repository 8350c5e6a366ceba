//! The consultation group: difficult cases brought by any programme organisation, recorded
//! without identity (an age band, a municipality, the needs, a question screened for personal
//! identity numbers), discussed every 14 days, with the advice given.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The longest question, in characters.
pub const MAX_QUESTION: usize = 2000;

/// Days between the group's meetings.
pub const MEETING_INTERVAL_DAYS: u64 = 14;

/// A case as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFact {
    /// The organisation that brought it.
    pub organisation: String,
    /// Who brought it (staff id).
    pub submitted_by: String,
    /// The age band's code ("25-34").
    pub age_band: String,
    /// The municipality code.
    pub municipality: String,
    /// Life-area codes of the needs.
    pub needs: Vec<String>,
    /// The question, screened.
    pub question: String,
    /// The participant it concerns, when the submitter linked one.
    pub participant_id: Option<String>,
    /// When.
    pub submitted_at: DateTime<Utc>,
}

/// Advice on one case at one meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaItem {
    /// The case.
    pub case_id: String,
    /// The advice given (screened like a question).
    pub advice: String,
}

/// A meeting of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingFact {
    /// The day.
    pub held_on: NaiveDate,
    /// The cases discussed and the advice.
    pub agenda: Vec<AgendaItem>,
}

/// Screens free text: `Err` when it holds something that reads as a Swedish personal identity
/// or coordination number (YYMMDD-NNNC, YYYYMMDDNNNC, with or without a separator, with a
/// valid check digit and a plausible date).
pub fn screen(text: &str) -> Result<(), &'static str> {
    if text.chars().count() > MAX_QUESTION {
        return Err("at most 2000 characters");
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // A token of digits with at most one separator ('-', '+' or a space).
        let mut digits = String::new();
        let mut separators = 0;
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c);
            } else if matches!(c, '-' | '+' | ' ')
                && separators == 0
                && chars.get(j + 1).is_some_and(char::is_ascii_digit)
                && matches!(digits.len(), 6 | 8)
            {
                separators += 1;
            } else {
                break;
            }
            j += 1;
        }
        if looks_like_pin(&digits) {
            return Err("must not contain a personal identity number");
        }
        i = j.max(i + 1);
    }
    Ok(())
}

fn looks_like_pin(digits: &str) -> bool {
    let ten = match digits.len() {
        10 => digits,
        12 => &digits[2..],
        _ => return false,
    };
    let d: Vec<u32> = ten.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 10 {
        return false;
    }
    let month = d[2] * 10 + d[3];
    let day = d[4] * 10 + d[5];
    // Coordination numbers add 60 to the day.
    let day = if day > 60 { day - 60 } else { day };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let p = if i % 2 == 0 { x * 2 } else { x };
            p / 10 + p % 10
        })
        .sum();
    (10 - sum % 10) % 10 == d[9]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_identity_numbers_are_found_in_any_spelling() {
        // 19811218-9876 has a valid check digit (the Swedish Tax Agency's example pattern).
        for text in [
            "Gäller 811218-9876 som bor i Höganäs",
            "pnr 8112189876.",
            "född 19811218-9876",
            "198112189876",
            "811218 9876",
            "samordningsnummer 811278-9873",
        ] {
            assert!(screen(text).is_err(), "{text}");
        }
    }

    #[test]
    fn ordinary_numbers_pass() {
        for text in [
            "Har haft 3 inläggningar 2024 och 12 kontakter",
            "Telefon 042-10 50 00",
            "811218-9875 har fel kontrollsiffra",
            "Ärende 2025-0417",
        ] {
            assert_eq!(screen(text), Ok(()), "{text}");
        }
    }
}
