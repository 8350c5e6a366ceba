//! Authentication: who is calling. Staff and participants by a bearer JWT (OIDC style), the
//! development token issuer behind `samsyn token`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
    /// Both a client certificate and a bearer token: a system speaking for a person.
    #[error("certificate and token together")]
    Ambiguous,
    /// A client certificate the handshake accepted but no link pins.
    #[error("client certificate not mapped to a link")]
    UnknownCertificate,
    /// Signed, but the claims do not describe a principal (e.g. staff without organisation).
    #[error("token claims incomplete: {0}")]
    Claims(&'static str),
}

/// Longest accepted token; real ones are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest accepted claim string (ids, roles, purposes).
const MAX_CLAIM_CHARS: usize = 128;

/// Most roles or teams in one token.
const MAX_CLAIM_LIST: usize = 32;

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
    /// Whether `claims` are valid at `now` (seconds since the epoch).
    ///
    /// A signed token far in the future, or one that lives for years, is a stolen signing
    /// key's or a broken issuer's: refusing it bounds how long one leak lasts.
    pub fn check(&self, claims: &Claims, now: u64) -> Result<(), AuthError> {
        if claims.exp.saturating_add(self.leeway_seconds) < now {
            return Err(AuthError::Expired);
        }
        let latest = now.saturating_add(self.leeway_seconds);
        if [claims.nbf, claims.iat]
            .into_iter()
            .flatten()
            .any(|time| time > latest)
        {
            return Err(AuthError::NotYetValid);
        }
        if claims.exp.saturating_sub(claims.iat.unwrap_or(now)) > self.max_lifetime_seconds {
            return Err(AuthError::TooLong);
        }
        Ok(())
    }
}

/// Verified tokens by their SHA-256: the principal and the expiry (seconds since the epoch).
type Verified = HashMap<[u8; 32], (Principal, u64)>;

/// Checks tokens against trusted keys, issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    /// Keys by key id; a token without `kid` may use the only key when there is one.
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    limits: TokenLimits,
    /// Tokens already verified, by their SHA-256, with their principal and expiry: checking
    /// an ES256 signature costs more than the rest of a call through the gateway, and a
    /// client sends the same token with every call until it expires.
    verified: std::sync::Arc<std::sync::Mutex<Verified>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
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
    /// The key or key set does not parse.
    #[error("key does not parse: {0}")]
    Parse(String),
}

impl TokenVerifier {
    /// A verifier for ES256 tokens from `issuer` for `audience`, with the given keys by id.
    pub fn new(issuer: &str, audience: &str, keys: HashMap<String, DecodingKey>) -> Self {
        // Only ES256: an attacker cannot pick the algorithm (no `none`, no HMAC keyed with a
        // public key).
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // All times are checked by `TokenLimits::check`, against one clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            keys,
            validation,
            limits: TokenLimits::default(),
            verified: std::sync::Arc::default(),
        }
    }

    /// The same verifier with other time limits.
    pub fn with_limits(mut self, limits: TokenLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Loads the public keys of a JWKS file (each key with its `kid`).
    pub fn from_jwks_file(issuer: &str, audience: &str, path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| KeyError::Parse(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Parse(e.to_string()))?;
            keys.insert(kid, key);
        }
        Ok(Self::new(issuer, audience, keys))
    }

    /// Loads one PEM public key, used for tokens with key id `kid` (or none).
    pub fn from_pem_file(
        issuer: &str,
        audience: &str,
        kid: &str,
        path: &Path,
    ) -> Result<Self, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let key = DecodingKey::from_ec_pem(&pem).map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(Self::new(
            issuer,
            audience,
            HashMap::from([(kid.to_owned(), key)]),
        ))
    }

    /// The principal a bearer token stands for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// As [`TokenVerifier::verify`], with the token's expiry (seconds since the epoch): what
    /// a stream opened with it must end by.
    pub fn verify_until(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_expiring_at(token, now)
    }

    /// The principal `token` stands for at `now` (seconds since the epoch).
    #[cfg(test)]
    fn verify_at(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        self.verify_expiring_at(token, now)
            .map(|(principal, _)| principal)
    }

    fn verify_expiring_at(&self, token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
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
        // its expiry can have come nearer (`nbf`, `iat` and the lifetime only recede).
        if let Some((principal, exp)) = self.remembered().get(&key)
            && now < *exp
        {
            return Ok((principal.clone(), *exp));
        }
        let (principal, exp) = self.verify_signed(token, now)?;
        let mut verified = self.remembered();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, (_, exp)| now < *exp);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        // Remembered only until the expiry itself: the leeway is for clocks, not for reuse.
        if now < exp {
            verified.insert(key, (principal.clone(), exp));
        }
        Ok((principal, exp))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Verifies the signature and claims at `now`; the principal and the expiry.
    fn verify_signed(&self, token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthError::Invalid);
        }
        let key = match &header.kid {
            Some(kid) => self.keys.get(kid),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
        .ok_or(AuthError::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    AuthError::WrongIssuerOrAudience
                }
                _ => AuthError::Invalid,
            }
        })?;
        self.limits.check(&data.claims, now)?;
        let exp = data.claims.exp;
        Ok((principal_of(data.claims)?, exp))
    }
}

fn bounded(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= MAX_CLAIM_CHARS
}

fn principal_of(claims: Claims) -> Result<Principal, AuthError> {
    if !bounded(&claims.sub) {
        return Err(AuthError::Claims("sub"));
    }
    for (name, list) in [("roles", &claims.roles), ("teams", &claims.teams)] {
        if list.len() > MAX_CLAIM_LIST || !list.iter().all(|v| bounded(v)) {
            return Err(AuthError::Claims(name));
        }
    }
    for (name, value) in [
        ("org", &claims.org),
        ("unit", &claims.unit),
        ("purpose", &claims.purpose),
    ] {
        if value.as_deref().is_some_and(|v| !bounded(v)) {
            return Err(AuthError::Claims(name));
        }
    }
    match claims.kind {
        PrincipalKind::Staff if claims.org.is_none() => return Err(AuthError::Claims("org")),
        PrincipalKind::Staff => {}
        PrincipalKind::Participant => {
            if uuid::Uuid::parse_str(&claims.sub).is_err() {
                return Err(AuthError::Claims("sub"));
            }
        }
        // Systems authenticate by certificate, never by token.
        PrincipalKind::System => return Err(AuthError::Claims("kind")),
    }
    Ok(Principal {
        id: claims.sub,
        kind: claims.kind,
        organisation: claims.org,
        unit: claims.unit,
        roles: claims.roles,
        teams: claims.teams,
        purpose: claims.purpose,
    })
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

    /// A verifier that accepts this issuer's tokens.
    pub fn verifier(&self) -> Result<TokenVerifier, KeyError> {
        TokenVerifier::from_pem_file(
            Self::ISSUER,
            Self::AUDIENCE,
            Self::KEY_ID,
            &self.public_key(),
        )
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
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(Self::KEY_ID.into());
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| KeyError::Parse(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
