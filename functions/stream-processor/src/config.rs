//! Settings from the environment (the warehouse has its own: `WarehouseConfig::from_env`).

use fleetline_aws::deadletter::{DEFAULT_REJECTED_PREFIX, normalize_prefix};
use fleetline_core::{RapidAccelThreshold, THRESHOLD_ENV, ThresholdError};

pub const ENV_BUCKET: &str = "LAKE_BUCKET";
pub const ENV_REJECTED_PREFIX: &str = "REJECTED_PREFIX";
/// Dead letters written at once (S3 PutObject calls in flight).
pub const ENV_DEAD_LETTER_CONCURRENCY: &str = "FLEETLINE_DEAD_LETTER_CONCURRENCY";

pub const DEFAULT_BUCKET: &str = "fleetline-lake";
pub const DEFAULT_DEAD_LETTER_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Bucket of the dead letters (the lake bucket).
    pub bucket: String,
    /// Key prefix of the dead letters, normalised to end with `/`.
    pub rejected_prefix: String,
    pub threshold: RapidAccelThreshold,
    pub dead_letter_concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{THRESHOLD_ENV}: {0}")]
    Threshold(#[from] ThresholdError),
    #[error("{ENV_DEAD_LETTER_CONCURRENCY}={0:?}: expected a whole number from 1 to 256")]
    Concurrency(String),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Empty values count as unset (SAM passes `""` for unset parameters).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let dead_letter_concurrency = match get(ENV_DEAD_LETTER_CONCURRENCY) {
            None => DEFAULT_DEAD_LETTER_CONCURRENCY,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(ConfigError::Concurrency(v))?,
        };
        Ok(Self {
            bucket: get(ENV_BUCKET).unwrap_or_else(|| DEFAULT_BUCKET.to_owned()),
            rejected_prefix: normalize_prefix(
                &get(ENV_REJECTED_PREFIX).unwrap_or_else(|| DEFAULT_REJECTED_PREFIX.to_owned()),
            ),
            threshold: RapidAccelThreshold::from_env_value(get(THRESHOLD_ENV).as_deref())?,
            dead_letter_concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_lookup(|k| m.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.bucket, "fleetline-lake");
        assert_eq!(c.rejected_prefix, "rejected/");
        assert_eq!(c.threshold, RapidAccelThreshold::DEFAULT);
        assert_eq!(c.dead_letter_concurrency, 16);
    }

    #[test]
    fn overrides_and_errors() {
        let c = cfg(&[
            (ENV_BUCKET, "b"),
            (ENV_REJECTED_PREFIX, "rejected/t1"),
            (THRESHOLD_ENV, "12.5"),
            (ENV_DEAD_LETTER_CONCURRENCY, "4"),
        ])
        .unwrap();
        assert_eq!(c.bucket, "b");
        assert_eq!(c.rejected_prefix, "rejected/t1/");
        assert_eq!(c.threshold.as_e4(), 125_000);
        assert_eq!(c.dead_letter_concurrency, 4);
        assert!(cfg(&[(THRESHOLD_ENV, "fast")]).is_err());
        assert!(cfg(&[(ENV_DEAD_LETTER_CONCURRENCY, "0")]).is_err());
    }
}
