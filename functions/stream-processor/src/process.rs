//! One Kinesis batch: validate, dead-letter the invalid records, store the valid ones.
//!
//! Failure policy (docs/design.md §4):
//! * invalid record → dead letter (never retried, never lost);
//! * a reading the speed store refuses (text it cannot hold) → dead letter too;
//! * transient trouble (a retryable store error, any dead-letter write failure) →
//!   `batchItemFailures` = the sequence number of the FIRST record of the batch, i.e. "retry
//!   all of it". Everything this function does is idempotent — dead letters overwrite their
//!   own key, the insert skips (VIN, ts) already stored — so retrying the whole batch is safe,
//!   and it is simpler and safer than tracking which records of a half-done batch landed;
//! * permanent store failure (bad SQL, missing table, bad config) → `Err`: Lambda
//!   retries, bisects the batch, and finally sends it to the on-failure destination.
//!
//! The processor speaks to its two ports only ([`SpeedStore`], [`DeadLetterSink`]); the
//! SQL lives in the Redshift adapter ([`crate::redshift`]).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_lambda_events::streams::KinesisEventResponse;
use chrono::{DateTime, Utc};
pub use fleetline_aws::kinesis::Outcome;
use fleetline_aws::kinesis::{self, BatchConsumer, KinesisRecords, UserRecord};
use fleetline_aws::metrics::Emf;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterSink, put_all};
use fleetline_core::ports::speed::{Inserted, Refused, SpeedStore, StoreError};
use fleetline_core::ports::stamped::StampedReading;
use fleetline_core::{Rejection, ValidationContext, parse_and_validate};

use crate::input::{InputRecord, records};

/// The function's logical name (dead letters' `function`, the metrics' dimension).
pub const FUNCTION_NAME: &str = "stream-processor";

/// What the processor needs besides its adapters.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Dead letters written at once.
    pub dead_letter_concurrency: usize,
}

/// A permanent failure: the invocation fails (Lambda retries, bisects, then gives up to the
/// on-failure destination).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("permanent warehouse failure: {0}")]
    Store(StoreError),
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

pub struct Processor<St, S> {
    store: St,
    sink: S,
    settings: Settings,
}

/// Where a reading came from: enough to find its user record again.
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// Index of the carrying Kinesis record in the batch.
    record: usize,
    sub_sequence: Option<u64>,
}

/// A batch sorted out: the valid, batch-unique readings (and where each came from), dead
/// letters of the rest, and how many in-batch duplicates were dropped.
#[derive(Default)]
struct Classified {
    readings: Vec<StampedReading>,
    origins: Vec<Origin>,
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

impl<St: SpeedStore, S: DeadLetterSink> Processor<St, S> {
    pub fn new(store: St, sink: S, settings: Settings) -> Self {
        Self {
            store,
            sink,
            settings,
        }
    }

    /// Stores the readings; nothing to store, no call.
    async fn store(&self, readings: &[StampedReading]) -> Result<Inserted, StoreError> {
        if readings.is_empty() {
            return Ok(Inserted::default());
        }
        self.store.insert_new(readings).await
    }

    /// Writes every letter, at most `dead_letter_concurrency` at once; returns the number
    /// that failed (each is logged).
    async fn write_dead_letters(&self, letters: &[DeadLetter]) -> u64 {
        if letters.is_empty() {
            return 0;
        }
        let mut failed = 0;
        for r in put_all(&self.sink, letters, self.settings.dead_letter_concurrency).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "dead letter not written");
                failed += 1;
            }
        }
        failed
    }
}

impl<St: SpeedStore, S: DeadLetterSink> BatchConsumer for Processor<St, S> {
    type Report = BatchReport;
    type Error = ProcessError;

    async fn process(
        &self,
        input: &[InputRecord],
        now: DateTime<Utc>,
    ) -> (Result<KinesisEventResponse, ProcessError>, BatchReport) {
        let started = Instant::now();
        let Classified {
            readings,
            origins,
            mut letters,
            mut rejected_by_reason,
            duplicates,
            user_records,
            aggregates,
        } = classify(input, now);

        let (mut dead_letter_failures, stored) =
            futures::join!(self.write_dead_letters(&letters), self.store(&readings));
        // Readings the store refused are dead-lettered like invalid records.
        let mut valid_unique = readings.len() as u64;
        if let Ok(Inserted { refused, .. }) = &stored {
            let refused_letters = refused_letters(input, &origins, refused);
            for (code, _) in &refused_letters {
                *rejected_by_reason.entry(code).or_insert(0) += 1;
            }
            let refused_letters: Vec<DeadLetter> =
                refused_letters.into_iter().map(|(_, l)| l).collect();
            dead_letter_failures += self.write_dead_letters(&refused_letters).await;
            valid_unique -= refused_letters.len() as u64;
            letters.extend(refused_letters);
        }

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
        let result = conclude(&mut report, stored, valid_unique);
        let response = kinesis::response(&report.outcome, input);
        report.duration = started.elapsed();
        (result.map(|()| response), report)
    }

    fn emit(&self, report: &BatchReport) {
        emit(report);
    }

    /// Shard ids and sequence numbers cleaned for SQL literals ([`records`]).
    fn records(&self, event: KinesisRecords) -> Vec<InputRecord> {
        records(event)
    }
}

/// The outcome of a batch from the store's answer and the dead-letter failures (already in
/// `report`); fills in the stored counts when everything landed.
fn conclude(
    report: &mut BatchReport,
    stored: Result<Inserted, StoreError>,
    valid_unique: u64,
) -> Result<(), ProcessError> {
    match stored {
        Err(e) => {
            report.outcome = Outcome::failure(e.is_transient(), &e);
            match e.is_transient() {
                true => Ok(()),
                false => Err(ProcessError::Store(e)),
            }
        }
        Ok(_) if report.dead_letter_failures > 0 => {
            report.outcome = Outcome::Retry {
                reason: format!(
                    "{} dead letter(s) could not be written",
                    report.dead_letter_failures
                ),
            };
            Ok(())
        }
        Ok(inserted) => {
            report.stored = inserted.new;
            report.already_stored = valid_unique.saturating_sub(report.stored);
            Ok(())
        }
    }
}

/// Validates every user record (KPL aggregates are opened up): readings (the first of each
/// (VIN, ts) in the batch) with where they came from, and dead letters for the rest.
fn classify(input: &[InputRecord], now: DateTime<Utc>) -> Classified {
    let ctx = ValidationContext::new(now);
    // Sized for the whole batch (mostly valid readings): no regrowth copies of the readings.
    let mut seen = HashSet::with_capacity(input.len());
    let mut out = Classified {
        readings: Vec::with_capacity(input.len()),
        origins: Vec::with_capacity(input.len()),
        ..Classified::default()
    };
    for (index, rec) in input.iter().enumerate() {
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
            classify_one(user, index, &ctx, &mut seen, &mut out);
        }
    }
    out
}

/// One user record: a reading, a dead letter, or an in-batch duplicate. Readings keep the
/// carrying Kinesis record's sequence number (at most one reading per (VIN, ts) comes out
/// of one Kinesis record, so it still orders copies for the batch layer's de-duplication).
fn classify_one(
    user: UserRecord<'_>,
    record: usize,
    ctx: &ValidationContext,
    seen: &mut HashSet<fleetline_core::DedupeKey>,
    out: &mut Classified,
) {
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
    out.readings.push(StampedReading {
        reading,
        shard_id: user.record.shard_id.clone(),
        sequence_number: user.record.sequence_number.clone(),
    });
    out.origins.push(Origin {
        record,
        sub_sequence: user.sub_sequence,
    });
}

/// Dead letters (with their reason codes) for the readings the store refused, built from
/// the user records that carried them.
fn refused_letters(
    input: &[InputRecord],
    origins: &[Origin],
    refused: &[Refused],
) -> Vec<(&'static str, DeadLetter)> {
    refused
        .iter()
        .filter_map(|r| {
            let origin = origins.get(r.index)?;
            let rec = input.get(origin.record)?;
            // The record unpacked once already; should it not now, the whole record is
            // lettered rather than nothing.
            let unpacked = rec.unpack().ok();
            let user = unpacked
                .as_ref()
                .and_then(|u| {
                    u.user_records()
                        .find(|u| u.sub_sequence == origin.sub_sequence)
                })
                .unwrap_or_else(|| UserRecord::whole(rec));
            let code = r.reason.code();
            let letter = DeadLetter {
                reason: code.to_owned(),
                detail: r.detail.clone(),
                ..dead_letter_base(user)
            };
            Some((code, letter))
        })
        .collect()
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
