//! The gateway: the only door into Samsyn. It authenticates every call, describes it from the
//! access annotations, decides it with Cedar policies over the access view, hands the
//! decision to the audit trail, forwards it to the owning service over internal mutual TLS,
//! and narrows what comes back row by row.

pub mod access_view;
pub mod audit;
pub mod auth;
pub mod authenticate;
pub mod case_terms;
pub mod describe;
pub mod fhir_view;
pub mod gate;
pub mod links;
mod metrics;
pub mod outbound;
pub mod page_token;
pub mod policy;
pub mod proxy;
pub mod settings;
pub mod web_board;

use std::path::Path;
use std::sync::Arc;

use samsyn_kit::config::Limits;
use samsyn_kit::serve::Part;
use tonic::service::RoutesBuilder;

use crate::access_view::{AccessView, FeedChannels, FollowSettings};
use crate::audit::AuditTrail;
use crate::auth::{DevIssuer, TokenVerifier};
use crate::authenticate::Authenticator;
use crate::describe::CallDescriber;
use crate::gate::Gate;
use crate::links::Links;
use crate::page_token::PageTokens;
use crate::policy::PolicyEngine;
use crate::proxy::{Gateway, Proxy, Upstreams};
use crate::settings::AccessSettings;

/// The part's name: its certificate and log target.
pub const NAME: &str = "gateway";

/// The policies shipped with Samsyn (`deploy/policies/`), used when no directory is set.
const SHIPPED_POLICIES: [(&str, &str); 4] = [
    (
        "guards.cedar",
        include_str!("../../deploy/policies/guards.cedar"),
    ),
    (
        "participants.cedar",
        include_str!("../../deploy/policies/participants.cedar"),
    ),
    (
        "staff.cedar",
        include_str!("../../deploy/policies/staff.cedar"),
    ),
    (
        "systems.cedar",
        include_str!("../../deploy/policies/systems.cedar"),
    ),
];
const SHIPPED_SCHEMA: &str = include_str!("../../deploy/policies/samsyn.cedarschema");

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting cannot work.
    #[error("{0}: {1}")]
    Setting(String, String),
    /// The policies do not load or validate.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// The token keys cannot be read.
    #[error(transparent)]
    Keys(#[from] auth::KeyError),
    /// A link is misconfigured.
    #[error(transparent)]
    Link(#[from] links::LinkError),
    /// The descriptor set is broken.
    #[error(transparent)]
    Describe(#[from] describe::DescribeError),
    /// Page tokens cannot be set up.
    #[error(transparent)]
    Pages(#[from] page_token::PageTokenError),
}

/// The policy engine of `settings`: its directory, or the shipped policies.
pub fn policy_engine(settings: &AccessSettings) -> Result<PolicyEngine, policy::PolicyError> {
    match &settings.policy_dir {
        Some(dir) => PolicyEngine::load(dir),
        None => {
            let files: Vec<(String, String)> = SHIPPED_POLICIES
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
                .collect();
            PolicyEngine::from_sources(SHIPPED_SCHEMA, &files)
        }
    }
}

/// The token verifier of `settings`: the configured issuers, and the development issuer
/// whose key lives in `certs_dir` when development is allowed; refusing `revoked` sessions.
pub fn token_verifier(
    settings: &AccessSettings,
    certs_dir: &Path,
    revoked: Arc<auth::RevokedSessions>,
) -> Result<TokenVerifier, auth::KeyError> {
    let mut issuers = settings
        .issuers
        .iter()
        .map(auth::Issuer::from_settings)
        .collect::<Result<Vec<_>, _>>()?;
    if settings.development_issuer {
        let issuer = DevIssuer::at(certs_dir);
        issuer.ensure()?;
        issuers.push(issuer.trusted()?);
    }
    let verifier = TokenVerifier::new(issuers, revoked);
    verifier.keep_keys_fresh();
    Ok(verifier)
}

/// Builds the gateway: it follows the participants, consent and board feeds from `upstreams`,
/// and hands every decision to `audit`.
pub fn build(
    settings: AccessSettings,
    certs_dir: &Path,
    upstreams: Upstreams,
    audit: Arc<dyn AuditTrail>,
    limits: &Limits,
) -> Result<Arc<Gateway>, StartError> {
    settings
        .check()
        .and_then(|()| settings.check_trust())
        .map_err(|(field, reason)| StartError::Setting(field, reason))?;
    let engine = policy_engine(&settings)?;
    let links = Links::new(settings.links.clone())?;
    let page_tokens = match settings
        .read_page_token_keys()
        .map_err(|(field, reason)| StartError::Setting(field, reason))?
    {
        keys if keys.is_empty() => PageTokens::new()?,
        keys => PageTokens::with_keys(keys)?,
    };
    let revoked = audit.revoked_sessions().unwrap_or_default();
    let authenticator = Authenticator::new(
        token_verifier(&settings, certs_dir, revoked)?,
        links.clone(),
    );
    let view = Arc::new(AccessView::new(settings.max_view_lag()));
    let follower = access_view::follow(
        Arc::clone(&view),
        FeedChannels {
            participants: upstreams.participants.clone(),
            consent: upstreams.consent.clone(),
            board: upstreams.board.clone(),
        },
        FollowSettings::default(),
    );
    let gate = Gate::new(engine, view, links, settings);
    let gateway = Arc::new(Gateway::new(
        CallDescriber::samsyn()?,
        authenticator,
        gate,
        upstreams,
        Arc::clone(&audit),
        page_tokens,
        limits,
        Some(follower),
    ));
    learn_emergencies(Arc::downgrade(&gateway), audit);
    Ok(gateway)
}

/// How often a gateway reads the emergency declarations other replicas recorded.
const EMERGENCIES_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps `gateway`'s emergency memory in step with the trail every replica writes, while the
/// gateway lives: an emergency's time limit counts from its first declaration anywhere.
fn learn_emergencies(gateway: std::sync::Weak<Gateway>, audit: Arc<dyn AuditTrail>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(EMERGENCIES_READ_EVERY);
        loop {
            ticks.tick().await;
            let Some(gateway) = gateway.upgrade() else {
                break;
            };
            let since = chrono::Utc::now() - gate::EMERGENCY_MEMORY;
            match audit.emergencies_since(since).await {
                Ok(declared) => gateway.gate().learn_emergencies(declared),
                Err(error) => tracing::warn!(%error, "emergency declarations not read"),
            }
        }
    });
}

/// The gateway's part: every Samsyn RPC goes to the proxy; health and reflection are added
/// when serving. The web board has no login here; see [`part_with_board`].
pub fn part(gateway: Arc<Gateway>) -> Part {
    part_with_board(gateway, web_board::BoardSettings::default())
}

/// The gateway's part with the web board's login `board`.
///
/// The read-only FHIR view answers under `/fhir/` (over HTTP/1.1 too, for journal systems),
/// the web board under `/board/`; both make their calls through the same proxy, so they
/// open no second door.
pub fn part_with_board(gateway: Arc<Gateway>, board: web_board::BoardSettings) -> Part {
    let router = fhir_view::routes(Arc::clone(&gateway))
        .merge(web_board::routes(Arc::clone(&gateway), board))
        .fallback_service(Proxy::new(gateway));
    Part {
        name: NAME,
        routes: RoutesBuilder::from(router),
        services: Vec::new(),
        feeds: Vec::new(),
        // the launcher adds the checks of its database and access view
        readiness: Default::default(),
        http1: true,
    }
}
