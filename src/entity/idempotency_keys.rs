use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Who sent the key: `admin:<name>`, `user:<id>` or, for the public form, `address:<client address>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub caller: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of the request: method, path and query, content type, body.
    pub fingerprint: String,
    /// The attempt carrying the request out now; a retry that takes over a dead attempt replaces it.
    pub token: String,
    /// `running`, `committed` (set by the write's own transaction), `done` (the answer is stored) or `lost` (committed,
    /// and its answer could not be had).
    pub state: String,
    pub status: Option<i32>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub body: Option<Vec<u8>>,
    pub claimed_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
