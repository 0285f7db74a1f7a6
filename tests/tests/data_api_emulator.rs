//! The Redshift Data API emulator, driven by unchanged clients: the Rust SDK, boto3
//! and the AWS CLI. Needs the local stack (PostgreSQL, LocalStack, the emulator on
//! `AWS_ENDPOINT_URL_REDSHIFT_DATA`); start it with localstack/up.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::builders::ExecuteStatementFluentBuilder;
use aws_sdk_redshiftdata::types::{ColumnMetadata, Field, SqlParameter, StatusString};
use fleetline_tests::{
    data_api_client, data_api_endpoint, ensure_bucket, local_s3_client, statement_result,
    venv_command, wait_statement,
};
use serde_json::{Value, json};

const DB: &str = "dev";
const WORKGROUP: &str = "fleetline";
const LAKE_BUCKET: &str = "fleetline-lake";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// ExecuteStatement on the test workgroup and database.
fn execute(c: &Client) -> ExecuteStatementFluentBuilder {
    c.execute_statement().workgroup_name(WORKGROUP).database(DB)
}

/// BatchExecuteStatement of `sqls` on the test workgroup and database; the batch's id.
async fn submit_batch(c: &Client, sqls: &[String]) -> String {
    let out = c
        .batch_execute_statement()
        .workgroup_name(WORKGROUP)
        .database(DB)
        .set_sqls(Some(sqls.to_vec()))
        .send()
        .await
        .expect("BatchExecuteStatement");
    out.id().expect("batch id").to_string()
}

async fn submit(c: &Client, sql: &str) -> String {
    execute(c)
        .sql(sql)
        .send()
        .await
        .expect("ExecuteStatement")
        .id()
        .expect("statement id")
        .to_string()
}

/// Runs `sql` and expects it to finish.
async fn run_ok(c: &Client, sql: &str) -> DescribeStatementOutput {
    let id = submit(c, sql).await;
    let d = wait_statement(c, &id).await;
    assert_eq!(
        d.status(),
        Some(&StatusString::Finished),
        "{sql}: {:?}",
        d.error()
    );
    d
}

/// Runs each statement in order, expecting each to finish.
async fn run_all(c: &Client, sqls: &[String]) {
    for sql in sqls {
        run_ok(c, sql).await;
    }
}

async fn query(c: &Client, sql: &str) -> Vec<Vec<Field>> {
    let d = run_ok(c, sql).await;
    statement_result(c, &d.id).await.1
}

fn long(f: &Field) -> i64 {
    match f {
        Field::LongValue(v) => *v,
        other => panic!("expected longValue, got {other:?}"),
    }
}

fn string(f: &Field) -> &str {
    match f {
        Field::StringValue(v) => v,
        other => panic!("expected stringValue, got {other:?}"),
    }
}

/// The JSON form botocore gives a Field, for comparison with boto3.
fn field_json(f: &Field) -> Value {
    match f {
        Field::IsNull(b) => json!({"isNull": b}),
        Field::LongValue(v) => json!({"longValue": v}),
        Field::DoubleValue(v) => json!({"doubleValue": v}),
        Field::BooleanValue(v) => json!({"booleanValue": v}),
        Field::StringValue(v) => json!({"stringValue": v}),
        other => json!({"other": format!("{other:?}")}),
    }
}

fn col(c: &ColumnMetadata) -> (String, String, i32, i32) {
    (
        c.name().unwrap_or_default().to_string(),
        c.type_name().unwrap_or_default().to_string(),
        c.precision(),
        c.scale(),
    )
}

#[tokio::test]
async fn every_value_type_and_null_round_trips_with_metadata() {
    let c = data_api_client().await;
    let t = unique("public.types");
    run_ok(
        &c,
        &format!(
            "CREATE TABLE {t} (a SMALLINT, b INTEGER, c BIGINT, d REAL, e DOUBLE PRECISION, f DECIMAL(12,3), g VARCHAR(20) ENCODE zstd, h CHAR(3), i BOOLEAN, j DATE, k TIMESTAMP, l TIMESTAMPTZ) DISTSTYLE EVEN SORTKEY(b)"
        ),
    )
    .await;
    let ins = run_ok(
        &c,
        &format!(
            "INSERT INTO {t} VALUES (-7, 2147483647, 9007199254740993, 1.5, -2.25, 123456789.012, 'héllo \"x\"', 'ab', true, '2026-11-25', '2026-11-25 17:04:31.123456', '2026-11-25 17:04:31+00'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ),
    )
    .await;
    assert_eq!(ins.result_rows(), 2, "INSERT reports the rows it affected");
    assert_eq!(ins.has_result_set(), Some(false));
    let d = run_ok(&c, &format!("SELECT * FROM {t} ORDER BY b NULLS LAST")).await;
    assert_eq!(d.has_result_set(), Some(true));
    assert_eq!(d.result_rows(), 2);
    let (cols, rows, _) = statement_result(&c, &d.id).await;
    let got: Vec<_> = cols.iter().map(col).collect();
    let want: Vec<(String, String, i32, i32)> = [
        ("a", "int2", 5, 0),
        ("b", "int4", 10, 0),
        ("c", "int8", 19, 0),
        ("d", "float4", 8, 8),
        ("e", "float8", 17, 17),
        ("f", "numeric", 12, 3),
        ("g", "varchar", 20, 0),
        ("h", "bpchar", 3, 0),
        ("i", "bool", 1, 0),
        ("j", "date", 13, 0),
        ("k", "timestamp", 29, 6),
        ("l", "timestamptz", 35, 6),
    ]
    .iter()
    .map(|(n, t, p, s)| (n.to_string(), t.to_string(), *p, *s))
    .collect();
    assert_eq!(got, want);
    let r = &rows[0];
    assert_eq!(long(&r[0]), -7);
    assert_eq!(long(&r[1]), 2_147_483_647);
    assert_eq!(
        long(&r[2]),
        9_007_199_254_740_993,
        "int8 beyond 2^53 stays exact"
    );
    assert_eq!(r[3], Field::DoubleValue(1.5));
    assert_eq!(r[4], Field::DoubleValue(-2.25));
    assert_eq!(string(&r[5]), "123456789.012");
    assert_eq!(string(&r[6]), "héllo \"x\"");
    assert_eq!(string(&r[7]), "ab ");
    assert_eq!(r[8], Field::BooleanValue(true));
    assert_eq!(string(&r[9]), "2026-11-25");
    assert_eq!(string(&r[10]), "2026-11-25 17:04:31.123456");
    assert_eq!(string(&r[11]), "2026-11-25 17:04:31+00");
    assert!(
        rows[1].iter().all(|f| *f == Field::IsNull(true)),
        "{:?}",
        rows[1]
    );
    run_ok(&c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn paging_returns_every_row_exactly_once() {
    let c = data_api_client().await;
    let d = run_ok(
        &c,
        "SELECT g AS n, repeat('x', 300) AS pad FROM generate_series(1, 2500) g ORDER BY g",
    )
    .await;
    assert_eq!(d.result_rows(), 2500);
    let (_, rows, pages) = statement_result(&c, &d.id).await;
    assert!(
        pages >= 3,
        "2,500 rows of ~300 bytes need several pages, got {pages}"
    );
    let ns: Vec<i64> = rows.iter().map(|r| long(&r[0])).collect();
    assert_eq!(ns, (1..=2500).collect::<Vec<i64>>());
    let first = c.get_statement_result().id(&d.id).send().await.unwrap();
    assert_eq!(first.total_num_rows(), 2500);
    assert!(first.records().len() <= 1000);
}

#[tokio::test]
async fn failing_statement_reports_the_postgres_error() {
    let c = data_api_client().await;
    let missing = unique("no_such_table");
    let id = submit(&c, &format!("SELECT * FROM {missing}")).await;
    let d = wait_statement(&c, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    let err = d.error().unwrap_or_default();
    assert!(
        err.contains(&format!("relation \"{missing}\" does not exist")),
        "{err}"
    );
    let r = c.get_statement_result().id(&id).send().await;
    assert!(r.is_err(), "a failed statement has no result");
}

#[tokio::test]
async fn batch_is_one_transaction_and_sub_statements_have_results() {
    let c = data_api_client().await;
    let t = unique("public.batch");
    let ok = submit_batch(
        &c,
        &[
            format!("CREATE TABLE {t} (id INT, name VARCHAR(10))"),
            format!("INSERT INTO {t} VALUES (1, 'a'), (2, 'b')"),
            format!("SELECT sum(id) AS total FROM {t}"),
        ],
    )
    .await;
    let d = wait_statement(&c, &ok).await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    let subs = d.sub_statements();
    assert_eq!(subs.len(), 3);
    assert_eq!(subs[2].id, format!("{ok}:3"));
    assert_eq!(subs[1].result_rows(), 2);
    assert_eq!(subs[2].has_result_set(), Some(true));
    let rows = statement_result(&c, &subs[2].id).await.1;
    assert_eq!(rows, vec![vec![Field::LongValue(3)]]);

    let bad = submit_batch(
        &c,
        &[
            format!("INSERT INTO {t} VALUES (3, 'c')"),
            format!("DELETE FROM {t} WHERE id = 1"),
            format!("INSERT INTO {t} VALUES ('not a number', 'd')"),
            format!("INSERT INTO {t} VALUES (4, 'e')"),
        ],
    )
    .await;
    let d = wait_statement(&c, &bad).await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    assert!(
        d.error()
            .unwrap_or_default()
            .contains("invalid input syntax for type integer"),
        "{:?}",
        d.error()
    );
    let statuses: Vec<&str> = d
        .sub_statements()
        .iter()
        .map(|s| s.status().unwrap().as_str())
        .collect();
    assert_eq!(statuses, ["FINISHED", "FINISHED", "FAILED", "ABORTED"]);
    // Everything rolled back: still exactly the rows of the first batch.
    let rows = query(&c, &format!("SELECT id, name FROM {t} ORDER BY id")).await;
    assert_eq!(
        rows,
        vec![
            vec![Field::LongValue(1), Field::StringValue("a".into())],
            vec![Field::LongValue(2), Field::StringValue("b".into())]
        ]
    );
    run_ok(&c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn parameters_are_bound_safely() {
    let c = data_api_client().await;
    let t = unique("public.params");
    run_ok(&c, &format!("CREATE TABLE {t} (id INT, name VARCHAR(100))")).await;
    let evil = format!("O'Brien'); DROP TABLE {t}; --");
    let p = |n: &str, v: &str| SqlParameter::builder().name(n).value(v).build().unwrap();
    let ins = execute(&c)
        .sql(format!(
            "INSERT INTO {t} VALUES (:id, :name) -- :not_a_param"
        ))
        .parameters(p("id", "7"))
        .parameters(p("name", &evil))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait_statement(&c, ins.id().unwrap()).await.status(),
        Some(&StatusString::Finished)
    );
    let sel = execute(&c)
        .sql(format!(
            "SELECT id, name, ':name' AS literal FROM {t} WHERE name = :name"
        ))
        .parameters(p("name", &evil))
        .send()
        .await
        .unwrap();
    let d = wait_statement(&c, sel.id().unwrap()).await;
    assert_eq!(d.query_parameters().len(), 1);
    let rows = statement_result(&c, sel.id().unwrap()).await.1;
    assert_eq!(
        rows,
        vec![vec![
            Field::LongValue(7),
            Field::StringValue(evil.clone()),
            Field::StringValue(":name".into())
        ]]
    );
    let missing = execute(&c).sql("SELECT :absent").send().await.unwrap_err();
    assert!(missing.into_service_error().is_validation_exception());
    run_ok(&c, &format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn unknown_ids_and_missing_targets_are_client_errors() {
    let c = data_api_client().await;
    let unknown = || uuid::Uuid::new_v4().to_string();
    let e = c.describe_statement().id(unknown()).send().await;
    let e = e.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let e = c.get_statement_result().id(unknown()).send().await;
    let e = e.unwrap_err().into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let e = c
        .execute_statement()
        .database(DB)
        .sql("SELECT 1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception(), "{e:?}");
    // ClusterIdentifier is the other accepted target.
    let ok = c
        .execute_statement()
        .cluster_identifier("fleetline-cluster")
        .database(DB)
        .db_user("awsuser")
        .sql("SELECT 1")
        .send()
        .await
        .unwrap();
    let d = wait_statement(&c, ok.id().unwrap()).await;
    assert_eq!(d.status(), Some(&StatusString::Finished));
    assert_eq!(d.cluster_identifier(), Some("fleetline-cluster"));
}

#[tokio::test]
async fn list_statements_filters_by_name_and_status() {
    let c = data_api_client().await;
    let name = unique("listed");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out = execute(&c)
            .statement_name(&name)
            .sql("SELECT 1")
            .send()
            .await
            .unwrap();
        wait_statement(&c, out.id().unwrap()).await;
        ids.push(out.id().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_statements()
            .statement_name(&name)
            .status(StatusString::Finished)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.statements().len() <= 2);
        seen.extend(page.statements().iter().map(|s| s.id.clone()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    ids.reverse(); // newest first
    assert_eq!(seen, ids);
}

// --- External tables (Spectrum) over LocalStack S3 ---

fn parquet_object(rows: &[(&str, i64, i64)]) -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message reading { required binary VIN (UTF8); required int64 vehicleSpeed (DECIMAL(12,3)); required int64 ts (TIMESTAMP(MICROS,false)); }",
        )
        .unwrap(),
    );
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(
        &mut buf,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let vins: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.0)).collect();
    let mut cw = rg.next_column().unwrap().unwrap();
    cw.typed::<ByteArrayType>()
        .write_batch(&vins, None, None)
        .unwrap();
    cw.close().unwrap();
    for values in [
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        rows.iter().map(|r| r.2).collect(),
    ] {
        let mut cw = rg.next_column().unwrap().unwrap();
        cw.typed::<Int64Type>()
            .write_batch(&values, None, None)
            .unwrap();
        cw.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
    buf
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(LAKE_BUCKET)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("PutObject");
}

/// The clients and a fresh schema name (`<tag>_<random>`) of an external-table test, with
/// the lake bucket in place.
async fn external_fixture(tag: &str) -> (Client, aws_sdk_s3::Client, String) {
    let s3 = local_s3_client().await;
    ensure_bucket(&s3, LAKE_BUCKET).await;
    (data_api_client().await, s3, unique(tag))
}

#[tokio::test]
async fn parquet_external_table_reads_new_objects_once() {
    let (c, s3, schema) = external_fixture("ext").await;
    let prefix = format!("emulator-tests/{schema}/raw");
    let part = format!("{prefix}/year=2026/month=11/day=25");
    run_all(&c, &[
        format!("CREATE EXTERNAL SCHEMA IF NOT EXISTS {schema} FROM DATA CATALOG DATABASE '{schema}' IAM_ROLE 'arn:aws:iam::000000000000:role/spectrum' CREATE EXTERNAL DATABASE IF NOT EXISTS"),
        format!("CREATE EXTERNAL TABLE {schema}.readings (vin VARCHAR(17), vehiclespeed DECIMAL(12,3), ts TIMESTAMP) PARTITIONED BY (year INT, month INT, day INT) STORED AS PARQUET LOCATION 's3://{LAKE_BUCKET}/{prefix}/'"),
    ])
    .await;
    // 2026-11-25 17:04:31.000001 UTC in microseconds.
    let ts0 = 1_795_626_271_000_001i64;
    put(
        &s3,
        &format!("{part}/a.parquet"),
        parquet_object(&[
            ("VIN1", 57_300, ts0),
            ("VIN1", 60_125, ts0 + 1_000_000),
            ("VIN2", 1, ts0),
        ]),
    )
    .await;
    put(&s3, &format!("{part}/_SUCCESS"), b"not data".to_vec()).await;
    let count_sql = format!(
        "SELECT count(*), sum(vehiclespeed), min(ts)::text, max(year * 10000 + month * 100 + day) FROM {schema}.readings"
    );
    // Not visible before the partition is registered.
    assert_eq!(long(&query(&c, &count_sql).await[0][0]), 0);
    run_ok(
        &c,
        &format!("ALTER TABLE {schema}.readings ADD IF NOT EXISTS PARTITION (year=2026, month=11, day=25) LOCATION 's3://{LAKE_BUCKET}/{part}/'"),
    )
    .await;
    let r = query(&c, &count_sql).await;
    assert_eq!(long(&r[0][0]), 3);
    assert_eq!(string(&r[0][1]), "117.426");
    assert_eq!(string(&r[0][2]), "2026-11-25 17:04:31.000001");
    assert_eq!(long(&r[0][3]), 20261125);
    // A second object appears later; the first is not counted twice.
    put(
        &s3,
        &format!("{part}/b.parquet"),
        parquet_object(&[("VIN3", 10_000, ts0)]),
    )
    .await;
    let r = query(&c, &count_sql).await;
    assert_eq!((long(&r[0][0]), string(&r[0][1])), (4, "127.426"));
    let r = query(&c, &count_sql).await;
    assert_eq!(long(&r[0][0]), 4, "re-reading loads nothing twice");
    // Deleted objects' rows disappear.
    s3.delete_object()
        .bucket(LAKE_BUCKET)
        .key(format!("{part}/a.parquet"))
        .send()
        .await
        .unwrap();
    let r = query(&c, &count_sql).await;
    assert_eq!((long(&r[0][0]), string(&r[0][1])), (1, "10.000"));
    run_ok(
        &c,
        &format!("DROP SCHEMA {schema} DROP EXTERNAL DATABASE CASCADE"),
    )
    .await;
}

#[tokio::test]
async fn json_lines_external_table_with_gzip_and_procedures() {
    use std::io::Write;
    let (c, s3, schema) = external_fixture("extj").await;
    let prefix = format!("emulator-tests/{schema}/events");
    run_all(&c, &[
        format!("CREATE EXTERNAL SCHEMA {schema} FROM DATA CATALOG DATABASE 'x' IAM_ROLE default"),
        format!("CREATE EXTERNAL TABLE {schema}.events (vin VARCHAR(17), speed DECIMAL(12,3), ts TIMESTAMP) PARTITIONED BY (day DATE) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' STORED AS TEXTFILE LOCATION 's3://{LAKE_BUCKET}/{prefix}/'"),
    ])
    .await;
    put(
        &s3,
        &format!("{prefix}/day=2026-11-25/one.json"),
        b"{\"VIN\":\"A\",\"speed\":1.5,\"ts\":\"2026-11-25 10:00:00.123456789\"}\n{\"vin\":\"B\",\"speed\":2.25}\n".to_vec(),
    )
    .await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"vin\":\"C\",\"speed\":100}\n").unwrap();
    put(
        &s3,
        &format!("{prefix}/day=2026-11-26/two.json.gz"),
        gz.finish().unwrap(),
    )
    .await;
    run_ok(
        &c,
        &format!("ALTER TABLE {schema}.events ADD PARTITION (day='2026-11-25') LOCATION 's3://{LAKE_BUCKET}/{prefix}/day=2026-11-25/' PARTITION (day='2026-11-26') LOCATION 's3://{LAKE_BUCKET}/{prefix}/day=2026-11-26/'"),
    )
    .await;
    // A stored procedure reads the external table; CALL syncs it first.
    let target = unique("public.daily");
    run_all(&c, &[
        format!("CREATE TABLE {target} (day DATE, n BIGINT, total DECIMAL(12,3))"),
        format!("CREATE OR REPLACE PROCEDURE {target}_refresh() AS $$ BEGIN DELETE FROM {target}; INSERT INTO {target} SELECT day, count(*), sum(speed) FROM {schema}.events GROUP BY day; END; $$ LANGUAGE plpgsql"),
        format!("CALL {target}_refresh()"),
    ])
    .await;
    let rows = query(
        &c,
        &format!("SELECT day::text, n, total FROM {target} ORDER BY day"),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![
                Field::StringValue("2026-11-25".into()),
                Field::LongValue(2),
                Field::StringValue("3.750".into())
            ],
            vec![
                Field::StringValue("2026-11-26".into()),
                Field::LongValue(1),
                Field::StringValue("100.000".into())
            ],
        ]
    );
    let ts = query(
        &c,
        &format!("SELECT ts::text FROM {schema}.events WHERE vin = 'A'"),
    )
    .await;
    assert_eq!(
        string(&ts[0][0]),
        "2026-11-25 10:00:00.123456",
        "nanoseconds are truncated"
    );
    run_ok(
        &c,
        &format!("ALTER TABLE {schema}.events DROP PARTITION (day='2026-11-26')"),
    )
    .await;
    assert_eq!(
        long(&query(&c, &format!("SELECT count(*) FROM {schema}.events")).await[0][0]),
        2
    );
    run_all(
        &c,
        &[
            format!("DROP TABLE {schema}.events"),
            format!("DROP PROCEDURE {target}_refresh(); DROP TABLE {target}; DROP SCHEMA {schema}"),
        ],
    )
    .await;
}

// --- Clients the project did not write ---

#[tokio::test]
async fn boto3_sees_the_same_typed_rows_as_the_rust_sdk() {
    let c = data_api_client().await;
    let sql = "SELECT g AS n, g * 1.5::float8 AS f, (g % 2 = 0) AS even, lpad(g::text, 4, '0') AS s, \
               (g / 7.0)::numeric(12,3) AS d, CASE WHEN g % 5 = 0 THEN NULL ELSE g END AS maybe, \
               ('2026-11-25'::date + g)::timestamp AS t FROM generate_series(1, 1203) g ORDER BY g";
    let d = run_ok(&c, sql).await;
    let (cols, rows, _) = statement_result(&c, &d.id).await;
    let rust_records: Vec<Value> = rows
        .iter()
        .map(|r| Value::Array(r.iter().map(field_json).collect()))
        .collect();
    let rust_cols: Vec<Value> = cols
        .iter()
        .map(|c| json!({"name": c.name(), "typeName": c.type_name()}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/data_api_boto3.py");
    let req = json!({"endpoint": data_api_endpoint(), "database": DB, "workgroup": WORKGROUP, "sql": sql});
    let out = venv_command("python")
        .arg(script)
        .arg(req.to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_slice(&out.stdout).expect("boto3 script output");
    assert_eq!(py["status"], "FINISHED");
    assert!(py["pages"].as_u64().unwrap() >= 2, "boto3 paged too");
    assert_eq!(py["columns"], Value::Array(rust_cols));
    assert_eq!(py["records"].as_array().unwrap().len(), 1203);
    assert_eq!(py["records"], Value::Array(rust_records));
    // Spot-check against values computed here.
    assert_eq!(
        py["records"][9],
        json!([{"longValue": 10}, {"doubleValue": 15.0}, {"booleanValue": true}, {"stringValue": "0010"}, {"stringValue": "1.429"}, {"isNull": true}, {"stringValue": "2026-12-05 00:00:00"}])
    );
}

#[tokio::test]
async fn aws_cli_round_trip() {
    // Fail clearly if the emulator is down.
    let _ = data_api_client().await;
    let endpoint = data_api_endpoint();
    let cli = |args: &[&str]| -> Value {
        let out = venv_command("aws")
            .args([
                "--endpoint-url",
                &endpoint,
                "--output",
                "json",
                "redshift-data",
            ])
            .args(args)
            .output()
            .expect("run aws");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("aws output")
    };
    let sub = cli(&[
        "execute-statement",
        "--workgroup-name",
        WORKGROUP,
        "--database",
        DB,
        "--sql",
        "SELECT 40 + 2 AS answer, 'fleet''line' AS name",
    ]);
    let id = sub["Id"].as_str().unwrap().to_string();
    let mut status = String::new();
    for _ in 0..200 {
        let d = cli(&["describe-statement", "--id", &id]);
        status = d["Status"].as_str().unwrap().to_string();
        if status == "FINISHED" || status == "FAILED" {
            assert_eq!(d["ResultRows"], 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "FINISHED");
    let r = cli(&["get-statement-result", "--id", &id]);
    assert_eq!(
        r["Records"],
        json!([[{"longValue": 42}, {"stringValue": "fleet'line"}]])
    );
    assert_eq!(r["ColumnMetadata"][0]["name"], "answer");
    assert_eq!(r["TotalNumRows"], 1);
}
