//! How the runner invokes functions: a small trait (so the Kinesis state machine and the
//! API gateway can be tested with fakes) and its implementation over lambda-host.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use lambda_host::{FunctionRegistry, FunctionSlot, HostError, InvokeOutcome};

/// The result of one synchronous invocation, as an event source sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// The function answered; the body is its JSON response.
    Response(Bytes),
    /// The function failed: handler error, timeout, crash or init failure (what Lambda
    /// reports with `X-Amz-Function-Error: Unhandled`). Counts as an attempt.
    FunctionError {
        error_type: String,
        error_message: String,
    },
    /// The event never reached the function (binary missing, host failure). Lambda retries
    /// these without counting attempts.
    NotInvoked(String),
    /// The host is shutting down; stop without acknowledging anything.
    ShuttingDown,
}

pub trait Invoker: Send + Sync + 'static {
    fn invoke(&self, function: &str, payload: Bytes) -> impl Future<Output = Invocation> + Send;

    /// `arn:aws:lambda:<region>:000000000000:function:<name>`.
    fn function_arn(&self, function: &str) -> String;
}

/// Invokes the functions hosted in a lambda-host registry.
#[derive(Clone)]
pub struct RegistryInvoker {
    registry: Arc<FunctionRegistry>,
    region: String,
}

impl RegistryInvoker {
    pub fn new(registry: Arc<FunctionRegistry>, region: impl Into<String>) -> Self {
        Self {
            registry,
            region: region.into(),
        }
    }

    pub fn registry(&self) -> &Arc<FunctionRegistry> {
        &self.registry
    }
}

impl Invoker for RegistryInvoker {
    async fn invoke(&self, function: &str, payload: Bytes) -> Invocation {
        let hosted = match self.registry.get(function) {
            Some(FunctionSlot::Hosted(hosted)) => hosted.clone(),
            Some(FunctionSlot::Unavailable { reason }) => {
                return Invocation::NotInvoked(format!("{function} is unavailable: {reason}"));
            }
            None => return Invocation::NotInvoked(format!("{function} is not hosted")),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        match hosted.invoke_with_request_id(&request_id, payload).await {
            Ok(InvokeOutcome::Ok(body)) => Invocation::Response(body),
            Ok(InvokeOutcome::FunctionError {
                error_type,
                error_message,
            }) => Invocation::FunctionError {
                error_type,
                error_message,
            },
            Err(HostError::ShutDown { .. }) => Invocation::ShuttingDown,
            Err(err) => match err.lambda_error(&request_id) {
                Some((error_type, error_message)) => Invocation::FunctionError {
                    error_type,
                    error_message,
                },
                None => Invocation::NotInvoked(err.to_string()),
            },
        }
    }

    fn function_arn(&self, function: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{function}",
            self.region,
            lambda_host::ACCOUNT_ID
        )
    }
}
