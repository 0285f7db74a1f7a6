//! HTTP front end: `POST /` with `X-Amz-Target: RedshiftData.<Operation>` (AWS JSON
//! 1.1; the SigV4 signature is not verified), any `GET` answers 200 for health checks,
//! and `/_fleetline/faults` (GET/POST/DELETE) arms test faults (see `faults.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::executor::Engine;
use crate::faults::{self, Faults};
use crate::ops::{self, Limits};
use crate::protocol::ApiError;
use crate::store::parse_id;

/// 40 statements of 100 KB each, with room for JSON escaping.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct App {
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub faults: Faults,
}

fn respond(status: u16, body: &Value, error_type: Option<&str>) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
    if let Some(t) = error_type {
        b = b.header("x-amzn-errortype", t);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == faults::PATH {
        return Ok(fault_admin(&app, req).await);
    }
    if req.method() == Method::GET {
        return Ok(respond(
            200,
            &json!({"status": "ok", "service": "redshift-data-emulator"}),
            None,
        ));
    }
    let started = Instant::now();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let op = target
        .strip_prefix("RedshiftData.")
        .unwrap_or(&target)
        .to_string();
    let result = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Err(e) => Err(ApiError::serialization(format!(
            "cannot read request body: {e}"
        ))),
        Ok(body) => {
            let bytes = body.to_bytes();
            let parsed: Result<Value, _> = if bytes.is_empty() {
                Ok(json!({}))
            } else {
                serde_json::from_slice(&bytes)
            };
            match parsed {
                Err(e) => Err(ApiError::serialization(format!("invalid JSON: {e}"))),
                Ok(v)
                    if app.faults.armed()
                        && app
                            .faults
                            .should_throttle(&op, || request_database(&app.engine, &v)) =>
                {
                    Err(ApiError::throttling())
                }
                Ok(v) => dispatch(&app, &op, &v).await,
            }
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    Ok(match result {
        Ok(v) => {
            let id = v.get("Id").and_then(Value::as_str).unwrap_or_default();
            tracing::info!(op = %op, id, ms, "ok");
            respond(200, &v, None)
        }
        Err(e) => {
            tracing::info!(op = %op, code = e.code, message = %e.message, ms, "error");
            respond(e.status(), &e.body(), Some(e.code))
        }
    })
}

/// `GET` shows the fault state, `POST` arms a fault, `DELETE` clears it (always JSON).
async fn fault_admin(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match *req.method() {
        Method::GET => respond(200, &app.faults.state(), None),
        Method::DELETE => respond(200, &app.faults.clear(), None),
        Method::POST => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return respond(
                        400,
                        &json!({"error": format!("cannot read body: {e}")}),
                        None,
                    );
                }
            };
            match app.faults.configure(&body) {
                Ok(state) => respond(200, &state, None),
                Err(e) => respond(400, &json!({"error": e.to_string()}), None),
            }
        }
        _ => respond(
            405,
            &json!({"error": "use GET, POST or DELETE on /_fleetline/faults"}),
            None,
        ),
    }
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

async fn dispatch(app: &App, op: &str, body: &Value) -> Result<Value, ApiError> {
    let engine = &app.engine;
    match op {
        "ExecuteStatement" => ops::execute_statement(engine, &app.limits, body),
        "BatchExecuteStatement" => ops::batch_execute_statement(engine, &app.limits, body),
        "DescribeStatement" => ops::describe_statement(engine, body),
        "GetStatementResult" => ops::get_statement_result(engine, body),
        "CancelStatement" => ops::cancel_statement(engine, body).await,
        "ListStatements" => ops::list_statements(engine, body),
        other => Err(ApiError::unknown_operation(other)),
    }
}
