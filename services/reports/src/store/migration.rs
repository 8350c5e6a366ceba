//! The read model's schema: facts as JSON by kind and id, and the feed cursors.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, text};

/// Creates `fact` and `feed_cursor`.
pub struct CreateReadModel;

impl MigrationName for CreateReadModel {
    fn name(&self) -> &str {
        "m20261204_000100_create_read_model"
    }
}

#[derive(DeriveIden)]
enum Fact {
    Table,
    Kind,
    Id,
    Body,
}

#[derive(DeriveIden)]
enum FeedCursor {
    Table,
    Feed,
    Sequence,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateReadModel {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Fact::Table)
                    .if_not_exists()
                    .col(string(Fact::Kind))
                    .col(string(Fact::Id))
                    .col(text(Fact::Body))
                    .primary_key(Index::create().col(Fact::Kind).col(Fact::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedCursor::Table)
                    .if_not_exists()
                    .col(string(FeedCursor::Feed).primary_key())
                    .col(big_integer(FeedCursor::Sequence))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FeedCursor::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Fact::Table).to_owned())
            .await
    }
}
