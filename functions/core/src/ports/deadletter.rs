//! The dead-letter port: where a record that can never be processed goes, with its reason
//! and its original bytes, so that nothing is lost and nothing is retried forever
//! (docs/contracts.md, "Dead letters").

use std::future::Future;

use chrono::{DateTime, Utc};

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Stable reason code, e.g. `bad_vin` ([`RejectReason::code`](crate::RejectReason::code)).
    pub reason: String,
    /// Human-readable detail (short; never the whole payload).
    pub detail: String,
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Kinesis sequence number.
    pub sequence_number: String,
    /// Position of the rejected sub-record within a KPL aggregate (from 0); `None` for a
    /// plain record and for an aggregate rejected whole.
    pub sub_sequence_number: Option<u64>,
    /// Kinesis `approximateArrivalTimestamp`.
    pub approximate_arrival: DateTime<Utc>,
    /// Kinesis partition key (the VIN, for well-behaved producers); a sub-record's own key.
    pub partition_key: String,
    /// The record's data, exactly as received (a sub-record's own bytes).
    pub data: Vec<u8>,
    /// The function that rejected it, e.g. `stream-processor`.
    pub function: String,
}

/// Writing a dead letter failed. Callers treat every such failure as "retry the batch
/// later": losing a rejected record is never acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dead letter {target}: {message}")]
pub struct DeadLetterError {
    /// Where the letter was going, e.g. `s3://bucket/rejected/shard/sequence.json`.
    pub target: String,
    /// What went wrong, in the storage service's words.
    pub message: String,
}

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Stores one letter; storing the same letter again replaces it (idempotent).
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}

/// Writes every letter through `sink`, at most `limit` (at least 1) at once; each letter's
/// result, in the letters' order.
pub async fn put_all<S: DeadLetterSink>(
    sink: &S,
    letters: &[DeadLetter],
    limit: usize,
) -> Vec<Result<(), DeadLetterError>> {
    use futures::StreamExt as _;
    // The futures are made before they go into the stream: a stream that maps with a closure
    // makes a caller's `Send` proof fail (higher-ranked lifetimes).
    let puts: Vec<_> = letters
        .iter()
        .enumerate()
        .map(|(i, letter)| {
            let put = sink.put(letter);
            async move { (i, put.await) }
        })
        .collect();
    let mut done: Vec<(usize, Result<(), DeadLetterError>)> = futures::stream::iter(puts)
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A borrowed sink is a sink (a processor can be handed `&sink`).
impl<S: DeadLetterSink> DeadLetterSink for &S {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), DeadLetterError>> + Send {
        (**self).put(letter)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::{Pin, pin};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Pending once (asking to be polled again), then ready.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Polls `f` to completion on this thread (core has no runtime).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Fails the letters whose reason is "bad"; records the most puts in flight at once.
    #[derive(Default)]
    struct Sink {
        in_flight: AtomicUsize,
        most: AtomicUsize,
    }

    impl DeadLetterSink for Sink {
        async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            YieldOnce(false).await; // let the others start before this one ends
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match letter.reason.as_str() {
                "bad" => Err(DeadLetterError {
                    target: letter.sequence_number.clone(),
                    message: "refused".into(),
                }),
                _ => Ok(()),
            }
        }
    }

    fn letter(seq: usize, reason: &str) -> DeadLetter {
        DeadLetter {
            reason: reason.into(),
            detail: String::new(),
            shard_id: "shardId-000000000000".into(),
            sequence_number: seq.to_string(),
            sub_sequence_number: None,
            approximate_arrival: DateTime::<Utc>::UNIX_EPOCH,
            partition_key: String::new(),
            data: Vec::new(),
            function: "test".into(),
        }
    }

    #[test]
    fn every_result_in_the_letters_order_within_the_limit() {
        let letters: Vec<DeadLetter> = (0..7)
            .map(|i| letter(i, if i % 3 == 1 { "bad" } else { "ok" }))
            .collect();
        let sink = Sink::default();
        let results = block_on(put_all(&sink, &letters, 3));
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
            .map(|(i, e)| {
                assert_eq!(e.target, i.to_string());
                i
            })
            .collect();
        assert_eq!(failed, [1, 4]);
        assert_eq!(results.len(), 7);
        assert_eq!(sink.most.load(Ordering::SeqCst), 3);
        // A limit of 0 still writes, one at a time.
        let one = Sink::default();
        let results = block_on(put_all(&one, &letters[..2], 0));
        assert_eq!(results.len(), 2);
        assert_eq!(one.most.load(Ordering::SeqCst), 1);
    }
}
