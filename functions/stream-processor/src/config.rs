//! Settings from the environment (the warehouse has its own: `WarehouseConfig::from_env`).

use fleetline_aws::deadletter::DEFAULT_REJECTED_PREFIX;
use fleetline_aws::env::{Env, FromEnv};
use fleetline_aws::s3::normalize_prefix;
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

impl FromEnv for Config {
    type Error = ConfigError;

    /// Empty values count as unset (SAM passes `""` for unset parameters).
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let dead_letter_concurrency = env
            .parse_in(ENV_DEAD_LETTER_CONCURRENCY, 1..=256)
            .map_err(|e| ConfigError::Concurrency(e.value))?
            .unwrap_or(DEFAULT_DEAD_LETTER_CONCURRENCY);
        Ok(Self {
            bucket: env.get_or(ENV_BUCKET, DEFAULT_BUCKET),
            rejected_prefix: normalize_prefix(
                &env.get_or(ENV_REJECTED_PREFIX, DEFAULT_REJECTED_PREFIX),
            ),
            threshold: RapidAccelThreshold::from_env_value(env.get(THRESHOLD_ENV).as_deref())?,
            dead_letter_concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(fleetline_aws::env::pairs(vars))
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
