//! The lake-sink port: where lake-writer puts validated readings (the batch layer's master
//! dataset), and its two adapters (docs/design.md §3, "The lake sink"; docs/contracts.md, "Lake").
//!
//! - [`S3LakeSink`] (default): one Parquet object per (event day, shard, Kinesis batch) at
//!   [`object_key`], so a redelivered batch overwrites its own objects (idempotent);
//!   the bytes are a pure function of the batch ([`encode_parquet`]).
//! - [`FirehoseLakeSink`]: newline-terminated JSON objects with the Glue column names
//!   ([`json_line`]) through PutRecordBatch; on AWS the delivery stream partitions by
//!   `event_day` and converts to Parquet through the Glue table. Not idempotent on
//!   redelivery: the batch layer de-duplicates on (VIN, ts) anyway.
//!
//! Layout helpers ([`partition_path`], [`parse_partition`], [`parse_object_key`] …) are
//! the writer's; batch-views, which registers the partitions, still spells the layout
//! itself (docs/design.md §11, item 3).

mod error;
mod firehose;
mod layout;
mod parquet;
mod s3;

use std::future::Future;

use fleetline_core::Reading;

pub use error::{ErrorKind, LakeError};
pub use firehose::{
    FirehoseLakeSink, FirehoseRetry, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES,
    chunk_ranges, json_line,
};
pub use layout::{
    DEFAULT_LAKE_PREFIX, OBJECT_SUFFIX, ObjectKey, key_segment, object_key, parse_object_key,
    parse_partition, partition_location, partition_path, partition_spec, split_by_day,
};
pub use parquet::{CREATED_BY, EncodeError, PARQUET_SCHEMA, encode_parquet, parquet_schema};
pub use s3::{DEFAULT_WRITE_CONCURRENCY, S3LakeSink};

/// One accepted reading with its position in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeRow {
    pub reading: Reading,
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Kinesis sequence number of the record that carried the reading.
    pub sequence_number: String,
}

/// One shard's part of one delivered Kinesis batch: its identity and its valid,
/// de-duplicated rows in delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeBatch {
    pub shard_id: String,
    /// Sequence numbers of the first and last record *delivered* (valid or not), so that a
    /// redelivery of the same batch derives the same object keys.
    pub first_sequence: String,
    pub last_sequence: String,
    /// Valid readings, unique on (VIN, ts), in delivery order.
    pub rows: Vec<LakeRow>,
}

/// What a sink wrote for one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows handed over to storage.
    pub rows: u64,
    /// S3 objects written (0 for Firehose, which decides its own objects).
    pub objects: u64,
    /// Bytes written (object bodies) or sent (Firehose record data).
    pub bytes: u64,
    /// Storage API calls that succeeded (PutObject / PutRecordBatch).
    pub calls: u64,
}

/// Where lake-writer puts accepted readings.
pub trait LakeSink: Send + Sync {
    /// Stores every row of the batch. An empty batch writes nothing.
    fn write(
        &self,
        batch: &LakeBatch,
    ) -> impl Future<Output = Result<WriteReport, LakeError>> + Send;
}

impl<S: LakeSink> LakeSink for &S {
    fn write(
        &self,
        batch: &LakeBatch,
    ) -> impl Future<Output = Result<WriteReport, LakeError>> + Send {
        (**self).write(batch)
    }
}

impl<S: LakeSink> LakeSink for std::sync::Arc<S> {
    fn write(
        &self,
        batch: &LakeBatch,
    ) -> impl Future<Output = Result<WriteReport, LakeError>> + Send {
        (**self).write(batch)
    }
}

/// Either adapter, chosen at start-up from `LAKE_SINK` (so `main` has one concrete type).
#[derive(Debug, Clone)]
pub enum AnyLakeSink {
    S3(S3LakeSink),
    Firehose(FirehoseLakeSink),
}

impl LakeSink for AnyLakeSink {
    async fn write(&self, batch: &LakeBatch) -> Result<WriteReport, LakeError> {
        match self {
            AnyLakeSink::S3(s) => s.write(batch).await,
            AnyLakeSink::Firehose(f) => f.write(batch).await,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::LakeRow;
    use chrono::{DateTime, Utc};
    use fleetline_core::{Location, Reading, Vin};

    /// A reading with every lake column set to a distinct, checkable value.
    pub fn row(vin: &str, ts: &str, seq: u64) -> LakeRow {
        let timestamp: DateTime<Utc> = ts.parse().unwrap();
        let raw = format!(
            r#"{{"VIN":"{vin}","trip_id":"trip-{seq}","timestamp":"{ts}","vehicleSpeed":57.3,"odometer":1042.377,"acceleration":-4.2109,"extra":"é\n"}}"#
        );
        LakeRow {
            reading: Reading {
                vin: Vin::parse(vin).unwrap(),
                trip_id: format!("trip-{seq}"),
                timestamp,
                speed_milli_kmh: 57_300 + seq as i64,
                acceleration_e4: -42_109 - seq as i64,
                odometer_m: 1_042_377 + seq as i64,
                device_id: None,
                engine_speed: None,
                fuel_level: None,
                fuel_consumed_since_restart: None,
                oil_temp: None,
                brake: None,
                brake_pedal_status: None,
                ignition_status: None,
                transmission_gear_position: None,
                location: (!seq.is_multiple_of(3)).then_some(Location {
                    latitude: 47.6105 + seq as f64 / 1e4,
                    longitude: -122.3301,
                }),
                raw,
            },
            shard_id: "shardId-000000000000".into(),
            sequence_number: format!(
                "4959033827149025660855969253836157109592157598913658{seq:04}"
            ),
        }
    }
}
