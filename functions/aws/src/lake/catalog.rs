//! The lake-catalog adapter: which event-day partitions the lake holds, found by walking the
//! S3 "directories" `<prefix>year=…/month=…/day=…/` with ListObjectsV2 and a `/` delimiter
//! (one listing per year and per month, not per object). The layout is the writer's
//! ([`partition_path`], [`parse_partition`]), so registering reads exactly what writing wrote.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use fleetline_core::ports::catalog::{CatalogError, LakeCatalog, LakePartition};

use super::layout::{parse_partition, partition_path};

/// The partition of `day` under `prefix` (empty or ending with `/`), as lake-writer writes it.
pub fn partition_for_day(prefix: &str, day: NaiveDate) -> LakePartition {
    LakePartition {
        day,
        key_prefix: format!("{prefix}{}", partition_path(day)),
    }
}

/// The partition an object key belongs to, if it is `<prefix>year=Y/month=M/day=D/<file>`
/// with a valid date and a file name (keys ending in `/` are folder markers, skipped). The
/// key prefix is kept verbatim (`month=3` stays `month=3`).
pub fn partition_of_key(prefix: &str, key: &str) -> Option<LakePartition> {
    let (dir, file) = key.strip_prefix(prefix)?.rsplit_once('/')?;
    if file.is_empty() || dir.split('/').count() != 3 {
        return None;
    }
    Some(LakePartition {
        day: parse_partition(dir)?,
        key_prefix: format!("{prefix}{dir}/"),
    })
}

/// Keeps one partition per day (the first key prefix seen, with a warning for the others)
/// and sorts by day.
pub fn dedupe_by_day(partitions: impl IntoIterator<Item = LakePartition>) -> Vec<LakePartition> {
    let mut by_day: BTreeMap<NaiveDate, LakePartition> = BTreeMap::new();
    for p in partitions {
        match by_day.get(&p.day) {
            Some(kept) if kept.key_prefix != p.key_prefix => tracing::warn!(
                day = %p.day,
                kept = %kept.key_prefix,
                ignored = %p.key_prefix,
                "two lake prefixes for one day; only the first is registered"
            ),
            Some(_) => {}
            None => {
                by_day.insert(p.day, p);
            }
        }
    }
    by_day.into_values().collect()
}

/// Whether `common_prefix` is a `name=…/` directory directly under `parent`, e.g.
/// `p/year=2025/` is a `year` directory under `p/`.
fn is_segment(common_prefix: &str, parent: &str, name: &str) -> bool {
    common_prefix
        .strip_prefix(parent)
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('='))
        .is_some_and(|value| !value.is_empty() && !value.contains('/'))
}

/// [`LakeCatalog`] over S3.
#[derive(Debug, Clone)]
pub struct S3LakeCatalog {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3LakeCatalog {
    /// `prefix`: the lake table's key prefix, empty or ending with `/`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.to_owned(),
        }
    }

    /// The common prefixes (sub-"directories") directly under `parent` named `name=…/`,
    /// all pages.
    async fn subdirectories(&self, parent: &str, name: &str) -> Result<Vec<String>, CatalogError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(parent)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                // A bucket that does not exist yet holds no partitions (fresh local stack).
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => {
                    tracing::warn!(bucket = %self.bucket, "lake bucket does not exist; no partitions");
                    return Ok(Vec::new());
                }
                Err(e) => {
                    return Err(CatalogError {
                        location: format!("s3://{}/{parent}", self.bucket),
                        message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    });
                }
            };
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|c| c.prefix())
                    .filter(|p| is_segment(p, parent, name))
                    .map(str::to_owned),
            );
        }
        Ok(out)
    }
}

impl LakeCatalog for S3LakeCatalog {
    async fn list_partitions(&self) -> Result<Vec<LakePartition>, CatalogError> {
        let mut found = Vec::new();
        for year_dir in self.subdirectories(&self.prefix, "year").await? {
            for month_dir in self.subdirectories(&year_dir, "month").await? {
                for day_dir in self.subdirectories(&month_dir, "day").await? {
                    let rest = day_dir
                        .strip_prefix(self.prefix.as_str())
                        .unwrap_or(&day_dir);
                    match parse_partition(rest) {
                        Some(day) => found.push(LakePartition {
                            day,
                            key_prefix: day_dir,
                        }),
                        None => tracing::warn!(prefix = %day_dir, "not a valid date; skipped"),
                    }
                }
            }
        }
        Ok(dedupe_by_day(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
    use aws_sdk_s3::types::CommonPrefix;
    use aws_sdk_s3::types::error::NoSuchBucket;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    const PREFIX: &str = "vehicle_telematics_raw/";

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn catalog(rules: &[&Rule]) -> S3LakeCatalog {
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules);
        S3LakeCatalog::new(client, "fleetline-lake", PREFIX)
    }

    fn listing(prefixes: &[&str], next: Option<&str>) -> ListObjectsV2Output {
        ListObjectsV2Output::builder()
            .set_common_prefixes(Some(
                prefixes
                    .iter()
                    .map(|p| CommonPrefix::builder().prefix(*p).build())
                    .collect(),
            ))
            .is_truncated(next.is_some())
            .set_next_continuation_token(next.map(str::to_owned))
            .build()
    }

    /// One rule answering the listing of `parent` (first page, or the page after `token`).
    fn dir(parent: &'static str, token: Option<&'static str>, out: ListObjectsV2Output) -> Rule {
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .match_requests(move |r| {
                r.bucket() == Some("fleetline-lake")
                    && r.prefix() == Some(parent)
                    && r.delimiter() == Some("/")
                    && r.continuation_token() == token
            })
            .then_output(move || out.clone())
    }

    #[tokio::test]
    async fn walks_years_months_and_days_across_pages() {
        let rules = [
            dir(
                PREFIX,
                None,
                listing(&["vehicle_telematics_raw/year=2025/"], Some("t1")),
            ),
            dir(
                PREFIX,
                Some("t1"),
                listing(
                    &[
                        "vehicle_telematics_raw/year=2026/",
                        "vehicle_telematics_raw/_tmp/",
                    ],
                    None,
                ),
            ),
            dir(
                "vehicle_telematics_raw/year=2025/",
                None,
                listing(&["vehicle_telematics_raw/year=2025/month=03/"], None),
            ),
            dir(
                "vehicle_telematics_raw/year=2025/month=03/",
                None,
                listing(
                    &[
                        "vehicle_telematics_raw/year=2025/month=03/day=14/",
                        "vehicle_telematics_raw/year=2025/month=03/day=2/",
                        // Not a date: skipped with a warning.
                        "vehicle_telematics_raw/year=2025/month=03/day=32/",
                    ],
                    None,
                ),
            ),
            dir(
                "vehicle_telematics_raw/year=2026/",
                None,
                listing(&["vehicle_telematics_raw/year=2026/month=1/"], None),
            ),
            dir(
                "vehicle_telematics_raw/year=2026/month=1/",
                None,
                listing(&["vehicle_telematics_raw/year=2026/month=1/day=05/"], None),
            ),
        ];
        let refs: Vec<&Rule> = rules.iter().collect();
        let found = catalog(&refs).list_partitions().await.unwrap();
        assert_eq!(
            found,
            vec![
                LakePartition {
                    day: d("2025-03-02"),
                    key_prefix: "vehicle_telematics_raw/year=2025/month=03/day=2/".into(),
                },
                partition_for_day(PREFIX, d("2025-03-14")),
                LakePartition {
                    day: d("2026-01-05"),
                    key_prefix: "vehicle_telematics_raw/year=2026/month=1/day=05/".into(),
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_bucket_holds_no_partitions_and_other_errors_fail() {
        let missing = mock!(aws_sdk_s3::Client::list_objects_v2).then_error(|| {
            ListObjectsV2Error::NoSuchBucket(NoSuchBucket::builder().message("none").build())
        });
        assert_eq!(
            catalog(&[&missing]).list_partitions().await.unwrap(),
            vec![]
        );

        let meta = aws_sdk_s3::error::ErrorMetadata::builder()
            .code("AccessDenied")
            .build();
        let denied = mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_error(move || ListObjectsV2Error::generic(meta.clone()));
        let err = catalog(&[&denied]).list_partitions().await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("listing s3://fleetline-lake/vehicle_telematics_raw/: "),
            "{err}"
        );
    }

    #[test]
    fn object_keys_map_to_partitions() {
        let p = partition_of_key(
            PREFIX,
            "vehicle_telematics_raw/year=2025/month=03/day=14/shardId-000000000001-4955-4960.parquet",
        )
        .unwrap();
        assert_eq!(p, partition_for_day(PREFIX, d("2025-03-14")));
        assert_eq!(p.ymd(), (2025, 3, 14));
        // Unpadded values are read, and the prefix is kept verbatim for the LOCATION.
        let q =
            partition_of_key(PREFIX, "vehicle_telematics_raw/year=2025/month=3/day=7/x").unwrap();
        assert_eq!(q.day, d("2025-03-07"));
        assert_eq!(
            q.key_prefix,
            "vehicle_telematics_raw/year=2025/month=3/day=7/"
        );
        for bad in [
            "vehicle_telematics_raw/year=2025/month=02/day=30/x.parquet", // no such date
            "vehicle_telematics_raw/year=2025/month=03/day=14/",          // folder marker
            "vehicle_telematics_raw/year=2025/month=03/x.parquet",        // too shallow
            "vehicle_telematics_raw/year=2025/month=03/day=14/a/b",       // too deep
            "vehicle_telematics_raw/year=25x/month=03/day=14/x",
            "vehicle_telematics_raw/month=03/year=2025/day=14/x",
            "other/year=2025/month=03/day=14/x",
            "rejected/shardId-1/123.json",
        ] {
            assert_eq!(partition_of_key(PREFIX, bad), None, "{bad}");
        }
    }

    #[test]
    fn common_prefix_segments() {
        assert!(is_segment("p/year=2025/", "p/", "year"));
        assert!(is_segment("p/year=2025/month=03/", "p/year=2025/", "month"));
        assert!(!is_segment("p/year=/", "p/", "year"));
        assert!(!is_segment("p/years=2025/", "p/", "year"));
        assert!(!is_segment("p/year=2025", "p/", "year"));
        assert!(!is_segment("q/year=2025/", "p/", "year"));
    }

    #[test]
    fn one_partition_per_day_sorted() {
        let a = partition_for_day(PREFIX, d("2025-03-14"));
        let b = partition_for_day(PREFIX, d("2025-03-02"));
        let odd = LakePartition {
            day: d("2025-03-14"),
            key_prefix: "vehicle_telematics_raw/year=2025/month=3/day=14/".into(),
        };
        let out = dedupe_by_day([a.clone(), b.clone(), odd]);
        assert_eq!(out, vec![b, a]);
    }
}
