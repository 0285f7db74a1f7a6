//! In-memory statement store. Finished statements are evicted after a retention period
//! (the real service keeps them 24 hours) or beyond a maximum count, oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::values::{ColumnInfo, FieldValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Submitted,
    Picked,
    Started,
    Finished,
    Failed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::Picked => "PICKED",
            Status::Started => "STARTED",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Aborted => "ABORTED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Aborted)
    }
}

#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<FieldValue>>,
    pub size: i64,
}

/// What one (sub-)statement did; shared by plain statements and batch members.
#[derive(Debug, Clone)]
pub struct Execution {
    pub sql: String,
    pub status: Status,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ns: i64,
    pub has_result_set: bool,
    pub result_rows: i64,
    pub result_size: i64,
    pub result: Option<Arc<ResultSet>>,
}

impl Execution {
    pub fn new(sql: String, now: DateTime<Utc>) -> Self {
        Self {
            sql,
            status: Status::Submitted,
            error: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            duration_ns: -1,
            has_result_set: false,
            result_rows: -1,
            result_size: -1,
            result: None,
        }
    }

    pub fn set_status(&mut self, status: Status) {
        let now = Utc::now();
        if status == Status::Started {
            self.started_at = Some(now);
        }
        if status.is_terminal() {
            let start = self.started_at.unwrap_or(self.created_at);
            self.duration_ns = (now - start).num_nanoseconds().unwrap_or(i64::MAX);
        }
        self.status = status;
        self.updated_at = now;
    }
}

#[derive(Clone)]
pub struct Statement {
    pub id: Uuid,
    pub name: Option<String>,
    pub database: String,
    pub workgroup: Option<String>,
    pub cluster: Option<String>,
    pub db_user: Option<String>,
    pub secret_arn: Option<String>,
    pub params: Vec<(String, String)>,
    pub is_batch: bool,
    pub exec: Execution,
    pub subs: Vec<Execution>,
    pub pid: Option<i32>,
    pub cancel: Option<tokio_postgres::CancelToken>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Uuid, Statement>,
    order: VecDeque<Uuid>,
    client_tokens: HashMap<String, Uuid>,
}

pub struct Store {
    inner: Mutex<Inner>,
    retention: Duration,
    max_statements: usize,
    /// Bumped on every change, so requests with `WaitTimeSeconds` wake up when a
    /// statement moves on instead of polling the map.
    changes: watch::Sender<u64>,
}

impl Store {
    pub fn new(retention: Duration, max_statements: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            retention,
            max_statements,
            changes: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn active_count(&self) -> usize {
        self.lock()
            .map
            .values()
            .filter(|s| !s.exec.status.is_terminal())
            .count()
    }

    pub fn by_client_token(&self, token: &str) -> Option<Statement> {
        let inner = self.lock();
        let id = inner.client_tokens.get(token)?;
        inner.map.get(id).cloned()
    }

    pub fn insert(&self, st: Statement, client_token: Option<String>) {
        let mut inner = self.lock();
        let now = Utc::now();
        // Evict: expired first, then the oldest finished beyond the cap.
        while let Some(oldest) = inner.order.front().copied() {
            let Some(s) = inner.map.get(&oldest) else {
                inner.order.pop_front();
                continue;
            };
            let expired = now - s.exec.created_at > self.retention;
            let over = inner.map.len() >= self.max_statements;
            if (expired || over) && s.exec.status.is_terminal() {
                inner.order.pop_front();
                inner.map.remove(&oldest);
            } else {
                break;
            }
        }
        let live: std::collections::HashSet<Uuid> = inner.map.keys().copied().collect();
        inner.client_tokens.retain(|_, id| live.contains(id));
        if let Some(t) = client_token {
            inner.client_tokens.insert(t, st.id);
        }
        inner.order.push_back(st.id);
        inner.map.insert(st.id, st);
        drop(inner);
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn get(&self, id: &Uuid) -> Option<Statement> {
        self.lock().map.get(id).cloned()
    }

    /// Applies `f` to the statement; returns what `f` returned, or None if evicted.
    pub fn update<R>(&self, id: &Uuid, f: impl FnOnce(&mut Statement) -> R) -> Option<R> {
        let r = self.lock().map.get_mut(id).map(f);
        self.changed();
        r
    }

    /// Waits until the statement (or its batch member `sub`, 1-based) is no longer
    /// SUBMITTED/PICKED/STARTED, is evicted, or `deadline` passes — what the Data API's
    /// `WaitTimeSeconds` does before answering with the then current status.
    pub async fn wait_done(&self, id: &Uuid, sub: Option<usize>, deadline: Instant) {
        // Subscribing first: a change between the check and the wait still wakes us.
        let mut changes = self.changes.subscribe();
        loop {
            let running = self.lock().map.get(id).is_some_and(|s| {
                let exec = match sub {
                    Some(n) => n
                        .checked_sub(1)
                        .and_then(|i| s.subs.get(i))
                        .unwrap_or(&s.exec),
                    None => &s.exec,
                };
                !exec.status.is_terminal()
            });
            if !running {
                return;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Time is up, or the store is gone.
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    /// All statements, newest first.
    pub fn list(&self) -> Vec<Statement> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .rev()
            .filter_map(|id| inner.map.get(id).cloned())
            .collect()
    }
}

/// Parses `uuid` or `uuid:n` (a batch member, 1-based).
pub fn parse_id(id: &str) -> Option<(Uuid, Option<usize>)> {
    match id.split_once(':') {
        Some((base, n)) => {
            let n: usize = n.parse().ok()?;
            (n >= 1).then_some(())?;
            Some((Uuid::parse_str(base).ok()?, Some(n)))
        }
        None => Some((Uuid::parse_str(id).ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(now: DateTime<Utc>, status: Status) -> Statement {
        let mut exec = Execution::new("SELECT 1".into(), now);
        exec.status = status;
        Statement {
            id: Uuid::new_v4(),
            name: None,
            database: "dev".into(),
            workgroup: Some("w".into()),
            cluster: None,
            db_user: None,
            secret_arn: None,
            params: vec![],
            is_batch: false,
            exec,
            subs: vec![],
            pid: None,
            cancel: None,
        }
    }

    #[test]
    fn evicts_expired_and_over_cap_but_never_running() {
        let store = Store::new(Duration::hours(24), 2);
        let old = Utc::now() - Duration::hours(25);
        let a = stmt(old, Status::Started);
        let b = stmt(old, Status::Finished);
        let (ida, idb) = (a.id, b.id);
        store.insert(a, None);
        store.insert(b, None);
        let c = stmt(Utc::now(), Status::Finished);
        let idc = c.id;
        store.insert(c, Some("tok".into()));
        // `a` is still running: nothing behind it is evicted, order is preserved.
        assert!(store.get(&ida).is_some());
        assert!(store.get(&idb).is_some());
        store.update(&ida, |s| s.exec.set_status(Status::Finished));
        store.insert(stmt(Utc::now(), Status::Finished), None);
        assert!(store.get(&ida).is_none());
        assert!(store.get(&idb).is_none());
        assert_eq!(store.by_client_token("tok").map(|s| s.id), Some(idc));
        assert_eq!(store.list().len(), 2);
    }

    #[tokio::test]
    async fn waits_until_the_statement_is_done_or_the_time_is_up() {
        let store = Arc::new(Store::new(Duration::hours(24), 10));
        let st = stmt(Utc::now(), Status::Started);
        let id = st.id;
        store.insert(st, None);
        let start = Instant::now();
        let short = start + std::time::Duration::from_millis(50);
        store.wait_done(&id, None, short).await;
        assert!(Instant::now() >= short, "returned before the deadline");
        let finisher = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            finisher.update(&id, |s| s.exec.set_status(Status::Finished));
        });
        let long = Instant::now() + std::time::Duration::from_secs(30);
        store.wait_done(&id, None, long).await;
        assert!(Instant::now() < long, "woke up when the statement finished");
        assert_eq!(
            store.get(&id).map(|s| s.exec.status),
            Some(Status::Finished)
        );
        // Unknown statements do not block.
        store.wait_done(&Uuid::new_v4(), None, long).await;
    }

    #[test]
    fn parses_ids() {
        let u = Uuid::new_v4();
        assert_eq!(parse_id(&u.to_string()), Some((u, None)));
        assert_eq!(parse_id(&format!("{u}:3")), Some((u, Some(3))));
        assert_eq!(parse_id(&format!("{u}:0")), None);
        assert_eq!(parse_id("nope"), None);
    }
}
