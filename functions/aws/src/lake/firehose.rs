//! The optional lake sink: Amazon Data Firehose (PutRecordBatch into a DirectPut delivery
//! stream). On AWS the stream (template.yaml `LakeDeliveryStream`) extracts the partition
//! from `event_day` with JQ and converts each JSON object to Parquet through the Glue table
//! with the OpenX JSON SerDe, so every record is one JSON object with the Glue column names,
//! in the forms that SerDe parses into the column types:
//!
//! ```json
//! {"vin":"1HGCM82633A004352","trip_id":"V1StGXR8_Z5jdHi6B-myT","ts":"2025-03-14 23:59:58.123456",
//!  "event_day":"2025-03-14","vehicle_speed":57.300,"acceleration":-4.2109,"odometer":1042.377,
//!  "latitude":47.6105,"longitude":-122.3301,"shard_id":"shardId-000000000000",
//!  "sequence_number":"4959…","raw":"{\"VIN\":…}"}
//! ```
//!
//! `ts` is Hive's timestamp text (UTC), `event_day` an ISO date, decimals are JSON numbers
//! written from the exact fixed-point text (never through `f64`). Each record ends with
//! `\n`, so objects that Firehose concatenates split back into records line by line.

use std::ops::Range;
use std::time::Duration;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::error::{ErrorKind, LakeError, classify};
use super::{LakeBatch, LakeRow, LakeSink, WriteReport};
use crate::backoff::Backoff;

/// PutRecordBatch limits (Firehose quotas; they cannot be raised).
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;

/// Retries of the entries a PutRecordBatch call did not accept (and of whole calls that
/// failed transiently, after the SDK's own retries): `max_attempts` calls in total per chunk.
pub const FIREHOSE_RETRY: Backoff =
    Backoff::new(6, Duration::from_millis(100), Duration::from_secs(5));

/// PutRecordBatch into one delivery stream.
#[derive(Debug, Clone)]
pub struct FirehoseLakeSink {
    client: aws_sdk_firehose::Client,
    stream: String,
    retry: Backoff,
}

impl FirehoseLakeSink {
    pub fn new(client: aws_sdk_firehose::Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
            retry: FIREHOSE_RETRY,
        }
    }

    pub fn with_retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Sends one chunk until every entry is accepted; returns the successful call count.
    async fn put_chunk(&self, lines: Vec<Vec<u8>>) -> Result<u64, LakeError> {
        let total = lines.len();
        let mut pending: Vec<Record> = Vec::with_capacity(total);
        for line in lines {
            pending.push(
                Record::builder()
                    .data(Blob::new(line))
                    .build()
                    .map_err(|e| self.error(ErrorKind::Permanent, "construction", e.to_string()))?,
            );
        }
        let max_attempts = self.retry.attempts();
        let mut calls = 0;
        let mut attempt = 1;
        loop {
            let last = match self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(pending.clone()))
                .send()
                .await
            {
                Ok(out) => {
                    calls += 1;
                    if out.failed_put_count() == 0 {
                        return Ok(calls);
                    }
                    let responses = out.request_responses();
                    let codes = failure_codes(responses);
                    pending = if responses.len() == pending.len() {
                        pending
                            .into_iter()
                            .zip(responses)
                            .filter(|(_, r)| r.error_code().is_some())
                            .map(|(rec, _)| rec)
                            .collect()
                    } else {
                        // Cannot tell which failed: resend all (the lake tolerates
                        // duplicates; the batch layer de-duplicates on (VIN, ts)).
                        pending
                    };
                    (
                        codes,
                        format!(
                            "{} of {total} records not accepted (FailedPutCount {})",
                            pending.len(),
                            out.failed_put_count()
                        ),
                    )
                }
                Err(e) => {
                    let (mut kind, mut code, message) = classify(&e);
                    // The modeled variant is authoritative (errors built without metadata
                    // carry no code).
                    if e.as_service_error()
                        .is_some_and(|s| s.is_service_unavailable_exception())
                    {
                        kind = ErrorKind::Transient;
                        code = "ServiceUnavailableException".into();
                    }
                    if kind == ErrorKind::Permanent {
                        return Err(self.error(kind, &code, message));
                    }
                    (code, message)
                }
            };
            if attempt >= max_attempts {
                return Err(self.error(
                    ErrorKind::Transient,
                    &last.0,
                    format!("{} after {attempt} attempts", last.1),
                ));
            }
            let wait = self.retry.delay(attempt - 1);
            tracing::warn!(
                stream = %self.stream,
                attempt,
                max_attempts,
                pending = pending.len(),
                code = %last.0,
                message = %last.1,
                wait_ms = wait.as_millis() as u64,
                "PutRecordBatch incomplete; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn error(&self, kind: ErrorKind, code: &str, message: String) -> LakeError {
        LakeError {
            kind,
            operation: "PutRecordBatch",
            target: self.stream.clone(),
            code: code.to_owned(),
            message,
        }
    }
}

/// `ServiceUnavailableException×3,InternalFailure×1` (sorted), for logs and errors.
fn failure_codes(responses: &[aws_sdk_firehose::types::PutRecordBatchResponseEntry]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for code in responses.iter().filter_map(|r| r.error_code()) {
        *counts.entry(code).or_insert(0u32) += 1;
    }
    counts
        .iter()
        .map(|(c, n)| format!("{c}×{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl LakeSink for FirehoseLakeSink {
    async fn write(&self, batch: &LakeBatch) -> Result<WriteReport, LakeError> {
        let lines: Vec<Vec<u8>> = batch
            .rows
            .iter()
            .map(|r| json_line(r).map(String::into_bytes))
            .collect::<Result<_, _>>()
            .map_err(|e| LakeError {
                kind: ErrorKind::Permanent,
                operation: "encode",
                target: self.stream.clone(),
                code: "encode".into(),
                message: e.to_string(),
            })?;
        let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
        let mut report = WriteReport {
            rows: lines.len() as u64,
            bytes: sizes.iter().sum::<usize>() as u64,
            ..WriteReport::default()
        };
        let mut lines = lines.into_iter();
        for range in chunk_ranges(&sizes, MAX_BATCH_RECORDS, MAX_BATCH_BYTES) {
            let chunk: Vec<Vec<u8>> = lines.by_ref().take(range.len()).collect();
            report.calls += self.put_chunk(chunk).await?;
        }
        Ok(report)
    }
}

/// Consecutive ranges of items with at most `max_records` items and at most `max_bytes`
/// bytes each (an item larger than `max_bytes` gets a range of its own).
pub fn chunk_ranges(sizes: &[usize], max_records: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let max_records = max_records.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        let full = i - start == max_records || (i > start && bytes + size > max_bytes);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// One record for Firehose: a JSON object with the Glue columns and a trailing `\n`.
/// At most [`MAX_RECORD_BYTES`]: if the original payload would make it larger, `raw` is
/// sent as `null` (logged) so that the typed columns, which every metric uses, still land.
/// Fails only if a decimal's text were not a JSON number (it always is).
pub fn json_line(row: &LakeRow) -> Result<String, serde_json::Error> {
    let line = json_object(row, true)?;
    if line.len() <= MAX_RECORD_BYTES {
        return Ok(line);
    }
    tracing::warn!(
        shard_id = %row.shard_id,
        sequence_number = %row.sequence_number,
        bytes = line.len(),
        "record too large for Firehose; raw payload dropped from the lake row"
    );
    json_object(row, false)
}

/// The lake JSON line, field for field the Glue columns in order (`LAKE_COLUMNS`).
#[derive(Serialize)]
struct LakeJson<'a> {
    vin: &'a str,
    trip_id: &'a str,
    #[serde(serialize_with = "as_text")]
    ts: fleetline_core::TimestampDisplay<'a>,
    event_day: String,
    vehicle_speed: Box<RawValue>,
    acceleration: Box<RawValue>,
    odometer: Box<RawValue>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    shard_id: &'a str,
    sequence_number: &'a str,
    raw: Option<&'a str>,
}

fn as_text<T: std::fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// A decimal as a JSON number written from its exact fixed-point text (never through `f64`,
/// which would turn `57.300` into `57.3`).
fn exact(decimal: impl std::fmt::Display) -> Result<Box<RawValue>, serde_json::Error> {
    RawValue::from_string(decimal.to_string())
}

fn json_object(row: &LakeRow, with_raw: bool) -> Result<String, serde_json::Error> {
    let r = &row.reading;
    let location = r.location;
    let line = LakeJson {
        vin: r.vin.as_str(),
        trip_id: &r.trip_id,
        ts: r.timestamp_display(),
        event_day: r.day().format("%Y-%m-%d").to_string(),
        vehicle_speed: exact(r.speed_decimal())?,
        acceleration: exact(r.acceleration_decimal())?,
        odometer: exact(r.odometer_decimal())?,
        latitude: location.map(|l| l.latitude),
        longitude: location.map(|l| l.longitude),
        shard_id: &row.shard_id,
        sequence_number: &row.sequence_number,
        raw: with_raw.then_some(r.raw.as_str()),
    };
    let mut text = serde_json::to_string(&line)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LAKE_COLUMNS;
    use crate::lake::test_support::row;
    use aws_sdk_firehose::operation::put_record_batch::{
        PutRecordBatchError, PutRecordBatchOutput,
    };
    use aws_sdk_firehose::types::PutRecordBatchResponseEntry;
    use aws_sdk_firehose::types::error::{ResourceNotFoundException, ServiceUnavailableException};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};

    type Calls = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

    fn no_retries(c: aws_sdk_firehose::config::Builder) -> aws_sdk_firehose::config::Builder {
        c.retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
    }

    fn sink(rules: &[&Rule]) -> FirehoseLakeSink {
        let client = mock_client!(aws_sdk_firehose, RuleMode::Sequential, rules, no_retries);
        FirehoseLakeSink::new(client, "fleetline-lake").with_retry(Backoff::new(
            4,
            Duration::from_millis(100),
            Duration::from_secs(1),
        ))
    }

    /// Every call's record data, in order.
    fn recording(
        calls: &Calls,
    ) -> impl Fn(&aws_sdk_firehose::operation::put_record_batch::PutRecordBatchInput) -> bool
    + Send
    + Sync
    + 'static {
        let calls = calls.clone();
        move |input| {
            calls.lock().unwrap().push(
                input
                    .records()
                    .iter()
                    .map(|r| r.data().as_ref().to_vec())
                    .collect(),
            );
            input.delivery_stream_name() == Some("fleetline-lake")
        }
    }

    /// Every one of `n` entries accepted.
    fn ok(n: usize) -> PutRecordBatchOutput {
        partial(&vec![false; n])
    }

    /// `failed[i]` → entry i fails with ServiceUnavailableException.
    fn partial(failed: &[bool]) -> PutRecordBatchOutput {
        PutRecordBatchOutput::builder()
            .failed_put_count(failed.iter().filter(|f| **f).count() as i32)
            .set_request_responses(Some(
                failed
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if *f {
                            PutRecordBatchResponseEntry::builder()
                                .error_code("ServiceUnavailableException")
                                .error_message("Slow down.")
                                .build()
                        } else {
                            PutRecordBatchResponseEntry::builder()
                                .record_id(format!("r{i}"))
                                .build()
                        }
                    })
                    .collect(),
            ))
            .build()
            .unwrap()
    }

    fn batch(n: usize) -> LakeBatch {
        LakeBatch {
            shard_id: "shardId-000000000000".into(),
            first_sequence: "1".into(),
            last_sequence: "9".into(),
            rows: (0..n)
                .map(|i| {
                    let ts = chrono::DateTime::from_timestamp(1_741_996_800 + i as i64, 0)
                        .unwrap()
                        .to_rfc3339();
                    row("1HGCM82633A004352", &ts, i as u64)
                })
                .collect(),
        }
    }

    #[test]
    fn json_line_has_the_glue_columns_in_serde_readable_forms() {
        let mut r = row("1HGCM82633A004352", "2025-03-14T23:59:58.123456Z", 1);
        r.reading.raw = "{\n \"VIN\": \"1HGCM82633A004352\",\n \"x\": \"\\u00e9\"\n}".into();
        let line = json_line(&r).unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        // Decimals are JSON numbers with the exact scale (text, not float formatting).
        assert!(line.contains("\"vehicle_speed\":57.301,"), "{line}");
        assert!(line.contains("\"acceleration\":-4.2110,"), "{line}");
        assert!(line.contains("\"odometer\":1042.378,"), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "vin": "1HGCM82633A004352",
                "trip_id": "trip-1",
                "ts": "2025-03-14 23:59:58.123456",
                "event_day": "2025-03-14",
                "vehicle_speed": 57.301,
                "acceleration": -4.211,
                "odometer": 1042.378,
                "latitude": r.reading.location.unwrap().latitude,
                "longitude": -122.3301,
                "shard_id": "shardId-000000000000",
                "sequence_number": r.sequence_number,
                "raw": r.reading.raw,
            })
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, LAKE_COLUMNS);
        // No location → nulls; the JQ partition query reads event_day[0:4] etc.
        r.reading.location = None;
        let v: Value = serde_json::from_str(&json_line(&r).unwrap()).unwrap();
        assert_eq!(v["latitude"], Value::Null);
        assert_eq!(&v["event_day"].as_str().unwrap()[5..7], "03");
    }

    #[test]
    fn json_line_bytes_are_pinned() {
        let r = row("1HGCM82633A004352", "2025-03-14T23:59:58.123456Z", 1);
        let lat = serde_json::Value::from(r.reading.location.unwrap().latitude);
        let want = format!(
            "{{\"vin\":\"1HGCM82633A004352\",\"trip_id\":\"trip-1\",\"ts\":\"2025-03-14 23:59:58.123456\",\"event_day\":\"2025-03-14\",\"vehicle_speed\":57.301,\"acceleration\":-4.2110,\"odometer\":1042.378,\"latitude\":{lat},\"longitude\":-122.3301,\"shard_id\":\"shardId-000000000000\",\"sequence_number\":\"49590338271490256608559692538361571095921575989136580001\",\"raw\":{}}}\n",
            serde_json::Value::from(r.reading.raw.as_str())
        );
        assert_eq!(json_line(&r).unwrap(), want);
    }

    #[test]
    fn oversized_records_drop_raw_but_keep_the_columns() {
        let mut r = row("1HGCM82633A004352", "2025-03-14T23:59:58Z", 1);
        r.reading.raw = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_RECORD_BYTES));
        let line = json_line(&r).unwrap();
        assert!(line.len() <= MAX_RECORD_BYTES);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["raw"], Value::Null);
        assert_eq!(v["vin"], "1HGCM82633A004352");
    }

    #[test]
    fn chunks_respect_the_record_and_byte_limits() {
        // 1,001 small records → 500 + 500 + 1.
        let sizes = vec![300; 1_001];
        let ranges = chunk_ranges(&sizes, MAX_BATCH_RECORDS, MAX_BATCH_BYTES);
        assert_eq!(ranges, vec![0..500, 500..1_000, 1_000..1_001]);
        // Exactly 500 → one chunk; exactly 4 MiB → one chunk; one byte more → two.
        assert_eq!(chunk_ranges(&[1; 500], 500, MAX_BATCH_BYTES), vec![0..500]);
        let quarter = MAX_BATCH_BYTES / 4;
        assert_eq!(
            chunk_ranges(&[quarter; 4], 500, MAX_BATCH_BYTES),
            vec![0..4]
        );
        assert_eq!(
            chunk_ranges(
                &[quarter, quarter, quarter, quarter + 1],
                500,
                MAX_BATCH_BYTES
            ),
            vec![0..3, 3..4]
        );
        // Realistic maximum records (1,000 KiB): four fit, the fifth starts a new call.
        let big = vec![MAX_RECORD_BYTES; 9];
        let ranges = chunk_ranges(&big, 500, MAX_BATCH_BYTES);
        assert_eq!(ranges, vec![0..4, 4..8, 8..9]);
        for r in &ranges {
            assert!(big[r.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES);
        }
        // Oversized single item gets its own range; empty input → no ranges.
        assert_eq!(
            chunk_ranges(&[10, 100, 10], 500, 50),
            vec![0..1, 1..2, 2..3]
        );
        assert!(chunk_ranges(&[], 500, 50).is_empty());
        // Every index covered once, in order, for a mixed workload.
        let mixed: Vec<usize> = (0..3_000).map(|i| (i * 7_919) % 20_000 + 1).collect();
        let ranges = chunk_ranges(&mixed, 500, MAX_BATCH_BYTES);
        let flat: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
        assert_eq!(flat, (0..3_000).collect::<Vec<_>>());
        assert!(
            ranges.iter().all(
                |r| r.len() <= 500 && mixed[r.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_batch_goes_out_in_500_record_calls() {
        let calls: Calls = Arc::default();
        let put = mock!(aws_sdk_firehose::Client::put_record_batch)
            .match_requests(recording(&calls))
            .sequence()
            .output(|| ok(500))
            .repeatedly()
            .build();
        let b = batch(1_203);
        let report = sink(&[&put]).write(&b).await.unwrap();
        let calls = calls.lock().unwrap();
        let lens: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(lens, [500, 500, 203]);
        let sent: Vec<Vec<u8>> = calls.iter().flatten().cloned().collect();
        let want: Vec<Vec<u8>> = b
            .rows
            .iter()
            .map(|r| json_line(r).unwrap().into_bytes())
            .collect();
        assert_eq!(sent, want);
        assert_eq!(report.rows, 1_203);
        assert_eq!(report.calls, 3);
        assert_eq!(report.objects, 0);
        assert_eq!(
            report.bytes,
            want.iter().map(Vec::len).sum::<usize>() as u64
        );
    }

    #[tokio::test(start_paused = true)]
    async fn partial_failure_resends_only_the_failed_entries() {
        let calls: Calls = Arc::default();
        let put = mock!(aws_sdk_firehose::Client::put_record_batch)
            .match_requests(recording(&calls))
            .sequence()
            .output(|| partial(&[false, true, false, true, false]))
            .output(|| partial(&[false, true]))
            .output(|| ok(1))
            .build();
        let b = batch(5);
        let report = sink(&[&put]).write(&b).await.unwrap();
        let calls = calls.lock().unwrap();
        let line = |i: usize| json_line(&b.rows[i]).unwrap().into_bytes();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0], (0..5).map(line).collect::<Vec<_>>());
        assert_eq!(calls[1], vec![line(1), line(3)]);
        assert_eq!(calls[2], vec![line(3)]);
        assert_eq!(report.calls, 3);
        assert_eq!(report.rows, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_failing_every_time_exhaust_the_retries() {
        let calls: Calls = Arc::default();
        let put = mock!(aws_sdk_firehose::Client::put_record_batch)
            .match_requests(recording(&calls))
            .sequence()
            .output(|| partial(&[true, false]))
            .output(|| partial(&[true]))
            .repeatedly()
            .build();
        let err = sink(&[&put]).write(&batch(2)).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.operation, "PutRecordBatch");
        assert!(err.code.contains("ServiceUnavailableException"), "{err}");
        // max_attempts = 4 calls, the last three with only the failing entry.
        let lens: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(lens, [2, 1, 1, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn whole_call_errors_retry_when_transient_and_stop_when_permanent() {
        let put = mock!(aws_sdk_firehose::Client::put_record_batch)
            .sequence()
            .error(|| {
                PutRecordBatchError::ServiceUnavailableException(
                    ServiceUnavailableException::builder()
                        .message("busy")
                        .build(),
                )
            })
            .output(|| ok(3))
            .build();
        let report = sink(&[&put]).write(&batch(3)).await.unwrap();
        assert_eq!(report.calls, 1);
        assert_eq!(put.num_calls(), 2);

        let missing = mock!(aws_sdk_firehose::Client::put_record_batch).then_error(|| {
            PutRecordBatchError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no stream")
                    .build(),
            )
        });
        let err = sink(&[&missing]).write(&batch(3)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
        assert_eq!(missing.num_calls(), 1);
    }
}
