//! batch-views: the batch layer's daily job (DESIGN §3).
//!
//! 1. Lists the lake's event-day partitions ([`LakeCatalog`]) and registers the new ones in
//!    `spectrum.vehicle_telematics_raw` (and `batch.registered_partitions`).
//! 2. Reads the boundary B from `serving.control`, picks the new one (payload `boundary`,
//!    else today UTC) and the days to recompute (`[B_old − reprocess_days, B_new)`, or from
//!    the earliest lake day with `full`).
//! 3. In ONE transaction: `CALL batch.recompute_daily(…)`, the seed's two batch-view
//!    procedures, and the control-row update — readers see old rows + old B or new rows + new B.
//! 4. Prunes `speed.telemetry` below `B − margin`.
//!
//! Logic is written against [`fleetline_aws::Warehouse`] and [`LakeCatalog`] so it is unit
//! tested with fakes; `main.rs` wires the Data API and S3 adapters.

pub mod config;
pub mod lake;
pub mod request;
pub mod run;
pub mod sql;

#[cfg(test)]
mod tests;

pub use config::{LakeLayout, Settings};
pub use lake::{LakeCatalog, LakePartition, S3LakeCatalog};
pub use request::Request;
pub use run::{BatchError, FUNCTION_NAME, Summary, handle, run};
