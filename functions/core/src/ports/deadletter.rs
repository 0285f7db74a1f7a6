//! The dead-letter port: where a record that can never be processed goes, with its reason
//! and its original bytes, so that nothing is lost and nothing is retried forever
//! (docs/contracts.md, "Dead letters").

use std::future::Future;

use chrono::{DateTime, Utc};

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Stable reason code, e.g. `bad_vin` ([`RejectReason::code`](crate::RejectReason::code)).
    pub reason: String,
    /// Human-readable detail (short; never the whole payload).
    pub detail: String,
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Kinesis sequence number.
    pub sequence_number: String,
    /// Position of the rejected sub-record within a KPL aggregate (from 0); `None` for a
    /// plain record and for an aggregate rejected whole.
    pub sub_sequence_number: Option<u64>,
    /// Kinesis `approximateArrivalTimestamp`.
    pub approximate_arrival: DateTime<Utc>,
    /// Kinesis partition key (the VIN, for well-behaved producers); a sub-record's own key.
    pub partition_key: String,
    /// The record's data, exactly as received (a sub-record's own bytes).
    pub data: Vec<u8>,
    /// The function that rejected it, e.g. `stream-processor`.
    pub function: String,
}

/// Writing a dead letter failed. Callers treat every such failure as "retry the batch
/// later": losing a rejected record is never acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dead letter {target}: {message}")]
pub struct DeadLetterError {
    /// Where the letter was going, e.g. `s3://bucket/rejected/shard/sequence.json`.
    pub target: String,
    /// What went wrong, in the storage service's words.
    pub message: String,
}

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Stores one letter; storing the same letter again replaces it (idempotent).
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}

/// A borrowed sink is a sink (a processor can be handed `&sink`).
impl<S: DeadLetterSink> DeadLetterSink for &S {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), DeadLetterError>> + Send {
        (**self).put(letter)
    }
}
