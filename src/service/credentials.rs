//! The administrator's credentials. The password is never stored in clear: a configured one is hashed in memory,
//! a generated one is hashed into the `settings` table so that every instance on the database shares it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ServiceError;
use crate::entity::settings;

const ADMIN_PASSWORD_KEY: &str = "admin_password_sha256";

/// The admin's username and a salted SHA-256 of the password.
///
/// SHA-256 rather than a slow password hash: a generated password carries 192 bits of entropy, so a fast hash
/// loses nothing, and every request can be checked in microseconds. A password chosen by the operator is never
/// persisted; only its in-memory hash is kept.
#[derive(Clone)]
pub struct AdminCredentials {
    username: String,
    salt: [u8; 16],
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The outcome of loading the admin credentials at start-up.
pub struct Bootstrap {
    pub credentials: AdminCredentials,
    /// Set only on the start that generated the password: the one chance to show it.
    pub generated_password: Option<String>,
}

fn digest(salt: &[u8], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

impl AdminCredentials {
    fn from_password(username: &str, password: &str) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self {
            username: username.to_owned(),
            digest: digest(&salt, password),
            salt,
        }
    }

    fn encode(&self) -> String {
        format!("{}${}", hex::encode(self.salt), hex::encode(self.digest))
    }

    fn decode(username: &str, stored: &str) -> Option<Self> {
        let (salt, digest) = stored.split_once('$')?;
        Some(Self {
            username: username.to_owned(),
            salt: hex::decode(salt).ok()?.try_into().ok()?,
            digest: hex::decode(digest).ok()?.try_into().ok()?,
        })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Constant-time check of a username and password.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let user_ok =
            Sha256::digest(username.as_bytes()).ct_eq(&Sha256::digest(self.username.as_bytes()));
        let password_ok = digest(&self.salt, password).ct_eq(&self.digest);
        (user_ok & password_ok).into()
    }

    /// Uses the configured password if there is one; otherwise the stored hash, generating and storing a new
    /// password on the very first start.
    pub async fn load(
        db: &DatabaseConnection,
        username: &str,
        configured_password: Option<&str>,
    ) -> Result<Bootstrap, ServiceError> {
        if let Some(password) = configured_password {
            return Ok(Bootstrap {
                credentials: Self::from_password(username, password),
                generated_password: None,
            });
        }
        let mut generated_password = None;
        if settings::Entity::find_by_id(ADMIN_PASSWORD_KEY)
            .one(db)
            .await?
            .is_none()
        {
            let mut secret = [0u8; 24];
            rand::rng().fill_bytes(&mut secret);
            let password = URL_SAFE_NO_PAD.encode(secret);
            let credentials = Self::from_password(username, &password);
            // Several instances may start at once: the first insert wins and the others read its hash.
            let inserted = settings::Entity::insert(settings::ActiveModel {
                key: Set(ADMIN_PASSWORD_KEY.to_owned()),
                value: Set(credentials.encode()),
            })
            .on_conflict(
                OnConflict::column(settings::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
            if inserted == 1 {
                generated_password = Some(password);
            }
        }
        let stored = settings::Entity::find_by_id(ADMIN_PASSWORD_KEY)
            .one(db)
            .await?
            .ok_or_else(|| {
                ServiceError::Database(sea_orm::DbErr::RecordNotFound(format!(
                    "setting `{ADMIN_PASSWORD_KEY}` vanished right after it was written"
                )))
            })?;
        let credentials = Self::decode(username, &stored.value).ok_or_else(|| {
            ServiceError::Database(sea_orm::DbErr::Custom(format!(
                "setting `{ADMIN_PASSWORD_KEY}` is malformed"
            )))
        })?;
        Ok(Bootstrap {
            credentials,
            generated_password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_exact_username_and_password() {
        let creds = AdminCredentials::from_password("admin", "s3cret");
        assert!(creds.verify("admin", "s3cret"));
        assert!(!creds.verify("admin", "s3cret "));
        assert!(!creds.verify("Admin", "s3cret"));
        assert!(!creds.verify("admin", ""));
    }

    #[test]
    fn survives_a_round_trip_through_storage() {
        let creds = AdminCredentials::from_password("admin", "pw");
        let back = AdminCredentials::decode("admin", &creds.encode()).unwrap();
        assert!(back.verify("admin", "pw"));
        assert!(AdminCredentials::decode("admin", "garbage").is_none());
    }

    #[test]
    fn debug_output_hides_the_hash() {
        let creds = AdminCredentials::from_password("admin", "pw");
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&hex::encode(creds.digest)));
    }
}
