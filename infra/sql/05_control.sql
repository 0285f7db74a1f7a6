-- Serving-layer control row: the time boundary between the batch and speed layers and the
-- bookkeeping of the jobs that move it. Exactly one row.
--   boundary              first day owned by the speed layer; NULL until the first batch
--                         run (then every served answer comes from the speed layer)
--   last_batch_run_at     set by batch-views, in the transaction that swaps in batch rows
--   last_batch_summary    batch-views' JSON summary of that run
--   last_view_refresh_at  set by view-refresher after all speed materialized views refreshed
-- Valid Amazon Redshift SQL; re-runnable (the local emulator runs it on PostgreSQL).

CREATE SCHEMA IF NOT EXISTS serving;

CREATE TABLE IF NOT EXISTS serving.control (
    boundary              DATE,
    last_batch_run_at     TIMESTAMP,
    last_batch_summary    VARCHAR(4096),
    last_view_refresh_at  TIMESTAMP
)
DISTSTYLE ALL;

-- The single row, only if missing. (A derived table rather than a FROM-less SELECT with a
-- WHERE clause, which not every Redshift release accepts.)
INSERT INTO serving.control (boundary, last_batch_run_at, last_batch_summary, last_view_refresh_at)
SELECT CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS VARCHAR(4096)), CAST(NULL AS TIMESTAMP)
FROM (SELECT COUNT(*) AS n FROM serving.control) AS existing
WHERE existing.n = 0;
