//! Against the running LocalStack (Kinesis at AWS_ENDPOINT_URL, default 127.0.0.1:4566) and
//! a real function binary (runner-test-fn, hosted by lambda-host): every record put into a
//! fresh stream is delivered, failed batches are redelivered, none is skipped, and a restart
//! resumes after the persisted checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use lambda_host::{FunctionRegistry, FunctionSpec, HostedFunction};
use local_runner::invoker::RegistryInvoker;
use local_runner::kinesis::aws::KinesisSource;
use local_runner::kinesis::{
    CheckpointStore, Deps, FailureLog, Mapping, MappingConfig, checkpoint_key,
};
use local_runner::status::StatusBoard;
use local_runner::template::StartingPosition;
use serde_json::Value;
use tokio::sync::watch;

const FUNCTION: &str = "runner-test-fn";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn kinesis_client() -> Client {
    let endpoint = env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    if tokio::net::TcpStream::connect(&authority).await.is_err() {
        panic!("LocalStack is not reachable at {endpoint}; start it with localstack/up");
    }
    // The shared SDK config (rustls+ring HTTP client), pinned to the local stack.
    let sdk = fleetline_aws::sdk_config().await;
    let config = aws_sdk_kinesis::config::Builder::from(&sdk)
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(env_or("AWS_REGION", "us-east-1")))
        .credentials_provider(Credentials::new(
            env_or("AWS_ACCESS_KEY_ID", "test"),
            env_or("AWS_SECRET_ACCESS_KEY", "test"),
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

async fn create_stream(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    for _ in 0..300 {
        let out = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let status = out
            .stream_description_summary()
            .unwrap()
            .stream_status()
            .clone();
        if status == aws_sdk_kinesis::types::StreamStatus::Active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// Puts one record per entry; returns (shard id, sequence number, data) in put order.
async fn put(client: &Client, stream: &str, data: &[String]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let r = client
            .put_record()
            .stream_name(stream)
            .partition_key(format!("vehicle-{}", i % 7))
            .data(Blob::new(d.as_bytes().to_vec()))
            .send()
            .await
            .expect("PutRecord");
        out.push((
            r.shard_id().to_owned(),
            r.sequence_number().to_owned(),
            d.clone(),
        ));
    }
    out
}

#[derive(Debug, Clone)]
struct Delivery {
    seqs: Vec<String>,
    outcome: String,
    failed: Option<String>,
}

impl Delivery {
    /// The records the function acknowledged in this invocation.
    fn acknowledged(&self) -> Vec<String> {
        match self.outcome.as_str() {
            "ok" => self.seqs.clone(),
            "partial" => {
                let failed = self.failed.as_deref().unwrap();
                self.seqs
                    .iter()
                    .take_while(|s| s.as_str() != failed)
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

fn deliveries(path: &Path) -> Vec<Delivery> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Delivery {
                seqs: v["seqs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
                outcome: v["outcome"].as_str().unwrap().to_owned(),
                failed: v["failed"].as_str().map(str::to_owned),
            }
        })
        .collect()
}

fn mapping_config(stream: &str) -> MappingConfig {
    MappingConfig {
        function: FUNCTION.to_owned(),
        stream: stream.to_owned(),
        starting_position: StartingPosition::TrimHorizon,
        batch_size: 7,
        batching_window: Duration::ZERO,
        max_retry_attempts: 2,
        bisect_on_error: true,
        report_batch_item_failures: true,
        on_failure: Some("arn:aws:sqs:us-east-1:000000000000:it-on-failure".to_owned()),
        poll_interval: Duration::from_millis(100),
        retry_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        region: "us-east-1".to_owned(),
    }
}

/// Records handled (acknowledged or sent to on-failure) by all shard consumers so far.
fn handled(status: &StatusBoard) -> u64 {
    status.snapshot()["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["records_acknowledged"].as_u64().unwrap()
                + s["records_to_on_failure"].as_u64().unwrap()
        })
        .sum()
}

/// Runs a mapping with a fresh checkpoint store over `state` until `expected` records are
/// handled, then stops it the way the runner does on SIGTERM.
async fn run_until_handled(
    client: &Client,
    stream: &str,
    invoker: &Arc<RegistryInvoker>,
    state: &Path,
    expected: u64,
) -> Arc<StatusBoard> {
    let status = Arc::new(StatusBoard::new());
    let deps = Deps {
        source: Arc::new(KinesisSource::new(client.clone())),
        invoker: invoker.clone(),
        checkpoints: Arc::new(CheckpointStore::open(state.join("checkpoints.json")).unwrap()),
        failures: Arc::new(FailureLog::new(state.join("on-failure"))),
        status: status.clone(),
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(Mapping::new(mapping_config(stream), deps).run(rx));
    // A deadline for a hung test, not a timing claim.
    for _ in 0..1200 {
        if handled(&status) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the mapping stops")
        .unwrap();
    assert_eq!(handled(&status), expected, "status: {}", status.snapshot());
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_delivered_failures_are_redelivered_and_a_restart_skips_nothing() {
    let client = kinesis_client().await;
    let stream = format!(
        "runner-it-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    create_stream(&client, &stream, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let recorder = dir.path().join("deliveries.jsonl");
    let state = dir.path().join("state");
    let spec = FunctionSpec::new(FUNCTION, env!("CARGO_BIN_EXE_runner-test-fn"))
        .with_timeout(Duration::from_secs(20))
        .with_forward_output(false)
        .with_log_file(dir.path().join("fn.log"))
        .with_env("RECORDER_FILE", recorder.display().to_string())
        .with_env(
            "RECORDER_STATE",
            dir.path().join("markers").display().to_string(),
        )
        .with_env("RECORDER_FAIL_FIRST", "1");
    let mut registry = FunctionRegistry::new();
    registry.insert_hosted(
        HostedFunction::start(spec)
            .await
            .expect("test function starts"),
    );
    let registry = Arc::new(registry);
    let invoker = Arc::new(RegistryInvoker::new(registry.clone(), "us-east-1"));

    // 30 records: one reported in batchItemFailures once, one that crashes the process
    // once, one that always fails (→ on-failure after bisecting and 2 retries).
    let data: Vec<String> = (0..30)
        .map(|i| match i {
            5 => format!("partial-once:{i}"),
            12 => format!("crash-once:{i}"),
            20 => format!("poison:{i}"),
            _ => format!("ok:{i}"),
        })
        .collect();
    let put1 = put(&client, &stream, &data).await;
    let poison = put1[20].clone();
    let shards: BTreeSet<&str> = put1.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 2, "records spread over both shards");

    run_until_handled(&client, &stream, &invoker, &state, 30).await;

    let first_run = deliveries(&recorder);
    let acknowledged: Vec<String> = first_run.iter().flat_map(Delivery::acknowledged).collect();
    let mut expected: Vec<String> = put1
        .iter()
        .filter(|(_, s, _)| *s != poison.1)
        .map(|(_, s, _)| s.clone())
        .collect();
    let mut got = acknowledged.clone();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "every record but the poison one acknowledged exactly once"
    );

    // Failed deliveries were redelivered: the first invocation (a function error), the
    // crash and the partial failure.
    for outcome in ["error", "crash", "partial"] {
        let failed = first_run
            .iter()
            .find(|d| d.outcome == outcome)
            .unwrap_or_else(|| panic!("a delivery with outcome {outcome}"));
        let retried: Vec<&String> = match outcome {
            "partial" => failed
                .seqs
                .iter()
                .skip_while(|s| Some(*s) != failed.failed.as_ref())
                .collect(),
            _ => failed.seqs.iter().filter(|s| **s != poison.1).collect(),
        };
        for seq in retried {
            assert!(
                acknowledged.contains(seq),
                "{outcome}: {seq} redelivered and acknowledged"
            );
        }
    }

    // Per shard, acknowledgements follow the stream order.
    let shard_of: BTreeMap<&str, &str> = put1
        .iter()
        .map(|(sh, s, _)| (s.as_str(), sh.as_str()))
        .collect();
    for shard in &shards {
        let in_shard: Vec<&String> = acknowledged
            .iter()
            .filter(|s| shard_of[s.as_str()] == *shard)
            .collect();
        let order: Vec<&String> = put1
            .iter()
            .filter(|(sh, s, _)| sh == shard && *s != poison.1)
            .map(|(_, s, _)| s)
            .collect();
        assert_eq!(in_shard, order, "shard {shard} in order");
    }

    // The poison record went to the on-failure destination, alone (bisected), after 3 tries.
    let text = std::fs::read_to_string(state.join("on-failure/it-on-failure.jsonl")).unwrap();
    let messages: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(messages.len(), 1);
    let info = &messages[0]["KinesisBatchInfo"];
    assert_eq!(info["shardId"], poison.0.as_str());
    assert_eq!(info["startSequenceNumber"], poison.1.as_str());
    assert_eq!(info["endSequenceNumber"], poison.1.as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(messages[0]["requestContext"]["approximateInvokeCount"], 3);

    // Checkpoints: each shard's last record.
    let store = CheckpointStore::open(state.join("checkpoints.json")).unwrap();
    for shard in &shards {
        let last = put1.iter().rfind(|(sh, _, _)| sh == shard).unwrap();
        let cp = store
            .get(&checkpoint_key(FUNCTION, &stream, shard))
            .unwrap();
        assert_eq!(
            cp.sequence_number.as_deref(),
            Some(last.1.as_str()),
            "{shard}"
        );
    }

    // Restart over the same state: only the new records arrive.
    let more: Vec<String> = (0..6).map(|i| format!("after-restart:{i}")).collect();
    let put2 = put(&client, &stream, &more).await;
    run_until_handled(&client, &stream, &invoker, &state, 6).await;
    let second_run: Vec<Delivery> = deliveries(&recorder)[first_run.len()..].to_vec();
    let mut redelivered: Vec<String> = second_run.iter().flat_map(|d| d.seqs.clone()).collect();
    let mut new: Vec<String> = put2.iter().map(|(_, s, _)| s.clone()).collect();
    redelivered.sort();
    new.sort();
    assert_eq!(
        redelivered, new,
        "after the restart: the new records, once, nothing old"
    );
    assert!(second_run.iter().all(|d| d.outcome == "ok"));

    registry.shutdown(Duration::from_secs(2)).await;
    let _ = client.delete_stream().stream_name(&stream).send().await;
}
