use sea_orm::entity::prelude::*;

use crate::domain::SubscriberStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subscribers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    /// Lowercase, so the unique index makes addresses unique whatever their case.
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    /// `name`, case-folded by Roster, searched with a literal substring match and sorted on.
    pub name_folded: String,
    /// Always a JSON object.
    pub attribs: Json,
    pub status: SubscriberStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
