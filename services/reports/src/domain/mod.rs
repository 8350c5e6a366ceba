//! The read model's facts, the caller's scope and the reports built from them. No tonic or
//! sea-orm here: the facts are plain values, the reports pure functions of them.

pub mod consultation;
pub mod facts;
pub mod reports;
pub mod repository;
pub mod research;
pub mod table;
pub mod update;

use serde::{Deserialize, Serialize};

pub use facts::{
    ConsentFact, EvaluationFact, ExitReason, Facts, InterventionFact, NeedFact, ParticipantEvent,
    ParticipantFact, ParticipantState, PlanFact, Principal, Stage, StayFact,
};
pub use table::{Cell, Table, Value};
pub use update::{Feed, Update};

/// The smallest count shown by default: smaller ones are suppressed.
pub const DEFAULT_SUPPRESSION_THRESHOLD: u32 = 5;

/// The `[reporting]` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportingConfig {
    /// Counts under this are suppressed (2 to 100; default 5).
    pub suppression_threshold: u32,
    /// Research studies the data may be exported for.
    pub studies: Vec<StudyConfig>,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        Self {
            suppression_threshold: DEFAULT_SUPPRESSION_THRESHOLD,
            studies: Vec::new(),
        }
    }
}

/// One `[[reporting.studies]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// The study's id, as research consents name it (1 to 64 letters, digits, '-', '.',
    /// '_' or ':').
    pub id: String,
    /// A file holding the study's pseudonymisation key (at least 32 bytes), kept by the
    /// data owner; the export never contains it.
    pub key_file: std::path::PathBuf,
    /// How precisely dates are exported (default month).
    #[serde(default)]
    pub date_precision: research::DatePrecision,
    /// The arms (default "fact" and "usual_care").
    #[serde(default = "default_arms")]
    pub arms: Vec<String>,
}

fn default_arms() -> Vec<String> {
    vec!["fact".to_owned(), "usual_care".to_owned()]
}

impl StudyConfig {
    /// Reads the study's key; refuses a short key, an empty id and fewer than two arms.
    pub fn load(&self) -> Result<research::Study, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
        if self.id.is_empty() || self.id.len() > 64 || !self.id.chars().all(allowed) {
            return Err(
                "reporting.studies.id must be 1 to 64 letters, digits, '-', '.', '_' or ':'"
                    .to_owned(),
            );
        }
        if self.arms.len() < 2 || self.arms.iter().any(String::is_empty) {
            return Err(format!(
                "reporting.studies {}: name at least two arms",
                self.id
            ));
        }
        let key = std::fs::read(&self.key_file).map_err(|e| {
            format!(
                "reporting.studies {}: cannot read key_file {}: {e}",
                self.id,
                self.key_file.display()
            )
        })?;
        if key.len() < 32 {
            return Err(format!(
                "reporting.studies {}: the key must be at least 32 bytes",
                self.id
            ));
        }
        Ok(research::Study {
            id: self.id.clone(),
            key,
            date_precision: self.date_precision,
            arms: self.arms.clone(),
        })
    }
}

/// How reports are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// The region's organisation id: its staff see the whole programme.
    pub region_organisation: String,
    /// The programme's municipalities (codes); each gets a row in the recruitment report.
    pub programme_municipalities: Vec<String>,
    /// New participants per municipality and year that the programme aims for.
    pub yearly_target: u32,
    /// Counts under this are suppressed (2 to 100).
    pub suppression_threshold: u32,
    /// Studies the data may be exported for, keys loaded.
    pub studies: Vec<research::Study>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            region_organisation: "SE2321000255".to_owned(),
            programme_municipalities: Vec::new(),
            yearly_target: 30,
            suppression_threshold: DEFAULT_SUPPRESSION_THRESHOLD,
            studies: Vec::new(),
        }
    }
}

/// Whose data a report covers: the region sees the programme, a municipality its residents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every participant.
    Programme,
    /// Participants whose home municipality is this one.
    Municipality(String),
}

impl Scope {
    /// The scope of a caller acting for `organisation`; `None` for an organisation that is
    /// neither the region nor a municipality of the programme.
    pub fn of(organisation: &str, settings: &ReportSettings) -> Option<Self> {
        if organisation == settings.region_organisation {
            Some(Self::Programme)
        } else if settings
            .programme_municipalities
            .iter()
            .any(|m| m == organisation)
        {
            Some(Self::Municipality(organisation.to_owned()))
        } else {
            None
        }
    }

    /// Whether a participant living in `municipality` is in scope.
    pub fn covers(&self, municipality: &str) -> bool {
        match self {
            Self::Programme => true,
            Self::Municipality(own) => own == municipality,
        }
    }

    /// How the report names its scope.
    pub fn label(&self) -> &str {
        match self {
            Self::Programme => "programme",
            Self::Municipality(code) => code,
        }
    }
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The recruitment funnel per municipality.
    Recruitment,
    /// Needs and interventions per life area.
    InterventionCoverage,
    /// Board stays per quarter.
    Board,
    /// FACT-fidelity indicators.
    Fidelity,
    /// The consultation group's cases and meetings per quarter.
    Consultation,
    /// SIP-kollen answers per municipality and question.
    SipKollen,
    /// Participants on the board per month by status level.
    BoardLevels,
}

/// A calendar year reports may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Year(i32);

impl Year {
    /// 2000 to 2100.
    pub fn parse(value: i32) -> Result<Self, &'static str> {
        if (2000..=2100).contains(&value) {
            Ok(Self(value))
        } else {
            Err("must be a year from 2000 to 2100")
        }
    }

    /// The year.
    pub fn get(self) -> i32 {
        self.0
    }
}
