//! Idempotency keys: a create call that a client retries with the same key gets the first
//! answer back instead of doing the work twice.
//!
//! In the create's transaction: [`replay`] first; if it finds nothing, do the work and
//! [`remember`] the encoded answer before committing. If two first attempts race, the second
//! `remember` fails with a unique violation: roll back and [`replay`] again.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::error::ApiError;

/// The longest idempotency key accepted.
pub const MAX_KEY_CHARS: usize = 128;

/// A client's idempotency key: 1–128 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses an optional key; empty means the caller sent none.
    pub fn parse(field: &str, value: &str) -> Result<Option<Self>, ApiError> {
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() > MAX_KEY_CHARS || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid(
                field,
                format!("1 to {MAX_KEY_CHARS} printable ASCII characters"),
            ));
        }
        Ok(Some(Self(value.to_owned())))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The table of remembered answers.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One remembered answer.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_key")]
    pub struct Model {
        /// The RPC (or other scope) the key belongs to.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub response: Vec<u8>,
        pub recorded_at: DateTimeUtc,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The migration that creates `idempotency_key`; list it in a service's migrator.
pub mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{blob, string, timestamp_with_time_zone};

    /// Creates `idempotency_key`.
    pub struct CreateIdempotencyKeys;

    impl MigrationName for CreateIdempotencyKeys {
        fn name(&self) -> &str {
            "m20261123_000002_create_idempotency_key"
        }
    }

    #[derive(DeriveIden)]
    enum IdempotencyKey {
        Table,
        Scope,
        Key,
        Response,
        RecordedAt,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateIdempotencyKeys {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(IdempotencyKey::Table)
                        .if_not_exists()
                        .col(string(IdempotencyKey::Scope))
                        .col(string(IdempotencyKey::Key))
                        .col(blob(IdempotencyKey::Response))
                        .col(timestamp_with_time_zone(IdempotencyKey::RecordedAt))
                        .primary_key(
                            Index::create()
                                .col(IdempotencyKey::Scope)
                                .col(IdempotencyKey::Key),
                        )
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(IdempotencyKey::Table).to_owned())
                .await
        }
    }
}

/// The answer remembered for `key` in `scope`, if any.
pub async fn replay<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    key: &IdempotencyKey,
) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(
        entity::Entity::find_by_id((scope.to_owned(), key.0.clone()))
            .one(db)
            .await?
            .map(|row| row.response),
    )
}

/// Remembers the encoded answer for `key` in `scope`, in the caller's transaction.
pub async fn remember<C: ConnectionTrait>(
    txn: &C,
    scope: &str,
    key: &IdempotencyKey,
    response: Vec<u8>,
) -> Result<(), DbErr> {
    entity::ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.0.clone()),
        response: Set(response),
        recorded_at: Set(chrono::Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert_eq!(IdempotencyKey::parse("request_id", "").unwrap(), None);
        assert_eq!(
            IdempotencyKey::parse("request_id", "dec-2026-0042")
                .unwrap()
                .unwrap()
                .as_str(),
            "dec-2026-0042"
        );
        assert!(IdempotencyKey::parse("request_id", "å").is_err());
        assert!(IdempotencyKey::parse("request_id", "a b").is_err());
        assert!(IdempotencyKey::parse("request_id", &"k".repeat(129)).is_err());
    }
}
