//! The one error shape every function answers with:
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`.

use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// An error meant for the caller: an HTTP status, a stable machine-readable code, a sentence
/// for humans and optional structured details (for example every invalid field).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
    pub details: Map<String, Value>,
    /// Seconds the caller should wait before retrying (429 and 503 send `Retry-After`).
    pub retry_after: Option<u64>,
    /// What went wrong, for the log only: never sent to the caller.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: Map::new(), retry_after: None, cause: None }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    pub fn upstream(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(502, code, message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, code, message)
    }
    /// For failures the caller cannot act on: the message stays generic, the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(500, "internal", "An unexpected error occurred; it has been logged.")
    }

    pub fn because(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn body(&self) -> Value {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            details: &'a Map<String, Value>,
        }
        serde_json::json!({ "error": Inner { code: &self.code, message: &self.message, details: &self.details } })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_code_message_and_details_under_error() {
        let error = ApiError::conflict("slot_taken", "That slot is taken.").with_detail("expert_id", "e1");
        assert_eq!(
            error.body(),
            serde_json::json!({"error": {"code": "slot_taken", "message": "That slot is taken.", "details": {"expert_id": "e1"}}})
        );
    }

    #[test]
    fn an_error_without_details_still_has_an_empty_details_object() {
        assert_eq!(ApiError::not_found("No such session.").body()["error"]["details"], serde_json::json!({}));
    }
}
