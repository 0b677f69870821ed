//! Roster's rules about lists and subscribers, free of any web or database framework.

/// An enum stored and sent as fixed strings.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }
    };
}

mod access;
mod cursor;
mod expression;
mod import;
mod list;
mod paging;
mod search;
mod subscriber;
mod validation;

pub use access::{
    Access, Basis, Grants, ListPermission, Principal, RoleAt, Scope, SubscriberScope,
    UserPermission,
};
pub use cursor::{CURSOR_MAX_CHARS, Cursor, SortKey, SortValue};
pub use expression::{
    ATTRIB_KEY_MAX_CHARS, ATTRIB_PATH_MAX_KEYS, AttribView, CompareOp, EXPRESSION_MAX_CHARS,
    EXPRESSION_MAX_DEPTH, EXPRESSION_MAX_TOKENS, Field, LikePart, Literal, Operand, Predicate,
    parse as parse_expression,
};
pub use import::*;
pub use list::*;
pub use paging::*;
pub use search::*;
pub use subscriber::*;
pub use validation::ValidationError;
