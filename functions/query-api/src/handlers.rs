//! Request handling: route, validate, ask the [`ServingQueries`] port one question, shape
//! the JSON ([`crate::responses`]). Generic over the port, so unit tests use a fake.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_aws::metrics::Emf;
use fleetline_core::Vin;
use fleetline_core::ports::serving::{RapidAccelerationsQuery, ServingError, ServingQueries};

use crate::api::{ApiError, ApiRequest, ApiResponse, HTML, YAML};
use crate::params::{Query, parse_date, parse_range, parse_vin};
use crate::responses::{
    Answer, Day, FleetYear, RapidAccelerations, Status, Trip, VehicleYearMiles,
};
use crate::routes::{Route, route};
use crate::token::{self, TokenFilters};

/// The dashboard page (self-contained HTML, inline JS and hand-drawn SVG).
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// The OpenAPI 3 description of this API.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The API over one serving port.
pub struct App<Q> {
    queries: Q,
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

impl From<ServingError> for Failure {
    fn from(e: ServingError) -> Self {
        Failure::Internal(e.to_string())
    }
}

type Outcome = Result<ApiResponse, Failure>;

impl<Q: ServingQueries> App<Q> {
    pub fn new(queries: Q) -> Self {
        Self {
            queries,
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
                self.vehicle_miles(vin, q.year()?).await
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
                let query = RapidAccelerationsQuery {
                    vin,
                    year,
                    after,
                    limit,
                };
                self.rapid_accelerations(query, &filters).await
            }
            Route::VehicleTrips(raw) => {
                let vin = parse_vin("path parameter 'vin'", &raw)?;
                let q = Query::new(&req.query, &["date"])?;
                let day = parse_date("date", q.required("date")?)?;
                self.trips(vin, day).await
            }
            Route::VehicleDays(raw) => {
                let vin = parse_vin("path parameter 'vin'", &raw)?;
                let q = Query::new(&req.query, &["year"])?;
                self.vehicle_days(vin, q.year()?).await
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

    async fn fleet_miles(&self, year: Option<i32>) -> Outcome {
        let served = self.queries.fleet_miles(year).await?;
        Ok(ApiResponse::json(200, &Answer::of(&served, FleetYear::new)))
    }

    async fn vehicle_miles(&self, vin: Vin, year: Option<i32>) -> Outcome {
        let served = self.queries.vehicle_miles(vin, year).await?;
        let body = Answer::of(&served, |r| VehicleYearMiles::new(&vin, r));
        Ok(ApiResponse::json(200, &body))
    }

    async fn rapid_accelerations(
        &self,
        query: RapidAccelerationsQuery,
        filters: &TokenFilters,
    ) -> Outcome {
        let page = self.queries.rapid_accelerations(query).await?;
        let next_token = (page.served.rows.last())
            .filter(|_| page.more)
            .map(|last| token::encode(&last.at, filters));
        let body = Answer::of(&page.served, RapidAccelerations::new).paged(next_token);
        Ok(ApiResponse::json(200, &body))
    }

    async fn trips(&self, vin: Vin, day: NaiveDate) -> Outcome {
        let served = self.queries.trips(vin, day).await?;
        Ok(ApiResponse::json(200, &Answer::of(&served, Trip::new)))
    }

    async fn vehicle_days(&self, vin: Vin, year: Option<i32>) -> Outcome {
        let served = self.queries.vehicle_days(vin, year).await?;
        Ok(ApiResponse::json(
            200,
            &Answer::of(&served, Day::of_vehicle),
        ))
    }

    async fn fleet_daily(&self, from: NaiveDate, to: NaiveDate) -> Outcome {
        let served = self.queries.fleet_daily(from, to).await?;
        let body = Answer::of(&served, Day::of_fleet).ranged(from, to);
        Ok(ApiResponse::json(200, &body))
    }

    async fn status(&self, now: DateTime<Utc>) -> Outcome {
        let status = self.queries.status().await?;
        Ok(ApiResponse::json(200, &Status::new(&status, now)))
    }
}
