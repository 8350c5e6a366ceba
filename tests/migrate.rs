//! `samsyn migrate` brings each part's database to its binary's schema and exits; `samsyn
//! serve` with `migrate_on_start = false` refuses a schema that is not its binary's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use samsyn_kit::testing::fresh_postgres_url;

const PARTS: [&str; 6] = [
    "participants",
    "consent",
    "plans",
    "board",
    "reports",
    "gateway",
];

/// `samsyn <args>` with each part's database in its own fresh PostgreSQL schema.
fn samsyn(data_dir: &Path, args: &[&str], urls: &[(String, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_samsyn"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL");
    for (part, url) in urls {
        command.env(format!("SAMSYN_{}__DATABASE_URL", part.to_uppercase()), url);
    }
    command.output().expect("samsyn runs")
}

async fn fresh_urls() -> Vec<(String, String)> {
    let mut urls = Vec::new();
    for part in PARTS {
        urls.push((part.to_owned(), fresh_postgres_url().await.unwrap()));
    }
    urls
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn migrate_all_migrates_empty_databases_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let urls = fresh_urls().await;
    let first = samsyn(dir.path(), &["migrate", "--all"], &urls);
    assert!(first.status.success(), "{}", text(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    for part in PARTS {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{part}: ")) && l.ends_with("migrations applied")),
            "{part} not migrated:\n{stdout}"
        );
    }
    let second = samsyn(dir.path(), &["migrate", "--all"], &urls);
    assert!(second.status.success(), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.ends_with(": schema up to date"))
            .count(),
        PARTS.len(),
        "{stdout}"
    );
}

/// A part under `migrate_on_start = false`, on a database of `samsyn migrate`'s, plus `sql`.
async fn serve_after(part: &str, sql: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_url().await.unwrap();
    let urls = vec![(part.to_owned(), url.clone())];
    let migrated = samsyn(dir.path(), &["migrate", part], &urls);
    assert!(migrated.status.success(), "{}", text(&migrated));
    if let Some(sql) = sql {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
        db.execute_unprepared(sql).await.unwrap();
        db.close().await.unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_samsyn"));
    command
        .args(["serve", part, "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .env("SAMSYN_MIGRATE_ON_START", "false")
        .env(
            format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
            "127.0.0.1:0",
        )
        .env("DATABASE_URL", &url);
    // A part that starts would serve until stopped: give it a bounded time to refuse.
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::timeout(std::time::Duration::from_secs(30), waited)
        .await
        .expect("serve refused within 30 s instead of serving")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn serve_refuses_a_database_migrated_by_a_newer_binary() {
    let output = serve_after(
        "consent",
        Some("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29990101_000001_from_the_future', 0)"),
    )
    .await;
    assert!(!output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("newer than this binary")
            && said.contains("m29990101_000001_from_the_future"),
        "{said}"
    );
}

#[tokio::test]
async fn serve_refuses_a_database_with_migrations_pending() {
    let output = serve_after(
        "board",
        Some("DELETE FROM seaql_migrations WHERE version = (SELECT max(version) FROM seaql_migrations)"),
    )
    .await;
    assert!(!output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("older than this binary") && said.contains("samsyn migrate"),
        "{said}"
    );
}
