//! S3 access for external tables (LocalStack: path-style addressing).

use aws_sdk_s3::Client;
use aws_sdk_s3::config::BehaviorVersion;
use bytes::Bytes;

use crate::aws_access::AwsAccess;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub etag: String,
    pub size: i64,
}

pub struct Lake {
    client: Client,
}

impl Lake {
    pub fn new(endpoint: &str, aws: &AwsAccess) -> Self {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(aws.http.clone())
            .region(aws.region.clone())
            .credentials_provider(aws.credentials.clone())
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build();
        Self {
            client: Client::from_conf(conf),
        }
    }

    /// Every object under `prefix` (recursively), in key order. A missing bucket reads as
    /// empty.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, String> {
        let mut out: Vec<ObjectInfo> = Vec::new();
        let mut token: Option<String> = None;
        let mut start_after: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .set_start_after(start_after.take())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    let svc = e.as_service_error();
                    if svc.is_some_and(|s| s.is_no_such_bucket()) {
                        return Ok(Vec::new());
                    }
                    return Err(format!(
                        "listing s3://{bucket}/{prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ));
                }
            };
            for o in resp.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        size: o.size().unwrap_or(0),
                    });
                }
            }
            let page = resp.contents().len();
            let max_keys = usize::try_from(resp.max_keys().unwrap_or(1000)).unwrap_or(1000);
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_string()),
                // LocalStack has been seen to answer a full page as not truncated: a full page
                // is always followed up (from its last key), or objects would silently go
                // missing from the external table.
                _ if page > 0 && page >= max_keys => {
                    start_after = out.last().map(|o| o.key.clone());
                }
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, String> {
        let resp = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        let data = resp
            .body
            .collect()
            .await
            .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
        Ok(data.into_bytes())
    }
}

/// `s3://bucket/prefix` → (bucket, prefix ending in `/` unless empty).
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri
        .strip_prefix("s3://")
        .or_else(|| uri.strip_prefix("s3a://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    Some((bucket.to_string(), prefix))
}

/// Hive convention: "folder" markers and any path segment (below the location)
/// starting with `_` or `.` (e.g. `_SUCCESS`, `.tmp/`) are not data.
pub fn is_data_object(prefix: &str, key: &str) -> bool {
    if key.ends_with('/') {
        return false;
    }
    let rel = key.strip_prefix(prefix).unwrap_or(key);
    !rel.split('/')
        .any(|seg| seg.starts_with('_') || seg.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_s3_uri("s3://b/p/year=2026"),
            Some(("b".into(), "p/year=2026/".into()))
        );
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_s3_uri("s3://b/p/"), Some(("b".into(), "p/".into())));
        assert_eq!(parse_s3_uri("http://b/p"), None);
    }

    #[test]
    fn hive_skips() {
        assert!(is_data_object("p/", "p/a.parquet"));
        assert!(!is_data_object("p/", "p/_SUCCESS"));
        assert!(!is_data_object("p/", "p/.hidden/a.json"));
        assert!(!is_data_object("p/", "p/dir/"));
        assert!(is_data_object("_p/", "_p/a.json"));
    }
}
