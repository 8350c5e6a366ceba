//! The consent service's own tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, string, text, timestamp_with_time_zone};

/// Creates `record` (current consents and restrictions) and `record_version` (their history).
pub struct CreateConsentTables;

impl MigrationName for CreateConsentTables {
    fn name(&self) -> &str {
        "m20261123_000101_create_consent_tables"
    }
}

#[derive(DeriveIden)]
enum Record {
    Table,
    Id,
    Kind,
    ParticipantId,
    Revision,
    Body,
}

#[derive(DeriveIden)]
enum RecordVersion {
    Table,
    Sequence,
    ParticipantId,
    RecordKind,
    RecordId,
    Revision,
    ChangeKind,
    RecordedAt,
    Body,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateConsentTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The current state of each consent and restriction: indexed columns to find it, the
        // whole record as JSON. Versions keep every state ever held, so history never depends
        // on this table.
        manager
            .create_table(
                Table::create()
                    .table(Record::Table)
                    .if_not_exists()
                    .col(string(Record::Id).primary_key())
                    .col(string(Record::Kind))
                    .col(string(Record::ParticipantId))
                    .col(big_integer(Record::Revision))
                    .col(text(Record::Body))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("record_by_participant")
                    .table(Record::Table)
                    .col(Record::ParticipantId)
                    .col(Record::Kind)
                    .col(Record::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecordVersion::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RecordVersion::Sequence))
                    .col(string(RecordVersion::ParticipantId))
                    .col(string(RecordVersion::RecordKind))
                    .col(string(RecordVersion::RecordId))
                    .col(big_integer(RecordVersion::Revision))
                    .col(string(RecordVersion::ChangeKind))
                    .col(timestamp_with_time_zone(RecordVersion::RecordedAt))
                    .col(text(RecordVersion::Body))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("record_version_by_participant")
                    .table(RecordVersion::Table)
                    .col(RecordVersion::ParticipantId)
                    .col(RecordVersion::Sequence)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // One row per record and revision: two writers of the same revision cannot both win.
        manager
            .create_index(
                Index::create()
                    .name("record_version_unique")
                    .table(RecordVersion::Table)
                    .col(RecordVersion::RecordKind)
                    .col(RecordVersion::RecordId)
                    .col(RecordVersion::Revision)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Record::Table.into_iden(), RecordVersion::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Research-study consents name their study: the stored form of the kind changes from
/// `"ResearchStudy"` to `{"ResearchStudy": <study or null>}`. Consents recorded before name
/// none (`null`) and so count for no study's export; nothing is guessed for them.
pub struct NameResearchStudies;

impl MigrationName for NameResearchStudies {
    fn name(&self) -> &str {
        "m20261205_000101_name_research_studies"
    }
}

/// The kind as stored before, and after. A quote inside stored free text is escaped
/// (`\"`), so the pattern only ever matches the kind itself.
const UNNAMED_STUDY: (&str, &str) = (
    r#""kind":"ResearchStudy""#,
    r#""kind":{"ResearchStudy":null}"#,
);

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for NameResearchStudies {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (before, after) = UNNAMED_STUDY;
        for table in ["record", "record_version"] {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET body = REPLACE(body, '{before}', '{after}') \
                     WHERE body LIKE '%{before}%'"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The older code cannot read a consent that names its study; nothing to go back to.
        Err(DbErr::Migration(
            "research consents naming their study have no older form".to_owned(),
        ))
    }
}
