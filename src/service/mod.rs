//! Persistence and the use cases of the API. The only layer that sees SeaORM.

mod accounts;
mod auth;
mod credentials;
mod database;
mod error;
mod listing;
mod lists;
mod locks;
mod paging;
mod positions;
mod sql;
mod subscribers;
mod totals;
mod walk;

pub use accounts::{AccountError, AccountService, IssuedToken, RoleInfo, RoleKind, UserInfo};
pub use auth::{AuthError, Authenticator};
pub use credentials::{AdminCredentials, Bootstrap};
pub use database::{DatabaseService, PoolUsage};
pub use error::ServiceError;
use error::ensure;
pub use lists::ListService;
pub use subscribers::SubscriberService;
pub use walk::{Batches, STREAMED_ABOVE};
