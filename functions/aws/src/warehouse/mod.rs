//! The warehouse port: what Fleetline's functions need from Redshift, and the Redshift
//! Data API adapter behind it.
//!
//! Functions depend on the [`Warehouse`] trait (generic `W: Warehouse`), build one
//! [`DataApiWarehouse`] in `main`, and use their own fakes in unit tests.
//!
//! Data API rules reflected here:
//! - parameters (`:name`) exist only on single statements ([`Warehouse::query`],
//!   [`Warehouse::execute`]); a [`Warehouse::transaction`] (one BatchExecuteStatement) takes
//!   literal SQL only — build it with [`chunk_values_insert`] and [`sql_quote`];
//! - at most [`MAX_BATCH_STATEMENTS`] statements per transaction, at most
//!   [`MAX_STATEMENT_BYTES`] per statement — both checked before anything is sent.

mod config;
mod data_api;
mod error;
mod retry;
mod sql;
mod types;

use std::future::Future;
use std::sync::Arc;

pub use config::{
    ConfigError, DATA_API_RETRY, DEFAULT_DATABASE, DEFAULT_WORKGROUP, ENV_CLUSTER, ENV_DATABASE,
    ENV_DB_USER, ENV_MAX_ATTEMPTS, ENV_SECRET_ARN, ENV_TIMEOUT_SECS, ENV_WORKGROUP, PollConfig,
    Target, WarehouseConfig,
};
pub use data_api::DataApiWarehouse;
pub use error::{ApiErrorKind, FailedStatus, WarehouseError, is_retryable_statement_error};
pub use sql::{
    MAX_BATCH_STATEMENTS, MAX_STATEMENT_BYTES, check_statement_sizes, chunk_values_insert,
    push_sql_quoted, sql_quote,
};
pub use types::{Column, DecodeError, ExecSummary, FromRow, ResultSet, Row, SqlParam, Value};

/// Access to the warehouse (Redshift), as the functions use it.
pub trait Warehouse: Send + Sync {
    /// Runs one statement that returns rows (all pages, in order).
    fn query(
        &self,
        sql: &str,
        params: &[SqlParam],
    ) -> impl Future<Output = Result<ResultSet, WarehouseError>> + Send;

    /// Runs one statement for its effect (DML, DDL, `CALL`, `REFRESH MATERIALIZED VIEW`).
    fn execute(
        &self,
        sql: &str,
        params: &[SqlParam],
    ) -> impl Future<Output = Result<ExecSummary, WarehouseError>> + Send;

    /// Runs 1..=[`MAX_BATCH_STATEMENTS`] statements as one transaction (one
    /// BatchExecuteStatement): all commit or none do. More statements is
    /// [`WarehouseError::TooManyStatements`] — a transaction is never split silently.
    fn transaction(
        &self,
        statements: Vec<String>,
    ) -> impl Future<Output = Result<ExecSummary, WarehouseError>> + Send;

    /// Runs any number of statements as consecutive transactions of up to
    /// [`MAX_BATCH_STATEMENTS`], in order, stopping at the first failure
    /// ([`WarehouseError::BatchGroupFailed`] says how many groups committed).
    ///
    /// The sequence as a whole is NOT atomic, so callers must make it idempotent: re-running
    /// it after a partial failure must give the same end state. Fleetline's speed-layer
    /// inserts skip rows whose (VIN, timestamp) already exists, so a retried batch only adds
    /// what is missing. All statement sizes are checked before the first group runs.
    fn execute_batches(
        &self,
        statements: Vec<String>,
    ) -> impl Future<Output = Result<Vec<ExecSummary>, WarehouseError>> + Send {
        async move {
            check_statement_sizes(&statements)?;
            let mut groups = Vec::new();
            let mut rest = statements.into_iter().peekable();
            while rest.peek().is_some() {
                groups.push(rest.by_ref().take(MAX_BATCH_STATEMENTS).collect::<Vec<_>>());
            }
            let total = groups.len();
            let mut done = Vec::with_capacity(total);
            for (i, group) in groups.into_iter().enumerate() {
                match self.transaction(group).await {
                    Ok(summary) => done.push(summary),
                    Err(source) => {
                        return Err(WarehouseError::BatchGroupFailed {
                            group: i + 1,
                            groups: total,
                            committed: i,
                            source: Box::new(source),
                        });
                    }
                }
            }
            Ok(done)
        }
    }
}

/// Forwards every method, `execute_batches` included, so an adapter that overrides a
/// provided method is reached through a reference or an `Arc` too. Each method is one line
/// of the list: name, arguments, output.
macro_rules! forward_warehouse {
    ($($ty:ty),+) => {$(
        impl<W: Warehouse> Warehouse for $ty {
            forward_warehouse!(@methods
                query(sql: &str, params: &[SqlParam]) -> ResultSet;
                execute(sql: &str, params: &[SqlParam]) -> ExecSummary;
                transaction(statements: Vec<String>) -> ExecSummary;
                execute_batches(statements: Vec<String>) -> Vec<ExecSummary>;
            );
        }
    )+};
    (@methods $($name:ident($($arg:ident: $arg_ty:ty),*) -> $out:ty;)+) => {$(
        fn $name(&self, $($arg: $arg_ty),*)
            -> impl Future<Output = Result<$out, WarehouseError>> + Send {
            (**self).$name($($arg),*)
        }
    )+};
}

forward_warehouse!(&W, Arc<W>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records transactions; fails the n-th (1-based) if asked.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<Vec<String>>>,
        fail_on: Option<usize>,
    }

    impl Warehouse for Recorder {
        async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
            Ok(ResultSet::default())
        }
        async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
            unreachable!()
        }
        async fn transaction(
            &self,
            statements: Vec<String>,
        ) -> Result<ExecSummary, WarehouseError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(statements.clone());
            if Some(calls.len()) == self.fail_on {
                return Err(WarehouseError::StatementFailed {
                    id: "x".into(),
                    status: FailedStatus::Failed,
                    sub_statement: None,
                    message: "could not serialize access".into(),
                });
            }
            Ok(ExecSummary {
                statement_id: format!("t{}", calls.len()),
                rows_affected: statements.iter().map(|_| Some(1)).collect(),
            })
        }
    }

    fn stmts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("INSERT {i}")).collect()
    }

    #[tokio::test]
    async fn execute_batches_groups_by_forty_in_order() {
        let w = Recorder::default();
        let out = w.execute_batches(stmts(81)).await.unwrap();
        {
            let calls = w.calls.lock().unwrap();
            assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [40, 40, 1]);
            assert_eq!(calls.concat(), stmts(81));
        }
        assert_eq!(out.iter().map(ExecSummary::total_rows).sum::<u64>(), 81);
        assert!(w.execute_batches(Vec::new()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn execute_batches_reports_the_failed_group() {
        let w = Recorder {
            fail_on: Some(2),
            ..Default::default()
        };
        let err = w.execute_batches(stmts(100)).await.unwrap_err();
        match &err {
            WarehouseError::BatchGroupFailed {
                group,
                groups,
                committed,
                ..
            } => assert_eq!((*group, *groups, *committed), (2, 3, 1)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_transient());
        assert_eq!(w.calls.lock().unwrap().len(), 2, "stops at the failure");
    }

    #[tokio::test]
    async fn execute_batches_checks_every_size_before_running_anything() {
        let w = Recorder::default();
        let mut s = stmts(45);
        s[44] = "x".repeat(MAX_STATEMENT_BYTES + 1);
        let err = w.execute_batches(s).await.unwrap_err();
        assert!(matches!(
            err,
            WarehouseError::StatementTooLarge { index: 44, .. }
        ));
        assert!(w.calls.lock().unwrap().is_empty());
        // Works through references and Arcs too.
        async fn via<W: Warehouse>(w: W, n: usize) -> usize {
            w.execute_batches(stmts(n)).await.unwrap().len()
        }
        let arc = Arc::new(Recorder::default());
        assert_eq!(via(&*arc, 41).await, 2);
        assert_eq!(via(arc.clone(), 3).await, 1);
        assert_eq!(arc.calls.lock().unwrap().len(), 3);
    }

    /// Overrides the provided `execute_batches`: answers one summary per statement without
    /// running any transaction.
    struct OwnBatches;

    impl Warehouse for OwnBatches {
        async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
            unreachable!()
        }
        async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
            unreachable!()
        }
        async fn transaction(&self, _: Vec<String>) -> Result<ExecSummary, WarehouseError> {
            panic!("the default execute_batches ran instead of the override")
        }
        async fn execute_batches(
            &self,
            statements: Vec<String>,
        ) -> Result<Vec<ExecSummary>, WarehouseError> {
            Ok(statements
                .iter()
                .map(|s| ExecSummary {
                    statement_id: s.clone(),
                    rows_affected: vec![Some(1)],
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn an_overriding_adapter_is_reached_through_a_reference_and_an_arc() {
        async fn via<W: Warehouse>(w: W, n: usize) -> usize {
            w.execute_batches(stmts(n)).await.unwrap().len()
        }
        let own = Arc::new(OwnBatches);
        // The override answers one summary per statement; the default would give one per
        // group of forty (and call `transaction`, which panics here).
        assert_eq!(via(&*own, 41).await, 41);
        assert_eq!(via(own.clone(), 3).await, 3);
        assert_eq!(via(&own, 2).await, 2);
    }
}
