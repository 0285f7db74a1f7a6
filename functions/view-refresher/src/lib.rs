//! view-refresher: refreshes the speed layer's materialized views (EventBridge schedule,
//! every minute) and records the time in `serving.control.last_view_refresh_at`.
//!
//! Every configured view is attempted, in order, each with its own statement (the Data
//! API waits for completion). The control row is updated only when all of them succeeded —
//! `last_view_refresh_at` means "every speed view is at least this fresh". The invocation
//! fails when any refresh (or the control update) failed, after attempting all of them.
//!
//! The logic ([`Refresher`]) is written against the `SpeedViews` port of
//! `fleetline_core::ports::speed`; its Redshift adapter, with the SQL, is [`redshift`].

use std::time::{Duration, Instant};

use fleetline_aws::metrics::{Emf, millis};
use fleetline_core::ports::speed::SpeedViews;
use serde::Serialize;

pub mod config;
pub mod redshift;

pub use config::{Config, ConfigError, DEFAULT_VIEWS, ENV_VIEWS, ViewName, parse_views};
pub use redshift::RedshiftViews;

pub const FUNCTION_NAME: &str = "view-refresher";

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

/// The function's handler: refreshes the configured views through a [`SpeedViews`] port.
pub struct Refresher<V> {
    views: V,
    names: Vec<ViewName>,
}

impl<V: SpeedViews> Refresher<V> {
    pub fn new(views: V, names: Vec<ViewName>) -> Self {
        Self { views, names }
    }

    /// Refreshes every view, then (if all succeeded) records the refresh.
    pub async fn refresh_all(&self) -> Summary {
        let started = Instant::now();
        let mut results = Vec::with_capacity(self.names.len());
        for view in &self.names {
            results.push(self.refresh_one(view).await);
        }
        let failed = results.iter().filter(|r| !r.ok).count();
        let (control_updated, control_error) = if failed == 0 {
            match self.views.record_refresh().await {
                Ok(()) => (true, None),
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

    /// One view: refresh, log, per-view metrics.
    async fn refresh_one(&self, view: &ViewName) -> ViewResult {
        let t0 = Instant::now();
        let r = self.views.refresh(view.as_str()).await;
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
        ViewResult {
            view: view.clone(),
            ok: error.is_none(),
            duration_ms: millis(elapsed),
            error,
        }
    }

    /// Lambda entry point. The event (EventBridge scheduled event, or `{}`) carries nothing
    /// the refresh needs.
    pub async fn handle(
        &self,
        event: &serde_json::Value,
    ) -> Result<serde_json::Value, RefreshError> {
        if let Some(kind) = event.get("detail-type").and_then(|v| v.as_str()) {
            tracing::debug!(detail_type = kind, "scheduled invocation");
        }
        let summary = self.refresh_all().await;
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
}

#[cfg(test)]
mod tests;
