//! The speed-store ports: where stream-processor puts validated readings for the speed
//! layer (docs/design.md §4), the views view-refresher keeps fresh, and the stream loader of
//! the streaming-ingestion speed path.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::stamped::StampedReading;
use crate::{RapidAccelThreshold, RejectReason};

/// What [`SpeedStore::insert_new`] did with one batch of readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Readings newly stored; the others already were (a redelivered batch stores none).
    pub new: u64,
    /// Readings the store can never hold (text it cannot represent), in input order. They
    /// were not stored; the caller dead-letters them so that none is lost.
    pub refused: Vec<Refused>,
}

/// One reading the store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Position in the slice given to [`SpeedStore::insert_new`].
    pub index: usize,
    /// The validation rule the reading breaks for this store.
    pub reason: RejectReason,
    /// Human-readable detail for the dead letter.
    pub detail: String,
}

/// Storing a batch failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttling, serialization conflicts, timeouts: retrying the batch later can succeed
    /// (every insert is idempotent, so a retry after a partial commit converges).
    #[error("{0}")]
    Transient(String),
    /// Missing table, bad SQL, bad configuration: retrying the same batch cannot succeed.
    #[error("{0}")]
    Permanent(String),
}

impl StoreError {
    /// Whether retrying the batch later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// The speed layer's store of readings, unique on (VIN, ts).
pub trait SpeedStore: Send + Sync {
    /// Stores the readings not stored yet (unique on (VIN, ts); the input is already
    /// de-duplicated). Idempotent: giving the same readings again stores nothing new.
    /// No readings → nothing is sent anywhere.
    fn insert_new(
        &self,
        readings: &[StampedReading],
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;
}

/// A borrowed store is a store (a processor can be handed `&store`).
impl<S: SpeedStore> SpeedStore for &S {
    fn insert_new(
        &self,
        readings: &[StampedReading],
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        (**self).insert_new(readings)
    }
}

/// The speed layer's materialized views, as view-refresher keeps them fresh.
pub trait SpeedViews: Send + Sync {
    /// Brings one view (`schema.view`) up to date with the speed store.
    fn refresh(&self, view: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that every view is at least as fresh as now (what the serving side reads as
    /// the speed layer's freshness).
    fn record_refresh(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Borrowed views are views (a handler can be handed `&views`).
impl<V: SpeedViews> SpeedViews for &V {
    fn refresh(&self, view: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).refresh(view)
    }

    fn record_refresh(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_refresh()
    }
}

/// What one load of the streaming-ingestion speed path did (docs/design.md, "The
/// streaming-ingestion speed path"): `records = stored + rejected + duplicates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamLoad {
    /// Stream records beyond the load watermark, each counted once.
    pub records: u64,
    /// Valid readings newly stored in the speed store.
    pub stored: u64,
    /// Records that failed validation (kept for dead-lettering).
    pub rejected: u64,
    /// Valid readings whose (VIN, ts) was already stored, or repeated in the load.
    pub duplicates: u64,
}

/// A record the stream load rejected, waiting to be written as a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReject {
    /// Kinesis shard.
    pub shard_id: String,
    /// Kinesis sequence number.
    pub sequence_number: String,
    /// Kinesis approximate arrival time.
    pub approximate_arrival: DateTime<Utc>,
    /// Kinesis partition key.
    pub partition_key: String,
    /// Reason code ([`RejectReason::code`]).
    pub reason: String,
    /// The offending field, when the problem is one field.
    pub field: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// The record's data (at most the adapter's limit; see `truncated`).
    pub data: Vec<u8>,
    /// Whether `data` is only the beginning of the record.
    pub truncated: bool,
}

/// The streaming-ingestion speed path: the warehouse reads the stream itself, and this port
/// moves what it read into the speed store (view-refresher, every minute).
pub trait StreamLoader: Send + Sync {
    /// Reads the stream up to now (each shard from where the previous read stopped).
    fn read_stream(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Validates the records read but not loaded yet, stores the new valid readings
    /// (unique on (VIN, ts); `threshold` decides their rapid-acceleration flag), keeps the
    /// rejected ones for dead-lettering and advances the watermark, all at once. A repeated
    /// load changes nothing.
    fn load(
        &self,
        threshold: RapidAccelThreshold,
    ) -> impl Future<Output = Result<StreamLoad, StoreError>> + Send;

    /// Up to `limit` rejected records not yet dead-lettered, oldest first per shard.
    fn pending_rejects(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StreamReject>, StoreError>> + Send;

    /// Records that these rejects (by shard and sequence number) were dead-lettered.
    fn mark_dead_lettered(
        &self,
        rejects: &[StreamReject],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A borrowed loader is a loader.
impl<L: StreamLoader> StreamLoader for &L {
    fn read_stream(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).read_stream()
    }

    fn load(
        &self,
        threshold: RapidAccelThreshold,
    ) -> impl Future<Output = Result<StreamLoad, StoreError>> + Send {
        (**self).load(threshold)
    }

    fn pending_rejects(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StreamReject>, StoreError>> + Send {
        (**self).pending_rejects(limit)
    }

    fn mark_dead_lettered(
        &self,
        rejects: &[StreamReject],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).mark_dead_lettered(rejects)
    }
}
