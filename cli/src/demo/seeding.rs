//! Seeding the demo into the services, one participant's story at a time.

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use chrono::Datelike;
use samsyn_kit::time::to_timestamp;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::{
    CalendarDate, DataCategory, OrganisationId, OrganisationKind, ParticipantId, Revision, StaffRef,
};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::plans::v1 as plans_pb;

use super::Clients;
use super::cast::{
    BoardDef, DEMO_STUDY, GOALS, HELSINGBORG, MALMO, REGION, STRENGTHS, Sharing, Spec, StaffDef,
    Stage, coordinator_of, staff,
};

/// Today's date in UTC, moved by `days`.
pub(super) fn day(days: i64) -> CalendarDate {
    let date = (chrono::Utc::now() + chrono::Duration::days(days)).date_naive();
    CalendarDate {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    }
}

/// Now, moved by `days` (either way).
pub(super) fn days_from_now(days: i64) -> SystemTime {
    let shift = Duration::from_secs(days.unsigned_abs() * 86_400);
    let now = SystemTime::now();
    if days < 0 { now - shift } else { now + shift }
}

pub(super) fn pid(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: id.to_owned(),
    })
}

pub(super) fn org(id: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: id.to_owned(),
    })
}

pub(super) fn staff_ref(who: &StaffDef) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: who.id.to_owned(),
        organisation_id: org(who.organisation),
        unit_id: who.unit.to_owned(),
    })
}

pub(super) fn revision(value: u64) -> Option<Revision> {
    Some(Revision { value })
}

pub(super) fn actor(who: &StaffDef) -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Staff as i32,
        staff: staff_ref(who),
    })
}

pub(super) fn the_participant() -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Participant as i32,
        staff: None,
    })
}

/// A deterministic UUID for plan item `item` of participant `n` (needs and interventions).
pub(super) fn item_id(n: usize, item: u32) -> String {
    format!("5a3d5e11-0000-4000-8000-{n:06x}{item:06x}")
}

pub(super) fn id_of(p: &participants_pb::Participant) -> anyhow::Result<String> {
    p.participant_id
        .as_ref()
        .map(|id| id.value.clone())
        .context("participant without id")
}

pub(super) fn rev(r: Option<&Revision>) -> u64 {
    r.map_or(0, |r| r.value)
}

/// The FACT team (idempotent by request id); returns its id.
pub(super) async fn create_team(c: &mut Clients) -> anyhow::Result<String> {
    let coordinator = |key: &str, role: board_pb::CoordinatorRole| -> anyhow::Result<_> {
        Ok(board_pb::Coordinator {
            staff: staff_ref(staff(key)?),
            role: role as i32,
        })
    };
    let team = c
        .board
        .create_team(board_pb::CreateTeamRequest {
            request_id: "demo-team-nordvast".into(),
            name: "FACT Nordväst – Helsingborg, Höganäs, Ängelholm".into(),
            owner_organisation_id: org(REGION),
            coordinators: vec![
                coordinator("lisa", board_pb::CoordinatorRole::Main)?,
                coordinator("omar", board_pb::CoordinatorRole::Deputy)?,
                coordinator("ingrid", board_pb::CoordinatorRole::Deputy)?,
            ],
            criteria: Vec::new(),
            status_levels: Vec::new(),
        })
        .await
        .context("create the FACT team")?
        .into_inner();
    Ok(team.team_id)
}

/// The referral of participant `n` (idempotent by key).
pub(super) async fn refer(
    c: &mut Clients,
    n: usize,
    spec: &Spec,
) -> anyhow::Result<participants_pb::Participant> {
    let by_region = n % 4 != 3;
    let referred_by = if by_region {
        staff(spec.case_manager)?
    } else {
        staff(coordinator_of(spec.municipality))?
    };
    Ok(c.participants
        .create_referral(participants_pb::CreateReferralRequest {
            idempotency_key: format!("demo-referral-{n:02}"),
            personal_identity_number: spec.pin.clone(),
            name: spec.name.clone(),
            home_municipality_code: spec.municipality.to_owned(),
            referring_principal: if by_region {
                OrganisationKind::Region as i32
            } else {
                OrganisationKind::Municipality as i32
            },
            referred_by: staff_ref(referred_by),
            reason:
                "Psykossjukdom och missbruk; behöver långvarigt stöd från både region och kommun"
                    .into(),
            criteria: Some(participants_pb::AdmissionCriteria {
                long_term_needs_from_both_principals: true,
                diagnosis_criteria_met: true,
            }),
        })
        .await
        .with_context(|| format!("refer demo participant {n}"))?
        .into_inner())
}

/// Refers participant `n` and takes them to their stage: reviews, consents, enrolment, care
/// team, discharge or move. Returns their id.
pub(super) async fn seed_participant(
    c: &mut Clients,
    n: usize,
    spec: &Spec,
) -> anyhow::Result<String> {
    let p = refer(c, n, spec).await?;
    let id = id_of(&p)?;
    let mut revision_now = rev(p.revision.as_ref());
    if spec.stage == Stage::Referred {
        return Ok(id);
    }
    let municipal = staff(coordinator_of(spec.municipality))?;
    let mut reviews = vec![(
        OrganisationKind::Region,
        staff(spec.case_manager)?,
        participants_pb::Assessment::Accept,
        "Uppfyller kriterierna; stort behov av samordning",
    )];
    match spec.stage {
        Stage::UnderReview => {}
        Stage::Declined => reviews.push((
            OrganisationKind::Municipality,
            municipal,
            participants_pb::Assessment::Decline,
            "Behoven tillgodoses redan av befintliga insatser",
        )),
        _ => reviews.push((
            OrganisationKind::Municipality,
            municipal,
            participants_pb::Assessment::Accept,
            "Kommunen instämmer",
        )),
    }
    for (principal, reviewer, assessment, reason) in reviews {
        revision_now = rev(c
            .participants
            .record_review(participants_pb::RecordReviewRequest {
                participant_id: pid(&id),
                revision: revision(revision_now),
                principal: principal as i32,
                reviewed_by: staff_ref(reviewer),
                assessment: assessment as i32,
                reason: reason.into(),
            })
            .await
            .with_context(|| format!("review demo participant {n}"))?
            .into_inner()
            .revision
            .as_ref());
    }
    if matches!(
        spec.stage,
        Stage::UnderReview | Stage::Accepted | Stage::Declined
    ) {
        return Ok(id);
    }

    let case_manager = staff(spec.case_manager)?;
    let participation = record_consent(
        c,
        format!("demo-participation-{n:02}"),
        &id,
        consent_pb::ConsentKind::Participation,
        None,
        None,
        case_manager,
    )
    .await?;
    revision_now = rev(c
        .participants
        .enrol(participants_pb::EnrolRequest {
            participant_id: pid(&id),
            revision: revision(revision_now),
            consent_reference: participation.id,
            enrolled_on: Some(day(0)),
        })
        .await
        .with_context(|| format!("enrol demo participant {n}"))?
        .into_inner()
        .revision
        .as_ref());
    revision_now = rev(c
        .participants
        .assign_coordinator(participants_pb::AssignCoordinatorRequest {
            participant_id: pid(&id),
            revision: revision(revision_now),
            principal: OrganisationKind::Municipality as i32,
            rank: participants_pb::CoordinatorRank::Main as i32,
            staff: staff_ref(municipal),
        })
        .await
        .with_context(|| format!("coordinator of demo participant {n}"))?
        .into_inner()
        .revision
        .as_ref());
    let mut members = vec![spec.case_manager];
    members.extend(spec.team.iter().copied());
    for key in members {
        let member = staff(key)?;
        revision_now = rev(c
            .participants
            .add_care_team_member(participants_pb::AddCareTeamMemberRequest {
                participant_id: pid(&id),
                revision: revision(revision_now),
                staff: staff_ref(member),
                role: care_role(member) as i32,
            })
            .await
            .with_context(|| format!("care team of demo participant {n}"))?
            .into_inner()
            .revision
            .as_ref());
    }
    if spec.board.is_some() {
        revision_now = rev(c
            .participants
            .set_fixed_care_contact(participants_pb::SetFixedCareContactRequest {
                participant_id: pid(&id),
                revision: revision(revision_now),
                staff: staff_ref(case_manager),
            })
            .await
            .with_context(|| format!("fixed care contact of demo participant {n}"))?
            .into_inner()
            .revision
            .as_ref());
    }

    seed_sharing(c, n, spec, &id, case_manager).await?;
    if spec.research {
        record_consent(
            c,
            format!("demo-research-{n:02}"),
            &id,
            consent_pb::ConsentKind::ResearchStudy,
            None,
            None,
            case_manager,
        )
        .await?;
    }

    match spec.stage {
        Stage::Discharged => {
            c.participants
                .discharge(participants_pb::DischargeRequest {
                    participant_id: pid(&id),
                    revision: revision(revision_now),
                    reason: participants_pb::DischargeReason::ReadyForOrdinaryCare as i32,
                    discharged_on: Some(day(0)),
                    note: "Klarar vardagen med stöd från öppenvården".into(),
                })
                .await
                .with_context(|| format!("discharge demo participant {n}"))?;
        }
        Stage::MovedAway => {
            c.participants
                .record_move(participants_pb::RecordMoveRequest {
                    participant_id: pid(&id),
                    revision: revision(revision_now),
                    home_municipality_code: MALMO.into(),
                    moved_on: Some(day(0)),
                })
                .await
                .with_context(|| format!("move of demo participant {n}"))?;
        }
        _ => {}
    }
    Ok(id)
}

/// The care-team role of a member of the region's team.
pub(super) fn care_role(who: &StaffDef) -> participants_pb::CareRole {
    use participants_pb::CareRole;
    match who.roles.first().copied().unwrap_or_default() {
        "case_manager" => CareRole::CaseManager,
        "physician" => CareRole::Physician,
        "nurse" => CareRole::Nurse,
        "psychologist" => CareRole::Psychologist,
        "social_worker" => CareRole::SocialWorker,
        "peer_support_specialist" => CareRole::PeerSupportSpecialist,
        "team_leader" => CareRole::TeamLeader,
        "needs_assessor" => CareRole::NeedsAssessor,
        _ => CareRole::Other,
    }
}

/// Records a consent asked for by the participant and recorded by `recorded_by`.
pub(super) async fn record_consent(
    c: &mut Clients,
    key: String,
    id: &str,
    kind: consent_pb::ConsentKind,
    sharing: Option<consent_pb::Sharing>,
    period: Option<(SystemTime, SystemTime)>,
    recorded_by: &StaffDef,
) -> anyhow::Result<consent_pb::Consent> {
    let (valid_from, valid_until) = match period {
        Some((from, until)) => (Some(from), Some(until)),
        None => (None, None),
    };
    Ok(c.consent
        .record_consent(consent_pb::RecordConsentRequest {
            participant_id: pid(id),
            kind: kind as i32,
            sharing,
            valid_from: valid_from.map(|t| to_timestamp(t.into())),
            valid_until: valid_until.map(|t| to_timestamp(t.into())),
            form: consent_pb::ConsentForm::Written as i32,
            requested_by: the_participant(),
            recorded_by: actor(recorded_by),
            on_behalf_of: None,
            note: "Samtycket gavs vid inskrivningssamtalet".into(),
            idempotency_key: key.clone(),
            study_id: if kind == consent_pb::ConsentKind::ResearchStudy {
                DEMO_STUDY.to_owned()
            } else {
                String::new()
            },
        })
        .await
        .with_context(|| format!("consent {key}"))?
        .into_inner())
}

/// The information-sharing consent (and restriction) of participant `n`.
pub(super) async fn seed_sharing(
    c: &mut Clients,
    n: usize,
    spec: &Spec,
    id: &str,
    recorded_by: &StaffDef,
) -> anyhow::Result<()> {
    if spec.sharing == Sharing::None {
        return Ok(());
    }
    let sharing = Some(consent_pb::Sharing {
        from_organisation_id: org(REGION),
        to_organisation_id: org(spec.municipality),
        categories: vec![DataCategory::Board as i32, DataCategory::Plan as i32],
        unit_id: String::new(),
        staff_id: String::new(),
    });
    let period =
        (spec.sharing == Sharing::Expired).then(|| (days_from_now(-90), days_from_now(-1)));
    let consent = record_consent(
        c,
        format!("demo-sharing-{n:02}"),
        id,
        consent_pb::ConsentKind::InformationSharing,
        sharing,
        period,
        recorded_by,
    )
    .await?;
    match spec.sharing {
        Sharing::Revoked => {
            c.consent
                .revoke_consent(consent_pb::RevokeConsentRequest {
                    participant_id: pid(id),
                    consent_id: consent.id,
                    revision: consent.revision,
                    revoked_by: the_participant(),
                    reason: "Vill inte längre att kommunen ser tavlan".into(),
                })
                .await
                .with_context(|| format!("revoke the sharing of demo participant {n}"))?;
        }
        Sharing::Restricted => {
            c.consent
                .create_restriction(consent_pb::CreateRestrictionRequest {
                    participant_id: pid(id),
                    organisation_id: org(spec.municipality),
                    unit_id: String::new(),
                    owner_organisation_id: org(REGION),
                    categories: vec![DataCategory::Board as i32],
                    valid_from: None,
                    valid_until: None,
                    requested_by: the_participant(),
                    recorded_by: actor(recorded_by),
                    on_behalf_of: None,
                    note: "Vill inte att socialtjänsten ser hur det går i krisen".into(),
                    idempotency_key: format!("demo-restriction-{n:02}"),
                })
                .await
                .with_context(|| format!("restriction of demo participant {n}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// A SIP for participant `n`: goals, needs, interventions of both principals, follow-ups
/// (every other plan has one overdue); Helsingborg's housing-support decisions are pushed.
pub(super) async fn seed_plan(
    c: &mut Clients,
    n: usize,
    spec: &Spec,
    id: &str,
    team_id: &str,
) -> anyhow::Result<()> {
    use plans_pb::{InterventionStatus, LifeArea, intervention::Kind};
    let case_manager = staff(spec.case_manager)?;
    let coordinator = staff(coordinator_of(spec.municipality))?;
    let need = |item: u32, area: LifeArea, text: &str| plans_pb::Need {
        id: item_id(n, item),
        life_area: area as i32,
        description: text.into(),
        no_intervention_reason: 0,
    };
    let intervention =
        |item: u32,
         need: u32,
         organisation: &str,
         staff_id: &str,
         code: &str,
         status: InterventionStatus,
         start: Option<CalendarDate>| plans_pb::Intervention {
            id: item_id(n, item),
            need_id: item_id(n, need),
            responsible_organisation_id: org(organisation),
            responsible_staff_id: staff_id.into(),
            kind: Some(Kind::CatalogueCode(code.into())),
            status: status as i32,
            start_on: start,
            end_on: None,
            decision: None,
        };
    let follow_up =
        |due: i64, organisation: &str, team: &str, who: &str, text: &str| plans_pb::FollowUp {
            id: String::new(),
            due_on: Some(day(due)),
            organisation_id: org(organisation),
            team_id: team.into(),
            staff_id: who.into(),
            description: text.into(),
            completed_on: None,
        };
    let overdue = n.is_multiple_of(2);
    let content = plans_pb::PlanContent {
        goals: vec![
            plans_pb::Goal {
                id: String::new(),
                text: GOALS[n % GOALS.len()].into(),
            },
            plans_pb::Goal {
                id: String::new(),
                text: "Att slippa bli inlagd igen".into(),
            },
        ],
        strengths: STRENGTHS[n % STRENGTHS.len()].into(),
        overall_responsibility: Some(plans_pb::Responsibility {
            organisation_id: org(REGION),
            staff_id: case_manager.id.into(),
        }),
        needs: vec![
            need(1, LifeArea::Health, "Stabil medicinering och stöd vid oro"),
            need(
                2,
                LifeArea::Housing,
                "Stöd att sköta hemmet och betala hyran i tid",
            ),
            need(
                3,
                LifeArea::Occupation,
                "Något meningsfullt att göra på dagarna",
            ),
        ],
        interventions: vec![
            intervention(
                11,
                1,
                REGION,
                staff("erik")?.id,
                "region.pharmacological_treatment",
                InterventionStatus::Started,
                Some(day(-30)),
            ),
            intervention(
                12,
                1,
                REGION,
                staff("johanna")?.id,
                "region.psychological_treatment",
                InterventionStatus::Proposed,
                None,
            ),
            intervention(
                13,
                2,
                spec.municipality,
                coordinator.id,
                "municipality.housing_support",
                InterventionStatus::Applied,
                None,
            ),
            intervention(
                14,
                3,
                REGION,
                case_manager.id,
                "region.ips",
                InterventionStatus::Proposed,
                None,
            ),
        ],
        other_actions: vec![plans_pb::OtherActorAction {
            id: String::new(),
            actor: "Försäkringskassan".into(),
            description: "Utreda aktivitetsersättning".into(),
            contact: "Handläggare på lokalkontoret".into(),
            due_on: Some(day(30)),
        }],
        follow_ups: vec![
            follow_up(
                if overdue { -5 } else { 9 },
                REGION,
                team_id,
                case_manager.id,
                "Följa upp medicineringen och måendet",
            ),
            follow_up(
                28,
                spec.municipality,
                "",
                coordinator.id,
                "Följa upp boendestödet tillsammans med deltagaren",
            ),
        ],
        approved_for_participant: true,
    };
    let plan = c
        .plans
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(id),
            content: Some(content),
            supersede_active: false,
            request_id: format!("demo-plan-{n:02}"),
        })
        .await
        .with_context(|| format!("plan of demo participant {n}"))?
        .into_inner();
    let plan = c
        .plans
        .record_meeting(plans_pb::RecordMeetingRequest {
            participant_id: pid(id),
            plan_id: plan.id.clone(),
            expected_revision: plan.revision,
            meeting: Some(plans_pb::Meeting {
                id: String::new(),
                held_on: Some(day(0)),
                attendees: vec![
                    plans_pb::Attendee {
                        who: Some(plans_pb::attendee::Who::Participant(true)),
                    },
                    plans_pb::Attendee {
                        who: Some(plans_pb::attendee::Who::Staff(
                            staff_ref(case_manager).unwrap_or_default(),
                        )),
                    },
                    plans_pb::Attendee {
                        who: Some(plans_pb::attendee::Who::Staff(
                            staff_ref(coordinator).unwrap_or_default(),
                        )),
                    },
                ],
                decisions: vec![
                    "Ansöka om boendestöd två gånger i veckan".into(),
                    "Läkarbesök var fjärde vecka".into(),
                ],
            }),
        })
        .await
        .with_context(|| format!("SIP meeting of demo participant {n}"))?
        .into_inner();
    if n == 0 {
        c.plans
            .record_evaluation(plans_pb::RecordEvaluationRequest {
                participant_id: pid(id),
                plan_id: plan.id.clone(),
                expected_revision: plan.revision,
                evaluation: Some(plans_pb::Evaluation {
                    id: String::new(),
                    recorded_at: None,
                    items: vec![
                        plans_pb::EvaluationItem {
                            question: plans_pb::EvaluationQuestion::GoalsAreMine as i32,
                            answer: plans_pb::EvaluationAnswer::Yes as i32,
                        },
                        plans_pb::EvaluationItem {
                            question: plans_pb::EvaluationQuestion::KnowsWhoDoesWhat as i32,
                            answer: plans_pb::EvaluationAnswer::Partly as i32,
                        },
                    ],
                    comment: "Bra möte, men för många människor på en gång".into(),
                }),
            })
            .await
            .with_context(|| format!("SIP-kollen of demo participant {n}"))?;
    }
    // Helsingborg's case system decides on housing support for two of Lisa's participants.
    if spec.municipality == HELSINGBORG && (n == 0 || n == 8) {
        let assessor = staff("nils")?;
        c.plans
            .push_decision(plans_pb::PushDecisionRequest {
                decision: Some(plans_pb::Decision {
                    external_decision_id: format!("HBG-BB-DEMO-{n:04}"),
                    organisation_id: org(HELSINGBORG),
                    participant_id: pid(id),
                    subject: Some(plans_pb::decision::Subject::InterventionId(item_id(n, 13))),
                    outcome: plans_pb::DecisionOutcome::Granted as i32,
                    valid_from: Some(day(1)),
                    valid_until: Some(day(366)),
                    decided_by: staff_ref(assessor),
                    decided_at: Some(to_timestamp(SystemTime::now().into())),
                    personal_identity_number: String::new(),
                    version: 0,
                    change: 0,
                }),
            })
            .await
            .with_context(|| format!("decision for demo participant {n}"))?;
    }
    Ok(())
}

/// Puts participant `n` on the board, then records the later status assessments.
pub(super) async fn seed_board_entry(
    c: &mut Clients,
    n: usize,
    spec: &Spec,
    def: &BoardDef,
    id: &str,
    team_id: &str,
) -> anyhow::Result<()> {
    let case_manager = staff(spec.case_manager)?;
    let (action, owner, due) = def.action;
    let Some(((level, trend, note), later)) = def.statuses.split_first() else {
        bail!("board entry {n} without a status");
    };
    let entry = c
        .board
        .put_on_board(board_pb::PutOnBoardRequest {
            request_id: format!("demo-board-{n:02}"),
            team_id: team_id.to_owned(),
            participant_id: pid(id),
            reason: def.reason.into(),
            criteria: def.criteria.iter().map(|c| (*c).to_owned()).collect(),
            status: Some(board_pb::StatusAssessment {
                level: *level,
                trend: *trend as i32,
                note: (*note).into(),
            }),
            next_review_on: Some(day(def.review_in_days)),
            actions: vec![board_pb::NewAction {
                description: action.into(),
                owner: staff_ref(staff(owner)?),
                due_on: Some(day(due)),
            }],
            recorded_by: staff_ref(case_manager),
        })
        .await
        .with_context(|| format!("put demo participant {n} on the board"))?
        .into_inner();
    let mut expected = entry.revision;
    for (i, (level, trend, note)) in later.iter().enumerate() {
        let recorded_by = if i % 2 == 0 {
            staff("maria")?
        } else {
            case_manager
        };
        expected = c
            .board
            .update_entry(board_pb::UpdateEntryRequest {
                entry_id: entry.entry_id.clone(),
                participant_id: pid(id),
                expected_revision: expected,
                recorded_by: staff_ref(recorded_by),
                reason: None,
                criteria: None,
                status: Some(board_pb::StatusAssessment {
                    level: *level,
                    trend: *trend as i32,
                    note: (*note).into(),
                }),
                next_review_on: None,
            })
            .await
            .with_context(|| format!("status of demo participant {n} on the board"))?
            .into_inner()
            .revision;
    }
    Ok(())
}
