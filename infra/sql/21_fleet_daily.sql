-- Fills batch.fleet_daily (20_batch_layer.sql) for the days batch.vehicle_daily already
-- holds: a deployment that had batch rows before the table existed serves the same fleet
-- answers from its first request. One transaction (no marker): readers see the table
-- either as before or complete. Re-runnable; runs again only when this file changes, so
-- change it (e.g. this comment's date) when batch.refresh_fleet_daily changes what it sums.
-- Since 2026-12-07.
--
-- The reader role can SELECT the new table without a grant: 30_access.sql's ALTER DEFAULT
-- PRIVILEGES covers tables the same admin creates later ("ALTER DEFAULT PRIVILEGES",
-- https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_DEFAULT_PRIVILEGES.html).

CALL batch.refresh_fleet_daily(CAST('0001-01-01' AS DATE), CAST('9999-12-31' AS DATE));
