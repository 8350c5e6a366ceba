//! Idempotency keys: a create call that a client retries with the same key gets the first
//! answer back instead of doing the work twice.
//!
//! A key belongs to whoever sent it ([`IdempotencyKey::bind`]): the same key from another
//! caller is another request, so a guessed or replayed key never returns somebody else's
//! record. The same key from the same caller with a different request is refused
//! (`ALREADY_EXISTS` naming the key), never answered with the first record.
//!
//! In the create's transaction: [`replay`] first; if it finds nothing, do the work and
//! [`remember`] the encoded answer before committing. If two first attempts race, the second
//! `remember` fails with a unique violation: roll back and [`replay`] again.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::caller::Caller;
use crate::error::ApiError;

/// A key could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The caller used the key before for a different request.
    #[error("idempotency key already used for a different request")]
    Reused,
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl IdempotencyError {
    /// The storage error, or the caller's mistake as an `ApiError`.
    pub fn into_api(self, field: &str) -> Result<ApiError, DbErr> {
        match self {
            Self::Reused => Ok(ApiError::KeyReused(field.to_owned())),
            Self::Db(error) => Err(error),
        }
    }
}

/// The longest idempotency key accepted.
pub const MAX_KEY_CHARS: usize = 128;

/// A client's idempotency key: 1–128 printable ASCII characters, and once bound, whose it
/// is and what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    /// The caller the key belongs to; empty for Samsyn's own components.
    owner: String,
    /// SHA-256 of the encoded request, hex; empty until bound.
    request: String,
}

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
        Ok(Some(Self {
            key: value.to_owned(),
            owner: String::new(),
            request: String::new(),
        }))
    }

    /// Binds the key to its caller and to the request it came with.
    #[must_use]
    pub fn bind(self, caller: Option<&Caller>, request: &impl prost::Message) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, &request.encode_to_vec());
        Self {
            owner: caller.map(Caller::key_owner).unwrap_or_default(),
            request: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
            ..self
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The stored key: the owner's and the caller's key together.
    fn stored(&self) -> String {
        if self.owner.is_empty() {
            self.key.clone()
        } else {
            // '\n' cannot occur in a key (printable ASCII only), so owners never collide.
            format!("{}\n{}", self.owner, self.key)
        }
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
        /// SHA-256 of the request that made the answer; `None` for keys kept before it was.
        pub request_sha256: Option<String>,
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

    /// Adds the request fingerprint, so a key reused for another request is refused.
    pub struct AddRequestFingerprint;

    impl MigrationName for AddRequestFingerprint {
        fn name(&self) -> &str {
            "m20261204_000001_idempotency_key_request_sha256"
        }
    }

    #[derive(DeriveIden)]
    enum Fingerprint {
        #[sea_orm(iden = "idempotency_key")]
        Table,
        RequestSha256,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for AddRequestFingerprint {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(Fingerprint::Table)
                        .add_column(ColumnDef::new(Fingerprint::RequestSha256).string().null())
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(Fingerprint::Table)
                        .drop_column(Fingerprint::RequestSha256)
                        .to_owned(),
                )
                .await
        }
    }
}

/// The answer remembered for `key` in `scope`, if any; `Reused` when the same caller sent
/// the key with a different request.
pub async fn replay<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    key: &IdempotencyKey,
) -> Result<Option<Vec<u8>>, IdempotencyError> {
    let Some(row) = entity::Entity::find_by_id((scope.to_owned(), key.stored()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    match row.request_sha256 {
        Some(first) if !key.request.is_empty() && first != key.request => {
            Err(IdempotencyError::Reused)
        }
        _ => Ok(Some(row.response)),
    }
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
        key: Set(key.stored()),
        response: Set(response),
        recorded_at: Set(chrono::Utc::now()),
        request_sha256: Set(Some(key.request.clone()).filter(|r| !r.is_empty())),
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
