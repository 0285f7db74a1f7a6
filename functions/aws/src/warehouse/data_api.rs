//! [`Warehouse`] over the Redshift Data API: submit and wait (`WaitTimeSeconds`),
//! DescribeStatement (waiting too) for row counts, errors or the rest of the wait, page
//! GetStatementResult.
//!
//! Every call that can wait asks for the whole seconds left of the statement timeout (at
//! most the API's 30), so a statement that ends within it costs one submit and one describe
//! (a query that finished within the submit's wait: no describe) instead of a dozen polls,
//! and no wait outlasts the timeout, which each function keeps below its Lambda timeout.

use crate::env::FromEnv;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::config::retry::RetryConfig;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{
    ColumnMetadata, Field, SqlParameter, StatementStatusString, StatusString,
};
use rand::Rng;
use tokio::time::Instant;

use super::Warehouse;
use super::config::{ConfigError, Target, WarehouseConfig};
use super::error::{FailedStatus, WarehouseError};
use super::retry::with_retry;
use super::sql::{MAX_BATCH_STATEMENTS, check_statement_sizes};
use super::types::{Column, DecodeError, ExecSummary, ResultSet, SqlParam, Value};

/// The longest `WaitTimeSeconds` the Data API accepts.
const MAX_WAIT_SECONDS: u64 = 30;

/// What ExecuteStatement/BatchExecuteStatement answered after their wait.
struct Submitted {
    id: String,
    status: Option<StatementStatusString>,
    has_result_set: Option<bool>,
}

impl Submitted {
    fn new(
        operation: &'static str,
        id: Option<&str>,
        status: Option<&StatementStatusString>,
        has_result_set: Option<bool>,
    ) -> Result<Self, WarehouseError> {
        Ok(Self {
            id: statement_id(id, operation)?,
            status: status.cloned(),
            has_result_set,
        })
    }

    /// `Some(has_result_set)` when the statement had FINISHED by the answer.
    fn finished(&self) -> Option<bool> {
        match self.status {
            Some(StatementStatusString::Finished) => self.has_result_set,
            _ => None,
        }
    }
}

/// `WaitTimeSeconds` for a call made at `now`: the whole seconds left before `deadline`, at
/// most [`MAX_WAIT_SECONDS`]; none when less than a second is left (the call answers at once).
fn wait_seconds(now: Instant, deadline: Instant) -> Option<i32> {
    let left = deadline.saturating_duration_since(now).as_secs();
    i32::try_from(left.min(MAX_WAIT_SECONDS))
        .ok()
        .filter(|s| *s >= 1)
}

/// The Data API adapter. Cheap to share (`&` or `Arc`); build it once per process.
#[derive(Debug, Clone)]
pub struct DataApiWarehouse {
    client: Client,
    config: WarehouseConfig,
}

/// Sets what ExecuteStatement and BatchExecuteStatement requests share (different builder
/// types with the same setters): the connection target, the idempotency token and the wait
/// for a statement that must end by `deadline`.
macro_rules! submit_request {
    ($req:expr, $cfg:expr, $token:expr, $deadline:expr) => {{
        let cfg: &WarehouseConfig = $cfg;
        let req = $req
            .database(cfg.database.clone())
            .set_secret_arn(cfg.secret_arn.clone())
            .client_token($token)
            .set_wait_time_seconds(wait_seconds(Instant::now(), $deadline));
        match &cfg.target {
            Target::Workgroup(name) => req.workgroup_name(name.clone()),
            Target::Cluster {
                identifier,
                db_user,
            } => req
                .cluster_identifier(identifier.clone())
                .set_db_user(db_user.clone()),
        }
    }};
}

impl DataApiWarehouse {
    /// Wraps `client`. The SDK's own retries are switched off on the copy kept here: this
    /// adapter retries throttling/transient errors itself (see the `retry` module for why).
    pub fn new(client: &Client, config: WarehouseConfig) -> Self {
        let conf = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            client: Client::from_conf(conf),
            config,
        }
    }

    pub fn from_sdk_config(sdk: &SdkConfig, config: WarehouseConfig) -> Self {
        Self::new(&Client::new(sdk), config)
    }

    /// The usual Lambda setup: [`crate::sdk_config`] plus [`WarehouseConfig::from_env`].
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = WarehouseConfig::from_env()?;
        Ok(Self::from_sdk_config(&crate::sdk_config().await, config))
    }

    pub fn config(&self) -> &WarehouseConfig {
        &self.config
    }

    /// The statement timeout of a statement submitted at `started`.
    fn deadline(&self, started: Instant) -> Instant {
        started + self.config.poll.timeout
    }

    async fn submit_statement(
        &self,
        sql: &str,
        params: &[SqlParam],
        started: Instant,
    ) -> Result<Submitted, WarehouseError> {
        check_statement_sizes(&[sql])?;
        let parameters = params
            .iter()
            .map(|p| {
                p.validate()
                    .and_then(|()| {
                        SqlParameter::builder()
                            .name(&p.name)
                            .value(&p.value)
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|reason| WarehouseError::InvalidParameter {
                        name: p.name.clone(),
                        reason,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let parameters = (!parameters.is_empty()).then_some(parameters);
        // One token for all attempts: a retried request the service already accepted is
        // answered with the same statement instead of running it twice.
        let token = client_token();
        let deadline = self.deadline(started);
        let out = with_retry(&self.config.retry, "ExecuteStatement", None, || {
            let req = self.client.execute_statement();
            submit_request!(req, &self.config, token.clone(), deadline)
                .sql(sql)
                .set_parameters(parameters.clone())
                .send()
        })
        .await?;
        Submitted::new(
            "ExecuteStatement",
            out.id(),
            out.status(),
            out.has_result_set(),
        )
    }

    async fn submit_batch(
        &self,
        statements: Vec<String>,
        started: Instant,
    ) -> Result<Submitted, WarehouseError> {
        if statements.is_empty() {
            return Err(WarehouseError::EmptyTransaction);
        }
        if statements.len() > MAX_BATCH_STATEMENTS {
            return Err(WarehouseError::TooManyStatements {
                count: statements.len(),
                max: MAX_BATCH_STATEMENTS,
            });
        }
        check_statement_sizes(&statements)?;
        let token = client_token();
        let deadline = self.deadline(started);
        let out = with_retry(&self.config.retry, "BatchExecuteStatement", None, || {
            let req = self.client.batch_execute_statement();
            submit_request!(req, &self.config, token.clone(), deadline)
                .set_sqls(Some(statements.clone()))
                .send()
        })
        .await?;
        Submitted::new(
            "BatchExecuteStatement",
            out.id(),
            out.status(),
            out.has_result_set(),
        )
    }

    /// Describes the statement submitted at `started`, waiting (`WaitTimeSeconds`) while it
    /// runs, until it is FINISHED (returned), FAILED/ABORTED (error) or the timeout passes
    /// (cancel requested, [`WarehouseError::Timeout`]). An answer that comes back before its
    /// wait is over while the statement still runs (a service that does not hold the
    /// request) is followed by the polling backoff, so the loop never spins.
    async fn wait(
        &self,
        id: &str,
        started: Instant,
    ) -> Result<DescribeStatementOutput, WarehouseError> {
        let poll = &self.config.poll;
        let deadline = self.deadline(started);
        let mut delay = poll.initial;
        loop {
            let asked_at = Instant::now();
            let wait = wait_seconds(asked_at, deadline);
            let d = with_retry(&self.config.retry, "DescribeStatement", Some(id), || {
                self.client
                    .describe_statement()
                    .id(id)
                    .set_wait_time_seconds(wait)
                    .send()
            })
            .await?;
            let last_status = match d.status() {
                Some(StatusString::Finished) => {
                    tracing::debug!(
                        statement_id = id,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        result_rows = d.result_rows(),
                        "statement finished"
                    );
                    return Ok(d);
                }
                Some(StatusString::Failed) => return Err(failure(id, FailedStatus::Failed, &d)),
                Some(StatusString::Aborted) => return Err(failure(id, FailedStatus::Aborted, &d)),
                Some(other) => other.as_str().to_owned(),
                None => "UNKNOWN".to_owned(),
            };
            let now = Instant::now();
            if now >= deadline {
                self.cancel(id).await;
                return Err(WarehouseError::Timeout {
                    id: id.to_owned(),
                    waited: now - started,
                    last_status,
                });
            }
            // Held for its whole wait: ask again at once. Answered early, or asked without a
            // wait: the backoff paces the next call.
            let held_full = wait
                .is_some_and(|s| now - asked_at >= Duration::from_secs(s.unsigned_abs().into()));
            if !held_full {
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = delay.mul_f64(poll.multiplier.max(1.0)).min(poll.max);
            }
        }
    }

    /// Best effort: a failed cancel is logged, the timeout is reported either way.
    async fn cancel(&self, id: &str) {
        match self.client.cancel_statement().id(id).send().await {
            Ok(out) => {
                tracing::warn!(statement_id = id, cancelled = ?out.status(), "statement timed out; cancel requested")
            }
            Err(e) => tracing::warn!(
                statement_id = id,
                error = %aws_sdk_redshiftdata::error::DisplayErrorContext(&e),
                "statement timed out; cancel failed"
            ),
        }
    }

    /// Reads every page of the result, in order.
    async fn fetch(&self, id: &str) -> Result<ResultSet, WarehouseError> {
        let mut columns: Vec<Column> = Vec::new();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = with_retry(&self.config.retry, "GetStatementResult", Some(id), || {
                self.client
                    .get_statement_result()
                    .id(id)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            if columns.is_empty() && !page.column_metadata().is_empty() {
                columns = page.column_metadata().iter().map(column).collect();
            }
            for record in page.records() {
                rows.push(decode_record(record, &columns).map_err(|source| {
                    WarehouseError::Decode {
                        id: id.to_owned(),
                        source,
                    }
                })?);
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if next_token.as_deref() == Some(t) => {
                    return Err(WarehouseError::Protocol {
                        operation: "GetStatementResult",
                        statement_id: Some(id.to_owned()),
                        message: "NextToken repeated".into(),
                    });
                }
                Some(t) => next_token = Some(t.to_owned()),
                None => break,
            }
        }
        if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
            return Err(WarehouseError::Decode {
                id: id.to_owned(),
                source: DecodeError::Shape(format!(
                    "a row has {} fields but the result has {} columns",
                    bad.len(),
                    columns.len()
                )),
            });
        }
        Ok(ResultSet { columns, rows })
    }
}

impl Warehouse for DataApiWarehouse {
    async fn query(&self, sql: &str, params: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        let started = Instant::now();
        let sent = self.submit_statement(sql, params, started).await?;
        // Finished within the submit's wait: straight to the result.
        let has_result_set = match sent.finished() {
            Some(has) => Some(has),
            None => self.wait(&sent.id, started).await?.has_result_set(),
        };
        if has_result_set == Some(false) {
            return Ok(ResultSet::default());
        }
        self.fetch(&sent.id).await
    }

    // Row counts (and errors) are only in DescribeStatement: one call when the submit's
    // wait saw the statement end, waiting calls while it runs.
    async fn execute(&self, sql: &str, params: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        let started = Instant::now();
        let sent = self.submit_statement(sql, params, started).await?;
        let d = self.wait(&sent.id, started).await?;
        Ok(summary(sent.id, &d))
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        let started = Instant::now();
        let sent = self.submit_batch(statements, started).await?;
        let d = self.wait(&sent.id, started).await?;
        Ok(summary(sent.id, &d))
    }
}

/// 32 random hex digits (the API allows 1–64 characters).
fn client_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

fn statement_id(id: Option<&str>, operation: &'static str) -> Result<String, WarehouseError> {
    id.filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or(WarehouseError::Protocol {
            operation,
            statement_id: None,
            message: "no statement Id in the response".into(),
        })
}

fn failure(id: &str, status: FailedStatus, d: &DescribeStatementOutput) -> WarehouseError {
    // For a batch, the failing sub-statement carries the precise error.
    let failed_sub = d.sub_statements().iter().enumerate().find(|(_, s)| {
        s.error().is_some_and(|e| !e.is_empty())
            || matches!(
                s.status(),
                Some(
                    aws_sdk_redshiftdata::types::StatementStatusString::Failed
                        | aws_sdk_redshiftdata::types::StatementStatusString::Aborted
                )
            )
    });
    let message = d
        .error()
        .filter(|e| !e.is_empty())
        .or_else(|| failed_sub.and_then(|(_, s)| s.error()))
        .unwrap_or("no error message")
        .to_owned();
    let err = WarehouseError::StatementFailed {
        id: id.to_owned(),
        status,
        sub_statement: failed_sub.map(|(i, _)| i + 1),
        message,
    };
    tracing::warn!(statement_id = id, retryable = err.is_retryable(), error = %err, "statement failed");
    err
}

fn summary(id: String, d: &DescribeStatementOutput) -> ExecSummary {
    let rows = |n: i64| u64::try_from(n).ok();
    let rows_affected = if d.sub_statements().is_empty() {
        vec![rows(d.result_rows())]
    } else {
        d.sub_statements()
            .iter()
            .map(|s| rows(s.result_rows()))
            .collect()
    };
    ExecSummary {
        statement_id: id,
        rows_affected,
    }
}

fn column(m: &ColumnMetadata) -> Column {
    // `label` is the name as selected (aliases included); `name` is the fallback.
    let name = m
        .label()
        .filter(|l| !l.is_empty())
        .or(m.name())
        .unwrap_or_default();
    Column {
        name: name.to_owned(),
        type_name: m.type_name().unwrap_or_default().to_owned(),
    }
}

fn decode_record(record: &[Field], columns: &[Column]) -> Result<Vec<Value>, DecodeError> {
    record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let column = || {
                columns
                    .get(i)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| format!("#{}", i + 1))
            };
            Ok(match field {
                Field::StringValue(s) => Value::String(s.clone()),
                Field::LongValue(v) => Value::Long(*v),
                Field::DoubleValue(v) => Value::Double(*v),
                Field::BooleanValue(v) => Value::Bool(*v),
                Field::IsNull(true) => Value::Null,
                Field::BlobValue(_) => {
                    return Err(DecodeError::Unsupported {
                        column: column(),
                        message: "binary (VARBYTE) values are not supported; select them as hex text (TO_HEX) instead".into(),
                    });
                }
                other => {
                    return Err(DecodeError::Unsupported {
                        column: column(),
                        message: format!("unsupported field {other:?}"),
                    });
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_ask_for_the_whole_seconds_left_up_to_30() {
        let now = Instant::now();
        let secs = |s: f64| wait_seconds(now, now + Duration::from_secs_f64(s));
        // stream-processor and view-refresher (45 s timeout, 60 s Lambda): 30, then 15.
        assert_eq!(secs(45.0), Some(30));
        assert_eq!(secs(15.0), Some(15));
        // query-api (25 s, 29 s Lambda): never more than what is left.
        assert_eq!(secs(25.9), Some(25));
        // batch-views, schema-migrator (840 s, 900 s Lambda): the API's maximum.
        assert_eq!(secs(840.0), Some(30));
        // Under a second left, or past the deadline: no wait, the answer comes at once.
        assert_eq!(secs(0.9), None);
        assert_eq!(wait_seconds(now + Duration::from_secs(2), now), None);
    }
}
