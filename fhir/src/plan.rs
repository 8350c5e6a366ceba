//! CarePlan (the SIP) from the plans service's records.

use samsyn_proto::plans::v1::{
    FollowUp, Intervention, InterventionStatus, LifeArea, Need, OtherActorAction, Plan, PlanStatus,
    intervention,
};
use serde_json::{Value, json};

use crate::json::{
    Obj, array, coding, concept, date, fhir_id, instant, meta, organisation_reference,
    patient_reference, period, practitioner_reference, text_concept,
};
use crate::system;

/// The CarePlan status of a plan status: the active SIP is `active`, an earlier one that
/// a newer plan replaced is `completed`, an unspecified one `unknown`.
pub(crate) fn plan_status(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Active => "active",
        PlanStatus::Closed => "completed",
        PlanStatus::Unspecified => "unknown",
    }
}

/// The activity status of an intervention, and why when the status alone does not say.
///
/// Proposed and applied (awaiting the municipality's decision) are `not-started`, granted is
/// `scheduled`, denied `cancelled`, started `in-progress`, paused `on-hold`, ended `completed`.
pub(crate) fn intervention_status(status: InterventionStatus) -> (&'static str, &'static str) {
    match status {
        InterventionStatus::Unspecified => ("unknown", ""),
        InterventionStatus::Proposed => ("not-started", "proposed"),
        InterventionStatus::Applied => ("not-started", "applied for, awaiting decision"),
        InterventionStatus::Granted => ("scheduled", "granted"),
        InterventionStatus::Denied => ("cancelled", "denied"),
        InterventionStatus::Started => ("in-progress", ""),
        InterventionStatus::Paused => ("on-hold", ""),
        InterventionStatus::Ended => ("completed", ""),
    }
}

/// The SIP (coordinated individual plan) as a CarePlan with intent `plan`.
///
/// - goals: contained Goal resources (lifecycle `active`, the participant's own words as the
///   description), listed in `goal`;
/// - needs: contained Condition resources (code text = the description, category = the life
///   area), listed in `addresses`; R4's `addresses` only takes Condition references, and a
///   contained Condition keeps the life area structured;
/// - interventions: `activity.detail` of kind ServiceRequest with the catalogue code or free
///   text, status, period, the need as `reasonReference`, and the responsible organisation
///   (and person, by HSA id) as `performer`;
/// - other actors' actions and follow-ups: activities with their due date as
///   `scheduledTiming`; the actor is a display-only performer, the contact person is left out;
/// - strengths: a note; overall responsibility: `author`; every organisation with a part in
///   the plan: `contributor`.
///
/// Meetings, evaluations (SIP-kollen) and decisions are not mapped.
pub fn care_plan(plan: &Plan) -> Value {
    let content = plan.content.clone().unwrap_or_default();
    let subject = patient_reference(plan.participant_id.as_ref());

    let goals: Vec<(String, Value)> = content
        .goals
        .iter()
        .enumerate()
        .filter(|(_, goal)| !goal.text.trim().is_empty())
        .map(|(i, goal)| {
            let id = local_id("goal", &goal.id, i);
            let resource = Obj::resource("Goal")
                .with("id", id.clone())
                .with("lifecycleStatus", "active")
                .with("description", text_concept(&goal.text))
                .with("subject", subject.clone())
                .build();
            (id, resource)
        })
        .collect();
    let needs: Vec<(String, &Need, Value)> = content
        .needs
        .iter()
        .enumerate()
        .map(|(i, need)| {
            let id = local_id("need", &need.id, i);
            let resource = Obj::resource("Condition")
                .with("id", id.clone())
                .with("category", array([life_area_concept(need.life_area())]))
                .with("code", text_concept(&need.description))
                .with("subject", subject.clone())
                .build();
            (id, need, resource)
        })
        .collect();
    let need_reference = |need_id: &str| {
        needs
            .iter()
            .find(|(_, need, _)| !need_id.is_empty() && need.id == need_id)
            .map_or(
                Value::Null,
                |(id, _, _)| json!({ "reference": format!("#{id}") }),
            )
    };

    let activities = content
        .interventions
        .iter()
        .map(|i| intervention_activity(i, need_reference(&i.need_id)))
        .chain(content.other_actions.iter().map(other_action_activity))
        .chain(content.follow_ups.iter().map(follow_up_activity));

    let mut contributors: Vec<Value> = Vec::new();
    let organisations = content
        .interventions
        .iter()
        .map(|i| organisation_reference(i.responsible_organisation_id.as_ref()))
        .chain(
            content
                .follow_ups
                .iter()
                .map(|f| organisation_reference(f.organisation_id.as_ref())),
        );
    for organisation in organisations {
        if !organisation.is_null() && !contributors.contains(&organisation) {
            contributors.push(organisation);
        }
    }
    let author = content
        .overall_responsibility
        .as_ref()
        .map_or(Value::Null, |r| {
            organisation_reference(r.organisation_id.as_ref())
        });

    let contained = goals
        .iter()
        .map(|(_, goal)| goal.clone())
        .chain(needs.iter().map(|(_, _, need)| need.clone()));
    Obj::resource("CarePlan")
        .with("id", fhir_id(&plan.id))
        .with(
            "meta",
            meta(
                instant(plan.updated_at.as_ref()),
                plan.revision.as_ref().map(|r| r.value),
            ),
        )
        .with("contained", array(contained))
        .with("status", plan_status(plan.status()))
        .with("intent", "plan")
        .with(
            "category",
            array([concept(
                system::PLAN_ACTIVITY,
                "sip",
                "Coordinated individual plan",
                "Samordnad individuell plan (SIP)",
            )]),
        )
        .with("title", "SIP")
        .with("subject", subject)
        .with("created", instant(plan.created_at.as_ref()))
        .with("author", author)
        .with("contributor", array(contributors))
        .with(
            "addresses",
            array(
                needs
                    .iter()
                    .map(|(id, _, _)| json!({ "reference": format!("#{id}") })),
            ),
        )
        .with(
            "goal",
            array(
                goals
                    .iter()
                    .map(|(id, _)| json!({ "reference": format!("#{id}") })),
            ),
        )
        .with(
            "activity",
            array(activities.map(|detail| json!({ "detail": detail }))),
        )
        .with(
            "note",
            array([Obj::new().with("text", content.strengths.as_str()).build()]),
        )
        .build()
}

/// A contained resource's id: its own id when it has one, else its place in the list.
fn local_id(prefix: &str, id: &str, index: usize) -> String {
    if id.is_empty() {
        format!("{prefix}-{index}")
    } else {
        fhir_id(&format!("{prefix}-{id}"))
    }
}

fn life_area_concept(area: LifeArea) -> Value {
    let (code, display) = match area {
        LifeArea::Unspecified => return Value::Null,
        LifeArea::Housing => ("housing", "Housing"),
        LifeArea::Occupation => ("occupation", "Occupation and work"),
        LifeArea::Health => ("health", "Health"),
        LifeArea::SubstanceUse => ("substance-use", "Substance use"),
        LifeArea::Finances => ("finances", "Finances"),
        LifeArea::SocialNetwork => ("social-network", "Social network"),
        LifeArea::DailyLiving => ("daily-living", "Daily living"),
        LifeArea::Other => ("other", "Other"),
    };
    concept(system::LIFE_AREA, code, display, "")
}

fn intervention_activity(intervention: &Intervention, need: Value) -> Value {
    let (status, reason) = intervention_status(intervention.status());
    let (code, description) = match &intervention.kind {
        Some(intervention::Kind::CatalogueCode(code)) => (
            Obj::new()
                .with(
                    "coding",
                    array([coding(system::INTERVENTION_CATALOGUE, code, "")]),
                )
                .build(),
            "",
        ),
        Some(intervention::Kind::FreeText(text)) => (text_concept(text), text.as_str()),
        None => (Value::Null, ""),
    };
    Obj::new()
        .with("kind", "ServiceRequest")
        .with("code", code)
        .with("reasonReference", array([need]))
        .with("status", status)
        .with("statusReason", text_concept(reason))
        .with(
            "scheduledPeriod",
            period(
                date(intervention.start_on.as_ref()),
                date(intervention.end_on.as_ref()),
            ),
        )
        .with(
            "performer",
            array([
                organisation_reference(intervention.responsible_organisation_id.as_ref()),
                practitioner_reference(&intervention.responsible_staff_id),
            ]),
        )
        .with("description", description)
        .build()
}

/// A due date as a Timing with one event.
fn due(day: Option<String>) -> Value {
    day.map_or(Value::Null, |day| json!({ "event": [day] }))
}

fn other_action_activity(action: &OtherActorAction) -> Value {
    Obj::new()
        .with(
            "code",
            concept(
                system::PLAN_ACTIVITY,
                "other-actor-action",
                "Action by another actor",
                "",
            ),
        )
        .with("status", "unknown")
        .with("scheduledTiming", due(date(action.due_on.as_ref())))
        .with(
            "performer",
            array([Obj::new().with("display", action.actor.as_str()).build()]),
        )
        .with("description", action.description.as_str())
        .build()
}

fn follow_up_activity(follow_up: &FollowUp) -> Value {
    let completed = date(follow_up.completed_on.as_ref());
    Obj::new()
        .with(
            "code",
            concept(
                system::PLAN_ACTIVITY,
                "follow-up",
                "Follow-up",
                "Uppföljning",
            ),
        )
        .with(
            "status",
            if completed.is_some() {
                "completed"
            } else {
                "scheduled"
            },
        )
        .with("scheduledTiming", due(date(follow_up.due_on.as_ref())))
        .with(
            "performer",
            array([
                organisation_reference(follow_up.organisation_id.as_ref()),
                practitioner_reference(&follow_up.staff_id),
            ]),
        )
        .with("description", follow_up.description.as_str())
        .build()
}
