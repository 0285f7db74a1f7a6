//! Server side of the Lambda Runtime API (2018-06-01) for one execution environment.
//!
//! Routes (as documented by AWS and as lambda_runtime 1.5 calls them):
//! - `GET  /2018-06-01/runtime/invocation/next` — long poll; body = event, headers
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id`.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` — 202 `{"status":"OK"}`.
//! - `POST /2018-06-01/runtime/invocation/{id}/error` — body `{errorMessage, errorType}`,
//!   header `Lambda-Runtime-Function-Error-Type` (lambda_runtime sends `unhandled`).
//! - `POST /2018-06-01/runtime/init/error` — the runtime could not initialise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use local_http::{BodyError, body, get_or, json_response, with_headers};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, oneshot};

/// Lambda's synchronous response limit (6 MB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Error bodies are small; anything bigger is cut off.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// One event waiting to be handed to the runtime.
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) timeout: Duration,
    /// Fired when the runtime has taken the event (ends the init phase).
    pub(crate) picked_up: oneshot::Sender<()>,
    pub(crate) reply: oneshot::Sender<Reply>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Response(Bytes),
    Error {
        error_type: String,
        error_message: String,
    },
}

/// `{errorMessage, errorType}` as runtimes post it (both optional in practice).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    pub(crate) error_type: Option<String>,
    pub(crate) error_message: Option<String>,
}

/// State shared by the Runtime API handlers of one execution environment.
pub(crate) struct RuntimeState {
    arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    init_error: Mutex<Option<ErrorBody>>,
    pub(crate) init_failed: Notify,
}

impl RuntimeState {
    pub(crate) fn new(arn: String) -> (Arc<Self>, mpsc::UnboundedSender<Invocation>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Self {
            arn,
            queue: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            init_failed: Notify::new(),
        });
        (state, tx)
    }

    pub(crate) fn init_error(&self) -> Option<ErrorBody> {
        self.init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn take_in_flight(&self, request_id: &str) -> Option<oneshot::Sender<Reply>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(request_id)
    }
}

/// The Runtime API routes of one execution environment; anything else is 404 `NotFound`.
pub(crate) fn router(state: Arc<RuntimeState>) -> Router {
    let errors = DefaultBodyLimit::max(MAX_ERROR_BYTES);
    Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            get_or(next_invocation, not_found),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            any(not_found)
                .post(invocation_response)
                .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES)),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            any(not_found).post(invocation_error).layer(errors),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            any(not_found).post(init_error).layer(errors),
        )
        .fallback(not_found)
        .with_state(state)
}

async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> Response {
    // Long poll: the runtime parks here between invocations. Only one /next is served at
    // a time (concurrency 1), a second caller waits for the lock.
    let invocation = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(invocation) = invocation else {
        return runtime_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Unavailable",
            "the execution environment is shutting down",
        );
    };
    let deadline = SystemTime::now() + invocation.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    state
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(invocation.request_id.clone(), invocation.reply);
    let _ = invocation.picked_up.send(());
    tracing::debug!(request_id = %invocation.request_id, "event delivered to the runtime");
    with_headers(
        StatusCode::OK,
        invocation.payload,
        &[
            ("lambda-runtime-aws-request-id", invocation.request_id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", state.arn.clone()),
            ("lambda-runtime-trace-id", trace_id()),
        ],
    )
}

async fn invocation_response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(reply) = state.take_in_flight(&id) else {
        return unknown_request_id(&id);
    };
    match body(payload) {
        Ok(body) => {
            let _ = reply.send(Reply::Response(body));
            accepted()
        }
        Err(BodyError::TooLarge) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            );
            let _ = reply.send(Reply::Error {
                error_type: "Function.ResponseSizeTooLarge".to_owned(),
                error_message: message.clone(),
            });
            runtime_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &message,
            )
        }
        Err(BodyError::Read(err)) => {
            let _ = reply.send(Reply::Error {
                error_type: "Runtime.InvalidResponse".to_owned(),
                error_message: format!("could not read the response body: {err}"),
            });
            runtime_error(StatusCode::BAD_REQUEST, "InvalidRequest", &err)
        }
    }
}

async fn invocation_error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(reply) = state.take_in_flight(&id) else {
        return unknown_request_id(&id);
    };
    let (error_type, error_message) = read_error(&headers, payload);
    let _ = reply.send(Reply::Error {
        error_type,
        error_message,
    });
    accepted()
}

async fn init_error(
    State(state): State<Arc<RuntimeState>>,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let (error_type, error_message) = read_error(&headers, payload);
    tracing::warn!(%error_type, %error_message, "runtime reported an init error");
    *state
        .init_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(ErrorBody {
        error_type: Some(error_type),
        error_message: Some(error_message),
    });
    state.init_failed.notify_one();
    accepted()
}

/// errorType from the body, else from `Lambda-Runtime-Function-Error-Type`, else
/// `Runtime.Unknown`; a body that is not the documented JSON becomes the message.
fn read_error(headers: &HeaderMap, payload: Result<Bytes, BytesRejection>) -> (String, String) {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match body(payload) {
        Ok(body) => body,
        Err(BodyError::TooLarge) => Bytes::from_static(b"(error body too large)"),
        Err(BodyError::Read(err)) => Bytes::from(err),
    };
    let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_else(|_| ErrorBody {
        error_type: None,
        error_message: Some(String::from_utf8_lossy(&body).into_owned()),
    });
    let error_type = parsed
        .error_type
        .filter(|t| !t.is_empty())
        .or(header_type)
        .unwrap_or_else(|| "Runtime.Unknown".to_owned());
    (error_type, parsed.error_message.unwrap_or_default())
}

fn accepted() -> Response {
    json_response(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn unknown_request_id(id: &str) -> Response {
    runtime_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {id} (not in flight)"),
    )
}

async fn not_found(uri: Uri) -> Response {
    runtime_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("no Runtime API route {}", uri.path()),
    )
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    json_response(status, body.to_string())
}

/// An X-Ray style trace header: `Root=1-<8 hex epoch secs>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &parent[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_has_the_xray_shape() {
        let id = trace_id();
        let (root, rest) = id.split_once(';').unwrap();
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(rest.starts_with("Parent=") && rest.ends_with(";Sampled=0"));
    }
}
