//! The one JSON error shape every keysync endpoint answers with.
//!
//! ```json
//! {"error":{"code":"snake_case_code","message":"human sentence","details":{}}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code`, a sentence for people, and structured
/// `details` (for example the offending field of a validation error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Map<String, Value>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                details: Map::new(),
            },
        }
    }

    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.error.details.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_serializes_to_the_documented_shape() {
        let body = ErrorBody::new("not_found", "No such license key.").with_detail("id", 7);

        let json = serde_json::to_value(&body).unwrap();

        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "not_found", "message": "No such license key.", "details": {"id": 7}}})
        );
    }

    #[test]
    fn error_body_without_details_still_parses() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).unwrap();

        assert!(body.error.details.is_empty());
    }
}
