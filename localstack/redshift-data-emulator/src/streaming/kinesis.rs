//! Reads a Kinesis stream for a streaming refresh: every shard from the record after the
//! last one this materialized view stored (or from TRIM_HORIZON), up to the shard's tip.

use std::collections::HashMap;

use aws_sdk_kinesis::Client;
use std::time::Duration;

use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, retry::RetryConfig};
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::types::ShardIteratorType;

use crate::aws_access::AwsAccess;
use crate::error::ExecError;

/// Records asked for per GetRecords call (the API's maximum).
const PAGE: i32 = 10_000;

/// One stream record with the metadata streaming ingestion exposes.
#[derive(Debug, Clone)]
pub struct StreamRow {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    /// `YYYY-MM-DD HH:MM:SS.fff` (UTC).
    pub arrival: String,
    pub data: Vec<u8>,
}

pub struct Kinesis {
    client: Client,
}

fn kinesis_error(what: &str, stream: &str, e: impl std::error::Error) -> ExecError {
    ExecError::new(format!(
        "streaming ingestion: Kinesis {what} on stream \"{stream}\" failed: {}",
        DisplayErrorContext(e)
    ))
}

impl Kinesis {
    pub fn new(endpoint: &str, aws: &AwsAccess) -> Self {
        // A call that never answers must not hold a refresh (and its transaction) open.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(15))
            .build();
        let conf = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .http_client(aws.http.clone())
            .region(aws.region.clone())
            .credentials_provider(aws.credentials.clone())
            .endpoint_url(endpoint)
            .build();
        Self {
            client: Client::from_conf(conf),
        }
    }

    /// Every shard id of `stream`, parents before children (ListShards order). A page
    /// after the first is asked for by its token alone, as ListShards requires.
    async fn shards(&self, stream: &str) -> Result<Vec<String>, ExecError> {
        let mut ids = Vec::new();
        let mut page = self.client.list_shards().stream_name(stream);
        loop {
            let out = page
                .send()
                .await
                .map_err(|e| kinesis_error("ListShards", stream, e))?;
            ids.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
            let Some(token) = out.next_token().filter(|t| !t.is_empty()) else {
                return Ok(ids);
            };
            page = self.client.list_shards().next_token(token);
        }
    }

    /// The records of every shard after `positions[shard]` (all of a shard without one).
    pub async fn read_new(
        &self,
        stream: &str,
        positions: &HashMap<String, String>,
    ) -> Result<Vec<StreamRow>, ExecError> {
        let mut rows = Vec::new();
        for shard in self.shards(stream).await? {
            let request = self
                .client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(&shard);
            let after = positions.get(&shard).cloned();
            let request = match &after {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(seq),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = request
                .send()
                .await
                .map_err(|e| kinesis_error("GetShardIterator", stream, e))?
                .shard_iterator()
                .map(str::to_owned);
            self.drain(stream, &shard, (iterator, after), &mut rows)
                .await?;
        }
        Ok(rows)
    }

    /// Follows `iterator` until the shard's tip (a page with nothing new and nothing
    /// behind) or its end (a closed shard has no next iterator). `after`: the last
    /// sequence number already stored.
    async fn drain(
        &self,
        stream: &str,
        shard: &str,
        (mut iterator, mut after): (Option<String>, Option<String>),
        rows: &mut Vec<StreamRow>,
    ) -> Result<(), ExecError> {
        // Pages in a row without a new record: the tip even if MillisBehindLatest lags.
        let mut idle = 0;
        while let Some(it) = iterator.take() {
            let page = self
                .client
                .get_records()
                .shard_iterator(it)
                .limit(PAGE)
                .send()
                .await
                .map_err(|e| kinesis_error("GetRecords", stream, e))?;
            let before = rows.len();
            for r in page.records() {
                // LocalStack may hand the same record out again: never store it twice.
                let seq = r.sequence_number();
                if after.as_deref().is_some_and(|a| !sequence_after(seq, a)) {
                    continue;
                }
                after = Some(seq.to_owned());
                rows.push(stream_row(shard, r));
            }
            idle = if rows.len() == before { idle + 1 } else { 0 };
            let at_tip = idle > 0 && (page.millis_behind_latest().unwrap_or(0) == 0 || idle >= 5);
            if !at_tip {
                iterator = page.next_shard_iterator().map(str::to_owned);
            }
        }
        Ok(())
    }
}

/// Whether sequence number `a` comes after `b` (decimal strings of up to 128 digits).
fn sequence_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

fn stream_row(shard: &str, r: &aws_sdk_kinesis::types::Record) -> StreamRow {
    // Kinesis keeps milliseconds; LocalStack's epoch seconds carry float noise.
    let arrival = r.approximate_arrival_timestamp().and_then(|t| {
        let millis = t.secs() * 1000 + i64::from((t.subsec_nanos() + 500_000) / 1_000_000);
        chrono::DateTime::from_timestamp_millis(millis)
            .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
    });
    StreamRow {
        shard_id: shard.to_owned(),
        sequence_number: r.sequence_number().to_owned(),
        partition_key: r.partition_key().unwrap_or_default().to_owned(),
        arrival: arrival.unwrap_or_default(),
        data: r.data().as_ref().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_after("100", "99"));
        assert!(!sequence_after("99", "100"));
        assert!(!sequence_after("5", "5"));
    }
}
