//! Errors of the domain. `DomainError` is the one error a use case returns; the HTTP layer maps
//! each variant to a status code without looking inside the store's messages.

/// Input that does not satisfy a domain rule. `field` names the request field at fault
/// (dotted path for nested fields, e.g. `lines.0.quantity`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A store that failed: what failed and, when a driver error caused it, that error with its own
/// chain (`source`). For logs only, never for clients: it may name hosts, users and statements.
/// Displays as `what`; the HTTP boundary logs the whole chain.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct StoreFailure {
    what: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreFailure {
    /// A failure found by the adapter itself (a reply it cannot read, a row that breaks a rule).
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), source: None }
    }
    /// A failure caused by `source` (the driver's error), kept with its chain.
    pub fn caused_by(what: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { what: what.into(), source: Some(source.into()) }
    }
    pub fn what(&self) -> &str {
        &self.what
    }
}

impl From<String> for StoreFailure {
    fn from(what: String) -> Self {
        Self::new(what)
    }
}

impl From<&str> for StoreFailure {
    fn from(what: &str) -> Self {
        Self::new(what)
    }
}

/// What a repository (port) may fail with. Adapters translate their driver errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (e.g. the email of another user). `field` names the request field.
    #[error("conflict on {field}")]
    Conflict { field: String },
    /// The store refused a change that would break a limit it enforces atomically
    /// (e.g. a cart quantity above the maximum). Reported to the client as a validation failure.
    #[error("{field}: {message}")]
    Rejected { field: String, message: String },
    /// The store could not be reached or failed; for logs only, never for clients.
    #[error(transparent)]
    Unavailable(StoreFailure),
}

/// The error of every use case.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The request conflicts with the current state (duplicate email, empty cart, bad transition).
    #[error("{message}")]
    Conflict { code: &'static str, message: String, field: Option<String> },
    /// No credentials were given for a route that needs them.
    #[error("authentication required")]
    Unauthenticated,
    /// Credentials were given but do not grant this action.
    #[error("not allowed")]
    Forbidden,
    /// A store failed; the failure (with its source chain) is logged, never shown to clients.
    #[error(transparent)]
    Unavailable(StoreFailure),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field } => DomainError::Conflict {
                code: "conflict",
                message: format!("{field} is already taken"),
                field: Some(field),
            },
            StoreError::Rejected { field, message } => ValidationError::new(field, message).into(),
            StoreError::Unavailable(m) => DomainError::Unavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_store_failure_keeps_the_drivers_error_and_its_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = DomainError::from(StoreError::Unavailable(StoreFailure::caused_by("127.0.0.1:5432: connect", io)));
        assert_eq!(e.to_string(), "127.0.0.1:5432: connect");
        let source = e.source().expect("the driver's error is kept");
        assert_eq!(source.to_string(), "connection refused");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        let plain = StoreError::Unavailable("a reply it cannot read".into());
        assert!(plain.source().is_none());
    }
}
