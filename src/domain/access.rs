//! Who is calling and what they may do. Every permission decision is made here, so that API users and roles
//! (a later addition) change this module and not the handlers.

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The configured administrator: may do everything.
    Admin { username: String },
}

/// What a caller may want to do with lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read lists (`GET`).
    Get,
    /// Change or delete existing lists.
    Manage,
    /// Create new lists.
    Create,
}

impl Principal {
    /// Whether the caller holds `permission` on every list (or, for `Create`, may create lists).
    pub fn may(&self, permission: Permission) -> bool {
        match self {
            Principal::Admin { .. } => {
                let _ = permission;
                true
            }
        }
    }

    /// A name for logs.
    pub fn name(&self) -> &str {
        match self {
            Principal::Admin { username } => username,
        }
    }
}
