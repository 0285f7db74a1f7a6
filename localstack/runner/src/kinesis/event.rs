//! The Kinesis event Lambda sends, and the `batchItemFailures` answer it reads back.

use base64::Engine;
use serde_json::{Value, json};

use super::source::StreamRecord;

/// Where a batch came from, for the event's per-record fields.
pub struct EventOrigin<'a> {
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    pub region: &'a str,
    /// The execution role Lambda reports as `invokeIdentityArn`.
    pub identity_arn: &'a str,
}

/// `{"Records":[…]}` exactly as Lambda delivers a Kinesis batch.
pub fn kinesis_event(records: &[StreamRecord], origin: &EventOrigin<'_>) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.approximate_arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", origin.shard_id, r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": origin.identity_arn,
                "awsRegion": origin.region,
                "eventSourceARN": origin.stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
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
