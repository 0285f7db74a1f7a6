//! Lake-sink failures and how AWS SDK errors are classified.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Whether retrying the same batch later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts, connection trouble, Firehose entries still failing after
    /// the retries: hand the batch back (batchItemFailures), it is safe to redo.
    Transient,
    /// Missing bucket/stream, access denied, a value that cannot be encoded: retrying the
    /// same request cannot succeed; the invocation fails (Lambda bisects, then gives the
    /// batch to the on-failure destination).
    Permanent,
}

/// A lake write that did not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} {target}: {message} ({kind:?}, code {code})")]
pub struct LakeError {
    pub kind: ErrorKind,
    /// `PutObject`, `PutRecordBatch` or `encode`.
    pub operation: &'static str,
    /// `s3://bucket/key` or the delivery stream name.
    pub target: String,
    /// Service error code, `timeout`, `dispatch`, `http-503`, …
    pub code: String,
    pub message: String,
}

impl LakeError {
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

/// Error codes that mean "slow down" or "try again" on S3 and Firehose.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "OperationAborted",
];

/// `(kind, code, message)` of an SDK error.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> (ErrorKind, String, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || aws_sdk_s3::error::DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_owned);
            let kind = match code.as_deref() {
                Some(c) if TRANSIENT_CODES.contains(&c) => ErrorKind::Transient,
                _ if status == 429 || status >= 500 => ErrorKind::Transient,
                _ => ErrorKind::Permanent,
            };
            let message = se.err().message().map_or_else(detail, str::to_owned);
            (
                kind,
                code.unwrap_or_else(|| format!("http-{status}")),
                message,
            )
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "timeout".into(), detail()),
        SdkError::DispatchFailure(_) => (ErrorKind::Transient, "dispatch".into(), detail()),
        // A response that could not be read: the connection broke mid-way.
        SdkError::ResponseError(r) => (
            ErrorKind::Transient,
            format!("http-{}", r.raw().status().as_u16()),
            detail(),
        ),
        // ConstructionFailure (a local bug) and anything newer.
        _ => (ErrorKind::Permanent, "construction".into(), detail()),
    }
}
