//! Settings from the environment (docs/contracts.md, "Function names / env").

use fleetline_aws::env::{Env, FromEnv};
use fleetline_aws::lake::{DEFAULT_LAKE_PREFIX, DEFAULT_WRITE_CONCURRENCY};
use fleetline_aws::s3::normalize_prefix;

pub const ENV_BUCKET: &str = "LAKE_BUCKET";
pub const ENV_PREFIX: &str = "LAKE_PREFIX";
pub const ENV_SINK: &str = "LAKE_SINK";
pub const ENV_FIREHOSE_STREAM: &str = "FIREHOSE_STREAM";
/// PutObject calls in flight per batch (S3 sink).
pub const ENV_WRITE_CONCURRENCY: &str = "FLEETLINE_LAKE_WRITE_CONCURRENCY";

pub const DEFAULT_BUCKET: &str = "fleetline-lake";

/// Which adapter writes the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// Parquet objects straight to `s3://<bucket>/<prefix>` (default).
    S3 { bucket: String, prefix: String },
    /// PutRecordBatch into this delivery stream.
    Firehose { stream: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sink: SinkKind,
    pub write_concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{ENV_SINK}={0:?}: expected s3 or firehose")]
    Sink(String),
    #[error("{ENV_SINK}=firehose needs {ENV_FIREHOSE_STREAM} (the delivery stream name)")]
    MissingStream,
    #[error("{ENV_WRITE_CONCURRENCY}={0:?}: expected a whole number from 1 to 64")]
    Concurrency(String),
}

impl Config {
    /// `s3` or `firehose` (logs, metrics property).
    pub fn sink_name(&self) -> &'static str {
        match self.sink {
            SinkKind::S3 { .. } => "s3",
            SinkKind::Firehose { .. } => "firehose",
        }
    }
}

impl FromEnv for Config {
    type Error = ConfigError;

    /// Empty values count as unset (SAM passes `""` for unset parameters).
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let sink = match env.get(ENV_SINK).map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("s3") => SinkKind::S3 {
                bucket: env.get_or(ENV_BUCKET, DEFAULT_BUCKET),
                prefix: normalize_prefix(&env.get_or(ENV_PREFIX, DEFAULT_LAKE_PREFIX)),
            },
            Some("firehose") => SinkKind::Firehose {
                stream: env
                    .get(ENV_FIREHOSE_STREAM)
                    .ok_or(ConfigError::MissingStream)?,
            },
            Some(_) => return Err(ConfigError::Sink(env.get_or(ENV_SINK, ""))),
        };
        let write_concurrency = env
            .parse_in(ENV_WRITE_CONCURRENCY, 1..=64)
            .map_err(|e| ConfigError::Concurrency(e.value))?
            .unwrap_or(DEFAULT_WRITE_CONCURRENCY);
        Ok(Self {
            sink,
            write_concurrency,
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
        let c = cfg(&[(ENV_FIREHOSE_STREAM, "")]).unwrap();
        assert_eq!(
            c.sink,
            SinkKind::S3 {
                bucket: "fleetline-lake".into(),
                prefix: "vehicle_telematics_raw/".into()
            }
        );
        assert_eq!(c.write_concurrency, 8);
        assert_eq!(c.sink_name(), "s3");
    }

    #[test]
    fn overrides_and_errors() {
        let c = cfg(&[
            (ENV_BUCKET, "b"),
            (ENV_PREFIX, "t-1/vehicle_telematics_raw"),
            (ENV_SINK, "S3"),
            (ENV_WRITE_CONCURRENCY, "3"),
        ])
        .unwrap();
        assert_eq!(
            c.sink,
            SinkKind::S3 {
                bucket: "b".into(),
                prefix: "t-1/vehicle_telematics_raw/".into()
            }
        );
        assert_eq!(c.write_concurrency, 3);
        let f = cfg(&[
            (ENV_SINK, "firehose"),
            (ENV_FIREHOSE_STREAM, "fleetline-lake"),
        ])
        .unwrap();
        assert_eq!(
            f.sink,
            SinkKind::Firehose {
                stream: "fleetline-lake".into()
            }
        );
        assert!(matches!(
            cfg(&[(ENV_SINK, "firehose"), (ENV_FIREHOSE_STREAM, " ")]),
            Err(ConfigError::MissingStream)
        ));
        assert!(matches!(
            cfg(&[(ENV_SINK, "kafka")]),
            Err(ConfigError::Sink(_))
        ));
        assert!(cfg(&[(ENV_WRITE_CONCURRENCY, "0")]).is_err());
        assert!(cfg(&[(ENV_WRITE_CONCURRENCY, "many")]).is_err());
    }
}
