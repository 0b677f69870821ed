//! The HTTP layer: operations, their wire types, and the one mapping from errors to responses.

mod body;
mod bounds;
mod catalog;
mod conditions;
mod context;
mod docs;
mod error;
mod export;
mod fairness;
mod front;
mod health;
mod idempotency;
mod imports;
mod layer;
mod limits;
mod lists;
mod models;
mod ops;
mod paging;
mod payload;
mod responses;
mod routes;
mod security;
mod stream;
mod subscribers;
mod types;
mod upload;

pub use bounds::{HEADER_MAX_BYTES, URL_MAX_BYTES};
pub use docs::{SPEC_YAML, served_spec_json};
pub use error::ApiError;
pub use routes::{app, generated_spec};

/// Operation groups in Swagger UI (described in openapi.yaml).
#[derive(poem_openapi::Tags)]
enum ApiTags {
    Lists,
    Subscribers,
    Import,
    Health,
}
