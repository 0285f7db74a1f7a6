//! Lambda entry point: build the clients once, refresh on every invocation (after the stream
//! load in the streaming-ingestion speed path).

use fleetline_aws::deadletter::S3DeadLetterSink;
use fleetline_aws::env::FromEnv;
use fleetline_aws::s3::s3_client;
use fleetline_aws::telemetry::start;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use view_refresher::{Config, RedshiftStreamLoader, RedshiftViews, Refresher, StreamMode};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = start(Config::from_env).await?;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let stream = config.stream.map(|c| StreamMode {
        loader: RedshiftStreamLoader::new(warehouse.clone()),
        sink: S3DeadLetterSink::new(s3_client(&sdk), &c.bucket, &c.rejected_prefix),
        threshold: c.threshold,
        dead_letters_per_run: c.dead_letters_per_run,
        dead_letter_concurrency: c.dead_letter_concurrency,
    });
    let refresher = Refresher::with_stream(RedshiftViews::new(warehouse), config.views, stream);
    let refresher = &refresher;
    // Boxed: the SDK's nested futures would otherwise exceed the type-layout depth limit.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        Box::pin(async move { refresher.handle(&event.payload).await })
    }))
    .await
}
