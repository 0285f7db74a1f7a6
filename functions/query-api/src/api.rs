//! Transport-neutral request/response types and the API's error shape.
//!
//! The handlers work on [`ApiRequest`]/[`ApiResponse`] so they are tested without
//! lambda_http; `lambda.rs` converts to and from API Gateway proxy events.

use serde::Serialize;
use serde_json::Value;

use crate::lambda::UNBUILDABLE_RESPONSE_BODY;

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
    /// A JSON answer. Serializing the API's bodies cannot fail; if it ever did, the answer
    /// is the fixed 500 document, never an empty 200.
    pub fn json<T: Serialize>(status: u16, body: &T) -> Self {
        let (status, body) = match serde_json::to_string(body) {
            Ok(body) => (status, body),
            Err(err) => {
                tracing::error!(error = %err, status, "response body could not be serialized");
                (500, UNBUILDABLE_RESPONSE_BODY.to_owned())
            }
        };
        Self {
            status,
            content_type: JSON,
            // Speed-layer answers change with every committed batch.
            headers: vec![("cache-control", "no-store".to_owned())],
            body,
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: err.code,
                message: &err.message,
                request_id: (err.status >= 500).then_some(request_id),
            },
        };
        let mut resp = Self::json(err.status, &body);
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

/// `{"error": {"code", "message", "request_id"?}}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// An answer other than 200: status, stable machine-readable code, human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {message}", code.as_str())]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
}

/// Error codes (the OpenAPI spec lists the same set, in snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    UnknownParameter,
    DuplicateParameter,
    MissingParameter,
    InvalidYear,
    InvalidVin,
    InvalidDate,
    InvalidRange,
    RangeTooLong,
    InvalidLimit,
    InvalidNextToken,
    NotFound,
    MethodNotAllowed,
    Internal,
}

impl ErrorCode {
    /// The code as the API writes it, e.g. `invalid_year`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownParameter => "unknown_parameter",
            Self::DuplicateParameter => "duplicate_parameter",
            Self::MissingParameter => "missing_parameter",
            Self::InvalidYear => "invalid_year",
            Self::InvalidVin => "invalid_vin",
            Self::InvalidDate => "invalid_date",
            Self::InvalidRange => "invalid_range",
            Self::RangeTooLong => "range_too_long",
            Self::InvalidLimit => "invalid_limit",
            Self::InvalidNextToken => "invalid_next_token",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl ApiError {
    fn new(status: u16, code: ErrorCode, message: String) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(400, code, message.into())
    }

    pub fn not_found(path: &str) -> Self {
        let message = format!("no resource at {}", shown(path));
        Self::new(404, ErrorCode::NotFound, message)
    }

    pub fn method_not_allowed(method: &str) -> Self {
        let message = format!("method {} is not allowed here; use GET", shown(method));
        Self::new(405, ErrorCode::MethodNotAllowed, message)
    }

    pub fn internal() -> Self {
        let message = "internal error; quote the request id when reporting it".to_owned();
        Self::new(500, ErrorCode::Internal, message)
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
