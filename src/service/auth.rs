//! Turning an `Authorization` header into a [`Principal`]. API users are read from the database on every request,
//! so disabling or deleting one takes effect at once, on every instance.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, IntoIden, LockType, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ServiceError;
use super::accounts::{USER_ENABLED, token_digest};
use super::credentials::AdminCredentials;
use super::sql::is_postgres;
use crate::domain::{Basis, Grants, ListPermission, Principal, RoleAt};
use crate::entity::{api_users, list_permissions, role_permissions, roles};

/// Why a request is not authenticated. Every variant is answered 403 (or 503/500 for `Service`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// Unknown user, wrong token or password, disabled user: deliberately indistinguishable.
    #[error("invalid credentials")]
    Invalid,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Credentials as presented.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Basic { user: String, secret: String },
    Token { user: String, secret: String },
}

fn split_credentials(text: &str) -> Result<(String, String), AuthError> {
    let (user, secret) = text
        .split_once(':')
        .ok_or(AuthError::Malformed("expected `user:secret`"))?;
    if user.is_empty() || secret.is_empty() {
        return Err(AuthError::Malformed("empty user or secret"));
    }
    Ok((user.to_owned(), secret.to_owned()))
}

fn parse(header: &str) -> Result<Presented, AuthError> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest.trim())
            .map_err(|_| AuthError::Malformed("invalid base64 in Basic credentials"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8"))?;
        let (user, secret) = split_credentials(&text)?;
        Ok(Presented::Basic { user, secret })
    } else if let Some(rest) = header.strip_prefix("token") {
        // listmonk's format: `token api_user:token`, the space being optional.
        let (user, secret) = split_credentials(rest.trim())?;
        Ok(Presented::Token { user, secret })
    } else {
        Err(AuthError::Malformed(
            "use `Basic` or `token api_user:token`",
        ))
    }
}

/// An `Authorization` header's credentials, parsed once per request: what [`Authenticator::authenticate`]
/// checks, and what [`Credentials::digest`] identifies.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials(Presented);

impl Credentials {
    /// The credentials a header presents, or why it presents none.
    pub fn parse(header: &str) -> Result<Self, AuthError> {
        parse(header).map(Self)
    }

    /// SHA-256 of the scheme, user and secret: the same credentials however the header spells them (spaces, the
    /// `token` prefix's), and nothing of the secret in the clear.
    pub fn digest(&self) -> [u8; 32] {
        let (scheme, user, secret) = match &self.0 {
            Presented::Basic { user, secret } => ("basic", user, secret),
            Presented::Token { user, secret } => ("token", user, secret),
        };
        let mut digest = Sha256::new();
        for part in [scheme, user, secret] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        digest.finalize().into()
    }
}

/// Authenticates requests: the configured admin (BasicAuth) and API users (BasicAuth or `token` header).
#[derive(Clone)]
pub struct Authenticator {
    admin: AdminCredentials,
    db: DatabaseConnection,
}

impl Authenticator {
    pub fn new(admin: AdminCredentials, db: DatabaseConnection) -> Self {
        Self { admin, db }
    }

    /// Every refusal costs the same, one lookup and the same hashing, whatever the name presented: the admin's
    /// name must not answer faster than any other (that would tell a guesser which name to guess for). Only the
    /// admin's correct password skips the lookup.
    pub async fn authenticate(&self, credentials: &Credentials) -> Result<Principal, AuthError> {
        let (user, secret, basic) = match &credentials.0 {
            Presented::Basic { user, secret } => (user, secret, true),
            Presented::Token { user, secret } => (user, secret, false),
        };
        if self.admin.verify(user, secret) && basic {
            return Ok(Principal::Admin {
                username: user.clone(),
            });
        }
        self.api_user(user, secret).await
    }

    async fn api_user(&self, name: &str, token: &str) -> Result<Principal, AuthError> {
        let found = api_users::Entity::find()
            .filter(api_users::Column::Name.eq(name))
            .filter(api_users::Column::Status.eq(USER_ENABLED))
            .one(&self.db)
            .await
            .map_err(ServiceError::from)?;
        let presented = token_digest(token);
        // Compare against something even when the user is unknown, so timing does not tell who exists.
        let stored = found
            .as_ref()
            .map_or_else(|| "0".repeat(64), |u| u.token_sha256.clone());
        let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
        let user = match found {
            Some(user) if matches => user,
            _ => return Err(AuthError::Invalid),
        };
        let (grants, basis) = grants_of(&self.db, &user)
            .await?
            .ok_or(AuthError::Invalid)?;
        Ok(Principal::ApiUser {
            id: user.id,
            name: user.name,
            grants,
            basis,
        })
    }
}

/// The grants of `user`'s roles, with the versions they were read at; `None` when a role no longer exists. Each
/// role's version is read in the same statement as its permissions, so a change committing in between makes the
/// version read older than the permissions, never newer: a write then finds it changed (`vouch`) and stops.
async fn grants_of(
    db: &impl ConnectionTrait,
    user: &api_users::Model,
) -> Result<Option<(Grants, Basis)>, ServiceError> {
    let mut grants = Grants::default();
    let Some((user_role, permissions)) = role_entries(db, user.user_role_id, Kept::User).await?
    else {
        return Ok(None);
    };
    // Unknown names (from a newer Roster sharing the database) grant nothing.
    grants.user = permissions
        .iter()
        .filter_map(|(_, p)| p.parse().ok())
        .collect();
    let list_role = match user.list_role_id {
        None => None,
        Some(role) => {
            let Some((list_role, entries)) = role_entries(db, role, Kept::List).await? else {
                return Ok(None);
            };
            for (list_id, permission) in entries {
                match permission.parse() {
                    Ok(ListPermission::Get) => grants.get.insert(list_id),
                    Ok(ListPermission::Manage) => grants.manage.insert(list_id),
                    Err(_) => false,
                };
            }
            Some(list_role)
        }
    };
    let basis = Basis {
        token_sha256: user.token_sha256.clone(),
        user_role,
        list_role,
    };
    Ok(Some((grants, basis)))
}

/// Where a role's permissions are kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// `role_permissions`: over every list.
    User,
    /// `list_permissions`: per list.
    List,
}

/// A role's version and its permission rows (`(list id, permission)`; the list id is 0 for a user role's), in one
/// statement; `None` when the role does not exist.
async fn role_entries(
    db: &impl ConnectionTrait,
    role: i64,
    kept: Kept,
) -> Result<Option<(RoleAt, Vec<(i64, String)>)>, ServiceError> {
    let (table, list_id) = match kept {
        Kept::User => (role_permissions::Entity.into_iden(), Expr::val(0i64)),
        Kept::List => (
            list_permissions::Entity.into_iden(),
            Expr::col((list_permissions::Entity, list_permissions::Column::ListId)),
        ),
    };
    let select = Query::select()
        .column((roles::Entity, roles::Column::Version))
        .expr_as(list_id, Alias::new("list_id"))
        .column((table.clone(), Alias::new("permission")))
        .from(roles::Entity)
        .left_join(
            table.clone(),
            Expr::col((table, Alias::new("role_id"))).equals((roles::Entity, roles::Column::Id)),
        )
        .and_where(Expr::col((roles::Entity, roles::Column::Id)).eq(role))
        .to_owned();
    let rows = db.query_all(&select).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let version: i64 = first.try_get("", "version")?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let permission: Option<String> = row.try_get("", "permission")?;
        if let Some(permission) = permission {
            entries.push((row.try_get("", "list_id")?, permission));
        }
    }
    Ok(Some((RoleAt { id: role, version }, entries)))
}

/// In a write's transaction, before it locks anything else (`service::locks`): checks that an API user's
/// credentials and roles are still what its grants were read from, holding them `FOR SHARE` until the write
/// ends. A revoke, disable, rotation or role change then either committed before (and the write is refused with
/// `GrantsChanged`, to be sent again and checked against the new grants) or waits for this write to end. The
/// admin's credentials are configuration, not data: nothing to check.
pub(crate) async fn vouch(txn: &impl ConnectionTrait, who: &Principal) -> Result<(), ServiceError> {
    let Principal::ApiUser { id, basis, .. } = who else {
        return Ok(());
    };
    let user = |c: api_users::Column| (api_users::Entity, c);
    let mut select = Query::select()
        .column(user(api_users::Column::Status))
        .column(user(api_users::Column::TokenSha256))
        .column(user(api_users::Column::UserRoleId))
        .column(user(api_users::Column::ListRoleId))
        .column((roles::Entity, roles::Column::Id))
        .column((roles::Entity, roles::Column::Version))
        .from(api_users::Entity)
        .inner_join(
            roles::Entity,
            Condition::any()
                .add(
                    Expr::col((roles::Entity, roles::Column::Id))
                        .equals(user(api_users::Column::UserRoleId)),
                )
                .add(
                    Expr::col((roles::Entity, roles::Column::Id))
                        .equals(user(api_users::Column::ListRoleId)),
                ),
        )
        .and_where(Expr::col(user(api_users::Column::Id)).eq(*id))
        .order_by((roles::Entity, roles::Column::Id), Order::Asc)
        .to_owned();
    if is_postgres(txn) {
        select.lock(LockType::Share);
    }
    let mut roles_now = Vec::new();
    let mut holds = true;
    for row in txn.query_all(&select).await? {
        let status: String = row.try_get("", "status")?;
        let token: String = row.try_get("", "token_sha256")?;
        let user_role: i64 = row.try_get("", "user_role_id")?;
        let list_role: Option<i64> = row.try_get("", "list_role_id")?;
        holds &= status == USER_ENABLED
            && token == basis.token_sha256
            && user_role == basis.user_role.id
            && list_role == basis.list_role.map(|r| r.id);
        roles_now.push(RoleAt {
            id: row.try_get("", "id")?,
            version: row.try_get("", "version")?,
        });
    }
    let mut roles_then: Vec<RoleAt> = [Some(basis.user_role), basis.list_role]
        .into_iter()
        .flatten()
        .collect();
    roles_then.sort_by_key(|r| r.id);
    roles_then.dedup();
    if holds && roles_now == roles_then {
        Ok(())
    } else {
        Err(ServiceError::GrantsChanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> String {
        format!("Basic {}", STANDARD.encode(text))
    }

    #[test]
    fn basic_and_token_headers_are_understood() {
        assert_eq!(
            parse(&basic("bot:abc:def")).unwrap(),
            Presented::Basic {
                user: "bot".into(),
                secret: "abc:def".into()
            }
        );
        assert_eq!(
            parse("token bot:xyz").unwrap(),
            Presented::Token {
                user: "bot".into(),
                secret: "xyz".into()
            }
        );
        assert_eq!(
            parse("tokenbot:xyz").unwrap(),
            Presented::Token {
                user: "bot".into(),
                secret: "xyz".into()
            }
        );
    }

    #[test]
    fn one_credential_has_one_digest_however_its_header_is_spelled() {
        let digest = |h: &str| Credentials::parse(h).unwrap().digest();
        assert_eq!(digest("token bot:xyz"), digest("token   bot:xyz"));
        assert_eq!(digest("token bot:xyz"), digest("tokenbot:xyz"));
        assert_eq!(
            digest(&basic("bot:xyz")),
            digest(&format!("  {}  ", basic("bot:xyz")))
        );
        assert_ne!(
            digest("token bot:xyz"),
            digest(&basic("bot:xyz")),
            "the scheme counts"
        );
        assert_ne!(digest("token bot:xyz"), digest("token bot:xyZ"));
        assert_ne!(digest("token bo:txyz"), digest("token bot:xyz"));
        assert!(Credentials::parse("Bearer x").is_err());
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for header in [
            "Bearer abc",
            "Basic !!!",
            &basic("no-colon"),
            &basic(":secret"),
            &basic("user:"),
            "token",
            "token user",
            "Token bot:xyz",
            "",
        ] {
            assert!(
                matches!(parse(header), Err(AuthError::Malformed(_))),
                "{header}"
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_header_is_credentials_or_malformed(header in ".{0,80}", encoded in "[A-Za-z0-9+/=:]{0,40}") {
                for header in [header, format!("Basic {encoded}"), format!("token {encoded}")] {
                    match parse(&header) {
                        Ok(Presented::Basic { user, secret } | Presented::Token { user, secret }) => {
                            prop_assert!(!user.is_empty() && !secret.is_empty());
                        }
                        Err(err) => prop_assert!(matches!(err, AuthError::Malformed(_))),
                    }
                }
            }
        }
    }
}
