//! Turning an `Authorization` header into a [`Principal`]. API users are read from the database on every request,
//! so disabling or deleting one takes effect at once, on every instance.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use subtle::ConstantTimeEq;

use super::ServiceError;
use super::accounts::{USER_ENABLED, token_digest};
use super::credentials::AdminCredentials;
use crate::domain::{Grants, Principal};
use crate::entity::{api_users, list_permissions, role_permissions};

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
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let (user, secret, basic) = match parse(header.ok_or(AuthError::Missing)?)? {
            Presented::Basic { user, secret } => (user, secret, true),
            Presented::Token { user, secret } => (user, secret, false),
        };
        if self.admin.verify(&user, &secret) && basic {
            return Ok(Principal::Admin { username: user });
        }
        self.api_user(&user, &secret).await
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
        Ok(Principal::ApiUser {
            id: user.id,
            name: user.name,
            grants: self.grants(user.user_role_id, user.list_role_id).await?,
        })
    }

    async fn grants(&self, user_role: i64, list_role: Option<i64>) -> Result<Grants, ServiceError> {
        let mut grants = Grants::default();
        let permissions: Vec<String> = role_permissions::Entity::find()
            .select_only()
            .column(role_permissions::Column::Permission)
            .filter(role_permissions::Column::RoleId.eq(user_role))
            .into_tuple()
            .all(&self.db)
            .await?;
        // Unknown names (from a newer Roster sharing the database) grant nothing.
        grants.user = permissions.iter().filter_map(|p| p.parse().ok()).collect();
        if let Some(list_role) = list_role {
            let entries: Vec<(i64, String)> = list_permissions::Entity::find()
                .select_only()
                .column(list_permissions::Column::ListId)
                .column(list_permissions::Column::Permission)
                .filter(list_permissions::Column::RoleId.eq(list_role))
                .into_tuple()
                .all(&self.db)
                .await?;
            for (list_id, permission) in entries {
                match permission.parse() {
                    Ok(crate::domain::ListPermission::Get) => grants.get.insert(list_id),
                    Ok(crate::domain::ListPermission::Manage) => grants.manage.insert(list_id),
                    Err(_) => false,
                };
            }
        }
        Ok(grants)
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
