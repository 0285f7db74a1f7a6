//! `infra/smoke` (the post-deploy check) against the local stack: the real `local-runner`
//! hosts the real stream-processor and query-api binaries on LocalStack Kinesis and the
//! Data API emulator, and `infra/smoke --api-url … --stream …` puts readings, waits and
//! checks the REST answers against what it sent, as it would after `sam deploy`.
//!
//! 1. the right expectations → exit 0;
//! 2. a wrong expectation (a rapid-acceleration threshold of 20 km/h per s while the
//!    functions use the template's 10) → exit 1, naming the rapid-acceleration checks;
//! 3. a stream that does not exist → exit 4 (sending failed).
//!
//! Own database, stream, runner ports and state directory. Needs the local stack
//! (`localstack/up`) and the binaries (`cargo build -p local-runner -p stream-processor
//! -p query-api`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleetline_tests::{
    QUERY_API_BATCH_TABLES, create_active_stream, create_batch_tables, create_speed_layer_database,
    data_api_client, data_api_endpoint, drop_test_database, kinesis_client, local_aws_env,
    repo_root, require_localstack, test_warehouse, unique_name, workspace_bin,
};
use serde_json::Value;

/// The runner, stopped with SIGTERM (it stops its function processes) when dropped.
struct Runner {
    child: Child,
}

impl Drop for Runner {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not reaped yet (its pid cannot be reused).
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("local_addr")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// GET on the runner's Invoke API port (plain HTTP/1.0, the body until close).
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

/// `infra/smoke` with the local AWS environment; its output is echoed for the test log.
fn smoke(args: &[&str]) -> Output {
    let out = Command::new(repo_root().join("infra/smoke"))
        .args(args)
        .envs(local_aws_env())
        .stdin(Stdio::null())
        .output()
        .expect("run infra/smoke");
    eprintln!(
        "infra/smoke {args:?} -> {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_checks_the_local_runner_answers_and_fails_on_a_wrong_expectation() {
    require_localstack();
    let _ = data_api_client().await; // panics with "start it with localstack/up" when down

    let db = create_speed_layer_database("smoke").await;
    // query-api also reads the batch tables (empty: no batch run, boundary NULL).
    create_batch_tables(&test_warehouse(&db).await, QUERY_API_BATCH_TABLES).await;

    let kinesis = kinesis_client().await;
    let stream = unique_name("smoke");
    create_active_stream(&kinesis, &stream, 1).await;

    let work = tempfile::Builder::new()
        .prefix("fleetline-smoke-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let env_file = work.path().join("functions.env");
    std::fs::write(&env_file, format!("FLEETLINE_REDSHIFT_DATABASE={db}\n")).expect("env file");
    let (api, invoke) = (free_port(), free_port());
    let log = work.path().join("runner.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(workspace_bin("local-runner"))
        .arg("--template")
        .arg(repo_root().join("template.yaml"))
        .arg("--bin-dir")
        .arg(workspace_bin("local-runner").parent().expect("bin dir"))
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .arg("--env-file")
        .arg(&env_file)
        .arg("--log-dir")
        .arg(work.path().join("functions"))
        .args([
            "--functions",
            "stream-processor,query-api",
            "--no-schedules",
        ])
        .args(["--stream", &stream, "--poll-interval", "200ms"])
        .args(["--api-listen", &api.to_string()])
        .args(["--invoke-listen", &invoke.to_string()])
        .arg("--quiet")
        .envs(local_aws_env())
        .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_endpoint())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone"))
        .stderr(log_file)
        .spawn()
        .expect("spawn local-runner");
    let mut runner = Runner { child };

    // Ready when the stream-processor mapping polls the stream.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some((200, body)) = get(invoke, "/runner/status").await {
            let status: Value = serde_json::from_str(&body).unwrap_or_default();
            let mappings = status["mappings"].as_array().cloned().unwrap_or_default();
            if !mappings.is_empty() && mappings.iter().all(|m| m["state"] == "running") {
                break;
            }
        }
        if let Ok(Some(code)) = runner.child.try_wait() {
            panic!("local-runner exited ({code}):\n{}", tail(&log, 40));
        }
        assert!(
            Instant::now() < deadline,
            "local-runner not ready after 120 s:\n{}",
            tail(&log, 40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let functions_log = |name: &str| tail(&work.path().join(format!("functions/{name}.log")), 30);
    let logs = || {
        format!(
            "runner:\n{}\nquery-api:\n{}\nstream-processor:\n{}",
            tail(&log, 20),
            functions_log("query-api"),
            functions_log("stream-processor")
        )
    };
    let url = format!("http://{api}/");
    let smoke_on = |stream: &str, timeout: &str, extra: &[&str]| {
        let mut args = vec!["--api-url", &url, "--stream", stream, "--timeout", timeout];
        args.extend(extra);
        smoke(&args)
    };
    let ok = smoke_on(&stream, "120", &["--seed", "1"]);
    assert_eq!(ok.status.code(), Some(0), "{}", logs());
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains("all answers match"),
        "no success line in: {text}"
    );
    assert!(!text.contains("[FAIL]"), "{text}");

    // The functions count acceleration >= 10 (the template's RapidAccelThreshold); expecting
    // 20 must fail on the rapid-acceleration numbers only.
    let wrong = smoke_on(&stream, "120", &["--seed", "2", "--rapid-threshold", "20"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", logs());
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert!(text.contains("[FAIL] rapid accelerations"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("[FAIL]"))
            .all(|l| l.contains("rapid")),
        "only the rapid-acceleration checks may fail: {text}"
    );

    let missing = smoke_on(&format!("{stream}-missing"), "5", &[]);
    assert_eq!(missing.status.code(), Some(4), "{}", logs());

    drop(runner);
    let _ = kinesis.delete_stream().stream_name(&stream).send().await;
    drop_test_database(&db).await;
}
