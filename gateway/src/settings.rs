//! The gateway's configuration (`[access]` in `samsyn.toml`): whose data is whose, where
//! tokens and policies come from, the external links, and how stale the access view may be.

use std::path::PathBuf;
use std::time::Duration;

use samsyn_proto::common::v1::DataCategory;
use serde::{Deserialize, Serialize};

use crate::auth::TokenLimits;
use crate::links::LinkConfig;

/// Who owns one category of a participant's data, and so whose consent opens it to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Kept by both principals together (the joint plan, the care team): the care team reads
    /// it without a consent between the organisations.
    Joint,
    /// The region's psychiatry (the FACT team's records).
    Region,
    /// The participant's home municipality (social services' decisions).
    HomeMunicipality,
}

/// The owner of each data category that names a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataOwners {
    /// Identity, referral, review, enrolment, discharge.
    pub enrolment: Owner,
    /// Coordinators and care team.
    pub care_team: Owner,
    /// Consents and restrictions.
    pub consent: Owner,
    /// The coordinated individual plan (SIP): by law a plan both principals draw up together.
    pub plan: Owner,
    /// Municipal decisions on applications (biståndsbeslut).
    pub decision: Owner,
    /// The FACT board: the region-run team's working record.
    pub board: Owner,
}

impl Default for DataOwners {
    fn default() -> Self {
        Self {
            enrolment: Owner::Joint,
            care_team: Owner::Joint,
            consent: Owner::Joint,
            plan: Owner::Joint,
            decision: Owner::HomeMunicipality,
            board: Owner::Region,
        }
    }
}

impl DataOwners {
    /// The owner of `category`; categories that never name a participant are joint.
    pub fn of(&self, category: DataCategory) -> Owner {
        match category {
            DataCategory::Enrolment => self.enrolment,
            DataCategory::CareTeam => self.care_team,
            DataCategory::Consent => self.consent,
            DataCategory::Plan => self.plan,
            DataCategory::Decision => self.decision,
            DataCategory::Board => self.board,
            DataCategory::Unspecified
            | DataCategory::Audit
            | DataCategory::Admin
            | DataCategory::ChangeFeed
            | DataCategory::Report => Owner::Joint,
        }
    }
}

/// Where staff tokens come from in production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// The issuer's public keys (a JWKS file).
    pub jwks_file: PathBuf,
    /// Clock difference forgiven on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// Longest accepted token lifetime (`exp - iat`), in seconds.
    #[serde(default = "default_max_lifetime_seconds")]
    pub max_lifetime_seconds: u64,
}

fn default_leeway_seconds() -> u64 {
    TokenLimits::default().leeway_seconds
}

fn default_max_lifetime_seconds() -> u64 {
    TokenLimits::default().max_lifetime_seconds
}

impl TokenSettings {
    /// The time limits tokens are checked against.
    pub fn limits(&self) -> TokenLimits {
        TokenLimits {
            leeway_seconds: self.leeway_seconds,
            max_lifetime_seconds: self.max_lifetime_seconds,
        }
    }
}

/// Where and how Samsyn pushes changes to one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// The link (its id in `links`): its organisation and allowed reads decide what it
    /// receives.
    pub link: String,
    /// The system's FHIR base URL (`https://sip-tool.example/fhir`).
    pub endpoint: String,
    /// The CA its server certificate must chain to; Samsyn sends nothing to a server it
    /// cannot verify against it.
    pub server_ca: PathBuf,
}

/// The gateway's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    /// The region organisation whose FACT team the programme runs (HSA-style id).
    pub region_organisation: String,
    /// Who owns each category of data.
    pub owners: DataOwners,
    /// A directory of Cedar policies and their schema; absent means the policies shipped
    /// in the binary (`deploy/policies/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_dir: Option<PathBuf>,
    /// The production token issuer; absent means the development issuer whose key lives in
    /// the data directory (`samsyn token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSettings>,
    /// External systems and what each may call.
    pub links: Vec<LinkConfig>,
    /// Links Samsyn pushes changes to (SIP planning tools), each through the outbox.
    pub pushes: Vec<PushSettings>,
    /// How long a change feed may go unconfirmed before decisions fail closed, in seconds.
    pub max_view_lag_seconds: u64,
    /// How long a write through the gateway waits for the access view to apply it, in ms.
    pub write_settle_timeout_ms: u64,
    /// The programme's municipalities (their organisation ids are their municipality
    /// codes); with the region, the organisations whose staff may create records that name
    /// no participant yet. Taken from `[programme]`, not from `[access]`.
    #[serde(skip)]
    pub programme_municipalities: Vec<String>,
}

/// The ten municipalities of North-West Skåne that share one FACT team (seed 001); the
/// participants service's default programme area too.
const NORTH_WEST_SKANE: [&str; 10] = [
    "1257", "1260", "1275", "1276", "1277", "1278", "1282", "1283", "1284", "1292",
];

impl AccessSettings {
    /// Whether `organisation` is one of the programme's: the region or a programme
    /// municipality.
    pub fn in_programme(&self, organisation: &str) -> bool {
        organisation == self.region_organisation
            || self
                .programme_municipalities
                .iter()
                .any(|m| m == organisation)
    }
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            // Region Skåne, whose North-West FACT team the seeds describe.
            region_organisation: "SE2321000255".into(),
            owners: DataOwners::default(),
            policy_dir: None,
            tokens: None,
            links: Vec::new(),
            pushes: Vec::new(),
            max_view_lag_seconds: 10,
            write_settle_timeout_ms: 2000,
            programme_municipalities: NORTH_WEST_SKANE.map(str::to_owned).to_vec(),
        }
    }
}

impl AccessSettings {
    /// The access view's staleness bound.
    pub fn max_view_lag(&self) -> Duration {
        Duration::from_secs(self.max_view_lag_seconds)
    }

    /// How long a write waits for the view.
    pub fn write_settle_timeout(&self) -> Duration {
        Duration::from_millis(self.write_settle_timeout_ms)
    }

    /// The first setting that cannot work, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let invalid = |field: &str, reason: &str| Err((format!("access.{field}"), reason.into()));
        if self.region_organisation.trim().is_empty() {
            return invalid("region_organisation", "must name the region organisation");
        }
        if !(3..=300).contains(&self.max_view_lag_seconds) {
            // The feeds send a heartbeat every two seconds; a bound under that reads as behind.
            return invalid("max_view_lag_seconds", "must be between 3 and 300");
        }
        if self.write_settle_timeout_ms == 0 || self.write_settle_timeout_ms > 60_000 {
            return invalid("write_settle_timeout_ms", "must be between 1 and 60000");
        }
        if let Some(tokens) = &self.tokens {
            if tokens.leeway_seconds > 300 {
                return invalid("tokens.leeway_seconds", "must be at most 300");
            }
            if !(60..=86_400).contains(&tokens.max_lifetime_seconds) {
                return invalid(
                    "tokens.max_lifetime_seconds",
                    "must be between 60 and 86400",
                );
            }
        }
        let mut pushed = std::collections::HashSet::new();
        for push in &self.pushes {
            if !self.links.iter().any(|link| link.id == push.link) {
                return invalid("pushes.link", "must name a configured link");
            }
            if !pushed.insert(&push.link) {
                return invalid("pushes.link", "one push per link");
            }
            match push.endpoint.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => {}
                _ => return invalid("pushes.endpoint", "must be an https:// URL"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_tokens(leeway_seconds: u64, max_lifetime_seconds: u64) -> AccessSettings {
        AccessSettings {
            tokens: Some(TokenSettings {
                issuer: "https://idp.example".into(),
                audience: "samsyn".into(),
                jwks_file: "jwks.json".into(),
                leeway_seconds,
                max_lifetime_seconds,
            }),
            ..AccessSettings::default()
        }
    }

    #[test]
    fn token_limits_default_to_thirty_seconds_and_twelve_hours() {
        let tokens: TokenSettings = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example", "audience": "samsyn", "jwks_file": "jwks.json",
        }))
        .unwrap();
        assert_eq!(tokens.limits(), TokenLimits::default());
        assert_eq!(tokens.limits().max_lifetime_seconds, 12 * 60 * 60);
        assert_eq!(with_tokens(30, 43_200).check(), Ok(()));
    }

    #[test]
    fn token_limits_out_of_range_are_refused_naming_the_key() {
        for (settings, field) in [
            (with_tokens(301, 43_200), "access.tokens.leeway_seconds"),
            (with_tokens(30, 59), "access.tokens.max_lifetime_seconds"),
            (
                with_tokens(30, 86_401),
                "access.tokens.max_lifetime_seconds",
            ),
        ] {
            assert_eq!(settings.check().unwrap_err().0, field);
        }
    }
}
