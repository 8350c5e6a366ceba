//! `samsyn status`: asks every part for its gRPC health over mutual TLS.

use std::io::Write;

use samsyn_kit::tls::{self, DevPki};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::config::{PARTS, SamsynConfig};

/// The development certificate the command presents.
const CLIENT_NAME: &str = "samsyn-cli";

/// Prints one line per part; fails when any part is not serving.
pub async fn run(config: &SamsynConfig) -> anyhow::Result<()> {
    let pki = DevPki::at(config.data_dir.join("certs"));
    pki.ensure(&[CLIENT_NAME])?;
    let client = tls::client_config(pki.trust_anchors()?, Some(&pki.identity(CLIENT_NAME)?))?;
    let mut out = std::io::stdout().lock();
    let mut all_serving = true;
    for name in PARTS {
        let Some(part) = config.part(name) else {
            continue;
        };
        let channel = tls::channel(part.listen, "localhost", client.clone())?;
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            HealthClient::new(channel).check(HealthCheckRequest::default()),
        )
        .await;
        let status = match answer {
            Ok(Ok(response)) => response.into_inner().status().as_str_name().to_owned(),
            Ok(Err(status)) => format!("DOWN ({})", status.code()),
            Err(_) => "DOWN (no answer in 5 s)".to_owned(),
        };
        all_serving &= status == "SERVING";
        writeln!(out, "{name:<13} https://{:<22} {status}", part.listen)?;
    }
    anyhow::ensure!(all_serving, "not every part is serving");
    Ok(())
}
