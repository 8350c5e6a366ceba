//! Typed configuration: defaults, then a TOML file, then `SAMSYN_` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The prefix of the environment variables that override configuration.
pub const ENV_PREFIX: &str = "SAMSYN_";

/// `SAMSYN_` variables that are not configuration keys: the config file's path, and the
/// test suite's own settings (`SAMSYN_TEST_DATABASE_URL`).
const NOT_CONFIGURATION: [&str; 2] = ["CONFIG", "TEST_"];

/// Configuration that does not load or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source did not parse or did not fit the expected shape.
    #[error("configuration does not load: {0}")]
    Load(#[from] Box<figment::Error>),
    /// The values loaded but break a rule.
    #[error("configuration is invalid: {field}: {reason}")]
    Invalid {
        /// The dotted path of the offending value.
        field: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Configuration that checks its own values once, at start.
pub trait Validate {
    /// Returns the first rule the values break.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T` from its defaults, then `file` (if given), then the `SAMSYN_` variables in `env`.
///
/// Nested keys in variables are separated by a double underscore:
/// `SAMSYN_TELEMETRY__OTLP_ENDPOINT` sets `telemetry.otlp_endpoint`. Callers pass
/// `std::env::vars()`; tests pass their own pairs.
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError::Invalid {
                field: "config file".into(),
                reason: format!("{} does not exist", file.display()),
            });
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    let mut env = env_dict(env);
    // Variables are text. Where the field wants a number or a boolean, the text is read as
    // one and the extraction retried; guessing up front would turn a municipality code such
    // as "1280" into a number that a text field refuses.
    loop {
        let error = match figment
            .clone()
            .merge(Serialized::globals(&env))
            .extract::<T>()
        {
            Ok(config) => {
                config.validate()?;
                return Ok(config);
            }
            Err(error) => error,
        };
        let mut retyped = false;
        for failure in error.clone() {
            if let figment::error::Kind::InvalidType(figment::error::Actual::Str(text), _) =
                &failure.kind
                && let Some(typed) = typed_scalar(text)
            {
                retyped |= replace_at(&mut env, &failure.path, text, typed);
            }
        }
        if !retyped {
            return Err(ConfigError::Load(Box::new(error)));
        }
    }
}

/// Reads text as a boolean or number, if it is one.
fn typed_scalar(text: &str) -> Option<Value> {
    if let Ok(flag) = text.parse::<bool>() {
        return Some(Value::from(flag));
    }
    if let Ok(number) = text.parse::<u64>() {
        return Some(Value::from(number));
    }
    if let Ok(number) = text.parse::<i64>() {
        return Some(Value::from(number));
    }
    text.parse::<f64>().ok().map(Value::from)
}

/// Replaces the text value at `path` with `typed`, if the text is what is there.
fn replace_at(dict: &mut Dict, path: &[String], text: &str, typed: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = dict;
    for key in parents {
        match current.get_mut(key) {
            Some(Value::Dict(_, inner)) => current = inner,
            _ => return false,
        }
    }
    match current.get_mut(last) {
        Some(value @ Value::String(..)) if value.as_str() == Some(text) => {
            *value = typed;
            true
        }
        _ => false,
    }
}

/// Turns `SAMSYN_A__B=v` pairs into a nested dictionary `{a: {b: v}}`.
fn env_dict(env: impl IntoIterator<Item = (String, String)>) -> Dict {
    let mut dict = Dict::new();
    for (key, value) in env {
        let Some(key) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if NOT_CONFIGURATION
            .iter()
            .any(|reserved| key.starts_with(reserved))
        {
            continue;
        }
        let path = key.to_ascii_lowercase().replace("__", ".");
        if path.is_empty() {
            continue;
        }
        let value = Value::from(value);
        if let Some(nested) = figment::util::nest(&path, value).into_dict() {
            dict = merge(dict, nested);
        }
    }
    dict
}

fn merge(mut into: Dict, from: Dict) -> Dict {
    for (key, value) in from {
        let merged = match (into.remove(&key), value) {
            (Some(Value::Dict(_, a)), Value::Dict(tag, b)) => Value::Dict(tag, merge(a, b)),
            (_, value) => value,
        };
        into.insert(key, merged);
    }
    into
}

/// Where one part listens and keeps its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartConfig {
    /// The address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// A PostgreSQL URL; when absent the part keeps an SQLite file under the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Where to answer plain-HTTP `/livez` and `/readyz` probes (no TLS, no data); off
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_listen: Option<SocketAddr>,
    /// Where other processes reach this part (`host:port`, e.g. its Kubernetes Service);
    /// absent means its `listen` address (on this host when that is unspecified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl PartConfig {
    /// A part listening on `127.0.0.1:<port>` with the embedded database.
    pub fn local(port: u16) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: None,
            probe_listen: None,
            address: None,
        }
    }

    /// The database URL to use: the configured one, or an SQLite file named after the part.
    pub fn database_url_in(&self, data_dir: &Path, part: &str) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => crate::db::sqlite_url(&data_dir.join(format!("{part}.db"))),
        }
    }
}

/// Limits that protect every part from oversized or endless requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request message, in bytes.
    pub max_request_bytes: usize,
    /// Deadline for a unary call when the caller sets none (a shorter `grpc-timeout` wins).
    pub default_deadline_ms: u64,
    /// Concurrent requests per connection.
    pub max_concurrent_requests_per_connection: usize,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout_ms: u64,
    /// Connections a part holds open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed. HTTP/1.1 has no pings, so a
    /// request awaiting its answer is silent: this must be longer than the default deadline.
    pub idle_timeout_ms: u64,
    /// Silence after which the server pings an HTTP/2 client; its answer counts as activity,
    /// so this must be at most half the idle timeout.
    pub keepalive_interval_ms: u64,
    /// Time an HTTP/2 client has to answer a ping before its connection is closed.
    pub keepalive_timeout_ms: u64,
}

/// The largest accepted `limits.max_connections`.
const MAX_CONNECTIONS: usize = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            default_deadline_ms: 10_000,
            max_concurrent_requests_per_connection: 256,
            handshake_timeout_ms: 5_000,
            max_connections: 1024,
            idle_timeout_ms: 30_000,
            keepalive_interval_ms: 10_000,
            keepalive_timeout_ms: 10_000,
        }
    }
}

impl Limits {
    /// The default deadline as a duration.
    pub fn default_deadline(&self) -> Duration {
        Duration::from_millis(self.default_deadline_ms)
    }

    /// The handshake timeout as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The HTTP/2 keep-alive interval as a duration.
    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms)
    }

    /// The HTTP/2 keep-alive timeout as a duration.
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }
}

impl Validate for Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("limits.{field}"),
                reason: reason.into(),
            })
        };
        if self.max_request_bytes == 0 || self.max_request_bytes > 64 * 1024 * 1024 {
            return invalid("max_request_bytes", "must be between 1 byte and 64 MiB");
        }
        if self.default_deadline_ms == 0 {
            return invalid("default_deadline_ms", "must be positive");
        }
        if self.max_concurrent_requests_per_connection == 0 {
            return invalid("max_concurrent_requests_per_connection", "must be positive");
        }
        if self.handshake_timeout_ms == 0 {
            return invalid("handshake_timeout_ms", "must be positive");
        }
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS {
            return invalid("max_connections", "must be between 1 and 1000000");
        }
        if self.idle_timeout_ms <= self.default_deadline_ms {
            return invalid("idle_timeout_ms", "must be longer than default_deadline_ms");
        }
        if self.keepalive_interval_ms == 0
            || self.keepalive_interval_ms.saturating_mul(2) > self.idle_timeout_ms
        {
            return invalid(
                "keepalive_interval_ms",
                "must be positive and at most half of idle_timeout_ms",
            );
        }
        if self.keepalive_timeout_ms == 0 {
            return invalid("keepalive_timeout_ms", "must be positive");
        }
        Ok(())
    }
}

/// How a part reports traces and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector endpoint; nothing is exported when absent and
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is unset too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces to sample (parent decisions are followed).
    pub sample_ratio: f64,
    /// Log lines as JSON objects instead of text.
    pub json_logs: bool,
    /// A `tracing` filter directive, e.g. `info,samsyn_kit=debug`.
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            json_logs: false,
            log_filter: "info".into(),
        }
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::Invalid {
                field: "telemetry.sample_ratio".into(),
                reason: "must be between 0 and 1".into(),
            });
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                field: "telemetry.otlp_endpoint".into(),
                reason: "must be an http:// or https:// URL".into(),
            });
        }
        Ok(())
    }
}

/// The default data directory of `samsyn up`.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./samsyn-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        organisation_code: String,
        port: u16,
        limits: Limits,
        telemetry: TelemetryConfig,
    }

    impl Validate for Sample {
        fn validate(&self) -> Result<(), ConfigError> {
            self.limits.validate()?;
            self.telemetry.validate()
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("samsyn.toml");
        std::fs::write(
            &file,
            "organisation_code = \"1280\"\nport = 7000\n[limits]\nmax_request_bytes = 2048\n",
        )
        .unwrap();
        let config: Sample = load(
            Some(&file),
            pairs(&[
                ("SAMSYN_PORT", "7100"),
                ("SAMSYN_TELEMETRY__JSON_LOGS", "true"),
                ("OTHER_PORT", "1"),
                ("SAMSYN_CONFIG", "/etc/samsyn.toml"),
                ("SAMSYN_TEST_DATABASE_URL", "postgres://x/test"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.organisation_code, "1280",
            "numeric-looking text stays text"
        );
        assert_eq!(config.port, 7100, "environment wins over the file");
        assert_eq!(
            config.limits.max_request_bytes, 2048,
            "file wins over defaults"
        );
        assert_eq!(
            config.limits.default_deadline_ms, 10_000,
            "untouched defaults remain"
        );
        assert!(config.telemetry.json_logs);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = load::<Sample>(None, pairs(&[("SAMSYN_PROT", "7100")])).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let err =
            load::<Sample>(None, pairs(&[("SAMSYN_TELEMETRY__SAMPLE_RATIO", "1.5")])).unwrap_err();
        assert!(err.to_string().contains("telemetry.sample_ratio"), "{err}");
        let err =
            load::<Sample>(None, pairs(&[("SAMSYN_LIMITS__MAX_REQUEST_BYTES", "0")])).unwrap_err();
        assert!(
            err.to_string().contains("limits.max_request_bytes"),
            "{err}"
        );
    }

    #[test]
    fn connection_limits_are_checked_against_each_other() {
        assert_eq!(Limits::default().validate().ok(), Some(()));
        let refused =
            |items: &[(&str, &str)]| load::<Sample>(None, pairs(items)).unwrap_err().to_string();
        let err = refused(&[("SAMSYN_LIMITS__MAX_CONNECTIONS", "0")]);
        assert!(err.contains("limits.max_connections"), "{err}");
        let err = refused(&[("SAMSYN_LIMITS__IDLE_TIMEOUT_MS", "10000")]);
        assert!(err.contains("limits.idle_timeout_ms"), "{err}");
        let err = refused(&[("SAMSYN_LIMITS__KEEPALIVE_INTERVAL_MS", "20000")]);
        assert!(err.contains("limits.keepalive_interval_ms"), "{err}");
        let err = refused(&[("SAMSYN_LIMITS__KEEPALIVE_TIMEOUT_MS", "0")]);
        assert!(err.contains("limits.keepalive_timeout_ms"), "{err}");
        let config: Sample = load(
            None,
            pairs(&[
                ("SAMSYN_LIMITS__MAX_CONNECTIONS", "64"),
                ("SAMSYN_LIMITS__IDLE_TIMEOUT_MS", "60000"),
                ("SAMSYN_LIMITS__KEEPALIVE_INTERVAL_MS", "30000"),
            ]),
        )
        .unwrap();
        assert_eq!(config.limits.max_connections, 64);
        assert_eq!(config.limits.idle_timeout(), Duration::from_secs(60));
        assert_eq!(config.limits.keepalive_interval(), Duration::from_secs(30));
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_default() {
        let err =
            load::<Sample>(Some(Path::new("/nonexistent/samsyn.toml")), pairs(&[])).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
