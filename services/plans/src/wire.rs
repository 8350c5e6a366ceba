//! Conversions between the `samsyn.plans.v1` messages and the domain: parsing requests into
//! domain values (collecting every field violation) and rendering domain values as messages.
//! Used by the API (requests, responses) and the store (change-feed payloads).

use chrono::Utc;
use samsyn_kit::time::{to_calendar_date, to_timestamp};
use samsyn_proto::common::v1 as common;
use samsyn_proto::plans::v1 as pb;

use crate::domain::Violations;
use crate::domain::catalogue::{CatalogueEntry, Principal};
use crate::domain::decision::{
    Decider, Decision, DecisionChange, DecisionOutcome, DecisionReceipt, DecisionSubject,
    Disposition, InboxState, ParkReason, ParkedDecision,
};
use crate::domain::plan::{
    Attendee, DecisionLink, Evaluation, EvaluationAnswer, EvaluationQuestion, FollowUp, Goal,
    Intervention, InterventionKind, InterventionStatus, LifeArea, MAX_ITEMS, MAX_MEETING_ITEMS,
    Meeting, Need, NoInterventionReason, OtherActorAction, Plan, PlanContent, PlanStatus,
    Responsibility, RevisionKind,
};
use crate::domain::repository::{DueFollowUp, PlanSummary, RevisionSummary};
use crate::domain::values::{
    CatalogueCode, Day, ExternalDecisionId, ItemId, OrganisationId, ParticipantId, PlanId, StaffId,
    TeamId, Text,
};

// ---------------------------------------------------------------- parsing

/// A required participant id.
pub fn participant_id(
    v: &mut Violations,
    field: &str,
    value: Option<&common::ParticipantId>,
) -> Option<ParticipantId> {
    v.check(
        &format!("{field}.value"),
        ParticipantId::parse(value.map(|p| p.value.as_str()).unwrap_or_default()),
    )
}

/// A required plan id.
pub fn plan_id(v: &mut Violations, field: &str, value: &str) -> Option<PlanId> {
    v.check(field, PlanId::parse(value))
}

/// A required revision (1 or more).
pub fn revision(v: &mut Violations, field: &str, value: Option<&common::Revision>) -> Option<u64> {
    match value.map(|r| r.value) {
        Some(n) if n > 0 => Some(n),
        _ => {
            v.add(format!("{field}.value"), "required, 1 or more");
            None
        }
    }
}

/// A required organisation id.
pub fn organisation_id(
    v: &mut Violations,
    field: &str,
    value: Option<&common::OrganisationId>,
) -> Option<OrganisationId> {
    v.check(
        &format!("{field}.value"),
        OrganisationId::parse(value.map(|o| o.value.as_str()).unwrap_or_default()),
    )
}

/// A required day.
pub fn day(v: &mut Violations, field: &str, value: Option<&common::CalendarDate>) -> Option<Day> {
    match value {
        Some(d) => v.check(field, Day::from_ymd(d.year, d.month, d.day)),
        None => {
            v.add(field, "required");
            None
        }
    }
}

/// An optional day; `Some(None)` when absent, `None` when present but invalid.
fn optional_day(
    v: &mut Violations,
    field: &str,
    value: Option<&common::CalendarDate>,
) -> Option<Option<Day>> {
    match value {
        None => Some(None),
        Some(d) => v
            .check(field, Day::from_ymd(d.year, d.month, d.day))
            .map(Some),
    }
}

/// An item id; a new one when empty.
fn item_id(v: &mut Violations, field: &str, value: &str) -> Option<ItemId> {
    if value.is_empty() {
        Some(ItemId::generate())
    } else {
        v.check(field, ItemId::parse(value))
    }
}

fn optional_code<T, E: std::fmt::Display>(
    v: &mut Violations,
    field: &str,
    value: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Option<Option<T>> {
    if value.is_empty() {
        Some(None)
    } else {
        v.check(field, parse(value)).map(Some)
    }
}

fn bounded<'a, T>(v: &mut Violations, field: &str, list: &'a [T], max: usize) -> &'a [T] {
    if list.len() > max {
        v.add(field, format!("at most {max} items"));
        &[]
    } else {
        list
    }
}

/// A need's reason for having no intervention; `Err` for a value outside the enum.
fn no_intervention_reason(value: i32) -> Result<Option<NoInterventionReason>, ()> {
    use pb::NoInterventionReason as R;
    Ok(Some(match R::try_from(value).map_err(|_| ())? {
        R::Unspecified => return Ok(None),
        R::ParticipantDeclines => NoInterventionReason::ParticipantDeclines,
        R::MotivationWork => NoInterventionReason::MotivationWork,
        R::NoneSuitable => NoInterventionReason::NoneSuitable,
        R::Denied => NoInterventionReason::Denied,
        R::MetOtherwise => NoInterventionReason::MetOtherwise,
        R::Other => NoInterventionReason::Other,
    }))
}

fn no_intervention_reason_to(reason: NoInterventionReason) -> pb::NoInterventionReason {
    use pb::NoInterventionReason as R;
    match reason {
        NoInterventionReason::ParticipantDeclines => R::ParticipantDeclines,
        NoInterventionReason::MotivationWork => R::MotivationWork,
        NoInterventionReason::NoneSuitable => R::NoneSuitable,
        NoInterventionReason::Denied => R::Denied,
        NoInterventionReason::MetOtherwise => R::MetOtherwise,
        NoInterventionReason::Other => R::Other,
    }
}

fn life_area(value: i32) -> Option<LifeArea> {
    Some(match pb::LifeArea::try_from(value).ok()? {
        pb::LifeArea::Unspecified => return None,
        pb::LifeArea::Housing => LifeArea::Housing,
        pb::LifeArea::Occupation => LifeArea::Occupation,
        pb::LifeArea::Health => LifeArea::Health,
        pb::LifeArea::SubstanceUse => LifeArea::SubstanceUse,
        pb::LifeArea::Finances => LifeArea::Finances,
        pb::LifeArea::SocialNetwork => LifeArea::SocialNetwork,
        pb::LifeArea::DailyLiving => LifeArea::DailyLiving,
        pb::LifeArea::Other => LifeArea::Other,
    })
}

fn intervention_status(value: i32) -> Option<InterventionStatus> {
    Some(match pb::InterventionStatus::try_from(value).ok()? {
        pb::InterventionStatus::Unspecified => return None,
        pb::InterventionStatus::Proposed => InterventionStatus::Proposed,
        pb::InterventionStatus::Applied => InterventionStatus::Applied,
        pb::InterventionStatus::Granted => InterventionStatus::Granted,
        pb::InterventionStatus::Denied => InterventionStatus::Denied,
        pb::InterventionStatus::Started => InterventionStatus::Started,
        pb::InterventionStatus::Paused => InterventionStatus::Paused,
        pb::InterventionStatus::Ended => InterventionStatus::Ended,
    })
}

fn outcome(value: i32) -> Option<DecisionOutcome> {
    Some(match pb::DecisionOutcome::try_from(value).ok()? {
        pb::DecisionOutcome::Unspecified => return None,
        pb::DecisionOutcome::Granted => DecisionOutcome::Granted,
        pb::DecisionOutcome::Denied => DecisionOutcome::Denied,
        pb::DecisionOutcome::PartlyGranted => DecisionOutcome::PartlyGranted,
    })
}

/// A principal; `None` for unspecified or unknown values.
pub fn principal(value: i32) -> Option<Principal> {
    match pb::Principal::try_from(value).ok()? {
        pb::Principal::Unspecified => None,
        pb::Principal::Region => Some(Principal::Region),
        pb::Principal::Municipality => Some(Principal::Municipality),
    }
}

fn required<T>(v: &mut Violations, field: &str, value: Option<T>, what: &str) -> Option<T> {
    if value.is_none() {
        v.add(field, format!("required: {what}"));
    }
    value
}

/// Plan content, with the rules that span its items checked.
pub fn content(
    v: &mut Violations,
    field: &str,
    value: Option<&pb::PlanContent>,
) -> Option<PlanContent> {
    let Some(c) = value else {
        v.add(field, "required");
        return None;
    };
    let before = v.0.len();
    let goals: Vec<Goal> = bounded(v, &format!("{field}.goals"), &c.goals, MAX_ITEMS)
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            let p = format!("{field}.goals[{i}]");
            let id = item_id(v, &format!("{p}.id"), &g.id);
            let text = v.check(&format!("{p}.text"), Text::required(&g.text, Text::MEDIUM));
            Some(Goal {
                id: id?,
                text: text?,
            })
        })
        .collect();
    let strengths = v.check(
        &format!("{field}.strengths"),
        Text::optional(&c.strengths, Text::LONG),
    );
    let overall_responsibility = match &c.overall_responsibility {
        None => Some(None),
        Some(r) => {
            let p = format!("{field}.overall_responsibility");
            let org = organisation_id(
                v,
                &format!("{p}.organisation_id"),
                r.organisation_id.as_ref(),
            );
            let staff = optional_code(v, &format!("{p}.staff_id"), &r.staff_id, StaffId::parse);
            org.zip(staff).map(|(organisation_id, staff_id)| {
                Some(Responsibility {
                    organisation_id,
                    staff_id,
                })
            })
        }
    };
    let needs: Vec<Need> = bounded(v, &format!("{field}.needs"), &c.needs, MAX_ITEMS)
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let p = format!("{field}.needs[{i}]");
            let id = item_id(v, &format!("{p}.id"), &n.id);
            let area = required(
                v,
                &format!("{p}.life_area"),
                life_area(n.life_area),
                "a life area",
            );
            let description = v.check(
                &format!("{p}.description"),
                Text::required(&n.description, Text::MEDIUM),
            );
            let reason = match no_intervention_reason(n.no_intervention_reason) {
                Ok(reason) => Some(reason),
                Err(()) => {
                    v.add(format!("{p}.no_intervention_reason"), "not a known reason");
                    None
                }
            };
            Some(Need {
                id: id?,
                life_area: area?,
                description: description?,
                no_intervention_reason: reason?,
            })
        })
        .collect();
    let interventions: Vec<Intervention> = bounded(
        v,
        &format!("{field}.interventions"),
        &c.interventions,
        MAX_ITEMS,
    )
    .iter()
    .enumerate()
    .filter_map(|(i, n)| intervention(v, &format!("{field}.interventions[{i}]"), n))
    .collect();
    let other_actions: Vec<OtherActorAction> = bounded(
        v,
        &format!("{field}.other_actions"),
        &c.other_actions,
        MAX_ITEMS,
    )
    .iter()
    .enumerate()
    .filter_map(|(i, a)| {
        let p = format!("{field}.other_actions[{i}]");
        let id = item_id(v, &format!("{p}.id"), &a.id);
        let actor = v.check(&format!("{p}.actor"), Text::required(&a.actor, Text::SHORT));
        let description = v.check(
            &format!("{p}.description"),
            Text::required(&a.description, Text::MEDIUM),
        );
        let contact = v.check(
            &format!("{p}.contact"),
            Text::optional(&a.contact, Text::SHORT),
        );
        let due_on = optional_day(v, &format!("{p}.due_on"), a.due_on.as_ref());
        Some(OtherActorAction {
            id: id?,
            actor: actor?,
            description: description?,
            contact: contact?,
            due_on: due_on?,
        })
    })
    .collect();
    let follow_ups: Vec<FollowUp> =
        bounded(v, &format!("{field}.follow_ups"), &c.follow_ups, MAX_ITEMS)
            .iter()
            .enumerate()
            .filter_map(|(i, f)| follow_up(v, &format!("{field}.follow_ups[{i}]"), f))
            .collect();
    if v.0.len() > before {
        return None;
    }
    let content = PlanContent {
        goals,
        strengths: strengths?,
        overall_responsibility: overall_responsibility?,
        needs,
        interventions,
        other_actions,
        follow_ups,
        approved_for_participant: c.approved_for_participant,
    };
    content.check(field, v);
    (v.0.len() == before).then_some(content)
}

fn intervention(v: &mut Violations, p: &str, n: &pb::Intervention) -> Option<Intervention> {
    let id = item_id(v, &format!("{p}.id"), &n.id);
    let need_id = v.check(&format!("{p}.need_id"), ItemId::parse(&n.need_id));
    let org = organisation_id(
        v,
        &format!("{p}.responsible_organisation_id"),
        n.responsible_organisation_id.as_ref(),
    );
    let staff = optional_code(
        v,
        &format!("{p}.responsible_staff_id"),
        &n.responsible_staff_id,
        StaffId::parse,
    );
    let kind = match &n.kind {
        Some(pb::intervention::Kind::CatalogueCode(code)) => v
            .check(&format!("{p}.catalogue_code"), CatalogueCode::parse(code))
            .map(InterventionKind::Catalogue),
        Some(pb::intervention::Kind::FreeText(text)) => v
            .check(
                &format!("{p}.free_text"),
                Text::required(text, Text::MEDIUM),
            )
            .map(InterventionKind::FreeText),
        None => {
            v.add(format!("{p}.kind"), "required: catalogue_code or free_text");
            None
        }
    };
    let status = required(
        v,
        &format!("{p}.status"),
        intervention_status(n.status),
        "a status",
    );
    let start_on = optional_day(v, &format!("{p}.start_on"), n.start_on.as_ref());
    let end_on = optional_day(v, &format!("{p}.end_on"), n.end_on.as_ref());
    Some(Intervention {
        id: id?,
        need_id: need_id?,
        responsible_organisation_id: org?,
        responsible_staff_id: staff?,
        kind: kind?,
        status: status?,
        start_on: start_on?,
        end_on: end_on?,
        decision: None,
    })
}

fn follow_up(v: &mut Violations, p: &str, f: &pb::FollowUp) -> Option<FollowUp> {
    let id = item_id(v, &format!("{p}.id"), &f.id);
    let due_on = day(v, &format!("{p}.due_on"), f.due_on.as_ref());
    let org = organisation_id(
        v,
        &format!("{p}.organisation_id"),
        f.organisation_id.as_ref(),
    );
    let team = optional_code(v, &format!("{p}.team_id"), &f.team_id, TeamId::parse);
    let staff = optional_code(v, &format!("{p}.staff_id"), &f.staff_id, StaffId::parse);
    let description = v.check(
        &format!("{p}.description"),
        Text::required(&f.description, Text::MEDIUM),
    );
    let completed_on = optional_day(v, &format!("{p}.completed_on"), f.completed_on.as_ref());
    Some(FollowUp {
        id: id?,
        due_on: due_on?,
        organisation_id: org?,
        team_id: team?,
        staff_id: staff?,
        description: description?,
        completed_on: completed_on?,
    })
}

/// A meeting to record.
pub fn meeting(v: &mut Violations, field: &str, value: Option<&pb::Meeting>) -> Option<Meeting> {
    let Some(m) = value else {
        v.add(field, "required");
        return None;
    };
    let before = v.0.len();
    let id = item_id(v, &format!("{field}.id"), &m.id);
    let held_on = day(v, &format!("{field}.held_on"), m.held_on.as_ref());
    let attendees_field = format!("{field}.attendees");
    if m.attendees.is_empty() {
        v.add(&attendees_field, "at least one attendee");
    }
    let attendees: Vec<Attendee> = bounded(v, &attendees_field, &m.attendees, MAX_MEETING_ITEMS)
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let p = format!("{attendees_field}[{i}]");
            match &a.who {
                Some(pb::attendee::Who::Staff(s)) => {
                    let staff_id =
                        v.check(&format!("{p}.staff.staff_id"), StaffId::parse(&s.staff_id));
                    let org = match &s.organisation_id {
                        None => Some(None),
                        Some(o) => v
                            .check(
                                &format!("{p}.staff.organisation_id.value"),
                                OrganisationId::parse(&o.value),
                            )
                            .map(Some),
                    };
                    let unit =
                        optional_code(v, &format!("{p}.staff.unit_id"), &s.unit_id, TeamId::parse);
                    Some(Attendee::Staff {
                        staff_id: staff_id?,
                        organisation_id: org?,
                        unit_id: unit?,
                    })
                }
                Some(pb::attendee::Who::Participant(true)) => Some(Attendee::Participant),
                Some(pb::attendee::Who::Relative(text)) => v
                    .check(&format!("{p}.relative"), Text::required(text, Text::SHORT))
                    .map(Attendee::Relative),
                Some(pb::attendee::Who::Other(text)) => v
                    .check(&format!("{p}.other"), Text::required(text, Text::SHORT))
                    .map(Attendee::Other),
                Some(pb::attendee::Who::Participant(false)) | None => {
                    v.add(
                        format!("{p}.who"),
                        "required: staff, participant, relative or other",
                    );
                    None
                }
            }
        })
        .collect();
    let decisions: Vec<Text> = bounded(
        v,
        &format!("{field}.decisions"),
        &m.decisions,
        MAX_MEETING_ITEMS,
    )
    .iter()
    .enumerate()
    .filter_map(|(i, d)| {
        v.check(
            &format!("{field}.decisions[{i}]"),
            Text::required(d, Text::MEDIUM),
        )
    })
    .collect();
    if v.0.len() > before {
        return None;
    }
    Some(Meeting {
        id: id?,
        held_on: held_on?,
        attendees,
        decisions,
    })
}

/// The participant's evaluation to record; `recorded_at` is now.
pub fn evaluation(
    v: &mut Violations,
    field: &str,
    value: Option<&pb::Evaluation>,
) -> Option<Evaluation> {
    let Some(e) = value else {
        v.add(field, "required");
        return None;
    };
    let before = v.0.len();
    let id = item_id(v, &format!("{field}.id"), &e.id);
    let items: Vec<_> = bounded(v, &format!("{field}.items"), &e.items, 20)
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let p = format!("{field}.items[{i}]");
            let question = match pb::EvaluationQuestion::try_from(item.question) {
                Ok(pb::EvaluationQuestion::TookPart) => Some(EvaluationQuestion::TookPart),
                Ok(pb::EvaluationQuestion::GoalsAreMine) => Some(EvaluationQuestion::GoalsAreMine),
                Ok(pb::EvaluationQuestion::KnowsWhoDoesWhat) => {
                    Some(EvaluationQuestion::KnowsWhoDoesWhat)
                }
                Ok(pb::EvaluationQuestion::KnowsFollowUp) => {
                    Some(EvaluationQuestion::KnowsFollowUp)
                }
                Ok(pb::EvaluationQuestion::PlanHelps) => Some(EvaluationQuestion::PlanHelps),
                _ => None,
            };
            let answer = match pb::EvaluationAnswer::try_from(item.answer) {
                Ok(pb::EvaluationAnswer::Yes) => Some(EvaluationAnswer::Yes),
                Ok(pb::EvaluationAnswer::Partly) => Some(EvaluationAnswer::Partly),
                Ok(pb::EvaluationAnswer::No) => Some(EvaluationAnswer::No),
                _ => None,
            };
            let question = required(v, &format!("{p}.question"), question, "a question");
            let answer = required(v, &format!("{p}.answer"), answer, "yes, partly or no");
            Some((question?, answer?))
        })
        .collect();
    let comment = v.check(
        &format!("{field}.comment"),
        Text::optional(&e.comment, Text::LONG),
    );
    if v.0.len() > before {
        return None;
    }
    let evaluation = Evaluation {
        id: id?,
        recorded_at: Utc::now(),
        items,
        comment: comment?,
    };
    evaluation.check(field, v);
    (v.0.len() == before).then_some(evaluation)
}

/// A pushed decision.
pub fn decision(v: &mut Violations, field: &str, value: Option<&pb::Decision>) -> Option<Decision> {
    let Some(d) = value else {
        v.add(field, "required");
        return None;
    };
    let before = v.0.len();
    let external = v.check(
        &format!("{field}.external_decision_id"),
        ExternalDecisionId::parse(&d.external_decision_id),
    );
    let org = organisation_id(
        v,
        &format!("{field}.organisation_id"),
        d.organisation_id.as_ref(),
    );
    let participant = participant_id(
        v,
        &format!("{field}.participant_id"),
        d.participant_id.as_ref(),
    );
    let subject = match &d.subject {
        Some(pb::decision::Subject::InterventionId(id)) => v
            .check(&format!("{field}.intervention_id"), ItemId::parse(id))
            .map(DecisionSubject::Intervention),
        Some(pb::decision::Subject::CatalogueCode(code)) => v
            .check(
                &format!("{field}.catalogue_code"),
                CatalogueCode::parse(code),
            )
            .map(DecisionSubject::CatalogueCode),
        // The gateway translates a case system's own terms; they never reach the service.
        Some(pb::decision::Subject::DecisionTypeCode(_)) => {
            v.add(
                format!("{field}.decision_type_code"),
                "resolved by the gateway from a linked case system's code mapping",
            );
            None
        }
        None => {
            v.add(
                format!("{field}.subject"),
                "required: intervention_id or catalogue_code",
            );
            None
        }
    };
    if !d.personal_identity_number.is_empty() {
        v.add(
            format!("{field}.personal_identity_number"),
            "resolved by the gateway; send participant_id",
        );
    }
    let outcome = required(
        v,
        &format!("{field}.outcome"),
        outcome(d.outcome),
        "granted, denied or partly granted",
    );
    let valid_from = day(v, &format!("{field}.valid_from"), d.valid_from.as_ref());
    let valid_until = optional_day(v, &format!("{field}.valid_until"), d.valid_until.as_ref());
    if let (Some(from), Some(Some(until))) = (valid_from, valid_until)
        && until < from
    {
        v.add(format!("{field}.valid_until"), "before valid_from");
    }
    let decided_by = match &d.decided_by {
        None => {
            v.add(format!("{field}.decided_by"), "required");
            None
        }
        Some(s) => {
            let staff = v.check(
                &format!("{field}.decided_by.staff_id"),
                StaffId::parse(&s.staff_id),
            );
            let unit = optional_code(
                v,
                &format!("{field}.decided_by.unit_id"),
                &s.unit_id,
                TeamId::parse,
            );
            staff
                .zip(unit)
                .map(|(staff_id, unit_id)| Decider { staff_id, unit_id })
        }
    };
    let decided_at = match d.decided_at.as_ref() {
        Some(t) => v.check(
            &format!("{field}.decided_at"),
            samsyn_kit::time::parse_timestamp(t),
        ),
        None => {
            v.add(format!("{field}.decided_at"), "required");
            None
        }
    };
    let version = d.version.max(1);
    if version > MAX_DECISION_VERSION {
        v.add(
            format!("{field}.version"),
            format!("at most {MAX_DECISION_VERSION}"),
        );
    }
    let change = match pb::DecisionChange::try_from(d.change) {
        Ok(pb::DecisionChange::Unspecified) => Some(DecisionChange::Original),
        Ok(pb::DecisionChange::Amended) => Some(DecisionChange::Amended),
        Ok(pb::DecisionChange::Withdrawn) => Some(DecisionChange::Withdrawn),
        Ok(pb::DecisionChange::Appealed) => Some(DecisionChange::Appealed),
        Ok(pb::DecisionChange::AppealDecided) => Some(DecisionChange::AppealDecided),
        Err(_) => {
            v.add(format!("{field}.change"), "not a decision change");
            None
        }
    };
    if let Some(change) = change
        && (version == 1) != (change == DecisionChange::Original)
    {
        v.add(
            format!("{field}.change"),
            "unspecified for version 1, and a change (amended, withdrawn, appealed, appeal decided) for every later version",
        );
    }
    if v.0.len() > before {
        return None;
    }
    Some(Decision {
        version,
        change: change?,
        external_decision_id: external?,
        organisation_id: org?,
        participant_id: participant?,
        subject: subject?,
        outcome: outcome?,
        valid_from: valid_from?,
        valid_until: valid_until?,
        decided_by: decided_by?,
        decided_at: decided_at?,
    })
}

/// A catalogue entry to add or change.
pub fn catalogue_entry(
    v: &mut Violations,
    field: &str,
    value: Option<&pb::CatalogueEntry>,
) -> Option<CatalogueEntry> {
    let Some(e) = value else {
        v.add(field, "required");
        return None;
    };
    let code = v.check(&format!("{field}.code"), CatalogueCode::parse(&e.code));
    let principal = required(
        v,
        &format!("{field}.principal"),
        principal(e.principal),
        "region or municipality",
    );
    let name = v.check(
        &format!("{field}.name"),
        Text::required(&e.name, Text::SHORT),
    );
    Some(CatalogueEntry {
        code: code?,
        principal: principal?,
        name: name?,
        active: e.active,
    })
}

// ---------------------------------------------------------------- rendering

fn participant(id: ParticipantId) -> common::ParticipantId {
    common::ParticipantId {
        value: id.to_string(),
    }
}

fn org(id: &OrganisationId) -> common::OrganisationId {
    common::OrganisationId {
        value: id.to_string(),
    }
}

fn date(day: Day) -> common::CalendarDate {
    to_calendar_date(day.date())
}

fn text_of<T: ToString>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

fn revision_of(value: u64) -> common::Revision {
    common::Revision { value }
}

fn status(status: PlanStatus) -> pb::PlanStatus {
    match status {
        PlanStatus::Active => pb::PlanStatus::Active,
        PlanStatus::Closed => pb::PlanStatus::Closed,
    }
}

fn outcome_to(outcome: DecisionOutcome) -> pb::DecisionOutcome {
    match outcome {
        DecisionOutcome::Granted => pb::DecisionOutcome::Granted,
        DecisionOutcome::Denied => pb::DecisionOutcome::Denied,
        DecisionOutcome::PartlyGranted => pb::DecisionOutcome::PartlyGranted,
    }
}

fn follow_up_to(f: &FollowUp) -> pb::FollowUp {
    pb::FollowUp {
        id: f.id.to_string(),
        due_on: Some(date(f.due_on)),
        organisation_id: Some(org(&f.organisation_id)),
        team_id: text_of(f.team_id.as_ref()),
        staff_id: text_of(f.staff_id.as_ref()),
        description: f.description.as_str().to_owned(),
        completed_on: f.completed_on.map(date),
    }
}

fn intervention_to(i: &Intervention) -> pb::Intervention {
    pb::Intervention {
        id: i.id.to_string(),
        need_id: i.need_id.to_string(),
        responsible_organisation_id: Some(org(&i.responsible_organisation_id)),
        responsible_staff_id: text_of(i.responsible_staff_id.as_ref()),
        kind: Some(match &i.kind {
            InterventionKind::Catalogue(code) => {
                pb::intervention::Kind::CatalogueCode(code.as_str().to_owned())
            }
            InterventionKind::FreeText(text) => {
                pb::intervention::Kind::FreeText(text.as_str().to_owned())
            }
        }),
        status: match i.status {
            InterventionStatus::Proposed => pb::InterventionStatus::Proposed,
            InterventionStatus::Applied => pb::InterventionStatus::Applied,
            InterventionStatus::Granted => pb::InterventionStatus::Granted,
            InterventionStatus::Denied => pb::InterventionStatus::Denied,
            InterventionStatus::Started => pb::InterventionStatus::Started,
            InterventionStatus::Paused => pb::InterventionStatus::Paused,
            InterventionStatus::Ended => pb::InterventionStatus::Ended,
        } as i32,
        start_on: i.start_on.map(date),
        end_on: i.end_on.map(date),
        decision: i
            .decision
            .as_ref()
            .map(|d: &DecisionLink| pb::DecisionLink {
                external_decision_id: d.external_decision_id.to_string(),
                outcome: outcome_to(d.outcome) as i32,
                valid_from: Some(date(d.valid_from)),
                valid_until: d.valid_until.map(date),
                version: d.version,
                change: change_to(d.change) as i32,
            }),
    }
}

fn content_to(c: &PlanContent) -> pb::PlanContent {
    pb::PlanContent {
        goals: c
            .goals
            .iter()
            .map(|g| pb::Goal {
                id: g.id.to_string(),
                text: g.text.as_str().to_owned(),
            })
            .collect(),
        strengths: c.strengths.as_str().to_owned(),
        overall_responsibility: c
            .overall_responsibility
            .as_ref()
            .map(|r| pb::Responsibility {
                organisation_id: Some(org(&r.organisation_id)),
                staff_id: text_of(r.staff_id.as_ref()),
            }),
        needs: c
            .needs
            .iter()
            .map(|n| pb::Need {
                id: n.id.to_string(),
                life_area: match n.life_area {
                    LifeArea::Housing => pb::LifeArea::Housing,
                    LifeArea::Occupation => pb::LifeArea::Occupation,
                    LifeArea::Health => pb::LifeArea::Health,
                    LifeArea::SubstanceUse => pb::LifeArea::SubstanceUse,
                    LifeArea::Finances => pb::LifeArea::Finances,
                    LifeArea::SocialNetwork => pb::LifeArea::SocialNetwork,
                    LifeArea::DailyLiving => pb::LifeArea::DailyLiving,
                    LifeArea::Other => pb::LifeArea::Other,
                } as i32,
                description: n.description.as_str().to_owned(),
                no_intervention_reason: n
                    .no_intervention_reason
                    .map_or(0, |r| no_intervention_reason_to(r) as i32),
            })
            .collect(),
        interventions: c.interventions.iter().map(intervention_to).collect(),
        other_actions: c
            .other_actions
            .iter()
            .map(|a| pb::OtherActorAction {
                id: a.id.to_string(),
                actor: a.actor.as_str().to_owned(),
                description: a.description.as_str().to_owned(),
                contact: a.contact.as_str().to_owned(),
                due_on: a.due_on.map(date),
            })
            .collect(),
        follow_ups: c.follow_ups.iter().map(follow_up_to).collect(),
        approved_for_participant: c.approved_for_participant,
    }
}

fn meeting_to(m: &Meeting) -> pb::Meeting {
    pb::Meeting {
        id: m.id.to_string(),
        held_on: Some(date(m.held_on)),
        attendees: m
            .attendees
            .iter()
            .map(|a| pb::Attendee {
                who: Some(match a {
                    Attendee::Staff {
                        staff_id,
                        organisation_id,
                        unit_id,
                    } => pb::attendee::Who::Staff(common::StaffRef {
                        staff_id: staff_id.to_string(),
                        organisation_id: organisation_id.as_ref().map(org),
                        unit_id: text_of(unit_id.as_ref()),
                    }),
                    Attendee::Participant => pb::attendee::Who::Participant(true),
                    Attendee::Relative(text) => {
                        pb::attendee::Who::Relative(text.as_str().to_owned())
                    }
                    Attendee::Other(text) => pb::attendee::Who::Other(text.as_str().to_owned()),
                }),
            })
            .collect(),
        decisions: m.decisions.iter().map(|d| d.as_str().to_owned()).collect(),
    }
}

fn evaluation_to(e: &Evaluation) -> pb::Evaluation {
    pb::Evaluation {
        id: e.id.to_string(),
        recorded_at: Some(to_timestamp(e.recorded_at)),
        items: e
            .items
            .iter()
            .map(|(q, a)| pb::EvaluationItem {
                question: match q {
                    EvaluationQuestion::TookPart => pb::EvaluationQuestion::TookPart,
                    EvaluationQuestion::GoalsAreMine => pb::EvaluationQuestion::GoalsAreMine,
                    EvaluationQuestion::KnowsWhoDoesWhat => {
                        pb::EvaluationQuestion::KnowsWhoDoesWhat
                    }
                    EvaluationQuestion::KnowsFollowUp => pb::EvaluationQuestion::KnowsFollowUp,
                    EvaluationQuestion::PlanHelps => pb::EvaluationQuestion::PlanHelps,
                } as i32,
                answer: match a {
                    EvaluationAnswer::Yes => pb::EvaluationAnswer::Yes,
                    EvaluationAnswer::Partly => pb::EvaluationAnswer::Partly,
                    EvaluationAnswer::No => pb::EvaluationAnswer::No,
                } as i32,
            })
            .collect(),
        comment: e.comment.as_str().to_owned(),
    }
}

/// The message of a decision.
pub fn decision_to(d: &Decision) -> pb::Decision {
    pb::Decision {
        external_decision_id: d.external_decision_id.to_string(),
        organisation_id: Some(org(&d.organisation_id)),
        participant_id: Some(participant(d.participant_id)),
        subject: Some(match &d.subject {
            DecisionSubject::Intervention(id) => {
                pb::decision::Subject::InterventionId(id.to_string())
            }
            DecisionSubject::CatalogueCode(code) => {
                pb::decision::Subject::CatalogueCode(code.as_str().to_owned())
            }
        }),
        outcome: outcome_to(d.outcome) as i32,
        valid_from: Some(date(d.valid_from)),
        valid_until: d.valid_until.map(date),
        decided_by: Some(common::StaffRef {
            staff_id: d.decided_by.staff_id.to_string(),
            organisation_id: Some(org(&d.organisation_id)),
            unit_id: text_of(d.decided_by.unit_id.as_ref()),
        }),
        decided_at: Some(to_timestamp(d.decided_at)),
        personal_identity_number: String::new(),
        version: d.version,
        change: change_to(d.change) as i32,
    }
}

fn change_to(change: DecisionChange) -> pb::DecisionChange {
    match change {
        DecisionChange::Original => pb::DecisionChange::Unspecified,
        DecisionChange::Amended => pb::DecisionChange::Amended,
        DecisionChange::Withdrawn => pb::DecisionChange::Withdrawn,
        DecisionChange::Appealed => pb::DecisionChange::Appealed,
        DecisionChange::AppealDecided => pb::DecisionChange::AppealDecided,
    }
}

/// The highest version a decision may reach.
pub const MAX_DECISION_VERSION: u32 = 1_000;

/// The message of a plan.
pub fn plan_to(p: &Plan) -> pb::Plan {
    pb::Plan {
        id: p.id.to_string(),
        participant_id: Some(participant(p.participant_id)),
        status: status(p.status) as i32,
        revision: Some(revision_of(p.revision)),
        created_at: Some(to_timestamp(p.created_at)),
        updated_at: Some(to_timestamp(p.updated_at)),
        content: Some(content_to(&p.content)),
        meetings: p.meetings.iter().map(meeting_to).collect(),
        evaluations: p.evaluations.iter().map(evaluation_to).collect(),
        decisions: p.decisions.iter().map(decision_to).collect(),
    }
}

/// The message of a plan summary.
pub fn summary_to(s: &PlanSummary) -> pb::PlanSummary {
    pb::PlanSummary {
        id: s.id.to_string(),
        participant_id: Some(participant(s.participant_id)),
        status: status(s.status) as i32,
        revision: Some(revision_of(s.revision)),
        created_at: Some(to_timestamp(s.created_at)),
        updated_at: Some(to_timestamp(s.updated_at)),
    }
}

/// The message of a revision summary.
pub fn revision_summary_to(r: &RevisionSummary) -> pb::PlanRevisionSummary {
    pb::PlanRevisionSummary {
        revision: Some(revision_of(r.revision)),
        kind: match r.kind {
            RevisionKind::Created => pb::RevisionKind::Created,
            RevisionKind::ContentUpdated => pb::RevisionKind::ContentUpdated,
            RevisionKind::MeetingRecorded => pb::RevisionKind::MeetingRecorded,
            RevisionKind::EvaluationRecorded => pb::RevisionKind::EvaluationRecorded,
            RevisionKind::DecisionRecorded => pb::RevisionKind::DecisionRecorded,
            RevisionKind::Closed => pb::RevisionKind::Closed,
            RevisionKind::ParkedDecisionLinked => pb::RevisionKind::ParkedDecisionLinked,
            RevisionKind::ParkedDecisionDismissed => pb::RevisionKind::ParkedDecisionDismissed,
        } as i32,
        recorded_at: Some(to_timestamp(r.recorded_at)),
        inbox_id: r
            .inbox
            .as_ref()
            .map(|n| n.inbox_id.to_string())
            .unwrap_or_default(),
        external_decision_id: r
            .inbox
            .as_ref()
            .map(|n| n.external_decision_id.clone())
            .unwrap_or_default(),
        resolved_by: r.inbox.as_ref().map(|n| common::StaffRef {
            staff_id: n.resolved_by.staff_id.to_string(),
            organisation_id: Some(org(&n.resolved_by.organisation_id)),
            unit_id: text_of(n.resolved_by.unit_id.as_ref()),
        }),
        dismissal_reason: r
            .inbox
            .as_ref()
            .and_then(|n| n.dismissal_reason.as_ref())
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// The message of a due follow-up; overdue when due before `as_of`.
pub fn due_follow_up_to(d: &DueFollowUp, as_of: Day) -> pb::DueFollowUp {
    pb::DueFollowUp {
        participant_id: Some(participant(d.participant_id)),
        plan_id: d.plan_id.to_string(),
        follow_up: Some(follow_up_to(&d.follow_up)),
        overdue: d.follow_up.due_on < as_of,
    }
}

/// The message of a catalogue entry.
pub fn catalogue_entry_to(e: &CatalogueEntry) -> pb::CatalogueEntry {
    pb::CatalogueEntry {
        code: e.code.as_str().to_owned(),
        principal: match e.principal {
            Principal::Region => pb::Principal::Region,
            Principal::Municipality => pb::Principal::Municipality,
        } as i32,
        name: e.name.as_str().to_owned(),
        active: e.active,
    }
}

/// The message of a decision receipt.
pub fn receipt_to(r: &DecisionReceipt) -> pb::PushDecisionResponse {
    match &r.disposition {
        Disposition::Applied {
            plan_id,
            intervention_id,
            plan_revision,
        } => pb::PushDecisionResponse {
            plan_id: plan_id.to_string(),
            intervention_id: intervention_id.to_string(),
            plan_revision: Some(revision_of(*plan_revision)),
            replayed: r.replayed,
            disposition: pb::DecisionDisposition::Applied as i32,
            ..Default::default()
        },
        Disposition::Parked { inbox_id, reason } => pb::PushDecisionResponse {
            replayed: r.replayed,
            disposition: pb::DecisionDisposition::Parked as i32,
            inbox_id: inbox_id.to_string(),
            park_reason: park_reason_to(*reason) as i32,
            ..Default::default()
        },
    }
}

fn park_reason_to(reason: ParkReason) -> pb::ParkReason {
    match reason {
        ParkReason::NoActivePlan => pb::ParkReason::NoActivePlan,
        ParkReason::NoMatchingIntervention => pb::ParkReason::NoMatchingIntervention,
        ParkReason::Ambiguous => pb::ParkReason::Ambiguous,
    }
}

/// The message of a decision in the inbox.
pub fn parked_to(p: &ParkedDecision) -> pb::ParkedDecision {
    let mut message = pb::ParkedDecision {
        inbox_id: p.inbox_id.to_string(),
        decision: Some(decision_to(&p.decision)),
        reason: park_reason_to(p.reason) as i32,
        parked_at: Some(to_timestamp(p.parked_at)),
        team_ids: p.teams.iter().map(ToString::to_string).collect(),
        ..Default::default()
    };
    message.state = match &p.state {
        InboxState::Parked => pb::InboxState::Parked,
        InboxState::Linked {
            plan_id,
            intervention_id,
        } => {
            message.plan_id = plan_id.to_string();
            message.intervention_id = intervention_id.to_string();
            pb::InboxState::Linked
        }
        InboxState::Dismissed { reason } => {
            message.dismissal_reason = reason.as_str().to_owned();
            pb::InboxState::Dismissed
        }
    } as i32;
    if let Some((by, at)) = &p.resolved {
        message.resolved_by = Some(common::StaffRef {
            staff_id: by.staff_id.to_string(),
            organisation_id: Some(org(&by.organisation_id)),
            unit_id: text_of(by.unit_id.as_ref()),
        });
        message.resolved_at = Some(to_timestamp(*at));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &Violations) -> Vec<&str> {
        v.0.iter().map(|(field, _)| field.as_str()).collect()
    }

    #[test]
    fn an_empty_decision_names_every_missing_field() {
        let mut v = Violations::default();
        assert!(decision(&mut v, "decision", Some(&pb::Decision::default())).is_none());
        assert_eq!(
            fields(&v),
            [
                "decision.external_decision_id",
                "decision.organisation_id.value",
                "decision.participant_id.value",
                "decision.subject",
                "decision.outcome",
                "decision.valid_from",
                "decision.decided_by",
                "decision.decided_at",
            ]
        );
    }

    #[test]
    fn content_refuses_what_would_make_a_broken_plan() {
        let need = pb::Need {
            id: "6a1c1c1e-0000-4000-8000-000000000001".into(),
            life_area: pb::LifeArea::Finances as i32,
            description: "Skulder hos Kronofogden".into(),
            no_intervention_reason: 0,
        };
        let twice = pb::PlanContent {
            goals: vec![],
            needs: vec![need.clone(), need],
            follow_ups: vec![pb::FollowUp::default()],
            ..pb::PlanContent::default()
        };
        let mut v = Violations::default();
        assert!(content(&mut v, "content", Some(&twice)).is_none());
        assert_eq!(
            fields(&v),
            [
                "content.follow_ups[0].due_on",
                "content.follow_ups[0].organisation_id.value",
                "content.follow_ups[0].description",
            ]
        );
        let twice = pb::PlanContent {
            follow_ups: vec![],
            ..twice
        };
        let mut v = Violations::default();
        assert!(content(&mut v, "content", Some(&twice)).is_none());
        assert_eq!(fields(&v), ["content.goals", "content.needs[1].id"]);
    }

    #[test]
    fn rendering_keeps_what_parsing_accepted() {
        let sent = pb::PlanContent {
            goals: vec![pb::Goal {
                id: "6a1c1c1e-0000-4000-8000-000000000002".into(),
                text: "Klara mig själv, utan att någon ringer varje dag".into(),
            }],
            strengths: "Tålmodig\nHar en hund, Rökki".into(),
            approved_for_participant: true,
            ..pb::PlanContent::default()
        };
        let mut v = Violations::default();
        let parsed = content(&mut v, "content", Some(&sent)).unwrap();
        assert_eq!(content_to(&parsed), sent);
    }
}
