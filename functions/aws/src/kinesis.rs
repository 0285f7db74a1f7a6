//! Kinesis event-source input shared by the stream consumers (stream-processor, lake-writer):
//! event records → plain values, and how a batch ended.
//!
//! Values are kept exactly as Lambda delivered them; a consumer that needs them cleaned for
//! its own use (SQL literals, S3 keys) does so itself.
//!
//! The invocation payload is read by Fleetline's own envelope ([`envelope`]), not by the
//! generic `aws_lambda_events` types: fewer copies, and a correct arrival time.
//!
//! A Kinesis record is either plain (one user record) or a KPL aggregate of many ([`kpl`]);
//! [`InputRecord::unpack`] yields its [`UserRecord`]s either way, or why it is corrupt.

pub mod envelope;
pub mod kpl;

use std::future::Future;

use aws_lambda_events::streams::KinesisEventResponse;
use chrono::{DateTime, Utc};

pub use envelope::{EnvelopeError, KinesisEnvelope, KinesisRecords};
pub use kpl::{AggregateError, SubRecord};

/// One Kinesis record, data already base64-decoded ([`envelope`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// `shardId-000000000000`, from the `eventID` (`<shard>:<sequence>`).
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    /// `approximateArrivalTimestamp`.
    pub arrival: DateTime<Utc>,
    pub data: Vec<u8>,
}

/// Shard id used when an event id does not carry one (never the case for Kinesis).
pub const UNKNOWN_SHARD: &str = "unknown-shard";

impl InputRecord {
    /// The user records this Kinesis record carries: itself when plain (no copy, no
    /// allocation), its sub-records when it is a KPL aggregate, or why the aggregate is
    /// corrupt as a whole.
    pub fn unpack(&self) -> Result<Unpacked<'_>, AggregateError> {
        let subs = kpl::deaggregate(&self.data).transpose()?;
        Ok(Unpacked { record: self, subs })
    }
}

/// One user record: a plain Kinesis record, or one sub-record of an aggregate. Identified
/// like the Kinesis Client Library's user records, by (sequence number, sub-sequence number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserRecord<'a> {
    /// The Kinesis record that carried it (shard, sequence number, arrival time).
    pub record: &'a InputRecord,
    /// Position within the aggregate, from 0; `None` for a plain record.
    pub sub_sequence: Option<u64>,
    /// Its own partition key (a sub-record's comes from the aggregate's key table).
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

impl<'a> UserRecord<'a> {
    /// The Kinesis record taken whole (a plain record, or a corrupt aggregate).
    pub fn whole(record: &'a InputRecord) -> Self {
        Self {
            record,
            sub_sequence: None,
            partition_key: &record.partition_key,
            data: &record.data,
        }
    }
}

/// A Kinesis record opened up by [`InputRecord::unpack`].
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked<'a> {
    record: &'a InputRecord,
    /// `None` for a plain record.
    subs: Option<Vec<SubRecord>>,
}

impl Unpacked<'_> {
    /// Whether the record was a KPL aggregate.
    pub fn is_aggregate(&self) -> bool {
        self.subs.is_some()
    }

    /// The user records, in order.
    pub fn user_records(&self) -> impl Iterator<Item = UserRecord<'_>> {
        let plain = self.subs.is_none().then(|| UserRecord::whole(self.record));
        plain
            .into_iter()
            .chain(self.subs.iter().flatten().map(|s| UserRecord {
                record: self.record,
                sub_sequence: Some(s.sub_sequence),
                partition_key: &s.partition_key,
                data: &s.data,
            }))
    }
}

/// All records of the event (the invocation payload's JSON text), in delivery order, read
/// as the runtime reads them ([`KinesisRecords`]).
pub fn records(event: &[u8]) -> Result<Vec<InputRecord>, EnvelopeError> {
    Ok(serde_json::from_slice::<KinesisRecords>(event)?.0)
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything handled.
    Done,
    /// Transient trouble: the whole batch is handed back for retry.
    Retry { reason: String },
    /// Permanent failure: the invocation fails (Lambda retries, bisects, then sends the batch
    /// to the on-failure destination).
    Failed { reason: String },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// How a batch that failed with `error` ends: handed back for retry when a retry can
    /// help (`transient`), failed otherwise.
    pub fn failure(transient: bool, error: &impl std::fmt::Display) -> Self {
        let reason = error.to_string();
        if transient {
            Outcome::Retry { reason }
        } else {
            Outcome::Failed { reason }
        }
    }

    /// Why the batch did not finish (empty when it did).
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Done => "",
            Outcome::Retry { reason } | Outcome::Failed { reason } => reason,
        }
    }
}

/// A consumer of Kinesis batches (stream-processor, lake-writer): what it does with one
/// batch and how it reports it. [`handle`] is the Lambda entry point they share.
pub trait BatchConsumer: Sync {
    /// Counts and outcome of one batch.
    type Report: Send;
    /// A permanent failure: the invocation fails.
    type Error;

    /// Processes one batch, in delivery order; `now` is the reference time of validation
    /// (the invocation time).
    fn process(
        &self,
        input: &[InputRecord],
        now: DateTime<Utc>,
    ) -> impl Future<Output = (Result<KinesisEventResponse, Self::Error>, Self::Report)> + Send;

    /// Emits the batch's metrics and its summary log line.
    fn emit(&self, report: &Self::Report);

    /// The event's records, in delivery order (a consumer that cleans them for its own use
    /// overrides this).
    fn records(&self, event: KinesisRecords) -> Vec<InputRecord> {
        event.0
    }
}

/// Lambda entry point of a consumer: the event's records ([`BatchConsumer::records`]),
/// processed, then the report emitted.
pub async fn handle<C: BatchConsumer>(
    consumer: &C,
    event: KinesisRecords,
    now: DateTime<Utc>,
) -> Result<KinesisEventResponse, C::Error> {
    let input = consumer.records(event);
    let (result, report) = consumer.process(&input, now).await;
    consumer.emit(&report);
    result
}

/// Runs a consumer as the Lambda function: every invocation goes to [`handle`] with the
/// invocation time as `now`.
pub async fn run<C>(consumer: &C) -> Result<(), lambda_runtime::Error>
where
    C: BatchConsumer,
    C::Error: Into<lambda_runtime::Diagnostic> + std::fmt::Debug,
{
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<KinesisRecords>| {
            // Boxed: the SDK's nested futures would otherwise exceed the type-layout depth
            // limit of the binaries.
            Box::pin(handle(consumer, event.payload, Utc::now()))
        },
    ))
    .await
}

/// Lambda's answer for a batch that ended with `outcome`: the whole batch handed back on
/// [`Outcome::Retry`] ([`retry_whole_batch`]), nothing otherwise.
pub fn response(outcome: &Outcome, input: &[InputRecord]) -> KinesisEventResponse {
    match outcome {
        Outcome::Retry { .. } => retry_whole_batch(input),
        Outcome::Done | Outcome::Failed { .. } => KinesisEventResponse::default(),
    }
}

/// The response that hands the whole batch back: `batchItemFailures` holding the first
/// record's sequence number (Lambda checkpoints before the lowest one reported). Retrying
/// everything is right for consumers whose every effect is idempotent, and simpler than
/// tracking which records of a half-done batch landed.
pub fn retry_whole_batch(input: &[InputRecord]) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(first) = input.first() {
        response.add_failure(first.sequence_number.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_real_kinesis_event() {
        // Shape as Lambda delivers it (AWS documentation example, our payload).
        let event = serde_json::json!({
            "Records": [{
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "1HGCM82633A004352",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": "eyJhIjoxfQ==",
                    "approximateArrivalTimestamp": 1545084650.987
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/vehicle-telemetry"
            }, {
                "kinesis": {"sequenceNumber": "7\\8", "data": "", "approximateArrivalTimestamp": 0}
            }]
        });
        let rs = records(event.to_string().as_bytes()).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].shard_id, "shardId-000000000006");
        assert_eq!(
            rs[0].sequence_number,
            "49590338271490256608559692538361571095921575989136588898"
        );
        assert_eq!(rs[0].partition_key, "1HGCM82633A004352");
        assert_eq!(rs[0].data, br#"{"a":1}"#);
        assert_eq!(rs[0].arrival.timestamp_millis(), 1_545_084_650_987);
        // No event id: placeholder shard; values are kept raw.
        assert_eq!(rs[1].shard_id, UNKNOWN_SHARD);
        assert_eq!(rs[1].sequence_number, "7\\8");
        assert!(rs[1].data.is_empty());
    }

    #[test]
    fn unpack_yields_user_records_with_their_identity() {
        let rec = |data: Vec<u8>| InputRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: "42".into(),
            partition_key: "outer".into(),
            arrival: DateTime::UNIX_EPOCH,
            data,
        };
        let plain = rec(br#"{"a":1}"#.to_vec());
        let u = plain.unpack().unwrap();
        assert!(!u.is_aggregate());
        let users: Vec<_> = u.user_records().collect();
        assert_eq!(users, [UserRecord::whole(&plain)]);
        // The plain path borrows the record's own bytes.
        assert!(std::ptr::eq(users[0].data, plain.data.as_slice()));

        let agg = rec(kpl::encode(&kpl::AggregatedRecord {
            partition_key_table: vec!["A".into(), "B".into()],
            explicit_hash_key_table: Vec::new(),
            records: [(1, "x"), (0, "y")]
                .into_iter()
                .map(|(i, d)| kpl::Record {
                    partition_key_index: i,
                    explicit_hash_key_index: None,
                    data: d.as_bytes().to_vec(),
                    tags: Vec::new(),
                })
                .collect(),
        }));
        let u = agg.unpack().unwrap();
        assert!(u.is_aggregate());
        let got: Vec<_> = u
            .user_records()
            .map(|r| {
                (
                    r.record.sequence_number.as_str(),
                    r.sub_sequence,
                    r.partition_key,
                    r.data,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("42", Some(0), "B", &b"x"[..]),
                ("42", Some(1), "A", &b"y"[..])
            ]
        );

        let mut corrupt = agg.clone();
        let last = corrupt.data.len() - 1;
        corrupt.data[last] ^= 1;
        assert_eq!(corrupt.unpack().unwrap_err().code(), "aggregate_bad_md5");
    }

    #[test]
    fn retry_hands_back_from_the_first_record() {
        let event = br#"{"Records": [
            {"kinesis": {"sequenceNumber": "5", "data": "", "approximateArrivalTimestamp": 0}},
            {"kinesis": {"sequenceNumber": "6", "data": "", "approximateArrivalTimestamp": 0}}
        ]}"#;
        let response = retry_whole_batch(&records(event).unwrap());
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(ids, vec![Some("5".to_owned())]);
        assert!(retry_whole_batch(&[]).batch_item_failures.is_empty());
        assert_eq!(Outcome::Done.reason(), "");
        assert_eq!(Outcome::Retry { reason: "x".into() }.reason(), "x");
    }
}
