//! The life of a participant: referral, joint review, enrolment, moves, discharge, and the
//! assignments of staff around them. Pure rules over in-memory records.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::error::ParticipantsError;
use super::pin::PersonalIdentityNumber;
use super::settings::{OnConsentRevoked, ParticipantsSettings, ReviewRule};
use super::types::{
    AssignmentId, ConsentReference, FreeText, MunicipalityCode, ParticipantId, PersonName,
    Principal, Staff,
};

/// The youngest age at which a person may be referred.
pub const MIN_AGE_YEARS: i32 = 18;

/// Where a participant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Referred; the joint review has not decided.
    Referred,
    /// Accepted by the joint review; enrolment awaits consent.
    Accepted,
    /// Declined by the joint review.
    Declined,
    /// Taking part.
    Enrolled,
    /// Participation ended.
    Discharged,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Referred => "referred",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Enrolled => "enrolled",
            Self::Discharged => "discharged",
        }
    }

    /// The status of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        [
            Self::Referred,
            Self::Accepted,
            Self::Declined,
            Self::Enrolled,
            Self::Discharged,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether a participation is under way (a new referral would be a duplicate).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Referred | Self::Accepted | Self::Enrolled)
    }
}

/// One principal's assessment of a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessment {
    /// Include the person.
    Accept,
    /// Do not include the person.
    Decline,
}

impl Assessment {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
        }
    }

    /// The assessment of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "accept" => Some(Self::Accept),
            "decline" => Some(Self::Decline),
            _ => None,
        }
    }
}

/// The admission-criteria checklist; age is checked from the identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdmissionCriteria {
    /// Needs from both principals over a long time.
    pub long_term_needs_from_both_principals: bool,
    /// The programme's diagnosis criteria are met.
    pub diagnosis_criteria_met: bool,
}

impl AdmissionCriteria {
    /// Whether the checklist allows acceptance under `settings`.
    pub fn met(&self, settings: &ParticipantsSettings) -> bool {
        self.long_term_needs_from_both_principals
            && (self.diagnosis_criteria_met || !settings.diagnosis_criteria_required)
    }
}

/// A referral: one episode of a participant's life in the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The referral's id.
    pub id: Uuid,
    /// Who refers: region or municipality.
    pub principal: Principal,
    /// The referring member of staff.
    pub referred_by: Staff,
    /// Why.
    pub reason: FreeText,
    /// The checklist.
    pub criteria: AdmissionCriteria,
    /// When it was recorded.
    pub referred_at: DateTime<Utc>,
}

/// One principal's review of the current referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The reviewing principal.
    pub principal: Principal,
    /// Who recorded it.
    pub reviewed_by: Staff,
    /// Accept or decline.
    pub assessment: Assessment,
    /// Why (may be empty).
    pub reason: FreeText,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// The outcome of the joint review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Accepted or declined.
    pub accepted: bool,
    /// The deciding review's reason.
    pub reason: FreeText,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

/// Enrolment in the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The participation consent's id in the consent service.
    pub consent_reference: ConsentReference,
    /// The enrolment date.
    pub enrolled_on: NaiveDate,
    /// The home municipality at enrolment (what the yearly counts count).
    pub municipality: MunicipalityCode,
    /// When the participation consent was revoked or voided while taking part: follow up.
    pub consent_revoked_at: Option<DateTime<Utc>>,
}

/// A participation consent as the consent service's change feed last described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownConsent {
    /// Whose consent it is.
    pub participant_id: ParticipantId,
    /// Recorded and neither revoked nor voided.
    pub active: bool,
}

/// Whether `consent` lets `participant` be enrolled: it must be a participation consent of
/// this participant that still counts. Unknown, ended and someone else's get the same
/// answer, so enrolment tells nothing about other people's consents.
pub fn check_participation_consent(
    consent: Option<KnownConsent>,
    participant: ParticipantId,
) -> Result<(), ParticipantsError> {
    match consent {
        Some(c) if c.active && c.participant_id == participant => Ok(()),
        _ => Err(ParticipantsError::InvalidField {
            field: "consent_reference",
            reason: "not an active participation consent of this participant",
        }),
    }
}

/// Why participation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DischargeReason {
    /// Ready for ordinary care.
    ReadyForOrdinaryCare,
    /// Moved out of the programme area.
    Moved,
    /// Declined further participation.
    DeclinedFurtherParticipation,
    /// Deceased.
    Deceased,
    /// Another reason, described in the note.
    Other,
}

impl DischargeReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadyForOrdinaryCare => "ready_for_ordinary_care",
            Self::Moved => "moved",
            Self::DeclinedFurtherParticipation => "declined_further_participation",
            Self::Deceased => "deceased",
            Self::Other => "other",
        }
    }

    /// The reason of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        [
            Self::ReadyForOrdinaryCare,
            Self::Moved,
            Self::DeclinedFurtherParticipation,
            Self::Deceased,
            Self::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }
}

/// The end of participation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discharge {
    /// Why.
    pub reason: DischargeReason,
    /// From which date.
    pub discharged_on: NaiveDate,
    /// Free-text note (required for `Other`).
    pub note: FreeText,
}

/// A participant with their current referral episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Internal id.
    pub id: ParticipantId,
    /// Personnummer or samordningsnummer.
    pub pin: PersonalIdentityNumber,
    /// Name.
    pub name: PersonName,
    /// Home municipality.
    pub home_municipality: MunicipalityCode,
    /// Where they stand.
    pub status: Status,
    /// The current referral.
    pub referral: Referral,
    /// Reviews of the current referral, oldest first.
    pub reviews: Vec<Review>,
    /// The joint review's outcome.
    pub outcome: Option<Outcome>,
    /// Enrolment.
    pub enrolment: Option<Enrolment>,
    /// Discharge.
    pub discharge: Option<Discharge>,
    /// Revision for optimistic concurrency; every change advances it.
    pub revision: u64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A referral as requested.
#[derive(Debug, Clone)]
pub struct NewReferral {
    /// The person's identity number.
    pub pin: PersonalIdentityNumber,
    /// The person's name.
    pub name: PersonName,
    /// Their home municipality.
    pub home_municipality: MunicipalityCode,
    /// The referring principal.
    pub principal: Principal,
    /// The referring member of staff.
    pub referred_by: Staff,
    /// Why.
    pub reason: FreeText,
    /// The checklist.
    pub criteria: AdmissionCriteria,
}

impl Participant {
    /// Refers a person: a new participant, or a new episode for `existing` when their earlier
    /// participation was declined or ended.
    pub fn refer(
        existing: Option<&Participant>,
        new: NewReferral,
        settings: &ParticipantsSettings,
        now: DateTime<Utc>,
    ) -> Result<Self, ParticipantsError> {
        if existing.is_some_and(|p| p.status.is_active()) {
            return Err(ParticipantsError::AlreadyActive);
        }
        let home = existing.map_or(&new.home_municipality, |p| &p.home_municipality);
        if !settings.in_programme(home) {
            return Err(ParticipantsError::FailedPrecondition(
                "the home municipality is outside the programme area",
            ));
        }
        if new.pin.age_on(now.date_naive()) < MIN_AGE_YEARS {
            return Err(ParticipantsError::FailedPrecondition(
                "the person must be 18 or older",
            ));
        }
        // A re-referral opens a new episode and changes nothing of who the person is or
        // where they live: identity data and home municipality change only by the care
        // team's RecordMove, so a referrer cannot take a former participant over.
        let (pin, name, home_municipality) = match existing {
            Some(p) => (p.pin.clone(), p.name.clone(), p.home_municipality.clone()),
            None => (new.pin, new.name, new.home_municipality),
        };
        Ok(Self {
            id: existing.map_or_else(ParticipantId::generate, |p| p.id),
            pin,
            name,
            home_municipality,
            status: Status::Referred,
            referral: Referral {
                id: Uuid::now_v7(),
                principal: new.principal,
                referred_by: new.referred_by,
                reason: new.reason,
                criteria: new.criteria,
                referred_at: now,
            },
            reviews: Vec::new(),
            outcome: None,
            enrolment: None,
            discharge: None,
            revision: existing.map_or(1, |p| p.revision + 1),
            updated_at: now,
        })
    }

    /// Checks the caller's revision against the current one.
    pub fn check_revision(&self, expected: u64) -> Result<(), ParticipantsError> {
        if expected == self.revision {
            Ok(())
        } else {
            Err(ParticipantsError::StaleRevision {
                current: self.revision,
            })
        }
    }

    /// Records one principal's review; the outcome follows `settings.review_rule`.
    pub fn record_review(
        &mut self,
        review: Review,
        settings: &ParticipantsSettings,
    ) -> Result<(), ParticipantsError> {
        if self.status != Status::Referred {
            return Err(ParticipantsError::FailedPrecondition(
                "the referral has already been decided",
            ));
        }
        if self.reviews.iter().any(|r| r.principal == review.principal) {
            return Err(ParticipantsError::FailedPrecondition(
                "this principal has already reviewed the referral",
            ));
        }
        if review.assessment == Assessment::Accept && !self.referral.criteria.met(settings) {
            return Err(ParticipantsError::FailedPrecondition(
                "the admission criteria are not met",
            ));
        }
        let now = review.recorded_at;
        self.reviews.push(review);
        if let Some((accepted, reason)) = decide(&self.reviews, settings.review_rule) {
            self.status = if accepted {
                Status::Accepted
            } else {
                Status::Declined
            };
            self.outcome = Some(Outcome {
                accepted,
                reason,
                decided_at: now,
            });
        }
        self.touch(now);
        Ok(())
    }

    /// Enrols an accepted participant.
    pub fn enrol(
        &mut self,
        consent_reference: ConsentReference,
        enrolled_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), ParticipantsError> {
        if self.status != Status::Accepted {
            return Err(ParticipantsError::FailedPrecondition(
                "only an accepted referral can be enrolled",
            ));
        }
        self.check_date("enrolled_on", enrolled_on, now)?;
        self.status = Status::Enrolled;
        self.enrolment = Some(Enrolment {
            consent_reference,
            enrolled_on,
            municipality: self.home_municipality.clone(),
            consent_revoked_at: None,
        });
        self.touch(now);
        Ok(())
    }

    /// The participation consent `consent` no longer counts (revoked or voided). When it is
    /// this enrolled participant's, flags the participation for follow-up and, when the
    /// programme says so, ends it. Returns the feed's change kind when something changed.
    pub fn participation_consent_ended(
        &mut self,
        consent: ConsentReference,
        on_revoked: OnConsentRevoked,
        now: DateTime<Utc>,
    ) -> Option<&'static str> {
        if self.status != Status::Enrolled {
            return None;
        }
        let enrolment = self.enrolment.as_mut()?;
        if enrolment.consent_reference != consent || enrolment.consent_revoked_at.is_some() {
            return None;
        }
        enrolment.consent_revoked_at = Some(now);
        let kind = match on_revoked {
            OnConsentRevoked::Flag => "participation_consent_revoked",
            OnConsentRevoked::Discharge => {
                self.end(
                    DischargeReason::DeclinedFurtherParticipation,
                    now.date_naive(),
                    FreeText::default(),
                );
                "discharged"
            }
        };
        self.touch(now);
        Some(kind)
    }

    /// Records a move; returns whether it ended participation (a move out of the programme
    /// area while participation is active).
    pub fn record_move(
        &mut self,
        municipality: MunicipalityCode,
        moved_on: NaiveDate,
        settings: &ParticipantsSettings,
        now: DateTime<Utc>,
    ) -> Result<bool, ParticipantsError> {
        self.check_date("moved_on", moved_on, now)?;
        if municipality == self.home_municipality {
            return Err(ParticipantsError::InvalidField {
                field: "home_municipality_code",
                reason: "the participant already lives there",
            });
        }
        let ends = self.status.is_active() && !settings.in_programme(&municipality);
        self.home_municipality = municipality;
        if ends {
            self.end(DischargeReason::Moved, moved_on, FreeText::default());
        }
        self.touch(now);
        Ok(ends)
    }

    /// Ends an active participation.
    pub fn discharge(
        &mut self,
        reason: DischargeReason,
        discharged_on: NaiveDate,
        note: FreeText,
        now: DateTime<Utc>,
    ) -> Result<(), ParticipantsError> {
        if !self.status.is_active() {
            return Err(ParticipantsError::FailedPrecondition(
                "participation is not active",
            ));
        }
        if reason == DischargeReason::Other && note.is_blank() {
            return Err(ParticipantsError::InvalidField {
                field: "note",
                reason: "required when the reason is other",
            });
        }
        self.check_date("discharged_on", discharged_on, now)?;
        if let Some(enrolment) = &self.enrolment
            && discharged_on < enrolment.enrolled_on
        {
            return Err(ParticipantsError::InvalidField {
                field: "discharged_on",
                reason: "before the enrolment date",
            });
        }
        self.end(reason, discharged_on, note);
        self.touch(now);
        Ok(())
    }

    /// Care-team changes need an enrolled participant.
    pub fn require_enrolled(&self) -> Result<(), ParticipantsError> {
        if self.status == Status::Enrolled {
            Ok(())
        } else {
            Err(ParticipantsError::FailedPrecondition(
                "the participant is not enrolled",
            ))
        }
    }

    /// Advances the revision after a change that touches only assignments.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.revision += 1;
        self.updated_at = now;
    }

    fn end(&mut self, reason: DischargeReason, discharged_on: NaiveDate, note: FreeText) {
        self.status = Status::Discharged;
        self.discharge = Some(Discharge {
            reason,
            discharged_on,
            note,
        });
    }

    /// A date of the episode: not before the referral, not in the future.
    fn check_date(
        &self,
        field: &'static str,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), ParticipantsError> {
        if date < self.referral.referred_at.date_naive() {
            return Err(ParticipantsError::InvalidField {
                field,
                reason: "before the referral date",
            });
        }
        // One day of slack: "today" in Sweden is tomorrow in UTC for an hour or two.
        if date > now.date_naive() + chrono::Days::new(1) {
            return Err(ParticipantsError::InvalidField {
                field,
                reason: "in the future",
            });
        }
        Ok(())
    }
}

/// The outcome of the reviews so far under `rule`, if they decide it.
pub fn decide(reviews: &[Review], rule: ReviewRule) -> Option<(bool, FreeText)> {
    match rule {
        ReviewRule::MunicipalityDecides => reviews
            .iter()
            .find(|r| r.principal == Principal::Municipality)
            .map(|r| (r.assessment == Assessment::Accept, r.reason.clone())),
        ReviewRule::BothMustAgree => {
            if let Some(decline) = reviews.iter().find(|r| r.assessment == Assessment::Decline) {
                return Some((false, decline.reason.clone()));
            }
            let accepted_by = |p| {
                reviews
                    .iter()
                    .any(|r| r.principal == p && r.assessment == Assessment::Accept)
            };
            (accepted_by(Principal::Region) && accepted_by(Principal::Municipality)).then(|| {
                (
                    true,
                    reviews
                        .iter()
                        .rev()
                        .map(|r| r.reason.clone())
                        .next()
                        .unwrap_or_default(),
                )
            })
        }
    }
}

/// Main or deputy coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorRank {
    /// Main coordinator.
    Main,
    /// Deputy coordinator.
    Deputy,
}

impl CoordinatorRank {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Deputy => "deputy",
        }
    }

    /// The rank of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "main" => Some(Self::Main),
            "deputy" => Some(Self::Deputy),
            _ => None,
        }
    }
}

/// A care-team member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CareRole {
    CaseManager,
    Physician,
    Nurse,
    Psychologist,
    SocialWorker,
    NeedsAssessor,
    HousingSupportWorker,
    PeerSupportSpecialist,
    IpsSpecialist,
    TeamLeader,
    Other,
}

impl CareRole {
    const ALL: [Self; 11] = [
        Self::CaseManager,
        Self::Physician,
        Self::Nurse,
        Self::Psychologist,
        Self::SocialWorker,
        Self::NeedsAssessor,
        Self::HousingSupportWorker,
        Self::PeerSupportSpecialist,
        Self::IpsSpecialist,
        Self::TeamLeader,
        Self::Other,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaseManager => "case_manager",
            Self::Physician => "physician",
            Self::Nurse => "nurse",
            Self::Psychologist => "psychologist",
            Self::SocialWorker => "social_worker",
            Self::NeedsAssessor => "needs_assessor",
            Self::HousingSupportWorker => "housing_support_worker",
            Self::PeerSupportSpecialist => "peer_support_specialist",
            Self::IpsSpecialist => "ips_specialist",
            Self::TeamLeader => "team_leader",
            Self::Other => "other",
        }
    }

    /// The role of a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// What an assignment makes a member of staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentRole {
    /// Coordinator for a principal.
    Coordinator {
        /// For which principal.
        principal: Principal,
        /// Main or deputy.
        rank: CoordinatorRank,
    },
    /// Care-team member.
    CareTeamMember {
        /// Their role.
        role: CareRole,
    },
    /// Fixed care contact.
    FixedCareContact,
}

/// One assignment of staff to a participant: a history row, ended but never overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Id.
    pub id: AssignmentId,
    /// What it makes the member of staff.
    pub role: AssignmentRole,
    /// Who.
    pub staff: Staff,
    /// From when.
    pub valid_from: DateTime<Utc>,
    /// Until when; `None` while current.
    pub valid_until: Option<DateTime<Utc>>,
}

/// The rows to end and the row to start for an assignment change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentChange {
    /// Current assignments that end now.
    pub end: Vec<AssignmentId>,
    /// The new assignment, if any.
    pub start: Option<Assignment>,
}

/// Plans a new assignment against the current ones: a coordinator slot or the fixed care
/// contact has one holder, whose assignment ends; the same person twice is refused.
pub fn plan_assignment(
    current: &[Assignment],
    role: AssignmentRole,
    staff: Staff,
    now: DateTime<Utc>,
) -> Result<AssignmentChange, ParticipantsError> {
    let current: Vec<&Assignment> = current.iter().filter(|a| a.valid_until.is_none()).collect();
    let same_person = |a: &&&Assignment| a.staff.staff_id == staff.staff_id;
    let end: Vec<AssignmentId> = match role {
        AssignmentRole::Coordinator { principal, rank } => {
            if current.iter().filter(same_person).any(|a| a.role == role) {
                return Err(ParticipantsError::AlreadyAssigned);
            }
            current
                .iter()
                .filter(|a| match a.role {
                    // The slot's holder ends, and so does this person's other rank for the
                    // principal: nobody is both main and deputy.
                    AssignmentRole::Coordinator {
                        principal: p,
                        rank: r,
                    } => p == principal && (r == rank || a.staff.staff_id == staff.staff_id),
                    _ => false,
                })
                .map(|a| a.id)
                .collect()
        }
        AssignmentRole::CareTeamMember { .. } => {
            if current
                .iter()
                .filter(same_person)
                .any(|a| matches!(a.role, AssignmentRole::CareTeamMember { .. }))
            {
                return Err(ParticipantsError::AlreadyAssigned);
            }
            Vec::new()
        }
        AssignmentRole::FixedCareContact => {
            if current.iter().filter(same_person).any(|a| a.role == role) {
                return Err(ParticipantsError::AlreadyAssigned);
            }
            current
                .iter()
                .filter(|a| a.role == role)
                .map(|a| a.id)
                .collect()
        }
    };
    Ok(AssignmentChange {
        end,
        start: Some(Assignment {
            id: AssignmentId::generate(),
            role,
            staff,
            valid_from: now,
            valid_until: None,
        }),
    })
}

/// Plans the end of the current assignment `id`.
pub fn plan_end(
    current: &[Assignment],
    id: AssignmentId,
) -> Result<AssignmentChange, ParticipantsError> {
    current
        .iter()
        .find(|a| a.id == id && a.valid_until.is_none())
        .map(|a| AssignmentChange {
            end: vec![a.id],
            start: None,
        })
        .ok_or(ParticipantsError::NotFound("assignment"))
}

#[cfg(test)]
mod tests {
    use super::super::types::{OrganisationId, StaffId};
    use super::*;

    fn staff(id: &str) -> Staff {
        Staff {
            staff_id: StaffId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            organisation_id: OrganisationId::parse("1283").unwrap_or_else(|e| panic!("{e}")),
            unit_id: None,
        }
    }

    fn review(principal: Principal, assessment: Assessment) -> Review {
        Review {
            principal,
            reviewed_by: staff("s1"),
            assessment,
            reason: FreeText::default(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn review_rules_decide_as_configured() {
        use Assessment::{Accept as A, Decline as D};
        use Principal::{Municipality as M, Region as R};
        use ReviewRule::{BothMustAgree as Both, MunicipalityDecides as Mun};
        // (rule, reviews so far, outcome: None = undecided, Some(accepted))
        type Row = (ReviewRule, &'static [(Principal, Assessment)], Option<bool>);
        let table: [Row; 10] = [
            (Mun, &[(R, A)], None),
            (Mun, &[(R, D)], None),
            (Mun, &[(M, A)], Some(true)),
            (Mun, &[(M, D)], Some(false)),
            (Mun, &[(R, D), (M, A)], Some(true)),
            (Both, &[(R, A)], None),
            (Both, &[(M, A)], None),
            (Both, &[(R, D)], Some(false)),
            (Both, &[(M, A), (R, A)], Some(true)),
            (Both, &[(M, A), (R, D)], Some(false)),
        ];
        for (rule, reviews, expected) in table {
            let reviews: Vec<Review> = reviews.iter().map(|&(p, a)| review(p, a)).collect();
            assert_eq!(
                decide(&reviews, rule).map(|(accepted, _)| accepted),
                expected,
                "{rule:?} {reviews:?}"
            );
        }
    }

    #[test]
    fn a_coordinator_slot_has_one_holder_and_history_stays() {
        let now = Utc::now();
        let main = AssignmentRole::Coordinator {
            principal: Principal::Region,
            rank: CoordinatorRank::Main,
        };
        let deputy = AssignmentRole::Coordinator {
            principal: Principal::Region,
            rank: CoordinatorRank::Deputy,
        };
        let first =
            plan_assignment(&[], main, staff("anna"), now).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.end.is_empty());
        let Some(first_start) = first.start.clone() else {
            panic!("a new assignment")
        };
        let current = vec![first_start.clone()];
        let second =
            plan_assignment(&current, main, staff("bo"), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.end, vec![first_start.id]);
        assert!(matches!(
            plan_assignment(&current, main, staff("anna"), now),
            Err(ParticipantsError::AlreadyAssigned)
        ));
        // Anna moving from main to deputy ends her main assignment.
        let moved =
            plan_assignment(&current, deputy, staff("anna"), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(moved.end, vec![first_start.id]);
        // An ended assignment cannot be ended again.
        let mut ended = first_start.clone();
        ended.valid_until = Some(now);
        assert!(plan_end(&[ended], first_start.id).is_err());
    }

    #[test]
    fn statuses_round_trip_their_stored_names() {
        for s in [
            Status::Referred,
            Status::Accepted,
            Status::Declined,
            Status::Enrolled,
            Status::Discharged,
        ] {
            assert_eq!(Status::from_stored(s.as_str()), Some(s));
        }
        for r in CareRole::ALL {
            assert_eq!(CareRole::from_stored(r.as_str()), Some(r));
        }
    }
}
