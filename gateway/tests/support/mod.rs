//! A whole Samsyn behind its gateway, for tests: the four real services on SQLite, the
//! gateway in front over TLS (optional client certificates), development tokens, two linked
//! external systems, and seeding helpers that go straight to the services.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use samsyn_gateway::audit::store::AuditStore;
use samsyn_gateway::audit::{MemoryTrail, TeeTrail};
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_gateway::links::{LinkConfig, SystemKind, fingerprint_hex};
use samsyn_gateway::proxy::{Gateway, Upstreams};
use samsyn_gateway::settings::AccessSettings;
use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_sqlite_url};
use samsyn_kit::time::to_timestamp;
use samsyn_kit::{serve, tls};
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{
    CalendarDate, DataCategory, OrganisationId, OrganisationKind, ParticipantId, StaffRef,
};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The region of the tests (the gateway's default region organisation).
pub const REGION: &str = "SE2321000255";
/// The participants' home municipality (Helsingborg).
pub const HELSINGBORG: &str = "1283";
/// Another municipality of the programme (Höganäs).
pub const HOGANAS: &str = "1284";

/// The journal system's link id.
pub const JOURNAL: &str = "journal-region";
/// The municipal case system's link id.
pub const MUNICIPAL_SYSTEM: &str = "case-system-helsingborg";
/// What the journal system may call.
pub const JOURNAL_RPCS: [&str; 3] = [
    "/samsyn.consent.v1.ConsentService/ListConsents",
    "/samsyn.plans.v1.PlansService/ListPlans",
    "/samsyn.consent.v1.ConsentService/Decide",
];
/// What the municipal case system may call.
pub const MUNICIPAL_RPCS: [&str; 1] = ["/samsyn.plans.v1.PlansService/PushDecision"];

/// The municipal case system's own decision-type codes and what they mean in the catalogue.
pub const MUNICIPAL_DECISION_CODES: [(&str, &str); 2] = [
    ("BS-SOL-4:1", "municipality.housing_support"),
    ("SYSS-SOL", "municipality.occupation"),
];

/// The four services and the gateway in front of them.
pub struct Stack {
    dir: tempfile::TempDir,
    pub participants: ServedPart,
    pub consent: ServedPart,
    pub plans: ServedPart,
    pub board: ServedPart,
    pub reports: ServedPart,
    /// How far the reports' read model has followed the feeds.
    pub reports_progress: samsyn_reports::Progress,
    /// How far the board has followed the plans and participants feeds.
    pub board_followers: Arc<samsyn_board::Followers>,
    pub gateway: Arc<Gateway>,
    /// Every audit event, in memory, for tests to inspect.
    pub trail: Arc<MemoryTrail>,
    /// The same events in the durable store the audit API serves.
    pub store: Arc<AuditStore>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Stack {
    /// Starts everything and waits until the gateway's access view is current.
    pub async fn start() -> Self {
        Self::start_with(AccessSettings::default()).await
    }

    /// As [`Stack::start`], with these settings (links are added).
    pub async fn start_with(mut settings: AccessSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let context = PartContext {
            database_url: String::new(),
            data_dir: dir.path().to_path_buf(),
            limits: Limits::default(),
        };
        let at = |context: &PartContext| PartContext {
            database_url: fresh_sqlite_url(dir.path()),
            ..context.clone()
        };
        let consent = ServedPart::start(samsyn_consent::part(&at(&context)).await.unwrap()).await;
        let participants = ServedPart::start(
            samsyn_participants::part(&at(&context), Some(consent.channel.clone()))
                .await
                .unwrap(),
        )
        .await;
        let plans = ServedPart::start(samsyn_plans::part(&at(&context)).await.unwrap()).await;
        let (board_part, board_followers) = samsyn_board::part_with_feeds(
            &at(&context),
            Some(samsyn_board::BoardFeeds {
                plans: plans.channel.clone(),
                participants: participants.channel.clone(),
            }),
            samsyn_board::FollowSettings::default(),
        )
        .await
        .unwrap();
        let board = ServedPart::start(board_part).await;
        let (reports_part, reports_progress) = samsyn_reports::part_with_progress(
            &at(&context),
            report_settings(),
            samsyn_reports::FeedChannels {
                participants: participants.channel.clone(),
                consent: consent.channel.clone(),
                plans: plans.channel.clone(),
                board: board.channel.clone(),
            },
        )
        .await
        .unwrap();
        let reports = ServedPart::start(reports_part).await;

        let certs = dir.path().join("certs");
        let pki = tls::DevPki::at(&certs);
        pki.ensure(&["gateway", JOURNAL, MUNICIPAL_SYSTEM, "unlinked-system"])
            .unwrap();
        let leaf = |name: &str| fingerprint_hex(pki.identity(name).unwrap().leaf().unwrap());
        settings.links.extend([
            LinkConfig {
                id: JOURNAL.into(),
                kind: SystemKind::JournalSystem,
                organisation: REGION.into(),
                ca_cert: pki.ca_cert(),
                certificate_sha256: vec![leaf(JOURNAL)],
                allowed_rpcs: JOURNAL_RPCS.iter().map(|s| (*s).to_owned()).collect(),
                acts_for_users: false,
                decision_codes: Default::default(),
            },
            LinkConfig {
                id: MUNICIPAL_SYSTEM.into(),
                kind: SystemKind::MunicipalCaseSystem,
                organisation: HELSINGBORG.into(),
                ca_cert: pki.ca_cert(),
                certificate_sha256: vec![leaf(MUNICIPAL_SYSTEM)],
                allowed_rpcs: MUNICIPAL_RPCS.iter().map(|s| (*s).to_owned()).collect(),
                acts_for_users: false,
                decision_codes: MUNICIPAL_DECISION_CODES
                    .iter()
                    .map(|(code, catalogue)| ((*code).to_owned(), (*catalogue).to_owned()))
                    .collect(),
            },
        ]);
        let upstreams = Upstreams {
            participants: participants.channel.clone(),
            consent: consent.channel.clone(),
            plans: plans.channel.clone(),
            board: board.channel.clone(),
            audit: None,
            reports: Some(reports.channel.clone()),
        };
        let served = serve_gateway(&certs, dir.path(), settings, upstreams).await;
        let (gateway, trail, store, addr) =
            (served.gateway, served.trail, served.store, served.addr);
        let stop = served.stop;
        let stack = Self {
            dir,
            participants,
            consent,
            plans,
            board,
            reports,
            reports_progress,
            board_followers: board_followers.expect("the board follows feeds"),
            gateway,
            trail,
            store,
            addr,
            stop,
        };
        stack.wait_current().await;
        stack
    }

    /// Waits until the access view vouches for its facts.
    pub async fn wait_current(&self) {
        let start = Instant::now();
        while self
            .gateway
            .gate()
            .view()
            .ensure_current(Instant::now())
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the access view never caught up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the access view has applied everything the services have written.
    pub async fn settle(&self) {
        use samsyn_gateway::access_view::FeedName;
        let view = self.gateway.gate().view();
        for (feed, channel) in [
            (FeedName::Participants, &self.participants.channel),
            (FeedName::Consent, &self.consent.channel),
            (FeedName::Board, &self.board.channel),
        ] {
            let head = feed_head(feed, channel.clone()).await;
            view.wait_for(feed, head, Duration::from_secs(5))
                .await
                .unwrap();
        }
    }

    /// Waits until the reports' read model has applied everything the services have written.
    pub async fn settle_reports(&self) {
        use samsyn_reports::Feed;
        for (feed, channel) in [
            (Feed::Participants, &self.participants.channel),
            (Feed::Consent, &self.consent.channel),
            (Feed::Plans, &self.plans.channel),
            (Feed::Board, &self.board.channel),
        ] {
            let head = report_feed_head(feed, channel.clone()).await;
            assert!(
                self.reports_progress
                    .wait_for(feed, head, Duration::from_secs(10))
                    .await,
                "the reports read model never caught up with {}",
                feed.as_str()
            );
        }
    }

    /// The certificate directory (the development CA, the gateway's and the systems' keys).
    pub fn certs(&self) -> std::path::PathBuf {
        self.dir.path().join("certs")
    }

    /// A channel to the gateway with no client certificate (staff and participants).
    pub fn channel(&self) -> Channel {
        let pki = tls::DevPki::at(self.certs());
        let client = tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
        tls::channel(self.addr, "localhost", client).unwrap()
    }

    /// A channel to another gateway at `addr` with the same CA, no client certificate.
    pub fn channel_to(&self, addr: SocketAddr) -> Channel {
        let pki = tls::DevPki::at(self.certs());
        let client = tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
        tls::channel(addr, "localhost", client).unwrap()
    }

    /// A channel to the gateway presenting `system`'s client certificate.
    pub fn system_channel(&self, system: &str) -> Channel {
        let pki = tls::DevPki::at(self.certs());
        let client = tls::client_config(
            pki.trust_anchors().unwrap(),
            Some(&pki.identity(system).unwrap()),
        )
        .unwrap();
        tls::channel(self.addr, "localhost", client).unwrap()
    }

    /// A development token for `principal`, valid for ten minutes.
    pub fn token(&self, principal: &Principal) -> String {
        DevIssuer::at(self.certs())
            .issue(principal, Duration::from_secs(600))
            .unwrap()
    }

    /// Takes the plans service down for good (its port stays closed).
    pub async fn stop_plans(&mut self) {
        let placeholder = ServedPart::start(samsyn_kit::serve::Part {
            name: "placeholder",
            routes: tonic::service::RoutesBuilder::default(),
            services: Vec::new(),
            feeds: Vec::new(),
            readiness: Default::default(),
            http1: false,
        })
        .await;
        std::mem::replace(&mut self.plans, placeholder).stop().await;
    }

    /// Stops the gateway.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The sequence of the newest change on a service's feed.
pub async fn feed_head(feed: samsyn_gateway::access_view::FeedName, channel: Channel) -> u64 {
    use samsyn_gateway::access_view::FeedName;
    use samsyn_proto::common::v1::WatchChangesRequest;
    let request = WatchChangesRequest {
        after_sequence: 0,
        heartbeat_seconds: 1,
    };
    let mut stream = match feed {
        FeedName::Participants => ParticipantsServiceClient::new(channel)
            .watch_changes(request)
            .await
            .unwrap()
            .into_inner(),
        FeedName::Consent => ConsentServiceClient::new(channel)
            .watch_changes(request)
            .await
            .unwrap()
            .into_inner(),
        FeedName::Board => BoardServiceClient::new(channel)
            .watch_changes(request)
            .await
            .unwrap()
            .into_inner(),
    };
    // The first heartbeat says how far the feed had got.
    loop {
        let change = stream.message().await.unwrap().unwrap();
        if change.change_kind == samsyn_kit::feed::HEARTBEAT {
            return change.sequence;
        }
    }
}

/// The research studies of the tests and their keys (test keys, never a real study's).
pub const STUDIES: [(&str, [u8; 32]); 2] = [("fact-rct", [7; 32]), ("other-study", [9; 32])];

/// The reports' settings in tests: the default region and programme, threshold 5, and
/// [`STUDIES`] with dates by quarter.
pub fn report_settings() -> samsyn_reports::ReportSettings {
    samsyn_reports::ReportSettings {
        region_organisation: REGION.to_owned(),
        programme_municipalities: samsyn_participants::ParticipantsSettings::default()
            .programme_municipalities
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        studies: STUDIES
            .iter()
            .map(|(id, key)| samsyn_reports::Study {
                id: (*id).to_owned(),
                key: key.to_vec(),
                date_precision: samsyn_reports::DatePrecision::Quarter,
                arms: vec!["fact".to_owned(), "usual_care".to_owned()],
            })
            .collect(),
        ..samsyn_reports::ReportSettings::default()
    }
}

/// The sequence of the newest change on any of the feeds the reports follow.
pub async fn report_feed_head(feed: samsyn_reports::Feed, channel: Channel) -> u64 {
    use samsyn_gateway::access_view::FeedName;
    use samsyn_proto::common::v1::WatchChangesRequest;
    use samsyn_reports::Feed;
    let name = match feed {
        Feed::Participants => FeedName::Participants,
        Feed::Consent => FeedName::Consent,
        Feed::Board => FeedName::Board,
        Feed::Plans => {
            let mut stream =
                samsyn_proto::plans::v1::plans_service_client::PlansServiceClient::new(channel)
                    .watch_changes(WatchChangesRequest {
                        after_sequence: 0,
                        heartbeat_seconds: 1,
                    })
                    .await
                    .unwrap()
                    .into_inner();
            loop {
                let change = stream.message().await.unwrap().unwrap();
                if change.change_kind == samsyn_kit::feed::HEARTBEAT {
                    return change.sequence;
                }
            }
        }
    };
    feed_head(name, channel).await
}

/// Adds credentials (and an emergency reason) to every call.
#[derive(Clone, Default)]
pub struct Credentials {
    bearer: Option<AsciiMetadataValue>,
    emergency: Option<BinaryMetadataValue>,
    headers: Vec<(&'static str, AsciiMetadataValue)>,
}

impl Credentials {
    /// No credentials at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// `authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Self {
            bearer: Some(format!("Bearer {token}").parse().unwrap()),
            ..Self::default()
        }
    }

    /// With another header (a consistency token, say).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.parse().unwrap()));
        self
    }

    /// With an emergency reason.
    pub fn emergency(mut self, reason: &str) -> Self {
        self.emergency = Some(BinaryMetadataValue::from_bytes(reason.as_bytes()));
        self
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(bearer) = &self.bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        if let Some(reason) = &self.emergency {
            request
                .metadata_mut()
                .insert_bin(samsyn_gateway::proxy::EMERGENCY_REASON_BIN, reason.clone());
        }
        for (name, value) in &self.headers {
            request.metadata_mut().insert(*name, value.clone());
        }
        Ok(request)
    }
}

/// A member of staff.
pub fn staff(id: &str, organisation: &str, roles: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Staff,
        organisation: Some(organisation.into()),
        unit: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        teams: Vec::new(),
        purpose: Some("care".into()),
        acting_through: None,
    }
}

/// A participant acting for themself.
pub fn person(participant_id: &str) -> Principal {
    Principal {
        id: participant_id.into(),
        kind: PrincipalKind::Participant,
        organisation: None,
        unit: None,
        roles: Vec::new(),
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    }
}

pub fn pid(value: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: value.to_owned(),
    })
}

pub fn org(value: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: value.to_owned(),
    })
}

pub fn staff_ref(id: &str, organisation: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: id.to_owned(),
        organisation_id: org(organisation),
        unit_id: String::new(),
    })
}

pub fn actor(id: &str, organisation: &str) -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Staff as i32,
        staff: staff_ref(id, organisation),
    })
}

fn the_participant() -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Participant as i32,
        staff: None,
    })
}

/// A synthetic, valid personnummer (never a real person's: test data only).
pub fn pin(yyyymmdd: &str, nnn: &str) -> String {
    let nine = format!("{}{nnn}", &yyyymmdd[2..]);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!("{yyyymmdd}{nnn}{}", check_digit(&digits))
}

pub fn today() -> CalendarDate {
    let today = Utc::now().date_naive();
    CalendarDate {
        year: chrono::Datelike::year(&today),
        month: chrono::Datelike::month(&today),
        day: chrono::Datelike::day(&today),
    }
}

/// Who is on a seeded participant's care team.
pub struct Team<'a> {
    /// Region staff on the care team (case managers).
    pub region: &'a [&'a str],
    /// Municipal coordinators from the home municipality.
    pub municipal: &'a [&'a str],
}

/// Refers, reviews, enrols (with a participation consent) and staffs a participant; returns
/// their id. Straight to the services: seeding is not what the gateway is tested for.
pub async fn enrolled(stack: &Stack, pin: &str, name: &str, team: Team<'_>) -> String {
    let mut participants = ParticipantsServiceClient::new(stack.participants.channel.clone());
    let mut consent = ConsentServiceClient::new(stack.consent.channel.clone());
    let first_region = team.region.first().copied().unwrap_or("SE2321000255-D01");
    let p = participants
        .create_referral(participants_pb::CreateReferralRequest {
            idempotency_key: String::new(),
            personal_identity_number: pin.to_owned(),
            name: name.to_owned(),
            home_municipality_code: HELSINGBORG.to_owned(),
            referring_principal: OrganisationKind::Region as i32,
            referred_by: staff_ref(first_region, REGION),
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
        (OrganisationKind::Region, "SE2321000255-D01", REGION),
        (
            OrganisationKind::Municipality,
            "hbg-soc-review",
            HELSINGBORG,
        ),
    ] {
        revision = participants
            .record_review(participants_pb::RecordReviewRequest {
                participant_id: pid(&id),
                revision,
                principal: principal as i32,
                reviewed_by: staff_ref(reviewer, organisation),
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
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let p = participants
        .enrol(participants_pb::EnrolRequest {
            participant_id: pid(&id),
            revision,
            consent_reference: participation.id,
            enrolled_on: Some(today()),
        })
        .await
        .unwrap()
        .into_inner();
    let mut revision = p.revision;
    for (i, coordinator) in team.municipal.iter().enumerate() {
        let rank = if i == 0 {
            participants_pb::CoordinatorRank::Main
        } else {
            participants_pb::CoordinatorRank::Deputy
        };
        revision = participants
            .assign_coordinator(participants_pb::AssignCoordinatorRequest {
                participant_id: pid(&id),
                revision,
                principal: OrganisationKind::Municipality as i32,
                rank: rank as i32,
                staff: staff_ref(coordinator, HELSINGBORG),
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
    }
    for member in team.region {
        revision = participants
            .add_care_team_member(participants_pb::AddCareTeamMemberRequest {
                participant_id: pid(&id),
                revision,
                staff: staff_ref(member, REGION),
                role: participants_pb::CareRole::CaseManager as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
    }
    id
}

/// A consent to record for `participant`, recorded by a region case manager.
pub fn consent_request(
    participant: &str,
    kind: consent_pb::ConsentKind,
    sharing: Option<consent_pb::Sharing>,
    valid_until: Option<chrono::DateTime<Utc>>,
) -> consent_pb::RecordConsentRequest {
    consent_pb::RecordConsentRequest {
        participant_id: pid(participant),
        kind: kind as i32,
        sharing,
        valid_from: Some(to_timestamp(Utc::now() - chrono::Duration::hours(2))),
        valid_until: valid_until.map(to_timestamp),
        form: consent_pb::ConsentForm::Written as i32,
        requested_by: the_participant(),
        recorded_by: actor("SE2321000255-D01", REGION),
        on_behalf_of: None,
        note: "Samtycke givet vid mötet i Höganäs".to_owned(),
        idempotency_key: String::new(),
        // A research consent is for the first of the tests' studies.
        study_id: if kind == consent_pb::ConsentKind::ResearchStudy {
            STUDIES[0].0.to_owned()
        } else {
            String::new()
        },
    }
}

/// Sharing of the region's information in `categories` with Helsingborg.
pub fn region_to_helsingborg(categories: &[DataCategory]) -> Option<consent_pb::Sharing> {
    Some(consent_pb::Sharing {
        from_organisation_id: org(REGION),
        to_organisation_id: org(HELSINGBORG),
        categories: categories.iter().map(|c| *c as i32).collect(),
        unit_id: String::new(),
        staff_id: String::new(),
    })
}

/// Records an information-sharing consent from the region to Helsingborg; returns it.
pub async fn share_with_helsingborg(
    stack: &Stack,
    participant: &str,
    categories: &[DataCategory],
    valid_until: Option<chrono::DateTime<Utc>>,
) -> consent_pb::Consent {
    ConsentServiceClient::new(stack.consent.channel.clone())
        .record_consent(consent_request(
            participant,
            consent_pb::ConsentKind::InformationSharing,
            region_to_helsingborg(categories),
            valid_until,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Creates the region's FACT team board; returns its id.
pub async fn board_team(stack: &Stack) -> String {
    use samsyn_proto::board::v1 as board_pb;
    samsyn_proto::board::v1::board_service_client::BoardServiceClient::new(
        stack.board.channel.clone(),
    )
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
    .team_id
}

/// The reason every seeded board entry gives.
pub const BOARD_REASON: &str = "Försämring efter utskrivning; ångest och sömnlöshet";

/// Puts a participant on the board; returns the entry id.
pub async fn put_on_board(stack: &Stack, team_id: &str, participant: &str) -> String {
    use samsyn_proto::board::v1 as board_pb;
    samsyn_proto::board::v1::board_service_client::BoardServiceClient::new(
        stack.board.channel.clone(),
    )
    .put_on_board(board_pb::PutOnBoardRequest {
        request_id: format!("put-on-{participant}"),
        team_id: team_id.to_owned(),
        participant_id: pid(participant),
        reason: BOARD_REASON.into(),
        criteria: vec!["crisis".into()],
        status: Some(board_pb::StatusAssessment {
            level: 1,
            trend: board_pb::Trend::Worsening.into(),
            note: "Röd: dagliga hembesök".into(),
        }),
        next_review_on: Some(today()),
        actions: vec![],
        recorded_by: staff_ref("SE2321000255-D01", REGION),
    })
    .await
    .unwrap()
    .into_inner()
    .entry_id
}

/// A gateway served over TLS in front of services, with an audit trail in memory and in a
/// durable store (whose audit API it serves itself).
pub struct ServedGateway {
    pub gateway: Arc<Gateway>,
    pub trail: Arc<MemoryTrail>,
    pub store: Arc<AuditStore>,
    pub addr: SocketAddr,
    /// Stops serving when sent to or dropped.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Builds and serves a gateway with `settings` in front of `upstreams` (its `audit` is
/// replaced by the gateway's own store, kept under `dir`), with the development PKI under
/// `certs`.
pub async fn serve_gateway(
    certs: &std::path::Path,
    dir: &std::path::Path,
    settings: AccessSettings,
    mut upstreams: Upstreams,
) -> ServedGateway {
    let pki = tls::DevPki::at(certs);
    pki.ensure(&["gateway"]).unwrap();
    let trail = Arc::new(MemoryTrail::default());
    let store = Arc::new(
        AuditStore::open(&fresh_sqlite_url(dir), &dir.join("audit-signing-key"))
            .await
            .unwrap(),
    );
    upstreams.audit = Some(samsyn_gateway::audit::service::in_process(Arc::clone(
        &store,
    )));
    let tee: Arc<dyn samsyn_gateway::audit::AuditTrail> =
        Arc::new(TeeTrail(Arc::clone(&trail), Arc::clone(&store)));
    let (gateway, addr, stop) = serve_with_trail(certs, settings, upstreams, tee).await;
    ServedGateway {
        gateway,
        trail,
        store,
        addr,
        stop: Some(stop),
    }
}

/// Builds and serves a gateway whose audit trail is `trail` (a test double, say).
pub async fn serve_with_trail(
    certs: &std::path::Path,
    settings: AccessSettings,
    upstreams: Upstreams,
    trail: Arc<dyn samsyn_gateway::audit::AuditTrail>,
) -> (Arc<Gateway>, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut settings = settings;
    // The tests' tokens come from the development issuer unless a test names its issuers.
    settings.development_issuer |= settings.issuers.is_empty();
    let pki = tls::DevPki::at(certs);
    // As `samsyn serve gateway`: each link's certificate is trusted from its own CA.
    let mut roots = (*pki.trust_anchors().unwrap()).clone();
    for link in &settings.links {
        roots.roots.extend(
            tls::trust_anchors(&link.ca_cert)
                .unwrap()
                .roots
                .iter()
                .cloned(),
        );
    }
    let gateway =
        samsyn_gateway::build(settings, certs, upstreams, trail, &Limits::default()).unwrap();
    let server = tls::server_config(
        &pki.identity("gateway").unwrap(),
        Arc::new(roots),
        tls::ClientAuth::Optional,
    )
    .unwrap();
    let listener = serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let part = samsyn_gateway::part(Arc::clone(&gateway));
    tokio::spawn(async move {
        serve::serve(part, listener, server, &Limits::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    (gateway, addr, stop)
}
