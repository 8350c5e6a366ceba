//! FHIR R4 views of Samsyn's records, for journal systems and the SIP planning tool.
//!
//! Pure functions from the `samsyn-proto` messages to FHIR R4 JSON (`serde_json::Value`).
//! They do no I/O and read no clock: the same record always gives the same JSON.
//!
//! Choices that hold for every resource:
//! - Ids come only from Samsyn's internal ids (see [`fhir_id`]); `meta.lastUpdated` is the
//!   record's own time and `meta.versionId` its revision.
//! - Organisations, units and staff are logical references by identifier (HSA id, or the
//!   municipality code for a municipality); no Organization or Practitioner resources are made
//!   and no staff member's name ever appears.
//! - Free text the participant or staff wrote (goals, needs, descriptions) is carried as is,
//!   å, ä and ö included; notes that are "never logged" in the protos (consent notes, emergency
//!   reasons, referral reasons) are left out.
//! - Empty values are left out, as FHIR JSON requires.

mod audit;
mod bundle;
mod consent;
mod json;
mod participants;
mod plan;

pub use audit::audit_event;
pub use bundle::{
    IssueSeverity, IssueType, capability_statement, operation_outcome, search_bundle,
    transaction_bundle,
};
pub use consent::consent;
pub use json::fhir_id;
pub use participants::{care_team, episode_of_care, patient};
pub use plan::care_plan;

/// The naming and code systems the mappings use.
///
/// The `urn:samsyn:` ones are Samsyn's own; they are placeholders until Samsyn has registered
/// OIDs, and changing them here changes them everywhere.
pub mod system {
    /// Swedish personal identity number (personnummer).
    pub const PERSONNUMMER: &str = "http://electronichealth.se/identifier/personnummer";
    /// Swedish co-ordination number (samordningsnummer: day of birth plus 60).
    pub const SAMORDNINGSNUMMER: &str = "http://electronichealth.se/identifier/samordningsnummer";
    /// HSA ids of units, care providers and staff.
    pub const HSA_ID: &str = "urn:oid:1.2.752.29.4.19";
    /// Swedish four-digit municipality codes (kommunkod).
    pub const MUNICIPALITY_CODE: &str = "urn:samsyn:fhir:municipality-code";
    /// Samsyn's internal participant id.
    pub const PARTICIPANT_ID: &str = "urn:samsyn:fhir:participant-id";
    /// Samsyn's referral ids (one per participation episode).
    pub const REFERRAL_ID: &str = "urn:samsyn:fhir:referral-id";
    /// Samsyn's data categories, the unit of consent.
    pub const DATA_CATEGORY: &str = "urn:samsyn:fhir:data-category";
    /// Roles in a participant's care team.
    pub const CARE_TEAM_ROLE: &str = "urn:samsyn:fhir:care-team-role";
    /// Life areas of SIP needs.
    pub const LIFE_AREA: &str = "urn:samsyn:fhir:life-area";
    /// Codes of the intervention catalogue of both principals.
    pub const INTERVENTION_CATALOGUE: &str = "urn:samsyn:fhir:intervention-catalogue";
    /// Kinds of plan activity that are not interventions (follow-ups, other actors' actions).
    pub const PLAN_ACTIVITY: &str = "urn:samsyn:fhir:plan-activity";
    /// Kinds of consent.
    pub const CONSENT_KIND: &str = "urn:samsyn:fhir:consent-kind";
    /// Kinds of care episode (FACT participation).
    pub const EPISODE_TYPE: &str = "urn:samsyn:fhir:episode-type";
    /// The gRPC method an audited call named.
    pub const RPC: &str = "urn:samsyn:fhir:rpc";
    /// The gateway's decision on an audited call.
    pub const AUDIT_DECISION: &str = "urn:samsyn:fhir:audit-decision";
    /// Links of machine-to-machine systems (their certificate's link id).
    pub const SYSTEM_LINK: &str = "urn:samsyn:fhir:system-link";
}

#[cfg(test)]
mod tests;
