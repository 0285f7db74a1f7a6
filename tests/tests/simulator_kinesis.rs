//! The `simulator` binary against LocalStack Kinesis: every record it writes to --out
//! arrives in the stream, byte for byte, once, with the VIN as partition key.
//!
//! Needs the local stack (localstack/up) and the binary (`cargo build -p simulator`).

use fleetline_tests::{
    create_active_stream, kinesis_client, local_aws_env, read_stream, require_localstack,
    unique_name, workspace_bin,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output};

/// One simulator run into a fresh two-shard stream, read back and deleted.
struct Run {
    output: Output,
    /// (partition key, data) of every record, or why reading failed.
    read: Result<Vec<(String, Vec<u8>)>, String>,
    deleted: Result<(), String>,
    dir: tempfile::TempDir,
}

impl Run {
    /// The simulator with `args` plus `--kinesis-stream`, `--out DIR/readings.jsonl`,
    /// `--truth DIR/truth.json` and `--quiet`. The stream is deleted before anything is
    /// asserted, so a failure does not leak it.
    async fn simulate(tag: &str, args: &[&str]) -> Self {
        require_localstack();
        let client = kinesis_client().await;
        let stream = unique_name(tag);
        create_active_stream(&client, &stream, 2).await;
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(workspace_bin("simulator"))
            .args(args)
            .args(["--kinesis-stream", &stream, "--quiet"])
            .arg("--out")
            .arg(dir.path().join("readings.jsonl"))
            .arg("--truth")
            .arg(dir.path().join("truth.json"))
            .envs(local_aws_env())
            .output()
            .expect("run simulator");
        let read = read_stream(&client, &stream).await.and_then(|records| {
            let shards: BTreeSet<&str> = records.iter().map(|r| r.shard_id.as_str()).collect();
            if shards.len() < 2 {
                return Err(format!(
                    "only {} of 2 shards received records",
                    shards.len()
                ));
            }
            Ok(records
                .into_iter()
                .map(|r| (r.partition_key, r.data))
                .collect())
        });
        let deleted = client
            .delete_stream()
            .stream_name(&stream)
            .enforce_consumer_deletion(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("DeleteStream: {e:?}"));
        Self {
            output,
            read,
            deleted,
            dir,
        }
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }
}

#[tokio::test]
async fn simulator_records_arrive_in_kinesis_exactly() {
    let run = Run::simulate(
        "sim-test",
        &[
            "--vehicles",
            "8",
            "--interval",
            "1s",
            "--duration",
            "120s",
            "--seed",
            "11",
            "--start",
            "2025-06-01T23:59:00Z",
            "--days",
            "2",
            "--trips-per-day",
            "2",
            "--duplicate-rate",
            "0.03",
            "--late-rate",
            "0.03",
            "--malformed-rate",
            "0.03",
        ],
    )
    .await;
    let (output, read, deleted) = (&run.output, run.read.clone(), run.deleted.clone());
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "simulator failed: {stderr}");
    assert!(stderr.contains("sent "), "no totals on stderr: {stderr}");
    let read = read.unwrap();
    deleted.expect("DeleteStream");

    let out = run.file("readings.jsonl");
    let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    assert_eq!(
        lines.pop(),
        Some(Vec::new()),
        "--out must end with a newline"
    );
    let truth: Value = serde_json::from_slice(&run.file("truth.json")).unwrap();
    assert_eq!(
        truth["counts"]["records_sent"].as_u64(),
        Some(lines.len() as u64)
    );
    assert!(truth["counts"]["malformed_sent"].as_u64().unwrap() > 0);
    assert!(truth["counts"]["duplicates_sent"].as_u64().unwrap() > 0);
    assert_eq!(
        lines.len(),
        read.len(),
        "records in --out vs records read back"
    );

    // Same multiset of payloads (duplicates included).
    let mut expected = lines.clone();
    expected.sort();
    let mut got: Vec<Vec<u8>> = read.iter().map(|(_, d)| d.clone()).collect();
    got.sort();
    assert!(expected == got, "payloads read back differ from --out");

    // Partition key = VIN for every record whose payload carries a valid VIN; malformed
    // ones are keyed by their vehicle's VIN too.
    let vins: BTreeSet<String> = truth["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["vin"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(vins.len(), 8);
    let mut checked = 0;
    for (key, data) in &read {
        assert!(
            vins.contains(key),
            "partition key {key} is not a simulated VIN"
        );
        if let Ok(v) = serde_json::from_slice::<Value>(data)
            && let Some(vin) = v.get("VIN").and_then(Value::as_str)
            && vin.len() == 17
            && vin
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            assert_eq!(key, vin);
            checked += 1;
        }
    }
    assert!(checked as u64 >= truth["counts"]["valid_readings"].as_u64().unwrap());
}

/// `--kpl-aggregate N`: every Kinesis record is a KPL aggregate of at most N readings (the
/// last one may hold fewer; 8 vehicles and N = 7 so that first keys differ and both shards
/// get records), and opening them gives back exactly the --out lines,
/// each with its VIN as partition key.
#[tokio::test]
async fn simulator_kpl_aggregates_open_to_the_records_it_wrote() {
    use fleetline_aws::kinesis::kpl;
    let run = Run::simulate(
        "sim-kpl",
        &[
            "--vehicles",
            "8",
            "--interval",
            "1s",
            "--duration",
            "60s",
            "--seed",
            "12",
            "--start",
            "2025-06-01T08:00:00Z",
            "--malformed-rate",
            "0.05",
            "--kpl-aggregate",
            "7",
        ],
    )
    .await;
    let (output, read) = (&run.output, run.read.clone());
    assert!(
        output.status.success(),
        "simulator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = read.unwrap();
    let mut lines: Vec<Vec<u8>> = run
        .file("readings.jsonl")
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(read.len(), lines.len().div_ceil(7), "Kinesis records");
    let mut opened = Vec::new();
    for (key, data) in &read {
        let subs = kpl::deaggregate(data)
            .expect("an aggregate")
            .expect("a valid aggregate");
        assert!(subs.len() <= 7);
        assert_eq!(key, &subs[0].partition_key, "the first sub-record's key");
        for s in subs {
            if let Ok(v) = serde_json::from_slice::<Value>(&s.data)
                && let Some(vin) = v.get("VIN").and_then(Value::as_str)
                && vin.len() == 17
            {
                assert_eq!(s.partition_key, vin);
            }
            opened.push(s.data);
        }
    }
    lines.sort();
    opened.sort();
    assert!(lines == opened, "sub-records differ from --out");
}
