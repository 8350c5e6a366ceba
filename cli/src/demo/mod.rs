//! The demo programme: a fictional FACT team in North-West Skåne, seeded straight into the
//! services (seeding is an operator's act, not a user's), and the roster of who to be.
//!
//! Everything here is synthetic. The names are made up, and the personal identity numbers
//! are generated from a fixed pattern (years 1960–1999, serials from 200) with a valid check
//! digit, so the services accept them; they belong to no one we know of and must never be
//! used outside a demo. The content is the same on every run (no randomness; idempotency
//! keys and request ids come from the seed's own keys); only the ids the services generate
//! differ, and dates are relative to the day of the run.
//!
//! The tour this data is made for, as the gateway's rules decide it:
//! - the board is the region's: Anna (case manager, region) works in the FACT team and sees
//!   all eight rows through its board, though she is case manager of only some of them (she
//!   is Örjan's and Gösta's, whose plan and consent the tour has her read and record);
//! - Lisa (coordinator, Helsingborg) is on the care team of every Helsingborg participant,
//!   six of whom are on the board, but sees a row only with an active information-sharing
//!   consent from the region to Helsingborg covering the board and no restriction: she sees
//!   Örjan's and one other; Gösta's has no consent, one was revoked, one has expired and one
//!   is blocked by a restriction (spärr);
//! - revoking Örjan's sharing consent (as Örjan himself, or as staff) removes his row from
//!   Lisa's board view.

mod cast;
mod seeding;

use std::time::Instant;

use anyhow::{Context, bail};
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::PageRequest;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tonic::transport::Channel;

use cast::{BOARD, REGION, STAFF, Spec, specs};
use seeding::{create_team, id_of, pid, refer, seed_board_entry, seed_participant, seed_plan};

/// Where the demo seeding connects: each service's mTLS channel.
pub struct DemoChannels {
    /// The participants service.
    pub participants: Channel,
    /// The consent service.
    pub consent: Channel,
    /// The plans service.
    pub plans: Channel,
    /// The board service.
    pub board: Channel,
}

/// Who to be in the demo: the FACT team's board and the people with their token claims.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Roster {
    /// The FACT team whose board the demo fills.
    pub team_id: String,
    /// Staff and participants, staff first.
    pub people: Vec<DemoPerson>,
}

/// One person of the demo, with what a development token for them needs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct DemoPerson {
    /// Short handle for the command line ("anna", "lisa", "orjan"): ASCII, lowercase.
    pub key: String,
    /// Fictional display name with role.
    pub name: String,
    /// "staff" or "participant".
    pub kind: String,
    /// HSA-style staff id, or the participant's internal id.
    pub id: String,
    /// The organisation a member of staff acts for.
    pub organisation: Option<String>,
    /// The unit within it.
    pub unit: Option<String>,
    /// Roles, as the gateway's policies name them.
    pub roles: Vec<String>,
    /// FACT teams the member of staff works in.
    pub teams: Vec<String>,
}

/// The clients of the four services.
struct Clients {
    participants: ParticipantsServiceClient<Channel>,
    consent: ConsentServiceClient<Channel>,
    plans: PlansServiceClient<Channel>,
    board: BoardServiceClient<Channel>,
}

/// Seeds the demo programme straight into the services (not through the gateway: seeding is an operator's act) and returns the roster.
///
/// On services that already hold the demo it changes nothing and returns the same roster.
pub async fn seed(channels: &DemoChannels) -> anyhow::Result<Roster> {
    let started = Instant::now();
    let mut c = Clients {
        participants: ParticipantsServiceClient::new(channels.participants.clone()),
        consent: ConsentServiceClient::new(channels.consent.clone()),
        plans: PlansServiceClient::new(channels.plans.clone()),
        board: BoardServiceClient::new(channels.board.clone()),
    };
    let specs = specs();
    let already = !c
        .participants
        .list_participants(participants_pb::ListParticipantsRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .context("list participants")?
        .into_inner()
        .participants
        .is_empty();
    let team_id = create_team(&mut c).await?;
    let mut ids = Vec::with_capacity(specs.len());
    if already {
        // Replays of the first referrals give the ids back; nothing else is written.
        for (n, spec) in specs.iter().enumerate() {
            if spec.key.is_some() {
                let id = id_of(&refer(&mut c, n, spec).await?)?;
                let now = c
                    .participants
                    .get_participant(participants_pb::GetParticipantRequest {
                        participant_id: pid(&id),
                    })
                    .await
                    .context("read a demo participant")?
                    .into_inner();
                if now.status != participants_pb::ParticipantStatus::Enrolled as i32 {
                    bail!(
                        "the services hold other participants than the demo's: seed an empty data dir"
                    );
                }
                ids.push(id);
            } else {
                ids.push(String::new());
            }
        }
        tracing::info!("demo already seeded");
    } else {
        for (n, spec) in specs.iter().enumerate() {
            ids.push(seed_participant(&mut c, n, spec).await?);
        }
        for (n, spec) in specs.iter().enumerate() {
            if spec.plan {
                seed_plan(&mut c, n, spec, &ids[n], &team_id).await?;
            }
        }
        for (n, spec) in specs.iter().enumerate() {
            if let Some(b) = spec.board {
                seed_board_entry(&mut c, n, spec, &BOARD[b], &ids[n], &team_id).await?;
            }
        }
        tracing::info!(
            participants = specs.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "demo seeded"
        );
    }
    Ok(roster(&specs, &ids, &team_id))
}

/// The roster: staff first, then the participants the tour logs in as.
fn roster(specs: &[Spec], ids: &[String], team_id: &str) -> Roster {
    let mut people: Vec<DemoPerson> = STAFF
        .iter()
        .map(|s| DemoPerson {
            key: s.key.to_owned(),
            name: if s.organisation == REGION && s.in_team {
                format!("{} — {}, region FACT team", s.name, s.title)
            } else {
                format!("{} — {}", s.name, s.title)
            },
            kind: "staff".to_owned(),
            id: s.id.to_owned(),
            organisation: Some(s.organisation.to_owned()),
            unit: Some(s.unit.to_owned()),
            roles: s.roles.iter().map(|r| (*r).to_owned()).collect(),
            teams: if s.in_team {
                vec![team_id.to_owned()]
            } else {
                Vec::new()
            },
        })
        .collect();
    for (spec, id) in specs.iter().zip(ids) {
        if let Some(key) = spec.key {
            let what = match key {
                "orjan" => "participant, Helsingborg, on the board, shares it with Lisa",
                "gosta" => "participant, Helsingborg, on the board, shares nothing",
                _ => "participant, Höganäs, on the board, shares it with Omar",
            };
            people.push(DemoPerson {
                key: key.to_owned(),
                name: format!("{} — {what}", spec.name),
                kind: "participant".to_owned(),
                id: id.clone(),
                organisation: None,
                unit: None,
                roles: Vec::new(),
                teams: Vec::new(),
            });
        }
    }
    Roster {
        team_id: team_id.to_owned(),
        people,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use samsyn_kit::config::Limits;
    use samsyn_kit::serve::PartContext;
    use samsyn_kit::testing::{ServedPart, fresh_sqlite_url};

    use samsyn_proto::board::v1 as board_pb;
    use samsyn_proto::common::v1::DataCategory;
    use samsyn_proto::consent::v1 as consent_pb;

    use super::cast::{HELSINGBORG, staff};
    use super::seeding::{org, staff_ref};
    use super::*;

    #[tokio::test]
    async fn the_demo_seeds_a_board_that_lisa_sees_only_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let at = || PartContext {
            database_url: fresh_sqlite_url(dir.path()),
            data_dir: dir.path().to_path_buf(),
            limits: Limits::default(),
        };
        let consent = ServedPart::start(samsyn_consent::part(&at()).await.unwrap()).await;
        let participants = ServedPart::start(
            samsyn_participants::part(&at(), Some(consent.channel.clone()))
                .await
                .unwrap(),
        )
        .await;
        let plans = ServedPart::start(samsyn_plans::part(&at()).await.unwrap()).await;
        let board = ServedPart::start(samsyn_board::part(&at()).await.unwrap()).await;
        let channels = DemoChannels {
            participants: participants.channel.clone(),
            consent: consent.channel.clone(),
            plans: plans.channel.clone(),
            board: board.channel.clone(),
        };

        let started = Instant::now();
        let roster = seed(&channels).await.unwrap();
        println!("demo seeded in {:?}", started.elapsed());

        let keys: Vec<&str> = roster.people.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "anna",
            "lisa",
            "erik",
            "orjan",
            "auditor",
            "team-leader",
            "omar",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let person = |key: &str| roster.people.iter().find(|p| p.key == key).unwrap();
        assert_eq!(person("orjan").kind, "participant");
        assert!(person("orjan").name.starts_with("Örjan "));
        assert!(person("gosta").name.starts_with("Gösta "));
        assert!(person("asa").name.starts_with("Åsa "));
        for p in &roster.people {
            println!("{:12} {:10} {}", p.key, p.id, p.name);
        }
        assert_eq!(person("erik").roles, ["physician"]);
        assert_eq!(person("lisa").organisation.as_deref(), Some(HELSINGBORG));

        let entries = BoardServiceClient::new(channels.board.clone())
            .get_board(board_pb::GetBoardRequest {
                team_id: roster.team_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert_eq!(entries.len(), 8);

        // Of Lisa's participants on the board, the consent rule lets her see some, not all.
        let lisa = staff("lisa").unwrap();
        let mut people = ParticipantsServiceClient::new(channels.participants.clone());
        let mut consents = ConsentServiceClient::new(channels.consent.clone());
        let (mut seen, mut hidden) = (Vec::new(), Vec::new());
        for entry in &entries {
            let participant = entry.participant_id.clone().unwrap();
            let team = people
                .get_care_team(participants_pb::GetCareTeamRequest {
                    participant_id: Some(participant.clone()),
                    include_history: false,
                })
                .await
                .unwrap()
                .into_inner();
            if !team
                .assignments
                .iter()
                .any(|a| a.staff.as_ref().is_some_and(|s| s.staff_id == lisa.id))
            {
                continue;
            }
            let decision = consents
                .decide(consent_pb::DecideRequest {
                    participant_id: Some(participant.clone()),
                    reader: staff_ref(lisa),
                    owner_organisation_id: org(REGION),
                    category: DataCategory::Board as i32,
                    purpose: consent_pb::Purpose::Care as i32,
                    at: None,
                    emergency: false,
                })
                .await
                .unwrap()
                .into_inner();
            if decision.effect == consent_pb::Effect::Permit as i32 {
                seen.push(participant.value);
            } else {
                hidden.push((participant.value, decision.reason));
            }
        }
        // Anna's FACT team shows her the whole board; she is on only some of its care teams.
        let anna = staff("anna").unwrap();
        let mut hers = 0;
        for entry in &entries {
            let team = people
                .get_care_team(participants_pb::GetCareTeamRequest {
                    participant_id: entry.participant_id.clone(),
                    include_history: false,
                })
                .await
                .unwrap()
                .into_inner();
            if team
                .assignments
                .iter()
                .any(|a| a.staff.as_ref().is_some_and(|s| s.staff_id == anna.id))
            {
                hers += 1;
            }
        }
        assert!((2..entries.len()).contains(&hers), "{hers}");
        assert!(person("anna").teams.contains(&roster.team_id));
        println!("lisa sees {} board rows, not {hidden:?}", seen.len());
        assert!(seen.contains(&person("orjan").id), "{seen:?}");
        assert!(hidden.iter().any(|(id, _)| *id == person("gosta").id));
        assert_eq!((seen.len(), hidden.len()), (2, 4));

        // Seeding again changes nothing and gives the same roster.
        let again = seed(&channels).await.unwrap();
        assert_eq!(again.team_id, roster.team_id);
        assert_eq!(
            person("orjan").id,
            again.people.iter().find(|p| p.key == "orjan").unwrap().id
        );
    }
}
