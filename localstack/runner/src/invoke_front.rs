//! The runner's port 9000: lambda-host's Invoke API (and its `GET /health`), reached
//! through a thin forwarder, plus `GET /runner/status` on the same port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use local_http::{BodyError, body, get_or, json_response};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::status::StatusBoard;

/// A little over the Invoke API's 6 MB limit, so lambda-host still answers 413 itself.
const MAX_FORWARD: usize = 7 * 1024 * 1024;

pub const STATUS_PATH: &str = "/runner/status";

#[derive(Clone)]
struct Front {
    inner: SocketAddr,
    status: Arc<StatusBoard>,
}

/// Serves `GET /runner/status` and forwards everything else to `inner` (lambda-host's
/// Invoke API on an internal port) until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    inner: SocketAddr,
    status: Arc<StatusBoard>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .route(STATUS_PATH, get_or(runner_status, forward))
        .fallback(forward)
        .layer(DefaultBodyLimit::max(MAX_FORWARD))
        .with_state(Front { inner, status });
    local_http::serve(listener, app, shutdown).await;
}

async fn runner_status(State(front): State<Front>) -> Response {
    json_response(StatusCode::OK, front.status.snapshot().to_string())
}

async fn forward(
    State(front): State<Front>,
    parts: Parts,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let payload = match body(payload) {
        Ok(payload) => payload,
        Err(BodyError::TooLarge) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"Type": "User", "message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}).to_string(),
            );
        }
        Err(BodyError::Read(err)) => return unreachable_inner(&err),
    };
    match send(Request::from_parts(parts, Full::new(payload)), front.inner).await {
        Ok(response) => response,
        Err(err) => unreachable_inner(&err),
    }
}

fn unreachable_inner(err: &str) -> Response {
    tracing::warn!(error = %err, "cannot reach the Invoke API");
    json_response(
        StatusCode::BAD_GATEWAY,
        json!({"Type": "Service", "message": err}).to_string(),
    )
}

async fn send(request: Request<Full<Bytes>>, inner: SocketAddr) -> Result<Response, String> {
    let stream = TcpStream::connect(inner)
        .await
        .map_err(|e| format!("connect {inner}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "forwarding connection ended with an error");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
