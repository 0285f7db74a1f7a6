//! The SQL batch-views sends. Literal SQL only where the Data API forbids parameters
//! (BatchExecuteStatement); every literal is a date, a number or quoted with `sql_quote`.

use chrono::NaiveDate;
use fleetline_aws::WarehouseError;
use fleetline_aws::warehouse::{MAX_STATEMENT_BYTES, chunk_values_insert, sql_quote};
use fleetline_core::{DayRange, RapidAccelThreshold};

use crate::config::LakeLayout;
use crate::lake::LakePartition;

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
                let (y, m, d) = p.ymd();
                sql.push_str(&format!(
                    "\nPARTITION (year={y}, month={m}, day={d}) LOCATION {}",
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

/// `CALL batch.recompute_daily(from, to, threshold)` for `[from, to)`.
pub fn call_recompute(range: &DayRange, threshold: RapidAccelThreshold) -> String {
    format!(
        "CALL batch.recompute_daily({}, {}, CAST({} AS DECIMAL(10,4)))",
        date_literal(range.start()),
        date_literal(range.end()),
        threshold.decimal()
    )
}

/// Batch rows must only exist for days before the boundary (it may move back with `full`).
pub fn delete_daily_from(boundary: NaiveDate) -> String {
    format!(
        "DELETE FROM batch.vehicle_daily WHERE event_day >= {}",
        date_literal(boundary)
    )
}

/// A full rebuild drops rows for days before the earliest lake day (no data there any more).
pub fn delete_daily_before(day: NaiveDate) -> String {
    format!(
        "DELETE FROM batch.vehicle_daily WHERE event_day < {}",
        date_literal(day)
    )
}

pub fn update_control(boundary: NaiveDate, summary_json: &str) -> Result<String, WarehouseError> {
    Ok(format!(
        "UPDATE serving.control SET boundary = {}, last_batch_run_at = GETDATE(), last_batch_summary = {}",
        date_literal(boundary),
        sql_quote(summary_json)?
    ))
}

pub fn count_daily_rows(range: &DayRange) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM batch.vehicle_daily WHERE event_day >= {} AND event_day < {}",
        date_literal(range.start()),
        date_literal(range.end())
    )
}

pub fn prune_speed(before: NaiveDate) -> String {
    format!(
        "DELETE FROM speed.telemetry WHERE event_day < {}",
        date_literal(before)
    )
}
