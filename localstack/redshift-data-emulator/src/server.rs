//! HTTP front end: `POST /` with `X-Amz-Target: RedshiftData.<Operation>` (AWS JSON
//! 1.1; the SigV4 signature is not verified), any `GET` answers 200 for health checks,
//! `/_fleetline/faults` (GET/POST/DELETE) arms test faults (see `faults.rs`) and
//! `GET /_fleetline/calls` shows the call counters (see `calls.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use local_http::{BodyError, body, get_or};
use serde_json::{Value, json};

use crate::calls::{self, Calls};
use crate::executor::Engine;
use crate::faults::{self, Faults};
use crate::ops::{self, Limits};
use crate::protocol::ApiError;
use crate::store::parse_id;

/// 40 statements of 100 KB each, with room for JSON escaping.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Fault requests are small.
const MAX_FAULT_BODY: usize = 64 * 1024;

pub struct App {
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub faults: Faults,
    pub calls: Calls,
}

type AppState = State<Arc<App>>;

/// `/_fleetline/faults` (GET, POST, DELETE); everything else is the Data API (`GET` is a
/// health check, any other method an operation).
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            faults::PATH,
            get_or(fault_state, fault_method_not_allowed)
                .post(arm_fault)
                .delete(clear_faults)
                .layer(DefaultBodyLimit::max(MAX_FAULT_BODY)),
        )
        .route(calls::PATH, get_or(call_counts, calls_method_not_allowed))
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

fn respond(status: u16, body: &Value, error_type: Option<&str>) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
    if let Some(t) = error_type {
        b = b.header("x-amzn-errortype", t);
    }
    b.body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn handle(
    State(app): AppState,
    method: Method,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    if method == Method::GET {
        return respond(
            200,
            &json!({"status": "ok", "service": "redshift-data-emulator"}),
            None,
        );
    }
    let started = Instant::now();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let op = target
        .strip_prefix("RedshiftData.")
        .unwrap_or(&target)
        .to_string();
    let result = match body(payload) {
        Err(e) => Err(ApiError::serialization(format!(
            "cannot read request body: {}",
            body_error_text(&e)
        ))),
        Ok(bytes) => operation(&app, &op, &bytes).await,
    };
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(v) => {
            let id = v.get("Id").and_then(Value::as_str).unwrap_or_default();
            tracing::info!(op = %op, id, ms, "ok");
            respond(200, &v, None)
        }
        Err(e) => {
            tracing::info!(op = %op, code = e.code, message = %e.message, ms, "error");
            respond(e.status(), &e.body(), Some(e.code))
        }
    }
}

/// One operation on a request body (empty = `{}`), throttled when a fault says so.
async fn operation(app: &App, op: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let parsed: Result<Value, _> = if bytes.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(bytes)
    };
    if let Ok(v) = &parsed {
        app.calls.record(op, request_database(&app.engine, v));
    }
    match parsed {
        Err(e) => Err(ApiError::serialization(format!("invalid JSON: {e}"))),
        Ok(v)
            if app.faults.armed()
                && app
                    .faults
                    .should_throttle(op, || request_database(&app.engine, &v)) =>
        {
            Err(ApiError::throttling())
        }
        Ok(v) => ops::call(&app.engine, &app.limits, op, &v).await,
    }
}

/// The text hyper's body limit used to give ("length limit exceeded").
fn body_error_text(error: &BodyError) -> String {
    match error {
        BodyError::TooLarge => "length limit exceeded".to_owned(),
        BodyError::Read(err) => err.clone(),
    }
}

/// `GET` shows the fault state.
async fn fault_state(State(app): AppState) -> Response {
    respond(200, &app.faults.state(), None)
}

/// `DELETE` clears the faults.
async fn clear_faults(State(app): AppState) -> Response {
    respond(200, &app.faults.clear(), None)
}

/// `POST` arms a fault.
async fn arm_fault(State(app): AppState, payload: Result<Bytes, BytesRejection>) -> Response {
    let body = match body(payload) {
        Ok(b) => b,
        Err(e) => {
            return respond(
                400,
                &json!({"error": format!("cannot read body: {}", body_error_text(&e))}),
                None,
            );
        }
    };
    match app.faults.configure(&body) {
        Ok(state) => respond(200, &state, None),
        Err(e) => respond(400, &json!({"error": e.to_string()}), None),
    }
}

/// `GET /_fleetline/calls`: the call counters.
async fn call_counts(State(app): AppState) -> Response {
    respond(200, &app.calls.state(), None)
}

async fn calls_method_not_allowed() -> Response {
    respond(405, &json!({"error": "use GET on /_fleetline/calls"}), None)
}

async fn fault_method_not_allowed() -> Response {
    respond(
        405,
        &json!({"error": "use GET, POST or DELETE on /_fleetline/faults"}),
        None,
    )
}

/// The database a request is about: its `Database`, or that of the statement its `Id`
/// names (DescribeStatement, GetStatementResult, CancelStatement).
fn request_database(engine: &Engine, body: &Value) -> Option<String> {
    if let Some(db) = body.get("Database").and_then(Value::as_str) {
        return Some(db.to_owned());
    }
    let (id, _) = parse_id(body.get("Id").and_then(Value::as_str)?)?;
    engine.store.get(&id).map(|s| s.database)
}
