//! Roster's schema history. Migrations are frozen once released: they use their own identifiers, never the
//! application's entities, so that later model changes cannot rewrite history.

pub use sea_orm_migration::prelude::*;

mod counters;
mod m20261122_000001_create_lists;
mod m20261122_000002_create_settings;
mod m20261122_000003_index_name_search;
mod m20261122_000004_create_api_users;
mod m20261122_000005_count_lists;
mod m20261122_000006_version_lists;
mod m20261202_000007_create_subscribers;
mod m20261202_000008_version_subscribers;
mod m20261206_000009_unlock_counters;
mod m20261206_000010_code_point_order;
mod m20261206_000011_scope_grants;
mod m20261207_000012_idempotency_keys;
mod m20261207_000013_import_jobs;
mod m20261207_000014_role_versions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_lists::Migration),
            Box::new(m20261122_000002_create_settings::Migration),
            Box::new(m20261122_000003_index_name_search::Migration),
            Box::new(m20261122_000004_create_api_users::Migration),
            Box::new(m20261122_000005_count_lists::Migration),
            Box::new(m20261122_000006_version_lists::Migration),
            Box::new(m20261202_000007_create_subscribers::Migration),
            Box::new(m20261202_000008_version_subscribers::Migration),
            Box::new(m20261206_000009_unlock_counters::Migration),
            Box::new(m20261206_000010_code_point_order::Migration),
            Box::new(m20261206_000011_scope_grants::Migration),
            Box::new(m20261207_000012_idempotency_keys::Migration),
            Box::new(m20261207_000013_import_jobs::Migration),
            Box::new(m20261207_000014_role_versions::Migration),
        ]
    }
}
