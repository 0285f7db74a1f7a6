//! Request handling: route, validate, run one statement, shape the JSON. Generic over the
//! [`Warehouse`] port so unit tests use a fake.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use fleetline_aws::metrics::Emf;
use fleetline_aws::warehouse::{DecodeError, ResultSet, Row, Value as SqlValue, Warehouse};
use fleetline_core::{NanoMiles, Vin};
use serde_json::{Map, Value, json};

use crate::api::{ApiError, ApiRequest, ApiResponse, HTML, YAML};
use crate::numbers::{MILES_SCALE, MILLI_SCALE, avg_speed_kmh, miles_exact, miles_number};
use crate::params::{Query, parse_date, parse_range, parse_vin};
use crate::routes::{Route, route};
use crate::sql::{self, Statement};
use crate::token::{self, Cursor, TokenFilters};

/// The dashboard page (self-contained HTML, inline JS and hand-drawn SVG).
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// The OpenAPI 3 description of this API.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The API over one warehouse.
pub struct App<W> {
    warehouse: W,
    function_name: String,
}

/// A failure inside a handler: a client error, or an internal one whose details are only
/// logged.
enum Failure {
    Client(ApiError),
    Internal(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Client(e)
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Self {
        Failure::Internal(format!("decoding the result: {e}"))
    }
}

type Outcome = Result<ApiResponse, Failure>;

impl<W: Warehouse> App<W> {
    pub fn new(warehouse: W) -> Self {
        Self {
            warehouse,
            function_name: "query-api".to_owned(),
        }
    }

    /// Handles one request: never fails; logs one JSON line and emits one EMF document.
    /// `now` is the caller's clock (injected, as in the other functions' entry points).
    pub async fn handle(&self, req: &ApiRequest, now: DateTime<Utc>) -> ApiResponse {
        let started = Instant::now();
        let matched = route(&req.path);
        let route_name = matched.as_ref().map_or("unknown", Route::name);
        let outcome = match matched {
            None => Err(Failure::Client(ApiError::not_found(&req.path))),
            Some(_) if req.method != "GET" => {
                Err(Failure::Client(ApiError::method_not_allowed(&req.method)))
            }
            Some(r) => self.dispatch(r, req, now).await,
        };
        let response = match outcome {
            Ok(resp) => resp,
            Err(Failure::Client(e)) => ApiResponse::error(&e, &req.request_id),
            Err(Failure::Internal(detail)) => {
                tracing::error!(request_id = %req.request_id, route = route_name, error = %detail, "request failed");
                ApiResponse::error(&ApiError::internal(), &req.request_id)
            }
        };
        let elapsed = started.elapsed();
        tracing::info!(
            request_id = %req.request_id,
            method = %req.method,
            route = route_name,
            status = response.status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        let mut emf = Emf::new(&self.function_name);
        emf.duration("Latency", elapsed)
            .count("Requests", 1)
            .count("Status2xx", u64::from(response.status / 100 == 2))
            .count("Status4xx", u64::from(response.status / 100 == 4))
            .count("Status5xx", u64::from(response.status / 100 == 5))
            .property("RequestId", req.request_id.as_str())
            .property("Route", route_name)
            .property("StatusCode", response.status);
        emf.emit();
        response
    }

    async fn dispatch(&self, route: Route, req: &ApiRequest, now: DateTime<Utc>) -> Outcome {
        match route {
            // The dashboard ignores query strings (cache busters, bookmarks).
            Route::Dashboard => Ok(ApiResponse::text(200, HTML, DASHBOARD_HTML)),
            Route::OpenApi => {
                Query::new(&req.query, &[])?;
                Ok(ApiResponse::text(200, YAML, OPENAPI_YAML))
            }
            Route::FleetMiles => {
                let q = Query::new(&req.query, &["year"])?;
                self.fleet_miles(q.year()?).await
            }
            Route::VehicleMiles(raw) => {
                let vin = parse_vin("path parameter 'vin'", &raw)?;
                let q = Query::new(&req.query, &["year"])?;
                self.vehicle_miles(&vin, q.year()?).await
            }
            Route::RapidAccelerations => {
                let q = Query::new(&req.query, &["year", "vin", "limit", "next_token"])?;
                let (year, vin, limit) = (q.year()?, q.vin()?, q.limit()?);
                let filters = TokenFilters {
                    year,
                    vin: vin.map(|v| v.as_str().to_owned()),
                };
                let after = q
                    .get("next_token")
                    .map(|t| token::decode(t, &filters))
                    .transpose()?;
                self.rapid_accelerations(vin.as_ref(), year, after.as_ref(), limit, &filters)
                    .await
            }
            Route::VehicleTrips(raw) => {
                let vin = parse_vin("path parameter 'vin'", &raw)?;
                let q = Query::new(&req.query, &["date"])?;
                let day = parse_date("date", q.required("date")?)?;
                self.trips(&vin, day).await
            }
            Route::VehicleDays(raw) => {
                let vin = parse_vin("path parameter 'vin'", &raw)?;
                let q = Query::new(&req.query, &["year"])?;
                self.vehicle_days(&vin, q.year()?).await
            }
            Route::FleetDaily => {
                let q = Query::new(&req.query, &["from", "to"])?;
                let (from, to) = parse_range(&q)?;
                self.fleet_daily(from, to).await
            }
            Route::Status => {
                Query::new(&req.query, &[])?;
                self.status(now).await
            }
        }
    }

    async fn run(&self, s: &Statement) -> Result<ResultSet, Failure> {
        self.warehouse
            .query(&s.sql, &s.params)
            .await
            .map_err(|e| Failure::Internal(format!("warehouse: {e}")))
    }

    async fn fleet_miles(&self, year: Option<i32>) -> Outcome {
        let rs = self.run(&sql::fleet_miles(year)).await?;
        let boundary = boundary(&rs)?;
        let data = data_rows(&rs, "year", |r| {
            let m = NanoMiles(i128::from(r.get_scaled_i64("total_miles", MILES_SCALE)?));
            Ok(json!({
                "year": r.get_i64("year")?,
                "total_miles": miles_number(m),
                "total_miles_exact": miles_exact(m),
            }))
        })?;
        Ok(answer(boundary, data, None))
    }

    async fn vehicle_miles(&self, vin: &Vin, year: Option<i32>) -> Outcome {
        let rs = self.run(&sql::vehicle_miles(vin, year)).await?;
        let boundary = boundary(&rs)?;
        let data = data_rows(&rs, "year", |r| {
            let m = NanoMiles(i128::from(r.get_scaled_i64("miles", MILES_SCALE)?));
            Ok(json!({
                "vin": vin.as_str(),
                "year": r.get_i64("year")?,
                "miles": miles_number(m),
                "miles_exact": miles_exact(m),
            }))
        })?;
        Ok(answer(boundary, data, None))
    }

    async fn rapid_accelerations(
        &self,
        vin: Option<&Vin>,
        year: Option<i32>,
        after: Option<&Cursor>,
        limit: u32,
        filters: &TokenFilters,
    ) -> Outcome {
        let rs = self
            .run(&sql::rapid_accelerations(vin, year, after, limit))
            .await?;
        let boundary = boundary(&rs)?;
        let mut rows: Vec<(String, i32, i64)> = Vec::new();
        for r in rs.iter() {
            if r.get("vin")?.is_null() {
                continue;
            }
            let year = i32::try_from(r.get_i64("year")?)
                .map_err(|_| Failure::Internal("year out of range".into()))?;
            rows.push((
                r.get_str("vin")?.trim_end().to_owned(),
                year,
                r.get_i64("rapid_accelerations")?,
            ));
        }
        let limit = limit as usize;
        let next_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(vin, year, _)| {
                Value::String(token::encode(
                    &Cursor {
                        vin: vin.clone(),
                        year: *year,
                    },
                    filters,
                ))
            })
        } else {
            None
        };
        let data = rows
            .into_iter()
            .map(|(vin, year, n)| json!({"vin": vin, "year": year, "rapid_accelerations": n}))
            .collect();
        Ok(answer(
            boundary,
            data,
            Some(next_token.unwrap_or(Value::Null)),
        ))
    }

    async fn trips(&self, vin: &Vin, day: NaiveDate) -> Outcome {
        let rs = self.run(&sql::trips(vin, day)).await?;
        let boundary = boundary(&rs)?;
        let data = data_rows(&rs, "trip_id", |r| {
            let readings = r.get_i64("readings")?;
            let sum_speed = r.get_scaled_i64("sum_speed", MILLI_SCALE)?;
            let min = r.get_scaled_i64("min_odometer", MILLI_SCALE)?;
            let max = r.get_scaled_i64("max_odometer", MILLI_SCALE)?;
            let m = NanoMiles::from_metres(max - min);
            Ok(json!({
                "trip_id": r.get_str("trip_id")?,
                "date": r.get_date("event_day")?.format("%Y-%m-%d").to_string(),
                "readings": readings,
                "avg_speed_kmh": avg_speed_kmh(sum_speed, readings),
                "miles": miles_number(m),
                "miles_exact": miles_exact(m),
                "rapid_accelerations": r.get_i64("rapid_accelerations")?,
            }))
        })?;
        Ok(answer(boundary, data, None))
    }

    async fn vehicle_days(&self, vin: &Vin, year: Option<i32>) -> Outcome {
        let rs = self.run(&sql::vehicle_days(vin, year)).await?;
        let boundary = boundary(&rs)?;
        let data = data_rows(&rs, "event_day", |r| day_totals(r, &["trips"]))?;
        Ok(answer(boundary, data, None))
    }

    async fn fleet_daily(&self, from: NaiveDate, to: NaiveDate) -> Outcome {
        let rs = self.run(&sql::fleet_daily(from, to)).await?;
        let boundary = boundary(&rs)?;
        let data = data_rows(&rs, "event_day", |r| day_totals(r, &["vehicles", "trips"]))?;
        let mut body = answer_json(boundary, data, None);
        body["from"] = json!(from.format("%Y-%m-%d").to_string());
        body["to"] = json!(to.format("%Y-%m-%d").to_string());
        Ok(ApiResponse::json(200, &body))
    }

    async fn status(&self, now: DateTime<Utc>) -> Outcome {
        let rs = self.run(&sql::status()).await?;
        let row = rs
            .iter()
            .next()
            .ok_or_else(|| Failure::Internal("status query returned no row".into()))?;
        let day = |c: &str| -> Result<Option<NaiveDate>, Failure> { Ok(row.get_opt_date(c)?) };
        let ts =
            |c: &str| -> Result<Option<NaiveDateTime>, Failure> { Ok(row.get_opt_timestamp(c)?) };
        let count = |c: &str| -> Result<i64, Failure> {
            Ok(row.get_opt_scaled_i64(c, 0)?.unwrap_or(0).max(0))
        };
        let boundary = day("boundary")?;
        let speed_newest_day = day("speed_newest_day")?;
        let batch_newest_day = day("batch_newest_day")?;
        let newest_event = ts("speed_newest_event_at")?;
        let newest_arrival = ts("speed_newest_arrival_at")?;
        let lag = |t: Option<NaiveDateTime>| {
            t.map(|t| ((now - t.and_utc()).num_milliseconds() as f64 / 1000.0).max(0.0))
        };
        let summary = match row.get("last_batch_summary")? {
            SqlValue::Null => Value::Null,
            SqlValue::String(s) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
            SqlValue::Long(v) => json!(v),
            SqlValue::Double(v) => json!(v),
            SqlValue::Bool(v) => json!(v),
        };
        let body = json!({
            "boundary": boundary.map(fmt_day),
            "last_batch_run_at": ts("last_batch_run_at")?.map(fmt_ts),
            "last_batch_summary": summary,
            "last_view_refresh_at": ts("last_view_refresh_at")?.map(fmt_ts),
            "speed_layer": {
                "oldest_day": day("speed_oldest_day")?.map(fmt_day),
                "newest_day": speed_newest_day.map(fmt_day),
                "newest_event_at": newest_event.map(fmt_ts),
                "newest_arrival_at": newest_arrival.map(fmt_ts),
                "lag_seconds": lag(newest_arrival),
                "event_lag_seconds": lag(newest_event),
            },
            "batch_layer": {
                "oldest_day": day("batch_oldest_day")?.map(fmt_day),
                "newest_day": batch_newest_day.map(fmt_day),
                "waiting_readings": count("waiting_readings")?,
                "pending_days": count("pending_days")?,
                "oldest_waiting_day": day("waiting_oldest_day")?
                    .into_iter()
                    .chain(day("pending_oldest_day")?)
                    .min()
                    .map(fmt_day),
            },
            "newest_day": speed_newest_day.max(batch_newest_day).map(fmt_day),
            "now": now.to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        Ok(ApiResponse::json(200, &body))
    }
}

fn fmt_day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn fmt_ts(t: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(t, Utc).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The boundary column of the first row (every merged statement returns at least one row).
fn boundary(rs: &ResultSet) -> Result<Option<NaiveDate>, Failure> {
    match rs.iter().next() {
        Some(r) => Ok(r.get_opt_date("boundary")?),
        None => Err(Failure::Internal("merged query returned no row".into())),
    }
}

/// Rows whose `key` column is NULL are the LEFT JOIN's "no data" row and are skipped.
/// One day's totals (`/v1/vehicles/{vin}/days`, `/v1/fleet/daily`): the date, the given
/// count columns in order, then readings, average speed, miles and rapid accelerations.
fn day_totals(r: &Row<'_>, counts: &[&str]) -> Result<Value, DecodeError> {
    let readings = r.get_i64("readings")?;
    let m = NanoMiles(i128::from(r.get_scaled_i64("miles", MILES_SCALE)?));
    let mut day = serde_json::Map::new();
    day.insert(
        "date".into(),
        json!(r.get_date("event_day")?.format("%Y-%m-%d").to_string()),
    );
    for &c in counts {
        day.insert(c.into(), json!(r.get_i64(c)?));
    }
    day.insert("readings".into(), json!(readings));
    day.insert(
        "avg_speed_kmh".into(),
        json!(avg_speed_kmh(
            r.get_scaled_i64("sum_speed", MILLI_SCALE)?,
            readings
        )),
    );
    day.insert("miles".into(), json!(miles_number(m)));
    day.insert("miles_exact".into(), json!(miles_exact(m)));
    day.insert(
        "rapid_accelerations".into(),
        json!(r.get_i64("rapid_accelerations")?),
    );
    Ok(Value::Object(day))
}

fn data_rows(
    rs: &ResultSet,
    key: &str,
    f: impl Fn(&Row<'_>) -> Result<Value, DecodeError>,
) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    for r in rs.iter() {
        if r.get(key)?.is_null() {
            continue;
        }
        out.push(f(&r)?);
    }
    Ok(out)
}

fn answer_json(boundary: Option<NaiveDate>, data: Vec<Value>, next: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("boundary".into(), json!(boundary.map(fmt_day)));
    m.insert("data".into(), Value::Array(data));
    if let Some(next) = next {
        m.insert("next_token".into(), next);
    }
    Value::Object(m)
}

fn answer(boundary: Option<NaiveDate>, data: Vec<Value>, next: Option<Value>) -> ApiResponse {
    ApiResponse::json(200, &answer_json(boundary, data, next))
}
