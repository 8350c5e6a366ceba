//! What the board's handlers need from storage, in domain terms.

use std::future::Future;

use chrono::NaiveDate;
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;

pub use samsyn_kit::write::Outcome;

use super::notice::DecisionNotice;
use super::{
    ActionId, BoardError, ConfigChange, Coordinator, Discussion, Entry, EntryId, EntryUpdate,
    Meeting, MeetingId, NewAction, NewDiscussion, NewEntry, NewMeeting, ParticipantId, Reason,
    Staff, Team, TeamId, TeamName, TeamSpec, Timeline, Window, agenda::AgendaItem,
};

/// A meeting's agenda items, and the municipal decisions to bring up per participant.
pub type Agenda = (Vec<AgendaItem>, Vec<(ParticipantId, Vec<DecisionNotice>)>);

/// The entity kind of board-entry changes on the feed; WatchBoard follows these.
pub const ENTRY_KIND: &str = "board_entry";

/// Storage of teams, boards and meetings. Every change is one transaction that also appends
/// to the change feed; creates with a key replay the first answer.
pub trait BoardRepository: Clone + Send + Sync + 'static {
    /// Creates a team.
    fn create_team(
        &self,
        key: Option<IdempotencyKey>,
        spec: TeamSpec,
    ) -> impl Future<Output = Result<Outcome<Team>, BoardError>> + Send;

    /// One team.
    fn team(&self, id: TeamId) -> impl Future<Output = Result<Team, BoardError>> + Send;

    /// A page of teams by id.
    fn teams(
        &self,
        page: &Page,
    ) -> impl Future<Output = Result<(Vec<Team>, String), BoardError>> + Send;

    /// Replaces a team's name, coordinators and configuration.
    fn update_team(
        &self,
        id: TeamId,
        expected_revision: u64,
        name: TeamName,
        coordinators: Vec<Coordinator>,
        change: ConfigChange,
    ) -> impl Future<Output = Result<Team, BoardError>> + Send;

    /// Puts a participant on a team's board.
    fn put_on_board(
        &self,
        key: Option<IdempotencyKey>,
        new: NewEntry,
    ) -> impl Future<Output = Result<Outcome<Entry>, BoardError>> + Send;

    /// One entry of the participant.
    fn entry(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
    ) -> impl Future<Output = Result<Entry, BoardError>> + Send;

    /// The entries on a team's board, most acute first, and the feed cursor read before them.
    fn board(
        &self,
        team_id: TeamId,
    ) -> impl Future<Output = Result<(Vec<Entry>, u64), BoardError>> + Send;

    /// Changes an entry.
    fn update_entry(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        update: EntryUpdate,
    ) -> impl Future<Output = Result<Entry, BoardError>> + Send;

    /// Adds an agreed action to an entry.
    fn add_action(
        &self,
        key: Option<IdempotencyKey>,
        id: EntryId,
        participant_id: ParticipantId,
        action: NewAction,
        by: Staff,
    ) -> impl Future<Output = Result<Outcome<Entry>, BoardError>> + Send;

    /// Marks an action done; an action already done is left as it is.
    fn complete_action(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        action_id: ActionId,
        by: Staff,
    ) -> impl Future<Output = Result<Entry, BoardError>> + Send;

    /// Takes a participant off the board.
    fn take_off(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        expected_revision: u64,
        reason: Reason,
        by: Staff,
    ) -> impl Future<Output = Result<Entry, BoardError>> + Send;

    /// A participant's status points and events in a window, oldest first.
    fn timeline(
        &self,
        participant_id: ParticipantId,
        window: Window,
        team_id: Option<TeamId>,
    ) -> impl Future<Output = Result<Timeline, BoardError>> + Send;

    /// The agenda of a team's meeting on `on`: its items, and the municipal decisions to
    /// bring up per participant.
    fn agenda(
        &self,
        team_id: TeamId,
        on: NaiveDate,
    ) -> impl Future<Output = Result<Agenda, BoardError>> + Send;

    /// Opens a meeting's minutes.
    fn start_meeting(
        &self,
        key: Option<IdempotencyKey>,
        new: NewMeeting,
    ) -> impl Future<Output = Result<Outcome<Meeting>, BoardError>> + Send;

    /// Records one participant's discussion; new actions join their entry on the board.
    fn record_discussion(
        &self,
        key: Option<IdempotencyKey>,
        new: NewDiscussion,
    ) -> impl Future<Output = Result<Outcome<Discussion>, BoardError>> + Send;

    /// A meeting and its minutes in the order recorded.
    fn meeting(
        &self,
        id: MeetingId,
    ) -> impl Future<Output = Result<(Meeting, Vec<Discussion>), BoardError>> + Send;

    /// A page of a team's meetings, newest first.
    fn meetings(
        &self,
        team_id: TeamId,
        page: &Page,
    ) -> impl Future<Output = Result<(Vec<Meeting>, String), BoardError>> + Send;
}
