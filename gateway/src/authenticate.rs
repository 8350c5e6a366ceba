//! Who is calling, from one request: a system by its pinned client certificate; staff and
//! participants by their bearer token; or a person acting through a system, by both.
//!
//! **On behalf of a user** (RFC 8705, certificate-bound access tokens): a link allowed to
//! act for users presents its pinned certificate *and* the user's access token, which the
//! identity provider bound to that certificate (`cnf.x5t#S256`). Chosen over token exchange
//! (RFC 8693) because the binding needs nothing new from the journal system (it already
//! holds the certificate it connects with), no second round-trip to the identity provider
//! per user, and a stolen token is useless without the system's private key.

use rustls_pki_types::CertificateDer;

use crate::auth::{AuthError, Principal, PrincipalKind, Session, TokenVerifier};
use crate::links::Links;

/// Turns a request's credentials into a principal.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: TokenVerifier,
    links: Links,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who is calling.
    pub principal: Principal,
    /// When the credentials expire (seconds since the epoch): a token's `exp`, a link
    /// certificate's `notAfter`, whichever comes first.
    pub expires_at: Option<u64>,
    /// The token's session, for revocation; `None` for a system without a user.
    pub session: Option<Session>,
}

impl Authenticator {
    /// Trusts tokens from `tokens` and systems pinned in `links`.
    pub fn new(tokens: TokenVerifier, links: Links) -> Self {
        Self { tokens, links }
    }

    /// The token verifier (its issuers and revocations).
    pub fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }

    /// The caller of a request with this metadata over a connection whose client presented
    /// `peer_certs` (leaf first), if any.
    pub async fn authenticate(
        &self,
        headers: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Authenticated, AuthError> {
        let token = bearer_token(headers)?;
        let leaf = peer_certs.and_then(<[_]>::first);
        match (leaf, token) {
            (Some(leaf), None) => {
                let link = self.links.identify(leaf)?;
                Ok(Authenticated {
                    principal: Links::principal(link),
                    expires_at: Links::not_after(leaf),
                    session: None,
                })
            }
            (Some(leaf), Some(token)) => {
                let link = self.links.identify(leaf)?;
                if !link.acts_for_users {
                    return Err(AuthError::NotActingForUsers);
                }
                let verified = self.tokens.verify_fetching(token).await?;
                if verified.bound_to.as_deref() != Some(&crate::links::thumbprint(leaf)) {
                    return Err(AuthError::WrongBinding);
                }
                let mut principal = verified.principal;
                // A system acts for its own organisation's staff only: a region journal
                // system cannot carry a municipal officer's session, nor a participant's.
                if principal.kind != PrincipalKind::Staff
                    || principal.organisation.as_deref() != Some(link.organisation.as_str())
                {
                    return Err(AuthError::ForeignOrganisation);
                }
                principal.acting_through = Some(link.id.clone());
                let expires_at = Links::not_after(leaf)
                    .map_or(verified.expires_at, |cert| cert.min(verified.expires_at));
                Ok(Authenticated {
                    principal,
                    expires_at: Some(expires_at),
                    session: Some(verified.session),
                })
            }
            (None, Some(token)) => {
                let verified = self.tokens.verify_fetching(token).await?;
                // RFC 8705 §3: a bound token is accepted only with its certificate.
                if verified.bound_to.is_some() {
                    return Err(AuthError::WrongBinding);
                }
                Ok(Authenticated {
                    principal: verified.principal,
                    expires_at: Some(verified.expires_at),
                    session: Some(verified.session),
                })
            }
            (None, None) => Err(AuthError::Missing),
        }
    }

    /// Whether `session` has been revoked since it was authenticated.
    pub fn is_revoked(&self, session: &Session) -> bool {
        self.tokens.revoked().is_revoked(session)
    }
}

/// The token of an `authorization: Bearer <token>` header, if there is one.
fn bearer_token(headers: &tonic::metadata::MetadataMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all("authorization").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Invalid);
    }
    let value = value.to_str().map_err(|_| AuthError::Invalid)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use samsyn_kit::tls::DevPki;

    use super::*;
    use crate::auth::{DevIssuer, PrincipalKind};
    use crate::links::{LinkConfig, SystemKind, fingerprint_hex, thumbprint};

    const REGION: &str = "SE2321000016-PSYK";

    struct Fixture {
        _dir: tempfile::TempDir,
        issuer: DevIssuer,
        authenticator: Authenticator,
        token: String,
        system: CertificateDer<'static>,
        acting: CertificateDer<'static>,
        unpinned: CertificateDer<'static>,
    }

    fn link(id: &str, cert: &CertificateDer<'_>, ca: std::path::PathBuf, acts: bool) -> LinkConfig {
        LinkConfig {
            id: id.into(),
            kind: SystemKind::JournalSystem,
            organisation: REGION.into(),
            ca_cert: ca,
            certificate_sha256: vec![fingerprint_hex(cert)],
            allowed_rpcs: vec!["/samsyn.consent.v1.ConsentService/Decide".into()],
            acts_for_users: acts,
            decision_codes: Default::default(),
        }
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let issuer = DevIssuer::at(dir.path());
        issuer.ensure().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["journal", "journal-users", "unpinned"])
            .unwrap();
        let leaf = |name: &str| pki.identity(name).unwrap().leaf().unwrap().clone();
        let (system, acting, unpinned) = (leaf("journal"), leaf("journal-users"), leaf("unpinned"));
        let links = Links::new(vec![
            link("journal-region", &system, pki.ca_cert(), false),
            link("journal-users", &acting, pki.ca_cert(), true),
        ])
        .unwrap();
        let token = issuer
            .issue(&clinician(REGION), Duration::from_secs(60))
            .unwrap();
        Fixture {
            authenticator: Authenticator::new(issuer.verifier().unwrap(), links),
            _dir: dir,
            issuer,
            token,
            system,
            acting,
            unpinned,
        }
    }

    fn clinician(organisation: &str) -> Principal {
        Principal {
            id: "SE2321000016-CM01".into(),
            kind: PrincipalKind::Staff,
            organisation: Some(organisation.into()),
            unit: Some("fact-nordvast".into()),
            roles: vec!["case_manager".into()],
            teams: vec![],
            purpose: Some("care".into()),
            acting_through: None,
        }
    }

    /// A development token for `organisation`'s clinician bound to `cert` (RFC 8705).
    fn bound_token(f: &Fixture, organisation: &str, cert: &CertificateDer<'_>) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": DevIssuer::ISSUER, "aud": DevIssuer::AUDIENCE, "sub": "SE2321000016-CM01",
            "exp": now + 60, "iat": now, "kind": "staff", "org": organisation,
            "unit": "fact-nordvast", "roles": ["case_manager"], "purpose": "care",
            "cnf": {"x5t#S256": thumbprint(cert)},
        });
        let key =
            EncodingKey::from_ec_pem(&std::fs::read(f.issuer.private_key()).unwrap()).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(DevIssuer::KEY_ID.into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn headers(authorization: &[&str]) -> tonic::metadata::MetadataMap {
        let mut headers = http::HeaderMap::new();
        for value in authorization {
            headers.append(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        tonic::metadata::MetadataMap::from_headers(headers)
    }

    #[tokio::test]
    async fn who_is_calling() {
        let f = fixture();
        let bearer = format!("Bearer {}", f.token);
        let lower = format!("bearer {}", f.token);
        let staff = f
            .authenticator
            .authenticate(&headers(&[&bearer]), None)
            .await
            .unwrap()
            .principal;
        assert_eq!(
            (staff.id.as_str(), staff.kind),
            ("SE2321000016-CM01", PrincipalKind::Staff)
        );
        assert!(
            f.authenticator
                .authenticate(&headers(&[&lower]), None)
                .await
                .is_ok()
        );
        let system = f
            .authenticator
            .authenticate(&headers(&[]), Some(std::slice::from_ref(&f.system)))
            .await
            .unwrap()
            .principal;
        assert_eq!(
            (system.id.as_str(), system.kind),
            ("journal-region", PrincipalKind::System)
        );

        let bound = format!("Bearer {}", bound_token(&f, REGION, &f.acting));
        let cases: Vec<(
            &str,
            tonic::metadata::MetadataMap,
            Option<Vec<CertificateDer<'static>>>,
            AuthError,
        )> = vec![
            ("nothing", headers(&[]), None, AuthError::Missing),
            (
                "basic auth",
                headers(&["Basic dXNlcjpwdw=="]),
                None,
                AuthError::Invalid,
            ),
            (
                "empty bearer",
                headers(&["Bearer "]),
                None,
                AuthError::Invalid,
            ),
            (
                "two tokens",
                headers(&[&bearer, &bearer]),
                None,
                AuthError::Invalid,
            ),
            (
                "unpinned certificate",
                headers(&[]),
                Some(vec![f.unpinned.clone()]),
                AuthError::UnknownCertificate,
            ),
            (
                "a user's token on a link not allowed to act for users",
                headers(&[&bound]),
                Some(vec![f.system.clone()]),
                AuthError::NotActingForUsers,
            ),
            (
                "an unbound token on the acting link",
                headers(&[&bearer]),
                Some(vec![f.acting.clone()]),
                AuthError::WrongBinding,
            ),
            (
                "a bound token without its certificate",
                headers(&[&bound]),
                None,
                AuthError::WrongBinding,
            ),
        ];
        for (case, headers, certs, expected) in cases {
            assert_eq!(
                f.authenticator
                    .authenticate(&headers, certs.as_deref())
                    .await
                    .map(|a| a.principal),
                Err(expected),
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn a_bound_token_over_its_certificate_is_the_clinician_through_the_system() {
        let f = fixture();
        let bound = format!("Bearer {}", bound_token(&f, REGION, &f.acting));
        let acting = f
            .authenticator
            .authenticate(&headers(&[&bound]), Some(std::slice::from_ref(&f.acting)))
            .await
            .unwrap();
        assert_eq!(
            acting.principal,
            Principal {
                acting_through: Some("journal-users".into()),
                ..clinician(REGION)
            }
        );
        assert!(acting.session.is_some());

        let municipal = format!("Bearer {}", bound_token(&f, "1283", &f.acting));
        assert_eq!(
            f.authenticator
                .authenticate(
                    &headers(&[&municipal]),
                    Some(std::slice::from_ref(&f.acting))
                )
                .await
                .map(|a| a.principal),
            Err(AuthError::ForeignOrganisation),
            "another organisation's officer through the region's system"
        );
    }
}
