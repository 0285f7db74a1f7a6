//! Settings from the environment (the warehouse has its own: `WarehouseConfig::from_env`).

use fleetline_aws::deadletter::{ConcurrencyError, DeadLetterConfig};
pub use fleetline_aws::deadletter::{
    DEFAULT_BUCKET, DEFAULT_DEAD_LETTER_CONCURRENCY, ENV_BUCKET, ENV_DEAD_LETTER_CONCURRENCY,
    ENV_REJECTED_PREFIX,
};
use fleetline_aws::env::{Env, FromEnv};
use fleetline_core::{RapidAccelThreshold, THRESHOLD_ENV, ThresholdError};

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
    #[error(transparent)]
    Concurrency(#[from] ConcurrencyError),
}

impl FromEnv for Config {
    type Error = ConfigError;

    /// Empty values count as unset (SAM passes `""` for unset parameters).
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let letters = DeadLetterConfig::read(env)?;
        Ok(Self {
            bucket: letters.bucket,
            rejected_prefix: letters.rejected_prefix,
            threshold: RapidAccelThreshold::from_env_value(env.get(THRESHOLD_ENV).as_deref())?,
            dead_letter_concurrency: letters.concurrency,
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
