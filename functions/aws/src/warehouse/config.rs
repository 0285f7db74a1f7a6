//! Where statements go (workgroup or cluster, database, credentials) and how patiently.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::env::{Env, FromEnv};

/// Redshift Serverless workgroup, or provisioned cluster (optionally as a database user
/// with temporary credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Workgroup(String),
    Cluster {
        identifier: String,
        db_user: Option<String>,
    },
}

/// Waiting for a statement: the submit and DescribeStatement ask the Data API to wait
/// (`WaitTimeSeconds`, the whole seconds left of `timeout`, at most 30); the statement is
/// cancelled and reported as a timeout after `timeout`, counted from the submit. When an
/// answer comes back early while the statement still runs, the next DescribeStatement
/// follows a backoff: first `initial`, each next one `× multiplier`, capped at `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub initial: Duration,
    pub multiplier: f64,
    pub max: Duration,
    pub timeout: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        // The backoff only paces answers that came back before their wait; the cap keeps
        // them from burning DescribeStatement quota (throttled like every other call).
        Self {
            initial: Duration::from_millis(10),
            multiplier: 1.5,
            max: Duration::from_millis(500),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Retries of individual Data API calls on throttling/transient errors (the default of
/// [`WarehouseConfig::retry`]).
pub const DATA_API_RETRY: Backoff =
    Backoff::new(6, Duration::from_millis(200), Duration::from_secs(10));

#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseConfig {
    pub target: Target,
    pub database: String,
    /// Secrets Manager secret with the database credentials. Without one (and without a
    /// cluster `db_user`) the Data API signs in with IAM temporary credentials: on a workgroup
    /// as `IAMR:<role name>`, with the database roles of the role's `RedshiftDbRoles` tag
    /// (template.yaml: query-api and stream-processor).
    pub secret_arn: Option<String>,
    pub poll: PollConfig,
    pub retry: Backoff,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "set only one of FLEETLINE_REDSHIFT_WORKGROUP ({workgroup:?}) and FLEETLINE_REDSHIFT_CLUSTER ({cluster:?})"
    )]
    BothTargets { workgroup: String, cluster: String },
    #[error(
        "FLEETLINE_REDSHIFT_DB_USER only applies to a provisioned cluster; set FLEETLINE_REDSHIFT_CLUSTER or unset it"
    )]
    DbUserWithoutCluster,
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: &'static str,
    },
}

pub const ENV_WORKGROUP: &str = "FLEETLINE_REDSHIFT_WORKGROUP";
pub const ENV_CLUSTER: &str = "FLEETLINE_REDSHIFT_CLUSTER";
pub const ENV_DATABASE: &str = "FLEETLINE_REDSHIFT_DATABASE";
pub const ENV_SECRET_ARN: &str = "FLEETLINE_REDSHIFT_SECRET_ARN";
pub const ENV_DB_USER: &str = "FLEETLINE_REDSHIFT_DB_USER";
/// Overall wait for one statement, in seconds (default 120). Keep it below the function's
/// own timeout (API Gateway allows 29 s).
pub const ENV_TIMEOUT_SECS: &str = "FLEETLINE_REDSHIFT_TIMEOUT_SECS";
/// Attempts per Data API call on throttling/transient errors (default 6).
pub const ENV_MAX_ATTEMPTS: &str = "FLEETLINE_REDSHIFT_MAX_ATTEMPTS";

pub const DEFAULT_WORKGROUP: &str = "fleetline";
pub const DEFAULT_DATABASE: &str = "dev";

impl WarehouseConfig {
    /// Workgroup target with default polling and retries.
    pub fn workgroup(workgroup: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            target: Target::Workgroup(workgroup.into()),
            database: database.into(),
            secret_arn: None,
            poll: PollConfig::default(),
            retry: DATA_API_RETRY,
        }
    }
}

impl FromEnv for WarehouseConfig {
    type Error = ConfigError;

    /// From any variable lookup. Empty values count as unset (SAM passes `""` for unset
    /// parameters). `FLEETLINE_REDSHIFT_CLUSTER` selects a cluster; otherwise the workgroup
    /// is `FLEETLINE_REDSHIFT_WORKGROUP` (default `fleetline`). Database defaults to `dev`.
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let workgroup = env.get(ENV_WORKGROUP);
        let db_user = env.get(ENV_DB_USER);
        let target = match (env.get(ENV_CLUSTER), workgroup) {
            (Some(cluster), Some(workgroup)) => {
                return Err(ConfigError::BothTargets { workgroup, cluster });
            }
            (Some(identifier), None) => Target::Cluster {
                identifier,
                db_user,
            },
            (None, workgroup) => {
                if db_user.is_some() {
                    return Err(ConfigError::DbUserWithoutCluster);
                }
                Target::Workgroup(workgroup.unwrap_or_else(|| DEFAULT_WORKGROUP.to_owned()))
            }
        };
        let invalid = |var, reason| {
            move |e: crate::env::InvalidValue| ConfigError::Invalid {
                var,
                value: e.value,
                reason,
            }
        };
        let mut poll = PollConfig::default();
        if let Some(secs) = env.parse_in(ENV_TIMEOUT_SECS, 1..).map_err(invalid(
            ENV_TIMEOUT_SECS,
            "expected a positive whole number of seconds",
        ))? {
            poll.timeout = Duration::from_secs(secs);
        }
        let mut retry = DATA_API_RETRY;
        if let Some(n) = env.parse_in(ENV_MAX_ATTEMPTS, 1..=20).map_err(invalid(
            ENV_MAX_ATTEMPTS,
            "expected a whole number from 1 to 20",
        ))? {
            retry.max_attempts = n;
        }
        Ok(Self {
            target,
            database: env.get_or(ENV_DATABASE, DEFAULT_DATABASE),
            secret_arn: env.get(ENV_SECRET_ARN),
            poll,
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<WarehouseConfig, ConfigError> {
        WarehouseConfig::from_lookup(crate::env::pairs(vars))
    }

    #[test]
    fn defaults_are_the_local_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.target, Target::Workgroup("fleetline".into()));
        assert_eq!(c.database, "dev");
        assert_eq!(c.secret_arn, None);
        assert_eq!(c.poll.timeout, Duration::from_secs(120));
        assert_eq!(c.retry.max_attempts, 6);
    }

    #[test]
    fn cluster_with_user_and_secret() {
        let c = cfg(&[
            (ENV_CLUSTER, "prod-cluster"),
            (ENV_DB_USER, "loader"),
            (ENV_DATABASE, "fleet"),
            (
                ENV_SECRET_ARN,
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            ),
            (ENV_WORKGROUP, ""),
            (ENV_TIMEOUT_SECS, "25"),
            (ENV_MAX_ATTEMPTS, "3"),
        ])
        .unwrap();
        assert_eq!(
            c.target,
            Target::Cluster {
                identifier: "prod-cluster".into(),
                db_user: Some("loader".into())
            }
        );
        assert_eq!(c.database, "fleet");
        assert!(c.secret_arn.is_some());
        assert_eq!(c.poll.timeout, Duration::from_secs(25));
        assert_eq!(c.retry.max_attempts, 3);
    }

    #[test]
    fn workgroup_without_secret_is_the_iam_path() {
        // What template.yaml gives query-api on a serverless target.
        let c = cfg(&[
            (ENV_WORKGROUP, "fleetline"),
            (ENV_CLUSTER, ""),
            (ENV_DATABASE, "dev"),
            (ENV_SECRET_ARN, ""),
            (ENV_DB_USER, ""),
            (ENV_TIMEOUT_SECS, "25"),
        ])
        .unwrap();
        assert_eq!(c.target, Target::Workgroup("fleetline".into()));
        assert_eq!(c.secret_arn, None);
        assert_eq!(c.poll.timeout, Duration::from_secs(25));
    }

    #[test]
    fn conflicting_or_bad_settings_are_clear_errors() {
        let e = cfg(&[(ENV_CLUSTER, "c"), (ENV_WORKGROUP, "w")]).unwrap_err();
        assert!(e.to_string().contains("only one of"), "{e}");
        let e = cfg(&[(ENV_DB_USER, "u")]).unwrap_err();
        assert_eq!(e, ConfigError::DbUserWithoutCluster);
        let e = cfg(&[(ENV_TIMEOUT_SECS, "soon")]).unwrap_err();
        assert!(e.to_string().contains(ENV_TIMEOUT_SECS), "{e}");
        assert!(cfg(&[(ENV_MAX_ATTEMPTS, "0")]).is_err());
    }
}
