//! The gateway's own metrics: decisions, refusals, emergency accesses, audit commits and how
//! far behind the change feeds its access view runs. Labels are outcomes, codes and
//! categories only: never who called or about whom.

use std::sync::LazyLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use samsyn_proto::common::v1::DataCategory;

use crate::policy::{Action, category_code};

struct Instruments {
    decisions: Counter<u64>,
    refusals: Counter<u64>,
    emergencies: Counter<u64>,
    audit_commit: Histogram<f64>,
    feed_lag: Histogram<f64>,
    key_refreshes: Counter<u64>,
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = samsyn_kit::metrics::meter();
    Instruments {
        decisions: meter
            .u64_counter("samsyn.gateway.decisions")
            .with_description("Policy decisions, by outcome, action and data category")
            .build(),
        refusals: meter
            .u64_counter("samsyn.gateway.refusals")
            .with_description("Calls the gateway refused before forwarding, by reason")
            .build(),
        emergencies: meter
            .u64_counter("samsyn.gateway.emergency_accesses")
            .with_description("Reads allowed only by a declared emergency, by data category")
            .build(),
        audit_commit: meter
            .f64_histogram("samsyn.audit.commit.duration")
            .with_unit("ms")
            .with_description("Time until a call's audit event is durably committed")
            .with_boundaries(vec![
                0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
            ])
            .build(),
        feed_lag: meter
            .f64_histogram("samsyn.feed.lag")
            .with_unit("s")
            .with_description("Time from a change being recorded to a consumer applying it")
            .with_boundaries(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0,
            ])
            .build(),
        key_refreshes: meter
            .u64_counter("samsyn.gateway.token_key_refreshes")
            .with_description("Fetches of an identity provider's signing keys, by issuer")
            .build(),
    }
});

/// Counts one fetch of `issuer`'s keys that found `keys` usable keys.
pub(crate) fn key_refresh(issuer: &str, keys: usize) {
    INSTRUMENTS.key_refreshes.add(
        1,
        &[
            // An issuer URL is configuration, never a person.
            KeyValue::new("issuer", issuer.to_owned()),
            KeyValue::new("usable_keys", i64::try_from(keys).unwrap_or(i64::MAX)),
        ],
    );
}

/// Counts one policy decision.
pub(crate) fn decision(allowed: bool, action: Action, category: DataCategory) {
    INSTRUMENTS.decisions.add(
        1,
        &[
            KeyValue::new("decision.outcome", if allowed { "allow" } else { "deny" }),
            KeyValue::new("samsyn.action", action.as_str()),
            KeyValue::new("samsyn.data_category", category_code(category)),
        ],
    );
}

/// Counts a call refused before forwarding.
pub(crate) fn refusal(code: tonic::Code) {
    let reason = match code {
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "not_permitted",
        tonic::Code::InvalidArgument => "invalid_request",
        tonic::Code::Unavailable => "view_unavailable",
        tonic::Code::Unimplemented => "unknown_method",
        _ => "other",
    };
    INSTRUMENTS
        .refusals
        .add(1, &[KeyValue::new("reason", reason)]);
}

/// Counts a read allowed only by a declared emergency.
pub(crate) fn emergency_access(category: DataCategory) {
    INSTRUMENTS.emergencies.add(
        1,
        &[KeyValue::new(
            "samsyn.data_category",
            category_code(category),
        )],
    );
}

/// Records how long an audit commit took.
pub(crate) fn audit_commit(elapsed: Duration, committed: bool) {
    INSTRUMENTS.audit_commit.record(
        elapsed.as_secs_f64() * 1000.0,
        &[KeyValue::new(
            "outcome",
            if committed { "committed" } else { "failed" },
        )],
    );
}

/// Records how long after it was recorded a consumer took up `change`.
pub(crate) fn change_taken_up(
    consumer: &'static str,
    feed: &'static str,
    change: &samsyn_proto::common::v1::Change,
) {
    let recorded = change
        .recorded_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?));
    if let Some(recorded) = recorded {
        let lag = (chrono::Utc::now() - recorded).to_std().unwrap_or_default();
        feed_lag(consumer, feed, lag);
    }
}

/// Records how far behind its feed a consumer applied a change.
fn feed_lag(consumer: &'static str, feed: &'static str, lag: Duration) {
    INSTRUMENTS.feed_lag.record(
        lag.as_secs_f64(),
        &[
            KeyValue::new("samsyn.feed.consumer", consumer),
            KeyValue::new("samsyn.feed", feed),
        ],
    );
}
