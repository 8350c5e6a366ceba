//! Who is in the demo: the staff, the participants and their stories, the board.

use anyhow::Context;
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::board::v1 as board_pb;

/// The study the demo's research consents are for.
pub(super) const DEMO_STUDY: &str = "fact-rct";

/// The region (the gateway's default region organisation).
pub(super) const REGION: &str = "SE2321000255";
/// Helsingborg.
pub(super) const HELSINGBORG: &str = "1283";
/// Höganäs.
pub(super) const HOGANAS: &str = "1284";
/// Ängelholm.
pub(super) const ANGELHOLM: &str = "1292";
/// Malmö: outside the programme area, so moving there ends participation.
pub(super) const MALMO: &str = "1280";
/// The region's FACT team unit.
pub(super) const FACT_UNIT: &str = "fact-nordvast";

/// A member of staff in the demo.
pub(super) struct StaffDef {
    pub(super) key: &'static str,
    pub(super) name: &'static str,
    pub(super) title: &'static str,
    pub(super) id: &'static str,
    pub(super) organisation: &'static str,
    pub(super) unit: &'static str,
    pub(super) roles: &'static [&'static str],
    /// Works in the FACT team (linked to its board).
    pub(super) in_team: bool,
}

/// The FACT team (region) and the municipal coordinators around it.
pub(super) const STAFF: &[StaffDef] = &[
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
pub(super) const fn region(
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
pub(super) fn staff(key: &str) -> anyhow::Result<&'static StaffDef> {
    STAFF
        .iter()
        .find(|s| s.key == key)
        .with_context(|| format!("no demo staff member {key}"))
}

/// Where a participant stands at the end of seeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
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
pub(super) enum Sharing {
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
pub(super) struct Spec {
    /// The roster key of the few the tour logs in as.
    pub(super) key: Option<&'static str>,
    pub(super) name: String,
    pub(super) pin: String,
    pub(super) municipality: &'static str,
    pub(super) stage: Stage,
    /// The region case manager (staff key).
    pub(super) case_manager: &'static str,
    /// Other region staff on the care team (staff keys).
    pub(super) team: Vec<&'static str>,
    pub(super) sharing: Sharing,
    /// Index into [`BOARD`] when on the board.
    pub(super) board: Option<usize>,
    pub(super) plan: bool,
    pub(super) research: bool,
}

/// Clearly fictional first names (with å, ä and ö).
pub(super) const FIRST: &[&str] = &[
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
pub(super) const LAST: &[&str] = &[
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
pub(super) fn synthetic_pin(n: usize) -> String {
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
pub(super) fn coordinator_of(municipality: &str) -> &'static str {
    match municipality {
        HELSINGBORG => "lisa",
        HOGANAS => "omar",
        _ => "ingrid",
    }
}

/// The sixty participants, in the order they are referred. The first eight are on the board.
pub(super) fn specs() -> Vec<Spec> {
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
pub(super) struct BoardDef {
    pub(super) reason: &'static str,
    pub(super) criteria: &'static [&'static str],
    /// The status when put on, then each later assessment: (level, trend, note).
    pub(super) statuses: &'static [(u32, board_pb::Trend, &'static str)],
    /// The agreed action: what, whose (staff key), due in days from today (negative: overdue).
    pub(super) action: (&'static str, &'static str, i64),
    /// The next review, in days from today.
    pub(super) review_in_days: i64,
}

/// The eight entries of the board, for the first eight participants.
pub(super) const BOARD: [BoardDef; 8] = {
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

/// The participant's own goals, in their own words.
pub(super) const GOALS: &[&str] = &[
    "Att få bo kvar i min lägenhet och träffa min dotter varje vecka",
    "Att börja jobba några timmar i veckan på second hand-butiken",
    "Att orka gå ut med hunden varje dag",
    "Att få ordning på mina räkningar",
    "Att hitta tillbaka till fotbollslaget",
];

/// The participant's strengths and resources.
pub(super) const STRENGTHS: &[&str] = &[
    "Envis, tycker om att laga mat, har en god vän i Höganäs",
    "Bra på att reparera cyklar, har kontakt med sin bror",
    "Humoristisk, tycker om att måla, trivs i naturen",
];
