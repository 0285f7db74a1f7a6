//! Handler tests over a fake warehouse: routing, validation, error shapes, decoding and
//! pagination, without AWS.

use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use fleetline_aws::warehouse::{
    Column, ExecSummary, FailedStatus, ResultSet, SqlParam, Value as V, Warehouse, WarehouseError,
};
use serde_json::{Value, json};

use crate::api::{ApiRequest, codes};
use crate::handlers::App;

/// Answers every query with the next canned result (or an error) and records the calls.
#[derive(Default)]
struct Fake {
    answers: Mutex<Vec<Result<ResultSet, String>>>,
    calls: Mutex<Vec<(String, Vec<SqlParam>)>>,
}

impl Fake {
    fn with(answers: Vec<Result<ResultSet, String>>) -> Self {
        Self {
            answers: Mutex::new(answers),
            calls: Mutex::default(),
        }
    }
    fn calls(&self) -> Vec<(String, Vec<SqlParam>)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Warehouse for Fake {
    async fn query(&self, sql: &str, params: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        redshift_strict::assert_redshift_sql(sql, false);
        self.calls
            .lock()
            .unwrap()
            .push((sql.to_owned(), params.to_vec()));
        let mut answers = self.answers.lock().unwrap();
        assert!(!answers.is_empty(), "unexpected query: {sql}");
        answers
            .remove(0)
            .map_err(|message| WarehouseError::StatementFailed {
                id: "s-1".into(),
                status: FailedStatus::Failed,
                sub_statement: None,
                message,
            })
    }
    async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        unreachable!("query-api never executes")
    }
    async fn transaction(&self, _: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        unreachable!("query-api never writes")
    }
}

fn rs(columns: &[&str], rows: Vec<Vec<V>>) -> ResultSet {
    ResultSet {
        columns: columns
            .iter()
            .map(|c| Column {
                name: (*c).to_owned(),
                type_name: "x".to_owned(),
            })
            .collect(),
        rows,
    }
}

/// The injected clock: a fixed instant, so the status lags are exact.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 5)
        .single()
        .expect("valid instant")
}

fn s(x: &str) -> V {
    V::String(x.to_owned())
}

async fn call(app: &App<&Fake>, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let resp = app.handle(&ApiRequest::get(path, query), now()).await;
    (resp.status, resp.json_body().unwrap_or(Value::Null))
}

const VIN: &str = "1HGCM82633A004352";

#[tokio::test]
async fn fleet_miles_rounds_and_keeps_the_exact_value() {
    let fake = Fake::with(vec![Ok(rs(
        &["boundary", "year", "total_miles"],
        vec![
            vec![s("2026-11-20"), V::Long(2025), s("10.000000500")],
            vec![s("2026-11-20"), V::Long(2026), s("1234.567891234")],
        ],
    ))]);
    let app = App::new(&fake);
    let (status, body) = call(&app, "/v1/fleet/miles", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"boundary": "2026-11-20", "data": [
            {"year": 2025, "total_miles": 10.000001, "total_miles_exact": "10.000000500"},
            {"year": 2026, "total_miles": 1234.567891, "total_miles_exact": "1234.567891234"},
        ]})
    );
    assert!(fake.calls()[0].1.is_empty());
}

#[tokio::test]
async fn empty_answers_still_carry_the_boundary_or_null() {
    let fake = Fake::with(vec![
        Ok(rs(
            &["boundary", "year", "miles"],
            vec![vec![V::Null, V::Null, V::Null]],
        )),
        Ok(rs(
            &["boundary", "year", "miles"],
            vec![vec![s("2026-01-05"), V::Null, V::Null]],
        )),
    ]);
    let app = App::new(&fake);
    let path = format!("/v1/vehicles/{VIN}/miles");
    let (status, body) = call(&app, &path, &[("year", "2026")]).await;
    assert_eq!((status, body), (200, json!({"boundary": null, "data": []})));
    let (_, body) = call(&app, &path, &[]).await;
    assert_eq!(body, json!({"boundary": "2026-01-05", "data": []}));
    let calls = fake.calls();
    assert_eq!(
        calls[0].1,
        vec![
            SqlParam::new("vin", VIN),
            SqlParam::new("day_from", "2026-01-01"),
            SqlParam::new("day_to", "2026-12-31")
        ]
    );
}

#[tokio::test]
async fn trips_decode_exact_decimals() {
    let fake = Fake::with(vec![Ok(rs(
        &[
            "boundary",
            "trip_id",
            "event_day",
            "readings",
            "sum_speed",
            "min_odometer",
            "max_odometer",
            "rapid_accelerations",
        ],
        vec![vec![
            s("2026-11-20"),
            s("trip-a"),
            s("2026-11-25"),
            V::Long(3),
            s("165.100"),
            s("1000.000"),
            s("1004.345"),
            V::Long(1),
        ]],
    ))]);
    let app = App::new(&fake);
    let (status, body) = call(
        &app,
        &format!("/v1/vehicles/{VIN}/trips"),
        &[("date", "2026-11-25")],
    )
    .await;
    assert_eq!(status, 200);
    // 4.345 km × 0.621371 = 2.699856995 mi; 165.1 / 3 = 55.0333… km/h.
    assert_eq!(
        body["data"],
        json!([{"trip_id": "trip-a", "date": "2026-11-25", "readings": 3, "avg_speed_kmh": 55.033,
                "miles": 2.699857, "miles_exact": "2.699856995", "rapid_accelerations": 1}])
    );
}

#[tokio::test]
async fn vehicle_days_sum_the_trips_of_each_day() {
    let cols = &[
        "boundary",
        "event_day",
        "trips",
        "readings",
        "sum_speed",
        "miles",
        "rapid_accelerations",
    ];
    let fake = Fake::with(vec![
        Ok(rs(
            cols,
            vec![
                vec![
                    s("2026-11-20"),
                    s("2026-11-19"),
                    V::Long(2),
                    V::Long(4),
                    s("200.002"),
                    s("3.000000500"),
                    V::Long(0),
                ],
                vec![
                    s("2026-11-20"),
                    s("2026-11-25"),
                    V::Long(1),
                    V::Long(3),
                    s("165.100"),
                    s("2.699856995"),
                    V::Long(1),
                ],
            ],
        )),
        Ok(rs(cols, vec![vec![V::Null; 7]])),
    ]);
    let app = App::new(&fake);
    let path = format!("/v1/vehicles/{VIN}/days");
    let (status, body) = call(&app, &path, &[]).await;
    assert_eq!(status, 200);
    // 200.002 / 4 = 50.0005 → 50.001 (half away from zero); 165.1 / 3 = 55.0333….
    assert_eq!(
        body,
        json!({"boundary": "2026-11-20", "data": [
            {"date": "2026-11-19", "trips": 2, "readings": 4, "avg_speed_kmh": 50.001,
             "miles": 3.000001, "miles_exact": "3.000000500", "rapid_accelerations": 0},
            {"date": "2026-11-25", "trips": 1, "readings": 3, "avg_speed_kmh": 55.033,
             "miles": 2.699857, "miles_exact": "2.699856995", "rapid_accelerations": 1},
        ]})
    );
    assert_eq!(fake.calls()[0].1, vec![SqlParam::new("vin", VIN)]);
    let (status, body) = call(&app, &path, &[("year", "2030")]).await;
    assert_eq!((status, body), (200, json!({"boundary": null, "data": []})));
    assert!(
        fake.calls()[1]
            .1
            .contains(&SqlParam::new("day_from", "2030-01-01"))
    );
    // Validation answers before any query.
    let (status, body) = call(&app, "/v1/vehicles/abc/days", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_vin"))
    );
    let (status, body) = call(&app, &path, &[("date", "2026-11-25")]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_parameter"))
    );
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn rapid_accelerations_paginate_with_a_token_bound_to_the_filters() {
    let page = |rows: &[(&str, i64, i64)]| {
        let mut out: Vec<Vec<V>> = rows
            .iter()
            .map(|(v, y, n)| vec![s("2026-11-20"), s(v), V::Long(*y), V::Long(*n)])
            .collect();
        if out.is_empty() {
            out.push(vec![s("2026-11-20"), V::Null, V::Null, V::Null]);
        }
        Ok(rs(&["boundary", "vin", "year", "rapid_accelerations"], out))
    };
    let a = "AAAAAAAAAAAAAAAAA";
    let b = "BBBBBBBBBBBBBBBBB";
    let fake = Fake::with(vec![
        page(&[(a, 2025, 1), (a, 2026, 0), (b, 2026, 7)]),
        page(&[(b, 2026, 7)]),
    ]);
    let app = App::new(&fake);
    let path = "/v1/vehicles/rapid-accelerations";
    let (status, first) = call(&app, path, &[("limit", "2")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        first["data"],
        json!([
            {"vin": a, "year": 2025, "rapid_accelerations": 1},
            {"vin": a, "year": 2026, "rapid_accelerations": 0},
        ])
    );
    let token = first["next_token"].as_str().unwrap().to_owned();
    let (_, second) = call(&app, path, &[("limit", "2"), ("next_token", &token)]).await;
    assert_eq!(
        second["data"],
        json!([{"vin": b, "year": 2026, "rapid_accelerations": 7}])
    );
    assert_eq!(second["next_token"], Value::Null);
    let calls = fake.calls();
    assert!(calls[0].1.contains(&SqlParam::new("fetch", "3")));
    assert!(calls[1].1.contains(&SqlParam::new("after_vin", a)));
    assert!(calls[1].1.contains(&SqlParam::new("after_year", "2026")));

    // The same token with another filter is refused before any query.
    let (status, body) = call(&app, path, &[("year", "2026"), ("next_token", &token)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], codes::INVALID_NEXT_TOKEN);
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn bad_input_is_400_naming_the_parameter_and_never_queries() {
    let fake = Fake::default();
    let app = App::new(&fake);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "/v1/fleet/miles",
            &[("year", "20x6")],
            codes::INVALID_YEAR,
            "'year'",
        ),
        (
            "/v1/fleet/miles",
            &[("year", "1969")],
            codes::INVALID_YEAR,
            "'year'",
        ),
        (
            "/v1/fleet/miles",
            &[("yaer", "2026")],
            codes::UNKNOWN_PARAMETER,
            "\"yaer\"",
        ),
        (
            "/v1/fleet/miles",
            &[("year", "2026"), ("year", "2025")],
            codes::DUPLICATE_PARAMETER,
            "'year'",
        ),
        (
            "/v1/vehicles/1hgcm82633a004352/miles",
            &[],
            codes::INVALID_VIN,
            "'vin'",
        ),
        (
            "/v1/vehicles/rapid-accelerations",
            &[("vin", "SHORT")],
            codes::INVALID_VIN,
            "'vin'",
        ),
        (
            "/v1/vehicles/rapid-accelerations",
            &[("limit", "1001")],
            codes::INVALID_LIMIT,
            "'limit'",
        ),
        (
            "/v1/vehicles/rapid-accelerations",
            &[("limit", "0")],
            codes::INVALID_LIMIT,
            "'limit'",
        ),
        (
            "/v1/vehicles/rapid-accelerations",
            &[("next_token", "garbage!")],
            codes::INVALID_NEXT_TOKEN,
            "'next_token'",
        ),
        (
            "/v1/vehicles/1HGCM82633A004352/trips",
            &[],
            codes::MISSING_PARAMETER,
            "'date'",
        ),
        (
            "/v1/vehicles/1HGCM82633A004352/trips",
            &[("date", "2026-02-30")],
            codes::INVALID_DATE,
            "'date'",
        ),
        (
            "/v1/fleet/daily",
            &[("from", "2026-02-01"), ("to", "2026-01-01")],
            codes::INVALID_RANGE,
            "'from'",
        ),
        (
            "/v1/fleet/daily",
            &[("from", "2025-01-01"), ("to", "2026-01-02")],
            codes::RANGE_TOO_LONG,
            "367 days",
        ),
        (
            "/v1/fleet/daily",
            &[("from", "2025-01-01")],
            codes::MISSING_PARAMETER,
            "'to'",
        ),
        (
            "/v1/status",
            &[("x", "1")],
            codes::UNKNOWN_PARAMETER,
            "\"x\"",
        ),
    ];
    for (path, query, code, mentions) in cases {
        let (status, body) = call(&app, path, query).await;
        assert_eq!(status, 400, "{path} {query:?}: {body}");
        assert_eq!(body["error"]["code"], *code, "{path} {query:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{message}");
        assert!(body["error"].get("request_id").is_none());
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_internal_errors() {
    let fake = Fake::with(vec![Err(
        "relation \"serving.control\" does not exist".into()
    )]);
    let app = App::new(&fake);
    let (status, body) = call(&app, "/v1/nope", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let mut req = ApiRequest::get("/v1/status", &[]);
    req.method = "POST".into();
    let resp = app.handle(&req, now()).await;
    assert_eq!(resp.status, 405);
    assert!(resp.headers.contains(&("allow", "GET".to_owned())));
    assert_eq!(
        resp.json_body().unwrap()["error"]["code"],
        "method_not_allowed"
    );

    let mut req = ApiRequest::get("/v1/fleet/miles", &[]);
    req.request_id = "req-42".into();
    let resp = app.handle(&req, now()).await;
    assert_eq!(resp.status, 500);
    let body = resp.json_body().unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(body["error"]["request_id"], "req-42");
    assert!(
        !resp.body.contains("serving.control"),
        "details stay in the logs"
    );
}

#[tokio::test]
async fn status_reports_boundary_and_lags() {
    let fake = Fake::with(vec![Ok(rs(
        &[
            "boundary",
            "last_batch_run_at",
            "last_batch_summary",
            "last_view_refresh_at",
            "speed_oldest_day",
            "speed_newest_day",
            "speed_newest_event_at",
            "speed_newest_arrival_at",
            "batch_oldest_day",
            "batch_newest_day",
            "waiting_readings",
            "waiting_oldest_day",
            "pending_days",
            "pending_oldest_day",
        ],
        vec![vec![
            s("2026-11-20"),
            s("2026-11-20 03:00:00.5"),
            s(r#"{"rows_written":12}"#),
            V::Null,
            s("2026-11-19"),
            s("2026-11-22"),
            s("2026-11-22 10:00:00"),
            s("2020-01-01 00:00:00"),
            s("2026-11-01"),
            s("2026-11-19"),
            V::Long(7),
            s("2026-11-12"),
            V::Long(2),
            s("2025-10-03"),
        ]],
    ))]);
    let app = App::new(&fake);
    let (status, body) = call(&app, "/v1/status", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["boundary"], "2026-11-20");
    assert_eq!(body["last_batch_run_at"], "2026-11-20T03:00:00.500000Z");
    assert_eq!(body["last_batch_summary"], json!({"rows_written": 12}));
    assert_eq!(body["last_view_refresh_at"], Value::Null);
    assert_eq!(body["newest_day"], "2026-11-22");
    assert_eq!(body["batch_layer"]["oldest_day"], "2026-11-01");
    assert_eq!(body["batch_layer"]["waiting_readings"], 7);
    assert_eq!(body["batch_layer"]["pending_days"], 2);
    // The older of the oldest waiting reading's day and the oldest pending day.
    assert_eq!(body["batch_layer"]["oldest_waiting_day"], "2025-10-03");
    // Lags against the injected clock (2026-11-22 10:00:05): the newest event five seconds
    // earlier; the newest arrival at 2020-01-01 00:00:00.
    assert_eq!(body["now"], "2026-11-22T10:00:05.000000Z");
    assert_eq!(body["speed_layer"]["event_lag_seconds"], json!(5.0));
    let since_2020 = (now() - Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()).num_seconds();
    assert_eq!(body["speed_layer"]["lag_seconds"], json!(since_2020 as f64));
}

#[tokio::test]
async fn dashboard_and_spec_are_served() {
    let fake = Fake::default();
    let app = App::new(&fake);
    for path in ["/", "/dashboard"] {
        let resp = app.handle(&ApiRequest::get(path, &[]), now()).await;
        assert_eq!(resp.status, 200);
        assert!(resp.content_type.starts_with("text/html"));
        assert!(resp.body.contains("id=\"chart-daily\""));
    }
    let resp = app
        .handle(&ApiRequest::get("/v1/openapi.yaml", &[]), now())
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.starts_with("openapi: 3"));
}
