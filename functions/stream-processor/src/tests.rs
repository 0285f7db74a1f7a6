//! Processor tests with a fake speed store and a fake dead-letter sink: what was stored,
//! dead-lettered or handed back for retry (the SQL has its own tests, in `redshift`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use fleetline_aws::deadletter::letter_key;
use fleetline_aws::kinesis::{self, BatchConsumer as _};
use fleetline_core::RejectReason;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use fleetline_core::ports::speed::{Inserted, Refused, SpeedStore, StoreError};
use fleetline_core::ports::stamped::StampedReading;

use crate::input::InputRecord;
use crate::process::{Outcome, Processor, Settings};

// ------------------------------------------------------------------------------------
// Fakes

#[derive(Clone, Copy)]
enum Mode {
    /// Succeed; this many readings were new.
    Ok(u64),
    Transient,
    Permanent,
}

/// A trip id the fake store refuses.
const REFUSED_TRIP: &str = "refuse-me";

/// Records what it is asked to store; refuses trip ids containing `REFUSED_TRIP` (valid
/// readings the real store cannot take do not exist today: validation refuses every string
/// the Redshift adapter cannot write, but the processor must still handle a refusal).
struct FakeStore {
    calls: Mutex<Vec<Vec<StampedReading>>>,
    mode: Mode,
}

impl FakeStore {
    fn new(mode: Mode) -> Self {
        Self {
            calls: Mutex::new(Vec::new()),
            mode,
        }
    }

    /// Every reading it was given, in order.
    fn readings(&self) -> Vec<StampedReading> {
        self.calls.lock().unwrap().concat()
    }

    fn calls(&self) -> Vec<Vec<StampedReading>> {
        self.calls.lock().unwrap().clone()
    }
}

impl SpeedStore for FakeStore {
    async fn insert_new(&self, readings: &[StampedReading]) -> Result<Inserted, StoreError> {
        self.calls.lock().unwrap().push(readings.to_vec());
        let refused = readings
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reading.trip_id.contains(REFUSED_TRIP))
            .map(|(index, _)| Refused {
                index,
                reason: RejectReason::BadTripId,
                detail: "trip_id cannot be stored".into(),
            })
            .collect();
        match self.mode {
            Mode::Ok(new) => Ok(Inserted { new, refused }),
            Mode::Transient => Err(StoreError::Transient(
                "ERROR: could not serialize access due to concurrent update".into(),
            )),
            Mode::Permanent => Err(StoreError::Permanent(
                "ERROR: relation \"speed.telemetry\" does not exist".into(),
            )),
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

    fn letters(&self) -> BTreeMap<String, DeadLetter> {
        self.letters.lock().unwrap().clone()
    }

    /// The letters' object keys, in order.
    fn keys(&self) -> Vec<String> {
        self.letters.lock().unwrap().keys().cloned().collect()
    }
}

impl DeadLetterSink for FakeSink {
    async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.puts.fetch_add(1, Ordering::SeqCst);
        let key = letter_key(letter, "rejected/");
        if self.fail {
            return Err(DeadLetterError {
                target: format!("s3://b/{key}"),
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
        dead_letter_concurrency: concurrency,
    }
}

fn processor<'a>(
    store: &'a FakeStore,
    sink: &'a FakeSink,
) -> Processor<&'a FakeStore, &'a FakeSink> {
    Processor::new(store, sink, settings(4))
}

/// (VIN, timestamp, speed in milli-km/h, shard, sequence) of each reading.
fn stored(store: &FakeStore) -> Vec<(String, String, i64, String, String)> {
    store
        .readings()
        .iter()
        .map(|r| {
            (
                r.reading.vin.as_str().to_owned(),
                r.reading.timestamp_display().to_string(),
                r.reading.speed_milli_kmh,
                r.shard_id.clone(),
                r.sequence_number.clone(),
            )
        })
        .collect()
}

fn row(vin: &str, second: u32, speed: i64, seq: &str) -> (String, String, i64, String, String) {
    (
        vin.to_owned(),
        format!("2026-11-25 17:00:{second:02}.000000"),
        speed,
        "shardId-000000000000".to_owned(),
        seq.to_owned(),
    )
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
    let (store, sink) = (FakeStore::new(Mode::Ok(3)), FakeSink::default());
    let (result, report) = processor(&store, &sink)
        .process(&mixed_batch(), now())
        .await;
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

    // One call with the 3 unique readings, in delivery order; the first copy of a
    // (VIN, ts) wins.
    assert_eq!(store.calls().len(), 1);
    assert_eq!(
        stored(&store),
        [
            row(VIN_A, 1, 50_500, "4959000001"),
            row(VIN_B, 1, 61_250, "4959000002"),
            row(VIN_A, 2, 51_000, "4959000006"),
        ]
    );

    // Dead letters: one per invalid record, keyed by shard/sequence, with the original bytes.
    assert_eq!(
        sink.keys(),
        [
            "rejected/shardId-000000000000/4959000003.json",
            "rejected/shardId-000000000000/4959000005.json"
        ]
    );
    let letters = sink.letters();
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

#[tokio::test]
async fn a_redelivered_batch_stores_the_same_readings_and_letters() {
    let (store, sink) = (FakeStore::new(Mode::Ok(3)), FakeSink::default());
    let (r1, _) = processor(&store, &sink)
        .process(&mixed_batch(), now())
        .await;
    // Redelivery: the store now finds every reading already there.
    let (store2, sink2) = (FakeStore::new(Mode::Ok(0)), FakeSink::default());
    let (r2, report2) = processor(&store2, &sink2)
        .process(&mixed_batch(), now())
        .await;
    assert!(r1.is_ok() && r2.is_ok());
    assert_eq!(store.calls(), store2.calls());
    assert_eq!(sink.letters(), sink2.letters());
    assert_eq!((report2.stored, report2.already_stored), (0, 3));
    assert_eq!(
        report2.records_in,
        report2.stored + report2.rejected + report2.duplicates_in_batch + report2.already_stored
    );
}

#[tokio::test]
async fn all_invalid_batch_stores_nothing() {
    let (store, sink) = (FakeStore::new(Mode::Permanent), FakeSink::default());
    let batch = vec![rec(1, b"[]".to_vec()), rec(2, b"{}".to_vec())];
    let (result, report) = processor(&store, &sink).process(&batch, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert!(store.calls().is_empty());
    assert_eq!((report.rejected, report.stored), (2, 0));
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("missing_field", 1), ("not_an_object", 1)])
    );
}

#[tokio::test]
async fn empty_batch_does_nothing() {
    let (store, sink) = (FakeStore::new(Mode::Permanent), FakeSink::default());
    let (result, report) = processor(&store, &sink).process(&[], now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert!(store.calls().is_empty());
    assert_eq!(sink.puts.load(Ordering::SeqCst), 0);
    assert_eq!(report.records_in, 0);
    assert_eq!(report.max_record_age, None);
}

#[tokio::test]
async fn transient_store_failure_hands_back_the_whole_batch() {
    let (store, sink) = (FakeStore::new(Mode::Transient), FakeSink::default());
    let (result, report) = processor(&store, &sink)
        .process(&mixed_batch(), now())
        .await;
    assert_eq!(failures(&result.unwrap()), ["4959000001"]);
    assert!(matches!(report.outcome, Outcome::Retry { .. }));
    assert_eq!(report.stored, 0);
    // The dead letters were written anyway; the retry overwrites the same keys.
    assert_eq!(sink.letters().len(), 2);
}

#[tokio::test]
async fn dead_letter_failure_hands_back_the_whole_batch() {
    let (store, sink) = (FakeStore::new(Mode::Ok(3)), FakeSink::failing());
    let (result, report) = processor(&store, &sink)
        .process(&mixed_batch(), now())
        .await;
    assert_eq!(failures(&result.unwrap()), ["4959000001"]);
    assert_eq!(report.dead_letter_failures, 2);
    assert!(matches!(report.outcome, Outcome::Retry { .. }));
}

#[tokio::test]
async fn permanent_store_failure_fails_the_invocation() {
    let (store, sink) = (FakeStore::new(Mode::Permanent), FakeSink::default());
    let (result, report) = processor(&store, &sink)
        .process(&mixed_batch(), now())
        .await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(matches!(report.outcome, Outcome::Failed { .. }));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "PermanentWarehouseFailure");
}

#[tokio::test]
async fn future_timestamps_are_judged_against_now() {
    let (store, sink) = (FakeStore::new(Mode::Permanent), FakeSink::default());
    let batch = vec![rec(1, reading(VIN_A, 1, "1", "1", "1"))];
    let early = DateTime::parse_from_rfc3339("2026-11-25T16:00:00Z")
        .unwrap()
        .to_utc();
    let (_, report) = processor(&store, &sink).process(&batch, early).await;
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("timestamp_in_future", 1)])
    );
    assert!(store.calls().is_empty());
}

#[tokio::test]
async fn a_reading_the_store_refuses_is_dead_lettered_not_fatal() {
    let (store, sink) = (FakeStore::new(Mode::Ok(1)), FakeSink::default());
    let bad = format!(
        r#"{{"VIN":"{VIN_A}","trip_id":"{REFUSED_TRIP}","timestamp":"2026-11-25T17:00:00Z","vehicleSpeed":1,"acceleration":1,"odometer":1}}"#
    );
    let batch = vec![
        rec(1, bad.clone().into_bytes()),
        rec(2, reading(VIN_B, 1, "1", "1", "1")),
    ];
    let (result, report) = processor(&store, &sink).process(&batch, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert_eq!(
        report.rejected_by_reason,
        BTreeMap::from([("bad_trip_id", 1)])
    );
    assert_eq!(
        (report.stored, report.rejected, report.already_stored),
        (1, 1, 0)
    );
    assert_eq!(
        report.records_in,
        report.stored + report.rejected + report.duplicates_in_batch + report.already_stored
    );
    let letters = sink.letters();
    let l = &letters["rejected/shardId-000000000000/4959000001.json"];
    assert_eq!(
        (l.reason.as_str(), l.detail.as_str(), l.data.as_slice()),
        ("bad_trip_id", "trip_id cannot be stored", bad.as_bytes())
    );
}

#[tokio::test]
async fn a_refused_letter_that_cannot_be_written_hands_back_the_batch() {
    let (store, sink) = (FakeStore::new(Mode::Ok(0)), FakeSink::failing());
    let bad = format!(
        r#"{{"VIN":"{VIN_A}","trip_id":"{REFUSED_TRIP}","timestamp":"2026-11-25T17:00:00Z","vehicleSpeed":1,"acceleration":1,"odometer":1}}"#
    );
    let (result, report) = processor(&store, &sink)
        .process(&[rec(7, bad.into_bytes())], now())
        .await;
    assert_eq!(failures(&result.unwrap()), ["4959000007"]);
    assert_eq!(report.dead_letter_failures, 1);
}

#[tokio::test]
async fn dead_letters_are_written_with_bounded_concurrency() {
    let (store, sink) = (FakeStore::new(Mode::Ok(0)), FakeSink::default());
    let p = Processor::new(&store, &sink, settings(3));
    let batch: Vec<InputRecord> = (0..20).map(|i| rec(i, b"x".to_vec())).collect();
    let (result, report) = p.process(&batch, now()).await;
    assert!(result.is_ok());
    assert_eq!(report.rejected, 20);
    assert_eq!(sink.puts.load(Ordering::SeqCst), 20);
    let max = sink.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn handle_decodes_a_lambda_event_and_answers_in_the_lambda_shape() {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let event = serde_json::json!({
        "Records": [
            {"eventID": "shardId-000000000003:100", "eventSource": "aws:kinesis",
             "kinesis": {"partitionKey": VIN_A, "sequenceNumber": "100",
                         "data": b64(&reading(VIN_A, 1, "1", "1", "1")),
                         "approximateArrivalTimestamp": 1764093600.5}},
            {"eventID": "shardId-000000000003:101", "eventSource": "aws:kinesis",
             "kinesis": {"partitionKey": VIN_A, "sequenceNumber": "101",
                         "data": b64(b"\xff"),
                         "approximateArrivalTimestamp": 1764093601.5}}
        ]
    })
    .to_string();
    let (store, sink) = (FakeStore::new(Mode::Transient), FakeSink::default());
    let p = processor(&store, &sink);
    let event = serde_json::from_str(&event).unwrap();
    let response = kinesis::handle(&p, event, now()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "100"}]})
    );
    let letters = sink.letters();
    let l = &letters["rejected/shardId-000000000003/101.json"];
    assert_eq!(
        (l.reason.as_str(), l.data.as_slice()),
        ("not_json", &b"\xff"[..])
    );
    // Seconds `….5` are half a second past, not 5 ms.
    assert_eq!(l.approximate_arrival.timestamp_millis(), 1_764_093_601_500);
    let readings = store.readings();
    assert_eq!(
        (
            readings[0].shard_id.as_str(),
            readings[0].sequence_number.as_str()
        ),
        ("shardId-000000000003", "100")
    );
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
    let (store, sink) = (FakeStore::new(Mode::Ok(4)), FakeSink::default());
    let (input, corrupt) = batch_with_aggregates();
    let (result, report) = processor(&store, &sink).process(&input, now()).await;
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

    // Readings in (sequence, sub-sequence) order, each with its carrying record's sequence;
    // the aggregate's copy of (VIN_A, 17:00:01) is a duplicate of the plain one.
    assert_eq!(
        stored(&store),
        [
            row(VIN_A, 1, 50_500, "4959000001"),
            row(VIN_B, 1, 61_250, "4959000002"),
            row(VIN_A, 3, 52_000, "4959000002"),
            row(VIN_A, 2, 51_000, "4959000004"),
        ]
    );

    assert_eq!(
        sink.keys(),
        [
            "rejected/shardId-000000000000/4959000002-1.json",
            "rejected/shardId-000000000000/4959000003.json",
        ]
    );
    let letters = sink.letters();
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
    let (store, sink) = (FakeStore::new(Mode::Ok(4)), FakeSink::default());
    let (store2, sink2) = (FakeStore::new(Mode::Ok(0)), FakeSink::default());
    let _ = processor(&store, &sink).process(&input, now()).await;
    let (_, report2) = processor(&store2, &sink2).process(&input, now()).await;
    assert_eq!(store.calls(), store2.calls());
    assert_eq!(sink.letters(), sink2.letters());
    assert_eq!((report2.stored, report2.already_stored), (0, 4));

    // A batch that starts with an aggregate hands back that Kinesis record's sequence.
    let (store3, sink3) = (FakeStore::new(Mode::Transient), FakeSink::default());
    let (result, _) = processor(&store3, &sink3).process(&input[1..], now()).await;
    assert_eq!(failures(&result.unwrap()), ["4959000002"]);
}
