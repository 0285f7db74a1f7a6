//! lake-writer: the batch layer's writer. Each Kinesis batch is validated
//! (`fleetline_core::parse_and_validate`), de-duplicated on (VIN, timestamp) and handed to
//! a [`LakeSink`](fleetline_core::ports::lake::LakeSink): by default one Parquet object per
//! (event day, shard, batch) in S3, or Firehose PutRecordBatch (`LAKE_SINK=firehose`).
//!
//! Invalid records are counted (`RecordsRejected`, reasons in the summary log) and skipped:
//! stream-processor is the single dead-letter writer (docs/contracts.md, "Dead letters").
//! The logic ([`Processor`]) is written against the sink port; `main.rs` wires the
//! adapters in (`fleetline_aws::lake`).

pub mod config;
pub mod input;
pub mod process;

pub use config::{Config, SinkKind};
pub use input::InputRecord;
pub use process::{BatchReport, FUNCTION_NAME, Outcome, ProcessError, Processor};

#[cfg(test)]
mod tests;
