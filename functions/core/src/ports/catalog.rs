//! The lake-catalog port: which event-day partitions the lake holds (batch-views registers
//! them with the external table; docs/design.md §3, docs/contracts.md, "Lake").

use std::future::Future;

use chrono::{Datelike, NaiveDate};

/// One partition present in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LakePartition {
    /// The event day the partition holds.
    pub day: NaiveDate,
    /// Its key prefix as found in storage (kept verbatim, so the registered LOCATION is
    /// exactly where the objects are), e.g. `vehicle_telematics_raw/year=2025/month=03/day=14/`.
    pub key_prefix: String,
}

impl LakePartition {
    /// `(year, month, day)` as the partition columns hold them.
    pub fn ymd(&self) -> (i32, u32, u32) {
        (self.day.year(), self.day.month(), self.day.day())
    }
}

/// Listing the lake failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("listing {location}: {message}")]
pub struct CatalogError {
    /// What was listed, e.g. `s3://bucket/prefix`.
    pub location: String,
    /// What went wrong, in the storage service's words.
    pub message: String,
}

/// The partitions present in the lake.
pub trait LakeCatalog: Send + Sync {
    /// Every event-day partition that holds at least one object, sorted by day.
    fn list_partitions(
        &self,
    ) -> impl Future<Output = Result<Vec<LakePartition>, CatalogError>> + Send;
}

impl<C: LakeCatalog> LakeCatalog for &C {
    fn list_partitions(
        &self,
    ) -> impl Future<Output = Result<Vec<LakePartition>, CatalogError>> + Send {
        (**self).list_partitions()
    }
}
