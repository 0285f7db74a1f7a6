//! Shared helpers for the integration tests: local endpoints and clients.

// --- Redshift Data API emulator ---

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

/// A `$sdk` client for the local stack at `$endpoint`: the shared SDK configuration
/// (`fleetline_aws::sdk_config`) with the local region and credentials, plus any extra
/// builder calls (e.g. S3's path-style addressing). Every client is built the same way.
macro_rules! local_client {
    ($sdk:ident, $endpoint:expr $(, $extra:ident($arg:expr))*) => {{
        let shared = fleetline_aws::sdk_config().await;
        let (region, creds) = local_region_and_credentials();
        let conf = $sdk::config::Builder::from(&shared)
            .region($sdk::config::Region::new(region))
            .credentials_provider(creds)
            .endpoint_url($endpoint)
            $(.$extra($arg))*
            .build();
        $sdk::Client::from_conf(conf)
    }};
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
    local_client!(aws_sdk_redshiftdata, endpoint)
}

/// Polls DescribeStatement until statement `id` ends (FINISHED, FAILED or ABORTED): a safety
/// limit of a minute, not a timing check.
pub async fn wait_statement(
    c: &aws_sdk_redshiftdata::Client,
    id: &str,
) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput {
    use aws_sdk_redshiftdata::types::StatusString;
    for _ in 0..1200 {
        let d = c.describe_statement().id(id).send().await;
        let d = d.unwrap_or_else(|e| panic!("DescribeStatement {id}: {e:?}"));
        if matches!(
            d.status(),
            Some(StatusString::Finished | StatusString::Failed | StatusString::Aborted)
        ) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("statement {id} did not finish");
}

/// All pages of statement `id`'s result: (columns, rows, number of pages).
pub async fn statement_result(
    c: &aws_sdk_redshiftdata::Client,
    id: &str,
) -> (
    Vec<aws_sdk_redshiftdata::types::ColumnMetadata>,
    Vec<Vec<aws_sdk_redshiftdata::types::Field>>,
    usize,
) {
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c
            .get_statement_result()
            .id(id)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetStatementResult {id}: {e:?}"));
        pages += 1;
        let cols = page.column_metadata().to_vec();
        rows.extend(page.records().iter().cloned());
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return (cols, rows, pages),
        }
    }
}

/// An S3 client for LocalStack (path-style addressing).
pub async fn local_s3_client() -> aws_sdk_s3::Client {
    local_client!(aws_sdk_s3, localstack_endpoint(), force_path_style(true))
}

// --- Kinesis, child processes, workspace binaries ---

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
    local_client!(aws_sdk_kinesis, service_endpoint("KINESIS"))
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

// --- Per-test Redshift databases ---

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

/// Runs `cmd` to completion and returns its output; panics, naming `what` and showing
/// both output streams, when it cannot start or does not succeed.
pub fn run_checked(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with `input` on its standard input and returns its standard output; panics,
/// naming `what`, when it cannot start or does not succeed.
pub fn pipe_through(cmd: &mut std::process::Command, input: &[u8], what: &str) -> Vec<u8> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .unwrap_or_else(|e| panic!("write to {what}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what} output: {e}"));
    assert!(out.status.success(), "{what} failed: {}", out.status);
    out.stdout
}

/// Applies the SQL files in `dir` to `database` with `localstack/apply-sql`, through the
/// Data API at `endpoint`, with one `--var NAME=VALUE` per entry of `vars`.
pub fn apply_sql_dir(endpoint: &str, database: &str, dir: &std::path::Path, vars: &[(&str, &str)]) {
    let mut cmd = std::process::Command::new(repo_root().join("localstack/apply-sql"));
    cmd.arg("--database").arg(database);
    for (name, value) in vars {
        cmd.arg("--var").arg(format!("{name}={value}"));
    }
    cmd.arg("--dir")
        .arg(dir)
        .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", endpoint);
    let what = format!("apply-sql --database {database} --dir {}", dir.display());
    run_checked(&mut cmd, &what);
}

/// Applies the given `infra/sql` files (paths below infra/sql, e.g. `local/25_lake_table.sql`,
/// applied in file-name order) to `database` with `localstack/apply-sql` and `vars`, copying
/// them to a temporary directory first so that a test only depends on the SQL it exercises.
pub fn apply_sql_files_with_vars(database: &str, files: &[&str], vars: &[(&str, &str)]) {
    let root = repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    for f in files {
        let name = std::path::Path::new(f)
            .file_name()
            .unwrap_or_else(|| panic!("infra/sql/{f} names no file"));
        std::fs::copy(root.join("infra/sql").join(f), dir.path().join(name))
            .unwrap_or_else(|e| panic!("copy infra/sql/{f}: {e}"));
    }
    apply_sql_dir(&data_api_endpoint(), database, dir.path(), vars);
}

/// [`apply_sql_files_with_vars`] without variables.
pub fn apply_sql_files(database: &str, files: &[&str]) {
    apply_sql_files_with_vars(database, files, &[]);
}

/// The `CREATE TABLE IF NOT EXISTS <table> (…)` statement of infra/sql/20_batch_layer.sql,
/// for a test that needs a batch table without the rest of the batch layer.
pub fn batch_table_ddl(table: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("infra/sql/20_batch_layer.sql"))
        .expect("20_batch_layer.sql");
    let start = text
        .find(&format!("CREATE TABLE IF NOT EXISTS {table} ("))
        .unwrap_or_else(|| panic!("{table} in 20_batch_layer.sql"));
    let end = start + text[start..].find(';').expect("end of statement");
    text[start..end].to_owned()
}

/// The batch tables query-api reads (`/v1/status` and the merged answers).
pub const QUERY_API_BATCH_TABLES: &[&str] = &[
    "batch.vehicle_daily",
    "batch.fleet_daily",
    "batch.batchlayer_rapid_acceleration_by_year",
    "batch.pending_days",
    "batch.day_recomputes",
];

/// Creates the batch tables `tables` (see [`batch_table_ddl`]) in `warehouse`.
pub async fn create_batch_tables(warehouse: &impl fleetline_aws::Warehouse, tables: &[&str]) {
    for table in tables {
        warehouse
            .execute(&batch_table_ddl(table), &[])
            .await
            .unwrap_or_else(|e| panic!("create {table}: {e}"));
    }
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
    local_client!(aws_sdk_sqs, localstack_endpoint())
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
/// `<shard>:<sequence>`, base64 data), invoked as `role`: the local runner's builder.
pub fn kinesis_event(stream_arn: &str, role: &str, records: &[StreamRecord]) -> serde_json::Value {
    use local_runner::kinesis::event::{EventOrigin, event_json, event_of, event_record};
    let identity = format!("arn:aws:iam::000000000000:role/{role}");
    let records = records
        .iter()
        .map(|r| {
            let origin = EventOrigin {
                shard_id: &r.shard_id,
                stream_arn,
                region: "us-east-1",
                identity_arn: &identity,
            };
            let record = local_runner::kinesis::StreamRecord {
                sequence_number: r.sequence_number.clone(),
                partition_key: r.partition_key.clone(),
                data: r.data.clone(),
                approximate_arrival: r.arrival_secs,
            };
            event_record(&record, &origin)
        })
        .collect();
    event_json(&event_of(records)).expect("a Kinesis event is JSON")
}

/// Every record of a one-shard stream from TRIM_HORIZON, in sequence order; asserts that
/// there are `expected` (all of them were put before reading started).
pub async fn read_one_shard_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    expected: usize,
) -> Vec<StreamRecord> {
    let out = read_stream(kinesis, stream)
        .await
        .unwrap_or_else(|e| panic!("reading {stream}: {e}"));
    assert_eq!(out.len(), expected, "records read back from {stream}");
    out
}

/// Every record of every shard of `stream` from TRIM_HORIZON, shard by shard in sequence
/// order. Everything must have been put before reading started: a shard is drained when
/// GetRecords comes back empty and caught up (twice, to be safe). An error (rather than a
/// panic) lets the caller clean up first.
pub async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<StreamRecord>, String> {
    let shards = kinesis.list_shards().stream_name(stream).send().await;
    let shards = shards.map_err(|e| format!("ListShards: {e:?}"))?;
    let mut out = Vec::new();
    for shard in shards.shards() {
        out.extend(read_shard(kinesis, stream, shard.shard_id()).await?);
    }
    Ok(out)
}

async fn read_shard(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
) -> Result<Vec<StreamRecord>, String> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| format!("GetShardIterator: {e:?}"))?
        .shard_iterator
        .ok_or("no shard iterator")?;
    let mut out = Vec::new();
    let mut empty_polls = 0;
    for _ in 0..2_000 {
        let request = kinesis.get_records().shard_iterator(&iterator);
        let r = request
            .limit(10_000)
            .send()
            .await
            .map_err(|e| format!("GetRecords: {e:?}"))?;
        out.extend(r.records().iter().map(|rec| {
            StreamRecord {
                shard_id: shard.to_owned(),
                sequence_number: rec.sequence_number().to_owned(),
                partition_key: rec.partition_key().unwrap_or_default().to_owned(),
                data: rec.data().as_ref().to_vec(),
                arrival_secs: rec
                    .approximate_arrival_timestamp()
                    .map(|t| t.as_secs_f64())
                    .unwrap_or_default(),
            }
        }));
        let caught_up = r.millis_behind_latest().unwrap_or(0) == 0;
        if r.records().is_empty() && caught_up {
            empty_polls += 1;
            if empty_polls == 2 {
                break;
            }
        } else {
            empty_polls = 0;
        }
        match r.next_shard_iterator {
            Some(next) => iterator = next,
            None => break,
        }
    }
    Ok(out)
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

/// The environment of a function under test: the local AWS settings, `database` through
/// the local Data API emulator, `RUST_LOG` (default info), then `extra`.
pub fn function_env(database: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = local_aws_env();
    env.extend(warehouse_env(database));
    env.push(("RUST_LOG".to_owned(), env_or("RUST_LOG", "info")));
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

/// Starts the function `spec` describes; panics naming it when it does not start.
pub async fn start_function(spec: lambda_host::FunctionSpec) -> lambda_host::HostedFunction {
    let name = spec.name.clone();
    lambda_host::HostedFunction::start(spec)
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// What a stream-consumer test sets up before it starts its functions: its own database
/// with the speed layer's tables, a kept work directory, `bucket` in S3, a fresh one-shard
/// Kinesis stream and the warehouse adapter on the database.
pub struct TestBed {
    pub db: String,
    /// The database's random part, for names that must not collide between tests.
    pub id: String,
    pub work: PathBuf,
    pub s3: aws_sdk_s3::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub stream: String,
    pub stream_arn: String,
    pub warehouse: fleetline_aws::DataApiWarehouse,
}

impl TestBed {
    /// Database `<name>_<id>`, stream `<name>-<id>`, work directory
    /// `/tmp/fleetline-<name>-<id>-XXXX`.
    pub async fn start(name: &str, bucket: &str) -> Self {
        require_localstack();
        let _ = data_api_client().await; // panics with a hint when the emulator is down
        let db = create_speed_layer_database(name).await;
        let id = db.trim_start_matches(&format!("{name}_")).to_owned();
        let work = work_dir(&format!("fleetline-{name}-{id}-")).keep();
        let s3 = local_s3_client().await;
        ensure_bucket(&s3, bucket).await;
        let kinesis = kinesis_client().await;
        let stream = format!("{name}-{id}");
        let stream_arn = create_active_stream(&kinesis, &stream, 1).await;
        let warehouse = test_warehouse(&db).await;
        // Shown with the output of a failed test: where to look.
        eprintln!(
            "{name} test: database {db}, stream {stream}, logs {}",
            work.display()
        );
        Self {
            db,
            id,
            work,
            s3,
            kinesis,
            stream,
            stream_arn,
            warehouse,
        }
    }
}

/// The local stack's Python venv (`localstack/lib/common.sh` decides where it is).
pub fn venv_dir() -> PathBuf {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg("source \"$1/localstack/lib/common.sh\" && fl_venv_python")
        .arg("bash")
        .arg(repo_root());
    let out = run_checked(&mut cmd, "fl_venv_python");
    let python = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    python
        .parent()
        .and_then(|bin| bin.parent())
        .unwrap_or_else(|| panic!("venv python {} has no venv", python.display()))
        .to_path_buf()
}

/// A command running the venv's `name` (e.g. `python`, `aws`), with the local test
/// credentials and region wherever the environment sets none.
pub fn venv_command(name: &str) -> std::process::Command {
    let path = venv_dir().join("bin").join(name);
    assert!(
        path.exists(),
        "{} missing: set FLEETLINE_VENV or install the venv with localstack/up",
        path.display()
    );
    let mut cmd = std::process::Command::new(path);
    let region = env_or("AWS_REGION", DEFAULT_REGION);
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", DEFAULT_REGION),
        ("AWS_DEFAULT_REGION", &region),
    ] {
        if std::env::var(k).is_err() {
            cmd.env(k, v);
        }
    }
    cmd
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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

/// A daily row's key: (vin, trip, day).
pub type DailyKey = (String, String, chrono::NaiveDate);
/// A daily row's integers: readings, sum of speed (m km/h), min and max odometer (m), rapid
/// accelerations.
pub type DailyTotals = (i64, i64, i64, i64, i64);

/// The ground truth's `daily` rows by (vin, trip, day).
pub fn truth_daily_map(
    truth: &serde_json::Value,
) -> std::collections::BTreeMap<DailyKey, DailyTotals> {
    truth_daily_rows(truth)
        .into_iter()
        .map(|d| {
            let totals = (
                d.readings,
                d.sum_speed_milli,
                d.min_odometer_m,
                d.max_odometer_m,
                d.rapid_accelerations,
            );
            ((d.vin, d.trip_id, d.date), totals)
        })
        .collect()
}

/// Daily rows read back from the warehouse, with the columns `vin`, `trip_id`, `event_day`,
/// `readings`, `sum_speed`, `min_odometer`, `max_odometer` (decimals of scale 3) and
/// `rapid_accelerations`.
pub fn warehouse_daily_map(
    rs: &fleetline_aws::warehouse::ResultSet,
) -> std::collections::BTreeMap<DailyKey, DailyTotals> {
    rs.iter()
        .map(|r| {
            let fail = |c: &str, e: fleetline_aws::warehouse::DecodeError| -> ! {
                panic!("daily row {c}: {e}")
            };
            let text = |c: &str| r.get_string(c).unwrap_or_else(|e| fail(c, e));
            let int = |c: &str| r.get_i64(c).unwrap_or_else(|e| fail(c, e));
            let milli = |c: &str| r.get_scaled_i64(c, 3).unwrap_or_else(|e| fail(c, e));
            let day = r
                .get_date("event_day")
                .unwrap_or_else(|e| fail("event_day", e));
            let totals = (
                int("readings"),
                milli("sum_speed"),
                milli("min_odometer"),
                milli("max_odometer"),
                int("rapid_accelerations"),
            );
            ((text("vin"), text("trip_id"), day), totals)
        })
        .collect()
}

/// A per-(VIN, year) list of the ground truth, e.g. `truth_by_vin_year(truth,
/// "miles_by_vin_year", "miles_nano")`: (vin, year) → the integer `value`.
pub fn truth_by_vin_year(
    truth: &serde_json::Value,
    list: &str,
    value: &str,
) -> std::collections::BTreeMap<(String, i64), i64> {
    truth[list]
        .as_array()
        .unwrap_or_else(|| panic!("truth.{list}"))
        .iter()
        .map(|r| {
            let vin = r["vin"]
                .as_str()
                .unwrap_or_else(|| panic!("truth.{list} vin"));
            let year = r["year"]
                .as_i64()
                .unwrap_or_else(|| panic!("truth.{list} year"));
            let v = r[value]
                .as_i64()
                .unwrap_or_else(|| panic!("truth.{list} {value}"));
            ((vin.to_owned(), year), v)
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
