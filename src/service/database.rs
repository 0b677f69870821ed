//! The database itself, as health checks and metrics see it.

use sea_orm::DatabaseConnection;

use super::ServiceError;

/// Connections in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Whether the database answers, and how its pool is used. Cheap to clone: the connection is a pool handle.
#[derive(Clone)]
pub struct DatabaseService {
    db: DatabaseConnection,
}

impl DatabaseService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), ServiceError> {
        self.db.ping().await.map_err(ServiceError::from)
    }

    /// How the connection pool is used right now.
    pub fn pool_usage(&self) -> PoolUsage {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                PoolUsage {
                    size: pool.size(),
                    idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                    max: pool.options().get_max_connections(),
                }
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                PoolUsage {
                    size: pool.size(),
                    idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                    max: pool.options().get_max_connections(),
                }
            }
        }
    }
}
