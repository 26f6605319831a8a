//! Errors: [`ApiError`] is what a request fails with (rendered as a `metav1.Status`), [`Error`]
//! is what starting the simulation fails with.

use serde_json::{Value, json};

use crate::store::ResourceType;

/// A failed API request, as the API server reports it: an HTTP code, a `Status` reason and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `Status.details`, when the error names an object or has causes.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn with_object(mut self, r: &ResourceType, name: &str) -> ApiError {
        self.details = Some(json!({"name": name, "group": r.group, "kind": r.plural}));
        self
    }

    /// `Status.details.causes`, e.g. the field a validation rejected.
    pub fn with_causes(mut self, causes: Value) -> ApiError {
        let details = self.details.get_or_insert_with(|| json!({}));
        details["causes"] = causes;
        self
    }

    pub fn not_found(r: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(r)),
        )
        .with_object(r, name)
    }

    pub fn already_exists(r: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(r)),
        )
        .with_object(r, name)
    }

    /// The optimistic-concurrency conflict of a write with a stale `resourceVersion`.
    pub fn conflict(r: &ResourceType, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(r)
            ),
        )
        .with_object(r, name)
    }

    /// 422: the object is not valid; `field` names what is wrong.
    pub fn invalid(r: &ResourceType, name: &str, field: &str, why: &str) -> ApiError {
        ApiError::invalid_field(r, name, field, why, "FieldValueInvalid")
    }

    /// 422 for a value over a size limit, as kube-apiserver words it.
    pub fn too_long(r: &ResourceType, name: &str, field: &str, limit: usize) -> ApiError {
        let why = format!("Too long: may not be more than {limit} bytes");
        ApiError::invalid_field(r, name, field, &why, "FieldValueTooLong")
    }

    /// 422 Invalid naming the field, with the cause's reason (`FieldValueInvalid`, …).
    fn invalid_field(
        r: &ResourceType,
        name: &str,
        field: &str,
        why: &str,
        cause: &str,
    ) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {why}", r.kind),
        )
        .with_object(r, name)
        .with_causes(json!([{"reason": cause, "message": why, "field": field}]))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 410 for a `continue` token or watch `resourceVersion` older than the kept history.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The error as a `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `pods` for the core group, `deployments.apps` otherwise, as the server names resources in messages.
fn qualified(r: &ResourceType) -> String {
    if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

/// Why the simulation could not start or load its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid state: {0}")]
    InvalidState(String),
    #[error("invalid RBAC file: {0}")]
    InvalidRbac(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("upstream control plane: {0}")]
    Upstream(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: String,
        source: serde_json::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
