//! Unit tests with a fake warehouse and a fake lake.

use fleetline_aws::env::FromEnv;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::lake::{partition_for_day, partition_of_key};
use fleetline_aws::warehouse::{Column, ExecSummary, ResultSet, SqlParam, Value as Field};
use fleetline_aws::{Warehouse, WarehouseError};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::catalog::{CatalogError, LakeCatalog, LakePartition};
use serde_json::{Value, json};

use crate::changes::{ChangeFeed, ChangeFeedError, Notification, object_keys};
use crate::config::{Config, ConfigError, LakeLayout};
use crate::request::Request;
use crate::run::{BatchError, handle, target_boundary};
use crate::sql;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const PREFIX: &str = "vehicle_telematics_raw/";

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Query(String),
    Execute(String),
    Transaction(Vec<String>),
    /// Notifications deleted from the change queue.
    Delete(Vec<String>),
}

/// Answers the few queries batch-views makes; records every call.
struct FakeWarehouse {
    boundary: Option<Option<NaiveDate>>,
    registered: Vec<(i64, i64, i64)>,
    count: i64,
    pruned: u64,
    fail_transaction: bool,
    /// Answer to the pending-days query.
    pending: Vec<NaiveDate>,
    /// Answer to the speed-waiting-days query.
    speed_waiting: Vec<NaiveDate>,
    /// Answer to the lake-behind query: (day, speed readings, batch readings).
    behind: Vec<(NaiveDate, i64, i64)>,
    /// The boundary the swap's hold leaves (read back after the swap); `None`: the one the
    /// swap's first UPDATE sets.
    held: Option<NaiveDate>,
    calls: Mutex<Vec<Call>>,
}

impl FakeWarehouse {
    fn new(boundary: Option<&str>) -> Self {
        Self {
            boundary: Some(boundary.map(d)),
            registered: Vec::new(),
            count: 7,
            pruned: 3,
            fail_transaction: false,
            pending: Vec::new(),
            speed_waiting: Vec::new(),
            behind: Vec::new(),
            held: None,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn transactions(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Transaction(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn executes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Execute(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

fn rs(columns: &[&str], rows: Vec<Vec<Field>>) -> ResultSet {
    ResultSet {
        columns: columns
            .iter()
            .map(|n| Column {
                name: (*n).to_owned(),
                type_name: "x".to_owned(),
            })
            .collect(),
        rows,
    }
}

impl Warehouse for FakeWarehouse {
    async fn query(&self, sql: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        redshift_strict::assert_redshift_sql(sql, false);
        self.calls.lock().unwrap().push(Call::Query(sql.to_owned()));
        if sql.contains("serving.control") {
            // After a swap: what it committed.
            let swapped = self.transactions().into_iter().rev().find_map(|t| {
                let first = t.first()?;
                let rest = first.strip_prefix("UPDATE serving.control SET boundary = ")?;
                let at = rest.rfind("CAST('")? + 6;
                rest.get(at..at + 10)?.parse::<NaiveDate>().ok()
            });
            if let Some(b) = swapped.map(|b| self.held.unwrap_or(b)) {
                return Ok(rs(&["boundary"], vec![vec![Field::String(b.to_string())]]));
            }
            let rows = match self.boundary {
                None => vec![],
                Some(None) => vec![vec![Field::Null]],
                Some(Some(b)) => vec![vec![Field::String(b.to_string())]],
            };
            return Ok(rs(&["boundary"], rows));
        }
        if sql.contains("registered_partitions") {
            let rows = self
                .registered
                .iter()
                .map(|(y, m, dd)| vec![Field::Long(*y), Field::Long(*m), Field::Long(*dd)])
                .collect();
            return Ok(rs(&["year", "month", "day"], rows));
        }
        let days = |v: &[NaiveDate]| {
            rs(
                &["event_day"],
                v.iter()
                    .map(|d| vec![Field::String(d.to_string())])
                    .collect(),
            )
        };
        if sql.starts_with("SELECT DISTINCT event_day FROM batch.pending_days") {
            return Ok(days(&self.pending));
        }
        if sql.starts_with("SELECT x.event_day, SUM(x.speed_readings)") {
            let rows = self
                .behind
                .iter()
                .map(|(day, s, b)| {
                    vec![
                        Field::String(day.to_string()),
                        Field::Long(*s),
                        Field::String(b.to_string()),
                    ]
                })
                .collect();
            return Ok(rs(&["event_day", "speed_readings", "batch_readings"], rows));
        }
        if sql.starts_with("SELECT DISTINCT t.event_day FROM speed.telemetry") {
            return Ok(days(&self.speed_waiting));
        }
        if sql.contains("COUNT(*)") {
            return Ok(rs(&["n"], vec![vec![Field::Long(self.count)]]));
        }
        panic!("unexpected query {sql}");
    }

    async fn execute(&self, sql: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        redshift_strict::assert_redshift_sql(sql, false);
        self.calls
            .lock()
            .unwrap()
            .push(Call::Execute(sql.to_owned()));
        let rows = if sql.starts_with("DELETE FROM speed.telemetry") {
            self.pruned
        } else {
            0
        };
        Ok(ExecSummary {
            statement_id: "e".into(),
            rows_affected: vec![Some(rows)],
        })
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        for s in &statements {
            redshift_strict::assert_redshift_sql(s, true);
        }
        self.calls
            .lock()
            .unwrap()
            .push(Call::Transaction(statements.clone()));
        if self.fail_transaction {
            return Err(WarehouseError::EmptyTransaction);
        }
        Ok(ExecSummary {
            statement_id: "t".into(),
            rows_affected: statements.iter().map(|_| Some(1)).collect(),
        })
    }
}

struct FakeLake(Vec<LakePartition>);

impl FakeLake {
    fn days(days: &[&str]) -> Self {
        Self(
            days.iter()
                .map(|s| partition_for_day(PREFIX, d(s)))
                .collect(),
        )
    }
}

impl LakeCatalog for FakeLake {
    async fn list_partitions(&self) -> Result<Vec<LakePartition>, CatalogError> {
        Ok(self.0.clone())
    }
}

fn settings() -> Config {
    Config {
        lake: LakeLayout::new("fleetline-lake", PREFIX),
        reprocess_days: 2,
        prune_margin_days: 2,
        max_hold_days: 2,
        threshold: RapidAccelThreshold::DEFAULT,
        changes_queue_url: None,
    }
}

const NOW: &str = "2026-11-25T00:30:00Z";

// ---- partitions -----------------------------------------------------------------------

#[test]
fn add_partition_statements_are_chunked_by_one_hundred() {
    let lake = LakeLayout::new("fleetline-lake", PREFIX);
    let start = d("2025-01-01");
    let parts: Vec<_> = (0..250)
        .map(|i| partition_for_day(PREFIX, start + chrono::Days::new(i)))
        .collect();
    let stmts = crate::sql::add_partitions(&lake, &parts).unwrap();
    assert_eq!(stmts.len(), 3);
    assert_eq!(stmts[0].matches("PARTITION (").count(), 100);
    assert_eq!(stmts[2].matches("PARTITION (").count(), 50);
    assert!(stmts[0].starts_with(
        "ALTER TABLE spectrum.vehicle_telematics_raw ADD IF NOT EXISTS\nPARTITION (year=2025, month=1, day=1) LOCATION 's3://fleetline-lake/vehicle_telematics_raw/year=2025/month=01/day=01/'"
    ));
}

// ---- configuration and payloads --------------------------------------------------------

#[test]
fn settings_from_env_defaults_and_errors() {
    let s = Config::from_lookup(|_| None).unwrap();
    assert_eq!(s, Config::default());
    assert_eq!(s.lake.prefix, "vehicle_telematics_raw/");
    let s = Config::from_lookup(|k| {
        match k {
            "LAKE_BUCKET" => Some("b"),
            "LAKE_PREFIX" => Some("t-1/lake"),
            "FLEETLINE_BATCH_REPROCESS_DAYS" => Some("5"),
            "FLEETLINE_SPEED_PRUNE_MARGIN_DAYS" => Some(" "),
            "FLEETLINE_RAPID_ACCEL_KMH_PER_S" => Some("12.5"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap();
    assert_eq!(s.lake, LakeLayout::new("b", "t-1/lake/"));
    assert_eq!((s.reprocess_days, s.prune_margin_days), (5, 2));
    assert_eq!(s.threshold.as_e4(), 125_000);
    let e =
        Config::from_lookup(|k| (k == "FLEETLINE_BATCH_REPROCESS_DAYS").then(|| "-1".to_owned()))
            .unwrap_err();
    assert!(matches!(e, ConfigError::Days { .. }), "{e}");
}

#[test]
fn payloads() {
    assert_eq!(Request::parse(&Value::Null).unwrap(), Request::default());
    assert_eq!(Request::parse(&json!({})).unwrap(), Request::default());
    let scheduled = json!({"version":"0","id":"x","detail-type":"Scheduled Event",
        "source":"aws.events","time":"2026-11-25T00:30:00Z","detail":{}});
    assert_eq!(Request::parse(&scheduled).unwrap(), Request::default());
    // Either mark is enough, whatever else the event carries.
    for event in [
        json!({"source": "aws.events", "full": "x"}),
        json!({"detail-type": null}),
    ] {
        assert_eq!(
            Request::parse(&event).unwrap(),
            Request::default(),
            "{event}"
        );
    }
    assert_eq!(
        Request::parse(&json!({"boundary":"2026-11-20","full":true,"reprocess_days":0})).unwrap(),
        Request {
            boundary: Some(d("2026-11-20")),
            full: true,
            reprocess_days: Some(0),
            catch_up: false,
        }
    );
    assert!(Request::parse(&json!({"catch_up": true})).unwrap().catch_up);
    for bad in [
        json!({"boundry": "2026-11-20"}),
        json!({"boundary": "2026-11-31"}),
        json!({"boundary": "20261120"}),
        json!({"boundary": 20261120}),
        json!({"full": "yes"}),
        json!({"catch_up": true, "full": true}),
        json!({"catch_up": true, "boundary": "2026-11-20"}),
        json!({"catch_up": 1}),
        json!({"reprocess_days": -1}),
        json!({"reprocess_days": 1.5}),
        json!("full"),
        json!([]),
        json!({"source": "other"}),
        json!({"reprocess_days": 3661}),
    ] {
        assert!(Request::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn boundary_targets() {
    let today = d("2026-11-25");
    let r = |b: Option<&str>, full| Request {
        boundary: b.map(d),
        full,
        ..Request::default()
    };
    assert_eq!(
        target_boundary(&r(None, false), None, today),
        Ok(Some(today))
    );
    // A schedule never moves the boundary back.
    assert_eq!(
        target_boundary(&r(None, false), Some(d("2026-11-27")), today),
        Ok(Some(d("2026-11-27")))
    );
    // A catch-up keeps it (none before the first run).
    let catch_up = Request {
        catch_up: true,
        ..Request::default()
    };
    assert_eq!(
        target_boundary(&catch_up, Some(d("2026-11-20")), today),
        Ok(Some(d("2026-11-20")))
    );
    assert_eq!(target_boundary(&catch_up, None, today), Ok(None));
    assert!(target_boundary(&r(Some("2026-11-26"), false), None, today).is_err());
    assert!(target_boundary(&r(Some("2026-11-01"), false), Some(d("2026-11-10")), today).is_err());
    assert_eq!(
        target_boundary(&r(Some("2026-11-01"), true), Some(d("2026-11-10")), today),
        Ok(Some(d("2026-11-01")))
    );
}

// ---- whole runs against fakes ----------------------------------------------------------

/// A lake change queue holding S3 notifications; deletes are logged into the warehouse's
/// call log, so tests see their order relative to the warehouse statements.
struct FakeFeed<'a> {
    messages: Mutex<Vec<Notification>>,
    log: &'a FakeWarehouse,
}

fn s3_event(keys: &[&str]) -> String {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
                "eventTime":"2026-11-24T10:00:00.000Z","eventName":"ObjectCreated:Put",
                "s3":{"s3SchemaVersion":"1.0","configurationId":"lake",
                      "bucket":{"name":"fleetline-lake","arn":"arn:aws:s3:::fleetline-lake"},
                      "object":{"key":k,"size":10,"sequencer":"0A"}}})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

impl<'a> FakeFeed<'a> {
    fn new(log: &'a FakeWarehouse, bodies: Vec<String>) -> Self {
        Self {
            messages: Mutex::new(
                bodies
                    .into_iter()
                    .enumerate()
                    .map(|(i, body)| Notification {
                        body,
                        receipt_handle: format!("h{i}"),
                    })
                    .collect(),
            ),
            log,
        }
    }
}

impl ChangeFeed for FakeFeed<'_> {
    async fn receive(&self) -> Result<Vec<Notification>, ChangeFeedError> {
        let mut m = self.messages.lock().unwrap();
        let n = m.len().min(10);
        Ok(m.drain(..n).collect())
    }
    async fn delete(&self, handles: &[String]) -> Result<(), ChangeFeedError> {
        self.log
            .calls
            .lock()
            .unwrap()
            .push(Call::Delete(handles.to_vec()));
        Ok(())
    }
}

const NO_FEED: Option<&FakeFeed<'static>> = None;

/// One invocation with the default settings at `NOW`.
async fn run_now(
    w: &FakeWarehouse,
    lake: &FakeLake,
    feed: Option<&FakeFeed<'_>>,
    event: &Value,
) -> Result<Value, BatchError> {
    handle(w, lake, feed, &settings(), event, at(NOW)).await
}

/// A run to `boundary` over an empty lake listing, without a change feed.
async fn run_to(w: &FakeWarehouse, boundary: &str) -> Value {
    run_now(
        w,
        &FakeLake::days(&[]),
        NO_FEED,
        &json!({ "boundary": boundary }),
    )
    .await
    .unwrap()
}

/// A `{"catch_up": true}` run with the change feed.
async fn catch_up(w: &FakeWarehouse, lake: &FakeLake, feed: &FakeFeed<'_>) -> Value {
    run_now(w, lake, Some(feed), &json!({"catch_up": true}))
        .await
        .unwrap()
}

#[test]
fn notification_bodies() {
    assert_eq!(
        object_keys(&s3_event(&[
            "vehicle_telematics_raw/year%3D2025/month%3D03/day%3D14/a+b.parquet"
        ])),
        Some(vec![
            "vehicle_telematics_raw/year=2025/month=03/day=14/a b.parquet".to_owned()
        ])
    );
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-24T10:00:00.000Z","Bucket":"fleetline-lake","RequestId":"x","HostId":"y"}"#;
    assert_eq!(object_keys(test_event), Some(vec![]));
    // A Firehose delivery (dynamic partitioning on the event date) names its day the same way.
    let firehose = "vehicle_telematics_raw/year=2025/month=03/day=14/fleetline-lake-1-2025-03-20-10-00-00-abc.parquet";
    let keys = object_keys(&s3_event(&[firehose])).unwrap();
    assert_eq!(
        partition_of_key(PREFIX, &keys[0]).map(|p| p.day),
        Some(d("2025-03-14"))
    );
    assert_eq!(object_keys("not json"), None);
    assert_eq!(object_keys("{}"), None);
}

#[tokio::test]
async fn notified_days_are_committed_pending_before_the_messages_are_deleted() {
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.registered = vec![(2026, 11, 21)];
    w.pending = vec![d("2025-01-10"), d("2026-11-20"), d("2026-11-21")];
    w.speed_waiting = vec![d("2026-11-19")];
    let feed = FakeFeed::new(
        &w,
        vec![
            s3_event(&["vehicle_telematics_raw/year=2026/month=11/day=21/s-1-2.parquet"]),
            s3_event(&[
                "vehicle_telematics_raw/year=2025/month=01/day=10/s-3-4.parquet",
                "rejected/s/5.json",
            ]),
            "garbage".to_owned(),
        ],
    );
    let mut s = settings();
    s.reprocess_days = 0;
    // The lake is not listed: the notifications say what changed.
    let out = handle(
        &w,
        &FakeLake::days(&[]),
        Some(&feed),
        &s,
        &json!({}),
        at(NOW),
    )
    .await
    .unwrap();
    let calls = w.calls();
    let pos = |f: &dyn Fn(&Call) -> bool| calls.iter().position(f).unwrap();
    let add = pos(&|c| matches!(c, Call::Execute(q) if q.starts_with("ALTER TABLE")));
    let Call::Execute(alter) = &calls[add] else {
        unreachable!()
    };
    // Only the partition not registered yet is added.
    assert_eq!(alter.matches("PARTITION (").count(), 1, "{alter}");
    assert!(alter.contains("year=2025, month=1, day=10"), "{alter}");
    let notified = pos(&|c| {
        matches!(c, Call::Transaction(t) if t[0].starts_with("INSERT INTO batch.pending_days")
            && t[0].contains("'2025-01-10'") && t[0].contains("'2026-11-21'"))
    });
    let deleted = pos(&|c| matches!(c, Call::Delete(_)));
    assert!(add < notified && notified < deleted, "{calls:#?}");
    assert_eq!(
        calls[deleted],
        Call::Delete(vec!["h0".into(), "h1".into(), "h2".into()])
    );
    // The boundary's move [2026-11-20, 2026-11-25) and the speed-waiting day are marked too.
    let moved = pos(&|c| {
        matches!(c, Call::Transaction(t) if t[0].starts_with("INSERT INTO batch.pending_days")
            && t[0].contains("(CAST('2026-11-19' AS DATE),CAST('2026-11-20' AS DATE),GETDATE())")
            && t[0].contains("'2026-11-24'"))
    });
    let swap_at = pos(&|c| matches!(c, Call::Transaction(t) if t.len() > 1));
    assert!(deleted < moved && moved < swap_at);
    let Call::Transaction(swap) = &calls[swap_at] else {
        unreachable!()
    };
    // Not full: the boundary never moves back, even past a run that committed meanwhile.
    assert!(swap[0].starts_with(
        "UPDATE serving.control SET boundary = CASE WHEN boundary > CAST('2026-11-25' AS DATE) THEN boundary ELSE CAST('2026-11-25' AS DATE) END, last_batch_run_at = GETDATE(), last_batch_summary = '{"
    ));
    assert_eq!(
        swap[1..],
        [
            "CALL batch.recompute_pending(CAST(10.0000 AS DECIMAL(10,4)))".to_owned(),
            sql::DELETE_DAILY_FROM_BOUNDARY.to_owned(),
            sql::DELETE_FLEET_DAYS_WITHOUT_ROWS.to_owned(),
            // Held where the lake is behind, from max(2026-11-20, 2026-11-25 − 2 days).
            sql::hold_boundary(d("2026-11-23"), d("2026-11-25")),
            "CALL batch.rapid_acceleration_by_year_sp()".to_owned(),
            "CALL batch.total_miles_driven_by_year_sp()".to_owned(),
        ]
    );
    let Call::Execute(prune) = calls.last().unwrap() else {
        panic!("{calls:?}")
    };
    assert!(prune.starts_with("DELETE FROM speed.telemetry USING batch.day_recomputes r"));
    assert!(prune.contains("telemetry.event_day < CAST('2026-11-23' AS DATE)"));
    assert!(prune.contains("telemetry.arrived_at < DATE_TRUNC('second', r.recomputed_at)"));
    assert!(prune.contains("NOT IN (SELECT p.event_day FROM batch.pending_days p)"));

    assert_eq!(out["notifications"], 3);
    assert_eq!(out["partitions_registered"], 1);
    assert_eq!(out["lake_partitions"], 0);
    assert_eq!(out["days_recomputed"], 3);
    assert_eq!(out["recomputed_from"], "2025-01-10");
    assert_eq!(out["recomputed_to"], "2026-11-22");
    assert_eq!(out["rows_written"], 7);
    assert_eq!(out["boundary"], "2026-11-25");
}

#[tokio::test]
async fn a_failed_pending_insert_keeps_the_notifications() {
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.fail_transaction = true;
    let feed = FakeFeed::new(
        &w,
        vec![s3_event(&[
            "vehicle_telematics_raw/year=2026/month=11/day=21/s-1-2.parquet",
        ])],
    );
    let err = run_now(&w, &FakeLake::days(&[]), Some(&feed), &json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("recording partitions"), "{err}");
    assert!(!w.calls().iter().any(|c| matches!(c, Call::Delete(_))));
    assert!(!w.executes().iter().any(|s| s.contains("speed.telemetry")));
}

#[tokio::test]
async fn a_quiet_catch_up_keeps_the_boundary_and_swaps_nothing() {
    let w = FakeWarehouse::new(Some("2026-11-20"));
    let feed = FakeFeed::new(&w, vec![]);
    let out = catch_up(&w, &FakeLake::days(&["2026-11-19"]), &feed).await;
    assert!(w.transactions().is_empty(), "{:?}", w.calls());
    assert_eq!(out["boundary"], "2026-11-20");
    assert_eq!(out["catch_up"], true);
    assert_eq!(out["days_recomputed"], 0);
    assert_eq!(out["lake_partitions"], 0);

    // With a changed day: recomputed, boundary unchanged.
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.pending = vec![d("2026-11-10")];
    let feed = FakeFeed::new(
        &w,
        vec![s3_event(&[
            "vehicle_telematics_raw/year=2026/month=11/day=10/s-1-2.parquet",
        ])],
    );
    let out = catch_up(&w, &FakeLake::days(&[]), &feed).await;
    let swap = w.transactions().pop().unwrap();
    assert!(
        swap[0].contains("ELSE CAST('2026-11-20' AS DATE) END"),
        "{swap:?}"
    );
    assert_eq!(out["recomputed_days"], json!(["2026-11-10"]));
    // A catch-up before any batch run only records the changes.
    let w = FakeWarehouse::new(None);
    let feed = FakeFeed::new(&w, vec![]);
    let out = catch_up(&w, &FakeLake::days(&[]), &feed).await;
    assert_eq!(out["boundary"], Value::Null);
    assert!(w.transactions().is_empty());
}

#[tokio::test]
async fn first_and_full_runs_list_the_lake_and_mark_every_day() {
    let w = FakeWarehouse::new(None);
    let lake = FakeLake::days(&["2025-03-14", "2025-03-15"]);
    run_now(&w, &lake, NO_FEED, &json!({"boundary":"2025-03-16"}))
        .await
        .unwrap();
    let marked = w
        .transactions()
        .into_iter()
        .find(|t| t[0].starts_with("INSERT INTO batch.pending_days"))
        .unwrap();
    assert_eq!(marked[0].matches("GETDATE()").count(), 2, "{marked:?}");

    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.registered = vec![(2025, 3, 14)];
    w.pending = vec![d("2025-03-14"), d("2025-03-15")];
    let out = run_now(
        &w,
        &lake,
        NO_FEED,
        &json!({"full": true, "boundary": "2025-03-16"}),
    )
    .await
    .unwrap();
    // Both partitions re-added (idempotent), only the new one recorded.
    assert_eq!(w.executes()[0].matches("PARTITION (").count(), 2);
    assert_eq!(out["partitions_registered"], 1);
    let swap = w.transactions().pop().unwrap();
    // Full: the boundary is set as requested, even backwards.
    assert!(
        swap[0].starts_with("UPDATE serving.control SET boundary = CAST('2025-03-16' AS DATE),"),
        "{swap:?}"
    );
    assert_eq!(
        swap[2..5],
        [
            sql::DELETE_DAILY_FROM_BOUNDARY.to_owned(),
            "DELETE FROM batch.vehicle_daily WHERE event_day < CAST('2025-03-14' AS DATE)"
                .to_owned(),
            sql::DELETE_FLEET_DAYS_WITHOUT_ROWS.to_owned(),
        ]
    );
    assert_eq!(out["full"], true);
}

#[tokio::test]
async fn invalid_requests_are_answered_and_change_nothing() {
    for (payload, code) in [
        (json!({"boundary": "2026-11-26"}), "InvalidBoundary"), // after today
        (json!({"boundary": "2026-11-19"}), "InvalidBoundary"), // backwards without full
        (json!({"boundary": "yesterday"}), "InvalidRequest"),
        (json!({"fulll": true}), "InvalidRequest"),
    ] {
        let w = FakeWarehouse::new(Some("2026-11-20"));
        let lake = FakeLake::days(&["2026-11-21"]);
        let out = run_now(&w, &lake, NO_FEED, &payload).await.unwrap();
        assert_eq!(out["error"]["code"], code, "{payload}: {out}");
        assert_eq!(out["status"], 400);
        assert!(
            w.calls()
                .iter()
                .all(|c| matches!(c, Call::Query(q) if q.contains("serving.control"))),
            "{payload}: {:?}",
            w.calls()
        );
    }
}

#[tokio::test]
async fn failures_fail_the_invocation_without_pruning() {
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.fail_transaction = true;
    w.registered = vec![(2026, 11, 21)];
    let lake = FakeLake::days(&["2026-11-21"]);
    let err = run_now(&w, &lake, NO_FEED, &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("marking days pending"), "{err}");
    assert!(!w.executes().iter().any(|s| s.contains("speed.telemetry")));

    let mut w = FakeWarehouse::new(None);
    w.boundary = None; // no control row at all
    let err = run_now(&w, &lake, NO_FEED, &json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("serving.control has no row"),
        "{err}"
    );
}

// ---- holding the boundary where the lake is behind -----------------------------------

#[test]
fn lake_behind_statements() {
    let q = sql::select_lake_behind(Some(d("2026-11-20")), d("2026-11-24"));
    assert!(q.contains(
        "FROM speed.telemetry WHERE event_day >= CAST('2026-11-20' AS DATE) AND event_day < CAST('2026-11-24' AS DATE) GROUP BY event_day"
    ));
    assert!(q.contains("SUM(readings) AS batch_readings FROM batch.vehicle_daily WHERE event_day >= CAST('2026-11-20' AS DATE)"));
    assert!(q.ends_with("HAVING SUM(x.batch_readings) < SUM(x.speed_readings) ORDER BY 1"));
    assert!(
        sql::select_lake_behind(None, d("2026-11-24"))
            .contains("WHERE event_day < CAST('2026-11-24' AS DATE) GROUP BY")
    );
    redshift_strict::assert_redshift_sql(&q, false);
    let h = sql::hold_boundary(d("2026-11-22"), d("2026-11-24"));
    assert!(h.starts_with(
        "UPDATE serving.control SET boundary = h.event_day FROM (SELECT MIN(l.event_day)"
    ));
    assert!(h.contains(
        "event_day >= CAST('2026-11-22' AS DATE) AND event_day < CAST('2026-11-24' AS DATE)"
    ));
    assert!(!h.contains("ORDER BY"));
    assert!(h.ends_with(
        "WHERE h.event_day IS NOT NULL AND boundary > h.event_day AND boundary = CAST('2026-11-24' AS DATE)"
    ));
    redshift_strict::assert_redshift_sql(&h, true);

    let s = Config::from_lookup(|k| (k == "FLEETLINE_BATCH_MAX_HOLD_DAYS").then(|| "0".into()))
        .unwrap();
    assert_eq!(s.max_hold_days, 0);
    assert_eq!(Config::default().max_hold_days, 2);
}

#[tokio::test]
async fn a_day_behind_in_the_lake_holds_the_boundary() {
    // Daily run moving 2026-11-20 → 2026-11-24; 11-22 and 11-23 are behind, 11-22 held.
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.pending = vec![d("2026-11-20"), d("2026-11-21")];
    w.held = Some(d("2026-11-22"));
    w.behind = vec![(d("2026-11-22"), 10, 7), (d("2026-11-23"), 5, 0)];
    let out = run_to(&w, "2026-11-24").await;
    let swap = w.transactions().pop().unwrap();
    assert!(swap[0].starts_with("UPDATE serving.control SET boundary = CASE"));
    assert_eq!(swap[2], sql::DELETE_DAILY_FROM_BOUNDARY);
    assert_eq!(swap[3], sql::DELETE_FLEET_DAYS_WITHOUT_ROWS);
    // Holdable from max(previous, target − 2 days) = 11-22, before the by-year views.
    assert_eq!(
        swap[4],
        sql::hold_boundary(d("2026-11-22"), d("2026-11-24"))
    );
    assert_eq!(swap[5], sql::CALL_RAPID_BY_YEAR);
    // The report covers every day moved over.
    assert!(w.calls().contains(&Call::Query(sql::select_lake_behind(
        Some(d("2026-11-20")),
        d("2026-11-24")
    ))));
    assert_eq!(out["boundary"], "2026-11-22");
    assert_eq!(out["held_at"], "2026-11-22");
    assert_eq!(
        out["lake_behind"],
        json!([
            {"day": "2026-11-22", "speed_readings": 10, "batch_readings": 7, "held": true},
            {"day": "2026-11-23", "speed_readings": 5, "batch_readings": 0, "held": true},
        ])
    );
    // Pruning follows the committed boundary, not the target.
    assert_eq!(out["prune_before"], "2026-11-20");
    assert!(w.executes().contains(&sql::prune_speed(d("2026-11-20"))));

    // Too old to hold (the lake never caught up): reported, not held; holding disabled: no
    // hold statement at all.
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.behind = vec![(d("2026-11-20"), 4, 1)];
    let out = handle(
        &w,
        &FakeLake::days(&[]),
        NO_FEED,
        &Config {
            max_hold_days: 0,
            ..settings()
        },
        &json!({"boundary": "2026-11-24"}),
        at(NOW),
    )
    .await
    .unwrap();
    let swap = w.transactions().pop().unwrap();
    assert!(!swap.iter().any(|s| s.contains("h.event_day")), "{swap:?}");
    assert_eq!(out["boundary"], "2026-11-24");
    assert_eq!(out["held_at"], Value::Null);
    assert_eq!(out["lake_behind"][0]["held"], false);

    // A full run never holds; a first run holds only from target − max_hold.
    let w = FakeWarehouse::new(Some("2026-11-20"));
    run_now(
        &w,
        &FakeLake::days(&[]),
        NO_FEED,
        &json!({"full": true, "boundary": "2026-11-24"}),
    )
    .await
    .unwrap();
    assert!(
        !w.transactions()
            .pop()
            .unwrap()
            .iter()
            .any(|s| s.contains("h.event_day"))
    );
    let w = FakeWarehouse::new(None);
    run_to(&w, "2026-11-24").await;
    assert!(
        w.transactions()
            .pop()
            .unwrap()
            .contains(&sql::hold_boundary(d("2026-11-22"), d("2026-11-24")))
    );
    assert!(
        w.calls()
            .contains(&Call::Query(sql::select_lake_behind(None, d("2026-11-24"))))
    );
}
