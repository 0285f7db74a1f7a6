//! What to host: one function binary and the settings Lambda would give it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Account id used in every ARN (LocalStack's default account).
pub const ACCOUNT_ID: &str = "000000000000";
/// The only version lambda-host serves.
pub const LATEST: &str = "$LATEST";

/// Lambda's defaults: 3 s timeout, 128 MB, 10 s on-demand init phase.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_MEMORY_MB: u32 = 128;
const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One function to host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Function name (also the log group suffix and the last ARN segment).
    pub name: String,
    /// The already-built binary (a `lambda_runtime` program).
    pub binary: PathBuf,
    /// Extra environment, applied last (overrides inherited and Lambda variables).
    pub env: BTreeMap<String, String>,
    /// Invocation timeout, counted from the moment the runtime picks the event up.
    pub timeout: Duration,
    /// Reported in AWS_LAMBDA_FUNCTION_MEMORY_SIZE (not enforced).
    pub memory_mb: u32,
    /// How long a fresh process may take before it asks for its first event.
    pub init_timeout: Duration,
    /// Region for the ARN and AWS_REGION/AWS_DEFAULT_REGION.
    pub region: String,
    /// Append the child's stdout and stderr to this file.
    pub log_file: Option<PathBuf>,
    /// Copy the child's output to this process's stdout/stderr with a `[name] ` prefix.
    pub forward_output: bool,
}

impl FunctionSpec {
    /// A spec with Lambda's defaults; the region comes from AWS_REGION, then
    /// AWS_DEFAULT_REGION, then `us-east-1`.
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Self {
            name: name.into(),
            binary: binary.into(),
            env: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            memory_mb: DEFAULT_MEMORY_MB,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            region,
            log_file: None,
            forward_output: true,
        }
    }

    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    pub fn with_init_timeout(mut self, init_timeout: Duration) -> Self {
        self.init_timeout = init_timeout;
        self
    }

    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    pub fn with_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    pub fn with_forward_output(mut self, forward: bool) -> Self {
        self.forward_output = forward;
        self
    }

    /// `arn:aws:lambda:<region>:000000000000:function:<name>`.
    pub fn arn(&self) -> String {
        function_arn(&self.region, &self.name)
    }

    /// `/aws/lambda/<name>`, as Lambda names the log group.
    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

pub(crate) fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_and_log_group_follow_lambda_naming() {
        let spec = FunctionSpec::new("simulator", "/bin/simulator").with_region("eu-west-1");
        assert_eq!(
            spec.arn(),
            "arn:aws:lambda:eu-west-1:000000000000:function:simulator"
        );
        assert_eq!(spec.log_group(), "/aws/lambda/simulator");
    }
}
