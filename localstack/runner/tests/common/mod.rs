//! Fakes for the Kinesis state machine: an in-memory stream and a scripted invoker.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use local_runner::invoker::{Invocation, Invoker};
use local_runner::kinesis::{
    CheckpointStore, Deps, FailureLog, IteratorPosition, MappingConfig, RecordsPage,
    ShardDescription, SourceError, StreamDescription, StreamRecord, StreamSource,
};
use local_runner::status::StatusBoard;
use local_runner::template::StartingPosition;
use serde_json::Value;

pub const STREAM: &str = "fake-stream";
pub const CREATED: f64 = 1_700_000_000.0;

#[derive(Default)]
struct Shard {
    parent: Option<String>,
    records: Vec<StreamRecord>,
    closed: bool,
}

/// Shards of records; iterators are `<shard>|<index>`.
#[derive(Default)]
pub struct FakeStream {
    shards: Mutex<BTreeMap<String, Shard>>,
    exists: Mutex<bool>,
    pub reads: std::sync::atomic::AtomicUsize,
}

/// Sequence numbers shaped like Kinesis' (long decimal strings, numerically ordered).
pub fn seq(shard: usize, n: usize) -> String {
    format!("4960{shard:04}{n:020}")
}

impl FakeStream {
    pub fn new() -> Arc<Self> {
        let stream = Self::default();
        *stream.exists.lock().unwrap() = true;
        Arc::new(stream)
    }

    pub fn set_exists(&self, exists: bool) {
        *self.exists.lock().unwrap() = exists;
    }

    pub fn add_shard(&self, shard: &str, parent: Option<&str>) {
        self.shards.lock().unwrap().insert(
            shard.to_owned(),
            Shard {
                parent: parent.map(str::to_owned),
                ..Shard::default()
            },
        );
    }

    /// Appends `data` records to `shard`; returns their sequence numbers.
    pub fn put(&self, shard: &str, shard_no: usize, data: &[&str]) -> Vec<String> {
        let mut shards = self.shards.lock().unwrap();
        let s = shards.get_mut(shard).expect("shard exists");
        data.iter()
            .map(|d| {
                let n = s.records.len() + 1;
                let sequence_number = seq(shard_no, n);
                s.records.push(StreamRecord {
                    sequence_number: sequence_number.clone(),
                    partition_key: format!("pk-{n}"),
                    data: d.as_bytes().to_vec(),
                    approximate_arrival: 1_700_000_100.0 + n as f64,
                });
                sequence_number
            })
            .collect()
    }

    pub fn close(&self, shard: &str) {
        self.shards.lock().unwrap().get_mut(shard).unwrap().closed = true;
    }

    fn check(&self) -> Result<(), SourceError> {
        if *self.exists.lock().unwrap() {
            Ok(())
        } else {
            Err(SourceError::StreamNotFound(STREAM.to_owned()))
        }
    }
}

impl StreamSource for FakeStream {
    async fn describe(&self, _stream: &str) -> Result<StreamDescription, SourceError> {
        self.check()?;
        Ok(StreamDescription {
            arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{STREAM}"),
            created: CREATED,
        })
    }

    async fn list_shards(&self, _stream: &str) -> Result<Vec<ShardDescription>, SourceError> {
        self.check()?;
        Ok(self
            .shards
            .lock()
            .unwrap()
            .iter()
            .map(|(id, s)| ShardDescription {
                shard_id: id.clone(),
                parent_shard_id: s.parent.clone(),
                adjacent_parent_shard_id: None,
            })
            .collect())
    }

    async fn shard_iterator(
        &self,
        _stream: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        self.check()?;
        let shards = self.shards.lock().unwrap();
        let shard = shards
            .get(shard_id)
            .ok_or_else(|| SourceError::InvalidArgument(format!("no shard {shard_id}")))?;
        let index = match position {
            IteratorPosition::TrimHorizon => 0,
            IteratorPosition::Latest => shard.records.len(),
            IteratorPosition::AtTimestamp(_) => 0,
            IteratorPosition::AtSequenceNumber(s) => shard
                .records
                .iter()
                .position(|r| &r.sequence_number == s)
                .ok_or_else(|| SourceError::InvalidArgument(s.clone()))?,
            IteratorPosition::AfterSequenceNumber(s) => {
                shard
                    .records
                    .iter()
                    .position(|r| &r.sequence_number == s)
                    .ok_or_else(|| SourceError::InvalidArgument(s.clone()))?
                    + 1
            }
        };
        Ok(format!("{shard_id}|{index}"))
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        self.check()?;
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (shard_id, index) = iterator.split_once('|').unwrap();
        let index: usize = index.parse().unwrap();
        let shards = self.shards.lock().unwrap();
        let shard = &shards[shard_id];
        let end = (index + limit).min(shard.records.len());
        let records = shard.records[index..end].to_vec();
        let next = if shard.closed && end == shard.records.len() {
            None
        } else {
            Some(format!("{shard_id}|{end}"))
        };
        Ok(RecordsPage {
            records,
            next_iterator: next,
            millis_behind_latest: Some(0),
        })
    }
}

/// One invocation as the fake invoker saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub seqs: Vec<String>,
    pub data: Vec<String>,
    pub shard: String,
    /// The persisted checkpoint of that shard at the moment of the call.
    pub checkpoint_at_call: Option<String>,
    pub event: Value,
}

type Script = dyn Fn(usize, &Call) -> Invocation + Send + Sync;

/// Records every call and answers with `script(call_index, call)`.
pub struct FakeInvoker {
    pub calls: Mutex<Vec<Call>>,
    script: Box<Script>,
    checkpoints: Arc<CheckpointStore>,
    function: String,
}

impl FakeInvoker {
    pub fn new(
        checkpoints: Arc<CheckpointStore>,
        script: impl Fn(usize, &Call) -> Invocation + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            script: Box::new(script),
            checkpoints,
            function: "fn".to_owned(),
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn batches(&self) -> Vec<Vec<String>> {
        self.calls().into_iter().map(|c| c.seqs).collect()
    }
}

impl Invoker for FakeInvoker {
    async fn invoke(&self, function: &str, payload: Bytes) -> Invocation {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        let records = event["Records"].as_array().unwrap();
        let seqs: Vec<String> = records
            .iter()
            .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
            .collect();
        let data = records
            .iter()
            .map(|r| {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r["kinesis"]["data"].as_str().unwrap())
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        let shard = records[0]["eventID"]
            .as_str()
            .unwrap()
            .split_once(':')
            .unwrap()
            .0
            .to_owned();
        let key = local_runner::kinesis::checkpoint_key(function, STREAM, &shard);
        let call = Call {
            seqs,
            data,
            checkpoint_at_call: self.checkpoints.get(&key).and_then(|c| c.sequence_number),
            shard,
            event,
        };
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call.clone());
            calls.len() - 1
        };
        (self.script)(index, &call)
    }

    fn function_arn(&self, function: &str) -> String {
        format!("arn:aws:lambda:us-east-1:000000000000:function:{function}")
    }
}

pub fn ok() -> Invocation {
    Invocation::Response(Bytes::from_static(b"{\"batchItemFailures\":[]}"))
}

pub fn error() -> Invocation {
    Invocation::FunctionError {
        error_type: "Boom".to_owned(),
        error_message: "requested".to_owned(),
    }
}

pub fn partial(seqs: &[&str]) -> Invocation {
    let items: Vec<Value> = seqs
        .iter()
        .map(|s| serde_json::json!({"itemIdentifier": s}))
        .collect();
    Invocation::Response(Bytes::from(
        serde_json::json!({"batchItemFailures": items}).to_string(),
    ))
}

pub fn config(batch_size: usize) -> MappingConfig {
    MappingConfig {
        function: "fn".to_owned(),
        stream: STREAM.to_owned(),
        starting_position: StartingPosition::TrimHorizon,
        batch_size,
        batching_window: Duration::ZERO,
        max_retry_attempts: -1,
        bisect_on_error: false,
        report_batch_item_failures: true,
        on_failure: Some("arn:aws:sqs:us-east-1:000000000000:test-on-failure".to_owned()),
        poll_interval: Duration::from_millis(5),
        retry_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        region: "us-east-1".to_owned(),
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub checkpoints: Arc<CheckpointStore>,
    pub failures: Arc<FailureLog>,
    pub status: Arc<StatusBoard>,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(dir)
    }

    /// A fresh store over the files in `dir` (what a restarted runner sees).
    pub fn in_dir(dir: tempfile::TempDir) -> Self {
        let checkpoints =
            Arc::new(CheckpointStore::open(dir.path().join("checkpoints.json")).unwrap());
        let failures = Arc::new(FailureLog::new(dir.path().join("on-failure")));
        Self {
            dir,
            checkpoints,
            failures,
            status: Arc::new(StatusBoard::new()),
        }
    }

    pub fn deps(
        &self,
        stream: &Arc<FakeStream>,
        invoker: &Arc<FakeInvoker>,
    ) -> Deps<FakeStream, FakeInvoker> {
        Deps {
            source: stream.clone(),
            invoker: invoker.clone(),
            checkpoints: self.checkpoints.clone(),
            failures: self.failures.clone(),
            status: self.status.clone(),
        }
    }

    pub fn checkpoint(&self, shard: &str) -> Option<String> {
        self.checkpoints
            .get(&local_runner::kinesis::checkpoint_key("fn", STREAM, shard))
            .and_then(|c| c.sequence_number)
    }

    /// The on-failure messages written so far.
    pub fn on_failure(&self) -> Vec<Value> {
        let path = self.dir.path().join("on-failure/test-on-failure.jsonl");
        match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Polls `cond` (up to 10 s of wall time; a deadline for a hung test, not a timing claim).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}
