//! Describing a call from the access annotations: what it touches, and which participant —
//! read from the request message itself by the annotated field path.

use std::collections::{HashMap, HashSet};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use samsyn_proto::common::v1::DataCategory;
use samsyn_proto::ids::ParticipantId;
use samsyn_proto::{AccessTable, AccessTableError, MethodAccess};

mod wire;

/// A call the gateway cannot describe, and so refuses.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The method has no access annotation (or does not exist): refused, never forwarded.
    #[error("unknown method")]
    UnknownMethod,
    /// The request or response bytes do not decode as the method's message.
    #[error("message does not decode")]
    Malformed,
    /// The annotated participant field is empty or not a participant id in its one spelling
    /// (`samsyn_proto::ids`): the call would be decided as being about nobody, or about a
    /// name the access view does not know, so it is refused before any decision.
    #[error("participant field missing or malformed")]
    NoParticipant(String),
    /// The descriptor set is broken (a build problem, not a caller's).
    #[error("descriptor set: {0}")]
    Descriptors(String),
}

impl From<AccessTableError> for DescribeError {
    fn from(error: AccessTableError) -> Self {
        Self::Descriptors(error.to_string())
    }
}

/// One described call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    /// The gRPC path.
    pub path: &'a str,
    /// Its access annotation.
    pub access: &'a MethodAccess,
    /// The participant the request names, when the annotation says where to look and the
    /// request fills it in: always a checked [`ParticipantId`](samsyn_proto::ids::ParticipantId)
    /// in its one spelling, so every lookup made with it (access view, emergency memory,
    /// consent, audit) is made with the key the services and feeds use.
    pub participant_id: Option<String>,
    /// What the request says about consents and restrictions, where annotated.
    pub act: RequestedAct,
}

/// The organisations and restriction a consent or restriction call names in its request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedAct {
    /// The organisation a recorded sharing consent discloses from.
    pub disclosing_organisation: Option<String>,
    /// The organisation a recorded sharing consent discloses to.
    pub receiving_organisation: Option<String>,
    /// The restriction lifted or revoked.
    pub restriction_id: Option<String>,
}

struct Method {
    input: MessageDescriptor,
    output: MessageDescriptor,
    server_streaming: bool,
}

/// Describes calls and narrows responses using Samsyn's descriptor set.
pub struct CallDescriber {
    table: AccessTable,
    methods: HashMap<String, Method>,
    /// Response fields that hold another category's data, by full field name (see
    /// `field_category` in access.proto).
    field_categories: HashMap<String, DataCategory>,
    /// Methods whose response may hold such a field, at any depth.
    withholding: HashSet<String>,
    /// The message types an answer's participant ids can be found in.
    reach: wire::Reach,
}

/// The field option that marks a response field as data of another category.
pub const FIELD_CATEGORY_EXTENSION: &str = "samsyn.common.v1.field_category";

impl std::fmt::Debug for CallDescriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallDescriber")
            .field("methods", &self.methods.len())
            .finish()
    }
}

impl CallDescriber {
    /// The describer of Samsyn's own contract.
    pub fn samsyn() -> Result<Self, DescribeError> {
        Self::from_descriptor_set(samsyn_proto::FILE_DESCRIPTOR_SET)
    }

    /// A describer of any descriptor set whose RPCs carry access annotations.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, DescribeError> {
        let table = AccessTable::from_descriptor_set(bytes)?;
        let pool =
            DescriptorPool::decode(bytes).map_err(|e| DescribeError::Descriptors(e.to_string()))?;
        let field_categories = field_categories(&pool);
        let mut methods = HashMap::new();
        let mut withholding = HashSet::new();
        for service in pool.services() {
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                if table.get(&path).is_some() {
                    if holds_marked_field(&method.output(), &field_categories, &mut HashSet::new())
                    {
                        withholding.insert(path.clone());
                    }
                    methods.insert(
                        path,
                        Method {
                            input: method.input(),
                            output: method.output(),
                            server_streaming: method.is_server_streaming(),
                        },
                    );
                }
            }
        }
        Ok(Self {
            table,
            methods,
            field_categories,
            withholding,
            reach: wire::Reach::of(&pool),
        })
    }

    /// Re-encodes a response without the fields of another category (`field_category` in
    /// access.proto) that `may_read` says no to, asked with the category and the participant
    /// named by the nearest enclosing message (an element of a repeated field is its own
    /// nearest message). Such a field with no participant around it is withheld: the safe
    /// side. `None` when the method's response holds no such field (nothing to do).
    pub fn withhold(
        &self,
        path: &str,
        response: &[u8],
        mut may_read: impl FnMut(DataCategory, &str) -> bool,
    ) -> Result<Option<Vec<u8>>, DescribeError> {
        if !self.withholding.contains(path) {
            return Ok(None);
        }
        let (_, method) = self.method(path)?;
        let mut message = DynamicMessage::decode(method.output.clone(), response)
            .map_err(|_| DescribeError::Malformed)?;
        withhold_in(&mut message, None, &self.field_categories, &mut may_read, 0);
        Ok(Some(message.encode_to_vec()))
    }

    /// Every annotated method path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// The access annotation of an annotated method, and whether it streams its response.
    pub fn method_access(&self, path: &str) -> Option<(&MethodAccess, bool)> {
        self.method(path)
            .ok()
            .map(|(access, method)| (access, method.server_streaming))
    }

    /// Describes a call from its path and the encoded request message.
    pub fn describe<'a>(
        &'a self,
        path: &'a str,
        request: &[u8],
    ) -> Result<Call<'a>, DescribeError> {
        let (access, method) = self.method(path)?;
        // Every request is decoded, named participant or not: bytes that are not the
        // method's message never reach a service.
        let message = DynamicMessage::decode(method.input.clone(), request)
            .map_err(|_| DescribeError::Malformed)?;
        let participant_id = if access.participant_field.is_empty() {
            None
        } else {
            match participant_at(&message, &access.participant_field) {
                None if access.participant_optional => None,
                // Another spelling of an id (upper case, braces, no hyphens) is refused here,
                // before anything is looked up with it: one participant, one key.
                Some(id) if ParticipantId::parse(&id).is_ok() => Some(id),
                _ => {
                    return Err(DescribeError::NoParticipant(
                        access.participant_field.clone(),
                    ));
                }
            }
        };
        let at = |dotted: &str| {
            (!dotted.is_empty())
                .then(|| participant_at(&message, dotted))
                .flatten()
        };
        let act = RequestedAct {
            disclosing_organisation: at(&access.disclosing_organisation_field),
            receiving_organisation: at(&access.receiving_organisation_field),
            restriction_id: at(&access.restriction_field),
        };
        Ok(Call {
            path,
            access,
            participant_id,
            act,
        })
    }

    /// The participant of each row of a narrowed-list response, in order (`None` for a row
    /// that names none).
    pub fn row_participants(
        &self,
        path: &str,
        response: &[u8],
    ) -> Result<Vec<Option<String>>, DescribeError> {
        let (access, method) = self.method(path)?;
        if !access.narrowed_list {
            return Ok(Vec::new());
        }
        let message = DynamicMessage::decode(method.output.clone(), response)
            .map_err(|_| DescribeError::Malformed)?;
        Ok(rows(&message, &access.rows_field)
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row.as_message()
                            .and_then(|row| participant_at(row, &access.row_participant_field))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every participant id a single-record response names, at any depth (fields called
    /// `participant_id`), so the gateway can check the answer is about whom it decided for.
    pub fn answer_participants(
        &self,
        path: &str,
        response: &[u8],
    ) -> Result<Vec<String>, DescribeError> {
        let (_, method) = self.method(path)?;
        let mut found = Vec::new();
        wire::participants(&self.reach, &method.output, response, &mut found, 0)?;
        Ok(found)
    }

    /// The rows of a narrowed-list response, each with the participant it names.
    pub fn rows_of(
        &self,
        path: &str,
        response: &[u8],
    ) -> Result<Vec<(Value, Option<String>)>, DescribeError> {
        let (access, method) = self.method(path)?;
        let message = DynamicMessage::decode(method.output.clone(), response)
            .map_err(|_| DescribeError::Malformed)?;
        Ok(rows(&message, &access.rows_field)
            .unwrap_or_default()
            .into_iter()
            .map(|row| {
                let participant = row
                    .as_message()
                    .and_then(|m| participant_at(m, &access.row_participant_field));
                (row, participant)
            })
            .collect())
    }

    /// Re-encodes a narrowed-list response with `rows` in place of its own.
    pub fn with_rows(
        &self,
        path: &str,
        response: &[u8],
        rows: Vec<Value>,
    ) -> Result<Vec<u8>, DescribeError> {
        let (access, method) = self.method(path)?;
        let mut message = DynamicMessage::decode(method.output.clone(), response)
            .map_err(|_| DescribeError::Malformed)?;
        if let Some(Value::List(list)) = rows_mut(&mut message, &access.rows_field) {
            *list = rows;
        }
        Ok(message.encode_to_vec())
    }

    /// Re-encodes a narrowed-list response keeping only the rows `keep` says yes to (rows
    /// that name no participant are withheld: the safe side).
    pub fn narrow(
        &self,
        path: &str,
        response: &[u8],
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<u8>, DescribeError> {
        let (access, method) = self.method(path)?;
        if !access.narrowed_list {
            return Ok(response.to_vec());
        }
        let mut message = DynamicMessage::decode(method.output.clone(), response)
            .map_err(|_| DescribeError::Malformed)?;
        if let Some(Value::List(rows)) = rows_mut(&mut message, &access.rows_field) {
            rows.retain(|row| {
                row.as_message()
                    .and_then(|row| participant_at(row, &access.row_participant_field))
                    .is_some_and(|id| keep(&id))
            });
        }
        Ok(message.encode_to_vec())
    }

    fn method(&self, path: &str) -> Result<(&MethodAccess, &Method), DescribeError> {
        match (self.table.get(path), self.methods.get(path)) {
            (Some(access), Some(method)) => Ok((access, method)),
            _ => Err(DescribeError::UnknownMethod),
        }
    }
}

/// Every field marked with `field_category`, by full name.
fn field_categories(pool: &DescriptorPool) -> HashMap<String, DataCategory> {
    let Some(extension) = pool.get_extension_by_name(FIELD_CATEGORY_EXTENSION) else {
        return HashMap::new();
    };
    let mut found = HashMap::new();
    for message in pool.all_messages() {
        for field in message.fields() {
            let options = field.options();
            if !options.has_extension(&extension) {
                continue;
            }
            let category = match options.get_extension(&extension).as_ref() {
                Value::EnumNumber(n) => DataCategory::try_from(*n).unwrap_or_default(),
                _ => DataCategory::Unspecified,
            };
            found.insert(field.full_name().to_owned(), category);
        }
    }
    found
}

/// Whether `message` holds a marked field at any depth.
fn holds_marked_field(
    message: &MessageDescriptor,
    marked: &HashMap<String, DataCategory>,
    seen: &mut HashSet<String>,
) -> bool {
    if !seen.insert(message.full_name().to_owned()) {
        return false;
    }
    message.fields().any(|field| {
        marked.contains_key(field.full_name())
            || field
                .kind()
                .as_message()
                .is_some_and(|inner| holds_marked_field(inner, marked, seen))
    })
}

fn withhold_in(
    message: &mut DynamicMessage,
    around: Option<&str>,
    marked: &HashMap<String, DataCategory>,
    may_read: &mut impl FnMut(DataCategory, &str) -> bool,
    depth: usize,
) {
    if depth > MAX_ANSWER_DEPTH {
        return;
    }
    let own = participant_at(message, "participant_id");
    let participant = own.as_deref().or(around);
    let fields: Vec<_> = message.descriptor().fields().collect();
    for field in fields {
        if !message.has_field(&field) {
            continue;
        }
        let category = marked.get(field.full_name()).copied();
        let value = message.get_field_mut(&field);
        match value {
            Value::List(items) => {
                if let Some(category) = category {
                    items.retain(|item| {
                        let named = item
                            .as_message()
                            .and_then(|m| participant_at(m, "participant_id"));
                        named
                            .as_deref()
                            .or(participant)
                            .is_some_and(|p| may_read(category, p))
                    });
                }
                for item in items.iter_mut() {
                    if let Value::Message(inner) = item {
                        withhold_in(inner, participant, marked, may_read, depth + 1);
                    }
                }
            }
            _ => {
                if let Some(category) = category
                    && !participant.is_some_and(|p| may_read(category, p))
                {
                    message.clear_field(&field);
                    continue;
                }
                if let Value::Message(inner) = message.get_field_mut(&field) {
                    withhold_in(inner, participant, marked, may_read, depth + 1);
                }
            }
        }
    }
}

/// Deepest nesting searched for participant ids; Samsyn's messages nest far less.
const MAX_ANSWER_DEPTH: usize = 16;

/// What [`CallDescriber::answer_participants`] finds, from the decoded message: the walk of
/// the bytes (`wire.rs`) is checked against it.
#[cfg(test)]
fn collect_participants(message: &DynamicMessage, found: &mut Vec<String>, depth: usize) {
    if depth > MAX_ANSWER_DEPTH {
        return;
    }
    for (field, value) in message.fields() {
        if field.name() == "participant_id"
            && let Some(id) = participant_at(message, "participant_id")
        {
            found.push(id);
            continue;
        }
        match value {
            Value::Message(inner) => collect_participants(inner, found, depth + 1),
            Value::List(items) => {
                for item in items {
                    if let Value::Message(inner) = item {
                        collect_participants(inner, found, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The id at a dotted path: a string field or an id message (`ParticipantId`,
/// `OrganisationId`) holding it in `value`.
fn participant_at(message: &DynamicMessage, dotted: &str) -> Option<String> {
    let mut current = message.clone();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let value = current.get_field_by_name(part)?.into_owned();
        if parts.peek().is_none() {
            let id = match value {
                Value::String(id) => id,
                Value::Message(id) => id.get_field_by_name("value")?.as_str()?.to_owned(),
                _ => return None,
            };
            return (!id.is_empty()).then_some(id);
        }
        current = match value {
            Value::Message(inner) => inner,
            _ => return None,
        };
    }
    None
}

fn rows(message: &DynamicMessage, dotted: &str) -> Option<Vec<Value>> {
    let mut current = message.clone();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let value = current.get_field_by_name(part)?.into_owned();
        if parts.peek().is_none() {
            return match value {
                Value::List(rows) => Some(rows),
                _ => None,
            };
        }
        current = match value {
            Value::Message(inner) => inner,
            _ => return None,
        };
    }
    None
}

fn rows_mut<'m>(message: &'m mut DynamicMessage, dotted: &str) -> Option<&'m mut Value> {
    match dotted.split_once('.') {
        None => message.get_field_by_name_mut(dotted),
        Some((head, rest)) => match message.get_field_by_name_mut(head)? {
            Value::Message(inner) => rows_mut(inner, rest),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsyn_proto::board::v1 as board;
    use samsyn_proto::common::v1::ParticipantId;
    use samsyn_proto::participants::v1 as participants;

    const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
    const GET_BOARD: &str = "/samsyn.board.v1.BoardService/GetBoard";

    fn id(value: &str) -> Option<ParticipantId> {
        Some(ParticipantId {
            value: value.into(),
        })
    }

    #[test]
    fn the_participant_is_read_from_the_annotated_field() {
        let describer = CallDescriber::samsyn().unwrap();
        let request = participants::GetParticipantRequest {
            participant_id: id("0198c0de-0000-7000-8000-000000000001"),
        }
        .encode_to_vec();
        let call = describer.describe(GET_PARTICIPANT, &request).unwrap();
        assert_eq!(
            call.participant_id.as_deref(),
            Some("0198c0de-0000-7000-8000-000000000001")
        );
        assert!(!call.access.narrowed_list);
        for unnamed in [
            Vec::new(),
            participants::GetParticipantRequest {
                participant_id: id("p-1"),
            }
            .encode_to_vec(),
        ] {
            assert!(
                matches!(
                    describer.describe(GET_PARTICIPANT, &unnamed),
                    Err(DescribeError::NoParticipant(field)) if field == "participant_id"
                ),
                "a call about nobody is refused, never decided"
            );
        }
    }

    #[test]
    fn another_spelling_of_a_participant_id_is_refused_before_any_lookup() {
        let describer = CallDescriber::samsyn().unwrap();
        let canonical = "0198c0de-0000-7000-8000-0000000000a1";
        let request = |value: &str| {
            participants::GetParticipantRequest {
                participant_id: id(value),
            }
            .encode_to_vec()
        };
        let call = describer
            .describe(GET_PARTICIPANT, &request(canonical))
            .unwrap();
        assert_eq!(call.participant_id.as_deref(), Some(canonical));
        for spelling in [
            "0198C0DE-0000-7000-8000-0000000000A1",
            "0198c0de-0000-7000-8000-0000000000A1",
            "{0198c0de-0000-7000-8000-0000000000a1}",
            "urn:uuid:0198c0de-0000-7000-8000-0000000000a1",
            "0198c0de00007000800000000000000a1",
            "0198c0de0000700080000000000000a1",
        ] {
            assert!(
                matches!(
                    describer.describe(GET_PARTICIPANT, &request(spelling)),
                    Err(DescribeError::NoParticipant(field)) if field == "participant_id"
                ),
                "{spelling} is another spelling of {canonical}, never a key of its own"
            );
        }
    }

    #[test]
    fn unannotated_paths_and_garbage_are_refused() {
        let describer = CallDescriber::samsyn().unwrap();
        assert!(matches!(
            describer.describe("/grpc.health.v1.Health/Check", &[]),
            Err(DescribeError::UnknownMethod)
        ));
        assert!(matches!(
            describer.describe(GET_PARTICIPANT, &[0xff, 0xff, 0xff]),
            Err(DescribeError::Malformed)
        ));
    }

    #[test]
    fn every_annotated_rpc_can_be_described() {
        let describer = CallDescriber::samsyn().unwrap();
        let paths: Vec<_> = describer.paths().map(str::to_owned).collect();
        assert!(paths.len() > 40, "all services' RPCs: {}", paths.len());
        for path in &paths {
            match describer.describe(path, &[]) {
                Ok(call) => assert!(
                    call.access.participant_field.is_empty() || call.access.participant_optional,
                    "{path}"
                ),
                Err(DescribeError::NoParticipant(_)) => {}
                Err(error) => panic!("{path}: {error}"),
            }
        }
    }

    fn entry(participant: &str, reason: &str) -> board::BoardEntry {
        board::BoardEntry {
            participant_id: id(participant),
            reason: reason.into(),
            ..Default::default()
        }
    }

    #[test]
    fn narrowing_withholds_rows_and_keeps_everything_else() {
        let describer = CallDescriber::samsyn().unwrap();
        let response = board::GetBoardResponse {
            team_id: "fact-nw".into(),
            entries: vec![
                entry("p-1", "Återfall i missbruk"),
                entry("p-2", "Kris efter flytt"),
                entry("", "no participant named"),
                entry("p-3", "Utskriven från slutenvård"),
            ],
            cursor: 42,
        }
        .encode_to_vec();
        assert_eq!(
            describer.row_participants(GET_BOARD, &response).unwrap(),
            [
                Some("p-1".into()),
                Some("p-2".into()),
                None,
                Some("p-3".into())
            ]
        );
        let narrowed = describer
            .narrow(GET_BOARD, &response, |participant| participant != "p-2")
            .unwrap();
        let narrowed = board::GetBoardResponse::decode(narrowed.as_slice()).unwrap();
        assert_eq!(narrowed.team_id, "fact-nw");
        assert_eq!(narrowed.cursor, 42);
        let reasons: Vec<_> = narrowed.entries.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["Återfall i missbruk", "Utskriven från slutenvård"]
        );
    }

    #[test]
    fn fields_of_another_category_are_withheld_per_participant_everywhere_they_nest() {
        const GET_AGENDA: &str = "/samsyn.board.v1.BoardService/GetAgenda";
        const GET_ENTRY: &str = "/samsyn.board.v1.BoardService/GetEntry";
        let describer = CallDescriber::samsyn().unwrap();
        let at = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
        let item = |participant: &str| board::AgendaItem {
            participant_id: id(participant),
            entry: Some(board::BoardEntry {
                participant_id: id(participant),
                reason: "Kris – ångest".into(),
                latest_decision_at: at,
                ..board::BoardEntry::default()
            }),
            ..board::AgendaItem::default()
        };
        let decisions = |participant: &str| board::AgendaDecisions {
            participant_id: id(participant),
            notices: vec![board::DecisionNotice {
                external_decision_id: format!("BES-{participant}"),
                ..board::DecisionNotice::default()
            }],
        };
        let agenda = board::Agenda {
            team_id: "fact-nw".into(),
            items: vec![item("p-1"), item("p-2")],
            decisions: vec![decisions("p-1"), decisions("p-2")],
            ..board::Agenda::default()
        }
        .encode_to_vec();
        let mut asked = Vec::new();
        let withheld = describer
            .withhold(GET_AGENDA, &agenda, |category, participant| {
                asked.push((category, participant.to_owned()));
                participant == "p-1"
            })
            .unwrap()
            .expect("the agenda holds decision data");
        assert!(
            asked.iter().all(|(c, _)| *c == DataCategory::Decision),
            "{asked:?}"
        );
        let withheld = board::Agenda::decode(withheld.as_slice()).unwrap();
        let shown: Vec<_> = withheld
            .decisions
            .iter()
            .map(|d| d.notices[0].external_decision_id.as_str())
            .collect();
        assert_eq!(shown, ["BES-p-1"], "only the rows the caller may read");
        assert_eq!(
            withheld.items.len(),
            2,
            "the board rows are not this rule's"
        );
        assert_eq!(
            withheld.items[0].entry.as_ref().unwrap().latest_decision_at,
            at
        );
        assert_eq!(
            withheld.items[1].entry.as_ref().unwrap().latest_decision_at,
            None
        );
        assert_eq!(
            withheld.items[1].entry.as_ref().unwrap().reason,
            "Kris – ångest"
        );

        let entry = board::BoardEntry {
            participant_id: id("p-2"),
            latest_decision_at: at,
            ..board::BoardEntry::default()
        }
        .encode_to_vec();
        let withheld = describer
            .withhold(GET_ENTRY, &entry, |_, _| false)
            .unwrap()
            .unwrap();
        let withheld = board::BoardEntry::decode(withheld.as_slice()).unwrap();
        assert_eq!(withheld.latest_decision_at, None, "single records too");
        let nobody = board::BoardEntry {
            latest_decision_at: at,
            ..board::BoardEntry::default()
        }
        .encode_to_vec();
        let withheld = describer
            .withhold(GET_ENTRY, &nobody, |_, _| true)
            .unwrap()
            .unwrap();
        let withheld = board::BoardEntry::decode(withheld.as_slice()).unwrap();
        assert_eq!(
            withheld.latest_decision_at, None,
            "no participant: withheld"
        );
        assert_eq!(
            describer
                .withhold(GET_PARTICIPANT, &[], |_, _| true)
                .unwrap(),
            None,
            "nothing to do for answers without such fields"
        );
    }
}
