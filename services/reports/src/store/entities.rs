//! Sea-orm entities of the read model.

/// `fact`: one fact as JSON, by kind and id.
pub mod fact {
    use sea_orm::entity::prelude::*;

    /// A fact row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "fact")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub body: String,
    }

    /// Read by kind only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `feed_cursor`: the last sequence applied from each feed.
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

    /// Read by feed only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
