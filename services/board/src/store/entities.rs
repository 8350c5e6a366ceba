//! Sea-orm entities of the board's tables. Staff references and small lists are JSON text.

/// `team`.
pub mod team {
    use sea_orm::entity::prelude::*;

    /// A team row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub owner_organisation_id: String,
        pub coordinators: String,
        pub config: String,
        pub revision: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    /// Read by id only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `board_entry`.
pub mod board_entry {
    use sea_orm::entity::prelude::*;

    /// An entry row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "board_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub team_id: String,
        pub participant_id: String,
        pub reason: String,
        pub criteria: String,
        pub status_level: i32,
        pub trend: String,
        pub status_note: String,
        pub next_review_on: Option<Date>,
        pub put_on_at: DateTimeUtc,
        pub put_on_by: String,
        pub taken_off_at: Option<DateTimeUtc>,
        pub taken_off_by: Option<String>,
        pub take_off_reason: Option<String>,
        pub revision: i64,
        pub updated_at: DateTimeUtc,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `board_action`.
pub mod board_action {
    use sea_orm::entity::prelude::*;

    /// An action row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "board_action")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub entry_id: String,
        pub description: String,
        pub owner: String,
        pub due_on: Date,
        pub done_at: Option<DateTimeUtc>,
        pub done_by: Option<String>,
        pub created_at: DateTimeUtc,
        pub created_by: String,
        pub meeting_id: Option<String>,
        pub discussion_id: Option<String>,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `status_point`.
pub mod status_point {
    use sea_orm::entity::prelude::*;

    /// A status history row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "status_point")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub entry_id: String,
        pub team_id: String,
        pub participant_id: String,
        pub level: i32,
        pub trend: String,
        pub note: String,
        pub recorded_at: DateTimeUtc,
        pub recorded_by: String,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `board_event`.
pub mod board_event {
    use sea_orm::entity::prelude::*;

    /// A board event row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "board_event")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub entry_id: Option<String>,
        pub team_id: String,
        pub participant_id: String,
        pub kind: String,
        pub occurred_at: DateTimeUtc,
        pub recorded_by: String,
        pub detail: String,
        pub action_id: Option<String>,
        pub meeting_id: Option<String>,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `meeting`.
pub mod meeting {
    use sea_orm::entity::prelude::*;

    /// A meeting row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "meeting")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub team_id: String,
        pub held_on: Date,
        pub chair: String,
        pub attendees: String,
        pub started_at: DateTimeUtc,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `discussion`.
pub mod discussion {
    use sea_orm::entity::prelude::*;

    /// A discussion row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "discussion")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub meeting_id: String,
        pub participant_id: String,
        pub entry_id: Option<String>,
        pub notes: String,
        pub decisions: String,
        pub recorded_at: DateTimeUtc,
        pub recorded_by: String,
    }

    /// Queried by column.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `feed_cursor`: how far each followed feed has been applied.
pub mod feed_cursor {
    use sea_orm::entity::prelude::*;

    /// A cursor row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "feed_cursor")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub feed: String,
        pub sequence: i64,
    }

    /// Read by feed name only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `participant_fact`: what the feeds said about a participant.
pub mod participant_fact {
    use sea_orm::entity::prelude::*;

    /// A participant's facts.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "participant_fact")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub participant_id: String,
        pub consent_revoked_at: Option<DateTimeUtc>,
        pub latest_decision_at: Option<DateTimeUtc>,
    }

    /// Read by participant only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `decision_notice`: municipal decisions to bring up at the morning meeting.
pub mod decision_notice {
    use sea_orm::entity::prelude::*;

    /// A notice row; the body is the domain's notice as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision_notice")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub participant_id: String,
        pub noted_at: DateTimeUtc,
        pub body: String,
    }

    /// Read by participant and time only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
