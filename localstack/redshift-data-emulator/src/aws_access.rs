//! What the emulator's AWS clients share (S3 for external tables, Kinesis for streaming
//! ingestion): a rustls HTTPS client, the region and the static credentials.

use aws_sdk_s3::config::{Credentials, Region, SharedHttpClient};

#[derive(Clone)]
pub struct AwsAccess {
    pub http: SharedHttpClient,
    pub region: Region,
    pub credentials: Credentials,
}

impl AwsAccess {
    pub fn new(region: &str, access_key: &str, secret_key: &str) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        Self {
            http,
            region: Region::new(region.to_string()),
            credentials: Credentials::new(access_key, secret_key, None, None, "emulator"),
        }
    }
}
