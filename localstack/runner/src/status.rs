//! What the runner is doing, for `GET /runner/status` (and the tests).

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One Kinesis event source mapping (function × stream).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MappingStatus {
    pub function: String,
    pub stream: String,
    /// `waiting-for-stream`, `running`, `stopped`.
    pub state: String,
    pub detail: Option<String>,
    pub updated_at: String,
}

/// One shard consumer (function × shard).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardStatus {
    pub function: String,
    pub stream: String,
    pub shard_id: String,
    /// `polling`, `invoking`, `retrying`, `shard-end`, `stopped`.
    pub state: String,
    /// The last acknowledged sequence number (persisted).
    pub checkpoint: Option<String>,
    pub records_acknowledged: u64,
    pub records_to_on_failure: u64,
    pub invocations: u64,
    pub function_errors: u64,
    pub partial_failures: u64,
    pub last_batch: Option<LastBatch>,
    /// How far behind the stream this consumer is: the age of the oldest record fetched
    /// but not yet acknowledged, else Kinesis' MillisBehindLatest of the last read.
    pub lag_ms: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LastBatch {
    pub size: usize,
    pub first_sequence_number: String,
    pub last_sequence_number: String,
    /// `ok`, `partial-failure`, `function-error`, `not-invoked`.
    pub outcome: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScheduleStatus {
    pub function: String,
    pub rule: String,
    pub expression: String,
    pub next_fire: Option<String>,
    pub last_fire: Option<String>,
    pub last_outcome: Option<String>,
    pub fires: u64,
    pub failures: u64,
}

#[derive(Default)]
pub struct StatusBoard {
    mappings: Mutex<BTreeMap<String, MappingStatus>>,
    shards: Mutex<BTreeMap<String, ShardStatus>>,
    schedules: Mutex<BTreeMap<String, ScheduleStatus>>,
    info: Mutex<serde_json::Map<String, Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn mapping(&self, key: &str, update: impl FnOnce(&mut MappingStatus)) {
        let mut map = lock(&self.mappings);
        let entry = map.entry(key.to_owned()).or_default();
        update(entry);
        entry.updated_at = now_rfc3339();
    }

    pub fn shard(&self, key: &str, update: impl FnOnce(&mut ShardStatus)) {
        let mut map = lock(&self.shards);
        let entry = map.entry(key.to_owned()).or_default();
        update(entry);
        entry.updated_at = now_rfc3339();
    }

    pub fn shard_snapshot(&self, key: &str) -> Option<ShardStatus> {
        lock(&self.shards).get(key).cloned()
    }

    pub fn schedule(&self, key: &str, update: impl FnOnce(&mut ScheduleStatus)) {
        update(lock(&self.schedules).entry(key.to_owned()).or_default());
    }

    /// Static facts shown at the top of the status (listen addresses, paths, …).
    pub fn set_info(&self, key: &str, value: Value) {
        lock(&self.info).insert(key.to_owned(), value);
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "status": "ok",
            "time": now_rfc3339(),
            "runner": Value::Object(lock(&self.info).clone()),
            "mappings": lock(&self.mappings).values().cloned().collect::<Vec<_>>(),
            "shards": lock(&self.shards).values().cloned().collect::<Vec<_>>(),
            "schedules": lock(&self.schedules).values().cloned().collect::<Vec<_>>(),
        })
    }
}
