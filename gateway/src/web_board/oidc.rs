//! The web board's production login: OpenID Connect authorization code with PKCE (RFC 7636,
//! S256) at one of the gateway's trusted issuers.
//!
//! `/board/login` sends the browser to the issuer's `authorization_endpoint` with a fresh
//! `state`, `nonce` and code challenge; those three stay here, against a short-lived
//! pre-login cookie, and are used once. `/board/callback` takes them back, checks `state`,
//! exchanges the code at the `token_endpoint` over HTTPS trusting the issuer's CA only
//! (bounded in time and size, as the key fetch), verifies the access token with a
//! [`TokenVerifier`] of the issuer exactly as the gateway does for every call, and the ID
//! token's signature, audience and `nonce`; then it opens the session as the development
//! login does. The pre-login cookie is `SameSite=Lax`: a `Strict` cookie would not come back
//! with the issuer's redirect. No token, code or claim is logged or put in a URL of ours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use super::session::Login;
use super::{WebBoard, pages};
use crate::auth::{KeyError, PrincipalKind, RevokedSessions, TokenVerifier, fetch};
use crate::settings::{AccessSettings, WebLoginSettings};

/// The pre-login cookie's name.
pub const LOGIN_COOKIE: &str = "__Host-samsyn-login";
/// How long a started login may take at the issuer.
const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Most logins under way at once: a flood of visits cannot fill the memory.
const MAX_PENDING: usize = 10_000;
/// How much earlier than its token a session ends.
const SESSION_MARGIN: Duration = Duration::from_secs(5);
/// Longest display name taken from the ID token.
const MAX_NAME_CHARS: usize = 80;

/// The board's configured login at an OpenID provider.
pub struct WebLogin {
    settings: WebLoginSettings,
    secret: Option<String>,
    tls: Arc<rustls::ClientConfig>,
    verifier: TokenVerifier,
    endpoints: tokio::sync::OnceCell<Endpoints>,
    pending: Mutex<HashMap<String, Pending>>,
    random: SystemRandom,
}

impl std::fmt::Debug for WebLogin {
    // The secret is a credential: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebLogin")
            .field("issuer", &self.settings.issuer)
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// The issuer's endpoints, from its discovery document.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization: String,
    token: String,
}

/// A login under way: what the callback must see again.
struct Pending {
    redirect_uri: String,
    state: String,
    nonce: String,
    verifier: String,
    expires_at: SystemTime,
}

/// Why a login did not finish, as the person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// The person (or the issuer) stopped the login.
    Denied,
    /// No login under way for this browser, or it took too long.
    Expired,
    /// The callback's `state` is not the one sent.
    WrongState,
    /// The issuer did not accept the code, or its tokens did not check out.
    Refused,
    /// Tokens fine, but the person is not staff.
    NotStaff,
    /// The issuer could not be reached.
    Unavailable,
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Self::Denied => (
                StatusCode::FORBIDDEN,
                "Inloggningen avbröts",
                "Inloggningen avbröts hos identitetsleverantören. Försök igen.",
            ),
            Self::Expired => (
                StatusCode::BAD_REQUEST,
                "Inloggningen har gått ut",
                "Inloggningen tog för lång tid eller är redan använd. Börja om.",
            ),
            Self::WrongState => (
                StatusCode::BAD_REQUEST,
                "Inloggningen godtogs inte",
                "Svaret från inloggningen hörde inte till den här webbläsaren. Börja om.",
            ),
            Self::Refused => (
                StatusCode::FORBIDDEN,
                "Inloggningen godtogs inte",
                "Inloggningen kunde inte bekräftas. Börja om.",
            ),
            Self::NotStaff => (
                StatusCode::FORBIDDEN,
                "Inte behörig",
                "Tavlan är till för personalen.",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Inloggningen svarar inte",
                "Försök igen om en stund.",
            ),
        };
        let page = pages::ErrorPage {
            title,
            text: text.to_owned(),
        };
        let mut response = (status, pages::html(&page)).into_response();
        // The login under way is used up either way.
        if let Ok(cleared) = HeaderValue::from_str(&cleared_login_cookie()) {
            response.headers_mut().append(header::SET_COOKIE, cleared);
        }
        response
    }
}

impl WebLogin {
    /// The login `access` configures, if any: its client secret read, its issuer's HTTPS
    /// client and verifier made (refusing the gateway's `revoked` sessions, as every call
    /// does). `(field, reason)` when it cannot work.
    pub fn from_settings(
        access: &AccessSettings,
        revoked: Arc<RevokedSessions>,
    ) -> Result<Option<Self>, (String, String)> {
        let Some(settings) = &access.web_login else {
            return Ok(None);
        };
        settings.check(&access.issuers)?;
        let secret = settings.read_client_secret()?;
        let field = |e: KeyError| ("access.web_login.issuer".to_owned(), e.to_string());
        let issuer = access
            .issuers
            .iter()
            .find(|i| i.issuer == settings.issuer)
            .ok_or_else(|| field(KeyError::Parse("not a configured issuer".into())))?;
        let ca = issuer
            .ca_cert
            .as_ref()
            .ok_or_else(|| field(KeyError::Parse("no ca_cert".into())))?;
        let tls = fetch::https_client(ca).map_err(field)?;
        let verifier =
            TokenVerifier::from_settings(std::slice::from_ref(issuer), revoked).map_err(field)?;
        Ok(Some(Self {
            settings: settings.clone(),
            secret,
            tls,
            verifier,
            endpoints: tokio::sync::OnceCell::new(),
            pending: Mutex::default(),
            random: SystemRandom::new(),
        }))
    }

    /// The issuer's endpoints, fetched once (again after a failure).
    async fn endpoints(&self) -> Result<&Endpoints, LoginError> {
        self.endpoints
            .get_or_try_init(|| discover(&self.settings.issuer, &self.tls))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "identity provider not discovered");
                LoginError::Unavailable
            })
    }

    /// Where the issuer is to send back a browser that came to `uri` with `headers`: the
    /// configured redirect URI, else this host's `/board/callback`.
    fn redirect_uri(&self, uri: &http::Uri, headers: &HeaderMap) -> Result<String, LoginError> {
        if let Some(configured) = &self.settings.redirect_uri {
            return Ok(configured.clone());
        }
        // HTTP/2 names the host in the URI (`:authority`), HTTP/1.1 in `Host`.
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .ok_or(LoginError::Unavailable)?;
        let authority: http::uri::Authority = host.parse().map_err(|_| LoginError::Unavailable)?;
        if authority.as_str().contains('@') || authority.as_str().len() > 255 {
            return Err(LoginError::Unavailable);
        }
        Ok(format!("https://{authority}/board/callback"))
    }

    /// Starts a login for a browser that came to `uri` with `headers`: the issuer's
    /// authorization URL and the pre-login cookie's id.
    async fn start(
        &self,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Result<(String, String), LoginError> {
        let redirect_uri = self.redirect_uri(uri, headers)?;
        let endpoints = self.endpoints().await?;
        let id = self.random_text()?;
        let pending = Pending {
            redirect_uri,
            state: self.random_text()?,
            nonce: self.random_text()?,
            verifier: self.random_text()?,
            expires_at: SystemTime::now() + PENDING_LIFETIME,
        };
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            pending.verifier.as_bytes(),
        ));
        let mut scope = String::from("openid");
        for extra in self.settings.scopes.iter().filter(|s| *s != "openid") {
            scope.push(' ');
            scope.push_str(extra);
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &pending.redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{separator}{query}", endpoints.authorization);
        let mut open = self.lock();
        if open.len() >= MAX_PENDING {
            let now = SystemTime::now();
            open.retain(|_, p| p.expires_at > now);
            if open.len() >= MAX_PENDING {
                return Err(LoginError::Unavailable);
            }
        }
        open.insert(id.clone(), pending);
        Ok((url, id))
    }

    /// The login under way for the pre-login cookie in `headers`, taken: it is used once.
    fn take(&self, headers: &HeaderMap) -> Option<Pending> {
        let id = super::session::cookie_named(headers, LOGIN_COOKIE)?;
        let pending = self.lock().remove(id)?;
        (pending.expires_at > SystemTime::now()).then_some(pending)
    }

    /// Finishes a login from the callback's `query`: the person's login and when it ends.
    async fn finish(
        &self,
        pending: Pending,
        query: &HashMap<String, String>,
    ) -> Result<(Login, SystemTime), LoginError> {
        let sent_state = query.get("state").map(String::as_str).unwrap_or_default();
        if !same(&pending.state, sent_state) {
            return Err(LoginError::WrongState);
        }
        if query.contains_key("error") {
            return Err(LoginError::Denied);
        }
        let code = query
            .get("code")
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or(LoginError::Refused)?;
        let tokens = self
            .exchange(code, &pending.verifier, &pending.redirect_uri)
            .await?;
        let access_token = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or(LoginError::Refused)?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(LoginError::Refused)?;
        let verified = self
            .verifier
            .verify_fetching(access_token)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "web login: access token refused");
                LoginError::Refused
            })?;
        let id_claims = self
            .verifier
            .verify_id_token(id_token, &self.settings.client_id)
            .map_err(|error| {
                tracing::warn!(%error, "web login: id token refused");
                LoginError::Refused
            })?;
        let nonce = id_claims
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !same(&pending.nonce, nonce) {
            tracing::warn!("web login: id token with another nonce");
            return Err(LoginError::Refused);
        }
        let principal = verified.principal;
        if principal.kind != PrincipalKind::Staff {
            return Err(LoginError::NotStaff);
        }
        let display_name = id_claims
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty() && n.chars().count() <= MAX_NAME_CHARS)
            .map_or_else(|| principal.id.clone(), str::to_owned);
        let token_ends = UNIX_EPOCH + Duration::from_secs(verified.expires_at);
        let expires_at = token_ends.checked_sub(SESSION_MARGIN).unwrap_or(token_ends);
        if expires_at <= SystemTime::now() {
            return Err(LoginError::Refused);
        }
        Ok((
            Login {
                token: access_token.to_owned(),
                display_name,
                person_id: principal.id,
                teams: principal.teams,
            },
            expires_at,
        ))
    }

    /// The token answer for `code`, or why not.
    async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Value, LoginError> {
        // The serializer is not `Send`: the form is finished before any await.
        let (body, authorization) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_verifier", verifier);
            let authorization = match &self.secret {
                // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
                Some(secret) => {
                    let encode =
                        |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                    Some(format!(
                        "Basic {}",
                        STANDARD.encode(format!(
                            "{}:{}",
                            encode(&self.settings.client_id),
                            encode(secret)
                        ))
                    ))
                }
                None => {
                    form.append_pair("client_id", &self.settings.client_id);
                    None
                }
            };
            (form.finish(), authorization)
        };
        let endpoints = self.endpoints().await?;
        let (status, answer) = fetch::post_form(&endpoints.token, &self.tls, body, authorization)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "web login: token endpoint not reached");
                LoginError::Unavailable
            })?;
        if status != StatusCode::OK {
            // Only the OAuth error code: its description may echo what was sent.
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .filter(|e| {
                    e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .unwrap_or("unknown");
            tracing::warn!(%status, error, "web login: code not exchanged");
            return Err(LoginError::Refused);
        }
        Ok(answer)
    }

    fn random_text(&self) -> Result<String, LoginError> {
        let mut bytes = [0u8; 32];
        self.random
            .fill(&mut bytes)
            .map_err(|_| LoginError::Unavailable)?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `sent` is `expected` (compared in constant time).
fn same(expected: &str, sent: &str) -> bool {
    #[allow(deprecated)]
    ring::constant_time::verify_slices_are_equal(expected.as_bytes(), sent.as_bytes()).is_ok()
}

/// The `Set-Cookie` value of a login under way.
fn login_cookie(id: &str) -> String {
    format!(
        "{LOGIN_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        PENDING_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends a login under way in the browser.
fn cleared_login_cookie() -> String {
    format!("{LOGIN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// The authorization and token endpoints of `issuer`, by its discovery document.
async fn discover(issuer: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Endpoints, KeyError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document = fetch::get_json(&url, tls).await?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(KeyError::Parse("discovery names another issuer".into()));
    }
    let endpoint = |name: &str| -> Result<String, KeyError> {
        document
            .get(name)
            .and_then(Value::as_str)
            .filter(|url| url.starts_with("https://"))
            .map(str::to_owned)
            .ok_or_else(|| KeyError::Parse(format!("discovery has no https {name}")))
    };
    if let Some(methods) = document
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(KeyError::Parse("issuer does not support PKCE S256".into()));
    }
    Ok(Endpoints {
        authorization: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
    })
}

/// `/board/login` with a web login configured: off to the issuer.
pub(super) async fn start(web_login: &WebLogin, uri: &http::Uri, headers: &HeaderMap) -> Response {
    match web_login.start(uri, headers).await {
        Ok((url, id)) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, url),
                (header::SET_COOKIE, login_cookie(&id)),
            ],
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// `/board/callback`: back from the issuer.
pub(super) async fn callback(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(web_login) = board.settings.web_login.as_ref() else {
        return super::PageError::NotFound.into_response();
    };
    let query: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let Some(pending) = web_login.take(&headers) else {
        return LoginError::Expired.into_response();
    };
    let (login, expires_at) = match web_login.finish(pending, &query).await {
        Ok(done) => done,
        Err(error) => return error.into_response(),
    };
    let previous = board.sessions.find(&headers);
    let session = match board.sessions.log_in(previous.as_ref(), login, expires_at) {
        Ok(session) => session,
        Err(_) => return LoginError::Unavailable.into_response(),
    };
    tracing::info!("web board login");
    let mut response = pages::html(&pages::SignedInPage);
    for cookie in [session.cookie(), cleared_login_cookie()] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_login_cookies_are_host_only_http_only_secure_and_lax() {
        let cookie = login_cookie("abc");
        for part in [
            "__Host-",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Max-Age=600",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(cleared_login_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn every_login_error_is_a_swedish_page_that_ends_the_login_under_way() {
        for error in [
            LoginError::Denied,
            LoginError::Expired,
            LoginError::WrongState,
            LoginError::Refused,
            LoginError::NotStaff,
            LoginError::Unavailable,
        ] {
            let response = error.into_response();
            assert!(response.status().is_client_error() || response.status().is_server_error());
            let cookies: Vec<_> = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .collect();
            assert!(
                cookies.iter().any(|c| c
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("{LOGIN_COOKIE}=;"))),
                "{error:?}"
            );
            assert!(response.headers().get(header::LOCATION).is_none());
        }
    }

    #[test]
    fn a_web_login_that_cannot_work_is_refused_naming_the_key() {
        let issuer: crate::auth::IssuerSettings = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.region.example", "audience": "samsyn",
            "ca_cert": "/nonexistent/idp-ca.pem", "organisations": ["SE2321000255"],
        }))
        .unwrap();
        let web_login: WebLoginSettings = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.region.example", "client_id": "samsyn-board",
        }))
        .unwrap();
        let mut access = AccessSettings {
            issuers: vec![issuer],
            ..AccessSettings::default()
        };
        let revoked = Arc::new(RevokedSessions::default());
        assert!(
            WebLogin::from_settings(&access, Arc::clone(&revoked))
                .unwrap()
                .is_none()
        );
        access.web_login = Some(WebLoginSettings {
            client_secret_file: Some("/nonexistent/secret".into()),
            ..web_login.clone()
        });
        let (field, _) = WebLogin::from_settings(&access, Arc::clone(&revoked)).unwrap_err();
        assert_eq!(field, "access.web_login.client_secret_file");
        access.web_login = Some(web_login);
        let (field, reason) = WebLogin::from_settings(&access, revoked).unwrap_err();
        assert_eq!(field, "access.web_login.issuer");
        assert!(reason.contains("idp-ca.pem"), "{reason}");
    }

    #[test]
    fn state_and_nonce_compare_exactly() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", ""));
    }
}
