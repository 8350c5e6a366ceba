//! Bundles, OperationOutcome and the CapabilityStatement of the read-only view.

use serde_json::{Value, json};

use crate::json::{Obj, array};

/// The severity of an OperationOutcome issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSeverity {
    /// The operation failed and cannot be retried as is.
    Fatal,
    /// The operation failed.
    Error,
    /// The operation succeeded with a problem.
    Warning,
    /// For information only.
    Information,
}

impl IssueSeverity {
    fn code(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

/// The type of an OperationOutcome issue (the codes a read-only view and a push need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Content or parameters are invalid.
    Invalid,
    /// A required element or parameter is missing.
    Required,
    /// The caller is not authenticated.
    Login,
    /// The caller may not see or do this.
    Forbidden,
    /// Refused for a security reason other than login or permission.
    Security,
    /// No such resource.
    NotFound,
    /// The interaction or parameter is not supported.
    NotSupported,
    /// A version conflict.
    Conflict,
    /// The resource exists already.
    Duplicate,
    /// Processing failed for a business rule.
    BusinessRule,
    /// Too many requests.
    Throttled,
    /// A downstream call timed out.
    Timeout,
    /// A temporary failure; retrying may work.
    Transient,
    /// An unexpected internal error.
    Exception,
    /// For information only.
    Informational,
}

impl IssueType {
    fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Required => "required",
            Self::Login => "login",
            Self::Forbidden => "forbidden",
            Self::Security => "security",
            Self::NotFound => "not-found",
            Self::NotSupported => "not-supported",
            Self::Conflict => "conflict",
            Self::Duplicate => "duplicate",
            Self::BusinessRule => "business-rule",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::Transient => "transient",
            Self::Exception => "exception",
            Self::Informational => "informational",
        }
    }
}

/// An OperationOutcome with one issue. `diagnostics` is shown to the caller: no personal data
/// and no internal detail; empty leaves it out.
pub fn operation_outcome(severity: IssueSeverity, code: IssueType, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [Obj::new()
            .with("severity", severity.code())
            .with("code", code.code())
            .with("diagnostics", diagnostics)
            .build()],
    })
}

/// `ResourceType/id` of a resource, when it has both.
fn relative_url(resource: &Value) -> Option<String> {
    let resource_type = resource.get("resourceType")?.as_str()?;
    let id = resource.get("id")?.as_str()?;
    Some(format!("{resource_type}/{id}"))
}

/// The server base of a search URL: `self_url` without its query and, when the last path
/// segment is a resource type (it starts with a capital letter), without that segment.
fn base_of(self_url: &str) -> &str {
    let path = self_url
        .split(['?', '#'])
        .next()
        .unwrap_or(self_url)
        .trim_end_matches('/');
    let path = path.strip_suffix("/_search").unwrap_or(path);
    match path.rsplit_once('/') {
        Some((base, last)) if last.starts_with(|c: char| c.is_ascii_uppercase()) => base,
        _ => path,
    }
}

/// A searchset Bundle of matches.
///
/// `self_url` is the search as the client asked it (`{base}/{Type}?...`); each entry's
/// `fullUrl` is `{base}/{Type}/{id}`. `total` is the number of matches over all pages.
pub fn search_bundle(entries: Vec<Value>, total: u64, self_url: &str) -> Value {
    let base = base_of(self_url);
    let entries = entries.into_iter().map(|resource| {
        Obj::new()
            .with(
                "fullUrl",
                relative_url(&resource).map(|url| format!("{base}/{url}")),
            )
            .with("resource", resource)
            .with("search", json!({ "mode": "match" }))
            .build()
    });
    Obj::resource("Bundle")
        .with("type", "searchset")
        .with("total", total)
        .with(
            "link",
            array([Obj::new()
                .with("relation", "self")
                .with("url", self_url)
                .build()]),
        )
        .with("entry", array(entries))
        .build()
}

/// A transaction Bundle that writes each resource with `PUT {Type}/{id}`.
///
/// The ids are Samsyn's stable ids, so sending the same change twice leaves the receiver as
/// sending it once. Conditional URLs (`Patient?identifier=...`) are not used: they would put
/// the personal identity number in a URL. A resource without an id is sent with `POST {Type}`.
pub fn transaction_bundle(entries: Vec<Value>) -> Value {
    let entries = entries.into_iter().map(|resource| {
        let request = match relative_url(&resource) {
            Some(url) => json!({ "method": "PUT", "url": url }),
            None => json!({
                "method": "POST",
                "url": resource.get("resourceType").and_then(Value::as_str).unwrap_or_default(),
            }),
        };
        Obj::new()
            .with("resource", resource)
            .with("request", request)
            .build()
    });
    Obj::resource("Bundle")
        .with("type", "transaction")
        .with("entry", array(entries))
        .build()
}

/// The FHIR type of a search parameter by its name; `token` when the name is not known.
fn search_param_type(name: &str) -> &'static str {
    match name {
        "_lastUpdated" | "date" | "period" | "birthdate" | "created" | "recorded" => "date",
        "patient"
        | "subject"
        | "organization"
        | "participant"
        | "managing-organization"
        | "care-team"
        | "agent"
        | "entity"
        | "performer"
        | "actor"
        | "goal" => "reference",
        "name" | "family" | "given" | "description" | "title" => "string",
        _ => "token",
    }
}

/// The date this crate last changed what the CapabilityStatement says.
const CAPABILITY_DATE: &str = "2026-11-30";

/// The CapabilityStatement of a read-only FHIR server at `base_url`.
///
/// Each supported resource type allows `read` and `search-type` with the given search
/// parameters; their types follow from their names (dates, references, strings, else token).
pub fn capability_statement(base_url: &str, supported: &[(&str, &[&str])]) -> Value {
    let resources = supported.iter().map(|(resource_type, params)| {
        Obj::new()
            .with("type", *resource_type)
            .with(
                "interaction",
                json!([{ "code": "read" }, { "code": "search-type" }]),
            )
            .with(
                "searchParam",
                array(
                    params
                        .iter()
                        .map(|name| json!({ "name": name, "type": search_param_type(name) })),
                ),
            )
            .build()
    });
    Obj::resource("CapabilityStatement")
        .with("id", "samsyn")
        .with("name", "SamsynFhirView")
        .with("title", "Samsyn FHIR view")
        .with("status", "active")
        .with("date", CAPABILITY_DATE)
        .with("publisher", "Samsyn")
        .with("kind", "instance")
        .with(
            "implementation",
            Obj::new()
                .with("description", "Samsyn read-only FHIR view")
                .with("url", base_url)
                .build(),
        )
        .with("fhirVersion", "4.0.1")
        .with("format", json!(["json"]))
        .with(
            "rest",
            json!([Obj::new()
                .with("mode", "server")
                .with(
                    "security",
                    json!({ "description": "Mutual TLS; each system is known by its link." }),
                )
                .with("resource", array(resources))
                .build()]),
        )
        .build()
}
