-- Batch layer: the lake as a Redshift Spectrum external schema, the batch views recomputed
-- from it by stored procedures, and the bookkeeping batch-views needs. Valid Amazon
-- Redshift SQL; also runs on the local Data API emulator.
--
-- Placeholders (substituted by schema-migrator: the WarehouseSchema custom resource's
-- properties on AWS, `localstack/apply-sql --var NAME=VALUE` locally):
--   GLUE_DATABASE      Glue Data Catalog database of the lake table (template parameter
--                      GlueDatabaseName; local default fleetline).
--   SPECTRUM_IAM_ROLE  `default` (the namespace's default IAM role) or the Spectrum role's
--                      ARN, which schema-migrator always writes as a quoted literal
--                      ('arn:aws:iam::123456789012:role/x'), as IAM_ROLE requires.
--
-- On AWS the lake table spectrum.vehicle_telematics_raw is the Glue table the template
-- creates (Redshift has no CREATE EXTERNAL TABLE IF NOT EXISTS); locally
-- infra/sql/local/25_lake_table.sql creates it.
--
-- Redshift refuses external DDL inside a transaction block, so this file runs statement by
-- statement (every statement is re-runnable).
-- fleetline:no-transaction

CREATE SCHEMA IF NOT EXISTS batch;

CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum
FROM DATA CATALOG
DATABASE '${GLUE_DATABASE}'
IAM_ROLE ${SPECTRUM_IAM_ROLE}
CREATE EXTERNAL DATABASE IF NOT EXISTS;

-- Daily aggregates per (VIN, trip, UTC day) for days before the time boundary: the unit the
-- serving layer merges with the speed layer's aggregates over speed.telemetry. Same
-- columns and types as speed.vehicle_daily_mv, so both layers agree to the unit.
CREATE TABLE IF NOT EXISTS batch.vehicle_daily (
    vin                 CHAR(17)      NOT NULL,
    trip_id             VARCHAR(64)   NOT NULL,
    event_day           DATE          NOT NULL,
    readings            BIGINT        NOT NULL,
    sum_speed           DECIMAL(18,3) NOT NULL,
    min_odometer        DECIMAL(12,3) NOT NULL,
    max_odometer        DECIMAL(12,3) NOT NULL,
    rapid_accelerations BIGINT        NOT NULL,
    computed_at         TIMESTAMP     NOT NULL
)
DISTSTYLE KEY
DISTKEY (vin)
COMPOUND SORTKEY (event_day, vin);

-- Fleet totals per UTC day: batch.vehicle_daily summed per event_day, kept in the same
-- transaction as the rows they sum (batch.refresh_fleet_daily), so fleet-wide answers
-- read one row per day instead of every vehicle's trips. Exact: sum_speed and miles are
-- the sums query-api would compute from batch.vehicle_daily (SUM of DECIMAL(p,s) is
-- DECIMAL(38,s): "SUM function",
-- https://docs.aws.amazon.com/redshift/latest/dg/r_SUM.html). A day has a row when it has
-- batch rows; only days before the boundary are ever read.
CREATE TABLE IF NOT EXISTS batch.fleet_daily (
    event_day           DATE          NOT NULL,
    vehicles            BIGINT        NOT NULL,
    trips               BIGINT        NOT NULL,
    readings            BIGINT        NOT NULL,
    sum_speed           DECIMAL(38,3) NOT NULL,
    miles               DECIMAL(38,9) NOT NULL,
    rapid_accelerations BIGINT        NOT NULL
)
DISTSTYLE ALL
COMPOUND SORTKEY (event_day);

-- Lake partitions already added to spectrum.vehicle_telematics_raw (batch-views compares
-- the lake listing with this table and registers only the new ones).
CREATE TABLE IF NOT EXISTS batch.registered_partitions (
    year          INTEGER       NOT NULL,
    month         INTEGER       NOT NULL,
    day           INTEGER       NOT NULL,
    location      VARCHAR(1024) NOT NULL,
    registered_at TIMESTAMP     NOT NULL
)
DISTSTYLE ALL
COMPOUND SORTKEY (year, month, day);

-- Change detection (docs/design.md "Change detection"): event days whose lake content
-- changed and that the batch layer has not recomputed since. batch-views inserts a row per
-- day it learns about (S3 ObjectCreated notifications drained from the lake-changes SQS
-- queue, speed rows not yet included, the days the boundary moves over) and commits it
-- before deleting the notifications; batch.recompute_pending deletes the rows it recomputed
-- in the transaction that swaps the recomputed rows in. Duplicate rows are harmless.
-- next_day = event_day + 1, written by batch-views so no SQL needs date arithmetic.
CREATE TABLE IF NOT EXISTS batch.pending_days (
    event_day   DATE      NOT NULL,
    next_day    DATE      NOT NULL,
    noticed_at  TIMESTAMP NOT NULL
)
DISTSTYLE ALL
COMPOUND SORTKEY (event_day);

-- The last committed recompute of each event day (the transaction start time): a speed
-- row arrived before it is included in the batch layer (pruning and /v1/status use it).
CREATE TABLE IF NOT EXISTS batch.day_recomputes (
    event_day     DATE      NOT NULL,
    recomputed_at TIMESTAMP NOT NULL
)
DISTSTYLE ALL
COMPOUND SORTKEY (event_day);

-- The seed's batch views as native tables, rebuilt from batch.vehicle_daily. The by-year
-- table also keeps each vehicle's miles (the same exact sum as the fleet's below), so a
-- per-vehicle miles answer reads one row per year instead of every trip of the year
-- (infra/sql/22_vehicle_year_miles.sql adds the column where the table existed before it).
CREATE TABLE IF NOT EXISTS batch.batchlayer_rapid_acceleration_by_year (
    vin                 CHAR(17)      NOT NULL,
    year                INTEGER       NOT NULL,
    rapid_accelerations BIGINT        NOT NULL,
    miles               DECIMAL(38,9) NOT NULL
)
DISTSTYLE KEY
DISTKEY (vin)
COMPOUND SORTKEY (year, vin);

-- total_miles keeps all 9 fraction digits of (km DECIMAL(12,3) x 0.621371): exact
-- nano-miles, the same value the speed layer computes.
CREATE TABLE IF NOT EXISTS batch.batchlayer_total_miles_by_year (
    year        INTEGER       NOT NULL,
    total_miles DECIMAL(38,9) NOT NULL
)
DISTSTYLE ALL
COMPOUND SORTKEY (year);

-- Rebuilds batch.fleet_daily for the days [from_day, to_day) from batch.vehicle_daily.
-- Called wherever those rows change, in the same transaction (batch.recompute_daily, the
-- swap's deletes, infra/sql/21_fleet_daily.sql). No COMMIT.
CREATE OR REPLACE PROCEDURE batch.refresh_fleet_daily(from_day DATE, to_day DATE)
AS $$
BEGIN
    DELETE FROM batch.fleet_daily
    WHERE event_day >= from_day AND event_day < to_day;

    INSERT INTO batch.fleet_daily
        (event_day, vehicles, trips, readings, sum_speed, miles, rapid_accelerations)
    SELECT d.event_day,
           COUNT(DISTINCT d.vin),
           COUNT(*),
           SUM(d.readings),
           SUM(d.sum_speed),
           SUM((d.max_odometer - d.min_odometer) * 0.621371),
           SUM(d.rapid_accelerations)
    FROM batch.vehicle_daily d
    WHERE d.event_day >= from_day AND d.event_day < to_day
    GROUP BY d.event_day;
END;
$$ LANGUAGE plpgsql;

-- Recomputes batch.vehicle_daily for the days [from_day, to_day) from the lake.
-- Duplicates (same VIN and timestamp: Kinesis redelivery, producer retries) count once,
-- the one with the lowest Kinesis sequence number kept (numeric order: shorter strings
-- first). The year/month/day predicates let Spectrum prune partitions; the event_day
-- predicate is the exact one. A reading is a rapid acceleration when
-- acceleration >= threshold. Days without lake data end up with no rows (correct: their
-- stale rows are deleted). No COMMIT: the caller's transaction swaps the rows in together
-- with the new time boundary.
CREATE OR REPLACE PROCEDURE batch.recompute_daily(from_day DATE, to_day DATE, threshold DECIMAL(10,4))
AS $$
DECLARE
    first_year  INTEGER;
    last_year   INTEGER;
    first_month INTEGER;
    first_dom   INTEGER;
    last_month  INTEGER;
    last_dom    INTEGER;
    hi_year     INTEGER;
    hi_month    INTEGER;
    lo_month    INTEGER;
    lo_dom      INTEGER;
    hi_dom      INTEGER;
BEGIN
    IF from_day IS NULL OR to_day IS NULL OR threshold IS NULL THEN
        RAISE EXCEPTION 'batch.recompute_daily: from_day, to_day and threshold are required';
    END IF;
    first_year  := CAST(EXTRACT(YEAR FROM from_day) AS INTEGER);
    last_year   := CAST(EXTRACT(YEAR FROM to_day) AS INTEGER);
    first_month := CAST(EXTRACT(MONTH FROM from_day) AS INTEGER);
    first_dom   := CAST(EXTRACT(DAY FROM from_day) AS INTEGER);
    last_month  := CAST(EXTRACT(MONTH FROM to_day) AS INTEGER);
    last_dom    := CAST(EXTRACT(DAY FROM to_day) AS INTEGER);
    -- Month and day bounds, ANDed with the exact range below: equalities for days within
    -- one month (every single-day recompute), no bound where the range spans a year or a
    -- month. (hi_year, hi_month): the month of the last day, to_day - 1.
    hi_year  := last_year;
    hi_month := last_month;
    IF last_dom = 1 AND last_month = 1 THEN
        hi_year  := last_year - 1;
        hi_month := 12;
    ELSIF last_dom = 1 THEN
        hi_month := last_month - 1;
    END IF;
    lo_month := 1;
    hi_dom   := 31;
    lo_dom   := 1;
    IF first_year = hi_year THEN
        lo_month := first_month;
    ELSE
        hi_month := 12;
    END IF;
    IF first_year = hi_year AND first_month = hi_month THEN
        lo_dom := first_dom;
        IF last_dom > 1 THEN
            hi_dom := last_dom - 1;
        END IF;
    END IF;

    DELETE FROM batch.vehicle_daily
    WHERE event_day >= from_day AND event_day < to_day;

    INSERT INTO batch.vehicle_daily
        (vin, trip_id, event_day, readings, sum_speed, min_odometer, max_odometer,
         rapid_accelerations, computed_at)
    SELECT r.vin,
           r.trip_id,
           r.event_day,
           COUNT(*),
           SUM(r.vehicle_speed),
           MIN(r.odometer),
           MAX(r.odometer),
           SUM(CASE WHEN r.acceleration >= threshold THEN 1 ELSE 0 END),
           GETDATE()
    FROM (
        SELECT t.vin,
               t.trip_id,
               t.event_day,
               t.vehicle_speed,
               t.acceleration,
               t.odometer,
               ROW_NUMBER() OVER (
                   PARTITION BY t.vin, t.ts
                   ORDER BY LENGTH(t.sequence_number), t.sequence_number, t.shard_id
               ) AS copy_no
        FROM spectrum.vehicle_telematics_raw t
        -- (year, month, day) in [from_day, to_day) as plain comparisons of the partition
        -- columns with constants, the filter form Spectrum prunes partitions with
        -- ("Amazon Redshift Spectrum query performance",
        -- https://docs.aws.amazon.com/redshift/latest/dg/c-spectrum-external-performance.html);
        -- not an expression over them such as year * 10000 + month * 100 + day. The
        -- bounds also let the local emulator use its index on the partition columns.
        WHERE t.year >= first_year
          AND t.year <= hi_year
          AND t.month >= lo_month
          AND t.month <= hi_month
          AND t.day >= lo_dom
          AND t.day <= hi_dom
          AND (t.year > first_year OR t.month > first_month
               OR (t.month = first_month AND t.day >= first_dom))
          AND (t.year < last_year OR t.month < last_month
               OR (t.month = last_month AND t.day < last_dom))
          AND t.event_day >= from_day
          AND t.event_day < to_day
    ) r
    WHERE r.copy_no = 1
    GROUP BY r.vin, r.trip_id, r.event_day;

    CALL batch.refresh_fleet_daily(from_day, to_day);
END;
$$ LANGUAGE plpgsql;

-- Recomputes every pending day before the boundary (serving.control, already moved by the
-- caller's transaction), one batch.recompute_daily call per run of consecutive days,
-- records the recompute time of each, and clears the pending rows it covered (those noticed
-- up to the cutoff read first; rows inserted later stay for the next run). Pending days on
-- or after the boundary are speed-owned: cleared too (a later boundary move covers them).
-- SYSDATE is the start of the current transaction ("Date and time functions in
-- transactions", https://docs.aws.amazon.com/redshift/latest/dg/Date_functions_header.html):
-- no lake object read by this transaction's recomputes is younger than that.
-- Nested CALLs (up to 16 levels) are supported: "CALL",
-- https://docs.aws.amazon.com/redshift/latest/dg/r_CALL_procedure.html; FOR … IN query
-- LOOP over a RECORD: "Supported PL/pgSQL statements",
-- https://docs.aws.amazon.com/redshift/latest/dg/c_PLpgSQL-statements.html.
-- No COMMIT: the caller's transaction swaps the rows in together with the boundary.
CREATE OR REPLACE PROCEDURE batch.recompute_pending(threshold DECIMAL(10,4))
AS $$
DECLARE
    b        DATE;
    cutoff   TIMESTAMP;
    run_from DATE;
    run_to   DATE;
    rec      RECORD;
BEGIN
    SELECT INTO b boundary FROM serving.control;
    SELECT INTO cutoff MAX(noticed_at) FROM batch.pending_days;
    IF b IS NULL OR cutoff IS NULL THEN
        RETURN;
    END IF;
    run_from := NULL;
    FOR rec IN SELECT DISTINCT event_day, next_day FROM batch.pending_days
               WHERE noticed_at <= cutoff AND event_day < b
               ORDER BY event_day LOOP
        IF run_from IS NOT NULL AND rec.event_day <= run_to THEN
            IF rec.next_day > run_to THEN
                run_to := rec.next_day;
            END IF;
        ELSE
            IF run_from IS NOT NULL THEN
                CALL batch.recompute_daily(run_from, run_to, threshold);
            END IF;
            run_from := rec.event_day;
            run_to := rec.next_day;
        END IF;
    END LOOP;
    IF run_from IS NOT NULL THEN
        CALL batch.recompute_daily(run_from, run_to, threshold);
    END IF;

    DELETE FROM batch.day_recomputes
    WHERE event_day IN (SELECT event_day FROM batch.pending_days
                        WHERE noticed_at <= cutoff AND event_day < b);
    INSERT INTO batch.day_recomputes (event_day, recomputed_at)
    SELECT DISTINCT event_day, SYSDATE FROM batch.pending_days
    WHERE noticed_at <= cutoff AND event_day < b;
    DELETE FROM batch.pending_days WHERE noticed_at <= cutoff;
END;
$$ LANGUAGE plpgsql;

-- The seed's rapid_acceleration_by_year_sp: rapid accelerations and miles per VIN and year
-- over the batch-owned days (before serving.control.boundary; none while the boundary is
-- NULL). DELETE, not TRUNCATE: TRUNCATE commits implicitly in Redshift.
CREATE OR REPLACE PROCEDURE batch.rapid_acceleration_by_year_sp()
AS $$
DECLARE
    b DATE;
BEGIN
    SELECT INTO b boundary FROM serving.control;
    DELETE FROM batch.batchlayer_rapid_acceleration_by_year;
    INSERT INTO batch.batchlayer_rapid_acceleration_by_year (vin, year, rapid_accelerations, miles)
    SELECT d.vin,
           CAST(EXTRACT(YEAR FROM d.event_day) AS INTEGER),
           SUM(d.rapid_accelerations),
           SUM((d.max_odometer - d.min_odometer) * 0.621371)
    FROM batch.vehicle_daily d
    WHERE d.event_day < b
    GROUP BY d.vin, CAST(EXTRACT(YEAR FROM d.event_day) AS INTEGER);
END;
$$ LANGUAGE plpgsql;

-- The seed's total_miles_driven_by_year_sp: fleet miles per year, the sum of the daily
-- per-(VIN, trip) miles (max odometer - min odometer) km x 0.621371.
CREATE OR REPLACE PROCEDURE batch.total_miles_driven_by_year_sp()
AS $$
DECLARE
    b DATE;
BEGIN
    SELECT INTO b boundary FROM serving.control;
    DELETE FROM batch.batchlayer_total_miles_by_year;
    INSERT INTO batch.batchlayer_total_miles_by_year (year, total_miles)
    SELECT CAST(EXTRACT(YEAR FROM d.event_day) AS INTEGER),
           SUM((d.max_odometer - d.min_odometer) * 0.621371)
    FROM batch.vehicle_daily d
    WHERE d.event_day < b
    GROUP BY CAST(EXTRACT(YEAR FROM d.event_day) AS INTEGER);
END;
$$ LANGUAGE plpgsql;
