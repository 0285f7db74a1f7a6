//! One place that decides how every AWS client is built.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Loads the shared SDK configuration: region, credentials and endpoints come from the
/// standard environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_<SERVICE>` …), so the same binary talks to AWS or to the local stack.
///
/// The HTTPS client uses rustls with the `ring` provider: it builds far faster than the
/// SDK's default aws-lc provider, which matters on small CI machines, and is equally
/// supported on Lambda.
pub async fn sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}
