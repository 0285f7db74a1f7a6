//! Redshift Spectrum on PostgreSQL: external schemas, external tables and their
//! partitions are rows in the `_emulator` catalog; each external table's rows live in
//! a hidden table `_emulator.ext_…` (declared columns + partition columns + the source
//! partition and object), exposed to SQL as a view `schema.table` with exactly the
//! Redshift columns.
//!
//! Before a statement reads an external table, every registered partition is synced
//! from S3: new objects are loaded, changed ones (ETag/size) reloaded, deleted ones'
//! rows removed. Nothing is loaded twice, and the partitions' common prefix is listed once
//! per sync (see [`Listings`]). The DDL is transactional here; in strict mode the forms
//! Redshift restricts (CREATE/DROP/ALTER EXTERNAL TABLE) are refused inside a
//! transaction block, as on Redshift.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::executor::ExecError;
use crate::formats::{self, Target, TextFormat};
use crate::lake::{Lake, ObjectInfo, is_data_object, parse_s3_uri};
use crate::lexer::{Kind, Token, quote_ident, quote_literal};
use crate::sql_translate::external_column_type;

pub const CATALOG_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS _emulator;
CREATE TABLE IF NOT EXISTS _emulator.external_schemas (
  schema_name text PRIMARY KEY,
  catalog_database text,
  iam_role text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS _emulator.external_tables (
  schema_name text NOT NULL,
  table_name text NOT NULL,
  data_table text NOT NULL UNIQUE,
  location text NOT NULL,
  format text NOT NULL,
  serde text,
  delimiter text,
  columns jsonb NOT NULL,
  partition_columns jsonb NOT NULL,
  properties jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, table_name));
CREATE TABLE IF NOT EXISTS _emulator.external_partitions (
  id bigserial PRIMARY KEY,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  spec text NOT NULL,
  "values" jsonb NOT NULL,
  location text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (schema_name, table_name, spec),
  FOREIGN KEY (schema_name, table_name) REFERENCES _emulator.external_tables ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS _emulator.external_objects (
  partition_id bigint NOT NULL REFERENCES _emulator.external_partitions ON DELETE CASCADE,
  uri text NOT NULL,
  etag text NOT NULL,
  size bigint NOT NULL,
  rows bigint NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partition_id, uri));
"#;

const PARTITION_COL: &str = "__partition_id";
const OBJECT_COL: &str = "__object_uri";
const INSERT_CHUNK: usize = 500;

fn err(msg: impl std::fmt::Display) -> ExecError {
    ExecError(format!("ERROR: {msg}"))
}

/// A cursor over the significant tokens of one statement.
struct Cur<'a> {
    toks: Vec<&'a Token>,
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        Self {
            toks: tokens.iter().filter(|t| !t.is_trivia()).collect(),
            pos: 0,
        }
    }
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }
    fn eat_word(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_words(&mut self, kws: &[&str]) -> bool {
        let save = self.pos;
        for k in kws {
            if !self.eat_word(k) {
                self.pos = save;
                return false;
            }
        }
        true
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_punct(&mut self, p: &str) -> Result<(), ExecError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }
    fn syntax(&self) -> ExecError {
        match self.peek() {
            Some(t) => err(format!("syntax error at or near \"{}\"", t.text)),
            None => err("syntax error at end of input"),
        }
    }
    fn ident(&mut self) -> Result<String, ExecError> {
        let t = self.peek().ok_or_else(|| self.syntax())?;
        let id = t.ident().ok_or_else(|| self.syntax())?;
        self.pos += 1;
        Ok(id)
    }
    /// `schema.table` (the schema is required for external tables).
    fn qualified(&mut self) -> Result<(String, String), ExecError> {
        let a = self.ident()?;
        if !self.eat_punct(".") {
            return Err(err(format!(
                "external table \"{a}\" must be qualified with its external schema"
            )));
        }
        Ok((a, self.ident()?))
    }
    fn string(&mut self) -> Result<String, ExecError> {
        let t = self.peek().ok_or_else(|| self.syntax())?;
        let s = t.string_value().ok_or_else(|| self.syntax())?;
        self.pos += 1;
        Ok(s)
    }
    /// The tokens inside the parenthesised group at the cursor.
    fn group(&mut self) -> Result<Vec<&'a Token>, ExecError> {
        self.expect_punct("(")?;
        let start = self.pos;
        let mut depth = 1;
        while let Some(t) = self.peek() {
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth -= 1;
                if depth == 0 {
                    let inner = self.toks[start..self.pos].to_vec();
                    self.pos += 1;
                    return Ok(inner);
                }
            }
            self.pos += 1;
        }
        Err(err("syntax error at end of input"))
    }
}

fn split_commas<'a>(toks: &[&'a Token]) -> Vec<Vec<&'a Token>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0;
    for t in toks {
        if t.is_punct("(") || t.is_punct("<") {
            depth += 1;
        } else if t.is_punct(")") || t.is_punct(">") {
            depth -= 1;
        }
        if depth == 0 && t.is_punct(",") {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(*t);
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// `(name type, …)` → [(name, PostgreSQL type)].
fn column_defs(toks: &[&Token]) -> Result<Vec<(String, String)>, ExecError> {
    split_commas(toks)
        .into_iter()
        .map(|def| {
            let name = def[0]
                .ident()
                .ok_or_else(|| err(format!("syntax error at or near \"{}\"", def[0].text)))?;
            let ty: Vec<&str> = def[1..].iter().map(|t| t.text.as_str()).collect();
            if ty.is_empty() {
                return Err(err(format!("column \"{name}\" has no type")));
            }
            Ok((name, external_column_type(&ty.join(" "))))
        })
        .collect()
}

/// `(year=2026, month='11')` → [(year, 2026), (month, 11)].
fn partition_spec(toks: &[&Token]) -> Result<Vec<(String, String)>, ExecError> {
    split_commas(toks)
        .into_iter()
        .map(|kv| {
            let bad = || err("invalid partition specification");
            if kv.len() < 3 || !kv[1].is_punct("=") {
                return Err(bad());
            }
            let key = kv[0].ident().ok_or_else(bad)?;
            let neg = kv.len() == 4 && kv[2].is_punct("-");
            let v = kv[kv.len() - 1];
            let val = match v.kind {
                Kind::Str => v.string_value().ok_or_else(bad)?,
                Kind::Number | Kind::Word => v.text.clone(),
                _ => return Err(bad()),
            };
            Ok((key, if neg { format!("-{val}") } else { val }))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    CreateSchema {
        name: String,
        if_not_exists: bool,
        database: Option<String>,
        iam_role: Option<String>,
    },
    CreateTable {
        schema: String,
        table: String,
        if_not_exists: bool,
        columns: Vec<(String, String)>,
        partitions: Vec<(String, String)>,
        location: String,
        format: String,
        serde: Option<String>,
        delimiter: Option<String>,
        properties: Vec<(String, String)>,
    },
    /// `DROP [EXTERNAL] TABLE`; only ours when the schema is external.
    DropTable {
        schema: String,
        table: String,
        if_exists: bool,
        explicit: bool,
    },
    /// `DROP SCHEMA`; only ours when the schema is external.
    DropSchema {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    AddPartitions {
        schema: String,
        table: String,
        if_not_exists: bool,
        parts: Vec<(Vec<(String, String)>, String)>,
    },
    DropPartition {
        schema: String,
        table: String,
        if_exists: bool,
        spec: Vec<(String, String)>,
    },
    SetPartitionLocation {
        schema: String,
        table: String,
        spec: Vec<(String, String)>,
        location: String,
    },
}

/// Recognises the Spectrum DDL forms; `Ok(None)` for everything else.
pub fn parse(tokens: &[Token]) -> Result<Option<Ddl>, ExecError> {
    let mut c = Cur::new(tokens);
    if c.eat_words(&["create", "external", "schema"]) {
        let if_not_exists = c.eat_words(&["if", "not", "exists"]);
        let name = c.ident()?;
        let (mut database, mut iam_role) = (None, None);
        while !c.at_end() {
            if c.peek().is_some_and(|t| t.is_word("database"))
                && c.toks.get(c.pos + 1).is_some_and(|t| t.kind == Kind::Str)
            {
                c.pos += 1;
                database = Some(c.string()?);
            } else if c.eat_word("iam_role") {
                iam_role = if c.eat_word("default") {
                    Some("default".to_string())
                } else {
                    Some(c.string()?)
                };
            } else {
                c.pos += 1;
            }
        }
        return Ok(Some(Ddl::CreateSchema {
            name,
            if_not_exists,
            database,
            iam_role,
        }));
    }
    if c.eat_words(&["create", "external", "table"]) {
        let if_not_exists = c.eat_words(&["if", "not", "exists"]);
        let (schema, table) = c.qualified()?;
        let columns = column_defs(&c.group()?)?;
        let (mut partitions, mut location, mut format, mut serde, mut delimiter, mut properties) = (
            Vec::new(),
            None,
            String::from("TEXTFILE"),
            None,
            None,
            Vec::new(),
        );
        while !c.at_end() {
            if c.eat_words(&["partitioned", "by"]) {
                partitions = column_defs(&c.group()?)?;
            } else if c.eat_words(&["row", "format", "serde"]) {
                serde = Some(c.string()?);
                if c.eat_words(&["with", "serdeproperties"]) {
                    c.group()?;
                }
            } else if c.eat_words(&["row", "format", "delimited"]) {
                while c.eat_words(&["fields", "terminated", "by"])
                    || c.eat_words(&["lines", "terminated", "by"])
                {
                    let d = c.string()?;
                    if delimiter.is_none() {
                        delimiter = Some(d);
                    }
                }
            } else if c.eat_words(&["stored", "as"]) {
                if c.eat_word("inputformat") {
                    let input = c.string()?;
                    format = if input.to_lowercase().contains("parquet") {
                        "PARQUET".into()
                    } else {
                        "TEXTFILE".into()
                    };
                    if c.eat_word("outputformat") {
                        c.string()?;
                    }
                } else {
                    format = c.ident()?.to_uppercase();
                }
            } else if c.eat_word("location") {
                location = Some(c.string()?);
            } else if c.eat_words(&["table", "properties"]) {
                for kv in split_commas(&c.group()?) {
                    if let [k, eq, v] = kv.as_slice()
                        && eq.is_punct("=")
                        && let (Some(k), Some(v)) = (k.string_value(), v.string_value())
                    {
                        properties.push((k, v));
                    }
                }
            } else {
                return Err(c.syntax());
            }
        }
        let location = location.ok_or_else(|| err("LOCATION is required for an external table"))?;
        if parse_s3_uri(&location).is_none() {
            return Err(err(format!("invalid S3 location '{location}'")));
        }
        return Ok(Some(Ddl::CreateTable {
            schema,
            table,
            if_not_exists,
            columns,
            partitions,
            location,
            format,
            serde,
            delimiter,
            properties,
        }));
    }
    c.pos = 0;
    if c.eat_word("drop") {
        let explicit = c.eat_word("external");
        if c.eat_word("table") {
            let if_exists = c.eat_words(&["if", "exists"]);
            let save = c.pos;
            let a = c.ident()?;
            if !c.eat_punct(".") {
                c.pos = save;
                return if explicit { Err(c.syntax()) } else { Ok(None) };
            }
            let table = c.ident()?;
            if !c.at_end() && !c.eat_word("cascade") && !c.eat_word("restrict") {
                // DROP TABLE a.b, c.d … is left to PostgreSQL.
                return Ok(None);
            }
            return Ok(Some(Ddl::DropTable {
                schema: a,
                table,
                if_exists,
                explicit,
            }));
        }
        if !explicit && c.eat_word("schema") {
            let if_exists = c.eat_words(&["if", "exists"]);
            let name = c.ident()?;
            c.eat_words(&["drop", "external", "database"]);
            let cascade = c.eat_word("cascade");
            c.eat_word("restrict");
            if !c.at_end() {
                return Ok(None);
            }
            return Ok(Some(Ddl::DropSchema {
                name,
                if_exists,
                cascade,
            }));
        }
        return Ok(None);
    }
    c.pos = 0;
    if c.eat_words(&["alter", "table"]) {
        let save = c.pos;
        let Ok((schema, table)) = c.qualified() else {
            return Ok(None);
        };
        if c.eat_word("add") {
            let mut if_not_exists = c.eat_words(&["if", "not", "exists"]);
            let mut parts = Vec::new();
            while c.eat_word("partition") {
                let spec = partition_spec(&c.group()?)?;
                if !c.eat_word("location") {
                    return Err(c.syntax());
                }
                parts.push((spec, c.string()?));
                if_not_exists |= c.eat_words(&["if", "not", "exists"]);
                c.eat_punct(",");
            }
            if parts.is_empty() {
                c.pos = save;
                return Ok(None);
            }
            if !c.at_end() {
                return Err(c.syntax());
            }
            return Ok(Some(Ddl::AddPartitions {
                schema,
                table,
                if_not_exists,
                parts,
            }));
        }
        if c.eat_word("drop") {
            let if_exists = c.eat_words(&["if", "exists"]);
            if !c.eat_word("partition") {
                return Ok(None);
            }
            let spec = partition_spec(&c.group()?)?;
            return Ok(Some(Ddl::DropPartition {
                schema,
                table,
                if_exists,
                spec,
            }));
        }
        if c.eat_word("partition") {
            let spec = partition_spec(&c.group()?)?;
            if c.eat_words(&["set", "location"]) {
                let location = c.string()?;
                return Ok(Some(Ddl::SetPartitionLocation {
                    schema,
                    table,
                    spec,
                    location,
                }));
            }
        }
    }
    Ok(None)
}

/// Runs `body` in a transaction unless one is already open (a batch).
async fn begin(client: &Client, in_txn: bool) -> Result<(), ExecError> {
    if !in_txn {
        client.batch_execute("BEGIN").await?;
    }
    Ok(())
}

async fn end<T>(client: &Client, in_txn: bool, r: Result<T, ExecError>) -> Result<T, ExecError> {
    if in_txn {
        return r;
    }
    match r {
        Ok(v) => {
            client.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn is_external_schema(client: &Client, name: &str) -> Result<bool, ExecError> {
    let row = client
        .query_opt(
            "SELECT 1 FROM _emulator.external_schemas WHERE schema_name = $1",
            &[&name],
        )
        .await?;
    Ok(row.is_some())
}

/// An external table as registered in the catalog.
#[derive(Debug, Clone)]
pub struct ExtTable {
    pub schema: String,
    pub table: String,
    pub data_table: String,
    pub format: String,
    pub serde: Option<String>,
    pub delimiter: Option<String>,
    pub columns: Vec<(String, String)>,
    pub partition_columns: Vec<(String, String)>,
}

impl ExtTable {
    fn text_format(&self) -> TextFormat {
        let json_serde = self
            .serde
            .as_deref()
            .is_some_and(|s| s.to_lowercase().contains("json"));
        match &self.delimiter {
            Some(d) if !json_serde => TextFormat::Delimited(unescape_delimiter(d)),
            _ if json_serde => TextFormat::Json,
            // TEXTFILE without a serde: Hive's default ^A delimiter, but JSON lines are
            // what the lake writes, so sniff per object below.
            _ => TextFormat::Json,
        }
    }
}

fn unescape_delimiter(d: &str) -> char {
    match d {
        "\\t" => '\t',
        "\\001" | "\\u0001" => '\u{1}',
        _ => d.chars().next().unwrap_or(','),
    }
}

fn pairs_json(v: &[(String, String)]) -> Value {
    Value::Array(
        v.iter()
            .map(|(n, t)| json!({"name": n, "type": t}))
            .collect(),
    )
}

fn pairs_from_json(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    Some((
                        c["name"].as_str()?.to_string(),
                        c["type"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn load_tables(client: &Client) -> Result<Vec<ExtTable>, ExecError> {
    let rows = client
        .query(
            "SELECT schema_name, table_name, data_table, format, serde, delimiter, columns::text, partition_columns::text FROM _emulator.external_tables",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let cols: String = r.get(6);
            let parts: String = r.get(7);
            ExtTable {
                schema: r.get(0),
                table: r.get(1),
                data_table: r.get(2),
                format: r.get(3),
                serde: r.get(4),
                delimiter: r.get(5),
                columns: pairs_from_json(&serde_json::from_str(&cols).unwrap_or(Value::Null)),
                partition_columns: pairs_from_json(
                    &serde_json::from_str(&parts).unwrap_or(Value::Null),
                ),
            }
        })
        .collect())
}

async fn find_table(
    client: &Client,
    schema: &str,
    table: &str,
) -> Result<Option<ExtTable>, ExecError> {
    Ok(load_tables(client)
        .await?
        .into_iter()
        .find(|t| t.schema == schema && t.table == table))
}

/// Executes `ddl` if it concerns external objects; `Ok(false)` hands the statement back
/// to PostgreSQL (e.g. DROP TABLE of an ordinary table).
/// `strict`: refuse, like Redshift, the DDL it restricts inside a transaction block
/// (CREATE/DROP/ALTER EXTERNAL TABLE, "SVL_MULTI_STATEMENT_VIOLATIONS",
/// https://docs.aws.amazon.com/redshift/latest/dg/r_SVL_MULTI_STATEMENT_VIOLATIONS.html).
pub async fn execute(
    client: &Client,
    ddl: Ddl,
    in_txn: bool,
    strict: bool,
) -> Result<bool, ExecError> {
    match &ddl {
        Ddl::DropTable {
            schema,
            explicit: false,
            ..
        }
        | Ddl::DropSchema { name: schema, .. }
            if !is_external_schema(client, schema).await? =>
        {
            return Ok(false);
        }
        _ => {}
    }
    if strict && in_txn {
        let cmd = match &ddl {
            Ddl::CreateTable { .. } => Some("CREATE EXTERNAL TABLE"),
            Ddl::DropTable { .. } => Some("DROP EXTERNAL TABLE"),
            Ddl::AddPartitions { .. }
            | Ddl::DropPartition { .. }
            | Ddl::SetPartitionLocation { .. } => Some("ALTER EXTERNAL TABLE"),
            Ddl::CreateSchema { .. } | Ddl::DropSchema { .. } => None,
        };
        if let Some(cmd) = cmd {
            return Err(ExecError(format!(
                "ERROR: {cmd} cannot run inside a transaction block (refused like Amazon Redshift (redshift-data-emulator strict mode))"
            )));
        }
    }
    begin(client, in_txn).await?;
    let r = execute_in_txn(client, ddl).await;
    end(client, in_txn, r).await.map(|_| true)
}

async fn execute_in_txn(client: &Client, ddl: Ddl) -> Result<(), ExecError> {
    client
        .batch_execute("SELECT pg_advisory_xact_lock(7460002)")
        .await?;
    match ddl {
        Ddl::CreateSchema {
            name,
            if_not_exists,
            database,
            iam_role,
        } => {
            let ine = if if_not_exists { "IF NOT EXISTS " } else { "" };
            client
                .batch_execute(&format!("CREATE SCHEMA {ine}{}", quote_ident(&name)))
                .await?;
            client
                .execute(
                    "INSERT INTO _emulator.external_schemas (schema_name, catalog_database, iam_role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&name, &database, &iam_role],
                )
                .await?;
        }
        Ddl::CreateTable {
            schema,
            table,
            if_not_exists,
            columns,
            partitions,
            location,
            format,
            serde,
            delimiter,
            properties,
        } => {
            if !is_external_schema(client, &schema).await? {
                return Err(err(format!("External schema \"{schema}\" does not exist")));
            }
            if find_table(client, &schema, &table).await?.is_some() {
                if if_not_exists {
                    return Ok(());
                }
                return Err(err(format!("relation \"{schema}.{table}\" already exists")));
            }
            let mut names: Vec<&str> = Vec::new();
            for (n, _) in columns.iter().chain(partitions.iter()) {
                if names.contains(&n.as_str()) {
                    return Err(err(format!("column \"{n}\" specified more than once")));
                }
                names.push(n);
            }
            let data_table = format!("ext_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
            let defs: Vec<String> = columns
                .iter()
                .chain(partitions.iter())
                .map(|(n, t)| format!("{} {t}", quote_ident(n)))
                .collect();
            let view_cols: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
            let sql = format!(
                "CREATE TABLE _emulator.{dt} ({defs}, {PARTITION_COL} bigint NOT NULL, {OBJECT_COL} text NOT NULL);
                 CREATE INDEX ON _emulator.{dt} ({PARTITION_COL}, {OBJECT_COL});
                 {partition_index}
                 CREATE VIEW {s}.{t} AS SELECT {cols} FROM _emulator.{dt};",
                dt = quote_ident(&data_table),
                defs = defs.join(", "),
                s = quote_ident(&schema),
                t = quote_ident(&table),
                cols = view_cols.join(", "),
                // Stands in for Spectrum's partition pruning when a query filters on the
                // partition columns.
                partition_index = if partitions.is_empty() {
                    String::new()
                } else {
                    let cols: Vec<String> =
                        partitions.iter().map(|(n, _)| quote_ident(n)).collect();
                    format!(
                        "CREATE INDEX ON _emulator.{} ({});",
                        quote_ident(&data_table),
                        cols.join(", ")
                    )
                },
            );
            client.batch_execute(&sql).await?;
            let props: serde_json::Map<String, Value> = properties
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            client
                .execute(
                    "INSERT INTO _emulator.external_tables (schema_name, table_name, data_table, location, format, serde, delimiter, columns, partition_columns, properties) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10::text::jsonb)",
                    &[
                        &schema,
                        &table,
                        &data_table,
                        &location,
                        &format,
                        &serde,
                        &delimiter,
                        &pairs_json(&columns).to_string(),
                        &pairs_json(&partitions).to_string(),
                        &Value::Object(props).to_string(),
                    ],
                )
                .await?;
            if partitions.is_empty() {
                // An unpartitioned table reads its whole location.
                client
                    .execute(
                        "INSERT INTO _emulator.external_partitions (schema_name, table_name, spec, \"values\", location) VALUES ($1, $2, '', '{}', $3)",
                        &[&schema, &table, &location],
                    )
                    .await?;
            }
        }
        Ddl::DropTable {
            schema,
            table,
            if_exists,
            ..
        } => match find_table(client, &schema, &table).await? {
            Some(t) => drop_table(client, &t).await?,
            None if if_exists => {}
            None => return Err(err(format!("table \"{schema}.{table}\" does not exist"))),
        },
        Ddl::DropSchema {
            name,
            if_exists,
            cascade,
        } => {
            for t in load_tables(client)
                .await?
                .iter()
                .filter(|t| t.schema == name)
            {
                drop_table(client, t).await?;
            }
            let ie = if if_exists { "IF EXISTS " } else { "" };
            let mode = if cascade { " CASCADE" } else { "" };
            client
                .batch_execute(&format!("DROP SCHEMA {ie}{}{mode}", quote_ident(&name)))
                .await?;
            client
                .execute(
                    "DELETE FROM _emulator.external_schemas WHERE schema_name = $1",
                    &[&name],
                )
                .await?;
        }
        Ddl::AddPartitions {
            schema,
            table,
            if_not_exists,
            parts,
        } => {
            let t = require_table(client, &schema, &table).await?;
            for (spec, location) in parts {
                let (key, values) = canonical_spec(&t, &spec)?;
                if parse_s3_uri(&location).is_none() {
                    return Err(err(format!("invalid S3 location '{location}'")));
                }
                let n = client
                    .execute(
                        "INSERT INTO _emulator.external_partitions (schema_name, table_name, spec, \"values\", location) VALUES ($1, $2, $3, $4::text::jsonb, $5) ON CONFLICT DO NOTHING",
                        &[&schema, &table, &key, &values.to_string(), &location],
                    )
                    .await?;
                if n == 0 && !if_not_exists {
                    return Err(err(format!("Partition already exists: {key}")));
                }
            }
        }
        Ddl::DropPartition {
            schema,
            table,
            if_exists,
            spec,
        } => {
            let t = require_table(client, &schema, &table).await?;
            let (key, _) = canonical_spec(&t, &spec)?;
            let row = client
                .query_opt(
                    "DELETE FROM _emulator.external_partitions WHERE schema_name = $1 AND table_name = $2 AND spec = $3 RETURNING id",
                    &[&schema, &table, &key],
                )
                .await?;
            match row {
                Some(r) => {
                    let id: i64 = r.get(0);
                    client
                        .execute(
                            &format!(
                                "DELETE FROM _emulator.{} WHERE {PARTITION_COL} = $1",
                                quote_ident(&t.data_table)
                            ),
                            &[&id],
                        )
                        .await?;
                }
                None if if_exists => {}
                None => return Err(err(format!("Partition does not exist: {key}"))),
            }
        }
        Ddl::SetPartitionLocation {
            schema,
            table,
            spec,
            location,
        } => {
            let t = require_table(client, &schema, &table).await?;
            let (key, _) = canonical_spec(&t, &spec)?;
            let row = client
                .query_opt(
                    "UPDATE _emulator.external_partitions SET location = $4 WHERE schema_name = $1 AND table_name = $2 AND spec = $3 RETURNING id",
                    &[&schema, &table, &key, &location],
                )
                .await?
                .ok_or_else(|| err(format!("Partition does not exist: {key}")))?;
            let id: i64 = row.get(0);
            // The next read reloads from the new location.
            client
                .execute(
                    &format!(
                        "DELETE FROM _emulator.{} WHERE {PARTITION_COL} = $1",
                        quote_ident(&t.data_table)
                    ),
                    &[&id],
                )
                .await?;
            client
                .execute(
                    "DELETE FROM _emulator.external_objects WHERE partition_id = $1",
                    &[&id],
                )
                .await?;
        }
    }
    Ok(())
}

async fn require_table(client: &Client, schema: &str, table: &str) -> Result<ExtTable, ExecError> {
    find_table(client, schema, table)
        .await?
        .ok_or_else(|| err(format!("\"{schema}.{table}\" is not an external table")))
}

async fn drop_table(client: &Client, t: &ExtTable) -> Result<(), ExecError> {
    client
        .batch_execute(&format!(
            "DROP VIEW IF EXISTS {}.{}; DROP TABLE IF EXISTS _emulator.{};",
            quote_ident(&t.schema),
            quote_ident(&t.table),
            quote_ident(&t.data_table)
        ))
        .await?;
    client
        .execute(
            "DELETE FROM _emulator.external_tables WHERE schema_name = $1 AND table_name = $2",
            &[&t.schema, &t.table],
        )
        .await?;
    Ok(())
}

/// Orders the spec by the table's partition columns: `year=2026/month=11/day=25`.
fn canonical_spec(t: &ExtTable, spec: &[(String, String)]) -> Result<(String, Value), ExecError> {
    if spec.len() != t.partition_columns.len() {
        return Err(err(format!(
            "partition specification must name all partition columns of {}.{}",
            t.schema, t.table
        )));
    }
    let map: HashMap<&str, &str> = spec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut parts = Vec::new();
    let mut values = serde_json::Map::new();
    for (name, _) in &t.partition_columns {
        let v = map.get(name.as_str()).ok_or_else(|| {
            err(format!(
                "\"{name}\" is missing from the partition specification"
            ))
        })?;
        parts.push(format!("{name}={v}"));
        values.insert(name.clone(), Value::String((*v).to_string()));
    }
    Ok((parts.join("/"), Value::Object(values)))
}

/// External tables `tokens` reads: every `schema.table` naming one, or all of them for
/// `CALL` (a procedure may read any).
pub fn referenced(tokens: &[Token], tables: &[ExtTable]) -> Vec<ExtTable> {
    if tables.is_empty() {
        return Vec::new();
    }
    let sig: Vec<&Token> = tokens.iter().filter(|t| !t.is_trivia()).collect();
    if sig.first().is_some_and(|t| t.is_word("call")) {
        return tables.to_vec();
    }
    let mut out: Vec<ExtTable> = Vec::new();
    for w in sig.windows(3) {
        if !w[1].is_punct(".") {
            continue;
        }
        let (Some(s), Some(t)) = (w[0].ident(), w[2].ident()) else {
            continue;
        };
        if let Some(x) = tables.iter().find(|x| x.schema == s && x.table == t)
            && !out.iter().any(|o| o.data_table == x.data_table)
        {
            out.push(x.clone());
        }
    }
    out
}

/// Brings the rows of `t` in line with the objects in its partitions' S3 locations.
pub async fn sync(
    client: &Client,
    lake: &Lake,
    t: &ExtTable,
    in_txn: bool,
) -> Result<(), ExecError> {
    begin(client, in_txn).await?;
    let r = sync_in_txn(client, lake, t).await;
    end(client, in_txn, r).await
}

async fn sync_in_txn(client: &Client, lake: &Lake, t: &ExtTable) -> Result<(), ExecError> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&t.data_table],
        )
        .await?;
    let parts = client
        .query(
            "SELECT id, location, \"values\"::text FROM _emulator.external_partitions WHERE schema_name = $1 AND table_name = $2 ORDER BY id",
            &[&t.schema, &t.table],
        )
        .await?;
    let targets: Vec<Target> = t
        .columns
        .iter()
        .map(|(n, ty)| Target {
            name: n.clone(),
            is_timestamp: ty.to_lowercase().starts_with("timestamp"),
        })
        .collect();
    let dt = quote_ident(&t.data_table);
    let parts: Vec<(i64, String, Value)> = parts
        .iter()
        .map(|p| {
            let values = serde_json::from_str(&p.get::<_, String>(2)).unwrap_or(Value::Null);
            (p.get(0), p.get(1), values)
        })
        .collect();
    let ids: Vec<i64> = parts.iter().map(|(id, _, _)| *id).collect();
    let mut known_by_partition: HashMap<i64, HashMap<String, (String, i64)>> = HashMap::new();
    for r in client
        .query(
            "SELECT partition_id, uri, etag, size FROM _emulator.external_objects WHERE partition_id = ANY($1)",
            &[&ids],
        )
        .await?
    {
        known_by_partition
            .entry(r.get(0))
            .or_default()
            .insert(r.get(1), (r.get(2), r.get(3)));
    }
    let mut listings = Listings::new(parts.iter().filter_map(|(_, loc, _)| parse_s3_uri(loc)));
    for (id, location, values) in parts {
        let Some((bucket, prefix)) = parse_s3_uri(&location) else {
            continue;
        };
        let listed = listings.objects(lake, &bucket, &prefix).await?;
        let known = known_by_partition.remove(&id).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for o in listed.iter().filter(|o| is_data_object(&prefix, &o.key)) {
            let uri = format!("s3://{bucket}/{}", o.key);
            seen.insert(uri.clone());
            if known.get(&uri) == Some(&(o.etag.clone(), o.size)) {
                continue;
            }
            let data = lake.get(&bucket, &o.key).await.map_err(err)?;
            if t.format == "PARQUET" && !data.starts_with(b"PAR1") {
                return Err(err(format!(
                    "{uri} is not a Parquet file ({}.{} is STORED AS PARQUET)",
                    t.schema, t.table
                )));
            }
            let fmt = t.text_format();
            let tg = targets.clone();
            let rows = tokio::task::spawn_blocking(move || formats::decode(data, &fmt, &tg))
                .await
                .map_err(|e| err(format!("decoding {uri}: {e}")))?
                .map_err(|e| err(format!("decoding {uri} for {}.{}: {e}", t.schema, t.table)))?;
            client
                .execute(&format!("DELETE FROM _emulator.{dt} WHERE {PARTITION_COL} = $1 AND {OBJECT_COL} = $2"), &[&id, &uri])
                .await?;
            insert_rows(client, t, &dt, id, &uri, &values, &rows)
                .await
                .map_err(|e| {
                    ExecError(format!(
                        "{} (loading {uri} into {}.{})",
                        e.0, t.schema, t.table
                    ))
                })?;
            client
                .execute(
                    "INSERT INTO _emulator.external_objects (partition_id, uri, etag, size, rows) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (partition_id, uri) DO UPDATE SET etag = EXCLUDED.etag, size = EXCLUDED.size, rows = EXCLUDED.rows, loaded_at = now()",
                    &[&id, &uri, &o.etag, &o.size, &(rows.len() as i64)],
                )
                .await?;
            tracing::info!(table = %format!("{}.{}", t.schema, t.table), %uri, rows = rows.len(), "loaded external object");
        }
        for uri in known.keys().filter(|u| !seen.contains(*u)) {
            client
                .execute(&format!("DELETE FROM _emulator.{dt} WHERE {PARTITION_COL} = $1 AND {OBJECT_COL} = $2"), &[&id, uri])
                .await?;
            client
                .execute(
                    "DELETE FROM _emulator.external_objects WHERE partition_id = $1 AND uri = $2",
                    &[&id, uri],
                )
                .await?;
            tracing::info!(%uri, "removed rows of deleted external object");
        }
    }
    Ok(())
}

/// The S3 objects of one sync. Partitions of a table usually share a prefix (the table's
/// location), so each bucket is listed ONCE at the partitions' common prefix and every
/// partition takes its slice: a year of daily partitions costs a few ListObjects pages
/// instead of 366 calls before every statement that reads the table.
struct Listings {
    /// bucket → the prefix to list once (None: the partitions share no directory; each is
    /// listed on its own rather than listing the whole bucket).
    common: HashMap<String, Option<String>>,
    /// bucket → objects under its common prefix, sorted by key.
    listed: HashMap<String, Vec<ObjectInfo>>,
}

impl Listings {
    fn new(locations: impl Iterator<Item = (String, String)>) -> Self {
        let mut common: HashMap<String, Option<String>> = HashMap::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        for (bucket, prefix) in locations {
            *count.entry(bucket.clone()).or_default() += 1;
            common
                .entry(bucket)
                .and_modify(|c| {
                    if let Some(cur) = c {
                        let n = common_prefix_len(cur, &prefix);
                        cur.truncate(n);
                    }
                })
                .or_insert(Some(prefix));
        }
        for (bucket, c) in common.iter_mut() {
            if count.get(bucket).copied().unwrap_or(0) > 1 {
                // Cut back to a whole directory ("a/b/day=1" and "a/b/day=2" → "a/b/").
                *c = c
                    .take()
                    .and_then(|p| p.rfind('/').map(|i| p[..=i].to_owned()));
            }
        }
        Self {
            common,
            listed: HashMap::new(),
        }
    }

    /// The objects under `prefix` in `bucket`.
    async fn objects(
        &mut self,
        lake: &Lake,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, ExecError> {
        let Some(Some(common)) = self.common.get(bucket) else {
            return lake.list(bucket, prefix).await.map_err(err);
        };
        if !self.listed.contains_key(bucket) {
            let mut all = lake.list(bucket, common).await.map_err(err)?;
            all.sort_by(|a, b| a.key.cmp(&b.key));
            self.listed.insert(bucket.to_owned(), all);
        }
        let all = &self.listed[bucket];
        let start = all.partition_point(|o| o.key.as_str() < prefix);
        Ok(all[start..]
            .iter()
            .take_while(|o| o.key.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// Length in bytes of the longest common prefix, on a char boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

fn literal(v: &Option<String>) -> String {
    match v {
        // PostgreSQL text cannot hold NUL.
        Some(s) => quote_literal(&s.replace('\0', "")),
        None => "NULL".into(),
    }
}

async fn insert_rows(
    client: &Client,
    t: &ExtTable,
    dt: &str,
    partition_id: i64,
    uri: &str,
    values: &Value,
    rows: &[Vec<Option<String>>],
) -> Result<(), ExecError> {
    let mut cols: Vec<String> = t.columns.iter().map(|(n, _)| quote_ident(n)).collect();
    cols.extend(t.partition_columns.iter().map(|(n, _)| quote_ident(n)));
    cols.push(PARTITION_COL.into());
    cols.push(OBJECT_COL.into());
    let mut tail: Vec<String> = t
        .partition_columns
        .iter()
        .map(|(n, _)| literal(&values.get(n).and_then(Value::as_str).map(str::to_string)))
        .collect();
    tail.push(partition_id.to_string());
    tail.push(quote_literal(uri));
    let tail = tail.join(", ");
    for chunk in rows.chunks(INSERT_CHUNK) {
        let tuples: Vec<String> = chunk
            .iter()
            .map(|r| {
                let vals: Vec<String> = r.iter().map(literal).collect();
                if vals.is_empty() {
                    format!("({tail})")
                } else {
                    format!("({}, {tail})", vals.join(", "))
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO _emulator.{dt} ({}) VALUES {}",
            cols.join(", "),
            tuples.join(", ")
        );
        client.batch_execute(&sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    #[test]
    fn parses_create_external_schema() {
        let d = parse(&tokenize(
            "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE 'fleetline' IAM_ROLE 'arn:aws:iam::1:role/x' CREATE EXTERNAL DATABASE IF NOT EXISTS",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            d,
            Ddl::CreateSchema {
                name: "lake".into(),
                if_not_exists: true,
                database: Some("fleetline".into()),
                iam_role: Some("arn:aws:iam::1:role/x".into())
            }
        );
    }

    #[test]
    fn parses_create_external_table() {
        let sql = "CREATE EXTERNAL TABLE lake.raw (vin varchar(17), speed decimal(12,3), ts timestamp, note string)
            PARTITIONED BY (year int, month int, day int)
            ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
            STORED AS TEXTFILE LOCATION 's3://fleetline-lake/raw/' TABLE PROPERTIES ('classification'='json')";
        let Some(Ddl::CreateTable {
            schema,
            table,
            columns,
            partitions,
            location,
            format,
            serde,
            properties,
            ..
        }) = parse(&tokenize(sql)).unwrap()
        else {
            panic!("not parsed");
        };
        assert_eq!((schema.as_str(), table.as_str()), ("lake", "raw"));
        assert_eq!(columns.len(), 4);
        assert_eq!(columns[1], ("speed".into(), "decimal ( 12 , 3 )".into()));
        assert_eq!(columns[3].1, "varchar(65535)");
        assert_eq!(
            partitions.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["year", "month", "day"]
        );
        assert_eq!(location, "s3://fleetline-lake/raw/");
        assert_eq!(format, "TEXTFILE");
        assert_eq!(serde.as_deref(), Some("org.openx.data.jsonserde.JsonSerDe"));
        assert_eq!(properties, vec![("classification".into(), "json".into())]);
    }

    #[test]
    fn parses_partitions_and_drops() {
        let d = parse(&tokenize(
            "ALTER TABLE lake.raw ADD IF NOT EXISTS PARTITION (year=2026, month=11, day='25') LOCATION 's3://b/p/year=2026/month=11/day=25/' PARTITION (year=2026, month=11, day=26) LOCATION 's3://b/x/'",
        ))
        .unwrap()
        .unwrap();
        let Ddl::AddPartitions {
            parts,
            if_not_exists,
            ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert!(if_not_exists);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0[2], ("day".into(), "25".into()));
        assert!(matches!(
            parse(&tokenize("DROP TABLE IF EXISTS lake.raw")).unwrap(),
            Some(Ddl::DropTable {
                if_exists: true,
                explicit: false,
                ..
            })
        ));
        assert!(matches!(
            parse(&tokenize(
                "ALTER TABLE lake.raw DROP PARTITION (year=2026, month=11, day=25)"
            ))
            .unwrap(),
            Some(Ddl::DropPartition { .. })
        ));
        assert_eq!(parse(&tokenize("DROP TABLE plain")).unwrap(), None);
        assert_eq!(
            parse(&tokenize("ALTER TABLE a.b ADD COLUMN c int")).unwrap(),
            None
        );
        assert_eq!(parse(&tokenize("SELECT 1")).unwrap(), None);
    }

    #[test]
    fn partitions_are_listed_once_at_their_common_directory() {
        let loc = |b: &str, p: &str| (b.to_owned(), p.to_owned());
        let l = Listings::new(
            [
                loc("lake", "run1/raw/year=2025/month=12/day=31/"),
                loc("lake", "run1/raw/year=2026/month=01/day=01/"),
                loc("lake", "run1/raw/year=2026/month=01/day=02/"),
                loc("solo", "only/one/"),
                loc("mixed", "alpha/x/"),
                loc("mixed", "beta/y/"),
            ]
            .into_iter(),
        );
        assert_eq!(l.common["lake"].as_deref(), Some("run1/raw/"));
        assert_eq!(l.common["solo"].as_deref(), Some("only/one/"));
        // No shared directory: each partition is listed on its own, never the whole bucket.
        assert_eq!(l.common["mixed"], None);
        assert_eq!(common_prefix_len("abc/d", "abc/e"), 4);
        assert_eq!(common_prefix_len("ab", "abc"), 2);
        assert_eq!(common_prefix_len("é/a", "é/b"), "é/".len());
    }

    #[test]
    fn finds_referenced_tables() {
        let t = ExtTable {
            schema: "lake".into(),
            table: "raw".into(),
            data_table: "ext_1".into(),
            format: "PARQUET".into(),
            serde: None,
            delimiter: None,
            columns: vec![],
            partition_columns: vec![],
        };
        let tables = vec![t];
        assert_eq!(
            referenced(&tokenize("SELECT * FROM Lake.\"raw\" r"), &tables).len(),
            1
        );
        assert_eq!(referenced(&tokenize("SELECT 'lake.raw'"), &tables).len(), 0);
        assert_eq!(referenced(&tokenize("call p()"), &tables).len(), 1);
    }
}
