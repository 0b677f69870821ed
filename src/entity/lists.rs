use sea_orm::entity::prelude::*;

use crate::domain::{List, ListStatus, ListType, Optin};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lists")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    pub name: String,
    /// `name`, case-folded by Roster, searched with a literal substring match.
    pub name_folded: String,
    #[sea_orm(column_name = "type")]
    pub list_type: ListType,
    pub optin: Optin,
    pub status: ListStatus,
    /// The tags in the order the client gave them; `list_tags` indexes them for filtering.
    pub tags: Json,
    pub description: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::list_tags::Entity")]
    ListTags,
}

impl Related<super::list_tags::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ListTags.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The list as the domain knows it (without its counts); fails only if the stored tags are not a list of
    /// strings.
    pub fn into_domain(self) -> Result<List, DbErr> {
        let tags =
            serde_json::from_value(self.tags).map_err(|err| DbErr::Type(format!("tags: {err}")))?;
        Ok(List {
            id: self.id,
            uuid: self.uuid,
            list_type: self.list_type,
            optin: self.optin,
            status: self.status,
            tags,
            name: self.name,
            description: self.description,
            created_at: self.created_at,
            updated_at: self.updated_at,
            subscribers: None,
        })
    }
}
