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
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        for s in &statements {
            redshift_strict::assert_redshift_sql(s, true);
        }
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

// ------------------------------------------------------------------------------------
// KPL aggregated records

fn aggregate(keys: &[&str], records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    use fleetline_aws::kinesis::kpl;
    kpl::encode(&kpl::AggregatedRecord {
        partition_key_table: keys.iter().map(|k| (*k).to_owned()).collect(),
        explicit_hash_key_table: Vec::new(),
        records: records
            .iter()
            .map(|(i, d)| kpl::Record {
                partition_key_index: *i,
                explicit_hash_key_index: None,
                data: d.clone(),
                tags: Vec::new(),
            })
            .collect(),
    })
}

/// A plain reading, an aggregate of four (one invalid, one duplicate of the plain one), a
/// corrupt aggregate, another plain reading.
fn batch_with_aggregates() -> (Vec<InputRecord>, Vec<u8>) {
    let good = aggregate(
        &[VIN_B, VIN_A],
        &[
            (0, reading(VIN_B, 1, "61.25", "12.5", "200.5")),
            (1, b"not json".to_vec()),
            (1, reading(VIN_A, 1, "99.9", "0.0", "100.000")),
            (1, reading(VIN_A, 3, "52.0", "1.0", "100.030")),
        ],
    );
    let mut corrupt = aggregate(&[VIN_B], &[(0, reading(VIN_B, 9, "1", "1", "1"))]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x80;
    (
        vec![
            rec(1, reading(VIN_A, 1, "50.5", "1.0", "100.000")),
            rec(2, good),
            rec(3, corrupt.clone()),
            rec(4, reading(VIN_A, 2, "51.0", "-3.0", "100.014")),
        ],
        corrupt,
    )
}

#[tokio::test]
async fn aggregates_are_opened_and_a_corrupt_one_is_dead_lettered_whole() {
    let p = processor(Mode::Ok(Some(4)), FakeSink::default());
    let (input, corrupt) = batch_with_aggregates();
    let (result, report) = p.process(&input, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert_eq!(
        (
            report.records_in,
            report.aggregates_in,
            report.stored,
            report.rejected,
            report.duplicates_in_batch
        ),
        (7, 2, 4, 2, 1)
    );
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("aggregate_bad_md5", 1), ("not_json", 1)])
    );

    // Rows in (sequence, sub-sequence) order, each with its carrying record's sequence;
    // the aggregate's copy of (VIN_A, 17:00:01) is a duplicate of the plain one.
    let txs = p_warehouse(&p).transactions();
    let values = txs[0][2].split_once(" VALUES ").unwrap().1;
    let rows: Vec<(String, String, String, String)> = values
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split("),(")
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            let t = |s: &str| s.trim_matches('\'').to_owned();
            (t(f[0]), t(f[2]), f[4].to_owned(), t(f[11]))
        })
        .collect();
    let row = |vin: &str, second: u32, speed: &str, seq: &str| {
        (
            vin.to_owned(),
            format!("2026-11-25 17:00:{second:02}.000000"),
            speed.to_owned(),
            seq.to_owned(),
        )
    };
    assert_eq!(
        rows,
        [
            row(VIN_A, 1, "50.500", "4959000001"),
            row(VIN_B, 1, "61.250", "4959000002"),
            row(VIN_A, 3, "52.000", "4959000002"),
            row(VIN_A, 2, "51.000", "4959000004"),
        ]
    );

    let letters = p_sink(&p).letters.lock().unwrap().clone();
    assert_eq!(
        letters.keys().cloned().collect::<Vec<_>>(),
        [
            "rejected/shardId-000000000000/4959000002-1.json",
            "rejected/shardId-000000000000/4959000003.json",
        ]
    );
    let sub = &letters["rejected/shardId-000000000000/4959000002-1.json"];
    assert_eq!(
        (
            sub.reason.as_str(),
            sub.sub_sequence_number,
            sub.partition_key.as_str(),
            sub.data.as_slice(),
            sub.sequence_number.as_str()
        ),
        ("not_json", Some(1), VIN_A, &b"not json"[..], "4959000002")
    );
    let whole = &letters["rejected/shardId-000000000000/4959000003.json"];
    assert_eq!(whole.reason, "aggregate_bad_md5");
    assert_eq!(whole.sub_sequence_number, None);
    assert_eq!(whole.data, corrupt);
    assert!(whole.detail.contains("MD5 mismatch"), "{}", whole.detail);
}

#[tokio::test]
async fn a_redelivered_aggregate_changes_nothing_and_retries_report_the_kinesis_sequence() {
    let (input, _) = batch_with_aggregates();
    let p = processor(Mode::Ok(Some(4)), FakeSink::default());
    let p2 = processor(Mode::Ok(Some(0)), FakeSink::default());
    let _ = p.process(&input, now()).await;
    let (_, report2) = p2.process(&input, now()).await;
    assert_eq!(
        p_warehouse(&p).transactions(),
        p_warehouse(&p2).transactions()
    );
    assert_eq!(
        *p_sink(&p).letters.lock().unwrap(),
        *p_sink(&p2).letters.lock().unwrap()
    );
    assert_eq!((report2.stored, report2.already_stored), (0, 4));

    // A batch that starts with an aggregate hands back that Kinesis record's sequence.
    let p3 = processor(Mode::Transient, FakeSink::default());
    let (result, _) = p3.process(&input[1..], now()).await;
    assert_eq!(failures(&result.unwrap()), ["4959000002"]);
}
