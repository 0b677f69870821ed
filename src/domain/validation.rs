//! The one error of the domain's rules.

/// Input that can be read but breaks a rule of the domain (answered with 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);
