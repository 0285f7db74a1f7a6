//! The Kinesis event Lambda sends, and the `batchItemFailures` answer it reads back.
//!
//! The one builder of Kinesis events for the runner, the tests and the benches: a typed
//! [`KinesisEvent`] from `aws_lambda_events`, written out the way Lambda writes it.

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::source::StreamRecord;

/// Where a batch came from, for the event's per-record fields.
pub struct EventOrigin<'a> {
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    pub region: &'a str,
    /// The execution role Lambda reports as `invokeIdentityArn`.
    pub identity_arn: &'a str,
}

/// `{"Records":[…]}` as Lambda delivers a Kinesis batch.
pub fn kinesis_event(records: &[StreamRecord], origin: &EventOrigin<'_>) -> KinesisEvent {
    event_of(records.iter().map(|r| event_record(r, origin)).collect())
}

/// The event for records built one by one (e.g. each with its own origin).
pub fn event_of(records: Vec<KinesisEventRecord>) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    event.records = records;
    event
}

/// One record of the event (`eventID` = `<shard>:<sequence number>`).
pub fn event_record(record: &StreamRecord, origin: &EventOrigin<'_>) -> KinesisEventRecord {
    let mut kinesis = KinesisRecord::default();
    kinesis.approximate_arrival_timestamp =
        SecondTimestamp(arrival_time(record.approximate_arrival));
    kinesis.data.0 = record.data.clone();
    kinesis.partition_key = record.partition_key.clone();
    kinesis.sequence_number = record.sequence_number.clone();
    kinesis.kinesis_schema_version = Some("1.0".to_owned());
    let mut out = KinesisEventRecord::default();
    out.kinesis = kinesis;
    out.event_source = Some("aws:kinesis".to_owned());
    out.event_version = Some("1.0".to_owned());
    out.event_id = Some(format!("{}:{}", origin.shard_id, record.sequence_number));
    out.event_name = Some("aws:kinesis:record".to_owned());
    out.invoke_identity_arn = Some(origin.identity_arn.to_owned());
    out.aws_region = Some(origin.region.to_owned());
    out.event_source_arn = Some(origin.stream_arn.to_owned());
    out
}

/// Epoch seconds (millisecond precision, as Kinesis keeps them) as a time.
fn arrival_time(epoch_seconds: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis((epoch_seconds * 1000.0).round() as i64).unwrap_or_default()
}

/// The event's JSON as Lambda writes it. `aws_lambda_events` writes the arrival time as a
/// string and `encryptionType: "NONE"`; Lambda sends a number and names the encryption
/// only for encrypted streams.
pub fn event_json(event: &KinesisEvent) -> Result<Value, serde_json::Error> {
    let records = event
        .records
        .iter()
        .map(record_json)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(serde_json::json!({ "Records": records }))
}

/// One record's JSON as Lambda writes it (see [`event_json`]).
pub fn record_json(record: &KinesisEventRecord) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(record)?;
    if let Some(kinesis) = value.get_mut("kinesis").and_then(Value::as_object_mut) {
        lambda_record_fields(kinesis);
    }
    Ok(value)
}

fn lambda_record_fields(kinesis: &mut serde_json::Map<String, Value>) {
    if kinesis.get("encryptionType").and_then(Value::as_str) == Some("NONE") {
        kinesis.remove("encryptionType");
    }
    let arrival = kinesis.get("approximateArrivalTimestamp");
    let seconds = arrival
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<f64>().ok());
    if let Some(number) = seconds.and_then(serde_json::Number::from_f64) {
        kinesis.insert(
            "approximateArrivalTimestamp".to_owned(),
            Value::Number(number),
        );
    }
}

/// How a successful invocation answered, with ReportBatchItemFailures on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResponse {
    /// Everything processed (no or empty `batchItemFailures`, or no JSON object at all).
    AllProcessed,
    /// Records from this index on must be retried (the lowest reported failure).
    FailedFrom(usize),
    /// The answer was unusable (an `itemIdentifier` empty, null or not in the batch):
    /// Lambda treats the whole batch as failed.
    WholeBatchFailed(String),
}

/// Reads `{"batchItemFailures":[{"itemIdentifier":"<seq>"}…]}` for `batch`.
pub fn parse_batch_response(body: &[u8], batch: &[StreamRecord]) -> BatchResponse {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return BatchResponse::AllProcessed;
    };
    let failures = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return BatchResponse::AllProcessed,
        Some(Value::Array(items)) => items,
        Some(other) => {
            return BatchResponse::WholeBatchFailed(format!(
                "batchItemFailures is not a list: {other}"
            ));
        }
    };
    let mut lowest: Option<usize> = None;
    for item in failures {
        let id = item.get("itemIdentifier").and_then(Value::as_str);
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return BatchResponse::WholeBatchFailed(format!(
                "batchItemFailures entry without an itemIdentifier: {item}"
            ));
        };
        let Some(index) = batch.iter().position(|r| r.sequence_number == id) else {
            return BatchResponse::WholeBatchFailed(format!(
                "batchItemFailures names {id}, which is not in the batch"
            ));
        };
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    match lowest {
        Some(index) => BatchResponse::FailedFrom(index),
        None => BatchResponse::AllProcessed,
    }
}
