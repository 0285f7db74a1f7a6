//! Kinesis event records → the plain values the processor works on (no Lambda types
//! beyond this module and `fleetline_aws::kinesis`).

pub use fleetline_aws::kinesis::{InputRecord, KinesisRecords, UNKNOWN_SHARD};

/// All records of the event, in delivery order, with shard ids and sequence numbers cleaned
/// (see [`clean`]).
pub fn records(event: KinesisRecords) -> Vec<InputRecord> {
    let mut records = event.0;
    for r in &mut records {
        clean(&mut r.shard_id);
        clean(&mut r.sequence_number);
    }
    records
}

/// Shard ids and sequence numbers are stored as SQL literals and used in S3 keys. Kinesis
/// only produces `[A-Za-z0-9-]` here; of anything else (a hand-made event) the two
/// characters that could break quoting, backslash and NUL, are dropped.
fn clean(s: &mut String) {
    // Nothing to drop in what Kinesis produces: no copy then. (A byte scan: both are ASCII.)
    if s.bytes().any(|b| matches!(b, b'\\' | b'\0')) {
        s.retain(|c| !matches!(c, '\\' | '\0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_what_could_break_quoting() {
        let event = serde_json::json!({
            "Records": [{"eventID": "shard\u{0}-1:1\\2",
                         "kinesis": {"sequenceNumber": "1\\2\u{0}", "data": "eyJhIjoxfQ==",
                                     "approximateArrivalTimestamp": 0}}]
        });
        let r = &records(serde_json::from_str(&event.to_string()).unwrap())[0];
        assert_eq!(r.shard_id, "shard-1");
        assert_eq!(r.sequence_number, "12");
        assert_eq!(r.data, br#"{"a":1}"#);
    }

    #[test]
    fn missing_event_id_gives_a_placeholder_shard() {
        let event = br#"{"Records": [{"kinesis": {"sequenceNumber": "1", "data": "",
                                               "approximateArrivalTimestamp": 0}}]}"#;
        let event = serde_json::from_slice(event).unwrap();
        assert_eq!(records(event)[0].shard_id, UNKNOWN_SHARD);
    }
}
