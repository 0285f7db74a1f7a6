//! Widths of the warehouse's character columns, in **bytes**: Redshift's CHAR(n) and
//! VARCHAR(n) count bytes, not characters, and a longer value fails the whole INSERT
//! ("Character types", https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html).
//! Validation derives its limits from these constants, and a test checks that every
//! CHAR/VARCHAR column in `infra/sql` and in the stream-processor's staging table is
//! declared with exactly the width named here, so no string that passes validation can
//! be refused by its column.

/// `vin CHAR(17)`: 17 ASCII characters (CHAR is single-byte only).
pub const VIN_BYTES: usize = 17;
/// `trip_id VARCHAR(64)`.
pub const TRIP_ID_MAX_BYTES: usize = 64;
/// `shard_id VARCHAR(128)`: a Kinesis shard id (at most 128 characters, "Shard",
/// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_Shard.html).
pub const SHARD_ID_MAX_BYTES: usize = 128;
/// `sequence_number VARCHAR(129)`: a Kinesis sequence number, ASCII digits. The API's
/// pattern `0|([1-9]\d{0,128})` ("SequenceNumberRange",
/// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SequenceNumberRange.html)
/// allows up to 129 digits, so every sequence number Kinesis can hand out fits.
pub const SEQUENCE_NUMBER_MAX_BYTES: usize = 129;

/// Columns whose values the functions build themselves, bounded by construction rather
/// than by validation: (column, declared width).
pub const BOUNDED_BY_CONSTRUCTION: &[(&str, usize)] = &[
    // serving.control: batch-views' fixed-shape JSON summary.
    ("last_batch_summary", 4096),
    // batch.registered_partitions: `s3://<bucket>/<prefix>year=…/month=…/day=…/`.
    ("location", 1024),
    // The schema migrator's bookkeeping: file names of infra/sql and hex SHA-256.
    ("file_name", 256),
    ("sha256", 64),
    // Local-only lake table (infra/sql/local): the original JSON, never inserted by SQL.
    ("raw", 65535),
    // The streaming-ingestion speed path (infra/sql/15_speed_streaming.sql): the streaming
    // view's own partition_key column (VARCHAR(256)); reject codes, field names and details
    // the validating view writes; a reject's first 32,000 bytes as hex; a UUID run id.
    ("partition_key", 256),
    ("reject_reason", 32),
    ("reject_field", 32),
    ("reject_detail", 256),
    ("data_hex", 64000),
    ("run_id", 36),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `(column, kind, n)` for every `<name> CHAR(n)` / `VARCHAR(n)` in `text`.
    fn char_columns(text: &str) -> Vec<(String, String, usize)> {
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '\\')
            .filter(|w| !w.is_empty())
            .collect();
        let mut out = Vec::new();
        for w in words.windows(2) {
            let ty = w[1].to_ascii_uppercase();
            for kind in ["VARCHAR(", "CHAR("] {
                if let Some(rest) = ty.strip_prefix(kind)
                    && let Some(n) = rest.split(')').next().and_then(|n| n.parse().ok())
                {
                    let name = w[0].trim_matches(['"', '(']).to_ascii_lowercase();
                    // `CAST(NULL AS VARCHAR(n))` declares nothing.
                    if name != "as" {
                        out.push((name, kind.trim_end_matches('(').to_string(), n));
                    }
                }
            }
        }
        out
    }

    fn sources() -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let mut dirs = vec![repo().join("infra/sql")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("infra/sql") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "sql") {
                    files.push(p);
                }
            }
        }
        files.push(repo().join("functions/stream-processor/src/redshift/sql.rs"));
        files.push(repo().join("functions/schema-migrator/src/migrate.rs"));
        files
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("read");
                (p, text)
            })
            .collect()
    }

    #[test]
    fn every_character_column_has_the_width_validation_uses() {
        let validated: &[(&str, usize)] = &[
            ("vin", VIN_BYTES),
            ("trip_id", TRIP_ID_MAX_BYTES),
            ("shard_id", SHARD_ID_MAX_BYTES),
            ("sequence_number", SEQUENCE_NUMBER_MAX_BYTES),
            ("last_sequence_number", SEQUENCE_NUMBER_MAX_BYTES),
        ];
        let mut seen = 0;
        for (path, text) in sources() {
            for (name, kind, n) in char_columns(&text) {
                seen += 1;
                let want = validated
                    .iter()
                    .chain(BOUNDED_BY_CONSTRUCTION)
                    .find(|(c, _)| *c == name)
                    .map(|(_, w)| *w);
                assert_eq!(
                    want,
                    Some(n),
                    "{}: column {name} {kind}({n}) has no matching width constant in columns.rs",
                    path.display()
                );
            }
        }
        assert!(seen >= 10, "found only {seen} character columns");
    }

    #[test]
    fn defaults_validate_in_bytes() {
        let l = crate::Limits::default();
        assert_eq!(l.max_trip_id_bytes, TRIP_ID_MAX_BYTES);
    }
}
