//! Consent from the consent service's records.

use samsyn_proto::consent::v1::{
    Actor, ActorKind, Consent, ConsentKind, ConsentState, RepresentativeKind, Sharing,
};
use serde_json::{Value, json};

use crate::json::{
    Obj, array, coding, concept, data_category_coding, fhir_id, instant, latest, meta,
    organisation_reference, patient_reference, period, practitioner_reference, unit_reference,
};
use crate::system;

/// The Consent status of a consent state: recorded is `active` (its validity period is in
/// `provision.period`), revoked `inactive`, voided `entered-in-error`; unspecified is `draft`,
/// which no reader acts upon.
pub(crate) fn consent_status(state: ConsentState) -> &'static str {
    match state {
        ConsentState::Recorded => "active",
        ConsentState::Revoked => "inactive",
        ConsentState::Voided => "entered-in-error",
        ConsentState::Unspecified => "draft",
    }
}

/// A consent as an R4 Consent.
///
/// scope: participation is `treatment`, information sharing `patient-privacy`, a research
/// study `research`; the Samsyn kind is a second category next to LOINC 59284-0.
/// `organization` is the recording staff member's organisation; `performer` is the patient,
/// or a representative described by kind only (their name is left out). The provision
/// permits for the validity period; for information sharing its actors are the organisation
/// whose information is shared (custodian, CST) and the reader (recipient, IRCP: the staff
/// member or unit the consent is limited to, else the organisation), and its `code` lists the
/// data categories. `policyRule` is opt-in. The note is left out.
pub fn consent(consent: &Consent) -> Value {
    let (scope_code, scope_display, purpose) = match consent.kind() {
        ConsentKind::ResearchStudy => ("research", "Research", research_purpose()),
        ConsentKind::InformationSharing => {
            ("patient-privacy", "Privacy Consent", treatment_purpose())
        }
        ConsentKind::Participation | ConsentKind::Unspecified => {
            ("treatment", "Treatment", treatment_purpose())
        }
    };
    let kind = match consent.kind() {
        ConsentKind::Participation => {
            coding(system::CONSENT_KIND, "participation", "Participation")
        }
        ConsentKind::InformationSharing => coding(
            system::CONSENT_KIND,
            "information-sharing",
            "Information sharing",
        ),
        ConsentKind::ResearchStudy => {
            coding(system::CONSENT_KIND, "research-study", "Research study")
        }
        ConsentKind::Unspecified => Value::Null,
    };
    let last_changed = latest([
        consent.recorded_at.as_ref(),
        consent.revocation.as_ref().and_then(|e| e.at.as_ref()),
        consent.voiding.as_ref().and_then(|e| e.at.as_ref()),
    ]);
    let sharing = consent
        .sharing
        .as_ref()
        .filter(|_| consent.kind() == ConsentKind::InformationSharing);
    let provision = Obj::new()
        .with("type", "permit")
        .with(
            "period",
            period(
                instant(consent.valid_from.as_ref()),
                instant(consent.valid_until.as_ref()),
            ),
        )
        .with("actor", sharing.map_or(Value::Null, sharing_actors))
        .with("purpose", array([purpose]))
        .with(
            "code",
            sharing.map_or(Value::Null, |s| {
                array(s.categories().map(|c| {
                    Obj::new()
                        .with("coding", array([data_category_coding(c)]))
                        .build()
                }))
            }),
        )
        .build();

    Obj::resource("Consent")
        .with("id", fhir_id(&consent.id))
        .with(
            "meta",
            meta(last_changed, consent.revision.as_ref().map(|r| r.value)),
        )
        .with("status", consent_status(consent.state()))
        .with(
            "scope",
            concept(
                "http://terminology.hl7.org/CodeSystem/consentscope",
                scope_code,
                scope_display,
                "",
            ),
        )
        .with(
            "category",
            array([Obj::new()
                .with(
                    "coding",
                    array([
                        coding("http://loinc.org", "59284-0", "Patient Consent"),
                        kind,
                    ]),
                )
                .build()]),
        )
        .with(
            "patient",
            patient_reference(consent.participant_id.as_ref()),
        )
        .with("dateTime", instant(consent.recorded_at.as_ref()))
        .with("performer", array([performer(consent)]))
        .with(
            "organization",
            array([recorder_organisation(consent.recorded_by.as_ref())]),
        )
        .with(
            "policyRule",
            concept(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "OPTIN",
                "opt-in",
                "",
            ),
        )
        .with("provision", provision)
        .build()
}

fn treatment_purpose() -> Value {
    coding(
        "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "TREAT",
        "treatment",
    )
}

fn research_purpose() -> Value {
    coding(
        "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "HRESCH",
        "healthcare research",
    )
}

/// Who consented: the patient, or a representative named by kind only.
fn performer(consent: &Consent) -> Value {
    match &consent.on_behalf_of {
        Some(representative) => {
            let kind = match representative.kind() {
                RepresentativeKind::Guardian => "guardian (god man)",
                RepresentativeKind::Trustee => "trustee (förvaltare)",
                RepresentativeKind::PowerOfAttorney => "holder of a power of attorney (fullmakt)",
                RepresentativeKind::Other | RepresentativeKind::Unspecified => "representative",
            };
            json!({ "type": "RelatedPerson", "display": kind })
        }
        None => patient_reference(consent.participant_id.as_ref()),
    }
}

/// The organisation of the member of staff who recorded the consent.
fn recorder_organisation(actor: Option<&Actor>) -> Value {
    actor
        .filter(|a| a.kind() == ActorKind::Staff)
        .and_then(|a| a.staff.as_ref())
        .map_or(Value::Null, |s| {
            organisation_reference(s.organisation_id.as_ref())
        })
}

fn sharing_actors(sharing: &Sharing) -> Value {
    let participation = |code: &str, display: &str| {
        concept(
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            code,
            display,
            "",
        )
    };
    let reader = [
        practitioner_reference(&sharing.staff_id),
        unit_reference(&sharing.unit_id),
        organisation_reference(sharing.to_organisation_id.as_ref()),
    ]
    .into_iter()
    .find(|r| !r.is_null())
    .unwrap_or(Value::Null);
    let actor = |role: Value, reference: Value| {
        if reference.is_null() {
            Value::Null
        } else {
            json!({ "role": role, "reference": reference })
        }
    };
    array([
        actor(
            participation("CST", "custodian"),
            organisation_reference(sharing.from_organisation_id.as_ref()),
        ),
        actor(participation("IRCP", "information recipient"), reader),
    ])
}
