//! A valid reading with its position in the stream: what both writers store.

use crate::Reading;

/// One accepted reading and the Kinesis record that carried it (a KPL sub-record keeps its
/// carrying record's sequence number: one Kinesis record yields at most one reading per
/// (VIN, ts), so the pair still orders copies for the batch layer's de-duplication).
#[derive(Debug, Clone, PartialEq)]
pub struct StampedReading {
    /// The validated reading.
    pub reading: Reading,
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Kinesis sequence number of the record that carried the reading.
    pub sequence_number: String,
}
