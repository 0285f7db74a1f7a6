//! The lake sinks: the two adapters of the lake-sink port
//! (`fleetline_core::ports::lake::LakeSink`; docs/design.md §3, "The lake sink";
//! docs/contracts.md, "Lake").
//!
//! - [`S3LakeSink`] (default): one Parquet object per (event day, shard, Kinesis batch) at
//!   [`object_key`], so a redelivered batch overwrites its own objects (idempotent);
//!   the bytes are a pure function of the batch ([`encode_parquet`]).
//! - [`FirehoseLakeSink`]: newline-terminated JSON objects with the Glue column names
//!   ([`json_line`]) through PutRecordBatch; on AWS the delivery stream partitions by
//!   `event_day` and converts to Parquet through the Glue table. Not idempotent on
//!   redelivery: the batch layer de-duplicates on (VIN, ts) anyway.
//!
//! - [`S3LakeCatalog`]: the adapter of the lake-catalog port
//!   (`fleetline_core::ports::catalog::LakeCatalog`): the partitions batch-views registers.
//!
//! The layout helpers ([`partition_path`], [`partition_spec`], [`parse_partition`],
//! [`parse_object_key`] …) are the one spelling of the layout, for writing, listing and
//! registering alike.

mod catalog;
mod error;
mod firehose;
mod layout;
mod parquet;
mod s3;

use fleetline_core::ports::lake::{LakeBatch, LakeError, LakeRow, LakeSink, WriteReport};

pub use catalog::{S3LakeCatalog, dedupe_by_day, partition_for_day, partition_of_key};
pub use firehose::{
    FIREHOSE_RETRY, FirehoseLakeSink, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES,
    chunk_ranges, json_line,
};
pub use layout::{
    DEFAULT_LAKE_PREFIX, OBJECT_SUFFIX, ObjectKey, object_key, parse_object_key, parse_partition,
    partition_location, partition_path, partition_spec, split_by_day,
};
pub use parquet::{
    CREATED_BY, EncodeError, LAKE_COLUMNS, PARQUET_SCHEMA, encode_parquet, parquet_schema,
};
pub use s3::{DEFAULT_WRITE_CONCURRENCY, S3LakeSink};

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
