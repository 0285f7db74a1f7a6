//! The streaming-ingestion speed path: the stream step's order and accounting with fake
//! ports, and the Redshift adapter's SQL.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use fleetline_aws::Warehouse;
use fleetline_aws::env::FromEnv;
use fleetline_aws::warehouse::{Column, ExecSummary, ResultSet, SqlParam, Value, WarehouseError};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use fleetline_core::ports::speed::{
    SpeedViews, StoreError, StreamLoad, StreamLoader, StreamReject,
};
use serde_json::json;

use super::redshift_stream::{
    REFRESH_STREAM, RUN_QUERY, load_statements, mark_statements, pending_rejects_sql,
};
use super::*;

fn arrival() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T17:04:31.250Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn reject(seq: &str) -> StreamReject {
    StreamReject {
        shard_id: "shardId-000000000001".into(),
        sequence_number: seq.into(),
        approximate_arrival: arrival(),
        partition_key: "1HGCM82633A004352".into(),
        reason: "bad_vin".into(),
        field: Some("VIN".into()),
        detail: "VIN must be 17 characters of A-Z and 0-9".into(),
        data: br#"{"VIN":"x"}"#.to_vec(),
        truncated: false,
    }
}

/// Every call in order, into one log shared by the fakes.
type Log = Mutex<Vec<String>>;

struct FakeLoader<'a> {
    log: &'a Log,
    fail_on: Option<&'static str>,
    load: StreamLoad,
    pending: Vec<StreamReject>,
}

impl FakeLoader<'_> {
    fn call(&self, call: String) -> Result<(), StoreError> {
        let fails = self.fail_on.is_some_and(|f| call.starts_with(f));
        self.log.lock().unwrap().push(call.clone());
        match fails {
            true => Err(StoreError::Transient(format!("{call}: throttled"))),
            false => Ok(()),
        }
    }
}

impl StreamLoader for FakeLoader<'_> {
    async fn read_stream(&self) -> Result<(), StoreError> {
        self.call("read".into())
    }
    async fn load(&self, threshold: RapidAccelThreshold) -> Result<StreamLoad, StoreError> {
        self.call(format!("load {}", threshold.decimal()))?;
        Ok(self.load)
    }
    async fn pending_rejects(&self, limit: usize) -> Result<Vec<StreamReject>, StoreError> {
        self.call(format!("pending {limit}"))?;
        Ok(self.pending.iter().take(limit).cloned().collect())
    }
    async fn mark_dead_lettered(&self, rejects: &[StreamReject]) -> Result<(), StoreError> {
        let seqs: Vec<&str> = rejects.iter().map(|r| r.sequence_number.as_str()).collect();
        self.call(format!("mark {}", seqs.join(",")))
    }
}

struct FakeSink<'a> {
    log: &'a Log,
    letters: Mutex<Vec<DeadLetter>>,
    fail_seq: Option<&'static str>,
}

impl DeadLetterSink for FakeSink<'_> {
    async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("put {}", letter.sequence_number));
        if self.fail_seq == Some(letter.sequence_number.as_str()) {
            return Err(DeadLetterError {
                target: "s3://b/k".into(),
                message: "SlowDown".into(),
            });
        }
        self.letters.lock().unwrap().push(letter.clone());
        Ok(())
    }
}

struct FakeViews<'a> {
    log: &'a Log,
}

impl SpeedViews for FakeViews<'_> {
    async fn refresh(&self, view: &str) -> Result<(), StoreError> {
        self.log.lock().unwrap().push(format!("refresh {view}"));
        Ok(())
    }
    async fn record_refresh(&self) -> Result<(), StoreError> {
        self.log.lock().unwrap().push("control".into());
        Ok(())
    }
}

fn loader<'a>(log: &'a Log, fail_on: Option<&'static str>) -> FakeLoader<'a> {
    FakeLoader {
        log,
        fail_on,
        load: StreamLoad {
            records: 10,
            stored: 6,
            rejected: 2,
            duplicates: 2,
        },
        pending: vec![reject("7"), reject("12")],
    }
}

fn sink<'a>(log: &'a Log, fail_seq: Option<&'static str>) -> FakeSink<'a> {
    FakeSink {
        log,
        letters: Mutex::new(Vec::new()),
        fail_seq,
    }
}

fn refresher<'a>(
    log: &'a Log,
    loader: FakeLoader<'a>,
    sink: FakeSink<'a>,
) -> Refresher<FakeViews<'a>, FakeLoader<'a>, FakeSink<'a>> {
    Refresher::with_stream(
        FakeViews { log },
        parse_views(None).unwrap(),
        Some(StreamMode {
            loader,
            sink,
            threshold: RapidAccelThreshold::DEFAULT,
            dead_letters_per_run: 500,
            dead_letter_concurrency: 4,
        }),
    )
}

fn sorted_puts(log: &[String]) -> Vec<String> {
    let mut puts: Vec<String> = log
        .iter()
        .filter(|c| c.starts_with("put"))
        .cloned()
        .collect();
    puts.sort();
    puts
}

#[tokio::test]
async fn reads_loads_dead_letters_then_refreshes_and_records() {
    let log = Log::default();
    let r = refresher(&log, loader(&log, None), sink(&log, None));
    let out = r.handle(&json!({})).await.unwrap();
    let calls = log.lock().unwrap().clone();
    assert_eq!(calls[..3], ["read", "load 10.0000", "pending 500"]);
    assert_eq!(sorted_puts(&calls), ["put 12", "put 7"]);
    assert_eq!(
        calls[5..],
        ["mark 7,12", "refresh speed.vehicle_daily_mv", "control"]
    );
    let s = &out["stream_load"];
    assert_eq!(
        (
            s["records"].as_u64(),
            s["stored"].as_u64(),
            s["rejected"].as_u64()
        ),
        (Some(10), Some(6), Some(2))
    );
    assert_eq!(s["duplicates"], 2);
    assert_eq!(s["dead_lettered"], 2);
    assert!(s.get("error").is_none());
    assert_eq!(out["control_updated"], true);
}

#[tokio::test]
async fn the_dead_letter_has_stream_processors_format() {
    let mut r = reject("42");
    r.truncated = true;
    let letter = stream::dead_letter(&r);
    assert_eq!(letter.reason, "bad_vin");
    assert_eq!(letter.function, "view-refresher");
    assert_eq!(letter.sub_sequence_number, None);
    assert_eq!(letter.approximate_arrival, arrival());
    assert_eq!(letter.partition_key, "1HGCM82633A004352");
    assert_eq!(letter.data, br#"{"VIN":"x"}"#);
    assert!(
        letter
            .detail
            .ends_with("(data: the first 11 bytes of the record)")
    );
    let key = fleetline_aws::deadletter::letter_key(&letter, "rejected/");
    assert_eq!(key, "rejected/shardId-000000000001/42.json");
}

#[tokio::test]
async fn a_failed_load_still_refreshes_the_views_but_not_the_control_row() {
    let log = Log::default();
    let r = refresher(&log, loader(&log, Some("load")), sink(&log, None));
    let err = r.handle(&json!({})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(": stream load: loading the stream"),
        "{err}"
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["read", "load 10.0000", "refresh speed.vehicle_daily_mv"]
    );
    let s = r.refresh_all().await;
    assert!(!s.control_updated && !s.is_success());
}

#[tokio::test]
async fn a_failed_read_skips_the_load() {
    let log = Log::default();
    let r = refresher(&log, loader(&log, Some("read")), sink(&log, None));
    let s = r.refresh_all().await;
    assert_eq!(
        s.stream_load.unwrap().error.unwrap(),
        "reading the stream: read: throttled"
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["read", "refresh speed.vehicle_daily_mv"]
    );
}

#[tokio::test]
async fn a_failed_dead_letter_stays_pending_and_fails_the_run() {
    let log = Log::default();
    let r = refresher(&log, loader(&log, None), sink(&log, Some("7")));
    let s = r.refresh_all().await;
    let stream = s.stream_load.clone().unwrap();
    // Only the written one is marked; the other is written again next run.
    assert!(log.lock().unwrap().contains(&"mark 12".to_owned()));
    assert_eq!(stream.dead_lettered, 1);
    assert!(stream.error.unwrap().contains("SlowDown"));
    assert!(!s.control_updated);
}

#[tokio::test]
async fn the_lambda_path_has_no_stream_step() {
    let log = Log::default();
    let r = Refresher::new(FakeViews { log: &log }, parse_views(None).unwrap());
    let out = r.handle(&json!({})).await.unwrap();
    assert!(out.get("stream_load").is_none());
    assert_eq!(
        *log.lock().unwrap(),
        ["refresh speed.vehicle_daily_mv", "control"]
    );
}

#[test]
fn the_speed_path_selects_the_stream_settings() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(Config::from_lookup(env(&[])).unwrap().stream, None);
    assert_eq!(
        Config::from_lookup(env(&[
            ("SPEED_PATH", "lambda"),
            ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", "x")
        ]))
        .unwrap()
        .stream,
        None,
        "the lambda path reads no stream settings"
    );
    let c = Config::from_lookup(env(&[("SPEED_PATH", "streaming-ingestion")]))
        .unwrap()
        .stream
        .unwrap();
    assert_eq!(c.threshold, RapidAccelThreshold::DEFAULT);
    assert_eq!(
        (c.bucket.as_str(), c.rejected_prefix.as_str()),
        ("fleetline-lake", "rejected/")
    );
    assert_eq!(
        (c.dead_letters_per_run, c.dead_letter_concurrency),
        (500, 16)
    );
    let c = Config::from_lookup(env(&[
        ("SPEED_PATH", "streaming-ingestion"),
        ("FLEETLINE_RAPID_ACCEL_KMH_PER_S", "12.5"),
        ("LAKE_BUCKET", "b"),
        ("REJECTED_PREFIX", "r"),
        ("FLEETLINE_STREAM_LOAD_DEAD_LETTERS", "20"),
    ]))
    .unwrap()
    .stream
    .unwrap();
    assert_eq!(c.threshold.decimal().to_string(), "12.5000");
    assert_eq!((c.bucket.as_str(), c.rejected_prefix.as_str()), ("b", "r/"));
    assert_eq!(c.dead_letters_per_run, 20);
    assert!(Config::from_lookup(env(&[("SPEED_PATH", "kinesis")])).is_err());
    assert!(
        Config::from_lookup(env(&[
            ("SPEED_PATH", "streaming-ingestion"),
            ("FLEETLINE_STREAM_LOAD_DEAD_LETTERS", "0"),
        ]))
        .is_err()
    );
}

#[test]
fn the_load_is_one_transaction_redshift_accepts() {
    let threshold = RapidAccelThreshold::new(12.5).unwrap();
    let statements = load_statements("3f0e1c1a-0000-4000-8000-000000000001", threshold).unwrap();
    assert_eq!(statements[0], "LOCK speed.telemetry");
    assert!(statements.len() <= fleetline_aws::warehouse::MAX_BATCH_STATEMENTS);
    for s in &statements {
        redshift_strict::assert_redshift_sql(s, true);
    }
    let all = statements.join(";\n");
    // Sequence numbers compare as numbers; the threshold is an exact literal.
    assert!(
        all.contains("LPAD(c.sequence_number, 129, '0') > LPAD(p.last_sequence_number, 129, '0')")
    );
    assert!(all.contains("d.acceleration >= 12.5000 THEN 1"));
    assert!(all.contains("'3f0e1c1a-0000-4000-8000-000000000001', GETDATE()"));
    // A reject keeps the first 32,000 bytes of its data as hex, and its length.
    assert!(all.contains(
        "FROM_VARBYTE(SUBSTRING(s.kinesis_data, 1, 32000), 'hex'), OCTET_LENGTH(s.kinesis_data)"
    ));
    // The watermark advances and loaded rows leave the streaming view, in that order.
    let progress = all.find("INSERT INTO speed.stream_load_progress").unwrap();
    let prune = all.find("DELETE FROM speed.telemetry_stream").unwrap();
    assert!(progress < prune);
    assert!(load_statements("it's", threshold).is_ok());
    assert!(load_statements("a\\b", threshold).is_err());
}

#[test]
fn the_reject_statements_are_bounded_and_quoted() {
    let sql = pending_rejects_sql(500);
    redshift_strict::assert_redshift_sql(&sql, false);
    redshift_strict::assert_redshift_sql(RUN_QUERY, false);
    redshift_strict::assert_redshift_sql(REFRESH_STREAM, false);
    assert!(sql.ends_with("LIMIT 500"), "{sql}");
    assert!(sql.contains("data_bytes, data_hex FROM speed.stream_rejects"));
    let many: Vec<StreamReject> = (0..450).map(|i| reject(&format!("{i}"))).collect();
    let marks = mark_statements(&many).unwrap();
    assert_eq!(marks.len(), 3);
    for m in &marks {
        redshift_strict::assert_redshift_sql(m, true);
        assert!(m.len() < fleetline_aws::warehouse::MAX_STATEMENT_BYTES);
    }
    assert!(marks[0].contains("(shard_id = 'shardId-000000000001' AND sequence_number = '0')"));
    let mut odd = reject("1");
    odd.shard_id = "it's".into();
    assert!(mark_statements(&[odd]).unwrap()[0].contains("'it''s'"));
}

/// Answers the run query and the pending rejects; records what it ran.
struct FakeWarehouse {
    ran: Mutex<Vec<String>>,
}

fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
    ResultSet {
        columns: columns
            .iter()
            .map(|c| Column {
                name: (*c).to_owned(),
                type_name: String::new(),
            })
            .collect(),
        rows,
    }
}

impl Warehouse for FakeWarehouse {
    async fn query(&self, sql: &str, params: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        self.ran.lock().unwrap().push(sql.to_owned());
        if sql == RUN_QUERY {
            assert_eq!(params[0].value, "run-1");
            return Ok(result(
                &["records", "stored", "rejected", "duplicates"],
                vec![vec![
                    Value::Long(5),
                    Value::Long(3),
                    Value::Long(1),
                    Value::Long(1),
                ]],
            ));
        }
        Ok(result(
            &[
                "shard_id",
                "sequence_number",
                "approximate_arrival_timestamp",
                "partition_key",
                "reject_reason",
                "reject_field",
                "reject_detail",
                "data_bytes",
                "data_hex",
            ],
            vec![vec![
                Value::String("shardId-000000000001".into()),
                Value::String("49".into()),
                Value::String("2026-11-25 17:04:31.25".into()),
                Value::String("1HGCM82633A004352".into()),
                Value::String("not_json".into()),
                Value::Null,
                Value::String("payload is not valid JSON (or not valid UTF-8)".into()),
                Value::Long(40_000),
                Value::String("7b7d".into()),
            ]],
        ))
    }
    async fn execute(&self, sql: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        self.ran.lock().unwrap().push(sql.to_owned());
        Ok(ExecSummary {
            statement_id: "x".into(),
            rows_affected: vec![None],
        })
    }
    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        self.ran
            .lock()
            .unwrap()
            .push(format!("BATCH {}", statements.len()));
        Ok(ExecSummary {
            statement_id: "x".into(),
            rows_affected: vec![None; statements.len()],
        })
    }
}

#[tokio::test]
async fn the_redshift_loader_reads_loads_and_decodes() {
    let w = FakeWarehouse {
        ran: Mutex::new(Vec::new()),
    };
    let l = RedshiftStreamLoader::with_run_ids(&w, || "run-1".to_owned());
    l.read_stream().await.unwrap();
    let load = l.load(RapidAccelThreshold::DEFAULT).await.unwrap();
    assert_eq!(
        load,
        StreamLoad {
            records: 5,
            stored: 3,
            rejected: 1,
            duplicates: 1
        }
    );
    let pending = l.pending_rejects(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    assert_eq!((p.reason.as_str(), p.field.as_deref()), ("not_json", None));
    assert_eq!(p.data, b"{}");
    assert!(p.truncated);
    assert_eq!(p.approximate_arrival, arrival());
    l.mark_dead_lettered(&pending).await.unwrap();
    l.mark_dead_lettered(&[]).await.unwrap();
    let ran = w.ran.lock().unwrap().clone();
    assert_eq!(ran[0], REFRESH_STREAM);
    assert_eq!(
        ran[1],
        format!(
            "BATCH {}",
            load_statements("x", RapidAccelThreshold::DEFAULT)
                .unwrap()
                .len()
        )
    );
    assert_eq!(ran[2], RUN_QUERY);
    assert_eq!(ran.len(), 5, "{ran:?}");
    assert_eq!(ran[4], "BATCH 1");
}
