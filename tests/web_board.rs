//! The web board in a real headless Chromium: `samsyn up --demo`, a participant given a
//! known timeline through the gateway's gRPC, then `tests/browser/board.py` (Selenium) logs
//! in as Anna and as Lisa and checks what they see, live, and that every page passes axe.
//! Screenshots go to the target directory (`<target>/tmp/web-board/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::Up;
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{CalendarDate, OrganisationId, ParticipantId, Revision};
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

fn person<'a>(roster: &'a Value, key: &str) -> &'a Value {
    roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap_or_else(|| panic!("{key} in the roster"))
}

/// A bearer for `key` of the roster.
#[derive(Clone)]
struct Bearer(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

fn bearer(data_dir: &Path, roster: &Value, key: &str) -> Bearer {
    let p = person(roster, key);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let principal = Principal {
        id: p["id"].as_str().unwrap().to_owned(),
        kind: PrincipalKind::Staff,
        organisation: p["organisation"].as_str().map(str::to_owned),
        unit: p["unit"].as_str().map(str::to_owned),
        roles: strings(&p["roles"]),
        teams: strings(&p["teams"]),
        purpose: Some("care".into()),
        acting_through: None,
    };
    let token = DevIssuer::at(data_dir.join("certs"))
        .issue(&principal, Duration::from_secs(600))
        .unwrap();
    Bearer(format!("Bearer {token}").parse().unwrap())
}

fn gateway_channel(data_dir: &Path, up: &Up) -> Channel {
    let pki = samsyn_kit::tls::DevPki::at(data_dir.join("certs"));
    let client = samsyn_kit::tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
    samsyn_kit::tls::channel(up.addr("gateway"), "localhost", client).unwrap()
}

fn day(days: i64) -> CalendarDate {
    use chrono::Datelike;
    let date = (chrono::Utc::now() + chrono::Duration::days(days)).date_naive();
    CalendarDate {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    }
}

/// Gives the board's participant with `reason` (no plan yet, Anna's) three more status
/// assessments (five in all) and a plan with three interventions; returns their id.
async fn known_timeline(
    board: &mut BoardServiceClient<InterceptedService<Channel, Bearer>>,
    plans: &mut PlansServiceClient<InterceptedService<Channel, Bearer>>,
    team_id: &str,
    reason: &str,
    anna: &Value,
) -> String {
    let entry = board
        .get_board(board_pb::GetBoardRequest {
            team_id: team_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .find(|e| e.reason == reason)
        .expect("the demo's entry");
    let participant = entry.participant_id.clone().unwrap();
    let mut revision = entry.revision.unwrap().value;
    for (level, trend) in [(1, 1), (2, 3), (3, 3)] {
        let updated = board
            .update_entry(board_pb::UpdateEntryRequest {
                entry_id: entry.entry_id.clone(),
                participant_id: Some(participant.clone()),
                expected_revision: Some(Revision { value: revision }),
                status: Some(board_pb::StatusAssessment {
                    level,
                    trend,
                    note: "Bedömd på morgonmötet".into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        revision = updated.revision.unwrap().value;
    }
    let org = |value: &str| {
        Some(OrganisationId {
            value: value.to_owned(),
        })
    };
    let need = |id: &str, area: plans_pb::LifeArea, text: &str| plans_pb::Need {
        id: id.into(),
        life_area: area as i32,
        description: text.into(),
        no_intervention_reason: 0,
    };
    let anna_id = anna["id"].as_str().unwrap();
    let intervention =
        |id: &str,
         need: &str,
         organisation: &str,
         code: &str,
         status: plans_pb::InterventionStatus,
         start: Option<CalendarDate>| plans_pb::Intervention {
            id: id.into(),
            need_id: need.into(),
            responsible_organisation_id: org(organisation),
            responsible_staff_id: anna_id.into(),
            kind: Some(plans_pb::intervention::Kind::CatalogueCode(code.into())),
            status: status as i32,
            start_on: start,
            end_on: None,
            decision: None,
        };
    let ids: Vec<String> = (1..=6)
        .map(|n| format!("7eb0a4d0-0000-4000-8000-00000000000{n}"))
        .collect();
    plans
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: Some(ParticipantId {
                value: participant.value.clone(),
            }),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Att få bo kvar i lägenheten".into(),
                }],
                strengths: "Tycker om att laga mat".into(),
                overall_responsibility: Some(plans_pb::Responsibility {
                    organisation_id: org("SE2321000255"),
                    staff_id: anna_id.into(),
                }),
                needs: vec![
                    need(&ids[0], plans_pb::LifeArea::Health, "Stabil medicinering"),
                    need(&ids[1], plans_pb::LifeArea::Housing, "Stöd i hemmet"),
                ],
                interventions: vec![
                    intervention(
                        &ids[2],
                        &ids[0],
                        "SE2321000255",
                        "region.pharmacological_treatment",
                        plans_pb::InterventionStatus::Started,
                        Some(day(-20)),
                    ),
                    intervention(
                        &ids[3],
                        &ids[0],
                        "SE2321000255",
                        "region.psychological_treatment",
                        plans_pb::InterventionStatus::Proposed,
                        None,
                    ),
                    intervention(
                        &ids[4],
                        &ids[1],
                        "SE2321000255",
                        "region.ips",
                        plans_pb::InterventionStatus::Proposed,
                        None,
                    ),
                ],
                approved_for_participant: true,
                ..Default::default()
            }),
            supersede_active: false,
            request_id: "web-board-test-plan".into(),
        })
        .await
        .unwrap();
    participant.value
}

#[test]
fn the_web_board_in_a_real_browser() {
    let browser = common::browser_tools();
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start_with(dir.path(), &["--demo"], Some("demo programme"));
    let roster: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo.json")).unwrap())
            .unwrap();
    let team_id = roster["team_id"].as_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let timeline = runtime.block_on(async {
        let channel = gateway_channel(dir.path(), &up);
        let anna = bearer(dir.path(), &roster, "anna");
        let mut board = BoardServiceClient::with_interceptor(channel.clone(), anna.clone());
        let mut plans = PlansServiceClient::with_interceptor(channel, anna);
        known_timeline(
            &mut board,
            &mut plans,
            &team_id,
            "Konflikt med hyresvärden efter klagomål från grannar",
            person(&roster, "anna"),
        )
        .await
    });
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-board");
    std::fs::create_dir_all(&shots).unwrap();
    let status = Command::new("python3")
        .arg(browser.join("board.py"))
        .env(
            "BOARD_URL",
            format!("https://{}/board/", up.addr("gateway")),
        )
        .env("BROWSER_TEST_SAMSYN", env!("CARGO_BIN_EXE_samsyn"))
        .env("BROWSER_TEST_DATA_DIR", dir.path())
        .env("SAMSYN_GATEWAY__LISTEN", up.addr("gateway").to_string())
        .env("TIMELINE_PARTICIPANT", &timeline)
        .env("TIMELINE_STEPS", "5")
        .env("TIMELINE_BARS", "3")
        .env("AXE_JS", browser.join("node_modules/axe-core/axe.min.js"))
        .env("SHOTS", &shots)
        .env("RUST_LOG", "warn")
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the browser test passed (see its output)");
    for page in ["board", "meeting", "timeline"] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "screenshot of the {page}"
        );
    }
}
