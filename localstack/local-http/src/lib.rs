//! The HTTP plumbing of the local servers (lambda-host's Invoke and Runtime APIs, the local
//! runner's API Gateway and Invoke front, the Redshift Data API emulator): one way to serve
//! an axum [`Router`] until a shutdown signal, one shutdown signal, JSON responses and the
//! body-limit outcome every handler maps to its own error answer.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{MethodRouter, any};
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long in-flight requests may finish after the shutdown signal before the server
/// stops waiting for them.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish for up to [`DRAIN`]. Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (signalled, on_signal) = oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled.send(());
    });
    tokio::select! {
        result = server.into_future() => {
            if let Err(err) = result {
                tracing::warn!(error = %err, "the server stopped with an error");
            }
        }
        () = drain_deadline(on_signal) => {
            tracing::warn!("connections still open {} s after shutdown; closing", DRAIN.as_secs());
        }
    }
}

/// Completes [`DRAIN`] after the shutdown signal fired, never if it did not.
async fn drain_deadline(on_signal: oneshot::Receiver<()>) {
    match on_signal.await {
        Ok(()) => tokio::time::sleep(DRAIN).await,
        Err(_) => std::future::pending().await,
    }
}

/// `GET` answered by `get`, every other method (`HEAD` too) by `other`, without axum's
/// `Allow` header: each server answers a wrong method in its own protocol. Add more
/// methods with `.post(…)`, `.delete(…)`.
pub fn get_or<H, T, F, U, S>(get: H, other: F) -> MethodRouter<S>
where
    H: Handler<T, S>,
    F: Handler<U, S>,
    T: 'static,
    U: 'static,
    S: Clone + Send + Sync + 'static,
{
    any(other.clone()).get(get).head(other)
}

/// Ctrl-C or SIGTERM, whichever comes first (only Ctrl-C if SIGTERM cannot be watched).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM; only Ctrl-C stops this process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A request body read under a `DefaultBodyLimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the route's limit.
    TooLarge,
    /// The connection failed while the body was read.
    Read(String),
}

/// The body a `Result<Bytes, BytesRejection>` extractor got, with the limit told apart
/// from transport errors (each server answers them in its own protocol).
pub fn body(extracted: Result<Bytes, BytesRejection>) -> Result<Bytes, BodyError> {
    match extracted {
        Ok(bytes) => Ok(bytes),
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            Err(BodyError::TooLarge)
        }
        Err(err) => Err(BodyError::Read(err.body_text())),
    }
}

/// `status` with an `application/json` body.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response {
    with_headers(status, body, &[])
}

/// [`json_response`] plus `headers`; a value that is not a valid header is dropped (the
/// values are the server's own ids, ARNs and error types).
pub fn with_headers(
    status: StatusCode,
    body: impl Into<Bytes>,
    headers: &[(&'static str, String)],
) -> Response {
    let mut response = Response::new(Body::from(body.into()));
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    response
}
