//! Roster's rules about lists, free of any web or database framework.

mod access;
mod list;

pub use access::{Access, Grants, ListPermission, Principal, Scope, UserPermission};
pub use list::*;
