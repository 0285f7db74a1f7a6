//! stream-processor: the speed layer's writer. Each Kinesis batch is validated
//! (`fleetline_core::parse_and_validate`), invalid records become dead letters in S3, and
//! the valid ones — de-duplicated on (VIN, timestamp) — are inserted into
//! `speed.telemetry` through the Redshift Data API in one idempotent transaction.
//!
//! The logic ([`Processor`]) is written against two ports of `fleetline_core::ports`,
//! `SpeedStore` and `DeadLetterSink`; the Redshift adapter of the first, with its SQL, is
//! [`redshift`]. `main.rs` only wires the adapters in.

pub mod config;
pub mod input;
pub mod process;
pub mod redshift;

pub use config::Config;
pub use input::InputRecord;
pub use process::{BatchReport, FUNCTION_NAME, Outcome, ProcessError, Processor, Settings};
pub use redshift::RedshiftSpeedStore;

#[cfg(test)]
mod tests;
