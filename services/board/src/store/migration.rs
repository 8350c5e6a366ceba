//! The board's schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, date, date_null, integer, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

/// Creates teams, entries, actions, status points, events, meetings and discussions.
pub struct CreateBoard;

impl MigrationName for CreateBoard {
    fn name(&self) -> &str {
        "m20261123_000100_create_board"
    }
}

#[derive(DeriveIden)]
enum Team {
    Table,
    Id,
    Name,
    OwnerOrganisationId,
    Coordinators,
    Config,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BoardEntry {
    Table,
    Id,
    TeamId,
    ParticipantId,
    Reason,
    Criteria,
    StatusLevel,
    Trend,
    StatusNote,
    NextReviewOn,
    PutOnAt,
    PutOnBy,
    TakenOffAt,
    TakenOffBy,
    TakeOffReason,
    Revision,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BoardAction {
    Table,
    Id,
    EntryId,
    Description,
    Owner,
    DueOn,
    DoneAt,
    DoneBy,
    CreatedAt,
    CreatedBy,
    MeetingId,
    DiscussionId,
}

#[derive(DeriveIden)]
enum StatusPoint {
    Table,
    Id,
    EntryId,
    TeamId,
    ParticipantId,
    Level,
    Trend,
    Note,
    RecordedAt,
    RecordedBy,
}

#[derive(DeriveIden)]
enum BoardEvent {
    Table,
    Id,
    EntryId,
    TeamId,
    ParticipantId,
    Kind,
    OccurredAt,
    RecordedBy,
    Detail,
    ActionId,
    MeetingId,
}

#[derive(DeriveIden)]
enum Meeting {
    Table,
    Id,
    TeamId,
    HeldOn,
    Chair,
    Attendees,
    StartedAt,
}

#[derive(DeriveIden)]
enum Discussion {
    Table,
    Id,
    MeetingId,
    ParticipantId,
    EntryId,
    Notes,
    Decisions,
    RecordedAt,
    RecordedBy,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateBoard {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Team::Table)
                    .if_not_exists()
                    .col(string(Team::Id).primary_key())
                    .col(text(Team::Name))
                    .col(string(Team::OwnerOrganisationId))
                    .col(text(Team::Coordinators))
                    .col(text(Team::Config))
                    .col(big_integer(Team::Revision))
                    .col(timestamp_with_time_zone(Team::CreatedAt))
                    .col(timestamp_with_time_zone(Team::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BoardEntry::Table)
                    .if_not_exists()
                    .col(string(BoardEntry::Id).primary_key())
                    .col(string(BoardEntry::TeamId))
                    .col(string(BoardEntry::ParticipantId))
                    .col(text(BoardEntry::Reason))
                    .col(text(BoardEntry::Criteria))
                    .col(integer(BoardEntry::StatusLevel))
                    .col(string(BoardEntry::Trend))
                    .col(text(BoardEntry::StatusNote))
                    .col(date_null(BoardEntry::NextReviewOn))
                    .col(timestamp_with_time_zone(BoardEntry::PutOnAt))
                    .col(text(BoardEntry::PutOnBy))
                    .col(timestamp_with_time_zone_null(BoardEntry::TakenOffAt))
                    .col(text_null(BoardEntry::TakenOffBy))
                    .col(text_null(BoardEntry::TakeOffReason))
                    .col(big_integer(BoardEntry::Revision))
                    .col(timestamp_with_time_zone(BoardEntry::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BoardEntry::Table, BoardEntry::TeamId)
                            .to(Team::Table, Team::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One open entry per participant and team: the database, not a read-then-write check,
        // keeps two concurrent "put on" calls from both succeeding.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS board_entry_one_open \
                 ON board_entry (team_id, participant_id) WHERE taken_off_at IS NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("board_entry_participant")
                    .table(BoardEntry::Table)
                    .col(BoardEntry::ParticipantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Meeting::Table)
                    .if_not_exists()
                    .col(string(Meeting::Id).primary_key())
                    .col(string(Meeting::TeamId))
                    .col(date(Meeting::HeldOn))
                    .col(text(Meeting::Chair))
                    .col(text(Meeting::Attendees))
                    .col(timestamp_with_time_zone(Meeting::StartedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Meeting::Table, Meeting::TeamId)
                            .to(Team::Table, Team::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("meeting_team_held_on")
                    .table(Meeting::Table)
                    .col(Meeting::TeamId)
                    .col(Meeting::HeldOn)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Discussion::Table)
                    .if_not_exists()
                    .col(string(Discussion::Id).primary_key())
                    .col(string(Discussion::MeetingId))
                    .col(string(Discussion::ParticipantId))
                    .col(string_null(Discussion::EntryId))
                    .col(text(Discussion::Notes))
                    .col(text(Discussion::Decisions))
                    .col(timestamp_with_time_zone(Discussion::RecordedAt))
                    .col(text(Discussion::RecordedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Discussion::Table, Discussion::MeetingId)
                            .to(Meeting::Table, Meeting::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("discussion_meeting")
                    .table(Discussion::Table)
                    .col(Discussion::MeetingId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BoardAction::Table)
                    .if_not_exists()
                    .col(string(BoardAction::Id).primary_key())
                    .col(string(BoardAction::EntryId))
                    .col(text(BoardAction::Description))
                    .col(text(BoardAction::Owner))
                    .col(date(BoardAction::DueOn))
                    .col(timestamp_with_time_zone_null(BoardAction::DoneAt))
                    .col(text_null(BoardAction::DoneBy))
                    .col(timestamp_with_time_zone(BoardAction::CreatedAt))
                    .col(text(BoardAction::CreatedBy))
                    .col(string_null(BoardAction::MeetingId))
                    .col(string_null(BoardAction::DiscussionId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BoardAction::Table, BoardAction::EntryId)
                            .to(BoardEntry::Table, BoardEntry::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("board_action_entry")
                    .table(BoardAction::Table)
                    .col(BoardAction::EntryId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("board_action_discussion")
                    .table(BoardAction::Table)
                    .col(BoardAction::DiscussionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StatusPoint::Table)
                    .if_not_exists()
                    .col(big_pk_auto(StatusPoint::Id))
                    .col(string(StatusPoint::EntryId))
                    .col(string(StatusPoint::TeamId))
                    .col(string(StatusPoint::ParticipantId))
                    .col(integer(StatusPoint::Level))
                    .col(string(StatusPoint::Trend))
                    .col(text(StatusPoint::Note))
                    .col(timestamp_with_time_zone(StatusPoint::RecordedAt))
                    .col(text(StatusPoint::RecordedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("status_point_participant")
                    .table(StatusPoint::Table)
                    .col(StatusPoint::ParticipantId)
                    .col(StatusPoint::RecordedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BoardEvent::Table)
                    .if_not_exists()
                    .col(big_pk_auto(BoardEvent::Id))
                    .col(string_null(BoardEvent::EntryId))
                    .col(string(BoardEvent::TeamId))
                    .col(string(BoardEvent::ParticipantId))
                    .col(string(BoardEvent::Kind))
                    .col(timestamp_with_time_zone(BoardEvent::OccurredAt))
                    .col(text(BoardEvent::RecordedBy))
                    .col(text(BoardEvent::Detail))
                    .col(string_null(BoardEvent::ActionId))
                    .col(string_null(BoardEvent::MeetingId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("board_event_participant")
                    .table(BoardEvent::Table)
                    .col(BoardEvent::ParticipantId)
                    .col(BoardEvent::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BoardEvent::Table.into_iden(),
            StatusPoint::Table.into_iden(),
            BoardAction::Table.into_iden(),
            Discussion::Table.into_iden(),
            Meeting::Table.into_iden(),
            BoardEntry::Table.into_iden(),
            Team::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Creates what the board keeps from other services' feeds for the agenda: the feed
/// cursors, each participant's facts, and the municipal decisions to bring up.
pub struct CreateAgendaFacts;

impl MigrationName for CreateAgendaFacts {
    fn name(&self) -> &str {
        "m20261205_000200_create_agenda_facts"
    }
}

#[derive(DeriveIden)]
enum FeedCursor {
    Table,
    Feed,
    Sequence,
}

#[derive(DeriveIden)]
enum ParticipantFact {
    Table,
    ParticipantId,
    ConsentRevokedAt,
    LatestDecisionAt,
}

#[derive(DeriveIden)]
enum DecisionNotice {
    Table,
    Id,
    ParticipantId,
    NotedAt,
    Body,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateAgendaFacts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FeedCursor::Table)
                    .if_not_exists()
                    .col(string(FeedCursor::Feed).primary_key())
                    .col(big_integer(FeedCursor::Sequence))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParticipantFact::Table)
                    .if_not_exists()
                    .col(string(ParticipantFact::ParticipantId).primary_key())
                    .col(timestamp_with_time_zone_null(
                        ParticipantFact::ConsentRevokedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        ParticipantFact::LatestDecisionAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DecisionNotice::Table)
                    .if_not_exists()
                    .col(big_pk_auto(DecisionNotice::Id))
                    .col(string(DecisionNotice::ParticipantId))
                    .col(timestamp_with_time_zone(DecisionNotice::NotedAt))
                    .col(text(DecisionNotice::Body))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("decision_notice_participant")
                    .table(DecisionNotice::Table)
                    .col(DecisionNotice::ParticipantId)
                    .col(DecisionNotice::NotedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DecisionNotice::Table.into_iden(),
            ParticipantFact::Table.into_iden(),
            FeedCursor::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
