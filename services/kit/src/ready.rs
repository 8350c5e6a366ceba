//! Readiness: whether a part can do its work now, not merely whether its process runs.
//!
//! A part lists its checks (its database reachable with every migration applied; the
//! gateway adds its access view being current). While serving, the checks run every
//! second (every tenth of a second while not ready, to turn ready promptly), each bounded
//! by a timeout, and the answer goes to gRPC health (`NOT_SERVING` for the part and each of
//! its services while any check fails) and to the plain-HTTP probe listener
//! ([`crate::probe`]). A failing check is logged when readiness changes, not at every
//! round.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use tokio::sync::watch;

/// How often the checks run while ready.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often they run while not ready.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// The longest one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// A part's readiness checks and their latest answer. Cheap to clone; clones share the
/// answer.
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    ready: Arc<watch::Sender<bool>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            checks: Vec::new(),
            ready: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Readiness")
            .field("checks", &names)
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// Why a part is not ready: the check that failed and what it said (no personal data:
/// checks report storage and feed states only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check}: {reason}")]
pub struct NotReady {
    /// The failing check.
    pub check: &'static str,
    /// What it said.
    pub reason: String,
}

impl Readiness {
    /// Ready when `db` answers and every migration of `M` is applied.
    pub fn database<M: MigratorTrait>(db: DatabaseConnection) -> Self {
        let mut readiness = Self::default();
        readiness.add_database::<M>(db);
        readiness
    }

    /// Adds a check that `db` answers and every migration of `M` is applied. It only reads
    /// the migrations table: a probe never creates or migrates anything.
    pub fn add_database<M: MigratorTrait>(&mut self, db: DatabaseConnection) {
        let table = M::migration_table_name().to_string();
        let expected: Arc<Vec<String>> = Arc::new(
            M::migrations()
                .iter()
                .map(|m| m.name().to_owned())
                .collect(),
        );
        self.add("database", move || {
            let db = db.clone();
            let table = table.clone();
            let expected = Arc::clone(&expected);
            async move {
                let rows = db
                    .query_all_raw(Statement::from_string(
                        db.get_database_backend(),
                        format!("SELECT version FROM \"{table}\""),
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
                let applied: HashSet<String> = rows
                    .iter()
                    .filter_map(|row| row.try_get::<String>("", "version").ok())
                    .collect();
                let missing = expected.iter().filter(|m| !applied.contains(*m)).count();
                if missing == 0 {
                    Ok(())
                } else {
                    Err(format!("{missing} migrations not applied"))
                }
            }
        });
    }

    /// Adds a named check; an `Err` carries why the part is not ready.
    pub fn add<F, Fut>(&mut self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
    }

    /// The latest answer (false until the first round of checks passes).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Changes of the answer.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Runs every check now, each within [`CHECK_TIMEOUT`] (the answer is recorded only
    /// by [`Readiness::watch_over`]).
    pub async fn check(&self) -> Result<(), NotReady> {
        let mut result = Ok(());
        for (name, check) in &self.checks {
            let answer = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer in {} s", CHECK_TIMEOUT.as_secs())),
            };
            if let Err(reason) = answer {
                result = Err(NotReady {
                    check: name,
                    reason,
                });
                break;
            }
        }
        result
    }

    /// Runs the checks for ever, calling `changed` with each new answer (and the first)
    /// before recording it, so that whoever waits for [`Readiness::subscribe`] finds the
    /// answer already reported.
    pub async fn watch_over<F, Fut>(&self, part: &'static str, mut changed: F)
    where
        F: FnMut(bool) -> Fut + Send,
        Fut: Future<Output = ()> + Send,
    {
        let mut last = None;
        loop {
            let result = self.check().await;
            let ready = result.is_ok();
            if last != Some(ready) {
                match &result {
                    Ok(()) => tracing::info!(part, "ready"),
                    Err(not_ready) => tracing::warn!(
                        part,
                        check = not_ready.check,
                        reason = %not_ready.reason,
                        "not ready"
                    ),
                }
                changed(ready).await;
                self.ready.send_replace(ready);
                last = Some(ready);
            }
            tokio::time::sleep(if ready {
                CHECK_INTERVAL
            } else {
                RETRY_INTERVAL
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_check_must_pass_and_the_first_failure_is_named() {
        let mut readiness = Readiness::default();
        assert!(readiness.check().await.is_ok(), "no checks: ready");
        readiness.add("first", || async { Ok(()) });
        readiness.add("second", || async { Err("behind".to_owned()) });
        let err = readiness.check().await.unwrap_err();
        assert_eq!(err.check, "second");
        assert_eq!(err.reason, "behind");
    }

    #[tokio::test]
    async fn the_answer_is_recorded_after_it_is_reported() {
        let readiness = Readiness::default();
        let watched = readiness.clone();
        let (reported, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let watcher = tokio::spawn(async move {
            watched
                .watch_over("test", |ready| {
                    let _ = reported.send(ready);
                    async {}
                })
                .await;
        });
        assert!(!readiness.is_ready(), "not ready before the first round");
        readiness
            .subscribe()
            .wait_for(|ready| *ready)
            .await
            .unwrap();
        assert_eq!(reports.try_recv(), Ok(true), "reported before recorded");
        watcher.abort();
    }
}
