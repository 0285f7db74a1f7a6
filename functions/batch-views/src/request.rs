//! What an invocation asks for: an EventBridge scheduled event (defaults), or a direct
//! payload `{"boundary": "YYYY-MM-DD", "full": true, "reprocess_days": N}` or
//! `{"catch_up": true}` (all optional).

use chrono::NaiveDate;
use serde_json::Value;

use crate::config::MAX_DAYS;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Explicit boundary; `None` → today (UTC).
    pub boundary: Option<NaiveDate>,
    /// Recompute every day from the earliest lake day (and re-register every partition).
    pub full: bool,
    /// Overrides `FLEETLINE_BATCH_REPROCESS_DAYS` for this run.
    pub reprocess_days: Option<u32>,
    /// Recompute only the days whose lake content changed; the boundary stays.
    pub catch_up: bool,
}

/// A payload that cannot be honoured (the caller's mistake: answered, not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

const KEYS: [&str; 4] = ["boundary", "full", "reprocess_days", "catch_up"];

fn is_scheduled_event(obj: &serde_json::Map<String, Value>) -> bool {
    obj.contains_key("detail-type")
        || obj.get("source").and_then(Value::as_str) == Some("aws.events")
}

impl Request {
    /// Parses the invocation payload. Unknown keys in a direct payload are an error (a
    /// misspelt `"boundry"` must not silently run a default batch); an EventBridge event
    /// (`detail-type` / `source: aws.events`) means defaults. `null` and `{}` mean defaults.
    pub fn parse(event: &Value) -> Result<Self, RequestError> {
        let obj = match event {
            Value::Null => return Ok(Self::default()),
            Value::Object(obj) => obj,
            other => {
                return Err(RequestError(format!(
                    "expected a JSON object such as {{\"boundary\":\"2026-11-25\"}} or {{\"full\":true}}, got {other}"
                )));
            }
        };
        if is_scheduled_event(obj) {
            return Ok(Self::default());
        }
        if let Some(unknown) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(RequestError(format!(
                "unknown field {unknown:?}; accepted: boundary (YYYY-MM-DD), full (boolean), reprocess_days (0..={MAX_DAYS}), catch_up (boolean)"
            )));
        }
        let boundary = match obj.get("boundary") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .ok()
                    .filter(|_| s.trim().len() == 10)
                    .ok_or_else(|| {
                        RequestError(format!("boundary {s:?} is not a date YYYY-MM-DD"))
                    })?,
            ),
            Some(other) => {
                return Err(RequestError(format!(
                    "boundary must be a string YYYY-MM-DD, got {other}"
                )));
            }
        };
        let flag = |name: &str| match obj.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(RequestError(format!(
                "{name} must be true or false, got {other}"
            ))),
        };
        let full = flag("full")?;
        let catch_up = flag("catch_up")?;
        let reprocess_days = match obj.get("reprocess_days") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n <= MAX_DAYS)
                    .ok_or_else(|| {
                        RequestError(format!(
                            "reprocess_days must be a whole number from 0 to {MAX_DAYS}, got {v}"
                        ))
                    })?,
            ),
        };
        if catch_up && (full || boundary.is_some() || reprocess_days.is_some()) {
            return Err(RequestError(
                "catch_up keeps the boundary and recomputes changed days only: it takes no boundary, full or reprocess_days".into(),
            ));
        }
        Ok(Self {
            boundary,
            full,
            reprocess_days,
            catch_up,
        })
    }
}
