-- Gives batch.batchlayer_rapid_acceleration_by_year (20_batch_layer.sql) its miles column
-- where the table existed before the column (CREATE TABLE IF NOT EXISTS leaves it as it
-- was), then fills it: batch.rapid_acceleration_by_year_sp rebuilds the whole table. One
-- transaction: readers see the old rows or the complete new ones. Redshift has no ADD
-- COLUMN IF NOT EXISTS, hence the catalog check; ALTER TABLE ADD COLUMN may run in a
-- transaction block (only external tables may not: "ALTER TABLE",
-- https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html), and a NOT NULL
-- column added to a table with rows needs a DEFAULT. Re-runnable; runs again only when
-- this file changes. Since 2026-12-07.

CREATE OR REPLACE PROCEDURE batch.add_vehicle_year_miles()
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = 'batch'
                     AND table_name = 'batchlayer_rapid_acceleration_by_year'
                     AND column_name = 'miles') THEN
        EXECUTE 'ALTER TABLE batch.batchlayer_rapid_acceleration_by_year '
             || 'ADD COLUMN miles DECIMAL(38,9) DEFAULT 0 NOT NULL';
    END IF;
END;
$$ LANGUAGE plpgsql;

CALL batch.add_vehicle_year_miles();

DROP PROCEDURE batch.add_vehicle_year_miles();

CALL batch.rapid_acceleration_by_year_sp();
