//! A small pool of tokio-postgres connections per database. The first connection to a
//! database installs the emulator's catalog schema and the Redshift compatibility
//! functions there.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

use crate::conn::Conn;
use crate::external::CATALOG_DDL;
use crate::streaming::STREAMING_DDL;
use crate::super_ddl::SUPER_DDL;

struct DbPool {
    name: String,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    ready: OnceCell<()>,
}

pub struct Pools {
    base: Config,
    strict: bool,
    max_per_db: usize,
    dbs: Mutex<HashMap<String, Arc<DbPool>>>,
}

/// A connection on loan; it goes back to the pool on drop unless discarded
/// ([`Conn::discard`]).
pub struct Lease {
    conn: Option<Conn>,
    pool: Arc<DbPool>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Lease {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Only taken in Drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("lease used after drop"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && c.is_reusable()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
        }
    }
}

/// Compatibility functions: Redshift built-ins PostgreSQL lacks. Sessions run in UTC,
/// like Redshift.
const COMPAT_DDL: &str = r#"
CREATE OR REPLACE FUNCTION public.getdate() RETURNS timestamp
  LANGUAGE sql STABLE AS $f$ SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC') $f$;
CREATE OR REPLACE FUNCTION public.sysdate() RETURNS timestamp
  LANGUAGE sql STABLE AS $f$ SELECT transaction_timestamp() AT TIME ZONE 'UTC' $f$;
CREATE OR REPLACE FUNCTION public.nvl(anycompatible, anycompatible) RETURNS anycompatible
  LANGUAGE sql IMMUTABLE AS $f$ SELECT coalesce($1, $2) $f$;
CREATE OR REPLACE FUNCTION public.nvl2(anyelement, anycompatible, anycompatible) RETURNS anycompatible
  LANGUAGE sql IMMUTABLE AS $f$ SELECT CASE WHEN $1 IS NOT NULL THEN $2 ELSE $3 END $f$;
CREATE OR REPLACE FUNCTION public.len(text) RETURNS integer
  LANGUAGE sql IMMUTABLE AS $f$ SELECT char_length($1) $f$;
CREATE OR REPLACE FUNCTION public.json_extract_path_text(text, VARIADIC text[]) RETURNS text
  LANGUAGE sql IMMUTABLE AS $f$ SELECT pg_catalog.json_extract_path_text($1::json, VARIADIC $2) $f$;
CREATE OR REPLACE FUNCTION public.convert_timezone(text, text, timestamp) RETURNS timestamp
  LANGUAGE sql IMMUTABLE AS $f$ SELECT ($3 AT TIME ZONE $1) AT TIME ZONE $2 $f$;
CREATE OR REPLACE FUNCTION public.convert_timezone(text, timestamp) RETURNS timestamp
  LANGUAGE sql IMMUTABLE AS $f$ SELECT ($2 AT TIME ZONE 'UTC') AT TIME ZONE $1 $f$;
-- Redshift's datepart names and abbreviations ("Date parts for date or timestamp functions").
CREATE OR REPLACE FUNCTION public._rs_datepart(text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
  RETURN CASE
    WHEN $1 IN ('millennium','millennia','mil','mils') THEN 'millennium'
    WHEN $1 IN ('century','centuries','c','cent','cents') THEN 'century'
    WHEN $1 IN ('decade','decades','dec','decs') THEN 'decade'
    WHEN $1 IN ('year','years','y','yr','yrs','yy','yyy','yyyy') THEN 'year'
    WHEN $1 IN ('quarter','quarters','qtr','qtrs','q') THEN 'quarter'
    WHEN $1 IN ('month','months','mon','mons','mm') THEN 'month'
    WHEN $1 IN ('week','weeks','w','wk','wks') THEN 'week'
    WHEN $1 IN ('day','days','d','dd') THEN 'day'
    WHEN $1 IN ('hour','hours','h','hh','hr','hrs') THEN 'hour'
    WHEN $1 IN ('minute','minutes','m','mi','min','mins') THEN 'minute'
    WHEN $1 IN ('second','seconds','s','sec','secs') THEN 'second'
    WHEN $1 IN ('millisecond','milliseconds','ms','msec','msecs','msecond','mseconds','millisec','millisecs','millisecon') THEN 'millisecond'
    WHEN $1 IN ('microsecond','microseconds','microsec','microsecs','microsecond','usecond','useconds','us','usec','usecs') THEN 'microsecond'
  END;
END $f$;
CREATE OR REPLACE FUNCTION public.dateadd(text, bigint, timestamp) RETURNS timestamp
  LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE p text := public._rs_datepart(lower($1));
BEGIN
  IF p IS NULL THEN RAISE EXCEPTION 'Invalid datepart: %', $1; END IF;
  IF p = 'quarter' THEN RETURN $3 + make_interval(months => 3 * $2::int); END IF;
  RETURN $3 + ($2::text || ' ' || p)::interval;
END $f$;
-- The number of datepart boundaries crossed between $2 and $3 ("DATEDIFF function").
CREATE OR REPLACE FUNCTION public.datediff(text, timestamp, timestamp) RETURNS bigint
  LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE p text := public._rs_datepart(lower($1));
BEGIN
  IF p IS NULL THEN RAISE EXCEPTION 'Invalid datepart: %', $1; END IF;
  RETURN CASE p
    WHEN 'year' THEN extract(year FROM $3) - extract(year FROM $2)
    WHEN 'quarter' THEN (extract(year FROM $3) * 4 + extract(quarter FROM $3)) - (extract(year FROM $2) * 4 + extract(quarter FROM $2))
    WHEN 'month' THEN (extract(year FROM $3) * 12 + extract(month FROM $3)) - (extract(year FROM $2) * 12 + extract(month FROM $2))
    WHEN 'week' THEN (date_trunc('week', $3)::date - date_trunc('week', $2)::date) / 7
    WHEN 'day' THEN $3::date - $2::date
    WHEN 'hour' THEN (extract(epoch FROM date_trunc('hour', $3)) - extract(epoch FROM date_trunc('hour', $2))) / 3600
    WHEN 'minute' THEN (extract(epoch FROM date_trunc('minute', $3)) - extract(epoch FROM date_trunc('minute', $2))) / 60
    WHEN 'second' THEN extract(epoch FROM date_trunc('second', $3)) - extract(epoch FROM date_trunc('second', $2))
    WHEN 'millisecond' THEN (extract(epoch FROM date_trunc('milliseconds', $3)) - extract(epoch FROM date_trunc('milliseconds', $2))) * 1000
    WHEN 'microsecond' THEN (extract(epoch FROM $3) - extract(epoch FROM $2)) * 1000000
    WHEN 'decade' THEN floor(extract(year FROM $3) / 10) - floor(extract(year FROM $2) / 10)
    WHEN 'century' THEN extract(century FROM $3) - extract(century FROM $2)
    ELSE extract(millennium FROM $3) - extract(millennium FROM $2)
  END;
END $f$;
"#;

impl Pools {
    pub fn new(base: Config, max_per_db: usize, strict: bool) -> Self {
        Self {
            base,
            strict,
            max_per_db,
            dbs: Mutex::new(HashMap::new()),
        }
    }

    fn pool(&self, db: &str) -> Arc<DbPool> {
        let mut dbs = self.dbs.lock().unwrap_or_else(|e| e.into_inner());
        dbs.entry(db.to_string())
            .or_insert_with(|| {
                Arc::new(DbPool {
                    name: db.to_string(),
                    idle: Mutex::new(Vec::new()),
                    permits: Arc::new(Semaphore::new(self.max_per_db)),
                    ready: OnceCell::new(),
                })
            })
            .clone()
    }

    async fn connect(&self, db: &str) -> Result<Conn, tokio_postgres::Error> {
        let mut cfg = self.base.clone();
        // Strict: Redshift Serverless runs SNAPSHOT isolation by default ("Isolation levels
        // in Amazon Redshift", https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html;
        // What's New 2022-05-17, "Amazon Redshift adds support for snapshot isolation").
        // PostgreSQL's REPEATABLE READ is snapshot isolation: the snapshot is taken at the
        // transaction's first query or DML statement (not at BEGIN or LOCK), and a write
        // to a row changed by a concurrent committed transaction fails with 40001.
        let isolation = if self.strict {
            " -c default_transaction_isolation=repeatable\\ read"
        } else {
            ""
        };
        cfg.dbname(db)
            .application_name("redshift-data-emulator")
            .options(format!(
                "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres{isolation}"
            ));
        let (client, connection) = cfg.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection closed");
            }
        });
        let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
        Ok(Conn::new(client, row.get(0)))
    }

    /// Borrows a connection to `db`, waiting while all are in use.
    pub async fn get(&self, db: &str) -> Result<Lease, tokio_postgres::Error> {
        let pool = self.pool(db);
        let permit = pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("pool semaphore is never closed"));
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect(db).await?,
        };
        // A failed bootstrap returns here and drops the connection unpooled: closing it
        // ends its transaction.
        pool.ready
            .get_or_try_init(|| bootstrap(&conn.client, &pool.name))
            .await?;
        Ok(Lease {
            conn: Some(conn),
            pool,
            _permit: permit,
        })
    }
}

/// Installs the catalog schema and the compatibility functions in one transaction with
/// an advisory lock: several emulators (or test runs) may bootstrap the same database
/// at once.
async fn bootstrap(client: &Client, database: &str) -> Result<(), tokio_postgres::Error> {
    let sql = format!(
        "BEGIN; SELECT pg_advisory_xact_lock(7460001); {CATALOG_DDL} {STREAMING_DDL} {COMPAT_DDL} {SUPER_DDL} COMMIT;"
    );
    let r = client.batch_execute(&sql).await;
    tracing::info!(%database, ok = r.is_ok(), "bootstrapped database");
    r
}
