//! view-refresher: refreshes the speed layer's materialized views (EventBridge schedule,
//! every minute) and records the time in `serving.control.last_view_refresh_at`.
//!
//! Every configured view is attempted, in order, each with its own statement (the Data
//! API waits for completion). The control row is updated only when all of them succeeded —
//! `last_view_refresh_at` means "every speed view is at least this fresh". The invocation
//! fails when any refresh (or the control update) failed, after attempting all of them.
//!
//! In the streaming-ingestion speed path (`SPEED_PATH=streaming-ingestion`) a run first
//! reads the stream and loads it into `speed.telemetry` ([`stream`]); the views are refreshed
//! either way, and the control row is updated only when the load succeeded too.
//!
//! The logic ([`Refresher`]) is written against the `SpeedViews` and `StreamLoader` ports of
//! `fleetline_core::ports::speed` and the `DeadLetterSink` port; the Redshift adapters, with
//! the SQL, are [`redshift`] and [`redshift_stream`].

use std::time::{Duration, Instant};

use fleetline_aws::metrics::{Emf, millis};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use fleetline_core::ports::speed::{
    SpeedViews, StoreError, StreamLoad, StreamLoader, StreamReject,
};
use serde::Serialize;

pub mod config;
pub mod redshift;
pub mod redshift_stream;
pub mod stream;

pub use config::{
    Config, ConfigError, DEFAULT_VIEWS, ENV_SPEED_PATH, ENV_VIEWS, SpeedPath, StreamConfig,
    ViewName, parse_views,
};
pub use redshift::RedshiftViews;
pub use redshift_stream::RedshiftStreamLoader;
pub use stream::{StreamLoadSummary, StreamMode};

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
    /// The stream step (streaming-ingestion path only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_load: Option<StreamLoadSummary>,
    pub duration_ms: u64,
}

impl Summary {
    pub fn is_success(&self) -> bool {
        self.failed == 0
            && self.control_updated
            && self.stream_load.as_ref().is_none_or(|s| s.error.is_none())
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

/// The stream ports of a refresher without a stream step (the lambda speed path): never
/// called.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStream;

impl StreamLoader for NoStream {
    async fn read_stream(&self) -> Result<(), StoreError> {
        Err(StoreError::Permanent(
            "no stream in the lambda speed path".into(),
        ))
    }
    async fn load(&self, _: RapidAccelThreshold) -> Result<StreamLoad, StoreError> {
        Err(StoreError::Permanent(
            "no stream in the lambda speed path".into(),
        ))
    }
    async fn pending_rejects(&self, _: usize) -> Result<Vec<StreamReject>, StoreError> {
        Ok(Vec::new())
    }
    async fn mark_dead_lettered(&self, _: &[StreamReject]) -> Result<(), StoreError> {
        Ok(())
    }
}

impl DeadLetterSink for NoStream {
    async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        Err(DeadLetterError {
            target: letter.shard_id.clone(),
            message: "no dead-letter sink in the lambda speed path".into(),
        })
    }
}

/// The function's handler: refreshes the configured views through a [`SpeedViews`] port,
/// after the stream step when there is one.
pub struct Refresher<V, L = NoStream, D = NoStream> {
    views: V,
    names: Vec<ViewName>,
    stream: Option<StreamMode<L, D>>,
}

impl<V: SpeedViews> Refresher<V> {
    /// The lambda speed path: views only.
    pub fn new(views: V, names: Vec<ViewName>) -> Self {
        Self {
            views,
            names,
            stream: None,
        }
    }
}

impl<V: SpeedViews, L: StreamLoader, D: DeadLetterSink> Refresher<V, L, D> {
    /// With a stream step (`Some`: the streaming-ingestion speed path).
    pub fn with_stream(views: V, names: Vec<ViewName>, stream: Option<StreamMode<L, D>>) -> Self {
        Self {
            views,
            names,
            stream,
        }
    }

    /// Runs the stream step (if any), refreshes every view, then (if all succeeded)
    /// records the refresh.
    pub async fn refresh_all(&self) -> Summary {
        let started = Instant::now();
        let stream_load = match &self.stream {
            Some(mode) => Some(mode.run().await),
            None => None,
        };
        let stream_ok = stream_load.as_ref().is_none_or(|s| s.error.is_none());
        let mut results = Vec::with_capacity(self.names.len());
        for view in &self.names {
            results.push(self.refresh_one(view).await);
        }
        let failed = results.iter().filter(|r| !r.ok).count();
        let (control_updated, control_error) = if failed == 0 && stream_ok {
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
            stream_load,
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
        if let Some(e) = summary.stream_load.as_ref().and_then(|s| s.error.as_ref()) {
            problems.insert(0, format!("stream load: {e}"));
        }
        if let Some(e) = &summary.control_error {
            problems.push(format!("serving.control update: {e}"));
        }
        Err(RefreshError(problems.join("; ")))
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
