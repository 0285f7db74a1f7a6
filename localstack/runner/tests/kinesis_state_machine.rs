//! The Kinesis polling / checkpoint / retry / bisect state machine, against an in-memory
//! stream and a scripted invoker (no AWS).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use local_runner::kinesis::{IteratorPosition, Mapping, MappingConfig, ShardConsumer, ShardExit};
use tokio::sync::watch;

const SHARD: &str = "shardId-000000000000";

/// Runs one consumer over SHARD until it returns.
async fn run_shard(
    h: &Harness,
    stream: &Arc<FakeStream>,
    invoker: &Arc<FakeInvoker>,
    config: MappingConfig,
    shutdown: watch::Receiver<bool>,
) -> ShardExit {
    let consumer = ShardConsumer::new(
        Arc::new(config),
        h.deps(stream, invoker),
        SHARD,
        "arn:aws:kinesis:us-east-1:000000000000:stream/fake-stream",
        CREATED,
        IteratorPosition::TrimHorizon,
        shutdown,
    );
    tokio::time::timeout(Duration::from_secs(20), consumer.run())
        .await
        .expect("the consumer finished")
}

fn closed_shard(data: &[&str]) -> (Arc<FakeStream>, Vec<String>) {
    let stream = FakeStream::new();
    stream.add_shard(SHARD, None);
    let seqs = stream.put(SHARD, 0, data);
    stream.close(SHARD);
    (stream, seqs)
}

/// A function error for every batch holding the `poison` record.
fn fails_on_poison(_: usize, call: &Call) -> local_runner::invoker::Invocation {
    if call.data.iter().any(|d| d == "poison") {
        error()
    } else {
        ok()
    }
}

fn never() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    // Keep the sender alive for the whole test.
    std::mem::forget(tx);
    rx
}

#[tokio::test]
async fn checkpoint_advances_only_past_a_successful_invocation() {
    let h = Harness::new();
    let (stream, seqs) = closed_shard(&["a", "b", "c"]);
    let invoker = FakeInvoker::new(
        h.checkpoints.clone(),
        |i, _| if i < 2 { error() } else { ok() },
    );
    let exit = run_shard(&h, &stream, &invoker, config(10), never()).await;

    assert_eq!(exit, ShardExit::ShardEnd);
    let calls = invoker.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(call.seqs, seqs, "the failed batch is retried whole");
        assert_eq!(
            call.checkpoint_at_call, None,
            "nothing acknowledged before the success"
        );
    }
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(seqs[2].as_str()));
    assert!(h.on_failure().is_empty());
    let status = h
        .status
        .shard_snapshot(&format!("fn/{STREAM}/{SHARD}"))
        .unwrap();
    assert_eq!(status.records_acknowledged, 3);
    assert_eq!(status.function_errors, 2);
    assert_eq!(status.invocations, 3);
}

#[tokio::test]
async fn the_event_is_the_one_lambda_sends() {
    let h = Harness::new();
    let (stream, seqs) = closed_shard(&["hello"]);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |_, _| ok());
    run_shard(&h, &stream, &invoker, config(10), never()).await;

    let event = &invoker.calls()[0].event;
    let record = &event["Records"][0];
    assert_eq!(record["eventSource"], "aws:kinesis");
    assert_eq!(record["eventVersion"], "1.0");
    assert_eq!(record["eventName"], "aws:kinesis:record");
    assert_eq!(record["eventID"], format!("{SHARD}:{}", seqs[0]));
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(
        record["eventSourceARN"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/fake-stream"
    );
    assert_eq!(
        record["invokeIdentityArn"],
        "arn:aws:iam::000000000000:role/fn-role"
    );
    let kinesis = &record["kinesis"];
    assert_eq!(kinesis["kinesisSchemaVersion"], "1.0");
    assert_eq!(kinesis["partitionKey"], "pk-1");
    assert_eq!(kinesis["sequenceNumber"], seqs[0].as_str());
    assert_eq!(kinesis["data"], "aGVsbG8="); // base64("hello")
    assert_eq!(
        kinesis["approximateArrivalTimestamp"].as_f64(),
        Some(1_700_000_101.0)
    );
}

#[tokio::test]
async fn batch_item_failures_redeliver_from_the_lowest_failed_record() {
    let h = Harness::new();
    let (stream, seqs) = closed_shard(&["1", "2", "3", "4", "5"]);
    let (s2, s4) = (seqs[1].clone(), seqs[3].clone());
    let invoker = FakeInvoker::new(h.checkpoints.clone(), move |i, _| {
        if i == 0 { partial(&[&s4, &s2]) } else { ok() }
    });
    run_shard(&h, &stream, &invoker, config(10), never()).await;

    let calls = invoker.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].seqs, seqs);
    assert_eq!(
        calls[1].seqs,
        seqs[1..].to_vec(),
        "retry starts at the lowest failure"
    );
    assert_eq!(
        calls[1].checkpoint_at_call.as_deref(),
        Some(seqs[0].as_str()),
        "checkpointed just before the lowest failed record"
    );
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(seqs[4].as_str()));
}

#[tokio::test]
async fn an_unknown_item_identifier_fails_the_whole_batch() {
    let h = Harness::new();
    let (stream, seqs) = closed_shard(&["1", "2", "3"]);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |i, _| {
        if i == 0 {
            partial(&["not-in-the-batch"])
        } else if i == 1 {
            partial(&[""])
        } else {
            ok()
        }
    });
    run_shard(&h, &stream, &invoker, config(10), never()).await;

    let calls = invoker.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.seqs == seqs));
    assert!(calls.iter().all(|c| c.checkpoint_at_call.is_none()));
}

#[tokio::test]
async fn bisect_splits_a_failing_batch_in_halves_until_the_bad_record_is_isolated() {
    let h = Harness::new();
    let data = ["1", "2", "3", "4", "5", "poison", "7", "8"];
    let (stream, s) = closed_shard(&data);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), fails_on_poison);
    let mut cfg = config(10);
    cfg.bisect_on_error = true;
    cfg.max_retry_attempts = 1;
    run_shard(&h, &stream, &invoker, cfg, never()).await;

    let expected: Vec<Vec<String>> = vec![
        s[0..8].to_vec(), // error → bisect
        s[0..4].to_vec(), // ok
        s[4..8].to_vec(), // error → bisect
        s[4..6].to_vec(), // error → bisect
        s[4..5].to_vec(), // ok
        s[5..6].to_vec(), // error, retry 1
        s[5..6].to_vec(), // error, retries exhausted → on-failure
        s[6..8].to_vec(), // ok
    ];
    assert_eq!(invoker.batches(), expected);
    let calls = invoker.calls();
    assert_eq!(calls[6].checkpoint_at_call.as_deref(), Some(s[4].as_str()));
    assert_eq!(
        calls[7].checkpoint_at_call.as_deref(),
        Some(s[5].as_str()),
        "moved past the poison record"
    );
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(s[7].as_str()));

    let failures = h.on_failure();
    assert_eq!(failures.len(), 1);
    let info = &failures[0]["KinesisBatchInfo"];
    assert_eq!(info["shardId"], SHARD);
    assert_eq!(info["startSequenceNumber"], s[5].as_str());
    assert_eq!(info["endSequenceNumber"], s[5].as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(
        info["approximateArrivalOfFirstRecord"],
        "2023-11-14T22:15:06.000Z"
    );
    assert_eq!(
        failures[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(failures[0]["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(failures[0]["responseContext"]["functionError"], "Unhandled");
}

#[tokio::test]
async fn exhausted_retries_go_to_the_on_failure_destination_and_the_shard_moves_on() {
    let h = Harness::new();
    let (stream, s) = closed_shard(&["1", "poison", "3", "4", "5", "6"]);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), fails_on_poison);
    let mut cfg = config(3);
    cfg.max_retry_attempts = 2;
    run_shard(&h, &stream, &invoker, cfg, never()).await;

    let first = s[0..3].to_vec();
    assert_eq!(
        invoker.batches(),
        vec![first.clone(), first.clone(), first, s[3..6].to_vec()],
        "one attempt + 2 retries, then the next batch"
    );
    assert_eq!(
        invoker.calls()[3].checkpoint_at_call.as_deref(),
        Some(s[2].as_str())
    );
    let failures = h.on_failure();
    assert_eq!(failures.len(), 1);
    let info = &failures[0]["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], s[0].as_str());
    assert_eq!(info["endSequenceNumber"], s[2].as_str());
    assert_eq!(info["batchSize"], 3);
    assert_eq!(
        info["streamArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/fake-stream"
    );
    assert_eq!(failures[0]["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        failures[0]["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:fn"
    );
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(s[5].as_str()));
    let status = h
        .status
        .shard_snapshot(&format!("fn/{STREAM}/{SHARD}"))
        .unwrap();
    assert_eq!(status.records_to_on_failure, 3);
    assert_eq!(status.records_acknowledged, 3);
}

#[tokio::test]
async fn a_partial_failure_spends_a_retry() {
    let h = Harness::new();
    let (stream, s) = closed_shard(&["1", "2", "3"]);
    let s2 = s[1].clone();
    let invoker = FakeInvoker::new(h.checkpoints.clone(), move |_, _| partial(&[&s2]));
    let mut cfg = config(10);
    cfg.max_retry_attempts = 1;
    cfg.bisect_on_error = true; // bisecting only applies to function errors
    run_shard(&h, &stream, &invoker, cfg, never()).await;

    assert_eq!(invoker.batches(), vec![s.clone(), s[1..].to_vec()]);
    let failures = h.on_failure();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0]["KinesisBatchInfo"]["startSequenceNumber"],
        s[1].as_str()
    );
    assert_eq!(
        failures[0]["KinesisBatchInfo"]["endSequenceNumber"],
        s[2].as_str()
    );
    assert!(
        failures[0]["responseContext"]
            .get("functionError")
            .is_none()
    );
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(s[2].as_str()));
}

#[tokio::test]
async fn batches_hold_at_most_batch_size_records() {
    let h = Harness::new();
    let data: Vec<String> = (1..=25).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = data.iter().map(String::as_str).collect();
    let (stream, s) = closed_shard(&refs);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |_, _| ok());
    run_shard(&h, &stream, &invoker, config(10), never()).await;
    assert_eq!(
        invoker.batches(),
        vec![s[0..10].to_vec(), s[10..20].to_vec(), s[20..25].to_vec()]
    );
}

#[tokio::test]
async fn the_batching_window_waits_for_a_full_batch() {
    let h = Harness::new();
    let stream = FakeStream::new();
    stream.add_shard(SHARD, None);
    stream.put(SHARD, 0, &["1", "2", "3"]);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |_, _| ok());
    let mut cfg = config(10);
    cfg.batching_window = Duration::from_secs(3600);
    let (stop, rx) = watch::channel(false);
    let consumer = ShardConsumer::new(
        Arc::new(cfg),
        h.deps(&stream, &invoker),
        SHARD,
        "arn",
        CREATED,
        IteratorPosition::TrimHorizon,
        rx,
    );
    let task = tokio::spawn(consumer.run());
    wait_until("a few polls", || stream.reads.load(Ordering::SeqCst) >= 5).await;
    assert!(
        invoker.calls().is_empty(),
        "3 of 10 records and the window is open"
    );
    let s = stream.put(SHARD, 0, &["4", "5", "6", "7", "8", "9", "10"]);
    wait_until("the full batch", || !invoker.calls().is_empty()).await;
    assert_eq!(invoker.calls()[0].seqs.len(), 10);
    assert_eq!(invoker.calls()[0].seqs[9], s[6]);
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), ShardExit::Shutdown);
}

#[tokio::test]
async fn a_restart_resumes_after_the_persisted_checkpoint() {
    let h = Harness::new();
    let stream = FakeStream::new();
    stream.add_shard(SHARD, None);
    let data: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = data.iter().map(String::as_str).collect();
    let s = stream.put(SHARD, 0, &refs);

    // First run: two batches acknowledged, then "the process dies" during the third.
    let (stop, rx) = watch::channel(false);
    let stop = Arc::new(stop);
    let stopper = stop.clone();
    let first = FakeInvoker::new(h.checkpoints.clone(), move |i, _| {
        if i < 2 {
            ok()
        } else {
            stopper.send(true).unwrap();
            error()
        }
    });
    let exit = run_shard(&h, &stream, &first, config(4), rx).await;
    assert_eq!(exit, ShardExit::Shutdown);
    assert_eq!(
        first.batches(),
        vec![s[0..4].to_vec(), s[4..8].to_vec(), s[8..10].to_vec()]
    );

    // The checkpoint on disk, read independently of the store.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.dir.path().join("checkpoints.json")).unwrap())
            .unwrap();
    assert_eq!(
        on_disk[format!("fn/{STREAM}/{SHARD}")]["sequence_number"],
        s[7].as_str()
    );

    // Second run: a new store over the same files (a restarted runner).
    stream.put(SHARD, 0, &["11"]);
    stream.close(SHARD);
    let all: Vec<String> = (1..=11).map(|i| seq(0, i)).collect();
    let dir = h.dir;
    let h2 = Harness::in_dir(dir);
    let second = FakeInvoker::new(h2.checkpoints.clone(), |_, _| ok());
    let exit = run_shard(&h2, &stream, &second, config(4), never()).await;
    assert_eq!(exit, ShardExit::ShardEnd);
    assert_eq!(
        second.batches(),
        vec![all[8..11].to_vec()],
        "the unacknowledged batch is redelivered, nothing acknowledged is"
    );
    let mut delivered: Vec<String> = first.batches()[..2].concat();
    delivered.extend(second.batches().concat());
    assert_eq!(
        delivered, all,
        "every record acknowledged exactly once, in order"
    );
}

#[tokio::test]
async fn child_shards_start_after_their_parent_is_finished() {
    let h = Harness::new();
    let stream = FakeStream::new();
    let parent = "shardId-000000000000";
    let child = "shardId-000000000001";
    stream.add_shard(parent, None);
    stream.add_shard(child, Some(parent));
    let ps = stream.put(parent, 0, &["p1", "p2", "p3"]);
    let cs = stream.put(child, 1, &["c1", "c2"]);
    stream.close(parent);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |_, _| ok());
    let mapping = Mapping::new(config(2), h.deps(&stream, &invoker));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(mapping.run(rx));
    wait_until("the child's records", || {
        h.checkpoint(child).as_deref() == Some(cs[1].as_str())
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();

    let order: Vec<String> = invoker.batches().concat();
    assert_eq!(
        order,
        [ps.clone(), cs.clone()].concat(),
        "parent first, child from TRIM_HORIZON"
    );
    let parent_cp = h
        .checkpoints
        .get(&local_runner::kinesis::checkpoint_key("fn", STREAM, parent))
        .unwrap();
    assert!(parent_cp.shard_end);
    assert_eq!(parent_cp.sequence_number.as_deref(), Some(ps[2].as_str()));
}

#[tokio::test]
async fn a_mapping_waits_for_its_stream_to_appear() {
    let h = Harness::new();
    let stream = FakeStream::new();
    stream.set_exists(false);
    let invoker = FakeInvoker::new(h.checkpoints.clone(), |_, _| ok());
    let mapping = Mapping::new(config(10), h.deps(&stream, &invoker));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(mapping.run(rx));
    let state = |h: &Harness| {
        h.status.snapshot()["mappings"][0]["state"]
            .as_str()
            .map(str::to_owned)
    };
    wait_until("waiting-for-stream", || {
        state(&h).as_deref() == Some("waiting-for-stream")
    })
    .await;

    stream.add_shard(SHARD, None);
    let s = stream.put(SHARD, 0, &["x", "y"]);
    stream.set_exists(true);
    for _ in 0..1000 {
        if h.checkpoint(SHARD).as_deref() == Some(s[1].as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.checkpoint(SHARD).as_deref(), Some(s[1].as_str()));
    assert_eq!(invoker.batches(), vec![s]);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state(&h).as_deref(), Some("stopped"));
}
