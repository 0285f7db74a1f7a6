//! Kinesis event records → the plain values the processor works on. lake-writer keeps shard
//! ids and sequence numbers exactly as delivered (they name lake objects, see
//! `fleetline_aws::lake::layout`, which encodes them itself).

pub use fleetline_aws::kinesis::{InputRecord, KinesisRecords, UNKNOWN_SHARD, records};
