//! Kinesis event records → the plain values the processor works on (no Lambda types
//! beyond this module and `fleetline_aws::kinesis`).

use aws_lambda_events::event::kinesis::KinesisEvent;

pub use fleetline_aws::kinesis::{InputRecord, UNKNOWN_SHARD};

/// All records of the event, in delivery order, with shard ids and sequence numbers cleaned
/// (see [`clean`]).
pub fn records(event: KinesisEvent) -> Vec<InputRecord> {
    fleetline_aws::kinesis::records(event)
        .into_iter()
        .map(|mut r| {
            r.shard_id = clean(&r.shard_id);
            r.sequence_number = clean(&r.sequence_number);
            r
        })
        .collect()
}

/// Shard ids and sequence numbers are stored as SQL literals and used in S3 keys. Kinesis
/// only produces `[A-Za-z0-9-]` here; of anything else (a hand-made event) the two
/// characters that could break quoting, backslash and NUL, are dropped.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '\\' | '\0')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_what_could_break_quoting() {
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({
            "Records": [{"eventID": "shard\u{0}-1:1\\2",
                         "kinesis": {"sequenceNumber": "1\\2\u{0}", "data": "eyJhIjoxfQ==",
                                     "approximateArrivalTimestamp": 0}}]
        }))
        .unwrap();
        let r = &records(event)[0];
        assert_eq!(r.shard_id, "shard-1");
        assert_eq!(r.sequence_number, "12");
        assert_eq!(r.data, br#"{"a":1}"#);
    }

    #[test]
    fn missing_event_id_gives_a_placeholder_shard() {
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({
            "Records": [{"kinesis": {"sequenceNumber": "1", "data": "",
                                     "approximateArrivalTimestamp": 0}}]
        }))
        .unwrap();
        assert_eq!(records(event)[0].shard_id, UNKNOWN_SHARD);
    }
}
