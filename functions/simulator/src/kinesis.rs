//! Sending records to Kinesis with PutRecords: batches of at most 500 records and 5 MiB,
//! and retries of only the entries that failed, with exponential backoff and full jitter.
//!
//! The AWS call sits behind [`RecordPutter`] so the batching and retry logic is tested
//! with a fake.

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use fleetline_aws::backoff::Backoff;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::time::Duration;

/// PutRecords limits (per call: records, bytes of data + partition keys; per record).
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
pub const MAX_BYTES_PER_RECORD: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub data: Vec<u8>,
    pub partition_key: String,
}

impl Entry {
    /// What counts against the request size limit.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// A failure of a whole call.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PutCallError {
    /// Throttling, timeouts, 5xx: the same entries may be sent again.
    #[error("{0}")]
    Retryable(String),
    /// Missing stream, bad request, access denied: retrying cannot help.
    #[error("{0}")]
    Fatal(String),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SendError {
    #[error("Kinesis PutRecords failed: {0}")]
    Fatal(String),
    #[error(
        "Kinesis PutRecords gave up after {attempts} attempts: {remaining} record(s) still failing (last error: {last_error})"
    )]
    GaveUp {
        attempts: u32,
        remaining: usize,
        last_error: String,
    },
    #[error("a record of {0} bytes exceeds the Kinesis limit of 1 MiB")]
    RecordTooLarge(usize),
    #[error("PutRecords returned {got} results for {sent} records")]
    BadResponse { got: usize, sent: usize },
}

/// One PutRecords call: per entry, `None` when stored or `Some(error code: message)`.
pub trait RecordPutter {
    fn put_records(
        &self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PutCallError>> + Send;
}

/// The real thing.
pub struct KinesisPutter {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisPutter {
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        KinesisPutter {
            client,
            stream: stream.into(),
        }
    }
}

impl RecordPutter for KinesisPutter {
    async fn put_records(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, PutCallError> {
        let mut records = Vec::with_capacity(entries.len());
        for e in entries {
            let r = PutRecordsRequestEntry::builder()
                .data(Blob::new(e.data.clone()))
                .partition_key(&e.partition_key)
                .build()
                .map_err(|err| PutCallError::Fatal(err.to_string()))?;
            records.push(r);
        }
        let result = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(records))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .records()
                .iter()
                .map(|r| {
                    r.error_code()
                        .map(|c| format!("{c}: {}", r.error_message().unwrap_or("")))
                })
                .collect()),
            Err(err) => {
                let fatal = match &err {
                    SdkError::ServiceError(se) => matches!(
                        se.err(),
                        PutRecordsError::ResourceNotFoundException(_)
                            | PutRecordsError::InvalidArgumentException(_)
                            | PutRecordsError::AccessDeniedException(_)
                            | PutRecordsError::KmsAccessDeniedException(_)
                            | PutRecordsError::KmsDisabledException(_)
                            | PutRecordsError::KmsNotFoundException(_)
                            | PutRecordsError::KmsOptInRequired(_)
                            | PutRecordsError::KmsInvalidStateException(_)
                    ),
                    SdkError::ConstructionFailure(_) => true,
                    _ => false,
                };
                // Service errors: code and message only (the full context is a page long).
                let detail = match &err {
                    SdkError::ServiceError(se) => format!(
                        "{}: {}",
                        se.err().code().unwrap_or("ServiceError"),
                        se.err().message().unwrap_or("")
                    ),
                    _ => DisplayErrorContext(&err).to_string(),
                };
                let msg = format!("stream {}: {detail}", self.stream);
                Err(if fatal {
                    PutCallError::Fatal(msg)
                } else {
                    PutCallError::Retryable(msg)
                })
            }
        }
    }
}

/// Retries of a PutRecords batch (`max_attempts` calls per batch, the first included).
pub const KINESIS_RETRY: Backoff =
    Backoff::new(10, Duration::from_millis(100), Duration::from_secs(5));

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Kinesis records stored (with KPL aggregation, each carries several readings).
    pub records: u64,
    /// Bytes of payload stored.
    pub bytes: u64,
    pub calls: u64,
    /// Entries sent again after a failure (each time counts).
    pub retried_records: u64,
}

/// Buffers entries into PutRecords calls and sends them with retries.
pub struct Sender<P> {
    putter: P,
    policy: Backoff,
    buf: Vec<Entry>,
    buf_bytes: usize,
    stats: SendStats,
    jitter: ChaCha8Rng,
    /// `Some` when readings are packed into KPL aggregates (`--kpl-aggregate`).
    aggregator: Option<crate::kpl::Aggregator>,
}

impl<P: RecordPutter> Sender<P> {
    pub fn new(putter: P, policy: Backoff) -> Self {
        // Jitter only spreads retries in time; it never touches the data, so any seed will do.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Sender {
            putter,
            policy,
            buf: Vec::new(),
            buf_bytes: 0,
            stats: SendStats::default(),
            jitter: ChaCha8Rng::seed_from_u64(seed),
            aggregator: None,
        }
    }

    /// Packs every `per_record` pushed entries into one KPL aggregated record (1 = off).
    pub fn with_kpl_aggregate(mut self, per_record: usize) -> Self {
        self.aggregator = (per_record > 1).then(|| crate::kpl::Aggregator::new(per_record));
        self
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    pub fn putter(&self) -> &P {
        &self.putter
    }

    /// Queues an entry (into the pending aggregate when aggregating), sending the buffer
    /// first when the entry would not fit in it.
    pub async fn push(&mut self, entry: Entry) -> Result<(), SendError> {
        match self.aggregator.as_mut() {
            None => self.push_record(entry).await,
            Some(a) => match a.push(entry) {
                Some(aggregate) => self.push_record(aggregate).await,
                None => Ok(()),
            },
        }
    }

    async fn push_record(&mut self, entry: Entry) -> Result<(), SendError> {
        let size = entry.size();
        if size > MAX_BYTES_PER_RECORD {
            return Err(SendError::RecordTooLarge(size));
        }
        if self.buf.len() == MAX_RECORDS_PER_CALL || self.buf_bytes + size > MAX_BYTES_PER_CALL {
            self.send_buffered().await?;
        }
        self.buf_bytes += size;
        self.buf.push(entry);
        Ok(())
    }

    /// Sends whatever is buffered (a partial aggregate included).
    pub async fn flush(&mut self) -> Result<(), SendError> {
        if let Some(aggregate) = self.aggregator.as_mut().and_then(|a| a.take()) {
            self.push_record(aggregate).await?;
        }
        self.send_buffered().await
    }

    async fn send_buffered(&mut self) -> Result<(), SendError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.buf);
        self.buf_bytes = 0;
        self.send_batch(batch).await
    }

    fn backoff(&mut self, attempt: u32) -> Duration {
        self.policy.delay_with(attempt, &mut self.jitter)
    }

    async fn send_batch(&mut self, mut pending: Vec<Entry>) -> Result<(), SendError> {
        let mut attempt = 1;
        loop {
            self.stats.calls += 1;
            let last_error = match self.putter.put_records(&pending).await {
                Ok(results) => {
                    if results.len() != pending.len() {
                        return Err(SendError::BadResponse {
                            got: results.len(),
                            sent: pending.len(),
                        });
                    }
                    let mut failed = Vec::new();
                    let mut last = String::new();
                    for (entry, result) in pending.into_iter().zip(results) {
                        match result {
                            None => {
                                self.stats.records += 1;
                                self.stats.bytes += entry.data.len() as u64;
                            }
                            Some(code) => {
                                last = code;
                                failed.push(entry);
                            }
                        }
                    }
                    pending = failed;
                    if pending.is_empty() {
                        return Ok(());
                    }
                    tracing::debug!(
                        failed = pending.len(),
                        attempt,
                        "PutRecords partially failed"
                    );
                    last
                }
                Err(PutCallError::Fatal(m)) => return Err(SendError::Fatal(m)),
                Err(PutCallError::Retryable(m)) => m,
            };
            if attempt >= self.policy.attempts() {
                return Err(SendError::GaveUp {
                    attempts: attempt,
                    remaining: pending.len(),
                    last_error,
                });
            }
            let wait = self.backoff(attempt - 1);
            tokio::time::sleep(wait).await;
            attempt += 1;
            self.stats.retried_records += pending.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every call; fails the entries whose payload is in `fail_once` the first
    /// time they are sent, and those in `fail_always` every time.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Vec<Entry>>>,
        fail_once: Mutex<Vec<Vec<u8>>>,
        fail_always: Vec<Vec<u8>>,
        throttle_first_call: Mutex<bool>,
    }

    impl RecordPutter for Fake {
        async fn put_records(
            &self,
            entries: &[Entry],
        ) -> Result<Vec<Option<String>>, PutCallError> {
            self.calls.lock().unwrap().push(entries.to_vec());
            if std::mem::take(&mut *self.throttle_first_call.lock().unwrap()) {
                return Err(PutCallError::Retryable("ThrottlingException".into()));
            }
            let mut once = self.fail_once.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| {
                    if self.fail_always.contains(&e.data) {
                        Some("InternalFailure: boom".to_string())
                    } else if let Some(i) = once.iter().position(|d| *d == e.data) {
                        once.remove(i);
                        Some("ProvisionedThroughputExceededException: slow down".to_string())
                    } else {
                        None
                    }
                })
                .collect())
        }
    }

    fn entry(i: usize, size: usize) -> Entry {
        let mut data = format!("{i:08}").into_bytes();
        data.resize(size.max(8), b'x');
        Entry {
            data,
            partition_key: "1HGCM82633A004352".into(),
        }
    }

    fn fast() -> Backoff {
        Backoff::new(4, Duration::ZERO, Duration::ZERO)
    }

    /// Entries `0..n` (40 bytes each) pushed and flushed through `fake` with fast retries.
    async fn send_through(fake: Fake, n: usize) -> (Sender<Fake>, Result<(), SendError>) {
        let mut s = Sender::new(fake, fast());
        for i in 0..n {
            s.push(entry(i, 40)).await.unwrap();
        }
        let flushed = s.flush().await;
        (s, flushed)
    }

    #[tokio::test]
    async fn chunks_by_count() {
        let mut s = Sender::new(Fake::default(), fast());
        for i in 0..1_234 {
            s.push(entry(i, 50)).await.unwrap();
        }
        s.flush().await.unwrap();
        let calls = s.putter().calls.lock().unwrap().clone();
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 234]);
        let all: Vec<Entry> = calls.into_iter().flatten().collect();
        let expected: Vec<Entry> = (0..1_234).map(|i| entry(i, 50)).collect();
        assert_eq!(all, expected, "order and content preserved");
        assert_eq!(s.stats().records, 1_234);
        assert_eq!(s.stats().bytes, 1_234 * 50);
    }

    #[tokio::test]
    async fn kpl_aggregate_packs_entries_and_flush_sends_the_partial_one() {
        let mut s = Sender::new(Fake::default(), fast()).with_kpl_aggregate(4);
        for i in 0..10 {
            s.push(entry(i, 50)).await.unwrap();
        }
        s.flush().await.unwrap();
        let calls = s.putter().calls.lock().unwrap().clone();
        let sent: Vec<Entry> = calls.into_iter().flatten().collect();
        assert_eq!(sent.len(), 3, "4 + 4 + 2 readings");
        assert!(
            sent.iter()
                .all(|e| e.data.starts_with(&[0xF3, 0x89, 0x9A, 0xC2]))
        );
        assert_eq!(s.stats().records, 3);
        let plain = Sender::new(Fake::default(), fast()).with_kpl_aggregate(1);
        assert!(plain.aggregator.is_none());
    }

    #[tokio::test]
    async fn chunks_by_bytes() {
        let mut s = Sender::new(Fake::default(), fast());
        // 700 KiB records: 7 fit in 5 MiB (4.79 MiB + keys), the 8th would not.
        for i in 0..20 {
            s.push(entry(i, 700 * 1024)).await.unwrap();
        }
        s.flush().await.unwrap();
        let calls = s.putter().calls.lock().unwrap().clone();
        for c in &calls {
            let bytes: usize = c.iter().map(Entry::size).sum();
            assert!(bytes <= MAX_BYTES_PER_CALL, "{bytes}");
        }
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![7, 7, 6]);
        assert!(matches!(
            s.push(entry(99, MAX_BYTES_PER_RECORD)).await,
            Err(SendError::RecordTooLarge(_))
        ));
    }

    #[tokio::test]
    async fn retries_only_failed_entries() {
        let fail: Vec<Vec<u8>> = [3usize, 10, 11, 499]
            .iter()
            .map(|&i| entry(i, 40).data)
            .collect();
        let fake = Fake {
            fail_once: Mutex::new(fail.clone()),
            ..Fake::default()
        };
        let (s, flushed) = send_through(fake, 600).await;
        flushed.unwrap();
        let calls = s.putter().calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].len(), 500);
        // The retry carries exactly the failed entries, in their original order.
        let retried: Vec<Vec<u8>> = calls[1].iter().map(|e| e.data.clone()).collect();
        assert_eq!(retried, fail);
        assert_eq!(calls[2].len(), 100);
        assert_eq!(s.stats().records, 600);
        assert_eq!(s.stats().retried_records, 4);
        assert_eq!(s.stats().calls, 3);
    }

    #[tokio::test]
    async fn whole_call_failures_resend_the_batch() {
        let fake = Fake {
            throttle_first_call: Mutex::new(true),
            ..Fake::default()
        };
        let (s, flushed) = send_through(fake, 10).await;
        flushed.unwrap();
        let calls = s.putter().calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], calls[1]);
        assert_eq!(s.stats().records, 10);
    }

    #[tokio::test]
    async fn gives_up_after_bounded_attempts() {
        let fake = Fake {
            fail_always: vec![entry(5, 40).data],
            ..Fake::default()
        };
        let (s, flushed) = send_through(fake, 10).await;
        let err = flushed.unwrap_err();
        assert_eq!(
            err,
            SendError::GaveUp {
                attempts: 4,
                remaining: 1,
                last_error: "InternalFailure: boom".into()
            }
        );
        assert!(err.to_string().contains("gave up after 4 attempts"));
        let calls = s.putter().calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 4);
        assert!(calls[1..].iter().all(|c| c.len() == 1));
        assert_eq!(s.stats().records, 9);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = Backoff::new(5, Duration::from_millis(100), Duration::from_secs(1));
        let mut s = Sender::new(Fake::default(), policy);
        for attempt in 0..30 {
            let d = s.backoff(attempt);
            assert!(d <= Duration::from_secs(1));
            assert!(d <= Duration::from_millis(100) * (1 << attempt.min(20)));
        }
    }
}
