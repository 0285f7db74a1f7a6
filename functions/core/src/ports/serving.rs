//! The serving port: the merged answers the API serves (docs/design.md §7), one method per
//! question, in domain types. Every answer carries the boundary it was read at, taken in
//! the same snapshot as its rows (§3), so the API can say which layer answered which day.

use std::future::Future;

use chrono::{NaiveDate, NaiveDateTime};

use crate::{NanoMiles, Vin};

/// The rows of one merged answer and the boundary they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served<T> {
    /// The boundary; `None` before the first batch run (every day from the speed layer).
    pub boundary: Option<NaiveDate>,
    /// The rows, in the order the answer defines (empty when there is no data).
    pub rows: Vec<T>,
}

/// Miles driven in one calendar year (the fleet's, or one vehicle's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearMiles {
    /// The year.
    pub year: i32,
    /// Exact miles.
    pub miles: NanoMiles,
}

/// A (vehicle, year) position: the order of the rapid-acceleration list and its keyset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleYear {
    /// The vehicle.
    pub vin: Vin,
    /// The year.
    pub year: i32,
}

/// Rapid accelerations of one vehicle in one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleYearCount {
    /// The vehicle and year.
    pub at: VehicleYear,
    /// How many rapid accelerations.
    pub rapid_accelerations: i64,
}

/// One page of the rapid-acceleration list, ordered by (VIN, year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RapidAccelerationsQuery {
    /// Only this vehicle.
    pub vin: Option<Vin>,
    /// Only this year.
    pub year: Option<i32>,
    /// Start after this position (the last one of the previous page).
    pub after: Option<VehicleYear>,
    /// At most this many rows (at least 1).
    pub limit: u32,
}

/// A page of rows and whether more rows follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// At most the requested number of rows.
    pub served: Served<T>,
    /// More rows follow the last one.
    pub more: bool,
}

/// One trip's readings on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripDay {
    /// The trip.
    pub trip_id: String,
    /// The day.
    pub day: NaiveDate,
    /// Readings that day.
    pub readings: i64,
    /// Sum of the readings' speeds, in milli-km/h.
    pub sum_speed_milli: i64,
    /// Exact miles (odometer range of the day).
    pub miles: NanoMiles,
    /// Rapid accelerations that day.
    pub rapid_accelerations: i64,
}

/// Totals of one day, its trips summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTotals {
    /// The day.
    pub day: NaiveDate,
    /// Trips with readings that day.
    pub trips: i64,
    /// Readings that day.
    pub readings: i64,
    /// Sum of the readings' speeds, in milli-km/h.
    pub sum_speed_milli: i64,
    /// Exact miles.
    pub miles: NanoMiles,
    /// Rapid accelerations.
    pub rapid_accelerations: i64,
}

/// The fleet's totals of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetDay {
    /// Vehicles with readings that day.
    pub vehicles: i64,
    /// The day's totals.
    pub totals: DayTotals,
}

/// Freshness of both layers and what waits for the batch layer (docs/design.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServingStatus {
    /// The committed boundary.
    pub boundary: Option<NaiveDate>,
    /// When the last batch run committed.
    pub last_batch_run_at: Option<NaiveDateTime>,
    /// The last batch run's summary, as stored (JSON text, normally).
    pub last_batch_summary: Option<String>,
    /// When the speed layer's views were last refreshed.
    pub last_view_refresh_at: Option<NaiveDateTime>,
    /// Oldest and newest day of the speed layer.
    pub speed_days: Extent,
    /// Newest event timestamp in the speed layer (UTC).
    pub speed_newest_event_at: Option<NaiveDateTime>,
    /// Newest arrival in the speed layer (UTC).
    pub speed_newest_arrival_at: Option<NaiveDateTime>,
    /// Oldest and newest day of the batch layer.
    pub batch_days: Extent,
    /// Speed readings before the boundary that no committed recompute of their day
    /// included (late readings).
    pub waiting_readings: i64,
    /// The oldest day of those readings.
    pub waiting_oldest_day: Option<NaiveDate>,
    /// Days before the boundary whose lake content changed since their last recompute.
    pub pending_days: i64,
    /// The oldest of those days.
    pub pending_oldest_day: Option<NaiveDate>,
}

/// The oldest and newest day with data (both `None` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extent {
    /// Oldest day.
    pub oldest: Option<NaiveDate>,
    /// Newest day.
    pub newest: Option<NaiveDate>,
}

/// A question could not be answered. The text is for logs, never for API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServingError {
    /// The store did not answer (unreachable, timed out, the statement failed).
    #[error("warehouse: {0}")]
    Unavailable(String),
    /// The store answered something this port cannot read (a missing column, a wrong type,
    /// no row where one is always returned).
    #[error("decoding the result: {0}")]
    Unreadable(String),
}

/// The result of one serving question.
pub type ServingResult<T> = Result<T, ServingError>;

/// The questions the API asks, each answered from both layers in one snapshot.
pub trait ServingQueries: Send + Sync {
    /// The fleet's miles per year, ascending (one year with `year`).
    fn fleet_miles(
        &self,
        year: Option<i32>,
    ) -> impl Future<Output = ServingResult<Served<YearMiles>>> + Send;

    /// One vehicle's miles per year, ascending (one year with `year`).
    fn vehicle_miles(
        &self,
        vin: Vin,
        year: Option<i32>,
    ) -> impl Future<Output = ServingResult<Served<YearMiles>>> + Send;

    /// Rapid accelerations per (VIN, year), one page in (VIN, year) order.
    fn rapid_accelerations(
        &self,
        query: RapidAccelerationsQuery,
    ) -> impl Future<Output = ServingResult<Page<VehicleYearCount>>> + Send;

    /// One vehicle's trips on one day, in driving order.
    fn trips(
        &self,
        vin: Vin,
        day: NaiveDate,
    ) -> impl Future<Output = ServingResult<Served<TripDay>>> + Send;

    /// One vehicle's totals per day with data, ascending (one year with `year`).
    fn vehicle_days(
        &self,
        vin: Vin,
        year: Option<i32>,
    ) -> impl Future<Output = ServingResult<Served<DayTotals>>> + Send;

    /// The fleet's totals per day with data from `from` to `to` (inclusive), ascending.
    fn fleet_daily(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = ServingResult<Served<FleetDay>>> + Send;

    /// Freshness of both layers.
    fn status(&self) -> impl Future<Output = ServingResult<ServingStatus>> + Send;
}
