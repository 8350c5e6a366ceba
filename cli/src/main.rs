//! `samsyn`: start every part in one process (`up`), one part alone (`serve`), check them
//! (`status`), or make development certificates (`certs`).

mod config;
mod launch;
mod status;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    Up,
    /// Start one part alone, as it runs in production.
    Serve {
        /// participants, consent, plans, board or gateway.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(PARTS))]
        part: String,
    },
    /// Ask every part of a running `samsyn up` whether it is serving.
    Status,
    /// Create the development CA and certificates (for the parts and any extra NAMEs).
    Certs {
        /// Extra certificate names, e.g. a test client or an external system.
        names: Vec<String>,
    },
}

fn load_config(cli: &Cli, extra: Vec<(String, String)>) -> anyhow::Result<SamsynConfig> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend(extra);
    if let Some(dir) = &cli.data_dir {
        env.push(("SAMSYN_DATA_DIR".into(), dir.display().to_string()));
    }
    Ok(samsyn_kit::config::load(cli.config.as_deref(), env)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One crypto provider for the process; Samsyn's own configs name ring explicitly too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &cli.command {
        Command::Up => {
            let config = load_config(&cli, Vec::new())?;
            let _telemetry = samsyn_kit::telemetry::init("samsyn", &config.telemetry)?;
            launch::run(config, &PARTS).await
        }
        Command::Serve { part } => {
            // The standard variable names a single part's database in production.
            let mut extra = Vec::new();
            if let Ok(url) = std::env::var("DATABASE_URL") {
                extra.push((format!("SAMSYN_{}__DATABASE_URL", part.to_uppercase()), url));
            }
            let config = load_config(&cli, extra)?;
            let _telemetry =
                samsyn_kit::telemetry::init(&format!("samsyn-{part}"), &config.telemetry)?;
            launch::run(config, &[part.as_str()]).await
        }
        Command::Status => status::run(&load_config(&cli, Vec::new())?).await,
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
