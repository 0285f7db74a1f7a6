//! The streaming-ingestion speed path on Redshift: [`RedshiftStreamLoader`] implements the
//! `StreamLoader` port over the objects of `infra/sql/15_speed_streaming.sql`.
//!
//! - reading the stream is `REFRESH MATERIALIZED VIEW speed.telemetry_stream`, a statement
//!   of its own: "The REFRESH MATERIALIZED VIEW command runs as a transaction of its own"
//!   ("REFRESH MATERIALIZED VIEW",
//!   https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-refresh-sql-command.html);
//! - the load is one BatchExecuteStatement, which the Data API runs as one transaction
//!   ("BatchExecuteStatement",
//!   https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_BatchExecuteStatement.html):
//!   it starts with `LOCK speed.telemetry` like stream-processor's batches, so loads and the
//!   Lambda path's writers are serialised and each sees the others' committed rows;
//! - sequence numbers are compared as numbers: Kinesis sequence numbers are decimal strings
//!   of up to 128 digits, so both sides are left-padded to 129 digits before comparing.

use chrono::{DateTime, NaiveDateTime, Utc};
use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::{Row, SqlParam, WarehouseError, sql_quote};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::speed::{StoreError, StreamLoad, StreamLoader, StreamReject};

/// The streaming materialized view.
pub const STREAM_VIEW: &str = "speed.telemetry_stream";
/// Reads the stream: each shard from where the previous refresh stopped.
pub const REFRESH_STREAM: &str = "REFRESH MATERIALIZED VIEW speed.telemetry_stream";
/// Bytes of a rejected record's data kept for its dead letter: FROM_VARBYTE(…, 'hex')
/// doubles them and a VARCHAR holds at most 65,535 bytes ("VARBYTE type",
/// https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html; "Character types",
/// https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html).
pub const DEAD_LETTER_DATA_BYTES: usize = 32_000;
/// Rejects marked per UPDATE statement (keeps each statement far below the Data API's size
/// limit).
const MARK_CHUNK: usize = 200;

/// A sequence number as a fixed-width string that sorts numerically.
fn padded(column: &str) -> String {
    format!("LPAD({column}, 129, '0')")
}

/// The columns of `speed.telemetry` the load writes (the Lambda path's, plus `arrived_at`).
const TELEMETRY_COLUMNS: &str = "vin, trip_id, ts, event_day, vehicle_speed, acceleration, \
odometer, rapid_acceleration, latitude, longitude, shard_id, sequence_number, arrived_at";

/// The load transaction (see the module docs). `run_id` names its `speed.stream_load_runs`
/// row; `threshold` is written as an exact DECIMAL literal.
pub fn load_statements(
    run_id: &str,
    threshold: RapidAccelThreshold,
) -> Result<Vec<String>, WarehouseError> {
    let run_id = sql_quote(run_id)?;
    let seq = padded("c.sequence_number");
    let mark = padded("p.last_sequence_number");
    let first = padded("s.sequence_number");
    let last = padded("sequence_number");
    let stream_seq = padded("speed.telemetry_stream.sequence_number");
    Ok(vec![
        "LOCK speed.telemetry".to_owned(),
        // The slice: every checked stream row beyond its shard's watermark, fixed for the
        // statements below.
        format!(
            "CREATE TEMP TABLE stream_slice AS SELECT c.shard_id, c.sequence_number, \
             c.approximate_arrival_timestamp, c.partition_key, c.kinesis_data, c.reject_reason, \
             c.reject_field, c.reject_detail, c.vin, c.trip_id, c.ts, c.event_day, \
             c.vehicle_speed, c.acceleration, c.odometer, c.latitude, c.longitude \
             FROM speed.telemetry_stream_checked c \
             LEFT JOIN speed.stream_load_progress p ON p.shard_id = c.shard_id \
             WHERE p.shard_id IS NULL OR {seq} > {mark}"
        ),
        format!(
            "INSERT INTO speed.stream_rejects (shard_id, sequence_number, \
             approximate_arrival_timestamp, partition_key, reject_reason, reject_field, \
             reject_detail, data_hex, data_bytes) \
             SELECT s.shard_id, s.sequence_number, s.approximate_arrival_timestamp, \
             s.partition_key, s.reject_reason, s.reject_field, s.reject_detail, \
             FROM_VARBYTE(SUBSTRING(s.kinesis_data, 1, {DEAD_LETTER_DATA_BYTES}), 'hex'), \
             OCTET_LENGTH(s.kinesis_data) FROM stream_slice s \
             WHERE s.reject_reason IS NOT NULL AND NOT EXISTS (SELECT 1 FROM speed.stream_rejects r \
             WHERE r.shard_id = s.shard_id AND r.sequence_number = s.sequence_number)"
        ),
        // New valid readings: the first copy of each (vin, ts) in stream order, and only
        // when speed.telemetry does not hold it yet (event_day too, for the sort key).
        format!(
            "CREATE TEMP TABLE stream_new AS SELECT d.vin, d.trip_id, d.ts, d.event_day, \
             d.vehicle_speed, d.acceleration, d.odometer, \
             CAST(CASE WHEN d.acceleration >= {} THEN 1 ELSE 0 END AS SMALLINT) AS rapid_acceleration, \
             d.latitude, d.longitude, d.shard_id, d.sequence_number, \
             d.approximate_arrival_timestamp AS arrived_at \
             FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.vin, s.ts \
             ORDER BY s.shard_id, {first}) AS copy FROM stream_slice s \
             WHERE s.reject_reason IS NULL) d \
             WHERE d.copy = 1 AND NOT EXISTS (SELECT 1 FROM speed.telemetry t \
             WHERE t.event_day = d.event_day AND t.vin = d.vin AND t.ts = d.ts)",
            threshold.decimal()
        ),
        format!(
            "INSERT INTO speed.telemetry ({TELEMETRY_COLUMNS}) \
             SELECT {TELEMETRY_COLUMNS} FROM stream_new"
        ),
        format!(
            "INSERT INTO speed.stream_load_runs (run_id, run_at, records, stored, rejected, \
             duplicates) SELECT {run_id}, GETDATE(), a.records, n.stored, a.rejected, \
             a.records - a.rejected - n.stored \
             FROM (SELECT COUNT(*) AS records, COUNT(reject_reason) AS rejected \
             FROM stream_slice) a \
             CROSS JOIN (SELECT COUNT(*) AS stored FROM stream_new) n"
        ),
        "DELETE FROM speed.stream_load_progress \
         WHERE shard_id IN (SELECT shard_id FROM stream_slice)"
            .to_owned(),
        format!(
            "INSERT INTO speed.stream_load_progress (shard_id, last_sequence_number, updated_at) \
             SELECT m.shard_id, m.sequence_number, GETDATE() FROM (SELECT shard_id, \
             sequence_number, ROW_NUMBER() OVER (PARTITION BY shard_id \
             ORDER BY {last} DESC) AS pos FROM stream_slice) m WHERE m.pos = 1"
        ),
        // Loaded rows leave the streaming view, so each load validates only new rows
        // ("DELETE": DELETE [FROM] { table_name | materialized_view_name },
        // https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html).
        format!(
            "DELETE FROM {STREAM_VIEW} USING speed.stream_load_progress p \
             WHERE {STREAM_VIEW}.shard_id = p.shard_id AND {stream_seq} <= {mark}"
        ),
        // On Redshift every Data API call is its own session anyway; the local emulator
        // pools sessions, where a temp table would outlive the call.
        "DROP TABLE stream_new".to_owned(),
        "DROP TABLE stream_slice".to_owned(),
    ])
}

/// The run's counts, by its id.
pub const RUN_QUERY: &str = "SELECT records, stored, rejected, duplicates \
FROM speed.stream_load_runs WHERE run_id = :run_id";

/// Up to `limit` rejects not dead-lettered yet, oldest first per shard, with the first
/// [`DEAD_LETTER_DATA_BYTES`] bytes of their data as hex (kept so by the load).
pub fn pending_rejects_sql(limit: usize) -> String {
    format!(
        "SELECT shard_id, sequence_number, approximate_arrival_timestamp, partition_key, \
         reject_reason, reject_field, reject_detail, data_bytes, data_hex \
         FROM speed.stream_rejects WHERE dead_lettered_at IS NULL \
         ORDER BY shard_id, {} LIMIT {limit}",
        padded("sequence_number")
    )
}

/// UPDATE statements that mark `rejects` dead-lettered, [`MARK_CHUNK`] at a time.
pub fn mark_statements(rejects: &[StreamReject]) -> Result<Vec<String>, WarehouseError> {
    rejects
        .chunks(MARK_CHUNK)
        .map(|chunk| {
            let keys = chunk
                .iter()
                .map(|r| {
                    Ok(format!(
                        "(shard_id = {} AND sequence_number = {})",
                        sql_quote(&r.shard_id)?,
                        sql_quote(&r.sequence_number)?
                    ))
                })
                .collect::<Result<Vec<_>, WarehouseError>>()?;
            Ok(format!(
                "UPDATE speed.stream_rejects SET dead_lettered_at = GETDATE() \
                 WHERE dead_lettered_at IS NULL AND ({})",
                keys.join(" OR ")
            ))
        })
        .collect()
}

/// The loader over any [`Warehouse`]; `new_run_id` names each load's run row.
pub struct RedshiftStreamLoader<W> {
    warehouse: W,
    new_run_id: fn() -> String,
}

impl<W: Warehouse> RedshiftStreamLoader<W> {
    /// Run ids are random UUIDs.
    pub fn new(warehouse: W) -> Self {
        Self::with_run_ids(warehouse, || uuid::Uuid::new_v4().to_string())
    }

    /// Run ids from `new_run_id` (tests).
    pub fn with_run_ids(warehouse: W, new_run_id: fn() -> String) -> Self {
        Self {
            warehouse,
            new_run_id,
        }
    }
}

fn decode_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent(e.to_string())
}

fn count(row: &Row<'_>, column: &str) -> Result<u64, StoreError> {
    let n = row.get_i64(column).map_err(decode_error)?;
    u64::try_from(n).map_err(|_| StoreError::Permanent(format!("{column} is negative: {n}")))
}

fn reject_from_row(row: &Row<'_>) -> Result<StreamReject, StoreError> {
    let text = |c: &str| row.get_string(c).map_err(decode_error);
    let arrival: NaiveDateTime = row
        .get_timestamp("approximate_arrival_timestamp")
        .map_err(decode_error)?;
    let data = hex::decode(
        row.get_opt_string("data_hex")
            .map_err(decode_error)?
            .unwrap_or_default(),
    )
    .map_err(|e| StoreError::Permanent(format!("data_hex: {e}")))?;
    let bytes = row
        .get_opt_i64("data_bytes")
        .map_err(decode_error)?
        .unwrap_or(0);
    Ok(StreamReject {
        shard_id: text("shard_id")?.trim_end().to_owned(),
        sequence_number: text("sequence_number")?,
        approximate_arrival: DateTime::<Utc>::from_naive_utc_and_offset(arrival, Utc),
        partition_key: row
            .get_opt_string("partition_key")
            .map_err(decode_error)?
            .unwrap_or_default(),
        reason: text("reject_reason")?,
        field: row.get_opt_string("reject_field").map_err(decode_error)?,
        detail: text("reject_detail")?,
        truncated: usize::try_from(bytes).is_ok_and(|b| b > data.len()),
        data,
    })
}

impl<W: Warehouse> StreamLoader for RedshiftStreamLoader<W> {
    async fn read_stream(&self) -> Result<(), StoreError> {
        self.warehouse
            .execute(REFRESH_STREAM, &[])
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    async fn load(&self, threshold: RapidAccelThreshold) -> Result<StreamLoad, StoreError> {
        let run_id = (self.new_run_id)();
        let statements = load_statements(&run_id, threshold).map_err(StoreError::from)?;
        self.warehouse
            .transaction(statements)
            .await
            .map_err(StoreError::from)?;
        let rows = self
            .warehouse
            .query(RUN_QUERY, &[SqlParam::new("run_id", &run_id)])
            .await
            .map_err(StoreError::from)?;
        let row = rows
            .iter()
            .next()
            .ok_or_else(|| StoreError::Permanent(format!("stream load run {run_id}: no row")))?;
        Ok(StreamLoad {
            records: count(&row, "records")?,
            stored: count(&row, "stored")?,
            rejected: count(&row, "rejected")?,
            duplicates: count(&row, "duplicates")?,
        })
    }

    async fn pending_rejects(&self, limit: usize) -> Result<Vec<StreamReject>, StoreError> {
        let rows = self
            .warehouse
            .query(&pending_rejects_sql(limit.max(1)), &[])
            .await
            .map_err(StoreError::from)?;
        rows.iter().map(|row| reject_from_row(&row)).collect()
    }

    async fn mark_dead_lettered(&self, rejects: &[StreamReject]) -> Result<(), StoreError> {
        if rejects.is_empty() {
            return Ok(());
        }
        let statements = mark_statements(rejects).map_err(StoreError::from)?;
        self.warehouse
            .execute_batches(statements)
            .await
            .map(drop)
            .map_err(StoreError::from)
    }
}
