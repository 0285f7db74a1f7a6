//! Lambda entry point: build the clients once, then hand every Kinesis batch to the
//! processor.

use fleetline_aws::deadletter::S3DeadLetterSink;
use fleetline_aws::env::FromEnv;
use fleetline_aws::s3::s3_client;
use fleetline_aws::telemetry::start;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, kinesis};
use stream_processor::{Config, Processor, RedshiftSpeedStore, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = start(Config::from_env).await?;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let store = RedshiftSpeedStore::new(warehouse, config.threshold);
    let sink = S3DeadLetterSink::new(s3_client(&sdk), &config.bucket, &config.rejected_prefix);
    let settings = Settings {
        dead_letter_concurrency: config.dead_letter_concurrency,
    };
    kinesis::run(&Processor::new(store, sink, settings)).await
}
