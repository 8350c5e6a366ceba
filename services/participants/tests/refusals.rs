//! Refused calls over real gRPC, on SQLite and PostgreSQL: each gets its documented status
//! code and field detail, and nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::testing::{fresh_postgres_url, fresh_sqlite_url};
use samsyn_participants::store::Migrator;
use samsyn_proto::common::v1::OrganisationKind;
use samsyn_proto::participants::v1::*;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

/// The fields named by an INVALID_ARGUMENT's BadRequest detail.
fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn refusals(url: String) {
    let dir = tempfile::tempdir().unwrap();
    let (served, mut client) = serve(&url, dir.path()).await;
    let known = pin("19770707", "117");
    let p = client
        .create_referral(referral(&known, "Karin Lindqvist", ""))
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;

    // Invalid personal identity numbers: wrong check digit, impossible date, garbage, 1000
    // characters. The message names the field, never the digits.
    let wrong_check = {
        let mut digits = pin("19811218", "987").into_bytes();
        digits[11] = b'0' + (digits[11] - b'0' + 1) % 10;
        String::from_utf8(digits).unwrap()
    };
    let cases = [
        (wrong_check.clone(), "wrong check digit"),
        ("19810230-9876".to_owned(), "not a possible date of birth"),
        ("nittonhundraåttio".to_owned(), "10 or 12 digits"),
        ("8".repeat(1000), "10 or 12 digits"),
    ];
    for (bad, why) in cases {
        let status = client
            .create_referral(referral(&bad, "Per Persson", "k-1"))
            .await
            .unwrap_err();
        assert_eq!(fields(&status), ["personal_identity_number"]);
        let violation = &status.get_details_bad_request().unwrap().field_violations[0];
        assert!(
            violation.description.starts_with(why),
            "{}",
            violation.description
        );
        assert!(!status.message().contains("1981"));
    }

    // Several bad fields are named together.
    let mut request = referral("", "", "");
    request.home_municipality_code = "Helsingborg".to_owned();
    request.referred_by = None;
    let status = client.create_referral(request).await.unwrap_err();
    assert_eq!(
        fields(&status),
        [
            "personal_identity_number",
            "name",
            "home_municipality_code",
            "referred_by"
        ]
    );

    // A referral for a person already active, in the other number form: ALREADY_EXISTS.
    let ten = format!("{}-{}", &known[2..8], &known[8..]);
    let status = client
        .create_referral(referral(&ten, "Karin Lindqvist", "k-2"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(status.message(), "active participation already exists");

    // A stale revision: ABORTED with the current revision.
    let status = client
        .record_review(RecordReviewRequest {
            participant_id: pid(&id),
            revision: rev(7),
            principal: OrganisationKind::Municipality as i32,
            reviewed_by: staff("hbg-soc-7", HELSINGBORG),
            assessment: Assessment::Accept as i32,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "STALE_REVISION");
    assert_eq!(info.metadata["current_revision"], "1");

    // An unknown participant: NOT_FOUND, for reads and writes alike.
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = client
        .get_participant(GetParticipantRequest {
            participant_id: pid(&unknown),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .discharge(DischargeRequest {
            participant_id: pid(&unknown),
            revision: rev(1),
            reason: DischargeReason::Deceased as i32,
            discharged_on: today(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // A malformed id is an argument error, not a lookup.
    let status = client
        .get_participant(GetParticipantRequest {
            participant_id: pid("190101-0101"),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["participant_id"]);

    // Care-team changes before enrolment: FAILED_PRECONDITION.
    let status = client
        .add_care_team_member(AddCareTeamMemberRequest {
            participant_id: pid(&id),
            revision: rev(1),
            staff: staff("hbg-bst-3", HELSINGBORG),
            role: CareRole::Nurse as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Under 18, or living outside the programme area: FAILED_PRECONDITION.
    let minor = pin(
        &(chrono::Utc::now().date_naive() - chrono::Days::new(365 * 17))
            .format("%Y%m%d")
            .to_string(),
        "321",
    );
    let status = client
        .create_referral(referral(&minor, "Lo Nilsson", ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "the person must be 18 or older");
    let mut malmo = referral(&pin("19880808", "808"), "Märta Sjöberg", "");
    malmo.home_municipality_code = "1280".to_owned();
    let status = client.create_referral(malmo).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Dates outside the years 1 to 9999 are argument errors naming the field.
    let date = |year| {
        Some(samsyn_proto::common::v1::CalendarDate {
            year,
            month: 1,
            day: 1,
        })
    };
    let status = client
        .enrol(EnrolRequest {
            participant_id: pid(&id),
            revision: rev(1),
            consent_reference: served.participation_consent(&id).await.id,
            enrolled_on: date(-1200),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["enrolled_on"]);
    let status = client
        .discharge(DischargeRequest {
            participant_id: pid(&id),
            revision: rev(1),
            reason: DischargeReason::Deceased as i32,
            discharged_on: date(10_000),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["discharged_on"]);
    let status = client
        .record_move(RecordMoveRequest {
            participant_id: pid(&id),
            revision: rev(1),
            home_municipality_code: "1283".to_owned(),
            moved_on: date(10_000),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["moved_on"]);

    // Nothing of the above was written: one participant, unchanged, one change on the feed.
    let list = client
        .list_participants(ListParticipantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.participants.len(), 1);
    assert_eq!(list.participants[0].revision.unwrap().value, 1);
    let db = samsyn_kit::db::connect::<Migrator>(&url).await.unwrap();
    let changes = ChangeFeed::new(db).read_after(0, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change_kind, "referred");

    // Two reviews racing on the same revision: one is recorded, the other is told its
    // revision is stale.
    let race = |principal: OrganisationKind, who: &str, org: &str| {
        let mut client = client.clone();
        let request = RecordReviewRequest {
            participant_id: pid(&id),
            revision: rev(1),
            principal: principal as i32,
            reviewed_by: staff(who, org),
            assessment: Assessment::Accept as i32,
            reason: String::new(),
        };
        async move { client.record_review(request).await }
    };
    let (a, b) = tokio::join!(
        race(OrganisationKind::Region, "SE2321000255-D01", REGION),
        race(OrganisationKind::Municipality, "hbg-soc-7", HELSINGBORG),
    );
    let mut codes = [a.map(|_| Code::Ok), b.map(|_| Code::Ok)]
        .map(|r| r.unwrap_or_else(|status| status.code()));
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(codes, [Code::Ok, Code::Aborted]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    refusals(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_on_postgres() {
    refusals(fresh_postgres_url().await.unwrap()).await;
}
