//! The merged SQL, one statement per request.
//!
//! Every statement starts with the same two CTEs:
//! - `b`: the boundary, read from `serving.control` *in the same statement* (one snapshot),
//!   so a batch run committing mid-request can neither double count nor drop a day.
//!   `MAX()` turns a missing control row into one row with NULL.
//! - `daily`: the (VIN, trip, day) aggregates — `batch.vehicle_daily` for days `< B`
//!   UNION ALL `speed.telemetry` aggregated on the fly for days `>= B` (all speed rows and no
//!   batch rows while B is NULL). The raw table rather than the materialized view, so a
//!   reading is visible as soon as stream-processor commits it.
//!
//! Filters (VIN, day range) are pushed into both branches before aggregation so the speed
//! branch only groups what it needs. The final SELECT LEFT JOINs the answer onto `b`, so the
//! boundary comes back even when there are no rows (data columns are then NULL).
//!
//! User input only ever travels as Data API parameters (`:name`, passed as strings and
//! cast in SQL); the SQL text depends only on *which* filters are present.

use chrono::NaiveDate;
use fleetline_aws::warehouse::SqlParam;
use fleetline_core::Vin;

use crate::token::Cursor;

/// Miles per kilometre, as the exact DECIMAL literal both layers use.
pub const MILES_PER_KM: &str = "0.621371";

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlParam>,
}

/// Which daily aggregates take part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub vin: Option<Vin>,
    /// Inclusive day range.
    pub days: Option<(NaiveDate, NaiveDate)>,
}

impl Filters {
    /// All days of `year`.
    pub fn year(year: Option<i32>) -> Option<(NaiveDate, NaiveDate)> {
        let year = year?;
        Some((
            NaiveDate::from_ymd_opt(year, 1, 1)?,
            NaiveDate::from_ymd_opt(year, 12, 31)?,
        ))
    }

    fn predicates(&self, alias: &str) -> String {
        let mut s = String::new();
        if self.vin.is_some() {
            s.push_str(&format!(" AND {alias}.vin = :vin"));
        }
        if self.days.is_some() {
            s.push_str(&format!(
                " AND {alias}.event_day BETWEEN CAST(:day_from AS DATE) AND CAST(:day_to AS DATE)"
            ));
        }
        s
    }

    fn params(&self) -> Vec<SqlParam> {
        let mut p = Vec::new();
        if let Some(vin) = &self.vin {
            p.push(SqlParam::new("vin", vin.as_str()));
        }
        if let Some((from, to)) = self.days {
            p.push(SqlParam::new("day_from", from.format("%Y-%m-%d")));
            p.push(SqlParam::new("day_to", to.format("%Y-%m-%d")));
        }
        p
    }
}

/// `WITH b AS (…), daily AS (…)` — see the module docs.
pub fn merged_daily(filters: &Filters) -> String {
    let batch = filters.predicates("v");
    let speed = filters.predicates("t");
    format!(
        "WITH b AS (SELECT MAX(boundary) AS boundary FROM serving.control), \
daily AS (\
SELECT v.vin, v.trip_id, v.event_day, v.readings, v.sum_speed, v.min_odometer, v.max_odometer, v.rapid_accelerations \
FROM batch.vehicle_daily v, b \
WHERE b.boundary IS NOT NULL AND v.event_day < b.boundary{batch} \
UNION ALL \
SELECT t.vin, t.trip_id, t.event_day, COUNT(*) AS readings, SUM(t.vehicle_speed) AS sum_speed, \
MIN(t.odometer) AS min_odometer, MAX(t.odometer) AS max_odometer, \
SUM(t.rapid_acceleration) AS rapid_accelerations \
FROM speed.telemetry t, b \
WHERE (b.boundary IS NULL OR t.event_day >= b.boundary){speed} \
GROUP BY t.vin, t.trip_id, t.event_day)"
    )
}

const YEAR: &str = "CAST(EXTRACT(YEAR FROM event_day) AS INTEGER)";

fn miles_sum() -> String {
    format!("SUM((max_odometer - min_odometer) * {MILES_PER_KM})")
}

/// `GET /v1/fleet/miles`: total miles per year.
pub fn fleet_miles(year: Option<i32>) -> Statement {
    let f = Filters {
        vin: None,
        days: Filters::year(year),
    };
    let sql = format!(
        "{}, r AS (SELECT {YEAR} AS year, {} AS total_miles FROM daily GROUP BY {YEAR}) \
SELECT b.boundary, r.year, r.total_miles FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.year",
        merged_daily(&f),
        miles_sum()
    );
    Statement {
        sql,
        params: f.params(),
    }
}

/// `GET /v1/vehicles/{vin}/miles`: miles per year of one vehicle.
pub fn vehicle_miles(vin: &Vin, year: Option<i32>) -> Statement {
    let f = Filters {
        vin: Some(*vin),
        days: Filters::year(year),
    };
    let sql = format!(
        "{}, r AS (SELECT {YEAR} AS year, {} AS miles FROM daily GROUP BY {YEAR}) \
SELECT b.boundary, r.year, r.miles FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.year",
        merged_daily(&f),
        miles_sum()
    );
    Statement {
        sql,
        params: f.params(),
    }
}

/// `GET /v1/vehicles/rapid-accelerations`: per (VIN, year), ordered by (vin, year), keyset
/// paginated. Returns up to `limit + 1` rows; the extra row only says "there is more".
pub fn rapid_accelerations(
    vin: Option<&Vin>,
    year: Option<i32>,
    after: Option<&Cursor>,
    limit: u32,
) -> Statement {
    let f = Filters {
        vin: vin.copied(),
        days: Filters::year(year),
    };
    let mut params = f.params();
    let keyset = match after {
        Some(c) => {
            params.push(SqlParam::new("after_vin", &c.vin));
            params.push(SqlParam::new("after_year", c.year));
            " WHERE r.vin > :after_vin OR (r.vin = :after_vin AND r.year > CAST(:after_year AS INTEGER))"
        }
        None => "",
    };
    // ROW_NUMBER instead of LIMIT: the page size stays a parameter, which LIMIT does not
    // accept on Redshift.
    params.push(SqlParam::new("fetch", u64::from(limit) + 1));
    let sql = format!(
        "{}, r AS (SELECT vin, {YEAR} AS year, SUM(rapid_accelerations) AS rapid_accelerations \
FROM daily GROUP BY vin, {YEAR}), \
p AS (SELECT r.vin, r.year, r.rapid_accelerations, ROW_NUMBER() OVER (ORDER BY r.vin, r.year) AS rn FROM r{keyset}) \
SELECT b.boundary, p.vin, p.year, p.rapid_accelerations FROM b LEFT JOIN p ON p.rn <= CAST(:fetch AS INTEGER) \
ORDER BY p.vin, p.year",
        merged_daily(&f)
    );
    Statement { sql, params }
}

/// `GET /v1/vehicles/{vin}/trips?date=`: the daily aggregates of one vehicle and day.
pub fn trips(vin: &Vin, day: NaiveDate) -> Statement {
    let f = Filters {
        vin: Some(*vin),
        days: Some((day, day)),
    };
    let sql = format!(
        "{} SELECT b.boundary, d.trip_id, d.event_day, d.readings, d.sum_speed, d.min_odometer, \
d.max_odometer, d.rapid_accelerations FROM b LEFT JOIN daily d ON 1 = 1 \
ORDER BY d.min_odometer, d.trip_id",
        merged_daily(&f)
    );
    Statement {
        sql,
        params: f.params(),
    }
}

/// `GET /v1/vehicles/{vin}/days`: one vehicle's totals per day with data (its trips summed),
/// ascending; the dashboard's day picker, whose newest row is the default day.
pub fn vehicle_days(vin: &Vin, year: Option<i32>) -> Statement {
    let f = Filters {
        vin: Some(*vin),
        days: Filters::year(year),
    };
    let sql = format!(
        "{}, r AS (SELECT event_day, COUNT(*) AS trips, SUM(readings) AS readings, \
SUM(sum_speed) AS sum_speed, {} AS miles, SUM(rapid_accelerations) AS rapid_accelerations \
FROM daily GROUP BY event_day) \
SELECT b.boundary, r.event_day, r.trips, r.readings, r.sum_speed, r.miles, r.rapid_accelerations \
FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.event_day",
        merged_daily(&f),
        miles_sum()
    );
    Statement {
        sql,
        params: f.params(),
    }
}

/// `GET /v1/fleet/daily?from=&to=`: fleet totals per day.
pub fn fleet_daily(from: NaiveDate, to: NaiveDate) -> Statement {
    let f = Filters {
        vin: None,
        days: Some((from, to)),
    };
    let sql = format!(
        "{}, r AS (SELECT event_day, COUNT(DISTINCT vin) AS vehicles, COUNT(*) AS trips, \
SUM(readings) AS readings, SUM(sum_speed) AS sum_speed, {} AS miles, \
SUM(rapid_accelerations) AS rapid_accelerations FROM daily GROUP BY event_day) \
SELECT b.boundary, r.event_day, r.vehicles, r.trips, r.readings, r.sum_speed, r.miles, \
r.rapid_accelerations FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.event_day",
        merged_daily(&f),
        miles_sum()
    );
    Statement {
        sql,
        params: f.params(),
    }
}

/// `GET /v1/status`: the control row, the extent of both layers, and what waits for the
/// batch layer: speed rows for days before the boundary that no committed batch recompute
/// of their day included after they arrived (the test batch-views prunes by, negated), and
/// days whose lake content changed since their last recompute (`batch.pending_days`).
pub fn status() -> Statement {
    let sql = "WITH s AS (SELECT MIN(event_day) AS speed_oldest_day, MAX(event_day) AS speed_newest_day, \
MAX(ts) AS speed_newest_event_at, MAX(arrived_at) AS speed_newest_arrival_at FROM speed.telemetry), \
v AS (SELECT MIN(event_day) AS batch_oldest_day, MAX(event_day) AS batch_newest_day FROM batch.vehicle_daily), \
w AS (SELECT COUNT(*) AS waiting_readings, MIN(t.event_day) AS waiting_oldest_day \
FROM speed.telemetry t JOIN serving.control wc ON t.event_day < wc.boundary \
LEFT JOIN batch.day_recomputes r ON r.event_day = t.event_day \
WHERE r.recomputed_at IS NULL OR t.arrived_at >= DATE_TRUNC('second', r.recomputed_at)), \
p AS (SELECT COUNT(DISTINCT pd.event_day) AS pending_days, MIN(pd.event_day) AS pending_oldest_day \
FROM batch.pending_days pd JOIN serving.control pc ON pd.event_day < pc.boundary) \
SELECT c.boundary, c.last_batch_run_at, c.last_batch_summary, c.last_view_refresh_at, s.*, v.*, w.*, p.* \
FROM s CROSS JOIN v CROSS JOIN w CROSS JOIN p LEFT JOIN serving.control c ON 1 = 1"
        .to_owned();
    Statement {
        sql,
        params: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vin() -> Vin {
        Vin::parse("1HGCM82633A004352").unwrap()
    }

    #[test]
    fn boundary_is_read_once_and_joined_into_both_branches() {
        let s = fleet_miles(None);
        assert_eq!(s.sql.matches("FROM serving.control").count(), 1);
        assert!(s.sql.contains("FROM batch.vehicle_daily v, b WHERE b.boundary IS NOT NULL AND v.event_day < b.boundary"));
        assert!(s.sql.contains(
            "FROM speed.telemetry t, b WHERE (b.boundary IS NULL OR t.event_day >= b.boundary)"
        ));
        assert!(s.sql.contains("UNION ALL"));
        assert!(s.params.is_empty());
    }

    #[test]
    fn filters_are_parameters_in_both_branches() {
        let s = vehicle_miles(&vin(), Some(2026));
        assert_eq!(s.sql.matches(":vin").count(), 2);
        assert_eq!(s.sql.matches("CAST(:day_from AS DATE)").count(), 2);
        assert!(!s.sql.contains("1HGCM82633A004352"));
        assert!(!s.sql.contains("2026"));
        assert_eq!(
            s.params,
            vec![
                SqlParam::new("vin", "1HGCM82633A004352"),
                SqlParam::new("day_from", "2026-01-01"),
                SqlParam::new("day_to", "2026-12-31"),
            ]
        );
    }

    #[test]
    fn keyset_and_page_size_are_parameters() {
        let c = Cursor {
            vin: "1HGCM82633A004352".into(),
            year: 2025,
        };
        let s = rapid_accelerations(None, None, Some(&c), 100);
        assert!(s.sql.contains("r.vin > :after_vin"));
        assert!(s.sql.contains("CAST(:fetch AS INTEGER)"));
        assert!(s.params.contains(&SqlParam::new("fetch", "101")));
        assert!(s.params.contains(&SqlParam::new("after_year", "2025")));
        let s = rapid_accelerations(None, None, None, 5);
        assert!(!s.sql.contains(":after_vin"));
        let t = trips(&vin(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        assert!(t.params.contains(&SqlParam::new("day_to", "2026-03-01")));
    }

    #[test]
    fn vehicle_days_filter_by_vin_and_optional_year() {
        let s = vehicle_days(&vin(), None);
        assert_eq!(s.sql.matches(":vin").count(), 2);
        assert!(!s.sql.contains(":day_from"));
        assert_eq!(s.params, vec![SqlParam::new("vin", "1HGCM82633A004352")]);
        assert!(s.sql.contains("GROUP BY event_day"));
        let s = vehicle_days(&vin(), Some(2025));
        assert_eq!(s.sql.matches("CAST(:day_from AS DATE)").count(), 2);
        assert!(s.params.contains(&SqlParam::new("day_to", "2025-12-31")));
    }
}
