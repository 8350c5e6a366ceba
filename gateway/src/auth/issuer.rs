//! OpenID Connect issuers: what each may sign, how its claims map onto a principal, and its
//! signing keys, found by discovery and refreshed on an unknown key id and on a schedule.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AuthError, KeyError, Principal, PrincipalKind, TokenLimits, fetch};

/// The algorithms an issuer may sign with: no `none`, no HMAC (a public key is not a
/// secret), and only those a configuration lists.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256];

/// Longest accepted claim string (ids, roles, purposes).
const MAX_CLAIM_CHARS: usize = 128;

/// Most roles or teams in one token.
const MAX_CLAIM_LIST: usize = 32;

/// Most keys kept from one key set.
const MAX_KEYS: usize = 32;

/// Which claim holds what, for one issuer. Swedish identity providers differ: the HSA id
/// may be `sub`, `employeeHsaId` or a SAML attribute name carried over into OIDC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// The principal's id (an HSA id for staff).
    pub subject: String,
    /// `staff` or `participant`; absent means every token of this issuer is staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The organisation (vårdgivare or municipality) the person acts for.
    pub organisation: String,
    /// The care unit (vårdenhet).
    pub unit: String,
    /// Roles, a string or a list.
    pub roles: String,
    /// FACT teams, a string or a list.
    pub teams: String,
    /// The assignment purpose (uppdragets syfte).
    pub purpose: String,
    /// The token's id, for revoking one session.
    pub token_id: String,
    /// The IdP's role values and the Samsyn roles they stand for; when given, values not
    /// listed are dropped rather than passed on.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub role_values: HashMap<String, String>,
    /// The IdP's purpose values and the Samsyn purposes they stand for, likewise.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub purpose_values: HashMap<String, String>,
}

impl Default for ClaimMapping {
    /// Samsyn's own claim names (the development issuer's).
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            kind: None,
            organisation: "org".into(),
            unit: "unit".into(),
            roles: "roles".into(),
            teams: "teams".into(),
            purpose: "purpose".into(),
            token_id: "jti".into(),
            role_values: HashMap::new(),
            purpose_values: HashMap::new(),
        }
    }
}

/// The organisations an issuer may speak for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speaks {
    /// Any organisation: the development issuer only.
    ForAny,
    /// Exactly these.
    For(Vec<String>),
}

/// One trusted issuer, as configured (`[[access.issuers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The `iss` its tokens carry; also where discovery starts
    /// (`<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The `aud` its tokens must carry for Samsyn.
    pub audience: String,
    /// The CA its HTTPS endpoints' certificates chain to (discovery and keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// A key set file instead of discovery, for an issuer without HTTPS endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The algorithms accepted from it (of RS256, PS256 and ES256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The organisations it may speak for: a municipality's IdP cannot mint region staff.
    pub organisations: Vec<String>,
    /// Whether it may sign participants' own tokens (no organisation).
    #[serde(default)]
    pub participants: bool,
    /// Which claim holds what.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// How often its keys are fetched again, in seconds.
    #[serde(default = "default_refresh_seconds")]
    pub refresh_seconds: u64,
    /// The least time between two fetches caused by unknown key ids, in seconds: a flood of
    /// made-up key ids cannot turn the gateway against the identity provider.
    #[serde(default = "default_min_refresh_seconds")]
    pub min_refresh_seconds: u64,
    /// Clock difference forgiven on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// Longest accepted token lifetime (`exp - iat`), in seconds.
    #[serde(default = "default_max_lifetime_seconds")]
    pub max_lifetime_seconds: u64,
}

fn default_algorithms() -> Vec<String> {
    SUPPORTED_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect()
}

fn default_refresh_seconds() -> u64 {
    3600
}

fn default_min_refresh_seconds() -> u64 {
    30
}

fn default_leeway_seconds() -> u64 {
    TokenLimits::default().leeway_seconds
}

fn default_max_lifetime_seconds() -> u64 {
    TokenLimits::default().max_lifetime_seconds
}

impl IssuerSettings {
    /// The time limits its tokens are checked against.
    pub fn limits(&self) -> TokenLimits {
        TokenLimits {
            leeway_seconds: self.leeway_seconds,
            max_lifetime_seconds: self.max_lifetime_seconds,
        }
    }

    /// The first setting that cannot work, as `(field, reason)` under `access.issuers`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let invalid =
            |field: &str, reason: &str| Err((format!("access.issuers.{field}"), reason.into()));
        match self.issuer.parse::<http::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => {}
            _ if self.jwks_file.is_some() && !self.issuer.trim().is_empty() => {}
            _ => return invalid("issuer", "must be an https:// URL (or come with jwks_file)"),
        }
        if self.jwks_file.is_none() && self.ca_cert.is_none() {
            return invalid("ca_cert", "needed to fetch the issuer's keys over HTTPS");
        }
        if self.audience.trim().is_empty() {
            return invalid("audience", "must name Samsyn's audience");
        }
        if self.algorithms.is_empty() || self.algorithms().len() != self.algorithms.len() {
            return invalid("algorithms", "must be some of RS256, PS256, ES256");
        }
        if self.organisations.is_empty() || self.organisations.iter().any(|o| o.trim().is_empty()) {
            return invalid("organisations", "must list the organisations it speaks for");
        }
        if self.leeway_seconds > 300 {
            return invalid("leeway_seconds", "must be at most 300");
        }
        if !(60..=86_400).contains(&self.max_lifetime_seconds) {
            return invalid("max_lifetime_seconds", "must be between 60 and 86400");
        }
        if !(60..=86_400).contains(&self.refresh_seconds) {
            return invalid("refresh_seconds", "must be between 60 and 86400");
        }
        if !(1..=3600).contains(&self.min_refresh_seconds) {
            return invalid("min_refresh_seconds", "must be between 1 and 3600");
        }
        Ok(())
    }

    /// The configured algorithms that Samsyn supports.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|name| {
                SUPPORTED_ALGORITHMS
                    .into_iter()
                    .find(|a| format!("{a:?}") == *name)
            })
            .collect()
    }

    /// Whom it speaks for; `*` in the list is any organisation.
    pub fn speaks(&self) -> Speaks {
        if self.organisations.iter().any(|o| o == "*") {
            Speaks::ForAny
        } else {
            Speaks::For(self.organisations.clone())
        }
    }
}

/// One usable key: the key and the algorithm the key set pins it to, if any.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    algorithm: Option<Algorithm>,
}

/// Keys by key id.
type Keys = HashMap<String, Key>;

/// Where an issuer's keys come from.
enum KeySource {
    /// Given once (a file, the development key).
    Fixed,
    /// Discovery over HTTPS with this client configuration.
    Discovery(Arc<rustls::ClientConfig>),
}

/// A trusted issuer with its current keys.
pub struct Issuer {
    /// The issuer's `iss`.
    pub(super) name: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    speaks: Speaks,
    participants: bool,
    claims: ClaimMapping,
    pub(super) limits: TokenLimits,
    keys: RwLock<Arc<Keys>>,
    source: KeySource,
    /// Serialises fetches, holding when the last one started.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
    pub(super) refresh: Duration,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

/// What a verified token says beyond its principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mapped {
    pub principal: Principal,
    pub expires_at: u64,
    pub issued_at: Option<u64>,
    pub token_id: Option<String>,
    /// RFC 8705 `cnf.x5t#S256`: the certificate the token is bound to.
    pub bound_to: Option<String>,
}

impl Issuer {
    /// An issuer whose keys are fixed.
    pub fn fixed(
        settings: &IssuerSettings,
        speaks: Speaks,
        keys: Vec<(String, DecodingKey, Option<Algorithm>)>,
    ) -> Self {
        let mut issuer = Self::configured(settings, speaks, KeySource::Fixed);
        issuer.keys = RwLock::new(Arc::new(
            keys.into_iter()
                .map(|(kid, key, algorithm)| (kid, Key { key, algorithm }))
                .collect(),
        ));
        issuer
    }

    /// An issuer as configured: its key set file read now, or its keys found by discovery
    /// when first needed.
    pub fn from_settings(settings: &IssuerSettings) -> Result<Self, KeyError> {
        if let Some(path) = &settings.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            let set: JwkSet =
                serde_json::from_str(&text).map_err(|e| KeyError::Parse(e.to_string()))?;
            let issuer = Self::configured(settings, settings.speaks(), KeySource::Fixed);
            issuer.replace_keys(&set);
            return Ok(issuer);
        }
        let ca = settings
            .ca_cert
            .as_ref()
            .ok_or_else(|| KeyError::Parse("an issuer needs ca_cert or jwks_file".into()))?;
        let config = fetch::https_client(ca)?;
        Ok(Self::configured(
            settings,
            settings.speaks(),
            KeySource::Discovery(config),
        ))
    }

    fn configured(settings: &IssuerSettings, speaks: Speaks, source: KeySource) -> Self {
        Self {
            name: settings.issuer.clone(),
            audience: settings.audience.clone(),
            algorithms: settings.algorithms(),
            speaks,
            participants: settings.participants,
            claims: settings.claims.clone(),
            limits: settings.limits(),
            keys: RwLock::new(Arc::default()),
            source,
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh: Duration::from_secs(settings.min_refresh_seconds),
            refresh: Duration::from_secs(settings.refresh_seconds),
        }
    }

    /// The ids of the keys it holds now.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.current_keys().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether its keys are fetched (and so refreshed) rather than fixed.
    pub(super) fn discovers(&self) -> bool {
        matches!(self.source, KeySource::Discovery(_))
    }

    fn current_keys(&self) -> Arc<Keys> {
        Arc::clone(
            &self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Swaps in the usable keys of `set`: signing keys of a supported family only.
    fn replace_keys(&self, set: &JwkSet) -> usize {
        let keys: Keys = set.keys.iter().filter_map(usable).take(MAX_KEYS).collect();
        let count = keys.len();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        count
    }

    /// Fetches the keys again: always when `force`, otherwise only if `kid` is still unknown
    /// and the last fetch is older than the rate limit. Whether a fetch ran.
    pub async fn refresh(&self, kid: Option<&str>, force: bool) -> Result<bool, KeyError> {
        let KeySource::Discovery(tls) = &self.source else {
            return Ok(false);
        };
        let mut last = self.last_fetch.lock().await;
        if !force {
            if kid.is_some_and(|kid| self.current_keys().contains_key(kid)) {
                // Another call fetched it while this one waited.
                return Ok(false);
            }
            if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
                return Ok(false);
            }
        }
        *last = Some(Instant::now());
        let set = fetch_keys(&self.name, tls).await?;
        let count = self.replace_keys(&set);
        crate::metrics::key_refresh(&self.name, count);
        Ok(true)
    }

    /// Verifies `token` (whose header is `header`) with the keys held now; `UnknownKey` when
    /// its key id is not among them.
    pub(super) fn verify(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        now: u64,
    ) -> Result<Mapped, AuthError> {
        let claims = self.decode(token, header, &self.audience)?;
        self.map(&claims, now)
    }

    /// Verifies an OpenID Connect ID token (whose header is `header`) issued to the client
    /// `client_id`: its signature with the keys held now, its issuer, audience and times.
    /// Its claims, for the caller to check the `nonce`.
    pub(super) fn verify_id_token(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        client_id: &str,
        now: u64,
    ) -> Result<serde_json::Map<String, Value>, AuthError> {
        let claims = self.decode(token, header, client_id)?;
        let time = |name: &'static str| -> Result<Option<u64>, AuthError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value.as_u64().map(Some).ok_or(AuthError::Claims(name)),
            }
        };
        let expires_at = time("exp")?.ok_or(AuthError::Claims("exp"))?;
        self.limits
            .check(expires_at, time("nbf")?, time("iat")?, now)?;
        Ok(claims)
    }

    /// The claims of `token` once its algorithm, key, signature, issuer and `audience`
    /// check out (times are left to the caller, against one clock).
    fn decode(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        audience: &str,
    ) -> Result<serde_json::Map<String, Value>, AuthError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        let keys = self.current_keys();
        let key = match &header.kid {
            Some(kid) => keys.get(kid),
            None if keys.len() == 1 => keys.values().next(),
            None => None,
        }
        .ok_or(AuthError::UnknownKey)?;
        if key.algorithm.is_some_and(|pinned| pinned != header.alg) {
            return Err(AuthError::Invalid);
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&self.name]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                        AuthError::WrongIssuerOrAudience
                    }
                    _ => AuthError::Invalid,
                }
            })
    }

    /// The principal and session the verified `claims` describe at `now`.
    fn map(&self, claims: &serde_json::Map<String, Value>, now: u64) -> Result<Mapped, AuthError> {
        let time = |name: &'static str| -> Result<Option<u64>, AuthError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value.as_u64().map(Some).ok_or(AuthError::Claims(name)),
            }
        };
        let expires_at = time("exp")?.ok_or(AuthError::Claims("exp"))?;
        let issued_at = time("iat")?;
        self.limits
            .check(expires_at, time("nbf")?, issued_at, now)?;
        let mapping = &self.claims;
        let subject = one(claims, &mapping.subject, "sub")?.ok_or(AuthError::Claims("sub"))?;
        let kind = match &mapping.kind {
            None => PrincipalKind::Staff,
            Some(claim) => match one(claims, claim, "kind")?.as_deref() {
                None | Some("staff") => PrincipalKind::Staff,
                Some("participant") => PrincipalKind::Participant,
                // Systems authenticate by certificate, never by token.
                Some(_) => return Err(AuthError::Claims("kind")),
            },
        };
        let organisation = one(claims, &mapping.organisation, "org")?;
        let unit = one(claims, &mapping.unit, "unit")?;
        let purpose = translated(
            one(claims, &mapping.purpose, "purpose")?
                .into_iter()
                .collect(),
            &mapping.purpose_values,
        )
        .into_iter()
        .next();
        let roles = translated(many(claims, &mapping.roles, "roles")?, &mapping.role_values);
        let teams = many(claims, &mapping.teams, "teams")?;
        let token_id = one(claims, &mapping.token_id, "jti")?;
        match kind {
            PrincipalKind::Staff => {
                let Some(organisation) = &organisation else {
                    return Err(AuthError::Claims("org"));
                };
                if let Speaks::For(allowed) = &self.speaks
                    && !allowed.contains(organisation)
                {
                    return Err(AuthError::ForeignOrganisation);
                }
            }
            PrincipalKind::Participant => {
                if !self.participants {
                    return Err(AuthError::ForeignOrganisation);
                }
                if uuid::Uuid::parse_str(&subject).is_err() {
                    return Err(AuthError::Claims("sub"));
                }
            }
            PrincipalKind::System => return Err(AuthError::Claims("kind")),
        }
        let bound_to = match claims.get("cnf") {
            None => None,
            Some(cnf) => Some(
                cnf.get("x5t#S256")
                    .and_then(Value::as_str)
                    .filter(|t| t.len() <= MAX_CLAIM_CHARS)
                    .ok_or(AuthError::Claims("cnf"))?
                    .to_owned(),
            ),
        };
        Ok(Mapped {
            principal: Principal {
                id: subject,
                kind,
                organisation: if kind == PrincipalKind::Participant {
                    None
                } else {
                    organisation
                },
                unit,
                roles,
                teams,
                purpose,
                acting_through: None,
            },
            expires_at,
            issued_at,
            token_id,
            bound_to,
        })
    }
}

/// A key of `jwk` worth keeping: a signing key of an RSA or EC family, with its id.
fn usable(jwk: &Jwk) -> Option<(String, Key)> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(_) => return None,
    };
    use jsonwebtoken::jwk::AlgorithmParameters;
    if !matches!(
        jwk.algorithm,
        AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
    ) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((
        jwk.common.key_id.clone().unwrap_or_default(),
        Key { key, algorithm },
    ))
}

fn bounded(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= MAX_CLAIM_CHARS
}

/// The claim `name` (a top-level name, or a JSON pointer starting with `/`).
fn claim<'a>(claims: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        let mut value = claims.get(name.trim_start_matches('/').split('/').next()?)?;
        for part in name.trim_start_matches('/').split('/').skip(1) {
            value = value.get(part)?;
        }
        Some(value)
    } else {
        claims.get(name)
    }
}

/// A single-string claim.
fn one(
    claims: &serde_json::Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<Option<String>, AuthError> {
    match claim(claims, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if bounded(value) => Ok(Some(value.clone())),
        Some(_) => Err(AuthError::Claims(field)),
    }
}

/// A claim holding one string or a list of them.
fn many(
    claims: &serde_json::Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<Vec<String>, AuthError> {
    let values: Vec<&Value> = match claim(claims, name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(values)) => values.iter().collect(),
        Some(value) => vec![value],
    };
    if values.len() > MAX_CLAIM_LIST {
        return Err(AuthError::Claims(field));
    }
    values
        .into_iter()
        .map(|v| match v {
            Value::String(s) if bounded(s) => Ok(s.clone()),
            _ => Err(AuthError::Claims(field)),
        })
        .collect()
}

/// `values` through `table`, when there is one (unlisted values dropped).
fn translated(values: Vec<String>, table: &HashMap<String, String>) -> Vec<String> {
    if table.is_empty() {
        return values;
    }
    values
        .into_iter()
        .filter_map(|v| table.get(&v).cloned())
        .collect()
}

/// The key set of `issuer`, by its discovery document.
async fn fetch_keys(issuer: &str, tls: &Arc<rustls::ClientConfig>) -> Result<JwkSet, KeyError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery = fetch::get_json(&discovery_url, tls).await?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(issuer) {
        // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was asked of.
        return Err(KeyError::Parse("discovery names another issuer".into()));
    }
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| KeyError::Parse("discovery has no jwks_uri".into()))?;
    let set = fetch::get_json(jwks_uri, tls).await?;
    serde_json::from_value(set).map_err(|e| KeyError::Parse(e.to_string()))
}
