//! The statement error every layer returns, worded like Redshift's (`ERROR: …`).

use std::fmt::Display;

use tokio_postgres::error::SqlState;

use crate::strict;

/// A statement failure, worded like Redshift's (`ERROR: …`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

impl ExecError {
    /// `ERROR: {msg}`, the prefix Redshift puts on every statement error.
    pub fn new(msg: impl Display) -> Self {
        Self(format!("ERROR: {msg}"))
    }
}

impl From<tokio_postgres::Error> for ExecError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return ExecError::new(e);
        };
        if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE {
            // Redshift's wording, which retry classifiers match ("Troubleshooting
            // serializable isolation errors", https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation-serializable-isolation-troubleshooting.html).
            // The table and transaction ids are not known here.
            return ExecError(format!(
                "ERROR: 1023 DETAIL: Serializable isolation violation on table - 0, transactions forming the cycle are: 0 (pid:0) [{}]",
                db.message()
            ));
        }
        if *db.code() == SqlState::CHECK_VIOLATION
            && let Some(msg) = db.constraint().and_then(strict::length_error)
        {
            return ExecError(msg);
        }
        ExecError::new(db.message())
    }
}
