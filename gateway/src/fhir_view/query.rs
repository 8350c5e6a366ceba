//! What a FHIR request asks for: the interaction, parsed from the path and query, with every
//! search parameter the view does not support refused by name.
//!
//! Parameters that would reach data by another way than the one decided for the request
//! (`_include`, `_revinclude`, `_has`, chains), that would say more than the reader's own
//! rows (`_summary=count`, `_total`) or that reshape resources (`_elements`, `_contained`)
//! are refused, as is anything not listed for the resource type: a parameter silently
//! ignored would widen a search the caller believed narrow.

use samsyn_fhir::system;

/// Longest path and query accepted, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// Longest identifier value or patient id accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64;
/// Longest parameter name echoed back in an error.
const MAX_ECHOED_NAME: usize = 40;

/// The resource types searched by patient, with the one parameter they take.
pub const BY_PATIENT: [&str; 5] = [
    "EpisodeOfCare",
    "CareTeam",
    "CarePlan",
    "Consent",
    "AuditEvent",
];

/// The search parameters of each resource type, for the CapabilityStatement.
pub const SUPPORTED: [(&str, &[&str]); 6] = [
    ("Patient", &["_id", "identifier"]),
    ("EpisodeOfCare", &["patient"]),
    ("CareTeam", &["patient"]),
    ("CarePlan", &["patient"]),
    ("Consent", &["patient"]),
    ("AuditEvent", &["patient"]),
];

/// One request to the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// `GET /fhir/metadata`.
    Capabilities,
    /// `GET /fhir/Patient/{id}`.
    ReadPatient(String),
    /// `GET /fhir/Patient?identifier=<system>|<value>`.
    PatientByIdentifier(IdentifierSearch),
    /// `GET /fhir/{type}?patient=<id>` for one of [`BY_PATIENT`].
    ByPatient {
        /// The resource type.
        resource_type: &'static str,
        /// The internal participant id.
        participant_id: String,
    },
}

/// A Patient search by identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierSearch {
    /// By personnummer or samordningsnummer (the value as given).
    PersonalIdentityNumber(String),
    /// By Samsyn's internal participant id.
    ParticipantId(String),
}

/// Why a request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or unsupported: 400, with what to show the caller.
    Invalid(String),
    /// No such endpoint or resource type: 404.
    NotFound(String),
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::Invalid(message.into())
}

/// Parses `path` (below `/fhir`) and its raw `query`.
pub fn parse(path: &str, query: Option<&str>) -> Result<Interaction, Refusal> {
    if path.len() + query.map_or(0, str::len) > MAX_URI_BYTES {
        return Err(invalid(format!(
            "request URI longer than {MAX_URI_BYTES} bytes"
        )));
    }
    let params = parameters(query.unwrap_or(""))?;
    let segments: Vec<&str> = path
        .trim_start_matches("/fhir")
        .trim_matches('/')
        .split('/')
        .collect();
    match segments.as_slice() {
        ["metadata"] => {
            only(&params, &[])?;
            Ok(Interaction::Capabilities)
        }
        ["Patient", id] => {
            only(&params, &[])?;
            Ok(Interaction::ReadPatient(resource_id(id)?))
        }
        ["Patient"] => patient_search(&params),
        [resource_type] => match BY_PATIENT.iter().find(|t| *t == resource_type) {
            Some(resource_type) => {
                only(&params, &["patient"])?;
                let value = required(&params, "patient")?;
                let id = value.strip_prefix("Patient/").unwrap_or(value);
                Ok(Interaction::ByPatient {
                    resource_type,
                    participant_id: resource_id(id)
                        .map_err(|_| invalid("patient: not a Patient id or Patient/{id}"))?,
                })
            }
            None => Err(Refusal::NotFound(
                "resource type not supported by this server".into(),
            )),
        },
        [_, _] if BY_PATIENT.contains(&segments[0]) => Err(invalid(
            "read by id is supported for Patient only; search by patient instead",
        )),
        _ => Err(Refusal::NotFound("no such endpoint".into())),
    }
}

fn patient_search(params: &[(String, String)]) -> Result<Interaction, Refusal> {
    only(params, &["identifier", "_id"])?;
    let identifier = params.iter().find(|(n, _)| n == "identifier");
    let id = params.iter().find(|(n, _)| n == "_id");
    match (identifier, id) {
        (Some(_), Some(_)) => Err(invalid("use identifier or _id, not both")),
        (None, None) => Err(invalid(
            "a Patient search needs identifier=<system>|<value> or _id",
        )),
        (None, Some((_, id))) => Ok(Interaction::PatientByIdentifier(
            IdentifierSearch::ParticipantId(resource_id(id)?),
        )),
        (Some((_, token)), None) => {
            let Some((system_uri, value)) = token.split_once('|') else {
                return Err(invalid("identifier: needs a system, as <system>|<value>"));
            };
            if value.is_empty() || value.len() > MAX_VALUE_BYTES {
                return Err(invalid(format!(
                    "identifier: the value must have 1 to {MAX_VALUE_BYTES} bytes"
                )));
            }
            match system_uri {
                system::PERSONNUMMER | system::SAMORDNINGSNUMMER => {
                    Ok(Interaction::PatientByIdentifier(
                        IdentifierSearch::PersonalIdentityNumber(value.to_owned()),
                    ))
                }
                system::PARTICIPANT_ID => Ok(Interaction::PatientByIdentifier(
                    IdentifierSearch::ParticipantId(resource_id(value)?),
                )),
                "" => Err(invalid("identifier: needs a system, as <system>|<value>")),
                _ => Err(invalid("identifier: unsupported identifier system")),
            }
        }
    }
}

/// A FHIR resource id: 1 to 64 of `A-Z a-z 0-9 - .`.
fn resource_id(id: &str) -> Result<String, Refusal> {
    let valid = (1..=MAX_VALUE_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(invalid("not a valid resource id"))
    }
}

/// The decoded `name=value` pairs; a name given twice is refused (no OR across repeats).
fn parameters(query: &str) -> Result<Vec<(String, String)>, Refusal> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!(
                "parameter {} given more than once",
                echo(&name)
            )));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

/// Refuses every parameter not in `allowed`, naming it and why.
fn only(params: &[(String, String)], allowed: &[&str]) -> Result<(), Refusal> {
    for (name, value) in params {
        if let Some(reason) = leaky(name, value) {
            return Err(invalid(format!(
                "parameter {} is not supported: {reason}",
                echo(name)
            )));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(invalid(format!(
                "parameter {} is not supported here",
                echo(name)
            )));
        }
        if value.contains(',') {
            return Err(invalid(format!(
                "parameter {}: several values (OR) are not supported",
                echo(name)
            )));
        }
    }
    Ok(())
}

/// Why a parameter would reach or reveal more than the reader's own rows, if it would.
fn leaky(name: &str, value: &str) -> Option<&'static str> {
    let base = name.split(':').next().unwrap_or(name);
    if name.contains('.') {
        return Some("chained parameters reach other resources");
    }
    match base {
        "_include" | "_revinclude" => Some("included resources are not decided per reader"),
        "_has" => Some("reverse chaining reaches other resources"),
        "_summary" if value == "count" => Some("counts are not given"),
        "_summary" => Some("summaries are not supported"),
        "_total" => Some("totals count only what the reader sees"),
        "_elements" => Some("element selection is not supported"),
        "_contained" | "_containedType" => Some("contained resources are not supported"),
        _ if name.contains(':') => Some("modifiers are not supported"),
        _ => None,
    }
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, Refusal> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| invalid(format!("parameter {name} is required")))
}

/// A parameter name as it may be shown back: printable ASCII, bounded.
fn echo(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(MAX_ECHOED_NAME)
        .collect();
    format!("'{clean}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "http://electronichealth.se/identifier/personnummer";

    fn refused(path: &str, query: &str) -> String {
        match parse(path, Some(query)) {
            Err(Refusal::Invalid(message)) => message,
            other => panic!("{path}?{query}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn supported_requests_parse() {
        assert_eq!(parse("/fhir/metadata", None), Ok(Interaction::Capabilities));
        assert_eq!(
            parse("/fhir/Patient/abc-1", None),
            Ok(Interaction::ReadPatient("abc-1".into()))
        );
        assert_eq!(
            parse(
                "/fhir/Patient",
                Some(&format!("identifier={}%7C198001011234", PIN))
            ),
            Ok(Interaction::PatientByIdentifier(
                IdentifierSearch::PersonalIdentityNumber("198001011234".into())
            ))
        );
        assert_eq!(
            parse(
                "/fhir/Patient",
                Some("identifier=urn:samsyn:fhir:participant-id|p-1")
            ),
            Ok(Interaction::PatientByIdentifier(
                IdentifierSearch::ParticipantId("p-1".into())
            ))
        );
        for query in [
            "patient=p-1",
            "patient=Patient/p-1",
            "patient=Patient%2Fp-1",
        ] {
            assert_eq!(
                parse("/fhir/CarePlan", Some(query)),
                Ok(Interaction::ByPatient {
                    resource_type: "CarePlan",
                    participant_id: "p-1".into()
                }),
                "{query}"
            );
        }
    }

    #[test]
    fn leaky_and_unknown_parameters_are_refused_by_name() {
        for (query, name) in [
            ("patient=p-1&_include=CarePlan:subject", "'_include'"),
            ("patient=p-1&_revinclude=Provenance:target", "'_revinclude'"),
            (
                "patient=p-1&_has:Consent:patient:status=active",
                "'_has:Consent:patient:status'",
            ),
            ("patient.identifier=x|1", "'patient.identifier'"),
            ("patient=p-1&_summary=count", "'_summary'"),
            ("patient=p-1&_total=accurate", "'_total'"),
            ("patient=p-1&_elements=id", "'_elements'"),
            ("patient=p-1&_contained=true", "'_contained'"),
            ("patient=p-1&status=active", "'status'"),
            ("patient:missing=true", "'patient:missing'"),
            ("patient=p-1&patient=p-2", "'patient'"),
            ("patient=p-1,p-2", "'patient'"),
        ] {
            let message = refused("/fhir/CarePlan", query);
            assert!(message.contains(name), "{query}: {message}");
        }
        assert!(refused("/fhir/metadata", "_summary=count").contains("'_summary'"));
        assert!(refused("/fhir/Patient/p-1", "_elements=name").contains("'_elements'"));
    }

    #[test]
    fn malformed_values_and_limits_are_refused() {
        let long_value = "1".repeat(MAX_VALUE_BYTES + 1);
        for (path, query) in [
            ("/fhir/Patient", "identifier=198001011234".to_owned()),
            ("/fhir/Patient", "identifier=|198001011234".to_owned()),
            (
                "/fhir/Patient",
                "identifier=http://example.org/mrn|123".to_owned(),
            ),
            ("/fhir/Patient", format!("identifier={PIN}|{long_value}")),
            ("/fhir/Patient", String::new()),
            ("/fhir/CarePlan", String::new()),
            ("/fhir/CarePlan", "patient=Group/g-1".to_owned()),
            ("/fhir/CarePlan", format!("patient={}", "a".repeat(2100))),
        ] {
            refused(path, &query);
        }
        assert!(matches!(
            parse("/fhir/Patient/bad id", None),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            parse("/fhir/Observation", Some("patient=p-1")),
            Err(Refusal::NotFound(_))
        ));
    }
}
