//! Warehouse errors, classified so callers can tell "retry the batch later" from
//! "this will never work".

use std::time::Duration;

use fleetline_core::ports::speed::StoreError;

use super::types::DecodeError;

/// How an error from a Data API call (not from the SQL itself) is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// Throttling or concurrency limits (ThrottlingException, ActiveStatementsExceeded…,
    /// HTTP 429, "Rate exceeded").
    Throttling,
    /// Transient service or network trouble (HTTP 5xx, InternalServerException,
    /// dispatch/IO failures, timeouts).
    Transient,
    /// Will not succeed on retry (ValidationException, ResourceNotFound, access denied…).
    Permanent,
}

/// Final status of a statement that did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStatus {
    Failed,
    Aborted,
}

impl std::fmt::Display for FailedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailedStatus::Failed => "FAILED",
            FailedStatus::Aborted => "ABORTED",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// A Data API call failed (after the adapter's own retries for throttling/transient).
    #[error("Data API {operation} failed after {attempts} attempt(s) ({kind:?}){}: {code}: {message}", statement_suffix(.statement_id))]
    Api {
        operation: &'static str,
        /// Statement id when the call was about one (DescribeStatement, GetStatementResult).
        statement_id: Option<String>,
        kind: ApiErrorKind,
        /// Error code (e.g. `ValidationException`), or `http-503`, `dispatch`, `timeout`.
        code: String,
        message: String,
        attempts: u32,
    },
    /// The SQL ran and the database reported an error (status FAILED or ABORTED).
    #[error("statement {id} {status}{}: {message}", sub_suffix(*.sub_statement))]
    StatementFailed {
        id: String,
        status: FailedStatus,
        /// 1-based index of the failing statement of a batch, when the API says which.
        sub_statement: Option<usize>,
        message: String,
    },
    /// The statement did not finish in time; CancelStatement was requested (best effort).
    #[error(
        "statement {id} did not finish within {waited:?} (last status {last_status}); cancel requested"
    )]
    Timeout {
        id: String,
        waited: Duration,
        last_status: String,
    },
    /// More statements than one BatchExecuteStatement (one transaction) may hold.
    #[error(
        "a transaction holds at most {max} statements, got {count}; split it into idempotent groups (execute_batches)"
    )]
    TooManyStatements { count: usize, max: usize },
    #[error("a transaction needs at least one statement")]
    EmptyTransaction,
    /// A statement larger than the Data API accepts (checked before sending).
    #[error("statement #{index} is {bytes} bytes; the Data API accepts at most {max}")]
    StatementTooLarge {
        index: usize,
        bytes: usize,
        max: usize,
    },
    /// A single VALUES row too large for any statement ([`chunk_values_insert`](super::chunk_values_insert)).
    #[error("row #{index} needs a {bytes}-byte statement; the limit is {max}")]
    RowTooLarge {
        index: usize,
        bytes: usize,
        max: usize,
    },
    #[error("parameter {name:?}: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("cannot quote literal portably: {reason}")]
    UnquotableLiteral { reason: String },
    /// The result could not be decoded (unsupported type, row/column mismatch…).
    #[error("statement {id}: {source}")]
    Decode {
        id: String,
        #[source]
        source: DecodeError,
    },
    /// The API answered with something the adapter does not understand.
    #[error("Data API {operation}: unexpected response{}: {message}", statement_suffix(.statement_id))]
    Protocol {
        operation: &'static str,
        statement_id: Option<String>,
        message: String,
    },
    /// One group of [`Warehouse::execute_batches`](super::Warehouse::execute_batches) failed;
    /// groups before it were committed, it and later ones were not.
    #[error(
        "transaction group {group} of {groups} failed ({committed} committed before it): {source}"
    )]
    BatchGroupFailed {
        group: usize,
        groups: usize,
        committed: usize,
        #[source]
        source: Box<WarehouseError>,
    },
}

fn statement_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" for statement {id}"))
        .unwrap_or_default()
}

fn sub_suffix(sub: Option<usize>) -> String {
    sub.map(|i| format!(" (sub-statement {i})"))
        .unwrap_or_default()
}

/// What a store port built on the warehouse reports: the message, and whether a retry
/// can help ([`WarehouseError::is_transient`]).
impl From<WarehouseError> for StoreError {
    fn from(e: WarehouseError) -> Self {
        if e.is_transient() {
            StoreError::Transient(e.to_string())
        } else {
            StoreError::Permanent(e.to_string())
        }
    }
}

impl WarehouseError {
    /// True when the same request may succeed later (throttling, transient service or
    /// network trouble, timeouts, retryable database errors such as serialization
    /// conflicts). Stream consumers report such failures as `batchItemFailures`;
    /// permanent ones are bugs or bad configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            WarehouseError::Api { kind, .. } => *kind != ApiErrorKind::Permanent,
            WarehouseError::StatementFailed { .. } => self.is_retryable(),
            WarehouseError::Timeout { .. } => true,
            WarehouseError::BatchGroupFailed { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// For [`WarehouseError::StatementFailed`]: whether the database error is one that a
    /// re-run can clear (see [`is_retryable_statement_error`]). ABORTED statements (cancelled
    /// by WLM, session ended) are retryable too. False for every other variant.
    pub fn is_retryable(&self) -> bool {
        match self {
            WarehouseError::StatementFailed {
                status: FailedStatus::Aborted,
                ..
            } => true,
            WarehouseError::StatementFailed { message, .. } => {
                is_retryable_statement_error(message)
            }
            WarehouseError::BatchGroupFailed { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// The statement id this error is about, if any.
    pub fn statement_id(&self) -> Option<&str> {
        match self {
            WarehouseError::StatementFailed { id, .. }
            | WarehouseError::Timeout { id, .. }
            | WarehouseError::Decode { id, .. } => Some(id),
            WarehouseError::Api { statement_id, .. }
            | WarehouseError::Protocol { statement_id, .. } => statement_id.as_deref(),
            WarehouseError::BatchGroupFailed { source, .. } => source.statement_id(),
            _ => None,
        }
    }
}

/// Database error messages that mean "conflict with a concurrent transaction or a lost
/// connection; running it again can succeed". Redshift reports serialization conflicts as
/// `ERROR: 1023 … Serializable isolation violation on table …`; PostgreSQL (the local
/// emulator) as `could not serialize access …` / `deadlock detected`. Syntax errors,
/// missing relations, constraint or type errors are not retryable.
pub fn is_retryable_statement_error(message: &str) -> bool {
    const PATTERNS: &[&str] = &[
        "serializable isolation violation",
        "could not serialize access",
        "deadlock detected",
        "concurrent transaction",
        "concurrent update",
        "tuple concurrently updated",
        "lock timeout",
        "canceling statement due to lock timeout",
        "terminating connection",
        "server closed the connection",
        "connection reset",
        "the connection was lost",
    ];
    let m = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(message: &str) -> WarehouseError {
        WarehouseError::StatementFailed {
            id: "abc".into(),
            status: FailedStatus::Failed,
            sub_statement: None,
            message: message.into(),
        }
    }

    #[test]
    fn statement_failures_are_classified_by_message() {
        let retry = [
            "ERROR: 1023 DETAIL: Serializable isolation violation on table - 100, transactions forming the cycle are: 1, 2",
            "ERROR: could not serialize access due to concurrent update",
            "ERROR: deadlock detected",
            "ERROR: could not complete because of conflict with concurrent transaction",
        ];
        for m in retry {
            let e = failed(m);
            assert!(e.is_retryable() && e.is_transient(), "{m}");
        }
        let permanent = [
            "ERROR: syntax error at or near \"SELEC\"",
            "ERROR: relation \"speed.nope\" does not exist",
            "ERROR: invalid input syntax for type numeric: \"x\"",
        ];
        for m in permanent {
            let e = failed(m);
            assert!(!e.is_retryable() && !e.is_transient(), "{m}");
        }
        let aborted = WarehouseError::StatementFailed {
            id: "abc".into(),
            status: FailedStatus::Aborted,
            sub_statement: None,
            message: "Query was aborted".into(),
        };
        assert!(aborted.is_transient());
    }

    #[test]
    fn messages_name_the_statement() {
        let e = failed("boom");
        assert_eq!(e.to_string(), "statement abc FAILED: boom");
        let e = WarehouseError::StatementFailed {
            id: "abc".into(),
            status: FailedStatus::Failed,
            sub_statement: Some(3),
            message: "boom".into(),
        };
        assert_eq!(
            e.to_string(),
            "statement abc FAILED (sub-statement 3): boom"
        );
        let e = WarehouseError::Api {
            operation: "DescribeStatement",
            statement_id: Some("abc".into()),
            kind: ApiErrorKind::Throttling,
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
            attempts: 6,
        };
        assert!(e.to_string().contains("for statement abc"));
        assert!(e.is_transient());
        assert_eq!(e.statement_id(), Some("abc"));
        let wrapped = WarehouseError::BatchGroupFailed {
            group: 2,
            groups: 3,
            committed: 1,
            source: Box::new(e),
        };
        assert!(wrapped.is_transient());
        assert!(!WarehouseError::TooManyStatements { count: 41, max: 40 }.is_transient());
    }
}
