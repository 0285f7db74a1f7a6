//! The default lake sink: Parquet objects written directly to S3.

use futures::StreamExt;

use super::error::{ErrorKind, LakeError, classify};
use super::layout::{object_key, split_by_day};
use super::parquet::encode_parquet;
use super::{LakeBatch, LakeSink, WriteReport};
use crate::s3::normalize_prefix;

/// PutObject calls in flight for one batch (a batch spans a few days at most; the bound
/// matters for backfills where one batch holds many late days).
pub const DEFAULT_WRITE_CONCURRENCY: usize = 8;

/// Content type of the objects (IANA-registered for Parquet).
const CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// One Parquet object per (event day, shard, batch) at
/// [`object_key`](super::object_key)`(prefix, day, shard, first, last)`.
///
/// Build the client with [`crate::s3::s3_client`] (path-style addressing when a
/// custom endpoint such as LocalStack is configured).
#[derive(Debug, Clone)]
pub struct S3LakeSink {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    concurrency: usize,
}

impl S3LakeSink {
    /// `prefix` (`LAKE_PREFIX`) is normalised to end with `/`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
            concurrency: DEFAULT_WRITE_CONCURRENCY,
        }
    }

    /// At most `n` (≥ 1) PutObject calls at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn put(&self, key: String, body: Vec<u8>) -> Result<u64, LakeError> {
        let len = body.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(CONTENT_TYPE)
            .body(body.into())
            .send()
            .await
            .map(|_| len)
            .map_err(|e| {
                let (kind, code, message) = classify(&e);
                LakeError {
                    kind,
                    operation: "PutObject",
                    target: format!("s3://{}/{key}", self.bucket),
                    code,
                    message,
                }
            })
    }
}

impl LakeSink for S3LakeSink {
    async fn write(&self, batch: &LakeBatch) -> Result<WriteReport, LakeError> {
        // Encode everything first: an encoding error must not leave half the days written.
        let mut objects = Vec::new();
        for (day, rows) in split_by_day(&batch.rows) {
            let key = object_key(
                &self.prefix,
                day,
                &batch.shard_id,
                &batch.first_sequence,
                &batch.last_sequence,
            );
            let body = encode_parquet(&rows).map_err(|e| LakeError {
                kind: ErrorKind::Permanent,
                operation: "encode",
                target: format!("s3://{}/{key}", self.bucket),
                code: "encode".into(),
                message: e.to_string(),
            })?;
            objects.push((key, body));
        }
        let mut report = WriteReport {
            rows: batch.rows.len() as u64,
            ..WriteReport::default()
        };
        let mut first_error: Option<LakeError> = None;
        let mut results = futures::stream::iter(objects)
            .map(|(key, body)| self.put(key, body))
            .buffer_unordered(self.concurrency);
        while let Some(result) = results.next().await {
            match result {
                Ok(bytes) => {
                    report.objects += 1;
                    report.calls += 1;
                    report.bytes += bytes;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lake object not written");
                    // A permanent error wins: retrying the batch cannot fix it.
                    let replace = first_error
                        .as_ref()
                        .is_none_or(|f| f.is_transient() && !e.is_transient());
                    if replace {
                        first_error = Some(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::test_support::row;
    use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    fn no_retries(c: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        c.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
    }

    fn batch() -> LakeBatch {
        LakeBatch {
            shard_id: "shardId-000000000000".into(),
            first_sequence: "100".into(),
            last_sequence: "900".into(),
            rows: vec![
                row("1HGCM82633A004352", "2025-03-14T23:59:59Z", 1),
                row("1HGCM82633A004352", "2025-03-15T00:00:00Z", 2),
                row("2HGCM82633A004352", "2025-03-14T23:59:58Z", 3),
            ],
        }
    }

    #[tokio::test]
    async fn one_object_per_day_at_the_contract_keys() {
        let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let log = seen.clone();
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |r| {
                log.lock().unwrap().push((
                    r.key().unwrap_or_default().to_owned(),
                    r.body().bytes().map_or(0, <[u8]>::len),
                ));
                r.bucket() == Some("lake")
                    && r.content_type() == Some("application/vnd.apache.parquet")
            })
            .then_output(|| PutObjectOutput::builder().build());
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&put]);
        let sink = S3LakeSink::new(client, "lake", "t/vehicle_telematics_raw");
        let report = sink.write(&batch()).await.unwrap();
        let keys: BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "t/vehicle_telematics_raw/year=2025/month=03/day=14/shardId-000000000000-100-900.parquet".to_owned(),
                "t/vehicle_telematics_raw/year=2025/month=03/day=15/shardId-000000000000-100-900.parquet".to_owned(),
            ])
        );
        let bytes: usize = seen.lock().unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(
            report,
            WriteReport {
                rows: 3,
                objects: 2,
                bytes: bytes as u64,
                calls: 2
            }
        );
        assert_eq!(put.num_calls(), 2);
    }

    #[tokio::test]
    async fn empty_batch_writes_nothing() {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .then_output(|| PutObjectOutput::builder().build());
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&put]);
        let sink = S3LakeSink::new(client, "lake", "p/");
        let mut b = batch();
        b.rows.clear();
        assert_eq!(sink.write(&b).await.unwrap(), WriteReport::default());
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn throttling_is_transient_and_access_denied_is_permanent() {
        let slow_down = mock!(aws_sdk_s3::Client::put_object)
            .sequence()
            .http_status(
                503,
                Some(
                    "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                        .into(),
                ),
            )
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&slow_down], no_retries);
        let err = S3LakeSink::new(client, "lake", "p/")
            .write(&batch())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.code, "SlowDown");

        let denied = mock!(aws_sdk_s3::Client::put_object).then_error(|| {
            PutObjectError::generic(
                aws_sdk_s3::error::ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&denied], no_retries);
        let err = S3LakeSink::new(client, "lake", "p/")
            .write(&batch())
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
        assert_eq!(err.code, "AccessDenied");
    }
}
