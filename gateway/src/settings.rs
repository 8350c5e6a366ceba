//! The gateway's configuration (`[access]` in `samsyn.toml`): whose data is whose, where
//! tokens and policies come from, the external links, and how stale the access view may be.

use std::path::PathBuf;
use std::time::Duration;

use samsyn_proto::common::v1::DataCategory;
use serde::{Deserialize, Serialize};

use crate::auth::IssuerSettings;
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

/// One key page tokens are sealed with: a secret every gateway replica shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageTokenKey {
    /// Its id (1–255), carried in each token so that keys rotate without breaking tokens in
    /// flight.
    pub id: u8,
    /// A file holding 32 random bytes, base64 (`openssl rand -base64 32`, or any CSPRNG).
    pub secret_file: PathBuf,
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

/// The web board's login at one of the trusted issuers: OpenID Connect authorization code
/// with PKCE (`[access.web_login]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebLoginSettings {
    /// The issuer people log in at: the `issuer` of one of `[[access.issuers]]`, whose
    /// `ca_cert` its endpoints are trusted by and whose claim mapping makes the principal.
    pub issuer: String,
    /// The board's client id at that issuer.
    pub client_id: String,
    /// A file holding the client's secret, for a confidential client
    /// (`client_secret_basic`); absent means a public client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Where the issuer sends the browser back: the gateway's public
    /// `https://<host>/board/callback`, registered at the issuer exactly so; absent means
    /// derived from the host name the browser used (the issuer still accepts only what is
    /// registered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Scopes asked for besides `openid` (the one the issuer grants Samsyn's audience for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// Longest client id or scope accepted.
const MAX_WEB_LOGIN_VALUE: usize = 256;

impl WebLoginSettings {
    /// The first setting that cannot work, as `(field, reason)`, given the trusted
    /// `issuers`.
    pub fn check(&self, issuers: &[IssuerSettings]) -> Result<(), (String, String)> {
        let invalid =
            |field: &str, reason: &str| Err((format!("access.web_login.{field}"), reason.into()));
        match issuers.iter().find(|i| i.issuer == self.issuer) {
            None => {
                return invalid(
                    "issuer",
                    "must be the issuer of an [[access.issuers]] entry",
                );
            }
            Some(issuer) if issuer.ca_cert.is_none() || issuer.jwks_file.is_some() => {
                return invalid(
                    "issuer",
                    "must be an issuer found by discovery over HTTPS (with ca_cert, no jwks_file)",
                );
            }
            Some(_) => {}
        }
        let token = |value: &str| {
            !value.is_empty()
                && value.len() <= MAX_WEB_LOGIN_VALUE
                && value.bytes().all(|b| b.is_ascii_graphic())
        };
        if !token(&self.client_id) {
            return invalid(
                "client_id",
                "must be the board's client id (printable ASCII)",
            );
        }
        match self.redirect_uri.as_deref().map(str::parse::<http::Uri>) {
            None => {}
            Some(Ok(uri))
                if uri.scheme_str() == Some("https")
                    && uri.host().is_some()
                    && uri.path() == "/board/callback"
                    && uri.query().is_none() => {}
            Some(_) => {
                return invalid(
                    "redirect_uri",
                    "must be https://<the gateway's public host>/board/callback",
                );
            }
        }
        if self.scopes.iter().any(|scope| !token(scope)) {
            return invalid("scopes", "each a scope name without spaces");
        }
        Ok(())
    }

    /// The client secret from `client_secret_file`, if one is configured.
    pub fn read_client_secret(&self) -> Result<Option<String>, (String, String)> {
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        let invalid = |reason: String| ("access.web_login.client_secret_file".to_owned(), reason);
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let secret = text.trim();
        if secret.is_empty() || secret.len() > 1024 {
            return Err(invalid(format!("{}: must hold the secret", path.display())));
        }
        Ok(Some(secret.to_owned()))
    }
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
    /// The trusted token issuers: the region's and each municipality's identity provider.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerSettings>,
    /// The web board's login at one of `issuers`; absent means no browser login (but the
    /// development login under `samsyn up`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_login: Option<WebLoginSettings>,
    /// Whether the development issuer whose key lives in the data directory (`samsyn token`)
    /// is trusted too: for `samsyn up` and tests, never in production. Without it and
    /// without issuers the gateway does not start.
    pub development_issuer: bool,
    /// Page token keys, the first sealing and all opening; absent means a key of the
    /// process's own (tokens then work on this replica only, until it restarts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub page_token_keys: Vec<PageTokenKey>,
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
            issuers: Vec::new(),
            web_login: None,
            development_issuer: false,
            page_token_keys: Vec::new(),
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

    /// The page token keys, read from their files: `(id, key)`, the sealing key first.
    pub fn read_page_token_keys(
        &self,
    ) -> Result<Vec<crate::page_token::KeyById>, (String, String)> {
        use base64::Engine;
        self.page_token_keys
            .iter()
            .map(|key| {
                let invalid =
                    |reason: String| ("access.page_token_keys.secret_file".to_owned(), reason);
                let text = std::fs::read_to_string(&key.secret_file)
                    .map_err(|e| invalid(format!("{}: {e}", key.secret_file.display())))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim())
                    })
                    .map_err(|_| invalid(format!("{}: not base64", key.secret_file.display())))?;
                let secret: [u8; crate::page_token::KEY_LEN] = bytes.try_into().map_err(|_| {
                    invalid(format!("{}: must hold 32 bytes", key.secret_file.display()))
                })?;
                Ok((key.id, secret))
            })
            .collect()
    }

    /// Whether any token issuer is trusted, as `(field, reason)` when none is: a gateway
    /// never silently trusts the development key.
    pub fn check_trust(&self) -> Result<(), (String, String)> {
        if self.issuers.is_empty() && !self.development_issuer {
            return Err((
                "access.issuers".into(),
                "no token issuer configured: add an [[access.issuers]] entry (see the README), \
                 or for development only set access.development_issuer = true"
                    .into(),
            ));
        }
        Ok(())
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
        let mut names = std::collections::HashSet::new();
        for issuer in &self.issuers {
            issuer.check()?;
            if !names.insert(&issuer.issuer) {
                return invalid("issuers.issuer", "each issuer once");
            }
        }
        if let Some(web_login) = &self.web_login {
            web_login.check(&self.issuers)?;
        }
        let mut key_ids = std::collections::HashSet::new();
        for key in &self.page_token_keys {
            if key.id == 0 {
                return invalid("page_token_keys.id", "must be between 1 and 255");
            }
            if !key_ids.insert(key.id) {
                return invalid("page_token_keys.id", "each key id once");
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

    fn with_issuer(change: impl FnOnce(&mut serde_json::Value)) -> AccessSettings {
        let mut issuer = serde_json::json!({
            "issuer": "https://idp.region.example", "audience": "samsyn",
            "ca_cert": "idp-ca.pem", "organisations": ["SE2321000255"],
        });
        change(&mut issuer);
        AccessSettings {
            issuers: vec![serde_json::from_value(issuer).unwrap()],
            ..AccessSettings::default()
        }
    }

    #[test]
    fn an_issuer_defaults_to_three_algorithms_thirty_seconds_and_twelve_hours() {
        let settings = with_issuer(|_| {});
        assert_eq!(settings.check(), Ok(()));
        let issuer = &settings.issuers[0];
        assert_eq!(issuer.limits(), crate::auth::TokenLimits::default());
        assert_eq!(issuer.limits().max_lifetime_seconds, 12 * 60 * 60);
        assert_eq!(issuer.algorithms().len(), 3);
        assert_eq!(issuer.claims.subject, "sub");
    }

    #[test]
    fn no_issuer_at_all_is_refused_unless_in_development() {
        let (field, reason) = AccessSettings::default().check_trust().unwrap_err();
        assert_eq!(field, "access.issuers");
        assert!(reason.contains("development_issuer"), "{reason}");
        let development = AccessSettings {
            development_issuer: true,
            ..AccessSettings::default()
        };
        assert_eq!(development.check_trust(), Ok(()));
        assert_eq!(with_issuer(|_| {}).check_trust(), Ok(()));
    }

    #[test]
    fn a_web_login_is_refused_naming_the_key_unless_it_can_work() {
        use serde_json::json;
        let good = json!({
            "issuer": "https://idp.region.example", "client_id": "samsyn-board",
            "redirect_uri": "https://samsyn.region.example/board/callback",
        });
        let web_login = |change: serde_json::Value| {
            let mut value = good.clone();
            for (key, v) in change.as_object().unwrap() {
                value[key] = v.clone();
            }
            AccessSettings {
                web_login: Some(serde_json::from_value(value).unwrap()),
                ..with_issuer(|_| {})
            }
        };
        assert_eq!(web_login(json!({})).check(), Ok(()));
        for (change, field) in [
            (
                json!({"issuer": "https://other.example"}),
                "access.web_login.issuer",
            ),
            (json!({"client_id": ""}), "access.web_login.client_id"),
            (json!({"client_id": "a b"}), "access.web_login.client_id"),
            (
                json!({"redirect_uri": "http://samsyn.example/board/callback"}),
                "access.web_login.redirect_uri",
            ),
            (
                json!({"redirect_uri": "https://samsyn.example/board/"}),
                "access.web_login.redirect_uri",
            ),
            (json!({"scopes": ["a b"]}), "access.web_login.scopes"),
        ] {
            assert_eq!(
                web_login(change.clone()).check().unwrap_err().0,
                field,
                "{change}"
            );
        }
        let mut keys_from_file = web_login(json!({}));
        keys_from_file.issuers[0].jwks_file = Some("keys.json".into());
        assert_eq!(
            keys_from_file.check().unwrap_err().0,
            "access.web_login.issuer"
        );
        let missing = WebLoginSettings {
            client_secret_file: Some("/nonexistent/secret".into()),
            ..serde_json::from_value(good).unwrap()
        };
        assert_eq!(
            missing.read_client_secret().unwrap_err().0,
            "access.web_login.client_secret_file"
        );
    }

    #[test]
    fn issuer_settings_out_of_range_are_refused_naming_the_key() {
        use serde_json::json;
        for (change, field) in [
            (
                json!({"leeway_seconds": 301}),
                "access.issuers.leeway_seconds",
            ),
            (
                json!({"max_lifetime_seconds": 59}),
                "access.issuers.max_lifetime_seconds",
            ),
            (
                json!({"max_lifetime_seconds": 86_401}),
                "access.issuers.max_lifetime_seconds",
            ),
            (
                json!({"algorithms": ["HS256"]}),
                "access.issuers.algorithms",
            ),
            (json!({"algorithms": ["none"]}), "access.issuers.algorithms"),
            (json!({"organisations": []}), "access.issuers.organisations"),
            (
                json!({"issuer": "http://idp.example"}),
                "access.issuers.issuer",
            ),
            (json!({"ca_cert": null}), "access.issuers.ca_cert"),
            (
                json!({"refresh_seconds": 5}),
                "access.issuers.refresh_seconds",
            ),
        ] {
            let settings = with_issuer(|issuer| {
                for (key, value) in change.as_object().unwrap() {
                    issuer[key] = value.clone();
                }
            });
            assert_eq!(settings.check().unwrap_err().0, field, "{change}");
        }
    }
}
