//! Hosts already-built Lambda function binaries (lambda_runtime 1.x programs) locally,
//! since LocalStack cannot run Lambda here (no Docker).
//!
//! - [`HostedFunction`]: one function = one process speaking the Lambda Runtime API
//!   (2018-06-01) to a server of ours on 127.0.0.1:<ephemeral>; `invoke` delivers an event
//!   and returns the function's answer. Concurrency 1 per function; timeouts, crashes and
//!   init failures replace the process like Lambda replaces an execution environment.
//! - [`invoke_api::serve`]: the Lambda Invoke API over a [`FunctionRegistry`], what the
//!   `lambda-host` binary serves on http://127.0.0.1:9000 (docs/design.md §7).

pub mod envfile;
mod environment;
mod error;
mod faults;
mod hosted;
pub mod invoke_api;
mod output;
mod registry;
mod runtime_api;
mod spec;

pub use envfile::EnvFile;
pub use error::{HostError, InvokeOutcome};
pub use faults::CrashPoint;
pub use hosted::HostedFunction;
pub use registry::{FunctionRegistry, FunctionSlot};
pub use spec::{ACCOUNT_ID, FunctionSpec, LATEST};
