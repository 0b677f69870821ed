use sea_orm::entity::prelude::*;

/// The subscribers' version, maintained by database triggers (migration 8); never written by Roster.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber_changes")]
pub struct Model {
    /// Writers spread over shards; the version is the sum over them.
    #[sea_orm(primary_key, auto_increment = false)]
    pub shard: i16,
    /// Grows with every statement that changes subscribers or subscriptions.
    pub n: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
