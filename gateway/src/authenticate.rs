//! Who is calling, from one request: a system by its pinned client certificate, or staff and
//! participants by their bearer token.

use rustls_pki_types::CertificateDer;

use crate::auth::{AuthError, Principal, TokenVerifier};
use crate::links::Links;

/// Turns a request's credentials into a principal.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: TokenVerifier,
    links: Links,
}

impl Authenticator {
    /// Trusts tokens from `tokens` and systems pinned in `links`.
    pub fn new(tokens: TokenVerifier, links: Links) -> Self {
        Self { tokens, links }
    }

    /// The caller of a request with this metadata over a connection whose client presented
    /// `peer_certs` (leaf first), if any.
    pub fn authenticate(
        &self,
        headers: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Principal, AuthError> {
        self.authenticate_until(headers, peer_certs)
            .map(|(principal, _)| principal)
    }

    /// As [`Authenticator::authenticate`], with when the credentials expire (seconds since
    /// the epoch): a token's `exp`, a link certificate's `notAfter`.
    pub fn authenticate_until(
        &self,
        headers: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<(Principal, Option<u64>), AuthError> {
        let token = bearer_token(headers)?;
        match (peer_certs.and_then(<[_]>::first), token) {
            // A system does not also speak for a person: acting on someone's behalf needs
            // its own design (whose consent, whose audit line), so it is refused for now.
            (Some(_), Some(_)) => Err(AuthError::Ambiguous),
            (Some(leaf), None) => self
                .links
                .identify(leaf)
                .map(|link| (Links::principal(link), Links::not_after(leaf))),
            (None, Some(token)) => self
                .tokens
                .verify_until(token)
                .map(|(principal, exp)| (principal, Some(exp))),
            (None, None) => Err(AuthError::Missing),
        }
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

    use samsyn_kit::tls::DevPki;

    use super::*;
    use crate::auth::{DevIssuer, PrincipalKind};
    use crate::links::{LinkConfig, SystemKind, fingerprint_hex};

    struct Fixture {
        _dir: tempfile::TempDir,
        authenticator: Authenticator,
        token: String,
        system: CertificateDer<'static>,
        unpinned: CertificateDer<'static>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let issuer = DevIssuer::at(dir.path());
        issuer.ensure().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["journal", "unpinned"]).unwrap();
        let system = pki.identity("journal").unwrap().leaf().unwrap().clone();
        let unpinned = pki.identity("unpinned").unwrap().leaf().unwrap().clone();
        let links = Links::new(vec![LinkConfig {
            id: "journal-region".into(),
            kind: SystemKind::JournalSystem,
            organisation: "SE2321000016-PSYK".into(),
            ca_cert: pki.ca_cert(),
            certificate_sha256: vec![fingerprint_hex(&system)],
            allowed_rpcs: vec!["/samsyn.consent.v1.ConsentService/Decide".into()],
            decision_codes: Default::default(),
        }])
        .unwrap();
        let staff = Principal {
            id: "SE2321000016-CM01".into(),
            kind: PrincipalKind::Staff,
            organisation: Some("SE2321000016-PSYK".into()),
            unit: None,
            roles: vec!["case_manager".into()],
            teams: vec![],
            purpose: Some("care".into()),
        };
        let token = issuer.issue(&staff, Duration::from_secs(60)).unwrap();
        Fixture {
            authenticator: Authenticator::new(issuer.verifier().unwrap(), links),
            _dir: dir,
            token,
            system,
            unpinned,
        }
    }

    fn headers(authorization: &[&str]) -> tonic::metadata::MetadataMap {
        let mut headers = http::HeaderMap::new();
        for value in authorization {
            headers.append(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        tonic::metadata::MetadataMap::from_headers(headers)
    }

    #[test]
    fn who_is_calling() {
        let f = fixture();
        let bearer = format!("Bearer {}", f.token);
        let lower = format!("bearer {}", f.token);
        let staff = f
            .authenticator
            .authenticate(&headers(&[&bearer]), None)
            .unwrap();
        assert_eq!(
            (staff.id.as_str(), staff.kind),
            ("SE2321000016-CM01", PrincipalKind::Staff)
        );
        assert!(
            f.authenticator
                .authenticate(&headers(&[&lower]), None)
                .is_ok()
        );
        let system = f
            .authenticator
            .authenticate(&headers(&[]), Some(std::slice::from_ref(&f.system)))
            .unwrap();
        assert_eq!(
            (system.id.as_str(), system.kind),
            ("journal-region", PrincipalKind::System)
        );

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
                "system with a token",
                headers(&[&bearer]),
                Some(vec![f.system.clone()]),
                AuthError::Ambiguous,
            ),
        ];
        for (case, headers, certs, expected) in cases {
            assert_eq!(
                f.authenticator.authenticate(&headers, certs.as_deref()),
                Err(expected),
                "{case}"
            );
        }
    }
}
