//! The S3 client every function builds, and the key rules shared by the lake and the
//! dead letters.

use aws_config::SdkConfig;

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

/// `""` stays empty (keys at the bucket root); anything else gets a trailing `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// Characters outside `[A-Za-z0-9._-]` become `_` (so a hand-made event id cannot escape
/// the prefix); empty, `.` and `..` become `unknown`. Real shard ids
/// (`shardId-000000000000`) and sequence numbers (digits) pass unchanged.
pub fn key_segment(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        for (given, want) in [
            ("rejected/", "rejected/"),
            ("rejected", "rejected/"),
            ("/rejected/t1", "rejected/t1/"),
            ("", ""),
            ("  ", ""),
        ] {
            assert_eq!(normalize_prefix(given), want, "{given:?}");
        }
    }

    #[test]
    fn key_segments_cannot_escape_their_prefix() {
        let cases = [
            ("shardId-000000000000", "shardId-000000000000"),
            ("../x", ".._x"),
            ("a/b c", "a_b_c"),
            ("", "unknown"),
            (".", "unknown"),
            ("..", "unknown"),
        ];
        for (given, want) in cases {
            assert_eq!(key_segment(given), want, "{given:?}");
        }
    }
}
