//! The Data API operations (shapes from botocore's redshift-data 2019-12-20 model).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::executor::{self, Engine};
use crate::params;
use crate::protocol::{ApiError, epoch_seconds};
use crate::store::{Execution, Statement, Status, parse_id};

/// Limits of the real service.
pub const MAX_SQL_BYTES: usize = 100 * 1024;
pub const MAX_BATCH: usize = 40;
const PAGE_MAX_ROWS: usize = 1000;
const PAGE_MAX_BYTES: usize = 512 * 1024;
const LIST_DEFAULT: usize = 100;
/// `WaitTimeSeconds` is 1 to 30 (the model's WaitTimeSeconds shape).
const MAX_WAIT_SECONDS: i64 = 30;

pub struct Limits {
    pub max_active: usize,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TargetIn {
    cluster_identifier: Option<String>,
    workgroup_name: Option<String>,
    database: Option<String>,
    db_user: Option<String>,
    secret_arn: Option<String>,
    result_format: Option<String>,
    statement_name: Option<String>,
    client_token: Option<String>,
    session_id: Option<String>,
    session_keep_alive_seconds: Option<i64>,
}

#[derive(Deserialize)]
struct ParamIn {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecuteIn {
    #[serde(flatten)]
    target: TargetIn,
    sql: Option<String>,
    parameters: Option<Vec<ParamIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchIn {
    #[serde(flatten)]
    target: TargetIn,
    sqls: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdIn {
    id: Option<String>,
    next_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    max_results: Option<i64>,
    next_token: Option<String>,
    status: Option<String>,
    statement_name: Option<String>,
    database: Option<String>,
    workgroup_name: Option<String>,
    cluster_identifier: Option<String>,
}

/// `WaitTimeSeconds` of ExecuteStatement, BatchExecuteStatement, DescribeStatement and
/// GetStatementResult (the others have none).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitIn {
    wait_time_seconds: Option<i64>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Value) -> Result<T, ApiError> {
    serde_json::from_value(body.clone()).map_err(|e| ApiError::serialization(e.to_string()))
}

/// A parameter the model marks required: missing, it is a ValidationException.
fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::validation(format!("{name} is required.")))
}

/// How long the call may wait for its statement: `WaitTimeSeconds`, validated like the
/// service's other range constraints.
fn wait_time(body: &Value) -> Result<Option<Duration>, ApiError> {
    let WaitIn { wait_time_seconds } = parse(body)?;
    let bound = match wait_time_seconds {
        None => return Ok(None),
        Some(s @ 1..=MAX_WAIT_SECONDS) => return Ok(Some(Duration::from_secs(s.unsigned_abs()))),
        Some(s) if s < 1 => "greater than or equal to 1".to_owned(),
        Some(_) => format!("less than or equal to {MAX_WAIT_SECONDS}"),
    };
    Err(ApiError::validation(format!(
        "1 validation error detected: Value '{}' at 'waitTimeSeconds' failed to satisfy \
         constraint: Member must have value {bound}",
        wait_time_seconds.unwrap_or_default()
    )))
}

/// One Data API operation. ExecuteStatement, BatchExecuteStatement, DescribeStatement and
/// GetStatementResult first wait as their `WaitTimeSeconds` asks: until the statement is no
/// longer SUBMITTED/PICKED/STARTED or the time is up, then answer with the status of that
/// moment.
pub async fn call(
    engine: &Arc<Engine>,
    limits: &Limits,
    op: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    match op {
        "ExecuteStatement" => {
            let wait = wait_time(body)?;
            let out = execute_statement(engine, limits, body)?;
            Ok(with_status(engine, out, wait).await)
        }
        "BatchExecuteStatement" => {
            let wait = wait_time(body)?;
            let out = batch_execute_statement(engine, limits, body)?;
            Ok(with_status(engine, out, wait).await)
        }
        "DescribeStatement" => {
            wait_for_id(engine, body, wait_time(body)?).await;
            describe_statement(engine, body)
        }
        "GetStatementResult" => {
            wait_for_id(engine, body, wait_time(body)?).await;
            get_statement_result(engine, body)
        }
        "CancelStatement" => cancel_statement(engine, body).await,
        "ListStatements" => list_statements(engine, body),
        other => Err(ApiError::unknown_operation(other)),
    }
}

/// Waits for the statement an `Id` names; an unknown or malformed id does not wait (the
/// operation itself reports it).
async fn wait_for_id(engine: &Engine, body: &Value, wait: Option<Duration>) {
    let Some(wait) = wait else { return };
    let Some((id, sub)) = body.get("Id").and_then(Value::as_str).and_then(parse_id) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + wait;
    engine.store.wait_done(&id, sub, deadline).await;
}

/// The Execute/BatchExecute answer after the wait: with `Status`, `HasResultSet` and
/// `RedshiftPid` of that moment, as the service's responses carry them.
async fn with_status(engine: &Engine, mut out: Value, wait: Option<Duration>) -> Value {
    let Some((id, _)) = out.get("Id").and_then(Value::as_str).and_then(parse_id) else {
        return out;
    };
    if let Some(wait) = wait {
        let deadline = tokio::time::Instant::now() + wait;
        engine.store.wait_done(&id, None, deadline).await;
    }
    if let (Some(st), Value::Object(m)) = (engine.store.get(&id), &mut out) {
        m.insert("Status".into(), json!(st.exec.status.as_str()));
        m.insert("HasResultSet".into(), json!(st.exec.has_result_set));
        if let Some(pid) = st.pid {
            m.insert("RedshiftPid".into(), json!(pid));
        }
    }
    out
}

/// Checks the target of an Execute/BatchExecute call; the database to run in.
fn validate_target(t: &TargetIn) -> Result<String, ApiError> {
    refuse_sessions(t)?;
    match (&t.workgroup_name, &t.cluster_identifier) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Specify either ClusterIdentifier or WorkgroupName, not both.",
            ));
        }
        (None, None) => {
            return Err(ApiError::validation(
                "Either ClusterIdentifier or WorkgroupName must be specified.",
            ));
        }
        _ => {}
    }
    if let Some(f) = &t.result_format
        && f != "JSON"
    {
        return Err(ApiError::validation(format!(
            "ResultFormat {f} is not supported by the emulator (JSON only)."
        )));
    }
    if let Some(tok) = &t.client_token
        && (tok.is_empty() || tok.len() > 64)
    {
        return Err(ApiError::validation(
            "ClientToken must be 1 to 64 characters.",
        ));
    }
    match (&t.database, &t.secret_arn) {
        (Some(d), _) if !d.is_empty() => Ok(d.clone()),
        // A secret carries the database name in AWS; locally the default database.
        (None, Some(_)) => Ok("dev".into()),
        _ => Err(ApiError::validation("Database must be specified.")),
    }
}

fn check_sql(sql: &str) -> Result<(), ApiError> {
    if sql.trim().is_empty() {
        return Err(ApiError::validation("SQL statement must not be empty."));
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(ApiError::validation(format!(
            "The SQL statement exceeds the limit of {MAX_SQL_BYTES} bytes."
        )));
    }
    Ok(())
}

fn new_statement(t: &TargetIn, database: String, sqls: &[String], is_batch: bool) -> Statement {
    let now = Utc::now();
    let exec = Execution::new(
        if is_batch {
            String::new()
        } else {
            sqls[0].clone()
        },
        now,
    );
    Statement {
        id: Uuid::new_v4(),
        name: t.statement_name.clone(),
        database,
        workgroup: t.workgroup_name.clone(),
        cluster: t.cluster_identifier.clone(),
        db_user: t.db_user.clone(),
        secret_arn: t.secret_arn.clone(),
        params: Vec::new(),
        is_batch,
        exec,
        subs: if is_batch {
            sqls.iter()
                .map(|s| Execution::new(s.clone(), now))
                .collect()
        } else {
            Vec::new()
        },
        pid: None,
        cancel: None,
    }
}

fn submitted(s: &Statement) -> Value {
    let mut m = Map::new();
    m.insert("Id".into(), json!(s.id.to_string()));
    m.insert("CreatedAt".into(), epoch_seconds(s.exec.created_at));
    m.insert("Database".into(), json!(s.database));
    put_opt(&mut m, "WorkgroupName", &s.workgroup);
    put_opt(&mut m, "ClusterIdentifier", &s.cluster);
    put_opt(&mut m, "DbUser", &s.db_user);
    put_opt(&mut m, "SecretArn", &s.secret_arn);
    Value::Object(m)
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.into(), json!(v));
    }
}

/// Stores a new statement and starts `run` on it in the background; the call's answer.
fn submit<F>(
    engine: &Engine,
    st: Statement,
    client_token: Option<String>,
    run: impl FnOnce(Uuid) -> F,
) -> Value
where
    F: Future<Output = ()> + Send + 'static,
{
    let out = submitted(&st);
    let id = st.id;
    engine.store.insert(st, client_token);
    tokio::spawn(run(id));
    out
}

fn admit(engine: &Engine, limits: &Limits, t: &TargetIn) -> Result<Option<Value>, ApiError> {
    if let Some(tok) = &t.client_token
        && let Some(existing) = engine.store.by_client_token(tok)
    {
        return Ok(Some(submitted(&existing)));
    }
    if engine.store.active_count() >= limits.max_active {
        return Err(ApiError::active_statements(limits.max_active));
    }
    Ok(None)
}

/// Data API sessions (`SessionId`, `SessionKeepAliveSeconds`, "Calling the Data API",
/// https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-calling.html) are not
/// emulated: every call borrows a pooled connection, so a session's temp tables and
/// settings would silently not carry over. Refused rather than ignored.
fn refuse_sessions(t: &TargetIn) -> Result<(), ApiError> {
    if t.session_id.is_some() || t.session_keep_alive_seconds.is_some() {
        return Err(ApiError::validation(
            "Sessions (SessionId, SessionKeepAliveSeconds) are not supported by this emulator: \
             each call runs on its own pooled connection. Send statements that must share a \
             session in one BatchExecuteStatement.",
        ));
    }
    Ok(())
}

fn execute_statement(
    engine: &Arc<Engine>,
    limits: &Limits,
    body: &Value,
) -> Result<Value, ApiError> {
    let ExecuteIn {
        target,
        sql,
        parameters,
    } = parse(body)?;
    let database = validate_target(&target)?;
    let sql = required(sql, "Sql")?;
    check_sql(&sql)?;
    let params: Vec<(String, String)> = parameters
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    let bound = params::bind(&sql, &params).map_err(|e| ApiError::validation(e.to_string()))?;
    if let Some(existing) = admit(engine, limits, &target)? {
        return Ok(existing);
    }
    let mut st = new_statement(&target, database.clone(), std::slice::from_ref(&sql), false);
    st.params = params;
    Ok(submit(engine, st, target.client_token, |id| {
        executor::run_single(engine.clone(), id, database, bound)
    }))
}

fn batch_execute_statement(
    engine: &Arc<Engine>,
    limits: &Limits,
    body: &Value,
) -> Result<Value, ApiError> {
    let input: BatchIn = parse(body)?;
    let database = validate_target(&input.target)?;
    let sqls = required(input.sqls, "Sqls")?;
    if sqls.is_empty() || sqls.len() > MAX_BATCH {
        return Err(ApiError::validation(format!(
            "Sqls must contain between 1 and {MAX_BATCH} statements."
        )));
    }
    for s in &sqls {
        check_sql(s)?;
    }
    // Batches take no parameters, but a stray `:name` is still an error, not SQL.
    for s in &sqls {
        params::bind(s, &[]).map_err(|e| ApiError::validation(e.to_string()))?;
    }
    if let Some(existing) = admit(engine, limits, &input.target)? {
        return Ok(existing);
    }
    let st = new_statement(&input.target, database.clone(), &sqls, true);
    Ok(submit(engine, st, input.target.client_token, |id| {
        executor::run_batch(engine.clone(), id, database, sqls)
    }))
}

fn lookup(engine: &Engine, id: Option<&str>) -> Result<(Statement, Option<usize>), ApiError> {
    let id = required(id, "Id")?;
    let (uuid, sub) =
        parse_id(id).ok_or_else(|| ApiError::validation(format!("Invalid statement id: {id}")))?;
    let st = engine
        .store
        .get(&uuid)
        .ok_or_else(|| ApiError::not_found(id))?;
    if let Some(n) = sub
        && (!st.is_batch || n > st.subs.len())
    {
        return Err(ApiError::not_found(id));
    }
    Ok((st, sub))
}

fn exec_fields(m: &mut Map<String, Value>, e: &Execution) {
    m.insert("CreatedAt".into(), epoch_seconds(e.created_at));
    m.insert("UpdatedAt".into(), epoch_seconds(e.updated_at));
    m.insert("Status".into(), json!(e.status.as_str()));
    m.insert("Duration".into(), json!(e.duration_ns));
    m.insert("HasResultSet".into(), json!(e.has_result_set));
    m.insert("ResultRows".into(), json!(e.result_rows));
    m.insert("ResultSize".into(), json!(e.result_size));
    put_opt(m, "Error", &e.error);
}

fn params_json(p: &[(String, String)]) -> Value {
    Value::Array(
        p.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

fn describe_statement(engine: &Engine, body: &Value) -> Result<Value, ApiError> {
    let input: IdIn = parse(body)?;
    let (st, sub) = lookup(engine, input.id.as_deref())?;
    let mut m = Map::new();
    let id = match sub {
        Some(n) => format!("{}:{n}", st.id),
        None => st.id.to_string(),
    };
    m.insert("Id".into(), json!(id));
    m.insert("Database".into(), json!(st.database));
    put_opt(&mut m, "WorkgroupName", &st.workgroup);
    put_opt(&mut m, "ClusterIdentifier", &st.cluster);
    put_opt(&mut m, "DbUser", &st.db_user);
    put_opt(&mut m, "SecretArn", &st.secret_arn);
    m.insert("ResultFormat".into(), json!("JSON"));
    if let Some(pid) = st.pid {
        m.insert("RedshiftPid".into(), json!(pid));
    }
    match sub {
        Some(n) => {
            let e = &st.subs[n - 1];
            exec_fields(&mut m, e);
            m.insert("QueryString".into(), json!(e.sql));
        }
        None => {
            exec_fields(&mut m, &st.exec);
            if !st.is_batch {
                m.insert("QueryString".into(), json!(st.exec.sql));
            }
            if !st.params.is_empty() {
                m.insert("QueryParameters".into(), params_json(&st.params));
            }
            if st.is_batch {
                let subs: Vec<Value> = st
                    .subs
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let mut sm = Map::new();
                        sm.insert("Id".into(), json!(format!("{}:{}", st.id, i + 1)));
                        exec_fields(&mut sm, e);
                        sm.insert("QueryString".into(), json!(e.sql));
                        Value::Object(sm)
                    })
                    .collect();
                m.insert("SubStatements".into(), Value::Array(subs));
            }
        }
    }
    Ok(Value::Object(m))
}

fn parse_token(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::validation("Invalid NextToken.")),
    }
}

fn get_statement_result(engine: &Engine, body: &Value) -> Result<Value, ApiError> {
    let input: IdIn = parse(body)?;
    let (st, sub) = lookup(engine, input.id.as_deref())?;
    let e = match sub {
        Some(n) => &st.subs[n - 1],
        None => &st.exec,
    };
    if st.is_batch && sub.is_none() {
        return Err(ApiError::validation(
            "Query does not have result. Please check query status with DescribeStatement (use the sub-statement ids of a batch).",
        ));
    }
    match e.status {
        Status::Finished => {}
        Status::Failed | Status::Aborted => {
            return Err(ApiError::validation(format!(
                "Query does not have result. Query status is {}.",
                e.status.as_str()
            )));
        }
        _ => {
            return Err(ApiError::validation(
                "Query does not have result. Please check query status with DescribeStatement.",
            ));
        }
    }
    let rs = e.result.as_ref().ok_or_else(|| {
        ApiError::validation(
            "Query does not have result. Please check query status with DescribeStatement.",
        )
    })?;
    let start = parse_token(input.next_token.as_deref())?;
    if start > rs.rows.len() {
        return Err(ApiError::validation("Invalid NextToken."));
    }
    let mut end = start;
    let mut bytes = 0usize;
    while end < rs.rows.len() && end - start < PAGE_MAX_ROWS {
        let sz: usize = rs.rows[end].iter().map(|f| f.size()).sum();
        if end > start && bytes + sz > PAGE_MAX_BYTES {
            break;
        }
        bytes += sz;
        end += 1;
    }
    let records: Vec<Value> = rs.rows[start..end]
        .iter()
        .map(|r| Value::Array(r.iter().map(|f| f.to_json()).collect()))
        .collect();
    let mut m = Map::new();
    m.insert("Records".into(), Value::Array(records));
    m.insert(
        "ColumnMetadata".into(),
        Value::Array(rs.columns.iter().map(|c| c.metadata_json()).collect()),
    );
    m.insert("TotalNumRows".into(), json!(rs.rows.len()));
    if end < rs.rows.len() {
        m.insert("NextToken".into(), json!(format!("o{end}")));
    }
    Ok(Value::Object(m))
}

async fn cancel_statement(engine: &Engine, body: &Value) -> Result<Value, ApiError> {
    let input: IdIn = parse(body)?;
    let (st, sub) = lookup(engine, input.id.as_deref())?;
    if sub.is_some() {
        return Err(ApiError::validation(
            "Cancel the batch statement, not a sub-statement.",
        ));
    }
    if st.exec.status.is_terminal() {
        return Err(ApiError::validation(format!(
            "Could not cancel a query that is already in {} state with ID: {}",
            st.exec.status.as_str(),
            st.id
        )));
    }
    let token = engine.store.update(&st.id, |s| {
        s.exec.error = Some("Query cancelled.".into());
        s.exec.set_status(Status::Aborted);
        s.cancel.take()
    });
    if let Some(Some(t)) = token {
        executor::cancel(t).await;
    }
    Ok(json!({ "Status": true }))
}

fn list_statements(engine: &Engine, body: &Value) -> Result<Value, ApiError> {
    let input: ListIn = parse(body)?;
    let max = match input.max_results {
        None | Some(0) => LIST_DEFAULT,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(ApiError::validation(
                "MaxResults must be between 0 and 100.",
            ));
        }
    };
    let status = match input.status.as_deref() {
        None | Some("ALL") => None,
        Some(s) => Some(
            [
                Status::Submitted,
                Status::Picked,
                Status::Started,
                Status::Finished,
                Status::Aborted,
                Status::Failed,
            ]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ApiError::validation(format!("Invalid Status: {s}")))?,
        ),
    };
    let all: Vec<Statement> = engine
        .store
        .list()
        .into_iter()
        .filter(|s| status.is_none_or(|x| s.exec.status == x))
        .filter(|s| {
            input
                .statement_name
                .as_ref()
                .is_none_or(|p| s.name.as_ref().is_some_and(|n| n.starts_with(p.as_str())))
        })
        .filter(|s| input.database.as_ref().is_none_or(|d| &s.database == d))
        .filter(|s| input.workgroup_name.is_none() || s.workgroup == input.workgroup_name)
        .filter(|s| input.cluster_identifier.is_none() || s.cluster == input.cluster_identifier)
        .collect();
    let start = parse_token(input.next_token.as_deref())?;
    let end = (start + max).min(all.len());
    let items: Vec<Value> = all
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("Id".into(), json!(s.id.to_string()));
            m.insert("CreatedAt".into(), epoch_seconds(s.exec.created_at));
            m.insert("UpdatedAt".into(), epoch_seconds(s.exec.updated_at));
            m.insert("Status".into(), json!(s.exec.status.as_str()));
            m.insert("IsBatchStatement".into(), json!(s.is_batch));
            m.insert("ResultFormat".into(), json!("JSON"));
            put_opt(&mut m, "StatementName", &s.name);
            put_opt(&mut m, "SecretArn", &s.secret_arn);
            if s.is_batch {
                m.insert(
                    "QueryStrings".into(),
                    Value::Array(s.subs.iter().map(|e| json!(e.sql)).collect()),
                );
            } else {
                m.insert("QueryString".into(), json!(s.exec.sql));
            }
            if !s.params.is_empty() {
                m.insert("QueryParameters".into(), params_json(&s.params));
            }
            Value::Object(m)
        })
        .collect();
    let mut out = Map::new();
    out.insert("Statements".into(), Value::Array(items));
    if end < all.len() {
        out.insert("NextToken".into(), json!(format!("o{end}")));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_time_seconds_is_1_to_30() {
        assert_eq!(wait_time(&json!({})).unwrap(), None);
        assert_eq!(
            wait_time(&json!({"WaitTimeSeconds": 1})).unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            wait_time(&json!({"WaitTimeSeconds": 30, "Id": "x"})).unwrap(),
            Some(Duration::from_secs(30))
        );
        for (bad, bound) in [
            (0, "greater than or equal to 1"),
            (31, "less than or equal to 30"),
        ] {
            let e = wait_time(&json!({ "WaitTimeSeconds": bad })).unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert!(
                e.message.contains(&format!("Value '{bad}'")),
                "{}",
                e.message
            );
            assert!(e.message.ends_with(bound), "{}", e.message);
        }
        let e = wait_time(&json!({"WaitTimeSeconds": "soon"})).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }
}
