//! Roster's rules about lists, free of any web or database framework.

mod access;
mod list;

pub use access::{Permission, Principal};
pub use list::*;
