//! What an invocation asks for: an EventBridge scheduled event (defaults), or a direct
//! payload `{"boundary": "YYYY-MM-DD", "full": true, "reprocess_days": N}` or
//! `{"catch_up": true}` (all optional).

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::IgnoredAny;
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

/// A direct payload, exactly as sent (every field optional; `null` = absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Direct {
    boundary: Option<String>,
    full: Option<bool>,
    reprocess_days: Option<u32>,
    catch_up: Option<bool>,
}

/// An EventBridge scheduled event, recognised by its `detail-type` key or by
/// `source: "aws.events"`; its content is not used (a schedule means defaults).
#[derive(Deserialize)]
struct ByDetailType {
    #[serde(rename = "detail-type")]
    _detail_type: IgnoredAny,
}

#[derive(Deserialize)]
struct BySource {
    #[serde(rename = "source")]
    _source: AwsEvents,
}

#[derive(Deserialize)]
enum AwsEvents {
    #[serde(rename = "aws.events")]
    AwsEvents,
}

/// What invoked the function. A scheduled event wins over direct fields, as EventBridge
/// adds its own keys.
#[derive(Deserialize)]
#[serde(untagged)]
enum Invocation {
    Scheduled(ByDetailType),
    ScheduledFrom(BySource),
    Direct(Direct),
}

fn accepted() -> String {
    format!(
        "accepted: boundary (YYYY-MM-DD), full (boolean), reprocess_days (0..={MAX_DAYS}), catch_up (boolean)"
    )
}

impl Request {
    /// Parses the invocation payload. Unknown keys in a direct payload are an error (a
    /// misspelt `"boundry"` must not silently run a default batch); an EventBridge event
    /// (`detail-type` / `source: aws.events`) means defaults. `null` and `{}` mean defaults.
    pub fn parse(event: &Value) -> Result<Self, RequestError> {
        match event {
            Value::Null => Ok(Self::default()),
            Value::Object(_) => match Invocation::deserialize(event) {
                Ok(Invocation::Scheduled(_) | Invocation::ScheduledFrom(_)) => Ok(Self::default()),
                Ok(Invocation::Direct(direct)) => direct.into_request(),
                // The untagged error says nothing useful; the direct form's does.
                Err(_) => Err(Direct::deserialize(event).err().map_or_else(
                    || RequestError(format!("unreadable payload; {}", accepted())),
                    |e| RequestError(format!("{e}; {}", accepted())),
                )),
            },
            other => Err(RequestError(format!(
                "expected a JSON object such as {{\"boundary\":\"2026-11-25\"}} or {{\"full\":true}}, got {other}"
            ))),
        }
    }
}

impl Direct {
    fn into_request(self) -> Result<Request, RequestError> {
        let boundary = self.boundary.as_deref().map(parse_day).transpose()?;
        if let Some(n) = self.reprocess_days.filter(|n| *n > MAX_DAYS) {
            return Err(RequestError(format!(
                "reprocess_days must be a whole number from 0 to {MAX_DAYS}, got {n}"
            )));
        }
        let request = Request {
            boundary,
            full: self.full.unwrap_or(false),
            reprocess_days: self.reprocess_days,
            catch_up: self.catch_up.unwrap_or(false),
        };
        if request.catch_up
            && (request.full || request.boundary.is_some() || request.reprocess_days.is_some())
        {
            return Err(RequestError(
                "catch_up keeps the boundary and recomputes changed days only: it takes no boundary, full or reprocess_days".into(),
            ));
        }
        Ok(request)
    }
}

/// `YYYY-MM-DD` exactly (surrounding blanks allowed).
fn parse_day(s: &str) -> Result<NaiveDate, RequestError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .filter(|_| s.trim().len() == 10)
        .ok_or_else(|| RequestError(format!("boundary {s:?} is not a date YYYY-MM-DD")))
}
