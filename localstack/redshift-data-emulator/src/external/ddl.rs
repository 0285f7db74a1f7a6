//! The Spectrum DDL forms, parsed from the statement's tokens: CREATE EXTERNAL
//! SCHEMA/TABLE, DROP [EXTERNAL] TABLE, DROP SCHEMA and the ALTER TABLE partition forms.

use crate::error::ExecError;
use crate::lake::parse_s3_uri;
use crate::lexer::{Kind, Token};
use crate::sql_translate::external_column_type;

use super::{ColumnDef, ObjectFormat, StoredAs, TableName};

/// `(year, 2026), (month, 11)`: partition column → value, in the order written.
pub type PartitionSpec = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    CreateSchema {
        name: String,
        if_not_exists: bool,
        database: Option<String>,
        iam_role: Option<String>,
        /// `FROM KINESIS` (streaming ingestion); otherwise a data catalog schema.
        kinesis: bool,
    },
    CreateTable(TableDef),
    /// `DROP [EXTERNAL] TABLE`; only ours when the schema is external.
    DropTable {
        name: TableName,
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
        table: TableName,
        if_not_exists: bool,
        partitions: Vec<PartitionDef>,
    },
    DropPartition {
        table: TableName,
        if_exists: bool,
        spec: PartitionSpec,
    },
    SetPartitionLocation {
        table: TableName,
        spec: PartitionSpec,
        location: String,
    },
}

/// `CREATE EXTERNAL TABLE`, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub name: TableName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDef>,
    /// `PARTITIONED BY (…)`.
    pub partitions: Vec<ColumnDef>,
    /// `s3://bucket/prefix/`.
    pub location: String,
    pub format: ObjectFormat,
    /// `TABLE PROPERTIES ('key'='value', …)`.
    pub properties: Vec<(String, String)>,
}

/// One `PARTITION (…) LOCATION '…'` of `ALTER TABLE … ADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionDef {
    pub spec: PartitionSpec,
    pub location: String,
}

/// Recognises the Spectrum DDL forms; `Ok(None)` for everything else.
pub fn parse(tokens: &[Token]) -> Result<Option<Ddl>, ExecError> {
    let mut cursor = TokenCursor::new(tokens);
    if cursor.eat_words(&["create", "external", "schema"]) {
        return parse_create_schema(&mut cursor).map(Some);
    }
    if cursor.eat_words(&["create", "external", "table"]) {
        return parse_create_table(&mut cursor).map(Some);
    }
    if cursor.eat_word("drop") {
        return parse_drop(&mut cursor);
    }
    if cursor.eat_words(&["alter", "table"]) {
        return parse_alter_table(&mut cursor);
    }
    Ok(None)
}

/// After `CREATE EXTERNAL SCHEMA`: `[IF NOT EXISTS] name FROM DATA CATALOG DATABASE 'db'
/// IAM_ROLE {default | 'arn'} …` or `[IF NOT EXISTS] name FROM KINESIS IAM_ROLE {default |
/// 'arn'}` (streaming ingestion, "Getting started with streaming ingestion from Amazon
/// Kinesis Data Streams",
/// https://docs.aws.amazon.com/redshift/latest/dg/materialized-view-streaming-ingestion-getting-started.html);
/// clauses other than those are accepted and ignored.
fn parse_create_schema(cursor: &mut TokenCursor) -> Result<Ddl, ExecError> {
    let if_not_exists = cursor.eat_words(&["if", "not", "exists"]);
    let name = cursor.ident()?;
    let (mut database, mut iam_role) = (None, None);
    let kinesis = cursor.eat_words(&["from", "kinesis"]);
    while !cursor.at_end() {
        // `DATABASE 'db'`, not the `CREATE EXTERNAL DATABASE IF NOT EXISTS` clause.
        if cursor.peek().is_some_and(|t| t.is_word("database"))
            && cursor.peek_at(1).is_some_and(|t| t.kind == Kind::Str)
        {
            cursor.skip();
            database = Some(cursor.string()?);
        } else if cursor.eat_word("iam_role") {
            iam_role = if cursor.eat_word("default") {
                Some("default".to_string())
            } else {
                Some(cursor.string()?)
            };
        } else {
            cursor.skip();
        }
    }
    Ok(Ddl::CreateSchema {
        name,
        if_not_exists,
        database,
        iam_role,
        kinesis,
    })
}

/// After `CREATE EXTERNAL TABLE`.
fn parse_create_table(cursor: &mut TokenCursor) -> Result<Ddl, ExecError> {
    let if_not_exists = cursor.eat_words(&["if", "not", "exists"]);
    let name = cursor.qualified()?;
    let columns = column_defs(&cursor.group()?)?;
    let mut clauses = TableClauses::default();
    while !cursor.at_end() {
        clauses.parse_next(cursor)?;
    }
    let location = clauses
        .location
        .ok_or_else(|| ExecError::new("LOCATION is required for an external table"))?;
    if parse_s3_uri(&location).is_none() {
        return Err(ExecError::new(format!("invalid S3 location '{location}'")));
    }
    Ok(Ddl::CreateTable(TableDef {
        name,
        if_not_exists,
        columns,
        partitions: clauses.partitions,
        location,
        format: clauses.format,
        properties: clauses.properties,
    }))
}

/// The clauses after an external table's column list, collected in any order.
#[derive(Default)]
struct TableClauses {
    partitions: Vec<ColumnDef>,
    location: Option<String>,
    format: ObjectFormat,
    properties: Vec<(String, String)>,
}

impl TableClauses {
    /// Consumes the clause at the cursor.
    fn parse_next(&mut self, cursor: &mut TokenCursor) -> Result<(), ExecError> {
        if cursor.eat_words(&["partitioned", "by"]) {
            self.partitions = column_defs(&cursor.group()?)?;
        } else if cursor.eat_words(&["row", "format", "serde"]) {
            self.format.serde = Some(cursor.string()?);
            if cursor.eat_words(&["with", "serdeproperties"]) {
                cursor.group()?;
            }
        } else if cursor.eat_words(&["row", "format", "delimited"]) {
            self.parse_delimiters(cursor)?;
        } else if cursor.eat_words(&["stored", "as"]) {
            self.format.stored_as = parse_stored_as(cursor)?;
        } else if cursor.eat_word("location") {
            self.location = Some(cursor.string()?);
        } else if cursor.eat_words(&["table", "properties"]) {
            self.parse_properties(cursor)?;
        } else {
            return Err(cursor.syntax());
        }
        Ok(())
    }

    /// `FIELDS TERMINATED BY 'x' [LINES TERMINATED BY 'y']`: the first one is the field
    /// delimiter.
    fn parse_delimiters(&mut self, cursor: &mut TokenCursor) -> Result<(), ExecError> {
        while cursor.eat_words(&["fields", "terminated", "by"])
            || cursor.eat_words(&["lines", "terminated", "by"])
        {
            let delimiter = cursor.string()?;
            self.format.delimiter.get_or_insert(delimiter);
        }
        Ok(())
    }

    /// `('key'='value', …)`; entries of another shape are skipped.
    fn parse_properties(&mut self, cursor: &mut TokenCursor) -> Result<(), ExecError> {
        for entry in split_commas(&cursor.group()?) {
            if let [key, eq, value] = entry.as_slice()
                && eq.is_punct("=")
                && let (Some(key), Some(value)) = (key.string_value(), value.string_value())
            {
                self.properties.push((key, value));
            }
        }
        Ok(())
    }
}

/// After `STORED AS`: `PARQUET`, `TEXTFILE` or `INPUTFORMAT 'class' [OUTPUTFORMAT 'class']`.
fn parse_stored_as(cursor: &mut TokenCursor) -> Result<StoredAs, ExecError> {
    if cursor.eat_word("inputformat") {
        let input = cursor.string()?;
        if cursor.eat_word("outputformat") {
            cursor.string()?;
        }
        return Ok(StoredAs::from_input_format(&input));
    }
    let name = cursor.ident()?;
    StoredAs::from_name(&name).ok_or_else(|| {
        ExecError::new(format!(
            "STORED AS {} is not supported by redshift-data-emulator (PARQUET or TEXTFILE)",
            name.to_uppercase()
        ))
    })
}

/// After `DROP`: `[EXTERNAL] TABLE …` or `SCHEMA …`.
fn parse_drop(cursor: &mut TokenCursor) -> Result<Option<Ddl>, ExecError> {
    let explicit = cursor.eat_word("external");
    if cursor.eat_word("table") {
        return parse_drop_table(cursor, explicit);
    }
    if !explicit && cursor.eat_word("schema") {
        return parse_drop_schema(cursor);
    }
    Ok(None)
}

/// After `DROP [EXTERNAL] TABLE`: one qualified table; anything else is PostgreSQL's
/// (unless EXTERNAL was written).
fn parse_drop_table(cursor: &mut TokenCursor, explicit: bool) -> Result<Option<Ddl>, ExecError> {
    let if_exists = cursor.eat_words(&["if", "exists"]);
    let schema = cursor.ident()?;
    if !cursor.eat_punct(".") {
        return if explicit {
            Err(cursor.syntax())
        } else {
            Ok(None)
        };
    }
    let name = TableName {
        schema,
        table: cursor.ident()?,
    };
    // DROP TABLE a.b, c.d … is left to PostgreSQL.
    let one_table = cursor.at_end() || cursor.eat_word("cascade") || cursor.eat_word("restrict");
    Ok(one_table.then_some(Ddl::DropTable {
        name,
        if_exists,
        explicit,
    }))
}

/// After `DROP SCHEMA`: `[IF EXISTS] name [DROP EXTERNAL DATABASE] [CASCADE|RESTRICT]`.
fn parse_drop_schema(cursor: &mut TokenCursor) -> Result<Option<Ddl>, ExecError> {
    let if_exists = cursor.eat_words(&["if", "exists"]);
    let name = cursor.ident()?;
    cursor.eat_words(&["drop", "external", "database"]);
    let cascade = cursor.eat_word("cascade");
    cursor.eat_word("restrict");
    let ddl = Ddl::DropSchema {
        name,
        if_exists,
        cascade,
    };
    // Anything after the options is PostgreSQL's to judge.
    Ok(cursor.at_end().then_some(ddl))
}

/// After `ALTER TABLE`: the partition forms on a qualified table.
fn parse_alter_table(cursor: &mut TokenCursor) -> Result<Option<Ddl>, ExecError> {
    let Ok(table) = cursor.qualified() else {
        return Ok(None);
    };
    if cursor.eat_word("add") {
        return parse_add_partitions(cursor, table);
    }
    if cursor.eat_word("drop") {
        return parse_drop_partition(cursor, table);
    }
    if cursor.eat_word("partition") {
        let spec = partition_spec(&cursor.group()?)?;
        if cursor.eat_words(&["set", "location"]) {
            let location = cursor.string()?;
            return Ok(Some(Ddl::SetPartitionLocation {
                table,
                spec,
                location,
            }));
        }
    }
    Ok(None)
}

/// After `ALTER TABLE s.t ADD`: `[IF NOT EXISTS] PARTITION (…) LOCATION '…' …`; ADD
/// COLUMN and the like are PostgreSQL's.
fn parse_add_partitions(
    cursor: &mut TokenCursor,
    table: TableName,
) -> Result<Option<Ddl>, ExecError> {
    let mut if_not_exists = cursor.eat_words(&["if", "not", "exists"]);
    let mut partitions = Vec::new();
    while cursor.eat_word("partition") {
        let spec = partition_spec(&cursor.group()?)?;
        if !cursor.eat_word("location") {
            return Err(cursor.syntax());
        }
        let location = cursor.string()?;
        partitions.push(PartitionDef { spec, location });
        if_not_exists |= cursor.eat_words(&["if", "not", "exists"]);
        cursor.eat_punct(",");
    }
    if partitions.is_empty() {
        return Ok(None);
    }
    if !cursor.at_end() {
        return Err(cursor.syntax());
    }
    Ok(Some(Ddl::AddPartitions {
        table,
        if_not_exists,
        partitions,
    }))
}

/// After `ALTER TABLE s.t DROP`: `[IF EXISTS] PARTITION (…)`.
fn parse_drop_partition(
    cursor: &mut TokenCursor,
    table: TableName,
) -> Result<Option<Ddl>, ExecError> {
    let if_exists = cursor.eat_words(&["if", "exists"]);
    if !cursor.eat_word("partition") {
        return Ok(None);
    }
    let spec = partition_spec(&cursor.group()?)?;
    Ok(Some(Ddl::DropPartition {
        table,
        if_exists,
        spec,
    }))
}

/// A cursor over the significant tokens (no spaces or comments) of one statement.
struct TokenCursor<'a> {
    tokens: Vec<&'a Token>,
    pos: usize,
}

impl<'a> TokenCursor<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        Self {
            tokens: tokens.iter().filter(|t| !t.is_trivia()).collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<&'a Token> {
        self.peek_at(0)
    }

    /// The token `ahead` places after the cursor.
    fn peek_at(&self, ahead: usize) -> Option<&'a Token> {
        self.tokens.get(self.pos + ahead).copied()
    }

    fn skip(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn eat_word(&mut self, keyword: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_word(keyword));
        if found {
            self.skip();
        }
        found
    }

    /// All of `keywords` in sequence, or nothing consumed.
    fn eat_words(&mut self, keywords: &[&str]) -> bool {
        let save = self.pos;
        if keywords.iter().all(|k| self.eat_word(k)) {
            return true;
        }
        self.pos = save;
        false
    }

    fn eat_punct(&mut self, punct: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_punct(punct));
        if found {
            self.skip();
        }
        found
    }

    fn syntax(&self) -> ExecError {
        match self.peek() {
            Some(t) => syntax_error_at(t),
            None => ExecError::new("syntax error at end of input"),
        }
    }

    /// The token at the cursor, converted by `read`, or a syntax error.
    fn take<T>(&mut self, read: impl FnOnce(&Token) -> Option<T>) -> Result<T, ExecError> {
        let value = self.peek().and_then(read).ok_or_else(|| self.syntax())?;
        self.skip();
        Ok(value)
    }

    fn ident(&mut self) -> Result<String, ExecError> {
        self.take(Token::ident)
    }

    fn string(&mut self) -> Result<String, ExecError> {
        self.take(Token::string_value)
    }

    /// `schema.table` (the schema is required for external tables).
    fn qualified(&mut self) -> Result<TableName, ExecError> {
        let schema = self.ident()?;
        if !self.eat_punct(".") {
            return Err(ExecError::new(format!(
                "external table \"{schema}\" must be qualified with its external schema"
            )));
        }
        Ok(TableName {
            schema,
            table: self.ident()?,
        })
    }

    /// The tokens inside the parenthesised group at the cursor.
    fn group(&mut self) -> Result<Vec<&'a Token>, ExecError> {
        if !self.eat_punct("(") {
            return Err(self.syntax());
        }
        let start = self.pos;
        let mut depth = 1;
        while let Some(t) = self.peek() {
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth -= 1;
                if depth == 0 {
                    let inner = self.tokens[start..self.pos].to_vec();
                    self.skip();
                    return Ok(inner);
                }
            }
            self.skip();
        }
        Err(ExecError::new("syntax error at end of input"))
    }
}

fn syntax_error_at(token: &Token) -> ExecError {
    ExecError::new(format!("syntax error at or near \"{}\"", token.text))
}

/// The comma-separated items of a group, commas inside nested `(…)`/`<…>` kept.
fn split_commas<'a>(tokens: &[&'a Token]) -> Vec<Vec<&'a Token>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0;
    for t in tokens {
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

/// `(name type, …)` → columns with their PostgreSQL types.
fn column_defs(tokens: &[&Token]) -> Result<Vec<ColumnDef>, ExecError> {
    split_commas(tokens)
        .into_iter()
        .map(|def| {
            let name = def[0].ident().ok_or_else(|| syntax_error_at(def[0]))?;
            let ty: Vec<&str> = def[1..].iter().map(|t| t.text.as_str()).collect();
            if ty.is_empty() {
                return Err(ExecError::new(format!("column \"{name}\" has no type")));
            }
            let ty = external_column_type(&ty.join(" "));
            Ok(ColumnDef { name, ty })
        })
        .collect()
}

/// `(year=2026, month='11')` → [(year, 2026), (month, 11)].
fn partition_spec(tokens: &[&Token]) -> Result<PartitionSpec, ExecError> {
    split_commas(tokens)
        .into_iter()
        .map(|pair| {
            let invalid = || ExecError::new("invalid partition specification");
            if pair.len() < 3 || !pair[1].is_punct("=") {
                return Err(invalid());
            }
            let key = pair[0].ident().ok_or_else(invalid)?;
            let negative = pair.len() == 4 && pair[2].is_punct("-");
            let last = pair[pair.len() - 1];
            let value = match last.kind {
                Kind::Str => last.string_value().ok_or_else(invalid)?,
                Kind::Number | Kind::Word => last.text.clone(),
                _ => return Err(invalid()),
            };
            Ok((key, if negative { format!("-{value}") } else { value }))
        })
        .collect()
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
                iam_role: Some("arn:aws:iam::1:role/x".into()),
                kinesis: false,
            }
        );
        let d = parse(&tokenize(
            "CREATE EXTERNAL SCHEMA kinesis_source FROM KINESIS IAM_ROLE default",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            d,
            Ddl::CreateSchema {
                name: "kinesis_source".into(),
                if_not_exists: false,
                database: None,
                iam_role: Some("default".into()),
                kinesis: true,
            }
        );
    }

    #[test]
    fn parses_create_external_table() {
        let sql = "CREATE EXTERNAL TABLE lake.raw (vin varchar(17), speed decimal(12,3), ts timestamp, note string)
            PARTITIONED BY (year int, month int, day int)
            ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
            STORED AS TEXTFILE LOCATION 's3://fleetline-lake/raw/' TABLE PROPERTIES ('classification'='json')";
        let Some(Ddl::CreateTable(def)) = parse(&tokenize(sql)).unwrap() else {
            panic!("not parsed");
        };
        assert_eq!(def.name.to_string(), "lake.raw");
        assert_eq!(def.columns.len(), 4);
        assert_eq!(
            def.columns[1],
            ColumnDef {
                name: "speed".into(),
                ty: "decimal ( 12 , 3 )".into()
            }
        );
        assert_eq!(def.columns[3].ty, "varchar(65535)");
        assert_eq!(
            def.partitions
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["year", "month", "day"]
        );
        assert_eq!(def.location, "s3://fleetline-lake/raw/");
        assert_eq!(def.format.stored_as, StoredAs::TextFile);
        assert_eq!(
            def.format.serde.as_deref(),
            Some("org.openx.data.jsonserde.JsonSerDe")
        );
        assert_eq!(
            def.properties,
            vec![("classification".into(), "json".into())]
        );
    }

    #[test]
    fn parses_storage_formats() {
        let stored_as = |clause: &str| {
            let sql = format!("CREATE EXTERNAL TABLE s.t (a int) {clause} LOCATION 's3://b/p/'");
            match parse(&tokenize(&sql)) {
                Ok(Some(Ddl::CreateTable(def))) => Ok(def.format.stored_as),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.0),
            }
        };
        assert_eq!(stored_as("STORED AS parquet"), Ok(StoredAs::Parquet));
        assert_eq!(stored_as(""), Ok(StoredAs::TextFile));
        assert_eq!(
            stored_as(
                "STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat' OUTPUTFORMAT 'x'"
            ),
            Ok(StoredAs::Parquet)
        );
        assert!(stored_as("STORED AS ORC").is_err_and(|e| e.contains("ORC")));
    }

    #[test]
    fn parses_partitions_and_drops() {
        let d = parse(&tokenize(
            "ALTER TABLE lake.raw ADD IF NOT EXISTS PARTITION (year=2026, month=11, day='25') LOCATION 's3://b/p/year=2026/month=11/day=25/' PARTITION (year=2026, month=11, day=26) LOCATION 's3://b/x/'",
        ))
        .unwrap()
        .unwrap();
        let Ddl::AddPartitions {
            partitions,
            if_not_exists,
            ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert!(if_not_exists);
        assert_eq!(partitions.len(), 2);
        assert_eq!(partitions[0].spec[2], ("day".into(), "25".into()));
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
}
