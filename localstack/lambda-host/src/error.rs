//! Invocation results and host failures.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;

/// What the function itself answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// The runtime posted `/response`; the body is the function's JSON response.
    Ok(Bytes),
    /// The runtime posted `/error` (a handler error, or a panic that lambda_runtime caught).
    FunctionError {
        error_type: String,
        error_message: String,
    },
}

/// Failures of the execution environment rather than answers from the handler.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("function {function}: cannot start {}: {source}", binary.display())]
    Spawn {
        function: String,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("function {function}: cannot bind the Runtime API listener: {source}")]
    Bind {
        function: String,
        source: std::io::Error,
    },
    #[error("function {function}: cannot open log file {}: {source}", path.display())]
    LogFile {
        function: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The handler ran past the timeout; the process was killed (SIGKILL) and replaced.
    #[error("function {function}: task timed out after {:.2} seconds", timeout.as_secs_f64())]
    Timeout { function: String, timeout: Duration },
    /// The process exited while handling the event (exit, abort, signal). The next
    /// invocation starts a fresh process.
    #[error("function {function}: runtime exited during the invocation ({status})")]
    Crashed {
        function: String,
        status: ExitStatus,
        stderr_tail: String,
    },
    /// The process failed before asking for the event: it exited, posted
    /// `/runtime/init/error`, or exceeded the init timeout. The next invocation retries.
    #[error("function {function}: init failed: {error_type}: {error_message}")]
    InitFailed {
        function: String,
        error_type: String,
        error_message: String,
        stderr_tail: String,
    },
    #[error("function {function}: the host is shutting down")]
    ShutDown { function: String },
    #[error("function {function}: {message}")]
    Internal { function: String, message: String },
}

impl HostError {
    /// `(errorType, errorMessage)` as Lambda reports this failure to a synchronous caller
    /// (with `X-Amz-Function-Error: Unhandled`), or `None` for failures of the host itself.
    pub fn lambda_error(&self, request_id: &str) -> Option<(String, String)> {
        match self {
            HostError::Timeout { timeout, .. } => Some((
                "Sandbox.Timedout".to_owned(),
                format!(
                    "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                ),
            )),
            HostError::Crashed { status, .. } => Some((
                "Runtime.ExitError".to_owned(),
                format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
            )),
            HostError::InitFailed {
                error_type,
                error_message,
                ..
            } => Some((error_type.clone(), error_message.clone())),
            HostError::Spawn { .. }
            | HostError::Bind { .. }
            | HostError::LogFile { .. }
            | HostError::ShutDown { .. }
            | HostError::Internal { .. } => None,
        }
    }

    /// The captured tail of the process's stderr, when there is one.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            HostError::Crashed { stderr_tail, .. } | HostError::InitFailed { stderr_tail, .. } => {
                Some(stderr_tail)
            }
            _ => None,
        }
    }
}
