//! What the outbox carries: links, messages and their summaries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use http::Method;
use http::uri::PathAndQuery;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::OutboxError;

/// The content type of FHIR R4 JSON, the default for messages.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Longest link id and ordering key, in bytes.
const MAX_NAME: usize = 128;

/// The name of a link to one external system (e.g. `sip-samsa`): letters, digits, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LinkId(String);

impl LinkId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LinkId {
    type Err = OutboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= MAX_NAME
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(OutboxError::Invalid("link id"))
        }
    }
}

impl TryFrom<String> for LinkId {
    type Error = OutboxError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LinkId> for String {
    fn from(id: LinkId) -> Self {
        id.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One message to enqueue.
///
/// `id` must be stable for the change it carries (e.g. derived from the change's id):
/// enqueueing a known id again does nothing, and the far side dedups on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// The message id, sent as `X-Samsyn-Message-Id`.
    pub id: Uuid,
    /// The link that carries it.
    pub link: LinkId,
    /// Messages with the same key (the participant id) are delivered one at a time, in
    /// enqueue order.
    pub ordering_key: String,
    /// The HTTP method.
    pub method: Method,
    /// Path and query below the link's base path, starting with `/`.
    pub path: String,
    /// The request body (JSON text).
    pub body: String,
    /// The request's content type.
    pub content_type: String,
}

impl OutboundMessage {
    /// A FHIR JSON message (`Content-Type: application/fhir+json`).
    pub fn fhir_json(
        id: Uuid,
        link: LinkId,
        ordering_key: impl Into<String>,
        method: Method,
        path: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            id,
            link,
            ordering_key: ordering_key.into(),
            method,
            path: path.into(),
            body: body.into(),
            content_type: FHIR_JSON.to_owned(),
        }
    }

    /// Checks what the types cannot: key, path and content type.
    pub(crate) fn validate(&self) -> Result<(), OutboxError> {
        if self.ordering_key.is_empty() || self.ordering_key.len() > MAX_NAME {
            return Err(OutboxError::Invalid("ordering key"));
        }
        if !self.path.starts_with('/') || PathAndQuery::from_str(&self.path).is_err() {
            return Err(OutboxError::Invalid("message path"));
        }
        if http::HeaderValue::from_str(&self.content_type).is_err() || self.content_type.is_empty()
        {
            return Err(OutboxError::Invalid("content type"));
        }
        Ok(())
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting to be sent, or being retried.
    Pending,
    /// The far side answered 2xx.
    Delivered,
    /// Given up after repeated permanent errors; blocks later messages of its ordering key
    /// until retried.
    Dead,
}

impl MessageState {
    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A message without its body: for admin lists and delivery hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// The message id.
    pub id: Uuid,
    /// The link.
    pub link: LinkId,
    /// The ordering key (participant id).
    pub ordering_key: String,
    /// Position in the store's order.
    pub sequence: i64,
    /// The HTTP method.
    pub method: String,
    /// Path and query below the link's base path.
    pub path: String,
    /// Current state.
    pub state: MessageState,
    /// Sends tried so far.
    pub attempts: u32,
    /// Status code of the last failed answer, if there was one.
    pub last_status: Option<u16>,
    /// Category of the last failure (see [`crate::FailureKind::as_str`]).
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the far side accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Counts of one link's messages by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// The link.
    pub link: LinkId,
    /// Messages waiting or being retried.
    pub pending: u64,
    /// Messages accepted by the far side.
    pub delivered: u64,
    /// Messages given up on.
    pub dead: u64,
    /// When the oldest pending message was enqueued: how far the link lags.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str, path: &str) -> OutboundMessage {
        OutboundMessage::fhir_json(
            Uuid::nil(),
            LinkId("sip".to_owned()),
            key,
            Method::PUT,
            path,
            "{}",
        )
    }

    #[test]
    fn link_ids_are_plain_names() {
        assert!("sip-samsa_1.test".parse::<LinkId>().is_ok());
        for bad in ["", "sip samsa", "sip/x", &"x".repeat(129)] {
            assert!(bad.parse::<LinkId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn messages_need_a_key_and_an_absolute_path() {
        assert!(message("p-1", "/Patient/p-1?x=1").validate().is_ok());
        assert!(message("", "/Patient/p-1").validate().is_err());
        assert!(message("p-1", "Patient/p-1").validate().is_err());
        assert!(message("p-1", "/Patient/p 1").validate().is_err());
    }
}
