//! The service's settings: the review rule, the programme area and the yearly target.

use serde::{Deserialize, Serialize};

use super::types::MunicipalityCode;

/// How the joint referral review reaches its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewRule {
    /// Accepted when both principals accept; declined as soon as either declines.
    BothMustAgree,
    /// The municipality's assessment decides (seed 004); the region's is advisory.
    MunicipalityDecides,
}

/// What revoking (or voiding) an enrolled participant's participation consent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConsentRevoked {
    /// The participation is flagged for follow-up ("participation consent revoked").
    Flag,
    /// The participation is flagged and ends (declined further participation).
    Discharge,
}

/// Settings of the participants service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParticipantsSettings {
    /// How the joint review decides.
    pub review_rule: ReviewRule,
    /// The municipalities of the programme area; moving elsewhere ends participation.
    pub programme_municipalities: Vec<MunicipalityCode>,
    /// New participants per municipality and year the programme aims for.
    pub yearly_target: u32,
    /// Whether an accepted referral needs the programme's diagnosis criteria met.
    pub diagnosis_criteria_required: bool,
    /// What revoking an enrolled participant's participation consent does.
    pub on_participation_consent_revoked: OnConsentRevoked,
}

/// The ten municipalities of North-West Skåne that share one FACT team (seed 001).
const NORTH_WEST_SKANE: [&str; 10] = [
    "1257", // Örkelljunga
    "1260", // Bjuv
    "1275", // Perstorp
    "1276", // Klippan
    "1277", // Åstorp
    "1278", // Båstad
    "1282", // Landskrona
    "1283", // Helsingborg
    "1284", // Höganäs
    "1292", // Ängelholm
];

impl Default for ParticipantsSettings {
    fn default() -> Self {
        Self {
            review_rule: ReviewRule::MunicipalityDecides,
            programme_municipalities: NORTH_WEST_SKANE
                .iter()
                .filter_map(|code| MunicipalityCode::parse(code).ok())
                .collect(),
            yearly_target: 30,
            diagnosis_criteria_required: true,
            on_participation_consent_revoked: OnConsentRevoked::Flag,
        }
    }
}

impl ParticipantsSettings {
    /// Whether `code` lies in the programme area.
    pub fn in_programme(&self, code: &MunicipalityCode) -> bool {
        self.programme_municipalities.contains(code)
    }
}
