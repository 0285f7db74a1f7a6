//! How AWS SDK errors become lake-sink failures (`LakeError`, defined with the port).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

pub(crate) use fleetline_core::ports::lake::{ErrorKind, LakeError};

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
