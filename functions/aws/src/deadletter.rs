//! The dead-letter port: where a record that can never be processed goes, with its reason
//! and its original bytes, so that nothing is lost and nothing is retried forever.
//!
//! [`S3DeadLetterSink`] writes one JSON object per record at
//! `<prefix><shard_id>/<sequence_number>.json` in the lake bucket, or
//! `<prefix><shard_id>/<sequence_number>-<sub_sequence_number>.json` for one sub-record of a
//! KPL aggregate (docs/contracts.md, "Dead letters"). The key depends only on the record's
//! position in the stream, so a redelivered record overwrites its own letter instead of
//! adding a second copy.

use std::future::Future;

use aws_config::SdkConfig;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Default key prefix (`REJECTED_PREFIX`).
pub const DEFAULT_REJECTED_PREFIX: &str = "rejected/";

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Stable reason code, e.g. `bad_vin` (`fleetline_core::RejectReason::code`).
    pub reason: String,
    /// Human-readable detail (short; never the whole payload).
    pub detail: String,
    /// Kinesis shard, e.g. `shardId-000000000000`.
    pub shard_id: String,
    /// Kinesis sequence number.
    pub sequence_number: String,
    /// Position of the rejected sub-record within a KPL aggregate (from 0); `None` for a
    /// plain record and for an aggregate rejected whole.
    pub sub_sequence_number: Option<u64>,
    /// Kinesis `approximateArrivalTimestamp`.
    pub approximate_arrival: DateTime<Utc>,
    /// Kinesis partition key (the VIN, for well-behaved producers); a sub-record's own key.
    pub partition_key: String,
    /// The record's data, exactly as received (a sub-record's own bytes).
    pub data: Vec<u8>,
    /// The function that rejected it, e.g. `stream-processor`.
    pub function: String,
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

impl DeadLetter {
    /// The object key under `prefix` (which should end with `/`, see [`normalize_prefix`]).
    /// Characters outside `[A-Za-z0-9._-]` in the shard id and sequence number become `_`,
    /// so an odd event id can never escape the prefix; real Kinesis values never contain them.
    pub fn key(&self, prefix: &str) -> String {
        let sub = self
            .sub_sequence_number
            .map(|n| format!("-{n}"))
            .unwrap_or_default();
        format!(
            "{prefix}{}/{}{sub}.json",
            key_segment(&self.shard_id),
            key_segment(&self.sequence_number)
        )
    }

    /// The JSON body (one object, no trailing newline).
    pub fn to_json(&self) -> String {
        let body = Body {
            reason: &self.reason,
            detail: &self.detail,
            shard_id: &self.shard_id,
            sequence_number: &self.sequence_number,
            sub_sequence_number: self.sub_sequence_number,
            approximate_arrival: self
                .approximate_arrival
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            partition_key: &self.partition_key,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&self.data),
            data_utf8: std::str::from_utf8(&self.data).ok(),
            function: &self.function,
        };
        // Serialising a struct of strings cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

fn key_segment(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "unknown".to_owned(),
        _ => cleaned,
    }
}

/// `""` stays empty (keys at the bucket root); anything else gets a trailing `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// Writing a dead letter failed. Callers treat every such failure as "retry the batch
/// later": losing a rejected record is never acceptable.
#[derive(Debug, thiserror::Error)]
#[error("dead letter s3://{bucket}/{key}: {message}")]
pub struct SinkError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Stores one letter; storing the same letter again replaces it (idempotent).
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<S: DeadLetterSink> DeadLetterSink for &S {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).put(letter)
    }
}

impl<S: DeadLetterSink> DeadLetterSink for std::sync::Arc<S> {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).put(letter)
    }
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

/// An S3 client from the shared config. Path-style addressing is switched on when a custom
/// endpoint is configured (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, i.e. LocalStack),
/// where virtual-hosted bucket names do not resolve; real AWS keeps the default.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl DeadLetterSink for S3DeadLetterSink {
    async fn put(&self, letter: &DeadLetter) -> Result<(), SinkError> {
        let key = letter.key(&self.prefix);
        let body = letter.to_json().into_bytes();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                bucket: self.bucket.clone(),
                key,
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let v: Value = serde_json::from_str(&l.to_json()).unwrap();
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
        let v: Value = serde_json::from_str(&l.to_json()).unwrap();
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
        assert_eq!(a.key("rejected/"), b.key("rejected/"));
        assert_eq!(
            a.key("rejected/"),
            "rejected/shardId-000000000000/49590338271490256608559692538361571095921575989136588898.json"
        );
        let mut odd = letter(b"");
        odd.shard_id = "../x y".into();
        odd.sequence_number = String::new();
        assert_eq!(odd.key("p/"), "p/.._x_y/unknown.json");
        odd.shard_id = "..".into();
        assert_eq!(odd.key("p/"), "p/unknown/unknown.json");
    }

    #[test]
    fn a_sub_record_has_its_own_key_and_says_which_it_is() {
        let mut l = letter(br#"{"VIN":"X"}"#);
        l.sub_sequence_number = Some(7);
        assert_eq!(
            l.key("rejected/"),
            "rejected/shardId-000000000000/49590338271490256608559692538361571095921575989136588898-7.json"
        );
        let v: Value = serde_json::from_str(&l.to_json()).unwrap();
        assert_eq!(v["sub_sequence_number"], json!(7));
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalize_prefix("rejected/"), "rejected/");
        assert_eq!(normalize_prefix("rejected"), "rejected/");
        assert_eq!(normalize_prefix("/rejected/t1"), "rejected/t1/");
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("  "), "");
    }
}
