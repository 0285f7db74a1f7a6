//! What a shard consumer needs from Kinesis, as a trait: the AWS SDK implementation lives in
//! `aws.rs`, the tests use an in-memory fake.

use std::cmp::Ordering;
use std::future::Future;

/// One record as GetRecords returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// ApproximateArrivalTimestamp, epoch seconds (millisecond precision).
    pub approximate_arrival: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamDescription {
    pub arn: String,
    /// StreamCreationTimestamp (epoch seconds): tells a recreated stream of the same name
    /// apart, so an old checkpoint is not applied to it.
    pub created: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardDescription {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IteratorPosition {
    TrimHorizon,
    Latest,
    AtTimestamp(f64),
    AtSequenceNumber(String),
    AfterSequenceNumber(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    pub records: Vec<StreamRecord>,
    /// `None` once a closed shard (after a split/merge) has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("stream {0} does not exist")]
    StreamNotFound(String),
    #[error("the shard iterator expired")]
    ExpiredIterator,
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Other(String),
}

pub trait StreamSource: Send + Sync + 'static {
    fn describe(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<StreamDescription, SourceError>> + Send;

    fn list_shards(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Vec<ShardDescription>, SourceError>> + Send;

    fn shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    fn get_records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> impl Future<Output = Result<RecordsPage, SourceError>> + Send;
}

/// Kinesis sequence numbers are decimal strings of up to 128 bits; compare them as numbers.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
