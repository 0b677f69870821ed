//! Who is calling and what they may do, following listmonk's model: a user role grants `lists:get_all` and/or
//! `lists:manage_all`; a list role grants `list:get` and/or `list:manage` on individual lists. Every permission
//! decision is made here.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A permission a user role can grant, over every list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserPermission {
    /// Read every list.
    ListsGetAll,
    /// Create lists, and change or delete every list.
    ListsManageAll,
    /// Read every subscriber.
    SubscribersGetAll,
    /// Read the subscribers on lists the caller may read.
    SubscribersGet,
    /// Create, change, blocklist and delete the subscribers the caller may read; changing subscriptions also
    /// needs manage on each list concerned.
    SubscribersManage,
    /// Import subscribers from a CSV file (listmonk v4's `subscribers:import`): it creates subscribers and changes
    /// existing ones found by e-mail, so it is honoured only with `subscribers:get_all`, and needs manage on every
    /// list it subscribes to.
    SubscribersImport,
}

/// A permission a list role can grant on one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListPermission {
    /// Read the list.
    Get,
    /// Change or delete the list (does not imply reading it).
    Manage,
}

impl UserPermission {
    pub const ALL: [UserPermission; 6] = [
        UserPermission::ListsGetAll,
        UserPermission::ListsManageAll,
        UserPermission::SubscribersGetAll,
        UserPermission::SubscribersGet,
        UserPermission::SubscribersManage,
        UserPermission::SubscribersImport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserPermission::ListsGetAll => "lists:get_all",
            UserPermission::ListsManageAll => "lists:manage_all",
            UserPermission::SubscribersGetAll => "subscribers:get_all",
            UserPermission::SubscribersGet => "subscribers:get",
            UserPermission::SubscribersManage => "subscribers:manage",
            UserPermission::SubscribersImport => "subscribers:import",
        }
    }
}

impl ListPermission {
    pub const ALL: [ListPermission; 2] = [ListPermission::Get, ListPermission::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            ListPermission::Get => "list:get",
            ListPermission::Manage => "list:manage",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ident) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|p| p.as_str() == s)
                    .ok_or_else(|| format!("unknown permission `{s}`"))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
parse_by_name!(UserPermission);
parse_by_name!(ListPermission);

/// What an API user's roles grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub user: BTreeSet<UserPermission>,
    /// Lists the user may read.
    pub get: BTreeSet<i64>,
    /// Lists the user may change or delete.
    pub manage: BTreeSet<i64>,
}

/// A role and the version of its permissions that grants were read at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleAt {
    pub id: i64,
    pub version: i64,
}

/// What an API user's grants were read from: its credentials and its roles' versions. A write checks them again
/// in its own transaction, so a grant revoked (or a user disabled) while the write was in flight stops it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Basis {
    /// The digest of the token the user had (a rotation changes it).
    pub token_sha256: String,
    pub user_role: RoleAt,
    pub list_role: Option<RoleAt>,
}

/// The digest stays out of logs.
impl fmt::Debug for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Basis")
            .field("user_role", &self.user_role)
            .field("list_role", &self.list_role)
            .finish_non_exhaustive()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The configured administrator: may do everything.
    Admin { username: String },
    /// An API user, with the grants of its roles as they were when the request arrived.
    ApiUser {
        id: i64,
        name: String,
        grants: Grants,
        basis: Basis,
    },
}

/// Reading or changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Get,
    Manage,
}

/// The lists a caller may touch for one kind of access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(BTreeSet<i64>),
}

impl Scope {
    pub fn allows(&self, id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(ids) => ids.contains(&id),
        }
    }
}

/// The subscribers a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberScope {
    /// None at all.
    Nobody,
    /// Every subscriber (`subscribers:get_all`, or the admin).
    Everyone,
    /// Subscribers with a subscription (of any status) on one of these lists (`subscribers:get`).
    OnLists(Scope),
}

impl Principal {
    fn has(&self, permission: UserPermission) -> bool {
        match self {
            Principal::Admin { .. } => true,
            Principal::ApiUser { grants, .. } => grants.user.contains(&permission),
        }
    }

    /// Which subscribers this caller may read (and, with [`Principal::may_manage_subscribers`], change).
    pub fn subscriber_scope(&self) -> SubscriberScope {
        if self.has(UserPermission::SubscribersGetAll) {
            SubscriberScope::Everyone
        } else if self.has(UserPermission::SubscribersGet) {
            SubscriberScope::OnLists(self.scope(Access::Get))
        } else {
            SubscriberScope::Nobody
        }
    }

    /// `subscribers:manage`: writes to subscribers the caller may read.
    pub fn may_manage_subscribers(&self) -> bool {
        self.has(UserPermission::SubscribersManage)
    }

    /// `subscribers:import`: the import job.
    pub fn may_import_subscribers(&self) -> bool {
        self.has(UserPermission::SubscribersImport)
    }

    /// Whether this caller may manage every one of `lists` (`list:manage` on each, or `lists:manage_all`).
    pub fn may_manage_lists(&self, lists: &[i64]) -> bool {
        let scope = self.scope(Access::Manage);
        lists.iter().all(|id| scope.allows(*id))
    }

    /// A name for logs.
    pub fn name(&self) -> &str {
        match self {
            Principal::Admin { username } => username,
            Principal::ApiUser { name, .. } => name,
        }
    }

    /// Creating a list needs `lists:manage_all`.
    pub fn may_create(&self) -> bool {
        self.has(UserPermission::ListsManageAll)
    }

    /// The lists this caller may read (`Get`) or change and delete (`Manage`). `manage` does not imply `get`.
    pub fn scope(&self, access: Access) -> Scope {
        let Principal::ApiUser { grants, .. } = self else {
            return Scope::All;
        };
        let (all, some) = match access {
            Access::Get => (UserPermission::ListsGetAll, &grants.get),
            Access::Manage => (UserPermission::ListsManageAll, &grants.manage),
        };
        if grants.user.contains(&all) {
            Scope::All
        } else {
            Scope::Only(some.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(user: &[UserPermission], get: &[i64], manage: &[i64]) -> Principal {
        Principal::ApiUser {
            id: 1,
            name: "u".into(),
            grants: Grants {
                user: user.iter().copied().collect(),
                get: get.iter().copied().collect(),
                manage: manage.iter().copied().collect(),
            },
            basis: Basis::default(),
        }
    }

    #[test]
    fn the_admin_may_do_everything() {
        let admin = Principal::Admin {
            username: "admin".into(),
        };
        assert!(admin.may_create());
        assert_eq!(admin.scope(Access::Get), Scope::All);
        assert_eq!(admin.scope(Access::Manage), Scope::All);
    }

    #[test]
    fn all_permissions_cover_every_list() {
        let u = user(&[UserPermission::ListsGetAll], &[], &[3]);
        assert_eq!(u.scope(Access::Get), Scope::All);
        assert_eq!(u.scope(Access::Manage), Scope::Only([3].into()));
        assert!(!u.may_create());
        assert!(user(&[UserPermission::ListsManageAll], &[], &[]).may_create());
    }

    #[test]
    fn manage_does_not_imply_get() {
        let u = user(&[], &[1], &[2]);
        assert!(u.scope(Access::Get).allows(1));
        assert!(!u.scope(Access::Get).allows(2));
        assert!(u.scope(Access::Manage).allows(2));
        assert!(!u.scope(Access::Manage).allows(1));
    }

    #[test]
    fn subscriber_permissions_follow_listmonk() {
        assert_eq!(
            user(&[], &[1], &[1]).subscriber_scope(),
            SubscriberScope::Nobody
        );
        assert_eq!(
            user(&[UserPermission::SubscribersGet], &[1], &[2]).subscriber_scope(),
            SubscriberScope::OnLists(Scope::Only([1].into()))
        );
        assert_eq!(
            user(&[UserPermission::SubscribersGetAll], &[], &[]).subscriber_scope(),
            SubscriberScope::Everyone
        );
        assert!(!user(&[UserPermission::SubscribersGetAll], &[], &[]).may_manage_subscribers());
        assert!(user(&[UserPermission::SubscribersManage], &[], &[]).may_manage_subscribers());
    }

    #[test]
    fn permission_names_round_trip() {
        for p in UserPermission::ALL {
            assert_eq!(p.as_str().parse::<UserPermission>().unwrap(), p);
        }
        for p in ListPermission::ALL {
            assert_eq!(p.as_str().parse::<ListPermission>().unwrap(), p);
        }
        assert!("lists:delete".parse::<UserPermission>().is_err());
    }
}
