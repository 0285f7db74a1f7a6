//! AWS JSON 1.1 wire details: errors and timestamps.
//!
//! Errors are HTTP 400 (client) or 500 (server) with the code in both the
//! `x-amzn-ErrorType` header and the body's `__type`, and the text in `message`
//! (the Rust SDK and botocore read either).

use serde_json::{Value, json};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    /// Extra members the model requires on some errors (ResourceId, StatementId).
    pub extra: Vec<(&'static str, String)>,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub fn not_found(id: &str) -> Self {
        let mut e = Self::new(
            "ResourceNotFoundException",
            format!("Query does not exist: {id}"),
        );
        e.extra.push(("ResourceId", id.to_string()));
        e
    }

    pub fn active_statements(limit: usize) -> Self {
        Self::new(
            "ActiveStatementsExceededException",
            format!("Active statements exceeded the allowed quota ({limit})."),
        )
    }

    /// What the service answers when it throttles a caller (fault injection).
    pub fn throttling() -> Self {
        Self::new("ThrottlingException", "Rate exceeded")
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            "UnknownOperationException",
            format!("Unknown operation {op}"),
        )
    }

    pub fn status(&self) -> u16 {
        match self.code {
            "InternalServerException"
            | "ExecuteStatementException"
            | "BatchExecuteStatementException" => 500,
            _ => 400,
        }
    }

    pub fn body(&self) -> Value {
        let mut v = json!({ "__type": self.code, "message": self.message });
        if let Value::Object(m) = &mut v {
            for (k, val) in &self.extra {
                m.insert((*k).to_string(), Value::String(val.clone()));
            }
        }
        v
    }
}

/// JSON 1.1 timestamps are epoch seconds (fractional allowed).
pub fn epoch_seconds(t: chrono::DateTime<chrono::Utc>) -> Value {
    let millis = t.timestamp_millis();
    json!(millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_carries_type_message_and_extras() {
        let e = ApiError::not_found("abc");
        assert_eq!(e.status(), 400);
        let b = e.body();
        assert_eq!(b["__type"], "ResourceNotFoundException");
        assert_eq!(b["ResourceId"], "abc");
        assert!(b["message"].as_str().unwrap().contains("abc"));
        assert_eq!(ApiError::new("InternalServerException", "x").status(), 500);
    }

    #[test]
    fn throttling_has_the_aws_json_shape() {
        let e = ApiError::throttling();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.body(),
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"})
        );
    }

    #[test]
    fn timestamps_are_epoch_seconds() {
        let t = chrono::DateTime::from_timestamp_millis(1_700_000_000_250).unwrap();
        assert_eq!(epoch_seconds(t), json!(1_700_000_000.25));
    }
}
