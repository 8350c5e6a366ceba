//! Consents and restrictions: what they hold and how they may change.

use chrono::{DateTime, Utc};
use samsyn_consent_rule as rule;
use serde::{Deserialize, Serialize};

use super::ConsentError;
use super::values::{
    CategorySet, ConsentId, LiftId, LiftPeriod, Note, OrgId, ParticipantId, PersonName, Reason,
    RestrictionId, StaffId, StudyId, UnitId, Validity,
};

/// A member of staff acting for an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// Their staff id.
    pub staff: StaffId,
    /// The organisation they act for.
    pub organisation: OrgId,
    /// Their unit, when given.
    pub unit: Option<UnitId>,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A member of staff.
    Staff(StaffMember),
    /// The participant themself.
    Participant,
    /// The participant's representative.
    Representative,
}

/// Which kind of representative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepresentativeKind {
    /// God man.
    Guardian,
    /// Förvaltare.
    Trustee,
    /// Fullmakt.
    PowerOfAttorney,
    /// Someone else the participant named.
    Other,
}

/// A person acting on the participant's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representative {
    /// Which kind.
    pub kind: RepresentativeKind,
    /// Their name.
    pub name: PersonName,
}

/// How a consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentForm {
    /// Spoken.
    Verbal,
    /// On paper or signed electronically.
    Written,
}

/// Direction and scope of an information-sharing consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingScope {
    from: OrgId,
    to: OrgId,
    categories: CategorySet,
    unit: Option<UnitId>,
    staff: Option<StaffId>,
}

/// Why a sharing scope was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must differ from the organisation shared from")]
pub struct SameOrganisation;

impl SharingScope {
    /// A scope between two different organisations.
    pub fn new(
        from: OrgId,
        to: OrgId,
        categories: CategorySet,
        unit: Option<UnitId>,
        staff: Option<StaffId>,
    ) -> Result<Self, SameOrganisation> {
        if from == to {
            return Err(SameOrganisation);
        }
        Ok(Self {
            from,
            to,
            categories,
            unit,
            staff,
        })
    }

    /// The organisation shared from.
    pub fn from(&self) -> &OrgId {
        &self.from
    }

    /// The organisation shared to.
    pub fn to(&self) -> &OrgId {
        &self.to
    }

    /// The categories shared.
    pub fn categories(&self) -> CategorySet {
        self.categories
    }

    /// The unit limit.
    pub fn unit(&self) -> Option<&UnitId> {
        self.unit.as_ref()
    }

    /// The staff limit.
    pub fn staff(&self) -> Option<&StaffId> {
        self.staff.as_ref()
    }
}

/// What a consent is for; information sharing carries its scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentKind {
    /// To take part in the programme.
    Participation,
    /// To share information in one direction.
    InformationSharing(SharingScope),
    /// To take part in a research study: this study, or none named for consents recorded
    /// before consents named their study (such a consent counts for no study's export).
    ResearchStudy(Option<StudyId>),
}

/// How a record ended: who, when, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    /// Who ended it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when said.
    pub reason: Option<Reason>,
}

/// What the caller says about a new consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    /// Whose consent.
    pub participant: ParticipantId,
    /// What for.
    pub kind: ConsentKind,
    /// When it counts.
    pub validity: Validity,
    /// How it was given.
    pub form: ConsentForm,
    /// Who asked for it.
    pub requested_by: Actor,
    /// Who records it (staff).
    pub recorded_by: StaffMember,
    /// The representative who gave it, if any.
    pub on_behalf_of: Option<Representative>,
    /// Free text.
    pub note: Option<Note>,
}

/// A consent with its whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// Its id.
    pub id: ConsentId,
    /// Whose consent.
    pub participant: ParticipantId,
    /// What for.
    pub kind: ConsentKind,
    /// When it counts.
    pub validity: Validity,
    /// How it was given.
    pub form: ConsentForm,
    /// Who asked for it.
    pub requested_by: Actor,
    /// Who recorded it.
    pub recorded_by: StaffMember,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The representative who gave it, if any.
    pub on_behalf_of: Option<Representative>,
    /// Free text.
    pub note: Option<Note>,
    /// Set once revoked.
    pub revocation: Option<Ending>,
    /// Set once voided.
    pub voiding: Option<Ending>,
    /// Bumped by every change, from 1.
    pub revision: u64,
}

impl Consent {
    /// The consent as first recorded.
    pub fn record(new: NewConsent, now: DateTime<Utc>) -> Self {
        Self {
            id: ConsentId::generate(),
            participant: new.participant,
            kind: new.kind,
            validity: new.validity,
            form: new.form,
            requested_by: new.requested_by,
            recorded_by: new.recorded_by,
            recorded_at: now,
            on_behalf_of: new.on_behalf_of,
            note: new.note,
            revocation: None,
            voiding: None,
            revision: 1,
        }
    }

    /// The participant withdraws it from `ending.at`; final.
    pub fn revoke(&mut self, ending: Ending) -> Result<(), ConsentError> {
        if self.voiding.is_some() {
            return Err(ConsentError::Ended("consent is voided"));
        }
        if self.revocation.is_some() {
            return Err(ConsentError::Ended("consent is already revoked"));
        }
        self.revocation = Some(ending);
        self.revision += 1;
        Ok(())
    }

    /// Marks it recorded by mistake. A revoked consent may still be voided.
    pub fn void(&mut self, ending: Ending) -> Result<(), ConsentError> {
        if self.voiding.is_some() {
            return Err(ConsentError::Ended("consent is already voided"));
        }
        self.voiding = Some(ending);
        self.revision += 1;
        Ok(())
    }

    /// The consent as the decision rule sees it.
    pub fn to_rule(&self) -> rule::Consent {
        let (kind, sharing) = match &self.kind {
            ConsentKind::Participation => (rule::ConsentKind::Participation, None),
            ConsentKind::ResearchStudy(_) => (rule::ConsentKind::ResearchStudy, None),
            ConsentKind::InformationSharing(scope) => (
                rule::ConsentKind::InformationSharing,
                Some(rule::Sharing {
                    from_organisation: scope.from.as_str().to_owned(),
                    to_organisation: scope.to.as_str().to_owned(),
                    categories: scope.categories.categories(),
                    unit: scope.unit.as_ref().map(|u| u.as_str().to_owned()),
                    staff: scope.staff.as_ref().map(|s| s.as_str().to_owned()),
                }),
            ),
        };
        rule::Consent {
            id: self.id.to_string(),
            kind,
            sharing,
            valid_from: self.validity.from(),
            valid_until: self.validity.until(),
            revoked_at: self.revocation.as_ref().map(|e| e.at),
            voided: self.voiding.is_some(),
        }
    }
}

/// Why a restriction was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LiftReason {
    /// The participant agreed.
    Consent,
    /// An emergency.
    Emergency,
}

/// What the caller says about a new lift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLift {
    /// Why.
    pub reason: LiftReason,
    /// Only this unit, when set.
    pub unit: Option<UnitId>,
    /// Only this staff member, when set.
    pub staff: Option<StaffId>,
    /// The categories lifted.
    pub categories: CategorySet,
    /// When.
    pub period: LiftPeriod,
    /// Who lifted it.
    pub lifted_by: Actor,
    /// Free text.
    pub note: Option<Note>,
}

/// A temporary lift of a restriction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lift {
    /// Its id.
    pub id: LiftId,
    /// Why.
    pub reason: LiftReason,
    /// Only this unit, when set.
    pub unit: Option<UnitId>,
    /// Only this staff member, when set.
    pub staff: Option<StaffId>,
    /// The categories lifted.
    pub categories: CategorySet,
    /// When.
    pub period: LiftPeriod,
    /// Who lifted it.
    pub lifted_by: Actor,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Free text.
    pub note: Option<Note>,
}

/// What the caller says about a new restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRestriction {
    /// Whose restriction.
    pub participant: ParticipantId,
    /// The organisation blocked.
    pub organisation: OrgId,
    /// Only this unit of it, when set.
    pub unit: Option<UnitId>,
    /// Only information owned by this organisation, when set.
    pub owner_organisation: Option<OrgId>,
    /// The categories blocked.
    pub categories: CategorySet,
    /// When it counts.
    pub validity: Validity,
    /// Who asked for it.
    pub requested_by: Actor,
    /// Who records it.
    pub recorded_by: StaffMember,
    /// The representative who asked, if any.
    pub on_behalf_of: Option<Representative>,
    /// Free text.
    pub note: Option<Note>,
}

/// A restriction (*spärr*) with its whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// Its id.
    pub id: RestrictionId,
    /// Whose restriction.
    pub participant: ParticipantId,
    /// The organisation blocked.
    pub organisation: OrgId,
    /// Only this unit of it, when set.
    pub unit: Option<UnitId>,
    /// Only information owned by this organisation, when set.
    pub owner_organisation: Option<OrgId>,
    /// The categories blocked.
    pub categories: CategorySet,
    /// When it counts.
    pub validity: Validity,
    /// Who asked for it.
    pub requested_by: Actor,
    /// Who recorded it.
    pub recorded_by: StaffMember,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The representative who asked, if any.
    pub on_behalf_of: Option<Representative>,
    /// Free text.
    pub note: Option<Note>,
    /// Set once revoked.
    pub revocation: Option<Ending>,
    /// Temporary lifts, oldest first.
    pub lifts: Vec<Lift>,
    /// Bumped by every change, from 1.
    pub revision: u64,
}

impl Restriction {
    /// The restriction as first recorded.
    pub fn create(new: NewRestriction, now: DateTime<Utc>) -> Self {
        Self {
            id: RestrictionId::generate(),
            participant: new.participant,
            organisation: new.organisation,
            unit: new.unit,
            owner_organisation: new.owner_organisation,
            categories: new.categories,
            validity: new.validity,
            requested_by: new.requested_by,
            recorded_by: new.recorded_by,
            recorded_at: now,
            on_behalf_of: new.on_behalf_of,
            note: new.note,
            revocation: None,
            lifts: Vec::new(),
            revision: 1,
        }
    }

    /// Revokes it from `ending.at`; final.
    pub fn revoke(&mut self, ending: Ending) -> Result<(), ConsentError> {
        if self.revocation.is_some() {
            return Err(ConsentError::Ended("restriction is already revoked"));
        }
        self.revocation = Some(ending);
        self.revision += 1;
        Ok(())
    }

    /// Lifts it temporarily for some of its categories.
    pub fn lift(&mut self, new: NewLift, now: DateTime<Utc>) -> Result<LiftId, ConsentError> {
        if self.revocation.is_some() {
            return Err(ConsentError::Ended("restriction is revoked"));
        }
        if !self.categories.contains_all(new.categories) {
            return Err(ConsentError::Invalid {
                field: "categories",
                description: "must be categories of the restriction".into(),
            });
        }
        let id = LiftId::generate();
        self.lifts.push(Lift {
            id,
            reason: new.reason,
            unit: new.unit,
            staff: new.staff,
            categories: new.categories,
            period: new.period,
            lifted_by: new.lifted_by,
            recorded_at: now,
            note: new.note,
        });
        self.revision += 1;
        Ok(id)
    }

    /// The restriction as the decision rule sees it.
    pub fn to_rule(&self) -> rule::Restriction {
        let text = |v: Option<&str>| v.map(str::to_owned);
        rule::Restriction {
            id: self.id.to_string(),
            organisation: self.organisation.as_str().to_owned(),
            unit: text(self.unit.as_ref().map(UnitId::as_str)),
            owner_organisation: text(self.owner_organisation.as_ref().map(OrgId::as_str)),
            categories: self.categories.categories(),
            valid_from: self.validity.from(),
            valid_until: self.validity.until(),
            revoked_at: self.revocation.as_ref().map(|e| e.at),
            lifts: self
                .lifts
                .iter()
                .map(|l| rule::Lift {
                    id: l.id.to_string(),
                    reason: match l.reason {
                        LiftReason::Consent => rule::LiftReason::Consent,
                        LiftReason::Emergency => rule::LiftReason::Emergency,
                    },
                    unit: text(l.unit.as_ref().map(UnitId::as_str)),
                    staff: text(l.staff.as_ref().map(StaffId::as_str)),
                    categories: l.categories.categories(),
                    starts_at: l.period.start(),
                    ends_at: l.period.end(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::Duration;
    use samsyn_consent_rule::Category;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_308_000, 0).unwrap()
    }

    fn staff() -> StaffMember {
        StaffMember {
            staff: StaffId::parse("SE2321000016-staff-0042").unwrap(),
            organisation: OrgId::parse("SE2321000016-F00D").unwrap(),
            unit: None,
        }
    }

    fn ending() -> Ending {
        Ending {
            by: Actor::Participant,
            at: now(),
            reason: None,
        }
    }

    fn plan() -> CategorySet {
        CategorySet::new([Category::Plan]).unwrap()
    }

    fn consent() -> Consent {
        Consent::record(
            NewConsent {
                participant: ParticipantId::generate(),
                kind: ConsentKind::Participation,
                validity: Validity::new(now(), None).unwrap(),
                form: ConsentForm::Written,
                requested_by: Actor::Participant,
                recorded_by: staff(),
                on_behalf_of: None,
                note: None,
            },
            now(),
        )
    }

    fn restriction() -> Restriction {
        Restriction::create(
            NewRestriction {
                participant: ParticipantId::generate(),
                organisation: OrgId::parse("1283").unwrap(),
                unit: None,
                owner_organisation: None,
                categories: plan(),
                validity: Validity::new(now(), None).unwrap(),
                requested_by: Actor::Participant,
                recorded_by: staff(),
                on_behalf_of: None,
                note: None,
            },
            now(),
        )
    }

    fn lift(categories: CategorySet) -> NewLift {
        NewLift {
            reason: LiftReason::Consent,
            unit: None,
            staff: None,
            categories,
            period: LiftPeriod::new(now(), now() + Duration::days(1)).unwrap(),
            lifted_by: Actor::Staff(staff()),
            note: None,
        }
    }

    #[test]
    fn a_revocation_is_final_but_a_revoked_consent_may_be_voided() {
        let mut c = consent();
        c.revoke(ending()).unwrap();
        assert_eq!(c.revision, 2);
        assert!(matches!(c.revoke(ending()), Err(ConsentError::Ended(_))));
        c.void(ending()).unwrap();
        assert_eq!(c.revision, 3);
        assert!(matches!(c.void(ending()), Err(ConsentError::Ended(_))));
        assert!(c.to_rule().voided);
    }

    #[test]
    fn a_voided_consent_cannot_be_revoked() {
        let mut c = consent();
        c.void(ending()).unwrap();
        assert!(matches!(c.revoke(ending()), Err(ConsentError::Ended(_))));
        assert_eq!(c.revision, 2);
    }

    #[test]
    fn lifts_stay_within_the_restriction() {
        let mut r = restriction();
        let board = CategorySet::new([Category::Board]).unwrap();
        assert!(matches!(
            r.lift(lift(board), now()),
            Err(ConsentError::Invalid {
                field: "categories",
                ..
            })
        ));
        let id = r.lift(lift(plan()), now()).unwrap();
        assert_eq!((r.revision, r.lifts[0].id), (2, id));
        r.revoke(ending()).unwrap();
        assert!(matches!(
            r.lift(lift(plan()), now()),
            Err(ConsentError::Ended(_))
        ));
        assert!(matches!(r.revoke(ending()), Err(ConsentError::Ended(_))));
    }

    #[test]
    fn records_survive_storage_as_json() {
        let mut r = restriction();
        r.note = Some(Note::parse("Spärren gäller även Ängelholms äldreboende").unwrap());
        r.lift(lift(plan()), now()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Restriction>(&json).unwrap(), r);
    }
}
