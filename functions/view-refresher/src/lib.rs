//! view-refresher: refreshes the speed layer's materialized views (EventBridge schedule,
//! every minute) and records the time in `serving.control.last_view_refresh_at`.
//!
//! Every configured view is attempted, in order, each with its own statement (the Data
//! API waits for completion). The control row is updated only when all of them succeeded —
//! `last_view_refresh_at` means "every speed view is at least this fresh". The invocation
//! fails when any refresh (or the control update) failed, after attempting all of them.

use std::fmt;
use std::time::{Duration, Instant};

use fleetline_aws::Warehouse;
use fleetline_aws::metrics::Emf;
use serde::Serialize;

pub const FUNCTION_NAME: &str = "view-refresher";
/// Comma-separated `schema.view` names.
pub const ENV_VIEWS: &str = "FLEETLINE_REFRESH_VIEWS";
pub const DEFAULT_VIEWS: &str = "speed.vehicle_daily_mv";
/// The statement that records a successful refresh.
pub const CONTROL_UPDATE: &str = "UPDATE serving.control SET last_view_refresh_at = GETDATE()";

/// A validated `schema.view` name: `^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`. Names end up in
/// SQL text (REFRESH takes no parameters), so nothing else is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ViewName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{ENV_VIEWS}: {0:?} is not a view name (expected schema.view in lower case: [a-z_][a-z0-9_]*)"
    )]
    BadName(String),
}

impl ViewName {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let ident = |p: &str| {
            let mut b = p.bytes();
            b.next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        };
        match s.split_once('.') {
            Some((schema, view)) if ident(schema) && ident(view) => Ok(Self(s.to_owned())),
            _ => Err(ConfigError::BadName(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `REFRESH MATERIALIZED VIEW <name>`.
    pub fn refresh_sql(&self) -> String {
        format!("REFRESH MATERIALIZED VIEW {}", self.0)
    }
}

impl fmt::Display for ViewName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The views to refresh from a comma list; unset or blank → [`DEFAULT_VIEWS`]. Blank
/// entries are skipped and repeated names refreshed once, in first-seen order.
pub fn parse_views(value: Option<&str>) -> Result<Vec<ViewName>, ConfigError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_VIEWS);
    let mut out: Vec<ViewName> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let name = ViewName::parse(part)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return parse_views(None);
    }
    Ok(out)
}

/// [`parse_views`] on `FLEETLINE_REFRESH_VIEWS`.
pub fn views_from_env() -> Result<Vec<ViewName>, ConfigError> {
    parse_views(std::env::var(ENV_VIEWS).ok().as_deref())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewResult {
    pub view: ViewName,
    pub ok: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The invocation's answer (and its log line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub views: Vec<ViewResult>,
    pub refreshed: usize,
    pub failed: usize,
    pub control_updated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_error: Option<String>,
    pub duration_ms: u64,
}

impl Summary {
    pub fn is_success(&self) -> bool {
        self.failed == 0 && self.control_updated
    }
}

#[derive(Debug, thiserror::Error)]
#[error("view refresh failed: {0}")]
pub struct RefreshError(String);

/// What Lambda reports (`errorType`, `errorMessage`) for a failed invocation.
impl From<RefreshError> for lambda_runtime::Diagnostic {
    fn from(e: RefreshError) -> Self {
        Self {
            error_type: "ViewRefreshFailed".to_owned(),
            error_message: e.to_string(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Refreshes every view, then (if all succeeded) updates the control row.
pub async fn refresh_all<W: Warehouse>(warehouse: &W, views: &[ViewName]) -> Summary {
    let started = Instant::now();
    let mut results = Vec::with_capacity(views.len());
    for view in views {
        let t0 = Instant::now();
        let r = warehouse.execute(&view.refresh_sql(), &[]).await;
        let elapsed = t0.elapsed();
        let error = r.err().map(|e| e.to_string());
        match &error {
            None => tracing::info!(view = %view, duration_ms = millis(elapsed), "view refreshed"),
            Some(e) => tracing::error!(view = %view, error = %e, "view refresh failed"),
        }
        let mut m = Emf::new(FUNCTION_NAME).dimension("View", view.as_str());
        m.duration("RefreshDurationMs", elapsed)
            .count("RefreshFailures", u64::from(error.is_some()));
        m.emit();
        results.push(ViewResult {
            view: view.clone(),
            ok: error.is_none(),
            duration_ms: millis(elapsed),
            error,
        });
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    let (control_updated, control_error) = if failed == 0 {
        match warehouse.execute(CONTROL_UPDATE, &[]).await {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        }
    } else {
        (false, None)
    };
    Summary {
        refreshed: results.len() - failed,
        failed,
        views: results,
        control_updated,
        control_error,
        duration_ms: millis(started.elapsed()),
    }
}

/// Lambda entry point. The event (EventBridge scheduled event, or `{}`) carries nothing
/// the refresh needs.
pub async fn handle<W: Warehouse>(
    warehouse: &W,
    views: &[ViewName],
    event: &serde_json::Value,
) -> Result<serde_json::Value, RefreshError> {
    if let Some(kind) = event.get("detail-type").and_then(|v| v.as_str()) {
        tracing::debug!(detail_type = kind, "scheduled invocation");
    }
    let summary = refresh_all(warehouse, views).await;
    let mut m = Emf::new(FUNCTION_NAME);
    m.count("ViewsRefreshed", summary.refreshed as u64)
        .count("ViewsFailed", summary.failed as u64)
        .duration(
            "InvocationDurationMs",
            Duration::from_millis(summary.duration_ms),
        );
    m.emit();
    let json = serde_json::to_value(&summary).unwrap_or_default();
    tracing::info!(summary = %json, success = summary.is_success(), "refresh summary");
    if summary.is_success() {
        return Ok(json);
    }
    let mut problems: Vec<String> = summary
        .views
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.view)))
        .collect();
    if let Some(e) = &summary.control_error {
        problems.push(format!("serving.control update: {e}"));
    }
    Err(RefreshError(problems.join("; ")))
}

#[cfg(test)]
mod tests;
