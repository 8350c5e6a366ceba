//! The ids every service and the gateway share, each with one checked type and one parsing
//! rule. On the wire they stay strings (or the `common.v1` id messages that wrap one); these
//! types are what a handler holds once it has parsed one.
//!
//! They sit beside the generated types because every service and the gateway already
//! depend on this crate: `ARCHITECTURE.md`'s dependency rule (a service depends on `proto`
//! and `kit`, never on another service) needs no change, and no crate gains a dependency.
//!
//! One rule per id, one spelling of each:
//! - **UUID-shaped ids** (participants, consents, restrictions, and each service's own
//!   record ids made with [`uuid_id!`](crate::uuid_id)) are the 36-character lower-case
//!   hyphenated form that the services generate. Upper case, braces, `urn:uuid:` and the
//!   32-digit form are refused, never folded: were two spellings accepted, a lookup keyed
//!   by the text (the gateway's access view, its emergency memory, a consent decision)
//!   could be asked about a participant under a name it does not know.
//! - **Codes** ([`OrganisationId`], [`UnitId`], [`StaffId`]: HSA-style ids, municipality
//!   codes) are 1 to 64 characters of letters, digits, `-`, `.`, `_` and `:`, kept exactly
//!   as written: case is part of an HSA-id.

use std::fmt;

#[doc(hidden)]
pub use uuid::Uuid;

use crate::common::v1 as common;

/// Why an id was refused; a handler shows it next to the field's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Absent or empty.
    #[error("required")]
    Missing,
    /// Not a UUID in its lower-case hyphenated form.
    #[error("must be a UUID in lower-case hyphenated form")]
    NotUuid,
    /// Not 1 to 64 characters of the allowed alphabet.
    #[error("must be 1 to 64 characters of letters, digits, '-', '.', '_' or ':'")]
    NotCode,
}

/// An id refused in a named field of a request (a dotted path such as `participant_id.value`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct FieldError {
    /// The field's dotted path.
    pub field: String,
    /// Why it was refused.
    pub error: IdError,
}

/// Parses the id an id message in `field` holds: `field` is named when the message is
/// missing, `field.value` when what it holds is refused.
fn in_field<T>(
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, FieldError> {
    let Some(value) = value else {
        return Err(FieldError {
            field: field.to_owned(),
            error: IdError::Missing,
        });
    };
    parse(value).map_err(|error| FieldError {
        field: format!("{field}.value"),
        error,
    })
}

/// The UUID in `value` if it is written in the one accepted form.
pub fn parse_uuid(value: &str) -> Result<Uuid, IdError> {
    if value.is_empty() {
        return Err(IdError::Missing);
    }
    let canonical = value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if !canonical {
        return Err(IdError::NotUuid);
    }
    Uuid::try_parse(value).map_err(|_| IdError::NotUuid)
}

/// Defines a UUID-shaped id type: parsed only from the lower-case hyphenated form, shown
/// and serialised in it. Services use it for their own record ids.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::ids::Uuid);

        impl $name {
            /// A new id that sorts after every id made before it (UUID version 7).
            pub fn generate() -> Self {
                Self($crate::ids::Uuid::now_v7())
            }

            /// Parses the lower-case hyphenated form, the only one accepted.
            pub fn parse(value: &str) -> Result<Self, $crate::ids::IdError> {
                $crate::ids::parse_uuid(value).map(Self)
            }

            /// The id as a UUID.
            pub fn uuid(self) -> $crate::ids::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::IdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl $crate::ids::serde::Serialize for $name {
            fn serialize<S: $crate::ids::serde::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> $crate::ids::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::ids::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(<D::Error as $crate::ids::serde::de::Error>::custom)
            }
        }
    };
}

#[doc(hidden)]
pub use serde;

uuid_id!(
    /// Samsyn's internal participant id; never a personal identity number.
    ParticipantId
);
uuid_id!(
    /// A consent's id (the consent service's; other services refer to consents by it).
    ConsentId
);
uuid_id!(
    /// A restriction's id (the consent service's; the gateway reads it from requests).
    RestrictionId
);

impl ParticipantId {
    /// Parses the id a request carries in `field`: `field` is named when it is missing,
    /// `field.value` when what it holds is not a participant id.
    pub fn from_field(
        field: &str,
        value: Option<&common::ParticipantId>,
    ) -> Result<Self, FieldError> {
        in_field(field, value.map(|id| id.value.as_str()), Self::parse)
    }

    /// The id as the wire carries it.
    pub fn to_proto(self) -> common::ParticipantId {
        common::ParticipantId {
            value: self.to_string(),
        }
    }
}

/// The longest organisation, unit or staff id.
pub const MAX_CODE_CHARS: usize = 64;

fn parse_code(value: &str) -> Result<String, IdError> {
    if value.is_empty() {
        return Err(IdError::Missing);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':');
    if value.len() > MAX_CODE_CHARS || !value.bytes().all(allowed) {
        return Err(IdError::NotCode);
    }
    Ok(value.to_owned())
}

macro_rules! code_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses 1 to 64 characters of letters, digits, `-`, `.`, `_` and `:`.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                parse_code(value).map(Self)
            }

            /// An optional id: empty means none.
            pub fn parse_optional(value: &str) -> Result<Option<Self>, IdError> {
                if value.is_empty() { Ok(None) } else { Self::parse(value).map(Some) }
            }

            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}

code_id!(
    /// An organisation's id: an HSA-style id for a region unit, a municipality code.
    OrganisationId
);
code_id!(
    /// A unit's id within an organisation.
    UnitId
);
code_id!(
    /// A member of staff's HSA-style id.
    StaffId
);

impl OrganisationId {
    /// Parses the id a request carries in `field`: `field` is named when it is missing,
    /// `field.value` when what it holds is not an organisation id.
    pub fn from_field(
        field: &str,
        value: Option<&common::OrganisationId>,
    ) -> Result<Self, FieldError> {
        in_field(field, value.map(|id| id.value.as_str()), Self::parse)
    }

    /// Whether this is a Swedish municipality code (four digits).
    pub fn is_municipality(&self) -> bool {
        self.0.len() == 4 && self.0.bytes().all(|b| b.is_ascii_digit())
    }

    /// The id as the wire carries it.
    pub fn to_proto(&self) -> common::OrganisationId {
        common::OrganisationId {
            value: self.0.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CANONICAL: &str = "0198c0de-0000-7000-8000-0000000000a1";

    #[test]
    fn a_participant_id_has_one_spelling() {
        let id = ParticipantId::parse(CANONICAL).unwrap();
        assert_eq!(id.to_string(), CANONICAL);
        for other in [
            "0198C0DE-0000-7000-8000-0000000000A1",
            "0198c0de-0000-7000-8000-0000000000A1",
            "0198c0de000070008000 0000000000a1",
            "0198c0de00007000800000000000000a1",
            "0198c0de0000700080000000000000a1",
            "{0198c0de-0000-7000-8000-0000000000a1}",
            "urn:uuid:0198c0de-0000-7000-8000-0000000000a1",
            " 0198c0de-0000-7000-8000-0000000000a1",
            "0198c0de-0000-7000-8000-0000000000a1 ",
            "0198c0de+0000-7000-8000-0000000000a1",
            "0198c0de-0000-7000-8000-0000000000g1",
            "19121212-1212",
            "p-1",
        ] {
            assert_eq!(
                ParticipantId::parse(other),
                Err(IdError::NotUuid),
                "{other}"
            );
        }
        assert_eq!(ParticipantId::parse(""), Err(IdError::Missing));
        let fresh = ParticipantId::generate();
        assert_eq!(ParticipantId::parse(&fresh.to_string()), Ok(fresh));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            ParticipantId::from_field("participant_id", None).unwrap_err(),
            FieldError {
                field: "participant_id".into(),
                error: IdError::Missing
            }
        );
        let upper = common::ParticipantId {
            value: CANONICAL.to_uppercase(),
        };
        assert_eq!(
            ParticipantId::from_field("subject", Some(&upper))
                .unwrap_err()
                .field,
            "subject.value"
        );
        let org = common::OrganisationId {
            value: "a b".into(),
        };
        assert_eq!(
            OrganisationId::from_field("owner", Some(&org)).unwrap_err(),
            FieldError {
                field: "owner.value".into(),
                error: IdError::NotCode
            }
        );
    }

    #[test]
    fn codes_are_kept_as_written() {
        for ok in ["SE2321000016-F00D", "1283", "hbg-soc-7", "urn:x.y_z"] {
            assert_eq!(StaffId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["a b", "Malmö", "a/b", &"x".repeat(65)] {
            assert_eq!(OrganisationId::parse(bad), Err(IdError::NotCode), "{bad}");
        }
        assert_eq!(UnitId::parse(""), Err(IdError::Missing));
        assert_eq!(UnitId::parse_optional(""), Ok(None));
        assert!(OrganisationId::parse("1280").unwrap().is_municipality());
        assert!(
            !OrganisationId::parse("SE2321000081-1")
                .unwrap()
                .is_municipality()
        );
    }

    #[test]
    fn serde_takes_the_same_rule() {
        let id = ParticipantId::parse(CANONICAL).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{CANONICAL}\""));
        assert_eq!(serde_json::from_str::<ParticipantId>(&json).unwrap(), id);
        let upper = format!("\"{}\"", CANONICAL.to_uppercase());
        assert!(serde_json::from_str::<ParticipantId>(&upper).is_err());
        assert!(serde_json::from_str::<StaffId>("\"a b\"").is_err());
    }
}
