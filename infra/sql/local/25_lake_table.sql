-- LOCAL STACK ONLY (applied by localstack/up after infra/sql): the lake table that the
-- template's AWS::Glue::Table `vehicle_telematics_raw` provides on AWS. Same columns as
-- that Glue table and the Parquet objects lake-writer writes (docs/contracts.md "Lake").
-- Placeholders (localstack/apply-sql --var): LAKE_BUCKET, LAKE_PREFIX (ends with /).
-- fleetline:no-transaction
-- `raw` is a Redshift reserved word ("Reserved words",
-- https://docs.aws.amazon.com/redshift/latest/dg/r_pg_keywords.html), hence quoted.

CREATE EXTERNAL TABLE IF NOT EXISTS spectrum.vehicle_telematics_raw (
    vin             VARCHAR(17),
    trip_id         VARCHAR(64),
    ts              TIMESTAMP,
    event_day       DATE,
    vehicle_speed   DECIMAL(12,3),
    acceleration    DECIMAL(10,4),
    odometer        DECIMAL(12,3),
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION,
    shard_id        VARCHAR(128),
    sequence_number VARCHAR(129),
    "raw"           VARCHAR(65535)
)
PARTITIONED BY (year INTEGER, month INTEGER, day INTEGER)
STORED AS PARQUET
LOCATION 's3://${LAKE_BUCKET}/${LAKE_PREFIX}';
