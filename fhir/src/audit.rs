//! AuditEvent from the gateway's audit trail.

use samsyn_proto::audit::v1::{AuditEvent, Decision, Outcome, PrincipalKind};
use samsyn_proto::common::v1::Action;
use serde_json::{Value, json};

use crate::json::{
    Obj, array, coding, concept, data_category_code, identifier, instant, meta,
    organisation_reference, patient_reference, unit_reference,
};
use crate::system;

/// The AuditEvent action of a call: reads are `R`; writes are `E` (an operation was
/// executed: the audit trail does not tell creates from updates).
pub(crate) fn audit_action(action: Action) -> &'static str {
    match action {
        Action::Read => "R",
        Action::Write | Action::Unspecified => "E",
    }
}

/// The AuditEvent outcome: `0` success; `4` for a refusal or a caller's error; `8` when the
/// service failed (gRPC UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS).
pub(crate) fn audit_outcome(outcome: Outcome, status_code: i32) -> &'static str {
    match (outcome, status_code) {
        (Outcome::Forwarded, 0) => "0",
        (Outcome::Forwarded, 2 | 13 | 14 | 15) => "8",
        _ => "4",
    }
}

/// One audited call as an AuditEvent with id `audit-` and its chain position.
///
/// type `rest`, subtype `read` or `operation` plus the gRPC method and the gateway's decision.
/// The requesting agent is never a person by name or staff id: staff appear as their unit
/// (else their organisation), a system by its link id (as a Device identifier), a participant
/// as their Patient. The data owner is a second agent (custodian). The entity is the
/// participant the call named, with the data category, plus one entity per list row shown.
/// The emergency reason (free text) and the policies are left out; an emergency access has
/// purposeOfEvent ETREAT.
pub fn audit_event(event: &AuditEvent) -> Value {
    let (subtype_code, subtype_display) = match event.action() {
        Action::Read => ("read", "read"),
        Action::Write | Action::Unspecified => ("operation", "operation"),
    };
    let decision = match event.decision() {
        Decision::Allowed => coding(system::AUDIT_DECISION, "allowed", "Allowed"),
        Decision::Disclosure => coding(
            system::AUDIT_DECISION,
            "disclosure",
            "Disclosure by consent",
        ),
        Decision::Emergency => coding(system::AUDIT_DECISION, "emergency", "Emergency access"),
        Decision::Denied => coding(system::AUDIT_DECISION, "denied", "Denied"),
        Decision::Unspecified => Value::Null,
    };
    let outcome_description = match event.outcome() {
        Outcome::Refused => "refused by the gateway".to_owned(),
        Outcome::Forwarded => format!("grpc status {}", event.status_code),
        Outcome::Intended => "write decided, about to be forwarded".to_owned(),
        Outcome::Unspecified => String::new(),
    };
    let purpose = if event.decision() == Decision::Emergency {
        concept(
            "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "ETREAT",
            "Emergency Treatment",
            "",
        )
    } else {
        Value::Null
    };

    let category_detail = data_category_code(event.category()).map_or(
        Value::Null,
        |(code, _)| json!({ "type": "data-category", "valueString": code }),
    );
    let named = patient_reference(event.participant_id.as_ref());
    let named_entity = if named.is_null() {
        Value::Null
    } else {
        Obj::new()
            .with("what", named)
            .with("type", patient_entity_type())
            .with("role", patient_entity_role())
            .with("detail", array([category_detail]))
            .build()
    };
    let shown = event.rows.iter().map(|row| {
        let what = patient_reference(row.participant_id.as_ref());
        if what.is_null() {
            return Value::Null;
        }
        Obj::new()
            .with("what", what)
            .with("type", patient_entity_type())
            .with("role", patient_entity_role())
            .with(
                "detail",
                if row.disclosure {
                    json!([{ "type": "shown-by-consent", "valueString": "true" }])
                } else {
                    Value::Null
                },
            )
            .build()
    });

    let custodian = match organisation_reference(event.owner_organisation_id.as_ref()) {
        Value::Null => Value::Null,
        owner => json!({
            "type": concept(
                "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "CST",
                "custodian",
                "",
            ),
            "who": owner,
            "requestor": false,
        }),
    };

    Obj::resource("AuditEvent")
        .with("id", format!("audit-{}", event.position))
        .with("meta", meta(instant(event.time.as_ref()), None))
        .with(
            "type",
            coding(
                "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "rest",
                "RESTful Operation",
            ),
        )
        .with(
            "subtype",
            array([
                coding(
                    "http://hl7.org/fhir/restful-interaction",
                    subtype_code,
                    subtype_display,
                ),
                coding(system::RPC, &event.rpc, ""),
                decision,
            ]),
        )
        .with("action", audit_action(event.action()))
        .with("recorded", instant(event.time.as_ref()))
        .with("outcome", audit_outcome(event.outcome(), event.status_code))
        .with("outcomeDesc", outcome_description)
        .with("purposeOfEvent", array([purpose]))
        .with("agent", array([requestor(event), custodian]))
        .with(
            "source",
            json!({
                "observer": { "display": "Samsyn gateway" },
                "type": [{
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }],
            }),
        )
        .with("entity", array(std::iter::once(named_entity).chain(shown)))
        .build()
}

/// The agent that made the call, never naming a member of staff.
fn requestor(event: &AuditEvent) -> Value {
    let principal = event.principal.as_ref();
    let who = match principal.map(|p| p.kind()) {
        Some(PrincipalKind::Staff) => {
            principal.map_or(Value::Null, |p| match unit_reference(&p.unit_id) {
                Value::Null => organisation_reference(p.organisation_id.as_ref()),
                unit => unit,
            })
        }
        Some(PrincipalKind::System) => principal.map_or(Value::Null, |p| {
            match identifier(system::SYSTEM_LINK, &p.id) {
                Value::Null => Value::Null,
                link => json!({ "type": "Device", "identifier": link }),
            }
        }),
        Some(PrincipalKind::Participant) => principal.map_or(Value::Null, |p| {
            if p.id.is_empty() {
                Value::Null
            } else {
                crate::json::reference("Patient", &p.id)
            }
        }),
        Some(PrincipalKind::Unspecified) | None => Value::Null,
    };
    let kind = match principal.map(|p| p.kind()) {
        Some(PrincipalKind::Staff) => "staff member of the organisation",
        Some(PrincipalKind::System) => "system",
        Some(PrincipalKind::Participant) => "participant",
        Some(PrincipalKind::Unspecified) | None => "unauthenticated caller",
    };
    Obj::new()
        .with("type", Obj::new().with("text", kind).build())
        .with("who", who)
        .with("requestor", true)
        .build()
}

fn patient_entity_type() -> Value {
    coding(
        "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "1",
        "Person",
    )
}

fn patient_entity_role() -> Value {
    coding(
        "http://terminology.hl7.org/CodeSystem/object-role",
        "1",
        "Patient",
    )
}
