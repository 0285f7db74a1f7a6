//! The streaming-ingestion speed path's step of a run (docs/design.md, "The
//! streaming-ingestion speed path"): read the stream, load what was read into
//! `speed.telemetry`, then dead-letter the rejected records — all through ports
//! (`StreamLoader`, `DeadLetterSink`), so the order and the accounting are tested with fakes.

use std::time::Instant;

use fleetline_aws::metrics::{Emf, millis};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterSink, put_all};
use fleetline_core::ports::speed::{StreamLoad, StreamLoader, StreamReject};
use serde::Serialize;

use crate::FUNCTION_NAME;

/// The stream step's collaborators and settings.
pub struct StreamMode<L, D> {
    pub loader: L,
    pub sink: D,
    pub threshold: RapidAccelThreshold,
    /// Rejected records dead-lettered per run.
    pub dead_letters_per_run: usize,
    /// Dead letters written at once.
    pub dead_letter_concurrency: usize,
}

/// What the stream step did (the summary's `stream_load`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamLoadSummary {
    pub records: u64,
    pub stored: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Dead letters written (rejects of this run or earlier ones).
    pub dead_lettered: u64,
    pub duration_ms: u64,
    /// The first failure, when the step did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StreamLoadSummary {
    fn counts(&mut self, load: StreamLoad) {
        self.records = load.records;
        self.stored = load.stored;
        self.rejected = load.rejected;
        self.duplicates = load.duplicates;
    }
}

/// The dead letter of a rejected stream record, in stream-processor's format.
pub fn dead_letter(reject: &StreamReject) -> DeadLetter {
    let mut detail = reject.detail.clone();
    if reject.truncated {
        detail.push_str(&format!(
            " (data: the first {} bytes of the record)",
            reject.data.len()
        ));
    }
    DeadLetter {
        reason: reject.reason.clone(),
        detail,
        shard_id: reject.shard_id.clone(),
        sequence_number: reject.sequence_number.clone(),
        sub_sequence_number: None,
        approximate_arrival: reject.approximate_arrival,
        partition_key: reject.partition_key.clone(),
        data: reject.data.clone(),
        function: FUNCTION_NAME.to_owned(),
    }
}

impl<L: StreamLoader, D: DeadLetterSink> StreamMode<L, D> {
    /// Reads, loads, dead-letters; stops at the first failure of the first two. A failed
    /// dead letter stays pending for the next run (never lost) and fails this one.
    pub async fn run(&self) -> StreamLoadSummary {
        let started = Instant::now();
        let mut summary = StreamLoadSummary::default();
        let outcome = self.read_and_load(&mut summary).await;
        summary.error = outcome.err();
        summary.duration_ms = millis(started.elapsed());
        self.emit(&summary);
        match &summary.error {
            None => tracing::info!(
                records = summary.records,
                stored = summary.stored,
                rejected = summary.rejected,
                duplicates = summary.duplicates,
                dead_lettered = summary.dead_lettered,
                "stream loaded"
            ),
            Some(e) => tracing::error!(error = %e, "stream load failed"),
        }
        summary
    }

    async fn read_and_load(&self, summary: &mut StreamLoadSummary) -> Result<(), String> {
        self.loader
            .read_stream()
            .await
            .map_err(|e| format!("reading the stream: {e}"))?;
        let load = self
            .loader
            .load(self.threshold)
            .await
            .map_err(|e| format!("loading the stream: {e}"))?;
        summary.counts(load);
        let (written, failure) = self.dead_letter_pending().await;
        summary.dead_lettered = written;
        failure.map_or(Ok(()), Err)
    }

    /// Writes up to `dead_letters_per_run` pending rejects and marks the written ones:
    /// how many were written and marked, and the first failure.
    async fn dead_letter_pending(&self) -> (u64, Option<String>) {
        let pending = match self.loader.pending_rejects(self.dead_letters_per_run).await {
            Ok(p) => p,
            Err(e) => return (0, Some(format!("reading the rejects: {e}"))),
        };
        let letters: Vec<DeadLetter> = pending.iter().map(dead_letter).collect();
        let results = put_all(&self.sink, &letters, self.dead_letter_concurrency).await;
        let mut done: Vec<StreamReject> = Vec::with_capacity(pending.len());
        let mut first_error = None;
        for (reject, r) in pending.iter().zip(results) {
            match r {
                Ok(()) => done.push(reject.clone()),
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        if let Err(e) = self.loader.mark_dead_lettered(&done).await {
            // Written but not marked: the next run writes them again (same keys, same
            // objects), so nothing is lost or doubled.
            return (0, Some(format!("marking dead letters: {e}")));
        }
        (
            done.len() as u64,
            first_error.map(|e| format!("dead letters: {e}")),
        )
    }

    fn emit(&self, s: &StreamLoadSummary) {
        let mut m = Emf::new(FUNCTION_NAME);
        let counts = [
            ("StreamRecords", s.records),
            ("StreamStored", s.stored),
            ("StreamRejected", s.rejected),
            ("StreamDuplicates", s.duplicates),
            ("StreamDeadLettered", s.dead_lettered),
            ("StreamLoadFailures", u64::from(s.error.is_some())),
        ];
        for (name, value) in counts {
            m.count(name, value);
        }
        m.duration(
            "StreamLoadDurationMs",
            std::time::Duration::from_millis(s.duration_ms),
        );
        m.emit();
    }
}
