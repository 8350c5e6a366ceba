//! The participants domain: identity, the life of a participant and its rules. No tonic, no
//! sea-orm.

pub mod error;
pub mod participant;
pub mod pin;
pub mod repository;
pub mod settings;
pub mod types;

pub use error::ParticipantsError;
pub use participant::*;
pub use pin::{PersonalIdentityNumber, PinError};
pub use repository::{Created, Effect, ParticipantRepository};
pub use settings::{OnConsentRevoked, ParticipantsSettings, ReviewRule};
pub use types::*;

/// Which participants a list returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only those this member of staff is currently assigned to.
    pub staff_id: Option<StaffId>,
    /// Only those with a current assignment from, or referred by, this organisation.
    pub organisation_id: Option<OrganisationId>,
    /// Only those living here.
    pub home_municipality: Option<MunicipalityCode>,
    /// Only the person with this personal identity number.
    pub personal_identity_number: Option<PersonalIdentityNumber>,
}

/// One row of a participant list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantSummary {
    /// Id.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
    /// Home municipality code.
    pub home_municipality: String,
    /// Status.
    pub status: Status,
    /// Revision.
    pub revision: u64,
}

/// New participants of one municipality in one year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearCount {
    /// Municipality code.
    pub municipality: String,
    /// Year.
    pub year: i32,
    /// Enrolments.
    pub count: u32,
}

/// Counts per programme municipality and year in `from..=to`, zero counts included, from
/// the non-zero counts found.
pub fn yearly_counts(
    settings: &ParticipantsSettings,
    from: i32,
    to: i32,
    found: Vec<YearCount>,
) -> Vec<YearCount> {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<(String, i32), u32> = BTreeMap::new();
    for code in &settings.programme_municipalities {
        for year in from..=to {
            counts.insert((code.as_str().to_owned(), year), 0);
        }
    }
    // Enrolments in municipalities since dropped from the programme still count.
    for c in found {
        if (from..=to).contains(&c.year) {
            *counts.entry((c.municipality, c.year)).or_default() += c.count;
        }
    }
    counts
        .into_iter()
        .map(|((municipality, year), count)| YearCount {
            municipality,
            year,
            count,
        })
        .collect()
}
