//! A small pool of tokio-postgres connections per database. The first connection to a
//! database installs the emulator's catalog schema and the Redshift compatibility
//! functions there.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

use crate::external::CATALOG_DDL;

pub struct Conn {
    pub client: Client,
    pub pid: i32,
}

struct DbPool {
    name: String,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    ready: OnceCell<()>,
}

pub struct Pools {
    base: Config,
    max_per_db: usize,
    dbs: Mutex<HashMap<String, Arc<DbPool>>>,
}

/// A connection on loan; it goes back to the pool on drop unless marked broken.
pub struct Lease {
    conn: Option<Conn>,
    pool: Arc<DbPool>,
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// Don't reuse this connection (its transaction state is unknown).
    pub fn discard(&mut self) {
        self.broken = true;
    }
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
            && !self.broken
            && !c.client.is_closed()
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
"#;

impl Pools {
    pub fn new(base: Config, max_per_db: usize) -> Self {
        Self {
            base,
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
        cfg.dbname(db)
            .application_name("redshift-data-emulator")
            .options("-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres");
        let (client, connection) = cfg.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection closed");
            }
        });
        let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
        Ok(Conn {
            client,
            pid: row.get(0),
        })
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
        pool.ready
            .get_or_try_init(|| async {
                // One transaction with an advisory lock: several emulators (or test
                // runs) may bootstrap the same database at once.
                let sql = format!("BEGIN; SELECT pg_advisory_xact_lock(7460001); {CATALOG_DDL} {COMPAT_DDL} COMMIT;");
                let r = conn.client.batch_execute(&sql).await;
                if r.is_err() {
                    let _ = conn.client.batch_execute("ROLLBACK").await;
                }
                tracing::info!(database = %pool.name, ok = r.is_ok(), "bootstrapped database");
                r
            })
            .await?;
        Ok(Lease {
            conn: Some(conn),
            pool,
            broken: false,
            _permit: permit,
        })
    }
}
