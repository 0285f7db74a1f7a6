//! Data API calls per stream-processor invocation, as the Data API emulator counts them
//! (`GET /_fleetline/calls`, per database): the adapter's waits (`WaitTimeSeconds` on
//! BatchExecuteStatement and DescribeStatement) must keep the median invocation at ≤ 3 calls,
//! with one DescribeStatement per transaction (docs/design.md §8, "The speed path's
//! ceiling"). Prints the calls per 1,000 readings.
//!
//! The simulator's readings go through a fresh one-shard LocalStack stream and are delivered
//! to the real stream-processor binary (under `lambda-host`) in batches of [`BATCH`]; the
//! test has its own database, so the counts are its own.
//!
//! Needs: the local stack (`localstack/up`) and the binaries
//! (`cargo build -p simulator -p stream-processor`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fleetline_aws::Warehouse;
use fleetline_tests::{
    Simulated, TestBed, data_api_endpoint, delete_objects_under, delete_stream_quietly,
    drop_test_database, function_env, function_spec, invoke_for_json, kinesis_event, local_aws_env,
    read_one_shard_stream, remove_work_dir, run_simulator, start_function,
};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Records per invocation (the event source mapping's BatchSize).
const BATCH: usize = 60;
const BUCKET: &str = "fleetline-lake";
/// The target: at most this many calls on the median invocation (design §8).
const MAX_MEDIAN_CALLS: u64 = 3;

/// The emulator's call counts for `database`, by operation.
async fn calls(database: &str) -> BTreeMap<String, u64> {
    let endpoint = data_api_endpoint();
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .unwrap_or_else(|e| panic!("connect {authority}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let request = hyper::Request::get("/_fleetline/calls")
        .header("host", &authority)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("GET calls");
    assert_eq!(response.status(), 200, "GET /_fleetline/calls");
    let body = response.into_body().collect().await.expect("calls body");
    let v: Value = serde_json::from_slice(&body.to_bytes()).expect("calls JSON");
    serde_json::from_value(v["by_database"][database].clone()).unwrap_or_default()
}

fn total(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

/// Calls per operation between two readings of the counters.
fn difference(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

#[tokio::test]
async fn stream_processor_median_invocation_makes_at_most_three_calls() {
    let bed = TestBed::start("dc", BUCKET).await;
    let prefix = format!("rejected/{}/", bed.id);
    let env = function_env(
        &bed.db,
        &[
            ("LAKE_BUCKET", BUCKET.to_owned()),
            ("REJECTED_PREFIX", prefix.clone()),
        ],
    );
    let spec = function_spec(
        "stream-processor",
        Duration::from_secs(120),
        &bed.work,
        &env,
    );
    let stream_processor = start_function(spec).await;
    let start = (chrono::Utc::now() - chrono::TimeDelta::days(3))
        .format("%Y-%m-%dT08:00:00Z")
        .to_string();
    // 5 vehicles × 120 s at 1 Hz: 600 readings, 10 invocations.
    let args = format!(
        "--vehicles 5 --interval 1s --duration 120s --seed 17 --start {start} --quiet \
         --kinesis-stream {}",
        bed.stream
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    let Simulated { lines, .. } = run_simulator(&bed.work, "readings", &args, &local_aws_env());
    let records = read_one_shard_stream(&bed.kinesis, &bed.stream, lines.len()).await;

    let mut per_invocation = Vec::new();
    let mut by_operation = BTreeMap::<String, u64>::new();
    for batch in records.chunks(BATCH) {
        let before = calls(&bed.db).await;
        let event = kinesis_event(&bed.stream_arn, "stream-processor", batch);
        let answer = invoke_for_json(&stream_processor, &event, "stream-processor").await;
        assert_eq!(answer, json!({"batchItemFailures": []}), "batch answer");
        let made = difference(&calls(&bed.db).await, &before);
        per_invocation.push(total(&made));
        for (op, n) in made {
            *by_operation.entry(op).or_insert(0) += n;
        }
    }
    let all = total(&by_operation);
    eprintln!(
        "Data API calls: {} invocations of ≤ {BATCH} readings, {} readings: {all} calls \
         ({by_operation:?}), {:.1} per 1,000 readings; per invocation {per_invocation:?}, median {}",
        per_invocation.len(),
        records.len(),
        all as f64 * 1000.0 / records.len() as f64,
        median(&per_invocation)
    );
    assert!(
        median(&per_invocation) <= MAX_MEDIAN_CALLS,
        "median calls per invocation {} > {MAX_MEDIAN_CALLS}: {per_invocation:?}",
        median(&per_invocation)
    );
    // Waiting calls: one DescribeStatement per transaction (its row counts), not a poll
    // per few milliseconds of the statement's run.
    let count = |op: &str| by_operation.get(op).copied().unwrap_or(0);
    assert!(
        count("DescribeStatement") <= count("BatchExecuteStatement"),
        "more than one DescribeStatement per transaction: {by_operation:?}"
    );
    // The readings really went in (so the calls counted did the work).
    let rs = bed
        .warehouse
        .query("SELECT COUNT(*) AS n FROM speed.telemetry", &[])
        .await
        .expect("count");
    let stored = rs.iter().next().and_then(|r| r.get_i64("n").ok());
    assert!(stored.is_some_and(|n| n > 0), "{stored:?}");

    stream_processor.shutdown(Duration::from_secs(2)).await;
    delete_stream_quietly(&bed.kinesis, &bed.stream).await;
    delete_objects_under(&bed.s3, BUCKET, &prefix).await;
    drop_test_database(&bed.db).await;
    remove_work_dir(&bed.work);
}
