//! The board's rules: teams and their board configuration, entries, status, actions, the
//! agenda. No tonic or sea-orm here.

pub mod agenda;
pub mod notice;
pub mod repository;
pub mod values;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use repository::{BoardRepository, ENTRY_KIND, Outcome};
pub use values::*;

/// The most criteria, status levels or coordinators a team may configure.
pub const MAX_CONFIG_ITEMS: usize = 20;
/// The fewest and most status levels a scale may have.
pub const STATUS_LEVELS: std::ops::RangeInclusive<usize> = 2..=7;
/// The most actions, criteria or decisions one request may carry.
pub const MAX_LIST_ITEMS: usize = 20;
/// The most open actions one entry may hold (keeps a board row small).
pub const MAX_OPEN_ACTIONS: usize = 50;
/// The most attendees a meeting may list.
pub const MAX_ATTENDEES: usize = 40;

/// A failure of a board operation.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// A field was wrong in a way only the stored state could tell (a level outside the
    /// team's scale, a criterion not in its list).
    #[error("invalid {field}")]
    Invalid {
        /// Dotted field path.
        field: String,
        /// Why.
        reason: String,
    },
    /// No such team.
    #[error("team not found")]
    TeamNotFound,
    /// No such entry (for this participant).
    #[error("board entry not found")]
    EntryNotFound,
    /// No such action on the entry.
    #[error("action not found")]
    ActionNotFound,
    /// No such meeting.
    #[error("meeting not found")]
    MeetingNotFound,
    /// The participant is on this team's board already.
    #[error("participant already on the board")]
    AlreadyOnBoard,
    /// The entry was taken off the board; it can no longer change.
    #[error("the participant is not on the board")]
    NotOnBoard,
    /// The caller sent this idempotency key before with another request.
    #[error("idempotency key already used for a different request")]
    KeyReused,
    /// An open-action or similar limit was reached.
    #[error("{0}")]
    LimitReached(&'static str),
    /// The named revision is not the current one.
    #[error("stale revision")]
    Stale {
        /// The current revision.
        current: u64,
    },
    /// The database is unreachable.
    #[error("storage unavailable")]
    Unavailable,
    /// Anything else in storage.
    #[error("storage failure")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BoardError {
    /// An invalid field that only the stored state could reveal.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A criterion a team lets entries cite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    /// Stable code.
    pub code: CriterionCode,
    /// What staff read.
    pub label: CriterionLabel,
}

/// One step of a status scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLevel {
    /// 1 = most acute.
    pub level: u32,
    /// Screen colour.
    pub colour: Colour,
    /// What it means for the team's work.
    pub meaning: LevelMeaning,
}

/// A team's board configuration: the criteria list and the status scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardConfig {
    criteria: Vec<Criterion>,
    levels: Vec<StatusLevel>,
}

/// Which list of a configuration was wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigInvalid {
    /// `criteria`: duplicates or too many.
    Criteria(String),
    /// `status_levels`: not 1..n, too few or too many.
    Levels(String),
}

impl BoardConfig {
    /// Checks a criteria list and a status scale; empty lists take the defaults.
    pub fn new(criteria: Vec<Criterion>, levels: Vec<StatusLevel>) -> Result<Self, ConfigInvalid> {
        let defaults = Self::default();
        let criteria = if criteria.is_empty() {
            defaults.criteria
        } else {
            criteria
        };
        let mut levels = if levels.is_empty() {
            defaults.levels
        } else {
            levels
        };
        if criteria.len() > MAX_CONFIG_ITEMS {
            return Err(ConfigInvalid::Criteria(format!(
                "at most {MAX_CONFIG_ITEMS} criteria"
            )));
        }
        let mut codes: Vec<&CriterionCode> = criteria.iter().map(|c| &c.code).collect();
        codes.sort();
        if codes.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigInvalid::Criteria("codes must be unique".into()));
        }
        if !STATUS_LEVELS.contains(&levels.len()) {
            return Err(ConfigInvalid::Levels(format!(
                "{} to {} levels",
                STATUS_LEVELS.start(),
                STATUS_LEVELS.end()
            )));
        }
        levels.sort_by_key(|l| l.level);
        if levels
            .iter()
            .enumerate()
            .any(|(i, l)| usize::try_from(l.level).ok() != Some(i + 1))
        {
            return Err(ConfigInvalid::Levels(
                "levels must be numbered 1..n without gaps".into(),
            ));
        }
        Ok(Self { criteria, levels })
    }

    /// The criteria, in the configured order.
    pub fn criteria(&self) -> &[Criterion] {
        &self.criteria
    }

    /// The scale, most acute first.
    pub fn levels(&self) -> &[StatusLevel] {
        &self.levels
    }

    /// Checks a status level against the scale; `field` names it in the error.
    pub fn check_level(&self, field: &str, level: u32) -> Result<(), BoardError> {
        let top = self.levels.len();
        if level == 0 || usize::try_from(level).map_or(true, |l| l > top) {
            return Err(BoardError::invalid(
                field,
                format!("must be a level of the team's scale, 1 to {top}"),
            ));
        }
        Ok(())
    }

    /// Checks criteria codes against the list: at least one, each configured, no duplicates.
    pub fn check_criteria(&self, field: &str, codes: &[CriterionCode]) -> Result<(), BoardError> {
        if codes.is_empty() {
            return Err(BoardError::invalid(field, "at least one criterion"));
        }
        for (i, code) in codes.iter().enumerate() {
            if !self.criteria.iter().any(|c| &c.code == code) {
                return Err(BoardError::invalid(
                    format!("{field}[{i}]"),
                    "not one of the team's criteria",
                ));
            }
            if codes[..i].contains(code) {
                return Err(BoardError::invalid(format!("{field}[{i}]"), "listed twice"));
            }
        }
        Ok(())
    }
}

/// A change to a team's configuration; `None` keeps the current list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigChange {
    /// New criteria.
    pub criteria: Option<Vec<Criterion>>,
    /// New status scale.
    pub levels: Option<Vec<StatusLevel>>,
}

impl BoardConfig {
    /// The configuration after `change`, checked as a whole.
    pub fn changed(&self, change: ConfigChange) -> Result<Self, BoardError> {
        let criteria = change.criteria.unwrap_or_else(|| self.criteria.clone());
        let levels = change.levels.unwrap_or_else(|| self.levels.clone());
        Self::new(criteria, levels).map_err(|invalid| match invalid {
            ConfigInvalid::Criteria(reason) => BoardError::invalid("criteria", reason),
            ConfigInvalid::Levels(reason) => BoardError::invalid("status_levels", reason),
        })
    }

    /// Refuses a new configuration that would strand entries on the board: each entry's
    /// level must stay on the scale and each criterion it cites must stay listed.
    pub fn check_covers(&self, entries: &[Entry]) -> Result<(), BoardError> {
        for entry in entries {
            if self
                .check_level("status_levels", entry.status.level)
                .is_err()
            {
                return Err(BoardError::invalid(
                    "status_levels",
                    format!("an entry on the board has level {}", entry.status.level),
                ));
            }
            if entry
                .criteria
                .iter()
                .any(|code| !self.criteria.iter().any(|c| &c.code == code))
            {
                return Err(BoardError::invalid(
                    "criteria",
                    "an entry on the board cites a criterion this list drops",
                ));
            }
        }
        Ok(())
    }
}

impl Default for BoardConfig {
    /// The criteria and the three-colour scale of the seed-004 model.
    fn default() -> Self {
        let criterion = |code: &str, label: &str| Criterion {
            code: CriterionCode::trusted(code),
            label: CriterionLabel::from_stored(label.to_owned()),
        };
        let level = |level: u32, colour: &str, meaning: &str| StatusLevel {
            level,
            colour: Colour::trusted(colour),
            meaning: LevelMeaning::from_stored(meaning.to_owned()),
        };
        Self {
            criteria: vec![
                criterion("relapse_risk", "Risk för återfall"),
                criterion("crisis", "Kris"),
                criterion("inpatient_admission", "Inskrivning i slutenvård"),
                criterion("inpatient_discharge", "Utskrivning från slutenvård"),
                criterion("new_to_team", "Ny i teamet"),
                criterion("other", "Annat"),
            ],
            levels: vec![
                level(1, "red", "Akut – dagliga kontakter"),
                level(2, "yellow", "Oro – täta kontakter"),
                level(3, "green", "Stabil – på väg av tavlan"),
            ],
        }
    }
}

/// Main or deputy coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordinatorRole {
    /// The main coordinator.
    Main,
    /// The deputy.
    Deputy,
}

/// A municipal coordinator linked to a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinator {
    /// The staff member; their organisation is a municipality.
    pub staff: Staff,
    /// Main or deputy.
    pub role: CoordinatorRole,
}

impl Coordinator {
    /// A coordinator, who must act for a municipality.
    pub fn new(staff: Staff, role: CoordinatorRole) -> Result<Self, Invalid> {
        if !staff.organisation_id.is_municipality() {
            return Err(Invalid(
                "a municipal coordinator's organisation is a four-digit municipality code".into(),
            ));
        }
        Ok(Self { staff, role })
    }
}

/// What a team is made of, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSpec {
    /// Name.
    pub name: TeamName,
    /// The region organisation that owns the board.
    pub owner: OrganisationId,
    /// Municipal coordinators.
    pub coordinators: Vec<Coordinator>,
    /// Criteria and status scale.
    pub config: BoardConfig,
}

/// Checks that a team's owner is a region organisation (not a municipality code).
pub fn check_owner(owner: &OrganisationId) -> Result<(), Invalid> {
    if owner.is_municipality() {
        Err(Invalid(
            "the board's owner is a region organisation, not a municipality".into(),
        ))
    } else {
        Ok(())
    }
}

/// A FACT team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Id.
    pub id: TeamId,
    /// Everything else.
    pub spec: TeamSpec,
    /// Revision for optimistic concurrency.
    pub revision: u64,
}

/// An action to agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// What.
    pub description: ActionDescription,
    /// Who.
    pub owner: Staff,
    /// By when.
    pub due_on: NaiveDate,
}

/// An agreed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Id.
    pub id: ActionId,
    /// What.
    pub description: ActionDescription,
    /// Who.
    pub owner: Staff,
    /// By when.
    pub due_on: NaiveDate,
    /// When done, and by whom.
    pub done: Option<(DateTime<Utc>, Staff)>,
    /// When agreed.
    pub created_at: DateTime<Utc>,
    /// Who recorded it.
    pub created_by: Staff,
    /// The meeting that agreed it.
    pub meeting_id: Option<MeetingId>,
}

impl Action {
    /// Open and due before `on`.
    pub fn is_overdue(&self, on: NaiveDate) -> bool {
        self.done.is_none() && self.due_on < on
    }
}

/// A participant being put on a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The team.
    pub team_id: TeamId,
    /// The participant.
    pub participant_id: ParticipantId,
    /// Why.
    pub reason: Reason,
    /// Criteria met (checked against the team's list in the transaction).
    pub criteria: Vec<CriterionCode>,
    /// First status.
    pub status: Status,
    /// Next review.
    pub next_review_on: Option<NaiveDate>,
    /// Actions agreed from the start.
    pub actions: Vec<NewAction>,
    /// Who recorded it.
    pub recorded_by: Staff,
}

/// A change to an entry; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryUpdate {
    /// The revision the caller read.
    pub expected_revision: u64,
    /// Who records the change.
    pub recorded_by: Staff,
    /// New reason.
    pub reason: Option<Reason>,
    /// New criteria.
    pub criteria: Option<Vec<CriterionCode>>,
    /// New status: a point in the status history.
    pub status: Option<Status>,
    /// New next review date.
    pub next_review_on: Option<NaiveDate>,
}

impl EntryUpdate {
    /// Whether the update changes anything at all.
    pub fn is_empty(&self) -> bool {
        self.reason.is_none()
            && self.criteria.is_none()
            && self.status.is_none()
            && self.next_review_on.is_none()
    }
}

/// When and why an entry came off the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOff {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Staff,
    /// Why.
    pub reason: Reason,
}

/// One participant's stay on one team's board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Id.
    pub id: EntryId,
    /// Team.
    pub team_id: TeamId,
    /// Participant.
    pub participant_id: ParticipantId,
    /// Why on the board.
    pub reason: Reason,
    /// Criteria met.
    pub criteria: Vec<CriterionCode>,
    /// Latest status.
    pub status: Status,
    /// Next review.
    pub next_review_on: Option<NaiveDate>,
    /// Agreed actions, oldest first.
    pub actions: Vec<Action>,
    /// When put on.
    pub put_on_at: DateTime<Utc>,
    /// By whom.
    pub put_on_by: Staff,
    /// Set once taken off.
    pub taken_off: Option<TakenOff>,
    /// Revision.
    pub revision: u64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// What the board learned from the feeds about the participant.
    pub facts: ParticipantFacts,
}

/// What the board learned from other services' feeds about a participant on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantFacts {
    /// When the participation consent was revoked while they took part (follow up).
    pub participation_consent_revoked_at: Option<DateTime<Utc>>,
    /// When a municipal decision about them was last recorded, changed or parked.
    pub latest_decision_at: Option<DateTime<Utc>>,
}

impl Entry {
    /// Calendar days on the board up to `today` (or to the day it was taken off).
    pub fn days_on_board(&self, today: NaiveDate) -> u32 {
        let end = self
            .taken_off
            .as_ref()
            .map_or(today, |t| t.at.date_naive().min(today));
        let days = (end - self.put_on_at.date_naive()).num_days();
        u32::try_from(days.max(0)).unwrap_or(u32::MAX)
    }

    /// Whether the entry is still on the board.
    pub fn is_on_board(&self) -> bool {
        self.taken_off.is_none()
    }

    /// Refuses a change to a taken-off entry or with a stale revision.
    pub fn check_writable(&self, expected_revision: Option<u64>) -> Result<(), BoardError> {
        if !self.is_on_board() {
            return Err(BoardError::NotOnBoard);
        }
        match expected_revision {
            Some(expected) if expected != self.revision => Err(BoardError::Stale {
                current: self.revision,
            }),
            _ => Ok(()),
        }
    }

    /// Open actions.
    pub fn open_actions(&self) -> usize {
        self.actions.iter().filter(|a| a.done.is_none()).count()
    }
}

/// What kind of thing happened on the board (for the timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Put on.
    PutOn,
    /// Reason, criteria, status or review date changed.
    Updated,
    /// An action was agreed.
    ActionAdded,
    /// An action was done.
    ActionCompleted,
    /// Discussed at a meeting.
    Discussed,
    /// Taken off.
    TakenOff,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PutOn => "put_on",
            Self::Updated => "updated",
            Self::ActionAdded => "action_added",
            Self::ActionCompleted => "action_completed",
            Self::Discussed => "discussed",
            Self::TakenOff => "taken_off",
        }
    }

    /// The kind of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        Some(match value {
            "put_on" => Self::PutOn,
            "updated" => Self::Updated,
            "action_added" => Self::ActionAdded,
            "action_completed" => Self::ActionCompleted,
            "discussed" => Self::Discussed,
            "taken_off" => Self::TakenOff,
            _ => return None,
        })
    }
}

/// One board event about a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEvent {
    /// The entry (none for a discussion of someone not on the board).
    pub entry_id: Option<EntryId>,
    /// The team.
    pub team_id: TeamId,
    /// What.
    pub kind: EventKind,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who recorded it.
    pub recorded_by: Staff,
    /// Reason, description or decision as recorded.
    pub detail: String,
    /// The action concerned.
    pub action_id: Option<ActionId>,
    /// The meeting concerned.
    pub meeting_id: Option<MeetingId>,
}

/// One recorded status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPoint {
    /// The entry.
    pub entry_id: EntryId,
    /// The team.
    pub team_id: TeamId,
    /// The status.
    pub status: Status,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Who.
    pub recorded_by: Staff,
}

/// A participant's timeline: status points and events, each oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    /// Status points.
    pub points: Vec<StatusPoint>,
    /// Events.
    pub events: Vec<BoardEvent>,
    /// The last status recorded before the window.
    pub before: Option<StatusPoint>,
}

/// A time window; `end` none means up to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: Option<DateTime<Utc>>,
}

impl Window {
    /// A window; the end must not be before the start.
    pub fn new(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Result<Self, Invalid> {
        if end.is_some_and(|end| end < start) {
            return Err(Invalid("the end is before the start".into()));
        }
        Ok(Self { start, end })
    }
}

/// A meeting being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    /// The team.
    pub team_id: TeamId,
    /// The day.
    pub held_on: NaiveDate,
    /// Who chairs.
    pub chair: Staff,
    /// Who attends.
    pub attendees: Vec<Staff>,
}

/// A meeting without its minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// Id.
    pub id: MeetingId,
    /// Everything given when it was opened.
    pub spec: NewMeeting,
    /// When it was opened.
    pub started_at: DateTime<Utc>,
}

/// One participant's discussion to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDiscussion {
    /// The meeting.
    pub meeting_id: MeetingId,
    /// The participant.
    pub participant_id: ParticipantId,
    /// Notes.
    pub notes: MinutesNotes,
    /// Decisions.
    pub decisions: Vec<Decision>,
    /// New actions (the participant must be on the board).
    pub actions: Vec<NewAction>,
    /// Who records.
    pub recorded_by: Staff,
}

/// One participant's part of a meeting's minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discussion {
    /// Id.
    pub id: DiscussionId,
    /// The meeting.
    pub meeting_id: MeetingId,
    /// The participant.
    pub participant_id: ParticipantId,
    /// The entry on the board at the time.
    pub entry_id: Option<EntryId>,
    /// Notes.
    pub notes: MinutesNotes,
    /// Decisions.
    pub decisions: Vec<Decision>,
    /// Actions agreed.
    pub actions: Vec<Action>,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Who.
    pub recorded_by: Staff,
}

/// The board ordered for the screen: most acute first, then the longest on the board.
pub fn sort_board(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        a.status
            .level
            .cmp(&b.status.level)
            .then(a.put_on_at.cmp(&b.put_on_at))
            .then(a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> CriterionCode {
        CriterionCode::parse(c).unwrap()
    }

    #[test]
    fn status_levels_must_be_on_the_scale() {
        let config = BoardConfig::default();
        for (level, ok) in [
            (0, false),
            (1, true),
            (3, true),
            (4, false),
            (u32::MAX, false),
        ] {
            assert_eq!(
                config.check_level("status.level", level).is_ok(),
                ok,
                "{level}"
            );
        }
    }

    #[test]
    fn criteria_must_be_configured_and_distinct() {
        let config = BoardConfig::default();
        let field = |r: Result<(), BoardError>| match r {
            Err(BoardError::Invalid { field, .. }) => Some(field),
            _ => None,
        };
        assert_eq!(
            field(config.check_criteria("criteria", &[])),
            Some("criteria".into())
        );
        assert_eq!(
            field(config.check_criteria("criteria", &[code("crisis")])),
            None
        );
        assert_eq!(
            field(config.check_criteria("criteria", &[code("crisis"), code("unknown")])),
            Some("criteria[1]".into())
        );
        assert_eq!(
            field(config.check_criteria("criteria", &[code("crisis"), code("crisis")])),
            Some("criteria[1]".into())
        );
    }

    #[test]
    fn scales_are_numbered_without_gaps() {
        let level = |n: u32| StatusLevel {
            level: n,
            colour: Colour::parse("red").unwrap(),
            meaning: LevelMeaning::parse("x").unwrap(),
        };
        assert!(BoardConfig::new(vec![], vec![level(2), level(1)]).is_ok());
        assert!(matches!(
            BoardConfig::new(vec![], vec![level(1), level(3)]),
            Err(ConfigInvalid::Levels(_))
        ));
        assert!(matches!(
            BoardConfig::new(vec![], vec![level(1)]),
            Err(ConfigInvalid::Levels(_))
        ));
        let dup = Criterion {
            code: code("crisis"),
            label: CriterionLabel::parse("Kris").unwrap(),
        };
        assert!(matches!(
            BoardConfig::new(vec![dup.clone(), dup], vec![]),
            Err(ConfigInvalid::Criteria(_))
        ));
        assert_eq!(BoardConfig::new(vec![], vec![]), Ok(BoardConfig::default()));
        // The defaults pass the same checks as a configuration sent by a caller.
        let defaults = BoardConfig::default();
        for c in defaults.criteria() {
            assert_eq!(CriterionCode::parse(c.code.as_str()).as_ref(), Ok(&c.code));
            assert!(CriterionLabel::parse(c.label.as_str()).is_ok());
        }
        for l in defaults.levels() {
            assert_eq!(Colour::parse(l.colour.as_str()).as_ref(), Ok(&l.colour));
            assert!(LevelMeaning::parse(l.meaning.as_str()).is_ok());
        }
        assert_eq!(
            BoardConfig::new(defaults.criteria().to_vec(), defaults.levels().to_vec()),
            Ok(defaults.clone())
        );
    }

    #[test]
    fn a_new_configuration_may_not_strand_entries() {
        let level = |n: u32| StatusLevel {
            level: n,
            colour: Colour::parse("red").unwrap(),
            meaning: LevelMeaning::parse("x").unwrap(),
        };
        let two_levels = BoardConfig::new(vec![], vec![level(1), level(2)]).unwrap();
        let only_relapse = BoardConfig::new(
            vec![Criterion {
                code: code("relapse_risk"),
                label: CriterionLabel::parse("Risk för återfall").unwrap(),
            }],
            vec![],
        )
        .unwrap();
        let cases = [
            (&two_levels, entry("2026-11-01T08:00:00Z", 2), None),
            (
                &two_levels,
                entry("2026-11-01T08:00:00Z", 3),
                Some("status_levels"),
            ),
            (
                &only_relapse,
                entry("2026-11-01T08:00:00Z", 1),
                Some("criteria"),
            ),
        ];
        for (config, e, expected) in cases {
            let field = match config.check_covers(&[e]) {
                Err(BoardError::Invalid { field, .. }) => Some(field),
                _ => None,
            };
            assert_eq!(field.as_deref(), expected);
        }
    }

    #[test]
    fn coordinators_act_for_a_municipality_and_owners_are_regions() {
        let staff = |org: &str| Staff::parse("s1", org, "").unwrap();
        assert!(Coordinator::new(staff("1280"), CoordinatorRole::Main).is_ok());
        assert!(Coordinator::new(staff("SE2321000081-1"), CoordinatorRole::Main).is_err());
        assert!(check_owner(&OrganisationId::parse("1280").unwrap()).is_err());
        assert!(check_owner(&OrganisationId::parse("SE2321000081-1").unwrap()).is_ok());
    }

    pub(crate) fn entry(put_on: &str, level: u32) -> Entry {
        let at = DateTime::parse_from_rfc3339(put_on).unwrap().to_utc();
        let staff = Staff::parse("s1", "SE1", "").unwrap();
        Entry {
            id: EntryId::generate(),
            team_id: TeamId::generate(),
            participant_id: ParticipantId::generate(),
            reason: Reason::parse("Kris").unwrap(),
            criteria: vec![code("crisis")],
            status: Status {
                level,
                trend: Trend::Unchanged,
                note: StatusNote::parse("").unwrap(),
            },
            next_review_on: None,
            actions: vec![],
            put_on_at: at,
            put_on_by: staff,
            taken_off: None,
            revision: 1,
            updated_at: at,
            facts: ParticipantFacts::default(),
        }
    }

    #[test]
    fn days_on_board_count_calendar_days_until_taken_off() {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut e = entry("2026-11-01T23:30:00Z", 1);
        assert_eq!(e.days_on_board(date("2026-11-01")), 0);
        assert_eq!(e.days_on_board(date("2026-11-02")), 1);
        assert_eq!(e.days_on_board(date("2026-10-01")), 0);
        e.taken_off = Some(TakenOff {
            at: DateTime::parse_from_rfc3339("2026-11-05T08:00:00Z")
                .unwrap()
                .to_utc(),
            by: e.put_on_by.clone(),
            reason: Reason::parse("Stabil").unwrap(),
        });
        assert_eq!(e.days_on_board(date("2026-11-20")), 4);
    }

    #[test]
    fn taken_off_or_stale_entries_do_not_change() {
        let mut e = entry("2026-11-01T08:00:00Z", 1);
        assert!(e.check_writable(Some(1)).is_ok());
        assert!(e.check_writable(None).is_ok());
        assert!(matches!(
            e.check_writable(Some(0)),
            Err(BoardError::Stale { current: 1 })
        ));
        e.taken_off = Some(TakenOff {
            at: e.put_on_at,
            by: e.put_on_by.clone(),
            reason: Reason::parse("Stabil").unwrap(),
        });
        assert!(matches!(
            e.check_writable(Some(1)),
            Err(BoardError::NotOnBoard)
        ));
    }

    #[test]
    fn the_board_shows_the_most_acute_first() {
        let mut board = vec![
            entry("2026-11-03T08:00:00Z", 2),
            entry("2026-11-02T08:00:00Z", 1),
            entry("2026-11-01T08:00:00Z", 2),
        ];
        sort_board(&mut board);
        let order: Vec<_> = board
            .iter()
            .map(|e| (e.status.level, e.put_on_at.date_naive().to_string()))
            .collect();
        assert_eq!(
            order,
            [
                (1, "2026-11-02".to_owned()),
                (2, "2026-11-01".to_owned()),
                (2, "2026-11-03".to_owned())
            ]
        );
    }
}
