use fleetline_aws::env::FromEnv;
use std::sync::Mutex;

use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::{ExecSummary, FailedStatus, ResultSet, SqlParam, WarehouseError};
use fleetline_core::ports::speed::{SpeedViews, StoreError};
use serde_json::json;

use super::*;

/// Records what it was asked to do; fails the calls whose name contains `fail_on`
/// (`serving.control` for the refresh record).
struct FakeViews {
    calls: Mutex<Vec<String>>,
    fail_on: Option<&'static str>,
}

impl FakeViews {
    fn new(fail_on: Option<&'static str>) -> Self {
        Self {
            calls: Mutex::new(Vec::new()),
            fail_on,
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, call: String) -> Result<(), StoreError> {
        let fails = self.fail_on.is_some_and(|f| call.contains(f));
        self.calls.lock().unwrap().push(call.clone());
        match fails {
            true => Err(StoreError::Permanent(format!("{call}: does not exist"))),
            false => Ok(()),
        }
    }
}

impl SpeedViews for FakeViews {
    async fn refresh(&self, view: &str) -> Result<(), StoreError> {
        self.answer(format!("refresh {view}"))
    }

    async fn record_refresh(&self) -> Result<(), StoreError> {
        self.answer("record serving.control".to_owned())
    }
}

/// Records statements; fails those containing `fail_on`.
struct FakeWarehouse {
    executed: Mutex<Vec<String>>,
    fail_on: Option<&'static str>,
}

impl Warehouse for FakeWarehouse {
    async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        panic!("not used")
    }
    async fn execute(&self, sql: &str, params: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        assert!(params.is_empty());
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        redshift_strict::assert_redshift_sql(sql, false);
        self.executed.lock().unwrap().push(sql.to_owned());
        if self.fail_on.is_some_and(|f| sql.contains(f)) {
            return Err(WarehouseError::StatementFailed {
                id: "x".into(),
                status: FailedStatus::Failed,
                sub_statement: None,
                message: format!("ERROR: relation \"{sql}\" does not exist"),
            });
        }
        Ok(ExecSummary {
            statement_id: "x".into(),
            rows_affected: vec![Some(1)],
        })
    }
    async fn transaction(&self, _: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        panic!("not used")
    }
}

fn refresher<'a>(views: &'a FakeViews, names: &str) -> Refresher<&'a FakeViews> {
    Refresher::new(views, parse_views(Some(names)).unwrap())
}

fn names(v: &[ViewName]) -> Vec<&str> {
    v.iter().map(ViewName::as_str).collect()
}

#[test]
fn view_names_are_validated_before_they_reach_sql() {
    assert_eq!(
        names(&parse_views(None).unwrap()),
        ["speed.vehicle_daily_mv"]
    );
    assert_eq!(
        names(&parse_views(Some("  ")).unwrap()),
        ["speed.vehicle_daily_mv"]
    );
    assert_eq!(
        names(&parse_views(Some(" , ")).unwrap()),
        ["speed.vehicle_daily_mv"]
    );
    assert_eq!(
        names(&parse_views(Some("speed.a_mv, _x._y1,speed.a_mv,")).unwrap()),
        ["speed.a_mv", "_x._y1"]
    );
    for bad in [
        "speed",
        "Speed.mv",
        "speed.mv; DROP TABLE x",
        "speed.mv.x",
        "1speed.mv",
        "speed.",
        ".mv",
        "speed.m-v",
        "\"speed\".\"mv\"",
    ] {
        assert_eq!(
            parse_views(Some(bad)),
            Err(ConfigError::BadName(bad.trim().to_owned())),
            "{bad}"
        );
    }
}

#[test]
fn config_reads_the_views_from_the_environment() {
    let config = Config::from_lookup(|k| (k == ENV_VIEWS).then(|| "speed.b_mv".to_owned()));
    assert_eq!(names(&config.unwrap().views), ["speed.b_mv"]);
    let config = Config::from_lookup(|_| None).unwrap();
    assert_eq!(names(&config.views), [DEFAULT_VIEWS]);
    assert!(Config::from_lookup(|_| Some("Bad".to_owned())).is_err());
}

#[tokio::test]
async fn refreshes_every_view_then_updates_the_control_row() {
    let v = FakeViews::new(None);
    let out = refresher(&v, "speed.a_mv,speed.b_mv")
        .handle(&json!({}))
        .await
        .unwrap();
    assert_eq!(
        v.calls(),
        [
            "refresh speed.a_mv",
            "refresh speed.b_mv",
            "record serving.control"
        ]
    );
    assert_eq!(out["refreshed"], 2);
    assert_eq!(out["failed"], 0);
    assert_eq!(out["control_updated"], true);
    assert_eq!(out["views"][1]["view"], "speed.b_mv");
    assert_eq!(out["views"][1]["ok"], true);
}

#[tokio::test]
async fn a_failed_view_does_not_stop_the_others_and_fails_the_invocation() {
    let v = FakeViews::new(Some("speed.a_mv"));
    let scheduled = json!({"version": "0", "id": "1", "detail-type": "Scheduled Event",
        "source": "aws.events", "time": "2026-11-25T18:00:00Z", "detail": {}});
    let r = refresher(&v, "speed.a_mv,speed.b_mv");
    let err = r.handle(&scheduled).await.unwrap_err();
    assert!(err.to_string().contains("speed.a_mv"), "{err}");
    assert!(!err.to_string().contains("speed.b_mv"), "{err}");
    // Both attempted; the control row is not touched.
    assert_eq!(v.calls(), ["refresh speed.a_mv", "refresh speed.b_mv"]);
    let summary = r.refresh_all().await;
    assert_eq!((summary.refreshed, summary.failed), (1, 1));
    assert!(!summary.control_updated);
}

#[tokio::test]
async fn a_failed_control_update_fails_the_invocation() {
    let v = FakeViews::new(Some("serving.control"));
    let err = Refresher::new(&v, parse_views(None).unwrap())
        .handle(&json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("serving.control update"), "{err}");
}

#[tokio::test]
async fn the_redshift_views_send_refresh_and_control_statements() {
    let w = FakeWarehouse {
        executed: Mutex::new(Vec::new()),
        fail_on: Some("speed.b_mv"),
    };
    let views = RedshiftViews::new(&w);
    views.refresh("speed.a_mv").await.unwrap();
    let err = views.refresh("speed.b_mv").await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    views.record_refresh().await.unwrap();
    // A name that is not a view name never reaches SQL.
    assert!(matches!(
        views.refresh("speed.mv; DROP TABLE x").await,
        Err(StoreError::Permanent(_))
    ));
    assert_eq!(
        *w.executed.lock().unwrap(),
        [
            "REFRESH MATERIALIZED VIEW speed.a_mv",
            "REFRESH MATERIALIZED VIEW speed.b_mv",
            "UPDATE serving.control SET last_view_refresh_at = GETDATE()",
        ]
    );
}
