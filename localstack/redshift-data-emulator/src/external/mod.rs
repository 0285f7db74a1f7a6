//! Redshift Spectrum on PostgreSQL: external schemas, external tables and their
//! partitions are rows in the `_emulator` catalog; each external table's rows live in
//! a hidden table `_emulator.ext_…` (declared columns + partition columns + the source
//! partition and object), exposed to SQL as a view `schema.table` with exactly the
//! Redshift columns.
//!
//! Before a statement reads an external table, every registered partition is synced
//! from S3: new objects are loaded, changed ones (ETag/size) reloaded, deleted ones'
//! rows removed. Nothing is loaded twice, and the partitions' common prefix is listed once
//! per sync. The DDL is transactional here; in strict mode the forms Redshift restricts
//! (CREATE/DROP/ALTER EXTERNAL TABLE) are refused inside a transaction block, as on
//! Redshift.
//!
//! [`ddl`] parses the DDL, [`catalog`] keeps the catalog and runs the DDL, [`sync`]
//! loads the S3 objects.

mod catalog;
mod ddl;
mod sync;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::conn::Conn;
use crate::error::ExecError;
use crate::formats::{Target, TextFormat};
use crate::lexer::{Token, quote_ident};

pub use catalog::{CATALOG_DDL, execute, load_tables};
pub use ddl::parse;
pub use sync::sync;

/// The data table's column holding the row's partition (`external_partitions.id`).
const PARTITION_COL: &str = "__partition_id";
/// The data table's column holding the row's source object (`s3://bucket/key`).
const OBJECT_COL: &str = "__object_uri";

/// `STORED AS`: the file format of an external table's objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoredAs {
    Parquet,
    /// Hive's default.
    #[default]
    TextFile,
}

impl StoredAs {
    /// The name in DDL and in the catalog.
    pub fn name(self) -> &'static str {
        match self {
            StoredAs::Parquet => "PARQUET",
            StoredAs::TextFile => "TEXTFILE",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [StoredAs::Parquet, StoredAs::TextFile]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// `STORED AS INPUTFORMAT 'class'`: Parquet's input format, or else text.
    pub fn from_input_format(class: &str) -> Self {
        if class.to_lowercase().contains("parquet") {
            StoredAs::Parquet
        } else {
            StoredAs::TextFile
        }
    }
}

/// How an external table's objects are read: `STORED AS` and `ROW FORMAT`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectFormat {
    /// `STORED AS PARQUET|TEXTFILE` (or an input format class).
    pub stored_as: StoredAs,
    /// `ROW FORMAT SERDE 'class'`.
    pub serde: Option<String>,
    /// `ROW FORMAT DELIMITED FIELDS TERMINATED BY 'x'`.
    pub delimiter: Option<String>,
}

impl ObjectFormat {
    /// How text objects are read: delimited when a delimiter is declared (and no JSON
    /// serde), otherwise JSON lines, which is what the lake writes (Hive's TEXTFILE
    /// default would be ^A-delimited).
    fn text_format(&self) -> TextFormat {
        let json_serde = self
            .serde
            .as_deref()
            .is_some_and(|s| s.to_lowercase().contains("json"));
        match &self.delimiter {
            Some(d) if !json_serde => TextFormat::Delimited(unescape_delimiter(d)),
            _ => TextFormat::Json,
        }
    }
}

/// `schema.table`: an external table is always named with its external schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    /// As SQL: `"schema"."table"`.
    fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// An external table as registered in the catalog.
#[derive(Debug, Clone)]
pub struct ExtTable {
    pub name: TableName,
    /// The hidden table in `_emulator` holding the rows.
    pub data_table: String,
    /// How the objects are read.
    pub format: ObjectFormat,
    /// The declared columns: what the objects are decoded into.
    pub columns: Vec<ColumnDef>,
    /// `PARTITIONED BY`: their values come from the partition, not from the objects.
    pub partition_columns: Vec<ColumnDef>,
}

impl ExtTable {
    /// The data table as SQL: `_emulator."ext_…"`.
    fn data_table_sql(&self) -> String {
        format!("_emulator.{}", quote_ident(&self.data_table))
    }

    /// The declared columns as the decoder fills them.
    fn targets(&self) -> Vec<Target> {
        self.columns
            .iter()
            .map(|c| Target {
                name: c.name.clone(),
                is_timestamp: c.ty.to_lowercase().starts_with("timestamp"),
            })
            .collect()
    }
}

/// A declared column with its PostgreSQL type; the catalog keeps them as JSON
/// `{"name": …, "type": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

fn unescape_delimiter(d: &str) -> char {
    match d {
        "\\t" => '\t',
        "\\001" | "\\u0001" => '\u{1}',
        _ => d.chars().next().unwrap_or(','),
    }
}

/// Runs `body` in its own transaction unless one is already open (a batch). When the
/// ROLLBACK after a failure fails too, the connection is discarded.
pub(crate) async fn in_transaction<T>(
    conn: &Conn,
    in_txn: bool,
    body: impl Future<Output = Result<T, ExecError>>,
) -> Result<T, ExecError> {
    in_transaction_begun_by(conn, in_txn, "BEGIN", body).await
}

/// [`in_transaction`], its own transaction opened with `begin` (e.g. an isolation level).
pub(crate) async fn in_transaction_begun_by<T>(
    conn: &Conn,
    in_txn: bool,
    begin: &str,
    body: impl Future<Output = Result<T, ExecError>>,
) -> Result<T, ExecError> {
    if in_txn {
        return body.await;
    }
    conn.client.batch_execute(begin).await?;
    match body.await {
        Ok(v) => {
            conn.client.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            conn.rollback().await;
            Err(e)
        }
    }
}

/// External tables `tokens` reads: every `schema.table` naming one, or all of them for
/// `CALL` (a procedure may read any).
pub fn referenced(tokens: &[Token], tables: &[ExtTable]) -> Vec<ExtTable> {
    if tables.is_empty() {
        return Vec::new();
    }
    let significant: Vec<&Token> = tokens.iter().filter(|t| !t.is_trivia()).collect();
    if significant.first().is_some_and(|t| t.is_word("call")) {
        return tables.to_vec();
    }
    let mut out: Vec<ExtTable> = Vec::new();
    for w in significant.windows(3) {
        if !w[1].is_punct(".") {
            continue;
        }
        let (Some(schema), Some(table)) = (w[0].ident(), w[2].ident()) else {
            continue;
        };
        if let Some(found) = tables
            .iter()
            .find(|x| x.name.schema == schema && x.name.table == table)
            && !out.iter().any(|o| o.data_table == found.data_table)
        {
            out.push(found.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    #[test]
    fn finds_referenced_tables() {
        let tables = vec![ExtTable {
            name: TableName {
                schema: "lake".into(),
                table: "raw".into(),
            },
            data_table: "ext_1".into(),
            format: ObjectFormat::default(),
            columns: vec![],
            partition_columns: vec![],
        }];
        assert_eq!(
            referenced(&tokenize("SELECT * FROM Lake.\"raw\" r"), &tables).len(),
            1
        );
        assert_eq!(referenced(&tokenize("SELECT 'lake.raw'"), &tables).len(), 0);
        assert_eq!(referenced(&tokenize("call p()"), &tables).len(), 1);
    }

    #[test]
    fn reads_text_as_json_lines_unless_delimited() {
        let object_format = |serde: Option<&str>, delimiter: Option<&str>| ObjectFormat {
            stored_as: StoredAs::TextFile,
            serde: serde.map(str::to_owned),
            delimiter: delimiter.map(str::to_owned),
        };
        assert_eq!(object_format(None, None).text_format(), TextFormat::Json);
        assert_eq!(
            object_format(None, Some("\\t")).text_format(),
            TextFormat::Delimited('\t')
        );
        let json = Some("org.openx.data.jsonserde.JsonSerDe");
        assert_eq!(
            object_format(json, Some("|")).text_format(),
            TextFormat::Json
        );
    }

    #[test]
    fn column_defs_keep_the_catalog_json_shape() {
        let columns = vec![ColumnDef {
            name: "vin".into(),
            ty: "varchar(17)".into(),
        }];
        let json = serde_json::to_string(&columns).unwrap();
        assert_eq!(json, r#"[{"name":"vin","type":"varchar(17)"}]"#);
        assert_eq!(
            serde_json::from_str::<Vec<ColumnDef>>(&json).unwrap(),
            columns
        );
        assert!(serde_json::from_str::<Vec<ColumnDef>>(r#"[{"name":"vin"}]"#).is_err());
    }

    #[test]
    fn storage_format_names_round_trip() {
        for f in [StoredAs::Parquet, StoredAs::TextFile] {
            assert_eq!(StoredAs::from_name(f.name()), Some(f));
        }
        assert_eq!(StoredAs::from_name("orc"), None);
    }
}
