//! `samsyn`: start every part in one process (`up`), one part alone (`serve`), check them
//! (`status`), or make development certificates (`certs`) and tokens (`token`).

mod client;
mod config;
mod demo;
mod launch;
mod schema;
mod status;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls::DevPki;

use crate::config::{PARTS, SamsynConfig};

/// Samsyn: coordinated care between a region and a municipality around a FACT team.
#[derive(Debug, Parser)]
#[command(name = "samsyn", version)]
struct Cli {
    /// A TOML configuration file; `SAMSYN_` variables override it.
    #[arg(long, global = true, env = "SAMSYN_CONFIG")]
    config: Option<PathBuf>,
    /// Where databases and development certificates live [default: ./samsyn-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start every part in this process, each on its own port with its own database.
    Up {
        /// On a fresh data directory, seed the synthetic demo programme (see `samsyn as`).
        #[arg(long)]
        demo: bool,
    },
    /// Act as one of the demo programme's people, through the gateway like any client.
    As {
        /// Who (see `samsyn as anyone people`).
        who: String,
        /// Print the gateway's answer as JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: client::Action,
    },
    /// Start one part alone, as it runs in production.
    Serve {
        /// participants, consent, plans, board or gateway.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(PARTS))]
        part: String,
    },
    /// Apply a part's database migrations (or every part's) and exit.
    Migrate {
        /// participants, consent, plans, board or gateway.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(PARTS),
              required_unless_present = "all", conflicts_with = "all")]
        part: Option<String>,
        /// Every part, each in its own database.
        #[arg(long)]
        all: bool,
    },
    /// Ask every part of a running `samsyn up` whether it is serving.
    Status,
    /// Issue a development access token (signed by the dev key in <data-dir>/certs).
    Token(TokenArgs),
    /// The gateway's outbox of pushes to external systems: what waits, what was given up.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Create the development CA and certificates (for the parts and any extra NAMEs).
    Certs {
        /// Extra certificate names, e.g. a test client or an external system.
        names: Vec<String>,
    },
}

/// What to do with the outbox.
#[derive(Debug, Subcommand)]
enum OutboxAction {
    /// Per link: messages pending, delivered and dead, and each dead letter.
    Status,
    /// Queue dead letters of LINK again (all of them, or the given message ids), and forgive
    /// the refusals of its pending messages.
    Retry {
        /// The link's id.
        link: String,
        /// Message ids; none means every dead letter of the link.
        ids: Vec<String>,
    },
}

/// Who a development token is for.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// HSA-style staff id, or with --participant the participant's internal id.
    #[arg(long)]
    id: String,
    /// The organisation the staff member acts for.
    #[arg(long, required_unless_present = "participant")]
    org: Option<String>,
    /// The unit within the organisation.
    #[arg(long)]
    unit: Option<String>,
    /// A role (repeatable): case_manager, coordinator, physician, nurse, auditor, ...
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A FACT team (repeatable).
    #[arg(long = "team")]
    teams: Vec<String>,
    /// The assignment purpose.
    #[arg(long, default_value = "care")]
    purpose: String,
    /// The token is for a participant acting for themself.
    #[arg(long, conflicts_with_all = ["org", "unit", "roles", "teams"])]
    participant: bool,
    /// Minutes until the token expires (at most the verifier's twelve-hour lifetime).
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u64).range(1..=720))]
    ttl_minutes: u64,
}

/// The standard variable `DATABASE_URL` names a single part's database in production.
fn database_url_of(part: Option<&str>) -> Vec<(String, String)> {
    match (part, std::env::var("DATABASE_URL")) {
        (Some(part), Ok(url)) => {
            vec![(format!("SAMSYN_{}__DATABASE_URL", part.to_uppercase()), url)]
        }
        _ => Vec::new(),
    }
}

fn load_config(cli: &Cli, extra: Vec<(String, String)>) -> anyhow::Result<SamsynConfig> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend(extra);
    if let Some(dir) = &cli.data_dir {
        env.push(("SAMSYN_DATA_DIR".into(), dir.display().to_string()));
    }
    Ok(samsyn_kit::config::load(cli.config.as_deref(), env)?)
}

/// The allocator. Every call allocates and frees many small buffers on several threads (the
/// gateway, the services and SQLite's worker threads share one process under `samsyn up`);
/// glibc's malloc spent an eighth of the gateway's CPU at concurrency 16 consolidating and
/// locking its arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One crypto provider for the process; Samsyn's own configs name ring explicitly too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &cli.command {
        Command::Up { demo } => {
            let mut config = load_config(&cli, Vec::new())?;
            // `up` is for development: it trusts the development issuer, and says so.
            config.access.development_issuer = true;
            // One process holds everything: its databases follow its binary.
            config.migrate_on_start = true;
            writeln!(
                std::io::stdout().lock(),
                "tokens: trusting the development issuer {} (key {}) — for development only; \
                 production gateways run `samsyn serve gateway` with [[access.issuers]]",
                DevIssuer::ISSUER,
                DevIssuer::at(config.data_dir.join("certs"))
                    .public_key()
                    .display(),
            )?;
            let _telemetry = samsyn_kit::telemetry::init("samsyn", &config.telemetry)?;
            launch::run(config, &PARTS, *demo).await
        }
        Command::As { who, json, action } => {
            let config = load_config(&cli, Vec::new())?;
            client::run(&config, who, action.clone(), *json).await
        }
        Command::Serve { part } => {
            let config = load_config(&cli, database_url_of(Some(part)))?;
            let _telemetry =
                samsyn_kit::telemetry::init(&format!("samsyn-{part}"), &config.telemetry)?;
            launch::run(config, &[part.as_str()], false).await
        }
        Command::Token(args) => {
            let config = load_config(&cli, Vec::new())?;
            let issuer = DevIssuer::at(config.data_dir.join("certs"));
            issuer.ensure()?;
            let principal = Principal {
                id: args.id.clone(),
                kind: if args.participant {
                    PrincipalKind::Participant
                } else {
                    PrincipalKind::Staff
                },
                organisation: args.org.clone(),
                unit: args.unit.clone(),
                roles: args.roles.clone(),
                teams: args.teams.clone(),
                purpose: Some(args.purpose.clone()),
                acting_through: None,
            };
            let ttl = std::time::Duration::from_secs(args.ttl_minutes * 60);
            let token = issuer.issue(&principal, ttl)?;
            // Refuse to print a token the gateway would refuse.
            issuer.verifier()?.verify(&token)?;
            writeln!(std::io::stdout().lock(), "{token}")?;
            Ok(())
        }
        Command::Migrate { part, all } => {
            let config = load_config(&cli, database_url_of(part.as_deref()))?;
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
            let parts: Vec<&str> = match part {
                Some(part) if !all => vec![part.as_str()],
                _ => PARTS.to_vec(),
            };
            for name in parts {
                let url = config
                    .part(name)
                    .with_context(|| format!("unknown part {name}"))?
                    .database_url_in(&config.data_dir, name);
                let applied = schema::migrate(name, &url)
                    .await
                    .with_context(|| format!("{name}: migrations failed"))?;
                let mut out = std::io::stdout().lock();
                if applied == 0 {
                    writeln!(out, "{name}: schema up to date")?;
                } else {
                    writeln!(out, "{name}: {applied} migrations applied")?;
                }
            }
            Ok(())
        }
        Command::Status => status::run(&load_config(&cli, Vec::new())?).await,
        Command::Outbox { action } => outbox(&load_config(&cli, Vec::new())?, action).await,
        Command::Certs { names } => {
            let config = load_config(&cli, Vec::new())?;
            let pki = DevPki::at(config.data_dir.join("certs"));
            let mut all: Vec<&str> = PARTS.to_vec();
            all.extend(names.iter().map(String::as_str));
            pki.ensure(&all).context("cannot create certificates")?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "ca {}", pki.ca_cert().display())?;
            for name in all {
                writeln!(
                    out,
                    "{name} {} {}",
                    pki.cert(name).display(),
                    pki.key(name).display()
                )?;
            }
            Ok(())
        }
    }
}

/// Lists or retries the gateway's outbox, in the gateway's database.
async fn outbox(config: &SamsynConfig, action: &OutboxAction) -> anyhow::Result<()> {
    let part = config.part("gateway").context("no gateway part")?;
    let url = part.database_url_in(&config.data_dir, "gateway");
    let db = samsyn_kit::db::connect::<samsyn_outbox::Migrator>(&url).await?;
    let outbox = samsyn_outbox::Outbox::open(db).await?;
    let mut out = std::io::stdout().lock();
    match action {
        OutboxAction::Status => {
            for stats in outbox.stats().await? {
                writeln!(
                    out,
                    "{}: {} pending, {} delivered, {} dead",
                    stats.link, stats.pending, stats.delivered, stats.dead
                )?;
                for dead in outbox.dead_letters(&stats.link).await? {
                    writeln!(
                        out,
                        "  dead {} {} attempts {} last {}",
                        dead.id,
                        dead.path,
                        dead.attempts,
                        dead.last_error.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
        OutboxAction::Retry { link, ids } => {
            let link: samsyn_outbox::LinkId = link.parse()?;
            let selection = if ids.is_empty() {
                samsyn_outbox::RetrySelection::All
            } else {
                samsyn_outbox::RetrySelection::Ids(
                    ids.iter()
                        .map(|id| id.parse())
                        .collect::<Result<Vec<uuid::Uuid>, _>>()
                        .context("message ids are UUIDs")?,
                )
            };
            let retried = outbox.retry_dead(&link, selection).await?;
            writeln!(out, "{retried} dead letters queued again")?;
        }
    }
    Ok(())
}
