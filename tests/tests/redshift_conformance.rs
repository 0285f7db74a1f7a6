//! Redshift conformance of the Data API emulator: one test per row of the conformance
//! table in localstack/redshift-data-emulator/README.md, each driven through boto3
//! (`tests/python/redshift_conformance.py`, a client this project did not write), or
//! through the AWS SDK for Rust for API parameters newer than the stack's botocore
//! (`wait_time_seconds`).
//! Needs the local stack (localstack/up) with the emulator in strict mode (the default).

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::{StatementStatusString, StatusString};
use fleetline_tests::{data_api_client, data_api_endpoint, venv_command};

async fn conformance(case: &str) {
    // Fail clearly if the emulator is down.
    let _ = data_api_client().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/redshift_conformance.py"
    );
    let mut cmd = venv_command("python");
    cmd.arg(script).arg(data_api_endpoint()).arg(case);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_default();
    assert!(
        out.status.success() && v["ok"] == true,
        "{case}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

macro_rules! rows {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                conformance(stringify!($name)).await;
            }
        )*
    };
}

rows!(
    varchar_counts_bytes,
    char_is_single_byte,
    varchar_default_length_is_256_bytes,
    reserved_words,
    transaction_block_restrictions,
    snapshot_write_conflict_is_error_1023,
    snapshot_starts_at_first_read_not_at_lock,
    date_functions,
    null_and_string_functions,
    json_extract_path_text,
    aggregate_functions,
    sessions_are_refused,
    decimal_arithmetic_scale,
    decimal_aggregate_types,
    decimal_overflow_is_an_error,
    decimal_untyped_expressions_not_emulated,
    procedure_body_checked,
    serializable_is_not_emulated,
    unsupported_on_conflict,
    unsupported_returning,
    unsupported_jsonb_type,
    unsupported_json_cast,
    unsupported_serial_type,
    unsupported_uuid_cast,
    unsupported_create_index,
    unsupported_create_sequence,
    unsupported_distinct_on,
    unsupported_aggregate_filter,
    unsupported_partition_by,
    unsupported_arrays,
    unsupported_values_as_table,
    unsupported_string_agg,
    unsupported_is_distinct_from,
    unsupported_check_constraint,
    unsupported_decimal_precision_above_38,
);

const DB: &str = "dev";
const WORKGROUP: &str = "fleetline";
/// Runs until cancelled (10^10 rows); GENERATE_SERIES is allowed in strict mode.
const ENDLESS: &str =
    "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b";

/// ExecuteStatement of `sql` on the conformance database.
fn execute(
    c: &aws_sdk_redshiftdata::Client,
    sql: &str,
) -> aws_sdk_redshiftdata::operation::execute_statement::builders::ExecuteStatementFluentBuilder {
    c.execute_statement()
        .workgroup_name(WORKGROUP)
        .database(DB)
        .sql(sql)
}

/// `WaitTimeSeconds` (1 to 30, API reference of ExecuteStatement, BatchExecuteStatement,
/// DescribeStatement, GetStatementResult): the call waits for the statement to complete
/// or the time to pass, then answers with the status of that moment.
#[tokio::test]
async fn wait_time_seconds() {
    let c = data_api_client().await;
    // A short statement finishes within the wait: one call, then the result.
    let out = execute(&c, "SELECT 41 + 1 AS answer")
        .wait_time_seconds(10)
        .send()
        .await
        .expect("ExecuteStatement");
    assert_eq!(out.status(), Some(&StatementStatusString::Finished));
    assert_eq!(out.has_result_set(), Some(true));
    assert!(out.redshift_pid().is_some(), "{out:?}");
    let page = c
        .get_statement_result()
        .id(out.id().unwrap_or_default())
        .send()
        .await
        .expect("GetStatementResult");
    assert_eq!(page.records().len(), 1);
    // A failing batch member: the batch answer says FAILED.
    let out = c
        .batch_execute_statement()
        .workgroup_name(WORKGROUP)
        .database(DB)
        .sqls("SELECT 1")
        .sqls("SELECT * FROM conformance_no_such_table")
        .wait_time_seconds(10)
        .send()
        .await
        .expect("BatchExecuteStatement");
    assert_eq!(out.status(), Some(&StatementStatusString::Failed));
    // GetStatementResult waits for a statement submitted without waiting.
    let id = execute(&c, "SELECT 7 AS seven")
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .unwrap_or_default()
        .to_owned();
    let page = c
        .get_statement_result()
        .id(&id)
        .wait_time_seconds(10)
        .send()
        .await
        .expect("GetStatementResult waits for the result");
    assert_eq!(page.records().len(), 1);
    waits_the_time_then_answers_the_current_status(&c).await;
    out_of_range_is_a_validation_error(&c).await;
}

/// How long `f` took, and its output.
async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

/// A statement still running when the time is up: the answer comes after the wait, with
/// the running status; once the statement ends, a waiting describe answers at once.
async fn waits_the_time_then_answers_the_current_status(c: &aws_sdk_redshiftdata::Client) {
    // A 1 s wait, allowing for clock granularity.
    let waited = Duration::from_millis(900);
    let (out, took) = timed(execute(c, ENDLESS).wait_time_seconds(1).send()).await;
    let out = out.expect("ExecuteStatement");
    assert!(took >= waited, "{took:?}");
    let running = [
        StatementStatusString::Submitted,
        StatementStatusString::Picked,
        StatementStatusString::Started,
    ];
    assert!(out.status().is_some_and(|s| running.contains(s)), "{out:?}");
    let id = out.id().unwrap_or_default();
    let describe = |seconds| {
        c.describe_statement()
            .id(id)
            .wait_time_seconds(seconds)
            .send()
    };
    let (d, took) = timed(describe(1)).await;
    assert!(took >= waited, "{took:?}");
    assert_eq!(
        d.expect("DescribeStatement").status(),
        Some(&StatusString::Started)
    );
    c.cancel_statement()
        .id(id)
        .send()
        .await
        .expect("CancelStatement");
    let (d, took) = timed(describe(30)).await;
    assert_eq!(
        d.expect("DescribeStatement").status(),
        Some(&StatusString::Aborted)
    );
    assert!(
        took < Duration::from_secs(5),
        "answered when the statement ended: {took:?}"
    );
}

async fn out_of_range_is_a_validation_error(c: &aws_sdk_redshiftdata::Client) {
    for seconds in [0, 31] {
        let err = execute(c, "SELECT 1")
            .wait_time_seconds(seconds)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
        assert!(
            err.message().is_some_and(|m| m.contains("waitTimeSeconds")),
            "{err:?}"
        );
    }
}

/// Every case the script knows has a test here (and so a row in the README).
#[test]
fn every_script_case_has_a_test() {
    let this = include_str!("redshift_conformance.rs");
    let script = include_str!("../python/redshift_conformance.py");
    let readme = include_str!("../../localstack/redshift-data-emulator/README.md");
    let mut cases: Vec<String> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split_once("\": case_").map(|(n, _)| n.to_string()))
        .collect();
    let unsupported = script
        .split("UNSUPPORTED = {")
        .nth(1)
        .and_then(|s| s.split("\n}").next())
        .unwrap_or_default();
    cases.extend(
        unsupported
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split_once('"'))
            .map(|(n, _)| format!("unsupported_{n}")),
    );
    assert!(cases.len() > 20, "{cases:?}");
    for c in &cases {
        assert!(this.contains(&format!("    {c},")), "no test for case {c}");
        assert!(
            readme.contains(&format!("`{c}`")),
            "no README row for case {c}"
        );
    }
}
