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
    /// The store could not be reached or failed. The message is for logs only, never for clients.
    #[error("store unavailable: {0}")]
    Unavailable(String),
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
    /// A store failed; the inner message is logged, never shown to clients.
    #[error("service unavailable: {0}")]
    Unavailable(String),
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
