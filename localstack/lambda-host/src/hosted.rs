//! A hosted function: at most one execution environment, one invocation at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use crate::environment::Environment;
use crate::error::{HostError, InvokeOutcome};
use crate::faults::{CrashFault, CrashPoint};
use crate::output::LogSink;
use crate::runtime_api::{Invocation, Reply};
use crate::spec::FunctionSpec;

/// A function binary hosted behind its own Runtime API.
///
/// Concurrency is 1 per function, like a Lambda function with reserved concurrency 1:
/// concurrent `invoke` calls queue (FIFO) behind the one running. That is what Fleetline's
/// local runner needs (one poller per shard, ordered batches) and keeps one process per
/// function.
///
/// Lifecycle of the process (the "execution environment"):
/// - started by [`HostedFunction::start`] and kept warm between invocations;
/// - timeout → SIGKILL, a fresh environment is started right away, `HostError::Timeout`;
/// - exit/abort/signal during an invocation → `HostError::Crashed`; the next invocation
///   starts a fresh process (a cold start);
/// - exit or `/runtime/init/error` before taking the event → `HostError::InitFailed`;
/// - an `invoke` future dropped mid-invocation discards the environment (SIGKILL);
/// - [`HostedFunction::shutdown`]: SIGTERM, wait, SIGKILL. Dropping the value kills it.
///
/// Tests can make the next invocations crash for real ([`HostedFunction::arm_crash`]).
pub struct HostedFunction {
    spec: FunctionSpec,
    sink: Arc<LogSink>,
    environment: Mutex<Option<Environment>>,
    crash: CrashFault,
    /// `Some(grace)` once shutdown began.
    shutdown: watch::Sender<Option<Duration>>,
}

/// What to do with the environment after an invocation.
enum After {
    Keep,
    Discard,
    Replace,
}

impl HostedFunction {
    /// Opens the log file, binds a Runtime API listener on 127.0.0.1:<ephemeral> and
    /// spawns the binary (its init runs in the background; init failures surface on the
    /// first invocation).
    pub async fn start(spec: FunctionSpec) -> Result<Self, HostError> {
        let sink = Arc::new(LogSink::new(
            &spec.name,
            spec.log_file.as_deref(),
            spec.forward_output,
        )?);
        let environment = Environment::spawn(&spec, &sink).await?;
        Ok(Self {
            spec,
            sink,
            environment: Mutex::new(Some(environment)),
            crash: CrashFault::default(),
            shutdown: watch::Sender::new(None),
        })
    }

    /// Fault injection (tests): each of the next `invocations` invocations SIGKILLs the
    /// process after it took the event, at `point`; the caller gets `HostError::Crashed`
    /// (`Runtime.ExitError`) and the next invocation a fresh process. Replaces an earlier
    /// plan; 0 disarms.
    pub fn arm_crash(&self, invocations: u64, point: CrashPoint) {
        tracing::warn!(function = %self.spec.name, invocations, ?point, "fault injection: crash armed");
        self.crash.arm(invocations, point);
    }

    /// Disarms crashes that have not happened yet.
    pub fn disarm_crash(&self) {
        self.crash.disarm();
    }

    /// `{"armed": <crashes still to come>, "after_ms": <ms or null>, "crashed": <so far>}`.
    pub fn crash_state(&self) -> serde_json::Value {
        self.crash.state()
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    pub fn arn(&self) -> String {
        self.spec.arn()
    }

    /// Invokes with a fresh request id (a UUID, as Lambda's).
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<InvokeOutcome, HostError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.invoke_with_request_id(&request_id, payload.into())
            .await
    }

    /// Invokes with a JSON event.
    pub async fn invoke_json(&self, event: &serde_json::Value) -> Result<InvokeOutcome, HostError> {
        self.invoke(Bytes::from(event.to_string())).await
    }

    /// Invokes with the caller's request id (used as Lambda-Runtime-Aws-Request-Id).
    pub async fn invoke_with_request_id(
        &self,
        request_id: &str,
        payload: Bytes,
    ) -> Result<InvokeOutcome, HostError> {
        let mut shutdown = self.shutdown.subscribe();
        let mut slot = tokio::select! {
            slot = self.environment.lock() => slot,
            _ = shutdown.wait_for(Option::is_some) => return Err(self.shut_down()),
        };
        if shutdown.borrow().is_some() {
            return Err(self.shut_down());
        }
        let mut environment = match slot.take() {
            Some(mut environment) => match environment.exited() {
                None => environment,
                Some(status) => {
                    let tail = environment.drain_output().await;
                    tracing::warn!(function = %self.spec.name, %status, stderr_tail = %tail,
                        "function process exited while idle; starting a new one");
                    self.sink
                        .note(&format!("process exited while idle ({status})"));
                    Environment::spawn(&self.spec, &self.sink).await?
                }
            },
            None => Environment::spawn(&self.spec, &self.sink).await?,
        };

        let (result, after) = self
            .run(&mut environment, request_id, payload, &mut shutdown)
            .await;
        match after {
            After::Keep => *slot = Some(environment),
            After::Discard => {
                let grace = *shutdown.borrow();
                if let Some(grace) = grace {
                    environment.terminate(grace).await;
                } else {
                    environment.kill().await;
                }
            }
            After::Replace => {
                environment.kill().await;
                match Environment::spawn(&self.spec, &self.sink).await {
                    Ok(fresh) => *slot = Some(fresh),
                    // Retried on the next invocation.
                    Err(err) => tracing::warn!(error = %err, "could not start a replacement"),
                }
            }
        }
        result
    }

    async fn run(
        &self,
        environment: &mut Environment,
        request_id: &str,
        payload: Bytes,
        shutdown: &mut watch::Receiver<Option<Duration>>,
    ) -> (Result<InvokeOutcome, HostError>, After) {
        let (reply_tx, mut reply_rx) = oneshot::channel();
        let (picked_tx, mut picked_rx) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.to_owned(),
            payload,
            timeout: self.spec.timeout,
            picked_up: picked_tx,
            reply: reply_tx,
        };
        if environment.queue.send(invocation).is_err() {
            return (
                Err(self.internal("the Runtime API queue is closed")),
                After::Discard,
            );
        }
        let mut picked_up = false;
        let mut deadline = Instant::now() + self.spec.init_timeout;
        // Fault injection: whether this invocation is to crash, when, and whether it did.
        let mut crash: Option<CrashPoint> = None;
        let mut kill_at: Option<Instant> = None;
        let mut killed = false;
        let Environment { child, state, .. } = environment;
        let outcome = loop {
            tokio::select! {
                // Order matters: a response posted just before the process exited wins.
                biased;
                reply = &mut reply_rx, if !killed => {
                    if crash.is_some() {
                        // The answer is lost with the process.
                        self.inject_crash(child, request_id, "when it posted its answer");
                        killed = true;
                        continue;
                    }
                    break match reply {
                        Ok(Reply::Response(body)) => Ok(InvokeOutcome::Ok(body)),
                        Ok(Reply::Error { error_type, error_message }) => {
                            Ok(InvokeOutcome::FunctionError { error_type, error_message })
                        }
                        Err(_) => Err(Exit::Lost),
                    }
                },
                picked = &mut picked_rx, if !picked_up => {
                    picked_up = true;
                    if picked.is_ok() {
                        let now = Instant::now();
                        deadline = now + self.spec.timeout;
                        crash = self.crash.take();
                        if let Some(CrashPoint::After(delay)) = crash {
                            kill_at = Some(now + delay);
                        }
                    }
                }
                () = sleep_until(kill_at.unwrap_or(deadline)), if kill_at.is_some() && !killed => {
                    self.inject_crash(child, request_id, "while it handled the event");
                    killed = true;
                }
                () = state.init_failed.notified() => break Err(Exit::InitError),
                status = child.wait() => break Err(match status {
                    Ok(status) => Exit::Exited(status),
                    Err(_) => Exit::Lost,
                }),
                () = sleep_until(deadline) => break Err(Exit::Deadline),
                _ = shutdown.wait_for(Option::is_some) => break Err(Exit::ShutDown),
            }
        };
        match outcome {
            Ok(outcome) => (Ok(outcome), After::Keep),
            Err(exit) => {
                self.after_exit(environment, request_id, exit, picked_up)
                    .await
            }
        }
    }

    /// The error an invocation ends with when the runtime did not answer, and what to do
    /// with the environment.
    async fn after_exit(
        &self,
        environment: &mut Environment,
        request_id: &str,
        exit: Exit,
        picked_up: bool,
    ) -> (Result<InvokeOutcome, HostError>, After) {
        let name = &self.spec.name;
        match exit {
            Exit::Deadline if picked_up => {
                tracing::warn!(function = %name, request_id, timeout = ?self.spec.timeout,
                    "invocation timed out; killing the process");
                self.sink
                    .note(&format!("request {request_id} timed out; SIGKILL"));
                let error = HostError::Timeout {
                    function: name.clone(),
                    timeout: self.spec.timeout,
                };
                (Err(error), After::Replace)
            }
            Exit::Deadline => {
                environment.kill().await;
                let stderr_tail = environment.drain_output().await;
                let error = HostError::InitFailed {
                    function: name.clone(),
                    error_type: "Runtime.InitTimeout".to_owned(),
                    error_message: format!(
                        "the runtime did not ask for an event within {:.2} seconds of starting",
                        self.spec.init_timeout.as_secs_f64()
                    ),
                    stderr_tail,
                };
                (Err(error), After::Discard)
            }
            Exit::InitError => {
                environment.kill().await;
                let stderr_tail = environment.drain_output().await;
                (
                    Err(self.init_failed(environment, None, stderr_tail)),
                    After::Discard,
                )
            }
            Exit::Exited(status) => {
                let stderr_tail = environment.drain_output().await;
                self.sink.note(&format!("process exited ({status})"));
                let error = if picked_up {
                    tracing::warn!(function = %name, request_id, %status, %stderr_tail,
                        "function process crashed during the invocation");
                    HostError::Crashed {
                        function: name.clone(),
                        status,
                        stderr_tail,
                    }
                } else {
                    tracing::warn!(function = %name, %status, %stderr_tail,
                        "function process exited during init");
                    self.init_failed(environment, Some(status), stderr_tail)
                };
                (Err(error), After::Discard)
            }
            Exit::ShutDown => (Err(self.shut_down()), After::Discard),
            Exit::Lost => (
                Err(self.internal("lost track of the function process")),
                After::Discard,
            ),
        }
    }

    /// Stops the process: SIGTERM, up to `grace` to exit, then SIGKILL. An invocation in
    /// flight ends with `HostError::ShutDown`; later invocations are refused.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.send_replace(Some(grace));
        let environment = self.environment.lock().await.take();
        if let Some(environment) = environment {
            environment.terminate(grace).await;
            self.sink.note("stopped");
        }
    }

    fn init_failed(
        &self,
        environment: &Environment,
        status: Option<std::process::ExitStatus>,
        stderr_tail: String,
    ) -> HostError {
        let reported = environment.state.init_error().unwrap_or_default();
        let error_type = reported
            .error_type
            .unwrap_or_else(|| "Runtime.ExitError".to_owned());
        let error_message = reported.error_message.unwrap_or_else(|| match status {
            Some(status) => format!("Runtime exited with error: {status}"),
            None => "Runtime reported an init error".to_owned(),
        });
        HostError::InitFailed {
            function: self.spec.name.clone(),
            error_type,
            error_message,
            stderr_tail,
        }
    }

    /// SIGKILLs the process for an armed crash; `run` then sees it exit like any crash.
    fn inject_crash(&self, child: &mut tokio::process::Child, request_id: &str, when: &str) {
        tracing::warn!(function = %self.spec.name, request_id, "fault injection: SIGKILL {when}");
        self.sink.note(&format!(
            "fault injection: SIGKILL {when} (request {request_id})"
        ));
        if let Err(err) = child.start_kill() {
            tracing::warn!(function = %self.spec.name, error = %err, "fault injection: kill failed");
        }
        self.crash.record_crash();
    }

    fn shut_down(&self) -> HostError {
        HostError::ShutDown {
            function: self.spec.name.clone(),
        }
    }

    fn internal(&self, message: &str) -> HostError {
        HostError::Internal {
            function: self.spec.name.clone(),
            message: message.to_owned(),
        }
    }
}

enum Exit {
    Deadline,
    InitError,
    Exited(std::process::ExitStatus),
    ShutDown,
    Lost,
}
