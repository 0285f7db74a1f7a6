//! Where statements go (workgroup or cluster, database, credentials) and how patiently.

use std::time::Duration;

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

/// Polling of DescribeStatement: the first wait is `initial`, each next one `× multiplier`,
/// capped at `max`; the statement is cancelled and reported as a timeout after `timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub initial: Duration,
    pub multiplier: f64,
    pub max: Duration,
    pub timeout: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        // Short statements finish in tens of milliseconds; the cap keeps long ones from
        // burning DescribeStatement quota (it is throttled like every other call).
        Self {
            initial: Duration::from_millis(10),
            multiplier: 1.5,
            max: Duration::from_millis(500),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Retries of individual Data API calls on throttling/transient errors: exponential backoff
/// `base × 2^n` capped at `max_backoff`, with full jitter (a uniform wait in `[0, that]`),
/// `max_attempts` calls in total.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

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
    pub retry: RetryPolicy,
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
            retry: RetryPolicy::default(),
        }
    }

    /// From the process environment; see [`WarehouseConfig::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any variable lookup. Empty values count as unset (SAM passes `""` for unset
    /// parameters). `FLEETLINE_REDSHIFT_CLUSTER` selects a cluster; otherwise the workgroup
    /// is `FLEETLINE_REDSHIFT_WORKGROUP` (default `fleetline`). Database defaults to `dev`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let workgroup = get(ENV_WORKGROUP);
        let db_user = get(ENV_DB_USER);
        let target = match (get(ENV_CLUSTER), workgroup) {
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
        let mut poll = PollConfig::default();
        if let Some(v) = get(ENV_TIMEOUT_SECS) {
            let secs: u64 = v
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or(ConfigError::Invalid {
                    var: ENV_TIMEOUT_SECS,
                    value: v.clone(),
                    reason: "expected a positive whole number of seconds",
                })?;
            poll.timeout = Duration::from_secs(secs);
        }
        let mut retry = RetryPolicy::default();
        if let Some(v) = get(ENV_MAX_ATTEMPTS) {
            retry.max_attempts =
                v.parse()
                    .ok()
                    .filter(|n| (1..=20).contains(n))
                    .ok_or(ConfigError::Invalid {
                        var: ENV_MAX_ATTEMPTS,
                        value: v.clone(),
                        reason: "expected a whole number from 1 to 20",
                    })?;
        }
        Ok(Self {
            target,
            database: get(ENV_DATABASE).unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            secret_arn: get(ENV_SECRET_ARN),
            poll,
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<WarehouseConfig, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        WarehouseConfig::from_lookup(|k| m.get(k).cloned())
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
