//! The lake-sink port: where lake-writer puts validated readings (the batch layer's master
//! dataset; docs/design.md §3, "The lake sink"; docs/contracts.md, "Lake").

use std::future::Future;

use super::stamped::StampedReading;

/// One row of the lake: a reading with its position in the stream.
pub type LakeRow = StampedReading;

/// One shard's part of one delivered Kinesis batch: its identity and its valid,
/// de-duplicated rows in delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeBatch {
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Sequence numbers of the first and last record *delivered* (valid or not), so that a
    /// redelivery of the same batch derives the same object keys.
    pub first_sequence: String,
    /// See [`LakeBatch::first_sequence`].
    pub last_sequence: String,
    /// Valid readings, unique on (VIN, ts), in delivery order.
    pub rows: Vec<LakeRow>,
}

/// What a sink wrote for one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows handed over to storage.
    pub rows: u64,
    /// Objects written (0 for a sink that decides its own objects, such as Firehose).
    pub objects: u64,
    /// Bytes written (object bodies) or sent (record data).
    pub bytes: u64,
    /// Storage API calls that succeeded.
    pub calls: u64,
}

impl std::ops::AddAssign for WriteReport {
    fn add_assign(&mut self, other: Self) {
        self.rows += other.rows;
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.calls += other.calls;
    }
}

/// Whether retrying the same batch later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts, connection trouble, entries still failing after the
    /// retries: hand the batch back (batchItemFailures), it is safe to redo.
    Transient,
    /// Missing bucket/stream, access denied, a value that cannot be encoded: retrying the
    /// same request cannot succeed; the invocation fails (Lambda bisects, then gives the
    /// batch to the on-failure destination).
    Permanent,
}

/// A lake write that did not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} {target}: {message} ({kind:?}, code {code})")]
pub struct LakeError {
    /// Whether a retry can help.
    pub kind: ErrorKind,
    /// The storage operation, e.g. `PutObject`, `PutRecordBatch` or `encode`.
    pub operation: &'static str,
    /// What was written to, e.g. `s3://bucket/key` or a delivery stream name.
    pub target: String,
    /// The service's error code, `timeout`, `dispatch`, `http-503`, …
    pub code: String,
    /// What went wrong, in the service's words.
    pub message: String,
}

impl LakeError {
    /// Whether retrying the batch later can help.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

/// Where lake-writer puts accepted readings.
pub trait LakeSink: Send + Sync {
    /// Stores every row of the batch. An empty batch writes nothing.
    fn write(
        &self,
        batch: &LakeBatch,
    ) -> impl Future<Output = Result<WriteReport, LakeError>> + Send;
}

/// A borrowed sink is a sink (a processor can be handed `&sink`).
impl<S: LakeSink> LakeSink for &S {
    fn write(
        &self,
        batch: &LakeBatch,
    ) -> impl Future<Output = Result<WriteReport, LakeError>> + Send {
        (**self).write(batch)
    }
}
