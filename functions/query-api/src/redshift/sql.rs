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
//! Statements that need no single trip replace `daily`'s batch branch with a table holding
//! the same sums in fewer rows, kept in the batch layer's transaction: `fleet`
//! (`batch.fleet_daily`, one row per day) and `y` (`batch.batchlayer_rapid_acceleration_by_year`,
//! per VIN and year: rapid accelerations and miles), each UNION ALL the speed branch summed
//! to the same grain. On PostgreSQL that spares a scan of every trip; on Redshift a
//! vehicle's year is one row of a table sorted by (year, vin), where `batch.vehicle_daily`,
//! sorted by (event_day, vin), would read every vehicle's blocks of that year.
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
use fleetline_core::ports::serving::RapidAccelerationsQuery;

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

const BOUNDARY_CTE: &str = "WITH b AS (SELECT MAX(boundary) AS boundary FROM serving.control)";

/// The speed branch: `speed.telemetry` aggregated per (VIN, trip, day) for days `>= B`.
fn speed_trips(filters: &Filters) -> String {
    format!(
        "SELECT t.vin, t.trip_id, t.event_day, COUNT(*) AS readings, SUM(t.vehicle_speed) AS sum_speed, \
MIN(t.odometer) AS min_odometer, MAX(t.odometer) AS max_odometer, \
SUM(t.rapid_acceleration) AS rapid_accelerations \
FROM speed.telemetry t, b \
WHERE (b.boundary IS NULL OR t.event_day >= b.boundary){} \
GROUP BY t.vin, t.trip_id, t.event_day",
        filters.predicates("t")
    )
}

/// `WITH b AS (…), daily AS (…)` — see the module docs.
pub fn merged_daily(filters: &Filters) -> String {
    format!(
        "{BOUNDARY_CTE}, \
daily AS (\
SELECT v.vin, v.trip_id, v.event_day, v.readings, v.sum_speed, v.min_odometer, v.max_odometer, v.rapid_accelerations \
FROM batch.vehicle_daily v, b \
WHERE b.boundary IS NOT NULL AND v.event_day < b.boundary{} \
UNION ALL {})",
        filters.predicates("v"),
        speed_trips(filters)
    )
}

/// The fleet's totals per day: `WITH b AS (…), s AS (…), fleet AS (…)`. The same split as
/// `daily`, but the batch side is `batch.fleet_daily` (one row per day, kept with
/// batch.vehicle_daily in the batch layer's transaction) rather than every vehicle's trips;
/// the speed side sums its (VIN, trip, day) aggregates `s` per day. No VIN filter: only
/// fleet-wide answers read it.
fn merged_fleet(days: Option<(NaiveDate, NaiveDate)>) -> String {
    let f = Filters { vin: None, days };
    format!(
        "{BOUNDARY_CTE}, s AS ({}), \
fleet AS (\
SELECT f.event_day, f.vehicles, f.trips, f.readings, f.sum_speed, f.miles, f.rapid_accelerations \
FROM batch.fleet_daily f, b \
WHERE b.boundary IS NOT NULL AND f.event_day < b.boundary{} \
UNION ALL \
SELECT event_day, COUNT(DISTINCT vin) AS vehicles, COUNT(*) AS trips, SUM(readings) AS readings, \
SUM(sum_speed) AS sum_speed, {} AS miles, SUM(rapid_accelerations) AS rapid_accelerations \
FROM s GROUP BY event_day)",
        speed_trips(&f),
        f.predicates("f"),
        miles_sum()
    )
}

/// One sum per (VIN, year): `WITH b AS (…), s AS (…), y AS (vin, year, <column>)`. The
/// batch side is that column of `batch.batchlayer_rapid_acceleration_by_year`
/// (batch.vehicle_daily summed over the days before the boundary, rebuilt in the
/// transaction that moves it), the speed side `speed_sum` over `s` per (VIN, year); a year
/// on both sides of the boundary has a row in each. `filters.days` is always one calendar
/// year here (its first day picks the year).
fn merged_vehicle_years(filters: &Filters, column: &str, speed_sum: &str) -> String {
    let mut batch = String::new();
    if filters.vin.is_some() {
        batch.push_str(" AND y.vin = :vin");
    }
    if filters.days.is_some() {
        batch.push_str(" AND y.year = CAST(EXTRACT(YEAR FROM CAST(:day_from AS DATE)) AS INTEGER)");
    }
    format!(
        "{BOUNDARY_CTE}, s AS ({}), \
y AS (\
SELECT y.vin, y.year, y.{column} \
FROM batch.batchlayer_rapid_acceleration_by_year y, b \
WHERE b.boundary IS NOT NULL{batch} \
UNION ALL \
SELECT vin, {YEAR} AS year, {speed_sum} AS {column} \
FROM s GROUP BY vin, {YEAR})",
        speed_trips(filters)
    )
}

const YEAR: &str = "CAST(EXTRACT(YEAR FROM event_day) AS INTEGER)";

fn miles_sum() -> String {
    format!("SUM((max_odometer - min_odometer) * {MILES_PER_KM})")
}

/// The merged CTEs `ctes`, a roll-up `r` of them, and `b` LEFT JOINed to it so the boundary
/// comes back even without data: `SELECT b.boundary, r.<columns> … ORDER BY r.<order>`.
fn rolled_up(ctes: String, f: &Filters, rollup: &str, columns: &[&str], order: &str) -> Statement {
    let columns: String = columns.iter().map(|c| format!(", r.{c}")).collect();
    Statement {
        sql: format!(
            "{ctes}, r AS ({rollup}) SELECT b.boundary{columns} FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.{order}"
        ),
        params: f.params(),
    }
}

/// `GET /v1/fleet/miles` (no VIN: the per-day fleet rows summed per year) and
/// `GET /v1/vehicles/{vin}/miles` (the vehicle's per-year rows): miles per year.
pub fn miles_by_year(vin: Option<Vin>, year: Option<i32>) -> Statement {
    let f = Filters {
        vin,
        days: Filters::year(year),
    };
    let (ctes, rollup) = match vin {
        Some(_) => (
            merged_vehicle_years(&f, "miles", &miles_sum()),
            "SELECT year, SUM(miles) AS miles FROM y GROUP BY year".to_owned(),
        ),
        None => (
            merged_fleet(f.days),
            format!("SELECT {YEAR} AS year, SUM(miles) AS miles FROM fleet GROUP BY {YEAR}"),
        ),
    };
    rolled_up(ctes, &f, &rollup, &["year", "miles"], "year")
}

/// `GET /v1/vehicles/rapid-accelerations`: per (VIN, year), ordered by (vin, year), keyset
/// paginated. Returns up to `limit + 1` rows; the extra row only says "there is more".
pub fn rapid_accelerations(q: &RapidAccelerationsQuery) -> Statement {
    let f = Filters {
        vin: q.vin,
        days: Filters::year(q.year),
    };
    let mut params = f.params();
    let keyset = match &q.after {
        Some(c) => {
            params.push(SqlParam::new("after_vin", c.vin.as_str()));
            params.push(SqlParam::new("after_year", c.year));
            " WHERE r.vin > :after_vin OR (r.vin = :after_vin AND r.year > CAST(:after_year AS INTEGER))"
        }
        None => "",
    };
    // ROW_NUMBER instead of LIMIT: the page size stays a parameter, which LIMIT does not
    // accept on Redshift.
    params.push(SqlParam::new("fetch", u64::from(q.limit) + 1));
    let sql = format!(
        "{}, r AS (SELECT vin, year, SUM(rapid_accelerations) AS rapid_accelerations \
FROM y GROUP BY vin, year), \
p AS (SELECT r.vin, r.year, r.rapid_accelerations, ROW_NUMBER() OVER (ORDER BY r.vin, r.year) AS rn FROM r{keyset}) \
SELECT b.boundary, p.vin, p.year, p.rapid_accelerations FROM b LEFT JOIN p ON p.rn <= CAST(:fetch AS INTEGER) \
ORDER BY p.vin, p.year",
        merged_vehicle_years(&f, "rapid_accelerations", "SUM(rapid_accelerations)")
    );
    Statement { sql, params }
}

/// `GET /v1/vehicles/{vin}/trips?date=`: the daily aggregates of one vehicle and day.
pub fn trips(vin: Vin, day: NaiveDate) -> Statement {
    let f = Filters {
        vin: Some(vin),
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

/// `GET /v1/vehicles/{vin}/days` (a VIN: its trips summed per day; the dashboard's day
/// picker, whose newest row is the default day) and `GET /v1/fleet/daily` (no VIN: the
/// fleet's per-day rows, with the number of vehicles): totals per day with data, ascending.
pub fn day_totals(vin: Option<Vin>, days: Option<(NaiveDate, NaiveDate)>) -> Statement {
    const COLUMNS: [&str; 7] = [
        "event_day",
        "vehicles",
        "trips",
        "readings",
        "sum_speed",
        "miles",
        "rapid_accelerations",
    ];
    let f = Filters { vin, days };
    let Some(_) = vin else {
        let rollup = format!("SELECT {} FROM fleet", COLUMNS.join(", "));
        return rolled_up(merged_fleet(days), &f, &rollup, &COLUMNS, "event_day");
    };
    let rollup = format!(
        "SELECT event_day, COUNT(*) AS trips, SUM(readings) AS readings, \
SUM(sum_speed) AS sum_speed, {} AS miles, SUM(rapid_accelerations) AS rapid_accelerations \
FROM daily GROUP BY event_day",
        miles_sum()
    );
    let columns: Vec<&str> = COLUMNS.into_iter().filter(|c| *c != "vehicles").collect();
    rolled_up(merged_daily(&f), &f, &rollup, &columns, "event_day")
}

/// `GET /v1/status`: the control row, the extent of both layers (the batch layer's from
/// `batch.fleet_daily`, which has a row for exactly the days `batch.vehicle_daily` has
/// rows: both are written and deleted by whole days in the same transactions), and what
/// waits for the batch layer: speed rows for days before the boundary that no committed
/// batch recompute of their day included after they arrived (the test batch-views prunes
/// by, negated), and days whose lake content changed since their last recompute
/// (`batch.pending_days`).
pub fn status() -> Statement {
    let sql = "WITH s AS (SELECT MIN(event_day) AS speed_oldest_day, MAX(event_day) AS speed_newest_day, \
MAX(ts) AS speed_newest_event_at, MAX(arrived_at) AS speed_newest_arrival_at FROM speed.telemetry), \
v AS (SELECT MIN(event_day) AS batch_oldest_day, MAX(event_day) AS batch_newest_day FROM batch.fleet_daily), \
w AS (SELECT COUNT(*) AS waiting_readings, MIN(t.event_day) AS waiting_oldest_day \
FROM speed.telemetry t JOIN serving.control wc ON t.event_day < wc.boundary \
LEFT JOIN batch.day_recomputes r ON r.event_day = t.event_day \
WHERE r.recomputed_at IS NULL OR t.arrived_at >= DATE_TRUNC('second', r.recomputed_at)), \
p AS (SELECT COUNT(DISTINCT pd.event_day) AS pending_days, MIN(pd.event_day) AS pending_oldest_day \
FROM batch.pending_days pd JOIN serving.control pc ON pd.event_day < pc.boundary) \
SELECT c.boundary, c.last_batch_run_at, c.last_batch_summary, c.last_view_refresh_at, \
s.speed_oldest_day, s.speed_newest_day, s.speed_newest_event_at, s.speed_newest_arrival_at, \
v.batch_oldest_day, v.batch_newest_day, w.waiting_readings, w.waiting_oldest_day, \
p.pending_days, p.pending_oldest_day \
FROM s CROSS JOIN v CROSS JOIN w CROSS JOIN p LEFT JOIN serving.control c ON 1 = 1"
        .to_owned();
    Statement {
        sql,
        params: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use fleetline_core::ports::serving::VehicleYear;

    use super::*;

    fn vin() -> Vin {
        Vin::parse("1HGCM82633A004352").unwrap()
    }

    #[test]
    fn boundary_is_read_once_and_joined_into_both_branches() {
        let vehicle = miles_by_year(Some(vin()), None);
        let fleet = miles_by_year(None, None);
        let days = day_totals(Some(vin()), None);
        for (s, batch) in [
            (
                &vehicle,
                "FROM batch.batchlayer_rapid_acceleration_by_year y, b WHERE b.boundary IS NOT NULL AND y.vin = :vin UNION ALL",
            ),
            (
                &fleet,
                "FROM batch.fleet_daily f, b WHERE b.boundary IS NOT NULL AND f.event_day < b.boundary",
            ),
            (
                &days,
                "FROM batch.vehicle_daily v, b WHERE b.boundary IS NOT NULL AND v.event_day < b.boundary",
            ),
        ] {
            assert_eq!(s.sql.matches("FROM serving.control").count(), 1);
            assert!(s.sql.contains(batch), "{}", s.sql);
            assert!(s.sql.contains(
                "FROM speed.telemetry t, b WHERE (b.boundary IS NULL OR t.event_day >= b.boundary)"
            ));
            assert_eq!(s.sql.matches("UNION ALL").count(), 1);
        }
        for s in [&vehicle, &fleet] {
            assert!(
                s.sql
                    .ends_with("FROM b LEFT JOIN r ON 1 = 1 ORDER BY r.year")
            );
        }
        assert!(fleet.params.is_empty());
        // Fleet-wide answers never read every vehicle's trips from the batch layer.
        assert!(!fleet.sql.contains("batch.vehicle_daily"));
        assert!(fleet.sql.contains("SELECT CAST(EXTRACT(YEAR FROM event_day) AS INTEGER) AS year, SUM(miles) AS miles FROM fleet"));
        // A vehicle's miles are its per-year rows, not every trip of the year.
        assert!(!vehicle.sql.contains("batch.vehicle_daily"));
        assert!(vehicle.sql.contains("SELECT y.vin, y.year, y.miles FROM"));
        assert!(vehicle.sql.contains(
            "SUM((max_odometer - min_odometer) * 0.621371) AS miles FROM s GROUP BY vin, CAST(EXTRACT(YEAR FROM event_day) AS INTEGER)"
        ));
        assert!(
            vehicle
                .sql
                .contains("r AS (SELECT year, SUM(miles) AS miles FROM y GROUP BY year)")
        );
    }

    #[test]
    fn status_reads_the_batch_extent_from_one_row_per_day() {
        let s = status();
        assert!(s.sql.contains(
            "MIN(event_day) AS batch_oldest_day, MAX(event_day) AS batch_newest_day FROM batch.fleet_daily)"
        ));
        assert!(!s.sql.contains("batch.vehicle_daily"));
    }

    #[test]
    fn filters_are_parameters_in_both_branches() {
        let s = miles_by_year(Some(vin()), Some(2026));
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
        let after = VehicleYear {
            vin: vin(),
            year: 2025,
        };
        let page = |after, limit| RapidAccelerationsQuery {
            vin: None,
            year: None,
            after,
            limit,
        };
        let s = rapid_accelerations(&page(Some(after), 100));
        assert!(s.sql.contains("r.vin > :after_vin"));
        assert!(s.sql.contains("CAST(:fetch AS INTEGER)"));
        assert!(s.params.contains(&SqlParam::new("fetch", "101")));
        assert!(s.params.contains(&SqlParam::new("after_year", "2025")));
        let s = rapid_accelerations(&page(None, 5));
        assert!(!s.sql.contains(":after_vin"));
        assert!(s.sql.contains("FROM batch.batchlayer_rapid_acceleration_by_year y, b WHERE b.boundary IS NOT NULL UNION ALL"));
        assert!(!s.sql.contains("batch.vehicle_daily"));
        let one = RapidAccelerationsQuery {
            vin: Some(vin()),
            year: Some(2026),
            after: None,
            limit: 5,
        };
        let s = rapid_accelerations(&one);
        assert!(s.sql.contains(" AND y.vin = :vin AND y.year = CAST(EXTRACT(YEAR FROM CAST(:day_from AS DATE)) AS INTEGER)"));
        assert_eq!(s.sql.matches("CAST(:day_from AS DATE)").count(), 2);
        let t = trips(vin(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        assert!(t.params.contains(&SqlParam::new("day_to", "2026-03-01")));
    }

    #[test]
    fn day_totals_filter_by_vin_and_optional_range() {
        let s = day_totals(Some(vin()), None);
        assert_eq!(s.sql.matches(":vin").count(), 2);
        assert!(!s.sql.contains(":day_from"));
        assert!(!s.sql.contains("vehicles"));
        assert_eq!(s.params, vec![SqlParam::new("vin", "1HGCM82633A004352")]);
        assert!(s.sql.contains("GROUP BY event_day"));
        let year = Filters::year(Some(2025));
        let s = day_totals(Some(vin()), year);
        assert_eq!(s.sql.matches("CAST(:day_from AS DATE)").count(), 2);
        assert!(s.params.contains(&SqlParam::new("day_to", "2025-12-31")));
        let s = day_totals(None, year);
        assert!(!s.sql.contains(":vin"));
        assert!(!s.sql.contains("batch.vehicle_daily"));
        assert_eq!(s.sql.matches("CAST(:day_from AS DATE)").count(), 2);
        assert!(s.sql.contains("COUNT(DISTINCT vin) AS vehicles"));
        assert!(s.sql.contains(
            "SELECT b.boundary, r.event_day, r.vehicles, r.trips, r.readings, r.sum_speed, r.miles, r.rapid_accelerations FROM b"
        ));
    }
}
