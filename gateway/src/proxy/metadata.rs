//! What the gateway reads from and writes to a call's metadata besides credentials.

use std::time::Duration;

use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::access_view::FeedName;

/// Metadata key of an emergency reason in UTF-8 (binary metadata, so Swedish text fits).
pub const EMERGENCY_REASON_BIN: &str = "samsyn-emergency-reason-bin";
/// Metadata key of an emergency reason in plain ASCII.
pub const EMERGENCY_REASON: &str = "samsyn-emergency-reason";
/// Longest emergency reason accepted, in bytes.
pub(super) const MAX_EMERGENCY_REASON_BYTES: usize = 500;

/// The trace id of a `traceparent` (W3C: version-traceid-parentid-flags), when well formed.
pub(super) fn trace_id_of(traceparent: &str) -> Option<String> {
    let id = traceparent.split('-').nth(1)?;
    let valid = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && id.bytes().any(|b| b != b'0');
    valid.then(|| id.to_owned())
}

/// The trace id of the trace being exported now, if any.
pub(crate) fn current_trace_id() -> Option<String> {
    samsyn_kit::telemetry::current_traceparent().and_then(|tp| trace_id_of(&tp))
}

/// The trace id a caller sent, if any.
pub(super) fn caller_trace_id(headers: &http::HeaderMap) -> Option<String> {
    trace_id_of(headers.get("traceparent")?.to_str().ok()?)
}

/// A fresh random trace id for a call that came without one.
pub(super) fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The consistency token: a write's answer names the feed position it produced
/// (`consent:42`); a later call may send it back, to any replica, to be decided with it.
pub const CONSISTENCY_HEADER: &str = "samsyn-consistency";

/// The feed positions of a caller's consistency token (`consent:42,participants:7`).
pub(super) fn consistency_token(metadata: &MetadataMap) -> Result<Vec<(FeedName, u64)>, Status> {
    let Some(value) = metadata.get(CONSISTENCY_HEADER) else {
        return Ok(Vec::new());
    };
    let invalid = || -> Status {
        samsyn_kit::error::ApiError::invalid(
            CONSISTENCY_HEADER,
            "must be feed:position pairs as a write's answer gave them",
        )
        .into()
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.len() > 256 {
        return Err(invalid());
    }
    text.split(',')
        .map(|pair| {
            let (feed, sequence) = pair.trim().split_once(':').ok_or_else(invalid)?;
            let feed = FeedName::ALL
                .into_iter()
                .find(|f| f.as_str() == feed)
                .ok_or_else(invalid)?;
            Ok((feed, sequence.parse().map_err(|_| invalid())?))
        })
        .collect()
}

pub(super) fn written_sequence(metadata: &MetadataMap) -> Option<u64> {
    metadata
        .get(samsyn_kit::feed::WRITTEN_SEQUENCE_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The caller's `grpc-timeout`, if it sent a valid one.
pub(super) fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    samsyn_kit::serve::grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// The emergency reason of a call, if one was given; too long, not UTF-8 or blank is
/// refused rather than ignored, so a caller never believes an emergency was declared.
pub(super) fn emergency_reason(metadata: &MetadataMap) -> Result<Option<String>, Status> {
    let invalid = |description: &str| -> Status {
        samsyn_kit::error::ApiError::invalid(EMERGENCY_REASON_BIN, description).into()
    };
    let bytes = if let Some(value) = metadata.get_bin(EMERGENCY_REASON_BIN) {
        value
            .to_bytes()
            .map_err(|_| invalid("not valid base64"))?
            .to_vec()
    } else if let Some(value) = metadata.get(EMERGENCY_REASON) {
        value.as_encoded_bytes().to_vec()
    } else {
        return Ok(None);
    };
    if bytes.len() > MAX_EMERGENCY_REASON_BYTES {
        return Err(invalid("at most 500 bytes"));
    }
    let reason = String::from_utf8(bytes).map_err(|_| invalid("must be UTF-8 text"))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid("must not be blank"));
    }
    Ok(Some(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_says() {
        let mut metadata = MetadataMap::new();
        for (value, expected) in [
            ("250m", Some(Duration::from_millis(250))),
            ("3S", Some(Duration::from_secs(3))),
            ("1H", Some(Duration::from_secs(3600))),
            ("m", None),
            ("12x", None),
            ("1234567890S", None),
        ] {
            metadata.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), expected, "{value}");
        }
    }

    #[test]
    fn emergency_reasons_are_checked() {
        let mut metadata = MetadataMap::new();
        assert_eq!(emergency_reason(&metadata).unwrap(), None);
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(
                "Akut suicidrisk, jourläkare på väg".as_bytes(),
            ),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap().as_deref(),
            Some("Akut suicidrisk, jourläkare på väg")
        );
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(&[b'x'; 501]),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap_err().code(),
            Code::InvalidArgument
        );
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(b"   "),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}
