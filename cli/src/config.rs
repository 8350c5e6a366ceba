//! The launcher's configuration: every part's address and database, TLS, limits, telemetry.

use std::collections::HashSet;
use std::path::PathBuf;

use samsyn_kit::config::{ConfigError, Limits, PartConfig, TelemetryConfig, Validate};
use serde::{Deserialize, Serialize};

/// Every part `samsyn up` starts, services first (the gateway connects to them), consent
/// before participants (which follow its feed); reports after the four services whose
/// feeds it follows.
pub const PARTS: [&str; 6] = [
    "consent",
    "participants",
    "plans",
    "board",
    "reports",
    "gateway",
];

/// Certificate files for production; without them the development PKI is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that issues Samsyn's internal certificates (and verifies clients).
    pub ca_cert: PathBuf,
    /// This part's certificate chain.
    pub cert: PathBuf,
    /// This part's private key.
    pub key: PathBuf,
    /// How often (ms) the part looks at these files for a renewal; new handshakes use the
    /// renewed files, open connections keep theirs.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_reload_interval_ms() -> u64 {
    u64::try_from(samsyn_kit::tls::DEFAULT_RELOAD_INTERVAL.as_millis()).unwrap_or(5_000)
}

/// Bounds of `tls.reload_interval_ms`: often enough to matter, rarely enough to cost nothing.
const RELOAD_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// `[outbox]`: of several gateway replicas on one database, one pushes at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// Seconds within which another replica takes over pushing after the pusher dies
    /// (at least 3).
    pub takeover_seconds: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            takeover_seconds: samsyn_outbox::Takeover::DEFAULT.as_secs(),
        }
    }
}

impl OutboxSettings {
    /// The takeover bound.
    pub fn takeover(&self) -> Result<samsyn_outbox::Takeover, ConfigError> {
        samsyn_outbox::Takeover::within(std::time::Duration::from_secs(self.takeover_seconds))
            .map_err(|_| ConfigError::Invalid {
                field: "outbox.takeover_seconds".into(),
                reason: format!(
                    "at least {} seconds",
                    samsyn_outbox::Takeover::MIN.as_secs()
                ),
            })
    }
}

/// `samsyn.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamsynConfig {
    /// Where SQLite files and development certificates live.
    pub data_dir: PathBuf,
    /// Whether a part applies its pending migrations when it starts. `samsyn up` always
    /// does; under `samsyn serve` with `false` (as on Kubernetes, where `samsyn migrate` is a
    /// step of its own) a part refuses to start on a schema that is not its binary's.
    pub migrate_on_start: bool,
    /// The gateway: the only door for clients and external systems.
    pub gateway: PartConfig,
    /// The participants service.
    pub participants: PartConfig,
    /// The consent service.
    pub consent: PartConfig,
    /// The plans service.
    pub plans: PartConfig,
    /// The board service.
    pub board: PartConfig,
    /// The reports service.
    pub reports: PartConfig,
    /// How reports protect small cells.
    pub reporting: samsyn_reports::ReportingConfig,
    /// The programme: review rule, programme municipalities, yearly target, criteria.
    pub programme: samsyn_participants::ParticipantsSettings,
    /// The gateway's access control: data owners, tokens, policies, external links.
    pub access: samsyn_gateway::settings::AccessSettings,
    /// Production certificates for `samsyn serve`; absent means the development PKI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// The gateway's outbox of pushes: how replicas share it.
    pub outbox: OutboxSettings,
    /// Request limits for every part.
    pub limits: Limits,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
}

impl Default for SamsynConfig {
    fn default() -> Self {
        Self {
            data_dir: samsyn_kit::config::default_data_dir(),
            migrate_on_start: true,
            gateway: PartConfig::local(7400),
            participants: PartConfig::local(7401),
            consent: PartConfig::local(7402),
            plans: PartConfig::local(7403),
            board: PartConfig::local(7404),
            reports: PartConfig::local(7405),
            reporting: samsyn_reports::ReportingConfig::default(),
            programme: samsyn_participants::ParticipantsSettings::default(),
            access: samsyn_gateway::settings::AccessSettings::default(),
            tls: None,
            outbox: OutboxSettings::default(),
            limits: Limits::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl SamsynConfig {
    /// The configuration of one part by name.
    pub fn part(&self, name: &str) -> Option<&PartConfig> {
        match name {
            "gateway" => Some(&self.gateway),
            "participants" => Some(&self.participants),
            "consent" => Some(&self.consent),
            "plans" => Some(&self.plans),
            "board" => Some(&self.board),
            "reports" => Some(&self.reports),
            _ => None,
        }
    }
}

impl Validate for SamsynConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        self.telemetry.validate()?;
        self.outbox.takeover()?;
        if let Some(tls) = &self.tls
            && !RELOAD_INTERVAL_MS.contains(&tls.reload_interval_ms)
        {
            return Err(ConfigError::Invalid {
                field: "tls.reload_interval_ms".into(),
                reason: format!(
                    "must be {} to {}",
                    RELOAD_INTERVAL_MS.start(),
                    RELOAD_INTERVAL_MS.end()
                ),
            });
        }
        self.access
            .check()
            .map_err(|(field, reason)| ConfigError::Invalid { field, reason })?;
        if self.programme.programme_municipalities.is_empty() {
            // Every referral would be refused as living outside the programme area.
            return Err(ConfigError::Invalid {
                field: "programme.programme_municipalities".into(),
                reason: "name at least one municipality".into(),
            });
        }
        if !(2..=100).contains(&self.reporting.suppression_threshold) {
            return Err(ConfigError::Invalid {
                field: "reporting.suppression_threshold".into(),
                reason: "must be 2 to 100".into(),
            });
        }
        let mut ports = HashSet::new();
        for name in PARTS {
            let Some(part) = self.part(name) else {
                continue;
            };
            let port = part.listen.port();
            if port != 0 && !ports.insert((part.listen.ip(), port)) {
                return Err(ConfigError::Invalid {
                    field: format!("{name}.listen"),
                    reason: format!("{} is used by another part", part.listen),
                });
            }
            if let Some(url) = &part.database_url
                && !(url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.starts_with("sqlite:"))
            {
                return Err(ConfigError::Invalid {
                    field: format!("{name}.database_url"),
                    reason: "must be a postgres:// or sqlite: URL".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_example_links_load() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/links/example.toml");
        let config: SamsynConfig =
            samsyn_kit::config::load(Some(Path::new(example)), pairs(&[])).unwrap();
        let kinds: Vec<_> = config.access.links.iter().map(|l| l.kind.role()).collect();
        assert_eq!(
            kinds,
            ["journal_system", "municipal_case_system", "sip_tool"]
        );
        assert_eq!(config.access.pushes[0].link, "sip-tool");
    }

    #[test]
    fn the_kubernetes_configuration_loads() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/kubernetes/base/samsyn.toml"
        );
        let config: SamsynConfig =
            samsyn_kit::config::load(Some(Path::new(file)), pairs(&[])).unwrap();
        assert!(!config.migrate_on_start, "migrations are the Job's step");
        assert_eq!(config.plans.address.as_deref(), Some("plans:7403"));
        assert!(
            config.tls.is_some(),
            "cert-manager's files, not the development CA"
        );
        assert_eq!(config.access.issuers.len(), 1);
    }

    #[test]
    fn a_push_to_no_configured_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("samsyn.toml");
        std::fs::write(
            &file,
            "[[access.pushes]]\nlink = \"nowhere\"\nendpoint = \"https://x.example/fhir\"\n\
             server_ca = \"ca.pem\"\n",
        )
        .unwrap();
        let err = samsyn_kit::config::load::<SamsynConfig>(Some(&file), pairs(&[])).unwrap_err();
        assert!(err.to_string().contains("access.pushes.link"), "{err}");
    }

    #[test]
    fn the_tls_reload_interval_has_a_default_and_bounds() {
        let tls = [
            ("SAMSYN_TLS__CA_CERT", "/tls/ca.crt"),
            ("SAMSYN_TLS__CERT", "/tls/tls.crt"),
            ("SAMSYN_TLS__KEY", "/tls/tls.key"),
        ];
        let config: SamsynConfig = samsyn_kit::config::load(None, pairs(&tls)).unwrap();
        assert_eq!(config.tls.unwrap().reload_interval_ms, 5_000);
        let too_often = [tls.as_slice(), &[("SAMSYN_TLS__RELOAD_INTERVAL_MS", "10")]].concat();
        let err = samsyn_kit::config::load::<SamsynConfig>(None, pairs(&too_often)).unwrap_err();
        assert!(err.to_string().contains("tls.reload_interval_ms"), "{err}");
    }

    #[test]
    fn defaults_are_fixed_distinct_ports() {
        let config: SamsynConfig = samsyn_kit::config::load(None, pairs(&[])).unwrap();
        assert_eq!(config.gateway.listen.port(), 7400);
        assert_eq!(config.board.listen.port(), 7404);
        assert_eq!(config.data_dir, PathBuf::from("./samsyn-data"));
    }

    #[test]
    fn ports_and_databases_come_from_the_environment() {
        let config: SamsynConfig = samsyn_kit::config::load(
            None,
            pairs(&[
                ("SAMSYN_CONSENT__LISTEN", "127.0.0.1:9002"),
                ("SAMSYN_CONSENT__DATABASE_URL", "postgres://db/consent"),
            ]),
        )
        .unwrap();
        assert_eq!(config.consent.listen.port(), 9002);
        assert_eq!(
            config.consent.database_url.as_deref(),
            Some("postgres://db/consent")
        );
    }

    #[test]
    fn two_parts_on_one_port_are_refused() {
        let err = samsyn_kit::config::load::<SamsynConfig>(
            None,
            pairs(&[("SAMSYN_PLANS__LISTEN", "127.0.0.1:7401")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn the_programme_comes_from_the_file_and_must_name_a_municipality() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("samsyn.toml");
        std::fs::write(
            &file,
            "[programme]\nreview_rule = \"both_must_agree\"\nprogramme_municipalities = [\"1280\", \"1283\"]\nyearly_target = 45\n",
        )
        .unwrap();
        let config: SamsynConfig = samsyn_kit::config::load(Some(&file), pairs(&[])).unwrap();
        assert_eq!(
            config.programme.review_rule,
            samsyn_participants::ReviewRule::BothMustAgree
        );
        assert_eq!(config.programme.yearly_target, 45);
        assert_eq!(config.programme.programme_municipalities.len(), 2);
        assert!(config.programme.diagnosis_criteria_required, "default kept");

        std::fs::write(&file, "[programme]\nprogramme_municipalities = []\n").unwrap();
        let err = samsyn_kit::config::load::<SamsynConfig>(Some(&file), pairs(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("programme.programme_municipalities"),
            "{err}"
        );
        std::fs::write(&file, "[programme]\nprogramme_municipalities = [\"12\"]\n").unwrap();
        assert!(samsyn_kit::config::load::<SamsynConfig>(Some(&file), pairs(&[])).is_err());
    }

    #[test]
    fn the_pusher_takeover_time_is_configured_and_bounded() {
        let config: SamsynConfig =
            samsyn_kit::config::load(None, pairs(&[("SAMSYN_OUTBOX__TAKEOVER_SECONDS", "6")]))
                .unwrap();
        assert_eq!(
            config.outbox.takeover().unwrap().bound(),
            std::time::Duration::from_secs(6)
        );
        let err = samsyn_kit::config::load::<SamsynConfig>(
            None,
            pairs(&[("SAMSYN_OUTBOX__TAKEOVER_SECONDS", "1")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outbox.takeover_seconds"), "{err}");
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused() {
        let err = samsyn_kit::config::load::<SamsynConfig>(
            None,
            pairs(&[("SAMSYN_BOARD__DATABASE_URL", "mysql://db/board")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("board.database_url"), "{err}");
    }
}
