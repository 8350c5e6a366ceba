//! The access view over real gRPC and mutual TLS, following the REAL participants, consent and
//! board services on SQLite: facts appear (a FACT team's board among them), a revocation is in
//! force once waited for, a service that goes down makes the view fail closed, and after its
//! restart nothing made meanwhile is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use samsyn_consent_rule as rule;
use samsyn_gateway::access_view::{
    AccessView, AssignmentRole, CareRole, CoordinatorRank, FeedChannels, FeedName, FollowSettings,
    OrganisationKind, ParticipantStatus, ViewError, follow,
};
use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_postgres_url, fresh_sqlite_url};
use samsyn_kit::time::to_timestamp;
use samsyn_kit::{serve, tls};
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{
    CalendarDate, DataCategory, OrganisationId, OrganisationKind as PbOrganisationKind,
    ParticipantId, StaffRef,
};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use tonic::transport::Channel;

const REGION: &str = "SE2321000255";
const HELSINGBORG: &str = "1283";
const CASE_MANAGER: &str = "SE2321000255-P001";
const COORDINATOR: &str = "hbg-soc-7";

/// The view's bound: above the 1 s heartbeat (the shortest a feed offers), so an idle feed
/// stays current, and short enough for a fast test.
const MAX_LAG: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(3);

fn context(url: &str, dir: &Path) -> PartContext {
    PartContext {
        database_url: url.to_owned(),
        data_dir: dir.to_path_buf(),
        limits: Limits::default(),
    }
}

/// The consent service in a runtime of its own, so that taking it down cuts its live
/// streams too. (`ServedPart::stop` shuts down gracefully, and a graceful shutdown waits for
/// in-flight calls — a feed stream never ends by itself, so the follower would stay
/// connected to a service that is otherwise gone.)
struct ConsentService {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
}

impl ConsentService {
    /// Serves consent on `url` at `addr` (port 0: any) with the certificates in `pki`.
    async fn start(url: &str, data_dir: &Path, pki: &Path, addr: SocketAddr) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let context = context(url, data_dir);
        let pki = tls::DevPki::at(pki);
        let server = tls::server_config(
            &pki.identity("server").unwrap(),
            pki.trust_anchors().unwrap(),
            tls::ClientAuth::Required,
        )
        .unwrap();
        let addr = runtime
            .spawn(async move {
                let part = samsyn_consent::part(&context).await.unwrap();
                let listener = serve::bind(addr).await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move {
                    serve::serve(
                        part,
                        listener,
                        server,
                        &Limits::default(),
                        std::future::pending(),
                    )
                    .await
                });
                addr
            })
            .await
            .unwrap();
        Self {
            runtime: Some(runtime),
            addr,
        }
    }

    /// Takes the service down at once: listener, connections and streams.
    async fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(5)))
                .await
                .unwrap();
        }
    }
}

impl Drop for ConsentService {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn pki(dir: &Path) -> PathBuf {
    let path = dir.join("pki");
    tls::DevPki::at(&path)
        .ensure(&["server", "client"])
        .unwrap();
    path
}

/// A client channel to `addr` trusting `pki`; it reconnects by itself.
fn channel(pki: &Path, addr: SocketAddr) -> Channel {
    let pki = tls::DevPki::at(pki);
    let client = tls::client_config(
        pki.trust_anchors().unwrap(),
        Some(&pki.identity("client").unwrap()),
    )
    .unwrap();
    tls::channel(addr, "localhost", client).unwrap()
}

fn pid(value: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: value.to_owned(),
    })
}

fn org(value: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: value.to_owned(),
    })
}

fn staff(id: &str, organisation: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: id.to_owned(),
        organisation_id: org(organisation),
        unit_id: String::new(),
    })
}

fn staff_actor(id: &str, organisation: &str) -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Staff as i32,
        staff: staff(id, organisation),
    })
}

fn the_participant() -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Participant as i32,
        staff: None,
    })
}

/// A synthetic, valid personnummer.
fn pin(yyyymmdd: &str, nnn: &str) -> String {
    let nine = format!("{}{nnn}", &yyyymmdd[2..]);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!("{yyyymmdd}{nnn}{}", check_digit(&digits))
}

fn consent_request(
    participant: &str,
    kind: consent_pb::ConsentKind,
    sharing: Option<consent_pb::Sharing>,
) -> consent_pb::RecordConsentRequest {
    consent_pb::RecordConsentRequest {
        participant_id: pid(participant),
        kind: kind as i32,
        sharing,
        valid_from: Some(to_timestamp(Utc::now() - chrono::Duration::minutes(1))),
        valid_until: None,
        form: consent_pb::ConsentForm::Written as i32,
        requested_by: the_participant(),
        recorded_by: staff_actor(CASE_MANAGER, REGION),
        on_behalf_of: None,
        note: "Samtycke givet vid mötet i Höganäs".to_owned(),
        idempotency_key: String::new(),
        study_id: if kind == consent_pb::ConsentKind::ResearchStudy {
            "fact-rct".to_owned()
        } else {
            String::new()
        },
    }
}

/// Sharing of the region's information in `categories` with Helsingborg.
fn region_to_municipality(categories: &[DataCategory]) -> Option<consent_pb::Sharing> {
    Some(consent_pb::Sharing {
        from_organisation_id: org(REGION),
        to_organisation_id: org(HELSINGBORG),
        categories: categories.iter().map(|c| *c as i32).collect(),
        unit_id: String::new(),
        staff_id: String::new(),
    })
}

/// The municipal coordinator reads the region's `category`.
fn municipal_read(category: rule::Category) -> rule::Request {
    rule::Request {
        reader_organisation: HELSINGBORG.to_owned(),
        reader_unit: None,
        reader_staff: Some(COORDINATOR.to_owned()),
        owner_organisation: REGION.to_owned(),
        category,
        purpose: rule::Purpose::Care,
        at: Utc::now(),
        emergency: false,
    }
}

/// Refers, reviews, enrols (with the participation consent) and staffs a participant.
async fn enrolled_with_team(
    participants: &mut ParticipantsServiceClient<Channel>,
    consent: &mut ConsentServiceClient<Channel>,
) -> (String, u64) {
    let p = participants
        .create_referral(participants_pb::CreateReferralRequest {
            idempotency_key: String::new(),
            personal_identity_number: pin("19790321", "482"),
            name: "Örjan Åkesson".to_owned(),
            home_municipality_code: HELSINGBORG.to_owned(),
            referring_principal: PbOrganisationKind::Region as i32,
            referred_by: staff(CASE_MANAGER, REGION),
            reason: "Behov av samordnat stöd från båda huvudmännen".to_owned(),
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
    for (principal, reviewer, organisation) in [
        (PbOrganisationKind::Region, "SE2321000255-D01", REGION),
        (PbOrganisationKind::Municipality, COORDINATOR, HELSINGBORG),
    ] {
        revision = participants
            .record_review(participants_pb::RecordReviewRequest {
                participant_id: pid(&id),
                revision,
                principal: principal as i32,
                reviewed_by: staff(reviewer, organisation),
                assessment: participants_pb::Assessment::Accept as i32,
                reason: "Uppfyller kriterierna".to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
    }
    let participation = consent
        .record_consent(consent_request(
            &id,
            consent_pb::ConsentKind::Participation,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let today = Utc::now().date_naive();
    let p = participants
        .enrol(participants_pb::EnrolRequest {
            participant_id: pid(&id),
            revision,
            consent_reference: participation.id,
            enrolled_on: Some(CalendarDate {
                year: chrono::Datelike::year(&today),
                month: chrono::Datelike::month(&today),
                day: chrono::Datelike::day(&today),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let team = participants
        .assign_coordinator(participants_pb::AssignCoordinatorRequest {
            participant_id: pid(&id),
            revision: p.revision,
            principal: PbOrganisationKind::Municipality as i32,
            rank: participants_pb::CoordinatorRank::Main as i32,
            staff: staff(COORDINATOR, HELSINGBORG),
        })
        .await
        .unwrap()
        .into_inner();
    let team = participants
        .add_care_team_member(participants_pb::AddCareTeamMemberRequest {
            participant_id: pid(&id),
            revision: team.revision,
            staff: staff(CASE_MANAGER, REGION),
            role: participants_pb::CareRole::CaseManager as i32,
        })
        .await
        .unwrap()
        .into_inner();
    (id, team.revision.unwrap().value)
}

/// Polls until every feed is current.
async fn until_current(view: &AccessView) {
    let start = Instant::now();
    while view.ensure_current(Instant::now()).is_err() {
        assert!(start.elapsed() < WAIT, "the view never caught up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls until the view reports a feed behind; how long that took.
async fn until_behind(view: &AccessView, participant: &str) -> (ViewError, Duration) {
    let start = Instant::now();
    loop {
        match view.facts(participant, Instant::now()) {
            Err(error) => return (error, start.elapsed()),
            Ok(_) => {
                assert!(start.elapsed() < MAX_LAG * 3, "the view never fell behind");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_follows_the_real_services_and_fails_closed_while_one_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let participants_url = fresh_sqlite_url(dir.path());
    let consent_url = fresh_sqlite_url(dir.path());
    let board_url = fresh_sqlite_url(dir.path());
    follow_fail_closed_and_catch_up(dir.path(), &participants_url, &consent_url, &board_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let participants_url = fresh_postgres_url().await.unwrap();
    let consent_url = fresh_postgres_url().await.unwrap();
    let board_url = fresh_postgres_url().await.unwrap();
    follow_fail_closed_and_catch_up(dir.path(), &participants_url, &consent_url, &board_url).await;
}

async fn follow_fail_closed_and_catch_up(
    dir: &Path,
    participants_url: &str,
    consent_url: &str,
    board_url: &str,
) {
    let board_served =
        ServedPart::start(samsyn_board::part(&context(board_url, dir)).await.unwrap()).await;
    let pki = pki(dir);
    let consent_served = ConsentService::start(
        consent_url,
        dir,
        &pki,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await;
    let consent_addr = consent_served.addr;
    let consent_channel = channel(&pki, consent_addr);
    let participants_part = samsyn_participants::part(
        &context(participants_url, dir),
        Some(consent_channel.clone()),
    )
    .await
    .unwrap();
    let participants_served = ServedPart::start(participants_part).await;

    let view = Arc::new(AccessView::new(MAX_LAG));
    let follower = follow(
        Arc::clone(&view),
        FeedChannels {
            participants: participants_served.channel.clone(),
            consent: consent_channel.clone(),
            board: board_served.channel.clone(),
        },
        FollowSettings {
            heartbeat: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
    );

    // A participant enrolled with a care team, and a consent, through the services' APIs.
    let mut participants = ParticipantsServiceClient::new(participants_served.channel.clone());
    let mut consent = ConsentServiceClient::new(consent_channel.clone());
    let (id, team_revision) = enrolled_with_team(&mut participants, &mut consent).await;
    let sharing = consent
        .record_consent(consent_request(
            &id,
            consent_pb::ConsentKind::InformationSharing,
            region_to_municipality(&[DataCategory::Plan]),
        ))
        .await
        .unwrap()
        .into_inner();
    view.wait_for_participant(&id, team_revision, WAIT)
        .await
        .unwrap();
    view.wait_for_record(&id, &sharing.id, sharing.revision.unwrap().value, WAIT)
        .await
        .unwrap();
    // The board feed has nothing yet: current from its first heartbeat.
    until_current(&view).await;
    let facts = view.facts(&id, Instant::now()).unwrap().unwrap();
    assert_eq!(facts.participant_id, id);
    assert_eq!(facts.status, ParticipantStatus::Enrolled);
    assert_eq!(facts.home_municipality, HELSINGBORG);
    assert_eq!(facts.revision, team_revision);
    let mut team: Vec<_> = facts
        .care_team
        .iter()
        .map(|m| (m.staff_id.as_str(), m.organisation_id.as_str(), m.role))
        .collect();
    team.sort_by_key(|m| m.0);
    assert_eq!(
        team,
        [
            (
                CASE_MANAGER,
                REGION,
                AssignmentRole::CareTeamMember(CareRole::CaseManager)
            ),
            (
                COORDINATOR,
                HELSINGBORG,
                AssignmentRole::Coordinator {
                    principal: OrganisationKind::Municipality,
                    rank: CoordinatorRank::Main
                }
            ),
        ]
    );
    assert_eq!(facts.consents.len(), 2, "participation and sharing");
    assert!(
        facts
            .decide(&municipal_read(rule::Category::Plan))
            .is_permit()
    );
    assert!(
        !facts
            .decide(&municipal_read(rule::Category::Board))
            .is_permit()
    );
    assert!(facts.fact_teams.is_empty());

    // Put on a FACT team's board, the participant's facts name the team (the board feed's
    // second change on this fresh database: the team, then the entry); taken off, no longer.
    let mut board = BoardServiceClient::new(board_served.channel.clone());
    let team_id = board
        .create_team(board_pb::CreateTeamRequest {
            request_id: "team-nordvast".into(),
            name: "FACT-team Nordväst – Helsingborg".into(),
            owner_organisation_id: org(REGION),
            coordinators: vec![],
            criteria: vec![],
            status_levels: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .team_id;
    let entry = board
        .put_on_board(board_pb::PutOnBoardRequest {
            request_id: "put-on".into(),
            team_id: team_id.clone(),
            participant_id: pid(&id),
            reason: "Försämring efter utskrivning".into(),
            criteria: vec!["crisis".into()],
            status: Some(board_pb::StatusAssessment {
                level: 1,
                trend: board_pb::Trend::Worsening.into(),
                note: "Röd: dagliga hembesök".into(),
            }),
            next_review_on: None,
            actions: vec![],
            recorded_by: staff(CASE_MANAGER, REGION),
        })
        .await
        .unwrap()
        .into_inner();
    view.wait_for(FeedName::Board, 2, WAIT).await.unwrap();
    let facts = view.facts(&id, Instant::now()).unwrap().unwrap();
    assert_eq!(facts.fact_teams, [team_id.as_str()]);
    board
        .take_off_board(board_pb::TakeOffBoardRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: pid(&id),
            expected_revision: entry.revision,
            reason: "Stabil, tillbaka i ordinarie uppföljning".into(),
            recorded_by: staff(CASE_MANAGER, REGION),
        })
        .await
        .unwrap();
    view.wait_for(FeedName::Board, 3, WAIT).await.unwrap();
    let facts = view.facts(&id, Instant::now()).unwrap().unwrap();
    assert!(facts.fact_teams.is_empty());

    // The revocation is in force as soon as the view has applied it: the consent feed's
    // third change on this fresh database (participation, sharing, revocation).
    consent
        .revoke_consent(consent_pb::RevokeConsentRequest {
            participant_id: pid(&id),
            consent_id: sharing.id.clone(),
            revision: sharing.revision,
            revoked_by: the_participant(),
            reason: "Vill inte längre dela".to_owned(),
        })
        .await
        .unwrap();
    view.wait_for(FeedName::Consent, 3, WAIT).await.unwrap();
    let facts = view.facts(&id, Instant::now()).unwrap().unwrap();
    let decision = facts.decide(&municipal_read(rule::Category::Plan));
    assert_eq!(decision.reason, rule::Reason::ConsentRevoked);
    assert_eq!(decision.consents, [sharing.id.as_str()]);

    // The consent service goes down: the view fails closed within the bound (plus at most
    // a poll), naming the consent feed — the idle participants feed stays current by
    // heartbeats.
    consent_served.crash().await;
    let (error, took) = until_behind(&view, &id).await;
    assert_eq!(
        error,
        ViewError::Behind {
            feed: FeedName::Consent
        }
    );
    assert!(took <= MAX_LAG + Duration::from_millis(500), "{took:?}");
    let cursor = view.cursor(FeedName::Consent);
    assert_eq!(cursor, 3);

    // Meanwhile another instance on the same database takes a change...
    let elsewhere = ServedPart::start(
        samsyn_consent::part(&context(consent_url, dir))
            .await
            .unwrap(),
    )
    .await;
    let later = ConsentServiceClient::new(elsewhere.channel.clone())
        .record_consent(consent_request(
            &id,
            consent_pb::ConsentKind::InformationSharing,
            region_to_municipality(&[DataCategory::Board]),
        ))
        .await
        .unwrap()
        .into_inner();
    drop(elsewhere);
    assert!(matches!(
        view.facts(&id, Instant::now()),
        Err(ViewError::Behind { .. })
    ));

    // ...and once the service is back where the gateway looks for it, the view catches up
    // from its cursor: the change made while it was down is there.
    let consent_served = ConsentService::start(consent_url, dir, &pki, consent_addr).await;
    view.wait_for_record(&id, &later.id, later.revision.unwrap().value, WAIT)
        .await
        .unwrap();
    assert_eq!(view.cursor(FeedName::Consent), cursor + 1);
    let facts = view.facts(&id, Instant::now()).unwrap().unwrap();
    assert_eq!(facts.consents.len(), 3);
    assert!(
        facts
            .decide(&municipal_read(rule::Category::Board))
            .is_permit()
    );
    assert!(
        !facts
            .decide(&municipal_read(rule::Category::Plan))
            .is_permit()
    );

    drop(follower);
    consent_served.crash().await;
}
