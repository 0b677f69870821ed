//! SeaORM entities. Only the service layer sees these.

pub mod list_tags;
pub mod lists;
pub mod settings;
