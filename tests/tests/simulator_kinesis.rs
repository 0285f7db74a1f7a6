//! The `simulator` binary against LocalStack Kinesis: every record it writes to --out
//! arrives in the stream, byte for byte, once, with the VIN as partition key.
//!
//! Needs the local stack (localstack/up) and the binary (`cargo build -p simulator`).

use aws_sdk_kinesis::types::ShardIteratorType;
use fleetline_tests::{
    create_active_stream, kinesis_client, local_aws_env, require_localstack, unique_name,
    workspace_bin,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// Every record of every shard from TRIM_HORIZON: (partition key, data).
async fn read_all(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| format!("ListShards: {e:?}"))?;
    let mut out = Vec::new();
    let mut shards_with_data = 0;
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| format!("GetShardIterator: {e:?}"))?
            .shard_iterator
            .ok_or("no shard iterator")?;
        let before = out.len();
        let mut empty_polls = 0;
        // Everything was put before reading started: the shard is drained when GetRecords
        // comes back empty and caught up (twice, to be safe).
        for _ in 0..1_000 {
            let r = client
                .get_records()
                .shard_iterator(&iterator)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| format!("GetRecords: {e:?}"))?;
            for rec in r.records() {
                out.push((
                    rec.partition_key().unwrap_or_default().to_string(),
                    rec.data().as_ref().to_vec(),
                ));
            }
            let caught_up = r.millis_behind_latest().unwrap_or(0) == 0;
            if r.records().is_empty() && caught_up {
                empty_polls += 1;
                if empty_polls == 2 {
                    break;
                }
            } else {
                empty_polls = 0;
            }
            match r.next_shard_iterator {
                Some(next) => iterator = next,
                None => break,
            }
        }
        if out.len() > before {
            shards_with_data += 1;
        }
    }
    if shards_with_data < 2 {
        return Err(format!(
            "only {shards_with_data} of 2 shards received records"
        ));
    }
    Ok(out)
}

#[tokio::test]
async fn simulator_records_arrive_in_kinesis_exactly() {
    require_localstack();
    let simulator = workspace_bin("simulator");
    let client = kinesis_client().await;
    let stream = unique_name("sim-test");
    create_active_stream(&client, &stream, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("readings.jsonl");
    let truth_path = dir.path().join("truth.json");
    let output = Command::new(&simulator)
        .args([
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
            "--kinesis-stream",
            &stream,
            "--quiet",
        ])
        .arg("--out")
        .arg(&out_path)
        .arg("--truth")
        .arg(&truth_path)
        .envs(local_aws_env())
        .output()
        .expect("run simulator");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();

    let read = read_all(&client, &stream).await;
    // Clean up before asserting, so a failure does not leak the stream.
    let deleted = client
        .delete_stream()
        .stream_name(&stream)
        .enforce_consumer_deletion(true)
        .send()
        .await;

    assert!(output.status.success(), "simulator failed: {stderr}");
    assert!(stderr.contains("sent "), "no totals on stderr: {stderr}");
    let read = read.unwrap();
    deleted.expect("DeleteStream");

    let out = std::fs::read(&out_path).unwrap();
    let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    assert_eq!(
        lines.pop(),
        Some(Vec::new()),
        "--out must end with a newline"
    );
    let truth: Value = serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
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
    require_localstack();
    let client = kinesis_client().await;
    let stream = unique_name("sim-kpl");
    create_active_stream(&client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("readings.jsonl");
    let output = Command::new(workspace_bin("simulator"))
        .args([
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
            "--kinesis-stream",
            &stream,
            "--kpl-aggregate",
            "7",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out_path)
        .envs(local_aws_env())
        .output()
        .expect("run simulator");
    let read = read_all(&client, &stream).await;
    let _ = client
        .delete_stream()
        .stream_name(&stream)
        .enforce_consumer_deletion(true)
        .send()
        .await;
    assert!(
        output.status.success(),
        "simulator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = read.unwrap();
    let mut lines: Vec<Vec<u8>> = std::fs::read(&out_path)
        .unwrap()
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
