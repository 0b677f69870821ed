//! The HTTP layer: operations, their wire types, and the one mapping from errors to responses.

mod body;
mod error;
mod health;
mod lists;
mod models;
mod ops;
mod payload;
mod routes;
mod security;
mod types;

pub use error::ApiError;
pub use routes::{AppConfig, SPEC_YAML, app, generated_spec, served_spec_json};

/// Operation groups in Swagger UI.
#[derive(poem_openapi::Tags)]
enum ApiTags {
    /// Mailing lists.
    Lists,
    /// Liveness and readiness.
    Health,
}
