//! Persistence and the use cases of the API. The only layer that sees SeaORM.

mod credentials;
mod error;
mod lists;

pub use credentials::{AdminCredentials, Authenticator, Bootstrap};
pub use error::ServiceError;
pub use lists::ListService;
