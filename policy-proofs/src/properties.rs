//! The properties: each is a legal rule of the door, written as the Cedar permits of every
//! request the rule allows. The law satisfies a property when it permits nothing more.
//!
//! The words come from the programme's rules (README "Who may do what"): the region's and
//! the municipality's records are separate under secrecy (OSL 25:1, 26:1) and cross only as
//! the participant consents (OSL 12:2) or in an emergency (nödåtkomst, PDL 6:3); the data
//! owner decides on disclosure (OSL 10:2); a restriction (spärr, PDL 4:4) blocks the other
//! organisation; access logs are followed up by the owner's auditors and shown to the
//! participant (PDL 4:3, 8:1).

use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet};

use crate::law::Law;
use crate::solver::ProverError;

/// What a property allows: a set of permits, optionally added to the law's own policies less
/// those with one flag (to bound what a flagged kind of permit adds to the rest).
#[derive(Debug, Clone, Copy)]
pub enum Allows {
    /// Exactly these permits.
    Only(&'static str),
    /// The law without its `@flag(flag)` permits, plus these.
    LawWithout {
        flag: &'static str,
        plus: &'static str,
    },
}

/// A named property of the law and the rule it encodes.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    pub name: &'static str,
    /// The legal rule, in words.
    pub rule: &'static str,
    pub allows: Allows,
}

impl Property {
    /// The permits of everything the property allows, for `law`.
    pub fn allows(&self, law: &Law) -> Result<PolicySet, ProverError> {
        let invalid = |message: String| ProverError::Symcc {
            what: format!("property {}", self.name),
            message,
        };
        let (mut set, text) = match self.allows {
            Allows::Only(text) => (PolicySet::new(), text),
            Allows::LawWithout { flag, plus } => {
                let kept = law
                    .policies()
                    .policies()
                    .filter(|p| p.annotation("flag") != Some(flag))
                    .cloned();
                (
                    PolicySet::from_policies(kept).map_err(|e| invalid(e.to_string()))?,
                    plus,
                )
            }
        };
        let parsed = PolicySet::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for (n, policy) in parsed.policies().enumerate() {
            set.add(policy.new_id(PolicyId::new(format!("property-{}-{n}", self.name))))
                .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(set)
    }
}

/// The owner condition every read and write across organisations is measured by.
macro_rules! not_another_organisations {
    ($action:literal) => {
        concat!(
            "permit (principal is Samsyn::Participant, action, resource);\n",
            "permit (principal is Samsyn::Staff, action, resource) unless {\n",
            "  action == Samsyn::Action::\"",
            $action,
            "\" && resource has owner && resource.owner != principal.organisation\n",
            "};\n",
            "permit (principal is Samsyn::System, action, resource) unless {\n",
            "  action == Samsyn::Action::\"",
            $action,
            "\" && resource has owner && resource.owner != principal.organisation\n",
            "};\n",
        )
    };
}

/// Emergency access as the rule allows it: a reason given, a physician or nurse, of one of
/// the programme's organisations, within four hours (14 400 s) of the declaration.
macro_rules! emergency_within_rule {
    () => {
        "permit (principal is Samsyn::Staff, action == Samsyn::Action::\"read\", resource)
        when {
          context.emergency.reason_given &&
          context.emergency.age_seconds >= 0 &&
          context.emergency.age_seconds <= 14400 &&
          principal.roles.containsAny([\"physician\", \"nurse\"]) &&
          context.programme_member
        };\n"
    };
}

/// 1. Reads across organisations (OSL 25:1, 26:1, 12:2): a principal of organisation B
///    reads data organisation A ≠ B owns only as a disclosure the consent rule permits
///    (a decided permit for a consent, or for a recorded lift of a restriction), or under
///    emergency access within its conditions.
pub const CROSS_ORGANISATION_READ: Property = Property {
    name: "cross-organisation-read",
    rule: "no read of A's data by B ≠ A unless the consent rule permits a disclosure, or in an emergency",
    allows: Allows::Only(concat!(
        not_another_organisations!("read"),
        "permit (principal, action == Samsyn::Action::\"read\", resource)
        when {
          context.consent.decided &&
          context.consent.permit &&
          (context.consent.reason == \"consent\" || context.consent.reason == \"restriction_lifted\")
        };\n",
        emergency_within_rule!(),
    )),
};

/// 2. Writes across organisations (each principal keeps its own record: the patient record
///    under PDL 3 kap., the social services' documentation under SoL): no principal of B
///    writes data that A ≠ B owns, ever; not by consent, not in an emergency.
pub const CROSS_ORGANISATION_WRITE: Property = Property {
    name: "cross-organisation-write",
    rule: "no write by B to data A ≠ B owns, ever",
    allows: Allows::Only(not_another_organisations!("write")),
};

/// 3. The consent rule's refusals stand (a restriction, spärr, PDL 4:4; research needs its
///    own consent under the Ethical Review Act, 2003:460): when the rule, asked about a read, reports an active
///    restriction or a missing research consent, nothing permits the read. The rule is asked
///    about reads only (a restriction blocks access to another's record, not one's own
///    writing), so the property is about reads.
pub const CONSENT_RULE_REFUSALS_STAND: Property = Property {
    name: "consent-rule-refusals-stand",
    rule: "no permit when the consent rule reports a restriction or a missing research consent",
    allows: Allows::Only(
        "permit (principal, action, resource) unless {
          action == Samsyn::Action::\"read\" &&
          context.consent.decided &&
          !context.consent.permit &&
          (context.consent.reason == \"restricted\" || context.consent.reason == \"no_research_consent\")
        };",
    ),
};

/// 4. Emergency access is narrow (PDL 6:3 nödåtkomst; the programme's agreement): what the
///    emergency permits add to the rest of the law is a read by a physician or nurse of one of
///    the programme's organisations who gave a reason, within four hours of the declaration.
pub const EMERGENCY_IS_NARROW: Property = Property {
    name: "emergency-is-narrow",
    rule: "no emergency permit without a reason, outside physician and nurse, outside the programme's organisations, or after four hours",
    allows: Allows::LawWithout {
        flag: "emergency",
        plus: emergency_within_rule!(),
    },
};

/// 5. The data owner decides on disclosure and on its restrictions (OSL 10:2, 25:1; PDL 4:4):
///    no principal of B records a sharing consent from another organisation to B (unless the
///    call shows B itself is the discloser), nor lifts or revokes a restriction against B.
pub const OWNER_DECIDES_ACTS: Property = Property {
    name: "owner-decides-acts",
    rule: "no principal of B records a sharing consent from A to B, or lifts or revokes a restriction against B",
    allows: Allows::Only(
        "permit (principal is Samsyn::Participant, action, resource);
        permit (principal is Samsyn::Staff, action, resource) unless {
          action == Samsyn::Action::\"write\" &&
          (
            (context.act has receiving_organisation &&
              context.act.receiving_organisation == principal.organisation &&
              !(context.act has disclosing_organisation &&
                context.act.disclosing_organisation == principal.organisation)) ||
            (context.act has restricted_organisation &&
              context.act.restricted_organisation == principal.organisation)
          )
        };
        permit (principal is Samsyn::System, action, resource) unless {
          action == Samsyn::Action::\"write\" &&
          (
            (context.act has receiving_organisation &&
              context.act.receiving_organisation == principal.organisation &&
              !(context.act has disclosing_organisation &&
                context.act.disclosing_organisation == principal.organisation)) ||
            (context.act has restricted_organisation &&
              context.act.restricted_organisation == principal.organisation)
          )
        };",
    ),
};

/// 6. Internal RPCs (change feeds) are Samsyn's own components' only: no principal at the
///    door is ever permitted one.
pub const INTERNAL_ONLY: Property = Property {
    name: "internal-only",
    rule: "internal-only RPCs are never permitted to any principal",
    allows: Allows::Only("permit (principal, action, resource) unless { context.internal_only };"),
};

/// 7. An external system does exactly what its link agreement allows (the link is the
///    agreement with the system's organisation): nothing outside its allowed calls, neither
///    for itself nor for a clinician acting through it.
pub const SYSTEM_WITHIN_LINK: Property = Property {
    name: "system-within-link",
    rule: "a system, or staff acting through one, is never permitted outside the link's allowed calls",
    allows: Allows::Only(
        "permit (principal is Samsyn::Staff, action, resource)
        unless { principal has acting_through && !context.link_allows };
        permit (principal is Samsyn::Participant, action, resource);
        permit (principal is Samsyn::System, action, resource) when { context.link_allows };",
    ),
};

/// 8. A participant acting for themself sees and does only their own: nothing about another
///    participant, whose data is secret from them like from anyone (OSL 25:1, 26:1). A call naming no
///    participant could be about anyone, so it is not the participant's either.
pub const PARTICIPANT_ONLY_OWN: Property = Property {
    name: "participant-only-own",
    rule: "a participant is never permitted anything about another participant",
    allows: Allows::Only(
        "permit (principal is Samsyn::Staff, action, resource);
        permit (principal is Samsyn::System, action, resource);
        permit (principal is Samsyn::Participant, action, resource)
        when { resource has participant && resource.participant == principal };",
    ),
};

/// 9. The access log is for follow-up (PDL 4:3 by the care provider, 8:1 the patient's right
///    to know who accessed their data): the audit trail is read only by auditors within their
///    organisation's data (or data both keep together), and by the participant their own.
pub const AUDIT_TRAIL_READERS: Property = Property {
    name: "audit-trail-readers",
    rule: "the audit trail is read only by auditors, within their organisation, and by the participant their own log",
    allows: Allows::Only(
        "permit (principal, action, resource)
        unless { action == Samsyn::Action::\"read\" && resource.category == \"audit\" };
        permit (principal is Samsyn::Staff, action == Samsyn::Action::\"read\", resource)
        when {
          resource.category == \"audit\" &&
          principal.roles.contains(\"auditor\") &&
          (if resource has owner then resource.owner == principal.organisation else true)
        };
        permit (principal is Samsyn::Participant, action == Samsyn::Action::\"read\", resource)
        when {
          resource.category == \"audit\" &&
          resource has participant &&
          resource.participant == principal
        };",
    ),
};

/// Every property, in the order of issue 19.
pub fn properties() -> [Property; 9] {
    [
        CROSS_ORGANISATION_READ,
        CROSS_ORGANISATION_WRITE,
        CONSENT_RULE_REFUSALS_STAND,
        EMERGENCY_IS_NARROW,
        OWNER_DECIDES_ACTS,
        INTERNAL_ONLY,
        SYSTEM_WITHIN_LINK,
        PARTICIPANT_ONLY_OWN,
        AUDIT_TRAIL_READERS,
    ]
}
