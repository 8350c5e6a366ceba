//! Reports through the gateway: a programme seeded straight into the services, the reports'
//! read model following their feeds, and every figure checked against counts made here from
//! the seed. Small cells are hidden, a differencing attack over two reports recovers none,
//! a municipality sees only its residents, and each report is decided and audited.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;
use samsyn_proto::audit::v1 as audit_pb;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::common::v1::OrganisationKind;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use samsyn_proto::reports::v1 as pb;
use samsyn_proto::reports::v1::reports_service_client::ReportsServiceClient;
use support::*;
use tonic::Code;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

/// Ängelholm, the third municipality of the seed.
const ANGELHOLM: &str = "1292";

/// How one seeded person's referral went.
#[derive(Debug, Clone, Copy)]
struct Seeded {
    home: &'static str,
    accepted: bool,
    discharge: Option<participants_pb::DischargeReason>,
    research: bool,
}

/// Helsingborg: 14 referred, 2 declined, 12 enrolled (5 in the research study), 6 discharged
/// to ordinary care and 2 declining further participation. Höganäs: 3 enrolled. Ängelholm: 7.
fn seed_plan() -> Vec<Seeded> {
    use participants_pb::DischargeReason as R;
    let mut seed = Vec::new();
    for i in 0..12 {
        seed.push(Seeded {
            home: HELSINGBORG,
            accepted: true,
            discharge: match i {
                0..6 => Some(R::ReadyForOrdinaryCare),
                6..8 => Some(R::DeclinedFurtherParticipation),
                _ => None,
            },
            research: (7..12).contains(&i),
        });
    }
    for _ in 0..2 {
        seed.push(Seeded {
            home: HELSINGBORG,
            accepted: false,
            discharge: None,
            research: false,
        });
    }
    for (home, n) in [(HOGANAS, 3), (ANGELHOLM, 7)] {
        for _ in 0..n {
            seed.push(Seeded {
                home,
                accepted: true,
                discharge: None,
                research: false,
            });
        }
    }
    seed
}

/// Refers, reviews and (when accepted) enrols one person; returns their id.
async fn seed_one(stack: &Stack, n: usize, person: Seeded) -> String {
    let mut participants = ParticipantsServiceClient::new(stack.participants.channel.clone());
    let mut consent = ConsentServiceClient::new(stack.consent.channel.clone());
    let p = participants
        .create_referral(participants_pb::CreateReferralRequest {
            idempotency_key: String::new(),
            personal_identity_number: pin("19800101", &format!("{:03}", 100 + n)),
            name: format!("Deltagare {n}"),
            home_municipality_code: person.home.to_owned(),
            referring_principal: OrganisationKind::Region as i32,
            referred_by: staff_ref("SE2321000255-D01", REGION),
            reason: "Behov av samordnat stöd".to_owned(),
            criteria: Some(participants_pb::AdmissionCriteria {
                long_term_needs_from_both_principals: true,
                diagnosis_criteria_met: true,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;
    let mut revision = p.revision;
    let assessment = if person.accepted {
        participants_pb::Assessment::Accept
    } else {
        participants_pb::Assessment::Decline
    };
    // The municipality decides (the default rule): its review settles the referral.
    revision = participants
        .record_review(participants_pb::RecordReviewRequest {
            participant_id: pid(&id),
            revision,
            principal: OrganisationKind::Municipality as i32,
            reviewed_by: staff_ref(&format!("{}-review", person.home), person.home),
            assessment: assessment as i32,
            reason: "Bedömt vid gemensam remissgenomgång".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    if !person.accepted {
        return id;
    }
    let participation = consent
        .record_consent(consent_request(
            &id,
            consent_pb::ConsentKind::Participation,
            None,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    revision = participants
        .enrol(participants_pb::EnrolRequest {
            participant_id: pid(&id),
            revision,
            consent_reference: participation.id,
            enrolled_on: Some(today()),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    // Two case managers share the caseload.
    revision = participants
        .add_care_team_member(participants_pb::AddCareTeamMemberRequest {
            participant_id: pid(&id),
            revision,
            staff: staff_ref(&format!("SE2321000255-cm0{}", n % 2), REGION),
            role: participants_pb::CareRole::CaseManager as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    if person.research {
        consent
            .record_consent(consent_request(
                &id,
                consent_pb::ConsentKind::ResearchStudy,
                None,
                None,
            ))
            .await
            .unwrap();
    }
    if let Some(reason) = person.discharge {
        participants
            .discharge(participants_pb::DischargeRequest {
                participant_id: pid(&id),
                revision,
                reason: reason as i32,
                discharged_on: Some(today()),
                note: String::new(),
            })
            .await
            .unwrap();
    }
    id
}

/// Seeds the plan; returns each person's id beside how they were seeded.
async fn seed(stack: &Stack) -> Vec<(String, Seeded)> {
    let mut seeded = Vec::new();
    for (n, person) in seed_plan().into_iter().enumerate() {
        seeded.push((seed_one(stack, n, person).await, person));
    }
    stack.settle_reports().await;
    seeded
}

type Client = ReportsServiceClient<InterceptedService<Channel, Credentials>>;

fn client(stack: &Stack, id: &str, organisation: &str, roles: &[&str]) -> Client {
    let token = stack.token(&staff(id, organisation, roles));
    ReportsServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
}

fn this_year() -> i32 {
    chrono::Utc::now().year()
}

async fn report(client: &mut Client, kind: pb::ReportKind, format: pb::ReportFormat) -> pb::Report {
    client
        .get_report(pb::GetReportRequest {
            kind: kind as i32,
            year: this_year(),
            format: format as i32,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The funnel's count columns, as the report names them, counted here from the seed.
fn expected_funnel(seed: &[Seeded]) -> BTreeMap<&'static str, BTreeMap<&'static str, u64>> {
    use participants_pb::DischargeReason as R;
    let mut rows: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for s in seed {
        let discharged = |r: R| u64::from(s.discharge == Some(r));
        let counts = [
            ("referred", 1),
            ("reviewed", 1),
            ("accepted", u64::from(s.accepted)),
            ("declined", u64::from(!s.accepted)),
            ("enrolled", u64::from(s.accepted)),
            ("enrolled_in_research_study", u64::from(s.research)),
            ("discharged", u64::from(s.discharge.is_some())),
            (
                "discharged_ordinary_care",
                discharged(R::ReadyForOrdinaryCare),
            ),
            ("discharged_moved", discharged(R::Moved)),
            (
                "discharged_declined_further",
                discharged(R::DeclinedFurtherParticipation),
            ),
            (
                "discharged_other",
                discharged(R::Deceased) + discharged(R::Other),
            ),
        ];
        for key in [s.home, "total"] {
            let row = rows.entry(key).or_default();
            for (column, n) in counts {
                *row.entry(column).or_default() += n;
            }
        }
    }
    rows
}

/// The report's rows by label, each cell by column name.
fn by_label(report: &pb::Report) -> HashMap<String, HashMap<String, String>> {
    report
        .rows
        .iter()
        .map(|row| {
            let cells = report
                .columns
                .iter()
                .cloned()
                .zip(row.cells.iter().cloned())
                .collect::<HashMap<_, _>>();
            (row.cells[0].clone(), cells)
        })
        .collect()
}

/// A cell by row label and column name.
type Place = (String, String);

/// What an attacker holding `reports` learns by subtraction: every cell's value that any
/// report shows, then every cell that is the only unknown in a relation (a column's rows and
/// its total, a row's parts and its whole), repeated until nothing more follows.
fn attack(
    reports: &[&pb::Report],
    municipalities: &[&str],
    columns: &[&str],
) -> HashMap<Place, i64> {
    let mut known: HashMap<Place, i64> = HashMap::new();
    for report in reports {
        for (label, cells) in by_label(report) {
            for (column, value) in cells {
                if let Ok(n) = value.parse::<i64>() {
                    known.insert((label.clone(), column), n);
                }
            }
        }
    }
    let mut relations: Vec<(Vec<Place>, Place)> = Vec::new();
    for column in columns {
        relations.push((
            municipalities
                .iter()
                .map(|m| ((*m).to_owned(), (*column).to_owned()))
                .collect(),
            ("total".to_owned(), (*column).to_owned()),
        ));
    }
    for label in municipalities.iter().chain(["total"].iter()) {
        let cell = |c: &str| ((*label).to_owned(), c.to_owned());
        relations.push((
            vec![
                cell("discharged_ordinary_care"),
                cell("discharged_moved"),
                cell("discharged_declined_further"),
                cell("discharged_other"),
            ],
            cell("discharged"),
        ));
    }
    loop {
        let mut learned = false;
        for (members, total) in &relations {
            let unknown: Vec<&Place> = members
                .iter()
                .chain(std::iter::once(total))
                .filter(|c| !known.contains_key(*c))
                .collect();
            if unknown.len() != 1 {
                continue;
            }
            let target = unknown[0].clone();
            let sum: i64 = members.iter().filter_map(|c| known.get(c)).sum();
            let value = if &target == total {
                sum
            } else {
                known[total] - sum
            };
            known.insert(target, value);
            learned = true;
        }
        if !learned {
            return known;
        }
    }
}

#[tokio::test]
async fn the_recruitment_funnel_counts_the_seed_and_no_small_cell_can_be_recovered() {
    let stack = Stack::start().await;
    let seeded = seed(&stack).await;
    let plan: Vec<Seeded> = seeded.iter().map(|(_, s)| *s).collect();
    let expected = expected_funnel(&plan);

    let mut region = client(&stack, "SE2321000255-chef", REGION, &["manager"]);
    let programme = report(
        &mut region,
        pb::ReportKind::Recruitment,
        pb::ReportFormat::Csv,
    )
    .await;
    assert_eq!(programme.scope, "programme");
    assert_eq!(programme.suppression_threshold, 5);
    let rows = by_label(&programme);
    // Every programme municipality has a row (zeros shown), and the total.
    assert_eq!(rows.len(), 11, "{rows:?}");
    let columns: Vec<&str> = expected["total"].keys().copied().collect();
    for (label, cells) in &rows {
        let want = expected.get(label.as_str());
        for column in &columns {
            let shown = &cells[*column];
            let count = want.and_then(|w| w.get(column)).copied().unwrap_or(0);
            if (1..5).contains(&count) {
                assert_eq!(shown, "x", "{label} {column}: {count} must be withheld");
            } else if shown != "x" {
                assert_eq!(shown, &count.to_string(), "{label} {column}");
            }
        }
        assert_eq!(
            cells["yearly_target"],
            if label == "total" { "300" } else { "30" }
        );
    }
    // Helsingborg's 5 research participants are shown; Höganäs's 3 enrolled are not.
    assert_eq!(rows[HELSINGBORG]["enrolled_in_research_study"], "5");
    assert_eq!(rows[HOGANAS]["enrolled"], "x");
    assert_eq!(rows["1257"]["enrolled"], "0");

    // A Helsingborg coordinator sees Helsingborg's row only, exactly as the programme shows it.
    let mut helsingborg = client(&stack, "hbg-samordnare", HELSINGBORG, &["coordinator"]);
    let own = report(
        &mut helsingborg,
        pb::ReportKind::Recruitment,
        pb::ReportFormat::Json,
    )
    .await;
    assert_eq!(own.scope, HELSINGBORG);
    assert_eq!(own.rows.len(), 1);
    assert_eq!(own.rows[0], programme.rows[labels(&programme)[HELSINGBORG]]);

    // The attack: both reports together, subtracting along every relation, recover none of
    // the small cells.
    let municipalities: Vec<String> = rows.keys().filter(|l| *l != "total").cloned().collect();
    let municipalities: Vec<&str> = municipalities.iter().map(String::as_str).collect();
    let known = attack(&[&programme, &own], &municipalities, &columns);
    for (label, want) in &expected {
        for (column, count) in want {
            if (1..5).contains(count) {
                assert!(
                    !known.contains_key(&((*label).to_owned(), (*column).to_owned())),
                    "{label} {column} ({count}) recovered by differencing"
                );
            }
        }
    }

    // The documents say the same as the rows.
    let csv = String::from_utf8(programme.document.clone()).unwrap();
    let mut lines = csv.split("\r\n");
    assert_eq!(lines.next().unwrap(), programme.columns.join(","));
    assert_eq!(lines.next().unwrap(), programme.rows[0].cells.join(","));
    assert_eq!(programme.media_type, "text/csv; charset=utf-8");
    let json: serde_json::Value = serde_json::from_slice(&own.document).unwrap();
    assert_eq!(json["scope"], HELSINGBORG);
    assert_eq!(json["rows"][0][0], HELSINGBORG);
    assert_eq!(
        json["rows"][0].as_array().unwrap().len(),
        programme.columns.len()
    );

    // Each report is decided and audited like any call.
    let audited = stack
        .trail
        .events()
        .into_iter()
        .filter(|e| e.rpc == "/samsyn.reports.v1.ReportsService/GetReport" && e.allowed)
        .count();
    assert_eq!(audited, 2);
}

fn labels(report: &pb::Report) -> HashMap<String, usize> {
    report
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| (row.cells[0].clone(), i))
        .collect()
}

#[tokio::test]
async fn reports_are_refused_to_outsiders_and_other_roles_and_check_their_input() {
    let stack = Stack::start().await;
    for (id, organisation, roles) in [
        ("malmo-chef", "1280", &["manager"][..]),
        ("SE2321000255-cm01", REGION, &["case_manager"][..]),
    ] {
        let status = client(&stack, id, organisation, roles)
            .get_report(pb::GetReportRequest {
                kind: pb::ReportKind::Recruitment as i32,
                year: this_year(),
                format: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{id}");
        assert_eq!(status.message(), "not permitted");
    }
    let mut region = client(&stack, "SE2321000255-chef", REGION, &["manager"]);
    for (request, field) in [
        (
            pb::GetReportRequest {
                kind: pb::ReportKind::Recruitment as i32,
                year: 1999,
                format: 0,
            },
            "year",
        ),
        (
            pb::GetReportRequest {
                kind: 0,
                year: this_year(),
                format: 0,
            },
            "kind",
        ),
        (
            pb::GetReportRequest {
                kind: pb::ReportKind::Board as i32,
                year: this_year(),
                format: 42,
            },
            "format",
        ),
    ] {
        let status = region.get_report(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = tonic_types::StatusExt::get_details_bad_request(&status).unwrap();
        assert_eq!(details.field_violations[0].field, field);
    }
}

/// A plan with three needs: housing met by the municipality, health by the region (its
/// start 10 days after the decision), finances with no intervention: in every second plan
/// (even `k`) because motivational work comes first, in the others with no reason recorded.
fn plan_content(k: usize) -> plans_pb::PlanContent {
    let uuid = |i: usize| format!("0190a000-0000-7000-8000-{:012}", 10 * k + i);
    let need = |id: &str, area: plans_pb::LifeArea| plans_pb::Need {
        id: id.to_owned(),
        life_area: area as i32,
        description: "Behov".to_owned(),
        no_intervention_reason: 0,
    };
    let intervention = |id: &str, need: &str, organisation: &str| plans_pb::Intervention {
        id: id.to_owned(),
        need_id: need.to_owned(),
        responsible_organisation_id: org(organisation),
        responsible_staff_id: String::new(),
        kind: Some(plans_pb::intervention::Kind::FreeText("Insats".to_owned())),
        status: plans_pb::InterventionStatus::Started as i32,
        start_on: Some(today()),
        end_on: None,
        decision: None,
    };
    let (housing, health, finances) = (&uuid(1), &uuid(2), &uuid(3));
    plans_pb::PlanContent {
        goals: vec![plans_pb::Goal {
            id: String::new(),
            text: "Eget boende".to_owned(),
        }],
        strengths: String::new(),
        overall_responsibility: Some(plans_pb::Responsibility {
            organisation_id: org(REGION),
            staff_id: "SE2321000255-cm00".to_owned(),
        }),
        needs: vec![
            need(housing, plans_pb::LifeArea::Housing),
            need(health, plans_pb::LifeArea::Health),
            plans_pb::Need {
                no_intervention_reason: if k.is_multiple_of(2) {
                    plans_pb::NoInterventionReason::MotivationWork as i32
                } else {
                    0
                },
                ..need(finances, plans_pb::LifeArea::Finances)
            },
        ],
        interventions: vec![
            intervention(&uuid(4), housing, HELSINGBORG),
            intervention(&uuid(5), health, REGION),
        ],
        other_actions: vec![],
        follow_ups: vec![],
        approved_for_participant: false,
    }
}

#[tokio::test]
async fn coverage_board_and_fidelity_count_the_seed_for_each_scope() {
    let stack = Stack::start().await;
    let seeded = seed(&stack).await;
    let enrolled_now: Vec<&(String, Seeded)> = seeded
        .iter()
        .filter(|(_, s)| s.accepted && s.discharge.is_none())
        .collect();
    // Helsingborg's 4 current participants and Ängelholm's 7 get a plan with a meeting held
    // today; Höganäs's none.
    let mut plans = PlansServiceClient::new(stack.plans.channel.clone());
    let with_plan: Vec<&(String, Seeded)> = enrolled_now
        .iter()
        .copied()
        .filter(|(_, s)| s.home != HOGANAS)
        .collect();
    for (k, (id, _)) in with_plan.iter().enumerate() {
        let plan = plans
            .create_plan(plans_pb::CreatePlanRequest {
                participant_id: pid(id),
                content: Some(plan_content(k)),
                supersede_active: false,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let met = plans
            .record_meeting(plans_pb::RecordMeetingRequest {
                participant_id: pid(id),
                plan_id: plan.id.clone(),
                expected_revision: plan.revision,
                meeting: Some(plans_pb::Meeting {
                    id: String::new(),
                    held_on: Some(today()),
                    attendees: vec![plans_pb::Attendee {
                        who: Some(plans_pb::attendee::Who::Participant(true)),
                    }],
                    decisions: vec![],
                }),
            })
            .await
            .unwrap()
            .into_inner();
        // SIP-kollen: everyone took part; the plan helps in the even plans, not in the odd.
        let answer = |question: plans_pb::EvaluationQuestion,
                      answer: plans_pb::EvaluationAnswer| {
            plans_pb::EvaluationItem {
                question: question as i32,
                answer: answer as i32,
            }
        };
        plans
            .record_evaluation(plans_pb::RecordEvaluationRequest {
                participant_id: pid(id),
                plan_id: plan.id,
                expected_revision: met.revision,
                evaluation: Some(plans_pb::Evaluation {
                    id: String::new(),
                    recorded_at: None,
                    items: vec![
                        answer(
                            plans_pb::EvaluationQuestion::TookPart,
                            plans_pb::EvaluationAnswer::Yes,
                        ),
                        answer(
                            plans_pb::EvaluationQuestion::PlanHelps,
                            if k.is_multiple_of(2) {
                                plans_pb::EvaluationAnswer::Yes
                            } else {
                                plans_pb::EvaluationAnswer::No
                            },
                        ),
                    ],
                    comment: "Bra möte, men jag vill ha mer tid".to_owned(),
                }),
            })
            .await
            .unwrap();
    }
    // Six participants on the board.
    let team = board_team(&stack).await;
    for (id, _) in enrolled_now.iter().take(6) {
        put_on_board(&stack, &team, id).await;
    }
    stack.settle_reports().await;

    let mut region = client(&stack, "SE2321000255-chef", REGION, &["manager"]);
    let coverage = by_label(
        &report(
            &mut region,
            pb::ReportKind::InterventionCoverage,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    let n = with_plan.len().to_string();
    assert_eq!(n, "11");
    assert_eq!(coverage["housing"]["needs"], n);
    assert_eq!(coverage["housing"]["needs_with_intervention"], n);
    assert_eq!(coverage["housing"]["interventions_municipality"], n);
    assert_eq!(coverage["housing"]["interventions_region"], "0");
    assert_eq!(coverage["health"]["interventions_region"], n);
    assert_eq!(coverage["finances"]["needs_without_intervention"], n);
    // Without an intervention, by reason: the even plans' motivational work, the rest none.
    let motivation = with_plan.len().div_ceil(2);
    assert_eq!(motivation, 6);
    assert_eq!(
        coverage["finances"]["without_motivation_work"],
        motivation.to_string()
    );
    assert_eq!(
        coverage["finances"]["without_not_recorded"],
        (with_plan.len() - motivation).to_string()
    );
    assert_eq!(coverage["finances"]["without_denied"], "0");
    assert_eq!(coverage["housing"]["without_not_recorded"], "0");
    assert_eq!(
        coverage["total"]["without_motivation_work"],
        motivation.to_string()
    );
    assert_eq!(
        coverage["total"]["needs"],
        (3 * with_plan.len()).to_string()
    );
    assert_eq!(
        coverage["total"]["needs_with_intervention"],
        (2 * with_plan.len()).to_string()
    );

    // Ängelholm's own coverage counts its 7 residents only.
    let mut angelholm = client(&stack, "ang-chef", ANGELHOLM, &["manager"]);
    let own = by_label(
        &report(
            &mut angelholm,
            pb::ReportKind::InterventionCoverage,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    assert_eq!(own["housing"]["needs"], "7");

    let board = by_label(
        &report(
            &mut region,
            pb::ReportKind::Board,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    assert_eq!(board["year"]["stays_started"], "6");
    assert_eq!(board["year"]["participants_on_board"], "6");
    assert_eq!(board["year"]["stays_ended"], "0");

    // Levels over time: the six, put on at level 1 this month.
    let levels = by_label(
        &report(
            &mut region,
            pb::ReportKind::BoardLevels,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    for period in [month.as_str(), "year"] {
        assert_eq!(levels[period]["participants_on_board"], "6", "{period}");
        assert_eq!(levels[period]["level_1"], "6", "{period}");
        assert_eq!(levels[period]["level_not_recorded"], "0", "{period}");
    }

    // SIP-kollen per municipality and question, counted here from what was recorded: a
    // figure is either withheld or the count.
    let sip_kollen = report(
        &mut region,
        pb::ReportKind::SipKollen,
        pb::ReportFormat::Unspecified,
    )
    .await;
    let mut expected: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (k, (_, seeded)) in with_plan.iter().enumerate() {
        let helps = if k.is_multiple_of(2) { 1 } else { 3 };
        for home in [seeded.home, "total"] {
            expected.entry(format!("{home}/took_part")).or_default()[0] += 1;
            expected.entry(format!("{home}/took_part")).or_default()[1] += 1;
            expected.entry(format!("{home}/plan_helps")).or_default()[0] += 1;
            expected.entry(format!("{home}/plan_helps")).or_default()[helps] += 1;
        }
    }
    let shown = by_label(&sip_kollen);
    assert_eq!(
        shown.len(),
        11 * 5,
        "ten municipalities and the total, five questions each"
    );
    for (label, cells) in &shown {
        let want = expected.get(label).copied().unwrap_or_default();
        for (i, column) in ["answers", "yes", "partly", "no"].into_iter().enumerate() {
            let count = want[i];
            if (1..5).contains(&count) {
                assert_eq!(cells[column], "x", "{label} {column}");
            } else if cells[column] != "x" {
                assert_eq!(cells[column], count.to_string(), "{label} {column}");
            }
        }
    }
    assert_eq!(shown["total/plan_helps"]["answers"], "11");
    assert_eq!(shown["total/plan_helps"]["percent_yes"], "54.5");
    // Ängelholm's own report: its five rows, as the programme shows them.
    let own = report(
        &mut angelholm,
        pb::ReportKind::SipKollen,
        pb::ReportFormat::Unspecified,
    )
    .await;
    assert_eq!(own.rows.len(), 5);
    for row in &own.rows {
        assert!(sip_kollen.rows.contains(row), "{row:?}");
        assert!(row.cells[0].starts_with("1292/"));
    }

    let fidelity = by_label(
        &report(
            &mut region,
            pb::ReportKind::Fidelity,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    let enrolled = enrolled_now.len();
    assert_eq!(enrolled, 14);
    assert_eq!(
        fidelity["participants_enrolled"]["value"],
        enrolled.to_string()
    );
    // Two case managers share the 14.
    assert_eq!(fidelity["mean_caseload_per_case_manager"]["value"], "7.0");
    #[allow(clippy::cast_precision_loss)]
    let share = 100.0 * with_plan.len() as f64 / enrolled as f64;
    assert_eq!(
        fidelity["percent_with_active_sip"]["value"],
        format!("{share:.1}")
    );
    assert_eq!(
        fidelity["median_days_enrolment_to_first_sip_meeting"]["value"],
        "0.0"
    );

    // Höganäs's 3 are too few for any figure of theirs to be shown.
    let mut hoganas = client(&stack, "hog-chef", HOGANAS, &["manager"]);
    let theirs = by_label(
        &report(
            &mut hoganas,
            pb::ReportKind::Fidelity,
            pb::ReportFormat::Unspecified,
        )
        .await,
    );
    assert_eq!(theirs["participants_enrolled"]["value"], "x");
    assert_eq!(theirs["mean_caseload_per_case_manager"]["value"], "x");
}

/// The pseudonym the test expects: HMAC-SHA-256 of the participant id, first 16 bytes, hex.
fn expected_pseudonym(key: &[u8], participant_id: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, participant_id.as_bytes()).as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn csv_rows(document: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8(document.to_vec())
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn the_research_export_holds_exactly_the_consenting_under_stable_pseudonyms() {
    let stack = Stack::start().await;
    let seeded = seed(&stack).await;
    // One more participant consents to research and then withdraws: never exported.
    let (withdrawn, _) = seeded
        .iter()
        .find(|(_, s)| s.home == ANGELHOLM)
        .unwrap()
        .clone();
    let mut consent = ConsentServiceClient::new(stack.consent.channel.clone());
    let research = consent
        .record_consent(consent_request(
            &withdrawn,
            consent_pb::ConsentKind::ResearchStudy,
            None,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    consent
        .revoke_consent(consent_pb::RevokeConsentRequest {
            participant_id: pid(&withdrawn),
            consent_id: research.id,
            revision: research.revision,
            revoked_by: actor("SE2321000255-D01", REGION),
            reason: "Vill inte delta i studien".to_owned(),
        })
        .await
        .unwrap();
    // The five consent to the other study as well, and one Ängelholm participant to the
    // other study only: never in the first study's export.
    let consenting: Vec<&str> = seeded
        .iter()
        .filter(|(_, s)| s.research)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(consenting.len(), 5);
    let (other_only, _) = seeded
        .iter()
        .filter(|(_, s)| s.home == ANGELHOLM)
        .nth(1)
        .unwrap()
        .clone();
    for id in consenting.iter().copied().chain([other_only.as_str()]) {
        let mut request = consent_request(id, consent_pb::ConsentKind::ResearchStudy, None, None);
        request.study_id = STUDIES[1].0.to_owned();
        consent.record_consent(request).await.unwrap();
    }
    stack.settle_reports().await;

    let mut owner = client(
        &stack,
        "SE2321000255-forskning",
        REGION,
        &["research_data_manager"],
    );
    let export = |study: &str| pb::ExportResearchDataRequest {
        study_id: study.to_owned(),
    };
    let first = owner
        .export_research_data(export("fact-rct"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.row_count, 5);
    let rows = csv_rows(&first.document);
    let dictionary = csv_rows(&first.dictionary);
    // A header naming every column of the dictionary, then one row per consenting participant.
    let header: Vec<String> = dictionary[1..].iter().map(|d| d[0].clone()).collect();
    assert_eq!(rows[0], header);
    assert_eq!(rows.len(), 6);
    let (_, key) = STUDIES[0];
    let mut want: Vec<String> = consenting
        .iter()
        .map(|id| expected_pseudonym(&key, id))
        .collect();
    want.sort();
    let got: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        got, want,
        "exactly the consenting participants, pseudonymised"
    );
    for row in &rows[1..] {
        assert!(["fact", "usual_care"].contains(&row[1].as_str()), "{row:?}");
        assert_eq!(row[2], HELSINGBORG);
        // Dates by quarter, never a day.
        let quarter = format!("{}-Q{}", this_year(), (chrono::Utc::now().month0() / 3) + 1);
        assert_eq!(row[4], quarter);
    }
    assert!(first.allocation_method.contains("randomisation"));
    assert_eq!(first.date_precision, "quarter");
    // No identifier, name, identity number or free text, and not the key.
    let text = String::from_utf8(first.document.clone()).unwrap();
    for (n, (id, _)) in seeded.iter().enumerate() {
        assert!(!text.contains(id.as_str()), "a participant id leaked");
        assert!(!text.contains(&format!("Deltagare {n},")), "a name leaked");
        assert!(
            !text.contains(&pin("19800101", &format!("{:03}", 100 + n))[2..]),
            "an identity number leaked"
        );
    }
    assert!(!text.contains("Samtycke") && !text.contains("Behov"));
    assert!(!text.contains(&expected_pseudonym(&key, &withdrawn)));
    assert!(!text.contains(&expected_pseudonym(&key, &other_only)));

    // Again: the same pseudonyms and the same arms (the allocation is recorded).
    let again = owner
        .export_research_data(export("fact-rct"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.document, first.document);
    // Another study: its own consenting participants, other pseudonyms for the same people.
    let other = owner
        .export_research_data(export("other-study"))
        .await
        .unwrap()
        .into_inner();
    let other_rows = csv_rows(&other.document);
    let (_, other_key) = STUDIES[1];
    let mut want_other: Vec<String> = consenting
        .iter()
        .copied()
        .chain([other_only.as_str()])
        .map(|id| expected_pseudonym(&other_key, id))
        .collect();
    want_other.sort();
    let got_other: Vec<String> = other_rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(got_other, want_other);
    for row in &other_rows[1..] {
        assert!(!got.contains(&row[0]), "a pseudonym shared across studies");
    }

    // Only the research data manager exports; an unknown study names the field.
    let status = client(&stack, "SE2321000255-chef", REGION, &["manager"])
        .export_research_data(export("fact-rct"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = owner
        .export_research_data(export("no-such-study"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_details_bad_request(&status).unwrap();
    assert_eq!(details.field_violations[0].field, "study_id");

    // Every export is in the audit trail, with who asked.
    let exports: Vec<_> = stack
        .trail
        .events()
        .into_iter()
        .filter(|e| e.rpc == "/samsyn.reports.v1.ReportsService/ExportResearchData")
        .collect();
    assert_eq!(exports.iter().filter(|e| e.allowed).count(), 4);
    assert!(
        exports
            .iter()
            .filter(|e| e.allowed)
            .all(|e| e.principal.as_ref().unwrap().id == "SE2321000255-forskning")
    );

    // The region's auditor reads each export in the trail with its study and the rows it
    // returned; the refused one exported nothing and says so.
    let auditor = stack.token(&staff("SE2321000255-rev1", REGION, &["auditor"]));
    let mut audit =
        AuditServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&auditor));
    let events = audit
        .list_events(audit_pb::ListEventsRequest {
            principal_id: "SE2321000255-forskning".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let exported: Vec<(String, u64, i32)> = events
        .iter()
        .filter(|e| e.rpc == "/samsyn.reports.v1.ReportsService/ExportResearchData")
        .map(|e| {
            let export = e.export.clone().unwrap_or_default();
            (export.study_id, export.row_count, e.status_code)
        })
        .collect();
    let returned = |export: &pb::ResearchExport| u64::from(export.row_count);
    assert_eq!(
        exported,
        [
            ("fact-rct".to_owned(), returned(&first), 0),
            ("fact-rct".to_owned(), returned(&again), 0),
            ("other-study".to_owned(), returned(&other), 0),
            (String::new(), 0, Code::InvalidArgument as i32),
        ]
    );
    assert_eq!(returned(&other), 6);
    assert_eq!(
        u64::try_from(other_rows.len() - 1).unwrap(),
        returned(&other)
    );
}
