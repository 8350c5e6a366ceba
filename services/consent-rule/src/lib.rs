//! The consent decision rule: whether information may cross from one organisation to another
//! for a participant, given their consents and restrictions. Pure, with no I/O, so that the
//! consent service and the gateway decide identically.
//!
//! The rule, in the order it is applied:
//! 1. **Restrictions first.** An active restriction that matches the reader and the category
//!    denies, whatever consents exist, unless a temporary lift covers the call. An
//!    organisation-wide restriction never stops an organisation from reading what it owns
//!    itself (the law keeps its own records open to it); a restriction on one *unit* does
//!    apply inside its own organisation, like Inera's inner block (*inre spärr*). When the
//!    reader's unit is unknown, a unit restriction applies (fail closed).
//! 2. **Research** needs an active research-study consent besides everything else.
//! 3. **The basis.** Same organisation: permitted without consent. Another organisation: an
//!    active information-sharing consent from the owner to the reader that covers the
//!    category and the reader's unit and staff member; failing that, an emergency permits.
//!    A participation consent decides nothing about sharing.
//!
//! A denial names why, and the consents that came closest to covering the call: a consent
//! the wrong way round comes less close than one for another category, then one limited to
//! another unit or staff member, then a voided, revoked, not yet valid or expired one.
//!
//! Time is compared, never waited for: a consent counts while `valid_from <= at < valid_until`,
//! so expiry needs no job. A revoked or voided consent counts for no decision at all, whatever
//! moment is asked about, so that a gateway whose clock lags the service's can never lean on
//! a withdrawn consent. A restriction stops counting at its revocation time (a lagging clock
//! then keeps it a little longer: that errs on the side of denial). A lift counts for at most
//! [`MAX_LIFT`] from its start, whatever end it names.

use chrono::{DateTime, Duration, Utc};

/// The longest a temporary lift of a restriction may last.
pub const MAX_LIFT: Duration = Duration::days(7);

/// The kind of data a decision is about; the unit of consent and of restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Identity, home municipality, referral, review, enrolment, discharge.
    Enrolment,
    /// Coordinators, care team and fixed care contact.
    CareTeam,
    /// Consents and restrictions.
    Consent,
    /// The coordinated individual plan (SIP).
    Plan,
    /// Municipal decisions on applications.
    Decision,
    /// The FACT board.
    Board,
    /// The audit trail about the participant.
    Audit,
}

impl Category {
    /// Every category, in code order.
    pub const ALL: [Category; 7] = [
        Category::Enrolment,
        Category::CareTeam,
        Category::Consent,
        Category::Plan,
        Category::Decision,
        Category::Board,
        Category::Audit,
    ];

    /// The stable text code of the category (stored and logged).
    pub fn code(self) -> &'static str {
        match self {
            Category::Enrolment => "enrolment",
            Category::CareTeam => "care_team",
            Category::Consent => "consent",
            Category::Plan => "plan",
            Category::Decision => "decision",
            Category::Board => "board",
            Category::Audit => "audit",
        }
    }

    /// The category of a text code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Categories(u16);

impl Categories {
    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether the set holds no category.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `category` is in the set.
    pub fn contains(self, category: Category) -> bool {
        self.0 & category.bit() != 0
    }

    /// Whether every category of `other` is in this set.
    pub fn contains_all(self, other: Categories) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds `category`.
    pub fn insert(&mut self, category: Category) {
        self.0 |= category.bit();
    }

    /// The categories in code order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Category> for Categories {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        let mut set = Self::empty();
        for category in iter {
            set.insert(category);
        }
        set
    }
}

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentKind {
    /// To take part in the programme; decides nothing about sharing.
    Participation,
    /// To let information cross from one organisation to another.
    InformationSharing,
    /// To take part in a research study; needed for the research purpose.
    ResearchStudy,
}

/// The direction and scope of an information-sharing consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    /// The organisation whose information may be shared (the owner).
    pub from_organisation: String,
    /// The organisation that may read it.
    pub to_organisation: String,
    /// The categories that may be shared.
    pub categories: Categories,
    /// Only this unit of the reading organisation, when set.
    pub unit: Option<String>,
    /// Only this staff member of the reading organisation, when set.
    pub staff: Option<String>,
}

/// A consent as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The consent's id, named in decisions.
    pub id: String,
    /// What it is for.
    pub kind: ConsentKind,
    /// Direction and scope; set for information sharing only.
    pub sharing: Option<Sharing>,
    /// When it starts to count.
    pub valid_from: DateTime<Utc>,
    /// When it stops counting; `None` is open-ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// When the participant withdrew it. Once withdrawn it no longer counts for any
    /// decision, even one about an earlier moment (fail closed when clocks disagree).
    pub revoked_at: Option<DateTime<Utc>>,
    /// Recorded by mistake: it never counted.
    pub voided: bool,
}

/// Why a restriction was lifted temporarily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiftReason {
    /// The participant agreed to the lift.
    Consent,
    /// An emergency: the participant could not be asked.
    Emergency,
}

/// A temporary lift of a restriction for some readers and categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lift {
    /// The lift's id, named in decisions.
    pub id: String,
    /// Why it was lifted.
    pub reason: LiftReason,
    /// Only for this unit of the restricted organisation, when set.
    pub unit: Option<String>,
    /// Only for this staff member, when set.
    pub staff: Option<String>,
    /// The categories lifted (a subset of the restriction's).
    pub categories: Categories,
    /// When the lift starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends; never counted beyond `starts_at + MAX_LIFT`.
    pub ends_at: DateTime<Utc>,
}

/// A restriction (*spärr*): the participant blocks an organisation or unit from categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// The restriction's id, named in decisions.
    pub id: String,
    /// The organisation that is blocked.
    pub organisation: String,
    /// Only this unit of it, when set.
    pub unit: Option<String>,
    /// Only information owned by this organisation, when set; any owner otherwise.
    pub owner_organisation: Option<String>,
    /// The categories blocked.
    pub categories: Categories,
    /// When it starts.
    pub valid_from: DateTime<Utc>,
    /// When it ends; `None` is open-ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// When the participant revoked it; it counts until then.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Temporary lifts, in any order.
    pub lifts: Vec<Lift>,
}

/// Why information is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Care, treatment and coordination of the participant's care.
    Care,
    /// A research study; needs a research-study consent as well.
    Research,
}

/// The question: may this reader see this category of the owner's information, now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The reader's organisation.
    pub reader_organisation: String,
    /// The reader's unit, when known.
    pub reader_unit: Option<String>,
    /// The reader (a staff id), when known.
    pub reader_staff: Option<String>,
    /// The organisation that owns the information.
    pub owner_organisation: String,
    /// The category of the information.
    pub category: Category,
    /// Why it is wanted.
    pub purpose: Purpose,
    /// The moment to decide for.
    pub at: DateTime<Utc>,
    /// The reader declares an emergency (*nödåtkomst*).
    pub emergency: bool,
}

/// Permit or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The information may be read.
    Permit,
    /// It may not.
    Deny,
}

/// Why the decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Permit: the reader's own organisation owns the information.
    SameOrganisation,
    /// Permit: active consents cover the call (named in `consents`).
    Consent,
    /// Permit: no consent, but the reader declared an emergency.
    Emergency,
    /// Permit: a restriction matched but a temporary lift covers the call.
    RestrictionLifted,
    /// Deny: no information-sharing consent between the two organisations at all.
    NoConsent,
    /// Deny: consents exist only from the reader to the owner, not the other way.
    WrongDirection,
    /// Deny: consents between the organisations do not cover this category.
    CategoryNotCovered,
    /// Deny: the consent is limited to another unit or staff member.
    OutsideConsentLimit,
    /// Deny: the covering consent was voided.
    ConsentVoided,
    /// Deny: the covering consent was revoked by then.
    ConsentRevoked,
    /// Deny: the covering consent does not count yet.
    ConsentNotYetValid,
    /// Deny: the covering consent has expired.
    ConsentExpired,
    /// Deny: an active restriction blocks the call.
    Restricted,
    /// Deny: research purpose without an active research-study consent.
    NoResearchConsent,
}

impl Reason {
    /// The stable text code of the reason.
    pub fn code(self) -> &'static str {
        match self {
            Reason::SameOrganisation => "same_organisation",
            Reason::Consent => "consent",
            Reason::Emergency => "emergency",
            Reason::RestrictionLifted => "restriction_lifted",
            Reason::NoConsent => "no_consent",
            Reason::WrongDirection => "wrong_direction",
            Reason::CategoryNotCovered => "category_not_covered",
            Reason::OutsideConsentLimit => "outside_consent_limit",
            Reason::ConsentVoided => "consent_voided",
            Reason::ConsentRevoked => "consent_revoked",
            Reason::ConsentNotYetValid => "consent_not_yet_valid",
            Reason::ConsentExpired => "consent_expired",
            Reason::Restricted => "restricted",
            Reason::NoResearchConsent => "no_research_consent",
        }
    }
}

/// The answer, with the records that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Permit or deny.
    pub effect: Effect,
    /// Why.
    pub reason: Reason,
    /// The consents that decided: those that cover (permit), or those that came closest
    /// to covering (deny). Empty when none did.
    pub consents: Vec<String>,
    /// The restriction that denied, or that a lift suspended.
    pub restriction: Option<String>,
    /// The lift that suspended `restriction`.
    pub lift: Option<String>,
}

impl Decision {
    fn new(effect: Effect, reason: Reason) -> Self {
        Self {
            effect,
            reason,
            consents: Vec::new(),
            restriction: None,
            lift: None,
        }
    }

    fn naming(mut self, consents: &[&str]) -> Self {
        self.consents = consents.iter().map(|id| (*id).to_owned()).collect();
        self
    }

    /// Whether the information may be read.
    pub fn is_permit(&self) -> bool {
        self.effect == Effect::Permit
    }
}

/// Decides `request` from the participant's `consents` and `restrictions`.
pub fn decide(consents: &[Consent], restrictions: &[Restriction], request: &Request) -> Decision {
    let mut lifted = None;
    for restriction in restrictions.iter().filter(|r| restricts(r, request)) {
        match restriction.lifts.iter().find(|l| lift_covers(l, request)) {
            Some(lift) => {
                lifted.get_or_insert((restriction.id.as_str(), lift.id.as_str()));
            }
            None => {
                let mut decision = Decision::new(Effect::Deny, Reason::Restricted);
                decision.restriction = Some(restriction.id.clone());
                return decision;
            }
        }
    }
    let mut decision = basis(consents, request);
    if decision.is_permit()
        && let Some((restriction, lift)) = lifted
    {
        decision.reason = Reason::RestrictionLifted;
        decision.restriction = Some(restriction.to_owned());
        decision.lift = Some(lift.to_owned());
    }
    decision
}

/// The permit (or the closest miss) without regard to restrictions.
fn basis(consents: &[Consent], request: &Request) -> Decision {
    // Ids are collected as borrowed text and copied once, into the decision that is returned.
    let mut research: Vec<&str> = Vec::new();
    if request.purpose == Purpose::Research {
        research = consents
            .iter()
            .filter(|c| c.kind == ConsentKind::ResearchStudy && status(c, request.at).is_none())
            .map(|c| c.id.as_str())
            .collect();
        if research.is_empty() {
            return Decision::new(Effect::Deny, Reason::NoResearchConsent);
        }
    }
    if request.reader_organisation == request.owner_organisation {
        return Decision::new(Effect::Permit, Reason::SameOrganisation).naming(&research);
    }
    let mut closest = Miss::Unrelated;
    let mut covering: Vec<&str> = Vec::new();
    let mut nearest: Vec<&str> = Vec::new();
    for consent in consents {
        match evaluate(consent, request) {
            Ok(()) => covering.push(&consent.id),
            Err(miss) if miss > closest => {
                closest = miss;
                nearest.clear();
                nearest.push(&consent.id);
            }
            Err(miss) if miss == closest && miss != Miss::Unrelated => nearest.push(&consent.id),
            Err(_) => {}
        }
    }
    if !covering.is_empty() {
        covering.extend(research);
        return Decision::new(Effect::Permit, Reason::Consent).naming(&covering);
    }
    // Emergency access is for care: it never stands in for a research consent.
    if request.emergency && request.purpose == Purpose::Care {
        return Decision::new(Effect::Permit, Reason::Emergency);
    }
    Decision::new(Effect::Deny, closest.reason()).naming(&nearest)
}

/// How close a consent came to covering a request; later variants came closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Miss {
    Unrelated,
    WrongDirection,
    Category,
    Limit,
    Voided,
    Revoked,
    NotYetValid,
    Expired,
}

impl Miss {
    fn reason(self) -> Reason {
        match self {
            Miss::Unrelated => Reason::NoConsent,
            Miss::WrongDirection => Reason::WrongDirection,
            Miss::Category => Reason::CategoryNotCovered,
            Miss::Limit => Reason::OutsideConsentLimit,
            Miss::Voided => Reason::ConsentVoided,
            Miss::Revoked => Reason::ConsentRevoked,
            Miss::NotYetValid => Reason::ConsentNotYetValid,
            Miss::Expired => Reason::ConsentExpired,
        }
    }
}

/// Whether `consent` covers a cross-organisation `request`, or how it misses.
fn evaluate(consent: &Consent, request: &Request) -> Result<(), Miss> {
    let Some(sharing) = consent.sharing.as_ref() else {
        return Err(Miss::Unrelated);
    };
    if consent.kind != ConsentKind::InformationSharing {
        return Err(Miss::Unrelated);
    }
    let forward = sharing.from_organisation == request.owner_organisation
        && sharing.to_organisation == request.reader_organisation;
    if !forward {
        let backward = sharing.from_organisation == request.reader_organisation
            && sharing.to_organisation == request.owner_organisation;
        return Err(if backward {
            Miss::WrongDirection
        } else {
            Miss::Unrelated
        });
    }
    if !sharing.categories.contains(request.category) {
        return Err(Miss::Category);
    }
    if !limit_matches(sharing.unit.as_deref(), request.reader_unit.as_deref())
        || !limit_matches(sharing.staff.as_deref(), request.reader_staff.as_deref())
    {
        return Err(Miss::Limit);
    }
    match status(consent, request.at) {
        None => Ok(()),
        Some(miss) => Err(miss),
    }
}

/// Why a consent does not count at `at`, or `None` when it does.
fn status(consent: &Consent, at: DateTime<Utc>) -> Option<Miss> {
    if consent.voided {
        Some(Miss::Voided)
    } else if consent.revoked_at.is_some() {
        // Whatever moment is asked about: a decision must never lean on a withdrawn consent,
        // even when the asker's clock is behind the clock that recorded the revocation.
        Some(Miss::Revoked)
    } else if at < consent.valid_from {
        Some(Miss::NotYetValid)
    } else if consent.valid_until.is_some_and(|u| u <= at) {
        Some(Miss::Expired)
    } else {
        None
    }
}

/// A limit to one unit or staff member matches only a reader known to be that one.
fn limit_matches(limit: Option<&str>, reader: Option<&str>) -> bool {
    match limit {
        None => true,
        Some(limit) => reader == Some(limit),
    }
}

/// Whether an active `restriction` applies to `request`.
fn restricts(restriction: &Restriction, request: &Request) -> bool {
    let at = request.at;
    let active = restriction.valid_from <= at
        && restriction.valid_until.is_none_or(|u| at < u)
        && restriction.revoked_at.is_none_or(|r| at < r);
    if !active
        || !restriction.categories.contains(request.category)
        || restriction.organisation != request.reader_organisation
    {
        return false;
    }
    if restriction
        .owner_organisation
        .as_ref()
        .is_some_and(|o| *o != request.owner_organisation)
    {
        return false;
    }
    match restriction.unit.as_deref() {
        // Unknown reader unit: it may be the restricted one (fail closed).
        Some(unit) => request.reader_unit.as_deref().is_none_or(|u| u == unit),
        // An organisation is never blocked from what it owns itself.
        None => request.reader_organisation != request.owner_organisation,
    }
}

/// Whether `lift` suspends its restriction for `request`.
fn lift_covers(lift: &Lift, request: &Request) -> bool {
    let at = request.at;
    let longest = lift
        .starts_at
        .checked_add_signed(MAX_LIFT)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let ends = lift.ends_at.min(longest);
    lift.starts_at <= at
        && at < ends
        && lift.categories.contains(request.category)
        && limit_matches(lift.unit.as_deref(), request.reader_unit.as_deref())
        && limit_matches(lift.staff.as_deref(), request.reader_staff.as_deref())
}

#[cfg(test)]
mod tests;
