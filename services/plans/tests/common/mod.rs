//! Helpers shared by the plans tests and bench: a served plans part and synthetic requests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;

use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::ServedPart;
use samsyn_proto::common::v1::{CalendarDate, OrganisationId, ParticipantId, Revision, StaffRef};
use samsyn_proto::plans::v1 as pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tonic::transport::Channel;

/// The region's organisation id in tests (fictional HSA-style id).
pub const REGION: &str = "SE2321000016-P001";
/// The municipality's organisation id in tests (fictional municipality code).
pub const MUNICIPALITY: &str = "9999";

/// A plans part served over mutual TLS on a fresh database.
pub struct Served {
    pub part: ServedPart,
    pub client: PlansServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

pub async fn serve(database_url: Option<String>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let url = match database_url {
        Some(url) => url,
        None => samsyn_kit::testing::fresh_sqlite_url(dir.path()),
    };
    let context = PartContext {
        database_url: url,
        data_dir: PathBuf::from(dir.path()),
        limits: Limits::default(),
    };
    let part = ServedPart::start(samsyn_plans::part(&context).await.unwrap()).await;
    let client = PlansServiceClient::new(part.channel.clone());
    Served {
        part,
        client,
        _dir: dir,
    }
}

pub fn participant(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: id.to_owned(),
    })
}

pub fn org(id: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: id.to_owned(),
    })
}

pub fn day(year: i32, month: u32, day: u32) -> Option<CalendarDate> {
    Some(CalendarDate { year, month, day })
}

pub fn revision(value: u64) -> Option<Revision> {
    Some(Revision { value })
}

pub fn new_participant() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A plan's content: the participant's goal in Swedish, one housing need.
pub fn content(need_id: &str) -> pb::PlanContent {
    pb::PlanContent {
        goals: vec![pb::Goal {
            id: String::new(),
            text: "Att få bo kvar i min lägenhet på Östra Förstadsgatan och träffa min dotter"
                .into(),
        }],
        strengths: "Är envis, tycker om att laga mat, har en god vän i Höör".into(),
        overall_responsibility: Some(pb::Responsibility {
            organisation_id: org(REGION),
            staff_id: "SE2321000016-S042".into(),
        }),
        needs: vec![pb::Need {
            id: need_id.into(),
            life_area: pb::LifeArea::Housing as i32,
            description: "Stöd att sköta hemmet och räkningar".into(),
            no_intervention_reason: 0,
        }],
        interventions: vec![],
        other_actions: vec![pb::OtherActorAction {
            id: String::new(),
            actor: "Försäkringskassan".into(),
            description: "Utreda aktivitetsersättning".into(),
            contact: "Handläggare på lokalkontoret".into(),
            due_on: day(2026, 12, 15),
        }],
        follow_ups: vec![],
        approved_for_participant: false,
    }
}

pub fn intervention(id: &str, need_id: &str, code: &str) -> pb::Intervention {
    pb::Intervention {
        id: id.into(),
        need_id: need_id.into(),
        responsible_organisation_id: org(MUNICIPALITY),
        responsible_staff_id: "9999-BH-7".into(),
        kind: Some(pb::intervention::Kind::CatalogueCode(code.into())),
        status: pb::InterventionStatus::Applied as i32,
        start_on: None,
        end_on: None,
        decision: None,
    }
}

pub fn follow_up(due: Option<CalendarDate>, team: &str) -> pb::FollowUp {
    pb::FollowUp {
        id: String::new(),
        due_on: due,
        organisation_id: org(MUNICIPALITY),
        team_id: team.into(),
        staff_id: String::new(),
        description: "Följa upp boendestödet tillsammans med Åsa".into(),
        completed_on: None,
    }
}

pub fn decision(external_id: &str, participant_id: &str, intervention_id: &str) -> pb::Decision {
    pb::Decision {
        external_decision_id: external_id.into(),
        organisation_id: org(MUNICIPALITY),
        participant_id: participant(participant_id),
        subject: Some(pb::decision::Subject::InterventionId(
            intervention_id.into(),
        )),
        outcome: pb::DecisionOutcome::Granted as i32,
        valid_from: day(2026, 12, 1),
        valid_until: day(2027, 11, 30),
        decided_by: Some(StaffRef {
            staff_id: "9999-BH-7".into(),
            organisation_id: org(MUNICIPALITY),
            unit_id: String::new(),
        }),
        decided_at: Some(prost_types::Timestamp {
            seconds: 1_795_000_000,
            nanos: 0,
        }),
        personal_identity_number: String::new(),
        version: 0,
        change: 0,
    }
}
