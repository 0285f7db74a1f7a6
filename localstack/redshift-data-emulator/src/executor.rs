//! Runs statements in the background: borrows a connection, translates the SQL, syncs
//! the external tables it reads, executes it and records the outcome in the store.

use std::sync::Arc;

use tokio_postgres::{NoTls, SimpleQueryMessage};
use uuid::Uuid;

use crate::catalog_cache::CatalogCache;
use crate::conn::Conn;
use crate::error::ExecError;
use crate::external;
use crate::lake::Lake;
use crate::lexer::{Token, join, split_statements, tokenize};
use crate::pool::{Lease, Pools};
use crate::sql_translate::translate_tokens;
use crate::store::{Execution, ResultSet, Status, Store};
use crate::streaming::{self, Kinesis, Streaming};
use crate::strict;
use crate::super_sql::{self, CaseRules};
use crate::values::ColumnInfo;

pub struct Engine {
    pub pools: Pools,
    pub lake: Lake,
    pub store: Store,
    /// Strict mode (src/strict.rs).
    pub strict: bool,
    /// Streaming ingestion's source (src/streaming/).
    pub kinesis: Kinesis,
    pub catalogs: CatalogCache,
}

/// What lasts for one Data API call (an ExecuteStatement's statements, or all members of
/// a BatchExecuteStatement): the database and the session settings Redshift keeps per
/// session.
#[derive(Debug, Default)]
pub struct Session {
    pub database: String,
    pub rules: CaseRules,
    /// A statement of this call was DDL: cached catalog facts are read again afterwards.
    pub ran_ddl: bool,
}

impl Session {
    pub fn new(database: &str) -> Self {
        Self {
            database: database.to_string(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub result: Option<ResultSet>,
    pub rows_affected: i64,
}

impl Outcome {
    fn apply(self, exec: &mut Execution) {
        exec.has_result_set = self.result.is_some();
        match self.result {
            Some(rs) => {
                exec.result_rows = rs.rows.len() as i64;
                exec.result_size = rs.size;
                exec.result = Some(Arc::new(rs));
            }
            None => {
                exec.result_rows = self.rows_affected;
                exec.result_size = 0;
            }
        }
    }
}

fn is_aborted(engine: &Engine, id: &Uuid) -> bool {
    engine
        .store
        .get(id)
        .is_none_or(|s| s.exec.status == Status::Aborted)
}

/// Moves the statement (and its members) to `status` unless it was cancelled.
fn set_status(engine: &Engine, id: &Uuid, status: Status) {
    engine.store.update(id, |s| {
        if s.exec.status != Status::Aborted {
            s.exec.set_status(status);
        }
    });
}

async fn borrow(engine: &Engine, id: &Uuid, database: &str) -> Option<Lease> {
    match engine.pools.get(database).await {
        Ok(lease) => Some(lease),
        Err(e) => {
            let msg = ExecError::from(e).0;
            tracing::warn!(%id, error = %msg, "cannot connect");
            engine.store.update(id, |s| {
                s.exec.error = Some(msg.clone());
                s.exec.set_status(Status::Failed);
                for sub in &mut s.subs {
                    sub.set_status(Status::Aborted);
                }
            });
            None
        }
    }
}

fn prepare_run(engine: &Engine, id: &Uuid, conn: &Conn) -> bool {
    let cancel = conn.client.cancel_token();
    engine
        .store
        .update(id, |s| {
            if s.exec.status == Status::Aborted {
                return false;
            }
            s.pid = Some(conn.pid);
            s.cancel = Some(cancel);
            s.exec.set_status(Status::Started);
            true
        })
        .unwrap_or(false)
}

/// ExecuteStatement: `sql` already has its parameters bound.
pub async fn run_single(engine: Arc<Engine>, id: Uuid, database: String, sql: String) {
    set_status(&engine, &id, Status::Picked);
    let Some(lease) = borrow(&engine, &id, &database).await else {
        return;
    };
    if !prepare_run(&engine, &id, &lease) {
        return;
    }
    let mut session = Session::new(&database);
    let r = run_sql(&engine, &lease, &sql, false, &mut session).await;
    if r.is_err() && !lease.client.is_closed() {
        // A failed multi-statement string may leave a transaction open.
        lease.rollback().await;
    }
    finish(&engine, &id, r, None);
}

/// BatchExecuteStatement: all members in one transaction.
pub async fn run_batch(engine: Arc<Engine>, id: Uuid, database: String, sqls: Vec<String>) {
    set_status(&engine, &id, Status::Picked);
    let Some(lease) = borrow(&engine, &id, &database).await else {
        return;
    };
    if !prepare_run(&engine, &id, &lease) {
        return;
    }
    if let Err(e) = lease.client.batch_execute("BEGIN").await {
        finish(&engine, &id, Err(e.into()), None);
        return;
    }
    let mut failure: Option<(usize, ExecError)> = None;
    let mut session = Session::new(&database);
    for (i, sql) in sqls.iter().enumerate() {
        if is_aborted(&engine, &id) {
            failure = Some((i, ExecError("Query cancelled.".into())));
            break;
        }
        engine
            .store
            .update(&id, |s| s.subs[i].set_status(Status::Started));
        match run_sql(&engine, &lease, sql, true, &mut session).await {
            Ok(out) => {
                engine.store.update(&id, |s| {
                    let sub = &mut s.subs[i];
                    out.apply(sub);
                    sub.set_status(Status::Finished);
                });
            }
            Err(e) => {
                failure = Some((i, e));
                break;
            }
        }
    }
    let outcome = match failure {
        None => match lease.client.batch_execute("COMMIT").await {
            Ok(()) => Ok(Outcome::default()),
            Err(e) => Err(ExecError::from(e)),
        },
        Some((i, e)) => {
            lease.rollback().await;
            engine.store.update(&id, |s| {
                let sub = &mut s.subs[i];
                sub.error = Some(e.0.clone());
                sub.set_status(Status::Failed);
            });
            Err(e)
        }
    };
    if session.ran_ddl {
        // Facts read by other connections before this transaction ended may be stale.
        engine.catalogs.invalidate(&database);
    }
    finish(&engine, &id, outcome, Some(sqls.len()));
}

fn finish(engine: &Engine, id: &Uuid, r: Result<Outcome, ExecError>, batch: Option<usize>) {
    engine.store.update(id, |s| {
        s.cancel = None;
        if s.exec.status == Status::Aborted {
            for sub in s.subs.iter_mut().filter(|x| !x.status.is_terminal()) {
                sub.set_status(Status::Aborted);
            }
            return;
        }
        match r {
            Ok(out) => {
                if batch.is_some() {
                    // The batch's own ResultRows: sum over members, like the service.
                    s.exec.has_result_set = s.subs.iter().any(|x| x.has_result_set);
                    s.exec.result_rows = s.subs.iter().map(|x| x.result_rows.max(0)).sum();
                    s.exec.result_size = s.subs.iter().map(|x| x.result_size.max(0)).sum();
                } else {
                    out.apply(&mut s.exec);
                }
                s.exec.set_status(Status::Finished);
            }
            Err(e) => {
                tracing::info!(%id, error = %e.0, "statement failed");
                s.exec.error = Some(e.0);
                s.exec.set_status(Status::Failed);
                for sub in s.subs.iter_mut().filter(|x| !x.status.is_terminal()) {
                    sub.set_status(Status::Aborted);
                }
            }
        }
        tracing::debug!(%id, status = s.exec.status.as_str(), "statement done");
    });
}

/// Cancels a running statement's query on the server.
pub async fn cancel(token: tokio_postgres::CancelToken) {
    if let Err(e) = token.cancel_query(NoTls).await {
        tracing::warn!(error = %e, "cancel request failed");
    }
}

fn first_word(tokens: &[Token]) -> String {
    tokens
        .iter()
        .find(|t| !t.is_trivia())
        .map(|t| t.text.to_lowercase())
        .unwrap_or_default()
}

/// Runs one Data API SQL string (possibly several statements) on `conn`.
/// `in_txn` says a transaction is already open (batch members).
pub async fn run_sql(
    engine: &Engine,
    conn: &Conn,
    sql: &str,
    in_txn: bool,
    session: &mut Session,
) -> Result<Outcome, ExecError> {
    let statements = split_statements(&tokenize(sql));
    if statements.is_empty() {
        return Err(ExecError("ERROR: empty query".into()));
    }
    let mut txn = in_txn;
    let mut outcome = Outcome::default();
    for st in statements {
        if engine.strict {
            strict::check(&st, txn).map_err(ExecError)?;
        }
        // Session settings PostgreSQL does not know are the emulator's to keep.
        if session.rules.apply_set(&st).map_err(ExecError)? {
            outcome = Outcome::default();
            continue;
        }
        let ddl = matches!(first_word(&st).as_str(), "create" | "alter" | "drop");
        let r = run_statement(engine, conn, &st, txn, session).await;
        if ddl {
            engine.catalogs.invalidate(&session.database);
            session.ran_ddl = true;
        }
        outcome = r?;
        match first_word(&st).as_str() {
            "begin" | "start" => txn = true,
            "commit" | "end" | "rollback" | "abort" => txn = in_txn,
            _ => {}
        }
    }
    Ok(outcome)
}

/// Runs one statement: Spectrum DDL, streaming views, or PostgreSQL after the rewrites.
async fn run_statement(
    engine: &Engine,
    conn: &Conn,
    st: &[Token],
    txn: bool,
    session: &Session,
) -> Result<Outcome, ExecError> {
    if let Some(ddl) = external::parse(st)?
        && external::execute(conn, ddl, txn, engine.strict).await?
    {
        return Ok(Outcome::default());
    }
    // LOCK and transaction control take no snapshot (in Redshift and in PostgreSQL), so
    // the catalog lookups must not take one for them either: a LOCK first in a
    // transaction then sees everything committed before the lock was granted.
    if takes_no_snapshot(st) {
        return run_translated(engine, conn, st, st).await;
    }
    let catalog = engine.catalogs.get(&session.database, &conn.client).await?;
    if let Some(s) = streaming::parse(st, &catalog.streaming, txn, engine.strict)? {
        return run_streaming(engine, conn, s, txn, session, &catalog.super_columns).await;
    }
    let tables = external::load_tables(&conn.client).await?;
    for t in external::referenced(st, &tables) {
        external::sync(conn, &engine.lake, &t, txn).await?;
    }
    let rewritten = super_sql::rewrite(st, &catalog.super_columns, session.rules);
    let typed = if engine.strict {
        strict::decimal_types(&conn.client, rewritten.as_deref().unwrap_or(st)).await?
    } else {
        None
    };
    let tokens = typed.as_deref().or(rewritten.as_deref()).unwrap_or(st);
    run_translated(engine, conn, st, tokens).await
}

/// Runs `tokens` (the statement `st` after the rewrites) in PostgreSQL's SQL.
async fn run_translated(
    engine: &Engine,
    conn: &Conn,
    st: &[Token],
    tokens: &[Token],
) -> Result<Outcome, ExecError> {
    let text = join(&translate_tokens(tokens, engine.strict));
    run_one(&conn.client, &text)
        .await
        .map_err(|e| ExecError(redshift_strict::decimal::overflow_text(st, e.0)))
}

/// CREATE / REFRESH / DROP of a streaming materialized view (src/streaming/).
async fn run_streaming(
    engine: &Engine,
    conn: &Conn,
    statement: Streaming,
    txn: bool,
    session: &Session,
    super_columns: &std::collections::HashSet<String>,
) -> Result<Outcome, ExecError> {
    match statement {
        Streaming::Create {
            name,
            external_schema,
            stream,
            query,
        } => {
            let query = super_sql::rewrite(&query, super_columns, session.rules).unwrap_or(query);
            let select_sql = join(&translate_tokens(&query, engine.strict));
            streaming::create(conn, &name, (&external_schema, &stream), &select_sql, txn).await?;
        }
        Streaming::Refresh { schema, view } => {
            streaming::refresh(conn, &engine.kinesis, (&schema, &view), txn).await?;
        }
        Streaming::Drop {
            schema,
            view,
            cascade,
        } => streaming::drop(conn, (&schema, &view), cascade, txn).await?,
        Streaming::AutoRefresh => {}
    }
    Ok(Outcome::default())
}

fn takes_no_snapshot(st: &[Token]) -> bool {
    matches!(
        first_word(st).as_str(),
        "lock" | "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "set" | "reset"
    )
}

/// One PostgreSQL statement: prepared first for the result's column types, then run
/// with the simple protocol, whose text output is converted per column type.
async fn run_one(client: &tokio_postgres::Client, sql: &str) -> Result<Outcome, ExecError> {
    let prepared = client.prepare(sql).await?;
    let typed: Vec<ColumnInfo> = prepared
        .columns()
        .iter()
        .map(|c| ColumnInfo::describe(c.name(), c.type_(), c.type_modifier()))
        .collect();
    drop(prepared);
    let messages = client.simple_query(sql).await?;
    let mut out = Outcome::default();
    let mut rs: Option<ResultSet> = None;
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                let columns = if typed.len() == cols.len() {
                    typed.clone()
                } else {
                    cols.iter().map(|c| ColumnInfo::untyped(c.name())).collect()
                };
                rs = Some(ResultSet {
                    columns,
                    rows: Vec::new(),
                    size: 0,
                });
            }
            SimpleQueryMessage::Row(row) => {
                let set = rs.get_or_insert_with(|| ResultSet {
                    columns: row
                        .columns()
                        .iter()
                        .map(|c| ColumnInfo::untyped(c.name()))
                        .collect(),
                    rows: Vec::new(),
                    size: 0,
                });
                let vals: Vec<_> = set
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.convert(row.get(i)))
                    .collect();
                set.size += vals.iter().map(|v| v.size() as i64).sum::<i64>();
                set.rows.push(vals);
            }
            SimpleQueryMessage::CommandComplete(n) => {
                out.rows_affected = i64::try_from(n).unwrap_or(i64::MAX);
            }
            _ => {}
        }
    }
    if rs.is_none() && !typed.is_empty() {
        rs = Some(ResultSet {
            columns: typed,
            rows: Vec::new(),
            size: 0,
        });
    }
    out.result = rs;
    Ok(out)
}
