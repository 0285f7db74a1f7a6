//! Shared helpers for the integration tests: local endpoints and clients.

// --- Redshift Data API emulator (owned by the emulator's helper) ---

/// The Data API endpoint: `AWS_ENDPOINT_URL_REDSHIFT_DATA`, default the local emulator.
pub fn data_api_endpoint() -> String {
    env_or("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:4599")
}

/// Region and static credentials for the local stack (env, default us-east-1 test/test).
pub fn local_region_and_credentials() -> (String, aws_credential_types::Credentials) {
    let region = env_or("AWS_REGION", "us-east-1");
    let creds = aws_credential_types::Credentials::new(
        env_or("AWS_ACCESS_KEY_ID", "test"),
        env_or("AWS_SECRET_ACCESS_KEY", "test"),
        None,
        None,
        "fleetline-tests",
    );
    (region, creds)
}

/// A Redshift Data API client against [`data_api_endpoint`]. Panics with a hint when the
/// emulator is not reachable, so a stopped stack is reported clearly.
pub async fn data_api_client() -> aws_sdk_redshiftdata::Client {
    data_api_client_at(&data_api_endpoint()).await
}

/// A Redshift Data API client against `endpoint` (e.g. a test's own emulator), SDK retries
/// as configured by `fleetline_aws::sdk_config`. Panics with a hint when nothing listens.
pub async fn data_api_client_at(endpoint: &str) -> aws_sdk_redshiftdata::Client {
    let endpoint = endpoint.to_owned();
    let probe = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if tokio::net::TcpStream::connect(&probe).await.is_err() {
        panic!(
            "Redshift Data API emulator not reachable at {endpoint}: start it with localstack/up"
        );
    }
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = local_region_and_credentials();
    let conf = aws_sdk_redshiftdata::config::Builder::from(&shared)
        .region(aws_sdk_redshiftdata::config::Region::new(region))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_redshiftdata::Client::from_conf(conf)
}

/// An S3 client for LocalStack (path-style addressing).
pub async fn local_s3_client() -> aws_sdk_s3::Client {
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = local_region_and_credentials();
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .region(aws_sdk_s3::config::Region::new(region))
        .credentials_provider(creds)
        .endpoint_url(localstack_endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

// --- Kinesis, child processes, workspace binaries (owned by the simulator's helper) ---

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Default LocalStack endpoint (overridden by `AWS_ENDPOINT_URL`).
pub const DEFAULT_LOCALSTACK_ENDPOINT: &str = "http://127.0.0.1:4566";
pub const DEFAULT_REGION: &str = "us-east-1";

/// The value of an environment variable, or `default` when unset or empty.
pub fn env_or(key: &str, default: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

/// LocalStack's endpoint: `AWS_ENDPOINT_URL` or the default.
pub fn localstack_endpoint() -> String {
    env_or("AWS_ENDPOINT_URL", DEFAULT_LOCALSTACK_ENDPOINT)
}

/// Endpoint of one service: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else
/// LocalStack's default. `service` as in the variable name, e.g. `KINESIS`.
pub fn service_endpoint(service: &str) -> String {
    env_or(
        &format!("AWS_ENDPOINT_URL_{service}"),
        &localstack_endpoint(),
    )
}

/// The AWS environment for a child process (a workspace binary), with the local defaults
/// for whatever is not set: region, test credentials, LocalStack endpoint.
pub fn local_aws_env() -> Vec<(String, String)> {
    [
        ("AWS_REGION", DEFAULT_REGION),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", DEFAULT_LOCALSTACK_ENDPOINT),
    ]
    .iter()
    .map(|(k, d)| (k.to_string(), env_or(k, d)))
    .collect()
}

/// Panics with a clear message when nothing listens at `url`'s host and port.
pub fn require_reachable(url: &str, what: &str, how_to_start: &str) {
    let hostport = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let reachable = hostport
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "{what} is not reachable at {url}: start it with {how_to_start}"
    );
}

/// Panics unless LocalStack answers ("start it with localstack/up").
pub fn require_localstack() {
    require_reachable(&localstack_endpoint(), "LocalStack", "localstack/up");
}

/// A Kinesis client for the local stack (endpoint `AWS_ENDPOINT_URL_KINESIS`, else
/// `AWS_ENDPOINT_URL`, else LocalStack's default).
pub async fn kinesis_client() -> aws_sdk_kinesis::Client {
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = local_region_and_credentials();
    let conf = aws_sdk_kinesis::config::Builder::from(&shared)
        .region(aws_sdk_kinesis::config::Region::new(region))
        .credentials_provider(creds)
        .endpoint_url(service_endpoint("KINESIS"))
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// Path of a workspace binary, next to the test executable (`target/<profile>/<name>`).
/// `cargo test -p fleetline-tests` does not build other packages' binaries, so this panics
/// with the command to run when it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable has no target directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} not found: run `cargo build -p {name}` first (cargo test -p fleetline-tests does not build it)",
        path.display()
    );
    path
}

/// A name unique to this process and instant, e.g. for a throw-away stream or bucket.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:09}", std::process::id())
}

// --- Per-test Redshift databases (owned by the speed-layer helper) ---

/// The repository root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Creates a fresh database `<prefix>_<random>` through the Data API (connected to `dev`)
/// and returns its name, so that a test has its own tables and can run in parallel and
/// repeatedly. Drop it with [`drop_test_database`].
pub async fn create_test_database(prefix: &str) -> String {
    let client = data_api_client().await;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
        .chars()
        .take(40)
        .collect::<String>();
    let warehouse = fleetline_aws::DataApiWarehouse::new(
        &client,
        fleetline_aws::WarehouseConfig::workgroup("fleetline", "dev"),
    );
    use fleetline_aws::Warehouse as _;
    warehouse
        .execute(&format!("CREATE DATABASE {name}"), &[])
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    name
}

/// Applies the given `infra/sql` files (by file name, in the order given) to `database` with
/// `localstack/apply-sql`, copying them to a temporary directory first so that a test only
/// depends on the SQL it exercises.
pub fn apply_sql_files(database: &str, files: &[&str]) {
    let root = repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    for f in files {
        std::fs::copy(root.join("infra/sql").join(f), dir.path().join(f))
            .unwrap_or_else(|e| panic!("copy infra/sql/{f}: {e}"));
    }
    let out = std::process::Command::new(root.join("localstack/apply-sql"))
        .arg("--database")
        .arg(database)
        .arg("--dir")
        .arg(dir.path())
        .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_endpoint())
        .output()
        .expect("run localstack/apply-sql");
    assert!(
        out.status.success(),
        "apply-sql --database {database} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Best-effort `DROP DATABASE … WITH (FORCE)` on the emulator's PostgreSQL (the Data API
/// emulator keeps pooled sessions open, which a plain DROP DATABASE would wait for).
/// `FLEETLINE_TEST_POSTGRES` overrides the connection string (without `dbname`).
pub async fn drop_test_database(name: &str) {
    let base = env_or(
        "FLEETLINE_TEST_POSTGRES",
        "host=127.0.0.1 port=5433 user=postgres",
    );
    let conn = format!("{base} dbname=postgres");
    if let Ok((client, connection)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
        tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

// --- Shared set-up: bucket, stream, simulator ---

/// Creates `bucket` in LocalStack S3 unless it already exists.
pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    if let Err(e) = s3.create_bucket().bucket(bucket).send().await {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
        assert!(exists, "CreateBucket {bucket}: {e:?}");
    }
}

/// Waits until `stream` is ACTIVE (60 s at most; LocalStack is slow under load) and
/// returns its ARN.
pub async fn wait_stream_active(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> String {
    use aws_sdk_kinesis::types::StreamStatus;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let d = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStreamSummary {stream}: {e:?}"));
        if let Some(s) = d.stream_description_summary()
            && s.stream_status() == &StreamStatus::Active
        {
            return s.stream_arn().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream {stream} did not become ACTIVE in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a Kinesis stream with `shards` shards, waits until it is ACTIVE, returns its ARN.
pub async fn create_active_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    shards: i32,
) -> String {
    kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {stream}: {e:?}"));
    wait_stream_active(kinesis, stream).await
}

/// What one simulator run wrote: its lines (in send order) and its ground truth.
pub struct Simulated {
    pub lines: Vec<Vec<u8>>,
    pub truth: serde_json::Value,
}

/// Runs the simulator binary with `args` plus `--out DIR/NAME.jsonl --truth
/// DIR/NAME-truth.json`, and checks that the truth counts every line it wrote.
pub fn run_simulator(
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
    envs: &[(String, String)],
) -> Simulated {
    let out = dir.join(format!("{name}.jsonl"));
    let truth = dir.join(format!("{name}-truth.json"));
    let status = std::process::Command::new(workspace_bin("simulator"))
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--truth")
        .arg(&truth)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .status()
        .expect("run simulator");
    assert!(status.success(), "simulator {args:?}: {status}");
    let lines: Vec<Vec<u8>> = std::fs::read(&out)
        .expect("read --out")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&truth).expect("read --truth")).expect("truth JSON");
    assert_eq!(
        truth["counts"]["records_sent"].as_u64(),
        Some(lines.len() as u64),
        "the truth counts every line the simulator wrote"
    );
    Simulated { lines, truth }
}
