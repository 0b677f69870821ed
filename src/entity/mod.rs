//! SeaORM entities. Only the service layer sees these.

pub mod api_users;
mod columns;
pub mod idempotency_callers;
pub mod idempotency_keys;
pub mod import_jobs;
pub mod import_log;
pub mod list_counts;
pub mod list_permissions;
pub mod list_subscriber_counts;
pub mod list_tags;
pub mod lists;
pub mod role_permissions;
pub mod roles;
pub mod settings;
pub mod subscriber_changes;
pub mod subscriber_counts;
pub mod subscriber_lists;
pub mod subscribers;
