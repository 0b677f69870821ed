use sea_orm::entity::prelude::*;

/// Exact list counts per (status, type, optin), maintained by database triggers; never written by Roster.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "list_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: String,
    #[sea_orm(primary_key, auto_increment = false, column_name = "type")]
    pub list_type: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub optin: String,
    /// Writers spread over shards; the count is the sum over them.
    #[sea_orm(primary_key, auto_increment = false)]
    pub shard: i16,
    pub n: i64,
    /// Grows with every statement that changes lists; the sum over all rows is the lists' version.
    pub changes: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
