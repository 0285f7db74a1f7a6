//! The lake's event-date partitions: `<prefix>year=YYYY/month=MM/day=DD/` (docs/contracts.md).
//! [`LakeCatalog`] lists them; [`S3LakeCatalog`] walks the S3 "directories" with
//! ListObjectsV2 and a `/` delimiter (one call per year and per month, not per object).

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{Datelike, NaiveDate};

/// One partition present in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LakePartition {
    /// The event day the partition holds.
    pub day: NaiveDate,
    /// Its key prefix as found in S3 (kept verbatim, so the registered LOCATION is exactly
    /// where the objects are), e.g. `vehicle_telematics_raw/year=2025/month=03/day=14/`.
    pub key_prefix: String,
}

impl LakePartition {
    /// The partition of `day` under `prefix` (empty or ending with `/`), zero-padded as
    /// lake-writer writes it.
    pub fn for_day(prefix: &str, day: NaiveDate) -> Self {
        Self {
            day,
            key_prefix: format!(
                "{prefix}year={:04}/month={:02}/day={:02}/",
                day.year(),
                day.month(),
                day.day()
            ),
        }
    }

    /// `(year, month, day)` as the partition columns hold them.
    pub fn ymd(&self) -> (i32, u32, u32) {
        (self.day.year(), self.day.month(), self.day.day())
    }
}

/// Listing the lake failed.
#[derive(Debug, thiserror::Error)]
#[error("listing s3://{bucket}/{prefix}: {message}")]
pub struct LakeError {
    pub bucket: String,
    pub prefix: String,
    pub message: String,
}

/// The partitions present in the lake.
pub trait LakeCatalog: Send + Sync {
    /// Every event-day partition that holds at least one object, sorted by day.
    fn list_partitions(&self)
    -> impl Future<Output = Result<Vec<LakePartition>, LakeError>> + Send;
}

impl<C: LakeCatalog> LakeCatalog for &C {
    fn list_partitions(
        &self,
    ) -> impl Future<Output = Result<Vec<LakePartition>, LakeError>> + Send {
        (**self).list_partitions()
    }
}

/// The value of a `name=value/` segment directly under `parent`, e.g.
/// `segment_value("p/year=2025/", "p/", "year") == Some("2025")`.
pub fn segment_value<'a>(common_prefix: &'a str, parent: &str, name: &str) -> Option<&'a str> {
    let rest = common_prefix.strip_prefix(parent)?.strip_suffix('/')?;
    let value = rest.strip_prefix(name)?.strip_prefix('=')?;
    (!value.is_empty() && !value.contains('/')).then_some(value)
}

/// A partition value: 1–4 ASCII digits (`03` and `3` both mean 3).
pub fn parse_number(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 4 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The partition an object key belongs to, if it is `<prefix>year=Y/month=M/day=D/<file>`
/// with a valid date and a file name (keys ending in `/` are folder markers, skipped).
pub fn partition_of_key(prefix: &str, key: &str) -> Option<LakePartition> {
    let rest = key.strip_prefix(prefix)?;
    let mut parts = rest.splitn(4, '/');
    let (y, m, d, file) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if file.is_empty() || file.contains('/') {
        return None;
    }
    let year = parse_number(y.strip_prefix("year=")?)?;
    let month = parse_number(m.strip_prefix("month=")?)?;
    let day = parse_number(d.strip_prefix("day=")?)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(LakePartition {
        day: date,
        key_prefix: format!("{prefix}{y}/{m}/{d}/"),
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

    /// The common prefixes (sub-"directories") directly under `prefix`, all pages.
    async fn subdirectories(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                // A bucket that does not exist yet holds no partitions (fresh local stack).
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => {
                    tracing::warn!(bucket = %self.bucket, "lake bucket does not exist; no partitions");
                    return Ok(out);
                }
                Err(e) => {
                    return Err(LakeError {
                        bucket: self.bucket.clone(),
                        prefix: prefix.to_owned(),
                        message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    });
                }
            };
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|c| c.prefix().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

impl LakeCatalog for S3LakeCatalog {
    async fn list_partitions(&self) -> Result<Vec<LakePartition>, LakeError> {
        let mut found = Vec::new();
        for year_dir in self.subdirectories(&self.prefix).await? {
            let Some(year) = segment_value(&year_dir, &self.prefix, "year").and_then(parse_number)
            else {
                continue;
            };
            for month_dir in self.subdirectories(&year_dir).await? {
                let Some(month) =
                    segment_value(&month_dir, &year_dir, "month").and_then(parse_number)
                else {
                    continue;
                };
                for day_dir in self.subdirectories(&month_dir).await? {
                    let Some(day) =
                        segment_value(&day_dir, &month_dir, "day").and_then(parse_number)
                    else {
                        continue;
                    };
                    match i32::try_from(year)
                        .ok()
                        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
                    {
                        Some(date) => found.push(LakePartition {
                            day: date,
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
