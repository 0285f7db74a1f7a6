//! The Redshift adapter of [`ServingQueries`]: one merged statement per question
//! ([`sql`]), run through the [`Warehouse`] executor, its rows decoded into the port's
//! types. Column names and SQL types live only here.
//!
//! Every merged statement LEFT JOINs its rows onto the boundary, so it returns at least one
//! row; a row whose key column is NULL is that "no data" row and carries only the boundary.

pub mod sql;

use chrono::NaiveDate;
use fleetline_aws::warehouse::{DecodeError, ResultSet, Row, Value, Warehouse};
use fleetline_core::ports::serving::{
    DayTotals, Extent, FleetDay, Page, RapidAccelerationsQuery, Served, ServingError,
    ServingQueries, ServingResult, ServingStatus, TripDay, VehicleYear, VehicleYearCount,
    YearMiles,
};
use fleetline_core::{NanoMiles, Vin};

use sql::Statement;

/// SQL scale of a miles sum: DECIMAL(12,3) km × 0.621371.
const MILES_SCALE: u32 = 9;
/// SQL scale of speeds and odometers.
const MILLI_SCALE: u32 = 3;

/// [`ServingQueries`] over a warehouse (the Data API in production).
pub struct RedshiftServing<W> {
    warehouse: W,
}

impl<W: Warehouse> RedshiftServing<W> {
    pub fn new(warehouse: W) -> Self {
        Self { warehouse }
    }

    async fn run(&self, s: &Statement) -> ServingResult<ResultSet> {
        self.warehouse
            .query(&s.sql, &s.params)
            .await
            .map_err(|e| ServingError::Unavailable(e.to_string()))
    }

    /// Runs a merged statement and decodes its data rows (those whose `key` is not NULL).
    async fn merged<T>(
        &self,
        s: &Statement,
        key: &str,
        decode: impl Fn(&Row<'_>) -> Result<T, DecodeError>,
    ) -> ServingResult<Served<T>> {
        let rs = self.run(s).await?;
        let first = rs
            .iter()
            .next()
            .ok_or_else(|| unreadable("merged query returned no row"))?;
        let boundary = first.get_opt_date("boundary").map_err(decode_error)?;
        let mut rows = Vec::new();
        for r in rs.iter() {
            if !r.get(key).map_err(decode_error)?.is_null() {
                rows.push(decode(&r).map_err(decode_error)?);
            }
        }
        Ok(Served { boundary, rows })
    }
}

fn unreadable(why: &str) -> ServingError {
    ServingError::Unreadable(why.to_owned())
}

fn decode_error(e: DecodeError) -> ServingError {
    ServingError::Unreadable(e.to_string())
}

impl<W: Warehouse> ServingQueries for RedshiftServing<W> {
    async fn fleet_miles(&self, year: Option<i32>) -> ServingResult<Served<YearMiles>> {
        self.merged(&sql::miles_by_year(None, year), "year", year_miles)
            .await
    }

    async fn vehicle_miles(&self, vin: Vin, year: Option<i32>) -> ServingResult<Served<YearMiles>> {
        self.merged(&sql::miles_by_year(Some(vin), year), "year", year_miles)
            .await
    }

    async fn rapid_accelerations(
        &self,
        query: RapidAccelerationsQuery,
    ) -> ServingResult<Page<VehicleYearCount>> {
        let s = sql::rapid_accelerations(&query);
        let mut served = self.merged(&s, "vin", vehicle_year_count).await?;
        // The statement fetches one row more than the page: its presence says "more".
        let limit = query.limit as usize;
        let more = served.rows.len() > limit;
        served.rows.truncate(limit);
        Ok(Page { served, more })
    }

    async fn trips(&self, vin: Vin, day: NaiveDate) -> ServingResult<Served<TripDay>> {
        self.merged(&sql::trips(vin, day), "trip_id", trip_day)
            .await
    }

    async fn vehicle_days(&self, vin: Vin, year: Option<i32>) -> ServingResult<Served<DayTotals>> {
        let s = sql::day_totals(Some(vin), sql::Filters::year(year));
        self.merged(&s, "event_day", day_totals).await
    }

    async fn fleet_daily(&self, from: NaiveDate, to: NaiveDate) -> ServingResult<Served<FleetDay>> {
        let s = sql::day_totals(None, Some((from, to)));
        self.merged(&s, "event_day", |r| {
            Ok(FleetDay {
                vehicles: r.get_i64("vehicles")?,
                totals: day_totals(r)?,
            })
        })
        .await
    }

    async fn status(&self) -> ServingResult<ServingStatus> {
        let rs = self.run(&sql::status()).await?;
        let row = rs
            .iter()
            .next()
            .ok_or_else(|| unreadable("status query returned no row"))?;
        status(&row).map_err(decode_error)
    }
}

fn miles(r: &Row<'_>, column: &str) -> Result<NanoMiles, DecodeError> {
    Ok(NanoMiles(i128::from(
        r.get_scaled_i64(column, MILES_SCALE)?,
    )))
}

fn year(r: &Row<'_>) -> Result<i32, DecodeError> {
    let year = r.get_i64("year")?;
    i32::try_from(year).map_err(|_| type_error("year", "a year", year))
}

fn type_error(column: &str, expected: &'static str, found: impl std::fmt::Display) -> DecodeError {
    DecodeError::Type {
        column: column.to_owned(),
        expected,
        found: found.to_string(),
    }
}

fn year_miles(r: &Row<'_>) -> Result<YearMiles, DecodeError> {
    Ok(YearMiles {
        year: year(r)?,
        miles: miles(r, "miles")?,
    })
}

fn vehicle_year_count(r: &Row<'_>) -> Result<VehicleYearCount, DecodeError> {
    // CHAR(17) in the batch table: trailing blanks are padding.
    let text = r.get_str("vin")?.trim_end();
    let vin = Vin::parse(text).map_err(|e| type_error("vin", "a VIN", e))?;
    Ok(VehicleYearCount {
        at: VehicleYear {
            vin,
            year: year(r)?,
        },
        rapid_accelerations: r.get_i64("rapid_accelerations")?,
    })
}

fn trip_day(r: &Row<'_>) -> Result<TripDay, DecodeError> {
    let min = r.get_scaled_i64("min_odometer", MILLI_SCALE)?;
    let max = r.get_scaled_i64("max_odometer", MILLI_SCALE)?;
    Ok(TripDay {
        trip_id: r.get_str("trip_id")?.to_owned(),
        day: r.get_date("event_day")?,
        readings: r.get_i64("readings")?,
        sum_speed_milli: r.get_scaled_i64("sum_speed", MILLI_SCALE)?,
        miles: NanoMiles::from_metres(max - min),
        rapid_accelerations: r.get_i64("rapid_accelerations")?,
    })
}

fn day_totals(r: &Row<'_>) -> Result<DayTotals, DecodeError> {
    Ok(DayTotals {
        day: r.get_date("event_day")?,
        trips: r.get_i64("trips")?,
        readings: r.get_i64("readings")?,
        sum_speed_milli: r.get_scaled_i64("sum_speed", MILLI_SCALE)?,
        miles: miles(r, "miles")?,
        rapid_accelerations: r.get_i64("rapid_accelerations")?,
    })
}

fn status(row: &Row<'_>) -> Result<ServingStatus, DecodeError> {
    let day = |c: &str| row.get_opt_date(c);
    let ts = |c: &str| row.get_opt_timestamp(c);
    // COUNT(*) arrives as a long or as a numeric string; never below zero.
    let count = |c: &str| Ok::<_, DecodeError>(row.get_opt_scaled_i64(c, 0)?.unwrap_or(0).max(0));
    Ok(ServingStatus {
        boundary: day("boundary")?,
        last_batch_run_at: ts("last_batch_run_at")?,
        last_batch_summary: summary_text(row.get("last_batch_summary")?),
        last_view_refresh_at: ts("last_view_refresh_at")?,
        speed_days: Extent {
            oldest: day("speed_oldest_day")?,
            newest: day("speed_newest_day")?,
        },
        speed_newest_event_at: ts("speed_newest_event_at")?,
        speed_newest_arrival_at: ts("speed_newest_arrival_at")?,
        batch_days: Extent {
            oldest: day("batch_oldest_day")?,
            newest: day("batch_newest_day")?,
        },
        waiting_readings: count("waiting_readings")?,
        waiting_oldest_day: day("waiting_oldest_day")?,
        pending_days: count("pending_days")?,
        pending_oldest_day: day("pending_oldest_day")?,
    })
}

/// The stored summary as text; a non-text value (the column is VARCHAR, so only if the
/// schema changes) becomes its JSON text, so it reads back as the same JSON value.
fn summary_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Long(n) => Some(n.to_string()),
        Value::Double(x) => serde_json::to_string(x).ok(),
        Value::Bool(b) => Some(b.to_string()),
    }
}

#[cfg(test)]
mod tests;
