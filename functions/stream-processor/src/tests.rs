//! Processor tests with a fake warehouse and a fake dead-letter sink.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use fleetline_aws::Warehouse;
use fleetline_aws::deadletter::{DeadLetter, DeadLetterSink, SinkError};
use fleetline_aws::warehouse::{ExecSummary, FailedStatus, ResultSet, SqlParam, WarehouseError};
use fleetline_core::RapidAccelThreshold;

use crate::input::InputRecord;
use crate::process::{Outcome, Processor, Settings};

// ------------------------------------------------------------------------------------
// Fakes

#[derive(Clone, Copy)]
enum Mode {
    /// Succeed; the merge statement reports this many rows (None = no count).
    Ok(Option<u64>),
    Transient,
    Permanent,
}

struct FakeWarehouse {
    transactions: Mutex<Vec<Vec<String>>>,
    mode: Mode,
}

impl FakeWarehouse {
    fn new(mode: Mode) -> Self {
        Self {
            transactions: Mutex::new(Vec::new()),
            mode,
        }
    }

    fn transactions(&self) -> Vec<Vec<String>> {
        self.transactions.lock().unwrap().clone()
    }
}

impl Warehouse for FakeWarehouse {
    async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        panic!("the stream processor never queries")
    }

    async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        panic!("the stream processor only uses transactions")
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        let n = statements.len();
        self.transactions.lock().unwrap().push(statements);
        let failed = |message: &str| WarehouseError::StatementFailed {
            id: "s1".into(),
            status: FailedStatus::Failed,
            sub_statement: Some(2),
            message: message.into(),
        };
        match self.mode {
            Mode::Ok(merged) => Ok(ExecSummary {
                statement_id: "s1".into(),
                rows_affected: (0..n)
                    .map(|i| if i == n - 2 { merged } else { Some(1) })
                    .collect(),
            }),
            Mode::Transient => Err(failed(
                "ERROR: could not serialize access due to concurrent update",
            )),
            Mode::Permanent => Err(failed("ERROR: relation \"speed.telemetry\" does not exist")),
        }
    }
}

#[derive(Default)]
struct FakeSink {
    letters: Mutex<BTreeMap<String, DeadLetter>>,
    puts: AtomicUsize,
    fail: bool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeSink {
    fn failing() -> Self {
        Self {
            fail: true,
            ..Self::default()
        }
    }
}

impl DeadLetterSink for FakeSink {
    async fn put(&self, letter: &DeadLetter) -> Result<(), SinkError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.puts.fetch_add(1, Ordering::SeqCst);
        let key = letter.key("rejected/");
        if self.fail {
            return Err(SinkError {
                bucket: "b".into(),
                key,
                message: "boom".into(),
            });
        }
        self.letters.lock().unwrap().insert(key, letter.clone());
        Ok(())
    }
}

// ------------------------------------------------------------------------------------
// Data

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z")
        .unwrap()
        .to_utc()
}

const VIN_A: &str = "1HGCM82633A004352";
const VIN_B: &str = "5YJSA1E26HF000001";

fn reading(vin: &str, second: u32, speed: &str, accel: &str, odo: &str) -> Vec<u8> {
    format!(
        r#"{{"VIN":"{vin}","trip_id":"trip-{vin}","timestamp":"2026-11-25 17:00:{second:02}.000000000","vehicleSpeed":{speed},"acceleration":{accel},"odometer":{odo},"location":{{"latitude":47.6105,"longitude":-122.3301}}}}"#
    )
    .into_bytes()
}

fn rec(seq: u64, data: Vec<u8>) -> InputRecord {
    InputRecord {
        shard_id: "shardId-000000000000".into(),
        sequence_number: format!("4959{seq:06}"),
        partition_key: VIN_A.into(),
        arrival: now() - TimeDelta::seconds(30) + TimeDelta::milliseconds(seq as i64),
        data,
    }
}

fn settings(concurrency: usize) -> Settings {
    Settings {
        threshold: RapidAccelThreshold::DEFAULT,
        dead_letter_concurrency: concurrency,
    }
}

fn processor(mode: Mode, sink: FakeSink) -> Processor<FakeWarehouse, FakeSink> {
    Processor::new(FakeWarehouse::new(mode), sink, settings(4))
}

fn failures(r: &aws_lambda_events::streams::KinesisEventResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

/// Three valid readings (one rapid), a duplicate of the first, two invalid records.
fn mixed_batch() -> Vec<InputRecord> {
    vec![
        rec(1, reading(VIN_A, 1, "50.5", "1.0", "100.000")),
        rec(2, reading(VIN_B, 1, "61.25", "12.5", "200.5")),
        rec(3, b"not json at all".to_vec()),
        // Same VIN and timestamp as #1, different speed: the first one wins.
        rec(4, reading(VIN_A, 1, "99.9", "0.0", "100.000")),
        rec(5, reading("TOO-SHORT", 2, "1", "1", "1")),
        rec(6, reading(VIN_A, 2, "51.0", "-3.0", "100.014")),
    ]
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn valid_invalid_and_duplicate_records_are_routed_and_counted() {
    let p = processor(Mode::Ok(Some(3)), FakeSink::default());
    let (result, report) = p.process(&mixed_batch(), now()).await;
    let response = result.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.outcome, Outcome::Done);
    assert_eq!(
        (
            report.records_in,
            report.stored,
            report.rejected,
            report.duplicates_in_batch,
            report.already_stored
        ),
        (6, 3, 2, 1, 0)
    );
    assert_eq!(
        report.records_in,
        report.stored + report.rejected + report.duplicates_in_batch + report.already_stored
    );
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("bad_vin", 1), ("not_json", 1)])
    );
    assert_eq!(
        report.max_record_age,
        Some(std::time::Duration::from_millis(29_999))
    );

    // One transaction: lock, stage, one VALUES chunk with the 3 unique readings, merge, drop.
    let txs = p_warehouse(&p).transactions();
    assert_eq!(txs.len(), 1);
    let t = &txs[0];
    assert_eq!(t.len(), 5);
    assert_eq!(
        t[2],
        format!(
            "INSERT INTO stage_telemetry ({}) VALUES \
             ('{VIN_A}','trip-{VIN_A}','2026-11-25 17:00:01.000000','2026-11-25',50.500,1.0000,100.000,0,47.6105,-122.3301,'shardId-000000000000','4959000001'),\
             ('{VIN_B}','trip-{VIN_B}','2026-11-25 17:00:01.000000','2026-11-25',61.250,12.5000,200.500,1,47.6105,-122.3301,'shardId-000000000000','4959000002'),\
             ('{VIN_A}','trip-{VIN_A}','2026-11-25 17:00:02.000000','2026-11-25',51.000,-3.0000,100.014,0,47.6105,-122.3301,'shardId-000000000000','4959000006')",
            crate::sql::COLUMNS
        )
    );

    // Dead letters: one per invalid record, keyed by shard/sequence, with the original bytes.
    let letters = p_sink(&p).letters.lock().unwrap().clone();
    assert_eq!(
        letters.keys().cloned().collect::<Vec<_>>(),
        [
            "rejected/shardId-000000000000/4959000003.json",
            "rejected/shardId-000000000000/4959000005.json"
        ]
    );
    let l = &letters["rejected/shardId-000000000000/4959000003.json"];
    assert_eq!(l.reason, "not_json");
    assert_eq!(l.data, b"not json at all");
    assert_eq!(l.function, "stream-processor");
    assert_eq!(l.partition_key, VIN_A);
    assert_eq!(
        letters["rejected/shardId-000000000000/4959000005.json"].reason,
        "bad_vin"
    );
}

fn p_warehouse(p: &Processor<FakeWarehouse, FakeSink>) -> &FakeWarehouse {
    p.warehouse()
}

fn p_sink(p: &Processor<FakeWarehouse, FakeSink>) -> &FakeSink {
    p.sink()
}

#[tokio::test]
async fn a_redelivered_batch_produces_identical_statements_and_letters() {
    let p = processor(Mode::Ok(Some(3)), FakeSink::default());
    let (r1, _) = p.process(&mixed_batch(), now()).await;
    let first_letters = p_sink(&p).letters.lock().unwrap().clone();
    // Redelivery: the warehouse now inserts nothing (NOT EXISTS), same SQL is sent.
    let p2 = Processor::new(
        FakeWarehouse::new(Mode::Ok(Some(0))),
        FakeSink::default(),
        settings(4),
    );
    let (r2, report2) = p2.process(&mixed_batch(), now()).await;
    assert!(r1.is_ok() && r2.is_ok());
    assert_eq!(
        p_warehouse(&p).transactions(),
        p_warehouse(&p2).transactions()
    );
    assert_eq!(first_letters, *p_sink(&p2).letters.lock().unwrap());
    assert_eq!((report2.stored, report2.already_stored), (0, 3));
    assert_eq!(
        report2.records_in,
        report2.stored + report2.rejected + report2.duplicates_in_batch + report2.already_stored
    );
}

#[tokio::test]
async fn all_invalid_batch_writes_no_sql() {
    let p = processor(Mode::Permanent, FakeSink::default());
    let batch = vec![rec(1, b"[]".to_vec()), rec(2, b"{}".to_vec())];
    let (result, report) = p.process(&batch, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert!(p_warehouse(&p).transactions().is_empty());
    assert_eq!((report.rejected, report.stored), (2, 0));
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("missing_field", 1), ("not_an_object", 1)])
    );
}

#[tokio::test]
async fn empty_batch_does_nothing() {
    let p = processor(Mode::Permanent, FakeSink::default());
    let (result, report) = p.process(&[], now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert!(p_warehouse(&p).transactions().is_empty());
    assert_eq!(report.records_in, 0);
    assert_eq!(report.max_record_age, None);
}

#[tokio::test]
async fn transient_warehouse_failure_hands_back_the_whole_batch() {
    let p = processor(Mode::Transient, FakeSink::default());
    let (result, report) = p.process(&mixed_batch(), now()).await;
    assert_eq!(failures(&result.unwrap()), ["4959000001"]);
    assert!(matches!(report.outcome, Outcome::Retry { .. }));
    assert_eq!(report.stored, 0);
    // The dead letters were written anyway; the retry overwrites the same keys.
    assert_eq!(p_sink(&p).letters.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn dead_letter_failure_hands_back_the_whole_batch() {
    let p = processor(Mode::Ok(Some(3)), FakeSink::failing());
    let (result, report) = p.process(&mixed_batch(), now()).await;
    assert_eq!(failures(&result.unwrap()), ["4959000001"]);
    assert_eq!(report.dead_letter_failures, 2);
    assert!(matches!(report.outcome, Outcome::Retry { .. }));
}

#[tokio::test]
async fn permanent_warehouse_failure_fails_the_invocation() {
    let p = processor(Mode::Permanent, FakeSink::default());
    let (result, report) = p.process(&mixed_batch(), now()).await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(matches!(report.outcome, Outcome::Failed { .. }));
}

#[tokio::test]
async fn unknown_row_count_falls_back_to_the_valid_count() {
    let p = processor(Mode::Ok(None), FakeSink::default());
    let (_, report) = p.process(&mixed_batch(), now()).await;
    assert_eq!((report.stored, report.already_stored), (3, 0));
}

#[tokio::test]
async fn future_timestamps_are_judged_against_now() {
    let p = processor(Mode::Ok(Some(0)), FakeSink::default());
    let batch = vec![rec(1, reading(VIN_A, 1, "1", "1", "1"))];
    let early = DateTime::parse_from_rfc3339("2026-11-25T16:00:00Z")
        .unwrap()
        .to_utc();
    let (_, report) = p.process(&batch, early).await;
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("timestamp_in_future", 1)])
    );
    assert!(p_warehouse(&p).transactions().is_empty());
}

#[tokio::test]
async fn unquotable_trip_id_is_dead_lettered_not_fatal() {
    let p = processor(Mode::Ok(Some(1)), FakeSink::default());
    let bad = format!(
        r#"{{"VIN":"{VIN_A}","trip_id":"a\\b","timestamp":"2026-11-25T17:00:00Z","vehicleSpeed":1,"acceleration":1,"odometer":1}}"#
    );
    let batch = vec![
        rec(1, bad.into_bytes()),
        rec(2, reading(VIN_B, 1, "1", "1", "1")),
    ];
    let (result, report) = p.process(&batch, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("bad_trip_id", 1)])
    );
    assert_eq!(report.stored, 1);
    assert!(!p_warehouse(&p).transactions()[0][2].contains("a\\b"));
}

#[tokio::test]
async fn dead_letters_are_written_with_bounded_concurrency() {
    let p = Processor::new(
        FakeWarehouse::new(Mode::Ok(Some(0))),
        FakeSink::default(),
        settings(3),
    );
    let batch: Vec<InputRecord> = (0..20).map(|i| rec(i, b"x".to_vec())).collect();
    let (result, report) = p.process(&batch, now()).await;
    assert!(result.is_ok());
    assert_eq!(report.rejected, 20);
    let sink = p_sink(&p);
    assert_eq!(sink.puts.load(Ordering::SeqCst), 20);
    let max = sink.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn handle_decodes_a_lambda_event_and_answers_in_the_lambda_shape() {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let event: KinesisEvent = serde_json::from_value(serde_json::json!({
        "Records": [
            {"eventID": "shardId-000000000003:100", "eventSource": "aws:kinesis",
             "kinesis": {"partitionKey": VIN_A, "sequenceNumber": "100",
                         "data": b64(&reading(VIN_A, 1, "1", "1", "1")),
                         "approximateArrivalTimestamp": 1764093600.5}},
            {"eventID": "shardId-000000000003:101", "eventSource": "aws:kinesis",
             "kinesis": {"partitionKey": VIN_A, "sequenceNumber": "101",
                         "data": b64(b"\xff"),
                         "approximateArrivalTimestamp": 1764093601.0}}
        ]
    }))
    .unwrap();
    let p = processor(Mode::Transient, FakeSink::default());
    let response = p.handle(event, now()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "100"}]})
    );
    let letters = p_sink(&p).letters.lock().unwrap().clone();
    let l = &letters["rejected/shardId-000000000003/101.json"];
    assert_eq!(
        (l.reason.as_str(), l.data.as_slice()),
        ("not_json", &b"\xff"[..])
    );
    let sql = &p_warehouse(&p).transactions()[0][2];
    assert!(sql.contains("'shardId-000000000003','100')"), "{sql}");
}
