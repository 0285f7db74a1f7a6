//! DataApiWarehouse against a mocked Data API (aws-smithy-mocks): retries, waits and
//! polling, failures, paging, timeouts and the batch limits. Time is paused, so backoff and
//! polling sleeps complete instantly and deterministically; the mocks answer at once, so a
//! waiting DescribeStatement that still sees the statement running falls back to the
//! polling backoff.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::error::ErrorMetadata;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::{
    DescribeStatementError, DescribeStatementOutput,
};
use aws_sdk_redshiftdata::operation::execute_statement::{
    ExecuteStatementError, ExecuteStatementOutput,
};
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::primitives::Blob;
use aws_sdk_redshiftdata::types::error::{
    ActiveStatementsExceededException, ActiveWaitingRequestsExceededException, ValidationException,
};
use aws_sdk_redshiftdata::types::{
    ColumnMetadata, Field, StatementStatusString, StatusString, SubStatementData,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::NaiveDate;
use fleetline_aws::backoff::Backoff;
use fleetline_aws::warehouse::{
    ApiErrorKind, DataApiWarehouse, FailedStatus, MAX_BATCH_STATEMENTS, MAX_STATEMENT_BYTES,
    PollConfig, SqlParam, Target, Warehouse, WarehouseConfig, WarehouseError,
};

const ID: &str = "d9b6c0c9-0747-4bf4-b142-e8883122f766";

fn config() -> WarehouseConfig {
    WarehouseConfig {
        poll: PollConfig {
            timeout: Duration::from_secs(5),
            ..PollConfig::default()
        },
        retry: Backoff::new(4, Duration::from_millis(100), Duration::from_secs(1)),
        ..WarehouseConfig::workgroup("fleetline", "dev")
    }
}

fn warehouse(rules: &[&Rule]) -> DataApiWarehouse {
    let client: Client = mock_client!(aws_sdk_redshiftdata, RuleMode::MatchAny, rules);
    DataApiWarehouse::new(&client, config())
}

fn submitted() -> Rule {
    mock!(Client::execute_statement)
        .then_output(|| ExecuteStatementOutput::builder().id(ID).build())
}

fn describe(status: StatusString, has_result_set: bool) -> DescribeStatementOutput {
    DescribeStatementOutput::builder()
        .id(ID)
        .status(status)
        .has_result_set(has_result_set)
        .result_rows(if has_result_set { 5 } else { 3 })
        .build()
        .unwrap()
}

fn finished(has_result_set: bool) -> Rule {
    mock!(Client::describe_statement)
        .then_output(move || describe(StatusString::Finished, has_result_set))
}

fn no_results() -> Rule {
    mock!(Client::get_statement_result).then_output(|| {
        GetStatementResultOutput::builder()
            .set_records(Some(vec![]))
            .build()
            .unwrap()
    })
}

#[tokio::test(start_paused = true)]
async fn throttled_calls_are_retried_with_the_same_client_token_then_succeed() {
    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    let execute = mock!(Client::execute_statement)
        .match_requests(move |r| {
            seen.lock()
                .unwrap()
                .push(r.client_token().unwrap_or_default().to_owned());
            r.workgroup_name() == Some("fleetline") && r.database() == Some("dev")
        })
        .sequence()
        .error(|| {
            ExecuteStatementError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .error(|| {
            ExecuteStatementError::ActiveStatementsExceededException(
                ActiveStatementsExceededException::builder()
                    .message("Active statements exceeded the allowed quota (500)")
                    .build(),
            )
        })
        .http_status(503, None)
        .output(|| ExecuteStatementOutput::builder().id(ID).build())
        .build();
    let describe = finished(false);
    let wh = warehouse(&[&execute, &describe]);

    let summary = wh
        .execute(
            "DELETE FROM speed.telemetry WHERE day < :d",
            &[SqlParam::new("d", "2026-01-01")],
        )
        .await
        .unwrap();

    assert_eq!(
        execute.num_calls(),
        4,
        "three throttled/transient attempts, then success"
    );
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(summary.statement_id, ID);
    assert_eq!(summary.rows_affected, vec![Some(3)]);
    let tokens = tokens.lock().unwrap();
    assert!(!tokens.is_empty() && !tokens[0].is_empty());
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
}

/// `err` is `operation` throttled on every one of the config's 4 attempts: transient.
fn assert_throttled_after_all_attempts(err: &WarehouseError, operation: &str) {
    match err {
        WarehouseError::Api {
            operation: op,
            kind,
            attempts,
            ..
        } => {
            assert_eq!(*op, operation);
            assert_eq!(*kind, ApiErrorKind::Throttling);
            assert_eq!(*attempts, 4);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_transient(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn throttling_gives_up_after_max_attempts_as_a_transient_error() {
    let execute = mock!(Client::execute_statement)
        .sequence()
        .http_status(429, None)
        .repeatedly()
        .build();
    let wh = warehouse(&[&execute]);
    let err = wh.execute("SELECT 1", &[]).await.unwrap_err();
    assert_throttled_after_all_attempts(&err, "ExecuteStatement");
    assert_eq!(execute.num_calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn validation_errors_are_permanent_and_not_retried() {
    let execute = mock!(Client::execute_statement).then_error(|| {
        ExecuteStatementError::ValidationException(
            ValidationException::builder()
                .message("Cannot process query string larger than 100kB")
                .build(),
        )
    });
    let wh = warehouse(&[&execute]);
    let err = wh.query("SELECT 1", &[]).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("ValidationException"), "{err}");
    assert_eq!(execute.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_statement_surfaces_the_database_message_without_fetching_results() {
    let execute = submitted();
    let describe = mock!(Client::describe_statement)
        .sequence()
        .output(|| describe(StatusString::Submitted, false))
        .output(|| describe(StatusString::Started, false))
        .output(|| {
            DescribeStatementOutput::builder()
                .id(ID)
                .status(StatusString::Failed)
                .error("ERROR: syntax error at or near \"SELEC\" Position: 1")
                .build()
                .unwrap()
        })
        .build();
    let results = no_results();
    let wh = warehouse(&[&execute, &describe, &results]);

    let err = wh.query("SELEC 1", &[]).await.unwrap_err();
    match &err {
        WarehouseError::StatementFailed {
            id,
            status,
            message,
            sub_statement,
        } => {
            assert_eq!(id, ID);
            assert_eq!(*status, FailedStatus::Failed);
            assert_eq!(*sub_statement, None);
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(ID));
    assert!(!err.is_transient());
    assert_eq!(describe.num_calls(), 3, "polled until FAILED");
    assert_eq!(
        results.num_calls(),
        0,
        "no GetStatementResult for a failed statement"
    );
}

fn col(name: &str, type_name: &str) -> ColumnMetadata {
    ColumnMetadata::builder()
        .name(name)
        .label(name)
        .type_name(type_name)
        .build()
}

fn s(v: &str) -> Field {
    Field::StringValue(v.to_owned())
}

#[tokio::test(start_paused = true)]
async fn pages_are_concatenated_in_order_and_decoded_by_type() {
    let execute = mock!(Client::execute_statement)
        .match_requests(|r| {
            let p = r.parameters();
            p.len() == 1 && p[0].name() == "year" && p[0].value() == "2026"
        })
        .then_output(|| ExecuteStatementOutput::builder().id(ID).build());
    let describe = finished(true);
    let columns = vec![
        col("vin", "varchar"),
        col("readings", "int8"),
        col("sum_speed", "numeric"),
        col("day", "date"),
        col("avg_speed", "float8"),
    ];
    let row = |vin: &str, readings: i64, sum: &str, day: &str, avg: Option<f64>| {
        vec![
            s(vin),
            Field::LongValue(readings),
            s(sum),
            s(day),
            avg.map_or(Field::IsNull(true), Field::DoubleValue),
        ]
    };
    let cols = columns.clone();
    let page1 = mock!(Client::get_statement_result)
        .match_requests(|r| r.id() == Some(ID) && r.next_token().is_none())
        .then_output(move || {
            GetStatementResultOutput::builder()
                .set_column_metadata(Some(cols.clone()))
                .set_records(Some(vec![
                    row(
                        "VIN00000000000001",
                        300,
                        "17190.000",
                        "2026-11-25",
                        Some(57.3),
                    ),
                    row("VIN00000000000002", 2, "0.500", "2026-11-25", None),
                ]))
                .total_num_rows(5)
                .next_token("t1")
                .build()
                .unwrap()
        });
    let page2 = mock!(Client::get_statement_result)
        .match_requests(|r| r.next_token() == Some("t1"))
        .then_output(move || {
            GetStatementResultOutput::builder()
                .set_records(Some(vec![
                    row("VIN00000000000003", 7, "1.001", "2026-11-26", Some(0.143)),
                    row("VIN00000000000004", 1, "-3.000", "2026-11-26", Some(-3.0)),
                ]))
                .next_token("t2")
                .build()
                .unwrap()
        });
    let page3 = mock!(Client::get_statement_result)
        .match_requests(|r| r.next_token() == Some("t2"))
        .then_output(move || {
            GetStatementResultOutput::builder()
                .set_records(Some(vec![row(
                    "VIN00000000000005",
                    10,
                    "99.990",
                    "2026-12-31",
                    Some(9.999),
                )]))
                .build()
                .unwrap()
        });
    let wh = warehouse(&[&execute, &describe, &page1, &page2, &page3]);

    let rs = wh
        .query(
            "SELECT … WHERE year = :year",
            &[SqlParam::new("year", 2026)],
        )
        .await
        .unwrap();

    assert_eq!(
        (page1.num_calls(), page2.num_calls(), page3.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(
        rs.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["vin", "readings", "sum_speed", "day", "avg_speed"]
    );
    assert_eq!(rs.columns[2].type_name, "numeric");
    #[derive(Debug, PartialEq)]
    struct Agg {
        vin: String,
        readings: i64,
        sum_speed_milli: i64,
        day: NaiveDate,
        avg: Option<f64>,
    }
    let got = rs
        .map_rows(|r| {
            Ok(Agg {
                vin: r.get_string("vin")?,
                readings: r.get_i64("readings")?,
                sum_speed_milli: r.get_scaled_i64("sum_speed", 3)?,
                day: r.get_date("day")?,
                avg: r.get_opt_f64("avg_speed")?,
            })
        })
        .unwrap();
    let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let want = vec![
        Agg {
            vin: "VIN00000000000001".into(),
            readings: 300,
            sum_speed_milli: 17_190_000,
            day: d(11, 25),
            avg: Some(57.3),
        },
        Agg {
            vin: "VIN00000000000002".into(),
            readings: 2,
            sum_speed_milli: 500,
            day: d(11, 25),
            avg: None,
        },
        Agg {
            vin: "VIN00000000000003".into(),
            readings: 7,
            sum_speed_milli: 1_001,
            day: d(11, 26),
            avg: Some(0.143),
        },
        Agg {
            vin: "VIN00000000000004".into(),
            readings: 1,
            sum_speed_milli: -3_000,
            day: d(11, 26),
            avg: Some(-3.0),
        },
        Agg {
            vin: "VIN00000000000005".into(),
            readings: 10,
            sum_speed_milli: 99_990,
            day: d(12, 31),
            avg: Some(9.999),
        },
    ];
    assert_eq!(got, want);

    // A type mismatch names the column and the statement.
    let err = rs.map_rows(|r| r.get_i64("day")).unwrap_err();
    assert!(err.to_string().contains("\"day\""), "{err}");
}

#[tokio::test(start_paused = true)]
async fn statement_without_result_set_returns_empty_rows_without_fetching() {
    let execute = submitted();
    let describe = finished(false);
    let results = no_results();
    let wh = warehouse(&[&execute, &describe, &results]);
    let rs = wh.query("CALL speed.noop()", &[]).await.unwrap();
    assert!(rs.is_empty() && rs.columns.is_empty());
    assert_eq!(results.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn binary_values_are_rejected_naming_the_column() {
    let execute = submitted();
    let describe = finished(true);
    let results = mock!(Client::get_statement_result).then_output(|| {
        GetStatementResultOutput::builder()
            .column_metadata(col("payload", "varbyte"))
            .set_records(Some(vec![vec![Field::BlobValue(Blob::new(vec![1, 2]))]]))
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&execute, &describe, &results]);
    let err = wh.query("SELECT payload FROM t", &[]).await.unwrap_err();
    assert!(matches!(err, WarehouseError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("\"payload\""), "{err}");
    assert!(err.to_string().contains(ID), "{err}");
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_statement() {
    let execute = submitted();
    let describe =
        mock!(Client::describe_statement).then_output(|| describe(StatusString::Started, false));
    let cancel = mock!(Client::cancel_statement)
        .match_requests(|r| r.id() == Some(ID))
        .then_output(|| CancelStatementOutput::builder().status(true).build());
    let wh = warehouse(&[&execute, &describe, &cancel]);

    let err = wh.execute("VACUUM speed.telemetry", &[]).await.unwrap_err();
    match &err {
        WarehouseError::Timeout {
            id,
            waited,
            last_status,
        } => {
            assert_eq!(id, ID);
            assert!(*waited >= Duration::from_secs(5), "{waited:?}");
            assert_eq!(last_status, "STARTED");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(cancel.num_calls(), 1);
    // Backoff grows to the 500 ms cap: about 25 polls in 5 s, far fewer than at 10 ms.
    assert!(
        describe.num_calls() > 5 && describe.num_calls() < 60,
        "{}",
        describe.num_calls()
    );
}

fn statements(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("INSERT INTO speed.t VALUES ({i})"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn transaction_limits_are_checked_before_any_call() {
    let batch = mock!(Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let wh = warehouse(&[&batch]);

    let err = wh
        .transaction(statements(MAX_BATCH_STATEMENTS + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WarehouseError::TooManyStatements { count: 41, max: 40 }
        ),
        "{err:?}"
    );
    let err = wh.transaction(Vec::new()).await.unwrap_err();
    assert!(matches!(err, WarehouseError::EmptyTransaction));
    let mut big = statements(2);
    big[1] = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
    let err = wh.transaction(big).await.unwrap_err();
    assert!(
        matches!(err, WarehouseError::StatementTooLarge { index: 1, .. }),
        "{err:?}"
    );
    let err = wh
        .execute("SELECT :v", &[SqlParam::new("v", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, WarehouseError::InvalidParameter { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(batch.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn forty_statements_run_as_one_batch_with_per_statement_rows() {
    let batch = mock!(Client::batch_execute_statement)
        .match_requests(|r| {
            r.sqls().len() == 40
                && r.sqls()[39] == "INSERT INTO speed.t VALUES (39)"
                && r.cluster_identifier() == Some("prod")
                && r.db_user() == Some("loader")
                && r.workgroup_name().is_none()
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let describe = mock!(Client::describe_statement).then_output(|| {
        let subs = (1..=40)
            .map(|i| {
                SubStatementData::builder()
                    .id(format!("{ID}:{i}"))
                    .status(StatementStatusString::Finished)
                    .result_rows(i)
                    .build()
                    .unwrap()
            })
            .collect();
        DescribeStatementOutput::builder()
            .id(ID)
            .status(StatusString::Finished)
            .set_sub_statements(Some(subs))
            .build()
            .unwrap()
    });
    let client: Client = mock_client!(
        aws_sdk_redshiftdata,
        RuleMode::MatchAny,
        [&batch, &describe]
    );
    let wh = DataApiWarehouse::new(
        &client,
        WarehouseConfig {
            target: Target::Cluster {
                identifier: "prod".into(),
                db_user: Some("loader".into()),
            },
            ..config()
        },
    );
    let summary = wh.transaction(statements(40)).await.unwrap();
    assert_eq!(batch.num_calls(), 1);
    assert_eq!(summary.rows_affected.len(), 40);
    assert_eq!(summary.total_rows(), (1..=40).sum::<u64>());
}

#[tokio::test(start_paused = true)]
async fn failed_batch_names_the_sub_statement_and_is_retryable_on_conflict() {
    let batch = mock!(Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id(ID).build());
    let describe = mock!(Client::describe_statement).then_output(|| {
        DescribeStatementOutput::builder()
            .id(ID)
            .status(StatusString::Failed)
            .sub_statements(
                SubStatementData::builder()
                    .id(format!("{ID}:1"))
                    .status(StatementStatusString::Finished)
                    .build()
                    .unwrap(),
            )
            .sub_statements(
                SubStatementData::builder()
                    .id(format!("{ID}:2"))
                    .status(StatementStatusString::Failed)
                    .error("ERROR: 1023 DETAIL: Serializable isolation violation on table - 123")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&batch, &describe]);
    let err = wh.transaction(statements(2)).await.unwrap_err();
    match &err {
        WarehouseError::StatementFailed {
            sub_statement,
            message,
            ..
        } => {
            assert_eq!(*sub_statement, Some(2));
            assert!(message.contains("Serializable isolation violation"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_retryable() && err.is_transient());
}

#[tokio::test(start_paused = true)]
async fn describe_is_retried_on_throttling_while_polling() {
    let execute = submitted();
    let describe = mock!(Client::describe_statement)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .output(|| describe(StatusString::Finished, false))
        .build();
    let wh = warehouse(&[&execute, &describe]);
    wh.execute("SELECT 1", &[]).await.unwrap();
    assert_eq!(describe.num_calls(), 2);
}

// --- WaitTimeSeconds: the config's 5 s timeout is asked for whole, time being paused ---

/// A rule for `$op` (ExecuteStatement or BatchExecuteStatement) that answers a request
/// waiting 5 s with `$output` in `$status`.
macro_rules! submit_answering {
    ($op:expr, $output:ident, $status:expr, $has_result_set:expr) => {
        mock!($op)
            .match_requests(|r| r.wait_time_seconds() == Some(5))
            .then_output(|| {
                $output::builder()
                    .id(ID)
                    .status($status)
                    .set_has_result_set($has_result_set)
                    .build()
            })
    };
}

#[tokio::test(start_paused = true)]
async fn a_query_finished_within_the_wait_goes_straight_to_its_result() {
    let execute = submit_answering!(
        Client::execute_statement,
        ExecuteStatementOutput,
        StatementStatusString::Finished,
        Some(true)
    );
    let describe = finished(true);
    let results = mock!(Client::get_statement_result).then_output(|| {
        GetStatementResultOutput::builder()
            .column_metadata(col("n", "int8"))
            .records(vec![Field::LongValue(42)])
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&execute, &describe, &results]);
    let rs = wh.query("SELECT 42 AS n", &[]).await.unwrap();
    assert_eq!(rs.map_rows(|r| r.get_i64("n")).unwrap(), vec![42]);
    assert_eq!(
        (
            execute.num_calls(),
            describe.num_calls(),
            results.num_calls()
        ),
        (1, 0, 1),
        "one call to run it, one for the result"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transaction_still_running_after_the_wait_is_described_with_a_wait() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let batch = submit_answering!(
        Client::batch_execute_statement,
        BatchExecuteStatementOutput,
        StatementStatusString::Started,
        None
    );
    let describe = mock!(Client::describe_statement)
        .match_requests(move |r| {
            seen.lock().unwrap().push(r.wait_time_seconds());
            r.id() == Some(ID)
        })
        .then_output(|| describe(StatusString::Finished, false));
    let wh = warehouse(&[&batch, &describe]);
    let summary = wh.transaction(statements(2)).await.unwrap();
    assert_eq!((batch.num_calls(), describe.num_calls()), (1, 1));
    assert_eq!(summary.rows_affected, vec![Some(3)]);
    assert_eq!(*asked.lock().unwrap(), vec![Some(5)], "a waiting describe");
}

#[tokio::test(start_paused = true)]
async fn a_statement_failed_within_the_wait_takes_one_describe_for_its_error() {
    let execute = submit_answering!(
        Client::execute_statement,
        ExecuteStatementOutput,
        StatementStatusString::Failed,
        None
    );
    let describe = mock!(Client::describe_statement).then_output(|| {
        DescribeStatementOutput::builder()
            .id(ID)
            .status(StatusString::Failed)
            .error("ERROR: relation \"speed.nope\" does not exist")
            .build()
            .unwrap()
    });
    let results = no_results();
    let wh = warehouse(&[&execute, &describe, &results]);
    let err = wh.query("SELECT * FROM speed.nope", &[]).await.unwrap_err();
    assert!(
        matches!(&err, WarehouseError::StatementFailed { message, .. } if message.contains("does not exist")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        (
            execute.num_calls(),
            describe.num_calls(),
            results.num_calls()
        ),
        (1, 1, 0)
    );
}

fn too_many_waiting() -> DescribeStatementError {
    DescribeStatementError::ActiveWaitingRequestsExceededException(
        ActiveWaitingRequestsExceededException::builder()
            .message("The number of active requests with WaitTimeSeconds exceeds the limit.")
            .build(),
    )
}

#[tokio::test(start_paused = true)]
async fn too_many_waiting_requests_are_retried_like_throttling() {
    let execute = submitted();
    let describe = mock!(Client::describe_statement)
        .sequence()
        .error(too_many_waiting)
        .output(|| describe(StatusString::Finished, false))
        .build();
    let wh = warehouse(&[&execute, &describe]);
    wh.execute("SELECT 1", &[]).await.unwrap();
    assert_eq!(describe.num_calls(), 2);

    let execute = submitted();
    let describe = mock!(Client::describe_statement)
        .sequence()
        .error(too_many_waiting)
        .repeatedly()
        .build();
    let wh = warehouse(&[&execute, &describe]);
    let err = wh.execute("SELECT 1", &[]).await.unwrap_err();
    // Transient: a batch meeting it is handed back and retried later.
    assert_throttled_after_all_attempts(&err, "DescribeStatement");
}
