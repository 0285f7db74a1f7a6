//! The HTTPS PUT of a custom resource response to its pre-signed S3 `ResponseURL`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::custom_resource::Responder;

const ATTEMPTS: u64 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(7);

/// The longest [`HttpsResponder::put`] takes: every attempt timing out, with the pauses of
/// 1 s, 2 s, … between attempts. The Lambda handler keeps more than this back from its
/// deadline, so that a slow response URL cannot turn into a Lambda timeout (and with it an
/// unanswered request and a retried migration).
pub const MAX_DELIVERY_TIME: Duration =
    Duration::from_secs(ATTEMPTS * ATTEMPT_TIMEOUT.as_secs() + ATTEMPTS * (ATTEMPTS - 1) / 2);

/// PUTs with rustls (ring, the system's root certificates), http:// allowed for local
/// listeners. Build once per process.
pub struct HttpsResponder {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpsResponder {
    pub fn new() -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    async fn put_once(&self, url: &str, body: &[u8]) -> Result<(), String> {
        // The pre-signed URL is signed without a content type, so the request carries an
        // empty one (as AWS's own cfn-response module does); any other value would not
        // match the signature.
        let request = http::Request::put(url)
            .header(http::header::CONTENT_TYPE, "")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("bad ResponseURL: {e}"))?;
        let response = tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {ATTEMPT_TIMEOUT:?}"))?
            .map_err(|e| format!("PUT failed: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("PUT answered HTTP {status}"))
        }
    }
}

impl Responder for HttpsResponder {
    async fn put(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.put_once(url, &body).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "custom resource response not delivered");
                    last = e;
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response URL that accepts the connection and never answers: the PUT gives up
    /// after its attempts, within [`MAX_DELIVERY_TIME`] (paused clock: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn an_unanswering_url_is_given_up_within_the_delivery_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/response", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let responder = HttpsResponder::new().unwrap();
        let started = tokio::time::Instant::now();
        let err = responder.put(&url, b"{}".to_vec()).await.unwrap_err();
        assert!(err.contains("no answer"), "{err}");
        assert!(
            started.elapsed() <= MAX_DELIVERY_TIME,
            "{:?}",
            started.elapsed()
        );
    }
}
