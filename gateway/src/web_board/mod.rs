//! The web board under `/board/`: the FACT team's board, the morning meeting and a
//! participant's timeline, in Swedish, for the staff's browsers.
//!
//! No second door: every page is built from ordinary gRPC calls made in-process through the
//! gateway's own [`Proxy`], as the logged-in person, with the bearer token their session
//! holds (see [`crate::fhir_view::caller`]). Decisions, row narrowing (a municipal
//! coordinator sees only the rows a consent opens) and the audit trail are therefore exactly
//! those of gRPC, and this module decides nothing itself. The live board follows
//! `WatchBoard` through the same proxy and tells the page (Server-Sent Events) to fetch its
//! rows again; the gateway's board stream already sends a fresh snapshot when access
//! changes, so a revoked consent takes the row off an open municipal page.
//!
//! Safe by default: the templates escape all output; the Content-Security-Policy allows
//! only this module's own script and style; every form carries the session's CSRF token and
//! a POST without it is refused with 403; no personal identity number is fetched for or
//! shown on any page, and URLs name participants by their internal id only.
//!
//! Login: with `[access.web_login]` configured, OpenID Connect authorization code with PKCE
//! at the configured issuer (see [`oidc`]); otherwise, under `samsyn up` (the development
//! issuer trusted), a development login lets one pick a person of the demo roster; the
//! session then holds a development token for them.

pub mod calls;
mod live;
pub mod oidc;
mod pages;
pub mod session;
pub mod timeline;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tonic::Code;

use crate::auth::{DevIssuer, Principal, PrincipalKind};
use crate::fhir_view::caller::AsCaller;
use crate::proxy::{Gateway, Proxy};
use session::{Login, Session, Sessions};

/// The policy every answer carries: this module's own script and style only, no inline
/// code, no framing, forms posted only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";
/// Largest form accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How long a development login lasts.
const DEV_LOGIN_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// How the web board lets people log in.
#[derive(Debug, Clone, Default)]
pub struct BoardSettings {
    /// The development login, under `samsyn up` only.
    pub dev_login: Option<DevLogin>,
    /// The login at an OpenID provider (`[access.web_login]`); when set, `/board/login`
    /// goes there.
    pub web_login: Option<Arc<oidc::WebLogin>>,
}

/// The development login: people of the demo roster, with tokens from the development issuer.
#[derive(Debug, Clone)]
pub struct DevLogin {
    /// The issuer whose tokens the gateway trusts under `samsyn up`.
    pub issuer: DevIssuer,
    /// The demo roster `samsyn up --demo` writes (`demo.json`).
    pub roster: PathBuf,
}

/// What the handlers share.
#[derive(Debug)]
struct WebBoard {
    proxy: Proxy,
    sessions: Sessions,
    settings: BoardSettings,
}

/// The `/board` routes; the gateway adds its gRPC fallback after them.
pub fn routes(gateway: Arc<Gateway>, settings: BoardSettings) -> axum::Router {
    let board = Arc::new(WebBoard {
        proxy: Proxy::new(gateway),
        sessions: Sessions::default(),
        settings,
    });
    axum::Router::new()
        .route("/board", get(|| async { Redirect::to("/board/") }))
        .route("/board/", get(pages::board))
        .route("/board/rows", get(pages::rows))
        .route("/board/events", get(live::events))
        .route("/board/meeting", get(pages::meeting))
        .route("/board/meeting/start", post(pages::start_meeting))
        .route(
            "/board/meeting/{meeting_id}/discussions",
            post(pages::record_discussion),
        )
        .route(
            "/board/participants/{participant_id}/timeline",
            get(pages::timeline),
        )
        .route("/board/entries", post(pages::put_on_board))
        .route(
            "/board/entries/{entry_id}/take-off",
            post(pages::take_off_board),
        )
        .route(
            "/board/entries/{entry_id}/status",
            post(pages::update_status),
        )
        .route("/board/entries/{entry_id}/actions", post(pages::add_action))
        .route(
            "/board/entries/{entry_id}/actions/{action_id}/done",
            post(pages::complete_action),
        )
        .route("/board/login", get(login_page).post(log_in))
        .route("/board/callback", get(oidc::callback))
        .route("/board/logout", post(log_out))
        .route("/board/static/board.js", get(script))
        .route("/board/static/board.css", get(style))
        // Anything else under /board is the board's own 404, not the gRPC fallback's.
        .route(
            "/board/{*rest}",
            axum::routing::any(|| async { PageError::NotFound.into_response() }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(board)
}

/// Adds the security headers to every answer.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/board.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("static/board.css"),
    )
        .into_response()
}

/// Why a page cannot be shown, as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// Not logged in (or the session ended): to the login page.
    LoginNeeded,
    /// A form without the session's CSRF token.
    Csrf,
    /// Refused by the gateway.
    Forbidden,
    /// No such page or record.
    NotFound,
    /// Someone else changed the record first.
    Conflict,
    /// The form was wrong; the field named.
    Invalid(String),
    /// A service is not answering.
    Unavailable,
    /// Something broke on our side.
    Internal,
}

impl PageError {
    /// The page's answer to a refused gRPC call; a service's message is not shown, but the
    /// field a bad request names is.
    fn from_status(status: &tonic::Status) -> Self {
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                Self::Invalid(invalid_field(status))
            }
            Code::Unauthenticated => Self::LoginNeeded,
            Code::PermissionDenied => Self::Forbidden,
            Code::NotFound => Self::NotFound,
            Code::Aborted | Code::AlreadyExists => Self::Conflict,
            Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded => {
                Self::Unavailable
            }
            _ => Self::Internal,
        }
    }
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

/// The fields a bad request names (the services answer "invalid <field>, <field>").
fn invalid_field(status: &tonic::Status) -> String {
    let fields: Vec<&str> = status
        .message()
        .strip_prefix("invalid ")
        .unwrap_or_default()
        .split(", ")
        .filter(|f| {
            !f.is_empty()
                && f.len() <= 60
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._[]".contains(&b))
        })
        .collect();
    if fields.is_empty() {
        "okänt fält".to_owned()
    } else {
        fields.join(", ")
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            Self::LoginNeeded => return Redirect::to("/board/login").into_response(),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Formuläret godtogs inte",
                "Formuläret saknade en giltig säkerhetskod. Ladda om sidan och försök igen."
                    .to_owned(),
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Inte behörig",
                "Du har inte behörighet till det här.".to_owned(),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Hittades inte",
                "Sidan finns inte.".to_owned(),
            ),
            Self::Conflict => (
                StatusCode::CONFLICT,
                "Någon hann före",
                "Raden har ändrats sedan du öppnade sidan. Ladda om och försök igen.".to_owned(),
            ),
            Self::Invalid(field) => (
                StatusCode::BAD_REQUEST,
                "Ogiltig uppgift",
                format!("Kontrollera fältet {field}."),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Tjänsten svarar inte",
                "Försök igen om en stund.".to_owned(),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Något gick fel",
                "Försök igen om en stund.".to_owned(),
            ),
        };
        let page = pages::ErrorPage { title, text };
        (status, pages::html(&page)).into_response()
    }
}

/// A logged-in request: the session and a caller that acts as its person.
struct LoggedIn {
    session: Session,
    login: Login,
    caller: AsCaller,
}

impl WebBoard {
    /// The logged-in session of `headers`, with a caller acting as its person.
    fn logged_in(&self, headers: &HeaderMap) -> Result<LoggedIn, PageError> {
        let session = self.sessions.find(headers).ok_or(PageError::LoginNeeded)?;
        let login = session.login.clone().ok_or(PageError::LoginNeeded)?;
        let mut request = http::Request::builder();
        if let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {}", login.token)) {
            request = request.header(header::AUTHORIZATION, bearer);
        }
        for name in ["traceparent", "tracestate"] {
            for value in headers.get_all(name) {
                request = request.header(name, value.clone());
            }
        }
        let (parts, ()) = request
            .body(())
            .map_err(|_| PageError::Internal)?
            .into_parts();
        Ok(LoggedIn {
            caller: AsCaller::new(self.proxy.clone(), &parts),
            session,
            login,
        })
    }

    /// As [`WebBoard::logged_in`], for a form: its fields, once its CSRF token checks out.
    fn posted(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(LoggedIn, HashMap<String, String>), PageError> {
        let fields = form(body);
        let session = self.sessions.find(headers).ok_or(PageError::Csrf)?;
        if !fields
            .get("csrf")
            .is_some_and(|sent| session.csrf_matches(sent))
        {
            return Err(PageError::Csrf);
        }
        Ok((self.logged_in(headers)?, fields))
    }

    /// The demo roster, when the development login is on and the demo is seeded.
    fn roster(&self) -> Option<Roster> {
        let dev = self.settings.dev_login.as_ref()?;
        let text = std::fs::read_to_string(&dev.roster).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// A form's fields (the last value of a repeated name wins).
fn form(body: &Bytes) -> HashMap<String, String> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The demo roster as `samsyn up --demo` writes it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Roster {
    people: Vec<RosterPerson>,
}

/// One person of the roster.
#[derive(Debug, Clone, serde::Deserialize)]
struct RosterPerson {
    key: String,
    name: String,
    kind: String,
    id: String,
    organisation: Option<String>,
    unit: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
}

impl RosterPerson {
    fn principal(&self) -> Principal {
        let participant = self.kind == "participant";
        Principal {
            id: self.id.clone(),
            kind: if participant {
                PrincipalKind::Participant
            } else {
                PrincipalKind::Staff
            },
            organisation: self.organisation.clone(),
            unit: self.unit.clone(),
            roles: self.roles.clone(),
            teams: self.teams.clone(),
            purpose: (!participant).then(|| "care".to_owned()),
            acting_through: None,
        }
    }

    /// The name without the description after it.
    fn short_name(&self) -> &str {
        self.name.split(" — ").next().unwrap_or(&self.name)
    }
}

async fn login_page(
    State(board): State<Arc<WebBoard>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(web_login) = &board.settings.web_login {
        return Ok(oidc::start(web_login, &uri, &headers).await);
    }
    let session = board
        .sessions
        .anonymous()
        .map_err(|_| PageError::Unavailable)?;
    let people: Vec<pages::LoginPerson> = board
        .roster()
        .map(|roster| {
            roster
                .people
                .iter()
                .filter(|p| p.kind == "staff")
                .map(|p| pages::LoginPerson {
                    key: p.key.clone(),
                    name: p.name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let page = pages::LoginPage {
        csrf: session.csrf.clone(),
        dev: board.settings.dev_login.is_some(),
        people,
    };
    Ok(([(header::SET_COOKIE, session.cookie())], pages::html(&page)).into_response())
}

async fn log_in(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form(&body);
    let previous = board.sessions.find(&headers).ok_or(PageError::Csrf)?;
    if !fields
        .get("csrf")
        .is_some_and(|sent| previous.csrf_matches(sent))
    {
        return Err(PageError::Csrf);
    }
    let dev = board
        .settings
        .dev_login
        .as_ref()
        .ok_or(PageError::NotFound)?;
    let key = fields.get("person").map(String::as_str).unwrap_or_default();
    let person = board
        .roster()
        .and_then(|r| {
            r.people
                .into_iter()
                .find(|p| p.key == key && p.kind == "staff")
        })
        .ok_or_else(|| PageError::Invalid("person".into()))?;
    let token = dev
        .issuer
        .issue(&person.principal(), DEV_LOGIN_LIFETIME)
        .map_err(|error| {
            tracing::warn!(%error, "development token not issued");
            PageError::Internal
        })?;
    let login = Login {
        token,
        display_name: person.short_name().to_owned(),
        person_id: person.id.clone(),
        teams: person.teams.clone(),
    };
    // The session ends a little before the token, never after it.
    let expires_at = SystemTime::now() + DEV_LOGIN_LIFETIME - Duration::from_secs(5);
    let session = board
        .sessions
        .log_in(Some(&previous), login, expires_at)
        .map_err(|_| PageError::Unavailable)?;
    tracing::info!("web board login");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session.cookie()),
            (header::LOCATION, "/board/".to_owned()),
        ],
    )
        .into_response())
}

async fn log_out(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (logged_in, _) = board.posted(&headers, &body)?;
    board.sessions.end(&logged_in.session.id);
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::cleared_cookie()),
            (header::LOCATION, "/board/login".to_owned()),
        ],
    )
        .into_response())
}

/// A path segment that is a participant id in its one spelling (`samsyn_proto::ids`).
fn participant_segment(Path(id): Path<String>) -> Result<String, PageError> {
    samsyn_proto::ids::ParticipantId::parse(&id)
        .map(|id| id.to_string())
        .map_err(|_| PageError::NotFound)
}

/// A path segment that can be an id: no separators, bounded.
fn id_segment(Path(id): Path<String>) -> Result<String, PageError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(PageError::NotFound);
    }
    Ok(id)
}
