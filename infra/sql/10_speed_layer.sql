-- Speed layer: raw recent readings written by stream-processor, their (VIN, trip, day)
-- daily aggregates as a materialized view refreshed by view-refresher, and the seed's
-- speed views over it. Valid Amazon Redshift SQL; the local Data API emulator maps the
-- Redshift-only clauses (DISTKEY, SORTKEY, AUTO REFRESH) onto PostgreSQL.
--
-- Numbers are fixed-point DECIMALs (see README "Why the numbers are exact"): sums over
-- them are exact and order-independent, so the speed and batch layers agree to the unit.

CREATE SCHEMA IF NOT EXISTS speed;

-- One row per valid, de-duplicated reading. Redshift enforces no unique keys: the
-- stream-processor stages each Kinesis batch in a temp table and inserts only readings
-- whose (vin, ts) is not present yet (INSERT … SELECT … WHERE NOT EXISTS, matching
-- event_day too so the sort key prunes blocks), in one transaction per batch that starts
-- with LOCK speed.telemetry. Redshift Serverless runs SNAPSHOT isolation ("Isolation
-- levels in Amazon Redshift", https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html),
-- under which two transactions inserting the same new (vin, ts) would both commit; the
-- LOCK serialises the writers, and because LOCK takes no snapshot (the first query or DML
-- statement does), each NOT EXISTS check sees every earlier writer's committed rows.
-- A redelivered batch, even one racing its own first attempt, therefore inserts nothing.
CREATE TABLE IF NOT EXISTS speed.telemetry (
    vin                 CHAR(17)      NOT NULL,
    trip_id             VARCHAR(64)   NOT NULL,
    ts                  TIMESTAMP     NOT NULL,
    event_day           DATE          NOT NULL,
    vehicle_speed       DECIMAL(12,3) NOT NULL,
    acceleration        DECIMAL(10,4) NOT NULL,
    odometer            DECIMAL(12,3) NOT NULL,
    -- 1 when acceleration >= the configured threshold at ingest time. Kept as a column so
    -- the materialized view needs no parameter; changing the threshold means a full
    -- batch rebuild (batch-views {"full": true}) and re-ingest of the speed window.
    rapid_acceleration  SMALLINT      NOT NULL,
    latitude            DOUBLE PRECISION,
    longitude           DOUBLE PRECISION,
    shard_id            VARCHAR(128)  NOT NULL,
    sequence_number     VARCHAR(129)  NOT NULL,
    arrived_at          TIMESTAMP     NOT NULL DEFAULT GETDATE()
)
DISTSTYLE KEY
DISTKEY (vin)
COMPOUND SORTKEY (event_day, vin, ts);

-- Daily aggregates: the unit of merging between the layers. Refreshed by view-refresher
-- (REFRESH MATERIALIZED VIEW, every minute); served answers that must be up to the second
-- aggregate speed.telemetry directly. Dropped and re-created when this file changes (an MV
-- definition cannot be altered); CASCADE drops the views below, re-created right after —
-- other files must not build objects on this MV.
DROP MATERIALIZED VIEW IF EXISTS speed.vehicle_daily_mv CASCADE;
CREATE MATERIALIZED VIEW speed.vehicle_daily_mv
DISTKEY (vin)
SORTKEY (event_day, vin)
AUTO REFRESH NO
AS
SELECT vin,
       trip_id,
       event_day,
       COUNT(*)                AS readings,
       SUM(vehicle_speed)      AS sum_speed,
       MIN(odometer)           AS min_odometer,
       MAX(odometer)           AS max_odometer,
       SUM(rapid_acceleration) AS rapid_accelerations
FROM speed.telemetry
GROUP BY vin, trip_id, event_day;

-- The seed's speed views (its "rapid_acceleration_realtime" / "miles_driven_realtime"),
-- over the whole speed window. The serving layer restricts them to days >= the boundary.
CREATE OR REPLACE VIEW speed.rapid_acceleration_by_year AS
SELECT vin,
       CAST(EXTRACT(YEAR FROM event_day) AS INTEGER) AS year,
       SUM(rapid_accelerations)                      AS rapid_accelerations
FROM speed.vehicle_daily_mv
GROUP BY vin, CAST(EXTRACT(YEAR FROM event_day) AS INTEGER);

CREATE OR REPLACE VIEW speed.miles_by_year AS
SELECT vin,
       CAST(EXTRACT(YEAR FROM event_day) AS INTEGER)   AS year,
       SUM((max_odometer - min_odometer) * 0.621371)   AS miles
FROM speed.vehicle_daily_mv
GROUP BY vin, CAST(EXTRACT(YEAR FROM event_day) AS INTEGER);

-- Dropped first: CREATE OR REPLACE VIEW cannot change a column's type (avg_speed_kmh
-- gained a fixed scale), and nothing depends on this view.
DROP VIEW IF EXISTS speed.avg_speed_by_trip;
CREATE OR REPLACE VIEW speed.avg_speed_by_trip AS
SELECT vin,
       event_day,
       trip_id,
       readings,
       sum_speed,
       -- The dividend's scale fixes the result's: DECIMAL(38,3) / BIGINT would give
       -- DECIMAL(38,4) on Redshift ("Computations with numeric values",
       -- https://docs.aws.amazon.com/redshift/latest/dg/r_numeric_computations201.html),
       -- DECIMAL(38,12) / BIGINT gives scale 12 on Redshift and PostgreSQL alike.
       CAST(CAST(sum_speed AS DECIMAL(38,12)) / readings AS DECIMAL(38,12)) AS avg_speed_kmh
FROM speed.vehicle_daily_mv;
