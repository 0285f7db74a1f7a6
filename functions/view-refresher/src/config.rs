//! Settings from the environment: which views to refresh, and the speed path
//! (`SPEED_PATH`) with the stream load's settings in the streaming-ingestion path.

use std::fmt;

use fleetline_aws::deadletter::{ConcurrencyError, DeadLetterConfig};
pub use fleetline_aws::deadletter::{
    DEFAULT_BUCKET, DEFAULT_DEAD_LETTER_CONCURRENCY, ENV_BUCKET, ENV_DEAD_LETTER_CONCURRENCY,
    ENV_REJECTED_PREFIX,
};
use fleetline_aws::env::{Env, FromEnv};
use fleetline_core::{RapidAccelThreshold, THRESHOLD_ENV, ThresholdError};
use serde::Serialize;

/// Comma-separated `schema.view` names.
pub const ENV_VIEWS: &str = "FLEETLINE_REFRESH_VIEWS";
pub const DEFAULT_VIEWS: &str = "speed.vehicle_daily_mv";
/// `lambda` (default) or `streaming-ingestion` (template.yaml `SpeedPath`).
pub const ENV_SPEED_PATH: &str = "SPEED_PATH";
/// Rejected stream records dead-lettered per run (the rest wait for the next run).
pub const ENV_DEAD_LETTERS_PER_RUN: &str = "FLEETLINE_STREAM_LOAD_DEAD_LETTERS";
pub const DEFAULT_DEAD_LETTERS_PER_RUN: usize = 500;
/// Bounds of `FLEETLINE_STREAM_LOAD_DEAD_LETTERS`.
const DEAD_LETTERS_PER_RUN: std::ops::RangeInclusive<usize> = 1..=10_000;
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
    #[error("{ENV_SPEED_PATH}={0:?}: expected lambda or streaming-ingestion")]
    SpeedPath(String),
    #[error("{THRESHOLD_ENV}: {0}")]
    Threshold(#[from] ThresholdError),
    #[error(
        "{ENV_DEAD_LETTERS_PER_RUN}={0:?}: expected a whole number from {min} to {max}",
        min = DEAD_LETTERS_PER_RUN.start(),
        max = DEAD_LETTERS_PER_RUN.end()
    )]
    DeadLettersPerRun(String),
    #[error(transparent)]
    Concurrency(#[from] ConcurrencyError),
}

/// Which speed path feeds `speed.telemetry` (docs/design.md, "The streaming-ingestion speed
/// path").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpeedPath {
    /// stream-processor stores the readings; view-refresher only refreshes views.
    #[default]
    Lambda,
    /// Redshift reads the stream; view-refresher loads what it read, then refreshes views.
    StreamingIngestion,
}

impl SpeedPath {
    /// Unset or blank → [`SpeedPath::Lambda`].
    pub fn parse(value: Option<&str>) -> Result<Self, ConfigError> {
        match value.map(str::trim).unwrap_or("") {
            "" | "lambda" => Ok(Self::Lambda),
            "streaming-ingestion" => Ok(Self::StreamingIngestion),
            other => Err(ConfigError::SpeedPath(other.to_owned())),
        }
    }
}

/// The stream load's settings (streaming-ingestion path only).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Decides each loaded reading's `rapid_acceleration` flag.
    pub threshold: RapidAccelThreshold,
    /// Bucket of the dead letters.
    pub bucket: String,
    /// Key prefix of the dead letters, normalised to end with `/`.
    pub rejected_prefix: String,
    /// Rejected records dead-lettered per run.
    pub dead_letters_per_run: usize,
    /// Dead letters written at once.
    pub dead_letter_concurrency: usize,
}

impl StreamConfig {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        // Checked in this order: the first bad setting is the one reported.
        let threshold = RapidAccelThreshold::from_env_value(env.get(THRESHOLD_ENV).as_deref())?;
        let dead_letters_per_run = env
            .parse_in(ENV_DEAD_LETTERS_PER_RUN, DEAD_LETTERS_PER_RUN)
            .map_err(|e| ConfigError::DeadLettersPerRun(e.value))?
            .unwrap_or(DEFAULT_DEAD_LETTERS_PER_RUN);
        let letters = DeadLetterConfig::read(env)?;
        Ok(Self {
            threshold,
            bucket: letters.bucket,
            rejected_prefix: letters.rejected_prefix,
            dead_letters_per_run,
            dead_letter_concurrency: letters.concurrency,
        })
    }
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

/// The function's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The views to refresh, in order.
    pub views: Vec<ViewName>,
    /// The stream load's settings: `Some` exactly in the streaming-ingestion path.
    pub stream: Option<StreamConfig>,
}

impl FromEnv for Config {
    type Error = ConfigError;

    /// [`parse_views`] on `FLEETLINE_REFRESH_VIEWS`; the stream settings are read (and
    /// checked) only when `SPEED_PATH` is streaming-ingestion, so the lambda path keeps
    /// needing nothing else.
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let stream = match SpeedPath::parse(env.get(ENV_SPEED_PATH).as_deref())? {
            SpeedPath::Lambda => None,
            SpeedPath::StreamingIngestion => Some(StreamConfig::read(env)?),
        };
        Ok(Self {
            views: parse_views(env.get(ENV_VIEWS).as_deref())?,
            stream,
        })
    }
}
