-- fleetline: only SPEED_PATH=streaming-ingestion
-- The streaming-ingestion speed path (docs/design.md, "The streaming-ingestion speed path"):
-- Redshift reads the Kinesis stream itself into a streaming materialized view, and
-- view-refresher (every minute) validates the rows it has not loaded yet with the view
-- speed.telemetry_stream_checked and loads them into speed.telemetry, the table the Lambda
-- path fills. Applied only when the migrator's variable SPEED_PATH is streaming-ingestion.
-- Placeholders: STREAM_NAME (the Kinesis stream), STREAMING_IAM_ROLE (`default` or a quoted
-- role ARN, written by the migrator).
--
-- AWS documentation this file relies on:
-- [SI]  "Streaming ingestion to a materialized view",
--       https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion.html
--       (each REFRESH reads every shard from the last SEQUENCE_NUMBER of the previous refresh;
--       the first refresh starts at TRIM_HORIZON; data must be convertible from VARBYTE).
-- [GS]  "Getting started with streaming ingestion from Amazon Kinesis Data Streams",
--       https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion-getting-started.html
--       (CREATE EXTERNAL SCHEMA … FROM KINESIS IAM_ROLE, the metadata columns, JSON_PARSE of
--       kinesis_data guarded by CAN_JSON_PARSE, the role's Kinesis actions).
-- [EX]  "Ingesting streaming data using Kinesis",
--       https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion-example-station-data.html
--       (refresh_time column; DISTKEY/SORTKEY on a streaming materialized view).
-- [SC]  "SUPER configurations", https://docs.aws.amazon.com/redshift/latest/dg/super-configurations.html
--       (lax navigation: a missing attribute is NULL; mixed-case attributes need
--       enable_case_sensitive_identifier and double quotes; JSON_PARSE refuses duplicate
--       attributes unless json_parse_dedup_attributes is on, default off).
-- [CA]  "enable_case_sensitive_super_attribute",
--       https://docs.aws.amazon.com/redshift/latest/dg/r_enable_case_sensitive_super_attribute.html
--       (default false; views follow the value at the time of their creation).
-- [SO]  "Semistructured data in Amazon Redshift", https://docs.aws.amazon.com/redshift/latest/dg/super-overview.html
--       (json_parse('[10.5, "first"]') holds the Amazon Redshift decimal 10.5: JSON numbers
--       written without an exponent arrive as exact DECIMALs, never through a double).
-- [ID]  "IS_DECIMAL function", https://docs.aws.amazon.com/redshift/latest/dg/r_is_decimal.html
--       (true for numbers that are not floating points, integers included).
-- [NT]  "Numeric types", https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html
-- [TJ]  "JSON_EXTRACT_PATH_TEXT function",
--       https://docs.aws.amazon.com/redshift/latest/dg/JSON_EXTRACT_PATH_TEXT.html (the value's
--       text; read only from payloads CAN_JSON_PARSE accepted; at most 64 KB per record, "Streaming ingestion to a
--       materialized view" [SI]).
-- [VB]  "VARBYTE type", https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html
--       (at most 1,024,000 bytes; FROM_VARBYTE(…, 'utf-8' | 'hex')).
-- [DE]  "DELETE", https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html
--       (DELETE [FROM] { table_name | materialized_view_name }) and "TRUNCATE",
--       https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html (works on a streaming
--       materialized view): rows already loaded are deleted from the streaming view.

-- Attribute names are mixed case (VIN, vehicleSpeed): quoted names keep their case only with
-- enable_case_sensitive_identifier on [SC], and the view below keeps the value it was
-- created with [CA], so both are set for this file's session (the migrator runs a file in
-- one session) and the loader needs no setting of its own.
SET enable_case_sensitive_identifier TO true;
SET enable_case_sensitive_super_attribute TO true;

CREATE EXTERNAL SCHEMA IF NOT EXISTS kinesis_source
FROM KINESIS
IAM_ROLE ${STREAMING_IAM_ROLE};

-- One row per Kinesis record, as Redshift read it. kinesis_data is VARBYTE(1,024,000) [VB];
-- JSON_PARSE takes it directly [GS]. CAN_JSON_PARSE guards JSON_PARSE so that one bad
-- record (not JSON, a duplicated attribute [SC]) cannot fail the whole refresh; the row is
-- kept (payload NULL) so that it is dead-lettered, not lost. Re-created when this file
-- changes: the new view starts again at TRIM_HORIZON [SI], and the load watermark
-- (speed.stream_load_progress) skips what was already loaded.
DROP MATERIALIZED VIEW IF EXISTS speed.telemetry_stream CASCADE;
CREATE MATERIALIZED VIEW speed.telemetry_stream
DISTKEY (shard_id)
SORTKEY (shard_id, sequence_number)
AUTO REFRESH NO
AS
SELECT approximate_arrival_timestamp,
       partition_key,
       shard_id,
       sequence_number,
       refresh_time,
       kinesis_data,
       CAN_JSON_PARSE(kinesis_data) AS is_json,
       CASE WHEN CAN_JSON_PARSE(kinesis_data) THEN JSON_PARSE(kinesis_data) END AS payload
FROM kinesis_source."${STREAM_NAME}";

-- Per shard, the last sequence number loaded into speed.telemetry (or rejected).
CREATE TABLE IF NOT EXISTS speed.stream_load_progress (
    shard_id             VARCHAR(128) NOT NULL,
    last_sequence_number VARCHAR(129) NOT NULL,
    updated_at           TIMESTAMP    NOT NULL DEFAULT GETDATE()
)
DISTSTYLE ALL;

-- Records that failed validation, kept until written as dead letters (dead_lettered_at).
-- The data is kept as hex, FROM_VARBYTE(…, 'hex') [VB] of its first 32,000 bytes (a VARCHAR
-- holds at most 65,535 bytes), with its full length: a dead letter carries the same bytes.
CREATE TABLE IF NOT EXISTS speed.stream_rejects (
    shard_id                      VARCHAR(128)  NOT NULL,
    sequence_number               VARCHAR(129)  NOT NULL,
    approximate_arrival_timestamp TIMESTAMP     NOT NULL,
    partition_key                 VARCHAR(256),
    reject_reason                 VARCHAR(32)   NOT NULL,
    reject_field                  VARCHAR(32),
    reject_detail                 VARCHAR(256)  NOT NULL,
    data_hex                      VARCHAR(64000) NOT NULL,
    data_bytes                    INTEGER       NOT NULL,
    rejected_at                   TIMESTAMP     NOT NULL DEFAULT GETDATE(),
    dead_lettered_at              TIMESTAMP
)
DISTKEY (shard_id)
SORTKEY (shard_id, sequence_number);

-- One row per load: records = stored + rejected + duplicates, per run and in total.
CREATE TABLE IF NOT EXISTS speed.stream_load_runs (
    run_id     VARCHAR(36) NOT NULL,
    run_at     TIMESTAMP   NOT NULL,
    records    BIGINT      NOT NULL,
    stored     BIGINT      NOT NULL,
    rejected   BIGINT      NOT NULL,
    duplicates BIGINT      NOT NULL
)
DISTSTYLE ALL;

-- Validation in SQL, mirroring fleetline_core::validate::parse_and_validate: the same codes
-- (RejectReason::code), the same fields and the same order, first failure wins: not_json,
-- not_an_object, VIN, trip_id, timestamp, vehicleSpeed, acceleration, odometer, then the
-- optional fields. Differences that SQL cannot avoid are listed in docs/design.md.
--
-- Numbers: a measure is turned into its fixed-point integer (milli-km/h, ten-thousandths,
-- metres) by rounding half away from zero, spelled out with FLOOR so that no rounding rule
-- of CAST or ROUND is relied on [NT]. The exact source is the number's own text
-- (JSON_EXTRACT_PATH_TEXT [TJ]) when it has no exponent — exactly what the Rust validator
-- reads; else the SUPER value, exact when it is a DECIMAL [SO][ID], through a double when
-- JSON_PARSE made it a float (a documented difference). Magnitudes >= 1e15 are out of every
-- range and are refused before any exact cast, so no cast can overflow.
CREATE OR REPLACE VIEW speed.telemetry_stream_checked AS
SELECT shard_id,
       sequence_number,
       approximate_arrival_timestamp,
       refresh_time,
       partition_key,
       kinesis_data,
       reject_reason,
       reject_field,
       CASE WHEN reject_reason IS NULL THEN NULL
            WHEN reject_reason = 'not_json' THEN 'payload is not valid JSON (or not valid UTF-8)'
            WHEN reject_reason = 'not_an_object' THEN 'payload is ' || payload_type || ', not a JSON object'
            WHEN reject_reason = 'missing_field' THEN 'required field ' || reject_field || ' is missing'
            WHEN reject_reason = 'wrong_type' THEN reject_field || ' has the wrong JSON type'
            WHEN reject_reason = 'bad_vin' THEN 'VIN must be 17 characters of A-Z and 0-9'
            WHEN reject_reason = 'bad_trip_id' THEN 'trip_id must be 1..=64 UTF-8 bytes without control characters or backslashes'
            WHEN reject_reason = 'bad_timestamp' THEN 'timestamp is not in an accepted form'
            WHEN reject_reason = 'timestamp_too_old' THEN 'timestamp is before 2000-01-01T00:00:00Z'
            WHEN reject_reason = 'timestamp_in_future' THEN 'timestamp is more than 300s after now'
            WHEN reject_reason = 'out_of_range' THEN reject_field || ' is outside its range'
            ELSE reject_field || ' is not a finite number'
       END AS reject_detail,
       CASE WHEN reject_reason IS NULL THEN CAST(vin_s AS CHAR(17)) END AS vin,
       CASE WHEN reject_reason IS NULL THEN CAST(trip_s AS VARCHAR(64)) END AS trip_id,
       CASE WHEN reject_reason IS NULL THEN ts END AS ts,
       CASE WHEN reject_reason IS NULL THEN CAST(ts AS DATE) END AS event_day,
       CASE WHEN reject_reason IS NULL THEN CAST(CAST(speed_fx AS DECIMAL(18,0)) * 0.001 AS DECIMAL(12,3)) END AS vehicle_speed,
       CASE WHEN reject_reason IS NULL THEN CAST(CAST(accel_fx AS DECIMAL(18,0)) * 0.0001 AS DECIMAL(10,4)) END AS acceleration,
       CASE WHEN reject_reason IS NULL THEN CAST(CAST(odo_fx AS DECIMAL(18,0)) * 0.001 AS DECIMAL(12,3)) END AS odometer,
       CASE WHEN reject_reason IS NULL THEN lat_f END AS latitude,
       CASE WHEN reject_reason IS NULL THEN lon_f END AS longitude
FROM (
    SELECT v.*,
           SPLIT_PART(verdict, ':', 1) AS reject_reason,
           NULLIF(SPLIT_PART(verdict, ':', 2), '') AS reject_field
    FROM (
    -- The first failure as code:field (no field when it is the payload as a whole).
    SELECT c.*,
           CASE
               WHEN NOT is_json THEN 'not_json:'
               WHEN payload_type <> 'object' THEN 'not_an_object:'
               WHEN vin_t = 'null' THEN 'missing_field:VIN'
               WHEN vin_t <> 'string' THEN 'wrong_type:VIN'
               WHEN NOT (vin_s ~ '^[A-Z0-9]{17}$') THEN 'bad_vin:VIN'
               WHEN trip_t = 'null' THEN 'missing_field:trip_id'
               WHEN trip_t <> 'string' THEN 'wrong_type:trip_id'
               WHEN OCTET_LENGTH(trip_s) NOT BETWEEN 1 AND 64
                    OR POSITION(CHR(92) IN trip_s) > 0
                    OR trip_s ~ '[[:cntrl:]]' THEN 'bad_trip_id:trip_id'
               WHEN ts_t = 'null' THEN 'missing_field:timestamp'
               WHEN ts_t <> 'string' THEN 'wrong_type:timestamp'
               WHEN NOT ts_calendar THEN 'bad_timestamp:timestamp'
               WHEN ts IS NULL OR ts < CAST('2000-01-01 00:00:00' AS TIMESTAMP) THEN 'timestamp_too_old:timestamp'
               WHEN ts > DATEADD(minute, 5, GETDATE()) THEN 'timestamp_in_future:timestamp'
               WHEN speed_t = 'null' THEN 'missing_field:vehicleSpeed'
               WHEN speed_t <> 'number' AND speed_nonfinite THEN 'non_finite:vehicleSpeed'
               WHEN speed_t <> 'number' THEN 'wrong_type:vehicleSpeed'
               WHEN speed_fx IS NULL OR speed_fx NOT BETWEEN 0 AND 500000 THEN 'out_of_range:vehicleSpeed'
               WHEN accel_t = 'null' THEN 'missing_field:acceleration'
               WHEN accel_t <> 'number' AND accel_nonfinite THEN 'non_finite:acceleration'
               WHEN accel_t <> 'number' THEN 'wrong_type:acceleration'
               WHEN accel_fx IS NULL OR accel_fx NOT BETWEEN -1000000 AND 1000000 THEN 'out_of_range:acceleration'
               WHEN odo_t = 'null' THEN 'missing_field:odometer'
               WHEN odo_t <> 'number' AND odo_nonfinite THEN 'non_finite:odometer'
               WHEN odo_t <> 'number' THEN 'wrong_type:odometer'
               WHEN odo_fx IS NULL OR odo_fx NOT BETWEEN 0 AND 10000000000 THEN 'out_of_range:odometer'
               WHEN device_t NOT IN ('null', 'string') THEN 'wrong_type:_id_'
               WHEN engine_t NOT IN ('null', 'number') AND engine_nonfinite THEN 'non_finite:engineSpeed'
               WHEN engine_t NOT IN ('null', 'number') THEN 'wrong_type:engineSpeed'
               WHEN fuel_t NOT IN ('null', 'number') AND fuel_nonfinite THEN 'non_finite:fuelLevel'
               WHEN fuel_t NOT IN ('null', 'number') THEN 'wrong_type:fuelLevel'
               WHEN consumed_t NOT IN ('null', 'number') AND consumed_nonfinite THEN 'non_finite:fuelConsumedSinceRestart'
               WHEN consumed_t NOT IN ('null', 'number') THEN 'wrong_type:fuelConsumedSinceRestart'
               WHEN oil_t NOT IN ('null', 'number') AND oil_nonfinite THEN 'non_finite:oilTemp'
               WHEN oil_t NOT IN ('null', 'number') THEN 'wrong_type:oilTemp'
               WHEN brake_t NOT IN ('null', 'number') AND brake_nonfinite THEN 'non_finite:brake'
               WHEN brake_t NOT IN ('null', 'number') THEN 'wrong_type:brake'
               WHEN pedal_t NOT IN ('null', 'boolean') THEN 'wrong_type:brakePedalStatus'
               WHEN ignition_t NOT IN ('null', 'string') THEN 'wrong_type:ignitionStatus'
               WHEN gear_t NOT IN ('null', 'string') THEN 'wrong_type:transmissionGearPosition'
               WHEN loc_t = 'null' THEN NULL
               WHEN loc_t <> 'object' THEN 'wrong_type:location'
               WHEN lat_t NOT IN ('null', 'number') AND lat_nonfinite THEN 'non_finite:location.latitude'
               WHEN lat_t NOT IN ('null', 'number') THEN 'wrong_type:location.latitude'
               WHEN lat_t = 'null' THEN 'missing_field:location.latitude'
               WHEN lat_f NOT BETWEEN -90 AND 90 THEN 'out_of_range:location.latitude'
               WHEN lon_t NOT IN ('null', 'number') AND lon_nonfinite THEN 'non_finite:location.longitude'
               WHEN lon_t NOT IN ('null', 'number') THEN 'wrong_type:location.longitude'
               WHEN lon_t = 'null' THEN 'missing_field:location.longitude'
               WHEN lon_f NOT BETWEEN -180 AND 180 THEN 'out_of_range:location.longitude'
           END AS verdict
    FROM (
        -- The timestamp: calendar checks, then UTC (wall clock, fraction truncated to
        -- microseconds, minus the offset).
        SELECT b.*,
               CASE WHEN ts_shape THEN
                   CAST(SUBSTRING(ts_s, 6, 2) AS INTEGER) BETWEEN 1 AND 12
                   AND CAST(SUBSTRING(ts_s, 9, 2) AS INTEGER) BETWEEN 1 AND
                       CASE WHEN CAST(SUBSTRING(ts_s, 6, 2) AS INTEGER) = 2 THEN
                                CASE WHEN MOD(CAST(SUBSTRING(ts_s, 1, 4) AS INTEGER), 4) = 0
                                          AND (MOD(CAST(SUBSTRING(ts_s, 1, 4) AS INTEGER), 100) <> 0
                                               OR MOD(CAST(SUBSTRING(ts_s, 1, 4) AS INTEGER), 400) = 0)
                                     THEN 29 ELSE 28 END
                            WHEN CAST(SUBSTRING(ts_s, 6, 2) AS INTEGER) IN (4, 6, 9, 11) THEN 30
                            ELSE 31 END
                   AND CAST(SUBSTRING(ts_s, 12, 2) AS INTEGER) <= 23
                   AND CAST(SUBSTRING(ts_s, 15, 2) AS INTEGER) <= 59
                   AND CAST(SUBSTRING(ts_s, 18, 2) AS INTEGER) <= 59
                   AND (ts_zone IS NULL OR ts_zone IN ('Z', 'z')
                        OR (CAST(SUBSTRING(ts_zone, 2, 2) AS INTEGER) <= 23
                            AND CAST(SUBSTRING(ts_zone, 5, 2) AS INTEGER) <= 59))
               ELSE false END AS ts_calendar,
               -- Years before 1999 are too old whatever the offset; later ones are computed
               -- (wall clock, fraction truncated to microseconds, minus the offset).
               CASE WHEN ts_shape AND CAST(SUBSTRING(ts_s, 1, 4) AS INTEGER) >= 1999 THEN
                   DATEADD(minute,
                           CASE WHEN ts_zone IS NULL OR ts_zone IN ('Z', 'z') THEN 0
                                ELSE (CASE WHEN SUBSTRING(ts_zone, 1, 1) = '-' THEN 1 ELSE -1 END)
                                     * (CAST(SUBSTRING(ts_zone, 2, 2) AS INTEGER) * 60
                                        + CAST(SUBSTRING(ts_zone, 5, 2) AS INTEGER)) END,
                           DATEADD(microsecond,
                                   CASE WHEN ts_frac IS NULL THEN 0
                                        ELSE CAST(SUBSTRING(RPAD(SUBSTRING(ts_frac, 2), 9, '0'), 1, 6) AS INTEGER) END,
                                   CAST(SUBSTRING(ts_s, 1, 10) || ' ' || SUBSTRING(ts_s, 12, 8) AS TIMESTAMP)))
               END AS ts
        FROM (
            SELECT a.*,
                   -- Shape of the accepted forms: "YYYY-MM-DD HH:MM:SS[.f{1,9}][zone]" or
                   -- "YYYY-MM-DDTHH:MM:SS[.f{1,9}]zone", zone Z or ±HH:MM.
                   COALESCE(ts_s ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([ ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?|[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))$', false) AS ts_shape,
                   NULLIF(REGEXP_SUBSTR(SUBSTRING(ts_s, 20), '^[.][0-9]+'), '') AS ts_frac,
                   NULLIF(REGEXP_SUBSTR(SUBSTRING(ts_s, 20), '([Zz]|[+-][0-9]{2}:[0-9]{2})$'), '') AS ts_zone,
                   COALESCE(LOWER(BTRIM(speed_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS speed_nonfinite,
                   COALESCE(LOWER(BTRIM(accel_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS accel_nonfinite,
                   COALESCE(LOWER(BTRIM(odo_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS odo_nonfinite,
                   COALESCE(LOWER(BTRIM(engine_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS engine_nonfinite,
                   COALESCE(LOWER(BTRIM(fuel_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS fuel_nonfinite,
                   COALESCE(LOWER(BTRIM(consumed_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS consumed_nonfinite,
                   COALESCE(LOWER(BTRIM(oil_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS oil_nonfinite,
                   COALESCE(LOWER(BTRIM(brake_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS brake_nonfinite,
                   COALESCE(LOWER(BTRIM(lat_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS lat_nonfinite,
                   COALESCE(LOWER(BTRIM(lon_str)) ~ '^[+-]?(nan|inf|infinity)$', false) AS lon_nonfinite,
                   -- Fixed point, half away from zero: from the number's text, else the
                   -- SUPER DECIMAL, else the double; NULL (out of range) from 1e15 on.
                   CASE WHEN speed_d IS NULL OR ABS(speed_d) >= 1e15 THEN NULL
                        WHEN speed_txt ~ '^-?[0-9]+([.][0-9]+)?$' THEN CAST(SIGN(CAST(speed_txt AS DECIMAL(38,18))) * FLOOR(ABS(CAST(speed_txt AS DECIMAL(38,18))) * 1000 + 0.5) AS BIGINT)
                        WHEN speed_dec IS NOT NULL THEN CAST(SIGN(speed_dec) * FLOOR(ABS(speed_dec) * 1000 + 0.5) AS BIGINT)
                        ELSE CAST(SIGN(speed_d) * FLOOR(ABS(speed_d) * 1000 + 0.5) AS BIGINT)
                   END AS speed_fx,
                   CASE WHEN accel_d IS NULL OR ABS(accel_d) >= 1e15 THEN NULL
                        WHEN accel_txt ~ '^-?[0-9]+([.][0-9]+)?$' THEN CAST(SIGN(CAST(accel_txt AS DECIMAL(38,18))) * FLOOR(ABS(CAST(accel_txt AS DECIMAL(38,18))) * 10000 + 0.5) AS BIGINT)
                        WHEN accel_dec IS NOT NULL THEN CAST(SIGN(accel_dec) * FLOOR(ABS(accel_dec) * 10000 + 0.5) AS BIGINT)
                        ELSE CAST(SIGN(accel_d) * FLOOR(ABS(accel_d) * 10000 + 0.5) AS BIGINT)
                   END AS accel_fx,
                   CASE WHEN odo_d IS NULL OR ABS(odo_d) >= 1e15 THEN NULL
                        WHEN odo_txt ~ '^-?[0-9]+([.][0-9]+)?$' THEN CAST(SIGN(CAST(odo_txt AS DECIMAL(38,18))) * FLOOR(ABS(CAST(odo_txt AS DECIMAL(38,18))) * 1000 + 0.5) AS BIGINT)
                        WHEN odo_dec IS NOT NULL THEN CAST(SIGN(odo_dec) * FLOOR(ABS(odo_dec) * 1000 + 0.5) AS BIGINT)
                        ELSE CAST(SIGN(odo_d) * FLOOR(ABS(odo_d) * 1000 + 0.5) AS BIGINT)
                   END AS odo_fx,
                   lat_d AS lat_f,
                   lon_d AS lon_f
            FROM (
                -- Plain values straight from navigation (lax [SC]: an absent attribute is
                -- NULL; JSON null has JSON_TYPEOF 'null'; both are "absent"); casts are
                -- guarded by the dynamic type, so none can fail.
                SELECT s.shard_id,
                       s.sequence_number,
                       s.approximate_arrival_timestamp,
                       s.refresh_time,
                       s.partition_key,
                       s.kinesis_data,
                       s.is_json,
                       COALESCE(JSON_TYPEOF(s.payload), 'null') AS payload_type,
                       COALESCE(JSON_TYPEOF(s.payload."VIN"), 'null') AS vin_t,
                       COALESCE(JSON_TYPEOF(s.payload."trip_id"), 'null') AS trip_t,
                       COALESCE(JSON_TYPEOF(s.payload."timestamp"), 'null') AS ts_t,
                       COALESCE(JSON_TYPEOF(s.payload."vehicleSpeed"), 'null') AS speed_t,
                       COALESCE(JSON_TYPEOF(s.payload."acceleration"), 'null') AS accel_t,
                       COALESCE(JSON_TYPEOF(s.payload."odometer"), 'null') AS odo_t,
                       COALESCE(JSON_TYPEOF(s.payload."_id_"), 'null') AS device_t,
                       COALESCE(JSON_TYPEOF(s.payload."engineSpeed"), 'null') AS engine_t,
                       COALESCE(JSON_TYPEOF(s.payload."fuelLevel"), 'null') AS fuel_t,
                       COALESCE(JSON_TYPEOF(s.payload."fuelConsumedSinceRestart"), 'null') AS consumed_t,
                       COALESCE(JSON_TYPEOF(s.payload."oilTemp"), 'null') AS oil_t,
                       COALESCE(JSON_TYPEOF(s.payload."brake"), 'null') AS brake_t,
                       COALESCE(JSON_TYPEOF(s.payload."brakePedalStatus"), 'null') AS pedal_t,
                       COALESCE(JSON_TYPEOF(s.payload."ignitionStatus"), 'null') AS ignition_t,
                       COALESCE(JSON_TYPEOF(s.payload."transmissionGearPosition"), 'null') AS gear_t,
                       COALESCE(JSON_TYPEOF(s.payload."location"), 'null') AS loc_t,
                       COALESCE(JSON_TYPEOF(s.payload."location"."latitude"), 'null') AS lat_t,
                       COALESCE(JSON_TYPEOF(s.payload."location"."longitude"), 'null') AS lon_t,
                       CASE WHEN JSON_TYPEOF(s.payload."VIN") = 'string' THEN CAST(s.payload."VIN" AS VARCHAR(65535)) END AS vin_s,
                       CASE WHEN JSON_TYPEOF(s.payload."trip_id") = 'string' THEN CAST(s.payload."trip_id" AS VARCHAR(65535)) END AS trip_s,
                       CASE WHEN JSON_TYPEOF(s.payload."timestamp") = 'string' THEN CAST(s.payload."timestamp" AS VARCHAR(65535)) END AS ts_s,
                       CASE WHEN JSON_TYPEOF(s.payload."vehicleSpeed") = 'string' THEN CAST(s.payload."vehicleSpeed" AS VARCHAR(65535)) END AS speed_str,
                       CASE WHEN JSON_TYPEOF(s.payload."acceleration") = 'string' THEN CAST(s.payload."acceleration" AS VARCHAR(65535)) END AS accel_str,
                       CASE WHEN JSON_TYPEOF(s.payload."odometer") = 'string' THEN CAST(s.payload."odometer" AS VARCHAR(65535)) END AS odo_str,
                       CASE WHEN JSON_TYPEOF(s.payload."engineSpeed") = 'string' THEN CAST(s.payload."engineSpeed" AS VARCHAR(65535)) END AS engine_str,
                       CASE WHEN JSON_TYPEOF(s.payload."fuelLevel") = 'string' THEN CAST(s.payload."fuelLevel" AS VARCHAR(65535)) END AS fuel_str,
                       CASE WHEN JSON_TYPEOF(s.payload."fuelConsumedSinceRestart") = 'string' THEN CAST(s.payload."fuelConsumedSinceRestart" AS VARCHAR(65535)) END AS consumed_str,
                       CASE WHEN JSON_TYPEOF(s.payload."oilTemp") = 'string' THEN CAST(s.payload."oilTemp" AS VARCHAR(65535)) END AS oil_str,
                       CASE WHEN JSON_TYPEOF(s.payload."brake") = 'string' THEN CAST(s.payload."brake" AS VARCHAR(65535)) END AS brake_str,
                       CASE WHEN JSON_TYPEOF(s.payload."location"."latitude") = 'string' THEN CAST(s.payload."location"."latitude" AS VARCHAR(65535)) END AS lat_str,
                       CASE WHEN JSON_TYPEOF(s.payload."location"."longitude") = 'string' THEN CAST(s.payload."location"."longitude" AS VARCHAR(65535)) END AS lon_str,
                       CASE WHEN JSON_TYPEOF(s.payload."vehicleSpeed") = 'number' THEN CAST(s.payload."vehicleSpeed" AS DOUBLE PRECISION) END AS speed_d,
                       CASE WHEN JSON_TYPEOF(s.payload."acceleration") = 'number' THEN CAST(s.payload."acceleration" AS DOUBLE PRECISION) END AS accel_d,
                       CASE WHEN JSON_TYPEOF(s.payload."odometer") = 'number' THEN CAST(s.payload."odometer" AS DOUBLE PRECISION) END AS odo_d,
                       CASE WHEN JSON_TYPEOF(s.payload."location"."latitude") = 'number' THEN CAST(s.payload."location"."latitude" AS DOUBLE PRECISION) END AS lat_d,
                       CASE WHEN JSON_TYPEOF(s.payload."location"."longitude") = 'number' THEN CAST(s.payload."location"."longitude" AS DOUBLE PRECISION) END AS lon_d,
                       CASE WHEN IS_DECIMAL(s.payload."vehicleSpeed") AND ABS(CAST(s.payload."vehicleSpeed" AS DOUBLE PRECISION)) < 1e15
                            THEN CAST(s.payload."vehicleSpeed" AS DECIMAL(38,18)) END AS speed_dec,
                       CASE WHEN IS_DECIMAL(s.payload."acceleration") AND ABS(CAST(s.payload."acceleration" AS DOUBLE PRECISION)) < 1e15
                            THEN CAST(s.payload."acceleration" AS DECIMAL(38,18)) END AS accel_dec,
                       CASE WHEN IS_DECIMAL(s.payload."odometer") AND ABS(CAST(s.payload."odometer" AS DOUBLE PRECISION)) < 1e15
                            THEN CAST(s.payload."odometer" AS DECIMAL(38,18)) END AS odo_dec,
                       -- The measures' number text, for exact decimals whatever SUPER made of
                       -- them (JSON_EXTRACT_PATH_TEXT reads at most 64 KB [TJ]).
                       CASE WHEN JSON_TYPEOF(s.payload."vehicleSpeed") = 'number' AND OCTET_LENGTH(s.kinesis_data) <= 65535
                            THEN JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(s.kinesis_data, 'utf-8'), 'vehicleSpeed') END AS speed_txt,
                       CASE WHEN JSON_TYPEOF(s.payload."acceleration") = 'number' AND OCTET_LENGTH(s.kinesis_data) <= 65535
                            THEN JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(s.kinesis_data, 'utf-8'), 'acceleration') END AS accel_txt,
                       CASE WHEN JSON_TYPEOF(s.payload."odometer") = 'number' AND OCTET_LENGTH(s.kinesis_data) <= 65535
                            THEN JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(s.kinesis_data, 'utf-8'), 'odometer') END AS odo_txt
                FROM speed.telemetry_stream s
            ) a
        ) b
    ) c
    ) v
) checked;
