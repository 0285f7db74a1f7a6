//! The `local-runner` binary end to end, against the running LocalStack: a template with a
//! Kinesis event, a schedule and API routes for runner-test-fn (plus a function whose binary
//! is missing), then SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn kinesis_client(endpoint: &str) -> Client {
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    if TcpStream::connect(&authority).await.is_err() {
        panic!("LocalStack is not reachable at {endpoint}; start it with localstack/up");
    }
    let sdk = fleetline_aws::sdk_config().await;
    let config = aws_sdk_kinesis::config::Builder::from(&sdk)
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Client::from_conf(config)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A raw HTTP/1.1 request; returns (status, lower-cased head, body).
async fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

async fn status(port: u16) -> Value {
    let (code, _, body) = http(port, "GET", "/runner/status", "")
        .await
        .expect("status");
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

fn recorded(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const TEMPLATE: &str = r#"
Parameters:
  StreamName: {Type: String, Default: not-this-one}
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: {Name: !Ref StreamName}
  TestFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/runner-test-fn
      Timeout: 10
      Events:
        Records:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Stream.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 0
            FunctionResponseTypes: [ReportBatchItemFailures]
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 hour)}
        Proxy:
          Type: Api
          Properties: {Path: '/v1/{proxy+}', Method: GET}
  NotBuilt:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/not-built-anywhere
      Events:
        Route: {Type: Api, Properties: {Path: /missing, Method: GET}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_binary_plays_kinesis_schedules_and_api_gateway() {
    let endpoint = env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
    let client = kinesis_client(&endpoint).await;
    let stream = format!(
        "runner-bin-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );

    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, TEMPLATE).unwrap();
    let recorder = dir.path().join("recorded.jsonl");
    let env_file = dir.path().join("functions.env");
    std::fs::write(
        &env_file,
        format!(
            "RECORDER_FILE={}\n[runner-test-fn]\nRECORDER_STATE={}\n",
            recorder.display(),
            dir.path().join("markers").display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let test_fn = Path::new(env!("CARGO_BIN_EXE_runner-test-fn"));
    let (api_port, invoke_port) = (free_port(), free_port());
    let mut runner = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(["--template", template.to_str().unwrap()])
        .args(["--bin-dir", test_fn.parent().unwrap().to_str().unwrap()])
        .args(["--state-dir", state.to_str().unwrap()])
        .args(["--env-file", env_file.to_str().unwrap()])
        .args(["--parameter-override", &format!("StreamName={stream}")])
        .args(["--schedule-override", "runner-test-fn=rate(1 second)"])
        .args(["--poll-interval", "100ms"])
        .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
        .args(["--invoke-listen", &format!("127.0.0.1:{invoke_port}")])
        .args(["--log-dir", dir.path().join("logs").to_str().unwrap()])
        .arg("--quiet")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", env_or("AWS_ACCESS_KEY_ID", "test"))
        .env(
            "AWS_SECRET_ACCESS_KEY",
            env_or("AWS_SECRET_ACCESS_KEY", "test"),
        )
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("runner.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("local-runner starts");

    // Ready when lambda-host's /health answers through port 9000's stand-in.
    let mut health = None;
    for _ in 0..200 {
        if let Some(answer) = http(invoke_port, "GET", "/health", "").await {
            health = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, _, body) = health.expect("the runner answers /health");
    assert_eq!(code, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["functions"]["runner-test-fn"]["available"], true);
    assert_eq!(
        health["functions"]["not-built-anywhere"]["available"],
        false
    );

    // The stream appears after the runner started (it waits for it).
    client
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let mut seqs = Vec::new();
    for i in 0..12 {
        loop {
            let put = client
                .put_record()
                .stream_name(&stream)
                .partition_key("pk")
                .data(Blob::new(format!("ok:{i}").into_bytes()))
                .send()
                .await;
            match put {
                Ok(out) => {
                    seqs.push(out.sequence_number().to_owned());
                    break;
                }
                // CREATING: not writable yet.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    let mut acknowledged = 0;
    for _ in 0..600 {
        let s = status(invoke_port).await;
        acknowledged = s["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["records_acknowledged"].as_u64().unwrap())
            .sum::<u64>();
        if acknowledged >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(acknowledged, 12);
    let s = status(invoke_port).await;
    assert_eq!(s["mappings"][0]["function"], "runner-test-fn");
    assert_eq!(s["mappings"][0]["stream"], stream.as_str());
    assert_eq!(s["shards"][0]["checkpoint"], seqs[11].as_str());

    // API Gateway.
    let (code, head, body) = http(api_port, "GET", "/v1/fleet/miles?year=2026", "")
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-test-fn: yes"));
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["resource"], "/v1/{proxy+}");
    assert_eq!(echoed["pathParameters"]["proxy"], "fleet/miles");
    assert_eq!(echoed["query"]["year"], "2026");
    assert_eq!(echoed["stage"], "Prod");
    let (code, _, body) = http(api_port, "GET", "/missing", "").await.unwrap();
    assert_eq!(
        (code, body.as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );
    let (code, _, body) = http(api_port, "GET", "/elsewhere", "").await.unwrap();
    assert_eq!(
        (code, body.as_str()),
        (403, r#"{"message":"Missing Authentication Token"}"#)
    );

    // The Invoke API behind the same port as /runner/status.
    let (code, _, body) = http(
        invoke_port,
        "POST",
        "/2015-03-31/functions/runner-test-fn/invocations",
        r#"{"Records":[]}"#,
    )
    .await
    .unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"batchItemFailures":[]}"#));

    // The schedule (overridden to every second) delivers EventBridge's event.
    let mut scheduled = None;
    for _ in 0..200 {
        scheduled = recorded(&recorder)
            .into_iter()
            .find_map(|v| v.get("scheduled").cloned());
        if scheduled.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scheduled = scheduled.expect("a scheduled invocation");
    assert_eq!(scheduled["detail-type"], "Scheduled Event");
    assert_eq!(
        scheduled["resources"][0],
        "arn:aws:events:us-east-1:000000000000:rule/TestFunctionTick"
    );

    // SIGTERM: graceful stop, exit 0, checkpoint on disk.
    let pid = runner.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), runner.wait())
        .await
        .expect("the runner stops after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
    let checkpoints: Value =
        serde_json::from_slice(&std::fs::read(state.join("checkpoints.json")).unwrap()).unwrap();
    let key = format!("runner-test-fn/{stream}/shardId-000000000000");
    assert_eq!(checkpoints[&key]["sequence_number"], seqs[11].as_str());

    let _ = client.delete_stream().stream_name(&stream).send().await;
}
