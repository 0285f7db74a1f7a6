//! The JSON bodies of the API (openapi.yaml's schemas), built from the serving port's rows.
//!
//! Field order is the declaration order, as the spec and the examples show it. Numbers:
//! miles as a number rounded to 6 decimals plus the exact 9-decimal string, average speeds
//! rounded to 3 decimals ([`crate::numbers`]).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use fleetline_core::ports::serving::{
    DayTotals, Extent, FleetDay, Served, ServingStatus, TripDay, VehicleYearCount, YearMiles,
};
use fleetline_core::{NanoMiles, Vin};
use serde::Serialize;
use serde_json::Value;

use crate::numbers::{avg_speed_kmh, miles_exact, miles_number};

/// `YYYY-MM-DD`.
pub fn fmt_day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-01-02T03:00:00.000000Z`.
pub fn fmt_ts(t: NaiveDateTime) -> String {
    fmt_instant(t.and_utc())
}

fn fmt_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `{"boundary": …, "data": […]}`.
#[derive(Debug, Serialize)]
pub struct Answer<T> {
    pub boundary: Option<String>,
    pub data: Vec<T>,
}

impl<T> Answer<T> {
    /// The answer to a served question, each row shaped by `row`.
    pub fn of<R>(served: &Served<R>, row: impl FnMut(&R) -> T) -> Self {
        Self {
            boundary: served.boundary.map(fmt_day),
            data: served.rows.iter().map(row).collect(),
        }
    }

    /// A page of the answer (`next_token` `None` on the last page).
    pub fn paged(self, next_token: Option<String>) -> PagedAnswer<T> {
        PagedAnswer {
            answer: self,
            next_token,
        }
    }

    /// The answer for the days from `from` to `to`.
    pub fn ranged(self, from: NaiveDate, to: NaiveDate) -> RangeAnswer<T> {
        RangeAnswer {
            answer: self,
            from: fmt_day(from),
            to: fmt_day(to),
        }
    }
}

/// A page: `{"boundary", "data", "next_token"}` (`null` on the last page).
#[derive(Debug, Serialize)]
pub struct PagedAnswer<T> {
    #[serde(flatten)]
    pub answer: Answer<T>,
    pub next_token: Option<String>,
}

/// A day range: `{"boundary", "data", "from", "to"}`.
#[derive(Debug, Serialize)]
pub struct RangeAnswer<T> {
    #[serde(flatten)]
    pub answer: Answer<T>,
    pub from: String,
    pub to: String,
}

/// A row of `/v1/fleet/miles`.
#[derive(Debug, Serialize)]
pub struct FleetYear {
    pub year: i32,
    pub total_miles: f64,
    pub total_miles_exact: String,
}

impl FleetYear {
    pub fn new(r: &YearMiles) -> Self {
        Self {
            year: r.year,
            total_miles: miles_number(r.miles),
            total_miles_exact: miles_exact(r.miles),
        }
    }
}

/// A row of `/v1/vehicles/{vin}/miles`.
#[derive(Debug, Serialize)]
pub struct VehicleYearMiles {
    pub vin: String,
    pub year: i32,
    pub miles: f64,
    pub miles_exact: String,
}

impl VehicleYearMiles {
    pub fn new(vin: &Vin, r: &YearMiles) -> Self {
        Self {
            vin: vin.as_str().to_owned(),
            year: r.year,
            miles: miles_number(r.miles),
            miles_exact: miles_exact(r.miles),
        }
    }
}

/// A row of `/v1/vehicles/rapid-accelerations`.
#[derive(Debug, Serialize)]
pub struct RapidAccelerations {
    pub vin: String,
    pub year: i32,
    pub rapid_accelerations: i64,
}

impl RapidAccelerations {
    pub fn new(r: &VehicleYearCount) -> Self {
        Self {
            vin: r.at.vin.as_str().to_owned(),
            year: r.at.year,
            rapid_accelerations: r.rapid_accelerations,
        }
    }
}

/// What a trip's or a day's row ends with.
#[derive(Debug, Serialize)]
pub struct Totals {
    pub readings: i64,
    pub avg_speed_kmh: Option<f64>,
    pub miles: f64,
    pub miles_exact: String,
    pub rapid_accelerations: i64,
}

impl Totals {
    fn new(readings: i64, sum_speed_milli: i64, miles: NanoMiles, rapid: i64) -> Self {
        Self {
            readings,
            avg_speed_kmh: avg_speed_kmh(sum_speed_milli, readings),
            miles: miles_number(miles),
            miles_exact: miles_exact(miles),
            rapid_accelerations: rapid,
        }
    }
}

/// A row of `/v1/vehicles/{vin}/trips`.
#[derive(Debug, Serialize)]
pub struct Trip {
    pub trip_id: String,
    pub date: String,
    #[serde(flatten)]
    pub totals: Totals,
}

impl Trip {
    pub fn new(r: &TripDay) -> Self {
        Self {
            trip_id: r.trip_id.clone(),
            date: fmt_day(r.day),
            totals: Totals::new(
                r.readings,
                r.sum_speed_milli,
                r.miles,
                r.rapid_accelerations,
            ),
        }
    }
}

/// A row of `/v1/vehicles/{vin}/days` and, with `vehicles`, of `/v1/fleet/daily`.
#[derive(Debug, Serialize)]
pub struct Day {
    pub date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vehicles: Option<i64>,
    pub trips: i64,
    #[serde(flatten)]
    pub totals: Totals,
}

impl Day {
    /// A vehicle's day.
    pub fn of_vehicle(r: &DayTotals) -> Self {
        Self {
            date: fmt_day(r.day),
            vehicles: None,
            trips: r.trips,
            totals: Totals::new(
                r.readings,
                r.sum_speed_milli,
                r.miles,
                r.rapid_accelerations,
            ),
        }
    }

    /// The fleet's day.
    pub fn of_fleet(r: &FleetDay) -> Self {
        Self {
            vehicles: Some(r.vehicles),
            ..Self::of_vehicle(&r.totals)
        }
    }
}

/// `/v1/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub boundary: Option<String>,
    pub last_batch_run_at: Option<String>,
    /// The stored JSON (parsed), or the string if it is not JSON.
    pub last_batch_summary: Value,
    pub last_view_refresh_at: Option<String>,
    pub speed_layer: SpeedLayer,
    pub batch_layer: BatchLayer,
    pub newest_day: Option<String>,
    pub now: String,
}

/// `/v1/status` → `speed_layer`.
#[derive(Debug, Serialize)]
pub struct SpeedLayer {
    #[serde(flatten)]
    pub days: Days,
    pub newest_event_at: Option<String>,
    pub newest_arrival_at: Option<String>,
    /// Seconds since the newest arrival (never negative).
    pub lag_seconds: Option<f64>,
    /// Seconds since the newest event timestamp (never negative).
    pub event_lag_seconds: Option<f64>,
}

/// `/v1/status` → `batch_layer`.
#[derive(Debug, Serialize)]
pub struct BatchLayer {
    #[serde(flatten)]
    pub days: Days,
    pub waiting_readings: i64,
    pub pending_days: i64,
    /// The older of the oldest waiting reading's day and the oldest pending day.
    pub oldest_waiting_day: Option<String>,
}

/// A layer's `oldest_day` and `newest_day`.
#[derive(Debug, Serialize)]
pub struct Days {
    pub oldest_day: Option<String>,
    pub newest_day: Option<String>,
}

impl Days {
    fn new(e: &Extent) -> Self {
        Self {
            oldest_day: e.oldest.map(fmt_day),
            newest_day: e.newest.map(fmt_day),
        }
    }
}

impl Status {
    /// The status at `now` (the caller's clock).
    pub fn new(s: &ServingStatus, now: DateTime<Utc>) -> Self {
        let lag = |t: Option<NaiveDateTime>| {
            t.map(|t| ((now - t.and_utc()).num_milliseconds() as f64 / 1000.0).max(0.0))
        };
        let oldest_waiting = s.waiting_oldest_day.into_iter().chain(s.pending_oldest_day);
        Self {
            boundary: s.boundary.map(fmt_day),
            last_batch_run_at: s.last_batch_run_at.map(fmt_ts),
            last_batch_summary: s.last_batch_summary.as_deref().map_or(Value::Null, |text| {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            }),
            last_view_refresh_at: s.last_view_refresh_at.map(fmt_ts),
            speed_layer: SpeedLayer {
                days: Days::new(&s.speed_days),
                newest_event_at: s.speed_newest_event_at.map(fmt_ts),
                newest_arrival_at: s.speed_newest_arrival_at.map(fmt_ts),
                lag_seconds: lag(s.speed_newest_arrival_at),
                event_lag_seconds: lag(s.speed_newest_event_at),
            },
            batch_layer: BatchLayer {
                days: Days::new(&s.batch_days),
                waiting_readings: s.waiting_readings,
                pending_days: s.pending_days,
                oldest_waiting_day: oldest_waiting.min().map(fmt_day),
            },
            newest_day: s.speed_days.newest.max(s.batch_days.newest).map(fmt_day),
            now: fmt_instant(now),
        }
    }
}
