//! Streaming ingestion from Kinesis ("Streaming ingestion to a materialized view",
//! https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion.html;
//! "Getting started with streaming ingestion from Amazon Kinesis Data Streams",
//! https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion-getting-started.html).
//!
//! - `CREATE EXTERNAL SCHEMA s FROM KINESIS IAM_ROLE …` is an `_emulator.external_schemas`
//!   row with source `kinesis` (`external/`).
//! - `CREATE MATERIALIZED VIEW mv … AS SELECT … FROM s."stream" …` over exactly one stream
//!   becomes a table `mv` of the query's columns plus a catalog row holding the query,
//!   written against a per-refresh batch of the stream's records (a temporary table with
//!   the stream's columns, typed as in "Streaming ingestion behavior and data types":
//!   approximate_arrival_timestamp TIMESTAMP, partition_key VARCHAR(256), shard_id
//!   CHAR(20), sequence_number VARCHAR(128), refresh_time TIMESTAMP, kinesis_data
//!   VARBYTE(1024000)).
//! - `REFRESH MATERIALIZED VIEW mv` reads every shard after the last sequence number this
//!   view stored (`_emulator.stream_positions`, so it survives restarts; the first refresh
//!   starts at TRIM_HORIZON, "Refresh start location"), runs the query over the new records
//!   and appends its rows, all with the same refresh_time, in one transaction with the new
//!   positions: a refresh is atomic and streaming views are append-only.
//! - Refused like Redshift (strict mode): a view over two streams ("can reference only one
//!   stream"); REFRESH of a streaming view inside a transaction block (REFRESH "runs as a
//!   transaction of its own",
//!   https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-refresh-sql-command.html);
//!   INSERT/UPDATE of a streaming view (DELETE is allowed: "DELETE … { table_name |
//!   materialized_view_name }", https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html).

mod kinesis;

use std::collections::HashMap;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::conn::Conn;
use crate::error::ExecError;
use crate::lexer::{Kind, Token, join, quote_ident};
use crate::strict::WHY;

pub use kinesis::Kinesis;

pub const STREAMING_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _emulator.streaming_views (
  view_schema text NOT NULL, view_name text NOT NULL,
  external_schema text NOT NULL, stream_name text NOT NULL, select_sql text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (view_schema, view_name));
CREATE TABLE IF NOT EXISTS _emulator.stream_positions (
  view_schema text NOT NULL, view_name text NOT NULL, shard_id text NOT NULL,
  sequence_number text NOT NULL, refreshed_at timestamp NOT NULL,
  PRIMARY KEY (view_schema, view_name, shard_id),
  FOREIGN KEY (view_schema, view_name) REFERENCES _emulator.streaming_views
    ON DELETE CASCADE ON UPDATE CASCADE);
"#;

/// The per-refresh batch of stream records a streaming view's query reads.
const BATCH: &str = "pg_temp._rs_stream_batch";
const BATCH_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS _rs_stream_batch (
  approximate_arrival_timestamp timestamp, partition_key varchar(256), shard_id char(20),
  sequence_number varchar(128), refresh_time timestamp, kinesis_data public.varbyte)
  ON COMMIT DELETE ROWS";

const INSERT_VIEW: &str = "INSERT INTO _emulator.streaming_views \
    (view_schema, view_name, external_schema, stream_name, select_sql) VALUES ($1, $2, $3, $4, $5)";
const UPSERT_POSITION: &str = "INSERT INTO _emulator.stream_positions \
    (view_schema, view_name, shard_id, sequence_number, refreshed_at) \
    VALUES ($1, $2, $3, $4, $5::text::timestamp) ON CONFLICT (view_schema, view_name, shard_id) \
    DO UPDATE SET sequence_number = EXCLUDED.sequence_number, refreshed_at = EXCLUDED.refreshed_at";

/// What the emulator knows about a database's streaming objects.
#[derive(Debug, Clone, Default)]
pub struct StreamingCatalog {
    /// External schemas FROM KINESIS.
    pub kinesis_schemas: Vec<String>,
    /// Streaming materialized views as (schema, name).
    pub views: Vec<(String, String)>,
}

impl StreamingCatalog {
    pub async fn load(client: &Client) -> Result<Self, ExecError> {
        let schemas = client
            .query(
                "SELECT schema_name FROM _emulator.external_schemas WHERE source = 'kinesis'",
                &[],
            )
            .await?;
        let views = client
            .query(
                "SELECT view_schema, view_name FROM _emulator.streaming_views",
                &[],
            )
            .await?;
        Ok(Self {
            kinesis_schemas: schemas.iter().map(|r| r.get(0)).collect(),
            views: views.iter().map(|r| (r.get(0), r.get(1))).collect(),
        })
    }

    /// The streaming view a (possibly unqualified) name refers to.
    fn view(&self, name: &[String]) -> Option<(String, String)> {
        self.views
            .iter()
            .find(|(s, v)| match name {
                [schema, view] => s == schema && v == view,
                [view] => v == view,
                _ => false,
            })
            .cloned()
    }
}

/// A statement about a streaming view.
#[derive(Debug)]
pub enum Streaming {
    /// `CREATE MATERIALIZED VIEW`: the view's name as written, the stream and the query
    /// with the stream replaced by the batch table.
    Create {
        name: String,
        external_schema: String,
        stream: String,
        query: Vec<Token>,
    },
    Refresh {
        schema: String,
        view: String,
    },
    Drop {
        schema: String,
        view: String,
        cascade: bool,
    },
    /// `ALTER MATERIALIZED VIEW … AUTO REFRESH YES|NO`: accepted; the emulator refreshes
    /// only on REFRESH.
    AutoRefresh,
}

fn words(st: &[Token]) -> Vec<&Token> {
    st.iter().filter(|t| !t.is_trivia()).collect()
}

/// A qualified name starting at `sig[at]`: its parts and the index after it.
fn qualified(sig: &[&Token], at: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    let mut i = at;
    while let Some(name) = sig.get(i).and_then(|t| t.ident()) {
        parts.push(name);
        if sig.get(i + 1).is_some_and(|t| t.is_punct(".")) {
            i += 2;
        } else {
            return (parts, i + 1);
        }
    }
    (parts, i)
}

fn refuse(what: String) -> ExecError {
    ExecError::new(format!("{what} ({WHY})"))
}

/// Recognises the statements that concern streaming views; `Ok(None)` for the others.
/// `strict`: refuse what Redshift refuses.
pub fn parse(
    st: &[Token],
    catalog: &StreamingCatalog,
    in_txn: bool,
    strict: bool,
) -> Result<Option<Streaming>, ExecError> {
    let sig = words(st);
    let w = |i: usize| {
        sig.get(i)
            .map(|t| t.text.to_lowercase())
            .unwrap_or_default()
    };
    match (w(0).as_str(), w(1).as_str(), w(2).as_str()) {
        ("create", "materialized", "view") => parse_create(st, catalog),
        ("refresh", "materialized", "view") => {
            let Some((schema, view)) = catalog.view(&qualified(&sig, 3).0) else {
                return Ok(None);
            };
            if strict && in_txn {
                return Err(refuse(format!(
                    "REFRESH MATERIALIZED VIEW of the streaming materialized view \"{schema}\".\"{view}\" cannot run inside a transaction block"
                )));
            }
            Ok(Some(Streaming::Refresh { schema, view }))
        }
        ("drop", "materialized", "view") => {
            let at = if w(3) == "if" && w(4) == "exists" {
                5
            } else {
                3
            };
            let (name, after) = qualified(&sig, at);
            let Some((schema, view)) = catalog.view(&name) else {
                return Ok(None);
            };
            let cascade = w(after) == "cascade";
            Ok(Some(Streaming::Drop {
                schema,
                view,
                cascade,
            }))
        }
        ("alter", "materialized", "view") => {
            let (name, after) = qualified(&sig, 3);
            let auto = w(after) == "auto" && w(after + 1) == "refresh";
            Ok((auto && catalog.view(&name).is_some()).then_some(Streaming::AutoRefresh))
        }
        ("insert", "into", _) | ("update", _, _) if strict => {
            let at = if w(0) == "insert" { 2 } else { 1 };
            if let Some((schema, view)) = catalog.view(&qualified(&sig, at).0) {
                return Err(refuse(format!(
                    "{} of the streaming materialized view \"{schema}\".\"{view}\" is not supported: it is filled by REFRESH only",
                    w(0).to_uppercase()
                )));
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// `CREATE MATERIALIZED VIEW name [BACKUP …] [AUTO REFRESH …] AS query` over a stream.
fn parse_create(st: &[Token], catalog: &StreamingCatalog) -> Result<Option<Streaming>, ExecError> {
    let idx: Vec<usize> = (0..st.len()).filter(|&i| !st[i].is_trivia()).collect();
    let sig: Vec<&Token> = idx.iter().map(|&i| &st[i]).collect();
    let mut streams: Vec<(String, String, usize)> = Vec::new();
    for k in 0..sig.len().saturating_sub(2) {
        if !sig[k + 1].is_punct(".") || (k > 0 && sig[k - 1].is_punct(".")) {
            continue;
        }
        let (Some(schema), Some(stream)) = (sig[k].ident(), sig[k + 2].ident()) else {
            continue;
        };
        if catalog.kinesis_schemas.contains(&schema) {
            streams.push((schema, stream, k));
        }
    }
    let Some((schema, stream, _)) = streams.first().cloned() else {
        return Ok(None);
    };
    if streams.iter().any(|(s, n, _)| (s, n) != (&schema, &stream)) {
        return Err(refuse(
            "a streaming ingestion materialized view can reference only one stream".into(),
        ));
    }
    let (name_parts, after_name) = qualified(&sig, 3);
    if name_parts.is_empty() {
        return Ok(None);
    }
    let Some(as_at) = (after_name..sig.len()).find(|&k| {
        sig[k].is_word("as")
            && sig
                .get(k + 1)
                .is_some_and(|t| t.is_word("select") || t.is_word("with") || t.is_punct("("))
    }) else {
        return Ok(None);
    };
    // The query, with every reference to the stream reading the refresh's batch.
    let mut query: Vec<Token> = Vec::new();
    let mut i = idx[as_at + 1];
    while i < st.len() {
        if let Some((_, _, k)) = streams.iter().find(|(_, _, k)| idx[*k] == i) {
            query.push(Token::new(Kind::Word, BATCH));
            i = idx[k + 2] + 1;
            continue;
        }
        query.push(st[i].clone());
        i += 1;
    }
    let name = join(&st[idx[3]..idx[after_name - 1] + 1]);
    Ok(Some(Streaming::Create {
        name,
        external_schema: schema,
        stream,
        query,
    }))
}

/// Creates the streaming view's table (empty) and its catalog row; `select_sql` is the
/// query in PostgreSQL's SQL.
pub async fn create(
    conn: &Conn,
    name: &str,
    (external_schema, stream): (&str, &str),
    select_sql: &str,
    in_txn: bool,
) -> Result<(), ExecError> {
    let client = &conn.client;
    crate::external::in_transaction(conn, in_txn, async {
        client.batch_execute(BATCH_DDL).await?;
        client
            .batch_execute(&format!("CREATE TABLE {name} AS {select_sql} WITH NO DATA"))
            .await?;
        let row = client
            .query_one(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                &[&name],
            )
            .await?;
        let (schema, view): (String, String) = (row.get(0), row.get(1));
        let params: [&(dyn ToSql + Sync); 5] =
            [&schema, &view, &external_schema, &stream, &select_sql];
        client.execute(INSERT_VIEW, &params).await?;
        Ok(())
    })
    .await
}

/// Drops a streaming view and forgets its positions.
pub async fn drop(
    conn: &Conn,
    (schema, view): (&str, &str),
    cascade: bool,
    in_txn: bool,
) -> Result<(), ExecError> {
    let client = &conn.client;
    let cascade = if cascade { " CASCADE" } else { "" };
    crate::external::in_transaction(conn, in_txn, async {
        client
            .batch_execute(&format!(
                "DROP TABLE {}.{}{cascade}",
                quote_ident(schema),
                quote_ident(view)
            ))
            .await?;
        client
            .execute(
                "DELETE FROM _emulator.streaming_views WHERE view_schema = $1 AND view_name = $2",
                &[&schema, &view],
            )
            .await?;
        Ok(())
    })
    .await
}

/// One streaming refresh of `schema.view`, in a transaction of its own (READ COMMITTED,
/// after a lock per view, so that concurrent refreshes read each other's positions);
/// returns the rows appended.
pub async fn refresh(
    conn: &Conn,
    kinesis: &Kinesis,
    (schema, view): (&str, &str),
    in_txn: bool,
) -> Result<u64, ExecError> {
    let client = &conn.client;
    let body = async {
        let key = format!("{schema}.{view}");
        client
            .execute(
                "SELECT pg_advisory_xact_lock(7460003, hashtext($1))",
                &[&key],
            )
            .await?;
        let def = client
            .query_one(
                "SELECT stream_name, select_sql, (now() AT TIME ZONE 'UTC')::text FROM _emulator.streaming_views WHERE view_schema = $1 AND view_name = $2",
                &[&schema, &view],
            )
            .await?;
        let (stream, select_sql, refresh_time): (String, String, String) =
            (def.get(0), def.get(1), def.get(2));
        let positions: HashMap<String, String> = client
            .query(
                "SELECT shard_id, sequence_number FROM _emulator.stream_positions WHERE view_schema = $1 AND view_name = $2",
                &[&schema, &view],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let rows = kinesis.read_new(&stream, &positions).await?;
        client.batch_execute(BATCH_DDL).await?;
        client
            .batch_execute(&format!("DELETE FROM {BATCH}"))
            .await?;
        load_batch(client, &rows, &refresh_time).await?;
        let appended = client
            .execute(
                &format!(
                    "INSERT INTO {}.{} {select_sql}",
                    quote_ident(schema),
                    quote_ident(view)
                ),
                &[],
            )
            .await?;
        save_positions(client, (schema, view), &rows, &refresh_time).await?;
        client
            .batch_execute(&format!("DELETE FROM {BATCH}"))
            .await?;
        Ok(appended)
    };
    crate::external::in_transaction_begun_by(
        conn,
        in_txn,
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        body,
    )
    .await
}

/// Inserts the records into the batch table, all with `refresh_time`.
async fn load_batch(
    client: &Client,
    rows: &[kinesis::StreamRow],
    refresh_time: &str,
) -> Result<(), ExecError> {
    for chunk in rows.chunks(5_000) {
        let arrival: Vec<&str> = chunk.iter().map(|r| r.arrival.as_str()).collect();
        let keys: Vec<&str> = chunk.iter().map(|r| r.partition_key.as_str()).collect();
        let shards: Vec<&str> = chunk.iter().map(|r| r.shard_id.as_str()).collect();
        let seqs: Vec<&str> = chunk.iter().map(|r| r.sequence_number.as_str()).collect();
        let data: Vec<&[u8]> = chunk.iter().map(|r| r.data.as_slice()).collect();
        client
            .execute(
                &format!(
                    "INSERT INTO {BATCH} SELECT a::timestamp, k, s, q, $5::text::timestamp, d FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::bytea[]) AS u(a, k, s, q, d)"
                ),
                &[&arrival, &keys, &shards, &seqs, &refresh_time, &data],
            )
            .await?;
    }
    Ok(())
}

/// Records, per shard, the last sequence number read (records come in shard order).
async fn save_positions(
    client: &Client,
    (schema, view): (&str, &str),
    rows: &[kinesis::StreamRow],
    refresh_time: &str,
) -> Result<(), ExecError> {
    let mut last: HashMap<&str, &str> = HashMap::new();
    for r in rows {
        last.insert(&r.shard_id, &r.sequence_number);
    }
    for (shard, seq) in last {
        let params: [&(dyn ToSql + Sync); 5] = [&schema, &view, &shard, &seq, &refresh_time];
        client.execute(UPSERT_POSITION, &params).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn catalog() -> StreamingCatalog {
        StreamingCatalog {
            kinesis_schemas: vec!["kinesis_source".into()],
            views: vec![("speed".into(), "telemetry_stream".into())],
        }
    }

    #[test]
    fn parses_a_streaming_view_over_one_stream() {
        let sql = "CREATE MATERIALIZED VIEW speed.telemetry_stream AUTO REFRESH NO AS SELECT shard_id, JSON_PARSE(kinesis_data) AS payload FROM kinesis_source.\"fleet-telemetry\" WHERE CAN_JSON_PARSE(kinesis_data)";
        let Some(Streaming::Create {
            name,
            stream,
            query,
            ..
        }) = parse(&tokenize(sql), &catalog(), false, true).unwrap()
        else {
            panic!("not a streaming view");
        };
        assert_eq!(name, "speed.telemetry_stream");
        assert_eq!(stream, "fleet-telemetry");
        assert_eq!(
            join(&query),
            "SELECT shard_id, JSON_PARSE(kinesis_data) AS payload FROM pg_temp._rs_stream_batch WHERE CAN_JSON_PARSE(kinesis_data)"
        );
        let two = "CREATE MATERIALIZED VIEW v AS SELECT * FROM kinesis_source.\"a\" UNION ALL SELECT * FROM kinesis_source.\"b\"";
        let e = parse(&tokenize(two), &catalog(), false, true).unwrap_err();
        assert!(e.0.contains("only one stream"), "{}", e.0);
        let plain = "CREATE MATERIALIZED VIEW v AS SELECT * FROM speed.telemetry";
        assert!(
            parse(&tokenize(plain), &catalog(), false, true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn refresh_drop_and_refusals() {
        let c = catalog();
        let p = |sql: &str, txn: bool| parse(&tokenize(sql), &c, txn, true);
        assert!(matches!(
            p("REFRESH MATERIALIZED VIEW speed.telemetry_stream", false),
            Ok(Some(Streaming::Refresh { .. }))
        ));
        assert!(
            p("REFRESH MATERIALIZED VIEW speed.telemetry_stream", true)
                .unwrap_err()
                .0
                .contains("transaction block")
        );
        assert!(
            p("REFRESH MATERIALIZED VIEW speed.vehicle_daily_mv", true)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            p(
                "DROP MATERIALIZED VIEW IF EXISTS speed.telemetry_stream CASCADE",
                false
            ),
            Ok(Some(Streaming::Drop { cascade: true, .. }))
        ));
        assert!(matches!(
            p(
                "ALTER MATERIALIZED VIEW speed.telemetry_stream AUTO REFRESH YES",
                false
            ),
            Ok(Some(Streaming::AutoRefresh))
        ));
        assert!(p("UPDATE speed.telemetry_stream SET shard_id = 'x'", false).is_err());
        assert!(p("INSERT INTO speed.telemetry_stream SELECT 1", false).is_err());
        assert!(
            p("DELETE FROM speed.telemetry_stream WHERE true", false)
                .unwrap()
                .is_none()
        );
        assert!(
            p("INSERT INTO speed.telemetry SELECT 1", false)
                .unwrap()
                .is_none()
        );
    }
}
