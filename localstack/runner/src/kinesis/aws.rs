//! [`StreamSource`] over the AWS SDK's Kinesis client (LocalStack at AWS_ENDPOINT_URL).

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;

use super::source::{
    IteratorPosition, RecordsPage, ShardDescription, SourceError, StreamDescription, StreamRecord,
    StreamSource,
};

#[derive(Clone)]
pub struct KinesisSource {
    client: Client,
}

impl KinesisSource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E, R>(err: SdkError<E, R>, stream: &str) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or_default().to_owned();
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| aws_sdk_kinesis::error::DisplayErrorContext(&err).to_string());
    match code.as_str() {
        "ResourceNotFoundException" => SourceError::StreamNotFound(stream.to_owned()),
        "ExpiredIteratorException" => SourceError::ExpiredIterator,
        "ProvisionedThroughputExceededException"
        | "LimitExceededException"
        | "ThrottlingException" => SourceError::Throttled(message),
        "InvalidArgumentException" => SourceError::InvalidArgument(message),
        "" => SourceError::Other(message),
        _ => SourceError::Other(format!("{code}: {message}")),
    }
}

impl StreamSource for KinesisSource {
    async fn describe(&self, stream: &str) -> Result<StreamDescription, SourceError> {
        let out = self
            .client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| classify(e, stream))?;
        let summary = out
            .stream_description_summary()
            .ok_or_else(|| SourceError::Other("DescribeStreamSummary returned nothing".into()))?;
        Ok(StreamDescription {
            arn: summary.stream_arn().to_owned(),
            created: summary.stream_creation_timestamp().as_secs_f64(),
        })
    }

    async fn list_shards(&self, stream: &str) -> Result<Vec<ShardDescription>, SourceError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                // NextToken must be sent without the stream name.
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(stream),
            };
            let out = request.send().await.map_err(|e| classify(e, stream))?;
            shards.extend(out.shards().iter().map(|s| ShardDescription {
                shard_id: s.shard_id().to_owned(),
                parent_shard_id: s.parent_shard_id().map(str::to_owned),
                adjacent_parent_shard_id: s.adjacent_parent_shard_id().map(str::to_owned),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(shards)
    }

    async fn shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, SourceError> {
        let mut request = self
            .client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard_id);
        request = match position {
            IteratorPosition::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            IteratorPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            IteratorPosition::AtTimestamp(ts) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_secs_f64(*ts)),
            IteratorPosition::AtSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq),
            IteratorPosition::AfterSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = request.send().await.map_err(|e| classify(e, stream))?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| SourceError::Other("GetShardIterator returned no iterator".into()))
    }

    async fn get_records(&self, iterator: &str, limit: usize) -> Result<RecordsPage, SourceError> {
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(10_000))
            .send()
            .await
            .map_err(|e| classify(e, "(iterator)"))?;
        let records = out
            .records()
            .iter()
            .map(|r| StreamRecord {
                sequence_number: r.sequence_number().to_owned(),
                partition_key: r.partition_key().unwrap_or_default().to_owned(),
                data: r.data().as_ref().to_vec(),
                approximate_arrival: r
                    .approximate_arrival_timestamp()
                    .map_or(0.0, |t| (t.as_secs_f64() * 1000.0).round() / 1000.0),
            })
            .collect();
        Ok(RecordsPage {
            records,
            next_iterator: out.next_shard_iterator().map(str::to_owned),
            millis_behind_latest: out.millis_behind_latest(),
        })
    }
}
