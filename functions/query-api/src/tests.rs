//! Handler tests over a fake serving port that answers with typed rows: routing,
//! validation, error shapes, JSON shaping and pagination, without a warehouse. The SQL and
//! its decoding are tested with the adapter (`redshift/tests.rs`).

use std::any::Any;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use fleetline_core::ports::serving::{
    DayTotals, Extent, FleetDay, Page, RapidAccelerationsQuery, Served, ServingError,
    ServingQueries, ServingResult, ServingStatus, TripDay, VehicleYear, VehicleYearCount,
    YearMiles,
};
use fleetline_core::{NanoMiles, Vin};
use serde_json::{Value, json};

use crate::api::{ApiRequest, ApiResponse, ErrorCode};
use crate::handlers::App;
use crate::token::{self, TokenFilters};

/// What the handlers asked the port.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    FleetMiles(Option<i32>),
    VehicleMiles(Vin, Option<i32>),
    RapidAccelerations(RapidAccelerationsQuery),
    Trips(Vin, NaiveDate),
    VehicleDays(Vin, Option<i32>),
    FleetDaily(NaiveDate, NaiveDate),
    Status,
}

/// A canned answer of the port: the value a method returns (its type is checked when the
/// method takes it), or a failure.
type Answer = Result<Box<dyn Any + Send>, ServingError>;

fn ok<T: Any + Send>(value: T) -> Answer {
    Ok(Box::new(value))
}

/// Answers each question with the next canned answer and records the questions; clones
/// share both, so a test keeps one while the app owns another.
#[derive(Default, Clone)]
struct Fake {
    answers: Arc<Mutex<Vec<Answer>>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Fake {
    fn with(answers: Vec<Answer>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers)),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Records `call` and takes the next answer, which must be a `T`.
    fn answer<T: Any>(&self, call: Call) -> ServingResult<T> {
        self.calls.lock().unwrap().push(call.clone());
        let mut answers = self.answers.lock().unwrap();
        assert!(!answers.is_empty(), "unexpected question: {call:?}");
        let value = answers.remove(0)?;
        match value.downcast::<T>() {
            Ok(value) => Ok(*value),
            Err(_) => panic!("wrong answer kind for {call:?}"),
        }
    }
}

impl ServingQueries for Fake {
    async fn fleet_miles(&self, year: Option<i32>) -> ServingResult<Served<YearMiles>> {
        self.answer(Call::FleetMiles(year))
    }
    async fn vehicle_miles(&self, vin: Vin, year: Option<i32>) -> ServingResult<Served<YearMiles>> {
        self.answer(Call::VehicleMiles(vin, year))
    }
    async fn rapid_accelerations(
        &self,
        query: RapidAccelerationsQuery,
    ) -> ServingResult<Page<VehicleYearCount>> {
        self.answer(Call::RapidAccelerations(query))
    }
    async fn trips(&self, vin: Vin, day: NaiveDate) -> ServingResult<Served<TripDay>> {
        self.answer(Call::Trips(vin, day))
    }
    async fn vehicle_days(&self, vin: Vin, year: Option<i32>) -> ServingResult<Served<DayTotals>> {
        self.answer(Call::VehicleDays(vin, year))
    }
    async fn fleet_daily(&self, from: NaiveDate, to: NaiveDate) -> ServingResult<Served<FleetDay>> {
        self.answer(Call::FleetDaily(from, to))
    }
    async fn status(&self) -> ServingResult<ServingStatus> {
        self.answer(Call::Status)
    }
}

/// The injected clock: a fixed instant, so the status lags are exact.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 5)
        .single()
        .expect("valid instant")
}

fn day(x: &str) -> NaiveDate {
    NaiveDate::parse_from_str(x, "%Y-%m-%d").unwrap()
}

fn at(x: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(x, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn vin(x: &str) -> Vin {
    Vin::parse(x).unwrap()
}

fn served<T>(boundary: Option<&str>, rows: Vec<T>) -> Served<T> {
    Served {
        boundary: boundary.map(day),
        rows,
    }
}

async fn get(app: &App<Fake>, path: &str, query: &[(&str, &str)]) -> ApiResponse {
    app.handle(&ApiRequest::get(path, query), now()).await
}

async fn call(app: &App<Fake>, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let resp = get(app, path, query).await;
    (resp.status, resp.json_body().unwrap_or(Value::Null))
}

const VIN: &str = "1HGCM82633A004352";

#[tokio::test]
async fn fleet_miles_rounds_and_keeps_the_exact_value() {
    let miles = |year, nanos| YearMiles {
        year,
        miles: NanoMiles(nanos),
    };
    let fake = Fake::with(vec![ok(served(
        Some("2026-11-20"),
        vec![miles(2025, 10_000_000_500), miles(2026, 1_234_567_891_234)],
    ))]);
    let app = App::new(fake.clone());
    let resp = get(&app, "/v1/fleet/miles", &[]).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body,
        r#"{"boundary":"2026-11-20","data":[{"year":2025,"total_miles":10.000001,"total_miles_exact":"10.000000500"},{"year":2026,"total_miles":1234.567891,"total_miles_exact":"1234.567891234"}]}"#
    );
    assert_eq!(fake.calls(), vec![Call::FleetMiles(None)]);
}

#[tokio::test]
async fn empty_answers_still_carry_the_boundary_or_null() {
    let fake = Fake::with(vec![
        ok(served::<YearMiles>(None, vec![])),
        ok(served::<YearMiles>(Some("2026-01-05"), vec![])),
    ]);
    let app = App::new(fake.clone());
    let path = format!("/v1/vehicles/{VIN}/miles");
    let (status, body) = call(&app, &path, &[("year", "2026")]).await;
    assert_eq!((status, body), (200, json!({"boundary": null, "data": []})));
    let (_, body) = call(&app, &path, &[]).await;
    assert_eq!(body, json!({"boundary": "2026-01-05", "data": []}));
    assert_eq!(
        fake.calls(),
        vec![
            Call::VehicleMiles(vin(VIN), Some(2026)),
            Call::VehicleMiles(vin(VIN), None)
        ]
    );
}

#[tokio::test]
async fn vehicle_miles_name_the_vehicle() {
    let rows = vec![YearMiles {
        year: 2025,
        miles: NanoMiles(236_100_000_000),
    }];
    let fake = Fake::with(vec![ok(served(Some("2026-01-02"), rows))]);
    let app = App::new(fake);
    let resp = get(&app, &format!("/v1/vehicles/{VIN}/miles"), &[]).await;
    assert_eq!(
        resp.body,
        format!(
            r#"{{"boundary":"2026-01-02","data":[{{"vin":"{VIN}","year":2025,"miles":236.1,"miles_exact":"236.100000000"}}]}}"#
        )
    );
}

#[tokio::test]
async fn trips_round_speed_and_miles() {
    let trip = TripDay {
        trip_id: "trip-a".into(),
        day: day("2026-11-25"),
        readings: 3,
        sum_speed_milli: 165_100,
        miles: NanoMiles::from_metres(4_345),
        rapid_accelerations: 1,
    };
    let fake = Fake::with(vec![ok(served(Some("2026-11-20"), vec![trip]))]);
    let app = App::new(fake.clone());
    let path = format!("/v1/vehicles/{VIN}/trips");
    let (status, body) = call(&app, &path, &[("date", "2026-11-25")]).await;
    assert_eq!(status, 200);
    // 4.345 km × 0.621371 = 2.699856995 mi; 165.1 / 3 = 55.0333… km/h.
    assert_eq!(
        body["data"],
        json!([{"trip_id": "trip-a", "date": "2026-11-25", "readings": 3, "avg_speed_kmh": 55.033,
                "miles": 2.699857, "miles_exact": "2.699856995", "rapid_accelerations": 1}])
    );
    assert_eq!(fake.calls(), vec![Call::Trips(vin(VIN), day("2026-11-25"))]);
}

/// A day's totals: (trips, readings, rapid accelerations), the speed sum, the miles.
fn totals(event_day: &str, counts: (i64, i64, i64), sum_speed: i64, nanos: i128) -> DayTotals {
    DayTotals {
        day: day(event_day),
        trips: counts.0,
        readings: counts.1,
        sum_speed_milli: sum_speed,
        miles: NanoMiles(nanos),
        rapid_accelerations: counts.2,
    }
}

#[tokio::test]
async fn vehicle_days_sum_the_trips_of_each_day() {
    let fake = Fake::with(vec![
        ok(served(
            Some("2026-11-20"),
            vec![
                totals("2026-11-19", (1, 4, 0), 200_002, 3_000_000_500),
                totals("2026-11-25", (2, 3, 1), 165_100, 2_699_856_995),
            ],
        )),
        ok(served::<DayTotals>(None, vec![])),
    ]);
    let app = App::new(fake.clone());
    let path = format!("/v1/vehicles/{VIN}/days");
    let (status, body) = call(&app, &path, &[]).await;
    assert_eq!(status, 200);
    // 200.002 / 4 = 50.0005 → 50.001 (half away from zero); 165.1 / 3 = 55.0333….
    assert_eq!(
        body,
        json!({"boundary": "2026-11-20", "data": [
            {"date": "2026-11-19", "trips": 1, "readings": 4, "avg_speed_kmh": 50.001,
             "miles": 3.000001, "miles_exact": "3.000000500", "rapid_accelerations": 0},
            {"date": "2026-11-25", "trips": 2, "readings": 3, "avg_speed_kmh": 55.033,
             "miles": 2.699857, "miles_exact": "2.699856995", "rapid_accelerations": 1},
        ]})
    );
    let (status, body) = call(&app, &path, &[("year", "2030")]).await;
    assert_eq!((status, body), (200, json!({"boundary": null, "data": []})));
    // Validation answers before any question.
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
    assert_eq!(
        fake.calls(),
        vec![
            Call::VehicleDays(vin(VIN), None),
            Call::VehicleDays(vin(VIN), Some(2030))
        ]
    );
}

#[tokio::test]
async fn fleet_daily_counts_vehicles_and_echoes_the_range() {
    let row = FleetDay {
        vehicles: 4,
        totals: totals("2025-12-29", (8, 0, 7), 0, 236_900_001_200),
    };
    let fake = Fake::with(vec![ok(served(None, vec![row]))]);
    let app = App::new(fake.clone());
    let range = [("from", "2025-12-06"), ("to", "2026-01-04")];
    let resp = get(&app, "/v1/fleet/daily", &range).await;
    // No readings: the average speed is null.
    assert_eq!(
        resp.body,
        r#"{"boundary":null,"data":[{"date":"2025-12-29","vehicles":4,"trips":8,"readings":0,"avg_speed_kmh":null,"miles":236.900001,"miles_exact":"236.900001200","rapid_accelerations":7}],"from":"2025-12-06","to":"2026-01-04"}"#
    );
    assert_eq!(
        fake.calls(),
        vec![Call::FleetDaily(day("2025-12-06"), day("2026-01-04"))]
    );
}

#[tokio::test]
async fn rapid_accelerations_paginate_with_a_token_bound_to_the_filters() {
    let (a, b) = ("AAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBB");
    let count = |v: &str, year, n| VehicleYearCount {
        at: VehicleYear { vin: vin(v), year },
        rapid_accelerations: n,
    };
    let page = |rows, more| {
        ok(Page {
            served: served(Some("2026-11-20"), rows),
            more,
        })
    };
    let fake = Fake::with(vec![
        page(vec![count(a, 2025, 1), count(a, 2026, 0)], true),
        page(vec![count(b, 2026, 7)], false),
    ]);
    let app = App::new(fake.clone());
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
    let no_filters = TokenFilters {
        year: None,
        vin: None,
    };
    let last = VehicleYear {
        vin: vin(a),
        year: 2026,
    };
    assert_eq!(token::decode(&token, &no_filters), Ok(last));
    let resp = get(&app, path, &[("limit", "2"), ("next_token", &token)]).await;
    assert_eq!(
        resp.body,
        format!(
            r#"{{"boundary":"2026-11-20","data":[{{"vin":"{b}","year":2026,"rapid_accelerations":7}}],"next_token":null}}"#
        )
    );
    let query = RapidAccelerationsQuery {
        vin: None,
        year: None,
        after: None,
        limit: 2,
    };
    let after = Some(last);
    assert_eq!(
        fake.calls(),
        vec![
            Call::RapidAccelerations(query),
            Call::RapidAccelerations(RapidAccelerationsQuery { after, ..query }),
        ]
    );

    // The same token with another filter is refused before any question.
    let (status, body) = call(&app, path, &[("year", "2026"), ("next_token", &token)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_next_token");
    assert_eq!(fake.calls().len(), 2);
}

/// `path?query | code | what the message mentions`, one bad request a line.
const BAD_REQUESTS: &str = "
/v1/fleet/miles?year=20x6 | invalid_year | 'year'
/v1/fleet/miles?year=1969 | invalid_year | 'year'
/v1/fleet/miles?yaer=2026 | unknown_parameter | \"yaer\"
/v1/fleet/miles?year=2026&year=2025 | duplicate_parameter | 'year'
/v1/vehicles/1hgcm82633a004352/miles | invalid_vin | 'vin'
/v1/vehicles/rapid-accelerations?vin=SHORT | invalid_vin | 'vin'
/v1/vehicles/rapid-accelerations?limit=1001 | invalid_limit | 'limit'
/v1/vehicles/rapid-accelerations?limit=0 | invalid_limit | 'limit'
/v1/vehicles/rapid-accelerations?next_token=garbage! | invalid_next_token | 'next_token'
/v1/vehicles/1HGCM82633A004352/trips | missing_parameter | 'date'
/v1/vehicles/1HGCM82633A004352/trips?date=2026-02-30 | invalid_date | 'date'
/v1/fleet/daily?from=2026-02-01&to=2026-01-01 | invalid_range | 'from'
/v1/fleet/daily?from=2025-01-01&to=2026-01-02 | range_too_long | 367 days
/v1/fleet/daily?from=2025-01-01 | missing_parameter | 'to'
/v1/status?x=1 | unknown_parameter | \"x\"
";

#[tokio::test]
async fn bad_input_is_400_naming_the_parameter_and_never_queries() {
    let fake = Fake::default();
    let app = App::new(fake.clone());
    for line in BAD_REQUESTS.lines().filter(|l| !l.is_empty()) {
        let [target, code, mentions] = *line.split(" | ").collect::<Vec<_>>() else {
            panic!("malformed case {line:?}");
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let pairs: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
        let (status, body) = call(&app, path, &pairs).await;
        assert_eq!(status, 400, "{line}: {body}");
        assert_eq!(body["error"]["code"], code, "{line}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{message}");
        assert!(body["error"].get("request_id").is_none());
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_internal_errors() {
    let fake = Fake::with(vec![Err(ServingError::Unavailable(
        "relation \"serving.control\" does not exist".into(),
    ))]);
    let app = App::new(fake);
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
        resp.body,
        r#"{"error":{"code":"method_not_allowed","message":"method \"POST\" is not allowed here; use GET"}}"#
    );

    let mut req = ApiRequest::get("/v1/fleet/miles", &[]);
    req.request_id = "req-42".into();
    let resp = app.handle(&req, now()).await;
    assert_eq!(resp.status, 500);
    assert_eq!(
        resp.body,
        r#"{"error":{"code":"internal","message":"internal error; quote the request id when reporting it","request_id":"req-42"}}"#
    );
    assert_eq!(ErrorCode::Internal.as_str(), "internal");
}

/// A status with every field set (the adapter's decoding test expects the same).
pub(crate) fn sample_status() -> ServingStatus {
    ServingStatus {
        boundary: Some(day("2026-11-20")),
        last_batch_run_at: Some(at("2026-11-20 03:00:00.5")),
        last_batch_summary: Some(r#"{"rows_written":12,"boundary":"2026-11-20"}"#.into()),
        last_view_refresh_at: None,
        speed_days: Extent {
            oldest: Some(day("2026-11-19")),
            newest: Some(day("2026-11-22")),
        },
        speed_newest_event_at: Some(at("2026-11-22 10:00:00")),
        speed_newest_arrival_at: Some(at("2020-01-01 00:00:00")),
        batch_days: Extent {
            oldest: Some(day("2026-11-01")),
            newest: Some(day("2026-11-19")),
        },
        waiting_readings: 7,
        waiting_oldest_day: Some(day("2026-11-12")),
        pending_days: 2,
        pending_oldest_day: Some(day("2025-10-03")),
    }
}

#[tokio::test]
async fn status_reports_boundary_and_lags() {
    let status = sample_status();
    let not_json = ServingStatus {
        last_batch_summary: Some("not json".into()),
        ..ServingStatus::default()
    };
    let fake = Fake::with(vec![ok(status), ok(not_json)]);
    let app = App::new(fake);
    let resp = get(&app, "/v1/status", &[]).await;
    assert_eq!(resp.status, 200);
    // Lags against the injected clock (2026-11-22 10:00:05): the newest event five seconds
    // earlier; the newest arrival at 2020-01-01 00:00:00. The oldest waiting day is the
    // older of the oldest waiting reading's day and the oldest pending day.
    let since_2020 = (now() - Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()).num_seconds();
    assert_eq!(
        resp.body,
        format!(
            concat!(
                r#"{{"boundary":"2026-11-20","last_batch_run_at":"2026-11-20T03:00:00.500000Z","#,
                r#""last_batch_summary":{{"rows_written":12,"boundary":"2026-11-20"}},"last_view_refresh_at":null,"#,
                r#""speed_layer":{{"oldest_day":"2026-11-19","newest_day":"2026-11-22","#,
                r#""newest_event_at":"2026-11-22T10:00:00.000000Z","newest_arrival_at":"2020-01-01T00:00:00.000000Z","#,
                r#""lag_seconds":{}.0,"event_lag_seconds":5.0}},"#,
                r#""batch_layer":{{"oldest_day":"2026-11-01","newest_day":"2026-11-19","#,
                r#""waiting_readings":7,"pending_days":2,"oldest_waiting_day":"2025-10-03"}},"#,
                r#""newest_day":"2026-11-22","now":"2026-11-22T10:00:05.000000Z"}}"#
            ),
            since_2020
        )
    );
    let (_, body) = call(&app, "/v1/status", &[]).await;
    assert_eq!(body["last_batch_summary"], "not json");
    assert_eq!(body["boundary"], Value::Null);
    assert_eq!(body["batch_layer"]["oldest_waiting_day"], Value::Null);
    assert_eq!(body["speed_layer"]["lag_seconds"], Value::Null);
}

#[tokio::test]
async fn dashboard_and_spec_are_served() {
    let app = App::new(Fake::default());
    for path in ["/", "/dashboard"] {
        let resp = get(&app, path, &[]).await;
        assert_eq!(resp.status, 200);
        assert!(resp.content_type.starts_with("text/html"));
        assert!(resp.body.contains("id=\"chart-daily\""));
    }
    let resp = get(&app, "/v1/openapi.yaml", &[]).await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.starts_with("openapi: 3"));
}
