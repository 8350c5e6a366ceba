//! The participants service's tables.

/// A person known to the programme: identity and where they stand now.
pub mod participant {
    use sea_orm::entity::prelude::*;

    /// One participant.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "participant")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub personal_identity_number: String,
        pub name: String,
        pub home_municipality_code: String,
        pub status: String,
        pub current_referral_id: String,
        pub revision: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    /// Relations are followed by id in queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A referral and the episode it opens: review outcome, enrolment, discharge.
pub mod referral {
    use sea_orm::entity::prelude::*;

    /// One referral episode.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "referral")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub participant_id: String,
        pub referring_principal: String,
        pub referred_by_staff_id: String,
        pub referred_by_organisation_id: String,
        pub referred_by_unit_id: Option<String>,
        pub reason: String,
        pub long_term_needs_from_both_principals: bool,
        pub diagnosis_criteria_met: bool,
        pub referred_at: DateTimeUtc,
        pub outcome_accepted: Option<bool>,
        pub outcome_reason: Option<String>,
        pub decided_at: Option<DateTimeUtc>,
        pub consent_reference: Option<String>,
        pub enrolled_on: Option<Date>,
        pub enrolled_municipality_code: Option<String>,
        pub discharge_reason: Option<String>,
        pub discharged_on: Option<Date>,
        pub discharge_note: Option<String>,
        pub consent_revoked_at: Option<DateTimeUtc>,
    }

    /// Relations are followed by id in queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One principal's review of a referral.
pub mod review {
    use sea_orm::entity::prelude::*;

    /// One review.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "review")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub referral_id: String,
        pub participant_id: String,
        pub principal: String,
        pub staff_id: String,
        pub organisation_id: String,
        pub unit_id: Option<String>,
        pub assessment: String,
        pub reason: String,
        pub recorded_at: DateTimeUtc,
    }

    /// Relations are followed by id in queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Coordinators, care-team members and fixed care contacts, as history rows.
pub mod assignment {
    use sea_orm::entity::prelude::*;

    /// One assignment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assignment")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub participant_id: String,
        /// `coordinator`, `care_team_member` or `fixed_care_contact`.
        pub kind: String,
        pub principal: Option<String>,
        pub rank: Option<String>,
        pub role: Option<String>,
        pub staff_id: String,
        pub organisation_id: String,
        pub unit_id: Option<String>,
        pub valid_from: DateTimeUtc,
        pub valid_until: Option<DateTimeUtc>,
    }

    /// Relations are followed by id in queries.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Participation consents, as followed from the consent service's change feed.
pub mod participation_consent {
    use sea_orm::entity::prelude::*;

    /// One participation consent and whether it still counts.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "participation_consent")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consent_id: String,
        pub participant_id: String,
        pub active: bool,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How far each followed change feed has been applied.
pub mod feed_cursor {
    use sea_orm::entity::prelude::*;

    /// One followed feed's cursor.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "feed_cursor")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub feed: String,
        pub sequence: i64,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
