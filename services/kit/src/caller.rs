//! Who is calling: the principal the gateway authenticated, as it forwards it in internal
//! metadata. Services reach only Samsyn's own components over internal mutual TLS, and the
//! gateway builds every forwarded call afresh, so a caller cannot set these keys itself.
//!
//! A call without them comes from one of Samsyn's own components (demo seeding, an
//! operator's tool): it acts for the programme, and its actor fields are taken as sent.

use samsyn_proto::common::v1 as common;
use tonic::metadata::MetadataMap;

use crate::error::FieldViolations;

/// Metadata key of the principal's id (staff HSA id, system link id, participant id).
pub const PRINCIPAL_ID: &str = "samsyn-principal-id";
/// Metadata key of the principal's kind: `staff`, `system` or `participant`.
pub const PRINCIPAL_KIND: &str = "samsyn-principal-kind";
/// Metadata key of the principal's organisation, when it has one.
pub const PRINCIPAL_ORGANISATION: &str = "samsyn-principal-organisation";
/// Metadata key of the staff member's unit, when the token names one.
pub const PRINCIPAL_UNIT: &str = "samsyn-principal-unit";
/// Metadata key of the principal's roles, comma-separated (read by the audit service, which
/// widens a security auditor's scope).
pub const PRINCIPAL_ROLES: &str = "samsyn-principal-roles";

/// Which kind of principal the gateway forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// A member of staff with a token.
    Staff,
    /// An external system over a pinned link certificate.
    System,
    /// A participant acting for themself.
    Participant,
}

impl CallerKind {
    /// The kind as the metadata spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::System => "system",
            Self::Participant => "participant",
        }
    }
}

/// A caller the gateway authenticated and decided for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Staff id, link id or participant id.
    pub id: String,
    /// Which kind of principal.
    pub kind: CallerKind,
    /// The organisation acted for (staff and systems).
    pub organisation: Option<String>,
    /// The unit acted for, when the token names one.
    pub unit: Option<String>,
}

/// The forwarded principal was incomplete or unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("principal metadata incomplete")]
pub struct MalformedPrincipal;

impl Caller {
    /// The caller of a forwarded call; `Ok(None)` when the call carries no principal (one of
    /// Samsyn's own components), `Err` when it carries part of one.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Option<Self>, MalformedPrincipal> {
        let text = |key: &str| -> Result<Option<String>, MalformedPrincipal> {
            match metadata.get(key) {
                None => Ok(None),
                Some(value) => value
                    .to_str()
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| Some(v.to_owned()))
                    .ok_or(MalformedPrincipal),
            }
        };
        let id = text(PRINCIPAL_ID)?;
        let kind = text(PRINCIPAL_KIND)?;
        let organisation = text(PRINCIPAL_ORGANISATION)?;
        let unit = text(PRINCIPAL_UNIT)?;
        let (id, kind) = match (id, kind) {
            (None, None) if organisation.is_none() && unit.is_none() => return Ok(None),
            (Some(id), Some(kind)) => (id, kind),
            _ => return Err(MalformedPrincipal),
        };
        let kind = match kind.as_str() {
            "staff" => CallerKind::Staff,
            "system" => CallerKind::System,
            "participant" => CallerKind::Participant,
            _ => return Err(MalformedPrincipal),
        };
        if kind != CallerKind::Participant && organisation.is_none() {
            return Err(MalformedPrincipal);
        }
        Ok(Some(Self {
            id,
            kind,
            organisation,
            unit,
        }))
    }

    /// The caller of a forwarded request, or `UNAUTHENTICATED` when its principal is broken.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Option<Self>, tonic::Status> {
        Self::from_metadata(request.metadata())
            .map_err(|_| tonic::Status::unauthenticated("principal metadata incomplete"))
    }

    /// Writes this caller into a forwarded call's metadata; `Err` when a value cannot be
    /// carried as ASCII metadata (the call is then refused, never sent without a principal).
    pub fn write_to(&self, metadata: &mut MetadataMap) -> Result<(), MalformedPrincipal> {
        for (key, value) in [
            (PRINCIPAL_ID, Some(self.id.as_str())),
            (PRINCIPAL_KIND, Some(self.kind.as_str())),
            (PRINCIPAL_ORGANISATION, self.organisation.as_deref()),
            (PRINCIPAL_UNIT, self.unit.as_deref()),
        ] {
            if let Some(value) = value {
                metadata.insert(key, value.parse().map_err(|_| MalformedPrincipal)?);
            }
        }
        Ok(())
    }

    /// Whether the caller acts for a municipality (its id a four-digit municipality code)
    /// rather than the region.
    pub fn is_municipal(&self) -> bool {
        self.organisation
            .as_deref()
            .is_some_and(|o| o.len() == 4 && o.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether the caller acts for `organisation`.
    pub fn acts_for(&self, organisation: &str) -> bool {
        self.organisation.as_deref() == Some(organisation)
    }

    /// The owner of this caller's idempotency keys: a key replays only for who sent it.
    pub fn key_owner(&self) -> String {
        format!(
            "{}:{}:{}",
            self.kind.as_str(),
            self.organisation.as_deref().unwrap_or(""),
            self.id
        )
    }
}

/// Binds a staff actor field (`recorded_by`, `chair`, ...) to the caller: for staff, the
/// field becomes the caller (left empty, it is filled in; naming anyone else is refused);
/// for a system, the staff member it names must act for the system's organisation (a case
/// system reports which of its officers decided). Without a caller, left as sent.
pub fn bind_staff(
    caller: Option<&Caller>,
    field: &str,
    value: &mut Option<common::StaffRef>,
    v: &mut FieldViolations,
) {
    let Some(caller) = caller else { return };
    let sent_org = value
        .as_ref()
        .and_then(|s| s.organisation_id.as_ref())
        .map(|o| o.value.clone())
        .filter(|o| !o.is_empty());
    match caller.kind {
        CallerKind::Staff => {
            let sent_id = value
                .as_ref()
                .map(|s| s.staff_id.as_str())
                .filter(|s| !s.is_empty());
            if sent_id.is_some_and(|id| id != caller.id) {
                v.add(
                    format!("{field}.staff_id"),
                    "must be the caller: staff act only as themselves",
                );
                return;
            }
            if sent_org.as_deref().is_some_and(|org| !caller.acts_for(org)) {
                v.add(
                    format!("{field}.organisation_id"),
                    "must be the organisation the caller acts for",
                );
                return;
            }
            let sent_unit = value
                .as_ref()
                .map(|s| s.unit_id.clone())
                .filter(|u| !u.is_empty());
            if let (Some(sent), Some(own)) = (&sent_unit, &caller.unit)
                && sent != own
            {
                v.add(
                    format!("{field}.unit_id"),
                    "must be the unit the caller acts for",
                );
                return;
            }
            *value = Some(common::StaffRef {
                staff_id: caller.id.clone(),
                organisation_id: caller
                    .organisation
                    .clone()
                    .map(|value| common::OrganisationId { value }),
                unit_id: caller.unit.clone().or(sent_unit).unwrap_or_default(),
            });
        }
        CallerKind::System => match value {
            Some(staff) => {
                if sent_org.as_deref().is_some_and(|org| !caller.acts_for(org)) {
                    v.add(
                        format!("{field}.organisation_id"),
                        "must be the organisation of the calling system",
                    );
                    return;
                }
                staff.organisation_id = caller
                    .organisation
                    .clone()
                    .map(|value| common::OrganisationId { value });
            }
            None => v.add(field, "required: which officer of the calling system acted"),
        },
        CallerKind::Participant => v.add(field, "must be a member of staff"),
    }
}

/// Binds an organisation field that says who acts (the deciding organisation of a pushed
/// decision, the organisation keeping a catalogue entry) to the caller's organisation.
pub fn bind_organisation(
    caller: Option<&Caller>,
    field: &str,
    value: &mut Option<common::OrganisationId>,
    v: &mut FieldViolations,
) {
    let Some(own) = caller.and_then(|c| c.organisation.as_deref()) else {
        if caller.is_some() {
            v.add(field, "only staff and systems act for an organisation");
        }
        return;
    };
    match value
        .as_ref()
        .map(|o| o.value.as_str())
        .filter(|o| !o.is_empty())
    {
        Some(sent) if sent != own => {
            v.add(field, "must be the organisation the caller acts for");
        }
        _ => {
            *value = Some(common::OrganisationId {
                value: own.to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.insert(*key, value.parse().unwrap());
        }
        map
    }

    fn staff() -> Caller {
        Caller {
            id: "SE2321000255-cm01".into(),
            kind: CallerKind::Staff,
            organisation: Some("SE2321000255".into()),
            unit: None,
        }
    }

    fn staff_ref(id: &str, org: &str) -> Option<common::StaffRef> {
        Some(common::StaffRef {
            staff_id: id.into(),
            organisation_id: Some(common::OrganisationId { value: org.into() }),
            unit_id: String::new(),
        })
    }

    #[test]
    fn a_call_without_principal_is_internal_and_a_partial_one_is_refused() {
        assert_eq!(Caller::from_metadata(&MetadataMap::new()), Ok(None));
        assert_eq!(
            Caller::from_metadata(&metadata(&[(PRINCIPAL_ORGANISATION, "SE2321000255")])),
            Err(MalformedPrincipal)
        );
        assert_eq!(
            Caller::from_metadata(&metadata(&[(PRINCIPAL_ID, "x"), (PRINCIPAL_KIND, "staff")])),
            Err(MalformedPrincipal),
            "staff without organisation"
        );
        assert_eq!(
            Caller::from_metadata(&metadata(&[(PRINCIPAL_ID, "x"), (PRINCIPAL_KIND, "root")])),
            Err(MalformedPrincipal)
        );
        let mut written = MetadataMap::new();
        staff().write_to(&mut written).unwrap();
        assert_eq!(Caller::from_metadata(&written), Ok(Some(staff())));
    }

    #[test]
    fn staff_act_only_as_themselves() {
        let caller = staff();
        let mut v = FieldViolations::new();
        let mut empty = None;
        bind_staff(Some(&caller), "recorded_by", &mut empty, &mut v);
        assert_eq!(empty.unwrap().staff_id, caller.id);

        let mut forged = staff_ref("SE2321000255-ps01", "SE2321000255");
        bind_staff(Some(&caller), "recorded_by", &mut forged, &mut v);
        let mut other_org = staff_ref(&caller.id, "212000-1124");
        bind_staff(Some(&caller), "chair", &mut other_org, &mut v);
        let error = v.finish().unwrap_err();
        let text = format!("{:?}", error);
        assert!(text.contains("recorded_by.staff_id"), "{text}");
        assert!(text.contains("chair.organisation_id"), "{text}");
    }

    #[test]
    fn a_system_names_its_own_officer_and_no_one_else_is_bound() {
        let system = Caller {
            id: "hbg-case".into(),
            kind: CallerKind::System,
            organisation: Some("212000-1124".into()),
            unit: None,
        };
        let mut v = FieldViolations::new();
        let mut own = staff_ref("hbg-officer-1", "212000-1124");
        bind_staff(Some(&system), "decided_by", &mut own, &mut v);
        assert!(v.finish().is_ok());
        let mut v = FieldViolations::new();
        let mut other = staff_ref("hog-officer-1", "212000-1132");
        bind_staff(Some(&system), "decided_by", &mut other, &mut v);
        assert!(v.finish().is_err());

        let mut v = FieldViolations::new();
        let mut as_sent = staff_ref("anyone", "anywhere");
        bind_staff(None, "decided_by", &mut as_sent, &mut v);
        assert!(v.finish().is_ok());
        assert_eq!(as_sent.unwrap().staff_id, "anyone");
    }

    #[test]
    fn an_organisation_field_is_the_callers() {
        let system = Caller {
            id: "hbg-case".into(),
            kind: CallerKind::System,
            organisation: Some("212000-1124".into()),
            unit: None,
        };
        let mut v = FieldViolations::new();
        let mut empty = None;
        bind_organisation(Some(&system), "organisation_id", &mut empty, &mut v);
        assert_eq!(empty.unwrap().value, "212000-1124");
        let mut forged = Some(common::OrganisationId {
            value: "212000-1132".into(),
        });
        bind_organisation(Some(&system), "organisation_id", &mut forged, &mut v);
        assert!(v.finish().is_err());
    }
}
