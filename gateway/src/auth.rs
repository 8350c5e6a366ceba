//! Authentication: who is calling. Staff and participants by a bearer JWT from a trusted
//! OpenID Connect issuer, the development token issuer behind `samsyn token`.

pub(crate) mod fetch;
pub mod issuer;
pub mod revocation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

pub use issuer::{ClaimMapping, Issuer, IssuerSettings, Speaks};
pub use revocation::{Revocation, RevokedSessions, Session};

/// What kind of principal is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A member of staff of an organisation.
    Staff,
    /// An external system over mutual TLS (journal system, municipal case system, SIP tool).
    System,
    /// A participant acting for themself.
    Participant,
}

impl PrincipalKind {
    /// The kind's name in tokens, metadata and the audit trail (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::System => "system",
            Self::Participant => "participant",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// HSA-style id of staff, the link id of a system, the internal participant id of a
    /// participant.
    pub id: String,
    /// What kind of caller this is.
    pub kind: PrincipalKind,
    /// The organisation the caller acts for (none for a participant).
    pub organisation: Option<String>,
    /// The unit within the organisation, when given.
    pub unit: Option<String>,
    /// Roles (`case_manager`, `physician`, `coordinator`, ...).
    pub roles: Vec<String>,
    /// FACT teams the caller belongs to.
    pub teams: Vec<String>,
    /// The assignment purpose the caller works under (`care`, `follow_up`, ...).
    pub purpose: Option<String>,
    /// The link of the system a person acts through (a journal system acting for the
    /// clinician using it); `None` when the caller calls directly.
    pub acting_through: Option<String>,
}

/// The claims of a Samsyn access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// HSA-style staff id, or the participant's internal id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Staff or participant; systems never use tokens.
    pub kind: PrincipalKind,
    /// Organisation id (staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Unit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// FACT teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Assignment purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The token's id, for revoking this one session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Why a token was refused. Callers only ever see `UNAUTHENTICATED`; this is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …` metadata.
    #[error("no bearer token")]
    Missing,
    /// Not a JWT, an unexpected algorithm, an unknown key id or a bad signature.
    #[error("token does not verify")]
    Invalid,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued or valid only from further in the future than the clock leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// Valid for longer than the maximum lifetime.
    #[error("token lifetime over the maximum")]
    TooLong,
    /// Issued by someone else or for another audience.
    #[error("token not issued for samsyn")]
    WrongIssuerOrAudience,
    /// A system's certificate with a user's token, on a link not allowed to act for users.
    #[error("link may not act for users")]
    NotActingForUsers,
    /// A token bound to a certificate (RFC 8705) presented without it or over another.
    #[error("token bound to another certificate")]
    WrongBinding,
    /// The token's issuer may not speak for the organisation (or the participant) it names.
    #[error("issuer may not speak for this organisation")]
    ForeignOrganisation,
    /// The token names a key id its issuer has not published (yet).
    #[error("unknown signing key")]
    UnknownKey,
    /// The session was revoked before the token expired.
    #[error("session revoked")]
    Revoked,
    /// A client certificate the handshake accepted but no link pins.
    #[error("client certificate not mapped to a link")]
    UnknownCertificate,
    /// Signed, but the claims do not describe a principal (e.g. staff without organisation).
    #[error("token claims incomplete: {0}")]
    Claims(&'static str),
}

/// Longest accepted token; real ones are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Most verified tokens remembered at once.
const VERIFIED_CAPACITY: usize = 10_000;

/// How far a token's times may stray from the gateway's clock, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimits {
    /// Clock difference forgiven on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u64,
    /// Longest accepted `exp - iat` (or `exp - now` without `iat`).
    pub max_lifetime_seconds: u64,
}

impl Default for TokenLimits {
    fn default() -> Self {
        Self {
            leeway_seconds: 30,
            max_lifetime_seconds: 12 * 60 * 60,
        }
    }
}

impl TokenLimits {
    /// Whether a token expiring at `exp`, valid from `nbf` and issued at `iat` is valid at
    /// `now` (seconds since the epoch).
    ///
    /// A signed token far in the future, or one that lives for years, is a stolen signing
    /// key's or a broken issuer's: refusing it bounds how long one leak lasts.
    pub fn check(
        &self,
        exp: u64,
        nbf: Option<u64>,
        iat: Option<u64>,
        now: u64,
    ) -> Result<(), AuthError> {
        if exp.saturating_add(self.leeway_seconds) < now {
            return Err(AuthError::Expired);
        }
        let latest = now.saturating_add(self.leeway_seconds);
        if [nbf, iat].into_iter().flatten().any(|time| time > latest) {
            return Err(AuthError::NotYetValid);
        }
        if exp.saturating_sub(iat.unwrap_or(now)) > self.max_lifetime_seconds {
            return Err(AuthError::TooLong);
        }
        Ok(())
    }
}

/// What a verified token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The principal.
    pub principal: Principal,
    /// The token's expiry, seconds since the epoch: what a stream opened with it must end by.
    pub expires_at: u64,
    /// RFC 8705 `cnf.x5t#S256`: the SHA-256 (base64url) of the certificate the token is
    /// bound to, when it is.
    pub bound_to: Option<String>,
    /// The session, for revocation.
    pub session: Session,
}

/// Verified tokens by their SHA-256.
type Verified = HashMap<[u8; 32], VerifiedToken>;

/// Checks tokens against the trusted issuers: their keys, audiences and claim mappings.
#[derive(Clone)]
pub struct TokenVerifier {
    /// Issuers by their `iss`.
    issuers: HashMap<String, Arc<Issuer>>,
    /// Tokens already verified, by their SHA-256: checking a signature costs more than the
    /// rest of a call through the gateway, and a client sends the same token with every
    /// call until it expires.
    verified: Arc<std::sync::Mutex<Verified>>,
    revoked: Arc<RevokedSessions>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A key or key set that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key or key set does not parse, or cannot be fetched.
    #[error("key does not parse: {0}")]
    Parse(String),
}

impl TokenVerifier {
    /// A verifier trusting `issuers`, refusing the sessions in `revoked`.
    pub fn new(issuers: Vec<Issuer>, revoked: Arc<RevokedSessions>) -> Self {
        Self {
            issuers: issuers
                .into_iter()
                .map(|issuer| (issuer.name.clone(), Arc::new(issuer)))
                .collect(),
            verified: Arc::default(),
            revoked,
        }
    }

    /// A verifier for the configured issuers.
    pub fn from_settings(
        settings: &[IssuerSettings],
        revoked: Arc<RevokedSessions>,
    ) -> Result<Self, KeyError> {
        let issuers = settings
            .iter()
            .map(Issuer::from_settings)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(issuers, revoked))
    }

    /// The same verifier with other time limits for every issuer.
    pub fn with_limits(self, limits: TokenLimits) -> Self {
        let issuers = self
            .issuers
            .into_iter()
            .map(|(name, issuer)| {
                let mut issuer = Arc::try_unwrap(issuer)
                    .unwrap_or_else(|_| unreachable!("issuers are shared only after construction"));
                issuer.limits = limits;
                (name, Arc::new(issuer))
            })
            .collect();
        Self { issuers, ..self }
    }

    /// The revocations it honours.
    pub fn revoked(&self) -> &Arc<RevokedSessions> {
        &self.revoked
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &Arc<Issuer>> {
        self.issuers.values()
    }

    /// Refreshes every discovering issuer's keys on its schedule, for as long as the
    /// verifier lives. Needs a Tokio runtime; does nothing without one.
    pub fn keep_keys_fresh(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for issuer in self.issuers.values().filter(|i| i.discovers()) {
            let weak = Arc::downgrade(issuer);
            let every = issuer.refresh;
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    let Some(issuer) = weak.upgrade() else { break };
                    if let Err(error) = issuer.refresh(None, true).await {
                        tracing::warn!(%error, "token keys not refreshed");
                    }
                }
            });
        }
    }

    /// The principal a bearer token stands for, with the keys held now.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_at(token, now()).map(|v| v.principal)
    }

    /// The verified token at `now` (seconds since the epoch), with the keys held now.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<VerifiedToken, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        // A remembered token passed every time check when it was verified; since then only
        // its expiry can have come nearer (`nbf`, `iat` and the lifetime only recede), and
        // it may have been revoked.
        let remembered = self
            .remembered()
            .get(&key)
            .filter(|v| now < v.expires_at)
            .cloned();
        let verified = match remembered {
            Some(verified) => verified,
            None => {
                let verified = self.verify_signed(token, now)?;
                let mut cache = self.remembered();
                if cache.len() >= VERIFIED_CAPACITY {
                    cache.retain(|_, v| now < v.expires_at);
                    if cache.len() >= VERIFIED_CAPACITY {
                        cache.clear();
                    }
                }
                // Remembered only until the expiry itself: the leeway is for clocks, not
                // for reuse.
                if now < verified.expires_at {
                    cache.insert(key, verified.clone());
                }
                verified
            }
        };
        if self.revoked.is_revoked(&verified.session) {
            return Err(AuthError::Revoked);
        }
        Ok(verified)
    }

    /// As [`TokenVerifier::verify_at`] now, fetching the issuer's keys first when the token
    /// names a key id not yet known (the issuer has rotated its keys).
    pub async fn verify_fetching(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        match self.verify_at(token, now()) {
            Err(AuthError::UnknownKey) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
                let issuer = self.issuer_of(token)?;
                match issuer.refresh(header.kid.as_deref(), false).await {
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "token keys not fetched"),
                }
                self.verify_at(token, now())
            }
            other => other,
        }
    }

    /// The claims of an OpenID Connect ID token for the client `client_id`, verified as an
    /// access token is (a trusted issuer's key, issuer, times) but against `client_id` as
    /// its audience; the caller checks its `nonce`.
    pub fn verify_id_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        self.issuer_of(token)?
            .verify_id_token(token, &header, client_id, now())
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The trusted issuer named by the (not yet verified) token.
    fn issuer_of(&self, token: &str) -> Result<&Arc<Issuer>, AuthError> {
        #[derive(Deserialize)]
        struct Iss {
            iss: String,
        }
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Iss>(token)
            .map_err(|_| AuthError::Invalid)?;
        self.issuers
            .get(&unverified.claims.iss)
            .ok_or(AuthError::WrongIssuerOrAudience)
    }

    /// Verifies the signature and claims at `now`.
    fn verify_signed(&self, token: &str, now: u64) -> Result<VerifiedToken, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let issuer = self.issuer_of(token)?;
        let mapped = issuer.verify(token, &header, now)?;
        Ok(VerifiedToken {
            session: Session {
                issuer: issuer.name.clone(),
                subject: mapped.principal.id.clone(),
                token_id: mapped.token_id,
                issued_at: mapped.issued_at,
            },
            principal: mapped.principal,
            expires_at: mapped.expires_at,
            bound_to: mapped.bound_to,
        })
    }
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The development token issuer: a P-256 key under `<data-dir>/certs`, created on first use.
#[derive(Debug, Clone)]
pub struct DevIssuer {
    dir: PathBuf,
}

impl DevIssuer {
    /// The issuer name of development tokens.
    pub const ISSUER: &'static str = "samsyn-dev";
    /// The audience of every Samsyn token.
    pub const AUDIENCE: &'static str = "samsyn";
    /// The key id of the development key.
    pub const KEY_ID: &'static str = "samsyn-dev-1";

    /// The issuer whose key lives in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The private signing key.
    pub fn private_key(&self) -> PathBuf {
        self.dir.join("token-signing-key.pem")
    }

    /// The public key the gateway verifies with.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("token-signing-key.pub.pem")
    }

    /// Creates the key pair if missing.
    pub fn ensure(&self) -> Result<(), KeyError> {
        if self.private_key().exists() && self.public_key().exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| KeyError::Read {
            path: self.dir.clone(),
            source,
        })?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError::Parse(e.to_string()))?;
        samsyn_kit::tls::write_private(&self.private_key(), &key.serialize_pem()).map_err(
            |source| KeyError::Read {
                path: self.private_key(),
                source,
            },
        )?;
        std::fs::write(self.public_key(), key.public_key_pem()).map_err(|source| KeyError::Read {
            path: self.public_key(),
            source,
        })
    }

    /// The development issuer's settings: Samsyn's own claim names, ES256, any organisation,
    /// participants too.
    pub fn settings() -> IssuerSettings {
        IssuerSettings {
            issuer: Self::ISSUER.into(),
            audience: Self::AUDIENCE.into(),
            ca_cert: None,
            jwks_file: None,
            algorithms: vec!["ES256".into()],
            organisations: vec!["*".into()],
            participants: true,
            claims: ClaimMapping {
                kind: Some("kind".into()),
                ..ClaimMapping::default()
            },
            refresh_seconds: 3600,
            min_refresh_seconds: 30,
            leeway_seconds: TokenLimits::default().leeway_seconds,
            max_lifetime_seconds: TokenLimits::default().max_lifetime_seconds,
        }
    }

    /// The development issuer, trusting its public key.
    pub fn trusted(&self) -> Result<Issuer, KeyError> {
        let pem = std::fs::read(self.public_key()).map_err(|source| KeyError::Read {
            path: self.public_key(),
            source,
        })?;
        let key = DecodingKey::from_ec_pem(&pem).map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(Issuer::fixed(
            &Self::settings(),
            Speaks::ForAny,
            vec![(Self::KEY_ID.to_owned(), key, Some(Algorithm::ES256))],
        ))
    }

    /// A verifier that accepts this issuer's tokens only.
    pub fn verifier(&self) -> Result<TokenVerifier, KeyError> {
        Ok(TokenVerifier::new(vec![self.trusted()?], Arc::default()))
    }

    /// Signs a token for `principal` valid for `ttl` (verifiers refuse over twelve hours).
    pub fn issue(&self, principal: &Principal, ttl: Duration) -> Result<String, KeyError> {
        let pem = std::fs::read(self.private_key()).map_err(|source| KeyError::Read {
            path: self.private_key(),
            source,
        })?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| KeyError::Parse(e.to_string()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: Self::ISSUER.into(),
            aud: Self::AUDIENCE.into(),
            sub: principal.id.clone(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: None,
            kind: principal.kind,
            org: principal.organisation.clone(),
            unit: principal.unit.clone(),
            roles: principal.roles.clone(),
            teams: principal.teams.clone(),
            purpose: principal.purpose.clone(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(Self::KEY_ID.into());
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| KeyError::Parse(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
