//! Each part's database schema: migrated as a step of its own (`samsyn migrate`), or checked
//! at start to be exactly the binary's.

use anyhow::Context;
use samsyn_kit::db;

/// Applies `part`'s pending migrations at `url`; how many were applied.
pub async fn migrate(part: &str, url: &str) -> anyhow::Result<usize> {
    let applied = match part {
        "participants" => db::migrate::<samsyn_participants::store::Migrator>(url).await?,
        "consent" => db::migrate::<samsyn_consent::store::Migrator>(url).await?,
        "plans" => db::migrate::<samsyn_plans::store::Migrator>(url).await?,
        "board" => db::migrate::<samsyn_board::store::Migrator>(url).await?,
        "reports" => db::migrate::<samsyn_reports::store::Migrator>(url).await?,
        // The gateway's database holds its audit trail and the outbox of pushes.
        "gateway" => {
            db::migrate::<samsyn_gateway::audit::store::Migrator>(url).await?
                + db::migrate::<samsyn_outbox::Migrator>(url).await?
        }
        other => anyhow::bail!("unknown part {other}"),
    };
    Ok(applied)
}

/// Refuses a schema at `url` that is older or newer than `part`'s binary.
pub async fn check(part: &str, url: &str) -> anyhow::Result<()> {
    let checked = match part {
        "participants" => db::check::<samsyn_participants::store::Migrator>(url).await,
        "consent" => db::check::<samsyn_consent::store::Migrator>(url).await,
        "plans" => db::check::<samsyn_plans::store::Migrator>(url).await,
        "board" => db::check::<samsyn_board::store::Migrator>(url).await,
        "reports" => db::check::<samsyn_reports::store::Migrator>(url).await,
        "gateway" => match db::check::<samsyn_gateway::audit::store::Migrator>(url).await {
            Ok(()) => db::check::<samsyn_outbox::Migrator>(url).await,
            refused => refused,
        },
        other => anyhow::bail!("unknown part {other}"),
    };
    checked.with_context(|| format!("{part}: migrate_on_start is off"))
}
