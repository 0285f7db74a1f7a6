//! Lake change notifications (docs/design.md "Change detection"): S3 sends an
//! `s3:ObjectCreated:*` event for every object written under the lake prefix — by
//! lake-writer or by Firehose — to an SQS queue; batch-views drains the queue on each run.
//! [`ChangeFeed`] receives and deletes messages; [`SqsChangeFeed`] is the SQS adapter;
//! [`object_keys`] reads the object keys out of a message body.

use std::future::Future;

use percent_encoding::percent_decode_str;

/// A received notification: its body and the handle that deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub body: String,
    pub receipt_handle: String,
}

/// Receiving or deleting notifications failed.
#[derive(Debug, thiserror::Error)]
#[error("lake change queue {queue}: {message}")]
pub struct ChangeFeedError {
    pub queue: String,
    pub message: String,
}

/// The queue of lake change notifications.
pub trait ChangeFeed: Send + Sync {
    /// Up to ten messages; empty when the queue has no visible message.
    fn receive(&self) -> impl Future<Output = Result<Vec<Notification>, ChangeFeedError>> + Send;
    /// Deletes the messages (after what they said is committed in the warehouse).
    fn delete(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<(), ChangeFeedError>> + Send;
}

impl<C: ChangeFeed> ChangeFeed for &C {
    fn receive(&self) -> impl Future<Output = Result<Vec<Notification>, ChangeFeedError>> + Send {
        (**self).receive()
    }
    fn delete(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<(), ChangeFeedError>> + Send {
        (**self).delete(receipt_handles)
    }
}

/// The object keys an S3 event notification names (URL-decoded: S3 encodes keys in
/// notifications, e.g. `year%3D2025`; "Event message structure",
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
/// `s3:TestEvent` and other bodies without records name none. `None` when the body is not
/// an S3 event at all.
pub fn object_keys(body: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let Some(records) = value.get("Records") else {
        // s3:TestEvent (sent when the notification is configured) has no records.
        return value.get("Event").map(|_| Vec::new());
    };
    Some(
        records
            .as_array()?
            .iter()
            .filter(|r| {
                r.get("eventName")
                    .and_then(serde_json::Value::as_str)
                    .is_none_or(|n| n.starts_with("ObjectCreated"))
            })
            .filter_map(|r| r.pointer("/s3/object/key")?.as_str())
            .map(|k| {
                let spaced = k.replace('+', " ");
                percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
            })
            .collect(),
    )
}

/// [`ChangeFeed`] over SQS (long polling, so an empty answer means an empty queue:
/// "Amazon SQS short and long polling",
/// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
#[derive(Debug, Clone)]
pub struct SqsChangeFeed {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

/// ReceiveMessage and DeleteMessageBatch take at most ten messages.
pub const SQS_MAX_MESSAGES: usize = 10;
/// Seconds a receive waits for a message before answering empty.
const WAIT_SECONDS: i32 = 1;

impl SqsChangeFeed {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> ChangeFeedError {
        ChangeFeedError {
            queue: self.queue_url.clone(),
            message: message.into(),
        }
    }
}

impl ChangeFeed for SqsChangeFeed {
    async fn receive(&self) -> Result<Vec<Notification>, ChangeFeedError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(SQS_MAX_MESSAGES as i32)
            .wait_time_seconds(WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Notification {
                    body: m.body().unwrap_or_default().to_owned(),
                    receipt_handle: m.receipt_handle()?.to_owned(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<(), ChangeFeedError> {
        for chunk in receipt_handles.chunks(SQS_MAX_MESSAGES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .map_err(|e| self.error(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
            // A message not deleted comes back after its visibility timeout and is recorded
            // again (harmless), so a partial failure is only logged.
            for failed in out.failed() {
                tracing::warn!(
                    id = failed.id(),
                    code = failed.code(),
                    "notification not deleted"
                );
            }
        }
        Ok(())
    }
}
