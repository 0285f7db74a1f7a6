use std::sync::Mutex;

use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::{ExecSummary, FailedStatus, ResultSet, SqlParam, WarehouseError};
use serde_json::json;

use super::*;

/// Records statements; fails those containing `fail_on`.
struct Fake {
    executed: Mutex<Vec<String>>,
    fail_on: Option<&'static str>,
}

impl Fake {
    fn new(fail_on: Option<&'static str>) -> Self {
        Self {
            executed: Mutex::new(Vec::new()),
            fail_on,
        }
    }
    fn executed(&self) -> Vec<String> {
        self.executed.lock().unwrap().clone()
    }
}

impl Warehouse for Fake {
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

#[tokio::test]
async fn refreshes_every_view_then_updates_the_control_row() {
    let w = Fake::new(None);
    let views = parse_views(Some("speed.a_mv,speed.b_mv")).unwrap();
    let out = handle(&w, &views, &json!({})).await.unwrap();
    assert_eq!(
        w.executed(),
        [
            "REFRESH MATERIALIZED VIEW speed.a_mv",
            "REFRESH MATERIALIZED VIEW speed.b_mv",
            "UPDATE serving.control SET last_view_refresh_at = GETDATE()",
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
    let w = Fake::new(Some("speed.a_mv"));
    let views = parse_views(Some("speed.a_mv,speed.b_mv")).unwrap();
    let scheduled = json!({"version": "0", "id": "1", "detail-type": "Scheduled Event",
        "source": "aws.events", "time": "2026-11-25T18:00:00Z", "detail": {}});
    let err = handle(&w, &views, &scheduled).await.unwrap_err();
    assert!(err.to_string().contains("speed.a_mv"), "{err}");
    assert!(!err.to_string().contains("speed.b_mv"), "{err}");
    // Both attempted; the control row is not touched.
    assert_eq!(
        w.executed(),
        [
            "REFRESH MATERIALIZED VIEW speed.a_mv",
            "REFRESH MATERIALIZED VIEW speed.b_mv",
        ]
    );
    let summary = refresh_all(&Fake::new(Some("speed.a_mv")), &views).await;
    assert_eq!((summary.refreshed, summary.failed), (1, 1));
    assert!(!summary.control_updated);
}

#[tokio::test]
async fn a_failed_control_update_fails_the_invocation() {
    let w = Fake::new(Some("serving.control"));
    let err = handle(&w, &parse_views(None).unwrap(), &json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("serving.control update"), "{err}");
}
