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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use samsyn_kit::time::to_timestamp;
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{
    CalendarDate, DataCategory, OrganisationId, OrganisationKind, PageRequest, ParticipantId,
    Revision, StaffRef,
};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tonic::transport::Channel;

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

/// The region (the gateway's default region organisation).
const REGION: &str = "SE2321000255";
/// Helsingborg.
const HELSINGBORG: &str = "1283";
/// Höganäs.
const HOGANAS: &str = "1284";
/// Ängelholm.
const ANGELHOLM: &str = "1292";
/// Malmö: outside the programme area, so moving there ends participation.
const MALMO: &str = "1280";
/// The region's FACT team unit.
const FACT_UNIT: &str = "fact-nordvast";

/// A member of staff in the demo.
struct StaffDef {
    key: &'static str,
    name: &'static str,
    title: &'static str,
    id: &'static str,
    organisation: &'static str,
    unit: &'static str,
    roles: &'static [&'static str],
    /// Works in the FACT team (linked to its board).
    in_team: bool,
}

/// The FACT team (region) and the municipal coordinators around it.
const STAFF: &[StaffDef] = &[
    region(
        "anna",
        "Anna Lindqvist",
        "case manager",
        "SE2321000255-S0101",
        &["case_manager"],
    ),
    region(
        "jonas",
        "Jonas Åkerlund",
        "case manager",
        "SE2321000255-S0102",
        &["case_manager"],
    ),
    region(
        "sara",
        "Sara Öhman",
        "case manager",
        "SE2321000255-S0103",
        &["case_manager"],
    ),
    region(
        "mikael",
        "Mikael Strömgren",
        "case manager",
        "SE2321000255-S0104",
        &["case_manager"],
    ),
    region(
        "erik",
        "Erik Sandén",
        "psychiatrist",
        "SE2321000255-S0105",
        &["physician"],
    ),
    region(
        "maria",
        "Maria Håkansdotter",
        "nurse",
        "SE2321000255-S0106",
        &["nurse"],
    ),
    region(
        "johanna",
        "Johanna Bäckelin",
        "psychologist",
        "SE2321000255-S0107",
        &["psychologist"],
    ),
    region(
        "karin",
        "Karin Ekdahl",
        "social worker, housing support",
        "SE2321000255-S0108",
        &["social_worker"],
    ),
    region(
        "leila",
        "Leila Nordvik",
        "peer support specialist",
        "SE2321000255-S0109",
        &["peer_support_specialist"],
    ),
    region(
        "team-leader",
        "Birgitta Sjölander",
        "team leader",
        "SE2321000255-S0110",
        &["team_leader"],
    ),
    StaffDef {
        key: "auditor",
        name: "Gunnel Dahlgård",
        title: "auditor (log follow-up), region",
        id: "SE2321000255-S0190",
        organisation: REGION,
        unit: "region-logguppfoljning",
        roles: &["auditor"],
        in_team: false,
    },
    StaffDef {
        key: "security",
        name: "Sune Vaktmästare",
        title: "security auditor (sessions, unattributable calls), region",
        id: "SE2321000255-S0191",
        organisation: REGION,
        unit: "region-informationssakerhet",
        roles: &["security_auditor"],
        in_team: false,
    },
    StaffDef {
        key: "lisa",
        name: "Lisa Bergsjö",
        title: "coordinator, Helsingborg",
        id: "HBG-IFO-0101",
        organisation: HELSINGBORG,
        unit: "hbg-ifo",
        roles: &["coordinator"],
        in_team: true,
    },
    StaffDef {
        key: "nils",
        name: "Nils Åström",
        title: "needs assessor, Helsingborg",
        id: "HBG-IFO-0102",
        organisation: HELSINGBORG,
        unit: "hbg-ifo",
        roles: &["needs_assessor"],
        in_team: false,
    },
    StaffDef {
        key: "omar",
        name: "Omar Haddad",
        title: "coordinator, Höganäs",
        id: "HOG-SOC-0201",
        organisation: HOGANAS,
        unit: "hog-soc",
        roles: &["coordinator"],
        in_team: true,
    },
    StaffDef {
        key: "ingrid",
        name: "Ingrid Mårtensdal",
        title: "coordinator, Ängelholm",
        id: "ANG-SOC-0301",
        organisation: ANGELHOLM,
        unit: "ang-soc",
        roles: &["coordinator"],
        in_team: true,
    },
];

/// A member of the region's FACT team.
const fn region(
    key: &'static str,
    name: &'static str,
    title: &'static str,
    id: &'static str,
    roles: &'static [&'static str],
) -> StaffDef {
    StaffDef {
        key,
        name,
        title,
        id,
        organisation: REGION,
        unit: FACT_UNIT,
        roles,
        in_team: true,
    }
}

/// The member of staff with this key (the table above is fixed, so a miss is a bug here).
fn staff(key: &str) -> anyhow::Result<&'static StaffDef> {
    STAFF
        .iter()
        .find(|s| s.key == key)
        .with_context(|| format!("no demo staff member {key}"))
}

/// Where a participant stands at the end of seeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Referred; nobody has reviewed yet.
    Referred,
    /// Referred; the region has reviewed, the municipality (which decides) has not.
    UnderReview,
    /// Accepted by the joint review; no participation consent yet.
    Accepted,
    /// Declined by the municipality.
    Declined,
    /// Taking part.
    Enrolled,
    /// Discharged to ordinary care.
    Discharged,
    /// Moved out of the programme area.
    MovedAway,
}

/// What information-sharing consent the region has from the participant for the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// None.
    None,
    /// Active, covering the board and the plan.
    Active,
    /// Given, then revoked by the participant.
    Revoked,
    /// Given for a period that has ended.
    Expired,
    /// Active, but a restriction blocks the municipality from the board.
    Restricted,
}

/// One participant of the demo.
struct Spec {
    /// The roster key of the few the tour logs in as.
    key: Option<&'static str>,
    name: String,
    pin: String,
    municipality: &'static str,
    stage: Stage,
    /// The region case manager (staff key).
    case_manager: &'static str,
    /// Other region staff on the care team (staff keys).
    team: Vec<&'static str>,
    sharing: Sharing,
    /// Index into [`BOARD`] when on the board.
    board: Option<usize>,
    plan: bool,
    research: bool,
}

/// Clearly fictional first names (with å, ä and ö).
const FIRST: &[&str] = &[
    "Örjan",
    "Märta",
    "Gösta",
    "Sölve",
    "Ingegärd",
    "Björn",
    "Åsa",
    "Kjell-Åke",
    "Göran",
    "Ylva",
    "Måns",
    "Solvej",
    "Tövs",
    "Åke",
    "Linnéa",
    "Jöns",
    "Ragnhild",
    "Bengt-Göran",
    "Hjördis",
    "Östen",
    "Elvira",
    "Sigbritt",
    "Ture",
    "Ebba",
    "Assar",
    "Dagny",
    "Folke",
    "Gunvor",
    "Holger",
    "Irma",
    "Jörgen",
    "Kerstin",
];

/// Clearly fictional surnames (with å, ä and ö).
const LAST: &[&str] = &[
    "Blåbärsäng",
    "Lingonström",
    "Hjortronvik",
    "Mossbäck",
    "Tallrotsson",
    "Näckrosdal",
    "Kvarnlöv",
    "Ängsfjäder",
    "Fjällsippa",
    "Gråstensby",
    "Myrtuva",
    "Älvkvist",
    "Sjöglimt",
    "Rönnbärsholm",
    "Vitmossa",
    "Björkglans",
    "Åkervinda",
    "Stensöta",
    "Ljungbacka",
    "Hagtornsäng",
    "Granskär",
    "Vassbräken",
    "Källgröna",
];

/// A synthetic personal identity number (12 digits) with a valid check digit; see the
/// module comment.
fn synthetic_pin(n: usize) -> String {
    let year = 1960 + (n * 7) % 40;
    let month = 1 + (n * 5) % 12;
    let day = 1 + (n * 11) % 28;
    let serial = 200 + n;
    let nine = format!("{:02}{month:02}{day:02}{serial:03}", year % 100);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!(
        "{year}{month:02}{day:02}{serial:03}{}",
        check_digit(&digits)
    )
}

/// The municipal coordinator (staff key) of a programme municipality.
fn coordinator_of(municipality: &str) -> &'static str {
    match municipality {
        HELSINGBORG => "lisa",
        HOGANAS => "omar",
        _ => "ingrid",
    }
}

/// The sixty participants, in the order they are referred. The first eight are on the board.
fn specs() -> Vec<Spec> {
    const CASE_MANAGERS: [&str; 4] = ["anna", "jonas", "sara", "mikael"];
    const ROTATION: [&str; 3] = [HELSINGBORG, HOGANAS, ANGELHOLM];
    let mut specs = Vec::with_capacity(60);
    let mut push = |key: Option<&'static str>, municipality: &'static str, stage: Stage| {
        let n = specs.len();
        specs.push(Spec {
            key,
            name: format!("{} {}", FIRST[n % FIRST.len()], LAST[(n * 7) % LAST.len()]),
            pin: synthetic_pin(n),
            municipality,
            stage,
            case_manager: CASE_MANAGERS[n % CASE_MANAGERS.len()],
            team: Vec::new(),
            sharing: Sharing::None,
            board: None,
            plan: false,
            research: false,
        });
    };
    // On the board: six of Lisa's (Helsingborg), one of Omar's, one of Ingrid's.
    push(Some("orjan"), HELSINGBORG, Stage::Enrolled);
    push(None, HELSINGBORG, Stage::Enrolled);
    push(Some("gosta"), HELSINGBORG, Stage::Enrolled);
    push(None, HELSINGBORG, Stage::Enrolled);
    push(None, HELSINGBORG, Stage::Enrolled);
    push(None, HELSINGBORG, Stage::Enrolled);
    push(Some("asa"), HOGANAS, Stage::Enrolled);
    push(None, ANGELHOLM, Stage::Enrolled);
    // Lisa's, off the board: one with a consent, one without.
    push(None, HELSINGBORG, Stage::Enrolled);
    push(None, HELSINGBORG, Stage::Enrolled);
    // The other enrolled participants, 42 in all.
    for i in 0..32 {
        push(None, ROTATION[i % 3], Stage::Enrolled);
    }
    for i in 0..4 {
        push(None, ROTATION[i % 3], Stage::Discharged);
    }
    for municipality in ROTATION {
        push(None, municipality, Stage::MovedAway);
    }
    for i in 0..2 {
        push(None, ROTATION[i % 3], Stage::Accepted);
    }
    push(None, HOGANAS, Stage::Declined);
    for i in 0..4 {
        push(None, ROTATION[(i + 1) % 3], Stage::UnderReview);
    }
    for i in 0..4 {
        push(None, ROTATION[(i + 2) % 3], Stage::Referred);
    }

    for (n, spec) in specs.iter_mut().enumerate() {
        if n < BOARD.len() {
            spec.board = Some(n);
            spec.team = vec!["erik", "maria"];
        } else if n % 5 == 0 {
            spec.team = vec!["johanna"];
        } else if n % 5 == 2 {
            spec.team = vec!["karin", "leila"];
        }
    }
    // The board shows Anna every row through her FACT team; a plan or a consent only through
    // a care team, and the tour has her read Örjan's plan and record Gösta's consent.
    for key in ["orjan", "gosta"] {
        if let Some(spec) = specs.iter_mut().find(|s| s.key == Some(key)) {
            spec.case_manager = "anna";
        }
    }
    for (n, sharing) in [
        (0, Sharing::Active),
        (1, Sharing::Active),
        (3, Sharing::Revoked),
        (4, Sharing::Expired),
        (5, Sharing::Restricted),
        (6, Sharing::Active),
        (8, Sharing::Active),
        (12, Sharing::Active),
        (15, Sharing::Active),
    ] {
        specs[n].sharing = sharing;
    }
    for n in [0, 1, 2, 3, 6, 7, 8, 9, 12, 15] {
        specs[n].plan = true;
    }
    for n in [0, 9, 14, 21] {
        specs[n].research = true;
    }
    specs
}

/// One board entry of the demo: why, and how the status moved.
struct BoardDef {
    reason: &'static str,
    criteria: &'static [&'static str],
    /// The status when put on, then each later assessment: (level, trend, note).
    statuses: &'static [(u32, board_pb::Trend, &'static str)],
    /// The agreed action: what, whose (staff key), due in days from today (negative: overdue).
    action: (&'static str, &'static str, i64),
    /// The next review, in days from today.
    review_in_days: i64,
}

/// The eight entries of the board, for the first eight participants.
const BOARD: [BoardDef; 8] = {
    use board_pb::Trend::{Improving, Unchanged, Worsening};
    [
        BoardDef {
            reason: "Har slutat ta sin medicin, sover dåligt och riskerar att bli vräkt",
            criteria: &["crisis", "relapse_risk"],
            statuses: &[
                (1, Worsening, "Röd: dagliga hembesök"),
                (1, Unchanged, "Tar medicin igen under tillsyn"),
                (2, Improving, "Sover bättre, hyresvärden har gett anstånd"),
            ],
            action: ("Hembesök med läkemedelsgenomgång", "maria", 1),
            review_in_days: 0,
        },
        BoardDef {
            reason: "Utskriven från slutenvården i förrgår",
            criteria: &["inpatient_discharge"],
            statuses: &[
                (2, Unchanged, "Gul: kontakt varannan dag"),
                (2, Improving, "Har varit på dagverksamheten två gånger"),
            ],
            action: ("Följa upp SVPL med slutenvården", "anna", -1),
            review_in_days: 2,
        },
        BoardDef {
            reason: "Återfall i amfetamin, uteblir från besök",
            criteria: &["relapse_risk"],
            statuses: &[(1, Worsening, "Röd: söka upp i hemmet dagligen")],
            action: ("Söka upp tillsammans med kommunens fältteam", "anna", 0),
            review_in_days: 0,
        },
        BoardDef {
            reason: "Ny i teamet, behöver täta kontakter de första veckorna",
            criteria: &["new_to_team"],
            statuses: &[(2, Unchanged, "Gul: lära känna, bygga relation")],
            action: ("Första samtal med brukarspecialisten", "leila", 3),
            review_in_days: 7,
        },
        BoardDef {
            reason: "Konflikt med hyresvärden efter klagomål från grannar",
            criteria: &["crisis"],
            statuses: &[
                (3, Unchanged, "Grön: lugnt"),
                (2, Worsening, "Gul: nytt klagomål, risk för uppsägning"),
            ],
            action: ("Gemensamt möte med hyresvärden", "karin", -2),
            review_in_days: 1,
        },
        BoardDef {
            reason: "Inlagd på psykiatrisk avdelning efter suicidtankar",
            criteria: &["inpatient_admission"],
            statuses: &[(
                1,
                Unchanged,
                "Röd: besök på avdelningen, planera utskrivning",
            )],
            action: ("Samordnad vårdplanering inför utskrivning", "erik", 2),
            review_in_days: 1,
        },
        BoardDef {
            reason: "Ökad ångest efter ett dödsfall i familjen",
            criteria: &["crisis"],
            statuses: &[
                (2, Worsening, "Gul: samtal två gånger i veckan"),
                (1, Worsening, "Röd: sover inte, dagliga kontakter"),
            ],
            action: ("Läkarbesök för översyn av medicineringen", "erik", 1),
            review_in_days: 0,
        },
        BoardDef {
            reason: "Har missat depåinjektionen två gånger",
            criteria: &["relapse_risk"],
            statuses: &[
                (2, Unchanged, "Gul: påminnelser"),
                (3, Improving, "Grön: fick injektionen i går"),
            ],
            action: ("Boka nästa injektion och skicka påminnelse", "maria", 5),
            review_in_days: 3,
        },
    ]
};

/// Today's date in UTC, moved by `days`.
fn day(days: i64) -> CalendarDate {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    civil_from_days(now.div_euclid(86_400) + days)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> CalendarDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    CalendarDate {
        year: i32::try_from(year).unwrap_or(1970),
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

/// Now, moved by `days` (either way).
fn days_from_now(days: i64) -> SystemTime {
    let shift = Duration::from_secs(days.unsigned_abs() * 86_400);
    let now = SystemTime::now();
    if days < 0 { now - shift } else { now + shift }
}

fn pid(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: id.to_owned(),
    })
}

fn org(id: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: id.to_owned(),
    })
}

fn staff_ref(who: &StaffDef) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: who.id.to_owned(),
        organisation_id: org(who.organisation),
        unit_id: who.unit.to_owned(),
    })
}

fn revision(value: u64) -> Option<Revision> {
    Some(Revision { value })
}

fn actor(who: &StaffDef) -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Staff as i32,
        staff: staff_ref(who),
    })
}

fn the_participant() -> Option<consent_pb::Actor> {
    Some(consent_pb::Actor {
        kind: consent_pb::ActorKind::Participant as i32,
        staff: None,
    })
}

/// A deterministic UUID for plan item `item` of participant `n` (needs and interventions).
fn item_id(n: usize, item: u32) -> String {
    format!("5a3d5e11-0000-4000-8000-{n:06x}{item:06x}")
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

fn id_of(p: &participants_pb::Participant) -> anyhow::Result<String> {
    p.participant_id
        .as_ref()
        .map(|id| id.value.clone())
        .context("participant without id")
}

fn rev(r: Option<&Revision>) -> u64 {
    r.map_or(0, |r| r.value)
}

/// The FACT team (idempotent by request id); returns its id.
async fn create_team(c: &mut Clients) -> anyhow::Result<String> {
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
async fn refer(
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
async fn seed_participant(c: &mut Clients, n: usize, spec: &Spec) -> anyhow::Result<String> {
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
fn care_role(who: &StaffDef) -> participants_pb::CareRole {
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
/// The study the demo's research consents are for.
pub const DEMO_STUDY: &str = "fact-rct";

async fn record_consent(
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
async fn seed_sharing(
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
async fn seed_plan(
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

/// The participant's own goals, in their own words.
const GOALS: &[&str] = &[
    "Att få bo kvar i min lägenhet och träffa min dotter varje vecka",
    "Att börja jobba några timmar i veckan på second hand-butiken",
    "Att orka gå ut med hunden varje dag",
    "Att få ordning på mina räkningar",
    "Att hitta tillbaka till fotbollslaget",
];

/// The participant's strengths and resources.
const STRENGTHS: &[&str] = &[
    "Envis, tycker om att laga mat, har en god vän i Höganäs",
    "Bra på att reparera cyklar, har kontakt med sin bror",
    "Humoristisk, tycker om att måla, trivs i naturen",
];

/// Puts participant `n` on the board, then records the later status assessments.
async fn seed_board_entry(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use samsyn_kit::config::Limits;
    use samsyn_kit::serve::PartContext;
    use samsyn_kit::testing::{ServedPart, fresh_sqlite_url};

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
