//! The real `lake-writer` binary (hosted by lambda_host) against LocalStack S3, and the
//! Firehose lake sink against LocalStack Firehose.
//!
//! Data: the real `simulator` for two windows around midnight UTC in March 2025 (trips
//! cross midnight; duplicates, late and malformed records), its `--out` lines turned into
//! Kinesis events of one shard (increasing sequence numbers) in batches of [`BATCH`].
//! Every test writes under its own prefix `t-<uuid>/…` of the lake bucket.
//!
//! The lake is read back with the parquet crate's record reader and compared with the
//! simulator's ground truth (its own integer arithmetic), and, when the Data API emulator
//! is up, through an external table as Redshift Spectrum would read it.
//!
//! Needs: the local stack (`localstack/up`) and the binaries
//! (`cargo build -p simulator -p lake-writer`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::lake::{
    FirehoseLakeSink, json_line, parse_partition, partition_location, partition_spec,
};
use fleetline_aws::{DataApiWarehouse, Warehouse, WarehouseConfig};
use fleetline_core::ports::lake::{LakeBatch, LakeRow, LakeSink};
use fleetline_tests::{
    DailyKey, DailyTotals, Simulated, create_test_database, data_api_client, data_api_endpoint,
    decimal_unscaled, delete_objects_under, drop_test_database, ensure_bucket, env_or,
    function_spec, get_object_bytes, list_etags, local_aws_env, local_region_and_credentials,
    local_s3_client, parquet_columns, parquet_reader, parquet_rows, require_localstack,
    run_simulator, service_endpoint, start_function, truth_daily_map, work_dir,
};
use lambda_host::{HostedFunction, InvokeOutcome};
use parquet::file::reader::FileReader;
use parquet::record::Field;
use serde_json::{Value, json};

const BUCKET: &str = "fleetline-lake";
const SHARD: &str = "shardId-000000000000";
/// Records per lake-writer invocation.
const BATCH: usize = 100;

// ------------------------------------------------------------------------------------
// Input: simulator lines → Kinesis batches

fn simulate(dir: &std::path::Path, seed: u64) -> Simulated {
    let seed = seed.to_string();
    let sim = run_simulator(
        dir,
        "readings",
        &[
            "--vehicles",
            "5",
            "--interval",
            "10s",
            "--duration",
            "1200s",
            "--days",
            "2",
            "--start",
            "2025-03-14T23:50:00Z",
            "--duplicate-rate",
            "0.05",
            "--late-rate",
            "0.05",
            "--malformed-rate",
            "0.03",
            "--seed",
            &seed,
            "--quiet",
        ],
        &[],
    );
    let counts = &sim.truth["counts"];
    for k in ["duplicates_sent", "late_sent", "malformed_sent"] {
        assert!(
            counts[k].as_u64().unwrap() > 0,
            "no {k} in this run: {counts}"
        );
    }
    sim
}

#[derive(Debug, Clone)]
struct Rec {
    seq: String,
    data: Vec<u8>,
}

/// Sequence numbers like Kinesis' (56 digits, increasing). Batches of about [`BATCH`],
/// never cut between a record and its duplicate (the simulator sends the duplicate right
/// after, with the same bytes): lake-writer de-duplicates within a batch, and the batch
/// layer (not this writer) removes duplicates that span batches.
fn to_batches(lines: &[Vec<u8>]) -> Vec<Vec<Rec>> {
    let mut out: Vec<Vec<Rec>> = vec![Vec::new()];
    for (i, line) in lines.iter().enumerate() {
        let same_as_previous = i > 0 && lines[i - 1] == *line;
        if out.last().is_some_and(|b| b.len() >= BATCH) && !same_as_previous {
            out.push(Vec::new());
        }
        if let Some(b) = out.last_mut() {
            b.push(Rec {
                seq: format!("4959{:052}", 1_000 + i),
                data: line.clone(),
            });
        }
    }
    out
}

fn kinesis_event(records: &[Rec]) -> Value {
    let records: Vec<fleetline_tests::StreamRecord> = records
        .iter()
        .map(|r| fleetline_tests::StreamRecord {
            shard_id: SHARD.to_owned(),
            sequence_number: r.seq.clone(),
            partition_key: "pk".to_owned(),
            data: r.data.clone(),
            arrival_secs: 1_742_000_000.5,
        })
        .collect();
    fleetline_tests::kinesis_event(
        "arn:aws:kinesis:us-east-1:000000000000:stream/vehicle-telemetry",
        "lake-writer",
        &records,
    )
}

// ------------------------------------------------------------------------------------
// The hosted function

struct Env {
    prefix: String,
    work: tempfile::TempDir,
    s3: aws_sdk_s3::Client,
    lake_writer: HostedFunction,
}

impl Env {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        require_localstack();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t-{id}/vehicle_telematics_raw/");
        let work = work_dir(&format!("fleetline-lake-writer-{}-", &id[..8]));
        let s3 = local_s3_client().await;
        ensure_bucket(&s3, BUCKET).await;
        let mut env = local_aws_env();
        env.extend(
            [
                ("LAKE_BUCKET", BUCKET),
                ("LAKE_PREFIX", prefix.as_str()),
                ("LAKE_SINK", "s3"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env.push(("RUST_LOG".into(), env_or("RUST_LOG", "info")));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let spec = function_spec("lake-writer", Duration::from_secs(120), work.path(), &env);
        let lake_writer = start_function(spec).await;
        Self {
            prefix,
            work,
            s3,
            lake_writer,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("lake-writer.log")).unwrap_or_default()
    }

    async fn invoke(&self, records: &[Rec]) -> Result<Value, String> {
        match self.lake_writer.invoke_json(&kinesis_event(records)).await {
            Ok(InvokeOutcome::Ok(body)) => Ok(serde_json::from_slice(&body).expect("JSON")),
            Ok(InvokeOutcome::FunctionError {
                error_type,
                error_message,
            }) => Err(format!("{error_type}: {error_message}")),
            Err(e) => panic!("lake-writer host error: {e} (log: {})", self.log()),
        }
    }

    async fn deliver_all(&self, batches: &[Vec<Rec>]) {
        for b in batches {
            let answer = self
                .invoke(b)
                .await
                .unwrap_or_else(|e| panic!("lake-writer failed: {e}\nlog:\n{}", self.log()));
            assert_eq!(
                answer,
                json!({"batchItemFailures": []}),
                "log:\n{}",
                self.log()
            );
        }
    }

    /// key → ETag of every object under the test's prefix.
    async fn objects(&self) -> BTreeMap<String, String> {
        list_etags(&self.s3, BUCKET, &self.prefix).await
    }

    async fn finish(self) {
        self.lake_writer.shutdown(Duration::from_secs(2)).await;
        // Best-effort cleanup of the test's objects.
        let top = self.prefix.split('/').next().unwrap_or_default().to_owned() + "/";
        delete_objects_under(&self.s3, BUCKET, &top).await;
    }
}

// ------------------------------------------------------------------------------------
// Reading the lake back (parquet record API; nothing from the writer's code)

#[derive(Debug, Clone, PartialEq)]
struct Row {
    vin: String,
    trip_id: String,
    ts_us: i64,
    event_day: NaiveDate,
    /// Unscaled decimals with their scale as written in the file.
    speed: (i64, i32),
    acceleration: (i64, i32),
    odometer: (i64, i32),
    latitude: Option<f64>,
    longitude: Option<f64>,
    shard_id: String,
    sequence_number: String,
    raw: String,
}

fn decode(bytes: Vec<u8>) -> Vec<Row> {
    let reader = parquet_reader(bytes);
    let meta = reader.metadata().file_metadata();
    // The compression the Glue table declares.
    for rg in reader.metadata().row_groups() {
        for c in rg.columns() {
            assert_eq!(c.compression(), parquet::basic::Compression::SNAPPY);
        }
    }
    assert!(meta.num_rows() > 0, "empty object");
    parquet_rows(&reader)
        .iter()
        .map(|row| {
            let f = parquet_columns(row);
            assert_eq!(f.len(), 12, "columns: {:?}", f.keys());
            let s = |n: &str| match f[n] {
                Field::Str(s) => s.clone(),
                other => panic!("{n}: {other:?}"),
            };
            let d = |n: &str| match f[n] {
                Field::Double(v) => Some(*v),
                Field::Null => None,
                other => panic!("{n}: {other:?}"),
            };
            let Field::TimestampMicros(ts_us) = f["ts"] else {
                panic!("ts: {:?}", f["ts"])
            };
            let Field::Date(days) = f["event_day"] else {
                panic!("event_day: {:?}", f["event_day"])
            };
            Row {
                vin: s("vin"),
                trip_id: s("trip_id"),
                ts_us: *ts_us,
                event_day: NaiveDate::from_num_days_from_ce_opt(719_163 + days).unwrap(),
                speed: decimal_unscaled(f["vehicle_speed"]),
                acceleration: decimal_unscaled(f["acceleration"]),
                odometer: decimal_unscaled(f["odometer"]),
                latitude: d("latitude"),
                longitude: d("longitude"),
                shard_id: s("shard_id"),
                sequence_number: s("sequence_number"),
                raw: s("raw"),
            }
        })
        .collect()
}

/// Daily aggregates over lake rows (threshold 10.0 km/h per s = 100000 at scale 4).
fn lake_daily(rows: &[Row]) -> BTreeMap<DailyKey, DailyTotals> {
    let mut out: BTreeMap<DailyKey, DailyTotals> = BTreeMap::new();
    for r in rows {
        assert_eq!((r.speed.1, r.acceleration.1, r.odometer.1), (3, 4, 3));
        // (readings, sum of speed, min odometer, max odometer, rapid accelerations)
        let d = out
            .entry((r.vin.clone(), r.trip_id.clone(), r.event_day))
            .or_insert((0, 0, i64::MAX, i64::MIN, 0));
        d.0 += 1;
        d.1 += r.speed.0;
        d.2 = d.2.min(r.odometer.0);
        d.3 = d.3.max(r.odometer.0);
        d.4 += i64::from(r.acceleration.0 >= 100_000);
    }
    out
}

fn ymd_dir(day: NaiveDate) -> String {
    day.format("year=%Y/month=%m/day=%d/").to_string()
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_holds_every_valid_reading_once_in_its_day_partition() {
    let env = Env::start(&[]).await;
    let sim = simulate(env.work.path(), 11);
    let batches = to_batches(&sim.lines);
    assert!(batches.len() > 5);
    env.deliver_all(&batches).await;

    let objects = env.objects().await;
    assert!(!objects.is_empty(), "no objects under {}", env.prefix);
    // Batch identity of every sequence number: (first, last) of its batch.
    let batch_of: HashMap<&str, (&str, &str)> = batches
        .iter()
        .flat_map(|b| {
            let id = (b[0].seq.as_str(), b[b.len() - 1].seq.as_str());
            b.iter().map(move |r| (r.seq.as_str(), id))
        })
        .collect();
    let line_of: HashMap<&str, &[u8]> = batches
        .iter()
        .flatten()
        .map(|r| (r.seq.as_str(), r.data.as_slice()))
        .collect();

    let mut rows = Vec::new();
    for key in objects.keys() {
        let file_rows = decode(get_object_bytes(&env.s3, BUCKET, key).await);
        let first = &file_rows[0];
        let (bfirst, blast) = batch_of[first.sequence_number.as_str()];
        // The contract's key: prefix, the rows' event-day partition, shard-first-last.
        let want = format!(
            "{}{}{SHARD}-{bfirst}-{blast}.parquet",
            env.prefix,
            ymd_dir(first.event_day)
        );
        assert_eq!(key, &want);
        for r in &file_rows {
            assert_eq!(r.event_day, first.event_day, "{key}: mixed days");
            let ts = DateTime::<Utc>::from_timestamp_micros(r.ts_us).unwrap();
            assert_eq!(ts.date_naive(), r.event_day);
            assert_eq!(
                batch_of[r.sequence_number.as_str()],
                (bfirst, blast),
                "{key}"
            );
            assert_eq!(r.shard_id, SHARD);
            assert_eq!(r.raw.as_bytes(), line_of[r.sequence_number.as_str()]);
            // The typed columns agree with the payload they came from.
            let payload: Value = serde_json::from_str(&r.raw).unwrap();
            assert_eq!(payload["VIN"], r.vin.as_str());
            assert_eq!(payload["trip_id"], r.trip_id.as_str());
            let loc = &payload["location"];
            assert_eq!(r.latitude, loc["latitude"].as_f64());
            assert_eq!(r.longitude, loc["longitude"].as_f64());
        }
        rows.extend(file_rows);
    }

    // Every valid reading exactly once; nothing else.
    let truth = &sim.truth;
    assert_eq!(
        rows.len() as u64,
        truth["counts"]["valid_readings"].as_u64().unwrap()
    );
    let unique: BTreeSet<(&str, i64)> = rows.iter().map(|r| (r.vin.as_str(), r.ts_us)).collect();
    assert_eq!(unique.len(), rows.len(), "duplicate (VIN, ts) in the lake");
    assert_eq!(lake_daily(&rows), truth_daily_map(truth));
    let days: BTreeSet<NaiveDate> = rows.iter().map(|r| r.event_day).collect();
    let d = |day| NaiveDate::from_ymd_opt(2025, 3, day).unwrap();
    assert_eq!(days, BTreeSet::from([d(14), d(15), d(16)]));

    // Redelivery of every batch: same keys, same bytes, nothing new.
    env.deliver_all(&batches).await;
    assert_eq!(env.objects().await, objects);

    // The same objects through an external table, as Spectrum reads them.
    if tokio::net::TcpStream::connect(
        data_api_endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/'),
    )
    .await
    .is_ok()
    {
        external_table_reads_the_same(&env.prefix, &objects, truth).await;
    } else {
        eprintln!("Data API emulator not running: external-table check skipped");
    }
    env.finish().await;
}

async fn external_table_reads_the_same(
    prefix: &str,
    objects: &BTreeMap<String, String>,
    truth: &Value,
) {
    let db = create_test_database("lw").await;
    let client = data_api_client().await;
    let wh = DataApiWarehouse::new(&client, WarehouseConfig::workgroup("fleetline", &db));
    let schema = "lake_test";
    let ddl = [
        format!(
            "CREATE EXTERNAL SCHEMA IF NOT EXISTS {schema} FROM DATA CATALOG DATABASE '{db}' \
             IAM_ROLE default CREATE EXTERNAL DATABASE IF NOT EXISTS"
        ),
        format!(
            "CREATE EXTERNAL TABLE {schema}.vehicle_telematics_raw (vin VARCHAR(17), \
             trip_id VARCHAR(64), ts TIMESTAMP, event_day DATE, vehicle_speed DECIMAL(12,3), \
             acceleration DECIMAL(10,4), odometer DECIMAL(12,3), latitude DOUBLE PRECISION, \
             longitude DOUBLE PRECISION, shard_id VARCHAR(128), sequence_number VARCHAR(128), \
             \"raw\" VARCHAR(65535)) PARTITIONED BY (year INTEGER, month INTEGER, day INTEGER) \
             STORED AS PARQUET LOCATION 's3://{BUCKET}/{prefix}'"
        ),
    ];
    for sql in &ddl {
        wh.execute(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // Partitions from the object keys, with the helpers batch-views uses.
    let days: BTreeSet<NaiveDate> = objects.keys().filter_map(|k| parse_partition(k)).collect();
    for day in &days {
        let sql = format!(
            "ALTER TABLE {schema}.vehicle_telematics_raw ADD IF NOT EXISTS PARTITION ({}) LOCATION '{}'",
            partition_spec(*day),
            partition_location(BUCKET, prefix, *day)
        );
        wh.execute(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let rs = wh
        .query(
            &format!(
                "SELECT year, month, day, COUNT(*) AS n, SUM(vehicle_speed) AS speed, \
                 SUM(CASE WHEN acceleration >= 10.0 THEN 1 ELSE 0 END) AS rapid, \
                 COUNT(DISTINCT vin || ' ' || CAST(ts AS VARCHAR)) AS distinct_readings, \
                 SUM(CASE WHEN event_day = CAST(ts AS DATE) THEN 0 ELSE 1 END) AS wrong_day \
                 FROM {schema}.vehicle_telematics_raw GROUP BY year, month, day ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .await
        .expect("query the external table");
    let got: Vec<(NaiveDate, i64, i64, i64, i64, i64)> = rs
        .map_rows(|r| {
            let day = NaiveDate::from_ymd_opt(
                r.get_i64("year")? as i32,
                r.get_i64("month")? as u32,
                r.get_i64("day")? as u32,
            )
            .unwrap();
            Ok((
                day,
                r.get_i64("n")?,
                r.get_scaled_i64("speed", 3)?,
                r.get_i64("rapid")?,
                r.get_i64("distinct_readings")?,
                r.get_i64("wrong_day")?,
            ))
        })
        .expect("decode");
    let mut want: BTreeMap<NaiveDate, (i64, i64, i64)> = BTreeMap::new();
    for ((_, _, day), (readings, sum_speed_milli, _, _, rapid)) in truth_daily_map(truth) {
        let e = want.entry(day).or_default();
        e.0 += readings;
        e.1 += sum_speed_milli;
        e.2 += rapid;
    }
    let want: Vec<(NaiveDate, i64, i64, i64, i64, i64)> = want
        .into_iter()
        .map(|(day, (n, speed, rapid))| (day, n, speed, rapid, n, 0))
        .collect();
    assert_eq!(got, want);
    let _ = wh
        .execute(
            &format!("DROP SCHEMA {schema} DROP EXTERNAL DATABASE CASCADE"),
            &[],
        )
        .await;
    drop_test_database(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failures_are_reported_the_way_lambda_retries_them() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(dir.path(), 12);
    let batch = &to_batches(&sim.lines)[0];

    // S3 unreachable (transient) → the whole batch back: its first sequence number.
    let env = Env::start(&[("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")]).await;
    let answer = env
        .invoke(batch)
        .await
        .expect("a batch response, not an error");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": batch[0].seq}]}),
        "log:\n{}",
        env.log()
    );
    env.finish().await;

    // A bucket that does not exist (permanent) → the invocation fails.
    let env = Env::start(&[("LAKE_BUCKET", "fleetline-no-such-bucket-lw")]).await;
    let err = env.invoke(batch).await.expect_err("a function error");
    assert!(err.starts_with("PermanentLakeFailure"), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_sink_delivers_newline_terminated_records() {
    require_localstack();
    let s3 = local_s3_client().await;
    ensure_bucket(&s3, BUCKET).await;
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = local_region_and_credentials();
    let firehose = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::config::Builder::from(&shared)
            .region(aws_sdk_firehose::config::Region::new(region))
            .credentials_provider(creds)
            .endpoint_url(service_endpoint("FIREHOSE"))
            .build(),
    );
    let id = uuid::Uuid::new_v4().simple().to_string();
    let stream = format!("lw-{}", &id[..12]);
    let prefix = format!("t-{id}/firehose/");
    firehose
        .create_delivery_stream()
        .delivery_stream_name(&stream)
        .delivery_stream_type(aws_sdk_firehose::types::DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                .bucket_arn(format!("arn:aws:s3:::{BUCKET}"))
                .role_arn("arn:aws:iam::000000000000:role/fleetline-firehose")
                .prefix(&prefix)
                // Explicit, as in template.yaml (LocalStack echoes back only what it was given,
                // and the SDK requires it in DescribeDeliveryStream's answer).
                .compression_format(aws_sdk_firehose::types::CompressionFormat::Uncompressed)
                .buffering_hints(
                    aws_sdk_firehose::types::BufferingHints::builder()
                        .interval_in_seconds(60)
                        .size_in_mbs(64)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateDeliveryStream");
    for _ in 0..120 {
        let d = firehose
            .describe_delivery_stream()
            .delivery_stream_name(&stream)
            .send()
            .await
            .expect("DescribeDeliveryStream");
        if d.delivery_stream_description()
            .map(|s| s.delivery_stream_status())
            == Some(&aws_sdk_firehose::types::DeliveryStreamStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 1,203 valid readings (three PutRecordBatch calls of ≤ 500), one of them pretty-printed
    // over several lines: the newline terminators must still split the objects exactly.
    let ctx = fleetline_core::ValidationContext::new(Utc::now());
    let mut rows = Vec::new();
    for i in 0..1_203u32 {
        let ts = DateTime::<Utc>::from_timestamp(1_741_996_200 + i64::from(i), 0).unwrap();
        let payload = if i == 7 {
            format!(
                "{{\n  \"VIN\": \"1HGCM82633A004352\",\n  \"trip_id\": \"t{i}\",\n  \"timestamp\": \"{}\",\n  \"vehicleSpeed\": 57.3,\n  \"acceleration\": -4.2109,\n  \"odometer\": 1042.377\n}}",
                ts.format("%Y-%m-%d %H:%M:%S%.9f")
            )
        } else {
            format!(
                r#"{{"VIN":"1HGCM82633A00{:04}","trip_id":"t{i}","timestamp":"{}","vehicleSpeed":{}.5,"acceleration":1.25,"odometer":{}.125,"location":{{"latitude":47.5,"longitude":-122.25}}}}"#,
                i % 7,
                ts.format("%Y-%m-%d %H:%M:%S%.9f"),
                i % 120,
                1_000 + i
            )
        };
        let reading = fleetline_core::parse_and_validate(payload.as_bytes(), &ctx)
            .unwrap_or_else(|e| panic!("payload {i} invalid: {e}"));
        rows.push(LakeRow {
            reading,
            shard_id: SHARD.into(),
            sequence_number: format!("4959{:052}", i),
        });
    }
    let batch = LakeBatch {
        shard_id: SHARD.into(),
        first_sequence: rows[0].sequence_number.clone(),
        last_sequence: rows[rows.len() - 1].sequence_number.clone(),
        rows,
    };
    let sink = FirehoseLakeSink::new(firehose.clone(), &stream);
    let report = sink.write(&batch).await.expect("PutRecordBatch");
    assert_eq!(report.rows, 1_203);
    assert_eq!(report.calls, 3);

    // LocalStack writes each PutRecordBatch as one object right away; wait for all rows.
    let want: Vec<String> = batch.rows.iter().map(|r| json_line(r).unwrap()).collect();
    let mut got: Vec<String> = Vec::new();
    for _ in 0..60 {
        got.clear();
        for key in list_etags(&s3, BUCKET, &prefix).await.keys() {
            let text =
                String::from_utf8(get_object_bytes(&s3, BUCKET, key).await).expect("UTF-8 object");
            assert!(text.ends_with('\n'), "{key} does not end with a newline");
            got.extend(text.split_inclusive('\n').map(str::to_owned));
        }
        if got.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted);
    for line in &got {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        // The partition key Firehose extracts (event_day) is the UTC date of ts.
        assert_eq!(v["event_day"].as_str(), v["ts"].as_str().map(|t| &t[..10]));
    }

    let _ = firehose
        .delete_delivery_stream()
        .delivery_stream_name(&stream)
        .send()
        .await;
    delete_objects_under(&s3, BUCKET, &format!("t-{id}/")).await;
}
