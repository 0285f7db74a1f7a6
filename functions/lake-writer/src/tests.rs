//! The processor against a fake sink: classification, de-duplication, batch identity,
//! failure handling.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use fleetline_aws::kinesis::{self, BatchConsumer as _};
use fleetline_core::ports::lake::{ErrorKind, LakeBatch, LakeError, LakeSink, WriteReport};

use crate::input::InputRecord;
use crate::process::{BatchReport, Outcome, ProcessError, Processor};

/// Records every batch; answers with the queued errors first, then success.
#[derive(Default)]
struct FakeSink {
    batches: Mutex<Vec<LakeBatch>>,
    errors: Mutex<Vec<LakeError>>,
}

impl FakeSink {
    /// Fails its first write with an error of this kind and code.
    fn failing_once(kind: ErrorKind, code: &str) -> Self {
        let sink = Self::default();
        sink.errors.lock().unwrap().push(LakeError {
            kind,
            operation: "PutObject",
            target: "s3://lake/k".into(),
            code: code.into(),
            message: format!("{code} from the fake"),
        });
        sink
    }
}

impl LakeSink for FakeSink {
    async fn write(&self, batch: &LakeBatch) -> Result<WriteReport, LakeError> {
        self.batches.lock().unwrap().push(batch.clone());
        if let Some(e) = self.errors.lock().unwrap().pop() {
            return Err(e);
        }
        Ok(WriteReport {
            rows: batch.rows.len() as u64,
            objects: 1,
            bytes: 100,
            calls: 1,
        })
    }
}

/// Checks records in = written + rejected + duplicates, and returns the rejections by reason.
fn balanced_reasons(report: &BatchReport) -> Vec<(&'static str, u64)> {
    assert_eq!(
        report.records_in,
        report.written + report.rejected + report.duplicates_in_batch
    );
    report
        .rejected_by_reason
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

fn now() -> DateTime<Utc> {
    "2025-03-16T12:00:00Z".parse().unwrap()
}

fn payload(vin: &str, ts: &str, speed: &str) -> Vec<u8> {
    format!(
        r#"{{"VIN":"{vin}","trip_id":"t1","timestamp":"{ts}","vehicleSpeed":{speed},"acceleration":1.5,"odometer":100.5}}"#
    )
    .into_bytes()
}

fn rec(seq: u64, data: Vec<u8>) -> InputRecord {
    InputRecord {
        shard_id: "shardId-000000000000".into(),
        sequence_number: format!("{seq:056}"),
        partition_key: "pk".into(),
        arrival: DateTime::UNIX_EPOCH,
        data,
    }
}

const V1: &str = "1HGCM82633A004352";
const V2: &str = "2HGCM82633A004352";

fn mixed_batch() -> Vec<InputRecord> {
    vec![
        rec(10, b"not json".to_vec()), // rejected first
        rec(11, payload(V1, "2025-03-14 23:59:59.500000000", "50.0")),
        rec(12, payload(V1, "2025-03-15 00:00:00.000000000", "51.0")),
        rec(13, payload(V1, "2025-03-14 23:59:59.500000", "99.0")), // duplicate of 11
        rec(14, payload("bad", "2025-03-15 00:00:01", "1")),        // bad_vin
        rec(15, payload(V2, "2025-03-13 08:00:00", "20.0")),        // late
        rec(16, payload(V2, "2099-01-01 00:00:00", "20.0")),        // future
        rec(17, payload(V2, "2025-03-15 00:00:02", "700.0")),       // out of range
    ]
}

#[tokio::test]
async fn valid_unique_readings_go_to_the_sink_and_the_rest_is_counted() {
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let input = mixed_batch();
    let (result, report) = p.process(&input, now()).await;
    let response = result.unwrap();
    assert!(response.batch_item_failures.is_empty());

    let batches = sink.batches.lock().unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    // Identity from the whole delivered batch, invalid first/last records included.
    assert_eq!(b.shard_id, "shardId-000000000000");
    assert_eq!(b.first_sequence, format!("{:056}", 10));
    assert_eq!(b.last_sequence, format!("{:056}", 17));
    let rows: Vec<(String, String, i64)> = b
        .rows
        .iter()
        .map(|r| {
            (
                r.sequence_number.clone(),
                r.reading.vin.to_string(),
                r.reading.speed_milli_kmh,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (format!("{:056}", 11), V1.to_owned(), 50_000), // first of the duplicates kept
            (format!("{:056}", 12), V1.to_owned(), 51_000),
            (format!("{:056}", 15), V2.to_owned(), 20_000),
        ]
    );
    assert!(b.rows.iter().all(|r| r.shard_id == "shardId-000000000000"));
    assert_eq!(b.rows[0].reading.raw.as_bytes(), input[1].data.as_slice());

    assert_eq!(report.records_in, 8);
    assert_eq!(report.written, 3);
    assert_eq!(report.rejected, 4);
    assert_eq!(report.duplicates_in_batch, 1);
    let reasons = balanced_reasons(&report);
    assert_eq!(
        reasons,
        [
            ("bad_vin", 1),
            ("not_json", 1),
            ("out_of_range", 1),
            ("timestamp_in_future", 1)
        ]
    );
    assert_eq!(report.sink.objects, 1);
    assert_eq!(report.outcome, Outcome::Done);
}

#[tokio::test]
async fn redelivery_hands_the_sink_an_identical_batch() {
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let input = mixed_batch();
    let _ = p.process(&input, now()).await;
    let _ = p.process(&input, now() + chrono::TimeDelta::hours(1)).await;
    let batches = sink.batches.lock().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0], batches[1]);
}

#[tokio::test]
async fn transient_failure_hands_back_the_whole_batch() {
    let sink = FakeSink::failing_once(ErrorKind::Transient, "SlowDown");
    let p = Processor::new(&sink, "fake");
    let input = mixed_batch();
    let (result, report) = p.process(&input, now()).await;
    let response = result.unwrap();
    let failed: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    // The FIRST delivered record (an invalid one), so Lambda retries everything.
    assert_eq!(failed, vec![Some(format!("{:056}", 10))]);
    assert!(matches!(report.outcome, Outcome::Retry { .. }));
    assert_eq!(report.written, 0);
}

#[tokio::test]
async fn permanent_failure_fails_the_invocation() {
    let sink = FakeSink::failing_once(ErrorKind::Permanent, "NoSuchBucket");
    let p = Processor::new(&sink, "fake");
    let (result, report) = p.process(&mixed_batch(), now()).await;
    assert!(matches!(result, Err(ProcessError::Lake(e)) if e.code == "NoSuchBucket"));
    assert!(matches!(report.outcome, Outcome::Failed { .. }));
}

#[tokio::test]
async fn nothing_valid_means_no_write() {
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let input = vec![rec(1, b"{}".to_vec()), rec(2, vec![0xff, 0xfe])];
    let (result, report) = p.process(&input, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert!(sink.batches.lock().unwrap().is_empty());
    assert_eq!((report.rejected, report.written), (2, 0));
    let (result, report) = p.process(&[], now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    assert_eq!(report.records_in, 0);
}

#[tokio::test]
async fn records_of_several_shards_form_one_batch_per_shard() {
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let mut input = vec![
        rec(1, payload(V1, "2025-03-14 10:00:00", "10")),
        rec(2, payload(V1, "2025-03-14 10:00:01", "10")),
        rec(3, payload(V1, "2025-03-14 10:00:02", "10")),
    ];
    input[1].shard_id = "shardId-000000000001".into();
    let _ = p.process(&input, now()).await;
    let batches = sink.batches.lock().unwrap();
    let ids: Vec<(&str, &str, &str, usize)> = batches
        .iter()
        .map(|b| {
            (
                b.shard_id.as_str(),
                &b.first_sequence[54..],
                &b.last_sequence[54..],
                b.rows.len(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("shardId-000000000000", "01", "03", 2),
            ("shardId-000000000001", "02", "02", 1)
        ]
    );
}

#[tokio::test]
async fn handle_decodes_a_lambda_event() {
    use base64::Engine as _;
    let data = payload(V1, "2025-03-14 10:00:00", "10");
    let event = serde_json::json!({"Records": [{
        "kinesis": {"partitionKey": V1, "sequenceNumber": "42",
                    "data": base64::engine::general_purpose::STANDARD.encode(&data),
                    "approximateArrivalTimestamp": 1741946400.0},
        "eventID": "shardId-000000000002:42", "eventSource": "aws:kinesis"
    }]})
    .to_string();
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let event = serde_json::from_str(&event).unwrap();
    let response = kinesis::handle(&p, event, now()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let batches = sink.batches.lock().unwrap();
    assert_eq!(batches[0].shard_id, "shardId-000000000002");
    assert_eq!(batches[0].rows[0].reading.raw.as_bytes(), data.as_slice());
}

#[tokio::test]
async fn aggregates_are_opened_and_a_corrupt_one_is_rejected_whole() {
    use fleetline_aws::kinesis::kpl;
    let aggregate = |records: &[Vec<u8>]| {
        kpl::encode(&kpl::AggregatedRecord {
            partition_key_table: vec![V1.into(), V2.into()],
            explicit_hash_key_table: Vec::new(),
            records: records
                .iter()
                .zip(0u64..)
                .map(|(d, i)| kpl::Record {
                    partition_key_index: i % 2,
                    explicit_hash_key_index: None,
                    data: d.clone(),
                    tags: Vec::new(),
                })
                .collect(),
        })
    };
    let good = aggregate(&[
        payload(V1, "2025-03-14 10:00:01", "11.0"),
        payload("bad", "2025-03-14 10:00:02", "1"),
        payload(V1, "2025-03-14 10:00:00", "99.0"), // duplicate of the plain record
        payload(V2, "2025-03-14 10:00:03", "13.0"),
    ]);
    // Valid MD5 over a message that is not an AggregatedRecord.
    let corrupt = kpl::frame(&[0x1a, 0x7f, 0x00]);
    let input = vec![
        rec(1, payload(V1, "2025-03-14 10:00:00", "10.0")),
        rec(2, good),
        rec(3, corrupt),
    ];
    let sink = FakeSink::default();
    let p = Processor::new(&sink, "fake");
    let (result, report) = p.process(&input, now()).await;
    assert!(result.unwrap().batch_item_failures.is_empty());
    {
        let batches = sink.batches.lock().unwrap();
        let b = &batches[0];
        // Identity still from the Kinesis records delivered (the corrupt one is the last).
        assert_eq!(
            (&b.first_sequence[54..], &b.last_sequence[54..]),
            ("01", "03")
        );
        let rows: Vec<(&str, i64, &str)> = b
            .rows
            .iter()
            .map(|r| {
                (
                    &r.sequence_number[54..],
                    r.reading.speed_milli_kmh,
                    r.reading.vin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [("01", 10_000, V1), ("02", 11_000, V1), ("02", 13_000, V2)]
        );
    }
    assert_eq!(
        (
            report.records_in,
            report.aggregates_in,
            report.written,
            report.rejected,
            report.duplicates_in_batch
        ),
        (6, 2, 3, 2, 1)
    );
    let reasons = balanced_reasons(&report);
    assert_eq!(reasons, [("aggregate_bad_protobuf", 1), ("bad_vin", 1)]);

    // Redelivery hands the sink the identical batch (same object keys, same bytes).
    let _ = p.process(&input, now()).await;
    let batches = sink.batches.lock().unwrap();
    assert_eq!(batches[0], batches[1]);
}
