//! The pseudonymised research export: one row per participant with an active research-study
//! consent, named by a keyed hash (HMAC-SHA-256 under the study's key, which the data owner
//! keeps and the export never holds), with the participant's randomisation arm, dates
//! coarsened to the study's precision, counts only, no free text.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::facts::{ExitReason, Facts, Stage};

/// How precisely dates are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    /// "2025-06".
    #[default]
    Month,
    /// "2025-Q2".
    Quarter,
    /// "2025".
    Year,
}

impl DatePrecision {
    /// `day` at this precision.
    pub fn coarsen(self, day: NaiveDate) -> String {
        match self {
            Self::Month => format!("{}-{:02}", day.year(), day.month()),
            Self::Quarter => format!("{}-Q{}", day.year(), day.month0() / 3 + 1),
            Self::Year => day.year().to_string(),
        }
    }
}

/// A study the data may be exported for.
#[derive(Clone, PartialEq, Eq)]
pub struct Study {
    /// The study's id ("fact-rct-2025").
    pub id: String,
    /// The pseudonymisation key (at least 32 bytes), kept by the data owner.
    pub key: Vec<u8>,
    /// How precisely dates are exported.
    pub date_precision: DatePrecision,
    /// The arms participants are allocated to, with equal probability.
    pub arms: Vec<String>,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Study")
            .field("id", &self.id)
            .field("date_precision", &self.date_precision)
            .field("arms", &self.arms)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// The participant's pseudonym in this study: stable for one key, unrelated across keys.
    pub fn pseudonym(&self, participant_id: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let tag = hmac::sign(&key, participant_id.as_bytes());
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// How arms are allocated: stated in every export and recorded with each allocation.
pub const ALLOCATION_METHOD: &str = "simple randomisation, equal probability per arm, drawn from the operating system's random source when the participant first appears in an export, recorded and never redrawn";

/// One participant's recorded allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The arm.
    pub arm: String,
    /// The method.
    pub method: String,
    /// When it was drawn.
    pub allocated_at: DateTime<Utc>,
}

/// The export's columns and what each holds: the data dictionary.
pub const DICTIONARY: [(&str, &str, &str); 14] = [
    (
        "pseudonym",
        "text",
        "HMAC-SHA-256 of the participant's internal id under the study's key, first 16 bytes in hex; stable within the study, unrelated across studies",
    ),
    ("arm", "text", "randomisation arm (see allocation_method)"),
    (
        "municipality",
        "text",
        "home municipality code (SCB four digits)",
    ),
    (
        "status",
        "code",
        "referred, accepted, declined, enrolled or discharged, now",
    ),
    ("referred", "period", "when referred, coarsened"),
    (
        "enrolled",
        "period",
        "when enrolled, coarsened; empty if not",
    ),
    (
        "discharged",
        "period",
        "when discharged, coarsened; empty if not",
    ),
    (
        "exit_reason",
        "code",
        "ordinary_care, moved, declined_further, deceased, other; empty if not discharged",
    ),
    ("needs", "count", "needs in the active SIP"),
    (
        "needs_with_intervention",
        "count",
        "of those, needs with a current intervention",
    ),
    ("sip_meetings", "count", "SIP meetings held, all plans"),
    (
        "sip_kollen_evaluations",
        "count",
        "SIP-kollen evaluations recorded, all plans",
    ),
    ("board_stays", "count", "stays on the FACT board"),
    (
        "board_days",
        "count",
        "calendar days on the FACT board, open stays to the export day",
    ),
];

/// An export: its rows in pseudonym order, and the allocations drawn for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// One per consenting participant, in [`DICTIONARY`] order.
    pub rows: Vec<Vec<String>>,
    /// Allocations drawn now, by participant id, to be recorded.
    pub new_allocations: Vec<(String, Allocation)>,
}

fn exit_code(exit: Option<ExitReason>) -> &'static str {
    match exit {
        None => "",
        Some(ExitReason::OrdinaryCare) => "ordinary_care",
        Some(ExitReason::Moved) => "moved",
        Some(ExitReason::DeclinedFurther) => "declined_further",
        Some(ExitReason::Deceased) => "deceased",
        Some(ExitReason::Other) => "other",
    }
}

fn stage_code(stage: Stage) -> &'static str {
    match stage {
        Stage::Referred => "referred",
        Stage::Accepted => "accepted",
        Stage::Declined => "declined",
        Stage::Enrolled => "enrolled",
        Stage::Discharged => "discharged",
    }
}

/// The export of `study`: exactly the participants with a consent to this study in force at
/// `now`. Arms come from `allocations`; a participant without one gets `draw()`'s index.
pub fn export(
    facts: &Facts,
    study: &Study,
    allocations: &HashMap<String, Allocation>,
    now: DateTime<Utc>,
    mut draw: impl FnMut(usize) -> usize,
) -> Export {
    let consenting: std::collections::BTreeSet<&str> = facts
        .research_consents
        .values()
        .filter(|c| c.active_for(&study.id, now))
        .map(|c| c.participant_id.as_str())
        .collect();
    let mut rows = BTreeMap::new();
    let mut new_allocations = Vec::new();
    for id in consenting {
        let Some(p) = facts.participants.get(id) else {
            continue;
        };
        let arm = match allocations.get(id) {
            Some(a) => a.arm.clone(),
            None => {
                let arm = study
                    .arms
                    .get(draw(study.arms.len()))
                    .cloned()
                    .unwrap_or_default();
                new_allocations.push((
                    id.to_owned(),
                    Allocation {
                        arm: arm.clone(),
                        method: ALLOCATION_METHOD.to_owned(),
                        allocated_at: now,
                    },
                ));
                arm
            }
        };
        let plans: Vec<_> = facts
            .plans
            .values()
            .filter(|x| x.participant_id == id)
            .collect();
        let active = plans.iter().find(|x| x.active);
        let needs = active.map_or(0, |x| x.needs.len());
        let met = active.map_or(0, |x| {
            x.needs
                .iter()
                .filter(|n| n.interventions.iter().any(|i| i.current))
                .count()
        });
        let meetings: usize = plans.iter().map(|x| x.meetings.len()).sum();
        let evaluations: usize = plans.iter().map(|x| x.evaluations.len()).sum();
        let stays: Vec<_> = facts
            .stays
            .values()
            .filter(|s| s.participant_id == id)
            .collect();
        let days: i64 = stays
            .iter()
            .map(|s| {
                (s.off_at.unwrap_or(now).date_naive() - s.on_at.date_naive())
                    .num_days()
                    .max(0)
            })
            .sum();
        let coarse = |day: Option<NaiveDate>| {
            day.map(|d| study.date_precision.coarsen(d))
                .unwrap_or_default()
        };
        let pseudonym = study.pseudonym(id);
        rows.insert(
            pseudonym.clone(),
            vec![
                pseudonym,
                arm,
                p.home_municipality.clone(),
                stage_code(p.stage).to_owned(),
                coarse(p.referred_at.map(|t| t.date_naive())),
                coarse(p.enrolled_on),
                coarse(p.discharged_on),
                exit_code(p.exit).to_owned(),
                needs.to_string(),
                met.to_string(),
                meetings.to_string(),
                evaluations.to_string(),
                stays.len().to_string(),
                days.to_string(),
            ],
        );
    }
    Export {
        rows: rows.into_values().collect(),
        new_allocations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(key: &[u8]) -> Study {
        Study {
            id: "s".into(),
            key: key.to_vec(),
            date_precision: DatePrecision::Quarter,
            arms: vec!["fact".into(), "usual_care".into()],
        }
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let a = study(&[1; 32]);
        let b = study(&[2; 32]);
        assert_eq!(a.pseudonym("p1"), a.pseudonym("p1"));
        assert_ne!(a.pseudonym("p1"), a.pseudonym("p2"));
        assert_ne!(a.pseudonym("p1"), b.pseudonym("p1"));
        assert_eq!(a.pseudonym("p1").len(), 32);
        assert!(
            !format!("{a:?}").contains("1, 1"),
            "the key stays out of logs"
        );
    }

    #[test]
    fn only_a_consent_in_force_for_this_study_puts_a_participant_in_its_export() {
        use crate::domain::facts::{ConsentFact, ParticipantFact};
        let at = |day: u32| {
            NaiveDate::from_ymd_opt(2025, 6, day)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .map(|t| t.and_utc())
                .unwrap()
        };
        let mut facts = Facts::default();
        let consent = |who: &str, study: Option<&str>, ended: bool| ConsentFact {
            participant_id: who.into(),
            study_id: study.map(str::to_owned),
            valid_from: at(1),
            valid_until: None,
            ended,
        };
        for who in ["this", "other", "unnamed", "revoked", "both"] {
            facts
                .participants
                .insert(who.into(), ParticipantFact::default());
        }
        facts.research_consents = [
            consent("this", Some("s"), false),
            consent("other", Some("t"), false),
            consent("unnamed", None, false),
            consent("revoked", Some("s"), true),
            consent("both", Some("t"), false),
            consent("both", Some("s"), false),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, c)| (format!("c{i}"), c))
        .collect();
        let study = study(&[1; 32]);
        let export = export(&facts, &study, &HashMap::new(), at(2), |_| 0);
        let mut got: Vec<&str> = export.rows.iter().map(|r| r[0].as_str()).collect();
        got.sort_unstable();
        let mut want = vec![study.pseudonym("this"), study.pseudonym("both")];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(export.new_allocations.len(), 2);
    }

    #[test]
    fn dates_are_coarsened_as_the_study_says() {
        let day = NaiveDate::from_ymd_opt(2025, 8, 17).unwrap();
        assert_eq!(DatePrecision::Month.coarsen(day), "2025-08");
        assert_eq!(DatePrecision::Quarter.coarsen(day), "2025-Q3");
        assert_eq!(DatePrecision::Year.coarsen(day), "2025");
    }
}
