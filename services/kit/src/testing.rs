//! Fresh databases for tests, created with the real migrations by the caller.

use sea_orm::{ConnectionTrait, Database};

/// The variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_URL_VAR: &str = "SAMSYN_TEST_DATABASE_URL";

/// The server used when the variable is unset: the local one CI starts.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A URL to a new, empty PostgreSQL schema of its own on the test server.
///
/// Fails (rather than skipping) when the server is unreachable: a test that needs
/// PostgreSQL must run against one.
pub async fn fresh_postgres_url() -> Result<String, sea_orm::DbErr> {
    let base = std::env::var(TEST_DATABASE_URL_VAR)
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(base.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await?;
    admin.close().await?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// A URL to a new SQLite file in `dir`.
pub fn fresh_sqlite_url(dir: &std::path::Path) -> String {
    crate::db::sqlite_url(&dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())))
}
