//! External systems (journal systems, municipal case systems, SIP tools) and how the gateway
//! recognises them: each link pins the client certificate it presents.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, Principal, PrincipalKind};

/// What kind of external system a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    /// The region's journal system (EHR).
    JournalSystem,
    /// A municipal case system that pushes decisions.
    MunicipalCaseSystem,
    /// A SIP planning tool.
    SipTool,
}

impl SystemKind {
    /// The role a system of this kind has in policies.
    pub fn role(self) -> &'static str {
        match self {
            Self::JournalSystem => "journal_system",
            Self::MunicipalCaseSystem => "municipal_case_system",
            Self::SipTool => "sip_tool",
        }
    }
}

/// One external system, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The link's id; also the principal id of calls it makes.
    pub id: String,
    /// What kind of system it is.
    pub kind: SystemKind,
    /// The organisation it acts for.
    pub organisation: String,
    /// The CA that issues its client certificate (added to the gateway's client trust).
    pub ca_cert: PathBuf,
    /// SHA-256 fingerprints (hex) of the client certificates it may present; more than one
    /// during a certificate rollover.
    pub certificate_sha256: Vec<String>,
    /// gRPC paths it may call (`/samsyn.plans.v1.PlansService/PushDecision`), for itself
    /// and for the users it acts for.
    pub allowed_rpcs: Vec<String>,
    /// Whether it may act for its users: present a user's access token bound to its
    /// certificate (RFC 8705), so the call is that person's, through this system.
    #[serde(default)]
    pub acts_for_users: bool,
    /// A municipal case system's own decision-type codes and the catalogue codes they mean
    /// (`"BS-SOL" = "municipality.housing_support"`): it may push decisions in its own terms.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decision_codes: BTreeMap<String, String>,
}

/// A link configuration that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// Two links share an id or a certificate.
    #[error("link {0}: id or certificate used by another link")]
    Duplicate(String),
    /// A fingerprint is not 64 hex digits.
    #[error("link {0}: certificate_sha256 must be 64 hex digits")]
    Fingerprint(String),
    /// A link without certificates or allowed calls would be useless or open.
    #[error("link {0}: needs at least one certificate and one allowed rpc")]
    Empty(String),
    /// A code mapping on a link that is no municipal case system, or one whose codes are
    /// empty, too long or not catalogue codes of the municipality.
    #[error(
        "link {0}: decision_codes belong to a municipal case system and map codes of 1 to 64 printable characters to municipality.* catalogue codes"
    )]
    DecisionCodes(String),
}

/// The configured links, by certificate fingerprint.
#[derive(Debug, Clone, Default)]
pub struct Links {
    by_fingerprint: HashMap<[u8; 32], LinkConfig>,
    allowed: HashMap<String, std::collections::HashSet<String>>,
    decision_codes: HashMap<String, BTreeMap<String, String>>,
}

/// The longest decision-type code a case system may use.
const MAX_DECISION_CODE_CHARS: usize = 64;

fn valid_decision_codes(link: &LinkConfig) -> bool {
    if link.decision_codes.is_empty() {
        return true;
    }
    let code_ok = |c: &str| {
        !c.is_empty()
            && c.chars().count() <= MAX_DECISION_CODE_CHARS
            && c.chars().all(|ch| !ch.is_control())
    };
    link.kind == SystemKind::MunicipalCaseSystem
        && link.decision_codes.iter().all(|(code, catalogue)| {
            code_ok(code)
                && code_ok(catalogue)
                && catalogue.starts_with("municipality.")
                && catalogue.is_ascii()
        })
}

impl Links {
    /// Indexes the links; refuses duplicates and malformed fingerprints.
    pub fn new(links: Vec<LinkConfig>) -> Result<Self, LinkError> {
        let mut by_fingerprint = HashMap::new();
        let mut allowed = HashMap::new();
        let mut decision_codes = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for link in links {
            if link.certificate_sha256.is_empty() || link.allowed_rpcs.is_empty() {
                return Err(LinkError::Empty(link.id));
            }
            if !ids.insert(link.id.clone()) {
                return Err(LinkError::Duplicate(link.id));
            }
            if !valid_decision_codes(&link) {
                return Err(LinkError::DecisionCodes(link.id));
            }
            decision_codes.insert(link.id.clone(), link.decision_codes.clone());
            allowed.insert(
                link.id.clone(),
                link.allowed_rpcs
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashSet<_>>(),
            );
            for hex in &link.certificate_sha256 {
                let fingerprint = parse_fingerprint(hex)
                    .ok_or_else(|| LinkError::Fingerprint(link.id.clone()))?;
                if by_fingerprint.insert(fingerprint, link.clone()).is_some() {
                    return Err(LinkError::Duplicate(link.id));
                }
            }
        }
        Ok(Self {
            by_fingerprint,
            allowed,
            decision_codes,
        })
    }

    /// The catalogue code that link `link_id` means by its own decision-type `code`.
    pub fn decision_code(&self, link_id: &str, code: &str) -> Option<&str> {
        self.decision_codes
            .get(link_id)
            .and_then(|codes| codes.get(code))
            .map(String::as_str)
    }

    /// Whether the link with this id may call `rpc`.
    pub fn allows(&self, link_id: &str, rpc: &str) -> bool {
        self.allowed
            .get(link_id)
            .is_some_and(|rpcs| rpcs.contains(rpc))
    }

    /// The CA certificate files of every link, for the gateway's client trust.
    pub fn ca_certs(&self) -> Vec<PathBuf> {
        let mut cas: Vec<PathBuf> = self
            .by_fingerprint
            .values()
            .map(|link| link.ca_cert.clone())
            .collect();
        cas.sort();
        cas.dedup();
        cas
    }

    /// The link that presented `leaf`; an unmapped certificate is `UNAUTHENTICATED`, even
    /// when the handshake accepted its CA.
    pub fn identify(&self, leaf: &CertificateDer<'_>) -> Result<&LinkConfig, AuthError> {
        self.by_fingerprint
            .get(&fingerprint(leaf))
            .ok_or(AuthError::UnknownCertificate)
    }

    /// When a client certificate stops being valid (seconds since the epoch); `None` when it
    /// does not parse (the handshake has checked it, so a stream simply has no end then).
    pub fn not_after(leaf: &CertificateDer<'_>) -> Option<u64> {
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        u64::try_from(certificate.validity().not_after.timestamp()).ok()
    }

    /// The principal of a call made by `link`.
    pub fn principal(link: &LinkConfig) -> Principal {
        Principal {
            id: link.id.clone(),
            kind: PrincipalKind::System,
            organisation: Some(link.organisation.clone()),
            unit: None,
            roles: vec![link.kind.role().to_owned()],
            teams: Vec::new(),
            purpose: None,
            acting_through: None,
        }
    }
}

/// The RFC 8705 thumbprint of a certificate (`x5t#S256`): its SHA-256, base64url.
pub fn thumbprint(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fingerprint(cert))
}

/// SHA-256 of a certificate's DER encoding.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The hex form of a fingerprint, as written in link configuration.
pub fn fingerprint_hex(cert: &CertificateDer<'_>) -> String {
    fingerprint(cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_fingerprint(hex: &str) -> Option<[u8; 32]> {
    let hex: String = hex.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsyn_kit::tls::DevPki;

    fn link(id: &str, fingerprints: Vec<String>) -> LinkConfig {
        LinkConfig {
            id: id.into(),
            kind: SystemKind::MunicipalCaseSystem,
            organisation: "kommun-1283".into(),
            ca_cert: "ca.pem".into(),
            certificate_sha256: fingerprints,
            allowed_rpcs: vec!["/samsyn.plans.v1.PlansService/PushDecision".into()],
            acts_for_users: false,
            decision_codes: Default::default(),
        }
    }

    #[test]
    fn a_certificates_expiry_is_read_for_the_streams_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["case-system"]).unwrap();
        pki.issue_expired("old-system").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let current = pki.identity("case-system").unwrap().leaf().unwrap().clone();
        assert!(Links::not_after(&current).unwrap() > now);
        let expired = pki.identity("old-system").unwrap().leaf().unwrap().clone();
        // 2021-01-01T00:00:00Z, as issued.
        assert_eq!(Links::not_after(&expired), Some(1_609_459_200));
        assert_eq!(Links::not_after(&CertificateDer::from(vec![0u8; 8])), None);
    }

    #[test]
    fn a_pinned_certificate_maps_to_its_link_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["case-system", "other-system"]).unwrap();
        let case_system = pki.identity("case-system").unwrap().leaf().unwrap().clone();
        let other = pki
            .identity("other-system")
            .unwrap()
            .leaf()
            .unwrap()
            .clone();
        // Colons are accepted, as openssl prints fingerprints.
        let pinned = fingerprint_hex(&case_system)
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let links = Links::new(vec![link("kommun-case-system", vec![pinned])]).unwrap();
        let found = links.identify(&case_system).unwrap();
        let principal = Links::principal(found);
        assert_eq!(principal.id, "kommun-case-system");
        assert_eq!(principal.kind, PrincipalKind::System);
        assert_eq!(principal.organisation.as_deref(), Some("kommun-1283"));
        assert_eq!(principal.roles, ["municipal_case_system"]);
        assert_eq!(links.identify(&other), Err(AuthError::UnknownCertificate));
    }

    #[test]
    fn a_case_systems_code_mapping_is_its_own_and_checked_at_start() {
        let fp = "ab".repeat(32);
        let mut case_system = link("case-system", vec![fp.clone()]);
        case_system
            .decision_codes
            .insert("BS-SOL-4:1".into(), "municipality.housing_support".into());
        let links = Links::new(vec![case_system.clone()]).unwrap();
        assert_eq!(
            links.decision_code("case-system", "BS-SOL-4:1"),
            Some("municipality.housing_support")
        );
        assert_eq!(links.decision_code("case-system", "bs-sol-4:1"), None);
        assert_eq!(links.decision_code("other-system", "BS-SOL-4:1"), None);
        // Only a municipal case system maps codes, only to the municipality's catalogue,
        // and only codes of reasonable length.
        let mut journal = case_system.clone();
        journal.kind = SystemKind::JournalSystem;
        let mut region_code = case_system.clone();
        region_code
            .decision_codes
            .insert("PSY".into(), "region.psychological_treatment".into());
        let mut long = link("case-system", vec![fp]);
        long.decision_codes
            .insert("K".repeat(65), "municipality.housing_support".into());
        for bad in [journal, region_code, long] {
            assert_eq!(
                Links::new(vec![bad]).unwrap_err(),
                LinkError::DecisionCodes("case-system".into())
            );
        }
    }

    #[test]
    fn malformed_duplicate_or_empty_links_are_refused() {
        let fp = "ab".repeat(32);
        assert_eq!(
            Links::new(vec![link("a", vec!["abc".into()])]).unwrap_err(),
            LinkError::Fingerprint("a".into())
        );
        assert_eq!(
            Links::new(vec![
                link("a", vec![fp.clone()]),
                link("b", vec![fp.clone()])
            ])
            .unwrap_err(),
            LinkError::Duplicate("b".into())
        );
        assert_eq!(
            Links::new(vec![link("a", vec![])]).unwrap_err(),
            LinkError::Empty("a".into())
        );
        let mut open = link("a", vec![fp]);
        open.allowed_rpcs.clear();
        assert_eq!(
            Links::new(vec![open]).unwrap_err(),
            LinkError::Empty("a".into())
        );
    }
}
