//! sea-orm entities of the plans tables.

/// The current revision of each plan.
pub mod plan {
    use sea_orm::entity::prelude::*;

    /// One plan.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plan")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub participant_id: String,
        pub active_participant_id: Option<String>,
        pub status: String,
        pub revision: i64,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    /// Relations are by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every revision of every plan, as a snapshot.
pub mod plan_revision {
    use sea_orm::entity::prelude::*;

    /// One revision.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plan_revision")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub plan_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i64,
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub recorded_at: DateTimeUtc,
        /// JSON: what the revision did with a parked decision, if anything.
        #[sea_orm(column_type = "Text", nullable)]
        pub inbox_note: Option<String>,
    }

    /// Relations are by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Open follow-ups of active plans, for the due list.
pub mod follow_up_index {
    use sea_orm::entity::prelude::*;

    /// One open follow-up.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "follow_up_index")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub plan_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub follow_up_id: String,
        pub participant_id: String,
        pub organisation_id: String,
        pub team_id: Option<String>,
        pub due_on: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    /// Relations are by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Decisions received, keyed by deciding organisation and external id.
pub mod decision {
    use sea_orm::entity::prelude::*;

    /// One decision and what recording it did.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub external_id: String,
        pub participant_id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub plan_id: String,
        pub intervention_id: String,
        pub plan_revision: i64,
        pub recorded_at: DateTimeUtc,
    }

    /// Relations are by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The intervention catalogue.
pub mod catalogue_entry {
    use sea_orm::entity::prelude::*;

    /// One catalogue entry.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalogue_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub principal: String,
        pub name: String,
        pub active: bool,
        pub position: i32,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The decision inbox: parked decisions, one per (organisation, external id).
pub mod decision_inbox {
    use sea_orm::entity::prelude::*;

    /// One parked decision; the body is the domain's `ParkedDecision` as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision_inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub inbox_id: String,
        pub organisation_id: String,
        pub external_id: String,
        pub participant_id: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub parked_at: DateTimeUtc,
    }

    /// Relations are by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
