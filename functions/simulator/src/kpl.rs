//! KPL record aggregation (`--kpl-aggregate N`): N readings packed into one Kinesis record
//! the way the Kinesis Producer Library does it ("KPL Aggregated Record Format",
//! awslabs/amazon-kinesis-producer `aggregation-format.md`): magic `F3 89 9A C2`, a proto2
//! `AggregatedRecord` with a partition key table, then the MD5 of the message.
//!
//! Written here, not taken from the pipeline's decoder, so that the two are independent.

use crate::kinesis::{Entry, MAX_BYTES_PER_RECORD};
use md5::{Digest, Md5};
use prost::Message;

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

#[derive(Clone, PartialEq, Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<Record>,
}

#[derive(Clone, PartialEq, Message)]
struct Record {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    data: Vec<u8>,
}

/// Upper bound of what one user record adds to the message: its data, its key (if new) and
/// a few bytes of tags and lengths.
fn bound(e: &Entry) -> usize {
    e.data.len() + e.partition_key.len() + 24
}

/// Magic + 16-byte MD5 + slack for the table and record headers.
const FRAME_BYTES: usize = MAGIC.len() + 16 + 64;

/// Collects user records into aggregates of at most `per_record` of them (and at most the
/// 1 MiB Kinesis record limit).
#[derive(Debug, Clone)]
pub struct Aggregator {
    per_record: usize,
    pending: Vec<Entry>,
    pending_bytes: usize,
}

impl Aggregator {
    pub fn new(per_record: usize) -> Self {
        Self {
            per_record: per_record.max(1),
            pending: Vec::new(),
            pending_bytes: FRAME_BYTES,
        }
    }

    /// Adds a user record; returns a finished aggregate when one is complete.
    pub fn push(&mut self, entry: Entry) -> Option<Entry> {
        let size = bound(&entry);
        let full = if !self.pending.is_empty() && self.pending_bytes + size > MAX_BYTES_PER_RECORD {
            self.take()
        } else {
            None
        };
        self.pending_bytes += size;
        self.pending.push(entry);
        if full.is_some() {
            return full;
        }
        (self.pending.len() >= self.per_record)
            .then(|| self.take())
            .flatten()
    }

    /// The aggregate of whatever is pending (`None` when nothing is).
    pub fn take(&mut self) -> Option<Entry> {
        if self.pending.is_empty() {
            return None;
        }
        let entries = std::mem::take(&mut self.pending);
        self.pending_bytes = FRAME_BYTES;
        Some(aggregate(entries))
    }
}

/// One aggregated Kinesis record: its partition key is the first user record's (as the KPL
/// does), keys are shared through the table.
pub fn aggregate(entries: Vec<Entry>) -> Entry {
    let mut keys: Vec<String> = Vec::new();
    let mut records = Vec::with_capacity(entries.len());
    let partition_key = entries
        .first()
        .map(|e| e.partition_key.clone())
        .unwrap_or_default();
    for e in entries {
        let index = match keys.iter().position(|k| *k == e.partition_key) {
            Some(i) => i,
            None => {
                keys.push(e.partition_key);
                keys.len() - 1
            }
        };
        records.push(Record {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: e.data,
        });
    }
    let message = AggregatedRecord {
        partition_key_table: keys,
        explicit_hash_key_table: Vec::new(),
        records,
    }
    .encode_to_vec();
    let mut data = Vec::with_capacity(MAGIC.len() + message.len() + 16);
    data.extend_from_slice(&MAGIC);
    data.extend_from_slice(&message);
    data.extend_from_slice(&Md5::digest(&message));
    Entry {
        data,
        partition_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pk: &str, data: &str) -> Entry {
        Entry {
            data: data.as_bytes().to_vec(),
            partition_key: pk.into(),
        }
    }

    #[test]
    fn packs_n_records_with_a_key_table_and_a_digest() {
        let mut a = Aggregator::new(3);
        assert_eq!(a.push(entry("A", "1")), None);
        assert_eq!(a.push(entry("B", "2")), None);
        let e = a.push(entry("A", "3")).unwrap();
        assert_eq!(e.partition_key, "A");
        assert_eq!(e.data[..4], MAGIC);
        let (message, digest) = e.data[4..].split_at(e.data.len() - 20);
        assert_eq!(digest, Md5::digest(message).as_slice());
        let decoded = AggregatedRecord::decode(message).unwrap();
        assert_eq!(decoded.partition_key_table, ["A", "B"]);
        let recs: Vec<(u64, &[u8])> = decoded
            .records
            .iter()
            .map(|r| (r.partition_key_index, r.data.as_slice()))
            .collect();
        assert_eq!(recs, [(0, &b"1"[..]), (1, &b"2"[..]), (0, &b"3"[..])]);
        assert_eq!(a.take(), None);
        assert_eq!(a.push(entry("C", "4")), None);
        let rest = a.take().unwrap();
        assert_eq!(rest.partition_key, "C");
    }

    #[test]
    fn never_exceeds_the_kinesis_record_limit() {
        let mut a = Aggregator::new(1000);
        let big = "x".repeat(300_000);
        let mut out = Vec::new();
        for i in 0..7 {
            out.extend(a.push(entry(&format!("K{i}"), &big)));
        }
        out.extend(a.take());
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|e| e.size() <= MAX_BYTES_PER_RECORD));
    }
}
