//! The speed-store port: where stream-processor puts validated readings for the speed
//! layer (docs/design.md §4).

use std::future::Future;

use super::stamped::StampedReading;
use crate::RejectReason;

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
