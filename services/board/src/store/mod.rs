//! Storage of the board service: migrations (and, with the domain, entities and queries).

use samsyn_kit::feed::migration::CreateChangeFeed;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// Every migration of the board database, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateChangeFeed)]
    }
}
