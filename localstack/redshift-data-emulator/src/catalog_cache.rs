//! Per-database facts the SQL rewrites need on many statements (SUPER column names,
//! streaming views, Kinesis schemas), read from PostgreSQL once and kept until a DDL
//! statement may have changed them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio_postgres::Client;

use crate::error::ExecError;
use crate::streaming::StreamingCatalog;

#[derive(Debug, Default)]
pub struct DbCatalog {
    /// Names of the columns typed SUPER (jsonb underneath) in user relations.
    pub super_columns: HashSet<String>,
    pub streaming: StreamingCatalog,
}

#[derive(Default)]
pub struct CatalogCache {
    dbs: Mutex<HashMap<String, Arc<DbCatalog>>>,
}

const SUPER_COLUMNS: &str = "SELECT DISTINCT a.attname::text FROM pg_attribute a \
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p') \
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_emulator') \
    AND (a.atttypid = 'jsonb'::regtype OR a.atttypid = to_regtype('public.super'))";

impl CatalogCache {
    /// The facts of `database`, read through `client` when not cached.
    pub async fn get(&self, database: &str, client: &Client) -> Result<Arc<DbCatalog>, ExecError> {
        if let Some(c) = self.lock().get(database) {
            return Ok(c.clone());
        }
        let super_columns = client
            .query(SUPER_COLUMNS, &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let loaded = Arc::new(DbCatalog {
            super_columns,
            streaming: StreamingCatalog::load(client).await?,
        });
        self.lock().insert(database.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// Forgets `database`'s facts (after DDL).
    pub fn invalidate(&self, database: &str) {
        self.lock().remove(database);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DbCatalog>>> {
        self.dbs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
