//! Kinesis event records → the plain values the processor works on (no Lambda types
//! beyond this module).

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};

/// One Kinesis record, data already base64-decoded (aws_lambda_events' `Base64Data`
/// decodes `kinesis.data` during deserialisation).
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// `shardId-000000000000`, from the `eventID` (`<shard>:<sequence>`).
    pub shard_id: String,
    pub sequence_number: String,
    pub data: Vec<u8>,
}

/// Shard id used when an event id does not carry one (never the case for Kinesis).
pub const UNKNOWN_SHARD: &str = "unknown-shard";

impl InputRecord {
    pub fn from_event_record(r: KinesisEventRecord) -> Self {
        let shard_id = r
            .event_id
            .as_deref()
            .and_then(|id| id.split_once(':'))
            .map(|(shard, _)| shard)
            .filter(|s| !s.is_empty())
            .unwrap_or(UNKNOWN_SHARD)
            .to_owned();
        Self {
            shard_id,
            sequence_number: r.kinesis.sequence_number,
            data: r.kinesis.data.0,
        }
    }
}

/// All records of the event, in delivery order.
pub fn records(event: KinesisEvent) -> Vec<InputRecord> {
    event
        .records
        .into_iter()
        .map(InputRecord::from_event_record)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_real_kinesis_event() {
        // Shape as Lambda delivers it (AWS documentation example, our payload).
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({
            "Records": [{
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "1HGCM82633A004352",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": "eyJhIjoxfQ==",
                    "approximateArrivalTimestamp": 1545084650.987
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/vehicle-telemetry"
            }, {
                "kinesis": {"sequenceNumber": "7", "data": "", "approximateArrivalTimestamp": 0}
            }]
        }))
        .unwrap();
        let rs = records(event);
        assert_eq!(
            rs,
            vec![
                InputRecord {
                    shard_id: "shardId-000000000006".into(),
                    sequence_number: "49590338271490256608559692538361571095921575989136588898"
                        .into(),
                    data: br#"{"a":1}"#.to_vec(),
                },
                InputRecord {
                    shard_id: UNKNOWN_SHARD.into(),
                    sequence_number: "7".into(),
                    data: Vec::new(),
                },
            ]
        );
    }
}
