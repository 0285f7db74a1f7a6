//! Settings from the environment (docs/contracts.md, "Function names / env").

use fleetline_aws::lake::{DEFAULT_LAKE_PREFIX, DEFAULT_WRITE_CONCURRENCY};

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
        let sink = match get(ENV_SINK).map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("s3") => SinkKind::S3 {
                bucket: get(ENV_BUCKET).unwrap_or_else(|| DEFAULT_BUCKET.to_owned()),
                prefix: fleetline_aws::deadletter::normalize_prefix(
                    &get(ENV_PREFIX).unwrap_or_else(|| DEFAULT_LAKE_PREFIX.to_owned()),
                ),
            },
            Some("firehose") => SinkKind::Firehose {
                stream: get(ENV_FIREHOSE_STREAM).ok_or(ConfigError::MissingStream)?,
            },
            Some(_) => return Err(ConfigError::Sink(get(ENV_SINK).unwrap_or_default())),
        };
        let write_concurrency = match get(ENV_WRITE_CONCURRENCY) {
            None => DEFAULT_WRITE_CONCURRENCY,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or(ConfigError::Concurrency(v))?,
        };
        Ok(Self {
            sink,
            write_concurrency,
        })
    }

    /// `s3` or `firehose` (logs, metrics property).
    pub fn sink_name(&self) -> &'static str {
        match self.sink {
            SinkKind::S3 { .. } => "s3",
            SinkKind::Firehose { .. } => "firehose",
        }
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
