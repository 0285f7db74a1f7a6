//! The HTTPS PUT of a custom resource response to its pre-signed S3 `ResponseURL`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::custom_resource::Responder;

const ATTEMPTS: u32 = 4;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

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
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        Err(last)
    }
}
