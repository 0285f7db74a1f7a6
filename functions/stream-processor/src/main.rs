//! Lambda entry point: build the clients once, then hand every Kinesis batch to the
//! processor.

// The runtime's service future wraps the SDK's deeply nested async state machines; the
// default limit (128) is not enough to compute their layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::kinesis::KinesisEvent;
use fleetline_aws::deadletter::{S3DeadLetterSink, s3_client};
use fleetline_aws::telemetry::init_tracing;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, sdk_config};
use lambda_runtime::{LambdaEvent, service_fn};
use stream_processor::{Config, Processor, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let sink = S3DeadLetterSink::new(s3_client(&sdk), &config.bucket, &config.rejected_prefix);
    let processor = Processor::new(
        warehouse,
        sink,
        Settings {
            threshold: config.threshold,
            dead_letter_concurrency: config.dead_letter_concurrency,
        },
    );
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            processor.handle(event.payload, chrono::Utc::now()).await
        },
    ))
    .await
}
