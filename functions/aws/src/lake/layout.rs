//! Where lake objects live (docs/contracts.md, "Lake"):
//! `<prefix>year=YYYY/month=MM/day=DD/<shard_id>-<first_seq>-<last_seq>.parquet`,
//! `<prefix>` = `LAKE_PREFIX` (default `vehicle_telematics_raw/`). Partition columns
//! `year`, `month`, `day` are Hive-style ints (the path pads month and day to two digits,
//! as in the seed; Hive reads `month=03` as 3).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::LakeRow;
use crate::s3::{key_segment, normalize_prefix};

/// Default `LAKE_PREFIX`.
pub const DEFAULT_LAKE_PREFIX: &str = "vehicle_telematics_raw/";
/// Extension of every lake object.
pub const OBJECT_SUFFIX: &str = ".parquet";

/// `year=2025/month=03/day=14/` (relative to the table location).
pub fn partition_path(day: NaiveDate) -> String {
    format!(
        "year={:04}/month={:02}/day={:02}/",
        day.year(),
        day.month(),
        day.day()
    )
}

/// `s3://<bucket>/<prefix>year=2025/month=03/day=14/`: the `LOCATION` of the partition in
/// `ALTER TABLE … ADD PARTITION`. `prefix` is normalised (see [`normalize_prefix`]).
pub fn partition_location(bucket: &str, prefix: &str, day: NaiveDate) -> String {
    format!(
        "s3://{bucket}/{}{}",
        normalize_prefix(prefix),
        partition_path(day)
    )
}

/// `year=2025, month=3, day=14`: the partition spec of `ALTER TABLE … ADD PARTITION (…)`.
pub fn partition_spec(day: NaiveDate) -> String {
    format!(
        "year={}, month={}, day={}",
        day.year(),
        day.month(),
        day.day()
    )
}

/// The object key of one (event day, shard, batch). `prefix` is normalised; the shard id
/// and sequence numbers pass through [`key_segment`].
pub fn object_key(
    prefix: &str,
    day: NaiveDate,
    shard_id: &str,
    first_sequence: &str,
    last_sequence: &str,
) -> String {
    format!(
        "{}{}{}-{}-{}{OBJECT_SUFFIX}",
        normalize_prefix(prefix),
        partition_path(day),
        key_segment(shard_id),
        key_segment(first_sequence),
        key_segment(last_sequence)
    )
}

/// The event day of a path holding consecutive `year=…/month=…/day=…` segments anywhere
/// (a key, a prefix, an `s3://` location; `month=3` and `month=03` both accepted).
/// `None` when there are no such segments or they are not a real date.
pub fn parse_partition(path: &str) -> Option<NaiveDate> {
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(3).find_map(|w| {
        let year = w[0].strip_prefix("year=")?;
        let month = w[1].strip_prefix("month=")?;
        let day = w[2].strip_prefix("day=")?;
        let digits = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let y = i32::try_from(digits(year, 4)?).ok()?;
        NaiveDate::from_ymd_opt(y, digits(month, 2)?, digits(day, 2)?)
    })
}

/// What an object key says about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    /// Everything before `year=` (the table prefix), e.g. `vehicle_telematics_raw/`.
    pub prefix: String,
    pub day: NaiveDate,
    pub shard_id: String,
    pub first_sequence: String,
    pub last_sequence: String,
}

/// Parses a key written by [`object_key`]. Sequence numbers are digits, so the shard id
/// (which contains `-`) is everything before the last two `-`.
pub fn parse_object_key(key: &str) -> Option<ObjectKey> {
    let (dir, file) = key.rsplit_once('/')?;
    let day = parse_partition(&format!("{dir}/"))?;
    let stem = file.strip_suffix(OBJECT_SUFFIX)?;
    let mut parts = stem.rsplitn(3, '-');
    let last = parts.next()?;
    let first = parts.next()?;
    let shard = parts.next()?;
    let is_seq = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if shard.is_empty() || !is_seq(first) || !is_seq(last) {
        return None;
    }
    // The partition must be the object's own directory.
    let partition = partition_path(day);
    let prefix = format!("{dir}/")
        .strip_suffix(partition.as_str())?
        .to_owned();
    Some(ObjectKey {
        prefix,
        day,
        shard_id: shard.to_owned(),
        first_sequence: first.to_owned(),
        last_sequence: last.to_owned(),
    })
}

/// Rows grouped by UTC event day (delivery order kept within a day).
pub fn split_by_day(rows: &[LakeRow]) -> BTreeMap<NaiveDate, Vec<&LakeRow>> {
    let mut out: BTreeMap<NaiveDate, Vec<&LakeRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.reading.day()).or_default().push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::test_support::row;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn keys_follow_the_contract() {
        let k = object_key(
            "vehicle_telematics_raw/",
            d(2025, 3, 4),
            "shardId-000000000000",
            "49590338271490256608559692538361571095921575989136588898",
            "49590338271490256608559692540361571095921575989136588898",
        );
        assert_eq!(
            k,
            "vehicle_telematics_raw/year=2025/month=03/day=04/shardId-000000000000-49590338271490256608559692538361571095921575989136588898-49590338271490256608559692540361571095921575989136588898.parquet"
        );
        // Prefix normalisation and hostile segments.
        assert_eq!(
            object_key(
                "/t-1/vehicle_telematics_raw",
                d(2025, 12, 31),
                "../x",
                "",
                "9"
            ),
            "t-1/vehicle_telematics_raw/year=2025/month=12/day=31/.._x-unknown-9.parquet"
        );
    }

    #[test]
    fn redelivery_derives_the_same_key_and_other_batches_do_not() {
        let a = object_key("p/", d(2025, 3, 14), "shardId-000000000001", "100", "200");
        let again = object_key("p/", d(2025, 3, 14), "shardId-000000000001", "100", "200");
        assert_eq!(a, again);
        let others = [
            object_key("p/", d(2025, 3, 15), "shardId-000000000001", "100", "200"),
            object_key("p/", d(2025, 3, 14), "shardId-000000000002", "100", "200"),
            object_key("p/", d(2025, 3, 14), "shardId-000000000001", "100", "201"),
            object_key("p/", d(2025, 3, 14), "shardId-000000000001", "101", "200"),
        ];
        for o in &others {
            assert_ne!(&a, o);
        }
    }

    #[test]
    fn keys_parse_back() {
        let (prefix, day, shard) = ("t-9/vehicle_telematics_raw/", d(2024, 2, 29), "shardId-3");
        let k = object_key(prefix, day, shard, "123", "456");
        assert_eq!(
            parse_object_key(&k),
            Some(ObjectKey {
                prefix: prefix.into(),
                day,
                shard_id: shard.into(),
                first_sequence: "123".into(),
                last_sequence: "456".into(),
            })
        );
        let root = object_key("", d(2025, 1, 1), "s", "1", "2");
        assert_eq!(parse_object_key(&root).unwrap().prefix, "");
        for bad in [
            "vehicle_telematics_raw/year=2025/month=03/day=14/shardId-1-2.json",
            "vehicle_telematics_raw/year=2025/month=03/day=14/x/shardId-0-1-2.parquet",
            "vehicle_telematics_raw/year=2025/month=02/day=30/shardId-0-1-2.parquet",
            "vehicle_telematics_raw/year=2025/month=03/day=14/shardId-0-1a-2.parquet",
            "vehicle_telematics_raw/year=2025/month=03/day=14/-1-2.parquet",
            "shardId-0-1-2.parquet",
        ] {
            assert_eq!(parse_object_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn partitions_parse_from_paths_and_locations() {
        let day = d(2025, 3, 14);
        assert_eq!(partition_path(day), "year=2025/month=03/day=14/");
        assert_eq!(partition_spec(day), "year=2025, month=3, day=14");
        let loc = partition_location("fleetline-lake", "vehicle_telematics_raw", day);
        assert_eq!(
            loc,
            "s3://fleetline-lake/vehicle_telematics_raw/year=2025/month=03/day=14/"
        );
        assert_eq!(parse_partition(&loc), Some(day));
        assert_eq!(
            parse_partition("year=2025/month=3/day=7"),
            Some(d(2025, 3, 7))
        );
        assert_eq!(parse_partition("x/year=2025/month=13/day=01/"), None);
        assert_eq!(parse_partition("year=2025/day=01/month=01/"), None);
        assert_eq!(parse_partition("year=+2025/month=01/day=01/"), None);
        assert_eq!(parse_partition("year=2025/month=001/day=01/"), None);
        assert_eq!(parse_partition("vehicle_telematics_raw/"), None);
    }

    #[test]
    fn rows_group_by_utc_day_across_midnight_and_late_readings() {
        let rows = vec![
            row("1HGCM82633A004352", "2025-03-14T23:59:59.999999Z", 1),
            row("1HGCM82633A004352", "2025-03-15T00:00:00Z", 2),
            // Late: delivered after the next day's readings, still in its own day.
            row("2HGCM82633A004352", "2025-03-14T23:58:00Z", 3),
            row("3HGCM82633A004352", "2025-03-13T12:00:00Z", 4),
            row("2HGCM82633A004352", "2025-03-15T00:00:01Z", 5),
        ];
        let by_day = split_by_day(&rows);
        let seqs = |day| -> Vec<String> {
            by_day[&day]
                .iter()
                .map(|r| r.reading.trip_id.clone())
                .collect()
        };
        assert_eq!(by_day.len(), 3);
        assert_eq!(seqs(d(2025, 3, 13)), ["trip-4"]);
        assert_eq!(seqs(d(2025, 3, 14)), ["trip-1", "trip-3"]);
        assert_eq!(seqs(d(2025, 3, 15)), ["trip-2", "trip-5"]);
    }
}
