//! The runner's port 9000: lambda-host's Invoke API (and its `GET /health`), reached
//! through a thin forwarder, plus `GET /runner/status` on the same port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::http::{Body, json as json_response, read_body};
use crate::status::StatusBoard;

/// A little over the Invoke API's 6 MB limit, so lambda-host still answers 413 itself.
const MAX_FORWARD: usize = 7 * 1024 * 1024;

pub const STATUS_PATH: &str = "/runner/status";

/// Serves `GET /runner/status` and forwards everything else to `inner` (lambda-host's
/// Invoke API on an internal port) until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    inner: SocketAddr,
    status: Arc<StatusBoard>,
    shutdown: impl Future<Output = ()>,
) {
    crate::http::serve(
        listener,
        move |req, _peer| {
            let status = status.clone();
            async move {
                if req.method() == Method::GET && req.uri().path() == STATUS_PATH {
                    return json_response(StatusCode::OK, status.snapshot().to_string());
                }
                match forward(req, inner).await {
                    Ok(response) => response,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot reach the Invoke API");
                        json_response(
                            StatusCode::BAD_GATEWAY,
                            json!({"Type": "Service", "message": err}).to_string(),
                        )
                    }
                }
            }
        },
        shutdown,
    )
    .await;
}

async fn forward(req: Request<Incoming>, inner: SocketAddr) -> Result<Response<Body>, String> {
    let (parts, body) = req.into_parts();
    let Some(body) = read_body(body, MAX_FORWARD).await? else {
        return Ok(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"Type": "User", "message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}).to_string(),
        ));
    };
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
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(bytes)))
}
