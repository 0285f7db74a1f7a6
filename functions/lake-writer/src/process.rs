//! One Kinesis batch: validate, count the invalid records, de-duplicate, write the lake.
//!
//! Failure policy (docs/design.md §4):
//! * invalid record → counted (`RecordsRejected`) and skipped; stream-processor dead-letters
//!   the same record, so nothing is lost;
//! * transient sink trouble (S3 5xx/throttling/timeouts, Firehose entries still failing) →
//!   `batchItemFailures` = the FIRST record's sequence number: the whole batch is retried.
//!   With the S3 sink that is idempotent (same batch → same keys → same bytes, overwritten);
//!   with Firehose the lake may get a row twice, which the batch layer de-duplicates on
//!   (VIN, ts) like every other duplicate;
//! * permanent sink failure (missing bucket/stream, access denied, unencodable value) →
//!   `Err`: Lambda retries, bisects, and finally sends the batch to the on-failure destination.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_lambda_events::streams::KinesisEventResponse;
use chrono::{DateTime, Utc};
pub use fleetline_aws::kinesis::Outcome;
use fleetline_aws::kinesis::{self, BatchConsumer};
use fleetline_aws::metrics::Emf;
use fleetline_core::ports::lake::{LakeBatch, LakeError, LakeRow, LakeSink, WriteReport};
use fleetline_core::{ValidationContext, parse_and_validate};

use crate::input::InputRecord;

/// The function's logical name (the metrics' dimension).
pub const FUNCTION_NAME: &str = "lake-writer";

/// A permanent failure: the invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("permanent lake failure: {0}")]
    Lake(#[from] LakeError),
}

/// What Lambda reports (`errorType`, `errorMessage`) for a failed invocation.
impl From<ProcessError> for lambda_runtime::Diagnostic {
    fn from(e: ProcessError) -> Self {
        Self {
            error_type: "PermanentLakeFailure".to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Counts for one batch. When the outcome is [`Outcome::Done`]:
/// `records_in = written + rejected + duplicates_in_batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    /// User records: a plain Kinesis record counts one, a KPL aggregate one per sub-record
    /// (one when it is corrupt and rejected whole).
    pub records_in: u64,
    /// Kinesis records that were KPL aggregates (corrupt ones included).
    pub aggregates_in: u64,
    /// Rows stored (0 unless the outcome is `Done`).
    pub written: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Valid readings whose (VIN, ts) appeared earlier in the same batch.
    pub duplicates_in_batch: u64,
    /// What the sink wrote (objects/bytes/calls of the shards that completed).
    pub sink: WriteReport,
    pub duration: Duration,
    pub outcome: Outcome,
}

/// The batch sorted out: one [`LakeBatch`] per shard (in order of first appearance).
struct Classified {
    batches: Vec<LakeBatch>,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    duplicates: u64,
    user_records: u64,
    aggregates: u64,
}

pub struct Processor<S> {
    sink: S,
    sink_name: &'static str,
}

impl<S: LakeSink> Processor<S> {
    /// `sink_name` (`s3`/`firehose`) only labels logs and metrics.
    pub fn new(sink: S, sink_name: &'static str) -> Self {
        Self { sink, sink_name }
    }
}

impl<S: LakeSink> BatchConsumer for Processor<S> {
    type Report = BatchReport;
    type Error = ProcessError;

    fn emit(&self, report: &BatchReport) {
        emit(report, self.sink_name);
    }

    async fn process(
        &self,
        input: &[InputRecord],
        now: DateTime<Utc>,
    ) -> (Result<KinesisEventResponse, ProcessError>, BatchReport) {
        let started = Instant::now();
        let classified = classify(input, now);
        let mut report = BatchReport {
            records_in: classified.user_records,
            aggregates_in: classified.aggregates,
            written: 0,
            rejected: classified.rejected_by_reason.values().sum(),
            rejected_by_reason: classified.rejected_by_reason,
            duplicates_in_batch: classified.duplicates,
            sink: WriteReport::default(),
            duration: Duration::ZERO,
            outcome: Outcome::Done,
        };
        let mut failure: Option<LakeError> = None;
        for batch in classified.batches.iter().filter(|b| !b.rows.is_empty()) {
            match self.sink.write(batch).await {
                Ok(w) => report.sink += w,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let result = match failure {
            None => {
                report.written = report.sink.rows;
                Ok(())
            }
            Some(e) => {
                report.outcome = Outcome::failure(e.is_transient(), &e);
                if e.is_transient() {
                    Ok(())
                } else {
                    Err(ProcessError::Lake(e))
                }
            }
        };
        let response = kinesis::response(&report.outcome, input);
        report.duration = started.elapsed();
        (result.map(|()| response), report)
    }
}

/// Validates every user record (KPL aggregates are opened up), keeps the first reading of
/// each (VIN, ts), and groups the rows by shard with the shard's first/last *delivered*
/// Kinesis sequence numbers. Rows keep the carrying Kinesis record's sequence number: one
/// Kinesis record yields at most one row per (VIN, ts), so that still orders copies for the
/// batch layer's de-duplication, and a redelivered aggregate gives the same rows and keys.
fn classify(input: &[InputRecord], now: DateTime<Utc>) -> Classified {
    let ctx = ValidationContext::new(now);
    let mut seen = HashSet::with_capacity(input.len());
    let mut out = Classified {
        batches: Vec::new(),
        rejected_by_reason: BTreeMap::new(),
        duplicates: 0,
        user_records: 0,
        aggregates: 0,
    };
    for rec in input {
        let i = match out.batches.iter().position(|b| b.shard_id == rec.shard_id) {
            Some(i) => i,
            None => {
                out.batches.push(LakeBatch {
                    shard_id: rec.shard_id.clone(),
                    first_sequence: rec.sequence_number.clone(),
                    last_sequence: rec.sequence_number.clone(),
                    rows: Vec::new(),
                });
                out.batches.len() - 1
            }
        };
        let batch = &mut out.batches[i];
        batch.last_sequence.clone_from(&rec.sequence_number);
        let unpacked = match rec.unpack() {
            Ok(u) => u,
            // Rejected whole (stream-processor dead-letters it with this reason).
            Err(e) => {
                out.user_records += 1;
                out.aggregates += 1;
                *out.rejected_by_reason.entry(e.code()).or_insert(0) += 1;
                continue;
            }
        };
        out.aggregates += u64::from(unpacked.is_aggregate());
        for user in unpacked.user_records() {
            out.user_records += 1;
            match parse_and_validate(user.data, &ctx) {
                Err(rejection) => {
                    *out.rejected_by_reason.entry(rejection.code()).or_insert(0) += 1;
                }
                Ok(reading) if !seen.insert(reading.dedupe_key()) => out.duplicates += 1,
                Ok(reading) => batch.rows.push(LakeRow {
                    reading,
                    shard_id: rec.shard_id.clone(),
                    sequence_number: rec.sequence_number.clone(),
                }),
            }
        }
    }
    out
}

/// EMF metrics and one JSON summary line per batch.
fn emit(report: &BatchReport, sink: &str) {
    let mut m = Emf::new(FUNCTION_NAME);
    m.count("RecordsIn", report.records_in)
        .count("AggregatesIn", report.aggregates_in)
        .count("RecordsWritten", report.written)
        .count("RecordsRejected", report.rejected)
        .count("DuplicatesInBatch", report.duplicates_in_batch)
        .count("ObjectsWritten", report.sink.objects)
        .count(
            "BatchRetries",
            u64::from(matches!(report.outcome, Outcome::Retry { .. })),
        );
    m.metric(
        "BytesWritten",
        fleetline_aws::metrics::Unit::Bytes,
        report.sink.bytes as f64,
    );
    m.duration("BatchDurationMs", report.duration);
    m.property("Outcome", report.outcome.as_str())
        .property("Sink", sink);
    m.emit();

    let by_reason = serde_json::to_string(&report.rejected_by_reason).unwrap_or_default();
    let reason = report.outcome.reason();
    tracing::info!(
        sink,
        records_in = report.records_in,
        aggregates_in = report.aggregates_in,
        records_written = report.written,
        records_rejected = report.rejected,
        rejected_by_reason = %by_reason,
        duplicates_in_batch = report.duplicates_in_batch,
        objects_written = report.sink.objects,
        bytes_written = report.sink.bytes,
        sink_calls = report.sink.calls,
        batch_duration_ms = report.duration.as_millis() as u64,
        outcome = report.outcome.as_str(),
        outcome_reason = reason,
        "batch summary"
    );
}
