//! Fault injection for tests: `POST|GET|DELETE /_fleetline/faults` on the emulator's port.
//!
//! A throttle makes matching Data API requests fail the way the real service does when it
//! throttles: HTTP 400, `x-amzn-ErrorType: ThrottlingException`,
//! `{"__type":"ThrottlingException","message":"Rate exceeded"}` — which the SDKs and
//! Fleetline's own retry layer (functions/aws/src/warehouse/retry.rs) classify as retryable.
//! Why here and not in the clients: end-to-end tests need the functions' real retry and
//! `batchItemFailures` paths to run, unchanged, against throttling they cannot tell from
//! AWS's.
//!
//! ```json
//! POST /_fleetline/faults
//! {"throttle": {"requests": 5, "seconds": 8.0,
//!               "operations": ["ExecuteStatement"], "databases": ["e2e_x"]}}
//! ```
//! `requests`: throttle the next N matching requests; `seconds`: throttle every matching
//! request for S seconds from now; both: until the first of the two runs out; at least one
//! is required. `operations` (Data API operation names) and `databases` (the request's
//! `Database`, or the database of the statement an `Id` names) narrow what matches; absent
//! means everything. A POST replaces the previous throttle. `DELETE` clears it; `GET`
//! shows it. Counters (`throttled`, per operation) are kept for the process lifetime so a
//! test can check afterwards that its fault really happened.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

/// The admin path (not a Data API operation: those are all `POST /`).
pub const PATH: &str = "/_fleetline/faults";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("invalid fault request: {0}")]
    Invalid(String),
}

/// The body of `POST /_fleetline/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsIn {
    throttle: Option<ThrottleIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleIn {
    requests: Option<u64>,
    seconds: Option<f64>,
    operations: Option<Vec<String>>,
    databases: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Throttle {
    remaining_requests: Option<u64>,
    until: Option<Instant>,
    operations: Option<Vec<String>>,
    databases: Option<Vec<String>>,
}

impl Throttle {
    fn expired(&self, now: Instant) -> bool {
        self.remaining_requests == Some(0) || self.until.is_some_and(|u| now >= u)
    }

    /// `database` is only asked for when the throttle filters by database (resolving a
    /// statement id costs a store lookup).
    fn matches(&self, op: &str, database: impl FnOnce() -> Option<String>) -> bool {
        let op_ok = self
            .operations
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|o| o == op));
        op_ok
            && self
                .databases
                .as_ref()
                .is_none_or(|dbs| database().is_some_and(|d| dbs.contains(&d)))
    }
}

#[derive(Debug, Default)]
struct Inner {
    throttle: Option<Throttle>,
    throttled: u64,
    by_operation: BTreeMap<String, u64>,
}

/// Fault state shared by every connection.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a throttle is armed at all (cheap check before resolving the database).
    pub fn armed(&self) -> bool {
        self.lock().throttle.is_some()
    }

    /// Decides whether this request is throttled, and counts it if so. `database` gives
    /// the request's database when known (called only if the throttle filters by it).
    pub fn should_throttle(&self, op: &str, database: impl FnOnce() -> Option<String>) -> bool {
        self.should_throttle_at(op, database, Instant::now())
    }

    fn should_throttle_at(
        &self,
        op: &str,
        database: impl FnOnce() -> Option<String>,
        now: Instant,
    ) -> bool {
        let mut inner = self.lock();
        let Some(t) = inner.throttle.as_mut() else {
            return false;
        };
        if t.expired(now) {
            inner.throttle = None;
            return false;
        }
        if !t.matches(op, database) {
            return false;
        }
        if let Some(n) = t.remaining_requests.as_mut() {
            *n -= 1;
        }
        inner.throttled += 1;
        *inner.by_operation.entry(op.to_owned()).or_insert(0) += 1;
        true
    }

    /// Applies a `POST` body; returns the new state.
    pub fn configure(&self, body: &[u8]) -> Result<Value, FaultError> {
        self.configure_at(body, Instant::now())
    }

    fn configure_at(&self, body: &[u8], now: Instant) -> Result<Value, FaultError> {
        let parsed: FaultsIn =
            serde_json::from_slice(body).map_err(|e| FaultError::Invalid(e.to_string()))?;
        let Some(t) = parsed.throttle else {
            return Err(FaultError::Invalid(
                "expected {\"throttle\": {...}}".to_owned(),
            ));
        };
        if t.requests.is_none() && t.seconds.is_none() {
            return Err(FaultError::Invalid(
                "throttle needs \"requests\" and/or \"seconds\"".to_owned(),
            ));
        }
        let until = match t.seconds {
            None => None,
            Some(s) => Some(
                now + Duration::try_from_secs_f64(s)
                    .map_err(|e| FaultError::Invalid(format!("seconds: {e}")))?,
            ),
        };
        let throttle = Throttle {
            remaining_requests: t.requests,
            until,
            operations: t.operations,
            databases: t.databases,
        };
        tracing::warn!(?throttle, "fault injection: throttling armed");
        self.lock().throttle = Some(throttle);
        Ok(self.state_at(now))
    }

    /// `DELETE`: disarms the throttle (counters are kept).
    pub fn clear(&self) -> Value {
        if self.lock().throttle.take().is_some() {
            tracing::warn!("fault injection: throttling cleared");
        }
        self.state()
    }

    /// `GET`: the armed throttle (null when none or expired) and the counters.
    pub fn state(&self) -> Value {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> Value {
        let mut inner = self.lock();
        if inner.throttle.as_ref().is_some_and(|t| t.expired(now)) {
            inner.throttle = None;
        }
        let throttle = inner.throttle.as_ref().map(|t| {
            json!({
                "remaining_requests": t.remaining_requests,
                "remaining_seconds": t.until.map(|u| u.saturating_duration_since(now).as_secs_f64()),
                "operations": t.operations,
                "databases": t.databases,
            })
        });
        json!({
            "throttle": throttle,
            "throttled": inner.throttled,
            "throttled_by_operation": inner.by_operation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_count_throttle_runs_out() {
        let f = Faults::default();
        assert!(!f.should_throttle("ExecuteStatement", || None));
        f.configure(br#"{"throttle":{"requests":2}}"#).unwrap();
        assert!(f.should_throttle("ExecuteStatement", || Some("dev".to_owned())));
        assert!(f.should_throttle("DescribeStatement", || None));
        assert!(!f.should_throttle("ExecuteStatement", || None));
        let s = f.state();
        assert_eq!(s["throttle"], Value::Null);
        assert_eq!(s["throttled"], 2);
        assert_eq!(s["throttled_by_operation"]["ExecuteStatement"], 1);
        assert_eq!(s["throttled_by_operation"]["DescribeStatement"], 1);
    }

    #[test]
    fn time_window_throttle_ends() {
        let f = Faults::default();
        let t0 = Instant::now();
        f.configure_at(br#"{"throttle":{"seconds":2.5}}"#, t0)
            .unwrap();
        assert!(f.should_throttle_at("ExecuteStatement", || None, t0 + Duration::from_secs(1)));
        assert!(f.should_throttle_at("GetStatementResult", || None, t0 + Duration::from_secs(2)));
        let s = f.state_at(t0 + Duration::from_secs(2));
        assert!(s["throttle"]["remaining_seconds"].as_f64().unwrap() > 0.4);
        assert!(!f.should_throttle_at("ExecuteStatement", || None, t0 + Duration::from_secs(3)));
        assert_eq!(f.state()["throttle"], Value::Null);
        assert_eq!(f.state()["throttled"], 2);
    }

    #[test]
    fn both_limits_end_at_the_first_one_reached() {
        let f = Faults::default();
        let t0 = Instant::now();
        f.configure_at(br#"{"throttle":{"requests":1,"seconds":60}}"#, t0)
            .unwrap();
        assert!(f.should_throttle_at("ExecuteStatement", || None, t0));
        assert!(!f.should_throttle_at("ExecuteStatement", || None, t0));
        f.configure_at(br#"{"throttle":{"requests":100,"seconds":1}}"#, t0)
            .unwrap();
        assert!(!f.should_throttle_at("ExecuteStatement", || None, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn operation_and_database_filters() {
        let f = Faults::default();
        f.configure(
            br#"{"throttle":{"seconds":60,"operations":["ExecuteStatement","BatchExecuteStatement"],"databases":["a"]}}"#,
        )
        .unwrap();
        assert!(!f.should_throttle("DescribeStatement", || Some("a".to_owned())));
        assert!(!f.should_throttle("ExecuteStatement", || Some("b".to_owned())));
        assert!(!f.should_throttle("ExecuteStatement", || None));
        assert!(f.should_throttle("ExecuteStatement", || Some("a".to_owned())));
        assert!(f.should_throttle("BatchExecuteStatement", || Some("a".to_owned())));
        assert_eq!(f.state()["throttled"], 2);
        // Without a database filter the (costly) database lookup is never made.
        f.configure(br#"{"throttle":{"requests":1}}"#).unwrap();
        assert!(f.should_throttle("DescribeStatement", || unreachable!()));
    }

    #[test]
    fn clear_disarms_but_keeps_counters() {
        let f = Faults::default();
        f.configure(br#"{"throttle":{"seconds":60}}"#).unwrap();
        assert!(f.armed());
        assert!(f.should_throttle("ExecuteStatement", || None));
        let s = f.clear();
        assert!(!f.armed());
        assert_eq!(s["throttle"], Value::Null);
        assert_eq!(s["throttled"], 1);
        assert!(!f.should_throttle("ExecuteStatement", || None));
    }

    #[test]
    fn bad_requests_are_refused_and_change_nothing() {
        let f = Faults::default();
        for body in [
            &b"not json"[..],
            br#"{}"#,
            br#"{"throttle":{}}"#,
            br#"{"throttle":{"seconds":-1}}"#,
            br#"{"throttle":{"requests":1,"bogus":1}}"#,
            br#"{"crash":{}}"#,
        ] {
            assert!(
                f.configure(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(!f.armed());
    }
}
