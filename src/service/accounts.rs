//! Administration of API users and roles (used by the `roster users` and `roster roles` commands).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, ModelTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::ServiceError;

/// Why an administrative command failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A named thing (user, role, list) that the command refers to does not exist.
    #[error("{0}")]
    Missing(String),
    /// The command would break a uniqueness or reference rule.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ValidationError> for AccountError {
    fn from(err: ValidationError) -> Self {
        AccountError::Service(err.into())
    }
}

impl From<sea_orm::DbErr> for AccountError {
    fn from(err: sea_orm::DbErr) -> Self {
        AccountError::Service(err.into())
    }
}
use super::locks::lock_rows;
use super::sql::now;
use crate::domain::{ListPermission, UserPermission, ValidationError};
use crate::entity::{api_users, list_permissions, lists, role_permissions, roles};

pub(crate) const USER_ENABLED: &str = "enabled";
const USER_DISABLED: &str = "disabled";
const TOKEN_LENGTH: usize = 48;

/// A fresh token: 48 alphanumeric characters (about 285 bits) from the thread's CSPRNG.
fn new_token() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(TOKEN_LENGTH)
        .map(char::from)
        .collect()
}

/// What is stored instead of a token. A token has ample entropy, so a fast hash loses nothing and keeps each
/// request's check in microseconds.
pub(crate) fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The two kinds of role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Grants `lists:get_all`, `lists:manage_all` and the `subscribers:` permissions; every user has exactly one.
    User,
    /// Grants `list:get` / `list:manage` on individual lists; a user has at most one.
    List,
}

impl RoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::User => "user",
            RoleKind::List => "list",
        }
    }

    fn parse(text: &str) -> Result<Self, AccountError> {
        match text {
            "user" => Ok(RoleKind::User),
            "list" => Ok(RoleKind::List),
            other => Err(ServiceError::Database(sea_orm::DbErr::Type(format!(
                "unknown role kind `{other}`"
            )))
            .into()),
        }
    }
}

/// A role and what it grants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleInfo {
    pub id: i64,
    pub name: String,
    pub kind: &'static str,
    /// For user roles: `lists:get_all`, `lists:manage_all`, `subscribers:get_all`, `subscribers:get`,
    /// `subscribers:manage`, `subscribers:import`.
    pub permissions: Vec<String>,
    /// For list roles: list id → `list:get`, `list:manage`.
    pub lists: BTreeMap<i64, Vec<String>>,
}

/// An API user, without its token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub user_role: String,
    pub list_role: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user with the token that was just issued: the only moment the token exists in clear.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedToken {
    pub user: UserInfo,
    pub token: String,
}

fn validate_name(what: &str, name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 100
        && !name.contains(':')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ValidationError(format!(
            "{what} names are 1–100 characters without spaces, control characters or `:`"
        ))
        .into())
    }
}

/// Manages API users and roles.
#[derive(Clone)]
pub struct AccountService {
    db: DatabaseConnection,
}

impl AccountService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn role(&self, name: &str) -> Result<roles::Model, AccountError> {
        roles::Entity::find()
            .filter(roles::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| AccountError::Missing(format!("no role named `{name}`")))
    }

    async fn role_of_kind(&self, name: &str, kind: RoleKind) -> Result<roles::Model, AccountError> {
        let role = self.role(name).await?;
        if RoleKind::parse(&role.kind)? != kind {
            return Err(ValidationError(format!(
                "`{name}` is a {} role, not a {} role",
                role.kind,
                kind.as_str()
            ))
            .into());
        }
        Ok(role)
    }

    async fn user(&self, name: &str) -> Result<api_users::Model, AccountError> {
        api_users::Entity::find()
            .filter(api_users::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| AccountError::Missing(format!("no API user named `{name}`")))
    }

    async fn role_info(&self, role: roles::Model) -> Result<RoleInfo, AccountError> {
        let permissions = role_permissions::Entity::find()
            .filter(role_permissions::Column::RoleId.eq(role.id))
            .order_by_asc(role_permissions::Column::Permission)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| p.permission)
            .collect();
        let mut lists: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for entry in list_permissions::Entity::find()
            .filter(list_permissions::Column::RoleId.eq(role.id))
            .order_by_asc(list_permissions::Column::ListId)
            .order_by_asc(list_permissions::Column::Permission)
            .all(&self.db)
            .await?
        {
            lists
                .entry(entry.list_id)
                .or_default()
                .push(entry.permission);
        }
        Ok(RoleInfo {
            id: role.id,
            kind: RoleKind::parse(&role.kind)?.as_str(),
            name: role.name,
            permissions,
            lists,
        })
    }

    pub async fn create_role(&self, name: &str, kind: RoleKind) -> Result<RoleInfo, AccountError> {
        validate_name("role", name)?;
        if roles::Entity::find()
            .filter(roles::Column::Name.eq(name))
            .count(&self.db)
            .await?
            > 0
        {
            return Err(AccountError::Conflict(format!(
                "a role named `{name}` exists"
            )));
        }
        let role = roles::ActiveModel {
            name: Set(name.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        self.role_info(role).await
    }

    pub async fn roles(&self) -> Result<Vec<RoleInfo>, AccountError> {
        let mut out = Vec::new();
        for role in roles::Entity::find()
            .order_by_asc(roles::Column::Name)
            .all(&self.db)
            .await?
        {
            out.push(self.role_info(role).await?);
        }
        Ok(out)
    }

    /// Deletes a role that no user holds.
    pub async fn delete_role(&self, name: &str) -> Result<(), AccountError> {
        let role = self.role(name).await?;
        let holders: Vec<String> = api_users::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(api_users::Column::UserRoleId.eq(role.id))
                    .add(api_users::Column::ListRoleId.eq(role.id)),
            )
            .order_by_asc(api_users::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect();
        if !holders.is_empty() {
            return Err(AccountError::Conflict(format!(
                "role `{name}` is held by: {}",
                holders.join(", ")
            )));
        }
        role.delete(&self.db).await?;
        Ok(())
    }

    /// Grants (or, with `grant = false`, revokes) `lists:*` permissions on a user role.
    pub async fn set_user_permissions(
        &self,
        role: &str,
        permissions: &[UserPermission],
        grant: bool,
    ) -> Result<RoleInfo, AccountError> {
        let role = self.role_of_kind(role, RoleKind::User).await?;
        let txn = self.db.begin().await?;
        bump_version(&txn, role.id).await?;
        for permission in permissions {
            if grant {
                role_permissions::Entity::insert(role_permissions::ActiveModel {
                    role_id: Set(role.id),
                    permission: Set(permission.as_str().to_owned()),
                })
                .on_conflict(
                    OnConflict::columns([
                        role_permissions::Column::RoleId,
                        role_permissions::Column::Permission,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            } else {
                role_permissions::Entity::delete_many()
                    .filter(role_permissions::Column::RoleId.eq(role.id))
                    .filter(role_permissions::Column::Permission.eq(permission.as_str()))
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        self.role_info(role).await
    }

    /// Grants (or revokes) a `list:*` permission on some lists to a list role. Granting needs the lists to exist.
    pub async fn set_list_permissions(
        &self,
        role: &str,
        permission: ListPermission,
        list_ids: &[i64],
        grant: bool,
    ) -> Result<RoleInfo, AccountError> {
        let role = self.role_of_kind(role, RoleKind::List).await?;
        if list_ids.is_empty() {
            return Err(ValidationError("name at least one list".into()).into());
        }
        let txn = self.db.begin().await?;
        // The role first, then the lists in ascending id order, as the server's writes lock them
        // (`service::locks`): a list delete then waits for this change, or this for it, instead of the two
        // locking rows in opposite orders.
        bump_version(&txn, role.id).await?;
        let missing =
            lock_rows::<lists::Entity>(&txn, lists::Column::Id, list_ids, LockType::KeyShare)
                .await?;
        if let (true, Some(list_id)) = (grant, missing.first()) {
            return Err(AccountError::Missing(format!("no list with id {list_id}")));
        }
        let list_ids: BTreeSet<i64> = list_ids.iter().copied().collect();
        for list_id in list_ids {
            if grant {
                list_permissions::Entity::insert(list_permissions::ActiveModel {
                    role_id: Set(role.id),
                    list_id: Set(list_id),
                    permission: Set(permission.as_str().to_owned()),
                })
                .on_conflict(
                    OnConflict::columns([
                        list_permissions::Column::RoleId,
                        list_permissions::Column::ListId,
                        list_permissions::Column::Permission,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            } else {
                list_permissions::Entity::delete_many()
                    .filter(list_permissions::Column::RoleId.eq(role.id))
                    .filter(list_permissions::Column::ListId.eq(list_id))
                    .filter(list_permissions::Column::Permission.eq(permission.as_str()))
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        self.role_info(role).await
    }

    async fn user_info(&self, user: api_users::Model) -> Result<UserInfo, AccountError> {
        let role_name = |id: i64| async move {
            roles::Entity::find_by_id(id)
                .one(&self.db)
                .await
                .map(|r| r.map(|r| r.name).unwrap_or_default())
        };
        let user_role = role_name(user.user_role_id).await?;
        let list_role = match user.list_role_id {
            Some(id) => Some(role_name(id).await?),
            None => None,
        };
        Ok(UserInfo {
            id: user.id,
            name: user.name,
            status: user.status,
            user_role,
            list_role,
            created_at: user.created_at,
            updated_at: user.updated_at,
        })
    }

    /// Creates an enabled API user and issues its token.
    pub async fn create_user(
        &self,
        name: &str,
        user_role: &str,
        list_role: Option<&str>,
    ) -> Result<IssuedToken, AccountError> {
        validate_name("user", name)?;
        if api_users::Entity::find()
            .filter(api_users::Column::Name.eq(name))
            .count(&self.db)
            .await?
            > 0
        {
            return Err(AccountError::Conflict(format!(
                "an API user named `{name}` exists"
            )));
        }
        let user_role = self.role_of_kind(user_role, RoleKind::User).await?;
        let list_role = match list_role {
            Some(name) => Some(self.role_of_kind(name, RoleKind::List).await?.id),
            None => None,
        };
        let token = new_token();
        let now = now();
        let user = api_users::ActiveModel {
            name: Set(name.to_owned()),
            status: Set(USER_ENABLED.to_owned()),
            token_sha256: Set(token_digest(&token)),
            user_role_id: Set(user_role.id),
            list_role_id: Set(list_role),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(IssuedToken {
            user: self.user_info(user).await?,
            token,
        })
    }

    pub async fn users(&self) -> Result<Vec<UserInfo>, AccountError> {
        let mut out = Vec::new();
        for user in api_users::Entity::find()
            .order_by_asc(api_users::Column::Name)
            .all(&self.db)
            .await?
        {
            out.push(self.user_info(user).await?);
        }
        Ok(out)
    }

    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<UserInfo, AccountError> {
        let user = self.user(name).await?;
        let mut row: api_users::ActiveModel = user.into();
        row.status = Set(if enabled { USER_ENABLED } else { USER_DISABLED }.to_owned());
        row.updated_at = Set(now());
        let user = row.update(&self.db).await?;
        self.user_info(user).await
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), AccountError> {
        self.user(name).await?.delete(&self.db).await?;
        Ok(())
    }

    /// Issues a new token; the old one stops working at once.
    pub async fn rotate_token(&self, name: &str) -> Result<IssuedToken, AccountError> {
        let user = self.user(name).await?;
        let token = new_token();
        let mut row: api_users::ActiveModel = user.into();
        row.token_sha256 = Set(token_digest(&token));
        row.updated_at = Set(now());
        let user = row.update(&self.db).await?;
        Ok(IssuedToken {
            user: self.user_info(user).await?,
            token,
        })
    }
}

/// Grows a role's version before its permissions change, locking the role: a write in flight that was
/// authorised by it holds it `FOR SHARE` (`service::auth::vouch`), so the change waits for that write to end, and
/// a write that checks later sees the new version and is refused. A revoke that returned has no write of the old
/// grant left to commit.
async fn bump_version(txn: &impl ConnectionTrait, role: i64) -> Result<(), DbErr> {
    roles::Entity::update_many()
        .col_expr(
            roles::Column::Version,
            Expr::col(roles::Column::Version).add(1),
        )
        .filter(roles::Column::Id.eq(role))
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_alphanumerics() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), TOKEN_LENGTH);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(token_digest(&a).len(), 64);
        assert_ne!(token_digest(&a), a);
    }

    #[test]
    fn user_names_cannot_break_the_user_token_syntax() {
        for bad in ["", "a:b", "a b", "tab\t", &"x".repeat(101)] {
            assert!(validate_name("user", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("user", "bot-1.example").is_ok());
    }
}
