//! Small builders shared by the mappings: ids, times, references and codings.
//!
//! FHIR JSON forbids empty strings, arrays and objects and `null`; [`Obj`] drops them, so a
//! mapping can pass optional values straight through.

use chrono::{DateTime, NaiveDate, SecondsFormat};
use prost_types::Timestamp;
use samsyn_proto::common::v1::{CalendarDate, DataCategory, OrganisationId};
use serde_json::{Map, Value, json};

use crate::system;

/// A JSON object under construction that leaves out empty values.
#[derive(Debug, Default)]
pub(crate) struct Obj(Map<String, Value>);

impl Obj {
    /// An empty object.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An object that starts with `resourceType`.
    pub(crate) fn resource(resource_type: &str) -> Self {
        Self::new().with("resourceType", resource_type)
    }

    /// Sets `key` unless `value` is empty.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        if !is_empty(&value) {
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    /// The finished object; `Value::Null` when nothing was set, so an enclosing `with` drops it.
    pub(crate) fn build(self) -> Value {
        if self.0.is_empty() {
            Value::Null
        } else {
            Value::Object(self.0)
        }
    }
}

/// Whether FHIR JSON would reject the value as empty.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The values of an iterator as a JSON array, empty ones left out.
pub(crate) fn array(values: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(values.into_iter().filter(|v| !is_empty(v)).collect())
}

/// A FHIR logical id for one of Samsyn's internal ids.
///
/// Internal ids are UUIDs and pass unchanged. Anything FHIR would refuse as an id (other
/// characters, more than 64 of them, empty) becomes `h` and 32 hex digits of a fixed hash of
/// it, so the same input always gives the same id.
pub fn fhir_id(internal: &str) -> String {
    let valid = (1..=64).contains(&internal.len())
        && internal
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        internal.to_owned()
    } else {
        // FNV-1a, twice with different offsets: stable across Rust releases, unlike std's hasher.
        let fnv = |offset: u64| {
            internal.bytes().fold(offset, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        format!(
            "h{:016x}{:016x}",
            fnv(0xcbf2_9ce4_8422_2325),
            fnv(0x6c62_272e_07bb_0142)
        )
    }
}

/// A FHIR `instant` (UTC, fractional seconds only when present); `None` for a time FHIR
/// cannot express.
pub(crate) fn instant(time: Option<&Timestamp>) -> Option<String> {
    let time = time?;
    let nanos = u32::try_from(time.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let at = DateTime::from_timestamp(time.seconds, nanos)?;
    let year = chrono::Datelike::year(&at);
    (1..=9999)
        .contains(&year)
        .then(|| at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A FHIR `date`; `None` for an absent or impossible date.
pub(crate) fn date(day: Option<&CalendarDate>) -> Option<String> {
    let day = day?;
    let valid = (1..=9999).contains(&day.year)
        && NaiveDate::from_ymd_opt(day.year, day.month, day.day).is_some();
    valid.then(|| format!("{:04}-{:02}-{:02}", day.year, day.month, day.day))
}

/// The latest of some instants (FHIR instants in UTC with `Z` compare as text only when
/// their precision matches, so this parses them).
pub(crate) fn latest<'a>(times: impl IntoIterator<Item = Option<&'a Timestamp>>) -> Option<String> {
    times
        .into_iter()
        .flatten()
        .filter(|t| instant(Some(t)).is_some())
        .max_by_key(|t| (t.seconds, t.nanos))
        .and_then(|t| instant(Some(t)))
}

/// A FHIR `Period`; `Null` when neither end is known.
pub(crate) fn period(start: Option<String>, end: Option<String>) -> Value {
    Obj::new().with("start", start).with("end", end).build()
}

/// `meta` with `lastUpdated` (and `versionId` when the record has a revision).
pub(crate) fn meta(last_updated: Option<String>, revision: Option<u64>) -> Value {
    meta_obj(last_updated, revision).build()
}

/// [`meta`] still open for more elements.
pub(crate) fn meta_obj(last_updated: Option<String>, revision: Option<u64>) -> Obj {
    Obj::new()
        .with(
            "versionId",
            revision.filter(|r| *r > 0).map(|r| r.to_string()),
        )
        .with("lastUpdated", last_updated)
}

/// A literal reference to a resource on the same server.
pub(crate) fn reference(resource_type: &str, internal_id: &str) -> Value {
    json!({ "reference": format!("{resource_type}/{}", fhir_id(internal_id)) })
}

/// A reference to the participant's Patient resource.
pub(crate) fn patient_reference(
    participant_id: Option<&samsyn_proto::common::v1::ParticipantId>,
) -> Value {
    match participant_id {
        Some(id) if !id.value.is_empty() => reference("Patient", &id.value),
        _ => Value::Null,
    }
}

/// An identifier with its system; `Null` for an empty value.
pub(crate) fn identifier(system: &str, value: &str) -> Value {
    if value.trim().is_empty() {
        Value::Null
    } else {
        json!({ "system": system, "value": value })
    }
}

/// The naming system of an organisation id: a four-digit municipality code or an HSA id.
fn organisation_system(id: &str) -> &'static str {
    if id.len() == 4 && id.bytes().all(|b| b.is_ascii_digit()) {
        system::MUNICIPALITY_CODE
    } else {
        system::HSA_ID
    }
}

/// A logical reference to an organisation by its id; `Null` when there is none.
pub(crate) fn organisation_reference(id: Option<&OrganisationId>) -> Value {
    match id {
        Some(id) if !id.value.trim().is_empty() => json!({
            "type": "Organization",
            "identifier": { "system": organisation_system(&id.value), "value": id.value },
        }),
        _ => Value::Null,
    }
}

/// A logical reference to an organisational unit by its HSA id; `Null` for an empty id.
pub(crate) fn unit_reference(unit_id: &str) -> Value {
    match identifier(system::HSA_ID, unit_id) {
        Value::Null => Value::Null,
        identifier => json!({ "type": "Organization", "identifier": identifier }),
    }
}

/// A logical reference to a member of staff by HSA id; `Null` for an empty id.
pub(crate) fn practitioner_reference(staff_id: &str) -> Value {
    match identifier(system::HSA_ID, staff_id) {
        Value::Null => Value::Null,
        identifier => json!({ "type": "Practitioner", "identifier": identifier }),
    }
}

/// A `Coding`.
pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    Obj::new()
        .with("system", system)
        .with("code", code)
        .with("display", display)
        .build()
}

/// A `CodeableConcept` of one coding and a text.
pub(crate) fn concept(system: &str, code: &str, display: &str, text: &str) -> Value {
    Obj::new()
        .with("coding", array([coding(system, code, display)]))
        .with("text", text)
        .build()
}

/// A CodeableConcept with text only; `Null` for empty text.
pub(crate) fn text_concept(text: &str) -> Value {
    Obj::new().with("text", text).build()
}

/// Samsyn's code and English display for a data category; `None` for unspecified.
pub(crate) fn data_category_code(category: DataCategory) -> Option<(&'static str, &'static str)> {
    Some(match category {
        DataCategory::Unspecified => return None,
        DataCategory::Enrolment => ("enrolment", "Enrolment"),
        DataCategory::CareTeam => ("care-team", "Care team"),
        DataCategory::Consent => ("consent", "Consents and restrictions"),
        DataCategory::Plan => ("plan", "Coordinated individual plan"),
        DataCategory::Decision => ("decision", "Municipal decisions"),
        DataCategory::Board => ("board", "FACT board"),
        DataCategory::Audit => ("audit", "Audit trail"),
        DataCategory::Admin => ("admin", "Configuration and reference data"),
        DataCategory::ChangeFeed => ("change-feed", "Change feed"),
        DataCategory::Report => ("report", "Aggregate reports"),
    })
}

/// A data category as a Coding; `Null` for unspecified.
pub(crate) fn data_category_coding(category: DataCategory) -> Value {
    data_category_code(category).map_or(Value::Null, |(code, display)| {
        coding(system::DATA_CATEGORY, code, display)
    })
}
