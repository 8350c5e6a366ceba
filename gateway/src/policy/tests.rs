//! The shipped policies as a table: principal × call × facts → allow or deny, the policies
//! that decided, and the audit flags. The consent outcomes come from the real consent rule.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use chrono::Duration;
use samsyn_consent_rule as rule;

use super::prune::CATEGORIES;
use super::*;
use crate::access_view::ParticipantStatus;
use crate::auth::PrincipalKind;

const REGION: &str = "SE2321000016-F00D";
const MUNICIPALITY: &str = "1283";
const OTHER_MUNICIPALITY: &str = "0180";
const FACT_TEAM: &str = "fact-nordvast";
const PARTICIPANT: &str = "0b6f7c52-4a8e-4f43-9a3e-2f1f5f0c9d11";
const OTHER_PARTICIPANT: &str = "5d0e8a9c-1b2f-4c3d-8e4f-6a7b8c9d0e1f";

const CASE_MANAGER: &str = "SE2321000016-cm01";
const HOUSING_WORKER: &str = "SE2321000016-bs02";
const MUNI_COORDINATOR: &str = "SE1283-coord01";

const GET_PLAN: &str = "/samsyn.plans.v1.PlansService/GetPlan";
const UPDATE_PLAN: &str = "/samsyn.plans.v1.PlansService/UpdatePlan";
const PUSH_DECISION: &str = "/samsyn.plans.v1.PlansService/PushDecision";
const LIST_CONSENTS: &str = "/samsyn.consent.v1.ConsentService/ListConsents";
const RECORD_CONSENT: &str = "/samsyn.consent.v1.ConsentService/RecordConsent";
const REVOKE_CONSENT: &str = "/samsyn.consent.v1.ConsentService/RevokeConsent";
const LIFT_RESTRICTION: &str = "/samsyn.consent.v1.ConsentService/LiftRestriction";
const REVOKE_RESTRICTION: &str = "/samsyn.consent.v1.ConsentService/RevokeRestriction";
const GET_ENTRY: &str = "/samsyn.board.v1.BoardService/GetEntry";
const GET_BOARD: &str = "/samsyn.board.v1.BoardService/GetBoard";
const RECORD_REVIEW: &str = "/samsyn.participants.v1.ParticipantsService/RecordReview";
const WATCH_PLANS: &str = "/samsyn.plans.v1.PlansService/WatchChanges";
const LIST_AUDIT: &str = "/samsyn.audit.v1.AuditService/ListEvents";
const LIST_PARTICIPANTS: &str = "/samsyn.participants.v1.ParticipantsService/ListParticipants";

fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies")
}

fn engine() -> PolicyEngine {
    PolicyEngine::load(&policy_dir()).unwrap()
}

fn now() -> DateTime<Utc> {
    // 2026-06-01T10:00:00Z.
    DateTime::from_timestamp(1_780_308_000, 0).unwrap()
}

fn staff(id: &str, organisation: &str, roles: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Staff,
        organisation: Some(organisation.into()),
        unit: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        teams: Vec::new(),
        purpose: Some("care".into()),
        acting_through: None,
    }
}

fn in_team(mut principal: Principal, team: &str) -> Principal {
    principal.teams.push(team.into());
    principal
}

fn without_purpose(mut principal: Principal) -> Principal {
    principal.purpose = None;
    principal
}

fn system(id: &str, organisation: &str, role: &str) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::System,
        organisation: Some(organisation.into()),
        unit: None,
        roles: vec![role.into()],
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    }
}

fn person(id: &str) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Participant,
        organisation: None,
        unit: None,
        roles: Vec::new(),
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    }
}

fn call(rpc: &str, action: Action, category: DataCategory) -> Call {
    Call {
        rpc: rpc.into(),
        action,
        category,
        internal_only: false,
        narrowed_list: false,
        link_allows: false,
        programme_member: true,
        act: Act::default(),
    }
}

fn read(rpc: &str, category: DataCategory) -> Call {
    call(rpc, Action::Read, category)
}

fn write(rpc: &str, category: DataCategory) -> Call {
    call(rpc, Action::Write, category)
}

fn linked(mut call: Call) -> Call {
    call.link_allows = true;
    call
}

fn list(mut call: Call) -> Call {
    call.narrowed_list = true;
    call
}

/// A call that records a sharing consent from `from` to `to`.
fn disclosing(mut call: Call, from: &str, to: &str) -> Call {
    call.act.disclosing_organisation = Some(from.into());
    call.act.receiving_organisation = Some(to.into());
    call
}

/// A call that lifts or revokes a restriction against `blocked` protecting `owner`'s data.
fn unrestricting(mut call: Call, blocked: &str, owner: Option<&str>) -> Call {
    call.act.restricted_organisation = Some(blocked.into());
    call.act.protected_owner = owner.map(str::to_owned);
    call
}

/// A call by someone whose organisation is not one of the programme's.
fn outsider(mut call: Call) -> Call {
    call.programme_member = false;
    call
}

fn internal(mut call: Call) -> Call {
    call.internal_only = true;
    call
}

/// An enrolled participant with a region case manager, a housing-support worker and a
/// municipal coordinator on the care team, on the FACT team's board.
fn participant(id: &str) -> ParticipantFacts {
    use crate::access_view::{
        AssignmentRole, CareRole, CoordinatorRank, OrganisationKind, TeamMember,
    };
    let member = |staff: &str, organisation: &str, role: AssignmentRole| TeamMember {
        assignment_id: format!("assignment-{staff}"),
        staff_id: staff.into(),
        organisation_id: organisation.into(),
        unit_id: None,
        role,
    };
    ParticipantFacts {
        participant_id: id.into(),
        status: ParticipantStatus::Enrolled,
        home_municipality: MUNICIPALITY.into(),
        revision: 3,
        care_team: vec![
            member(
                CASE_MANAGER,
                REGION,
                AssignmentRole::CareTeamMember(CareRole::CaseManager),
            ),
            member(
                HOUSING_WORKER,
                REGION,
                AssignmentRole::CareTeamMember(CareRole::HousingSupportWorker),
            ),
            member(
                MUNI_COORDINATOR,
                MUNICIPALITY,
                AssignmentRole::Coordinator {
                    principal: OrganisationKind::Municipality,
                    rank: CoordinatorRank::Main,
                },
            ),
        ],
        fact_teams: vec![FACT_TEAM.into()],
        consents: Vec::new(),
        restrictions: Vec::new(),
    }
}

fn referred() -> ParticipantFacts {
    ParticipantFacts {
        care_team: Vec::new(),
        fact_teams: Vec::new(),
        status: ParticipantStatus::Referred,
        ..participant(PARTICIPANT)
    }
}

/// The facts of one row, owned (a `Resource` borrows them).
struct Data {
    owner: Option<&'static str>,
    participant: Option<ParticipantFacts>,
}

impl Data {
    fn resource(&self) -> Resource<'_> {
        Resource {
            owner_organisation: self.owner,
            participant: self.participant.as_ref(),
        }
    }
}

fn owned_by(owner: &'static str) -> Data {
    Data {
        owner: Some(owner),
        participant: Some(participant(PARTICIPANT)),
    }
}

fn joint() -> Data {
    Data {
        owner: None,
        participant: Some(participant(PARTICIPANT)),
    }
}

fn unnamed() -> Data {
    Data {
        owner: None,
        participant: None,
    }
}

fn referred_joint() -> Data {
    Data {
        owner: None,
        participant: Some(referred()),
    }
}

/// A consent from the region to the municipality for `categories`, from 30 days ago.
fn sharing(categories: &[rule::Category], until_days: Option<i64>) -> rule::Consent {
    rule::Consent {
        id: "consent-1".into(),
        kind: rule::ConsentKind::InformationSharing,
        sharing: Some(rule::Sharing {
            from_organisation: REGION.into(),
            to_organisation: MUNICIPALITY.into(),
            categories: categories.iter().copied().collect(),
            unit: None,
            staff: None,
        }),
        valid_from: now() - Duration::days(30),
        valid_until: until_days.map(|d| now() + Duration::days(d)),
        revoked_at: None,
        voided: false,
    }
}

/// The scope of a consent from the municipality to the region for `categories`.
fn sharing_scope(categories: &[rule::Category]) -> rule::Sharing {
    rule::Sharing {
        from_organisation: MUNICIPALITY.into(),
        to_organisation: REGION.into(),
        categories: categories.iter().copied().collect(),
        unit: None,
        staff: None,
    }
}

/// A consent from the municipality to the region for `categories`, from 30 days ago.
fn sharing_to_region(categories: &[rule::Category]) -> rule::Consent {
    rule::Consent {
        id: "consent-to-region".into(),
        sharing: Some(sharing_scope(categories)),
        ..sharing(categories, None)
    }
}

/// A participant only the municipality has assignments for, the data owned by `owner`.
fn cared_for_by_municipality_only(owner: Option<&'static str>) -> Data {
    let mut facts = participant(PARTICIPANT);
    facts
        .care_team
        .retain(|m| m.organisation_id == MUNICIPALITY);
    Data {
        owner,
        participant: Some(facts),
    }
}

/// A restriction blocking the municipality from the plan, from 10 days ago.
fn restriction() -> rule::Restriction {
    rule::Restriction {
        id: "restriction-1".into(),
        organisation: MUNICIPALITY.into(),
        unit: None,
        owner_organisation: None,
        categories: [rule::Category::Plan].into_iter().collect(),
        valid_from: now() - Duration::days(10),
        valid_until: None,
        revoked_at: None,
        lifts: Vec::new(),
    }
}

/// What the consent rule says for `reader` reading `category` owned by `owner`.
fn consent(
    consents: &[rule::Consent],
    restrictions: &[rule::Restriction],
    reader: &str,
    owner: &str,
    category: rule::Category,
) -> Option<rule::Decision> {
    Some(rule::decide(
        consents,
        restrictions,
        &rule::Request {
            reader_organisation: reader.into(),
            reader_unit: None,
            reader_staff: None,
            owner_organisation: owner.into(),
            category,
            purpose: rule::Purpose::Care,
            at: now(),
            emergency: false,
        },
    ))
}

fn emergency(hours_ago: i64) -> Emergency {
    Emergency {
        reason_given: true,
        declared_at: Some(now() - Duration::hours(hours_ago)),
    }
}

struct Row {
    case: &'static str,
    principal: Principal,
    call: Call,
    resource: Data,
    consent: Option<rule::Decision>,
    emergency: Emergency,
    allowed: bool,
    policies: &'static [&'static str],
    disclosure: bool,
    emergency_flag: bool,
}

fn row(
    case: &'static str,
    principal: Principal,
    call: Call,
    resource: Data,
    consent: Option<rule::Decision>,
) -> Row {
    Row {
        case,
        principal,
        call,
        resource,
        consent,
        emergency: Emergency::default(),
        allowed: false,
        policies: &[],
        disclosure: false,
        emergency_flag: false,
    }
}

impl Row {
    fn allow(mut self, policies: &'static [&'static str]) -> Self {
        self.allowed = true;
        self.policies = policies;
        self
    }

    fn deny(mut self, policies: &'static [&'static str]) -> Self {
        self.allowed = false;
        self.policies = policies;
        self
    }

    fn disclosure(mut self) -> Self {
        self.disclosure = true;
        self
    }

    fn flagged_emergency(mut self) -> Self {
        self.emergency_flag = true;
        self
    }

    fn with_emergency(mut self, emergency: Emergency) -> Self {
        self.emergency = emergency;
        self
    }
}

fn table() -> Vec<Row> {
    use DataCategory as D;
    use rule::Category as C;
    let case_manager = || staff(CASE_MANAGER, REGION, &["case_manager"]);
    let coordinator = || staff(MUNI_COORDINATOR, MUNICIPALITY, &["coordinator"]);
    let plan_consent = || sharing(&[C::Plan, C::CareTeam], None);
    let physician = || staff("SE2321000016-akut07", REGION, &["physician"]);
    let municipal_system = || {
        system(
            "kommun-1283-verksamhetssystem",
            MUNICIPALITY,
            "municipal_case_system",
        )
    };
    let journal_system = || system("region-journal", REGION, "journal_system");
    vec![
        // Staff of the owning organisation on the care team.
        row(
            "region case manager on the team reads the plan",
            case_manager(),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .allow(&["care-team-read"]),
        row(
            "region case manager on the team updates the plan",
            case_manager(),
            write(UPDATE_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .allow(&["care-team-write"]),
        row(
            "housing-support worker on the team reads",
            staff(HOUSING_WORKER, REGION, &["housing_support_worker"]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .allow(&["care-team-read"]),
        row(
            "housing-support worker on the team may not write",
            staff(HOUSING_WORKER, REGION, &["housing_support_worker"]),
            write(UPDATE_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        row(
            "region staff not on the team",
            staff("SE2321000016-ps09", REGION, &["psychologist"]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        row(
            "region staff in the FACT team reads the board entry",
            in_team(staff("SE2321000016-ss11", REGION, &["nurse"]), FACT_TEAM),
            read(GET_ENTRY, D::Board),
            owned_by(REGION),
            None,
        )
        .allow(&["care-team-read"]),
        row(
            "FACT team membership does not open the plan",
            in_team(staff("SE2321000016-ss11", REGION, &["nurse"]), FACT_TEAM),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        row(
            "staff acting with no purpose",
            without_purpose(case_manager()),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .deny(&["staff-without-purpose"]),
        // Staff of another organisation: consent.
        row(
            "municipal coordinator on the team with consent",
            coordinator(),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[plan_consent()], &[], MUNICIPALITY, REGION, C::Plan),
        )
        .allow(&["consent-disclosure-read"])
        .disclosure(),
        row(
            "municipal coordinator on the team without consent",
            coordinator(),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[], &[], MUNICIPALITY, REGION, C::Plan),
        )
        .deny(&[]),
        row(
            "municipal coordinator never writes the region's data, consent or not",
            coordinator(),
            write(UPDATE_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[plan_consent()], &[], MUNICIPALITY, REGION, C::Plan),
        )
        .deny(&[]),
        row(
            "municipal coordinator reads the plan both keep together",
            coordinator(),
            read(GET_PLAN, D::Plan),
            joint(),
            None,
        )
        .allow(&["care-team-read"]),
        row(
            "municipal staff whose consent covers another category",
            coordinator(),
            read(GET_ENTRY, D::Board),
            owned_by(REGION),
            consent(&[plan_consent()], &[], MUNICIPALITY, REGION, C::Board),
        )
        .deny(&[]),
        row(
            "municipal staff with an expired consent",
            coordinator(),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(
                &[sharing(&[C::Plan], Some(-1))],
                &[],
                MUNICIPALITY,
                REGION,
                C::Plan,
            ),
        )
        .deny(&[]),
        row(
            "municipal staff under a restriction, consent notwithstanding",
            coordinator(),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(
                &[plan_consent()],
                &[restriction()],
                MUNICIPALITY,
                REGION,
                C::Plan,
            ),
        )
        .deny(&["consent-rule-forbids"]),
        row(
            "municipal staff with consent but not on the team",
            staff("SE1283-ss42", MUNICIPALITY, &["social_worker"]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[plan_consent()], &[], MUNICIPALITY, REGION, C::Plan),
        )
        .deny(&[]),
        // Emergency access.
        row(
            "physician with an emergency reason",
            physician(),
            read(GET_PLAN, D::Plan),
            owned_by(MUNICIPALITY),
            consent(&[], &[], REGION, MUNICIPALITY, C::Plan),
        )
        .with_emergency(emergency(0))
        .allow(&["emergency-read"])
        .flagged_emergency(),
        row(
            "physician without an emergency reason",
            physician(),
            read(GET_PLAN, D::Plan),
            owned_by(MUNICIPALITY),
            consent(&[], &[], REGION, MUNICIPALITY, C::Plan),
        )
        .deny(&[]),
        row(
            "social worker with an emergency reason",
            staff("SE1283-ss42", MUNICIPALITY, &["social_worker"]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[], &[], MUNICIPALITY, REGION, C::Plan),
        )
        .with_emergency(emergency(0))
        .deny(&[]),
        row(
            "emergency access is read only",
            physician(),
            write(UPDATE_PLAN, D::Plan),
            owned_by(MUNICIPALITY),
            None,
        )
        .with_emergency(emergency(0))
        .deny(&[]),
        row(
            "emergency access ends after four hours",
            physician(),
            read(GET_PLAN, D::Plan),
            owned_by(MUNICIPALITY),
            consent(&[], &[], REGION, MUNICIPALITY, C::Plan),
        )
        .with_emergency(emergency(5))
        .deny(&[]),
        row(
            "emergency access does not break a restriction",
            staff("SE1283-ssk3", MUNICIPALITY, &["nurse"]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[], &[restriction()], MUNICIPALITY, REGION, C::Plan),
        )
        .with_emergency(emergency(0))
        .deny(&["consent-rule-forbids"]),
        row(
            "care-team member giving an emergency reason is not flagged",
            in_team(
                staff(CASE_MANAGER, REGION, &["case_manager", "nurse"]),
                FACT_TEAM,
            ),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .with_emergency(emergency(0))
        .allow(&["care-team-read", "emergency-read"]),
        // Systems.
        row(
            "municipal system pushes a decision its link allows",
            municipal_system(),
            linked(write(PUSH_DECISION, D::Decision)),
            owned_by(MUNICIPALITY),
            None,
        )
        .allow(&["system-link"]),
        row(
            "municipal system pushes a decision for another municipality's participant",
            municipal_system(),
            linked(write(PUSH_DECISION, D::Decision)),
            owned_by("1284"),
            None,
        )
        .deny(&[]),
        row(
            "municipal system calls something its link does not allow",
            municipal_system(),
            read(GET_PLAN, D::Plan),
            owned_by(MUNICIPALITY),
            None,
        )
        .deny(&["system-outside-link"]),
        row(
            "journal system reads consents its link allows, its region on the care team",
            journal_system(),
            linked(read(LIST_CONSENTS, D::Consent)),
            joint(),
            None,
        )
        .allow(&["system-care-read"]),
        row(
            "journal system reads region-owned data of a participant the region cares for",
            journal_system(),
            linked(read(GET_ENTRY, D::Board)),
            owned_by(REGION),
            consent(&[], &[], REGION, REGION, C::Board),
        )
        .allow(&["system-care-read"]),
        row(
            "journal system reads joint data of a participant the region has no assignment for",
            journal_system(),
            linked(read(LIST_CONSENTS, D::Consent)),
            cared_for_by_municipality_only(None),
            None,
        )
        .deny(&[]),
        row(
            "journal system reads municipal decisions without a consent",
            journal_system(),
            linked(read(GET_PLAN, D::Decision)),
            owned_by(MUNICIPALITY),
            consent(&[], &[], REGION, MUNICIPALITY, C::Decision),
        )
        .deny(&[]),
        row(
            "journal system reads municipal decisions a consent to the region covers",
            journal_system(),
            linked(read(GET_PLAN, D::Decision)),
            owned_by(MUNICIPALITY),
            consent(
                &[sharing_to_region(&[C::Decision])],
                &[],
                REGION,
                MUNICIPALITY,
                C::Decision,
            ),
        )
        .allow(&["system-consent-disclosure-read"])
        .disclosure(),
        row(
            "a consent does not open data of a participant the region has no assignment for",
            journal_system(),
            linked(read(GET_PLAN, D::Decision)),
            cared_for_by_municipality_only(Some(MUNICIPALITY)),
            consent(
                &[sharing_to_region(&[C::Decision])],
                &[],
                REGION,
                MUNICIPALITY,
                C::Decision,
            ),
        )
        .deny(&[]),
        row(
            "a consent limited to one member of staff does not cover a system",
            journal_system(),
            linked(read(GET_PLAN, D::Decision)),
            owned_by(MUNICIPALITY),
            consent(
                &[rule::Consent {
                    sharing: Some(rule::Sharing {
                        staff: Some(CASE_MANAGER.into()),
                        ..sharing_scope(&[C::Decision])
                    }),
                    ..sharing_to_region(&[C::Decision])
                }],
                &[],
                REGION,
                MUNICIPALITY,
                C::Decision,
            ),
        )
        .deny(&[]),
        row(
            "a restriction on the region stops a system too",
            journal_system(),
            linked(read(GET_PLAN, D::Decision)),
            owned_by(MUNICIPALITY),
            consent(
                &[sharing_to_region(&[C::Decision])],
                &[rule::Restriction {
                    organisation: REGION.into(),
                    categories: [C::Decision].into_iter().collect(),
                    ..restriction()
                }],
                REGION,
                MUNICIPALITY,
                C::Decision,
            ),
        )
        .deny(&["consent-rule-forbids"]),
        row(
            "journal system opens a list its link allows; rows are decided one by one",
            journal_system(),
            linked(list(read(LIST_PARTICIPANTS, D::Enrolment))),
            unnamed(),
            None,
        )
        .allow(&["system-link"]),
        row(
            "journal system reads the audit trail of a participant it cares for",
            journal_system(),
            linked(read(LIST_AUDIT, D::Audit)),
            joint(),
            None,
        )
        .deny(&[]),
        row(
            "journal system may not write, whatever its role",
            journal_system(),
            write(UPDATE_PLAN, D::Plan),
            owned_by(REGION),
            None,
        )
        .deny(&["system-outside-link"]),
        // Participants.
        row(
            "participant reads their own plan",
            person(PARTICIPANT),
            read(GET_PLAN, D::Plan),
            joint(),
            None,
        )
        .allow(&["participant-read-own"]),
        row(
            "participant reads their own access log",
            person(PARTICIPANT),
            read(LIST_AUDIT, D::Audit),
            joint(),
            None,
        )
        .allow(&["participant-read-own"]),
        row(
            "participant revokes their own consent",
            person(PARTICIPANT),
            write(REVOKE_CONSENT, D::Consent),
            joint(),
            None,
        )
        .allow(&["participant-revoke-own-consent"]),
        row(
            "participant may not record consents",
            person(PARTICIPANT),
            write(RECORD_CONSENT, D::Consent),
            joint(),
            None,
        )
        .deny(&[]),
        row(
            "participant reads someone else's plan",
            person(OTHER_PARTICIPANT),
            read(GET_PLAN, D::Plan),
            joint(),
            None,
        )
        .deny(&[]),
        row(
            "participant revokes someone else's consent",
            person(OTHER_PARTICIPANT),
            write(REVOKE_CONSENT, D::Consent),
            joint(),
            None,
        )
        .deny(&[]),
        row(
            "participant does not read the board",
            person(PARTICIPANT),
            read(GET_ENTRY, D::Board),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        // Auditors, strangers, lists, internal calls.
        row(
            "auditor reads the audit trail of their organisation",
            staff("SE2321000016-rev1", REGION, &["auditor"]),
            read(LIST_AUDIT, D::Audit),
            owned_by(REGION),
            None,
        )
        .allow(&["auditor-read"]),
        row(
            "auditor of another organisation",
            staff("SE1283-rev2", MUNICIPALITY, &["auditor"]),
            read(LIST_AUDIT, D::Audit),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        row(
            "care team does not read the audit trail",
            case_manager(),
            read(LIST_AUDIT, D::Audit),
            owned_by(REGION),
            None,
        )
        .deny(&[]),
        row(
            "a stranger",
            staff("SE0180-x1", OTHER_MUNICIPALITY, &[]),
            read(GET_PLAN, D::Plan),
            owned_by(REGION),
            consent(&[plan_consent()], &[], OTHER_MUNICIPALITY, REGION, C::Plan),
        )
        .deny(&[]),
        row(
            "staff open a board list, rows decided one by one",
            coordinator(),
            list(read(GET_BOARD, D::Board)),
            unnamed(),
            None,
        )
        .allow(&["staff-open-list"]),
        row(
            "the region's care team records a disclosure from the region",
            case_manager(),
            disclosing(write(RECORD_CONSENT, D::Consent), REGION, MUNICIPALITY),
            joint(),
            None,
        )
        .allow(&["care-team-write"]),
        row(
            "the receiving municipality records a disclosure to itself",
            coordinator(),
            disclosing(write(RECORD_CONSENT, D::Consent), REGION, MUNICIPALITY),
            joint(),
            None,
        )
        .deny(&["consent-by-discloser"]),
        row(
            "the municipality lifts a restriction against itself",
            coordinator(),
            unrestricting(
                write(LIFT_RESTRICTION, D::Consent),
                MUNICIPALITY,
                Some(REGION),
            ),
            joint(),
            None,
        )
        .deny(&["restriction-by-owner"]),
        row(
            "the protected owner lifts a restriction against the municipality",
            case_manager(),
            unrestricting(
                write(LIFT_RESTRICTION, D::Consent),
                MUNICIPALITY,
                Some(REGION),
            ),
            joint(),
            None,
        )
        .allow(&["care-team-write"]),
        row(
            "the participant revokes a restriction placed against the municipality",
            person(PARTICIPANT),
            unrestricting(write(REVOKE_RESTRICTION, D::Consent), MUNICIPALITY, None),
            joint(),
            None,
        )
        .allow(&["participant-revoke-own-restriction"]),
        row(
            "programme staff refer a person",
            coordinator(),
            write(
                "/samsyn.participants.v1.ParticipantsService/CreateReferral",
                D::Enrolment,
            ),
            unnamed(),
            None,
        )
        .allow(&["staff-create"]),
        row(
            "staff of an organisation outside the programme refer nobody",
            staff("SE0180-sos-1", "0180", &["case_manager"]),
            outsider(write(
                "/samsyn.participants.v1.ParticipantsService/CreateReferral",
                D::Enrolment,
            )),
            unnamed(),
            None,
        )
        .deny(&[]),
        row(
            "internal-only rpc from staff",
            case_manager(),
            internal(read(WATCH_PLANS, D::ChangeFeed)),
            unnamed(),
            None,
        )
        .deny(&["internal-only"]),
        row(
            "internal-only rpc from a system whose link names it",
            journal_system(),
            linked(internal(read(WATCH_PLANS, D::ChangeFeed))),
            unnamed(),
            None,
        )
        .deny(&["internal-only"]),
        row(
            "home municipality's coordinator reviews a referral",
            coordinator(),
            write(RECORD_REVIEW, D::Enrolment),
            referred_joint(),
            None,
        )
        .allow(&["referral-review"]),
        row(
            "another municipality's coordinator does not",
            staff("SE0180-c1", OTHER_MUNICIPALITY, &["coordinator"]),
            write(RECORD_REVIEW, D::Enrolment),
            referred_joint(),
            None,
        )
        .deny(&[]),
        // Found by the policy proofs (policy-proofs/): each was permitted before.
        row(
            "the home municipality's coordinator does not review the region's data",
            coordinator(),
            write(RECORD_REVIEW, D::Enrolment),
            Data {
                owner: Some(REGION),
                participant: Some(referred()),
            },
            None,
        )
        .deny(&[]),
        row(
            "physician outside the programme's organisations with an emergency reason",
            staff("SE0180-lak1", OTHER_MUNICIPALITY, &["physician"]),
            outsider(read(GET_PLAN, D::Plan)),
            owned_by(MUNICIPALITY),
            consent(&[], &[], OTHER_MUNICIPALITY, MUNICIPALITY, C::Plan),
        )
        .with_emergency(emergency(0))
        .deny(&[]),
        row(
            "journal system does not list the audit trail, whatever its link names",
            journal_system(),
            linked(list(read(LIST_AUDIT, D::Audit))),
            unnamed(),
            None,
        )
        .deny(&[]),
    ]
}

#[test]
fn the_access_table_holds() {
    let engine = engine();
    let mut failures = Vec::new();
    for row in table() {
        let input = DecisionInput {
            principal: &row.principal,
            call: &row.call,
            resource: row.resource.resource(),
            consent: row.consent.as_ref(),
            emergency: row.emergency,
            at: now(),
        };
        let expected = Decision {
            allowed: row.allowed,
            policies: row.policies.iter().map(|p| (*p).to_owned()).collect(),
            disclosure: row.disclosure,
            emergency: row.emergency_flag,
        };
        // The schema-checked path proves the gateway's entities conform to the schema; the
        // fast path must agree with it.
        let checked = engine.decide_checked(&input);
        let fast = engine.decide(&input);
        if checked.as_ref() != Ok(&expected) || fast != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  checked  {checked:?}\n  fast     {fast:?}",
                row.case
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shipped_policy_file_validates_against_the_schema() {
    let dir = policy_dir();
    let schema = std::fs::read_to_string(dir.join(SCHEMA_FILE)).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cedar") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = PolicyEngine::from_sources(&schema, &[(name.clone(), text)]) {
                panic!("{name}: {e}");
            }
            files += 1;
        }
    }
    assert!(files >= 2, "policy files found: {files}");
    let engine = engine();
    let mut ids: Vec<&str> = engine.policy_ids().collect();
    ids.sort_unstable();
    for id in [
        "care-team-read",
        "care-team-write",
        "consent-disclosure-read",
        "emergency-read",
        "internal-only",
        "staff-without-purpose",
        "system-outside-link",
        "participant-revoke-own-consent",
    ] {
        assert!(ids.binary_search(&id).is_ok(), "missing policy {id}");
    }
}

fn schema_text() -> String {
    std::fs::read_to_string(policy_dir().join(SCHEMA_FILE)).unwrap()
}

fn load_one(policy: &str) -> Result<PolicyEngine, PolicyError> {
    PolicyEngine::from_sources(&schema_text(), &[("extra.cedar".into(), policy.into())])
}

#[test]
fn a_policy_naming_an_unknown_attribute_fails_validation() {
    let error = load_one(
        r#"@id("by-shoe-size")
        permit (principal is Samsyn::Staff, action, resource)
        when { principal.shoe_size == 42 };"#,
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PolicyError::Invalid(_)), "{message}");
    assert!(message.contains("by-shoe-size"), "{message}");
    assert!(message.contains("shoe_size"), "{message}");
}

#[test]
fn policies_without_an_id_with_a_reused_id_or_an_unknown_flag_are_refused() {
    let unnamed = load_one("permit (principal, action, resource);").unwrap_err();
    assert!(unnamed.to_string().contains("extra.cedar"), "{unnamed}");
    assert!(unnamed.to_string().contains("@id"), "{unnamed}");

    let twice = load_one(
        r#"@id("a") permit (principal, action, resource);
        @id("a") forbid (principal, action, resource);"#,
    )
    .unwrap_err();
    assert!(twice.to_string().contains("used twice"), "{twice}");

    let flagged =
        load_one(r#"@id("a") @flag("vip") permit (principal, action, resource);"#).unwrap_err();
    assert!(flagged.to_string().contains("vip"), "{flagged}");

    let broken = load_one("permit (principal, action, resource").unwrap_err();
    assert!(matches!(broken, PolicyError::Parse { .. }), "{broken}");
}

#[test]
fn loading_a_directory_without_a_schema_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.cedar"),
        r#"@id("a") permit (principal, action, resource);"#,
    )
    .unwrap();
    let error = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(error.to_string().contains(SCHEMA_FILE), "{error}");

    std::fs::write(dir.path().join(SCHEMA_FILE), schema_text()).unwrap();
    PolicyEngine::load(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("a.cedar")).unwrap();
    let error = PolicyEngine::load(dir.path()).unwrap_err();
    assert!(matches!(error, PolicyError::NoPolicies(_)), "{error}");
}

fn input<'a>(
    principal: &'a Principal,
    call: &'a Call,
    resource: Resource<'a>,
    consent: Option<&'a rule::Decision>,
    emergency: Emergency,
) -> DecisionInput<'a> {
    DecisionInput {
        principal,
        call,
        resource,
        consent,
        emergency,
        at: now(),
    }
}

#[test]
fn the_fast_path_decides_as_the_checked_path_over_a_grid_of_requests() {
    let engine = engine();
    let principals = [
        staff(CASE_MANAGER, REGION, &["case_manager"]),
        without_purpose(staff(HOUSING_WORKER, REGION, &["housing_support_worker"])),
        in_team(
            staff(MUNI_COORDINATOR, MUNICIPALITY, &["coordinator"]),
            FACT_TEAM,
        ),
        staff("SE2321000016-akut", REGION, &["physician", "auditor"]),
        system("kommun-1283-system", MUNICIPALITY, "municipal_case_system"),
        person(PARTICIPANT),
    ];
    let resources = [
        owned_by(REGION),
        owned_by(MUNICIPALITY),
        joint(),
        unnamed(),
        referred_joint(),
    ];
    let permit = consent(
        &[sharing(&[rule::Category::Plan], None)],
        &[],
        MUNICIPALITY,
        REGION,
        rule::Category::Plan,
    );
    let refused = consent(&[], &[], MUNICIPALITY, REGION, rule::Category::Plan);
    let restricted = consent(
        &[sharing(&[rule::Category::Plan], None)],
        &[restriction()],
        MUNICIPALITY,
        REGION,
        rule::Category::Plan,
    );
    let consents = [None, permit, refused, restricted];
    let emergencies = [Emergency::default(), emergency(1), emergency(5)];
    let shapes: [fn(Call) -> Call; 4] = [|c| c, internal, list, linked];
    let mut calls = Vec::new();
    for action in [Action::Read, Action::Write] {
        for category in CATEGORIES {
            let rpc = if category == DataCategory::Consent {
                REVOKE_CONSENT
            } else {
                GET_PLAN
            };
            for shape in shapes {
                calls.push(shape(call(rpc, action, category)));
            }
        }
    }
    let (mut decided, mut allowed, mut failures) = (0, 0, Vec::new());
    for principal in &principals {
        for call in &calls {
            for data in &resources {
                for consent in &consents {
                    for emergency in emergencies {
                        let input = input(
                            principal,
                            call,
                            data.resource(),
                            consent.as_ref(),
                            emergency,
                        );
                        let checked = engine.decide_checked(&input);
                        let fast = engine.decide(&input);
                        decided += 1;
                        allowed += usize::from(fast.allowed);
                        if checked.as_ref() != Ok(&fast) {
                            failures.push(format!("{input:?}:\n  {checked:?}\n  {fast:?}"));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The grid reaches both answers, so agreement says something.
    assert!(allowed > 0 && allowed < decided, "{allowed} of {decided}");
}

#[test]
fn kept_entities_follow_facts_that_change_without_a_new_revision() {
    let engine = engine();
    let member = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let get_plan = read(GET_PLAN, DataCategory::Plan);
    let decide = |facts: &ParticipantFacts, principal: &Principal| {
        let resource = Resource {
            owner_organisation: Some(REGION),
            participant: Some(facts),
        };
        let input = input(principal, &get_plan, resource, None, Emergency::default());
        let fast = engine.decide(&input);
        assert_eq!(engine.decide_checked(&input), Ok(fast.clone()));
        fast.allowed
    };
    let facts = participant(PARTICIPANT);
    assert!(decide(&facts, &member));

    // Off the care team, same participant and revision: the kept store must not answer.
    let mut removed = participant(PARTICIPANT);
    removed.care_team.retain(|m| m.staff_id != CASE_MANAGER);
    assert_eq!(removed.revision, facts.revision);
    assert!(!decide(&removed, &member));

    // Back on it: allowed again.
    assert!(decide(&facts, &member));

    // The same member of staff acting for another organisation is not on the team.
    let moved = staff(CASE_MANAGER, MUNICIPALITY, &["case_manager"]);
    assert!(!decide(&facts, &moved));

    // A token without a purpose is refused, whatever was kept for the one with it.
    assert!(!decide(&facts, &without_purpose(member.clone())));
    assert!(decide(&facts, &member));
}

#[test]
fn a_care_team_read_evaluates_only_the_policies_that_can_apply() {
    let engine = engine();
    let member = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let get_plan = read(GET_PLAN, DataCategory::Plan);
    let data = owned_by(REGION);
    let input = input(
        &member,
        &get_plan,
        data.resource(),
        None,
        Emergency::default(),
    );
    let slot = engine.slots[Features::of(&input).index()];
    let mut ids: Vec<&str> = engine.scoped[usize::from(slot)]
        .policies()
        .map(|p| p.id().as_ref())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["care-team-read"]);
    assert_eq!(engine.decide(&input).policies, ["care-team-read"]);
}
