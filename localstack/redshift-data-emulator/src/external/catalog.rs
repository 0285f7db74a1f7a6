//! The `_emulator` catalog of external schemas, tables, partitions and loaded objects,
//! and the DDL that changes it (one function per [`Ddl`] form).

use std::collections::HashMap;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::conn::Conn;
use crate::error::ExecError;
use crate::lake::parse_s3_uri;
use crate::lexer::quote_ident;

use super::ddl::{Ddl, PartitionDef, PartitionSpec, TableDef};
use super::{
    ColumnDef, ExtTable, OBJECT_COL, ObjectFormat, PARTITION_COL, StoredAs, TableName,
    in_transaction,
};

pub const CATALOG_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS _emulator;
CREATE TABLE IF NOT EXISTS _emulator.external_schemas (
  schema_name text PRIMARY KEY,
  catalog_database text,
  iam_role text,
  created_at timestamptz NOT NULL DEFAULT now());
-- 'kinesis' for FROM KINESIS (streaming ingestion), NULL for FROM DATA CATALOG.
ALTER TABLE _emulator.external_schemas ADD COLUMN IF NOT EXISTS source text;
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

/// Serialises the catalog DDL of concurrent statements.
const CATALOG_LOCK: i64 = 7460002;

/// Executes `ddl` if it concerns external objects; `Ok(false)` hands the statement back
/// to PostgreSQL (e.g. DROP TABLE of an ordinary table).
/// `strict`: refuse, like Redshift, the DDL it restricts inside a transaction block
/// (CREATE/DROP/ALTER EXTERNAL TABLE, "SVL_MULTI_STATEMENT_VIOLATIONS",
/// https://docs.aws.amazon.com/redshift/latest/dg/r_SVL_MULTI_STATEMENT_VIOLATIONS.html).
pub async fn execute(conn: &Conn, ddl: Ddl, in_txn: bool, strict: bool) -> Result<bool, ExecError> {
    if is_postgres_ddl(&conn.client, &ddl).await? {
        return Ok(false);
    }
    if strict
        && in_txn
        && let Some(command) = restricted_in_transaction(&ddl)
    {
        return Err(ExecError::new(format!(
            "{command} cannot run inside a transaction block ({})",
            crate::strict::WHY
        )));
    }
    in_transaction(conn, in_txn, execute_in_txn(&conn.client, ddl)).await?;
    Ok(true)
}

/// A plain `DROP TABLE`/`DROP SCHEMA` of a schema that is not external.
async fn is_postgres_ddl(client: &Client, ddl: &Ddl) -> Result<bool, ExecError> {
    match ddl {
        Ddl::DropTable {
            name: TableName { schema, .. },
            explicit: false,
            ..
        }
        | Ddl::DropSchema { name: schema, .. } => Ok(!is_external_schema(client, schema).await?),
        _ => Ok(false),
    }
}

/// The command Redshift refuses inside a transaction block, if `ddl` is one.
fn restricted_in_transaction(ddl: &Ddl) -> Option<&'static str> {
    match ddl {
        Ddl::CreateTable(_) => Some("CREATE EXTERNAL TABLE"),
        Ddl::DropTable { .. } => Some("DROP EXTERNAL TABLE"),
        Ddl::AddPartitions { .. }
        | Ddl::DropPartition { .. }
        | Ddl::SetPartitionLocation { .. } => Some("ALTER EXTERNAL TABLE"),
        Ddl::CreateSchema { .. } | Ddl::DropSchema { .. } => None,
    }
}

async fn execute_in_txn(client: &Client, ddl: Ddl) -> Result<(), ExecError> {
    client
        .batch_execute(&format!("SELECT pg_advisory_xact_lock({CATALOG_LOCK})"))
        .await?;
    match ddl {
        Ddl::CreateSchema {
            name,
            if_not_exists,
            database,
            iam_role,
            kinesis,
        } => {
            let source = kinesis.then_some("kinesis");
            let schema = SchemaRow {
                database: &database,
                iam_role: &iam_role,
                source,
            };
            create_schema(client, &name, if_not_exists, schema).await
        }
        Ddl::CreateTable(def) => create_table(client, &def).await,
        Ddl::DropTable {
            name, if_exists, ..
        } => drop_table(client, &name, if_exists).await,
        Ddl::DropSchema {
            name,
            if_exists,
            cascade,
        } => drop_schema(client, &name, if_exists, cascade).await,
        Ddl::AddPartitions {
            table,
            if_not_exists,
            partitions,
        } => add_partitions(client, &table, if_not_exists, &partitions).await,
        Ddl::DropPartition {
            table,
            if_exists,
            spec,
        } => drop_partition(client, &table, if_exists, &spec).await,
        Ddl::SetPartitionLocation {
            table,
            spec,
            location,
        } => set_partition_location(client, &table, &spec, &location).await,
    }
}

/// What the catalog records of an external schema.
struct SchemaRow<'a> {
    database: &'a Option<String>,
    iam_role: &'a Option<String>,
    source: Option<&'a str>,
}

async fn create_schema(
    client: &Client,
    name: &str,
    if_not_exists: bool,
    row: SchemaRow<'_>,
) -> Result<(), ExecError> {
    let if_not_exists = if if_not_exists { "IF NOT EXISTS " } else { "" };
    run_and_record(
        client,
        &format!("CREATE SCHEMA {if_not_exists}{}", quote_ident(name)),
        "INSERT INTO _emulator.external_schemas (schema_name, catalog_database, iam_role, source) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&name, row.database, row.iam_role, &row.source],
    )
    .await
}

async fn create_table(client: &Client, def: &TableDef) -> Result<(), ExecError> {
    let name = &def.name;
    if !is_external_schema(client, &name.schema).await? {
        return Err(ExecError::new(format!(
            "External schema \"{}\" does not exist",
            name.schema
        )));
    }
    if find_table(client, name).await?.is_some() {
        if def.if_not_exists {
            return Ok(());
        }
        return Err(ExecError::new(format!(
            "relation \"{name}\" already exists"
        )));
    }
    let names = distinct_column_names(def)?;
    let data_table = new_data_table_name();
    client
        .batch_execute(&data_table_ddl(def, &names, &data_table))
        .await?;
    insert_table_row(client, def, &data_table).await?;
    if def.partitions.is_empty() {
        // An unpartitioned table reads its whole location.
        let values = HashMap::new();
        insert_partition(client, name, "", &values, &def.location).await?;
    }
    Ok(())
}

/// The columns then the partition columns, each name once.
fn distinct_column_names(def: &TableDef) -> Result<Vec<&str>, ExecError> {
    let mut names: Vec<&str> = Vec::new();
    for c in def.columns.iter().chain(&def.partitions) {
        if names.contains(&c.name.as_str()) {
            return Err(ExecError::new(format!(
                "column \"{}\" specified more than once",
                c.name
            )));
        }
        names.push(&c.name);
    }
    Ok(names)
}

/// `ext_` and 16 hex digits of a random UUID: unique in practice, and short.
fn new_data_table_name() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("ext_{}", &hex[..16])
}

/// The hidden data table, its indexes and the view with exactly the Redshift columns.
fn data_table_ddl(def: &TableDef, names: &[&str], data_table: &str) -> String {
    let data_table = format!("_emulator.{}", quote_ident(data_table));
    let column_defs: Vec<String> = def
        .columns
        .iter()
        .chain(&def.partitions)
        .map(|c| format!("{} {}", quote_ident(&c.name), c.ty))
        .collect();
    let view_columns: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    // Stands in for Spectrum's partition pruning when a query filters on the partition
    // columns.
    let partition_index = if def.partitions.is_empty() {
        String::new()
    } else {
        let columns: Vec<String> = def
            .partitions
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        format!("CREATE INDEX ON {data_table} ({});", columns.join(", "))
    };
    format!(
        "CREATE TABLE {data_table} ({column_defs}, {PARTITION_COL} bigint NOT NULL, {OBJECT_COL} text NOT NULL);
         CREATE INDEX ON {data_table} ({PARTITION_COL}, {OBJECT_COL});
         {partition_index}
         CREATE VIEW {view} AS SELECT {view_columns} FROM {data_table};",
        column_defs = column_defs.join(", "),
        view = def.name.sql(),
        view_columns = view_columns.join(", "),
    )
}

async fn insert_table_row(
    client: &Client,
    def: &TableDef,
    data_table: &str,
) -> Result<(), ExecError> {
    let properties: serde_json::Map<String, Value> = def
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    client
        .execute(
            "INSERT INTO _emulator.external_tables (schema_name, table_name, data_table, location, format, serde, delimiter, columns, partition_columns, properties) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10::text::jsonb)",
            &[
                &def.name.schema,
                &def.name.table,
                &data_table,
                &def.location,
                &def.format.stored_as.name(),
                &def.format.serde,
                &def.format.delimiter,
                &columns_json(&def.columns)?,
                &columns_json(&def.partitions)?,
                &Value::Object(properties).to_string(),
            ],
        )
        .await?;
    Ok(())
}

fn columns_json(columns: &[ColumnDef]) -> Result<String, ExecError> {
    serde_json::to_string(columns).map_err(ExecError::new)
}

async fn drop_table(client: &Client, name: &TableName, if_exists: bool) -> Result<(), ExecError> {
    match find_table(client, name).await? {
        Some(t) => drop_table_objects(client, &t).await,
        None if if_exists => Ok(()),
        None => Err(ExecError::new(format!("table \"{name}\" does not exist"))),
    }
}

async fn drop_schema(
    client: &Client,
    name: &str,
    if_exists: bool,
    cascade: bool,
) -> Result<(), ExecError> {
    for t in load_tables(client)
        .await?
        .iter()
        .filter(|t| t.name.schema == name)
    {
        drop_table_objects(client, t).await?;
    }
    let if_exists = if if_exists { "IF EXISTS " } else { "" };
    let mode = if cascade { " CASCADE" } else { "" };
    run_and_record(
        client,
        &format!("DROP SCHEMA {if_exists}{}{mode}", quote_ident(name)),
        "DELETE FROM _emulator.external_schemas WHERE schema_name = $1",
        &[&name],
    )
    .await
}

async fn add_partitions(
    client: &Client,
    name: &TableName,
    if_not_exists: bool,
    partitions: &[PartitionDef],
) -> Result<(), ExecError> {
    let t = require_table(client, name).await?;
    for p in partitions {
        let (key, values) = canonical_spec(&t, &p.spec)?;
        if parse_s3_uri(&p.location).is_none() {
            return Err(ExecError::new(format!(
                "invalid S3 location '{}'",
                p.location
            )));
        }
        let added = insert_partition(client, name, &key, &values, &p.location).await?;
        if !added && !if_not_exists {
            return Err(ExecError::new(format!("Partition already exists: {key}")));
        }
    }
    Ok(())
}

async fn drop_partition(
    client: &Client,
    name: &TableName,
    if_exists: bool,
    spec: &PartitionSpec,
) -> Result<(), ExecError> {
    let (t, key) = locate_partition(client, name, spec).await?;
    let deleted = client
        .query_opt(
            "DELETE FROM _emulator.external_partitions WHERE schema_name = $1 AND table_name = $2 AND spec = $3 RETURNING id",
            &[&name.schema, &name.table, &key],
        )
        .await?;
    match deleted {
        Some(row) => delete_partition_rows(client, &t, row.get(0)).await,
        None if if_exists => Ok(()),
        None => Err(partition_missing(&key)),
    }
}

async fn set_partition_location(
    client: &Client,
    name: &TableName,
    spec: &PartitionSpec,
    location: &str,
) -> Result<(), ExecError> {
    let (t, key) = locate_partition(client, name, spec).await?;
    let id: i64 = client
        .query_opt(
            "UPDATE _emulator.external_partitions SET location = $4 WHERE schema_name = $1 AND table_name = $2 AND spec = $3 RETURNING id",
            &[&name.schema, &name.table, &key, &location],
        )
        .await?
        .ok_or_else(|| partition_missing(&key))?
        .get(0);
    // The next read reloads from the new location.
    delete_partition_rows(client, &t, id).await?;
    client
        .execute(
            "DELETE FROM _emulator.external_objects WHERE partition_id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// The registered table and the canonical key of `spec` on it.
async fn locate_partition(
    client: &Client,
    name: &TableName,
    spec: &PartitionSpec,
) -> Result<(ExtTable, String), ExecError> {
    let t = require_table(client, name).await?;
    let (key, _) = canonical_spec(&t, spec)?;
    Ok((t, key))
}

fn partition_missing(key: &str) -> ExecError {
    ExecError::new(format!("Partition does not exist: {key}"))
}

/// Registers a partition; `false` when one with that spec already exists.
async fn insert_partition(
    client: &Client,
    name: &TableName,
    key: &str,
    values: &HashMap<String, String>,
    location: &str,
) -> Result<bool, ExecError> {
    let values = serde_json::to_string(values).map_err(ExecError::new)?;
    let inserted = client
        .execute(
            "INSERT INTO _emulator.external_partitions (schema_name, table_name, spec, \"values\", location) VALUES ($1, $2, $3, $4::text::jsonb, $5) ON CONFLICT DO NOTHING",
            &[&name.schema, &name.table, &key, &values, &location],
        )
        .await?;
    Ok(inserted > 0)
}

/// Removes a partition's rows from the data table.
async fn delete_partition_rows(
    client: &Client,
    t: &ExtTable,
    partition_id: i64,
) -> Result<(), ExecError> {
    let sql = format!(
        "DELETE FROM {} WHERE {PARTITION_COL} = $1",
        t.data_table_sql()
    );
    client.execute(&sql, &[&partition_id]).await?;
    Ok(())
}

/// Orders the spec by the table's partition columns: `year=2026/month=11/day=25`, with
/// the values by column.
fn canonical_spec(
    t: &ExtTable,
    spec: &PartitionSpec,
) -> Result<(String, HashMap<String, String>), ExecError> {
    if spec.len() != t.partition_columns.len() {
        return Err(ExecError::new(format!(
            "partition specification must name all partition columns of {}",
            t.name
        )));
    }
    let given: HashMap<&str, &str> = spec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut key = Vec::new();
    let mut values = HashMap::new();
    for c in &t.partition_columns {
        let value = given.get(c.name.as_str()).ok_or_else(|| {
            ExecError::new(format!(
                "\"{}\" is missing from the partition specification",
                c.name
            ))
        })?;
        key.push(format!("{}={value}", c.name));
        values.insert(c.name.clone(), (*value).to_string());
    }
    Ok((key.join("/"), values))
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

pub async fn load_tables(client: &Client) -> Result<Vec<ExtTable>, ExecError> {
    let rows = client
        .query(
            "SELECT schema_name, table_name, data_table, format, serde, delimiter, columns::text, partition_columns::text FROM _emulator.external_tables",
            &[],
        )
        .await?;
    rows.iter().map(table_from_row).collect()
}

fn table_from_row(row: &Row) -> Result<ExtTable, ExecError> {
    let name = TableName {
        schema: row.get(0),
        table: row.get(1),
    };
    let unreadable = |what: String| {
        ExecError::new(format!(
            "the catalog entry of external table {name} is unreadable: {what}"
        ))
    };
    let format: String = row.get(3);
    let stored_as =
        StoredAs::from_name(&format).ok_or_else(|| unreadable(format!("format '{format}'")))?;
    // JSON that does not decode is an error, never a table without columns.
    let columns =
        serde_json::from_str(row.get(6)).map_err(|e| unreadable(format!("columns: {e}")))?;
    let partition_columns = serde_json::from_str(row.get(7))
        .map_err(|e| unreadable(format!("partition columns: {e}")))?;
    Ok(ExtTable {
        name,
        data_table: row.get(2),
        format: ObjectFormat {
            stored_as,
            serde: row.get(4),
            delimiter: row.get(5),
        },
        columns,
        partition_columns,
    })
}

async fn find_table(client: &Client, name: &TableName) -> Result<Option<ExtTable>, ExecError> {
    Ok(load_tables(client)
        .await?
        .into_iter()
        .find(|t| t.name == *name))
}

async fn require_table(client: &Client, name: &TableName) -> Result<ExtTable, ExecError> {
    find_table(client, name)
        .await?
        .ok_or_else(|| ExecError::new(format!("\"{name}\" is not an external table")))
}

/// Drops the view and the data table; the catalog rows of the table's partitions and
/// objects go with it (ON DELETE CASCADE).
async fn drop_table_objects(client: &Client, t: &ExtTable) -> Result<(), ExecError> {
    let drop = format!(
        "DROP VIEW IF EXISTS {}; DROP TABLE IF EXISTS {};",
        t.name.sql(),
        t.data_table_sql()
    );
    run_and_record(
        client,
        &drop,
        "DELETE FROM _emulator.external_tables WHERE schema_name = $1 AND table_name = $2",
        &[&t.name.schema, &t.name.table],
    )
    .await
}

/// Runs `ddl` on PostgreSQL, then the catalog statement `record` that notes it.
async fn run_and_record(
    client: &Client,
    ddl: &str,
    record: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), ExecError> {
    client.batch_execute(ddl).await?;
    client.execute(record, params).await?;
    Ok(())
}
