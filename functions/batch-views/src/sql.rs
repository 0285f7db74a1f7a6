//! The SQL batch-views sends. Literal SQL only where the Data API forbids parameters
//! (BatchExecuteStatement); every literal is a date, a number or quoted with `sql_quote`.

use chrono::NaiveDate;
use fleetline_aws::WarehouseError;
use fleetline_aws::lake::partition_spec;
use fleetline_aws::warehouse::{MAX_STATEMENT_BYTES, chunk_values_insert, sql_quote};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::catalog::LakePartition;

use crate::config::LakeLayout;

pub const EXTERNAL_TABLE: &str = "spectrum.vehicle_telematics_raw";
/// Glue's BatchCreatePartition takes at most 100 partitions, so one ADD PARTITION statement
/// carries no more.
pub const PARTITIONS_PER_STATEMENT: usize = 100;

pub const SELECT_REGISTERED: &str = "SELECT year, month, day FROM batch.registered_partitions";
pub const SELECT_CONTROL: &str = "SELECT boundary FROM serving.control";
pub const CALL_RAPID_BY_YEAR: &str = "CALL batch.rapid_acceleration_by_year_sp()";
pub const CALL_MILES_BY_YEAR: &str = "CALL batch.total_miles_driven_by_year_sp()";

/// `CAST('2026-11-25' AS DATE)` — the same on Redshift and PostgreSQL.
pub fn date_literal(day: NaiveDate) -> String {
    format!("CAST('{}' AS DATE)", day.format("%Y-%m-%d"))
}

/// `ALTER TABLE … ADD IF NOT EXISTS PARTITION (…) LOCATION '…' PARTITION …`, at most
/// [`PARTITIONS_PER_STATEMENT`] partitions each. Redshift runs these only outside a
/// transaction block: send each with `Warehouse::execute`.
pub fn add_partitions(
    lake: &LakeLayout,
    partitions: &[LakePartition],
) -> Result<Vec<String>, WarehouseError> {
    partitions
        .chunks(PARTITIONS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = format!("ALTER TABLE {EXTERNAL_TABLE} ADD IF NOT EXISTS");
            for p in chunk {
                sql.push_str(&format!(
                    "\nPARTITION ({}) LOCATION {}",
                    partition_spec(p.day),
                    sql_quote(&lake.location(&p.key_prefix))?
                ));
            }
            Ok(sql)
        })
        .collect()
}

/// Multi-row INSERTs recording registered partitions.
pub fn record_partitions(
    lake: &LakeLayout,
    partitions: &[LakePartition],
) -> Result<Vec<String>, WarehouseError> {
    let rows = partitions
        .iter()
        .map(|p| {
            let (y, m, d) = p.ymd();
            Ok(format!(
                "({y},{m},{d},{},GETDATE())",
                sql_quote(&lake.location(&p.key_prefix))?
            ))
        })
        .collect::<Result<Vec<_>, WarehouseError>>()?;
    chunk_values_insert(
        "INSERT INTO batch.registered_partitions (year, month, day, location, registered_at) VALUES ",
        rows,
        "",
        MAX_STATEMENT_BYTES,
    )
}

/// Batch rows must only exist for days before the boundary (it may move back with `full`):
/// the one [`update_control`] left in serving.control, earlier in the same transaction.
pub const DELETE_DAILY_FROM_BOUNDARY: &str = "DELETE FROM batch.vehicle_daily \
WHERE event_day >= (SELECT MAX(boundary) FROM serving.control)";

/// After the deletes above: batch.fleet_daily sums batch.vehicle_daily per day, and both
/// delete whole days, so a fleet row whose day lost its vehicle rows goes too
/// (batch.recompute_daily keeps the recomputed days in step itself).
pub const DELETE_FLEET_DAYS_WITHOUT_ROWS: &str = "DELETE FROM batch.fleet_daily \
WHERE event_day NOT IN (SELECT event_day FROM batch.vehicle_daily)";

/// A full rebuild drops rows for days before the earliest lake day (no data there any more).
pub fn delete_daily_before(day: NaiveDate) -> String {
    format!(
        "DELETE FROM batch.vehicle_daily WHERE event_day < {}",
        date_literal(day)
    )
}

/// Sets the boundary. Only a `full` run may move it back: a run computes its boundary from
/// the one it read at its start, and an overlapping run (a catch-up started before the daily
/// run committed) whose swap begins after the other's commit does not conflict with it
/// under SNAPSHOT isolation, so without the guard it would move the boundary back over
/// days whose batch rows it then deletes and whose speed rows may be pruned.
pub fn update_control(
    boundary: NaiveDate,
    full: bool,
    summary_json: &str,
) -> Result<String, WarehouseError> {
    let b = date_literal(boundary);
    let value = if full {
        b
    } else {
        format!("CASE WHEN boundary > {b} THEN boundary ELSE {b} END")
    };
    Ok(format!(
        "UPDATE serving.control SET boundary = {value}, last_batch_run_at = GETDATE(), last_batch_summary = {}",
        sql_quote(summary_json)?
    ))
}

/// Deletes speed rows for days before `before` that the batch layer included after they
/// arrived: their day's last committed recompute started after their arrival, and the day
/// is not pending again. `arrived_at` is GETDATE() (whole seconds), so it is compared with
/// the recompute time truncated to the second (a row that arrived during the recompute is
/// never taken as included). A test of time, not content: the recompute counts the lake,
/// and batch-owned speed rows are never served (docs/design.md §3).
/// DELETE … USING: https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html
pub fn prune_speed(before: NaiveDate) -> String {
    format!(
        "DELETE FROM speed.telemetry USING batch.day_recomputes r \
WHERE telemetry.event_day = r.event_day AND telemetry.event_day < {} \
AND telemetry.arrived_at < DATE_TRUNC('second', r.recomputed_at) \
AND telemetry.event_day NOT IN (SELECT p.event_day FROM batch.pending_days p)",
        date_literal(before)
    )
}

/// Days before `boundary` with speed rows the batch layer has not included since they
/// arrived (the same test as [`prune_speed`], negated): /v1/status counts these readings
/// as waiting, and the run recomputes their days.
pub fn select_speed_waiting_days(boundary: NaiveDate) -> String {
    format!(
        "SELECT DISTINCT t.event_day FROM speed.telemetry t \
LEFT JOIN batch.day_recomputes r ON r.event_day = t.event_day \
WHERE t.event_day < {} \
AND (r.recomputed_at IS NULL OR t.arrived_at >= DATE_TRUNC('second', r.recomputed_at)) \
ORDER BY 1",
        date_literal(boundary)
    )
}

/// The pending days `batch.recompute_pending` will recompute under `boundary`.
pub fn select_pending_days(boundary: NaiveDate) -> String {
    format!(
        "SELECT DISTINCT event_day FROM batch.pending_days WHERE event_day < {} ORDER BY 1",
        date_literal(boundary)
    )
}

/// Multi-row INSERTs marking `days` pending (committed before the notifications that
/// named them are deleted).
pub fn insert_pending(days: &[NaiveDate]) -> Result<Vec<String>, WarehouseError> {
    let rows = days
        .iter()
        .map(|d| {
            let next = d.succ_opt().unwrap_or(*d);
            format!("({},{},GETDATE())", date_literal(*d), date_literal(next))
        })
        .collect::<Vec<_>>();
    chunk_values_insert(
        "INSERT INTO batch.pending_days (event_day, next_day, noticed_at) VALUES ",
        rows,
        "",
        MAX_STATEMENT_BYTES,
    )
}

/// `CALL batch.recompute_pending(threshold)`.
pub fn call_recompute_pending(threshold: RapidAccelThreshold) -> String {
    format!(
        "CALL batch.recompute_pending(CAST({} AS DECIMAL(10,4)))",
        threshold.decimal()
    )
}

/// batch.vehicle_daily rows of the days recomputed by the last committed run (they share
/// its transaction's start time).
pub const COUNT_LAST_RECOMPUTED_ROWS: &str = "SELECT COUNT(*) AS n FROM batch.vehicle_daily d \
JOIN batch.day_recomputes r ON r.event_day = d.event_day \
WHERE r.recomputed_at = (SELECT MAX(recomputed_at) FROM batch.day_recomputes)";

/// Days in `[from, to)` (all days before `to` without `from`) whose batch rows count fewer
/// readings than the speed layer holds: the lake is behind the speed layer there (a
/// lake-writer object not landed yet). speed.telemetry is deduplicated on (vin, ts), so
/// its COUNT(*) per day is the day's readings; batch.vehicle_daily counts the lake's,
/// deduplicated the same way. One UNION ALL aggregate (no outer join): a day without
/// batch rows counts 0 there.
pub fn select_lake_behind(from: Option<NaiveDate>, to: NaiveDate) -> String {
    let range = match from {
        Some(f) => format!(
            "event_day >= {} AND event_day < {}",
            date_literal(f),
            date_literal(to)
        ),
        None => format!("event_day < {}", date_literal(to)),
    };
    format!(
        "SELECT x.event_day, SUM(x.speed_readings) AS speed_readings, SUM(x.batch_readings) AS batch_readings \
FROM (SELECT event_day, COUNT(*) AS speed_readings, 0 AS batch_readings FROM speed.telemetry \
WHERE {range} GROUP BY event_day \
UNION ALL SELECT event_day, 0 AS speed_readings, SUM(readings) AS batch_readings FROM batch.vehicle_daily \
WHERE {range} GROUP BY event_day) x \
GROUP BY x.event_day HAVING SUM(x.batch_readings) < SUM(x.speed_readings) ORDER BY 1"
    )
}

/// Holds the boundary at the first day in `[from, to)` whose lake content is behind the
/// speed layer ([`select_lake_behind`]), after the recompute in the swap transaction, so
/// the speed layer keeps serving that day. Only ever lowers the boundary the first UPDATE
/// set (which stays first: it is the write-conflict guard between overlapping runs), and
/// only when that is this run's `to`: a later boundary committed by an overlapping run
/// (kept by the first UPDATE) is never moved back over days that run made batch-owned.
/// UPDATE … FROM a derived table (no outer join in FROM):
/// "UPDATE", https://docs.aws.amazon.com/redshift/latest/dg/r_UPDATE.html.
pub fn hold_boundary(from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "UPDATE serving.control SET boundary = h.event_day \
FROM (SELECT MIN(l.event_day) AS event_day FROM ({}) l) h \
WHERE h.event_day IS NOT NULL AND boundary > h.event_day AND boundary = {}",
        select_lake_behind(Some(from), to).replace(" ORDER BY 1", ""),
        date_literal(to)
    )
}
