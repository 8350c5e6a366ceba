//! Revoked sessions kept in the gateway's own database beside the audit trail, so a
//! revocation outlives a restart (and reaches every gateway on the same database).

use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use crate::auth::Revocation;

/// The table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One revocation; `body` is its JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_session")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub until: i64,
        pub body: String,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Creates the revoked sessions' table.
pub(super) mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{big_integer, string, text};

    /// Creates `revoked_session`.
    pub struct CreateRevokedSessions;

    impl MigrationName for CreateRevokedSessions {
        fn name(&self) -> &str {
            "m20261205_000400_create_revoked_sessions"
        }
    }

    #[derive(DeriveIden)]
    enum RevokedSession {
        Table,
        Id,
        Until,
        Body,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateRevokedSessions {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(RevokedSession::Table)
                        .if_not_exists()
                        .col(string(RevokedSession::Id).primary_key())
                        .col(big_integer(RevokedSession::Until))
                        .col(text(RevokedSession::Body))
                        .to_owned(),
                )
                .await
        }
    }
}

/// Stores one revocation.
pub async fn insert(db: &DatabaseConnection, revocation: &Revocation) -> Result<(), DbErr> {
    let body = serde_json::to_string(revocation).map_err(|e| DbErr::Custom(e.to_string()))?;
    entity::Entity::insert(entity::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        until: Set(i64::try_from(revocation.until).unwrap_or(i64::MAX)),
        body: Set(body),
    })
    .exec(db)
    .await
    .map(drop)
}

/// The revocations still in force at `now` (seconds since the epoch).
pub async fn in_force(db: &DatabaseConnection, now: u64) -> Result<Vec<Revocation>, DbErr> {
    let rows = entity::Entity::find()
        .filter(entity::Column::Until.gte(i64::try_from(now).unwrap_or(i64::MAX)))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| serde_json::from_str(&row.body).ok())
        .collect())
}
