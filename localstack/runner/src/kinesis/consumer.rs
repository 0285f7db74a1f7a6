//! One shard of one event source mapping: poll, batch, invoke, checkpoint — with Lambda's
//! semantics for `batchItemFailures`, bisecting, retries and the on-failure destination.
//!
//! Invariant: the persisted checkpoint only ever moves past records that the function
//! acknowledged or that were described to the on-failure destination, and it moves in
//! order. Everything after it is redelivered after a restart (at-least-once), nothing
//! before it is.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::checkpoint::{Checkpoint, CheckpointStore, checkpoint_key};
use super::event::{BatchResponse, EventOrigin, event_json, kinesis_event, parse_batch_response};
use super::on_failure::FailureLog;
use super::source::{
    IteratorPosition, SourceError, StreamRecord, StreamSource, compare_sequence_numbers,
};
use crate::invoker::{Invocation, Invoker};
use crate::status::{LastBatch, StatusBoard, now_rfc3339};
use crate::template::{KinesisEvent, StartingPosition};

/// GetRecords returns at most 10,000 records.
const MAX_GET_RECORDS: usize = 10_000;

/// The settings of one Kinesis event source mapping.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub function: String,
    pub stream: String,
    pub starting_position: StartingPosition,
    pub batch_size: usize,
    pub batching_window: Duration,
    /// `-1` = retry until the record expires.
    pub max_retry_attempts: i64,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    /// The on-failure destination's ARN.
    pub on_failure: Option<String>,
    /// Pause between GetRecords calls when the shard has nothing new.
    pub poll_interval: Duration,
    /// First delay before retrying a failed batch (doubles up to `max_backoff`).
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    pub region: String,
}

impl MappingConfig {
    pub fn from_event(function: &str, event: &KinesisEvent, region: &str) -> Self {
        Self {
            function: function.to_owned(),
            stream: event.stream_name.clone(),
            starting_position: event.starting_position.clone(),
            batch_size: event.batch_size.clamp(1, MAX_GET_RECORDS),
            batching_window: event.batching_window,
            max_retry_attempts: event.max_retry_attempts,
            bisect_on_error: event.bisect_on_error,
            report_batch_item_failures: event.report_batch_item_failures,
            on_failure: event.on_failure.clone(),
            poll_interval: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            region: region.to_owned(),
        }
    }

    pub fn initial_position(&self) -> IteratorPosition {
        match &self.starting_position {
            StartingPosition::TrimHorizon => IteratorPosition::TrimHorizon,
            StartingPosition::Latest => IteratorPosition::Latest,
            StartingPosition::AtTimestamp(ts) => IteratorPosition::AtTimestamp(*ts),
        }
    }
}

/// Everything a consumer shares with the rest of the runner.
pub struct Deps<S, I> {
    pub source: Arc<S>,
    pub invoker: Arc<I>,
    pub checkpoints: Arc<CheckpointStore>,
    pub failures: Arc<FailureLog>,
    pub status: Arc<StatusBoard>,
}

impl<S, I> Clone for Deps<S, I> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            invoker: self.invoker.clone(),
            checkpoints: self.checkpoints.clone(),
            failures: self.failures.clone(),
            status: self.status.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardExit {
    /// The shard is closed and every record was handled (children may start).
    ShardEnd,
    /// The stream disappeared (deleted, LocalStack restarted).
    StreamGone,
    /// Shutdown was requested; unacknowledged records are redelivered on the next start.
    Shutdown,
}

/// Shutdown was requested in the middle of something.
struct Stopped;

enum Outcome {
    Processed(Vec<StreamRecord>),
    Failed {
        reason: String,
        /// The records still to handle.
        remaining: Vec<StreamRecord>,
        /// The whole batch failed (function error, unusable answer): bisecting applies.
        whole_batch: bool,
    },
}

struct WorkItem {
    records: Vec<StreamRecord>,
    /// Retries already spent on these records (bisecting does not spend any).
    retries: u32,
}

/// Where a consumer is in its shard.
struct Reader {
    position: IteratorPosition,
    iterator: Option<String>,
    last_fetched: Option<String>,
    /// The shard is closed and everything in it was read.
    closed: bool,
    error_backoff: Duration,
}

/// What one read step did.
enum Fetch {
    /// Records added to the pending ones (maybe none).
    Got(usize),
    /// Nothing read; go round again.
    Again,
    Exit(ShardExit),
}

pub struct ShardConsumer<S, I> {
    config: Arc<MappingConfig>,
    deps: Deps<S, I>,
    shard_id: String,
    stream_arn: String,
    stream_created: f64,
    /// Where to start when there is no checkpoint.
    initial_position: IteratorPosition,
    key: String,
    shutdown: watch::Receiver<bool>,
    /// The last acknowledged sequence number.
    acked: Option<String>,
}

impl<S: StreamSource, I: Invoker> ShardConsumer<S, I> {
    pub fn new(
        config: Arc<MappingConfig>,
        deps: Deps<S, I>,
        shard_id: &str,
        stream_arn: &str,
        stream_created: f64,
        initial_position: IteratorPosition,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let key = checkpoint_key(&config.function, &config.stream, shard_id);
        Self {
            config,
            deps,
            shard_id: shard_id.to_owned(),
            stream_arn: stream_arn.to_owned(),
            stream_created,
            initial_position,
            key,
            shutdown,
            acked: None,
        }
    }

    pub fn status_key(&self) -> &str {
        &self.key
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps `duration` unless shutdown comes first.
    async fn pause(&mut self, duration: Duration) -> Result<(), Stopped> {
        if duration.is_zero() {
            return if self.stopping() {
                Err(Stopped)
            } else {
                Ok(())
            };
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = self.shutdown.wait_for(|stop| *stop) => {}
        }
        if self.stopping() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    fn status(&self, update: impl FnOnce(&mut crate::status::ShardStatus)) {
        self.deps.status.shard(&self.key, update);
    }

    /// Runs until the shard ends, the stream disappears or shutdown is requested.
    pub async fn run(mut self) -> ShardExit {
        let (function, stream, shard) = (
            self.config.function.clone(),
            self.config.stream.clone(),
            self.shard_id.clone(),
        );
        self.status(|s| {
            s.function = function;
            s.stream = stream;
            s.shard_id = shard;
            s.state = "polling".to_owned();
        });
        let mut position = self.initial_position.clone();
        if let Some(checkpoint) = self.deps.checkpoints.get(&self.key) {
            let same_stream = checkpoint
                .stream_created
                .is_none_or(|created| (created - self.stream_created).abs() < 0.001);
            if !same_stream {
                tracing::warn!(function = %self.config.function, shard = %self.shard_id,
                    "the stream was recreated since the checkpoint was written; ignoring it");
            } else if checkpoint.shard_end {
                self.status(|s| s.state = "shard-end".to_owned());
                return ShardExit::ShardEnd;
            } else if let Some(seq) = checkpoint.sequence_number {
                tracing::info!(function = %self.config.function, shard = %self.shard_id,
                    checkpoint = %seq, "resuming after the checkpoint");
                position = IteratorPosition::AfterSequenceNumber(seq.clone());
                let seq_for_status = seq.clone();
                self.status(|s| s.checkpoint = Some(seq_for_status));
                self.acked = Some(seq);
            }
        }
        let exit = self.consume(position).await;
        let state = match exit {
            ShardExit::ShardEnd => "shard-end",
            ShardExit::StreamGone => "stream-gone",
            ShardExit::Shutdown => "stopped",
        };
        self.status(|s| s.state = state.to_owned());
        exit
    }

    async fn consume(&mut self, start: IteratorPosition) -> ShardExit {
        let mut reader = Reader {
            position: start,
            iterator: None,
            last_fetched: None,
            closed: false,
            error_backoff: self.config.retry_backoff,
        };
        let mut pending: VecDeque<StreamRecord> = VecDeque::new();
        let mut pending_since: Option<Instant> = None;
        loop {
            if self.stopping() {
                return ShardExit::Shutdown;
            }
            let mut fetched = 0;
            if !reader.closed && pending.len() < self.config.batch_size {
                fetched = match self.fetch(&mut reader, &mut pending).await {
                    Fetch::Got(n) => n,
                    Fetch::Again => continue,
                    Fetch::Exit(exit) => return exit,
                };
                if fetched > 0 && pending_since.is_none() {
                    pending_since = Some(Instant::now());
                }
            }
            let closed = reader.closed;

            let full = pending.len() >= self.config.batch_size;
            let window_over =
                pending_since.is_some_and(|since| since.elapsed() >= self.config.batching_window);
            if !pending.is_empty() && (full || window_over || closed) {
                let n = pending.len().min(self.config.batch_size);
                let batch: Vec<StreamRecord> = pending.drain(..n).collect();
                pending_since = (!pending.is_empty()).then(Instant::now);
                if self.deliver(batch).await.is_err() {
                    return ShardExit::Shutdown;
                }
                continue;
            }
            if pending.is_empty() && closed {
                let checkpoint = Checkpoint {
                    sequence_number: self.acked.clone(),
                    shard_end: true,
                    stream_created: Some(self.stream_created),
                    updated_at: now_rfc3339(),
                };
                if self.persist(checkpoint).await.is_err() {
                    return ShardExit::Shutdown;
                }
                tracing::info!(function = %self.config.function, shard = %self.shard_id,
                    "shard closed and fully processed");
                return ShardExit::ShardEnd;
            }
            if fetched > 0 {
                // Records keep coming: read again right away.
                continue;
            }
            let wait = match pending_since {
                Some(since) => self
                    .config
                    .poll_interval
                    .min(self.config.batching_window.saturating_sub(since.elapsed())),
                None => self.config.poll_interval,
            };
            if self.pause(wait).await.is_err() {
                return ShardExit::Shutdown;
            }
        }
    }

    /// Reads the next page into `pending` (opening an iterator first when needed).
    async fn fetch(&mut self, reader: &mut Reader, pending: &mut VecDeque<StreamRecord>) -> Fetch {
        if reader.iterator.is_none()
            && let Some(step) = self.open_iterator(reader).await
        {
            return step;
        }
        let Some(it) = reader.iterator.clone() else {
            return Fetch::Got(0);
        };
        let limit = (self.config.batch_size - pending.len()).clamp(1, MAX_GET_RECORDS);
        let page = match self.deps.source.get_records(&it, limit).await {
            Ok(page) => page,
            Err(SourceError::ExpiredIterator) => {
                reader.iterator = None;
                return Fetch::Again;
            }
            Err(err) => return self.read_failed(reader, err).await,
        };
        reader.error_backoff = self.config.retry_backoff;
        let mut fetched = 0;
        for record in page.records {
            // Defensive: never hand over anything at or before the checkpoint again.
            let old = self.acked.as_deref().is_some_and(|acked| {
                compare_sequence_numbers(&record.sequence_number, acked).is_le()
            });
            if !old {
                reader.last_fetched = Some(record.sequence_number.clone());
                pending.push_back(record);
                fetched += 1;
            }
        }
        reader.iterator = page.next_iterator;
        reader.closed = reader.iterator.is_none();
        let behind = page.millis_behind_latest;
        let oldest = pending.front().map(record_age_ms);
        self.status(|s| s.lag_ms = oldest.or(behind));
        Fetch::Got(fetched)
    }

    /// Opens a shard iterator after the last record read (else at the start position);
    /// `Some` when the caller must not read now.
    async fn open_iterator(&mut self, reader: &mut Reader) -> Option<Fetch> {
        let from = match &reader.last_fetched {
            Some(seq) => IteratorPosition::AfterSequenceNumber(seq.clone()),
            None => reader.position.clone(),
        };
        let opened = self
            .deps
            .source
            .shard_iterator(&self.config.stream, &self.shard_id, &from)
            .await;
        match opened {
            Ok(it) => {
                reader.iterator = Some(it);
                reader.error_backoff = self.config.retry_backoff;
                None
            }
            Err(SourceError::InvalidArgument(why))
                if matches!(from, IteratorPosition::AfterSequenceNumber(_))
                    && reader.last_fetched.is_none() =>
            {
                // The checkpoint does not belong to this shard's records (e.g. a stream
                // recreated with the same name): start over, redelivering rather than
                // skipping.
                tracing::warn!(function = %self.config.function, shard = %self.shard_id,
                    error = %why, "cannot resume after the checkpoint; starting at TRIM_HORIZON");
                reader.position = IteratorPosition::TrimHorizon;
                self.acked = None;
                Some(Fetch::Again)
            }
            Err(err) => Some(self.read_failed(reader, err).await),
        }
    }

    /// A failed Kinesis call: the stream is gone, or pause (backing off) and try again.
    async fn read_failed(&mut self, reader: &mut Reader, err: SourceError) -> Fetch {
        if let SourceError::StreamNotFound(_) = err {
            return Fetch::Exit(ShardExit::StreamGone);
        }
        self.source_error(&err);
        if self.pause(reader.error_backoff).await.is_err() {
            return Fetch::Exit(ShardExit::Shutdown);
        }
        reader.error_backoff = (reader.error_backoff * 2).min(self.config.max_backoff);
        Fetch::Again
    }

    fn source_error(&self, err: &SourceError) {
        tracing::warn!(function = %self.config.function, shard = %self.shard_id,
            error = %err, "Kinesis read failed; retrying");
        let message = err.to_string();
        self.status(|s| s.last_error = Some(message));
    }

    /// Delivers one batch until every record in it is acknowledged or sent to the
    /// on-failure destination.
    async fn deliver(&mut self, batch: Vec<StreamRecord>) -> Result<(), Stopped> {
        let mut work = VecDeque::from([WorkItem {
            records: batch,
            retries: 0,
        }]);
        let mut backoff = self.config.retry_backoff;
        while let Some(item) = work.pop_front() {
            if self.stopping() {
                return Err(Stopped);
            }
            let WorkItem { records, retries } = item;
            let (first, last) = match (records.first(), records.last()) {
                (Some(f), Some(l)) => (f.sequence_number.clone(), l.sequence_number.clone()),
                _ => continue,
            };
            self.note_invoking(&records, retries);
            let outcome = match self.invoke(&records).await {
                Invocation::ShuttingDown => return Err(Stopped),
                Invocation::NotInvoked(why) => {
                    tracing::warn!(function = %self.config.function, shard = %self.shard_id,
                        reason = %why, "could not invoke the function; retrying");
                    self.note_batch(&first, &last, records.len(), "not-invoked");
                    self.status(|s| s.last_error = Some(why));
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    work.push_front(WorkItem { records, retries });
                    continue;
                }
                Invocation::FunctionError {
                    error_type,
                    error_message,
                } => Outcome::Failed {
                    reason: format!("{error_type}: {error_message}"),
                    remaining: records,
                    whole_batch: true,
                },
                Invocation::Response(body) => {
                    self.answered(&body, records, retries, &first, &last)
                        .await?
                }
            };
            self.status(|s| s.invocations += 1);
            let (reason, remaining, whole_batch) = match outcome {
                Outcome::Processed(records) => {
                    self.note_batch(&first, &last, records.len(), "ok");
                    self.acknowledge(&records, true).await?;
                    backoff = self.config.retry_backoff;
                    continue;
                }
                Outcome::Failed {
                    reason,
                    remaining,
                    whole_batch,
                } => (reason, remaining, whole_batch),
            };
            if whole_batch {
                self.note_batch(&first, &last, remaining.len(), "function-error");
                let reason_status = reason.clone();
                self.status(|s| {
                    s.function_errors += 1;
                    s.last_error = Some(reason_status);
                });
            }
            let failed = WorkItem {
                records: remaining,
                retries,
            };
            self.after_failure(&mut work, failed, &reason, whole_batch, &mut backoff)
                .await?;
        }
        self.status(|s| s.state = "polling".to_owned());
        Ok(())
    }

    fn note_invoking(&self, records: &[StreamRecord], retries: u32) {
        let age = records.first().map(record_age_ms);
        self.status(|s| {
            s.state = if retries > 0 { "retrying" } else { "invoking" }.to_owned();
            s.lag_ms = age;
        });
    }

    /// Invokes the function with the Kinesis event for `records`.
    async fn invoke(&self, records: &[StreamRecord]) -> Invocation {
        let identity = format!(
            "arn:aws:iam::{}:role/{}-role",
            lambda_host::ACCOUNT_ID,
            self.config.function
        );
        let event = kinesis_event(
            records,
            &EventOrigin {
                shard_id: &self.shard_id,
                stream_arn: &self.stream_arn,
                region: &self.config.region,
                identity_arn: &identity,
            },
        );
        let payload = match event_json(&event) {
            Ok(json) => Bytes::from(json.to_string()),
            Err(err) => return Invocation::NotInvoked(format!("cannot write the event: {err}")),
        };
        self.deps
            .invoker
            .invoke(&self.config.function, payload)
            .await
    }

    /// What a successful invocation's answer means for the batch; with batchItemFailures,
    /// acknowledges the records before the lowest failure.
    async fn answered(
        &mut self,
        body: &[u8],
        records: Vec<StreamRecord>,
        retries: u32,
        first: &str,
        last: &str,
    ) -> Result<Outcome, Stopped> {
        let response = if self.config.report_batch_item_failures {
            parse_batch_response(body, &records)
        } else {
            BatchResponse::AllProcessed
        };
        let index = match response {
            BatchResponse::AllProcessed => return Ok(Outcome::Processed(records)),
            BatchResponse::WholeBatchFailed(why) => {
                return Ok(Outcome::Failed {
                    reason: why,
                    remaining: records,
                    whole_batch: true,
                });
            }
            BatchResponse::FailedFrom(index) => index,
        };
        let mut records = records;
        let remaining = records.split_off(index);
        self.note_batch(
            first,
            last,
            remaining.len() + records.len(),
            "partial-failure",
        );
        self.status(|s| s.partial_failures += 1);
        if !records.is_empty() {
            self.acknowledge(&records, true).await?;
        }
        let seq = &remaining[0].sequence_number;
        tracing::info!(function = %self.config.function, shard = %self.shard_id,
            failed_from = %seq, retry = retries + 1,
            "batchItemFailures: retrying from the lowest failed record");
        Ok(Outcome::Failed {
            reason: format!("batchItemFailures from {seq}"),
            remaining,
            whole_batch: false,
        })
    }

    /// Bisects, retries or gives up on `failed` (Lambda's order).
    async fn after_failure(
        &mut self,
        work: &mut VecDeque<WorkItem>,
        failed: WorkItem,
        reason: &str,
        whole_batch: bool,
        backoff: &mut Duration,
    ) -> Result<(), Stopped> {
        let WorkItem {
            records: mut remaining,
            retries,
        } = failed;
        if whole_batch && self.config.bisect_on_error && remaining.len() > 1 {
            // Splitting does not spend the retry quota (Lambda's documented behaviour).
            let second = remaining.split_off(remaining.len() / 2);
            tracing::info!(function = %self.config.function, shard = %self.shard_id,
                error = %reason, halves = ?(remaining.len(), second.len()),
                "function error: bisecting the batch");
            work.push_front(WorkItem {
                records: second,
                retries,
            });
            work.push_front(WorkItem {
                records: remaining,
                retries,
            });
            return Ok(());
        }
        let limit = self.config.max_retry_attempts;
        if limit >= 0 && i64::from(retries) >= limit {
            self.give_up(&remaining, retries + 1, reason, whole_batch)
                .await?;
            return self.acknowledge(&remaining, false).await;
        }
        tracing::warn!(function = %self.config.function, shard = %self.shard_id,
            error = %reason, records = remaining.len(), retry = retries + 1,
            "batch failed; retrying");
        self.pause(*backoff).await?;
        *backoff = (*backoff * 2).min(self.config.max_backoff);
        work.push_front(WorkItem {
            records: remaining,
            retries: retries + 1,
        });
        Ok(())
    }

    fn note_batch(&self, first: &str, last: &str, size: usize, outcome: &str) {
        let batch = LastBatch {
            size,
            first_sequence_number: first.to_owned(),
            last_sequence_number: last.to_owned(),
            outcome: outcome.to_owned(),
            at: now_rfc3339(),
        };
        self.status(|s| s.last_batch = Some(batch));
    }

    /// Moves the checkpoint past `records` (persisted before returning); `processed`: the
    /// function handled them (rather than the on-failure destination).
    async fn acknowledge(
        &mut self,
        records: &[StreamRecord],
        processed: bool,
    ) -> Result<(), Stopped> {
        let Some(last) = records.last() else {
            return Ok(());
        };
        let checkpoint = Checkpoint {
            sequence_number: Some(last.sequence_number.clone()),
            shard_end: false,
            stream_created: Some(self.stream_created),
            updated_at: now_rfc3339(),
        };
        self.persist(checkpoint).await?;
        self.acked = Some(last.sequence_number.clone());
        let seq = last.sequence_number.clone();
        let count = if processed { records.len() as u64 } else { 0 };
        self.status(|s| {
            s.checkpoint = Some(seq);
            s.records_acknowledged += count;
        });
        Ok(())
    }

    /// Writes the checkpoint, retrying until it sticks (or shutdown).
    async fn persist(&mut self, checkpoint: Checkpoint) -> Result<(), Stopped> {
        let mut backoff = self.config.retry_backoff.max(Duration::from_millis(100));
        loop {
            match self.deps.checkpoints.set(&self.key, checkpoint.clone()) {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::error!(function = %self.config.function, shard = %self.shard_id,
                        error = %err, "cannot persist the checkpoint; retrying");
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Describes the records to the on-failure destination as Lambda does for Kinesis
    /// (metadata only; the records stay in the stream until they expire).
    async fn give_up(
        &mut self,
        records: &[StreamRecord],
        invocations: u32,
        reason: &str,
        function_error: bool,
    ) -> Result<(), Stopped> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let mut response = json!({"statusCode": 200, "executedVersion": lambda_host::LATEST});
        if function_error {
            response["functionError"] = json!("Unhandled");
        }
        let message = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.deps.invoker.function_arn(&self.config.function),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": now_rfc3339(),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": arrival_rfc3339(first.approximate_arrival),
                "approximateArrivalOfLastRecord": arrival_rfc3339(last.approximate_arrival),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
            // Not in Lambda's message: why the last attempt failed (local convenience).
            "lastError": reason,
        });
        let destination = self.config.on_failure.clone();
        let mut backoff = self.config.retry_backoff.max(Duration::from_millis(100));
        loop {
            match self.deps.failures.append(destination.as_deref(), &message) {
                Ok(path) => {
                    tracing::warn!(function = %self.config.function, shard = %self.shard_id,
                        start = %first.sequence_number, end = %last.sequence_number,
                        records = records.len(), file = %path.display(), error = %reason,
                        "retries exhausted: batch sent to the on-failure destination; moving on");
                    let count = records.len() as u64;
                    self.status(|s| s.records_to_on_failure += count);
                    return Ok(());
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot write the on-failure record; retrying");
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }
}

fn record_age_ms(record: &StreamRecord) -> i64 {
    let now = Utc::now().timestamp_millis() as f64 / 1000.0;
    ((now - record.approximate_arrival) * 1000.0).max(0.0) as i64
}

fn arrival_rfc3339(epoch_seconds: f64) -> String {
    let millis = (epoch_seconds * 1000.0).round() as i64;
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
