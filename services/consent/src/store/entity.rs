//! The sea-orm entities of the consent service's own tables.

/// The current state of each consent and restriction.
pub mod record {
    use sea_orm::entity::prelude::*;

    /// One consent or restriction as it is now.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "record")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// "consent" or "restriction".
        pub kind: String,
        pub participant_id: String,
        pub revision: i64,
        /// The domain record as JSON.
        pub body: String,
    }

    /// Relates to nothing: versions are found by participant and id.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every state each record ever had.
pub mod record_version {
    use sea_orm::entity::prelude::*;

    /// One version of a record.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "record_version")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub sequence: i64,
        pub participant_id: String,
        pub record_kind: String,
        pub record_id: String,
        pub revision: i64,
        pub change_kind: String,
        pub recorded_at: DateTimeUtc,
        /// The domain record as JSON, as it was after the change.
        pub body: String,
    }

    /// Relates to nothing.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
