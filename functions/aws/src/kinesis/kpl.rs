//! De-aggregation of records packed by the Kinesis Producer Library (and other producers that
//! follow its format): many user records in one Kinesis record.
//!
//! Format ("KPL Aggregated Record Format", awslabs/amazon-kinesis-producer,
//! `aggregation-format.md`): the 4 magic bytes `F3 89 9A C2`, a proto2 `AggregatedRecord`
//! message, then the 16-byte MD5 of the message bytes. Sub-records are numbered from 0 in
//! message order: the Kinesis Client Library's sub-sequence number, which together with the
//! Kinesis sequence number identifies one user record.
//!
//! Unlike the KCL, no sub-record is discarded for a hash key outside the shard's range (the
//! KCL's guard against copies the KPL re-sends after mispredicting a shard during
//! resharding; awslabs/amazon-kinesis-client#343): such a copy is a duplicate reading that
//! the (VIN, timestamp) de-duplication of both layers absorbs, whereas discarding would drop
//! readings from aggregators that never re-send (awslabs/kinesis-aggregation#11).
//!
//! A payload without the magic is a plain record: [`deaggregate`] returns `None` without
//! allocating. A payload with the magic that fails any check is corrupt as a whole
//! ([`AggregateError`]): its reading(s) cannot be trusted one by one.

use md5::{Digest, Md5};
use prost::Message;

/// The first four bytes of every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the trailing MD5 digest.
pub const DIGEST_LEN: usize = 16;

/// `message AggregatedRecord` of the format (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// `message Record` of the format (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// `message Tag` of the format (proto2; unused by the KPL and KCL, decoded and ignored).
#[derive(Clone, PartialEq, Message)]
pub struct Tag {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// One user record out of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord {
    /// Position in the aggregate, from 0 (the KCL's sub-sequence number).
    pub sub_sequence: u64,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

/// Why an aggregated record (one with [`MAGIC`]) is rejected whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// Too short to hold the magic, a message and the digest.
    #[error("aggregated record of {len} bytes is shorter than magic + MD5 ({min} bytes)")]
    TooShort { len: usize, min: usize },
    /// The trailing MD5 is not the digest of the message bytes.
    #[error("aggregated record MD5 mismatch: trailer {found}, message digest {computed}")]
    DigestMismatch { found: String, computed: String },
    /// The message is not a valid `AggregatedRecord`.
    #[error("aggregated record is not a valid AggregatedRecord protobuf: {0}")]
    Protobuf(String),
    /// A key index points outside its table.
    #[error(
        "aggregated record: sub-record {sub_sequence} has {table} index {index}, table holds {len}"
    )]
    BadIndex {
        sub_sequence: u64,
        table: &'static str,
        index: u64,
        len: usize,
    },
    /// A well-formed aggregate that carries no user record.
    #[error("aggregated record holds no sub-records")]
    Empty,
}

impl AggregateError {
    /// Every reason code, for docs and metrics.
    pub const CODES: [&'static str; 4] = [
        "aggregate_bad_md5",
        "aggregate_bad_protobuf",
        "aggregate_bad_index",
        "aggregate_empty",
    ];

    /// Stable reason code (dead letters' `reason`; docs/contracts.md, "Dead letters").
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } | Self::DigestMismatch { .. } => Self::CODES[0],
            Self::Protobuf(_) => Self::CODES[1],
            Self::BadIndex { .. } => Self::CODES[2],
            Self::Empty => Self::CODES[3],
        }
    }

    /// The `'static` code equal to `code`, if it is one of [`Self::CODES`].
    pub fn static_code(code: &str) -> Option<&'static str> {
        Self::CODES.into_iter().find(|c| *c == code)
    }
}

/// Whether `data` starts with the aggregation magic.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// `None` for a plain record (no magic; nothing allocated); otherwise the sub-records in
/// order, or why the aggregate as a whole is corrupt.
pub fn deaggregate(data: &[u8]) -> Option<Result<Vec<SubRecord>, AggregateError>> {
    is_aggregated(data).then(|| decode(data))
}

/// The Kinesis record data for `agg`: magic, message, MD5 (for tests and producers).
pub fn encode(agg: &AggregatedRecord) -> Vec<u8> {
    frame(&agg.encode_to_vec())
}

/// Magic + `message` + MD5 of `message`, whatever `message` holds.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + message.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(message);
    out.extend_from_slice(&Md5::digest(message));
    out
}

fn decode(data: &[u8]) -> Result<Vec<SubRecord>, AggregateError> {
    let min = MAGIC.len() + DIGEST_LEN;
    if data.len() < min {
        return Err(AggregateError::TooShort {
            len: data.len(),
            min,
        });
    }
    let (message, trailer) = data[MAGIC.len()..].split_at(data.len() - min);
    let computed = Md5::digest(message);
    if computed.as_slice() != trailer {
        return Err(AggregateError::DigestMismatch {
            found: hex(trailer),
            computed: hex(&computed),
        });
    }
    let agg =
        AggregatedRecord::decode(message).map_err(|e| AggregateError::Protobuf(e.to_string()))?;
    if agg.records.is_empty() {
        return Err(AggregateError::Empty);
    }
    let AggregatedRecord {
        partition_key_table,
        explicit_hash_key_table,
        records,
    } = agg;
    let lookup = |table: &'static str, keys: &[String], index: u64, sub_sequence: u64| {
        usize::try_from(index)
            .ok()
            .and_then(|i| keys.get(i))
            .cloned()
            .ok_or(AggregateError::BadIndex {
                sub_sequence,
                table,
                index,
                len: keys.len(),
            })
    };
    records
        .into_iter()
        .zip(0u64..)
        .map(|(r, sub_sequence)| {
            let partition_key = lookup(
                "partition_key",
                &partition_key_table,
                r.partition_key_index,
                sub_sequence,
            )?;
            let explicit_hash_key = r
                .explicit_hash_key_index
                .map(|i| {
                    lookup(
                        "explicit_hash_key",
                        &explicit_hash_key_table,
                        i,
                        sub_sequence,
                    )
                })
                .transpose()?;
            Ok(SubRecord {
                sub_sequence,
                partition_key,
                explicit_hash_key,
                data: r.data,
            })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn agg(keys: &[&str], records: &[(u64, &[u8])]) -> AggregatedRecord {
        AggregatedRecord {
            partition_key_table: keys.iter().map(|k| (*k).to_owned()).collect(),
            explicit_hash_key_table: Vec::new(),
            records: records
                .iter()
                .map(|(i, d)| Record {
                    partition_key_index: *i,
                    explicit_hash_key_index: None,
                    data: d.to_vec(),
                    tags: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn plain_records_are_not_aggregates() {
        assert_eq!(deaggregate(br#"{"VIN":"X"}"#), None);
        assert_eq!(deaggregate(b""), None);
        assert_eq!(deaggregate(&MAGIC[..3]), None);
    }

    #[test]
    fn decodes_a_record_made_by_aws_kinesis_agg() {
        // aws-kinesis-agg 1.2.3 (Python), RecordAggregator: add_user_record("PK0", b'{"x":0}'),
        // ("PK1", b'{"x":1}'), ("PK0", b'{"x":2}'), then get_contents().
        let data = base64::engine::general_purpose::STANDARD
            .decode("84mawgoDUEswCgNQSzEaCwgAGgd7IngiOjB9GgsIARoHeyJ4IjoxfRoLCAAaB3sieCI6Mn35xzbixRe9OqV1Oi8/iVNh")
            .unwrap();
        let subs = deaggregate(&data).unwrap().unwrap();
        let got: Vec<(u64, &str, &[u8])> = subs
            .iter()
            .map(|s| (s.sub_sequence, s.partition_key.as_str(), s.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "PK0", &br#"{"x":0}"#[..]),
                (1, "PK1", &br#"{"x":1}"#[..]),
                (2, "PK0", &br#"{"x":2}"#[..]),
            ]
        );
        assert!(subs.iter().all(|s| s.explicit_hash_key.is_none()));
    }

    #[test]
    fn explicit_hash_keys_are_looked_up() {
        let mut a = agg(&["k"], &[(0, b"a")]);
        a.explicit_hash_key_table = vec!["12345".into()];
        a.records[0].explicit_hash_key_index = Some(0);
        let subs = deaggregate(&encode(&a)).unwrap().unwrap();
        assert_eq!(subs[0].explicit_hash_key.as_deref(), Some("12345"));
    }

    #[test]
    fn each_corruption_has_its_reason() {
        let good = frame(&agg(&["k"], &[(0, b"{}")]).encode_to_vec());

        let mut flipped = good.clone();
        flipped[6] ^= 0x01;
        let e = deaggregate(&flipped).unwrap().unwrap_err();
        assert!(matches!(e, AggregateError::DigestMismatch { .. }), "{e}");
        assert_eq!(e.code(), "aggregate_bad_md5");

        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&[0; 15]);
        let e = deaggregate(&truncated).unwrap().unwrap_err();
        assert_eq!(e, AggregateError::TooShort { len: 19, min: 20 });
        assert_eq!(e.code(), "aggregate_bad_md5");

        // Field 3 claims 100 bytes that are not there; the digest is right.
        let e = deaggregate(&frame(&[0x1a, 100, 1])).unwrap().unwrap_err();
        assert_eq!(e.code(), "aggregate_bad_protobuf", "{e}");
        // A partition key that is not UTF-8.
        let e = deaggregate(&frame(&[0x0a, 1, 0xff])).unwrap().unwrap_err();
        assert_eq!(e.code(), "aggregate_bad_protobuf", "{e}");

        let e = deaggregate(&frame(
            &agg(&["k"], &[(0, b"a"), (1, b"b")]).encode_to_vec(),
        ))
        .unwrap()
        .unwrap_err();
        assert_eq!(
            e,
            AggregateError::BadIndex {
                sub_sequence: 1,
                table: "partition_key",
                index: 1,
                len: 1
            }
        );
        assert_eq!(e.code(), "aggregate_bad_index");

        let mut a = agg(&["k"], &[(0, b"a")]);
        a.records[0].explicit_hash_key_index = Some(0);
        let e = deaggregate(&encode(&a)).unwrap().unwrap_err();
        assert_eq!(e.code(), "aggregate_bad_index");

        let e = deaggregate(&frame(&agg(&["k"], &[]).encode_to_vec()))
            .unwrap()
            .unwrap_err();
        assert_eq!(e, AggregateError::Empty);
        assert_eq!(e.code(), "aggregate_empty");

        for c in AggregateError::CODES {
            assert_eq!(AggregateError::static_code(c), Some(c));
        }
        assert_eq!(AggregateError::static_code("not_json"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes after the magic never panic, with or without a valid digest.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut raw = MAGIC.to_vec();
            raw.extend_from_slice(&body);
            let _ = deaggregate(&raw);
            let _ = deaggregate(&frame(&body));
        }

        /// Any encoded aggregate round-trips, and any single flipped byte of it is either
        /// caught as corrupt or (if it hits the magic) makes a plain record — never a panic,
        /// never different readings.
        #[test]
        fn round_trip_and_single_byte_corruption(
            keys in proptest::collection::vec("[A-Z0-9]{1,17}", 1..4),
            datas in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            flip_at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let records: Vec<(u64, &[u8])> = datas
                .iter()
                .enumerate()
                .map(|(i, d)| ((i % keys.len()) as u64, d.as_slice()))
                .collect();
            let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let good = frame(&agg(&key_refs, &records).encode_to_vec());
            let subs = deaggregate(&good).unwrap().unwrap();
            prop_assert_eq!(subs.len(), datas.len());
            for (i, s) in subs.iter().enumerate() {
                prop_assert_eq!(s.sub_sequence, i as u64);
                prop_assert_eq!(&s.partition_key, &keys[i % keys.len()]);
                prop_assert_eq!(&s.data, &datas[i]);
            }
            let mut bad = good.clone();
            let at = flip_at.index(bad.len());
            bad[at] ^= flip;
            match deaggregate(&bad) {
                None => prop_assert!(at < MAGIC.len()),
                Some(r) => prop_assert!(r.is_err()),
            }
        }
    }
}
