//! Runs statements in the background: borrows a connection, translates the SQL, syncs
//! the external tables it reads, executes it and records the outcome in the store.

use std::sync::Arc;

use tokio_postgres::{NoTls, SimpleQueryMessage};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::ExecError;
use crate::external;
use crate::lake::Lake;
use crate::lexer::{Token, join, split_statements, tokenize};
use crate::pool::{Lease, Pools};
use crate::sql_translate::translate_tokens;
use crate::store::{Execution, ResultSet, Status, Store};
use crate::strict;
use crate::values::ColumnInfo;

pub struct Engine {
    pub pools: Pools,
    pub lake: Lake,
    pub store: Store,
    /// Strict mode (src/strict.rs).
    pub strict: bool,
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
    let r = run_sql(&engine, &lease, &sql, false).await;
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
    for (i, sql) in sqls.iter().enumerate() {
        if is_aborted(&engine, &id) {
            failure = Some((i, ExecError("Query cancelled.".into())));
            break;
        }
        engine
            .store
            .update(&id, |s| s.subs[i].set_status(Status::Started));
        match run_sql(&engine, &lease, sql, true).await {
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
        if let Some(ddl) = external::parse(&st)?
            && external::execute(conn, ddl, txn, engine.strict).await?
        {
            outcome = Outcome::default();
            continue;
        }
        // LOCK and transaction control take no snapshot (in Redshift and in PostgreSQL),
        // so the catalog lookup must not take one for them either: a LOCK first in a
        // transaction then sees everything committed before the lock was granted.
        if !takes_no_snapshot(&st) {
            let tables = external::load_tables(&conn.client).await?;
            for t in external::referenced(&st, &tables) {
                external::sync(conn, &engine.lake, &t, txn).await?;
            }
        }
        let typed = if engine.strict {
            strict::decimal_types(&conn.client, &st).await?
        } else {
            None
        };
        let text = join(&translate_tokens(
            typed.as_deref().unwrap_or(&st),
            engine.strict,
        ));
        outcome = run_one(&conn.client, &text)
            .await
            .map_err(|e| ExecError(redshift_strict::decimal::overflow_text(&st, e.0)))?;
        match first_word(&st).as_str() {
            "begin" | "start" => txn = true,
            "commit" | "end" | "rollback" | "abort" => txn = in_txn,
            _ => {}
        }
    }
    Ok(outcome)
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
