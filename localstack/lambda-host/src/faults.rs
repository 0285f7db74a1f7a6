//! Crash injection for tests (test infrastructure, never part of a deployment).
//!
//! Armed per function through `POST /_fleetline/faults` on the Invoke API (see
//! `invoke_api.rs`) or [`HostedFunction::arm_crash`](crate::HostedFunction::arm_crash):
//! the next `invocations` invocations of that function SIGKILL its process after the
//! runtime has taken the event — a real crash, reported as `Runtime.ExitError` and followed
//! by a fresh process, exactly like an execution environment dying mid-invocation. Why the
//! host and not the function: the functions stay unchanged, and the crash is real (the
//! process is gone, whatever it had not finished is lost).
//!
//! When: `after_ms` after the event was taken, or — without `after_ms` — at the moment the
//! function posts its answer (everything it did has happened; the answer is lost), whichever
//! the test wants to probe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

/// When an armed crash kills the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// When the function posts its response or error (its side effects are done).
    AtResponse,
    /// This long after the runtime took the event (or at the response, if sooner).
    After(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    remaining: u64,
    point: CrashPoint,
}

/// The crash plan of one hosted function and how many crashes it caused.
#[derive(Debug, Default)]
pub(crate) struct CrashFault {
    plan: Mutex<Option<Plan>>,
    crashed: AtomicU64,
}

impl CrashFault {
    pub(crate) fn arm(&self, invocations: u64, point: CrashPoint) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) =
            (invocations > 0).then_some(Plan {
                remaining: invocations,
                point,
            });
    }

    pub(crate) fn disarm(&self) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Takes one crash from the plan for the invocation whose event was just taken.
    pub(crate) fn take(&self) -> Option<CrashPoint> {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let p = plan.as_mut()?;
        p.remaining -= 1;
        let point = p.point;
        if p.remaining == 0 {
            *plan = None;
        }
        Some(point)
    }

    pub(crate) fn record_crash(&self) {
        self.crashed.fetch_add(1, Ordering::Relaxed);
    }

    /// `{"armed": n, "after_ms": ms|null, "crashed": n}`.
    pub(crate) fn state(&self) -> Value {
        let plan = *self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let (armed, after_ms) = match plan {
            None => (0, None),
            Some(Plan { remaining, point }) => (
                remaining,
                match point {
                    CrashPoint::AtResponse => None,
                    CrashPoint::After(d) => Some(d.as_millis() as u64),
                },
            ),
        };
        json!({
            "armed": armed,
            "after_ms": after_ms,
            "crashed": self.crashed.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_spent_one_invocation_at_a_time() {
        let f = CrashFault::default();
        assert_eq!(f.take(), None);
        f.arm(2, CrashPoint::After(Duration::from_millis(30)));
        assert_eq!(f.state()["armed"], 2);
        assert_eq!(f.state()["after_ms"], 30);
        assert_eq!(f.take(), Some(CrashPoint::After(Duration::from_millis(30))));
        assert_eq!(f.take(), Some(CrashPoint::After(Duration::from_millis(30))));
        assert_eq!(f.take(), None);
        assert_eq!(f.state()["armed"], 0);
        f.record_crash();
        assert_eq!(f.state()["crashed"], 1);
    }

    #[test]
    fn disarm_and_zero_invocations_clear_the_plan() {
        let f = CrashFault::default();
        f.arm(1, CrashPoint::AtResponse);
        assert_eq!(f.state()["after_ms"], Value::Null);
        f.disarm();
        assert_eq!(f.take(), None);
        f.arm(0, CrashPoint::AtResponse);
        assert_eq!(f.take(), None);
    }
}
