//! Transport-neutral request/response types and the API's error shape.
//!
//! The handlers work on [`ApiRequest`]/[`ApiResponse`] so they are tested without
//! lambda_http; `lambda.rs` converts to and from API Gateway proxy events.

use serde_json::{Value, json};

/// What a handler needs from an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Path without the API Gateway stage, e.g. `/v1/fleet/miles`.
    pub path: String,
    /// Decoded query parameters in order; a repeated key appears once per value.
    pub query: Vec<(String, String)>,
    /// The Lambda request id (echoed in 500 answers, present in every log line).
    pub request_id: String,
}

impl ApiRequest {
    /// A GET request (tests and tools).
    pub fn get(path: &str, query: &[(&str, &str)]) -> Self {
        Self {
            method: "GET".to_owned(),
            path: path.to_owned(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            request_id: "test-request".to_owned(),
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";
pub const YAML: &str = "application/yaml";

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: JSON,
            // Speed-layer answers change with every committed batch.
            headers: vec![("cache-control", "no-store".to_owned())],
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type,
            headers: vec![("cache-control", "no-cache".to_owned())],
            body: body.to_owned(),
        }
    }

    /// The JSON error document; 500s carry the request id (details stay in the logs).
    pub fn error(err: &ApiError, request_id: &str) -> Self {
        let mut error = json!({"code": err.code, "message": err.message});
        if err.status >= 500 {
            error["request_id"] = Value::String(request_id.to_owned());
        }
        let mut resp = Self::json(err.status, &json!({ "error": error }));
        if err.status == 405 {
            resp.headers.push(("allow", "GET".to_owned()));
        }
        resp
    }

    /// The body parsed as JSON (tests).
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// An answer other than 200: status, stable machine-readable code, human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// Error codes (the OpenAPI spec lists the same set).
pub mod codes {
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNKNOWN_PARAMETER: &str = "unknown_parameter";
    pub const DUPLICATE_PARAMETER: &str = "duplicate_parameter";
    pub const MISSING_PARAMETER: &str = "missing_parameter";
    pub const INVALID_YEAR: &str = "invalid_year";
    pub const INVALID_VIN: &str = "invalid_vin";
    pub const INVALID_DATE: &str = "invalid_date";
    pub const INVALID_RANGE: &str = "invalid_range";
    pub const RANGE_TOO_LONG: &str = "range_too_long";
    pub const INVALID_LIMIT: &str = "invalid_limit";
    pub const INVALID_NEXT_TOKEN: &str = "invalid_next_token";
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const INTERNAL: &str = "internal";
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: 404,
            code: codes::NOT_FOUND,
            message: format!("no resource at {}", shown(path)),
        }
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self {
            status: 405,
            code: codes::METHOD_NOT_ALLOWED,
            message: format!("method {} is not allowed here; use GET", shown(method)),
        }
    }

    pub fn internal() -> Self {
        Self {
            status: 500,
            code: codes::INTERNAL,
            message: "internal error; quote the request id when reporting it".to_owned(),
        }
    }
}

/// A user-supplied value for an error message: at most 40 characters, Debug-quoted so
/// control characters are escaped.
pub fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() > MAX {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{value:?}")
    }
}
