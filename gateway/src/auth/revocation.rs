//! Sessions refused before their tokens expire: one token by its id (`jti`), or every token
//! of a subject issued up to the moment of revocation (a lost card, a left job).

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// One revocation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The issuer whose tokens it concerns; `None` for every issuer.
    pub issuer: Option<String>,
    /// One token's id.
    pub token_id: Option<String>,
    /// Every token of this subject issued at or before `revoked_at`.
    pub subject: Option<String>,
    /// When it was made (seconds since the epoch).
    pub revoked_at: u64,
    /// When it may be forgotten: no token it concerns is valid after (seconds since the
    /// epoch).
    pub until: u64,
}

/// What a verified token is, for revocation: its issuer, subject, id and issue time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// The token's `iss`.
    pub issuer: String,
    /// The token's subject (as mapped).
    pub subject: String,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `iat`, when it has one.
    pub issued_at: Option<u64>,
}

impl Revocation {
    /// Whether it refuses `session`.
    pub fn covers(&self, session: &Session) -> bool {
        if self
            .issuer
            .as_ref()
            .is_some_and(|issuer| *issuer != session.issuer)
        {
            return false;
        }
        let by_id = self
            .token_id
            .as_ref()
            .is_some_and(|id| session.token_id.as_ref() == Some(id));
        // A token without `iat` cannot show it came after the revocation.
        let by_subject = self.subject.as_ref().is_some_and(|subject| {
            *subject == session.subject
                && session.issued_at.is_none_or(|iat| iat <= self.revoked_at)
        });
        by_id || by_subject
    }
}

/// The revocations in force, shared by the verifier and whatever records new ones; open
/// streams wait on [`RevokedSessions::changed`].
#[derive(Debug)]
pub struct RevokedSessions {
    revocations: RwLock<Vec<Revocation>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for RevokedSessions {
    fn default() -> Self {
        Self {
            revocations: RwLock::default(),
            changed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl RevokedSessions {
    /// Adds revocations (those already known are not repeated).
    pub fn add(&self, revocations: impl IntoIterator<Item = Revocation>) {
        let mut held = self
            .revocations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = held.len();
        for revocation in revocations {
            if !held.contains(&revocation) {
                held.push(revocation);
            }
        }
        if held.len() != before {
            self.changed.send_modify(|generation| *generation += 1);
        }
    }

    /// Forgets revocations no token can outlive any more.
    pub fn forget_before(&self, now: u64) {
        self.revocations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|r| r.until >= now);
    }

    /// Whether `session` is revoked.
    pub fn is_revoked(&self, session: &Session) -> bool {
        self.revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|r| r.covers(session))
    }

    /// A receiver that changes whenever a revocation is added.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(iat: Option<u64>) -> Session {
        Session {
            issuer: "https://idp.region.example".into(),
            subject: "SE2321000016-CM01".into(),
            token_id: Some("t-1".into()),
            issued_at: iat,
        }
    }

    fn revocation() -> Revocation {
        Revocation {
            issuer: None,
            token_id: None,
            subject: None,
            revoked_at: 1_000,
            until: 50_000,
        }
    }

    #[test]
    fn a_token_id_or_a_subject_up_to_the_revocation_is_refused() {
        let by_id = Revocation {
            token_id: Some("t-1".into()),
            ..revocation()
        };
        let by_subject = Revocation {
            subject: Some("SE2321000016-CM01".into()),
            ..revocation()
        };
        let other_issuer = Revocation {
            issuer: Some("https://idp.kommun.example".into()),
            ..by_subject.clone()
        };
        for (name, rule, iat, refused) in [
            ("by id", &by_id, Some(5_000), true),
            ("by subject, issued before", &by_subject, Some(999), true),
            ("by subject, issued at", &by_subject, Some(1_000), true),
            ("by subject, no iat", &by_subject, None, true),
            (
                "by subject, a new login after",
                &by_subject,
                Some(1_001),
                false,
            ),
            ("another issuer's subject", &other_issuer, Some(999), false),
        ] {
            assert_eq!(rule.covers(&session(iat)), refused, "{name}");
        }
    }

    #[test]
    fn adding_wakes_watchers_once_per_change() {
        let revoked = RevokedSessions::default();
        let mut changed = revoked.changed();
        let rule = Revocation {
            token_id: Some("t-1".into()),
            ..revocation()
        };
        revoked.add([rule.clone()]);
        assert!(changed.has_changed().unwrap());
        changed.mark_unchanged();
        revoked.add([rule]);
        assert!(!changed.has_changed().unwrap(), "a repeat changes nothing");
        assert!(revoked.is_revoked(&session(Some(1))));
        revoked.forget_before(60_000);
        assert!(!revoked.is_revoked(&session(Some(1))));
    }
}
