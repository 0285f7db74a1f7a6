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

/// SQS client for LocalStack.
pub async fn local_sqs_client() -> aws_sdk_sqs::Client {
    let shared = fleetline_aws::sdk_config().await;
    let (region, creds) = local_region_and_credentials();
    let conf = aws_sdk_sqs::config::Builder::from(&shared)
        .region(aws_sdk_sqs::config::Region::new(region))
        .credentials_provider(creds)
        .endpoint_url(localstack_endpoint())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// Creates queue `queue` and sends it `bucket`'s `s3:ObjectCreated:*` notifications under
/// `prefix` (what template.yaml's LakeChangesQueue and LakeBucket NotificationConfiguration
/// do on AWS). Replaces the bucket's notification configuration, so `bucket` must be the
/// caller's own. Returns the queue URL.
pub async fn lake_change_queue(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    bucket: &str,
    prefix: &str,
    queue: &str,
) -> String {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {queue}: {e:?}"))
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN");
    let rule = FilterRule::builder()
        .name(FilterRuleName::Prefix)
        .value(prefix)
        .build();
    let filter = NotificationConfigurationFilter::builder()
        .key(S3KeyFilter::builder().filter_rules(rule).build())
        .build();
    let entry = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .expect("queue configuration");
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(entry)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketNotificationConfiguration {bucket}: {e:?}"));
    url
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

// --- Kinesis events as Lambda's event source mapping delivers them ---

/// One Kinesis record as read back from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrival_secs: f64,
}

/// A Kinesis event as Lambda's event source mapping builds it (eventID
/// `<shard>:<sequence>`, base64 data), invoked as `role`.
pub fn kinesis_event(stream_arn: &str, role: &str, records: &[StreamRecord]) -> serde_json::Value {
    use base64::Engine as _;
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrival_secs,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard_id, r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::000000000000:role/{role}"),
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Every record of a one-shard stream from TRIM_HORIZON, in sequence order; asserts that
/// there are `expected` (all of them were put before reading started).
pub async fn read_one_shard_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    expected: usize,
) -> Vec<StreamRecord> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let shard = shards
        .shards()
        .first()
        .expect("one shard")
        .shard_id()
        .to_owned();
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("iterator");
    let mut out = Vec::new();
    for _ in 0..2_000 {
        let r = kinesis
            .get_records()
            .shard_iterator(&iterator)
            .limit(10_000)
            .send()
            .await
            .expect("GetRecords");
        for rec in r.records() {
            out.push(StreamRecord {
                shard_id: shard.clone(),
                sequence_number: rec.sequence_number().to_owned(),
                partition_key: rec.partition_key().unwrap_or_default().to_owned(),
                data: rec.data().as_ref().to_vec(),
                arrival_secs: rec
                    .approximate_arrival_timestamp()
                    .map(|t| t.as_secs_f64())
                    .unwrap_or_default(),
            });
        }
        if out.len() >= expected && r.records().is_empty() {
            break;
        }
        match r.next_shard_iterator {
            Some(next) => iterator = next,
            None => break,
        }
    }
    assert_eq!(out.len(), expected, "records read back from {stream}");
    out
}

// --- Reading S3 objects back ---

/// key → ETag of every object under `prefix` in `bucket`, all pages.
pub async fn list_etags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        for o in page.contents() {
            out.insert(
                o.key().unwrap_or_default().to_owned(),
                o.e_tag().unwrap_or_default().to_owned(),
            );
        }
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

/// The body of object `key` in `bucket`.
pub async fn get_object_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// key → body of every object under `prefix` in `bucket`.
pub async fn object_bodies(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for key in list_etags(s3, bucket, prefix).await.into_keys() {
        let body = get_object_bytes(s3, bucket, &key).await;
        out.insert(key, body);
    }
    out
}

// --- Functions run as their real binaries under lambda-host ---

/// The environment a function needs to reach `database` of the `fleetline` workgroup
/// through the local Data API emulator.
pub fn warehouse_env(database: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api_endpoint()),
        ("FLEETLINE_REDSHIFT_WORKGROUP", "fleetline".to_owned()),
        ("FLEETLINE_REDSHIFT_DATABASE", database.to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into()
}

/// The workspace binary `name` as a Lambda function with `timeout`, logging to
/// `log_dir/<name>.log` (not to the test's output) and with `env`.
pub fn function_spec(
    name: &str,
    timeout: Duration,
    log_dir: &std::path::Path,
    env: &[(String, String)],
) -> lambda_host::FunctionSpec {
    let mut s = lambda_host::FunctionSpec::new(name, workspace_bin(name))
        .with_timeout(timeout)
        .with_log_file(log_dir.join(format!("{name}.log")))
        .with_forward_output(false);
    for (k, v) in env {
        s = s.with_env(k, v);
    }
    s
}

/// Invokes `function` with `event` and returns its JSON answer; panics, naming `what`, when
/// the invocation fails (a function error or a host error).
pub async fn invoke_for_json(
    function: &lambda_host::HostedFunction,
    event: &serde_json::Value,
    what: &str,
) -> serde_json::Value {
    match function.invoke_json(event).await {
        Ok(lambda_host::InvokeOutcome::Ok(body)) => {
            serde_json::from_slice(&body).expect("JSON response")
        }
        other => panic!("{what} invocation failed: {other:?}"),
    }
}

/// A fresh test database (see [`create_test_database`]) with the speed layer's tables
/// (infra/sql 00, 05 and 10).
pub async fn create_speed_layer_database(prefix: &str) -> String {
    let db = create_test_database(prefix).await;
    apply_sql_files(
        &db,
        &["00_schemas.sql", "05_control.sql", "10_speed_layer.sql"],
    );
    db
}

// --- Reading lake Parquet back (the parquet crate's record API, not the writer's code) ---

/// A reader over one Parquet object's bytes.
pub fn parquet_reader(bytes: Vec<u8>) -> parquet::file::reader::SerializedFileReader<bytes::Bytes> {
    parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
        .expect("a Parquet file")
}

/// Every row of the file, in file order.
pub fn parquet_rows(
    reader: &parquet::file::reader::SerializedFileReader<bytes::Bytes>,
) -> Vec<parquet::record::Row> {
    use parquet::file::reader::FileReader as _;
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|row| row.expect("row"))
        .collect()
}

/// A row's fields by column name.
pub fn parquet_columns(
    row: &parquet::record::Row,
) -> std::collections::HashMap<&str, &parquet::record::Field> {
    row.get_column_iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect()
}

/// A decimal field as (unscaled value, scale); the big-endian two's-complement bytes are
/// sign-extended to 64 bits.
pub fn decimal_unscaled(f: &parquet::record::Field) -> (i64, i32) {
    let parquet::record::Field::Decimal(d) = f else {
        panic!("not a decimal: {f:?}")
    };
    let b = d.data();
    let mut buf = [if b[0] & 0x80 != 0 { 0xff } else { 0 }; 8];
    buf[8 - b.len()..].copy_from_slice(b);
    (i64::from_be_bytes(buf), d.scale())
}

// --- Per-test working directory and warehouse ---

/// A fresh directory `/tmp/<prefix>XXXX` for a test's function logs and simulator output
/// (under /tmp, not the system temp dir, so that it is easy to find after a failure).
pub fn work_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir")
}

/// The warehouse adapter on `database` of the `fleetline` workgroup, through the local Data
/// API emulator.
pub async fn test_warehouse(database: &str) -> fleetline_aws::DataApiWarehouse {
    fleetline_aws::DataApiWarehouse::new(
        &data_api_client().await,
        fleetline_aws::WarehouseConfig::workgroup("fleetline", database),
    )
}

/// Best-effort deletion of every object under `prefix` in `bucket` (test clean-up).
pub async fn delete_objects_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    for key in list_etags(s3, bucket, prefix).await.into_keys() {
        let _ = s3.delete_object().bucket(bucket).key(key).send().await;
    }
}

// --- The simulator's ground truth ---

/// One row of the ground truth's `daily` (per vehicle, trip and UTC day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthDaily {
    pub vin: String,
    pub trip_id: String,
    pub date: chrono::NaiveDate,
    pub readings: i64,
    pub sum_speed_milli: i64,
    pub min_odometer_m: i64,
    pub max_odometer_m: i64,
    pub rapid_accelerations: i64,
}

/// The ground truth's `daily` rows, as the simulator wrote them.
pub fn truth_daily_rows(truth: &serde_json::Value) -> Vec<TruthDaily> {
    truth["daily"]
        .as_array()
        .expect("truth.daily")
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_else(|| panic!("truth daily {k}"));
            let i = |k: &str| d[k].as_i64().unwrap_or_else(|| panic!("truth daily {k}"));
            TruthDaily {
                vin: s("vin").to_owned(),
                trip_id: s("trip_id").to_owned(),
                date: s("date").parse().expect("truth daily date"),
                readings: i("readings"),
                sum_speed_milli: i("sum_speed_milli"),
                min_odometer_m: i("min_odometer_m"),
                max_odometer_m: i("max_odometer_m"),
                rapid_accelerations: i("rapid_accelerations"),
            }
        })
        .collect()
}

/// Removes a test's kept [`work_dir`] once the test has passed, unless
/// `FLEETLINE_TEST_KEEP_LOGS` is set (a failed test never gets here, so its logs stay).
pub fn remove_work_dir(work: &std::path::Path) {
    if std::env::var_os("FLEETLINE_TEST_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(work);
    }
}

/// Best-effort deletion of Kinesis stream `stream` (test clean-up).
pub async fn delete_stream_quietly(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    let _ = kinesis.delete_stream().stream_name(stream).send().await;
}
