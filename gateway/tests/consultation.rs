//! The consultation group through the gateway: cases without identity, a question holding a
//! personal identity number refused with nothing stored, a participant link only the care
//! team may make and only its organisation sees, meetings with advice, and the cases counted
//! in the consultation report.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::Datelike;
use samsyn_proto::plans::v1::LifeArea;
use samsyn_proto::reports::v1 as pb;
use samsyn_proto::reports::v1::consultation_service_client::ConsultationServiceClient;
use samsyn_proto::reports::v1::reports_service_client::ReportsServiceClient;
use support::*;
use tonic::Code;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

type Client = ConsultationServiceClient<InterceptedService<Channel, Credentials>>;

fn client(stack: &Stack, id: &str, organisation: &str, roles: &[&str]) -> Client {
    let token = stack.token(&staff(id, organisation, roles));
    ConsultationServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
}

fn case(question: &str, participant: Option<&str>) -> pb::SubmitCaseRequest {
    pb::SubmitCaseRequest {
        age_band: pb::AgeBand::AgeBand2534 as i32,
        municipality_code: HELSINGBORG.to_owned(),
        needs: vec![LifeArea::Housing as i32, LifeArea::SubstanceUse as i32],
        question: question.to_owned(),
        participant_id: participant.and_then(pid),
    }
}

fn bad_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    tonic_types::StatusExt::get_details_bad_request(status)
        .unwrap()
        .field_violations[0]
        .field
        .clone()
}

#[tokio::test]
async fn cases_are_anonymous_screened_linked_only_by_the_care_team_and_counted() {
    let stack = Stack::start().await;
    let participant = enrolled(
        &stack,
        &pin("19850312", "234"),
        "Åsa Konsultation",
        Team {
            region: &["SE2321000255-cm01"],
            municipal: &["hbg-samordnare"],
        },
    )
    .await;
    stack.settle().await;

    let mut helsingborg = client(&stack, "hbg-samordnare", HELSINGBORG, &["coordinator"]);
    let first = helsingborg
        .submit_case(case(
            "Kvinna med missbruk och hemlöshet; hur samordnar vi boende och LARO?",
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.organisation_id, HELSINGBORG);
    assert!(first.participant_id.is_none());

    // A personal identity number in the question: refused, naming the field, nothing stored.
    for question in [
        "Gäller 811218-9876 som bor i Höganäs",
        "Gäller 198112189876",
    ] {
        let status = helsingborg
            .submit_case(case(question, None))
            .await
            .unwrap_err();
        assert_eq!(bad_field(&status), "question");
    }
    let status = helsingborg
        .submit_case(pb::SubmitCaseRequest {
            age_band: 0,
            municipality_code: "12".into(),
            ..case("Fråga", None)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), "age_band");

    // The region's case manager on the care team links the case to the participant; a
    // Höganäs coordinator who is not on the team may not.
    let mut case_manager = client(&stack, "SE2321000255-cm01", REGION, &["case_manager"]);
    let linked = case_manager
        .submit_case(case(
            "Hur kan vi stödja återgång till arbete?",
            Some(&participant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(linked.participant_id.unwrap().value, participant);
    let status = client(&stack, "hog-samordnare", HOGANAS, &["coordinator"])
        .submit_case(case("Fråga om boende", Some(&participant)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "not permitted");

    // Five more anonymous cases, and one meeting with advice on the first.
    for n in 0..5 {
        helsingborg
            .submit_case(case(&format!("Fråga nummer {n} om samordning"), None))
            .await
            .unwrap();
    }
    let mut leader = client(&stack, "SE2321000255-tl", REGION, &["team_leader"]);
    let status = leader
        .record_meeting(pb::RecordMeetingRequest {
            held_on: Some(today()),
            agenda: vec![pb::AgendaItem {
                case_id: first.id.clone(),
                advice: "Ring 811218-9876".into(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), "agenda[0].advice");
    let meeting = leader
        .record_meeting(pb::RecordMeetingRequest {
            held_on: Some(today()),
            agenda: vec![pb::AgendaItem {
                case_id: first.id.clone(),
                advice: "Samordnat möte med LARO och boendestödet inom två veckor".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let next = chrono::Utc::now().date_naive() + chrono::Days::new(14);
    assert_eq!(
        meeting.next_meeting_on.unwrap(),
        samsyn_kit::time::to_calendar_date(next)
    );

    // Helsingborg's coordinator sees every case, never a link; so does the region's manager.
    let cases = helsingborg
        .list_cases(pb::ListCasesRequest {
            participant_id: None,
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(cases.len(), 7, "the refused cases were not stored");
    assert!(cases.iter().all(|c| c.participant_id.is_none()));
    assert_eq!(cases[0].id, first.id);
    assert_eq!(cases[0].advice.len(), 1);
    assert_eq!(cases[0].advice[0].meeting_id, meeting.id);
    let token = stack.token(&staff("SE2321000255-chef", REGION, &["manager"]));
    let region_cases =
        ConsultationServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
            .list_cases(pb::ListCasesRequest {
                participant_id: None,
            })
            .await
            .unwrap()
            .into_inner()
            .cases;
    assert_eq!(region_cases.len(), 7);
    assert!(region_cases.iter().all(|c| c.participant_id.is_none()));
    // The case manager on the care team asks about the participant: the region's linked case,
    // with the link. Höganäs's coordinator may not ask; Helsingborg's sees none of the region's.
    let about = || pb::ListCasesRequest {
        participant_id: pid(&participant),
    };
    let linked_cases = case_manager
        .list_cases(about())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(linked_cases.len(), 1);
    assert_eq!(
        linked_cases[0].participant_id.as_ref().unwrap().value,
        participant
    );
    let status = client(&stack, "hog-samordnare", HOGANAS, &["coordinator"])
        .list_cases(about())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        helsingborg
            .list_cases(about())
            .await
            .unwrap()
            .into_inner()
            .cases
            .is_empty()
    );

    // Counted in the consultation report: 7 cases this quarter, the small counts withheld.
    let report =
        ReportsServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
            .get_report(pb::GetReportRequest {
                kind: pb::ReportKind::Consultation as i32,
                year: chrono::Utc::now().year(),
                format: 0,
            })
            .await
            .unwrap()
            .into_inner();
    let quarter = usize::try_from(chrono::Utc::now().month0() / 3).unwrap();
    let row = |label: &str| {
        report
            .rows
            .iter()
            .find(|r| r.cells[0] == label)
            .unwrap()
            .cells
            .clone()
    };
    assert_eq!(row("year")[1], "7");
    assert_eq!(row(&format!("Q{}", quarter + 1))[1], "7");
    assert_eq!(row("year")[2], "x", "one case from the region is withheld");
    assert_eq!(row("year")[5], "x", "one meeting is withheld");

    // The linked case is in the audit trail under the participant.
    assert!(stack.trail.events().iter().any(|e| {
        e.rpc == "/samsyn.reports.v1.ConsultationService/SubmitCase"
            && e.allowed
            && e.participant_id.as_deref() == Some(participant.as_str())
    }));
}
