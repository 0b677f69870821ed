//! Persistence and the use cases of the API. The only layer that sees SeaORM.

mod accounts;
mod auth;
mod credentials;
mod database;
mod error;
mod idempotency;
mod imports;
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
pub use auth::{AuthError, Authenticator, Credentials};
pub use credentials::{AdminCredentials, Bootstrap};
pub use database::{DatabaseService, PoolUsage};
pub use error::{Expect, ServiceError};
use error::{check, ensure};
pub use idempotency::{Claim, Claimed, IdempotencyService, StoredAnswer, carrying};
pub use imports::{ImportService, ImportStats};
pub use lists::ListService;
pub use subscribers::{Answered, SubscriberService};
pub use walk::{Batches, STREAMED_ABOVE};

use sea_orm::DatabaseConnection;

/// Connections of the pool this instance's background work (an import job's writers and heartbeat) holds beside
/// the requests, so that the gate in front of the requests (`api::fairness`) leaves them out.
pub type Background = crate::tally::Tally;

/// The services the API's operations call, built from the pools here so that the HTTP layer never names a
/// connection type.
#[derive(Clone)]
pub struct Services {
    pub lists: ListService,
    pub subscribers: SubscriberService,
    pub database: DatabaseService,
    pub idempotency: IdempotencyService,
    pub imports: ImportService,
    pub background: Background,
}

impl Services {
    /// `db` for writes, `reads` for reads on their own (see `db::connect_readers`).
    pub fn new(
        db: DatabaseConnection,
        reads: DatabaseConnection,
        idempotency: crate::config::IdempotencySettings,
        import_limit: u64,
    ) -> Self {
        let background = Background::default();
        Self {
            lists: ListService::new(db.clone(), reads.clone()),
            subscribers: SubscriberService::new(db.clone(), reads),
            idempotency: IdempotencyService::new(db.clone(), idempotency),
            imports: ImportService::new(db.clone(), import_limit, background.clone()),
            database: DatabaseService::new(db),
            background,
        }
    }

    /// Services on no database: for describing the operations (the generated spec), never for calling them.
    pub fn unconnected() -> Self {
        let idempotency = crate::config::IdempotencySettings {
            ttl: std::time::Duration::ZERO,
            keys_per_caller: 1,
            lease: std::time::Duration::ZERO,
        };
        Self::new(
            DatabaseConnection::default(),
            DatabaseConnection::default(),
            idempotency,
            1,
        )
    }
}
