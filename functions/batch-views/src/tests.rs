//! Unit tests with a fake warehouse and a fake lake.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::warehouse::{Column, ExecSummary, ResultSet, SqlParam, Value as Field};
use fleetline_aws::{Warehouse, WarehouseError};
use fleetline_core::RapidAccelThreshold;
use serde_json::{Value, json};

use crate::config::{ConfigError, LakeLayout, Settings};
use crate::lake::{
    LakeCatalog, LakeError, LakePartition, dedupe_by_day, partition_of_key, segment_value,
};
use crate::request::Request;
use crate::run::{handle, target_boundary};

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
}

/// Answers the few queries batch-views makes; records every call.
struct FakeWarehouse {
    boundary: Option<Option<NaiveDate>>,
    registered: Vec<(i64, i64, i64)>,
    count: i64,
    pruned: u64,
    fail_transaction: bool,
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
        self.calls.lock().unwrap().push(Call::Query(sql.to_owned()));
        if sql.contains("serving.control") {
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
        if sql.contains("COUNT(*)") {
            return Ok(rs(&["n"], vec![vec![Field::Long(self.count)]]));
        }
        panic!("unexpected query {sql}");
    }

    async fn execute(&self, sql: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
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
                .map(|s| LakePartition::for_day(PREFIX, d(s)))
                .collect(),
        )
    }
}

impl LakeCatalog for FakeLake {
    async fn list_partitions(&self) -> Result<Vec<LakePartition>, LakeError> {
        Ok(self.0.clone())
    }
}

fn settings() -> Settings {
    Settings {
        lake: LakeLayout::new("fleetline-lake", PREFIX),
        reprocess_days: 2,
        prune_margin_days: 2,
        threshold: RapidAccelThreshold::DEFAULT,
    }
}

const NOW: &str = "2026-11-25T00:30:00Z";

// ---- partitions -----------------------------------------------------------------------

#[test]
fn object_keys_map_to_partitions() {
    let p = partition_of_key(
        PREFIX,
        "vehicle_telematics_raw/year=2025/month=03/day=14/shardId-000000000001-4955-4960.parquet",
    )
    .unwrap();
    assert_eq!(p.day, d("2025-03-14"));
    assert_eq!(
        p.key_prefix,
        "vehicle_telematics_raw/year=2025/month=03/day=14/"
    );
    assert_eq!(p.ymd(), (2025, 3, 14));
    // Unpadded values are read, and the prefix is kept verbatim for the LOCATION.
    let q = partition_of_key(PREFIX, "vehicle_telematics_raw/year=2025/month=3/day=7/x").unwrap();
    assert_eq!(q.day, d("2025-03-07"));
    assert_eq!(
        q.key_prefix,
        "vehicle_telematics_raw/year=2025/month=3/day=7/"
    );
    for bad in [
        "vehicle_telematics_raw/year=2025/month=02/day=30/x.parquet", // no such date
        "vehicle_telematics_raw/year=2025/month=03/day=14/",          // folder marker
        "vehicle_telematics_raw/year=2025/month=03/x.parquet",        // too shallow
        "vehicle_telematics_raw/year=2025/month=03/day=14/a/b",       // too deep
        "vehicle_telematics_raw/year=25x/month=03/day=14/x",
        "vehicle_telematics_raw/month=03/year=2025/day=14/x",
        "other/year=2025/month=03/day=14/x",
        "rejected/shardId-1/123.json",
    ] {
        assert_eq!(partition_of_key(PREFIX, bad), None, "{bad}");
    }
}

#[test]
fn common_prefix_segments() {
    assert_eq!(segment_value("p/year=2025/", "p/", "year"), Some("2025"));
    assert_eq!(
        segment_value("p/year=2025/month=03/", "p/year=2025/", "month"),
        Some("03")
    );
    assert_eq!(segment_value("p/year=/", "p/", "year"), None);
    assert_eq!(segment_value("p/years=2025/", "p/", "year"), None);
    assert_eq!(segment_value("p/year=2025", "p/", "year"), None);
    assert_eq!(segment_value("q/year=2025/", "p/", "year"), None);
}

#[test]
fn one_partition_per_day_sorted() {
    let a = LakePartition::for_day(PREFIX, d("2025-03-14"));
    let b = LakePartition::for_day(PREFIX, d("2025-03-02"));
    let odd = LakePartition {
        day: d("2025-03-14"),
        key_prefix: "vehicle_telematics_raw/year=2025/month=3/day=14/".into(),
    };
    let out = dedupe_by_day([a.clone(), b.clone(), odd]);
    assert_eq!(out, vec![b, a]);
}

#[test]
fn add_partition_statements_are_chunked_by_one_hundred() {
    let lake = LakeLayout::new("fleetline-lake", PREFIX);
    let start = d("2025-01-01");
    let parts: Vec<_> = (0..250)
        .map(|i| LakePartition::for_day(PREFIX, start + chrono::Days::new(i)))
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
    let s = Settings::from_lookup(|_| None).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.lake.prefix, "vehicle_telematics_raw/");
    let s = Settings::from_lookup(|k| {
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
        Settings::from_lookup(|k| (k == "FLEETLINE_BATCH_REPROCESS_DAYS").then(|| "-1".to_owned()))
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
    assert_eq!(
        Request::parse(&json!({"boundary":"2026-11-20","full":true,"reprocess_days":0})).unwrap(),
        Request {
            boundary: Some(d("2026-11-20")),
            full: true,
            reprocess_days: Some(0)
        }
    );
    for bad in [
        json!({"boundry": "2026-11-20"}),
        json!({"boundary": "2026-11-31"}),
        json!({"boundary": "20261120"}),
        json!({"boundary": 20261120}),
        json!({"full": "yes"}),
        json!({"reprocess_days": -1}),
        json!({"reprocess_days": 1.5}),
        json!("full"),
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
        reprocess_days: None,
    };
    assert_eq!(target_boundary(&r(None, false), None, today), Ok(today));
    // A schedule never moves the boundary back.
    assert_eq!(
        target_boundary(&r(None, false), Some(d("2026-11-27")), today),
        Ok(d("2026-11-27"))
    );
    assert!(target_boundary(&r(Some("2026-11-26"), false), None, today).is_err());
    assert!(target_boundary(&r(Some("2026-11-01"), false), Some(d("2026-11-10")), today).is_err());
    assert_eq!(
        target_boundary(&r(Some("2026-11-01"), true), Some(d("2026-11-10")), today),
        Ok(d("2026-11-01"))
    );
}

// ---- whole runs against fakes ----------------------------------------------------------

#[tokio::test]
async fn incremental_run_statement_sequence() {
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.registered = vec![(2026, 11, 18), (2026, 11, 19)];
    let lake = FakeLake::days(&["2026-11-18", "2026-11-19", "2026-11-21", "2026-11-24"]);
    let out = handle(&w, &lake, &settings(), &json!({}), at(NOW))
        .await
        .unwrap();

    let calls = w.calls();
    assert_eq!(
        calls[0],
        Call::Query("SELECT boundary FROM serving.control".into())
    );
    assert_eq!(
        calls[1],
        Call::Query("SELECT year, month, day FROM batch.registered_partitions".into())
    );
    // New partitions only, in one ALTER outside any transaction, then recorded.
    assert_eq!(
        calls[2],
        Call::Execute(
            "ALTER TABLE spectrum.vehicle_telematics_raw ADD IF NOT EXISTS\n\
             PARTITION (year=2026, month=11, day=21) LOCATION 's3://fleetline-lake/vehicle_telematics_raw/year=2026/month=11/day=21/'\n\
             PARTITION (year=2026, month=11, day=24) LOCATION 's3://fleetline-lake/vehicle_telematics_raw/year=2026/month=11/day=24/'"
                .into()
        )
    );
    let Call::Transaction(record) = &calls[3] else {
        panic!(
            "expected the INSERT into registered_partitions, got {:?}",
            calls[3]
        );
    };
    assert_eq!(
        record,
        &vec!["INSERT INTO batch.registered_partitions (year, month, day, location, registered_at) VALUES \
               (2026,11,21,'s3://fleetline-lake/vehicle_telematics_raw/year=2026/month=11/day=21/',GETDATE()),\
               (2026,11,24,'s3://fleetline-lake/vehicle_telematics_raw/year=2026/month=11/day=24/',GETDATE())"
            .to_owned()]
    );
    // The swap: [B_old − 2, today), rows limited to days < B, control, seed procedures.
    let Call::Transaction(swap) = &calls[4] else {
        panic!("expected the swap transaction, got {:?}", calls[4]);
    };
    assert_eq!(swap.len(), 5);
    assert_eq!(
        swap[0],
        "CALL batch.recompute_daily(CAST('2026-11-18' AS DATE), CAST('2026-11-25' AS DATE), CAST(10.0000 AS DECIMAL(10,4)))"
    );
    assert_eq!(
        swap[1],
        "DELETE FROM batch.vehicle_daily WHERE event_day >= CAST('2026-11-25' AS DATE)"
    );
    assert!(
        swap[2].starts_with(
            "UPDATE serving.control SET boundary = CAST('2026-11-25' AS DATE), last_batch_run_at = GETDATE(), last_batch_summary = '{"
        ),
        "{}",
        swap[2]
    );
    assert!(
        swap[2].contains(r#""previous_boundary":"2026-11-20""#),
        "{}",
        swap[2]
    );
    assert_eq!(swap[3], "CALL batch.rapid_acceleration_by_year_sp()");
    assert_eq!(swap[4], "CALL batch.total_miles_driven_by_year_sp()");
    assert_eq!(
        calls[5],
        Call::Query(
            "SELECT COUNT(*) AS n FROM batch.vehicle_daily WHERE event_day >= CAST('2026-11-18' AS DATE) AND event_day < CAST('2026-11-25' AS DATE)"
                .into()
        )
    );
    assert_eq!(
        calls[6],
        Call::Execute(
            "DELETE FROM speed.telemetry WHERE event_day < CAST('2026-11-23' AS DATE)".into()
        )
    );
    assert_eq!(calls.len(), 7);

    assert_eq!(out["boundary"], "2026-11-25");
    assert_eq!(out["previous_boundary"], "2026-11-20");
    assert_eq!(out["days_recomputed"], 7);
    assert_eq!(out["recomputed_from"], "2026-11-18");
    assert_eq!(out["recomputed_to"], "2026-11-25");
    assert_eq!(out["recomputed_days"].as_array().unwrap().len(), 7);
    assert_eq!(out["recomputed_days"][6], "2026-11-24");
    assert_eq!(out["rows_written"], 7);
    assert_eq!(out["partitions_registered"], 2);
    assert_eq!(out["lake_partitions"], 4);
    assert_eq!(out["pruned_speed_rows"], 3);
    assert_eq!(out["prune_before"], "2026-11-23");
}

#[tokio::test]
async fn first_run_starts_at_the_earliest_lake_day() {
    let w = FakeWarehouse::new(None);
    let lake = FakeLake::days(&["2025-03-14", "2025-03-15"]);
    let out = handle(
        &w,
        &lake,
        &settings(),
        &json!({"boundary":"2025-03-16"}),
        at(NOW),
    )
    .await
    .unwrap();
    let swap = &w.transactions()[1];
    assert!(swap[0].starts_with(
        "CALL batch.recompute_daily(CAST('2025-03-14' AS DATE), CAST('2025-03-16' AS DATE)"
    ));
    assert_eq!(out["days_recomputed"], 2);
    assert_eq!(out["previous_boundary"], Value::Null);
    assert_eq!(out["prune_before"], "2025-03-14");
}

#[tokio::test]
async fn full_run_readds_every_partition_and_clears_older_rows() {
    let mut w = FakeWarehouse::new(Some("2026-11-20"));
    w.registered = vec![(2025, 3, 14)];
    let lake = FakeLake::days(&["2025-03-14", "2025-03-15"]);
    let out = handle(
        &w,
        &lake,
        &settings().clone(),
        &json!({"full": true, "boundary": "2025-03-16"}),
        at(NOW),
    )
    .await
    .unwrap();
    let executes = w.executes();
    // Both partitions re-added (idempotent), only the new one recorded.
    assert_eq!(executes[0].matches("PARTITION (").count(), 2);
    assert_eq!(out["partitions_registered"], 1);
    let swap = w.transactions().pop().unwrap();
    assert_eq!(
        swap[..3],
        [
            "CALL batch.recompute_daily(CAST('2025-03-14' AS DATE), CAST('2025-03-16' AS DATE), CAST(10.0000 AS DECIMAL(10,4)))"
                .to_owned(),
            "DELETE FROM batch.vehicle_daily WHERE event_day >= CAST('2025-03-16' AS DATE)".to_owned(),
            "DELETE FROM batch.vehicle_daily WHERE event_day < CAST('2025-03-14' AS DATE)".to_owned(),
        ]
    );
    assert_eq!(out["boundary"], "2025-03-16");
    assert_eq!(out["full"], true);
}

#[tokio::test]
async fn nothing_to_recompute_still_moves_the_boundary() {
    let w = FakeWarehouse::new(Some("2026-11-25"));
    let lake = FakeLake::days(&[]);
    let mut s = settings();
    s.reprocess_days = 0;
    let out = handle(&w, &lake, &s, &json!({}), at(NOW)).await.unwrap();
    let swap = w.transactions().pop().unwrap();
    assert!(
        swap[0].starts_with("DELETE FROM batch.vehicle_daily"),
        "{swap:?}"
    );
    assert!(!swap.iter().any(|s| s.contains("recompute_daily")));
    assert_eq!(out["days_recomputed"], 0);
    assert_eq!(out["rows_written"], 0);
    assert_eq!(out["recomputed_days"], json!([]));
    // No COUNT query without a range.
    assert!(
        !w.calls()
            .iter()
            .any(|c| matches!(c, Call::Query(q) if q.contains("COUNT")))
    );
}

#[tokio::test]
async fn payload_override_of_reprocess_days_and_threshold() {
    let w = FakeWarehouse::new(Some("2026-11-20"));
    let lake = FakeLake::days(&[]);
    let mut s = settings();
    s.threshold = RapidAccelThreshold::from_e4(125_000).unwrap();
    handle(&w, &lake, &s, &json!({"reprocess_days": 0}), at(NOW))
        .await
        .unwrap();
    let swap = w.transactions().pop().unwrap();
    assert_eq!(
        swap[0],
        "CALL batch.recompute_daily(CAST('2026-11-20' AS DATE), CAST('2026-11-25' AS DATE), CAST(12.5000 AS DECIMAL(10,4)))"
    );
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
        let out = handle(&w, &lake, &settings(), &payload, at(NOW))
            .await
            .unwrap();
        assert_eq!(out["error"]["code"], code, "{payload}: {out}");
        assert_eq!(out["status"], 400);
        assert!(!out["error"]["message"].as_str().unwrap().is_empty());
        // At most the control row was read: nothing registered, swapped or pruned.
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
    let err = handle(&w, &lake, &settings(), &json!({}), at(NOW))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("recomputing batch views"), "{err}");
    assert!(!w.executes().iter().any(|s| s.contains("speed.telemetry")));

    let mut w = FakeWarehouse::new(None);
    w.boundary = None; // no control row at all
    let err = handle(&w, &lake, &settings(), &json!({}), at(NOW))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("serving.control has no row"),
        "{err}"
    );
}
