//! The serving layer end to end: every endpoint of query-api equals the simulator's ground
//! truth exactly, with data on both sides of the time boundary and the same readings in
//! both layers (so any double counting or gap would show).
//!
//! Setup per test (isolated, parallel-safe):
//! - a fresh database (`CREATE DATABASE qa_<random>` through the Data API) with infra/sql
//!   00, 05 and 10 applied by `localstack/apply-sql`, plus `batch.vehicle_daily` taken from
//!   infra/sql/20_batch_layer.sql (the rest of that file needs the lake's placeholders);
//! - the real `simulator` writes 6 days of readings around New Year (two years, trips across
//!   midnight, 3 % duplicates) and its ground truth;
//! - ALL readings go through the real `stream-processor` binary (hosted by lambda-host, fed
//!   Kinesis events) into speed.telemetry; the truth's daily aggregates for days < B go into
//!   batch.vehicle_daily (that table's producer, batch-views, is tested elsewhere);
//! - the real `query-api` binary runs under lambda-host behind the local runner's API
//!   Gateway (routes and stage from template.yaml) on 127.0.0.1:<ephemeral>; the tests speak
//!   HTTP to it.
//!
//! Needs the local stack (`localstack/up`) and
//! `cargo build -p simulator -p stream-processor -p query-api`.
//! The schemathesis and Chromium tests also need PyPI / apt on their first run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{Datelike, NaiveDate};
use fleetline_aws::warehouse::{MAX_STATEMENT_BYTES, chunk_values_insert};
use fleetline_aws::{DataApiWarehouse, Warehouse};
use fleetline_tests::{
    QUERY_API_BATCH_TABLES, create_batch_tables, create_speed_layer_database, create_test_database,
    data_api_client, drop_test_database, function_env, function_spec, repo_root, run_simulator,
    start_function, test_warehouse,
};
use lambda_host::{FunctionRegistry, HostedFunction, InvokeOutcome};
use local_runner::api_gateway::{self, ApiConfig, Router};
use local_runner::invoker::RegistryInvoker;
use local_runner::template::{Template, TemplateOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The boundary: days before it come from batch.vehicle_daily, the rest from speed.telemetry.
const BOUNDARY: &str = "2026-01-02";
/// The API key of the dashboard test's keyed gateway.
const TEST_API_KEY: &str = "fleetline-test-key";
/// A VIN that only the trap rows use (see `set_boundary_and_traps`).
const TRAP_VIN: &str = "ZZZZZZZZZZZZZZZZZ";

// ------------------------------------------------------------------------------------
// The API Gateway in front of the hosted query-api

struct Api {
    addr: SocketAddr,
    function: Arc<HostedFunction>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    async fn start(database: &str, log: PathBuf) -> Self {
        Self::start_with_key(database, log, None).await
    }

    /// With `api_key`, the gateway enforces it as on AWS (routes whose template event sets
    /// `ApiKeyRequired: false`, the dashboard's, excepted).
    async fn start_with_key(database: &str, log: PathBuf, api_key: Option<&str>) -> Self {
        let env = function_env(
            database,
            &[("FLEETLINE_REDSHIFT_TIMEOUT_SECS", "25".to_owned())],
        );
        let log_dir = log.parent().expect("log file in a directory");
        let spec =
            function_spec("query-api", Duration::from_secs(29), log_dir, &env).with_log_file(&log);
        // The runner's own invoker, as in `localstack/demo`.
        let mut registry = FunctionRegistry::new();
        let function = registry.insert_hosted(start_function(spec).await);
        let template = Template::load(
            &repo_root().join("template.yaml"),
            &TemplateOptions::default(),
        )
        .expect("template.yaml");
        let router = Router::from_template(&template, Some(&["query-api".to_owned()]));
        assert!(
            !router.routes().is_empty(),
            "template.yaml has no Api events for query-api"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api_gateway::serve(
            listener,
            Arc::new(router),
            Arc::new(RegistryInvoker::new(Arc::new(registry), "us-east-1")),
            ApiConfig {
                stage: template.api_stage.clone(),
                api_key: api_key.map(str::to_owned),
            },
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            function,
            stop: Some(tx),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET → (status, headers (lower-case names), body).
    async fn get_raw(&self, path_and_query: &str) -> (u16, Vec<(String, String)>, String) {
        http_request(self.addr, "GET", path_and_query).await
    }

    /// GET, expecting JSON.
    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let (status, headers, body) = self.get_raw(path_and_query).await;
        let ct = header(&headers, "content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "{path_and_query}: content-type {ct:?}: {body}"
        );
        let v =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"));
        (status, v)
    }

    /// GET expecting 200 JSON.
    async fn ok(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(path_and_query).await;
        assert_eq!(status, 200, "{path_and_query}: {body}");
        body
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.function.shutdown(Duration::from_secs(2)).await;
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// A minimal HTTP/1.1 client (the gateway answers with Content-Length bodies).
async fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the API");
    let req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

// ------------------------------------------------------------------------------------
// Data: simulator → stream-processor → speed.telemetry; truth → batch.vehicle_daily

struct Fixture {
    db: String,
    work: tempfile::TempDir,
    warehouse: DataApiWarehouse,
    truth: Value,
}

impl Fixture {
    async fn new() -> Self {
        let _ = data_api_client().await; // panics with "start it with localstack/up" when down
        let db = create_speed_layer_database("qa").await;
        let warehouse = test_warehouse(&db).await;
        create_batch_tables(&warehouse, QUERY_API_BATCH_TABLES).await;
        for name in ["refresh_fleet_daily", "rapid_acceleration_by_year_sp"] {
            warehouse
                .execute(&batch_procedure(name), &[])
                .await
                .unwrap_or_else(|e| panic!("create batch.{name}: {e}"));
        }
        let work = tempfile::Builder::new()
            .prefix("fleetline-qa-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut fx = Self {
            db,
            work,
            warehouse,
            truth: Value::Null,
        };
        let lines = fx.simulate();
        fx.ingest_speed(&lines).await;
        fx.fill_batch().await;
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// The fixture with the boundary and the trap rows set, and the API over it.
    async fn with_boundary_and_api() -> (Self, Api) {
        let fx = Self::new().await;
        fx.set_boundary_and_traps().await;
        let api = Api::start(&fx.db, fx.path("query-api.log")).await;
        (fx, api)
    }

    /// 4 vehicles, 6 nights 22:00–01:00 UTC from 2025-12-29: days 2025-12-29 … 2026-01-04.
    fn simulate(&mut self) -> Vec<String> {
        let args = [
            "--vehicles",
            "4",
            "--interval",
            "60s",
            "--duration",
            "10800s",
            "--days",
            "6",
            "--trips-per-day",
            "2",
            "--start",
            "2025-12-29T22:00:00Z",
            "--seed",
            "7",
            "--duplicate-rate",
            "0.03",
            "--rapid-threshold",
            "10.0",
            "--quiet",
        ];
        let sim = run_simulator(self.work.path(), "readings", &args, &[]);
        self.truth = sim.truth;
        assert!(self.truth["counts"]["duplicates_sent"].as_u64().unwrap() > 0);
        sim.lines
            .into_iter()
            .map(|l| String::from_utf8(l).expect("the simulator writes UTF-8 lines"))
            .collect()
    }

    /// Every line through the real stream-processor, in batches as Kinesis would deliver.
    async fn ingest_speed(&self, lines: &[String]) {
        let env = function_env(
            &self.db,
            &[("FLEETLINE_RAPID_ACCEL_KMH_PER_S", "10.0".to_owned())],
        );
        let spec = function_spec(
            "stream-processor",
            Duration::from_secs(120),
            self.work.path(),
            &env,
        );
        let sp = start_function(spec).await;
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/vehicle-telemetry";
        for (batch_no, chunk) in lines.chunks(500).enumerate() {
            let records: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let seq = format!("{:056}", batch_no * 500 + i + 1);
                    let vin = serde_json::from_str::<Value>(line).ok().and_then(|v| v["VIN"].as_str().map(str::to_owned)).unwrap_or_default();
                    json!({
                        "kinesis": {
                            "kinesisSchemaVersion": "1.0",
                            "partitionKey": vin,
                            "sequenceNumber": seq,
                            "data": base64::engine::general_purpose::STANDARD.encode(line),
                            "approximateArrivalTimestamp": 1_767_225_600.0 + (batch_no * 500 + i) as f64,
                        },
                        "eventSource": "aws:kinesis",
                        "eventVersion": "1.0",
                        "eventID": format!("shardId-000000000000:{seq}"),
                        "eventName": "aws:kinesis:record",
                        "invokeIdentityArn": "arn:aws:iam::000000000000:role/stream-processor",
                        "awsRegion": "us-east-1",
                        "eventSourceARN": arn,
                    })
                })
                .collect();
            match sp
                .invoke_json(&json!({ "Records": records }))
                .await
                .expect("invoke")
            {
                InvokeOutcome::Ok(body) => {
                    let v: Value = serde_json::from_slice(&body).expect("response json");
                    assert_eq!(v["batchItemFailures"], json!([]), "batch {batch_no}: {v}");
                }
                other => panic!("stream-processor failed: {other:?}"),
            }
        }
        sp.shutdown(Duration::from_secs(2)).await;
        let rs = self
            .warehouse
            .query("SELECT COUNT(*) AS n FROM speed.telemetry", &[])
            .await
            .expect("count");
        let n = rs.iter().next().unwrap().get_i64("n").unwrap();
        assert_eq!(
            n,
            self.truth["counts"]["valid_readings"].as_i64().unwrap(),
            "readings stored once each"
        );
    }

    /// The truth's daily aggregates of days before the boundary (what batch-views would write).
    async fn fill_batch(&self) {
        let b = day(BOUNDARY);
        let rows: Vec<String> = self.truth["daily"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| day(d["date"].as_str().unwrap()) < b)
            .map(|d| {
                daily_row(
                    d["vin"].as_str().unwrap(),
                    d["trip_id"].as_str().unwrap(),
                    d["date"].as_str().unwrap(),
                    d["readings"].as_i64().unwrap(),
                    d["sum_speed_milli"].as_i64().unwrap(),
                    d["min_odometer_m"].as_i64().unwrap(),
                    d["max_odometer_m"].as_i64().unwrap(),
                    d["rapid_accelerations"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(!rows.is_empty());
        self.insert_batch_rows(&rows).await;
    }

    async fn insert_batch_rows(&self, rows: &[String]) {
        let stmts = chunk_values_insert(
            "INSERT INTO batch.vehicle_daily (vin, trip_id, event_day, readings, sum_speed, min_odometer, max_odometer, rapid_accelerations, computed_at) VALUES ",
            rows,
            "",
            MAX_STATEMENT_BYTES,
        )
        .unwrap();
        self.warehouse
            .execute_batches(stmts)
            .await
            .expect("insert batch rows");
        // What the batch layer keeps with its daily rows (fleet-wide answers read them):
        // the migration that fills batch.fleet_daily for rows written before it existed,
        // and the by-year table a batch run rebuilds for the current boundary.
        self.exec(&fleet_daily_backfill()).await;
        self.exec("CALL batch.rapid_acceleration_by_year_sp()")
            .await;
    }

    async fn exec(&self, sql: &str) {
        self.warehouse
            .execute(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Sets B and adds rows each layer must NOT serve: a speed reading for a day < B that
    /// the batch layer has not seen yet (a late reading), and a stale batch row for a day
    /// >= B. Both belong to a VIN the truth does not know.
    async fn set_boundary_and_traps(&self) {
        self.exec(&format!(
            "UPDATE serving.control SET boundary = DATE '{BOUNDARY}', last_batch_run_at = TIMESTAMP '2026-01-02 03:00:00', \
             last_batch_summary = '{{\"boundary\":\"{BOUNDARY}\"}}'"
        ))
        .await;
        self.exec(&format!(
            "INSERT INTO speed.telemetry (vin, trip_id, ts, event_day, vehicle_speed, acceleration, odometer, rapid_acceleration, shard_id, sequence_number) \
             VALUES ('{TRAP_VIN}', 'trap-a', '2026-01-01 12:00:00', '2026-01-01', 50.000, 20.0000, 10.000, 1, 'shardId-000000000000', '1'), \
                    ('{TRAP_VIN}', 'trap-a', '2026-01-01 12:00:01', '2026-01-01', 50.000, 20.0000, 99.000, 1, 'shardId-000000000000', '2')"
        ))
        .await;
        self.insert_batch_rows(&[daily_row(
            TRAP_VIN,
            "trap-b",
            "2026-01-03",
            5,
            100_000,
            0,
            50_000,
            4,
        )])
        .await;
    }

    async fn drop(self) {
        drop_test_database(&self.db).await;
    }
}

/// The procedure `batch.<name>` as infra/sql/20_batch_layer.sql defines it.
fn batch_procedure(name: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("infra/sql/20_batch_layer.sql")).unwrap();
    let start = text
        .find(&format!("CREATE OR REPLACE PROCEDURE batch.{name}("))
        .unwrap_or_else(|| panic!("batch.{name} in 20_batch_layer.sql"));
    let end_marker = "$$ LANGUAGE plpgsql";
    let end = start + text[start..].find(end_marker).expect("end of procedure") + end_marker.len();
    text[start..end].to_owned()
}

/// The statement of infra/sql/21_fleet_daily.sql.
fn fleet_daily_backfill() -> String {
    let text = std::fs::read_to_string(repo_root().join("infra/sql/21_fleet_daily.sql")).unwrap();
    let start = text.find("CALL ").expect("CALL in 21_fleet_daily.sql");
    let end = start + text[start..].find(';').expect("end of statement");
    text[start..end].to_owned()
}

#[allow(clippy::too_many_arguments)]
fn daily_row(
    vin: &str,
    trip: &str,
    date: &str,
    readings: i64,
    sum_speed_milli: i64,
    min_m: i64,
    max_m: i64,
    rapid: i64,
) -> String {
    let milli = |v: i64| format!("{}.{:03}", v / 1000, v % 1000);
    format!(
        "('{vin}','{trip}','{date}',{readings},{},{},{},{rapid},TIMESTAMP '2026-01-02 03:00:00')",
        milli(sum_speed_milli),
        milli(min_m),
        milli(max_m)
    )
}

/// `CREATE TABLE IF NOT EXISTS <table> (…)` exactly as infra/sql/20 has it.
fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn exact(nano: i64) -> String {
    format!("{}.{:09}", nano / 1_000_000_000, nano % 1_000_000_000)
}

fn miles(nano: i64) -> f64 {
    (nano + 500).div_euclid(1_000) as f64 / 1e6
}

// ------------------------------------------------------------------------------------
// Expected answers, from the truth only

struct Daily {
    vin: String,
    trip: String,
    date: String,
    readings: i64,
    sum_speed: i64,
    nano: i64,
    rapid: i64,
}

fn daily(truth: &Value) -> Vec<Daily> {
    truth["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Daily {
            vin: d["vin"].as_str().unwrap().to_owned(),
            trip: d["trip_id"].as_str().unwrap().to_owned(),
            date: d["date"].as_str().unwrap().to_owned(),
            readings: d["readings"].as_i64().unwrap(),
            sum_speed: d["sum_speed_milli"].as_i64().unwrap(),
            nano: (d["max_odometer_m"].as_i64().unwrap() - d["min_odometer_m"].as_i64().unwrap())
                * 621_371,
            rapid: d["rapid_accelerations"].as_i64().unwrap(),
        })
        .collect()
}

/// Trips summed per day (the expected days and fleet/daily answers).
#[derive(Default)]
struct DayTotals {
    vins: std::collections::BTreeSet<String>,
    trips: i64,
    readings: i64,
    sum_speed: i64,
    nano: i64,
    rapid: i64,
}

impl DayTotals {
    /// The day's answer row, without `vehicles` (which only fleet/daily has).
    fn json(&self, date: &str) -> Value {
        json!({"date": date, "trips": self.trips, "readings": self.readings,
               "avg_speed_kmh": avg_kmh(self.sum_speed, self.readings), "miles": miles(self.nano),
               "miles_exact": exact(self.nano), "rapid_accelerations": self.rapid})
    }
}

fn per_day<'a>(trips: impl IntoIterator<Item = &'a Daily>) -> BTreeMap<String, DayTotals> {
    let mut out: BTreeMap<String, DayTotals> = BTreeMap::new();
    for d in trips {
        let e = out.entry(d.date.clone()).or_default();
        e.vins.insert(d.vin.clone());
        e.trips += 1;
        e.readings += d.readings;
        e.sum_speed += d.sum_speed;
        e.nano += d.nano;
        e.rapid += d.rapid;
    }
    out
}

fn avg_kmh(sum_milli: i64, readings: i64) -> f64 {
    // Half away from zero (speeds are never negative).
    ((2 * sum_milli + readings) / (2 * readings)) as f64 / 1e3
}

fn expected_fleet_miles(truth: &Value, year: Option<i64>) -> Value {
    let rows: Vec<Value> = truth["total_miles_by_year"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| year.is_none_or(|y| r["year"] == y))
        .map(|r| {
            let nano = r["total_miles_nano"].as_i64().unwrap();
            json!({"year": r["year"], "total_miles": miles(nano), "total_miles_exact": exact(nano)})
        })
        .collect();
    Value::Array(rows)
}

// ------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_equals_the_ground_truth_across_the_boundary() {
    let fx = Fixture::new().await;
    let api = Api::start(&fx.db, fx.path("query-api.log")).await;
    let truth = fx.truth.clone();
    let years: Vec<i64> = truth["total_miles_by_year"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years, [2025, 2026], "the data spans New Year");

    // 1. Before the first batch run (boundary NULL): everything from the speed layer, the
    //    batch rows already present are ignored.
    let body = api.ok("/v1/fleet/miles").await;
    assert_eq!(body["boundary"], Value::Null);
    assert_eq!(body["data"], expected_fleet_miles(&truth, None));
    let status = api.ok("/v1/status").await;
    assert_eq!(status["boundary"], Value::Null);
    assert_eq!(status["last_batch_run_at"], Value::Null);
    assert_eq!(status["speed_layer"]["oldest_day"], "2025-12-29");
    assert_eq!(status["speed_layer"]["newest_day"], "2026-01-04");
    assert_eq!(status["batch_layer"]["newest_day"], "2026-01-01");
    assert!(status["speed_layer"]["lag_seconds"].as_f64().unwrap() >= 0.0);

    // 2. Boundary B = 2026-01-02: batch serves 2025-12-29 … 2026-01-01, speed the rest.
    fx.set_boundary_and_traps().await;
    let status = api.ok("/v1/status").await;
    assert_eq!(status["boundary"], BOUNDARY);
    assert_eq!(status["last_batch_run_at"], "2026-01-02T03:00:00.000000Z");
    assert_eq!(status["last_batch_summary"], json!({"boundary": BOUNDARY}));
    assert_eq!(status["newest_day"], "2026-01-04");
    // Speed rows before the boundary that no batch run recomputed: waiting for the batch
    // layer, the oldest on the speed layer's first day.
    assert!(
        status["batch_layer"]["waiting_readings"].as_i64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(status["batch_layer"]["oldest_waiting_day"], "2025-12-29");
    assert_eq!(status["batch_layer"]["pending_days"], 0);

    // Total miles per year (2026 mixes both layers).
    let body = api.ok("/v1/fleet/miles").await;
    assert_eq!(body["boundary"], BOUNDARY);
    assert_eq!(body["data"], expected_fleet_miles(&truth, None));
    for y in [2025, 2026] {
        let body = api.ok(&format!("/v1/fleet/miles?year={y}")).await;
        assert_eq!(
            body["data"],
            expected_fleet_miles(&truth, Some(y)),
            "year {y}"
        );
    }
    let body = api.ok("/v1/fleet/miles?year=2030").await;
    assert_eq!(body, json!({"boundary": BOUNDARY, "data": []}));

    // Rapid accelerations per (VIN, year): page through with a small page size.
    let want: Vec<Value> = truth["rapid_accelerations_by_vin_year"]
        .as_array()
        .unwrap()
        .clone();
    assert!(want.len() > 3);
    assert!(
        want.iter()
            .any(|r| r["rapid_accelerations"].as_i64().unwrap() > 0)
    );
    let mut got = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &next {
            Some(t) => format!("/v1/vehicles/rapid-accelerations?limit=3&next_token={t}"),
            None => "/v1/vehicles/rapid-accelerations?limit=3".to_owned(),
        };
        let body = api.ok(&q).await;
        assert_eq!(body["boundary"], BOUNDARY);
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        got.extend(data.iter().cloned());
        pages += 1;
        match body["next_token"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    assert_eq!(
        got, want,
        "all pages, in (vin, year) order, equal the truth"
    );
    assert_eq!(pages, want.len().div_ceil(3));
    let vin0 = want[0]["vin"].as_str().unwrap();
    let body = api
        .ok(&format!(
            "/v1/vehicles/rapid-accelerations?vin={vin0}&year=2026"
        ))
        .await;
    let want_one: Vec<Value> = want
        .iter()
        .filter(|r| r["vin"] == vin0 && r["year"] == 2026)
        .cloned()
        .collect();
    assert_eq!(body["data"], Value::Array(want_one));
    assert_eq!(body["next_token"], Value::Null);

    // Miles per vehicle and year.
    let vins: Vec<String> = {
        let mut v: Vec<String> = want
            .iter()
            .map(|r| r["vin"].as_str().unwrap().to_owned())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(vins.len(), 4);
    for vin in &vins {
        let body = api.ok(&format!("/v1/vehicles/{vin}/miles")).await;
        let expected: Vec<Value> = truth["miles_by_vin_year"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["vin"] == vin.as_str())
            .map(|r| {
                let nano = r["miles_nano"].as_i64().unwrap();
                json!({"vin": vin, "year": r["year"], "miles": miles(nano), "miles_exact": exact(nano)})
            })
            .collect();
        assert_eq!(body["data"], Value::Array(expected), "{vin}");
    }
    let body = api.ok(&format!("/v1/vehicles/{TRAP_VIN}/miles")).await;
    assert_eq!(body["data"], json!([]), "neither trap row is served");

    // Trips of one vehicle per day, on both sides of the boundary.
    let all = daily(&truth);
    for vin in &vins {
        for date in ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-04"] {
            let body = api
                .ok(&format!("/v1/vehicles/{vin}/trips?date={date}"))
                .await;
            let mut got: BTreeMap<String, Value> = BTreeMap::new();
            for t in body["data"].as_array().unwrap() {
                got.insert(t["trip_id"].as_str().unwrap().to_owned(), t.clone());
            }
            let want: BTreeMap<String, Value> = all
                .iter()
                .filter(|d| &d.vin == vin && d.date == date)
                .map(|d| {
                    (d.trip.clone(), json!({
                        "trip_id": d.trip, "date": d.date, "readings": d.readings,
                        "avg_speed_kmh": avg_kmh(d.sum_speed, d.readings),
                        "miles": miles(d.nano), "miles_exact": exact(d.nano), "rapid_accelerations": d.rapid,
                    }))
                })
                .collect();
            assert!(!want.is_empty(), "{vin} drove on {date}");
            assert_eq!(got, want, "{vin} {date}");
        }
    }

    // Days of one vehicle (its trips summed per day), both layers, with and without a year.
    for vin in &vins {
        let want: Vec<Value> = per_day(all.iter().filter(|d| &d.vin == vin))
            .iter()
            .map(|(date, t)| t.json(date))
            .collect();
        assert!(want.len() > 1, "{vin} drove on several days");
        let body = api.ok(&format!("/v1/vehicles/{vin}/days")).await;
        assert_eq!(body["boundary"], BOUNDARY);
        assert_eq!(body["data"], Value::Array(want.clone()), "{vin}");
        let body = api.ok(&format!("/v1/vehicles/{vin}/days?year=2025")).await;
        let want2025: Vec<Value> = want
            .iter()
            .filter(|d| d["date"].as_str().unwrap().starts_with("2025-"))
            .cloned()
            .collect();
        assert_eq!(body["data"], Value::Array(want2025), "{vin} 2025");
    }
    let body = api.ok(&format!("/v1/vehicles/{TRAP_VIN}/days")).await;
    assert_eq!(body["data"], json!([]), "neither trap row is served");

    // Fleet totals per day over the whole data set.
    let body = api
        .ok("/v1/fleet/daily?from=2025-12-01&to=2026-01-31")
        .await;
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some("2025-12-01"), Some("2026-01-31"))
    );
    let want: Vec<Value> = per_day(&all)
        .iter()
        .map(|(date, t)| {
            let mut row = t.json(date);
            row["vehicles"] = json!(t.vins.len());
            row
        })
        .collect();
    assert_eq!(want.len(), 7);
    assert_eq!(body["data"], Value::Array(want));
    let first_day = day("2025-12-29");
    assert_eq!(first_day.year(), 2025);

    api.stop().await;
    fx.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_documented_status_and_shape() {
    let _ = data_api_client().await;
    // An empty database: no serving/batch/speed tables, so every merged query fails inside
    // the warehouse (a 500), while validation answers before any query (400).
    let db = create_test_database("qa").await;
    let work = tempfile::tempdir_in("/tmp").expect("tempdir");
    let api = Api::start(&db, work.path().join("query-api.log")).await;

    let cases: &[(&str, &str, &str)] = &[
        ("/v1/fleet/miles?year=20x6", "invalid_year", "'year'"),
        ("/v1/fleet/miles?year=2101", "invalid_year", "'year'"),
        (
            "/v1/fleet/miles?year=2026&year=2025",
            "duplicate_parameter",
            "'year'",
        ),
        ("/v1/fleet/miles?yaer=2026", "unknown_parameter", "\"yaer\""),
        (
            "/v1/vehicles/1hgcm82633a004352/miles",
            "invalid_vin",
            "'vin'",
        ),
        (
            "/v1/vehicles/1HGCM82633A00435/trips?date=2026-01-01",
            "invalid_vin",
            "'vin'",
        ),
        (
            "/v1/vehicles/1HGCM82633A004352/trips",
            "missing_parameter",
            "'date'",
        ),
        (
            "/v1/vehicles/1HGCM82633A004352/trips?date=2026-13-01",
            "invalid_date",
            "'date'",
        ),
        (
            "/v1/vehicles/rapid-accelerations?limit=1001",
            "invalid_limit",
            "'limit'",
        ),
        (
            "/v1/vehicles/rapid-accelerations?limit=abc",
            "invalid_limit",
            "'limit'",
        ),
        (
            "/v1/vehicles/rapid-accelerations?next_token=not-a-token",
            "invalid_next_token",
            "'next_token'",
        ),
        (
            "/v1/vehicles/rapid-accelerations?vin=X%27%20OR%201%3D1--",
            "invalid_vin",
            "'vin'",
        ),
        (
            "/v1/fleet/daily?from=2026-02-01&to=2026-01-01",
            "invalid_range",
            "'from'",
        ),
        (
            "/v1/fleet/daily?from=2025-01-01&to=2026-01-02",
            "range_too_long",
            "367 days",
        ),
        (
            "/v1/fleet/daily?from=2025-01-01",
            "missing_parameter",
            "'to'",
        ),
        ("/v1/status?verbose=1", "unknown_parameter", "\"verbose\""),
    ];
    for (target, code, mentions) in cases {
        let (status, body) = api.get(target).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert_eq!(body["error"]["code"], *code, "{target}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{target}: {message}");
        assert_eq!(
            body["error"].as_object().unwrap().len(),
            2,
            "only code and message: {body}"
        );
    }

    let (status, body) = api.get("/v1/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (status, body) = api.get("/v1/fleet/miles").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal");
    let rid = body["error"]["request_id"].as_str().unwrap();
    assert_eq!(rid.len(), 36, "a Lambda request id (UUID): {rid}");
    assert!(
        !body.to_string().contains("serving.control"),
        "details only in the logs: {body}"
    );
    // …where they are, under that request id.
    let log = std::fs::read_to_string(work.path().join("query-api.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains(rid) && l.contains("request failed")),
        "log:\n{log}"
    );

    // A method other than GET reaches the function only through a route that allows it
    // (API Gateway itself answers 403 for undeclared methods): send the proxy event directly.
    let event = json!({
        "resource": "/v1/{proxy+}", "path": "/v1/status", "httpMethod": "DELETE",
        "headers": {}, "multiValueHeaders": {}, "queryStringParameters": null,
        "multiValueQueryStringParameters": null, "pathParameters": {"proxy": "status"},
        "stageVariables": null, "body": null, "isBase64Encoded": false,
        "requestContext": {"accountId": "000000000000", "apiId": "localapi01", "stage": "api",
            "resourcePath": "/v1/{proxy+}", "httpMethod": "DELETE", "requestId": "r-1",
            "path": "/api/v1/status", "identity": {"sourceIp": "127.0.0.1"}, "protocol": "HTTP/1.1"},
    });
    match api.function.invoke_json(&event).await.expect("invoke") {
        InvokeOutcome::Ok(body) => {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["statusCode"], 405, "{v}");
            let inner: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
            assert_eq!(inner["error"]["code"], "method_not_allowed");
            let allow = v["headers"]["allow"]
                .as_str()
                .or_else(|| v["multiValueHeaders"]["allow"][0].as_str());
            assert_eq!(allow, Some("GET"), "{v}");
        }
        other => panic!("{other:?}"),
    }
    // Through the gateway, an undeclared method never reaches the function.
    let (status, _, _) = http_request(api.addr, "POST", "/v1/status").await;
    assert_eq!(status, 403);

    api.stop().await;
    drop_test_database(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_holds_against_the_running_api_schemathesis() {
    let (fx, api) = Fixture::with_boundary_and_api().await;
    // The spec the API serves is the one in the repository.
    let (status, _, body) = api.get_raw("/v1/openapi.yaml").await;
    assert_eq!(status, 200);
    let spec =
        std::fs::read_to_string(repo_root().join("functions/query-api/openapi.yaml")).unwrap();
    assert_eq!(body, spec);

    let mut schemathesis =
        tokio::process::Command::new(repo_root().join("tests/python/run-schemathesis"));
    schemathesis
        .arg("--url")
        .arg(api.url())
        .args(["--report", "junit", "--report-dir"])
        .arg(fx.path("schemathesis"));
    let stdout = run_script(&mut schemathesis, "schemathesis").await;
    // It really exercised every operation of the spec (one JUnit test case per operation).
    let junit: String = std::fs::read_dir(fx.path("schemathesis"))
        .expect("schemathesis report dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    for op in [
        "/v1/fleet/miles",
        "/v1/vehicles/rapid-accelerations",
        "/v1/vehicles/{vin}/miles",
        "/v1/vehicles/{vin}/trips",
        "/v1/vehicles/{vin}/days",
        "/v1/fleet/daily",
        "/v1/status",
    ] {
        assert!(
            junit.contains(&format!("GET {op}\"")),
            "{op} not tested:\n{junit}\n{stdout}"
        );
    }
    assert!(stdout.contains("No issues found"), "{stdout}");
    api.stop().await;
    fx.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_api_data_in_headless_chromium() {
    let (fx, api) = Fixture::with_boundary_and_api().await;
    let (status, headers, html) = api.get_raw("/dashboard").await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("url(http"),
        "no external resources"
    );
    // The page's selection rides in the query string; the server ignores it.
    let (status, _, with_query) = api.get_raw("/dashboard?vin=X&date=2026-01-01").await;
    assert_eq!((status, with_query.as_str()), (200, html.as_str()));

    // One DOM + screenshot per view, kept as test artifacts.
    let out_dir = std::env::var("FLEETLINE_DASHBOARD_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("localstack/.run/artifacts/dashboard"));
    println!(
        "dashboard views (DOM and screenshot): {}",
        out_dir.display()
    );
    let truth = &fx.truth;
    let all = daily(truth);

    // ---- Overview: no selection.
    let dom = render(&api, &out_dir, "/dashboard", "overview").await;
    assert!(
        dom.contains("data-state=\"ready\""),
        "the page finished without errors:\n{dom}"
    );
    assert!(
        dom.contains(&format!("id=\"status-boundary\">{BOUNDARY}<")),
        "boundary shown"
    );
    assert!(dom.contains("id=\"status-newest-day\">2026-01-04<"));

    // Miles per year: one bar per year with the API's (= truth's) value; the newest year
    // is the selected one.
    let miles_svg = svg(&dom, "chart-miles");
    for r in truth["total_miles_by_year"].as_array().unwrap() {
        let nano = r["total_miles_nano"].as_i64().unwrap();
        let bar = format!(
            "data-label=\"{}\" data-value=\"{}\"",
            r["year"],
            miles(nano)
        );
        assert!(miles_svg.contains(&bar), "{bar} in {miles_svg}");
    }
    assert_eq!(miles_svg.matches("<rect").count(), 2);
    assert_eq!(miles_svg.matches("bar selected").count(), 1);
    assert!(miles_svg.contains("class=\"bar selected pick\" data-label=\"2026\""));

    // Rapid accelerations: top VINs of the newest year (2026), and the fleet per year.
    let rapid_of = |year: i64| -> Vec<(String, i64)> {
        truth["rapid_accelerations_by_vin_year"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["year"] == year)
            .map(|r| {
                (
                    r["vin"].as_str().unwrap().to_owned(),
                    r["rapid_accelerations"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let check_rapid = |dom: &str, year: i64| {
        let rapid_svg = svg(dom, "chart-rapid");
        let want = rapid_of(year);
        assert!(!want.is_empty());
        assert_eq!(rapid_svg.matches("<rect").count(), want.len(), "{year}");
        for (vin, n) in &want {
            let bar = format!("data-label=\"{vin}\" data-value=\"{n}\"");
            assert!(rapid_svg.contains(&bar), "{year}: {bar}");
        }
        assert!(dom.contains(&format!(
            "id=\"rapid-title\">Rapid accelerations — top {} vehicles, {year}<",
            want.len()
        )));
        // The VIN labels as Chromium laid them out start inside the chart (never clipped).
        let left: i64 = attr(rapid_svg, "data-labels-left")
            .parse()
            .expect("data-labels-left");
        assert!(left >= 0, "labels start at x = {left}");
    };
    check_rapid(&dom, 2026);
    let years_svg = svg(&dom, "chart-rapid-years");
    for y in [2025, 2026] {
        let total: i64 = rapid_of(y).iter().map(|(_, n)| n).sum();
        assert!(
            years_svg.contains(&format!("data-label=\"{y}\" data-value=\"{total}\"")),
            "{y}: {total}"
        );
    }

    // Daily trend: the last 30 days up to the newest day → all 7 days with data.
    let daily_svg = svg(&dom, "chart-daily");
    assert_eq!(daily_svg.matches("class=\"point\"").count(), 7);
    assert!(daily_svg.contains("data-label=\"2025-12-29\""));
    assert!(daily_svg.contains("data-label=\"2026-01-04\""));
    assert!(dom.contains("Fleet daily miles, 2025-12-06 to 2026-01-04"));
    assert!(dom.contains("Pick a vehicle"));

    // ---- Year selector: ?year=2025 ranks 2025's vehicles and selects 2025's bars.
    let dom = render_ready(&api, &out_dir, "/dashboard?year=2025", "year-2025").await;
    check_rapid(&dom, 2025);
    assert!(svg(&dom, "chart-miles").contains("class=\"bar selected pick\" data-label=\"2025\""));

    // ---- Drill-down, day defaulted: the top vehicle of 2026 (a bar of the chart), on its
    //      newest day with data according to the truth (a speed-layer day).
    let mut top = rapid_of(2026);
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let vin = top[0].0.clone();
    let newest = all
        .iter()
        .filter(|d| d.vin == vin)
        .map(|d| d.date.clone())
        .max()
        .expect("the vehicle has data");
    let dom = render_ready(&api, &out_dir, &format!("/dashboard?vin={vin}"), "vehicle").await;
    check_trips(&dom, &all, &vin, &newest);
    assert!(dom.contains("(its newest day with data)"));

    // ---- The same through the chart: a real mouse click on that vehicle's bar opens its
    //      trips and puts the selection in the address (a shareable link).
    let (dom, url) = render_click(
        &api,
        &out_dir,
        "/dashboard",
        &format!("#chart-rapid rect[data-label=\"{vin}\"]"),
        "document.getElementById('vehicle-panel').dataset.date !== ''",
        "clicked-bar",
    )
    .await;
    assert_eq!(url, format!("{}/dashboard?vin={vin}", api.url()));
    let rapid_svg = svg(&dom, "chart-rapid");
    assert_eq!(rapid_svg.matches("selected").count(), 1, "{rapid_svg}");
    assert!(rapid_svg.contains(&format!(
        "class=\"bar alt pick selected\" data-label=\"{vin}\""
    )));
    check_trips(&dom, &all, &vin, &newest);

    // ---- Drill-down, day chosen: another vehicle on a batch-layer day, year 2025 ranked.
    let vin2 = top[top.len() - 1].0.clone();
    let dom = render_ready(
        &api,
        &out_dir,
        &format!("/dashboard?year=2025&vin={vin2}&date=2025-12-31"),
        "vehicle-day",
    )
    .await;
    check_trips(&dom, &all, &vin2, "2025-12-31");
    check_rapid(&dom, 2025);

    // ---- A VIN without data, and one that is not a VIN: a clear note, not an error.
    let dom = render_ready(
        &api,
        &out_dir,
        "/dashboard?vin=1HGCM82633A004352",
        "vehicle-unknown",
    )
    .await;
    assert!(dom.contains("No data for 1HGCM82633A004352."));
    assert!(!dom.contains("<tr data-trip="));
    let dom = render(&api, &out_dir, "/dashboard?vin=nope", "vehicle-invalid").await;
    assert!(dom.contains("is not a VIN"), "{dom}");

    api.stop().await;

    // ---- With an API key, as on AWS: the page loads without it, asks for it on the API's
    //      403, and uses one given in the fragment (kept out of shared links).
    let api = Api::start_with_key(&fx.db, fx.path("query-api-key.log"), Some(TEST_API_KEY)).await;
    let (status, _, _) = api.get_raw("/v1/status").await;
    assert_eq!(status, 403, "the API itself needs the key");
    let dom = render(&api, &out_dir, "/dashboard", "needs-key").await;
    assert!(dom.contains("data-state=\"needs-key\""), "{dom}");
    assert!(
        dom.contains("<section id=\"key-panel\" class=\"wide\">"),
        "key form shown: {dom}"
    );
    assert!(dom.contains("The API needs an API key."));
    let dom = render_ready(
        &api,
        &out_dir,
        &format!("/dashboard?vin={vin}#key={TEST_API_KEY}"),
        "with-key",
    )
    .await;
    check_trips(&dom, &all, &vin, &newest);
    let dom = render(&api, &out_dir, "/dashboard#key=wrong", "wrong-key").await;
    assert!(dom.contains("data-state=\"needs-key\""), "{dom}");
    assert!(dom.contains("The API refused the API key."));
    api.stop().await;

    // ---- API down: the page is served from a file, its API calls fail.
    let page = out_dir.join("dashboard-offline.html");
    std::fs::write(&page, &html).expect("write the page");
    let dom = render_url(
        &format!("file://{}?vin={vin}", page.display()),
        &out_dir,
        "api-down",
    )
    .await;
    assert!(dom.contains("data-state=\"error\""), "{dom}");
    assert!(dom.contains("did not answer: is it running?"), "{dom}");
    let errors_start = dom.find("id=\"errors\"").expect("#errors");
    let errors = &dom[errors_start..errors_start + dom[errors_start..].find("</div>").unwrap()];
    assert_eq!(
        errors.matches("did not answer").count(),
        1,
        "said once: {errors}"
    );
    fx.drop().await;
}

/// Renders `path` of the API's page in headless Chromium; the DOM after its scripts ran.
async fn render(api: &Api, out_dir: &std::path::Path, path: &str, name: &str) -> String {
    render_url(&format!("{}{path}", api.url()), out_dir, name).await
}

/// [`render`], and the page must have reached its ready state.
async fn render_ready(api: &Api, out_dir: &std::path::Path, path: &str, name: &str) -> String {
    let dom = render(api, out_dir, path, name).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    dom
}

/// Opens `path`, clicks `selector` (a real mouse event), waits for `done_js`; the DOM after
/// it and the page's URL then.
async fn render_click(
    api: &Api,
    out_dir: &std::path::Path,
    path: &str,
    selector: &str,
    done_js: &str,
    name: &str,
) -> (String, String) {
    let url = format!("{}{path}", api.url());
    let env = [("CLICK", selector), ("CLICK_DONE", done_js)];
    let (stdout, dom) = chromium(&url, out_dir, name, &env).await;
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("url: "))
        .unwrap_or_else(|| panic!("no url in {stdout}"))
        .to_owned();
    (dom, url)
}

async fn render_url(url: &str, out_dir: &std::path::Path, name: &str) -> String {
    chromium(url, out_dir, name, &[]).await.1
}

/// tests/dashboard/run-chromium on `url` with `env`; checks its PNG screenshot and returns
/// (its output, the DOM it saved).
async fn chromium(
    url: &str,
    out_dir: &std::path::Path,
    name: &str,
    env: &[(&str, &str)],
) -> (String, String) {
    let mut cmd = tokio::process::Command::new(repo_root().join("tests/dashboard/run-chromium"));
    cmd.arg(url)
        .arg(out_dir)
        .arg(name)
        .envs(env.iter().copied());
    let stdout = run_script(&mut cmd, &format!("run-chromium {url} {env:?}")).await;
    let png = std::fs::read(out_dir.join(format!("{name}.png"))).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dom = std::fs::read_to_string(out_dir.join(format!("{name}.html"))).expect("dom");
    (stdout, dom)
}

/// Runs a test script to completion; panics, naming `what` and showing its output, unless it
/// succeeds. Its standard output.
async fn run_script(cmd: &mut tokio::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The drill-down shows exactly the truth's trips of `vin` on `date` and the day's totals.
fn check_trips(dom: &str, all: &[Daily], vin: &str, date: &str) {
    let want: Vec<&Daily> = all
        .iter()
        .filter(|d| d.vin == vin && d.date == date)
        .collect();
    assert!(!want.is_empty(), "{vin} drove on {date}");
    assert!(
        dom.contains(&format!("data-vin=\"{vin}\" data-date=\"{date}\"")),
        "{vin} {date} selected"
    );
    assert_eq!(
        dom.matches("<tr data-trip=").count(),
        want.len(),
        "{vin} {date}"
    );
    for d in &want {
        let avg = avg_kmh(d.sum_speed, d.readings);
        let row = format!(
            "<tr data-trip=\"{trip}\"><td data-col=\"trip\" class=\"id\">{trip}</td>\
<td data-col=\"readings\" data-value=\"{r}\">{rg}</td>\
<td data-col=\"avg_speed_kmh\" data-value=\"{avg}\">{avg:.3}</td>\
<td data-col=\"miles\" data-value=\"{exact}\">{m3}</td>\
<td data-col=\"rapid_accelerations\" data-value=\"{rapid}\">{rapid}</td></tr>",
            trip = d.trip,
            r = d.readings,
            rg = grouped(d.readings),
            exact = exact(d.nano),
            m3 = milli_miles(d.nano),
            rapid = d.rapid,
        );
        assert!(dom.contains(&row), "{row}\nnot in\n{dom}");
    }
    // The vehicle's miles per day: a point per day it has data on, each the truth's sum.
    let chart = svg(dom, "chart-vehicle-days");
    let open_tag = &chart[..chart.find('>').unwrap()];
    assert!(!open_tag.contains("hidden"), "{open_tag}");
    let mut per_day: BTreeMap<&str, i64> = BTreeMap::new();
    for d in all.iter().filter(|d| d.vin == vin) {
        *per_day.entry(d.date.as_str()).or_default() += d.nano;
    }
    assert_eq!(chart.matches("class=\"point\"").count(), per_day.len());
    for (day, nano) in &per_day {
        let point = format!("data-label=\"{day}\" data-value=\"{}\"", miles(*nano));
        assert!(chart.contains(&point), "{point}");
    }
    let readings: i64 = want.iter().map(|d| d.readings).sum();
    let sum_speed: i64 = want.iter().map(|d| d.sum_speed).sum();
    let nano: i64 = want.iter().map(|d| d.nano).sum();
    let rapid: i64 = want.iter().map(|d| d.rapid).sum();
    for (id, text) in [
        ("day-date", date.to_owned()),
        ("day-trips", want.len().to_string()),
        ("day-readings", grouped(readings)),
        (
            "day-avg-speed",
            format!("{:.3} km/h", avg_kmh(sum_speed, readings)),
        ),
        ("day-miles", format!("{} mi", milli_miles(nano))),
        ("day-rapid", rapid.to_string()),
    ] {
        let cell = format!("id=\"{id}\">{text}<");
        assert!(dom.contains(&cell), "{cell} in {vin} {date}");
    }
}

/// Nano-miles → miles with 3 decimals, half up, thousands grouped (as the page shows them).
fn milli_miles(nano: i64) -> String {
    let milli = (nano + 500_000) / 1_000_000;
    format!("{}.{:03}", grouped(milli / 1000), milli % 1000)
}

/// 12345 → "12,345" (en-US grouping).
fn grouped(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The value of the first `name="…"` attribute in `element`.
fn attr<'a>(element: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = element
        .find(&key)
        .unwrap_or_else(|| panic!("{name} missing in {element}"))
        + key.len();
    let end = start + element[start..].find('"').expect("closing quote");
    &element[start..end]
}

/// The `<svg id="…">…</svg>` element of the dumped DOM.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("svg {id} missing"));
    let end = start + dom[start..].find("</svg>").expect("</svg>");
    &dom[start..end]
}
