//! One execution environment: a Runtime API listener on an ephemeral port plus the
//! function process talking to it. A crash, timeout or init failure throws the whole
//! environment away, so a replacement never sees requests from its predecessor.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::HostError;
use crate::output::{LogSink, Stream, Tail, pump};
use crate::runtime_api::{self, Invocation, RuntimeState};
use crate::spec::{FunctionSpec, LATEST};

/// How long to wait for the output pipes to drain after the process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

static ENVIRONMENTS: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Environment {
    pub(crate) child: Child,
    pub(crate) state: Arc<RuntimeState>,
    pub(crate) queue: mpsc::UnboundedSender<Invocation>,
    pub(crate) stderr_tail: Arc<Tail>,
    server: JoinHandle<()>,
    pumps: Vec<JoinHandle<()>>,
}

impl Environment {
    pub(crate) async fn spawn(spec: &FunctionSpec, sink: &Arc<LogSink>) -> Result<Self, HostError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| HostError::Bind {
                function: spec.name.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HostError::Bind {
            function: spec.name.clone(),
            source,
        })?;
        let (state, queue) = RuntimeState::new(spec.arn());
        // Never shut down gracefully: the environment aborts its server when it goes away.
        let server = tokio::spawn(local_http::serve(
            listener,
            runtime_api::router(state.clone()),
            std::future::pending(),
        ));

        let number = ENVIRONMENTS.fetch_add(1, Ordering::Relaxed);
        let mut command = lambda_command(spec, addr, number);
        let mut child = command.spawn().map_err(|source| {
            server.abort();
            HostError::Spawn {
                function: spec.name.clone(),
                binary: spec.binary.clone(),
                source,
            }
        })?;
        let pid = child.id().unwrap_or_default();
        sink.note(&format!(
            "environment {number}: started pid {pid}, runtime API {addr}"
        ));
        tracing::info!(function = %spec.name, pid, runtime_api = %addr, "function process started");

        let stderr_tail = Arc::new(Tail::default());
        let pumps = start_pumps(&mut child, sink, &stderr_tail);
        Ok(Self {
            child,
            state,
            queue,
            stderr_tail,
            server,
            pumps,
        })
    }

    /// The exit status if the process has already exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits (briefly) until the output pipes reached EOF so the stderr tail is complete.
    pub(crate) async fn drain_output(&mut self) -> String {
        for pump in &mut self.pumps {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, pump).await;
        }
        self.pumps.clear();
        self.stderr_tail.snapshot()
    }

    /// SIGKILL and reap.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    pub(crate) async fn terminate(mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: plain kill(2) on our own, not yet reaped, child (the Child handle
            // keeps the pid from being reused until it is waited for).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
        }
        self.kill().await;
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The function process: the host's environment, Lambda's variables and `spec.env` over it.
fn lambda_command(spec: &FunctionSpec, addr: std::net::SocketAddr, number: u64) -> Command {
    let mut command = Command::new(&spec.binary);
    command
        // The child inherits the host's environment (PATH, AWS_* endpoints and
        // credentials, RUST_LOG); Lambda's variables and spec.env override it.
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", LATEST)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group())
        .env("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name(number))
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", &spec.region)
        .env("AWS_DEFAULT_REGION", &spec.region)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the environment must not leave the process behind.
        .kill_on_drop(true)
        // Own process group: a terminal Ctrl-C reaches lambda-host only, which then
        // stops the functions in order.
        .process_group(0);
    command
}

/// Copies the process's stdout and stderr to the log sink (stderr's tail kept for errors).
fn start_pumps(
    child: &mut Child,
    sink: &Arc<LogSink>,
    stderr_tail: &Arc<Tail>,
) -> Vec<JoinHandle<()>> {
    let mut pumps = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            stdout,
            Stream::Stdout,
            sink.clone(),
            None,
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(
            stderr,
            Stream::Stderr,
            sink.clone(),
            Some(stderr_tail.clone()),
        )));
    }
    pumps
}

/// `YYYY/MM/DD/[$LATEST]<32 hex>`, the shape of a Lambda log stream name.
fn log_stream_name(number: u64) -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{y:04}/{m:02}/{d:02}/[{LATEST}]{:016x}{}",
        number,
        &id[..16]
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-02-29 is day 11_016; 2024-12-31 is day 20_088.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
    }

    #[test]
    fn log_stream_name_has_lambda_shape() {
        let name = log_stream_name(7);
        let (date, rest) = name.split_at(11);
        assert_eq!(date.matches('/').count(), 3);
        assert!(rest.starts_with("[$LATEST]"));
        assert_eq!(rest.len(), "[$LATEST]".len() + 32);
    }
}
