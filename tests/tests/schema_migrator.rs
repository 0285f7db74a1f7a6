//! The `Custom::WarehouseSchema` custom resource end to end on the local stack: CloudFormation's
//! side is played by this test (requests as CloudFormation sends them, a small HTTP listener
//! as the pre-signed `ResponseURL` receiving the PUT), the warehouse by the Data API emulator.
//!
//! - the real `schema-migrator` binary under `lambda-host` (the Lambda runtime API), with the
//!   SQL built into it: Create, Update with nothing changed, Delete;
//! - the same handler code with SQL sets made up here: Update with a changed file, and a
//!   failing statement (FAILED, with the file, the statement and the database's error).
//!
//! Every test has its own database. Needs the local stack (`localstack/up`) and
//! `cargo build -p schema-migrator`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use fleetline_aws::warehouse::ResultSet;
use fleetline_aws::{DataApiWarehouse, Warehouse, WarehouseConfig};
use fleetline_tests::{
    create_test_database, data_api_client, drop_test_database, function_env, function_spec,
    repo_root, start_function,
};
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_host::{HostedFunction, InvokeOutcome};
use schema_migrator::SqlFile;
use schema_migrator::custom_resource::{self, Request};
use schema_migrator::respond::HttpsResponder;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/fleetline-SpectrumRole-ABC";
const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/fleetline/0f8e6a00-0000-0000-0000-000000000000";

/// What the pre-signed URL received.
#[derive(Debug)]
struct Put {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Value,
}

/// A one-route HTTP server standing in for the pre-signed S3 URL: records every request.
struct ResponseUrl {
    base: String,
    received: mpsc::UnboundedReceiver<Put>,
}

impl ResponseUrl {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| record(req, tx.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { base, received }
    }

    /// The one PUT answering `request_id` (nothing else may arrive in between).
    async fn answer(&mut self, request_id: &str) -> Value {
        let put = tokio::time::timeout(Duration::from_secs(60), self.received.recv())
            .await
            .expect("no answer at the ResponseURL within 60 s")
            .expect("listener stopped");
        assert_eq!(put.method, "PUT");
        assert_eq!(
            put.path,
            format!("/answer/{request_id}?X-Amz-Signature=abc")
        );
        assert_eq!(put.content_type.as_deref(), Some(""), "empty Content-Type");
        assert_eq!(put.body["RequestId"], request_id, "{}", put.body);
        assert_eq!(put.body["StackId"], STACK_ID);
        assert_eq!(put.body["LogicalResourceId"], "WarehouseSchema");
        assert!(
            serde_json::to_vec(&put.body).unwrap().len() <= 4096,
            "response body over 4096 bytes"
        );
        put.body
    }
}

/// Records one request at the stand-in URL and answers it with an empty 200.
async fn record(
    req: hyper::Request<hyper::body::Incoming>,
    tx: mpsc::UnboundedSender<Put>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().to_string();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes());
    let body = bytes
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = tx.send(Put {
        method,
        path,
        content_type,
        body,
    });
    Ok(hyper::Response::new(Full::new(Bytes::new())))
}

fn request(
    url: &ResponseUrl,
    kind: &str,
    request_id: &str,
    physical_id: Option<&str>,
    code_version: &str,
) -> Value {
    let mut r = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fleetline-schema-migrator",
        "ResponseURL": format!("{}/answer/{request_id}?X-Amz-Signature=abc", url.base),
        "StackId": STACK_ID,
        "RequestId": request_id,
        "LogicalResourceId": "WarehouseSchema",
        "ResourceType": "Custom::WarehouseSchema",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fleetline-schema-migrator",
            "LakeBucket": "fleetline-lake",
            "LakePrefix": "vehicle_telematics_raw/",
            "GlueDatabase": "fleetline",
            "SpectrumRole": ROLE_ARN,
            "CodeVersion": code_version
        }
    });
    if let Some(id) = physical_id {
        r["PhysicalResourceId"] = json!(id);
    }
    if kind == "Update" {
        r["OldResourceProperties"] = r["ResourceProperties"].clone();
    }
    r
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// infra/sql/*.sql as CloudFormation's placeholders make them (for the recorded digests);
/// the requests set no SPEED_PATH, so a file applied only in another speed path is left out.
fn expected_infra_sql() -> Vec<(String, String)> {
    let vars = [
        ("LAKE_BUCKET", "fleetline-lake"),
        ("LAKE_PREFIX", "vehicle_telematics_raw/"),
        ("GLUE_DATABASE", "fleetline"),
        ("SPECTRUM_IAM_ROLE", &format!("'{ROLE_ARN}'") as &str),
    ];
    let mut out: Vec<(String, String)> = std::fs::read_dir(repo_root().join("infra/sql"))
        .expect("infra/sql")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).expect("read");
            schema_migrator::script::applies_with(&text, &BTreeMap::new())
        })
        .map(|p| {
            let mut text = std::fs::read_to_string(&p).expect("read");
            for (k, v) in vars {
                text = text.replace(&format!("${{{k}}}"), v);
            }
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                sha256_hex(&text),
            )
        })
        .collect();
    out.sort();
    out
}

struct Db {
    name: String,
    warehouse: DataApiWarehouse,
}

impl Db {
    async fn new() -> Self {
        let name = create_test_database("sm").await;
        let warehouse = DataApiWarehouse::new(
            &data_api_client().await,
            WarehouseConfig::workgroup("fleetline", &name),
        );
        Self { name, warehouse }
    }

    async fn query(&self, sql: &str) -> ResultSet {
        self.warehouse
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn recorded(&self) -> Vec<(String, String)> {
        self.query(
            "SELECT file_name, sha256 FROM public.fleetline_schema_migrations ORDER BY file_name",
        )
        .await
        .map_rows(|r| Ok((r.get_string("file_name")?, r.get_string("sha256")?)))
        .expect("decode")
    }

    async fn table_exists(&self, schema: &str, table: &str) -> bool {
        let rs = self
            .query(&format!(
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = '{schema}' AND table_name = '{table}'"
            ))
            .await;
        rs.iter().next().expect("row").get_i64("n").expect("n") == 1
    }
}

/// The real schema-migrator binary under lambda-host, targeting `database`.
async fn hosted_migrator(database: &str, work: &std::path::Path) -> HostedFunction {
    let env = function_env(database, &[]);
    start_function(function_spec(
        "schema-migrator",
        Duration::from_secs(120),
        work,
        &env,
    ))
    .await
}

/// Invokes the hosted migrator with `event`; it must finish (its verdict goes to the
/// ResponseURL).
async fn invoke(function: &HostedFunction, event: Value) {
    match function.invoke_json(&event).await {
        Ok(InvokeOutcome::Ok(_)) => {}
        other => panic!("schema-migrator invocation failed: {other:?}"),
    }
}

/// Invokes the hosted migrator with `event` and returns its answer at `url`, which must be
/// SUCCESS.
async fn succeeds(function: &HostedFunction, url: &mut ResponseUrl, event: Value) -> Value {
    let request_id = event["RequestId"].as_str().expect("RequestId").to_owned();
    invoke(function, event).await;
    let answer = url.answer(&request_id).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    answer
}

#[tokio::test]
async fn the_lambda_creates_updates_and_deletes_the_schema() {
    let db = Db::new().await;
    let mut url = ResponseUrl::start().await;
    let work = tempfile::tempdir().expect("tempdir");
    let function = hosted_migrator(&db.name, work.path()).await;

    // Create: every file of infra/sql, recorded with the digest of its substituted text.
    let create = request(&url, "Create", "create-1", None, "1");
    let created = succeeds(&function, &mut url, create).await;
    let expected = expected_infra_sql();
    assert_eq!(
        created["Data"]["AppliedCount"],
        expected.len().to_string(),
        "{created}"
    );
    let physical_id = created["PhysicalResourceId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .expect("a PhysicalResourceId")
        .to_owned();
    assert_eq!(db.recorded().await, expected);
    assert!(db.table_exists("speed", "telemetry").await);
    assert!(db.table_exists("batch", "vehicle_daily").await);
    // The role ARN reached CREATE EXTERNAL SCHEMA as a quoted literal (a bare ARN is a syntax
    // error, here as on Redshift).
    let role = db
        .query("SELECT iam_role FROM _emulator.external_schemas WHERE schema_name = 'spectrum'")
        .await;
    assert_eq!(
        role.iter()
            .next()
            .expect("spectrum schema")
            .get_string("iam_role")
            .unwrap(),
        ROLE_ARN
    );

    // Update with nothing changed (a new code version, the same SQL): nothing applied.
    db.warehouse
        .execute(
            "UPDATE serving.control SET last_batch_summary = 'probe'",
            &[],
        )
        .await
        .expect("mark serving.control");
    let update = request(&url, "Update", "update-1", Some(&physical_id), "2");
    let updated = succeeds(&function, &mut url, update).await;
    assert_eq!(updated["Data"]["AppliedCount"], "0", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], physical_id.as_str());
    assert_eq!(db.recorded().await, expected);

    // Delete: answered SUCCESS, the schema and its data stay.
    let delete = request(&url, "Delete", "delete-1", Some(&physical_id), "2");
    let deleted = succeeds(&function, &mut url, delete).await;
    assert_eq!(deleted["PhysicalResourceId"], physical_id.as_str());
    assert!(db.table_exists("speed", "telemetry").await);
    let probe = db
        .query("SELECT COUNT(*) AS n FROM serving.control WHERE last_batch_summary = 'probe'")
        .await;
    assert_eq!(probe.iter().next().unwrap().get_i64("n").unwrap(), 1);
    assert_eq!(db.recorded().await, expected);

    function.shutdown(Duration::from_secs(2)).await;
    drop_test_database(&db.name).await;
}

/// The published version the alias runs keeps the environment of its deploy (SAM publishes
/// no new version when only a parameter behind the environment changes), so the stack passes
/// the target in the `Warehouse` property: an Update to another database applies the schema
/// there, under the same PhysicalResourceId (no replacement, no Delete of the old one).
#[tokio::test]
async fn the_warehouse_property_moves_the_schema_to_a_new_target() {
    let old = Db::new().await;
    let new = Db::new().await;
    let mut url = ResponseUrl::start().await;
    let work = tempfile::tempdir().expect("tempdir");
    // The function's environment still names the old database.
    let function = hosted_migrator(&old.name, work.path()).await;
    let expected = expected_infra_sql();

    let create = request(&url, "Create", "move-create", None, "1");
    let created = succeeds(&function, &mut url, create).await;
    let physical_id = created["PhysicalResourceId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(old.recorded().await, expected);

    let mut update = request(&url, "Update", "move-update", Some(&physical_id), "1");
    update["ResourceProperties"]["Warehouse"] = json!({
        "FLEETLINE_REDSHIFT_WORKGROUP": "fleetline",
        "FLEETLINE_REDSHIFT_CLUSTER": "",
        "FLEETLINE_REDSHIFT_DATABASE": new.name,
        "FLEETLINE_REDSHIFT_SECRET_ARN": "",
        "FLEETLINE_REDSHIFT_DB_USER": ""
    });
    let updated = succeeds(&function, &mut url, update).await;
    assert_eq!(
        updated["Data"]["AppliedCount"],
        expected.len().to_string(),
        "{updated}"
    );
    assert_eq!(updated["PhysicalResourceId"], physical_id.as_str());
    assert_eq!(new.recorded().await, expected);
    assert!(new.table_exists("speed", "telemetry").await);

    function.shutdown(Duration::from_secs(2)).await;
    drop_test_database(&old.name).await;
    drop_test_database(&new.name).await;
}

#[tokio::test]
async fn a_changed_file_is_reapplied_and_a_failing_statement_is_reported() {
    let db = Db::new().await;
    let mut url = ResponseUrl::start().await;
    let responder = HttpsResponder::new().expect("responder");
    let run = |files: Vec<SqlFile>, req: Value| {
        let (db, responder) = (&db, &responder);
        async move {
            let req: Request = serde_json::from_value(req).expect("request");
            custom_resource::handle(
                &db.warehouse,
                responder,
                &files,
                &req,
                "warehouse-schema:test",
                Duration::from_secs(60),
                "2026-12-07 12:00:00",
            )
            .await
            .expect("answered")
        }
    };
    let a1 = "CREATE TABLE IF NOT EXISTS public.sm_a (x INT);";
    let b1 = "-- fleetline:no-transaction\nCREATE TABLE IF NOT EXISTS public.sm_b (x INT);\nINSERT INTO public.sm_b VALUES (1);";
    let b2 = "-- fleetline:no-transaction\nCREATE TABLE IF NOT EXISTS public.sm_b (x INT);\nINSERT INTO public.sm_b VALUES (2);";
    let files = |b: &str| vec![SqlFile::new("10_a.sql", a1), SqlFile::new("20_b.sql", b)];

    run(files(b1), request(&url, "Create", "c-1", None, "1")).await;
    let created = url.answer("c-1").await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(created["Data"]["Applied"], "10_a.sql 20_b.sql");

    // Update with a changed file: only that file runs again.
    run(
        files(b2),
        request(&url, "Update", "u-1", Some("warehouse-schema:test"), "2"),
    )
    .await;
    let updated = url.answer("u-1").await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["Data"]["Applied"], "20_b.sql", "{updated}");
    assert_eq!(updated["Data"]["SkippedCount"], "1");
    let rows = db.query("SELECT x FROM public.sm_b ORDER BY x").await;
    let xs: Vec<i64> = rows.map_rows(|r| r.get_i64("x")).unwrap();
    assert_eq!(xs, [1, 2]);
    let recorded: BTreeMap<String, String> = db.recorded().await.into_iter().collect();
    assert_eq!(recorded["20_b.sql"], sha256_hex(b2));
    assert_eq!(recorded["10_a.sql"], sha256_hex(a1));

    // A failing statement: FAILED, naming the file, the statement and the database error;
    // nothing of the failed file is recorded, the files before it are.
    let bad = "CREATE TABLE IF NOT EXISTS public.sm_c (x INT);\nINSERT INTO public.sm_nowhere VALUES (1);";
    let mut with_bad = files(b2);
    with_bad.push(SqlFile::new("30_c.sql", bad));
    run(
        with_bad,
        request(&url, "Update", "u-2", Some("warehouse-schema:test"), "3"),
    )
    .await;
    let failed = url.answer("u-2").await;
    assert_eq!(failed["Status"], "FAILED", "{failed}");
    assert_eq!(failed["PhysicalResourceId"], "warehouse-schema:test");
    let reason = failed["Reason"].as_str().expect("Reason");
    assert!(reason.contains("30_c.sql: statement 2 of 2"), "{reason}");
    assert!(
        reason.contains("INSERT INTO public.sm_nowhere VALUES (1)"),
        "{reason}"
    );
    assert!(
        reason.contains("sm_nowhere") && reason.contains("does not exist"),
        "{reason}"
    );
    let recorded: BTreeMap<String, String> = db.recorded().await.into_iter().collect();
    assert!(!recorded.contains_key("30_c.sql"), "{recorded:?}");
    // One transaction: the failed file's first statement was rolled back with it.
    assert!(!db.table_exists("public", "sm_c").await);

    drop_test_database(&db.name).await;
}

/// local-runner performs the template's Custom::WarehouseSchema Create at start with the same
/// function: the schema exists on a fresh database, and a second start changes nothing.
#[tokio::test]
async fn the_local_runner_creates_the_schema_like_cloudformation() {
    let db = Db::new().await;
    let work = tempfile::tempdir().expect("tempdir");
    let function = hosted_migrator(&db.name, work.path()).await;
    let first = local_runner::schema::create(&function, "WarehouseSchema")
        .await
        .expect("Create answered SUCCESS");
    assert_eq!(
        first["Data"]["AppliedCount"],
        expected_infra_sql().len().to_string(),
        "{first}"
    );
    assert!(db.table_exists("speed", "telemetry").await);
    assert!(db.table_exists("serving", "control").await);
    let second = local_runner::schema::create(&function, "WarehouseSchema")
        .await
        .expect("second Create answered SUCCESS");
    assert_eq!(second["Data"]["AppliedCount"], "0", "{second}");
    function.shutdown(Duration::from_secs(2)).await;
    drop_test_database(&db.name).await;
}
