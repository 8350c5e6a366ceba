//! One pusher at a time: of the processes sharing an outbox, only the one holding its
//! pusher lock delivers; the others wait to take over.
//!
//! **PostgreSQL** (gateways scaled out): the lock is a session-level advisory lock on a
//! connection of its own, keyed by the outbox's schema, so that gateways on one database
//! share one pusher and test schemas do not meet. The lock lives exactly as long as its
//! session:
//! - the holder dies (crash, SIGKILL, OOM): the kernel closes its socket, PostgreSQL ends
//!   the session at once and a waiting process takes the lock at its next try, within a
//!   third of the takeover time;
//! - the holder falls silent (host gone, network cut, process frozen): the session is
//!   opened with `idle_session_timeout` at two thirds of the takeover time, so PostgreSQL
//!   ends it itself — a lease the server expires, with no clock of ours involved. The
//!   holder pings its session every sixth of the takeover time and stops delivering at
//!   the first ping that fails or takes longer than another sixth, so it has stopped
//!   before the server can hand the lock to anyone else.
//!
//! Either way another process delivers within the takeover time. What it delivers is read
//! from the database, so order per ordering key survives: a message becomes the head of its
//! key only once the one before it is recorded delivered, whichever process recorded it. A
//! send that was in flight when the holder died goes again and the far side drops the
//! repeat by its message id.
//!
//! **SQLite** (one process, `samsyn up`): the database is a file of one process, which is
//! its only writer; the lock is held trivially, at once and for good.

use std::future::Future;
use std::time::Duration;

use sea_orm::DbBackend;
use sea_orm::sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Outbox, OutboxError};

/// The advisory lock's name; its other half is the schema's name.
const LOCK_NAME: &str = "samsyn.outbox.pusher";

/// How quickly another process takes over delivery when the pusher dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    within: Duration,
}

impl Takeover {
    /// The shortest takeover time: below it, pings would crowd the database.
    pub const MIN: Duration = Duration::from_secs(3);
    /// The default: 15 seconds.
    pub const DEFAULT: Duration = Duration::from_secs(15);

    /// Takes over within `within`, at least [`Takeover::MIN`].
    pub fn within(within: Duration) -> Result<Self, OutboxError> {
        if within < Self::MIN {
            return Err(OutboxError::Invalid("takeover time (at least 3 seconds)"));
        }
        Ok(Self { within })
    }

    /// The bound itself.
    pub fn bound(self) -> Duration {
        self.within
    }

    /// How often a waiting process tries the lock.
    fn retry(self) -> Duration {
        self.within / 3
    }

    /// How often the holder pings its session, and how long a ping may take.
    fn ping(self) -> Duration {
        self.within / 6
    }

    /// How long PostgreSQL keeps a silent holder's session.
    fn idle_session(self) -> Duration {
        self.within * 2 / 3
    }
}

impl Default for Takeover {
    fn default() -> Self {
        Self {
            within: Self::DEFAULT,
        }
    }
}

/// The lock, held.
enum Held {
    /// SQLite: the only process.
    Sole,
    /// PostgreSQL: the session holding the advisory lock.
    Session(PgConnection),
}

impl Held {
    /// Waits until the lock is lost (never, for SQLite).
    async fn lost(&mut self, takeover: Takeover) {
        let Self::Session(session) = self else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(takeover.ping()).await;
            match tokio::time::timeout(takeover.ping(), session.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "outbox pusher lock session failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!("outbox pusher lock session does not answer");
                    return;
                }
            }
        }
    }

    /// Gives the lock up by ending the session.
    async fn release(self) {
        if let Self::Session(session) = self {
            let _ = session.close().await;
        }
    }
}

/// Tries the lock once, on `session` (opened if missing). `None`: another process holds it.
async fn try_lock(
    outbox: &Outbox,
    session: &mut Option<PgConnection>,
    takeover: Takeover,
) -> Result<Option<Held>, sea_orm::sqlx::Error> {
    let db = outbox.connection();
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Some(Held::Sole));
    }
    let mut conn = match session.take() {
        Some(conn) => conn,
        None => {
            // A connection of its own, out of the pool: the lock lives as long as it does.
            let mut conn = db.get_postgres_connection_pool().acquire().await?.detach();
            let idle = takeover.idle_session().as_millis().to_string();
            sea_orm::sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
                .bind(idle)
                .execute(&mut conn)
                .await?;
            conn
        }
    };
    let locked: Option<bool> = sea_orm::sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext($1), hashtext(current_schema()))",
    )
    .bind(LOCK_NAME)
    .fetch_one(&mut conn)
    .await?;
    if locked == Some(true) {
        Ok(Some(Held::Session(conn)))
    } else {
        *session = Some(conn);
        Ok(None)
    }
}

/// Runs `work` while this process holds the outbox's pusher lock: started each time the
/// lock is taken, told to stop (its argument turns `true`) when the lock is lost or at
/// [`Leading::stop`], and awaited before the lock is given up or tried again.
pub fn lead<W, F>(outbox: &Outbox, takeover: Takeover, mut work: W) -> Leading
where
    W: FnMut(watch::Receiver<bool>) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, mut stopped) = watch::channel(false);
    let (leading_tx, leading) = watch::channel(false);
    let outbox = outbox.clone();
    let task = tokio::spawn(async move {
        let mut session = None;
        loop {
            if *stopped.borrow() {
                return;
            }
            let mut held = match try_lock(&outbox, &mut session, takeover).await {
                Ok(Some(held)) => held,
                Ok(None) => {
                    tracing::debug!("another process pushes; waiting to take over");
                    if wait_or_stop(&mut stopped, takeover.retry()).await {
                        return;
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot try the outbox pusher lock");
                    session = None;
                    if wait_or_stop(&mut stopped, takeover.retry()).await {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!("this process now pushes the outbox");
            let _ = leading_tx.send(true);
            let (quit, quitting) = watch::channel(false);
            // Polled here rather than spawned: aborting this task drops the work with it.
            let running = work(quitting);
            tokio::pin!(running);
            let mut ended = false;
            let stopping = tokio::select! {
                () = held.lost(takeover) => false,
                _ = stopped.wait_for(|stop| *stop) => true,
                () = &mut running => {
                    tracing::warn!("outbox pushing ended by itself; giving the lock up");
                    ended = true;
                    false
                }
            };
            let _ = quit.send(true);
            if !ended {
                running.await;
            }
            let _ = leading_tx.send(false);
            held.release().await;
            if stopping {
                return;
            }
            tracing::warn!("this process no longer pushes the outbox");
            if wait_or_stop(&mut stopped, takeover.retry()).await {
                return;
            }
        }
    });
    Leading {
        stop,
        leading,
        task,
    }
}

/// Sleeps `pause`; true when told to stop meanwhile.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    let stop = tokio::select! {
        () = tokio::time::sleep(pause) => None,
        _ = stopped.wait_for(|stop| *stop) => Some(true),
    };
    stop.unwrap_or_else(|| *stopped.borrow())
}

/// Work run by [`lead`]: stopped (and the lock given up) by [`Leading::stop`].
#[derive(Debug)]
pub struct Leading {
    stop: watch::Sender<bool>,
    leading: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Leading {
    /// Whether this process holds the lock and runs the work now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Changes of [`Leading::is_leading`].
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops the work gracefully, then gives the lock up.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "outbox pusher ended abnormally");
        }
    }

    /// Ends at once, like a crash: the work is dropped and the lock's session with it.
    pub fn abort(self) {
        self.task.abort();
    }
}
