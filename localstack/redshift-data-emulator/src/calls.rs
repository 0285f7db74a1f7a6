//! Data API call counters for tests: `GET /_fleetline/calls` on the emulator's port.
//!
//! Why: a Data API call is what the speed path pays for and what its quotas limit
//! (docs/design.md §8), so tests measure calls per invocation. Every request with a JSON
//! body is counted under its operation, throttled and failed ones included, in total and per
//! database (the request's `Database`, or the database of the statement its `Id` names):
//! tests share one emulator but each uses its own database, so a test reads its own counts.
//!
//! ```json
//! {"calls": {"BatchExecuteStatement": 12, "DescribeStatement": 12},
//!  "by_database": {"sl_abc": {"BatchExecuteStatement": 3, "DescribeStatement": 3}}}
//! ```
//! Counts are kept for the process lifetime.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

/// The admin path (not a Data API operation: those are all `POST /`).
pub const PATH: &str = "/_fleetline/calls";

type Counts = BTreeMap<String, u64>;

/// Call counters shared by every connection: per operation, and per database and operation.
#[derive(Debug, Default)]
pub struct Calls(Mutex<(Counts, BTreeMap<String, Counts>)>);

impl Calls {
    /// Counts one request for `op`, and for `database` when the request has one.
    pub fn record(&self, op: &str, database: Option<String>) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (calls, by_database) = &mut *counts;
        *calls.entry(op.to_owned()).or_insert(0) += 1;
        if let Some(db) = database {
            let ops = by_database.entry(db).or_default();
            *ops.entry(op.to_owned()).or_insert(0) += 1;
        }
    }

    /// `GET`: the counters.
    pub fn state(&self) -> Value {
        let counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (calls, by_database) = &*counts;
        json!({"calls": calls, "by_database": by_database})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_operation_and_database() {
        let c = Calls::default();
        c.record("BatchExecuteStatement", Some("a".into()));
        c.record("DescribeStatement", Some("a".into()));
        c.record("DescribeStatement", Some("b".into()));
        c.record("DescribeStatement", None);
        assert_eq!(
            c.state(),
            json!({
                "calls": {"BatchExecuteStatement": 1, "DescribeStatement": 3},
                "by_database": {
                    "a": {"BatchExecuteStatement": 1, "DescribeStatement": 1},
                    "b": {"DescribeStatement": 1},
                },
            })
        );
    }
}
