use sea_orm::entity::prelude::*;

use crate::domain::SubscriptionStatus;

/// One subscription: a subscriber on a list.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriber_lists")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub subscriber_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub list_id: i64,
    pub status: SubscriptionStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Whether this subscription puts the subscriber in the scope of the list's readers: false for one the
    /// public form added to a subscriber that existed before (migration 11).
    pub grants_scope: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
