//! stream-processor: the speed layer's writer. Each Kinesis batch is validated
//! (`fleetline_core::parse_and_validate`), invalid records become dead letters in S3, and
//! the valid ones — de-duplicated on (VIN, timestamp) — are inserted into
//! `speed.telemetry` through the Redshift Data API in one idempotent transaction.
//!
//! The logic ([`Processor`]) is written against the `Warehouse` and `DeadLetterSink`
//! traits; `main.rs` only wires the AWS adapters in.

pub mod config;
pub mod input;
pub mod process;
pub mod sql;

pub use config::Config;
pub use input::InputRecord;
pub use process::{BatchReport, FUNCTION_NAME, Outcome, ProcessError, Processor, Settings};

#[cfg(test)]
mod tests;
