//! Starting parts: certificates, databases, listeners, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_kit::tls::{self, ClientAuth, DevPki};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::SamsynConfig;

/// Work a part runs besides answering calls, owned by the launcher through the part and
/// stopped at shutdown.
#[derive(Debug, Default)]
struct Background {
    /// The gateway's pushes to SIP tools.
    pushes: Option<samsyn_gateway::outbound::Pushes>,
}

impl Background {
    /// Stops it all, letting sends in flight finish. A stop mid-send (or a crash) is safe:
    /// the message goes again later and the far side drops the repeat by its id.
    async fn stop(self) {
        if let Some(pushes) = self.pushes {
            pushes.stop().await;
        }
    }
}

/// Builds the named part, opening and migrating its database, with its background work.
/// `bound` holds the addresses of the parts this process already serves (they may have
/// picked free ports).
async fn build_part(
    name: &str,
    context: &PartContext,
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
) -> anyhow::Result<(Part, Background)> {
    let service = |part| (part, Background::default());
    Ok(match name {
        "participants" => {
            let consent = service_channel(config, samsyn_participants::NAME, "consent", bound)?;
            service(
                samsyn_participants::part_with_settings(
                    context,
                    config.programme.clone(),
                    Some(consent),
                )
                .await?,
            )
        }
        "consent" => service(samsyn_consent::part(context).await?),
        "plans" => service(samsyn_plans::part(context).await?),
        "board" => {
            // The agenda follows the plans and participants feeds (decisions, revoked
            // participation consents).
            let feeds = samsyn_board::BoardFeeds {
                plans: service_channel(config, samsyn_board::NAME, "plans", bound)?,
                participants: service_channel(config, samsyn_board::NAME, "participants", bound)?,
            };
            let settings = samsyn_board::FollowSettings::default();
            service(
                samsyn_board::part_with_feeds(context, Some(feeds), settings)
                    .await?
                    .0,
            )
        }
        "reports" => service(
            samsyn_reports::part(
                context,
                report_settings(config)?,
                feed_channels(config, bound)?,
            )
            .await?,
        ),
        "gateway" => {
            let gateway = build_gateway(context, config, bound).await?;
            let pushes = start_pushes(context, config, &gateway).await?;
            // The web board's development login only where development tokens are trusted.
            let board = samsyn_gateway::web_board::BoardSettings {
                dev_login: config.access.development_issuer.then(|| {
                    samsyn_gateway::web_board::DevLogin {
                        issuer: samsyn_gateway::auth::DevIssuer::at(config.data_dir.join("certs")),
                        roster: config.data_dir.join(crate::client::ROSTER_FILE),
                    }
                }),
                web_login: samsyn_gateway::web_board::oidc::WebLogin::from_settings(
                    &config.access,
                    gateway.audit().revoked_sessions().unwrap_or_default(),
                )
                .map_err(|(field, reason)| anyhow::anyhow!("{field}: {reason}"))?
                .map(Arc::new),
            };
            let mut part = samsyn_gateway::part_with_board(Arc::clone(&gateway), board);
            gateway_readiness(&mut part.readiness, context, &gateway).await?;
            (part, Background { pushes })
        }
        other => anyhow::bail!("unknown part {other}"),
    })
}

/// A channel from part `from` to the service `to` over internal mutual TLS, presenting
/// `from`'s certificate (a service follows another's change feed this way).
fn service_channel(
    config: &SamsynConfig,
    from: &str,
    to: &str,
    bound: &HashMap<&'static str, SocketAddr>,
) -> anyhow::Result<tonic::transport::Channel> {
    let client = client_tls(config, from)?;
    Ok(tls::channel_to(
        &authority(config, bound, to)?,
        SERVICE_SERVER_NAME,
        client,
    )?)
}

/// Where `part` is reached from this process: where it is served here, else its configured
/// `address` (another pod's Service), else its `listen` address.
fn authority(
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
    part: &str,
) -> anyhow::Result<String> {
    Ok(match (bound.get(part), config.part(part)) {
        (Some(addr), _) => reachable(*addr).to_string(),
        (None, Some(other)) => other
            .address
            .clone()
            .unwrap_or_else(|| reachable(other.listen).to_string()),
        (None, None) => anyhow::bail!("unknown part {part}"),
    })
}

/// What reports need from the programme and access settings, the studies' keys read.
fn report_settings(config: &SamsynConfig) -> anyhow::Result<samsyn_reports::ReportSettings> {
    let studies = config
        .reporting
        .studies
        .iter()
        .map(|study| study.load().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(samsyn_reports::ReportSettings {
        region_organisation: config.access.region_organisation.clone(),
        programme_municipalities: config
            .programme
            .programme_municipalities
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        yearly_target: config.programme.yearly_target,
        suppression_threshold: config.reporting.suppression_threshold,
        studies,
    })
}

/// Internal channels to a part by name, presenting `name`'s certificate.
fn part_channels(
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
    name: &str,
) -> anyhow::Result<impl Fn(&str) -> anyhow::Result<tonic::transport::Channel>> {
    let client = client_tls(config, name)?;
    let config = config.clone();
    let bound = bound.clone();
    Ok(
        move |part: &str| -> anyhow::Result<tonic::transport::Channel> {
            Ok(tls::channel_to(
                &authority(&config, &bound, part)?,
                SERVICE_SERVER_NAME,
                client.clone(),
            )?)
        },
    )
}

/// The feeds the reports part follows.
fn feed_channels(
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
) -> anyhow::Result<samsyn_reports::FeedChannels> {
    let channel = part_channels(config, bound, samsyn_reports::NAME)?;
    Ok(samsyn_reports::FeedChannels {
        participants: channel("participants")?,
        consent: channel("consent")?,
        plans: channel("plans")?,
        board: channel("board")?,
    })
}

/// The gateway, with channels to the services and its durable audit trail.
async fn build_gateway(
    context: &PartContext,
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
) -> anyhow::Result<Arc<samsyn_gateway::proxy::Gateway>> {
    let client = client_tls(config, samsyn_gateway::NAME)?;
    let channel = |part: &str| -> anyhow::Result<tonic::transport::Channel> {
        Ok(tls::channel_to(
            &authority(config, bound, part)?,
            SERVICE_SERVER_NAME,
            client.clone(),
        )?)
    };
    let audit = Arc::new(
        samsyn_gateway::audit::store::AuditStore::open(
            &context.database_url,
            &config.data_dir.join("certs").join(AUDIT_SIGNING_KEY),
        )
        .await?,
    );
    let upstreams = samsyn_gateway::proxy::Upstreams {
        participants: channel("participants")?,
        consent: channel("consent")?,
        plans: channel("plans")?,
        board: channel("board")?,
        reports: Some(channel("reports")?),
        audit: Some(samsyn_gateway::audit::service::in_process(Arc::clone(
            &audit,
        ))),
    };
    let mut access = config.access.clone();
    access.programme_municipalities = config
        .programme
        .programme_municipalities
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
    let gateway = samsyn_gateway::build(
        access,
        &config.data_dir.join("certs"),
        upstreams,
        audit,
        &config.limits,
    )?;
    Ok(gateway)
}

/// The gateway is ready while its database answers with the audit trail's migrations
/// applied and its access view is current (within `max_view_lag_seconds`): otherwise it
/// would refuse every decided call with `UNAVAILABLE`.
async fn gateway_readiness(
    readiness: &mut samsyn_kit::ready::Readiness,
    context: &PartContext,
    gateway: &Arc<samsyn_gateway::proxy::Gateway>,
) -> anyhow::Result<()> {
    let db =
        samsyn_kit::db::connect::<samsyn_gateway::audit::store::Migrator>(&context.database_url)
            .await?;
    readiness.add_database::<samsyn_gateway::audit::store::Migrator>(db);
    let gateway = Arc::clone(gateway);
    readiness.add("access view", move || {
        let current = gateway
            .gate()
            .view()
            .ensure_current(std::time::Instant::now())
            .map_err(|e| e.to_string());
        std::future::ready(current)
    });
    Ok(())
}

/// Starts pushing to the configured links (SIP tools), through the outbox in the gateway's
/// own database: from this replica while it holds the outbox's pusher lock. Whatever is
/// queued when it stops is sent by another replica or after the next start.
async fn start_pushes(
    context: &PartContext,
    config: &SamsynConfig,
    gateway: &Arc<samsyn_gateway::proxy::Gateway>,
) -> anyhow::Result<Option<samsyn_gateway::outbound::Pushes>> {
    let pushes = &config.access.pushes;
    if pushes.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for push in pushes {
        let link = config
            .access
            .links
            .iter()
            .find(|link| link.id == push.link)
            .with_context(|| format!("push to unknown link {}", push.link))?;
        targets.push(samsyn_gateway::outbound::PushTarget {
            link: link.clone(),
            endpoint: push.endpoint.parse()?,
            server_ca: push.server_ca.clone(),
        });
    }
    let identity = match &config.tls {
        Some(files) => samsyn_gateway::outbound::ClientIdentity {
            cert: files.cert.clone(),
            key: files.key.clone(),
        },
        None => {
            let pki = DevPki::at(config.data_dir.join("certs"));
            samsyn_gateway::outbound::ClientIdentity {
                cert: pki.cert(samsyn_gateway::NAME),
                key: pki.key(samsyn_gateway::NAME),
            }
        }
    };
    let db = samsyn_kit::db::connect::<samsyn_outbox::Migrator>(&context.database_url).await?;
    let outbox = samsyn_outbox::Outbox::open(db).await?;
    let running = samsyn_gateway::outbound::start(
        Arc::clone(gateway),
        outbox,
        targets,
        &identity,
        samsyn_outbox::DeliveryConfig::default(),
        config.outbox.takeover()?,
    )?;
    Ok(Some(running))
}

/// The name services' certificates are verified against (the development PKI's leaves carry
/// it; production certificates must too).
const SERVICE_SERVER_NAME: &str = "localhost";

/// The file of the key that signs the audit trail's checkpoints, under the certificates.
const AUDIT_SIGNING_KEY: &str = "audit-signing-key";

/// Where to reach a part listening on `listen`: an unspecified address means this host.
pub(crate) fn reachable(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if listen.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, listen.port())
    } else {
        listen
    }
}

/// The files of a part's certificate, its key and the CA bundle it trusts: production files
/// when configured, else the development PKI under the data directory.
fn tls_files(config: &SamsynConfig, name: &str) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    Ok(match &config.tls {
        Some(files) => (files.cert.clone(), files.key.clone(), files.ca_cert.clone()),
        None => {
            let pki = DevPki::at(config.data_dir.join("certs"));
            pki.ensure(&[name])?;
            (pki.cert(name), pki.key(name), pki.ca_cert())
        }
    })
}

/// How often a part looks at its certificate files for a renewal.
fn reload_interval(config: &SamsynConfig) -> std::time::Duration {
    config
        .tls
        .as_ref()
        .map_or(tls::DEFAULT_RELOAD_INTERVAL, |files| {
            std::time::Duration::from_millis(files.reload_interval_ms)
        })
}

/// The client side of `name`'s internal mutual TLS, following its files: a connection
/// opened after a renewal presents the new certificate and trusts the new bundle.
fn client_tls(
    config: &SamsynConfig,
    name: &str,
) -> anyhow::Result<tls::Reloading<rustls::ClientConfig>> {
    let (cert, key, ca) = tls_files(config, name)?;
    let paths = vec![cert.clone(), key.clone(), ca.clone()];
    let what = format!("{name} client");
    Ok(tls::watch(
        &what,
        paths,
        reload_interval(config),
        move |files| {
            tls::client_config(
                files.trust_anchors(&[&ca])?,
                Some(&files.identity(&cert, &key)?),
            )
        },
    )?)
}

/// The TLS server configuration of a part, following its files: a handshake after a
/// renewal presents the new certificate and verifies clients against the new bundle.
fn server_tls(
    config: &SamsynConfig,
    name: &str,
) -> anyhow::Result<tls::Reloading<rustls::ServerConfig>> {
    // Services take calls only from Samsyn's own components; the gateway also takes staff
    // clients, who bring a token instead of a certificate.
    let client_auth = if name == samsyn_gateway::NAME {
        ClientAuth::Optional
    } else {
        ClientAuth::Required
    };
    let (cert, key, ca) = tls_files(config, name)?;
    let mut bundles = vec![ca];
    if name == samsyn_gateway::NAME {
        // Each external system's certificate is issued by its own organisation's CA.
        for link in &config.access.links {
            tls::trust_anchors(&link.ca_cert)
                .with_context(|| format!("link {}: cannot read its ca_cert", link.id))?;
            bundles.push(link.ca_cert.clone());
        }
    }
    let mut paths = vec![cert.clone(), key.clone()];
    paths.extend(bundles.iter().cloned());
    let what = format!("{name} server");
    Ok(tls::watch(
        &what,
        paths,
        reload_interval(config),
        move |files| {
            let bundles: Vec<&Path> = bundles.iter().map(PathBuf::as_path).collect();
            tls::server_config(
                &files.identity(&cert, &key)?,
                files.trust_anchors(&bundles)?,
                client_auth,
            )
        },
    )?)
}

/// Starts `names` in this process and serves until Ctrl-C or SIGTERM.
///
/// Prints `<part> listening on https://<addr>` for each once its port accepts connections.
pub async fn run(config: SamsynConfig, names: &[&str], demo: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    if config.tls.is_none() {
        DevPki::at(config.data_dir.join("certs")).ensure(names)?;
    }
    // Listen for signals before announcing any port: a SIGTERM that arrives right after the
    // announcement must shut down gracefully, not kill the process.
    let shutdown = shutdown_signal()?;
    let (stop, stopped) = watch::channel(false);
    let mut running = JoinSet::new();
    let mut background = Vec::new();
    let mut probing = JoinSet::new();
    let mut bound = HashMap::new();
    // The consent service starts first: participants follow its feed and must know where it
    // listens (it may have picked a free port).
    let mut names = names.to_vec();
    names.sort_by_key(|name| *name != "consent");
    for name in &names {
        let part_config = config
            .part(name)
            .with_context(|| format!("unknown part {name}"))?;
        let context = PartContext {
            database_url: part_config.database_url_in(&config.data_dir, name),
            data_dir: config.data_dir.clone(),
            limits: config.limits.clone(),
        };
        if !config.migrate_on_start {
            crate::schema::check(name, &context.database_url).await?;
        }
        let (part, work) = build_part(name, &context, &config, &bound)
            .await
            .with_context(|| format!("{name} does not start"))?;
        background.push(work);
        let tls = server_tls(&config, name)?;
        let listener = samsyn_kit::serve::bind(part_config.listen)
            .await
            .with_context(|| format!("{name} cannot listen on {}", part_config.listen))?;
        let addr = listener.local_addr()?;
        if let Some(probe_listen) = part_config.probe_listen {
            let probes = samsyn_kit::serve::bind(probe_listen)
                .await
                .with_context(|| format!("{name} probes cannot listen on {probe_listen}"))?;
            let probe_addr = probes.local_addr()?;
            let mut stopped = stopped.clone();
            probing.spawn(samsyn_kit::probe::serve_probes(
                probes,
                part.readiness.clone(),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ));
            tracing::info!(part = name, addr = %probe_addr, "probes listening");
            println!("{name} probes on http://{probe_addr}");
        }
        let mut ready = part.readiness.subscribe();
        let limits = config.limits.clone();
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let name = part.name;
        bound.insert(name, addr);
        running.spawn(async move {
            let result = samsyn_kit::serve::serve(part, listener, tls, &limits, shutdown).await;
            (name, result)
        });
        // Announced once ready, so that whoever reads the line finds it serving; a part
        // that is not ready by then (a gateway whose services are down) is announced
        // anyway, and its health says NOT_SERVING until it is.
        if tokio::time::timeout(ANNOUNCE_WAIT, ready.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            tracing::warn!(part = name, "not ready yet");
        }
        tracing::info!(part = name, %addr, "listening");
        println!("{name} listening on https://{addr}");
    }
    let roster = config.data_dir.join(crate::client::ROSTER_FILE);
    if demo && !roster.exists() {
        let started = std::time::Instant::now();
        let seeded = seed_demo(&config, &bound)
            .await
            .context("demo seeding failed")?;
        std::fs::write(&roster, serde_json::to_string_pretty(&seeded)?)
            .with_context(|| format!("cannot write {}", roster.display()))?;
        println!(
            "demo programme seeded in {} ms: {} people to act as (samsyn as <who> people)",
            started.elapsed().as_millis(),
            seeded.people.len()
        );
    } else if demo {
        println!("demo programme already seeded ({})", roster.display());
    }
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        Some(finished) = running.join_next() => {
            let (name, result) = finished?;
            let _ = stop.send(true);
            result.with_context(|| format!("{name} stopped"))?;
            anyhow::bail!("{name} stopped unexpectedly");
        }
    }
    let _ = stop.send(true);
    for work in background {
        work.stop().await;
    }
    probing.abort_all();
    // In-flight calls get a grace period; a client that keeps its connection open (an idle
    // channel, a change-feed watcher) must not hold the process up beyond it.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(finished) = running.join_next().await {
            let (name, result) = finished?;
            result.with_context(|| format!("{name} did not stop cleanly"))?;
        }
        anyhow::Ok(())
    })
    .await;
    match drained {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                timeout_s = DRAIN_TIMEOUT.as_secs(),
                "connections still open, closing them"
            );
            running.abort_all();
            Ok(())
        }
    }
}

/// Seeds the demo programme into the services this process serves.
async fn seed_demo(
    config: &SamsynConfig,
    bound: &HashMap<&'static str, SocketAddr>,
) -> anyhow::Result<crate::demo::Roster> {
    const SEEDER: &str = "samsyn-demo";
    let pki = DevPki::at(config.data_dir.join("certs"));
    pki.ensure(&[SEEDER])?;
    let client = tls::client_config(pki.trust_anchors()?, Some(&pki.identity(SEEDER)?))?;
    let channel = |part: &str| -> anyhow::Result<tonic::transport::Channel> {
        let addr = bound
            .get(part)
            .copied()
            .with_context(|| format!("{part} is not served here"))?;
        Ok(tls::channel(
            reachable(addr),
            SERVICE_SERVER_NAME,
            client.clone(),
        )?)
    };
    let channels = crate::demo::DemoChannels {
        participants: channel("participants")?,
        consent: channel("consent")?,
        plans: channel("plans")?,
        board: channel("board")?,
    };
    crate::demo::seed(&channels).await
}

/// How long a part may take to turn ready before it is announced regardless.
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long shutdown waits for open calls and connections.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on Ctrl-C or SIGTERM; the handlers are installed when this is called.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_part_in_another_process_is_reached_at_its_address() {
        let mut config = SamsynConfig::default();
        config.consent.listen = "0.0.0.0:7402".parse().unwrap();
        config.consent.address = Some("consent:7402".to_owned());
        let mut bound = HashMap::new();
        assert_eq!(
            authority(&config, &bound, "consent").unwrap(),
            "consent:7402"
        );
        assert_eq!(
            authority(&config, &bound, "plans").unwrap(),
            "127.0.0.1:7403",
            "no address: its listen address on this host"
        );
        bound.insert("consent", "0.0.0.0:9999".parse().unwrap());
        assert_eq!(
            authority(&config, &bound, "consent").unwrap(),
            "127.0.0.1:9999",
            "served here: where it listens"
        );
        assert!(authority(&config, &bound, "nowhere").is_err());
    }
}
