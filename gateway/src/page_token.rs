//! Opaque page tokens: a service's page token (which may name the key of the last row, a row
//! the caller may not have been shown) is sealed with a gateway-only key before it leaves, and
//! bound to the RPC and the principal it was issued to, so it tells the caller nothing and
//! cannot be replayed by anyone else or on another method.
//!
//! A token is `base64url(key id || nonce || ChaCha20-Poly1305(padded service token))` with
//! the key id, RPC path and principal id as associated data. The service token is padded to a
//! multiple of [`PAD_BLOCK`] bytes so that its length, too, says next to nothing.
//!
//! Keys come from configuration (secrets shared by every gateway replica, so a token from
//! one opens on another and survives a restart): the first seals, every listed key opens, so
//! a new key is rolled out by listing it second, then first, then dropping the old one.
//! Without configured keys a process makes one of its own (key id 0): its tokens die with
//! it, which for a page token just means "start over".

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The longest page token, in characters, that the gateway accepts or hands out.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// Service tokens are padded to a multiple of this many bytes before sealing.
pub const PAD_BLOCK: usize = 64;

const TAG_LEN: usize = 16;
/// Length of a page token key, in bytes.
pub const KEY_LEN: usize = 32;
/// A page token key with its id.
pub type KeyById = (u8, [u8; KEY_LEN]);

/// Length of the key id in front of a token.
const KEY_ID_LEN: usize = 1;
/// Names the token format in the associated data, so a key reused elsewhere cannot be fooled.
const CONTEXT: &[u8] = b"samsyn.gateway.page_token.v1";
const PAGE_REQUEST: &str = "samsyn.common.v1.PageRequest";
const PAGE_RESPONSE: &str = "samsyn.common.v1.PageResponse";

/// Why a page token or a paged message was refused. Never carries token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    /// The token is longer than [`MAX_TOKEN_CHARS`].
    #[error("page token too long")]
    TooLong,
    /// The token is not URL-safe base64 without padding.
    #[error("page token is not base64")]
    NotBase64,
    /// The token decodes to too few bytes to be one of ours.
    #[error("page token has the wrong length")]
    WrongLength,
    /// The token was not sealed by this gateway for this RPC and principal, or was altered.
    #[error("page token refused")]
    Refused,
    /// A service's page token is too long to seal within [`MAX_TOKEN_CHARS`].
    #[error("service page token too long to seal")]
    ServiceTokenTooLong,
    /// The request or response bytes do not decode as the method's message.
    #[error("message does not decode")]
    Malformed,
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Random,
    /// The key was not accepted by the cipher.
    #[error("page token key rejected")]
    Key,
    /// The descriptor set is broken (a build problem, not a caller's).
    #[error("descriptor set: {0}")]
    Descriptors(String),
}

/// A top-level paging field of a message and the token field inside it.
#[derive(Debug, Clone)]
struct PageField {
    page: FieldDescriptor,
    token: FieldDescriptor,
}

#[derive(Debug, Clone, Default)]
struct PagedMethod {
    input: Option<(MessageDescriptor, Vec<PageField>)>,
    output: Option<(MessageDescriptor, Vec<PageField>)>,
}

/// Which methods page: for each `/pkg.Service/Method` path, its top-level `PageRequest` and
/// `PageResponse` fields.
#[derive(Debug, Clone, Default)]
pub struct PagedMethods {
    methods: HashMap<String, PagedMethod>,
}

impl PagedMethods {
    /// The paged methods of Samsyn's own contract.
    pub fn samsyn() -> Result<Self, PageTokenError> {
        Self::from_descriptor_set(samsyn_proto::FILE_DESCRIPTOR_SET)
    }

    /// The paged methods of any encoded `FileDescriptorSet`.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, PageTokenError> {
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| PageTokenError::Descriptors(e.to_string()))?;
        let mut methods = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                let input = method.input();
                let output = method.output();
                let paged = PagedMethod {
                    input: page_fields(&input, PAGE_REQUEST, "page_token")?
                        .map(|fields| (input, fields)),
                    output: page_fields(&output, PAGE_RESPONSE, "next_page_token")?
                        .map(|fields| (output, fields)),
                };
                if paged.input.is_some() || paged.output.is_some() {
                    let path = format!("/{}/{}", service.full_name(), method.name());
                    methods.insert(path, paged);
                }
            }
        }
        Ok(Self { methods })
    }

    /// Whether the method's request or response carries a page token.
    pub fn is_paged(&self, rpc: &str) -> bool {
        self.methods.contains_key(rpc)
    }

    /// Every paged method path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }
}

/// The top-level singular fields of `message` of type `page_type`, each with its string field
/// `token_name`; `None` when there are none.
fn page_fields(
    message: &MessageDescriptor,
    page_type: &str,
    token_name: &str,
) -> Result<Option<Vec<PageField>>, PageTokenError> {
    let mut found = Vec::new();
    for page in message.fields() {
        let Kind::Message(page_message) = page.kind() else {
            continue;
        };
        if page_message.full_name() != page_type || page.is_list() || page.is_map() {
            continue;
        }
        let token = page_message
            .get_field_by_name(token_name)
            .filter(|token| token.kind() == Kind::String && !token.is_list())
            .ok_or_else(|| {
                PageTokenError::Descriptors(format!("{page_type} has no string {token_name}"))
            })?;
        found.push(PageField { page, token });
    }
    Ok((!found.is_empty()).then_some(found))
}

/// Seals and opens page tokens, and rewrites them in paged requests and responses.
pub struct PageTokens {
    /// Keys by id; the first seals.
    keys: Vec<(u8, LessSafeKey)>,
    random: SystemRandom,
    methods: PagedMethods,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTokens")
            .field("paged_methods", &self.methods.methods.len())
            .finish_non_exhaustive()
    }
}

impl PageTokens {
    /// Page tokens under a fresh random key of this process (key id 0), for Samsyn's paged
    /// methods.
    pub fn new() -> Result<Self, PageTokenError> {
        let random = SystemRandom::new();
        let mut key = [0u8; KEY_LEN];
        random.fill(&mut key).map_err(|_| PageTokenError::Random)?;
        Self::with_key(key)
    }

    /// Page tokens under a given key (key id 0), for Samsyn's paged methods.
    pub fn with_key(key: [u8; KEY_LEN]) -> Result<Self, PageTokenError> {
        Self::with_keys(vec![(0, key)])
    }

    /// Page tokens under configured keys by id: the first seals, all open.
    pub fn with_keys(keys: Vec<KeyById>) -> Result<Self, PageTokenError> {
        if keys.is_empty() {
            return Err(PageTokenError::Key);
        }
        let keys = keys
            .into_iter()
            .map(|(id, key)| {
                UnboundKey::new(&CHACHA20_POLY1305, &key)
                    .map(|key| (id, LessSafeKey::new(key)))
                    .map_err(|_| PageTokenError::Key)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            random: SystemRandom::new(),
            methods: PagedMethods::samsyn()?,
        })
    }

    /// The paged methods this rewrites.
    pub fn methods(&self) -> &PagedMethods {
        &self.methods
    }

    /// Seals a service's page token for one RPC and principal.
    pub fn seal(
        &self,
        rpc: &str,
        principal: &str,
        service_token: &str,
    ) -> Result<String, PageTokenError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| PageTokenError::Random)?;
        let (id, key) = &self.keys[0];
        let mut sealed =
            Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + padded_len(service_token.len()) + TAG_LEN);
        sealed.push(*id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(service_token.as_bytes());
        pad(&mut sealed, KEY_ID_LEN + NONCE_LEN);
        let mut in_out = sealed.split_off(KEY_ID_LEN + NONCE_LEN);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(*id, rpc, principal)),
            &mut in_out,
        )
        .map_err(|_| PageTokenError::ServiceTokenTooLong)?;
        sealed.extend_from_slice(&in_out);
        let token = URL_SAFE_NO_PAD.encode(&sealed);
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PageTokenError::ServiceTokenTooLong);
        }
        Ok(token)
    }

    /// Opens a token sealed by [`Self::seal`] for the same RPC and principal.
    pub fn open(&self, rpc: &str, principal: &str, token: &str) -> Result<String, PageTokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PageTokenError::TooLong);
        }
        let mut bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| PageTokenError::NotBase64)?;
        if bytes.len() < KEY_ID_LEN + NONCE_LEN + PAD_BLOCK + TAG_LEN {
            return Err(PageTokenError::WrongLength);
        }
        let mut in_out = bytes.split_off(KEY_ID_LEN + NONCE_LEN);
        let id = bytes[0];
        let nonce = Nonce::try_assume_unique_for_key(&bytes[KEY_ID_LEN..])
            .map_err(|_| PageTokenError::WrongLength)?;
        // A retired or unknown key id is refused like a forgery.
        let (_, key) = self
            .keys
            .iter()
            .find(|(known, _)| *known == id)
            .ok_or(PageTokenError::Refused)?;
        let plain = key
            .open_in_place(
                nonce,
                Aad::from(associated_data(id, rpc, principal)),
                &mut in_out,
            )
            .map_err(|_| PageTokenError::Refused)?;
        // Authentic, so the padding and text are ours; still, refuse rather than panic.
        let unpadded = unpad(plain).ok_or(PageTokenError::Refused)?;
        String::from_utf8(unpadded.to_vec()).map_err(|_| PageTokenError::Refused)
    }

    /// Replaces the caller's page token in an encoded request with the service's own.
    /// `Ok(None)` when there is nothing to replace: forward the original bytes.
    pub fn open_request(
        &self,
        rpc: &str,
        principal: &str,
        request: &[u8],
    ) -> Result<Option<Vec<u8>>, PageTokenError> {
        let Some((input, fields)) = self.methods.methods.get(rpc).and_then(|m| m.input.as_ref())
        else {
            return Ok(None);
        };
        rewrite(input, fields, request, |token| {
            self.open(rpc, principal, token)
        })
    }

    /// Replaces the service's next-page token in an encoded response with a sealed one.
    /// `Ok(None)` when there is nothing to replace: return the original bytes.
    pub fn seal_response(
        &self,
        rpc: &str,
        principal: &str,
        response: &[u8],
    ) -> Result<Option<Vec<u8>>, PageTokenError> {
        let Some((output, fields)) = self
            .methods
            .methods
            .get(rpc)
            .and_then(|m| m.output.as_ref())
        else {
            return Ok(None);
        };
        rewrite(output, fields, response, |token| {
            self.seal(rpc, principal, token)
        })
    }
}

/// A caller's place in a narrowed list: the service's page to fetch, and how many of its
/// rows (shown or withheld) were already gone through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The service's own page token; empty for its first page.
    pub service_token: String,
    /// Rows of that page already gone through.
    pub skip: usize,
}

impl PageTokens {
    /// The request's page size (0: the default) and the caller's cursor, opened from its
    /// sealed token; `None` when the method's request does not page.
    pub fn request_cursor(
        &self,
        rpc: &str,
        principal: &str,
        request: &[u8],
    ) -> Result<Option<(u32, Cursor)>, PageTokenError> {
        let Some((input, fields)) = self.methods.methods.get(rpc).and_then(|m| m.input.as_ref())
        else {
            return Ok(None);
        };
        let message = DynamicMessage::decode(input.clone(), request)
            .map_err(|_| PageTokenError::Malformed)?;
        let Some(field) = fields.first() else {
            return Ok(None);
        };
        let Some(page) = message.get_field(&field.page).as_message().cloned() else {
            return Ok(Some((0, Cursor::default())));
        };
        let size = page
            .get_field_by_name("page_size")
            .and_then(|v| v.as_u32())
            .unwrap_or(0);
        let token = page
            .get_field(&field.token)
            .as_str()
            .unwrap_or("")
            .to_owned();
        if token.is_empty() {
            return Ok(Some((size, Cursor::default())));
        }
        let opened = self.open(rpc, principal, &token)?;
        let (skip, service_token) = opened.split_once(':').ok_or(PageTokenError::Refused)?;
        let skip = skip.parse().map_err(|_| PageTokenError::Refused)?;
        Ok(Some((
            size,
            Cursor {
                service_token: service_token.to_owned(),
                skip,
            },
        )))
    }

    /// The request for the service's page `service_token` of `page_size` rows.
    pub fn request_at(
        &self,
        rpc: &str,
        request: &[u8],
        service_token: &str,
        page_size: u32,
    ) -> Result<Vec<u8>, PageTokenError> {
        let Some((input, fields)) = self.methods.methods.get(rpc).and_then(|m| m.input.as_ref())
        else {
            return Ok(request.to_vec());
        };
        let with_token = set_token(input, fields, request, service_token)?;
        let mut message = DynamicMessage::decode(input.clone(), with_token.as_slice())
            .map_err(|_| PageTokenError::Malformed)?;
        if let Some(field) = fields.first()
            && let Value::Message(page) = message.get_field_mut(&field.page)
        {
            page.set_field_by_name("page_size", Value::U32(page_size));
        }
        Ok(message.encode_to_vec())
    }

    /// The service's next-page token in a response; empty on its last page.
    pub fn response_next(&self, rpc: &str, response: &[u8]) -> Result<String, PageTokenError> {
        let Some((output, fields)) = self
            .methods
            .methods
            .get(rpc)
            .and_then(|m| m.output.as_ref())
        else {
            return Ok(String::new());
        };
        let message = DynamicMessage::decode(output.clone(), response)
            .map_err(|_| PageTokenError::Malformed)?;
        Ok(fields
            .first()
            .and_then(|f| {
                message
                    .get_field(&f.page)
                    .as_message()
                    .map(|p| p.get_field(&f.token).as_str().unwrap_or("").to_owned())
            })
            .unwrap_or_default())
    }

    /// The response with its next-page token set to `next`, sealed for this caller; cleared
    /// when there is no next page.
    pub fn response_with(
        &self,
        rpc: &str,
        principal: &str,
        response: &[u8],
        next: Option<&Cursor>,
    ) -> Result<Vec<u8>, PageTokenError> {
        let Some((output, fields)) = self
            .methods
            .methods
            .get(rpc)
            .and_then(|m| m.output.as_ref())
        else {
            return Ok(response.to_vec());
        };
        let token = match next {
            Some(cursor) => self.seal(
                rpc,
                principal,
                &format!("{}:{}", cursor.skip, cursor.service_token),
            )?,
            None => String::new(),
        };
        set_token(output, fields, response, &token)
    }
}

/// Sets the token of the first paging field of an encoded message (creating the page).
fn set_token(
    descriptor: &MessageDescriptor,
    fields: &[PageField],
    bytes: &[u8],
    token: &str,
) -> Result<Vec<u8>, PageTokenError> {
    let mut message =
        DynamicMessage::decode(descriptor.clone(), bytes).map_err(|_| PageTokenError::Malformed)?;
    if let Some(field) = fields.first() {
        let Value::Message(page) = message.get_field_mut(&field.page) else {
            return Err(PageTokenError::Malformed);
        };
        page.set_field(&field.token, Value::String(token.to_owned()));
    }
    Ok(message.encode_to_vec())
}

/// Decodes `bytes`, maps every non-empty token in the paging fields, and re-encodes; `None`
/// when no token was set.
fn rewrite(
    descriptor: &MessageDescriptor,
    fields: &[PageField],
    bytes: &[u8],
    mut map: impl FnMut(&str) -> Result<String, PageTokenError>,
) -> Result<Option<Vec<u8>>, PageTokenError> {
    let mut message =
        DynamicMessage::decode(descriptor.clone(), bytes).map_err(|_| PageTokenError::Malformed)?;
    let mut changed = false;
    for field in fields {
        if !message.has_field(&field.page) {
            continue;
        }
        let Value::Message(page) = message.get_field_mut(&field.page) else {
            return Err(PageTokenError::Malformed);
        };
        let Value::String(token) = page.get_field_mut(&field.token) else {
            return Err(PageTokenError::Malformed);
        };
        if token.is_empty() {
            continue;
        }
        *token = map(token)?;
        changed = true;
    }
    Ok(changed.then(|| message.encode_to_vec()))
}

/// The associated data: the format, then the RPC and the principal, each length-prefixed so
/// that no two pairs run together into the same bytes.
fn associated_data(key_id: u8, rpc: &str, principal: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(CONTEXT.len() + 25 + rpc.len() + principal.len());
    for part in [CONTEXT, &[key_id][..], rpc.as_bytes(), principal.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

fn padded_len(len: usize) -> usize {
    (len / PAD_BLOCK + 1) * PAD_BLOCK
}

/// ISO/IEC 7816-4 padding of `buf[start..]`: one 0x80 byte, then zeros to a whole block.
fn pad(buf: &mut Vec<u8>, start: usize) {
    let target = start + padded_len(buf.len() - start);
    buf.push(0x80);
    buf.resize(target, 0);
}

fn unpad(plain: &[u8]) -> Option<&[u8]> {
    let end = plain.iter().rposition(|&b| b != 0)?;
    (plain[end] == 0x80).then(|| &plain[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsyn_proto::common::v1::{OrganisationId, PageRequest, PageResponse, ParticipantId};
    use samsyn_proto::participants::v1 as participants;

    const LIST: &str = "/samsyn.participants.v1.ParticipantsService/ListParticipants";
    const GET: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
    const ALICE: &str = "staff:SE2321000016-1001";
    const BOB: &str = "staff:SE2321000016-1002";
    /// A service token that is a readable participant id: the key of a possibly withheld row.
    const ROW_KEY: &str = "0198c0de-0000-7000-8000-00000000002a";

    fn tokens() -> PageTokens {
        PageTokens::with_key([7; 32]).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_for_the_same_rpc_and_principal() {
        let tokens = tokens();
        for service_token in ["", "x", ROW_KEY, "Åsa Öberg|ä", &"k".repeat(1400)] {
            let sealed = tokens.seal(LIST, ALICE, service_token).unwrap();
            assert!(sealed.len() <= MAX_TOKEN_CHARS);
            assert_eq!(tokens.open(LIST, ALICE, &sealed).unwrap(), service_token);
        }
    }

    #[test]
    fn a_sealed_token_hides_the_service_token() {
        let tokens = tokens();
        let sealed = tokens.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert!(!sealed.contains(ROW_KEY));
        assert!(!sealed.contains("0198c0de"));
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(ROW_KEY)[..16]));
        let again = tokens.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert_ne!(sealed, again, "a fresh nonce each time");
        // Lengths within one pad block look alike.
        let short = tokens.seal(LIST, ALICE, "1").unwrap();
        assert_eq!(short.len(), sealed.len());
        let longer = tokens.seal(LIST, ALICE, &"k".repeat(PAD_BLOCK)).unwrap();
        assert!(longer.len() > sealed.len());
    }

    #[test]
    fn a_token_of_another_principal_or_rpc_or_key_is_refused() {
        let tokens = tokens();
        let sealed = tokens.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert_eq!(
            tokens.open(LIST, BOB, &sealed),
            Err(PageTokenError::Refused)
        );
        assert_eq!(
            tokens.open("/samsyn.board.v1.BoardService/ListBoards", ALICE, &sealed),
            Err(PageTokenError::Refused)
        );
        // Length prefixes keep (rpc, principal) pairs apart even when they concatenate alike.
        let joined = tokens.seal("/a/b", "cd", "t").unwrap();
        assert_eq!(
            tokens.open("/a/bc", "d", &joined),
            Err(PageTokenError::Refused)
        );
        let other_gateway = PageTokens::with_key([8; 32]).unwrap();
        assert_eq!(
            other_gateway.open(LIST, ALICE, &sealed),
            Err(PageTokenError::Refused)
        );
    }

    #[test]
    fn replicas_sharing_keys_open_each_others_tokens_and_keys_rotate() {
        let replica_a = PageTokens::with_keys(vec![(1, [1; 32])]).unwrap();
        let replica_b = PageTokens::with_keys(vec![(1, [1; 32])]).unwrap();
        let sealed = replica_a.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert_eq!(replica_b.open(LIST, ALICE, &sealed).unwrap(), ROW_KEY);
        // Rotation: key 2 seals, key 1 still opens tokens in flight.
        let rotated = PageTokens::with_keys(vec![(2, [2; 32]), (1, [1; 32])]).unwrap();
        assert_eq!(rotated.open(LIST, ALICE, &sealed).unwrap(), ROW_KEY);
        let new = rotated.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert_eq!(
            replica_a.open(LIST, ALICE, &new),
            Err(PageTokenError::Refused),
            "a key not (yet) known"
        );
        // Key 1 retired: its tokens are refused.
        let retired = PageTokens::with_keys(vec![(2, [2; 32])]).unwrap();
        assert_eq!(retired.open(LIST, ALICE, &new).unwrap(), ROW_KEY);
        assert_eq!(
            retired.open(LIST, ALICE, &sealed),
            Err(PageTokenError::Refused)
        );
        // The same id under another secret opens nothing.
        let impostor = PageTokens::with_keys(vec![(1, [9; 32])]).unwrap();
        assert_eq!(
            impostor.open(LIST, ALICE, &sealed),
            Err(PageTokenError::Refused)
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let tokens = tokens();
        let sealed = tokens.seal(LIST, ALICE, ROW_KEY).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let tampered = URL_SAFE_NO_PAD.encode(&tampered);
            assert_eq!(
                tokens.open(LIST, ALICE, &tampered),
                Err(PageTokenError::Refused),
                "byte {i}"
            );
        }
        let truncated = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
        assert_eq!(
            tokens.open(LIST, ALICE, &truncated),
            Err(PageTokenError::WrongLength)
        );
        let mut extended = bytes.clone();
        extended.push(0);
        let extended = URL_SAFE_NO_PAD.encode(&extended);
        assert_eq!(
            tokens.open(LIST, ALICE, &extended),
            Err(PageTokenError::Refused)
        );
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let tokens = tokens();
        // The raw service token is refused (a UUID happens to be URL-safe base64).
        assert_eq!(
            tokens.open(LIST, ALICE, ROW_KEY),
            Err(PageTokenError::WrongLength)
        );
        assert_eq!(
            tokens.open(LIST, ALICE, "not base64!"),
            Err(PageTokenError::NotBase64)
        );
        assert_eq!(
            tokens.open(LIST, ALICE, "abcd"),
            Err(PageTokenError::WrongLength)
        );
        let sealed = tokens.seal(LIST, ALICE, ROW_KEY).unwrap();
        assert_eq!(
            tokens.open(LIST, ALICE, &format!("{sealed}==")),
            Err(PageTokenError::NotBase64),
            "no padding"
        );
        let long = "A".repeat(MAX_TOKEN_CHARS + 1);
        assert_eq!(
            tokens.open(LIST, ALICE, &long),
            Err(PageTokenError::TooLong)
        );
        let at_limit = "A".repeat(MAX_TOKEN_CHARS);
        assert_eq!(
            tokens.open(LIST, ALICE, &at_limit),
            Err(PageTokenError::Refused)
        );
        for error in [
            PageTokenError::TooLong,
            PageTokenError::NotBase64,
            PageTokenError::WrongLength,
            PageTokenError::Refused,
        ] {
            assert!(!error.to_string().contains(ROW_KEY));
        }
    }

    #[test]
    fn a_service_token_too_long_to_hand_out_is_refused() {
        let tokens = tokens();
        // 1471 bytes pad to 1472, seal to 1500 bytes: 2000 characters; 1472 would pad to 1536.
        let longest = "k".repeat(1471);
        let sealed = tokens.seal(LIST, ALICE, &longest).unwrap();
        assert_eq!(tokens.open(LIST, ALICE, &sealed).unwrap(), longest);
        assert_eq!(
            tokens.seal(LIST, ALICE, &"k".repeat(1472)),
            Err(PageTokenError::ServiceTokenTooLong)
        );
    }

    fn list_request(page_token: &str) -> participants::ListParticipantsRequest {
        participants::ListParticipantsRequest {
            page: Some(PageRequest {
                page_size: 25,
                page_token: page_token.into(),
            }),
            status: 2,
            staff_id: "SE2321000016-1001".into(),
            organisation_id: Some(OrganisationId {
                value: "Socialtjänsten Älvsjö".into(),
            }),
            home_municipality_code: "0180".into(),
            personal_identity_number: String::new(),
        }
    }

    fn list_response(next_page_token: &str) -> participants::ListParticipantsResponse {
        participants::ListParticipantsResponse {
            participants: vec![
                participants::ParticipantSummary {
                    participant_id: Some(ParticipantId {
                        value: "p-1".into(),
                    }),
                    name: "Åke Ängström-Öst".into(),
                    home_municipality_code: "0180".into(),
                    status: 2,
                    revision: None,
                    ..Default::default()
                },
                participants::ParticipantSummary {
                    name: "Märta Håkansson".into(),
                    ..Default::default()
                },
            ],
            page: Some(PageResponse {
                next_page_token: next_page_token.into(),
            }),
        }
    }

    #[test]
    fn a_list_method_is_rewritten_both_ways_keeping_everything_else() {
        let tokens = tokens();
        assert!(tokens.methods().is_paged(LIST));

        // The service's response: its token is sealed, every other field kept.
        let response = list_response(ROW_KEY).encode_to_vec();
        let sealed = tokens
            .seal_response(LIST, ALICE, &response)
            .unwrap()
            .unwrap();
        let sealed = participants::ListParticipantsResponse::decode(sealed.as_slice()).unwrap();
        let sealed_token = sealed.page.as_ref().unwrap().next_page_token.clone();
        assert!(!sealed_token.contains(ROW_KEY));
        assert_eq!(sealed, list_response(&sealed_token));

        // The caller sends it back: the service gets its own token, every other field kept.
        let request = list_request(&sealed_token).encode_to_vec();
        let opened = tokens.open_request(LIST, ALICE, &request).unwrap().unwrap();
        let opened = participants::ListParticipantsRequest::decode(opened.as_slice()).unwrap();
        assert_eq!(opened, list_request(ROW_KEY));

        // Another principal, or the raw service token, is refused.
        assert_eq!(
            tokens.open_request(LIST, BOB, &request),
            Err(PageTokenError::Refused)
        );
        let raw = list_request(ROW_KEY).encode_to_vec();
        assert!(tokens.open_request(LIST, ALICE, &raw).is_err());
    }

    #[test]
    fn unknown_fields_survive_the_rewrite() {
        let tokens = tokens();
        let mut request = list_request(&tokens.seal(LIST, ALICE, ROW_KEY).unwrap()).encode_to_vec();
        // Field 99, length-delimited, "ny": a field a newer client knows and we do not.
        request.extend_from_slice(&[0x9a, 0x06, 0x02, b'n', b'y']);
        let opened = tokens.open_request(LIST, ALICE, &request).unwrap().unwrap();
        assert!(
            opened
                .windows(5)
                .any(|w| w == [0x9a, 0x06, 0x02, b'n', b'y'])
        );
    }

    #[test]
    fn nothing_to_rewrite_leaves_the_bytes_alone() {
        let tokens = tokens();
        // First page: no token yet.
        let first = list_request("").encode_to_vec();
        assert_eq!(tokens.open_request(LIST, ALICE, &first), Ok(None));
        let no_page = participants::ListParticipantsRequest::default().encode_to_vec();
        assert_eq!(tokens.open_request(LIST, ALICE, &no_page), Ok(None));
        // Last page: no next token.
        let last = list_response("").encode_to_vec();
        assert_eq!(tokens.seal_response(LIST, ALICE, &last), Ok(None));
        // A method without paging.
        assert!(!tokens.methods().is_paged(GET));
        let get = participants::GetParticipantRequest {
            participant_id: Some(ParticipantId {
                value: ROW_KEY.into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(tokens.open_request(GET, ALICE, &get), Ok(None));
        assert_eq!(tokens.seal_response(GET, ALICE, &get), Ok(None));
        assert_eq!(
            tokens.open_request("/no.Such/Method", ALICE, &get),
            Ok(None)
        );
        // Garbage for a paged method.
        assert_eq!(
            tokens.open_request(LIST, ALICE, &[0xff, 0xff, 0xff]),
            Err(PageTokenError::Malformed)
        );
    }

    #[test]
    fn samsyn_paged_methods_are_found() {
        let methods = PagedMethods::samsyn().unwrap();
        let paths: Vec<_> = methods.paths().collect();
        assert!(paths.contains(&LIST), "{paths:?}");
        assert!(paths.len() >= 8, "{paths:?}");
    }
}
