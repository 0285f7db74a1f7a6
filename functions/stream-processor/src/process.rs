//! One Kinesis batch: validate, dead-letter the invalid records, store the valid ones.
//!
//! Failure policy (docs/design.md §4):
//! * invalid record → dead letter (never retried, never lost);
//! * transient trouble (a retryable warehouse error, any dead-letter write failure) →
//!   `batchItemFailures` = the sequence number of the FIRST record of the batch, i.e. "retry
//!   all of it". Everything this function does is idempotent — dead letters overwrite their
//!   own key, the insert skips (VIN, ts) already stored — so retrying the whole batch is safe,
//!   and it is simpler and safer than tracking which records of a half-done batch landed;
//! * permanent warehouse failure (bad SQL, missing table, bad config) → `Err`: Lambda
//!   retries, bisects the batch, and finally sends it to the on-failure destination.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use chrono::{DateTime, Utc};
use fleetline_aws::Warehouse;
use fleetline_aws::deadletter::{DeadLetter, DeadLetterSink};
pub use fleetline_aws::kinesis::Outcome;
use fleetline_aws::kinesis::{UserRecord, retry_whole_batch};
use fleetline_aws::metrics::Emf;
use fleetline_aws::warehouse::WarehouseError;
use fleetline_core::{
    RapidAccelThreshold, RejectReason, Rejection, ValidationContext, parse_and_validate,
};
use futures::StreamExt;

use crate::input::{InputRecord, records};
use crate::sql;

/// The function's logical name (dead letters' `function`, the metrics' dimension).
pub const FUNCTION_NAME: &str = "stream-processor";

/// What the processor needs besides its adapters.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub threshold: RapidAccelThreshold,
    pub dead_letter_concurrency: usize,
}

/// A permanent failure: the invocation fails (Lambda retries, bisects, then gives up to the
/// on-failure destination).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("permanent warehouse failure: {0}")]
    Warehouse(#[from] WarehouseError),
}

/// What Lambda reports (`errorType`, `errorMessage`) for a failed invocation.
impl From<ProcessError> for lambda_runtime::Diagnostic {
    fn from(e: ProcessError) -> Self {
        Self {
            error_type: "PermanentWarehouseFailure".to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Counts for one batch. When the outcome is [`Outcome::Done`]:
/// `records_in = stored + rejected + duplicates_in_batch + already_stored`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    /// User records: a plain Kinesis record counts one, a KPL aggregate one per sub-record
    /// (one when it is corrupt and rejected whole).
    pub records_in: u64,
    /// Kinesis records that were KPL aggregates (corrupt ones included).
    pub aggregates_in: u64,
    /// Rows actually inserted into `speed.telemetry` (0 unless the outcome is `Done`).
    pub stored: u64,
    /// Dead-lettered records (written, or attempted when the outcome is `Retry`).
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Valid readings whose (VIN, ts) appeared earlier in the same batch.
    pub duplicates_in_batch: u64,
    /// Valid, batch-unique readings already in `speed.telemetry` (redeliveries).
    pub already_stored: u64,
    pub dead_letter_failures: u64,
    pub max_record_age: Option<Duration>,
    pub duration: Duration,
    pub outcome: Outcome,
}

pub struct Processor<W, S> {
    warehouse: W,
    sink: S,
    settings: Settings,
}

/// A batch sorted out: VALUES rows of the valid, batch-unique readings, dead letters of
/// the rest, and how many in-batch duplicates were dropped.
struct Classified {
    rows: Vec<String>,
    letters: Vec<DeadLetter>,
    /// Counted as the letters are made, from the typed reason (the metrics' dimension).
    rejected_by_reason: BTreeMap<&'static str, u64>,
    duplicates: u64,
    user_records: u64,
    aggregates: u64,
}

impl Classified {
    /// Adds a dead letter with reason `code`, counting it under the same code.
    fn reject(&mut self, code: &'static str, letter: DeadLetter) {
        *self.rejected_by_reason.entry(code).or_insert(0) += 1;
        self.letters.push(DeadLetter {
            reason: code.to_owned(),
            ..letter
        });
    }
}

impl<W: Warehouse, S: DeadLetterSink> Processor<W, S> {
    pub fn new(warehouse: W, sink: S, settings: Settings) -> Self {
        Self {
            warehouse,
            sink,
            settings,
        }
    }

    pub fn warehouse(&self) -> &W {
        &self.warehouse
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Lambda entry point: process, then emit the metrics and the summary log line.
    pub async fn handle(
        &self,
        event: KinesisEvent,
        now: DateTime<Utc>,
    ) -> Result<KinesisEventResponse, ProcessError> {
        let input = records(event);
        let (result, report) = self.process(&input, now).await;
        emit(&report);
        result
    }

    /// Processes one batch (in delivery order). `now` is the reference time of validation.
    pub async fn process(
        &self,
        input: &[InputRecord],
        now: DateTime<Utc>,
    ) -> (Result<KinesisEventResponse, ProcessError>, BatchReport) {
        let started = Instant::now();
        let Classified {
            rows,
            letters,
            rejected_by_reason,
            duplicates,
            user_records,
            aggregates,
        } = self.classify(input, now);

        let valid_unique = rows.len() as u64;
        let (dead_letter_failures, stored) =
            futures::join!(self.write_dead_letters(&letters), self.store(&rows));

        let mut report = BatchReport {
            records_in: user_records,
            aggregates_in: aggregates,
            stored: 0,
            rejected: letters.len() as u64,
            rejected_by_reason,
            duplicates_in_batch: duplicates,
            already_stored: 0,
            dead_letter_failures,
            max_record_age: input
                .iter()
                .map(|r| r.arrival)
                .min()
                .and_then(|oldest| (now - oldest).to_std().ok()),
            duration: Duration::ZERO,
            outcome: Outcome::Done,
        };

        let result = match stored {
            Err(e) if !e.is_transient() => {
                report.outcome = Outcome::Failed {
                    reason: e.to_string(),
                };
                Err(ProcessError::Warehouse(e))
            }
            Err(e) => {
                report.outcome = Outcome::Retry {
                    reason: e.to_string(),
                };
                Ok(())
            }
            Ok(_) if dead_letter_failures > 0 => {
                report.outcome = Outcome::Retry {
                    reason: format!("{dead_letter_failures} dead letter(s) could not be written"),
                };
                Ok(())
            }
            Ok(inserted) => {
                // When the API reports no row count, count the batch-unique valid readings.
                report.stored = inserted.unwrap_or(valid_unique);
                report.already_stored = valid_unique.saturating_sub(report.stored);
                Ok(())
            }
        };
        let response = match report.outcome {
            Outcome::Retry { .. } => retry_whole_batch(input),
            _ => KinesisEventResponse::default(),
        };
        report.duration = started.elapsed();
        (result.map(|()| response), report)
    }

    fn classify(&self, input: &[InputRecord], now: DateTime<Utc>) -> Classified {
        let ctx = ValidationContext::new(now);
        let mut seen = HashSet::new();
        let mut out = Classified {
            rows: Vec::new(),
            letters: Vec::new(),
            rejected_by_reason: BTreeMap::new(),
            duplicates: 0,
            user_records: 0,
            aggregates: 0,
        };
        for rec in input {
            let unpacked = match rec.unpack() {
                Ok(u) => u,
                // A corrupt aggregate is rejected whole: none of its bytes can be trusted.
                Err(e) => {
                    out.user_records += 1;
                    out.aggregates += 1;
                    out.reject(
                        e.code(),
                        DeadLetter {
                            detail: e.to_string(),
                            ..dead_letter_base(UserRecord::whole(rec))
                        },
                    );
                    continue;
                }
            };
            out.aggregates += u64::from(unpacked.is_aggregate());
            for user in unpacked.user_records() {
                out.user_records += 1;
                self.classify_one(user, &ctx, &mut seen, &mut out);
            }
        }
        out
    }

    /// One user record: a row, a dead letter, or an in-batch duplicate. Rows keep the
    /// carrying Kinesis record's sequence number (at most one row per (VIN, ts) comes out of
    /// one Kinesis record, so it still orders copies for the batch layer's de-duplication).
    fn classify_one(
        &self,
        user: UserRecord<'_>,
        ctx: &ValidationContext,
        seen: &mut HashSet<fleetline_core::DedupeKey>,
        out: &mut Classified,
    ) {
        let rec = user.record;
        let reading = match parse_and_validate(user.data, ctx) {
            Ok(r) => r,
            Err(rejection) => {
                out.reject(rejection.code(), dead_letter(user, &rejection));
                return;
            }
        };
        if !seen.insert(reading.dedupe_key()) {
            out.duplicates += 1;
            return;
        }
        match sql::row_literal(
            &reading,
            &rec.shard_id,
            &rec.sequence_number,
            self.settings.threshold,
        ) {
            Ok(row) => out.rows.push(row),
            // Only text with a backslash or NUL gets here (the trip id: VINs are
            // validated, shard and sequence are cleaned on input). It would fail the
            // whole batch forever, so it is rejected like any other bad trip id.
            Err(e) => {
                seen.remove(&reading.dedupe_key());
                out.reject(
                    RejectReason::BadTripId.code(),
                    DeadLetter {
                        detail: format!("trip_id cannot be stored: {e}"),
                        ..dead_letter_base(user)
                    },
                );
            }
        }
    }

    /// Writes every letter, at most `dead_letter_concurrency` at once; returns the number
    /// that failed (each is logged).
    async fn write_dead_letters(&self, letters: &[DeadLetter]) -> u64 {
        let limit = self.settings.dead_letter_concurrency.max(1);
        futures::stream::iter(letters)
            .map(|l| self.sink.put(l))
            .buffer_unordered(limit)
            .fold(0u64, |failed, r| async move {
                match r {
                    Ok(()) => failed,
                    Err(e) => {
                        tracing::warn!(error = %e, "dead letter not written");
                        failed + 1
                    }
                }
            })
            .await
    }

    /// Stores the rows; `Ok(Some(n))` = rows inserted as reported by the warehouse.
    async fn store(&self, rows: &[String]) -> Result<Option<u64>, WarehouseError> {
        let transactions = sql::plan(rows)?;
        if transactions.is_empty() {
            return Ok(Some(0));
        }
        let merge_at: Vec<usize> = transactions
            .iter()
            .map(|t| sql::merge_index(t.len()))
            .collect();
        let summaries = self
            .warehouse
            .execute_batches(transactions.into_iter().flatten().collect())
            .await?;
        if summaries.len() != merge_at.len() {
            return Ok(None);
        }
        Ok(summaries
            .iter()
            .zip(merge_at)
            .map(|(s, i)| s.rows_affected.get(i).copied().flatten())
            .sum())
    }
}

/// A letter for one user record: its Kinesis position, its sub-record number (if any), its
/// own partition key and bytes.
fn dead_letter_base(user: UserRecord<'_>) -> DeadLetter {
    DeadLetter {
        reason: String::new(),
        detail: String::new(),
        shard_id: user.record.shard_id.clone(),
        sequence_number: user.record.sequence_number.clone(),
        sub_sequence_number: user.sub_sequence,
        approximate_arrival: user.record.arrival,
        partition_key: user.partition_key.to_owned(),
        data: user.data.to_vec(),
        function: FUNCTION_NAME.to_owned(),
    }
}

/// The reason is set by [`Classified::reject`].
fn dead_letter(user: UserRecord<'_>, rejection: &Rejection) -> DeadLetter {
    DeadLetter {
        detail: rejection.detail.clone(),
        ..dead_letter_base(user)
    }
}

/// EMF metrics and one JSON summary line per batch.
fn emit(report: &BatchReport) {
    let mut m = Emf::new(FUNCTION_NAME);
    m.count("RecordsIn", report.records_in)
        .count("AggregatesIn", report.aggregates_in)
        .count("RecordsStored", report.stored)
        .count("RecordsRejected", report.rejected)
        .count("DuplicatesInBatch", report.duplicates_in_batch)
        .count("DuplicatesAlreadyStored", report.already_stored)
        .count("DeadLetterFailures", report.dead_letter_failures)
        .count(
            "BatchRetries",
            u64::from(matches!(report.outcome, Outcome::Retry { .. })),
        )
        .duration("BatchDurationMs", report.duration);
    if let Some(age) = report.max_record_age {
        m.duration("MaxRecordAgeMs", age);
    }
    m.property("Outcome", report.outcome.as_str());
    m.emit();

    let by_reason = serde_json::to_string(&report.rejected_by_reason).unwrap_or_default();
    let reason = report.outcome.reason();
    tracing::info!(
        records_in = report.records_in,
        aggregates_in = report.aggregates_in,
        records_stored = report.stored,
        records_rejected = report.rejected,
        rejected_by_reason = %by_reason,
        duplicates_in_batch = report.duplicates_in_batch,
        duplicates_already_stored = report.already_stored,
        dead_letter_failures = report.dead_letter_failures,
        max_record_age_ms = report.max_record_age.map(|d| d.as_millis() as u64),
        batch_duration_ms = report.duration.as_millis() as u64,
        outcome = report.outcome.as_str(),
        outcome_reason = reason,
        "batch summary"
    );
}
