//! The dead-letter sink over S3 (the port, [`DeadLetterSink`], is
//! `fleetline_core::ports::deadletter`).
//!
//! [`S3DeadLetterSink`] writes one JSON object per record at
//! `<prefix><shard_id>/<sequence_number>.json` in the lake bucket, or
//! `<prefix><shard_id>/<sequence_number>-<sub_sequence_number>.json` for one sub-record of a
//! KPL aggregate (docs/contracts.md, "Dead letters"). The key depends only on the record's
//! position in the stream, so a redelivered record overwrites its own letter instead of
//! adding a second copy.

use base64::Engine as _;
use chrono::SecondsFormat;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use serde::Serialize;

use crate::env::Env;
use crate::s3::{key_segment, normalize_prefix};

/// Bucket of the dead letters (the lake bucket).
pub const ENV_BUCKET: &str = "LAKE_BUCKET";
/// Key prefix of the dead letters.
pub const ENV_REJECTED_PREFIX: &str = "REJECTED_PREFIX";
/// Dead letters written at once (S3 PutObject calls in flight).
pub const ENV_DEAD_LETTER_CONCURRENCY: &str = "FLEETLINE_DEAD_LETTER_CONCURRENCY";
pub const DEFAULT_BUCKET: &str = "fleetline-lake";
/// Default key prefix (`REJECTED_PREFIX`).
pub const DEFAULT_REJECTED_PREFIX: &str = "rejected/";
pub const DEFAULT_DEAD_LETTER_CONCURRENCY: usize = 16;
/// Bounds of `FLEETLINE_DEAD_LETTER_CONCURRENCY`.
pub const MIN_DEAD_LETTER_CONCURRENCY: usize = 1;
pub const MAX_DEAD_LETTER_CONCURRENCY: usize = 256;

/// Where and how fast the dead letters of a function are written: the settings
/// stream-processor and view-refresher (streaming-ingestion path) share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterConfig {
    /// Bucket of the dead letters.
    pub bucket: String,
    /// Key prefix of the dead letters, normalised to end with `/`.
    pub rejected_prefix: String,
    /// Dead letters written at once.
    pub concurrency: usize,
}

/// `FLEETLINE_DEAD_LETTER_CONCURRENCY` is not a whole number in its bounds (the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ENV_DEAD_LETTER_CONCURRENCY}={0:?}: expected a whole number from {MIN_DEAD_LETTER_CONCURRENCY} to {MAX_DEAD_LETTER_CONCURRENCY}"
)]
pub struct ConcurrencyError(pub String);

impl DeadLetterConfig {
    /// Reads the three settings; unset or empty values take the defaults.
    pub fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConcurrencyError> {
        let concurrency = env
            .parse_in(
                ENV_DEAD_LETTER_CONCURRENCY,
                MIN_DEAD_LETTER_CONCURRENCY..=MAX_DEAD_LETTER_CONCURRENCY,
            )
            .map_err(|e| ConcurrencyError(e.value))?
            .unwrap_or(DEFAULT_DEAD_LETTER_CONCURRENCY);
        Ok(Self {
            bucket: env.get_or(ENV_BUCKET, DEFAULT_BUCKET),
            rejected_prefix: normalize_prefix(
                &env.get_or(ENV_REJECTED_PREFIX, DEFAULT_REJECTED_PREFIX),
            ),
            concurrency,
        })
    }
}

/// The JSON body, field for field as in docs/contracts.md.
#[derive(Serialize)]
struct Body<'a> {
    reason: &'a str,
    detail: &'a str,
    shard_id: &'a str,
    sequence_number: &'a str,
    sub_sequence_number: Option<u64>,
    approximate_arrival: String,
    partition_key: &'a str,
    data_base64: String,
    data_utf8: Option<&'a str>,
    function: &'a str,
}

/// The letter's object key under `prefix` (which should end with `/`, see
/// [`normalize_prefix`]). The shard id and sequence number pass through [`key_segment`].
pub fn letter_key(letter: &DeadLetter, prefix: &str) -> String {
    let sub = letter
        .sub_sequence_number
        .map(|n| format!("-{n}"))
        .unwrap_or_default();
    format!(
        "{prefix}{}/{}{sub}.json",
        key_segment(&letter.shard_id),
        key_segment(&letter.sequence_number)
    )
}

/// The letter's JSON body (one object, no trailing newline).
pub fn letter_body(letter: &DeadLetter) -> String {
    let body = Body {
        reason: &letter.reason,
        detail: &letter.detail,
        shard_id: &letter.shard_id,
        sequence_number: &letter.sequence_number,
        sub_sequence_number: letter.sub_sequence_number,
        approximate_arrival: letter
            .approximate_arrival
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        partition_key: &letter.partition_key,
        data_base64: base64::engine::general_purpose::STANDARD.encode(&letter.data),
        data_utf8: std::str::from_utf8(&letter.data).ok(),
        function: &letter.function,
    };
    // Serialising a struct of strings cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

/// Dead letters as S3 objects (`application/json`).
#[derive(Debug, Clone)]
pub struct S3DeadLetterSink {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3DeadLetterSink {
    /// `prefix` is normalised with [`normalize_prefix`].
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl DeadLetterSink for S3DeadLetterSink {
    async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let key = letter_key(letter, &self.prefix);
        let body = letter_body(letter).into_bytes();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DeadLetterError {
                target: format!("s3://{}/{key}", self.bucket),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use serde_json::{Value, json};

    fn letter(data: &[u8]) -> DeadLetter {
        DeadLetter {
            reason: "bad_vin".into(),
            detail: "VIN \"X\": VIN must be exactly 17 characters, got 1".into(),
            shard_id: "shardId-000000000000".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            sub_sequence_number: None,
            approximate_arrival: DateTime::from_timestamp(1_764_090_271, 987_000_000).unwrap(),
            partition_key: "X".into(),
            data: data.to_vec(),
            function: "stream-processor".into(),
        }
    }

    #[test]
    fn body_follows_the_contract() {
        let l = letter(br#"{"VIN":"X"}"#);
        let v: Value = serde_json::from_str(&letter_body(&l)).unwrap();
        assert_eq!(
            v,
            json!({
                "reason": "bad_vin",
                "detail": "VIN \"X\": VIN must be exactly 17 characters, got 1",
                "shard_id": "shardId-000000000000",
                "sequence_number": "49590338271490256608559692538361571095921575989136588898",
                "sub_sequence_number": null,
                "approximate_arrival": "2025-11-25T17:04:31.987Z",
                "partition_key": "X",
                "data_base64": "eyJWSU4iOiJYIn0=",
                "data_utf8": "{\"VIN\":\"X\"}",
                "function": "stream-processor",
            })
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "reason",
                "detail",
                "shard_id",
                "sequence_number",
                "sub_sequence_number",
                "approximate_arrival",
                "partition_key",
                "data_base64",
                "data_utf8",
                "function"
            ]
        );
    }

    #[test]
    fn invalid_utf8_keeps_the_bytes_in_base64_only() {
        let l = letter(&[0xff, 0xfe, b'{']);
        let v: Value = serde_json::from_str(&letter_body(&l)).unwrap();
        assert_eq!(v["data_utf8"], Value::Null);
        let back = base64::engine::general_purpose::STANDARD
            .decode(v["data_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, [0xff, 0xfe, b'{']);
    }

    #[test]
    fn key_is_a_function_of_shard_and_sequence_only() {
        let a = letter(b"a");
        let mut b = letter(b"something else");
        b.reason = "not_json".into();
        assert_eq!(letter_key(&a, "rejected/"), letter_key(&b, "rejected/"));
        assert_eq!(
            letter_key(&a, "rejected/"),
            "rejected/shardId-000000000000/49590338271490256608559692538361571095921575989136588898.json"
        );
        let mut odd = letter(b"");
        odd.shard_id = "../x y".into();
        odd.sequence_number = String::new();
        assert_eq!(letter_key(&odd, "p/"), "p/.._x_y/unknown.json");
        odd.shard_id = "..".into();
        assert_eq!(letter_key(&odd, "p/"), "p/unknown/unknown.json");
    }

    #[test]
    fn a_sub_record_has_its_own_key_and_says_which_it_is() {
        let mut l = letter(br#"{"VIN":"X"}"#);
        l.sub_sequence_number = Some(7);
        assert_eq!(
            letter_key(&l, "rejected/"),
            "rejected/shardId-000000000000/49590338271490256608559692538361571095921575989136588898-7.json"
        );
        let v: Value = serde_json::from_str(&letter_body(&l)).unwrap();
        assert_eq!(v["sub_sequence_number"], json!(7));
    }
}
