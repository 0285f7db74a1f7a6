//! HTTP front end: `POST /` with `X-Amz-Target: RedshiftData.<Operation>` (AWS JSON
//! 1.1; the SigV4 signature is not verified), any `GET` answers 200 for health checks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::executor::Engine;
use crate::ops::{self, Limits};
use crate::protocol::ApiError;

/// 40 statements of 100 KB each, with room for JSON escaping.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct App {
    pub engine: Arc<Engine>,
    pub limits: Limits,
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
