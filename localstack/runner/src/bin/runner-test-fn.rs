//! Test function for local-runner's integration tests: a real lambda_runtime program that
//! records every Kinesis batch it gets and fails on purpose, driven by the record data:
//!
//! - `RECORDER_FILE`: one JSON line per invocation `{"seqs":[…],"outcome":"ok"|"error"|
//!   "partial"|"crash","failed":seq|null}`, written before answering.
//! - `RECORDER_STATE`: a directory for "once" markers (they survive a crash).
//! - `RECORDER_FAIL_FIRST=1`: the very first invocation fails (function error).
//! - data `crash-once:…`: the first batch containing it exits the process (a crash).
//! - data `partial-once:…`: the first batch containing it reports it in batchItemFailures.
//! - data `poison:…`: every batch containing it fails.
//!
//! API Gateway proxy events get a 200 proxy response echoing resource, path, path and query
//! parameters and stage; scheduled events are recorded as `{"scheduled": event}`.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handler)).await
}

fn record(line: &Value) {
    let Ok(path) = std::env::var("RECORDER_FILE") else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

/// True the first time `name` is asked for (a marker file in RECORDER_STATE).
fn first_time(name: &str) -> bool {
    let dir = PathBuf::from(std::env::var("RECORDER_STATE").unwrap_or_else(|_| "/tmp".into()));
    let _ = std::fs::create_dir_all(&dir);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(name.replace(['/', ':'], "_")))
        .is_ok()
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, _) = event.into_parts();
    // API Gateway proxy events: echo what the gateway sent as a proxy response.
    if let Some(method) = payload.get("httpMethod") {
        record(&json!({"api": {"method": method, "path": payload["path"]}}));
        let body = json!({
            "resource": payload["resource"],
            "path": payload["path"],
            "pathParameters": payload["pathParameters"],
            "query": payload["queryStringParameters"],
            "stage": payload["requestContext"]["stage"],
        });
        return Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-test-fn": "yes"},
            "body": body.to_string(),
            "isBase64Encoded": false,
        }));
    }
    // EventBridge scheduled events.
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        record(&json!({"scheduled": payload}));
        return Ok(json!({"ok": true}));
    }
    let records: Vec<(String, String)> = payload
        .get("Records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let seq = r["kinesis"]["sequenceNumber"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let data = r["kinesis"]["data"].as_str().unwrap_or("");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default();
            (seq, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    let seqs: Vec<&str> = records.iter().map(|(s, _)| s.as_str()).collect();
    let fail = |outcome: &str| {
        record(&json!({"seqs": seqs, "outcome": outcome, "failed": null}));
        Err(Diagnostic {
            error_type: "TestFailure".to_owned(),
            error_message: format!("{outcome} requested"),
        })
    };
    if std::env::var("RECORDER_FAIL_FIRST").as_deref() == Ok("1") && first_time("first-invocation")
    {
        return fail("error");
    }
    if records.iter().any(|(_, d)| d.starts_with("poison:")) {
        return fail("error");
    }
    for (seq, data) in &records {
        if data.starts_with("crash-once:") && first_time(&format!("crash-{seq}")) {
            record(&json!({"seqs": seqs, "outcome": "crash", "failed": null}));
            std::process::exit(7);
        }
    }
    for (seq, data) in &records {
        if data.starts_with("partial-once:") && first_time(&format!("partial-{seq}")) {
            record(&json!({"seqs": seqs, "outcome": "partial", "failed": seq}));
            return Ok(json!({"batchItemFailures": [{"itemIdentifier": seq}]}));
        }
    }
    record(&json!({"seqs": seqs, "outcome": "ok", "failed": null}));
    Ok(json!({"batchItemFailures": []}))
}
