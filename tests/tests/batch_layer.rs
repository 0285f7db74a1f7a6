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
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use fleetline_aws::lake::partition_path;
use fleetline_aws::{DataApiWarehouse, Warehouse};
use fleetline_tests::{
    Simulated, TruthDaily, apply_sql_files_with_vars, create_test_database, data_api_client,
    delete_objects_under, drop_test_database, ensure_bucket, env_or, function_spec,
    invoke_for_json, lake_change_queue, list_etags, local_aws_env, local_s3_client,
    local_sqs_client, require_localstack, run_simulator, test_warehouse, truth_by_vin_year,
    truth_daily_rows, warehouse_env, work_dir,
};
use lambda_host::HostedFunction;
use serde_json::{Value, json};

const BUCKET: &str = "fleetline-lake";
const THRESHOLD: &str = "10.0";
/// Records per lake-writer invocation.
const BATCH: usize = 100;
const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];
/// Files of infra/sql this layer needs, and the local lake table.
const SQL_FILES: [&str; 5] = [
    "00_schemas.sql",
    "05_control.sql",
    "10_speed_layer.sql",
    "20_batch_layer.sql",
    "local/25_lake_table.sql",
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
    let records: Vec<fleetline_tests::StreamRecord> = records
        .iter()
        .map(|r| fleetline_tests::StreamRecord {
            shard_id: r.shard.to_owned(),
            sequence_number: r.seq.clone(),
            partition_key: r.key.clone(),
            data: r.data.clone(),
            arrival_secs: 1_741_996_800.0,
        })
        .collect();
    fleetline_tests::kinesis_event(
        "arn:aws:kinesis:us-east-1:000000000000:stream/vehicle-telemetry",
        "lake-writer",
        &records,
    )
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

/// A daily row of the ground truth or of batch.vehicle_daily.
type Daily = TruthDaily;

fn truth_daily(truth: &Value) -> BTreeSet<Daily> {
    truth_daily_rows(truth).into_iter().collect()
}

fn truth_rapid_by_year(truth: &Value) -> BTreeMap<(String, i64), i64> {
    truth_by_vin_year(
        truth,
        "rapid_accelerations_by_vin_year",
        "rapid_accelerations",
    )
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
    bucket: String,
    /// The lake change queue (S3 ObjectCreated notifications), when the test has one.
    queue_url: Option<String>,
    sqs: aws_sdk_sqs::Client,
    lake_prefix: String,
    work: tempfile::TempDir,
    warehouse: DataApiWarehouse,
    s3: aws_sdk_s3::Client,
    lake_writer: HostedFunction,
    batch_views: HostedFunction,
}

fn apply_sql(db: &str, bucket: &str, lake_prefix: &str) {
    let vars = [("LAKE_PREFIX", lake_prefix), ("LAKE_BUCKET", bucket)];
    apply_sql_files_with_vars(db, &SQL_FILES, &vars);
}

impl BatchEnv {
    async fn start() -> Self {
        Self::start_with(false).await
    }

    /// `changes`: the test gets its own bucket whose ObjectCreated notifications under the
    /// lake prefix go to its own SQS queue, drained by batch-views (change detection as the
    /// template wires it; a bucket has one notification configuration, hence the bucket).
    async fn start_with(changes: bool) -> Self {
        require_localstack();
        let _ = data_api_client().await; // panics with a hint when the emulator is down
        let db = create_test_database("bl").await;
        let test_id = db.trim_start_matches("bl_").to_owned();
        let lake_prefix = format!("t-{test_id}/vehicle_telematics_raw/");
        let bucket = if changes {
            format!("fl-changes-{}", test_id.to_lowercase().replace('_', "-"))
        } else {
            BUCKET.to_owned()
        };
        apply_sql(&db, &bucket, &lake_prefix);
        let work = work_dir(&format!("fleetline-batch-{test_id}-"));
        let s3 = local_s3_client().await;
        ensure_bucket(&s3, &bucket).await;
        let sqs = local_sqs_client().await;
        let queue_url = if changes {
            Some(
                lake_change_queue(
                    &s3,
                    &sqs,
                    &bucket,
                    &lake_prefix,
                    &format!("fl-changes-{test_id}"),
                )
                .await,
            )
        } else {
            None
        };
        let warehouse = test_warehouse(&db).await;

        let mut env: Vec<(String, String)> = local_aws_env();
        env.extend(warehouse_env(&db));
        env.extend(
            [
                ("LAKE_BUCKET", bucket.clone()),
                (
                    "LAKE_CHANGES_QUEUE_URL",
                    queue_url.clone().unwrap_or_default(),
                ),
                ("LAKE_PREFIX", lake_prefix.clone()),
                ("LAKE_SINK", "s3".to_owned()),
                ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", THRESHOLD.to_owned()),
                ("RUST_LOG", env_or("RUST_LOG", "info")),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let spec = |name: &str| function_spec(name, Duration::from_secs(180), work.path(), &env);
        let lake_writer = HostedFunction::start(spec("lake-writer"))
            .await
            .expect("start lake-writer");
        let batch_views = HostedFunction::start(spec("batch-views"))
            .await
            .expect("start batch-views");
        Self {
            db,
            bucket,
            queue_url,
            sqs,
            lake_prefix,
            work,
            warehouse,
            s3,
            lake_writer,
            batch_views,
        }
    }

    /// A fresh environment whose lake holds a simulated run (see [`BatchEnv::simulate`]):
    /// the environment, the run and its Kinesis records.
    async fn with_lake(seed: u64, malformed_rate: &str) -> (Self, Simulated, Vec<Rec>) {
        let env = Self::start().await;
        let sim = env.simulate(seed, malformed_rate);
        let records = to_records(&sim.lines, 0);
        env.write_lake(&records).await;
        (env, sim, records)
    }

    /// Runs the simulator (3 days of 10 minutes around midnight UTC in March 2025, so trips
    /// cross midnight; duplicates, late and malformed records included).
    fn simulate(&self, seed: u64, malformed_rate: &str) -> Simulated {
        let start = "2025-03-14T23:55:00Z";
        let work = self.work.path();
        let sim = simulate_days(work, "readings", 4, 3, start, malformed_rate, seed);
        assert!(sim.truth["counts"]["duplicates_sent"].as_u64().unwrap() > 0);
        sim
    }

    /// Delivers one batch to lake-writer; it must report no failures.
    async fn write_batch(&self, records: &[Rec]) {
        let v = invoke_for_json(&self.lake_writer, &kinesis_event(records), "lake-writer").await;
        assert_eq!(v["batchItemFailures"], json!([]), "lake-writer answer {v}");
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
        list_etags(&self.s3, &self.bucket, &self.lake_prefix).await
    }

    async fn run_batch(&self, payload: Value) -> Value {
        let what = format!(
            "batch-views (log: {})",
            self.work.path().join("batch-views.log").display()
        );
        invoke_for_json(&self.batch_views, &payload, &what).await
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
                    date: r.get_date("event_day")?,
                    readings: r.get_i64("readings")?,
                    sum_speed_milli: r.get_scaled_i64("sum_speed", 3)?,
                    min_odometer_m: r.get_scaled_i64("min_odometer", 3)?,
                    max_odometer_m: r.get_scaled_i64("max_odometer", 3)?,
                    rapid_accelerations: r.get_i64("rapid_accelerations")?,
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
        delete_objects_under(&self.s3, &self.bucket, &self.lake_prefix).await;
        if let Some(url) = &self.queue_url {
            let _ = self.sqs.delete_queue().queue_url(url).send().await;
            let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
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
    let (env, sim, records) = BatchEnv::with_lake(11, "0.01").await;
    // A producer retry: the first readings sent again later (new sequence numbers, so new
    // lake objects). lake-writer cannot see them as duplicates; the batch layer must.
    let retry = to_records(&sim.lines[..60], 2_000_000);
    env.write_lake(&retry).await;

    let lake = env.lake_objects().await;
    let days: BTreeSet<NaiveDate> = truth_daily(&sim.truth).iter().map(|r| r.date).collect();
    // 23:55 + 10 minutes on 3 days: readings on 4 UTC days.
    assert_eq!(days.len(), 4, "{days:?}");
    let first_day = *days.first().unwrap();
    let last_day = *days.last().unwrap();
    for day in &days {
        let part = format!("{}{}", env.lake_prefix, partition_path(*day));
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
    // Nothing changed in the lake and the boundary stays: nothing recomputed, no row touched.
    assert_eq!(second["days_recomputed"], 0, "{second}");
    assert_eq!(second["rows_written"], 0);
    let again = env.daily().await;
    assert_eq!(again, daily, "a run without changes recomputed rows");
    assert_eq!(env.rapid_by_year().await, truth_rapid_by_year(&sim.truth));
    assert_eq!(env.miles_by_year().await, truth_miles_by_year(&sim.truth));
    env.cleanup().await;
}

/// Without a lake change queue (LAKE_CHANGES_QUEUE_URL unset) a late reading that only
/// reached the lake is counted once a run's range covers its day (`reprocess_days`), not
/// before; invalid requests are answered with an error and change nothing. (With the queue:
/// `buffered_uploads_of_any_age_are_in_the_next_scheduled_run`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_readings_are_counted_by_the_next_run_covering_their_day() {
    // No malformed records: the late reading below is copied from a valid one.
    let (env, sim, _) = BatchEnv::with_lake(23, "0").await;
    let expected = truth_daily(&sim.truth);
    let days: BTreeSet<NaiveDate> = expected.iter().map(|r| r.date).collect();
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
    let key = |r: &Daily| r.vin == vin && r.trip_id == trip && r.date == first_day;
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
        rapid_accelerations: old.rapid_accelerations + 1,
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
        if row.date < window_start {
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

/// Simulated readings of 3 vehicles from `start` (10 minutes a day for 2 days, across
/// midnight), with duplicates and late records.
fn simulate_from(env: &BatchEnv, name: &str, seed: u64, start: &str) -> Simulated {
    simulate_days(env.work.path(), name, 3, 2, start, "0", seed)
}

/// The simulator into `<work>/<name>.jsonl`: `vehicles` vehicles for 10 minutes from `start`
/// on each of `days` days, a reading every 10 s, 5 % duplicates and late records.
fn simulate_days(
    work: &std::path::Path,
    name: &str,
    vehicles: u32,
    days: u32,
    start: &str,
    malformed_rate: &str,
    seed: u64,
) -> Simulated {
    let (vehicles, days, seed) = (vehicles.to_string(), days.to_string(), seed.to_string());
    let args = [
        "--vehicles",
        &vehicles,
        "--interval",
        "10s",
        "--duration",
        "600s",
        "--days",
        &days,
        "--start",
        start,
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
    ];
    run_simulator(work, name, &args, &[])
}

/// The lines of one vehicle (held back: its buffered upload) and the others.
fn split_vehicle(lines: &[Vec<u8>]) -> (String, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let vin_of = |l: &Vec<u8>| {
        serde_json::from_slice::<Value>(l)
            .ok()
            .and_then(|v| v["VIN"].as_str().map(str::to_owned))
    };
    let held_vin = lines.iter().find_map(vin_of).expect("a reading");
    let (held, rest) = lines
        .iter()
        .cloned()
        .partition(|l| vin_of(l).as_deref() == Some(held_vin.as_str()));
    (held_vin, held, rest)
}

fn days_of(out: &Value) -> BTreeSet<NaiveDate> {
    out["recomputed_days"]
        .as_array()
        .unwrap_or_else(|| panic!("no recomputed_days in {out}"))
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect()
}

fn add_up<K: Ord + Clone>(a: &BTreeMap<K, i64>, b: &BTreeMap<K, i64>) -> BTreeMap<K, i64> {
    let mut out = a.clone();
    for (k, v) in b {
        *out.entry(k.clone()).or_insert(0) += v;
    }
    out
}

/// Change detection (issue 15): a vehicle's buffered upload of 10-day-old readings, and one
/// of 400-day-old readings written while a batch run is under way, are in the batch views
/// after the next scheduled run (EventBridge payload, no options) — exactly the ground
/// truth, with no full rebuild, and only the changed days recomputed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buffered_uploads_of_any_age_are_in_the_next_scheduled_run() {
    let env = BatchEnv::start_with(true).await;
    let today = chrono::Utc::now().date_naive();
    let start = |days_ago: i64| format!("{}T23:55:00Z", today - chrono::TimeDelta::days(days_ago));
    let old = simulate_from(&env, "old", 41, &start(400));
    let recent = simulate_from(&env, "recent", 42, &start(10));
    let (old_vin, old_held, old_rest) = split_vehicle(&old.lines);
    let (recent_vin, recent_held, recent_rest) = split_vehicle(&recent.lines);

    // Everything but the two buffered vehicles reaches the lake; the scheduled run makes
    // every complete day batch-owned.
    let mut on_time = old_rest.clone();
    on_time.extend(recent_rest.iter().cloned());
    env.write_lake(&to_records(&on_time, 0)).await;
    let scheduled = json!({"version":"0","id":"e2e","detail-type":"Scheduled Event",
        "source":"aws.events","account":"000000000000","time":format!("{today}T00:30:00Z"),
        "region":"us-east-1","resources":["arn:aws:events:us-east-1:000000000000:rule/daily"],
        "detail":{}});
    let first = env.run_batch(scheduled.clone()).await;
    assert_eq!(first["boundary"], today.to_string(), "{first}");
    let truth: BTreeSet<Daily> = truth_daily(&old.truth)
        .union(&truth_daily(&recent.truth))
        .cloned()
        .collect();
    let without = |vins: &[&str]| -> BTreeSet<Daily> {
        truth
            .iter()
            .filter(|r| !vins.contains(&r.vin.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(
        without_times(&env.daily().await),
        without(&[&old_vin, &recent_vin])
    );

    // The 10-day-old buffered upload; an hourly catch-up counts it, boundary unchanged,
    // and recomputes its days only.
    let recent_held_recs = to_records(&recent_held, 1_000_000);
    env.write_lake(&recent_held_recs).await;
    let catch_up = env.run_batch(json!({"catch_up": true})).await;
    assert_eq!(catch_up["boundary"], today.to_string(), "{catch_up}");
    let truth_days_of = |vin: &str| -> BTreeSet<NaiveDate> {
        truth
            .iter()
            .filter(|r| r.vin == vin)
            .map(|r| r.date)
            .collect()
    };
    assert_eq!(days_of(&catch_up), truth_days_of(&recent_vin), "{catch_up}");
    assert_eq!(without_times(&env.daily().await), without(&[&old_vin]));

    // The 400-day-old buffered upload: a batch run starts while lake-writer is still
    // writing it (the first lake batch is written, the rest follow concurrently).
    let old_held_recs = to_records(&old_held, 2_000_000);
    let (head, tail) = old_held_recs.split_at(old_held_recs.len().min(BATCH / 2));
    env.write_lake(head).await;
    let (during, ()) = tokio::join!(env.run_batch(scheduled.clone()), async {
        for batch in tail.chunks(BATCH / 4) {
            env.write_lake(batch).await;
        }
    });
    assert_eq!(during["full"], false, "{during}");

    // The next scheduled run: every batch answer equals the ground truth.
    let next = env.run_batch(scheduled).await;
    assert_eq!(next["full"], false, "{next}");
    assert_eq!(next["boundary"], today.to_string(), "{next}");
    let old_days = truth_days_of(&old_vin);
    let recomputed: BTreeSet<NaiveDate> =
        days_of(&during).union(&days_of(&next)).cloned().collect();
    assert_eq!(recomputed, old_days, "during: {during}\nnext: {next}");
    assert_eq!(without_times(&env.daily().await), truth);
    assert_eq!(
        env.rapid_by_year().await,
        add_up(
            &truth_rapid_by_year(&old.truth),
            &truth_rapid_by_year(&recent.truth)
        )
    );
    assert_eq!(
        env.miles_by_year().await,
        add_up(
            &truth_miles_by_year(&old.truth),
            &truth_miles_by_year(&recent.truth)
        )
    );
    // Nothing left pending.
    let pending = env
        .warehouse
        .query("SELECT COUNT(*) AS n FROM batch.pending_days", &[])
        .await
        .expect("count pending days");
    assert_eq!(pending.map_rows(|r| r.get_i64("n")).unwrap(), vec![0]);
    env.cleanup().await;
}

/// Speed rows for a batch-owned day (never served) are deleted only once a committed
/// recompute of their day started after they arrived — a test of time, not content: these
/// rows have no lake data (docs/design.md §3). Rows "arriving" an hour
/// before the run are included and pruned; rows stamped an hour after it (arrived after
/// the recompute) stay, and every run marks their day again until one includes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_rows_are_pruned_only_once_a_recompute_included_them() {
    let env = BatchEnv::start().await;
    let day = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let now = chrono::Utc::now().naive_utc();
    let stamp = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let earlier = stamp(now - chrono::TimeDelta::hours(1));
    let later = stamp(now + chrono::TimeDelta::hours(1));
    let rows: Vec<String> = (0..5)
        .map(|i| {
            let arrived = if i < 3 { &earlier } else { &later };
            format!(
                "('1HGCM82633A00435{i}','t{i}',TIMESTAMP '{day} 10:00:0{i}',DATE '{day}',50.000,1.0000,100.000,0,'s','{i}',TIMESTAMP '{arrived}')"
            )
        })
        .collect();
    env.warehouse
        .execute(
            &format!(
                "INSERT INTO speed.telemetry (vin, trip_id, ts, event_day, vehicle_speed, acceleration, \
                 odometer, rapid_acceleration, shard_id, sequence_number, arrived_at) VALUES {}",
                rows.join(",")
            ),
            &[],
        )
        .await
        .expect("insert speed rows");
    let count = || async {
        let rs = env
            .warehouse
            .query(
                &format!(
                    "SELECT COUNT(*) AS n FROM speed.telemetry WHERE event_day = DATE '{day}'"
                ),
                &[],
            )
            .await
            .expect("count speed rows");
        rs.map_rows(|r| r.get_i64("n")).unwrap()[0]
    };

    // The day has speed rows the batch layer never included: the run recomputes it.
    let first = env.run_batch(json!({"boundary": "2025-03-20"})).await;
    assert_eq!(days_of(&first), BTreeSet::from([day]), "{first}");
    assert_eq!(first["pruned_speed_rows"], 3, "{first}");
    assert_eq!(count().await, 2);

    // The two rows that arrived after that recompute mark the day again; still not included.
    let second = env.run_batch(json!({"boundary": "2025-03-20"})).await;
    assert_eq!(days_of(&second), BTreeSet::from([day]), "{second}");
    assert_eq!(second["pruned_speed_rows"], 0, "{second}");
    assert_eq!(count().await, 2);
    env.cleanup().await;
}

/// An overlapping run whose swap starts after another run committed a later boundary (a
/// catch-up that read the boundary before the daily run moved it) does not conflict with
/// it under snapshot isolation; its swap must not move the boundary back, or the days in
/// between would lose their batch rows while their speed rows may already be pruned. Only
/// a `full` swap sets an earlier boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_swap_never_moves_the_boundary_back() {
    let env = BatchEnv::start().await;
    let committed = NaiveDate::from_ymd_opt(2025, 3, 20).unwrap();
    let stale = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    env.run_batch(json!({"boundary": "2025-03-20"})).await;
    assert_eq!(env.control().await.0, Some(committed));
    // A batch-owned day between the stale and the committed boundary.
    env.warehouse
        .execute(
            "INSERT INTO batch.vehicle_daily (vin, trip_id, event_day, readings, sum_speed, \
             min_odometer, max_odometer, rapid_accelerations, computed_at) VALUES \
             ('1HGCM82633A004352','t',DATE '2025-03-15',4,200.000,10.000,12.500,1,GETDATE())",
            &[],
        )
        .await
        .expect("insert a batch row");
    let settings = batch_views::Config::default();
    let days = |rows: BTreeMap<Daily, NaiveDateTime>| {
        rows.keys()
            .map(|d| (d.date, d.readings))
            .collect::<Vec<_>>()
    };
    let kept = vec![(NaiveDate::from_ymd_opt(2025, 3, 15).unwrap(), 4)];

    // Speed rows on a day the stale run moves over with no batch rows (its lake "behind"):
    // its hold must not lower the later boundary the other run committed either.
    env.warehouse
        .execute(
            "INSERT INTO speed.telemetry (vin, trip_id, ts, event_day, vehicle_speed, acceleration, \
             odometer, rapid_acceleration, shard_id, sequence_number) VALUES \
             ('1HGCM82633A004352','t',TIMESTAMP '2025-03-09 10:00:00',DATE '2025-03-09',50.000,1.0000,100.000,0,'s','1')",
            &[],
        )
        .await
        .expect("insert a speed row");
    let hold_from = NaiveDate::from_ymd_opt(2025, 3, 8);
    let swap = batch_views::run::swap_statements(stale, None, hold_from, &settings, "{}").unwrap();
    env.warehouse.transaction(swap).await.expect("stale swap");
    assert_eq!(env.control().await.0, Some(committed));
    assert_eq!(days(env.daily().await), kept);
    assert_eq!(env.rapid_by_year().await.values().sum::<i64>(), 1);

    // A full swap does move it back, and the day becomes speed-owned.
    let swap =
        batch_views::run::swap_statements(stale, Some(stale), None, &settings, "{}").unwrap();
    env.warehouse.transaction(swap).await.expect("full swap");
    assert_eq!(env.control().await.0, Some(stale));
    assert_eq!(days(env.daily().await), vec![]);
    env.cleanup().await;
}

/// Readings per (VIN, timestamp) of the simulator's lines on `day` (the speed layer keeps
/// one row per (vin, ts)): the rows the speed layer holds for that day.
fn distinct_readings(lines: &[Vec<u8>]) -> BTreeMap<(String, String), Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| {
            let key = (
                v["VIN"].as_str()?.to_owned(),
                v["timestamp"].as_str()?.to_owned(),
            );
            Some((key, v))
        })
        .collect()
}

fn day_of(line: &[u8]) -> Option<NaiveDate> {
    let v: Value = serde_json::from_slice(line).ok()?;
    v["timestamp"].as_str()?.get(..10)?.parse().ok()
}

/// The lake lags the speed layer (docs/design.md §3): the speed layer holds every reading
/// of the last day D, but lake-writer's objects for part of D have not landed when the
/// batch run moves the boundary over D. The run holds the boundary at D, so the merged
/// answer (batch before the boundary + speed from it, as query-api reads them) still counts
/// every reading exactly once; once the objects land, the next run moves the boundary
/// past D and the batch layer equals the ground truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_the_lake_lags_on_holds_the_boundary_until_it_catches_up() {
    let env = BatchEnv::start().await;
    let sim = env.simulate(31, "0");
    let truth = truth_daily(&sim.truth);
    let days: BTreeSet<NaiveDate> = truth.iter().map(|r| r.date).collect();
    let last = *days.last().unwrap();
    let target = last.succ_opt().unwrap();

    // The speed layer: every reading, once per (vin, ts).
    let speed = distinct_readings(&sim.lines);
    let rows: Vec<String> = speed
        .values()
        .enumerate()
        .map(|(i, v)| {
            let ts = v["timestamp"].as_str().unwrap();
            format!(
                "('{}','{}',TIMESTAMP '{ts}',DATE '{}',{},{},{},0,'s','{i}')",
                v["VIN"].as_str().unwrap(),
                v["trip_id"].as_str().unwrap(),
                &ts[..10],
                v["vehicleSpeed"],
                v["acceleration"],
                v["odometer"],
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        env.warehouse
            .execute(
                &format!(
                    "INSERT INTO speed.telemetry (vin, trip_id, ts, event_day, vehicle_speed, \
                     acceleration, odometer, rapid_acceleration, shard_id, sequence_number) VALUES {}",
                    chunk.join(",")
                ),
                &[],
            )
            .await
            .expect("insert speed rows");
    }

    // The lake: everything but the last 20 lines of day D (lake-writer lagging).
    let records = to_records(&sim.lines, 0);
    let of_last: Vec<usize> = (0..sim.lines.len())
        .filter(|i| day_of(&sim.lines[*i]) == Some(last))
        .collect();
    let withheld: BTreeSet<usize> = of_last[of_last.len() - 20..].iter().copied().collect();
    let (mut lagging, mut landed) = (Vec::new(), Vec::new());
    for (i, r) in records.into_iter().enumerate() {
        if withheld.contains(&i) {
            lagging.push(r);
        } else {
            landed.push(r);
        }
    }
    env.write_lake(&landed).await;
    let landed_lines: Vec<Vec<u8>> = (0..sim.lines.len())
        .filter(|i| !withheld.contains(i))
        .map(|i| sim.lines[i].clone())
        .collect();
    let readings_on = |m: &BTreeMap<(String, String), Value>, day: NaiveDate| {
        m.keys()
            .filter(|(_, ts)| ts.starts_with(&day.to_string()))
            .count() as u64
    };
    let speed_d = readings_on(&speed, last);
    let landed_d = readings_on(&distinct_readings(&landed_lines), last);
    assert!(
        landed_d < speed_d,
        "the withheld lines hold readings of D only"
    );

    let truth_per_day = |rows: &BTreeSet<Daily>| {
        let mut out: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        for r in rows {
            *out.entry(r.date).or_insert(0) += r.readings;
        }
        out
    };
    let expected = truth_per_day(&truth);
    assert_eq!(
        expected.get(&last).copied(),
        Some(i64::try_from(speed_d).unwrap())
    );
    // Readings per day as a merged query reads them: batch rows before the boundary, speed
    // rows from it (functions/query-api/src/sql.rs, merged_daily).
    let merged = || async {
        let rs = env
            .warehouse
            .query(
                "WITH b AS (SELECT MAX(boundary) AS boundary FROM serving.control) \
                 SELECT d.event_day, SUM(d.readings) AS readings FROM (\
                 SELECT v.event_day, v.readings FROM batch.vehicle_daily v, b \
                 WHERE b.boundary IS NOT NULL AND v.event_day < b.boundary \
                 UNION ALL SELECT t.event_day, COUNT(*) AS readings FROM speed.telemetry t, b \
                 WHERE (b.boundary IS NULL OR t.event_day >= b.boundary) GROUP BY t.event_day) d \
                 GROUP BY d.event_day ORDER BY 1",
                &[],
            )
            .await
            .expect("merged readings per day");
        rs.map_rows(|r| Ok((r.get_date("event_day")?, r.get_i64("readings")?)))
            .unwrap()
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    };

    // First run to D + 1: held at D, every reading counted once.
    let held = env.run_batch(json!({"boundary": target.to_string()})).await;
    assert_eq!(held["boundary"], last.to_string(), "{held}");
    assert_eq!(held["held_at"], last.to_string(), "{held}");
    assert_eq!(
        held["lake_behind"],
        json!([{"day": last, "speed_readings": speed_d, "batch_readings": landed_d, "held": true}]),
        "{held}"
    );
    assert_eq!(env.control().await.0, Some(last));
    assert_eq!(merged().await, expected);
    // The by-year views cover the batch-owned days only.
    let before_last: BTreeSet<Daily> = truth.iter().filter(|r| r.date < last).cloned().collect();
    let mut rapid: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &before_last {
        *rapid.entry((r.vin.clone(), 2025)).or_insert(0) += r.rapid_accelerations;
    }
    rapid.retain(|_, n| *n > 0);
    let mut got = env.rapid_by_year().await;
    got.retain(|_, n| *n > 0);
    assert_eq!(got, rapid);

    // The lagging objects land; the next run moves the boundary past D.
    env.write_lake(&lagging).await;
    let caught_up = env.run_batch(json!({"boundary": target.to_string()})).await;
    assert_eq!(caught_up["boundary"], target.to_string(), "{caught_up}");
    assert_eq!(caught_up["held_at"], Value::Null, "{caught_up}");
    assert_eq!(caught_up["lake_behind"], json!([]), "{caught_up}");
    // D at least (earlier days too when their speed rows arrived in the second the first
    // recompute started: not yet taken as included, §9).
    assert!(days_of(&caught_up).contains(&last), "{caught_up}");
    assert_eq!(without_times(&env.daily().await), truth);
    assert_eq!(merged().await, expected);
    assert_eq!(env.rapid_by_year().await, truth_rapid_by_year(&sim.truth));
    env.cleanup().await;
}
