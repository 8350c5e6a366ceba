//! The rule as a table: each row is facts, a request, and the decision with its reason and ids.
#![allow(clippy::unwrap_used)]

use super::*;

const REGION: &str = "SE2321000016-F00D";
const MUNICIPALITY: &str = "1283";
const HOUSING_UNIT: &str = "1283-boendestod";
const OTHER_UNIT: &str = "1283-socialtjanst";
const STAFF: &str = "SE1283-staff-0007";

fn t(days: i64) -> DateTime<Utc> {
    // 2026-06-01T10:00:00Z, the moment every request is made at unless a row says otherwise.
    DateTime::from_timestamp(1_780_308_000, 0).unwrap() + Duration::days(days)
}

/// An open-ended consent, from 30 days ago, sharing the region's plan with the municipality.
fn sharing(id: &str) -> Consent {
    Consent {
        id: id.into(),
        kind: ConsentKind::InformationSharing,
        sharing: Some(Sharing {
            from_organisation: REGION.into(),
            to_organisation: MUNICIPALITY.into(),
            categories: [Category::Plan, Category::CareTeam].into_iter().collect(),
            unit: None,
            staff: None,
        }),
        valid_from: t(-30),
        valid_until: None,
        revoked_at: None,
        voided: false,
    }
}

fn with(mut consent: Consent, change: impl FnOnce(&mut Consent)) -> Consent {
    change(&mut consent);
    consent
}

fn scope(consent: &mut Consent) -> &mut Sharing {
    consent.sharing.as_mut().unwrap()
}

fn research(id: &str) -> Consent {
    Consent {
        id: id.into(),
        kind: ConsentKind::ResearchStudy,
        sharing: None,
        valid_from: t(-30),
        valid_until: None,
        revoked_at: None,
        voided: false,
    }
}

/// An open-ended restriction, from 10 days ago, blocking the municipality from the plan.
fn restriction(id: &str) -> Restriction {
    Restriction {
        id: id.into(),
        organisation: MUNICIPALITY.into(),
        unit: None,
        owner_organisation: None,
        categories: [Category::Plan].into_iter().collect(),
        valid_from: t(-10),
        valid_until: None,
        revoked_at: None,
        lifts: Vec::new(),
    }
}

fn restricted(mut r: Restriction, change: impl FnOnce(&mut Restriction)) -> Restriction {
    change(&mut r);
    r
}

/// A lift for the plan, from yesterday for three days, for anyone in the restricted org.
fn lift(id: &str) -> Lift {
    Lift {
        id: id.into(),
        reason: LiftReason::Consent,
        unit: None,
        staff: None,
        categories: [Category::Plan].into_iter().collect(),
        starts_at: t(-1),
        ends_at: t(2),
    }
}

/// The municipality's housing-support worker asks for the region's plan, for care.
fn request() -> Request {
    Request {
        reader_organisation: MUNICIPALITY.into(),
        reader_unit: Some(HOUSING_UNIT.into()),
        reader_staff: Some(STAFF.into()),
        owner_organisation: REGION.into(),
        category: Category::Plan,
        purpose: Purpose::Care,
        at: t(0),
        emergency: false,
    }
}

fn asking(change: impl FnOnce(&mut Request)) -> Request {
    let mut r = request();
    change(&mut r);
    r
}

struct Row {
    name: &'static str,
    consents: Vec<Consent>,
    restrictions: Vec<Restriction>,
    request: Request,
    effect: Effect,
    reason: Reason,
    consent_ids: &'static [&'static str],
    restriction: Option<&'static str>,
    lift: Option<&'static str>,
}

fn row(
    name: &'static str,
    consents: Vec<Consent>,
    restrictions: Vec<Restriction>,
    request: Request,
    expected: (Effect, Reason, &'static [&'static str]),
) -> Row {
    Row {
        name,
        consents,
        restrictions,
        request,
        effect: expected.0,
        reason: expected.1,
        consent_ids: expected.2,
        restriction: None,
        lift: None,
    }
}

impl Row {
    fn by(mut self, restriction: &'static str, lift: Option<&'static str>) -> Self {
        self.restriction = Some(restriction);
        self.lift = lift;
        self
    }
}

use Effect::{Deny, Permit};

fn table() -> Vec<Row> {
    vec![
        // The basis across organisations.
        row(
            "no consent",
            vec![],
            vec![],
            request(),
            (Deny, Reason::NoConsent, &[]),
        ),
        row(
            "only a participation consent",
            vec![Consent {
                kind: ConsentKind::Participation,
                sharing: None,
                ..sharing("p1")
            }],
            vec![],
            request(),
            (Deny, Reason::NoConsent, &[]),
        ),
        row(
            "a covering consent",
            vec![sharing("c1")],
            vec![],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "two covering consents are both named",
            vec![sharing("c1"), sharing("c2")],
            vec![],
            request(),
            (Permit, Reason::Consent, &["c1", "c2"]),
        ),
        row(
            "consent for another category",
            vec![with(sharing("c1"), |c| {
                scope(c).categories = [Category::Board].into_iter().collect();
            })],
            vec![],
            request(),
            (Deny, Reason::CategoryNotCovered, &["c1"]),
        ),
        row(
            "expired",
            vec![with(sharing("c1"), |c| c.valid_until = Some(t(-1)))],
            vec![],
            request(),
            (Deny, Reason::ConsentExpired, &["c1"]),
        ),
        row(
            "expired at the very moment asked",
            vec![with(sharing("c1"), |c| c.valid_until = Some(t(0)))],
            vec![],
            request(),
            (Deny, Reason::ConsentExpired, &["c1"]),
        ),
        row(
            "a later consent covers when an earlier one expired",
            vec![
                with(sharing("old"), |c| c.valid_until = Some(t(-1))),
                with(sharing("new"), |c| c.valid_from = t(-1)),
            ],
            vec![],
            request(),
            (Permit, Reason::Consent, &["new"]),
        ),
        row(
            "not yet valid",
            vec![with(sharing("c1"), |c| c.valid_from = t(1))],
            vec![],
            request(),
            (Deny, Reason::ConsentNotYetValid, &["c1"]),
        ),
        row(
            "valid from the very moment asked",
            vec![with(sharing("c1"), |c| c.valid_from = t(0))],
            vec![],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "revoked",
            vec![with(sharing("c1"), |c| c.revoked_at = Some(t(-1)))],
            vec![],
            request(),
            (Deny, Reason::ConsentRevoked, &["c1"]),
        ),
        row(
            "revoked by a clock ahead of the asker's still counts as revoked",
            vec![with(sharing("c1"), |c| c.revoked_at = Some(t(1)))],
            vec![],
            request(),
            (Deny, Reason::ConsentRevoked, &["c1"]),
        ),
        row(
            "voided",
            vec![with(sharing("c1"), |c| c.voided = true)],
            vec![],
            request(),
            (Deny, Reason::ConsentVoided, &["c1"]),
        ),
        row(
            "wrong direction",
            vec![with(sharing("c1"), |c| {
                let s = scope(c);
                std::mem::swap(&mut s.from_organisation, &mut s.to_organisation);
            })],
            vec![],
            request(),
            (Deny, Reason::WrongDirection, &["c1"]),
        ),
        row(
            "a consent between other organisations is unrelated",
            vec![with(sharing("c1"), |c| {
                scope(c).to_organisation = "SE2321000016-PRIM".into();
            })],
            vec![],
            request(),
            (Deny, Reason::NoConsent, &[]),
        ),
        row(
            "unit-limited to another unit",
            vec![with(sharing("c1"), |c| {
                scope(c).unit = Some(OTHER_UNIT.into());
            })],
            vec![],
            request(),
            (Deny, Reason::OutsideConsentLimit, &["c1"]),
        ),
        row(
            "unit-limited to the reader's unit",
            vec![with(sharing("c1"), |c| {
                scope(c).unit = Some(HOUSING_UNIT.into());
            })],
            vec![],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "unit-limited and the reader's unit unknown",
            vec![with(sharing("c1"), |c| {
                scope(c).unit = Some(HOUSING_UNIT.into());
            })],
            vec![],
            asking(|r| r.reader_unit = None),
            (Deny, Reason::OutsideConsentLimit, &["c1"]),
        ),
        row(
            "staff-limited to someone else",
            vec![with(sharing("c1"), |c| {
                scope(c).staff = Some("SE1283-staff-0999".into());
            })],
            vec![],
            request(),
            (Deny, Reason::OutsideConsentLimit, &["c1"]),
        ),
        row(
            "the closest miss is named: expired beats another category",
            vec![
                with(sharing("board"), |c| {
                    scope(c).categories = [Category::Board].into_iter().collect();
                }),
                with(sharing("expired"), |c| c.valid_until = Some(t(-1))),
            ],
            vec![],
            request(),
            (Deny, Reason::ConsentExpired, &["expired"]),
        ),
        // Same organisation.
        row(
            "same organisation needs no consent",
            vec![],
            vec![],
            asking(|r| r.owner_organisation = MUNICIPALITY.into()),
            (Permit, Reason::SameOrganisation, &[]),
        ),
        row(
            "an organisation-wide restriction never blocks the owner itself",
            vec![],
            vec![restriction("r1")],
            asking(|r| r.owner_organisation = MUNICIPALITY.into()),
            (Permit, Reason::SameOrganisation, &[]),
        ),
        row(
            "a unit restriction applies inside its own organisation",
            vec![],
            vec![restricted(restriction("r1"), |r| {
                r.unit = Some(HOUSING_UNIT.into());
            })],
            asking(|r| r.owner_organisation = MUNICIPALITY.into()),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        // Restrictions.
        row(
            "restriction over consent",
            vec![sharing("c1")],
            vec![restriction("r1")],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "restriction on another category",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.categories = [Category::CareTeam].into_iter().collect();
            })],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "restriction on another unit of the reader's organisation",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.unit = Some(OTHER_UNIT.into());
            })],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "unit restriction and the reader's unit unknown",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.unit = Some(OTHER_UNIT.into());
            })],
            asking(|r| r.reader_unit = None),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "restriction on another owner's information",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.owner_organisation = Some("SE2321000016-PRIM".into());
            })],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "revoked restriction",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.revoked_at = Some(t(-1))
            })],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "restriction that ended",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.valid_until = Some(t(-1))
            })],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "restriction that has not started",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| r.valid_from = t(1))],
            request(),
            (Permit, Reason::Consent, &["c1"]),
        ),
        row(
            "restriction without consent names the restriction",
            vec![],
            vec![restriction("r1")],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        // Temporary lifts.
        row(
            "temporarily lifted restriction",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| r.lifts.push(lift("l1")))],
            request(),
            (Permit, Reason::RestrictionLifted, &["c1"]),
        )
        .by("r1", Some("l1")),
        row(
            "a lift is no consent",
            vec![],
            vec![restricted(restriction("r1"), |r| r.lifts.push(lift("l1")))],
            request(),
            (Deny, Reason::NoConsent, &[]),
        ),
        row(
            "lift expired after 7 days",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.lifts.push(Lift {
                    starts_at: t(-8),
                    ends_at: t(5),
                    ..lift("l1")
                });
            })],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "lift that ended",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.lifts.push(Lift {
                    starts_at: t(-3),
                    ends_at: t(-1),
                    ..lift("l1")
                });
            })],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "lift for another staff member",
            vec![sharing("c1")],
            vec![restricted(restriction("r1"), |r| {
                r.lifts.push(Lift {
                    staff: Some("SE1283-staff-0999".into()),
                    ..lift("l1")
                });
            })],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "one lifted, another restriction still blocks",
            vec![sharing("c1")],
            vec![
                restricted(restriction("r1"), |r| r.lifts.push(lift("l1"))),
                restriction("r2"),
            ],
            request(),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r2", None),
        // Emergency.
        row(
            "emergency without consent",
            vec![],
            vec![],
            asking(|r| r.emergency = true),
            (Permit, Reason::Emergency, &[]),
        ),
        row(
            "emergency does not pass a restriction",
            vec![],
            vec![restriction("r1")],
            asking(|r| r.emergency = true),
            (Deny, Reason::Restricted, &[]),
        )
        .by("r1", None),
        row(
            "emergency with an emergency lift",
            vec![],
            vec![restricted(restriction("r1"), |r| {
                r.lifts.push(Lift {
                    reason: LiftReason::Emergency,
                    ..lift("l1")
                });
            })],
            asking(|r| r.emergency = true),
            (Permit, Reason::RestrictionLifted, &[]),
        )
        .by("r1", Some("l1")),
        // Research.
        row(
            "research without a research consent",
            vec![sharing("c1")],
            vec![],
            asking(|r| r.purpose = Purpose::Research),
            (Deny, Reason::NoResearchConsent, &[]),
        ),
        row(
            "research with both consents",
            vec![sharing("c1"), research("s1")],
            vec![],
            asking(|r| r.purpose = Purpose::Research),
            (Permit, Reason::Consent, &["c1", "s1"]),
        ),
        row(
            "research consent revoked",
            vec![
                sharing("c1"),
                with(research("s1"), |c| c.revoked_at = Some(t(-1))),
            ],
            vec![],
            asking(|r| r.purpose = Purpose::Research),
            (Deny, Reason::NoResearchConsent, &[]),
        ),
        row(
            "emergency never stands in for research",
            vec![research("s1")],
            vec![],
            asking(|r| {
                r.purpose = Purpose::Research;
                r.emergency = true;
            }),
            (Deny, Reason::NoConsent, &[]),
        ),
    ]
}

#[test]
fn every_row_of_the_table() {
    let mut failures = Vec::new();
    for row in table() {
        let decision = decide(&row.consents, &row.restrictions, &row.request);
        let expected = Decision {
            effect: row.effect,
            reason: row.reason,
            consents: row.consent_ids.iter().map(|s| s.to_string()).collect(),
            restriction: row.restriction.map(str::to_owned),
            lift: row.lift.map(str::to_owned),
        };
        if decision != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {decision:?}",
                row.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn category_codes_round_trip() {
    for category in Category::ALL {
        assert_eq!(Category::from_code(category.code()), Some(category));
    }
    assert_eq!(Category::from_code("admin"), None);
    let set: Categories = [Category::Board, Category::Plan].into_iter().collect();
    assert_eq!(
        set.iter().collect::<Vec<_>>(),
        [Category::Plan, Category::Board]
    );
    assert!(set.contains_all([Category::Plan].into_iter().collect()));
    assert!(!set.contains_all([Category::Audit].into_iter().collect()));
}

#[test]
fn a_lift_at_the_far_end_of_time_does_not_panic() {
    let far = DateTime::<Utc>::MAX_UTC - Duration::days(1);
    let mut lifted = restriction("r1");
    lifted.valid_from = t(-10);
    lifted.lifts.push(Lift {
        starts_at: far,
        ends_at: DateTime::<Utc>::MAX_UTC,
        ..lift("l1")
    });
    let decision = decide(&[], &[lifted], &asking(|r| r.at = far));
    assert_eq!(decision.reason, Reason::NoConsent);
}
