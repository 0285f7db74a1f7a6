//! batch-views: the batch layer's daily job (docs/design.md §3).
//!
//! 1. Drains the lake change queue ([`ChangeFeed`]: S3 ObjectCreated notifications),
//!    registers the partitions they name in `spectrum.vehicle_telematics_raw` (and
//!    `batch.registered_partitions`) and marks their days in `batch.pending_days`, committed
//!    before the messages are deleted. The first run, a full run, or a run without a queue
//!    lists the lake instead (the `LakeCatalog` port).
//! 2. Reads the boundary B from `serving.control`, picks the new one (payload `boundary`,
//!    else today UTC; a catch-up run keeps it) and also marks pending the days B moves over
//!    (from the earliest lake day with `full`) and the days with speed rows not included yet.
//! 3. In ONE transaction: the control-row update, `CALL batch.recompute_pending(…)` (every
//!    pending day before B, then cleared), the seed's two batch-view procedures — readers
//!    see old rows + old B or new rows + new B.
//! 4. Prunes `speed.telemetry` rows below `B − margin` that a committed recompute of their
//!    day included after they arrived.
//!
//! Logic is written against [`fleetline_aws::Warehouse`] and the `LakeCatalog` port so it is unit
//! tested with fakes; `main.rs` wires the Data API and S3 adapters.

pub mod changes;
pub mod config;
pub mod request;
pub mod run;
pub mod sql;

#[cfg(test)]
mod tests;

pub use changes::{ChangeFeed, SqsChangeFeed};
pub use config::{Config, LakeLayout};
pub use request::Request;
pub use run::{BatchError, FUNCTION_NAME, Summary, handle, run};
