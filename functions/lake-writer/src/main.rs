//! Lambda entry point: read the configuration, build the lake sink once, then hand every
//! Kinesis batch to the processor.

use fleetline_aws::env::FromEnv;
use fleetline_aws::kinesis;
use fleetline_aws::lake::{AnyLakeSink, FirehoseLakeSink, S3LakeSink};
use fleetline_aws::s3::s3_client;
use fleetline_aws::telemetry::start;
use lake_writer::{Config, Processor, SinkKind};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = start(Config::from_env).await?;
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
    kinesis::run(&Processor::new(sink, config.sink_name())).await
}
