//! Fleetline's own Kinesis event envelope: the invocation payload (`{"Records":[…]}`) read
//! straight into [`InputRecord`]s, in one pass ([`KinesisRecords`] is what the Lambda
//! runtime deserialises).
//!
//! Only the fields the consumers use are read; the rest (ARNs, region, event names) is
//! skipped without being copied. Strings are borrowed from the payload while it is read
//! (owned only when JSON escapes force it), `data` is base64-decoded with a SIMD decoder,
//! and `approximateArrivalTimestamp` is converted from its exact decimal text: the generic
//! event types of `aws_lambda_events` read `1742000000.5` as 5 ms past the second instead
//! of 500 ms.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{InputRecord, UNKNOWN_SHARD};

/// Why an invocation payload is not a Kinesis event (the runtime then fails the invocation,
/// as for any payload it cannot deserialise).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a Kinesis event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("record {index}: data is not base64: {source}")]
    Base64 {
        index: usize,
        source: base64_simd::Error,
    },
    #[error("record {index}: approximateArrivalTimestamp {text} is not a time in seconds")]
    Arrival { index: usize, text: String },
}

/// The records of a Kinesis event, decoded: an owned value, so the runtime can hand it over
/// (`LambdaEvent` payloads are `DeserializeOwned`), read through the borrowing
/// [`KinesisEnvelope`] while the payload's bytes are at hand.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisRecords(pub Vec<InputRecord>);

impl<'de> Deserialize<'de> for KinesisRecords {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KinesisEnvelope::deserialize(deserializer)?
            .into_records()
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// The invocation payload of a Kinesis event source mapping.
#[derive(Debug, Deserialize)]
pub struct KinesisEnvelope<'a> {
    #[serde(rename = "Records", borrow)]
    pub records: Vec<EnvelopeRecord<'a>>,
}

/// One record of the payload, as delivered (nothing decoded yet).
#[derive(Debug, Deserialize)]
pub struct EnvelopeRecord<'a> {
    /// `<shard id>:<sequence number>`.
    #[serde(rename = "eventID", borrow, default)]
    pub event_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub kinesis: KinesisPart<'a>,
}

/// The `kinesis` object of a record.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisPart<'a> {
    #[serde(borrow, default)]
    pub partition_key: Text<'a>,
    #[serde(borrow, default)]
    pub sequence_number: Text<'a>,
    /// The record's bytes, base64.
    #[serde(borrow)]
    pub data: Text<'a>,
    /// Seconds since the epoch, a JSON number (`1545084650.987`), kept as its text.
    #[serde(borrow)]
    pub approximate_arrival_timestamp: &'a RawValue,
}

/// A JSON string, borrowed from the payload unless it holds escapes. (A bare
/// `Option<Cow<str>>` field would always be copied: serde borrows only through a newtype.)
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl<'a> KinesisEnvelope<'a> {
    /// Reads the payload; it must be the whole text (the arrival time is kept as a slice of
    /// it, so a `serde_json::Value` will not do).
    pub fn parse(payload: &'a [u8]) -> Result<Self, EnvelopeError> {
        Ok(serde_json::from_slice(payload)?)
    }

    /// The records, decoded, in delivery order.
    pub fn into_records(self) -> Result<Vec<InputRecord>, EnvelopeError> {
        // Sized once: collecting `Result`s would grow (and copy) the vector step by step.
        let mut records = Vec::with_capacity(self.records.len());
        for (index, r) in self.records.into_iter().enumerate() {
            records.push(r.decode(index)?);
        }
        Ok(records)
    }
}

impl EnvelopeRecord<'_> {
    /// The record as the consumers see it; `index` names it in errors.
    pub fn decode(self, index: usize) -> Result<InputRecord, EnvelopeError> {
        let k = self.kinesis;
        let arrival_text = k.approximate_arrival_timestamp.get();
        let arrival = arrival(arrival_text).ok_or_else(|| EnvelopeError::Arrival {
            index,
            text: arrival_text.to_owned(),
        })?;
        let data = base64_simd::STANDARD
            .decode_to_vec(k.data.0.as_bytes())
            .map_err(|source| EnvelopeError::Base64 { index, source })?;
        Ok(InputRecord {
            shard_id: shard_id(self.event_id.as_ref().map(|t| &*t.0)).to_owned(),
            sequence_number: k.sequence_number.0.into_owned(),
            partition_key: k.partition_key.0.into_owned(),
            arrival,
            data,
        })
    }
}

/// The shard part of an event id, or [`UNKNOWN_SHARD`].
fn shard_id(event_id: Option<&str>) -> &str {
    event_id
        .and_then(|id| id.split_once(':'))
        .map(|(shard, _)| shard)
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN_SHARD)
}

/// A JSON number of seconds since the epoch as a time, to the millisecond.
pub fn arrival(seconds: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(seconds_to_millis(seconds)?)
}

/// Milliseconds of a JSON number of seconds, from its decimal text: the first three
/// fraction digits are the milliseconds (`.5` is 500, `.05` is 50), a fourth digit of 5 or
/// more rounds away from zero. Exponent forms (never sent by Lambda) go through `f64`.
fn seconds_to_millis(text: &str) -> Option<i64> {
    if text.contains(['e', 'E']) {
        let seconds: f64 = text.parse().ok()?;
        let millis = (seconds * 1000.0).round();
        // The cast saturates; reject what does not fit instead.
        return (millis.is_finite() && millis.abs() < 9.0e18).then_some(millis as i64);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let fraction = fraction.as_bytes();
    let digit = |i: usize| fraction.get(i).map_or(0, |d| i64::from(d - b'0'));
    let round_up = i64::from(digit(3) >= 5);
    let millis = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(digit(0) * 100 + digit(1) * 10 + digit(2) + round_up)?;
    Some(if negative { -millis } else { millis })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> Option<i64> {
        seconds_to_millis(text)
    }

    #[test]
    fn arrival_fractions_are_decimal_seconds() {
        let cases = [
            ("1742000000.5", 1_742_000_000_500),
            ("1742000000.05", 1_742_000_000_050),
            ("1545084650.987", 1_545_084_650_987),
            ("1742000000.9", 1_742_000_000_900),
            ("1742000000", 1_742_000_000_000),
            ("1742000000.0", 1_742_000_000_000),
            ("0", 0),
            // Beyond the millisecond: to the nearest one.
            ("1742000000.0004", 1_742_000_000_000),
            ("1742000000.0005", 1_742_000_000_001),
            ("1742000000.9996", 1_742_000_001_000),
            ("-1.5", -1_500),
            ("1.742e9", 1_742_000_000_000),
            ("1.7420000005E9", 1_742_000_000_500),
        ];
        for (text, want) in cases {
            assert_eq!(millis(text), Some(want), "{text}");
        }
        for bad in ["", "-", ".5", "1.x", "1..2", "null", "\"1\"", "1e400"] {
            assert_eq!(millis(bad), None, "{bad}");
        }
    }

    fn one(payload: &str) -> Result<InputRecord, EnvelopeError> {
        let mut records = KinesisEnvelope::parse(payload.as_bytes())?.into_records()?;
        assert_eq!(records.len(), 1);
        Ok(records.remove(0))
    }

    #[test]
    fn arrival_is_read_from_the_numbers_text() {
        let at = |seconds: &str| {
            let r = one(&format!(
                r#"{{"Records":[{{"kinesis":{{"data":"","approximateArrivalTimestamp":{seconds}}}}}]}}"#
            ))
            .unwrap();
            r.arrival.timestamp_millis()
        };
        assert_eq!(at("1742000000.5"), 1_742_000_000_500);
        assert_eq!(at("1742000000.05"), 1_742_000_000_050);
        assert_eq!(at("1742000000"), 1_742_000_000_000);
        assert!(matches!(
            one(r#"{"Records":[{"kinesis":{"data":"","approximateArrivalTimestamp":"1"}}]}"#),
            Err(EnvelopeError::Arrival { index: 0, .. })
        ));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let payload = br#"{"Records":[{"eventID":"s:1","kinesis":{"partitionKey":"a\/b",
            "sequenceNumber":"1","data":"","approximateArrivalTimestamp":0}}]}"#;
        let envelope = KinesisEnvelope::parse(payload).unwrap();
        let k = &envelope.records[0].kinesis;
        assert!(matches!(k.sequence_number.0, Cow::Borrowed("1")));
        assert!(matches!(
            envelope.records[0].event_id,
            Some(Text(Cow::Borrowed("s:1")))
        ));
        assert!(matches!(&k.partition_key.0, Cow::Owned(s) if s == "a/b"));
    }

    #[test]
    fn bad_payloads_are_errors() {
        assert!(matches!(
            KinesisEnvelope::parse(b"{}"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            one(r#"{"Records":[{"kinesis":{"data":"!!","approximateArrivalTimestamp":0}}]}"#),
            Err(EnvelopeError::Base64 { index: 0, .. })
        ));
        assert!(matches!(
            one(r#"{"Records":[{"kinesis":{"approximateArrivalTimestamp":0}}]}"#),
            Err(EnvelopeError::Json(_))
        ));
    }
}
