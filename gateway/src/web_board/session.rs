//! Web board sessions: a random id in a `__Host-` cookie, the person's access token kept
//! here on the server, and a per-session token every form must send back (CSRF).
//!
//! The id and the form token come from `ring`'s system random generator. A session ends
//! when its token does (the cookie's `Max-Age` says the same), on logout, or when the
//! process restarts: sessions live in this gateway's memory only, so behind a load balancer
//! a browser must stick to one replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// The session cookie's name; `__Host-` makes the browser insist on `Secure`, `Path=/` and
/// no `Domain`.
pub const COOKIE: &str = "__Host-samsyn-board";
/// How long a session without a login (only the login form's CSRF token) lives.
const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Most sessions kept at once: a flood of anonymous visits cannot fill the memory.
const MAX_SESSIONS: usize = 10_000;

/// Who a session is logged in as.
#[derive(Clone)]
pub struct Login {
    /// The bearer token every call is made with.
    pub token: String,
    /// The name shown in the page header.
    pub display_name: String,
    /// The person's staff id (or participant id).
    pub person_id: String,
    /// The FACT teams the token names.
    pub teams: Vec<String>,
}

impl std::fmt::Debug for Login {
    // The token is a credential: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("teams", &self.teams)
            .finish_non_exhaustive()
    }
}

/// One browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The id in the cookie.
    pub id: String,
    /// The token each form carries.
    pub csrf: String,
    /// When the session ends.
    pub expires_at: SystemTime,
    /// The logged-in person, if any.
    pub login: Option<Login>,
}

impl Session {
    /// The `Set-Cookie` value that hands this session to the browser.
    pub fn cookie(&self) -> String {
        let max_age = self
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_secs();
        format!(
            "{COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
            self.id
        )
    }

    /// Whether `sent` is this session's form token (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        #[allow(deprecated)]
        ring::constant_time::verify_slices_are_equal(self.csrf.as_bytes(), sent.as_bytes()).is_ok()
    }
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The random generator failed.
    #[error("no randomness")]
    Random,
    /// Too many sessions are open.
    #[error("too many sessions")]
    Full,
}

/// Every open session of this gateway.
#[derive(Debug)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    random: SystemRandom,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            open: Mutex::default(),
            random: SystemRandom::new(),
        }
    }
}

impl Sessions {
    /// The live session named by the request's cookie.
    pub fn find(&self, headers: &http::HeaderMap) -> Option<Session> {
        let id = cookie_value(headers)?;
        let mut open = self.lock();
        let session = open.get(id)?;
        if session.expires_at <= SystemTime::now() {
            open.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// A new session without a login, for the login form.
    pub fn anonymous(&self) -> Result<Session, SessionError> {
        self.open_session(SystemTime::now() + ANONYMOUS_LIFETIME, None)
    }

    /// A new session for `login` until `expires_at` (the token's expiry); `previous` ends,
    /// so an id seen before the login is worth nothing after it.
    pub fn log_in(
        &self,
        previous: Option<&Session>,
        login: Login,
        expires_at: SystemTime,
    ) -> Result<Session, SessionError> {
        if let Some(previous) = previous {
            self.end(&previous.id);
        }
        self.open_session(expires_at, Some(login))
    }

    /// Ends the session `id`.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn open_session(
        &self,
        expires_at: SystemTime,
        login: Option<Login>,
    ) -> Result<Session, SessionError> {
        let session = Session {
            id: self.random_text()?,
            csrf: self.random_text()?,
            expires_at,
            login,
        };
        let mut open = self.lock();
        if open.len() >= MAX_SESSIONS {
            let now = SystemTime::now();
            open.retain(|_, s| s.expires_at > now);
            if open.len() >= MAX_SESSIONS {
                return Err(SessionError::Full);
            }
        }
        open.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    fn random_text(&self) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        self.random
            .fill(&mut bytes)
            .map_err(|_| SessionError::Random)?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session id in the request's cookies.
fn cookie_value(headers: &http::HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `name` in the request's cookies, if it can be an id.
pub(super) fn cookie_named<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty() && value.len() <= 64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn login() -> Login {
        Login {
            token: "t".into(),
            display_name: "Anna".into(),
            person_id: "S1".into(),
            teams: vec!["team".into()],
        }
    }

    fn with_cookie(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_login_replaces_the_anonymous_session_and_is_found_by_its_cookie() {
        let sessions = Sessions::default();
        let anonymous = sessions.anonymous().unwrap();
        let expires = SystemTime::now() + Duration::from_secs(60);
        let session = sessions.log_in(Some(&anonymous), login(), expires).unwrap();
        assert_ne!(session.id, anonymous.id);
        assert_ne!(session.csrf, anonymous.csrf);
        let header = format!("other=1; {COOKIE}={}", anonymous.id);
        assert!(sessions.find(&with_cookie(&header)).is_none());
        let header = format!("other=1; {COOKIE}={}", session.id);
        let found = sessions.find(&with_cookie(&header)).unwrap();
        assert_eq!(found.login.unwrap().person_id, "S1");
    }

    #[test]
    fn the_cookie_is_host_only_http_only_secure_strict_and_ends_with_the_token() {
        let sessions = Sessions::default();
        let session = sessions
            .log_in(None, login(), SystemTime::now() + Duration::from_secs(600))
            .unwrap();
        let cookie = session.cookie();
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let max_age: u64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((590..=600).contains(&max_age), "{cookie}");
    }

    #[test]
    fn an_expired_session_is_gone_and_a_wrong_form_token_does_not_match() {
        let sessions = Sessions::default();
        let session = sessions
            .log_in(None, login(), SystemTime::now() - Duration::from_secs(1))
            .unwrap();
        let header = format!("{COOKIE}={}", session.id);
        assert!(sessions.find(&with_cookie(&header)).is_none());
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches("x"));
    }
}
