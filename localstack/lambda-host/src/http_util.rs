//! The small HTTP/1.1 server both APIs run on (hyper 1, one task per connection).

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub(crate) type Body = Full<Bytes>;

/// Accepts connections until `shutdown` completes. Connection tasks live in a JoinSet
/// owned by this future, so dropping or aborting it closes every connection too.
pub(crate) async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let handler = handler.clone();
                            async move { Ok::<_, Infallible>(handler(req).await) }
                        });
                        if let Err(err) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // e.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The body, or `None` when it is larger than `limit` bytes.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Option<Bytes>, String> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(Some(collected.to_bytes())),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Ok(None)
        }
        Err(err) => Err(err.to_string()),
    }
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_headers(status, body, &[])
}

pub(crate) fn with_headers(
    status: StatusCode,
    body: impl Into<Bytes>,
    headers: &[(&'static str, String)],
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        // Values are ours (ids, ARNs, error types); one that is not a valid header is
        // dropped rather than failing the response.
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    response
}
