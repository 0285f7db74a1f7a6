//! Retrying individual Data API calls on throttling and transient errors.
//!
//! Why our own layer instead of the SDK's: the SDK's standard classifier does not treat
//! `ActiveStatementsExceededException` / `ActiveSessionsExceededException` (the Data API's
//! concurrency limits, the throttling we actually meet under load) as retryable, and a
//! second layer on top of the SDK's would multiply attempts (3 × N) and hide them from our
//! logs. So [`DataApiWarehouse`](super::DataApiWarehouse) turns the SDK's retries off for
//! its client and retries here, with one policy, full jitter and a log line per retry.
//! ExecuteStatement/BatchExecuteStatement retries reuse the same `ClientToken`, so a
//! request that reached the service before the connection failed is not run twice.

use std::future::Future;

use aws_sdk_redshiftdata::config::http::HttpResponse;
use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};

use super::error::{ApiErrorKind, WarehouseError};
use crate::backoff::Backoff;

/// Error codes that mean "too much at once; wait and try again".
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ActiveStatementsExceededException",
    "ActiveSessionsExceededException",
    "ActiveWaitingRequestsExceededException",
];

/// Error codes for transient service-side trouble.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "DatabaseConnectionException",
    "QueryTimeoutException",
];

/// The operation error types we call, with the code of their modeled variants: errors
/// built by hand (tests, or SDK paths that skip deserialization) carry no code in their
/// metadata, and the variant is the authoritative answer anyway.
pub(crate) trait OpError: ProvideErrorMetadata + std::error::Error + 'static {
    fn modeled_code(&self) -> Option<&'static str>;
}

macro_rules! modeled_codes {
    ($($ty:ty => [$($variant:ident),* $(,)?];)*) => {$(
        impl OpError for $ty {
            fn modeled_code(&self) -> Option<&'static str> {
                match self {
                    $(Self::$variant(_) => Some(stringify!($variant)),)*
                    _ => None,
                }
            }
        }
    )*};
}

modeled_codes! {
    aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementError => [
        ActiveSessionsExceededException, ActiveStatementsExceededException,
        ExecuteStatementException, InternalServerException, ResourceNotFoundException,
        ValidationException,
    ];
    aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementError => [
        ActiveSessionsExceededException, ActiveStatementsExceededException,
        BatchExecuteStatementException, InternalServerException, ResourceNotFoundException,
        ValidationException,
    ];
    aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementError => [
        ActiveWaitingRequestsExceededException, InternalServerException,
        ResourceNotFoundException, ValidationException,
    ];
    aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultError => [
        ActiveWaitingRequestsExceededException, InternalServerException,
        ResourceNotFoundException, ValidationException,
    ];
    aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementError => [
        DatabaseConnectionException, InternalServerException, QueryTimeoutException,
        ResourceNotFoundException, ValidationException,
    ];
}

/// A classified failure of one call attempt.
#[derive(Debug, Clone)]
pub(crate) struct CallFailure {
    pub kind: ApiErrorKind,
    pub code: String,
    pub message: String,
}

/// Classifies an SDK error by code, HTTP status and message.
pub(crate) fn classify<E: OpError>(err: &SdkError<E, HttpResponse>) -> CallFailure {
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se
                .err()
                .code()
                .or_else(|| se.err().modeled_code())
                .map(str::to_owned);
            let message = se
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| se.err().to_string());
            let kind = classify_service(code.as_deref(), status, &message);
            CallFailure {
                kind,
                code: code.unwrap_or_else(|| format!("http-{status}")),
                message,
            }
        }
        SdkError::TimeoutError(_) => CallFailure {
            kind: ApiErrorKind::Transient,
            code: "timeout".into(),
            message: detailed(err),
        },
        SdkError::DispatchFailure(_) => CallFailure {
            kind: ApiErrorKind::Transient,
            code: "dispatch".into(),
            message: detailed(err),
        },
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            let kind = if status == 429 {
                ApiErrorKind::Throttling
            } else {
                // Truncated or unparseable response: the connection died mid-way.
                ApiErrorKind::Transient
            };
            CallFailure {
                kind,
                code: format!("http-{status}"),
                message: detailed(err),
            }
        }
        // ConstructionFailure and anything newer: a local bug, not worth retrying.
        _ => CallFailure {
            kind: ApiErrorKind::Permanent,
            code: "construction".into(),
            message: detailed(err),
        },
    }
}

fn detailed<E: std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> String {
    aws_sdk_redshiftdata::error::DisplayErrorContext(err).to_string()
}

pub(crate) fn classify_service(code: Option<&str>, status: u16, message: &str) -> ApiErrorKind {
    if let Some(code) = code {
        if THROTTLING_CODES.contains(&code) {
            return ApiErrorKind::Throttling;
        }
        if TRANSIENT_CODES.contains(&code) {
            return ApiErrorKind::Transient;
        }
    }
    if status == 429 || message.contains("Rate exceeded") {
        return ApiErrorKind::Throttling;
    }
    if matches!(status, 500 | 502 | 503 | 504) {
        return ApiErrorKind::Transient;
    }
    ApiErrorKind::Permanent
}

/// Runs `call` until it succeeds, fails permanently, or `policy.max_attempts` is reached.
pub(crate) async fn with_retry<T, E, F, Fut>(
    policy: &Backoff,
    operation: &'static str,
    statement_id: Option<&str>,
    mut call: F,
) -> Result<T, WarehouseError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: OpError,
{
    let max_attempts = policy.attempts();
    let mut attempt = 1;
    loop {
        let failure = match call().await {
            Ok(v) => return Ok(v),
            Err(e) => classify(&e),
        };
        if failure.kind == ApiErrorKind::Permanent || attempt >= max_attempts {
            return Err(WarehouseError::Api {
                operation,
                statement_id: statement_id.map(str::to_owned),
                kind: failure.kind,
                code: failure.code,
                message: failure.message,
                attempts: attempt,
            });
        }
        let wait = policy.delay(attempt - 1);
        tracing::warn!(
            operation,
            statement_id,
            attempt,
            max_attempts,
            kind = ?failure.kind,
            code = %failure.code,
            message = %failure.message,
            wait_ms = wait.as_millis() as u64,
            "Data API call failed; retrying"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_are_classified() {
        use ApiErrorKind::*;
        assert_eq!(
            classify_service(Some("ThrottlingException"), 400, ""),
            Throttling
        );
        assert_eq!(
            classify_service(Some("ActiveStatementsExceededException"), 400, ""),
            Throttling
        );
        // Too many requests waiting (WaitTimeSeconds) on one statement: wait and ask again.
        assert_eq!(
            classify_service(Some("ActiveWaitingRequestsExceededException"), 400, ""),
            Throttling
        );
        assert_eq!(classify_service(None, 400, "Rate exceeded"), Throttling);
        assert_eq!(classify_service(None, 429, ""), Throttling);
        assert_eq!(classify_service(None, 503, ""), Transient);
        assert_eq!(
            classify_service(Some("InternalServerException"), 500, ""),
            Transient
        );
        assert_eq!(
            classify_service(Some("ValidationException"), 400, "bad"),
            Permanent
        );
        assert_eq!(
            classify_service(Some("ResourceNotFoundException"), 400, ""),
            Permanent
        );
    }
}
