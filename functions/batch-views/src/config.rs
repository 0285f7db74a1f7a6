//! Settings from the environment (the warehouse has its own: `WarehouseConfig::from_env`).

use fleetline_aws::env::{Env, FromEnv};
use fleetline_aws::s3::normalize_prefix;
use fleetline_core::{RapidAccelThreshold, THRESHOLD_ENV, ThresholdError};

pub const ENV_BUCKET: &str = "LAKE_BUCKET";
pub const ENV_PREFIX: &str = "LAKE_PREFIX";
/// Days before the previous boundary also recomputed by every boundary-moving run (an
/// extra safety margin; late readings are found by change detection without it).
pub const ENV_REPROCESS_DAYS: &str = "FLEETLINE_BATCH_REPROCESS_DAYS";
/// URL of the SQS queue receiving the lake bucket's ObjectCreated notifications
/// (change detection); empty = none (only boundary moves and speed rows mark days).
pub const ENV_CHANGES_QUEUE: &str = "LAKE_CHANGES_QUEUE_URL";
/// Speed rows are pruned for days before `boundary − margin`.
pub const ENV_PRUNE_MARGIN_DAYS: &str = "FLEETLINE_SPEED_PRUNE_MARGIN_DAYS";
/// A day the boundary moves over whose lake content is behind the speed layer holds the
/// boundary, unless it is older than `new boundary − this` (a lake that never catches up
/// must not freeze the boundary); 0 disables holding (docs/design.md §3).
pub const ENV_MAX_HOLD_DAYS: &str = "FLEETLINE_BATCH_MAX_HOLD_DAYS";

pub const DEFAULT_BUCKET: &str = "fleetline-lake";
pub const DEFAULT_PREFIX: &str = "vehicle_telematics_raw/";
pub const DEFAULT_REPROCESS_DAYS: u32 = 0;
pub const DEFAULT_PRUNE_MARGIN_DAYS: u32 = 2;
pub const DEFAULT_MAX_HOLD_DAYS: u32 = 2;
/// Upper bound for day counts from configuration or payloads (ten years): beyond it is a
/// typo, and a full rebuild is `{"full": true}`.
pub const MAX_DAYS: u32 = 3660;

/// Where the lake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeLayout {
    pub bucket: String,
    /// Key prefix of the lake table, empty or ending with `/`.
    pub prefix: String,
}

impl LakeLayout {
    pub fn new(bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
        }
    }

    /// `s3://bucket/<key_prefix>` for a key prefix such as
    /// `vehicle_telematics_raw/year=2025/month=03/day=14/`.
    pub fn location(&self, key_prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, key_prefix)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub lake: LakeLayout,
    pub reprocess_days: u32,
    pub prune_margin_days: u32,
    /// [`ENV_MAX_HOLD_DAYS`].
    pub max_hold_days: u32,
    pub threshold: RapidAccelThreshold,
    /// The lake change queue ([`ENV_CHANGES_QUEUE`]).
    pub changes_queue_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lake: LakeLayout::new(DEFAULT_BUCKET, DEFAULT_PREFIX),
            reprocess_days: DEFAULT_REPROCESS_DAYS,
            prune_margin_days: DEFAULT_PRUNE_MARGIN_DAYS,
            max_hold_days: DEFAULT_MAX_HOLD_DAYS,
            threshold: RapidAccelThreshold::DEFAULT,
            changes_queue_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{THRESHOLD_ENV}: {0}")]
    Threshold(#[from] ThresholdError),
    #[error("{var}={value:?}: expected a whole number of days from 0 to {MAX_DAYS}")]
    Days { var: &'static str, value: String },
}

impl FromEnv for Config {
    type Error = ConfigError;

    /// Empty values count as unset (SAM passes `""` for unset parameters).
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let days = |var: &'static str, default: u32| {
            env.parse_in(var, 0..=MAX_DAYS)
                .map(|n| n.unwrap_or(default))
                .map_err(|e| ConfigError::Days {
                    var,
                    value: e.value,
                })
        };
        Ok(Self {
            lake: LakeLayout::new(
                env.get_or(ENV_BUCKET, DEFAULT_BUCKET),
                &env.get_or(ENV_PREFIX, DEFAULT_PREFIX),
            ),
            reprocess_days: days(ENV_REPROCESS_DAYS, DEFAULT_REPROCESS_DAYS)?,
            prune_margin_days: days(ENV_PRUNE_MARGIN_DAYS, DEFAULT_PRUNE_MARGIN_DAYS)?,
            max_hold_days: days(ENV_MAX_HOLD_DAYS, DEFAULT_MAX_HOLD_DAYS)?,
            threshold: RapidAccelThreshold::from_env_value(env.get(THRESHOLD_ENV).as_deref())?,
            changes_queue_url: env.get(ENV_CHANGES_QUEUE),
        })
    }
}
