// Reads and checks the access annotation of every Samsyn RPC in a descriptor set.
// Shared by build.rs (so a missing annotation fails the build) and the library (so the
// gateway reads the same table at run time).

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

/// The full name of the method option that carries the annotation.
pub const ACCESS_EXTENSION: &str = "samsyn.common.v1.access";

/// The message type a participant id field may have besides `string`.
const PARTICIPANT_ID_MESSAGE: &str = "samsyn.common.v1.ParticipantId";
const ORGANISATION_ID_MESSAGE: &str = "samsyn.common.v1.OrganisationId";

/// One RPC's access annotation, read from the descriptor set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodAccess {
    /// The gRPC path, `/package.Service/Method`.
    pub path: String,
    /// `samsyn.common.v1.Action` as its wire number.
    pub action: i32,
    /// `samsyn.common.v1.DataCategory` as its wire number.
    pub category: i32,
    /// Dotted path of the participant id in the request; empty when none.
    pub participant_field: String,
    /// The response is a list narrowed row by row.
    pub narrowed_list: bool,
    /// Dotted path of the repeated rows in the response.
    pub rows_field: String,
    /// Dotted path of the participant id inside one row.
    pub row_participant_field: String,
    /// Only Samsyn's own components may call it.
    pub internal_only: bool,
    /// Dotted path of the organisation a recorded sharing consent discloses from.
    pub disclosing_organisation_field: String,
    /// Dotted path of the organisation a recorded sharing consent discloses to.
    pub receiving_organisation_field: String,
    /// Dotted path of the id of the restriction the call lifts or revokes.
    pub restriction_field: String,
    /// The participant field is an optional filter; empty names nobody.
    pub participant_optional: bool,
}

/// Reads every Samsyn RPC's annotation; returns every problem found, one line each.
pub fn read_access_table(descriptor_set: &[u8]) -> Result<Vec<MethodAccess>, Vec<String>> {
    let pool = DescriptorPool::decode(descriptor_set)
        .map_err(|e| vec![format!("descriptor set does not decode: {e}")])?;
    let Some(extension) = pool.get_extension_by_name(ACCESS_EXTENSION) else {
        return Err(vec![format!(
            "descriptor set lacks the {ACCESS_EXTENSION} extension"
        )]);
    };
    let mut table = Vec::new();
    let mut problems = Vec::new();
    for service in pool.services() {
        if !service.full_name().starts_with("samsyn.") {
            continue;
        }
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            if !options.has_extension(&extension) {
                problems.push(format!("rpc {path} lacks the ({ACCESS_EXTENSION}) option"));
                continue;
            }
            let value = options.get_extension(&extension);
            let Some(annotation) = value.as_message() else {
                problems.push(format!("rpc {path}: ({ACCESS_EXTENSION}) is not a message"));
                continue;
            };
            let text = |name: &str| {
                annotation
                    .get_field_by_name(name)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let number = |name: &str| {
                annotation
                    .get_field_by_name(name)
                    .and_then(|v| v.as_enum_number())
                    .unwrap_or_default()
            };
            let flag = |name: &str| {
                annotation
                    .get_field_by_name(name)
                    .and_then(|v| v.as_bool())
                    .unwrap_or_default()
            };
            let access = MethodAccess {
                path: path.clone(),
                action: number("action"),
                category: number("category"),
                participant_field: text("participant_field"),
                narrowed_list: flag("narrowed_list"),
                rows_field: text("rows_field"),
                row_participant_field: text("row_participant_field"),
                internal_only: flag("internal_only"),
                disclosing_organisation_field: text("disclosing_organisation_field"),
                receiving_organisation_field: text("receiving_organisation_field"),
                restriction_field: text("restriction_field"),
                participant_optional: flag("participant_optional"),
            };
            let before = problems.len();
            if access.action == 0 {
                problems.push(format!("rpc {path}: access.action is unspecified"));
            }
            if access.category == 0 {
                problems.push(format!("rpc {path}: access.category is unspecified"));
            }
            if !access.participant_field.is_empty()
                && let Err(e) = participant_field(&method.input(), &access.participant_field)
            {
                problems.push(format!("rpc {path}: access.participant_field {e}"));
            }
            for (name, dotted, id_message) in [
                (
                    "disclosing_organisation_field",
                    &access.disclosing_organisation_field,
                    ORGANISATION_ID_MESSAGE,
                ),
                (
                    "receiving_organisation_field",
                    &access.receiving_organisation_field,
                    ORGANISATION_ID_MESSAGE,
                ),
                ("restriction_field", &access.restriction_field, ""),
            ] {
                if !dotted.is_empty()
                    && let Err(e) = id_field(&method.input(), dotted, id_message)
                {
                    problems.push(format!("rpc {path}: access.{name} {e}"));
                }
            }
            if access.narrowed_list {
                match rows_message(&method.output(), &access.rows_field) {
                    Ok(row) => {
                        if let Err(e) = participant_field(&row, &access.row_participant_field) {
                            problems.push(format!("rpc {path}: access.row_participant_field {e}"));
                        }
                    }
                    Err(e) => problems.push(format!("rpc {path}: access.rows_field {e}")),
                }
            } else if !access.rows_field.is_empty() || !access.row_participant_field.is_empty() {
                problems.push(format!(
                    "rpc {path}: rows_field and row_participant_field need narrowed_list"
                ));
            }
            if problems.len() == before {
                table.push(access);
            }
        }
    }
    if problems.is_empty() {
        Ok(table)
    } else {
        Err(problems)
    }
}

/// Checks that a dotted path leads to a single string or ParticipantId field.
fn participant_field(message: &MessageDescriptor, dotted: &str) -> Result<(), String> {
    id_field(message, dotted, PARTICIPANT_ID_MESSAGE)
}

/// Checks that a dotted path names one id: a string, or the id message `id_message`.
fn id_field(message: &MessageDescriptor, dotted: &str, id_message: &str) -> Result<(), String> {
    let Some(field) = walk(message, dotted)? else {
        return Err(format!("'{dotted}' is empty"));
    };
    if field.is_list() || field.is_map() {
        return Err(format!("'{dotted}' is repeated"));
    }
    match field.kind() {
        Kind::String => Ok(()),
        Kind::Message(m) if !id_message.is_empty() && m.full_name() == id_message => Ok(()),
        _ if id_message.is_empty() => Err(format!("'{dotted}' is not a string")),
        _ => Err(format!("'{dotted}' is neither a string nor {id_message}")),
    }
}

/// Returns the row message of a dotted path that ends in a repeated message field.
fn rows_message(message: &MessageDescriptor, dotted: &str) -> Result<MessageDescriptor, String> {
    let Some(field) = walk(message, dotted)? else {
        return Err(format!("'{dotted}' is empty"));
    };
    match field.kind() {
        Kind::Message(row) if field.is_list() => Ok(row),
        _ => Err(format!("'{dotted}' is not a repeated message field")),
    }
}

/// Follows a dotted field path through singular message fields.
fn walk(message: &MessageDescriptor, dotted: &str) -> Result<Option<FieldDescriptor>, String> {
    if dotted.is_empty() {
        return Ok(None);
    }
    let mut current = message.clone();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current
            .get_field_by_name(part)
            .ok_or_else(|| format!("'{dotted}': {} has no field '{part}'", current.full_name()))?;
        if parts.peek().is_none() {
            return Ok(Some(field));
        }
        match field.kind() {
            Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
            _ => {
                return Err(format!(
                    "'{dotted}': '{part}' is not a singular message field"
                ));
            }
        }
    }
    Ok(None)
}
