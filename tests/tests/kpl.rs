//! KPL-aggregated records through both stream consumers: readings packed by an aggregator
//! Fleetline did not write (the `aws-kinesis-agg` Python package, run from the local
//! stack's venv), mixed with plain records and one corrupt aggregate, put into a LocalStack
//! Kinesis stream, read back and delivered as Lambda's event source mapping does to the
//! real stream-processor and lake-writer binaries.
//!
//! Checked against the simulator's ground truth (its own arithmetic over what it sent):
//! speed.telemetry and the lake hold exactly the valid readings; every malformed reading is
//! dead-lettered under its (sequence number, sub-sequence number); the corrupt aggregate is
//! dead-lettered whole with its reason and none of its readings is stored; delivering every
//! batch again changes nothing.
//!
//! Needs: the local stack (`localstack/up`, whose venv holds aws-kinesis-agg) and the
//! binaries (`cargo build -p simulator -p stream-processor -p lake-writer`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use base64::Engine as _;
use chrono::NaiveDate;
use fleetline_aws::{DataApiWarehouse, Warehouse};
use fleetline_tests::{
    DailyKey, DailyTotals, StreamRecord, TestBed, decimal_unscaled, delete_objects_under,
    delete_stream_quietly, drop_test_database, function_env, function_spec, invoke_for_json,
    kinesis_event, object_bodies, parquet_columns, parquet_reader, parquet_rows,
    read_one_shard_stream, remove_work_dir, repo_root, run_simulator, start_function,
    truth_daily_map, venv_command, warehouse_daily_map,
};
use lambda_host::HostedFunction;
use parquet::record::Field;
use serde_json::{Value, json};

const BUCKET: &str = "fleetline-lake";
const THRESHOLD: &str = "10.0";
/// Kinesis records per invocation.
const BATCH: usize = 20;
/// Sizes of consecutive groups of simulator lines: 1 = a plain Kinesis record, more = one
/// aggregate of that many readings.
const GROUPS: [usize; 6] = [1, 1, 12, 1, 7, 30];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// A line's partition key: its VIN when it has one (malformed lines may not).
fn partition_key(line: &[u8]) -> String {
    serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v["VIN"].as_str().map(str::to_owned))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "malformed".to_owned())
}

/// Aggregates each group with aws-kinesis-agg: one (partition key, data) per group.
fn aws_kinesis_agg(groups: &[Vec<(String, Vec<u8>)>]) -> Vec<(String, Vec<u8>)> {
    let request = json!({
        "groups": groups
            .iter()
            .map(|g| g.iter().map(|(pk, d)| json!({"pk": pk, "data_b64": b64(d)})).collect())
            .collect::<Vec<Vec<Value>>>()
    });
    let mut child = venv_command("python")
        .arg(repo_root().join("tests/python/kpl_aggregate.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run tests/python/kpl_aggregate.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("aggregator output");
    assert!(out.status.success(), "kpl_aggregate.py: {}", out.status);
    let answer: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(answer.len(), groups.len());
    answer
        .iter()
        .map(|a| {
            (
                a["pk"].as_str().expect("pk").to_owned(),
                unb64(a["data_b64"].as_str().expect("data")),
            )
        })
        .collect()
}

/// Puts `records` (partition key, data) into the one-shard stream; returns their sequence
/// numbers, in the order given.
async fn put(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[(String, Vec<u8>)],
) -> Vec<String> {
    let mut seqs = Vec::new();
    for chunk in records.chunks(100) {
        let entries = chunk
            .iter()
            .map(|(pk, d)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(pk)
                    .data(Blob::new(d.clone()))
                    .build()
                    .expect("entry")
            })
            .collect();
        let out = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(out.failed_record_count(), Some(0), "PutRecords failures");
        seqs.extend(
            out.records()
                .iter()
                .map(|r| r.sequence_number().expect("sequence number").to_owned()),
        );
    }
    seqs
}

/// Where a simulator line went: its Kinesis record and, inside an aggregate, its position.
#[derive(Debug, Clone, Copy)]
struct Placement {
    record: usize,
    sub: Option<u64>,
}

fn truth_vins(truth: &Value) -> BTreeSet<String> {
    truth_daily_map(truth).keys().map(|k| k.0.clone()).collect()
}

async fn speed_daily(w: &DataApiWarehouse) -> BTreeMap<DailyKey, DailyTotals> {
    let rs = w
        .query(
            "SELECT vin, trip_id, event_day, COUNT(*) AS readings, SUM(vehicle_speed) AS sum_speed, \
             MIN(odometer) AS min_odometer, MAX(odometer) AS max_odometer, \
             SUM(rapid_acceleration) AS rapid_accelerations \
             FROM speed.telemetry GROUP BY vin, trip_id, event_day",
            &[],
        )
        .await
        .expect("speed.telemetry");
    warehouse_daily_map(&rs)
}

/// One lake row: (vin, trip, ts µs, day, speed, acceleration, odometer, sequence number),
/// decimals unscaled (scales 3, 4, 3 as the contract says).
type LakeRow = (String, String, i64, NaiveDate, i64, i64, i64, String);

fn unscaled(f: &Field, scale: i32) -> i64 {
    let (value, s) = decimal_unscaled(f);
    assert_eq!(s, scale);
    value
}

fn decode_parquet(bytes: Vec<u8>) -> Vec<LakeRow> {
    parquet_rows(&parquet_reader(bytes))
        .iter()
        .map(|row| {
            let f = parquet_columns(row);
            let s = |n: &str| match f[n] {
                Field::Str(s) => s.clone(),
                other => panic!("{n}: {other:?}"),
            };
            let Field::TimestampMicros(ts) = f["ts"] else {
                panic!("ts")
            };
            let Field::Date(days) = f["event_day"] else {
                panic!("event_day")
            };
            (
                s("vin"),
                s("trip_id"),
                *ts,
                NaiveDate::from_num_days_from_ce_opt(719_163 + days).unwrap(),
                unscaled(f["vehicle_speed"], 3),
                unscaled(f["acceleration"], 4),
                unscaled(f["odometer"], 3),
                s("sequence_number"),
            )
        })
        .collect()
}

/// Daily aggregates over the lake after the batch layer's de-duplication on (VIN, ts),
/// first in stream order (threshold 10.0 km/h per s = 100 000 at scale 4).
fn lake_daily(rows: &[LakeRow]) -> BTreeMap<DailyKey, DailyTotals> {
    let mut first: BTreeMap<(String, i64), &LakeRow> = BTreeMap::new();
    for r in rows {
        let e = first.entry((r.0.clone(), r.2)).or_insert(r);
        if (r.7.len(), &r.7) < (e.7.len(), &e.7) {
            *e = r;
        }
    }
    let mut out: BTreeMap<DailyKey, DailyTotals> = BTreeMap::new();
    for r in first.values() {
        let d = out
            .entry((r.0.clone(), r.1.clone(), r.3))
            .or_insert((0, 0, i64::MAX, i64::MIN, 0));
        d.0 += 1;
        d.1 += r.4;
        d.2 = d.2.min(r.6);
        d.3 = d.3.max(r.6);
        d.4 += i64::from(r.5 >= 100_000);
    }
    out
}

struct Env {
    bed: TestBed,
    stream_processor: HostedFunction,
    lake_writer: HostedFunction,
}

impl Env {
    async fn start() -> Self {
        let bed = TestBed::start("kpl", BUCKET).await;
        let (db, id, work) = (&bed.db, &bed.id, &bed.work);
        eprintln!("kpl test: objects under s3://{BUCKET}/t-{id}/");
        let env = function_env(
            db,
            &[
                ("LAKE_BUCKET", BUCKET.to_owned()),
                ("LAKE_PREFIX", format!("t-{id}/vehicle_telematics_raw/")),
                ("LAKE_SINK", "s3".to_owned()),
                ("REJECTED_PREFIX", format!("t-{id}/rejected/")),
                ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", THRESHOLD.to_owned()),
            ],
        );
        let spec = |name: &str| function_spec(name, Duration::from_secs(120), work, &env);
        let stream_processor = start_function(spec("stream-processor")).await;
        let lake_writer = start_function(spec("lake-writer")).await;
        Self {
            bed,
            stream_processor,
            lake_writer,
        }
    }

    /// Delivers every batch to both consumers; each must finish it.
    async fn deliver_all(&self, records: &[StreamRecord]) {
        for batch in records.chunks(BATCH) {
            let event = kinesis_event(&self.bed.stream_arn, "consumer", batch);
            for f in [&self.stream_processor, &self.lake_writer] {
                let what = format!("{} (logs in {:?})", f.name(), self.bed.work);
                let v = invoke_for_json(f, &event, &what).await;
                assert_eq!(
                    v,
                    json!({"batchItemFailures": []}),
                    "logs in {:?}",
                    self.bed.work
                );
            }
        }
    }

    /// key → body of every object under `t-<id>/<sub>`.
    async fn objects(&self, sub: &str) -> BTreeMap<String, Vec<u8>> {
        object_bodies(&self.bed.s3, BUCKET, &format!("t-{}/{sub}", self.bed.id)).await
    }

    async fn finish(self) {
        self.stream_processor.shutdown(Duration::from_secs(2)).await;
        self.lake_writer.shutdown(Duration::from_secs(2)).await;
        delete_stream_quietly(&self.bed.kinesis, &self.bed.stream).await;
        delete_objects_under(&self.bed.s3, BUCKET, &format!("t-{}/", self.bed.id)).await;
        drop_test_database(&self.bed.db).await;
        remove_work_dir(&self.bed.work);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_from_aws_kinesis_agg_are_consumed_like_plain_records() {
    let env = Env::start().await;
    let common = [
        "--interval",
        "10s",
        "--start",
        "2025-03-14T23:50:00Z",
        "--rapid-threshold",
        THRESHOLD,
        "--quiet",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        common.iter().chain(extra.iter()).copied().collect()
    };
    let sim = run_simulator(
        &env.bed.work,
        "readings",
        &with(&[
            "--vehicles",
            "5",
            "--duration",
            "1200s",
            "--seed",
            "21",
            "--duplicate-rate",
            "0.05",
            "--malformed-rate",
            "0.04",
        ]),
        &[],
    );
    // The corrupt aggregate carries readings of other vehicles, so that storing any of them
    // would show.
    let extra = run_simulator(
        &env.bed.work,
        "extra",
        &with(&["--vehicles", "2", "--duration", "100s", "--seed", "22"]),
        &[],
    );
    let extra_vins = truth_vins(&extra.truth);
    assert!(extra_vins.is_disjoint(&truth_vins(&sim.truth)));
    let malformed = sim.truth["malformed"]
        .as_array()
        .expect("malformed")
        .clone();
    assert!(malformed.len() >= 5, "malformed: {}", malformed.len());

    // Lines → groups (plain records and aggregates, alternating by GROUPS).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut next = 0;
    for size in GROUPS.iter().cycle() {
        if next >= sim.lines.len() {
            break;
        }
        let end = (next + size).min(sim.lines.len());
        groups.push((next..end).collect());
        next = end;
    }
    let to_aggregate: Vec<Vec<(String, Vec<u8>)>> = groups
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            g.iter()
                .map(|&i| (partition_key(&sim.lines[i]), sim.lines[i].clone()))
                .collect()
        })
        .chain(std::iter::once(
            extra
                .lines
                .iter()
                .map(|l| (partition_key(l), l.clone()))
                .collect(),
        ))
        .collect();
    let mut aggregates = aws_kinesis_agg(&to_aggregate).into_iter();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    let mut placement: Vec<Option<Placement>> = vec![None; sim.lines.len()];
    for g in &groups {
        if g.len() == 1 {
            placement[g[0]] = Some(Placement {
                record: records.len(),
                sub: None,
            });
            records.push((partition_key(&sim.lines[g[0]]), sim.lines[g[0]].clone()));
        } else {
            for (sub, &i) in g.iter().enumerate() {
                placement[i] = Some(Placement {
                    record: records.len(),
                    sub: Some(sub as u64),
                });
            }
            records.push(aggregates.next().expect("one aggregate per group"));
        }
    }
    // The corrupt aggregate (one byte of its message flipped: MD5 mismatch), mid-stream.
    let (corrupt_pk, mut corrupt) = aggregates.next().expect("the extra aggregate");
    assert_eq!(corrupt[..4], [0xF3, 0x89, 0x9A, 0xC2], "KPL magic");
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x20;
    let corrupt_at = records.len() / 2;
    records.insert(corrupt_at, (corrupt_pk, corrupt.clone()));
    for p in placement.iter_mut().flatten() {
        if p.record >= corrupt_at {
            p.record += 1;
        }
    }
    let placement: Vec<Placement> = placement.into_iter().map(|p| p.unwrap()).collect();
    assert!(records.len() > 2 * BATCH, "several batches");

    let seqs = put(&env.bed.kinesis, &env.bed.stream, &records).await;
    let stream = read_one_shard_stream(&env.bed.kinesis, &env.bed.stream, records.len()).await;
    let by_seq: HashMap<&str, &StreamRecord> = stream
        .iter()
        .map(|r| (r.sequence_number.as_str(), r))
        .collect();
    for (i, (pk, data)) in records.iter().enumerate() {
        let r = by_seq[seqs[i].as_str()];
        assert_eq!((&r.partition_key, &r.data), (pk, data), "record {i}");
    }

    env.deliver_all(&stream).await;

    // 1. speed.telemetry and the lake hold exactly the valid readings sent.
    let expected = truth_daily_map(&sim.truth);
    assert_eq!(
        speed_daily(&env.bed.warehouse).await,
        expected,
        "speed.telemetry"
    );
    let lake = env.objects("vehicle_telematics_raw/").await;
    let rows: Vec<LakeRow> = lake
        .values()
        .flat_map(|b| decode_parquet(b.clone()))
        .collect();
    assert_eq!(lake_daily(&rows), expected, "lake");
    let corrupt_seq = &seqs[corrupt_at];
    assert!(rows.iter().all(|r| !extra_vins.contains(&r.0)));
    assert!(rows.iter().all(|r| &r.7 != corrupt_seq));
    // Lake rows name the Kinesis record that carried them.
    let row_seqs: BTreeSet<&str> = rows.iter().map(|r| r.7.as_str()).collect();
    assert!(row_seqs.iter().all(|s| seqs.iter().any(|x| x == s)));

    // 2. Dead letters: each malformed reading under its (sequence, sub-sequence), and the
    //    corrupt aggregate whole.
    let letters: BTreeMap<String, Value> = env
        .objects("rejected/")
        .await
        .into_iter()
        .map(|(k, b)| (k, serde_json::from_slice(&b).expect("letter JSON")))
        .collect();
    let shard = &stream[0].shard_id;
    let mut want: BTreeMap<String, (String, Option<u64>, String, Vec<u8>)> = malformed
        .iter()
        .map(|m| {
            let line = m["line"].as_u64().unwrap() as usize;
            let p = placement[line];
            let seq = &seqs[p.record];
            let sub = p.sub.map(|s| format!("-{s}")).unwrap_or_default();
            (
                format!("t-{}/rejected/{shard}/{seq}{sub}.json", env.bed.id),
                (
                    m["reason"].as_str().unwrap().to_owned(),
                    p.sub,
                    partition_key(&sim.lines[line]),
                    sim.lines[line].clone(),
                ),
            )
        })
        .collect();
    let (corrupt_pk, _) = &records[corrupt_at];
    want.insert(
        format!("t-{}/rejected/{shard}/{corrupt_seq}.json", env.bed.id),
        (
            "aggregate_bad_md5".to_owned(),
            None,
            corrupt_pk.clone(),
            corrupt.clone(),
        ),
    );
    assert_eq!(
        letters.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "dead-letter keys"
    );
    assert!(
        want.values().any(|w| w.1.is_some()),
        "some malformed reading was inside an aggregate"
    );
    for (key, (reason, sub, pk, data)) in &want {
        let l = &letters[key];
        assert_eq!(l["reason"], reason.as_str(), "{key}: {l}");
        assert_eq!(l["sub_sequence_number"], json!(sub), "{key}");
        assert_eq!(l["partition_key"], pk.as_str(), "{key}");
        assert_eq!(unb64(l["data_base64"].as_str().unwrap()), *data, "{key}");
    }
    let lake_log =
        std::fs::read_to_string(env.bed.work.join("lake-writer.log")).unwrap_or_default();
    assert!(
        lake_log.contains("aggregate_bad_md5"),
        "lake-writer counts the corrupt aggregate by its reason"
    );

    // 3. Redelivery of every batch (as after a crash before checkpointing) changes nothing.
    let telemetry_rows = || async {
        let rs = env
            .bed
            .warehouse
            .query("SELECT COUNT(*) AS n FROM speed.telemetry", &[])
            .await
            .unwrap();
        rs.iter().next().unwrap().get_i64("n").unwrap()
    };
    let rows_before = telemetry_rows().await;
    env.deliver_all(&stream).await;
    let rows_after = telemetry_rows().await;
    assert_eq!(
        rows_before,
        sim.truth["counts"]["valid_readings"].as_i64().unwrap()
    );
    assert_eq!(rows_after, rows_before);
    assert_eq!(speed_daily(&env.bed.warehouse).await, expected);
    assert_eq!(
        env.objects("vehicle_telematics_raw/").await,
        lake,
        "lake objects"
    );
    let letters_after: BTreeMap<String, Value> = env
        .objects("rejected/")
        .await
        .into_iter()
        .map(|(k, b)| (k, serde_json::from_slice(&b).unwrap()))
        .collect();
    assert_eq!(letters_after, letters, "dead letters");

    env.finish().await;
}
