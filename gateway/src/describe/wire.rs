//! The participant ids an answer names, read off its encoded bytes: only the fields that can
//! lead to a `participant_id` are followed, everything else is skipped unread, and nothing is
//! decoded into a message. Every answer the gateway forwards is checked this way, so it is
//! on every call's path.
//!
//! It finds what a decoder would (a singular `participant_id`, a string or an id message's
//! `value`, the last one written winning) and more, never less: a message field written
//! twice is searched in both parts, where a decoder would merge them.

use std::collections::HashSet;

use bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use super::{DescribeError, MAX_ANSWER_DEPTH};

/// The field every single-record check looks for.
const PARTICIPANT_FIELD: &str = "participant_id";

/// The message types (by full name) from which a `participant_id` field can be reached.
#[derive(Debug, Default)]
pub(super) struct Reach {
    types: HashSet<String>,
}

impl Reach {
    /// The types of `pool` that hold a `participant_id`, or a message field (not a map) of
    /// such a type, at any depth.
    pub(super) fn of(pool: &DescriptorPool) -> Self {
        let mut types: HashSet<String> = pool
            .all_messages()
            .filter(|m| m.get_field_by_name(PARTICIPANT_FIELD).is_some())
            .map(|m| m.full_name().to_owned())
            .collect();
        // Until nothing more is reached: a type reaches when one of its message fields does.
        loop {
            let more: Vec<String> = pool
                .all_messages()
                .filter(|m| !types.contains(m.full_name()))
                .filter(|m| {
                    m.fields().any(|f| {
                        !f.is_map()
                            && matches!(f.kind(), Kind::Message(inner) if types.contains(inner.full_name()))
                    })
                })
                .map(|m| m.full_name().to_owned())
                .collect();
            if more.is_empty() {
                return Self { types };
            }
            types.extend(more);
        }
    }

    fn reaches(&self, message: &MessageDescriptor) -> bool {
        self.types.contains(message.full_name())
    }
}

/// Appends to `found` every participant id the encoded `message` names, at any depth up to
/// [`MAX_ANSWER_DEPTH`].
pub(super) fn participants(
    reach: &Reach,
    message: &MessageDescriptor,
    mut bytes: &[u8],
    found: &mut Vec<String>,
    depth: usize,
) -> Result<(), DescribeError> {
    if depth > MAX_ANSWER_DEPTH {
        return Ok(());
    }
    // This message's own id: the last one written wins, as when decoding.
    let mut own: Option<String> = None;
    while bytes.has_remaining() {
        let (number, wire_type) = decode_key(&mut bytes).map_err(|_| DescribeError::Malformed)?;
        let field = message.get_field(number);
        match field.as_ref().map(|f| (f, id_shape(f))) {
            Some((_, Some(IdShape::Text))) => {
                own = Some(text(delimited(&mut bytes, wire_type)?)?);
            }
            Some((_, Some(IdShape::Message(value)))) => {
                let mut inner = delimited(&mut bytes, wire_type)?;
                while inner.has_remaining() {
                    let (number, wire_type) =
                        decode_key(&mut inner).map_err(|_| DescribeError::Malformed)?;
                    if number == value {
                        own = Some(text(delimited(&mut inner, wire_type)?)?);
                    } else {
                        skip(&mut inner, wire_type, number)?;
                    }
                }
            }
            Some((field, None)) if !field.is_map() => match field.kind() {
                Kind::Message(inner) if reach.reaches(&inner) => {
                    let chunk = delimited(&mut bytes, wire_type)?;
                    participants(reach, &inner, chunk, found, depth + 1)?;
                }
                _ => skip(&mut bytes, wire_type, number)?,
            },
            _ => skip(&mut bytes, wire_type, number)?,
        }
    }
    if let Some(id) = own.filter(|id| !id.is_empty()) {
        found.push(id);
    }
    Ok(())
}

/// How a `participant_id` field holds its id.
enum IdShape {
    /// As a string.
    Text,
    /// As an id message whose string field of this number holds it.
    Message(u32),
}

/// The shape of `field` when it is a (singular) participant id.
fn id_shape(field: &FieldDescriptor) -> Option<IdShape> {
    if field.name() != PARTICIPANT_FIELD || field.is_list() {
        return None;
    }
    match field.kind() {
        Kind::String => Some(IdShape::Text),
        Kind::Message(id) => id
            .get_field_by_name("value")
            .filter(|value| matches!(value.kind(), Kind::String) && !value.is_list())
            .map(|value| IdShape::Message(value.number())),
        _ => None,
    }
}

/// The bytes of a length-delimited field, taken off `bytes`.
fn delimited<'a>(bytes: &mut &'a [u8], wire_type: WireType) -> Result<&'a [u8], DescribeError> {
    if wire_type != WireType::LengthDelimited {
        return Err(DescribeError::Malformed);
    }
    let length = decode_varint(bytes).map_err(|_| DescribeError::Malformed)?;
    let length = usize::try_from(length).map_err(|_| DescribeError::Malformed)?;
    if length > bytes.len() {
        return Err(DescribeError::Malformed);
    }
    let (chunk, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(chunk)
}

fn text(bytes: &[u8]) -> Result<String, DescribeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DescribeError::Malformed)
}

fn skip(bytes: &mut &[u8], wire_type: WireType, number: u32) -> Result<(), DescribeError> {
    skip_field(wire_type, number, bytes, DecodeContext::default())
        .map_err(|_| DescribeError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost::Message;
    use prost_reflect::{DynamicMessage, Value};

    use super::super::{CallDescriber, collect_participants};
    use super::*;

    /// A message of type `descriptor` with every field filled in, to `depth` levels: each
    /// participant id distinct, every repeated message field twice.
    fn filled(descriptor: &MessageDescriptor, depth: usize, next_id: &mut u32) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields() {
            if field.is_map()
                || field
                    .containing_oneof()
                    .is_some_and(|o| o.fields().next() != Some(field.clone()))
            {
                continue;
            }
            let one = |next_id: &mut u32| -> Option<Value> {
                Some(match field.kind() {
                    Kind::String if field.name() == PARTICIPANT_FIELD => {
                        *next_id += 1;
                        Value::String(format!("0198c0de-0000-7000-8000-{:012}", *next_id))
                    }
                    Kind::String => Value::String("Åsa Öberg".into()),
                    Kind::Message(inner) if depth > 0 => {
                        Value::Message(filled(&inner, depth - 1, next_id))
                    }
                    Kind::Enum(_) | Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 => {
                        return Some(match field.kind() {
                            Kind::Enum(_) | Kind::Int32 => Value::EnumNumber(1),
                            _ => Value::U64(7),
                        })
                        .filter(|_| false);
                    }
                    Kind::Bool => Value::Bool(true),
                    _ => return None,
                })
            };
            if field.is_list() {
                let items: Vec<Value> = (0..2).filter_map(|_| one(next_id)).collect();
                if !items.is_empty() {
                    message.set_field(&field, Value::List(items));
                }
            } else if let Some(value) = one(next_id) {
                message.set_field(&field, value);
            }
        }
        message
    }

    fn decoded(descriptor: &MessageDescriptor, bytes: &[u8]) -> Option<Vec<String>> {
        let message = DynamicMessage::decode(descriptor.clone(), bytes).ok()?;
        let mut found = Vec::new();
        collect_participants(&message, &mut found, 0);
        found.sort();
        Some(found)
    }

    fn walked(reach: &Reach, descriptor: &MessageDescriptor, bytes: &[u8]) -> Option<Vec<String>> {
        let mut found = Vec::new();
        participants(reach, descriptor, bytes, &mut found, 0).ok()?;
        found.sort();
        Some(found)
    }

    #[test]
    fn the_walk_finds_what_decoding_finds_in_every_answer_of_the_contract() {
        let describer = CallDescriber::samsyn().unwrap();
        let pool = DescriptorPool::decode(samsyn_proto::FILE_DESCRIPTOR_SET).unwrap();
        let reach = Reach::of(&pool);
        let mut with_ids = 0;
        for path in describer.paths() {
            let output = describer.method(path).unwrap().1.output.clone();
            let bytes = filled(&output, 5, &mut 0).encode_to_vec();
            let expected = decoded(&output, &bytes).unwrap();
            assert_eq!(
                walked(&reach, &output, &bytes),
                Some(expected.clone()),
                "{path}"
            );
            with_ids += usize::from(!expected.is_empty());
            // Cut anywhere, the answer does not decode, and the walk does not pass it either
            // where the cut falls in what it reads.
            for cut in 0..bytes.len() {
                if decoded(&output, &bytes[..cut]).is_none() {
                    let walked = walked(&reach, &output, &bytes[..cut]);
                    assert!(
                        walked.is_none()
                            || walked.as_ref().is_some_and(|w| w.len() <= expected.len()),
                        "{path} cut at {cut}: {walked:?}"
                    );
                }
            }
        }
        assert!(with_ids >= 10, "answers naming participants: {with_ids}");
    }

    #[test]
    fn the_last_id_written_wins_as_when_decoding_and_bad_bytes_are_malformed() {
        let describer = CallDescriber::samsyn().unwrap();
        let path = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
        let output = describer.method(path).unwrap().1.output.clone();
        let pool = DescriptorPool::decode(samsyn_proto::FILE_DESCRIPTOR_SET).unwrap();
        let reach = Reach::of(&pool);
        let one = filled(&output, 5, &mut 0).encode_to_vec();
        let other = filled(&output, 5, &mut 100).encode_to_vec();
        // Two answers written one after the other decode as one, merged.
        let twice = [one.as_slice(), other.as_slice()].concat();
        let expected = decoded(&output, &twice).unwrap();
        let found = walked(&reach, &output, &twice).unwrap();
        assert!(
            expected.iter().all(|id| found.contains(id)),
            "every id a decoder sees: {expected:?} in {found:?}"
        );
        // A participant field with the wrong wire type, and an id that is not UTF-8.
        for bad in [
            vec![0x0a, 0x02, 0x08, 0x01],
            vec![0x0a, 0x03, 0x0a, 0x01, 0xff],
        ] {
            assert!(decoded(&output, &bad).is_none());
            assert!(walked(&reach, &output, &bad).is_none(), "{bad:?}");
        }
    }
}
