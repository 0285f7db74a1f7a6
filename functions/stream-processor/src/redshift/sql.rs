//! The SQL that stores one batch of readings in `speed.telemetry`.
//!
//! Per transaction (one BatchExecuteStatement):
//! 0. `LOCK speed.telemetry` — consumers of different shards (and a redelivered batch
//!    racing its own timed-out first attempt) run concurrently. Redshift Serverless runs
//!    SNAPSHOT isolation ("Isolation levels in Amazon Redshift",
//!    https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html), under which two
//!    transactions that both insert the same new (vin, ts) after their NOT EXISTS checks
//!    would both commit: a duplicate. The lock makes the writers queue, and since LOCK takes
//!    no snapshot (the first query, DML or CREATE TABLE does), each transaction's snapshot
//!    starts after the previous holder committed, so step 3 sees its rows. Nothing that
//!    reads or writes may come before the LOCK. The local emulator runs the same snapshot
//!    isolation (PostgreSQL REPEATABLE READ);
//! 1. `CREATE TEMP TABLE stage_telemetry (LIKE speed.telemetry INCLUDING DEFAULTS)` — the
//!    columns, types and NOT NULL constraints come from the table itself, so they are spelt
//!    once, in infra/sql. Redshift documents `LIKE parent_table [ { INCLUDING | EXCLUDING }
//!    DEFAULTS ]` for temporary tables too ("CREATE TABLE",
//!    https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html); the defaults
//!    are included because `arrived_at` is NOT NULL and the stage insert leaves it out;
//! 2. `INSERT INTO stage_telemetry (…) VALUES (…),(…)` — as many ≤ 100 KB chunks as needed;
//! 3. `INSERT INTO speed.telemetry (…) SELECT … FROM stage_telemetry s WHERE NOT EXISTS
//!    (… same vin and ts …)` — Redshift enforces no unique keys and has no `VALUES` in
//!    `FROM`, so this anti-join is what makes a redelivered batch change nothing. It also
//!    matches `event_day` (a function of `ts`, so no change in meaning) because that is the
//!    leading column of the table's sort key: Redshift can then skip blocks by day;
//! 4. `DROP TABLE stage_telemetry` — on Redshift every Data API call is its own session
//!    anyway; the local emulator pools PostgreSQL sessions, where a temp table would outlive
//!    the call (a rolled-back transaction drops it too).
//!
//! A batch needing more than 40 statements is split into several such transactions, each
//! with its own stage table; they run in order through `Warehouse::execute_batches`. The
//! split is not atomic, but re-running it only inserts what is missing (step 3), so a
//! retry after a partial commit converges to the same rows.
//!
//! Every value is a literal built here: numbers from the canonical integers through the
//! fixed-point formatters, text through [`push_sql_quoted`]. Nothing from the payload is
//! interpolated unescaped. The same batch always yields byte-identical statements.

use std::fmt::Write as _;

use fleetline_aws::warehouse::{
    MAX_BATCH_STATEMENTS, MAX_STATEMENT_BYTES, WarehouseError, chunk_values_insert, push_sql_quoted,
};
use fleetline_core::ports::stamped::StampedReading;
use fleetline_core::{RapidAccelThreshold, Reading};

/// Target table.
pub const TABLE: &str = "speed.telemetry";
/// Stage table (session-local).
pub const STAGE: &str = "stage_telemetry";
/// Columns written, in the order of the row literals (`arrived_at` takes its default).
pub const COLUMNS: &str = "vin, trip_id, ts, event_day, vehicle_speed, acceleration, odometer, \
rapid_acceleration, latitude, longitude, shard_id, sequence_number";

const STAGE_DDL: &str =
    "CREATE TEMP TABLE stage_telemetry (LIKE speed.telemetry INCLUDING DEFAULTS)";

/// The first statement of every transaction (see the module docs).
const LOCK_STATEMENT: &str = "LOCK speed.telemetry";

/// Statements around the VALUES chunks of one transaction.
const FIXED_STATEMENTS: usize = 4;

fn stage_insert_prefix() -> String {
    format!("INSERT INTO {STAGE} ({COLUMNS}) VALUES ")
}

fn merge_statement() -> String {
    format!(
        "INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {STAGE} s \
         WHERE NOT EXISTS (SELECT 1 FROM {TABLE} t \
         WHERE t.event_day = s.event_day AND t.vin = s.vin AND t.ts = s.ts)"
    )
}

fn drop_statement() -> String {
    format!("DROP TABLE {STAGE}")
}

/// One stamped reading as a VALUES row literal, e.g.
/// `('1HGCM82633A004352','V1St…','2026-11-25 17:04:31.000000','2026-11-25',57.300,4.2109,1042.377,0,47.6105,-122.3301,'shardId-000000000000','4959…')`.
///
/// Fails only for text that cannot be quoted portably (a backslash or NUL, see
/// [`push_sql_quoted`]); validated VINs never contain one, a trip id might.
pub fn row_literal(
    stamped: &StampedReading,
    threshold: RapidAccelThreshold,
) -> Result<String, WarehouseError> {
    let reading = &stamped.reading;
    // Everything is appended to one buffer sized for the whole row (no text per value).
    let mut row = String::with_capacity(
        ROW_FIXED_BYTES
            + reading.trip_id.len()
            + stamped.shard_id.len()
            + stamped.sequence_number.len(),
    );
    row.push('(');
    push_sql_quoted(&mut row, reading.vin.as_str())?;
    row.push(',');
    push_sql_quoted(&mut row, &reading.trip_id)?;
    row.push(',');
    push_time_and_day(&mut row, reading);
    for value in [
        reading.speed_decimal(),
        reading.acceleration_decimal(),
        reading.odometer_decimal(),
    ] {
        row.push(',');
        value.push_to(&mut row);
    }
    row.push(',');
    row.push(if threshold.is_rapid(reading.acceleration_e4) {
        '1'
    } else {
        '0'
    });
    let (lat, lon) = match reading.location {
        Some(l) => (Some(l.latitude), Some(l.longitude)),
        None => (None, None),
    };
    for v in [lat, lon] {
        row.push(',');
        push_float_literal(&mut row, v);
    }
    row.push(',');
    push_sql_quoted(&mut row, &stamped.shard_id)?;
    row.push(',');
    push_sql_quoted(&mut row, &stamped.sequence_number)?;
    row.push(')');
    Ok(row)
}

/// A row's bytes besides its trip id, shard id and sequence number (a capacity hint).
const ROW_FIXED_BYTES: usize = 192;

/// `'YYYY-MM-DD HH:MM:SS.ffffff','YYYY-MM-DD'`: the timestamp and its UTC day.
fn push_time_and_day(row: &mut String, reading: &Reading) {
    let ts = reading.timestamp_display();
    match ts
        .ascii()
        .as_ref()
        .and_then(|b| std::str::from_utf8(b).ok())
    {
        Some(text) => {
            row.push('\'');
            row.push_str(text);
            row.push_str("','");
            row.push_str(&text[..10]);
            row.push('\'');
        }
        // Years beyond four digits: the general formatters.
        None => {
            let _ = write!(row, "'{ts}','{}'", reading.day().format("%Y-%m-%d"));
        }
    }
}

/// Coordinates are display-only doubles. Rust's `Display` for `f64` prints the shortest
/// text that round-trips and never uses exponent notation, so it is a valid SQL numeric
/// literal. Validation guarantees finiteness; NULL otherwise (and when absent), to be safe.
fn push_float_literal(row: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            // Writing into a String cannot fail.
            let _ = write!(row, "{v}");
        }
        _ => row.push_str("NULL"),
    }
}

/// The transactions that store `rows` (row literals from [`row_literal`]), each at most
/// [`MAX_BATCH_STATEMENTS`] statements, every one but the last exactly that many — so that
/// `Warehouse::execute_batches`, which groups by that number in order, runs exactly these
/// transactions. No rows → no transactions (no SQL at all).
pub fn plan(rows: &[String]) -> Result<Vec<Vec<String>>, WarehouseError> {
    plan_with_limit(rows, MAX_STATEMENT_BYTES)
}

/// [`plan`] with a custom statement size limit (tests use small ones).
pub fn plan_with_limit(
    rows: &[String],
    max_statement_bytes: usize,
) -> Result<Vec<Vec<String>>, WarehouseError> {
    let chunks = chunk_values_insert(&stage_insert_prefix(), rows, "", max_statement_bytes)?;
    let per_transaction = MAX_BATCH_STATEMENTS - FIXED_STATEMENTS;
    // The chunks are moved into their transactions, not copied.
    let mut chunks = chunks.into_iter().peekable();
    let mut transactions = Vec::new();
    while chunks.peek().is_some() {
        let mut t = Vec::with_capacity(per_transaction + FIXED_STATEMENTS);
        t.push(LOCK_STATEMENT.to_owned());
        t.push(STAGE_DDL.to_owned());
        t.extend(chunks.by_ref().take(per_transaction));
        t.push(merge_statement());
        t.push(drop_statement());
        transactions.push(t);
    }
    Ok(transactions)
}

/// Index, within each transaction of [`plan`], of the statement whose row count is the
/// number of readings actually inserted into `speed.telemetry`.
pub(super) fn merge_index(transaction_len: usize) -> usize {
    transaction_len.saturating_sub(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use fleetline_core::{Reading, ValidationContext, parse_and_validate};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn reading(json: &str) -> Reading {
        parse_and_validate(json.as_bytes(), &ValidationContext::new(now())).unwrap()
    }

    fn stamped(reading: Reading, shard_id: &str, sequence_number: &str) -> StampedReading {
        StampedReading {
            reading,
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
        }
    }

    const SAMPLE: &str = r#"{"VIN":"1HGCM82633A004352","trip_id":"O'Brien-trip","timestamp":"2026-11-25 17:04:31.123456789","vehicleSpeed":57.3,"acceleration":-4.21085,"odometer":1042.377,"location":{"latitude":47.6105,"longitude":-122.3301}}"#;

    /// [`SAMPLE`] from shard 0 at `sequence`, as a row literal.
    fn sample_row(sequence: &str) -> String {
        let r = stamped(reading(SAMPLE), "shardId-000000000000", sequence);
        row_literal(&r, RapidAccelThreshold::DEFAULT).unwrap()
    }

    #[test]
    fn row_literal_uses_exact_fixed_point_and_quoting() {
        assert_eq!(
            sample_row("42"),
            "('1HGCM82633A004352','O''Brien-trip','2026-11-25 17:04:31.123456','2026-11-25',\
             57.300,-4.2109,1042.377,0,47.6105,-122.3301,'shardId-000000000000','42')"
        );
    }

    #[test]
    fn rapid_flag_follows_the_threshold_inclusively_and_location_may_be_null() {
        let r = reading(
            r#"{"VIN":"1HGCM82633A004352","trip_id":"t","timestamp":"2026-11-25T00:00:00Z","vehicleSpeed":0,"acceleration":10.0,"odometer":0}"#,
        );
        let r = stamped(r, "s", "1");
        let row = row_literal(&r, RapidAccelThreshold::DEFAULT).unwrap();
        assert!(
            row.ends_with(",0.000,10.0000,0.000,1,NULL,NULL,'s','1')"),
            "{row}"
        );
        let higher = RapidAccelThreshold::new(10.0001).unwrap();
        let row = row_literal(&r, higher).unwrap();
        assert!(row.contains(",0,NULL,NULL,"), "{row}");
    }

    #[test]
    fn unquotable_trip_id_is_an_error_not_sql() {
        // Validation refuses such a trip id; the adapter must still refuse it on its own.
        let mut r = reading(
            r#"{"VIN":"1HGCM82633A004352","trip_id":"ab","timestamp":"2026-11-25T00:00:00Z","vehicleSpeed":0,"acceleration":0,"odometer":0}"#,
        );
        r.trip_id = "a\\b".to_owned();
        assert!(matches!(
            row_literal(&stamped(r, "s", "1"), RapidAccelThreshold::DEFAULT),
            Err(WarehouseError::UnquotableLiteral { .. })
        ));
    }

    #[test]
    fn one_transaction_wraps_the_chunks() {
        let rows: Vec<String> = (0..5).map(|i| format!("({i})")).collect();
        let plan = plan(&rows).unwrap();
        assert_eq!(plan.len(), 1);
        let t = &plan[0];
        assert_eq!(t.len(), 5);
        assert_eq!(t[0], "LOCK speed.telemetry");
        assert_eq!(
            t[1],
            "CREATE TEMP TABLE stage_telemetry (LIKE speed.telemetry INCLUDING DEFAULTS)"
        );
        assert_eq!(
            t[2],
            format!("INSERT INTO stage_telemetry ({COLUMNS}) VALUES (0),(1),(2),(3),(4)")
        );
        assert_eq!(
            t[3],
            format!(
                "INSERT INTO speed.telemetry ({COLUMNS}) SELECT {COLUMNS} FROM stage_telemetry s \
                 WHERE NOT EXISTS (SELECT 1 FROM speed.telemetry t \
                 WHERE t.event_day = s.event_day AND t.vin = s.vin AND t.ts = s.ts)"
            )
        );
        assert_eq!(t[4], "DROP TABLE stage_telemetry");
        assert_eq!(merge_index(t.len()), 3);
        assert!(plan_with_limit(&[], 1000).unwrap().is_empty());
    }

    #[test]
    fn many_chunks_split_into_aligned_transactions_of_forty() {
        let prefix_len = stage_insert_prefix().len();
        // Each row alone fills a statement: one chunk per row.
        let rows: Vec<String> = (0..80).map(|i| format!("({i:03})")).collect();
        let plan = plan_with_limit(&rows, prefix_len + 5).unwrap();
        let lens: Vec<usize> = plan.iter().map(Vec::len).collect();
        assert_eq!(
            lens,
            [40, 40, 12],
            "36 + 36 + 8 chunks, 4 fixed statements each"
        );
        for t in &plan {
            assert_eq!(t[0], "LOCK speed.telemetry");
            assert!(t[1].starts_with("CREATE TEMP TABLE"));
            assert!(t[merge_index(t.len())].starts_with("INSERT INTO speed.telemetry"));
            assert_eq!(t.last().unwrap(), "DROP TABLE stage_telemetry");
        }
        // Every row exactly once, in order.
        let back: Vec<&str> = plan
            .iter()
            .flat_map(|t| &t[2..t.len() - 2])
            .map(|s| &s[prefix_len..])
            .collect();
        assert_eq!(back, rows.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn statements_respect_the_size_limit() {
        let rows = vec![sample_row("4959"); 2_000];
        let plan = plan(&rows).unwrap();
        let chunks: Vec<&String> = plan.iter().flat_map(|t| &t[2..t.len() - 2]).collect();
        assert!(chunks.len() > 1);
        assert!(
            plan.iter()
                .flatten()
                .all(|s| s.len() <= MAX_STATEMENT_BYTES)
        );
    }
}
