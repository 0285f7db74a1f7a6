//! The speed layer end to end on the local stack: simulator → Kinesis (LocalStack) →
//! stream-processor → Redshift speed tables (Data API emulator) → view-refresher → speed
//! views, compared with the simulator's ground truth, exactly.
//!
//! How the events are made: the real `simulator` binary puts its records into a fresh
//! one-shard LocalStack Kinesis stream; the test reads them back with GetRecords and wraps
//! them into Kinesis event JSON exactly as Lambda's event source mapping delivers them
//! (eventID `<shard>:<sequence>`, base64 data, real sequence numbers and arrival times), in
//! batches of [`BATCH`]. The functions run as their real binaries under `lambda-host`.
//!
//! Isolation: every test has its own database (`CREATE DATABASE sl_<random>` through the
//! Data API, then `localstack/apply-sql` with infra/sql/00, 05 and 10), its own stream and
//! its own dead-letter prefix `rejected/<test-id>/`, so tests run in parallel and repeatedly.
//!
//! Needs: the local stack (`localstack/up`) and the binaries
//! (`cargo build -p simulator -p stream-processor -p view-refresher`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::ResultSet;
use fleetline_tests::{
    DailyKey, DailyTotals, Simulated, StreamRecord, TestBed, delete_objects_under,
    delete_stream_quietly, drop_test_database, env_or, function_env, function_spec,
    invoke_for_json, kinesis_event, local_aws_env, object_bodies, read_one_shard_stream,
    remove_work_dir, run_simulator, start_function, truth_by_vin_year, truth_daily_map,
    warehouse_daily_map,
};
use lambda_host::{HostedFunction, InvokeOutcome};
use serde_json::{Value, json};

/// Records per invocation (the event source mapping's BatchSize).
const BATCH: usize = 250;
const BUCKET: &str = "fleetline-lake";
const THRESHOLD: &str = "10.0";

// ------------------------------------------------------------------------------------
// The per-test environment

struct SpeedEnv {
    /// Its work directory holds function logs and simulator output; removed by `finish`,
    /// kept when a test fails (or with FLEETLINE_TEST_KEEP_LOGS=1).
    bed: TestBed,
    prefix: String,
    stream_processor: HostedFunction,
    view_refresher: HostedFunction,
}

/// Simulated data: what was sent (in order) and the ground truth.
struct SimData {
    records: Vec<StreamRecord>,
    /// The simulator's --out lines (record i of the stream is line i).
    lines: Vec<Vec<u8>>,
    truth: Value,
}

impl SpeedEnv {
    /// `extra_env` is added to stream-processor's environment.
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let bed = TestBed::start("sl", BUCKET).await;
        let (db, id, work) = (&bed.db, &bed.id, &bed.work);
        let prefix = format!("rejected/{id}/");
        eprintln!("speed-layer test: dead letters s3://{BUCKET}/{prefix}");
        let env = function_env(
            db,
            &[
                ("LAKE_BUCKET", BUCKET.to_owned()),
                ("REJECTED_PREFIX", prefix.clone()),
                ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", THRESHOLD.to_owned()),
            ],
        );
        let spec = |name: &str| function_spec(name, Duration::from_secs(120), work, &env);
        let mut sp = spec("stream-processor");
        for (k, v) in extra_env {
            sp = sp.with_env(*k, *v);
        }
        let stream_processor = start_function(sp).await;
        let view_refresher = start_function(spec("view-refresher")).await;
        Self {
            bed,
            prefix,
            stream_processor,
            view_refresher,
        }
    }

    /// Runs the simulator into this test's stream (`args` after the common ones) and reads
    /// the records back.
    async fn simulate(&self, seed: u64, args: &[&str]) -> SimData {
        // Three days ago at 08:00 UTC: in the past whatever the clock says, so no reading
        // is "in the future" for the validator.
        let start = (chrono::Utc::now() - chrono::TimeDelta::days(3))
            .format("%Y-%m-%dT08:00:00Z")
            .to_string();
        let seed = seed.to_string();
        let mut all_args = vec![
            "--vehicles",
            "5",
            "--interval",
            "1s",
            "--duration",
            "120s",
            "--seed",
            &seed,
            "--start",
            &start,
            "--rapid-threshold",
            THRESHOLD,
            "--quiet",
            "--kinesis-stream",
            &self.bed.stream,
        ];
        all_args.extend_from_slice(args);
        let Simulated { lines, truth } =
            run_simulator(&self.bed.work, "readings", &all_args, &local_aws_env());
        let records = read_one_shard_stream(&self.bed.kinesis, &self.bed.stream, lines.len()).await;
        // Kinesis keeps a shard's order: record i is line i, byte for byte.
        for (i, (r, l)) in records.iter().zip(&lines).enumerate() {
            assert_eq!(&r.data, l, "record {i} differs from line {i}");
        }
        SimData {
            records,
            lines,
            truth,
        }
    }

    /// Invokes stream-processor with one batch; returns its JSON answer.
    async fn deliver(&self, records: &[StreamRecord]) -> Value {
        let event = kinesis_event(&self.bed.stream_arn, "stream-processor", records);
        invoke_for_json(&self.stream_processor, &event, "stream-processor").await
    }

    /// Delivers one batch until it is not handed back, as Lambda does (the handed-back
    /// sequence number must be the batch's first). Returns the number of attempts. Only
    /// a loaded machine makes a normal batch time out; the lock test relies on this.
    async fn deliver_until_done(&self, records: &[StreamRecord]) -> usize {
        for attempt in 1..=5 {
            let answer = self.deliver(records).await;
            if answer == json!({"batchItemFailures": []}) {
                return attempt;
            }
            assert_eq!(
                answer,
                json!({"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]})
            );
        }
        panic!("the batch was handed back 5 times");
    }

    /// Delivers all records in batches of [`BATCH`]; every batch must succeed.
    async fn deliver_all(&self, records: &[StreamRecord]) {
        for batch in records.chunks(BATCH) {
            let answer = self.deliver(batch).await;
            assert_eq!(answer, json!({"batchItemFailures": []}), "batch answer");
        }
    }

    /// Invokes view-refresher with a scheduled event; it must succeed.
    async fn refresh(&self) -> Value {
        let event = json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": "2026-11-25T18:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/view-refresher"],
            "detail": {}
        });
        match self.view_refresher.invoke_json(&event).await {
            Ok(InvokeOutcome::Ok(body)) => {
                let v: Value = serde_json::from_slice(&body).expect("JSON response");
                assert_eq!(v["failed"], 0, "{v}");
                assert_eq!(v["control_updated"], true, "{v}");
                assert_eq!(v["views"][0]["view"], "speed.vehicle_daily_mv", "{v}");
                v
            }
            other => panic!("view-refresher invocation failed: {other:?}"),
        }
    }

    async fn query(&self, sql: &str) -> ResultSet {
        self.bed
            .warehouse
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn telemetry_rows(&self) -> i64 {
        let rs = self
            .query("SELECT COUNT(*) AS n FROM speed.telemetry")
            .await;
        rs.iter().next().expect("one row").get_i64("n").expect("n")
    }

    /// Dead letters under this test's prefix: key → body.
    async fn dead_letters(&self) -> BTreeMap<String, Value> {
        object_bodies(&self.bed.s3, BUCKET, &self.prefix)
            .await
            .into_iter()
            .map(|(key, body)| {
                let letter = serde_json::from_slice(&body).expect("dead letter is JSON");
                (key, letter)
            })
            .collect()
    }

    /// stream-processor's EMF documents so far (one per batch), in order.
    fn stream_metrics(&self) -> Vec<Value> {
        let log =
            std::fs::read_to_string(self.bed.work.join("stream-processor.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let start = l.find('{')?;
                serde_json::from_str::<Value>(&l[start..]).ok()
            })
            .filter(|v| v.get("_aws").is_some() && v.get("RecordsIn").is_some())
            .collect()
    }

    /// Stops the functions and removes what the test created (only called on success, so
    /// a failed test leaves its database, stream and logs for inspection).
    async fn finish(self) {
        self.stream_processor.shutdown(Duration::from_secs(2)).await;
        self.view_refresher.shutdown(Duration::from_secs(2)).await;
        delete_stream_quietly(&self.bed.kinesis, &self.bed.stream).await;
        delete_objects_under(&self.bed.s3, BUCKET, &self.prefix).await;
        drop_test_database(&self.bed.db).await;
        remove_work_dir(&self.bed.work);
    }
}

// ------------------------------------------------------------------------------------
// Reading the views and the truth as integers

/// The MV's rows: (vin, trip, day) → integers.
async fn mv_rows(env: &SpeedEnv) -> BTreeMap<DailyKey, DailyTotals> {
    let rs = env
        .query(
            "SELECT vin, trip_id, event_day, readings, sum_speed, min_odometer, max_odometer, \
             rapid_accelerations FROM speed.vehicle_daily_mv",
        )
        .await;
    warehouse_daily_map(&rs)
}

/// Every speed view equals the ground truth, to the unit.
async fn assert_views_match_truth(env: &SpeedEnv, truth: &Value) {
    // 1. The MV's daily rows.
    let daily = mv_rows(env).await;
    let expected_daily = truth_daily_map(truth);
    assert!(!expected_daily.is_empty());
    assert_eq!(
        daily, expected_daily,
        "speed.vehicle_daily_mv vs truth.daily"
    );

    // 2. Rapid accelerations and 3. miles (as exact nano-miles) by VIN and year.
    for (view, column, scale, list, value) in [
        (
            "speed.rapid_acceleration_by_year",
            "rapid_accelerations",
            None,
            "rapid_accelerations_by_vin_year",
            "rapid_accelerations",
        ),
        (
            "speed.miles_by_year",
            "miles",
            Some(9),
            "miles_by_vin_year",
            "miles_nano",
        ),
    ] {
        let rs = env
            .query(&format!("SELECT vin, year, {column} FROM {view}"))
            .await;
        let got: BTreeMap<(String, i64), i64> = rs
            .iter()
            .map(|r| {
                let v = match scale {
                    Some(scale) => r.get_scaled_i64(column, scale),
                    None => r.get_i64(column),
                };
                let key = (r.get_string("vin").unwrap(), r.get_i64("year").unwrap());
                (key, v.unwrap())
            })
            .collect();
        assert_eq!(got, truth_by_vin_year(truth, list, value), "{view}");
    }

    // 4. Average speed per trip: the exact sum and count, and the quotient.
    let rs = env
        .query("SELECT vin, event_day, trip_id, readings, sum_speed, avg_speed_kmh FROM speed.avg_speed_by_trip")
        .await;
    let mut got = BTreeMap::new();
    for r in rs.iter() {
        let readings = r.get_i64("readings").unwrap();
        let sum = r.get_scaled_i64("sum_speed", 3).unwrap();
        let avg = r.get_f64("avg_speed_kmh").unwrap();
        let exact = sum as f64 / 1000.0 / readings as f64;
        assert!((avg - exact).abs() < 1e-6, "avg_speed_kmh {avg} vs {exact}");
        got.insert(
            (
                r.get_string("vin").unwrap(),
                r.get_date("event_day").unwrap().to_string(),
                r.get_string("trip_id").unwrap(),
            ),
            (readings, sum),
        );
    }
    let want: BTreeMap<(String, String, String), (i64, i64)> = truth["avg_speed_by_trip"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_owned();
            (
                (s("vin"), s("date"), s("trip_id")),
                (
                    x["readings"].as_i64().unwrap(),
                    x["sum_speed_milli"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "speed.avg_speed_by_trip");
}

fn truth_count(truth: &Value, key: &str) -> i64 {
    truth["counts"][key]
        .as_i64()
        .unwrap_or_else(|| panic!("counts.{key}"))
}

// ------------------------------------------------------------------------------------
// Tests

/// a. Simulator data through both functions: every speed view equals the ground truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_views_equal_the_ground_truth() {
    let env = SpeedEnv::start(&[]).await;
    let sim = env.simulate(11, &[]).await;
    assert_eq!(sim.records.len(), 600);
    // Not a vacuous comparison: this seed has rapid accelerations.
    let rapid: i64 = truth_daily_map(&sim.truth).values().map(|d| d.4).sum();
    assert!(rapid > 0, "seed 11 has rapid accelerations");
    env.deliver_all(&sim.records).await;
    assert_eq!(
        env.telemetry_rows().await,
        truth_count(&sim.truth, "valid_readings")
    );

    let before = env
        .query("SELECT last_view_refresh_at FROM serving.control")
        .await;
    assert_eq!(before.len(), 1, "serving.control has one row");
    assert!(before.rows[0][0].is_null(), "not refreshed yet");
    let summary = env.refresh().await;
    assert_eq!(summary["refreshed"], 1);
    let after = env
        .query("SELECT last_view_refresh_at FROM serving.control")
        .await;
    assert_eq!(after.len(), 1);
    assert!(
        after
            .iter()
            .next()
            .unwrap()
            .get_timestamp("last_view_refresh_at")
            .is_ok()
    );

    assert_views_match_truth(&env, &sim.truth).await;

    // One metrics document per batch; their RecordsIn add up to what was sent.
    let metrics = env.stream_metrics();
    assert_eq!(metrics.len(), sim.records.len().div_ceil(BATCH));
    let stored: i64 = metrics
        .iter()
        .map(|m| m["RecordsStored"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, truth_count(&sim.truth, "valid_readings"));
    env.finish().await;
}

/// b. The same batches delivered twice: rows and views unchanged (with in-batch
///    duplicates from the producer in the data too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_batches_change_nothing() {
    let env = SpeedEnv::start(&[]).await;
    let sim = env.simulate(12, &["--duplicate-rate", "0.05"]).await;
    assert!(truth_count(&sim.truth, "duplicates_sent") > 0);
    env.deliver_all(&sim.records).await;
    env.refresh().await;
    let rows = env.telemetry_rows().await;
    assert_eq!(rows, truth_count(&sim.truth, "valid_readings"));
    let daily = mv_rows(&env).await;

    // At-least-once delivery: every batch again (and the first one a third time).
    env.deliver_all(&sim.records).await;
    let first = &sim.records[..BATCH];
    assert_eq!(env.deliver(first).await, json!({"batchItemFailures": []}));
    env.refresh().await;
    assert_eq!(env.telemetry_rows().await, rows, "row count unchanged");
    assert_eq!(mv_rows(&env).await, daily, "daily aggregates unchanged");
    assert_views_match_truth(&env, &sim.truth).await;

    // The redeliveries were seen and skipped, not silently dropped.
    let metrics = env.stream_metrics();
    let batches = sim.records.len().div_ceil(BATCH);
    assert_eq!(metrics.len(), 2 * batches + 1);
    for m in &metrics[batches..] {
        assert_eq!(m["RecordsStored"], 0, "{m}");
        assert_eq!(
            m["RecordsIn"].as_i64().unwrap(),
            m["DuplicatesInBatch"].as_i64().unwrap()
                + m["DuplicatesAlreadyStored"].as_i64().unwrap(),
            "{m}"
        );
    }
    env.finish().await;
}

/// c. Malformed records go to rejected/<shard>/<sequence>.json with the right reason, and
///    records in = stored + dead-lettered + in-batch duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_dead_lettered_with_their_reason() {
    let env = SpeedEnv::start(&[]).await;
    let sim = env
        .simulate(
            13,
            &["--malformed-rate", "0.08", "--duplicate-rate", "0.03"],
        )
        .await;
    let malformed = sim.truth["malformed"].as_array().unwrap().clone();
    assert!(
        malformed.len() >= 10,
        "enough malformed records: {}",
        malformed.len()
    );

    // One batch holds everything (Kinesis allows up to 10 000 records per invocation), so
    // every producer duplicate is an in-batch duplicate.
    assert_eq!(
        env.deliver(&sim.records).await,
        json!({"batchItemFailures": []})
    );

    // Dead letters: exactly the malformed lines, with the simulator's reason codes.
    let letters = env.dead_letters().await;
    let expected: BTreeMap<String, (String, usize)> = malformed
        .iter()
        .map(|m| {
            let line = m["line"].as_u64().unwrap() as usize;
            let r = &sim.records[line];
            (
                format!("{}{}/{}.json", env.prefix, r.shard_id, r.sequence_number),
                (m["reason"].as_str().unwrap().to_owned(), line),
            )
        })
        .collect();
    assert_eq!(
        letters.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "dead-letter keys"
    );
    for (key, (reason, line)) in &expected {
        let l = &letters[key];
        let r = &sim.records[*line];
        assert_eq!(l["reason"], reason.as_str(), "{key}: {l}");
        assert_eq!(l["function"], "stream-processor");
        assert_eq!(l["shard_id"], r.shard_id.as_str());
        assert_eq!(l["sequence_number"], r.sequence_number.as_str());
        assert_eq!(l["partition_key"], r.partition_key.as_str());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(l["data_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, sim.lines[*line], "{key}: original bytes");
        match std::str::from_utf8(&bytes) {
            Ok(text) => assert_eq!(l["data_utf8"], text),
            Err(_) => assert_eq!(l["data_utf8"], Value::Null),
        }
        assert!(!l["detail"].as_str().unwrap().is_empty());
        assert!(
            chrono::DateTime::parse_from_rfc3339(l["approximate_arrival"].as_str().unwrap())
                .is_ok()
        );
    }

    // The identity, from three independent places (stream, warehouse, bucket):
    //   records in = rows stored + dead letters + in-batch duplicates,
    // where the duplicates are the simulator's re-sent valid readings.
    let records_in = sim.records.len() as i64;
    let stored = env.telemetry_rows().await;
    let rejected = letters.len() as i64;
    let duplicates = truth_count(&sim.truth, "duplicates_sent");
    assert_eq!(stored, truth_count(&sim.truth, "valid_readings"));
    assert_eq!(rejected, truth_count(&sim.truth, "malformed_sent"));
    assert_eq!(records_in, stored + rejected + duplicates);
    // … and the function's own metrics say the same.
    let m = &env.stream_metrics()[0];
    assert_eq!(m["RecordsIn"].as_i64(), Some(records_in));
    assert_eq!(m["RecordsStored"].as_i64(), Some(stored));
    assert_eq!(m["RecordsRejected"].as_i64(), Some(rejected));
    assert_eq!(m["DuplicatesInBatch"].as_i64(), Some(duplicates));
    assert_eq!(m["DuplicatesAlreadyStored"].as_i64(), Some(0));

    env.refresh().await;
    assert_views_match_truth(&env, &sim.truth).await;
    env.finish().await;
}

/// d. The warehouse fails mid-batch (a statement of the batch's transaction waits on a
///    lock until the Data API call times out and is cancelled): the function hands the
///    whole batch back (batchItemFailures = its first sequence number); after the retry
///    nothing is lost or doubled, and the dead letters written twice exist once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_failure_mid_batch_is_retried_without_loss_or_doubles() {
    // Give up on a statement after 5 s (then CancelStatement): a transient failure.
    let env = SpeedEnv::start(&[("FLEETLINE_REDSHIFT_TIMEOUT_SECS", "5")]).await;
    let sim = env.simulate(14, &["--malformed-rate", "0.05"]).await;
    let (first, second) = sim.records.split_at(300);
    env.deliver_until_done(first).await;
    let rows_after_first = env.telemetry_rows().await;
    assert!(rows_after_first > 0);

    // Block writers of speed.telemetry (reads still work) from a direct session.
    let pg = postgres_session(&env.bed.db).await;
    pg.batch_execute("BEGIN; LOCK TABLE speed.telemetry IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    let answer = env.deliver(second).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": second[0].sequence_number}]}),
        "transient failure → retry the batch from its first record"
    );
    // The cancelled transaction is gone (rolled back) before the lock is released.
    wait_no_lock_waiters(&env.bed.db).await;
    assert_eq!(
        env.telemetry_rows().await,
        rows_after_first,
        "nothing of batch 2 committed"
    );
    pg.batch_execute("ROLLBACK").await.expect("unlock");

    // Lambda retries from the reported sequence number: the same batch again.
    let attempts = env.deliver_until_done(second).await;
    assert_eq!(
        env.telemetry_rows().await,
        truth_count(&sim.truth, "valid_readings")
    );
    let letters = env.dead_letters().await;
    assert_eq!(
        letters.len() as i64,
        truth_count(&sim.truth, "malformed_sent")
    );
    env.refresh().await;
    assert_views_match_truth(&env, &sim.truth).await;

    // The failed attempt stored nothing; the last attempt stored the rest.
    let metrics = env.stream_metrics();
    let failed = metrics
        .iter()
        .rev()
        .nth(attempts)
        .expect("the failed attempt");
    assert_eq!(failed["BatchRetries"], 1);
    assert_eq!(failed["RecordsStored"], 0);
    let last = metrics.last().unwrap();
    assert_eq!(last["BatchRetries"], 0);
    assert_eq!(
        last["RecordsStored"].as_i64().unwrap(),
        truth_count(&sim.truth, "valid_readings") - rows_after_first
    );
    env.finish().await;
}

async fn postgres_session(db: &str) -> tokio_postgres::Client {
    let base = env_or(
        "FLEETLINE_TEST_POSTGRES",
        "host=127.0.0.1 port=5433 user=postgres",
    );
    let conn = format!("{base} dbname={db}");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL behind the emulator ({conn}): {e}"));
    tokio::spawn(connection);
    client
}

/// Waits until no session of `db` waits on a lock (bounded: 30 s). Uses its own session:
/// PostgreSQL snapshots pg_stat_activity once per transaction, and the locking session is
/// inside one.
async fn wait_no_lock_waiters(db: &str) {
    let pg = postgres_session(db).await;
    for _ in 0..300 {
        let row = pg
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db],
            )
            .await
            .expect("pg_stat_activity");
        if row.get::<_, i64>(0) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a statement of {db} still waits on the lock 30 s after its cancellation");
}
