//! Lambda entry point: build the clients once, run a batch per invocation.

use batch_views::{Config, SqsChangeFeed};
use fleetline_aws::env::FromEnv;
use fleetline_aws::lake::S3LakeCatalog;
use fleetline_aws::s3::s3_client;
use fleetline_aws::telemetry::init_tracing;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, sdk_config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Config::from_env()?;
    let sdk = sdk_config().await;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let lake = S3LakeCatalog::new(
        s3_client(&sdk),
        settings.lake.bucket.clone(),
        &settings.lake.prefix,
    );
    let feed = settings
        .changes_queue_url
        .as_ref()
        .map(|url| SqsChangeFeed::new(aws_sdk_sqs::Client::new(&sdk), url));
    if feed.is_none() {
        tracing::warn!("LAKE_CHANGES_QUEUE_URL unset: lake changes are not detected");
    }
    let (warehouse, lake, feed, settings) = (&warehouse, &lake, feed.as_ref(), &settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        batch_views::handle(
            warehouse,
            lake,
            feed,
            settings,
            &event.payload,
            chrono::Utc::now(),
        )
        .await
    }))
    .await
}
