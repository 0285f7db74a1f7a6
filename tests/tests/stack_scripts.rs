//! Checks that `localstack/up` left the local stack as docs/design.md §7 describes: the Kinesis
//! stream and lake bucket exist, and every infra/sql file is recorded as applied with the
//! sha256 of its current contents. Also syntax-checks the stack scripts.

use std::path::Path;
use std::process::Command;

use aws_sdk_redshiftdata::types::{Field, StatusString};
use fleetline_tests::{
    data_api_client, kinesis_client, local_s3_client, local_sqs_client, pipe_through, repo_root,
    require_localstack, run_checked, statement_result, wait_statement,
};

const STREAM: &str = "vehicle-telemetry";
const BUCKET: &str = "fleetline-lake";

#[tokio::test]
async fn up_created_the_stream_with_two_active_shards() {
    require_localstack();
    let kinesis = kinesis_client().await;
    let summary = kinesis
        .describe_stream_summary()
        .stream_name(STREAM)
        .send()
        .await
        .unwrap_or_else(|e| panic!("stream {STREAM} missing (run localstack/up): {e:?}"));
    let summary = summary.stream_description_summary().expect("summary");
    assert_eq!(summary.stream_status().as_str(), "ACTIVE");
    assert_eq!(summary.open_shard_count(), 2);
}

/// As template.yaml's LakeBucket NotificationConfiguration: ObjectCreated under the lake
/// prefix → the lake change queue (README "Local endpoints").
#[tokio::test]
async fn up_wired_the_lake_change_queue() {
    require_localstack();
    let sqs = local_sqs_client().await;
    let url = sqs
        .get_queue_url()
        .queue_name("fleetline-lake-changes")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("queue fleetline-lake-changes missing (run localstack/up): {e:?}")
        })
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let arn_name = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(arn_name.clone())
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&arn_name).cloned())
        .expect("queue ARN");
    let s3 = local_s3_client().await;
    let config = s3
        .get_bucket_notification_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketNotificationConfiguration");
    let wired = config.queue_configurations().iter().any(|q| {
        let prefixes: Vec<&str> = q
            .filter()
            .and_then(|f| f.key())
            .map(|k| k.filter_rules())
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                r.name()
                    .is_some_and(|n| n.as_str().eq_ignore_ascii_case("prefix"))
            })
            .filter_map(|r| r.value())
            .collect();
        q.queue_arn() == arn
            && q.events()
                .iter()
                .any(|e| e.as_str() == "s3:ObjectCreated:*")
            && prefixes == ["vehicle_telematics_raw/"]
    });
    assert!(wired, "{BUCKET} notifications: {config:?}");
}

#[tokio::test]
async fn up_created_the_lake_bucket() {
    require_localstack();
    let s3 = local_s3_client().await;
    let buckets = s3.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert!(
        names.contains(&BUCKET),
        "bucket {BUCKET} missing (run localstack/up); buckets: {names:?}"
    );
}

/// The local defaults `localstack/up` substitutes for `${NAME}` placeholders (the
/// migrations table records the digest of the substituted text).
const LOCAL_SQL_VARS: [(&str, &str); 4] = [
    ("LAKE_BUCKET", "fleetline-lake"),
    ("LAKE_PREFIX", "vehicle_telematics_raw/"),
    ("GLUE_DATABASE", "fleetline"),
    ("SPECTRUM_IAM_ROLE", "default"),
];

/// The speed path's variables as `localstack/up` passes them (localstack/lib/common.sh).
fn speed_path_vars() -> std::collections::BTreeMap<String, String> {
    let role = fleetline_tests::env_or(
        "FLEETLINE_STREAMING_IAM_ROLE",
        "arn:aws:iam::000000000000:role/fleetline-streaming-ingestion",
    );
    [
        (
            "SPEED_PATH",
            fleetline_tests::env_or("FLEETLINE_SPEED_PATH", "lambda"),
        ),
        (
            "STREAM_NAME",
            fleetline_tests::env_or("FLEETLINE_STREAM", "vehicle-telemetry"),
        ),
        // Written as the migrator writes it (`default` bare, an ARN quoted).
        (
            "STREAMING_IAM_ROLE",
            schema_migrator::script::role_sql("STREAMING_IAM_ROLE", &role)
                .expect("a valid local role"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Whether `up` applies the file in the stack's speed path (a file marked
/// `-- fleetline: only SPEED_PATH=…` is applied in that path only).
fn applies_locally(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).expect("read SQL file");
    schema_migrator::script::applies_with(&text, &speed_path_vars())
}

/// sha256 of a SQL file as applied locally, computed by coreutils (independently of
/// apply-sql's Python hashlib).
fn sha256sum(path: &Path) -> String {
    let mut text = std::fs::read_to_string(path).expect("read SQL file");
    for (name, value) in LOCAL_SQL_VARS {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    for (name, value) in speed_path_vars() {
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    let what = format!("sha256sum of {}", path.display());
    let out = pipe_through(&mut Command::new("sha256sum"), text.as_bytes(), &what);
    String::from_utf8(out)
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

fn field_string(field: &Field) -> String {
    match field {
        Field::StringValue(s) => s.trim().to_string(),
        other => panic!("expected a string column, got {other:?}"),
    }
}

#[tokio::test]
async fn every_infra_sql_file_is_recorded_with_its_current_sha256() {
    // `up` applies infra/sql and then infra/sql/local (local-only DDL) into `dev`.
    let mut expected: Vec<(String, String)> = ["infra/sql", "infra/sql/local"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo_root().join(dir)).expect("read SQL dir"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
        .filter(|p| applies_locally(p))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                sha256sum(&p),
            )
        })
        .collect();
    expected.sort();
    assert!(
        expected.iter().any(|(name, _)| name == "00_schemas.sql"),
        "infra/sql/00_schemas.sql is missing"
    );

    let client = data_api_client().await;
    let workgroup =
        std::env::var("FLEETLINE_REDSHIFT_WORKGROUP").unwrap_or_else(|_| "fleetline".into());
    let database = std::env::var("FLEETLINE_REDSHIFT_DATABASE").unwrap_or_else(|_| "dev".into());
    let id = client
        .execute_statement()
        .workgroup_name(workgroup)
        .database(database)
        .sql("SELECT file_name, sha256 FROM public.fleetline_schema_migrations ORDER BY file_name")
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("statement id")
        .to_string();
    let desc = wait_statement(&client, &id).await;
    assert_eq!(
        desc.status(),
        Some(&StatusString::Finished),
        "query failed (has localstack/up applied infra/sql?): {:?}",
        desc.error()
    );
    let recorded: Vec<(String, String)> = statement_result(&client, &id)
        .await
        .1
        .iter()
        .map(|row| (field_string(&row[0]), field_string(&row[1])))
        .collect();
    assert_eq!(
        recorded, expected,
        "applied SQL differs from infra/sql: run localstack/up (or localstack/apply-sql)"
    );
}

#[test]
fn stack_scripts_pass_bash_syntax_check() {
    let root = repo_root();
    for script in [
        "localstack/stack",
        "localstack/up",
        "localstack/down",
        "localstack/status",
        "localstack/apply-sql",
        "localstack/demo",
        "localstack/lib/common.sh",
        "tests/run",
        ".ci/run",
    ] {
        run_checked(
            Command::new("bash").arg("-n").arg(root.join(script)),
            &format!("bash -n {script}"),
        );
    }
}

/// `localstack/demo --print-config`: the names the demo would hand the stack and the local
/// runner, without starting anything.
fn demo_config(args: &[&str]) -> Vec<(String, String)> {
    let mut cmd = Command::new(repo_root().join("localstack/demo"));
    cmd.args(args).arg("--print-config");
    // The documented defaults, not a developer's overrides.
    for var in [
        "FLEETLINE_STREAM",
        "FLEETLINE_BUCKET",
        "FLEETLINE_PG_DATABASE",
        "FLEETLINE_STATE_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out = run_checked(
        &mut cmd,
        &format!("localstack/demo {args:?} --print-config"),
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn demo_without_simulation_uses_the_documented_names() {
    // README "Local endpoints" / docs/design.md §7, written out here rather than read from the code.
    let want: Vec<(String, String)> = [
        ("STREAM_NAME", "vehicle-telemetry"),
        ("LAKE_BUCKET", "fleetline-lake"),
        ("FLEETLINE_REDSHIFT_DATABASE", "dev"),
        ("LAKE_PREFIX", "vehicle_telematics_raw/"),
        ("REJECTED_PREFIX", "rejected/"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(demo_config(&["--no-simulate"]), want);
}

#[test]
fn simulated_demo_runs_use_their_own_names() {
    let got = demo_config(&[]);
    let get = |k: &str| {
        got.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing: {got:?}"))
    };
    let db = get("FLEETLINE_REDSHIFT_DATABASE");
    assert!(db.starts_with("demo") && db != "dev", "{db}");
    assert_eq!(get("STREAM_NAME"), format!("fleetline-{db}"));
    assert_eq!(get("LAKE_PREFIX"), format!("{db}/vehicle_telematics_raw/"));
    assert_eq!(get("REJECTED_PREFIX"), format!("{db}/rejected/"));
    assert_eq!(get("LAKE_BUCKET"), BUCKET);
}
