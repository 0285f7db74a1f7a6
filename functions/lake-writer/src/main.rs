//! Lambda entry point: read the configuration, build the lake sink once, then hand every
//! Kinesis batch to the processor.

use aws_lambda_events::event::kinesis::KinesisEvent;
use fleetline_aws::deadletter::s3_client;
use fleetline_aws::lake::{AnyLakeSink, FirehoseLakeSink, S3LakeSink};
use fleetline_aws::sdk_config;
use fleetline_aws::telemetry::init_tracing;
use lake_writer::{Config, Processor, SinkKind};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = Config::from_env()?;
    let sdk = sdk_config().await;
    let sink = match &config.sink {
        SinkKind::S3 { bucket, prefix } => AnyLakeSink::S3(
            S3LakeSink::new(s3_client(&sdk), bucket, prefix)
                .with_concurrency(config.write_concurrency),
        ),
        SinkKind::Firehose { stream } => AnyLakeSink::Firehose(FirehoseLakeSink::new(
            aws_sdk_firehose::Client::new(&sdk),
            stream,
        )),
    };
    tracing::info!(sink = ?config.sink, "lake-writer ready");
    let processor = Processor::new(sink, config.sink_name());
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            processor.handle(event.payload, chrono::Utc::now()).await
        },
    ))
    .await
}
