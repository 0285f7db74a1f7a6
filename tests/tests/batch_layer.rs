//! The batch layer end to end on the local stack: simulator → (Kinesis events) → real
//! `lake-writer` → Parquet lake in LocalStack S3 → real `batch-views` → Spectrum external
//! table + stored procedures in the Data API emulator → batch tables, compared with the
//! simulator's ground truth, exactly (fixed-point integers; miles as nano-miles).
//!
//! How the lake is written: the simulator's `--out` lines become Kinesis records of two
//! shards (partition key = VIN, increasing sequence numbers per shard) and are delivered
//! to lake-writer as Lambda's event source mapping would, in batches of [`BATCH`].
//!
//! Isolation: every test has its own database (`CREATE DATABASE bl_<random>` through the
//! Data API, then `localstack/apply-sql` with infra/sql 00, 05, 10, 20 and local/25 and
//! `--var LAKE_PREFIX=t-<id>/vehicle_telematics_raw/`) and its own lake prefix, so tests
//! run in parallel and repeatedly. The emulator keeps external schemas per database.
//!
//! Needs: the local stack (`localstack/up`) and the binaries
//! (`cargo build -p simulator -p lake-writer -p batch-views`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use fleetline_aws::{DataApiWarehouse, Warehouse, WarehouseConfig};
use fleetline_tests::{
    Simulated, create_test_database, data_api_client, data_api_endpoint, drop_test_database,
    ensure_bucket, env_or, local_aws_env, local_s3_client, repo_root, require_localstack,
    run_simulator, workspace_bin,
};
use lambda_host::{FunctionSpec, HostedFunction, InvokeOutcome};
use serde_json::{Value, json};

const BUCKET: &str = "fleetline-lake";
const THRESHOLD: &str = "10.0";
/// Records per lake-writer invocation.
const BATCH: usize = 100;
const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];
/// Files of infra/sql this layer needs (plus the local lake table).
const SQL_FILES: [&str; 4] = [
    "00_schemas.sql",
    "05_control.sql",
    "10_speed_layer.sql",
    "20_batch_layer.sql",
];

// ------------------------------------------------------------------------------------
// Kinesis records and events

#[derive(Debug, Clone)]
struct Rec {
    shard: &'static str,
    seq: String,
    key: String,
    data: Vec<u8>,
}

fn kinesis_event(records: &[Rec]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.key,
                    "sequenceNumber": r.seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": 1_741_996_800.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard, r.seq),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/lake-writer",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/vehicle-telemetry",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Lines → records: shard by VIN, sequence numbers increasing per shard from `first_seq`.
fn to_records(lines: &[Vec<u8>], first_seq: u64) -> Vec<Rec> {
    let mut next = [first_seq; 2];
    lines
        .iter()
        .map(|line| {
            let key = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| v["VIN"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "malformed".to_owned());
            let shard = key.bytes().map(usize::from).sum::<usize>() % 2;
            next[shard] += 1;
            Rec {
                shard: SHARDS[shard],
                seq: format!("4959{:052}", next[shard]),
                key,
                data: line.clone(),
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------
// Rows

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Daily {
    vin: String,
    trip_id: String,
    day: NaiveDate,
    readings: i64,
    sum_speed_milli: i64,
    min_odometer_m: i64,
    max_odometer_m: i64,
    rapid: i64,
}

fn truth_daily(truth: &Value) -> BTreeSet<Daily> {
    truth["daily"]
        .as_array()
        .expect("truth.daily")
        .iter()
        .map(|d| Daily {
            vin: d["vin"].as_str().unwrap().to_owned(),
            trip_id: d["trip_id"].as_str().unwrap().to_owned(),
            day: d["date"].as_str().unwrap().parse().unwrap(),
            readings: d["readings"].as_i64().unwrap(),
            sum_speed_milli: d["sum_speed_milli"].as_i64().unwrap(),
            min_odometer_m: d["min_odometer_m"].as_i64().unwrap(),
            max_odometer_m: d["max_odometer_m"].as_i64().unwrap(),
            rapid: d["rapid_accelerations"].as_i64().unwrap(),
        })
        .collect()
}

fn truth_rapid_by_year(truth: &Value) -> BTreeMap<(String, i64), i64> {
    truth["rapid_accelerations_by_vin_year"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["vin"].as_str().unwrap().to_owned(),
                    r["year"].as_i64().unwrap(),
                ),
                r["rapid_accelerations"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn truth_miles_by_year(truth: &Value) -> BTreeMap<i64, i64> {
    truth["total_miles_by_year"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["year"].as_i64().unwrap(),
                r["total_miles_nano"].as_i64().unwrap(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------
// The per-test environment

struct BatchEnv {
    db: String,
    lake_prefix: String,
    work: tempfile::TempDir,
    warehouse: DataApiWarehouse,
    s3: aws_sdk_s3::Client,
    lake_writer: HostedFunction,
    batch_views: HostedFunction,
}

fn apply_sql(db: &str, lake_prefix: &str) {
    let root = repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    for f in SQL_FILES {
        std::fs::copy(root.join("infra/sql").join(f), dir.path().join(f))
            .unwrap_or_else(|e| panic!("copy infra/sql/{f}: {e}"));
    }
    std::fs::copy(
        root.join("infra/sql/local/25_lake_table.sql"),
        dir.path().join("25_lake_table.sql"),
    )
    .expect("copy infra/sql/local/25_lake_table.sql");
    let out = Command::new(root.join("localstack/apply-sql"))
        .args(["--database", db, "--var"])
        .arg(format!("LAKE_PREFIX={lake_prefix}"))
        .arg("--dir")
        .arg(dir.path())
        .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_endpoint())
        .output()
        .expect("run localstack/apply-sql");
    assert!(
        out.status.success(),
        "apply-sql --database {db} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl BatchEnv {
    async fn start() -> Self {
        require_localstack();
        let _ = data_api_client().await; // panics with a hint when the emulator is down
        let db = create_test_database("bl").await;
        let test_id = db.trim_start_matches("bl_").to_owned();
        let lake_prefix = format!("t-{test_id}/vehicle_telematics_raw/");
        apply_sql(&db, &lake_prefix);
        let work = tempfile::Builder::new()
            .prefix(&format!("fleetline-batch-{test_id}-"))
            .tempdir_in("/tmp")
            .expect("tempdir");
        let s3 = local_s3_client().await;
        ensure_bucket(&s3, BUCKET).await;
        let client = data_api_client().await;
        let warehouse =
            DataApiWarehouse::new(&client, WarehouseConfig::workgroup("fleetline", &db));

        let mut env: Vec<(String, String)> = local_aws_env();
        env.extend(
            [
                ("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_endpoint()),
                ("FLEETLINE_REDSHIFT_WORKGROUP", "fleetline".to_owned()),
                ("FLEETLINE_REDSHIFT_DATABASE", db.clone()),
                ("LAKE_BUCKET", BUCKET.to_owned()),
                ("LAKE_PREFIX", lake_prefix.clone()),
                ("LAKE_SINK", "s3".to_owned()),
                ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", THRESHOLD.to_owned()),
                ("RUST_LOG", env_or("RUST_LOG", "info")),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let spec = |name: &str| {
            let mut s = FunctionSpec::new(name, workspace_bin(name))
                .with_timeout(Duration::from_secs(180))
                .with_log_file(work.path().join(format!("{name}.log")))
                .with_forward_output(false);
            for (k, v) in &env {
                s = s.with_env(k, v);
            }
            s
        };
        let lake_writer = HostedFunction::start(spec("lake-writer"))
            .await
            .expect("start lake-writer");
        let batch_views = HostedFunction::start(spec("batch-views"))
            .await
            .expect("start batch-views");
        Self {
            db,
            lake_prefix,
            work,
            warehouse,
            s3,
            lake_writer,
            batch_views,
        }
    }

    /// Runs the simulator (3 days of 10 minutes around midnight UTC in March 2025, so trips
    /// cross midnight; duplicates, late and malformed records included).
    fn simulate(&self, seed: u64, malformed_rate: &str) -> Simulated {
        let seed = seed.to_string();
        let sim = run_simulator(
            self.work.path(),
            "readings",
            &[
                "--vehicles",
                "4",
                "--interval",
                "10s",
                "--duration",
                "600s",
                "--days",
                "3",
                "--start",
                "2025-03-14T23:55:00Z",
                "--duplicate-rate",
                "0.05",
                "--late-rate",
                "0.05",
                "--malformed-rate",
                malformed_rate,
                "--seed",
                &seed,
                "--rapid-threshold",
                THRESHOLD,
                "--quiet",
            ],
            &[],
        );
        assert!(sim.truth["counts"]["duplicates_sent"].as_u64().unwrap() > 0);
        sim
    }

    /// Delivers one batch to lake-writer; it must report no failures.
    async fn write_batch(&self, records: &[Rec]) {
        match self.lake_writer.invoke_json(&kinesis_event(records)).await {
            Ok(InvokeOutcome::Ok(body)) => {
                let v: Value = serde_json::from_slice(&body).expect("JSON response");
                assert_eq!(v["batchItemFailures"], json!([]), "lake-writer answer {v}");
            }
            other => panic!("lake-writer invocation failed: {other:?}"),
        }
    }

    /// All records, per shard in sequence order, in batches of [`BATCH`].
    async fn write_lake(&self, records: &[Rec]) {
        for shard in SHARDS {
            let of_shard: Vec<Rec> = records
                .iter()
                .filter(|r| r.shard == shard)
                .cloned()
                .collect();
            for batch in of_shard.chunks(BATCH) {
                self.write_batch(batch).await;
            }
        }
    }

    /// key → ETag of every lake object of this test.
    async fn lake_objects(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix(&self.lake_prefix)
                .set_continuation_token(token)
                .send()
                .await
                .expect("ListObjectsV2");
            for o in page.contents() {
                out.insert(
                    o.key().unwrap_or_default().to_owned(),
                    o.e_tag().unwrap_or_default().to_owned(),
                );
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return out,
            }
        }
    }

    async fn run_batch(&self, payload: Value) -> Value {
        match self.batch_views.invoke_json(&payload).await {
            Ok(InvokeOutcome::Ok(body)) => serde_json::from_slice(&body).expect("JSON response"),
            other => panic!(
                "batch-views invocation failed: {other:?} (log: {})",
                self.work.path().join("batch-views.log").display()
            ),
        }
    }

    /// batch.vehicle_daily with each row's computed_at.
    async fn daily(&self) -> BTreeMap<Daily, NaiveDateTime> {
        let rs = self
            .warehouse
            .query(
                "SELECT vin, trip_id, event_day, readings, sum_speed, min_odometer, max_odometer, \
                 rapid_accelerations, computed_at FROM batch.vehicle_daily",
                &[],
            )
            .await
            .expect("query batch.vehicle_daily");
        rs.map_rows(|r| {
            Ok((
                Daily {
                    vin: r.get_string("vin")?.trim_end().to_owned(),
                    trip_id: r.get_string("trip_id")?,
                    day: r.get_date("event_day")?,
                    readings: r.get_i64("readings")?,
                    sum_speed_milli: r.get_scaled_i64("sum_speed", 3)?,
                    min_odometer_m: r.get_scaled_i64("min_odometer", 3)?,
                    max_odometer_m: r.get_scaled_i64("max_odometer", 3)?,
                    rapid: r.get_i64("rapid_accelerations")?,
                },
                r.get_timestamp("computed_at")?,
            ))
        })
        .expect("decode batch.vehicle_daily")
        .into_iter()
        .collect()
    }

    async fn rapid_by_year(&self) -> BTreeMap<(String, i64), i64> {
        let rs = self
            .warehouse
            .query(
                "SELECT vin, year, rapid_accelerations FROM batch.batchlayer_rapid_acceleration_by_year",
                &[],
            )
            .await
            .expect("query rapid by year");
        rs.map_rows(|r| {
            Ok((
                (
                    r.get_string("vin")?.trim_end().to_owned(),
                    r.get_i64("year")?,
                ),
                r.get_i64("rapid_accelerations")?,
            ))
        })
        .unwrap()
        .into_iter()
        .collect()
    }

    async fn miles_by_year(&self) -> BTreeMap<i64, i64> {
        let rs = self
            .warehouse
            .query(
                "SELECT year, total_miles FROM batch.batchlayer_total_miles_by_year",
                &[],
            )
            .await
            .expect("query miles by year");
        rs.map_rows(|r| Ok((r.get_i64("year")?, r.get_scaled_i64("total_miles", 9)?)))
            .unwrap()
            .into_iter()
            .collect()
    }

    async fn control(&self) -> (Option<NaiveDate>, Option<String>) {
        let rs = self
            .warehouse
            .query(
                "SELECT boundary, last_batch_summary FROM serving.control",
                &[],
            )
            .await
            .expect("query serving.control");
        assert_eq!(rs.len(), 1, "serving.control has one row");
        let row = rs.iter().next().unwrap();
        (
            row.get_opt_date("boundary").unwrap(),
            row.get_opt_string("last_batch_summary").unwrap(),
        )
    }

    async fn cleanup(self) {
        self.lake_writer.shutdown(Duration::from_secs(2)).await;
        self.batch_views.shutdown(Duration::from_secs(2)).await;
        for key in self.lake_objects().await.keys() {
            let _ = self.s3.delete_object().bucket(BUCKET).key(key).send().await;
        }
        drop_test_database(&self.db).await;
    }
}

fn without_times(rows: &BTreeMap<Daily, NaiveDateTime>) -> BTreeSet<Daily> {
    rows.keys().cloned().collect()
}

// ------------------------------------------------------------------------------------
// Tests

/// Lake written by the real lake-writer; a first batch run reproduces the ground truth
/// exactly; a second identical run changes nothing; a redelivered lake batch leaves the
/// lake unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_views_match_the_ground_truth_and_rerun_changes_nothing() {
    let env = BatchEnv::start().await;
    let sim = env.simulate(11, "0.01");
    let records = to_records(&sim.lines, 0);
    env.write_lake(&records).await;
    // A producer retry: the first readings sent again later (new sequence numbers, so new
    // lake objects). lake-writer cannot see them as duplicates; the batch layer must.
    let retry = to_records(&sim.lines[..60], 2_000_000);
    env.write_lake(&retry).await;

    let lake = env.lake_objects().await;
    let days: BTreeSet<NaiveDate> = truth_daily(&sim.truth).iter().map(|r| r.day).collect();
    // 23:55 + 10 minutes on 3 days: readings on 4 UTC days.
    assert_eq!(days.len(), 4, "{days:?}");
    let first_day = *days.first().unwrap();
    let last_day = *days.last().unwrap();
    for day in &days {
        let part = format!(
            "{}year={}/month={}/day={}/",
            env.lake_prefix,
            day.format("%Y"),
            day.format("%m"),
            day.format("%d")
        );
        assert!(
            lake.keys().any(|k| k.starts_with(&part)),
            "no object under {part}"
        );
    }

    // Redelivery of an already written batch: same keys, same bytes.
    let shard0: Vec<Rec> = records
        .iter()
        .filter(|r| r.shard == SHARDS[0])
        .cloned()
        .collect();
    env.write_batch(&shard0[..BATCH.min(shard0.len())]).await;
    assert_eq!(
        env.lake_objects().await,
        lake,
        "redelivered batch changed the lake"
    );

    let boundary = last_day.succ_opt().unwrap();
    let first = env
        .run_batch(json!({"boundary": boundary.to_string()}))
        .await;
    assert_eq!(first["boundary"], boundary.to_string(), "{first}");
    assert_eq!(first["previous_boundary"], Value::Null);
    assert_eq!(first["partitions_registered"], 4);
    assert_eq!(first["lake_partitions"], 4);
    assert_eq!(first["recomputed_from"], first_day.to_string());
    assert_eq!(first["recomputed_to"], boundary.to_string());
    assert_eq!(first["days_recomputed"], 4);

    let expected = truth_daily(&sim.truth);
    let daily = env.daily().await;
    assert_eq!(
        without_times(&daily),
        expected,
        "batch.vehicle_daily vs ground truth"
    );
    assert_eq!(first["rows_written"], expected.len() as u64);
    assert_eq!(env.rapid_by_year().await, truth_rapid_by_year(&sim.truth));
    assert!(
        truth_rapid_by_year(&sim.truth).values().sum::<i64>() > 0,
        "no rapid accelerations simulated"
    );
    let miles = env.miles_by_year().await;
    assert_eq!(miles, truth_miles_by_year(&sim.truth));
    assert!(miles.values().all(|m| *m > 0));

    let (b, summary) = env.control().await;
    assert_eq!(b, Some(boundary));
    let summary: Value = serde_json::from_str(&summary.expect("last_batch_summary")).unwrap();
    assert_eq!(summary["boundary"], boundary.to_string());

    // Second run, same request: nothing new to register, same rows.
    let second = env
        .run_batch(json!({"boundary": boundary.to_string()}))
        .await;
    assert_eq!(second["previous_boundary"], boundary.to_string());
    assert_eq!(second["partitions_registered"], 0);
    assert_eq!(second["lake_partitions"], 4);
    // Incremental: the reprocess window [B − 2, B).
    assert_eq!(second["days_recomputed"], 2);
    assert_eq!(
        second["recomputed_from"],
        (boundary - chrono::Days::new(2)).to_string()
    );
    let rows_in_window = expected
        .iter()
        .filter(|r| r.day >= boundary - chrono::Days::new(2))
        .count();
    assert_eq!(second["rows_written"], rows_in_window as u64);
    let again = env.daily().await;
    assert_eq!(without_times(&again), expected);
    // Days outside the window were not touched.
    for (row, at) in &again {
        if row.day < boundary - chrono::Days::new(2) {
            assert_eq!(Some(at), daily.get(row), "{row:?} was recomputed");
        }
    }
    assert_eq!(env.rapid_by_year().await, truth_rapid_by_year(&sim.truth));
    assert_eq!(env.miles_by_year().await, truth_miles_by_year(&sim.truth));
    env.cleanup().await;
}

/// A late reading for an already computed day is counted once a run's range covers that
/// day, not before; invalid requests are answered with an error and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_readings_are_counted_by_the_next_run_covering_their_day() {
    let env = BatchEnv::start().await;
    // No malformed records: the late reading below is copied from a valid one.
    let sim = env.simulate(23, "0");
    let records = to_records(&sim.lines, 0);
    env.write_lake(&records).await;
    let expected = truth_daily(&sim.truth);
    let days: BTreeSet<NaiveDate> = expected.iter().map(|r| r.day).collect();
    let first_day = *days.first().unwrap();
    let boundary = days.last().unwrap().succ_opt().unwrap();

    let out = env
        .run_batch(json!({"boundary": boundary.to_string()}))
        .await;
    assert_eq!(out["days_recomputed"], 4, "{out}");
    let before = env.daily().await;
    assert_eq!(without_times(&before), expected);

    // Invalid requests: answered, nothing changes.
    for (payload, code) in [
        (json!({"boundary": "2999-01-01"}), "InvalidBoundary"),
        (json!({"boundary": "2025-03-01"}), "InvalidBoundary"),
        (json!({"boundary": "14/03/2025"}), "InvalidRequest"),
        (json!({"ful": true}), "InvalidRequest"),
    ] {
        let answer = env.run_batch(payload.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{payload}: {answer}");
    }
    assert_eq!(env.control().await.0, Some(boundary));
    assert_eq!(env.daily().await, before);

    // A late reading on the first day (one second after an existing one of the same VIN
    // and trip; rapid; odometer unchanged so min/max stay), arriving as a new lake object.
    let template = sim
        .lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .find(|v| {
            v["timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with(&first_day.to_string()) && !t.contains("23:59:5"))
        })
        .expect("a reading on the first day");
    let ts = NaiveDateTime::parse_from_str(
        template["timestamp"].as_str().unwrap(),
        "%Y-%m-%d %H:%M:%S%.f",
    )
    .unwrap()
        + chrono::TimeDelta::seconds(1);
    assert_eq!(ts.date(), first_day);
    let mut late = template.clone();
    late["timestamp"] = json!(ts.format("%Y-%m-%d %H:%M:%S%.9f").to_string());
    late["vehicleSpeed"] = json!(123.4);
    late["acceleration"] = json!(15.0);
    let late_records = to_records(&[serde_json::to_vec(&late).unwrap()], 1_000_000);
    env.write_batch(&late_records).await;

    let vin = late["VIN"].as_str().unwrap().to_owned();
    let trip = late["trip_id"].as_str().unwrap().to_owned();
    let key = |r: &Daily| r.vin == vin && r.trip_id == trip && r.day == first_day;
    let old = expected
        .iter()
        .find(|r| key(r))
        .expect("aggregate of the late reading")
        .clone();
    let mut with_late = expected.clone();
    with_late.remove(&old);
    with_late.insert(Daily {
        readings: old.readings + 1,
        sum_speed_milli: old.sum_speed_milli + 123_400,
        rapid: old.rapid + 1,
        ..old.clone()
    });

    // Incremental run: its window [B − 2, B) does not reach the first day.
    let inc = env.run_batch(json!({})).await;
    assert_eq!(inc["partitions_registered"], 0, "{inc}");
    let window_start =
        NaiveDate::parse_from_str(inc["recomputed_from"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert!(window_start > first_day, "{inc}");
    let after_inc = env.daily().await;
    for (row, at) in &after_inc {
        if row.day < window_start {
            assert_eq!(
                Some(at),
                before.get(row),
                "{row:?} recomputed outside the window"
            );
        }
    }
    assert!(after_inc.keys().any(key));
    assert_eq!(
        after_inc.keys().find(|r| key(r)).unwrap().readings,
        old.readings,
        "late reading counted before a run covered its day"
    );

    // A run whose window covers the first day counts it (exactly once).
    let boundary_now =
        NaiveDate::parse_from_str(inc["boundary"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let reach = (boundary_now - first_day).num_days();
    let covered = env.run_batch(json!({"reprocess_days": reach})).await;
    assert_eq!(
        covered["recomputed_from"],
        first_day.to_string(),
        "{covered}"
    );
    assert_eq!(without_times(&env.daily().await), with_late);
    let mut rapid = truth_rapid_by_year(&sim.truth);
    *rapid.get_mut(&(vin.clone(), 2025)).unwrap() += 1;
    assert_eq!(env.rapid_by_year().await, rapid);
    assert_eq!(env.miles_by_year().await, truth_miles_by_year(&sim.truth));

    // A full rebuild gives the same answer.
    let full = env
        .run_batch(json!({"full": true, "boundary": boundary_now.to_string()}))
        .await;
    assert_eq!(full["recomputed_from"], first_day.to_string(), "{full}");
    assert_eq!(without_times(&env.daily().await), with_late);
    assert_eq!(env.control().await.0, Some(boundary_now));
    env.cleanup().await;
}
