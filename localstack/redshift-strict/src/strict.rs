//! Strict mode (the default): refuses, with a Redshift-style error, what Amazon Redshift
//! refuses but PostgreSQL would run, and enforces CHAR/VARCHAR lengths in bytes.
//!
//! Sources (Amazon Redshift Database Developer Guide):
//! - "Unsupported PostgreSQL features", "Unsupported PostgreSQL data types",
//!   "Unsupported PostgreSQL functions"
//!   (https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-features.html,
//!   …/c_unsupported-postgresql-datatypes.html, …/c_unsupported-postgresql-functions.html);
//! - "Reserved words" (https://docs.aws.amazon.com/redshift/latest/dg/r_pg_keywords.html);
//! - "SVL_MULTI_STATEMENT_VIOLATIONS" (commands restricted inside a transaction block,
//!   https://docs.aws.amazon.com/redshift/latest/dg/r_SVL_MULTI_STATEMENT_VIOLATIONS.html)
//!   and "ALTER TABLE" ("You can't alter columns within a transaction block");
//! - "Character types" (lengths in bytes, CHAR single-byte only,
//!   https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html) and
//!   "Multibyte character load errors" (the CHAR error text).
//!
//! The checks look at the statement's top-level tokens (never inside literals, quoted
//! identifiers or comments) and at the SQL statements of procedure and function bodies
//! (`crate::body`).

use crate::lexer::{Kind, Token};

/// Where a refusal's message comes from, appended so a user knows why.
pub const WHY: &str = "refused like Amazon Redshift (redshift-data-emulator strict mode)";

/// Data types PostgreSQL has and Redshift does not ("Unsupported PostgreSQL data types").
const UNSUPPORTED_TYPES: &[&str] = &[
    "json",
    "jsonb",
    "jsonpath",
    "serial",
    "bigserial",
    "smallserial",
    "serial2",
    "serial4",
    "serial8",
    "money",
    "uuid",
    "xml",
    "bytea",
    "bit",
    "varbit",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "tsvector",
    "tsquery",
    "txid_snapshot",
    "pg_snapshot",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "oid",
    "regclass",
    "regtype",
    "regproc",
    "regprocedure",
    "regnamespace",
    "record",
];

/// Functions PostgreSQL has and Redshift does not ("Unsupported PostgreSQL functions").
/// GENERATE_SERIES is listed there too but runs on Redshift's leader node, so it stays.
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "string_agg",
    "array_agg",
    "every",
    "xmlagg",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "clock_timestamp",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "pg_sleep",
    "transaction_timestamp",
    "div",
    "setseed",
    "width_bucket",
    "generate_subscripts",
    "bit_length",
    "overlay",
    "convert_from",
    "convert_to",
    "encode",
    "format",
    "quote_nullable",
    "regexp_matches",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "unnest",
    "cardinality",
    "nextval",
    "currval",
    "setval",
    "lastval",
    "to_json",
    "to_jsonb",
    "row_to_json",
    "json_build_object",
    "json_build_array",
    "json_object",
    "json_agg",
    "json_object_agg",
    "json_each",
    "json_each_text",
    "json_array_elements",
    "json_array_elements_text",
    "json_strip_nulls",
    "json_populate_record",
    "to_tsvector",
    "to_tsquery",
    "plainto_tsquery",
    "txid_current",
    "pg_current_snapshot",
];

/// Prefixes of whole PostgreSQL function families Redshift lacks.
const UNSUPPORTED_FUNCTION_PREFIXES: &[&str] = &["array_", "jsonb_", "pg_advisory_", "xml", "ts_"];

/// Redshift's reserved words ("Reserved words").
const RESERVED: &[&str] = &[
    "aes128",
    "aes256",
    "all",
    "allowoverwrite",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "authorization",
    "az64",
    "backup",
    "between",
    "binary",
    "blanksasnull",
    "both",
    "bytedict",
    "bzip2",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "credentials",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "current_user_id",
    "default",
    "deferrable",
    "deflate",
    "defrag",
    "delta",
    "delta32k",
    "desc",
    "disable",
    "distinct",
    "do",
    "else",
    "emptyasnull",
    "enable",
    "encode",
    "encrypt",
    "encryption",
    "end",
    "except",
    "explicit",
    "false",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "globaldict256",
    "globaldict64k",
    "grant",
    "group",
    "gzip",
    "having",
    "identity",
    "ignore",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "language",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "lun",
    "luns",
    "lzo",
    "lzop",
    "minus",
    "mostly13",
    "mostly32",
    "mostly8",
    "natural",
    "new",
    "not",
    "notnull",
    "null",
    "nulls",
    "off",
    "offline",
    "offset",
    "oid",
    "old",
    "on",
    "only",
    "open",
    "or",
    "order",
    "outer",
    "overlaps",
    "parallel",
    "partition",
    "percent",
    "permissions",
    "placing",
    "primary",
    "raw",
    "readratio",
    "recover",
    "references",
    "rejectlog",
    "resort",
    "respect",
    "restore",
    "right",
    "select",
    "session_user",
    "similar",
    "snapshot",
    "some",
    "sysdate",
    "system",
    "table",
    "tag",
    "tdes",
    "text255",
    "text32k",
    "then",
    "timestamp",
    "to",
    "top",
    "trailing",
    "true",
    "truncatecolumns",
    "union",
    "unique",
    "user",
    "using",
    "verbose",
    "wallet",
    "when",
    "where",
    "with",
    "without",
];

/// Reserved words that are no keyword at all in PostgreSQL, so wherever one appears as a
/// bare word PostgreSQL reads an identifier (the few keyword uses are excepted in
/// [`never_identifier_use`]).
const NOT_POSTGRES_KEYWORDS: &[&str] = &[
    "aes128",
    "aes256",
    "allowoverwrite",
    "az64",
    "blanksasnull",
    "bytedict",
    "bzip2",
    "credentials",
    "deflate",
    "defrag",
    "delta",
    "delta32k",
    "emptyasnull",
    "encrypt",
    "encryption",
    "explicit",
    "globaldict256",
    "globaldict64k",
    "gzip",
    "ignore",
    "lun",
    "luns",
    "lzo",
    "lzop",
    "mostly13",
    "mostly32",
    "mostly8",
    "new",
    "offline",
    "oid",
    "old",
    "open",
    "percent",
    "permissions",
    "raw",
    "readratio",
    "recover",
    "rejectlog",
    "resort",
    "respect",
    "restore",
    "tag",
    "tdes",
    "text255",
    "text32k",
    "truncatecolumns",
    "wallet",
];

fn refuse(msg: String) -> Result<(), String> {
    Err(format!("ERROR: {msg} ({WHY})"))
}

fn syntax(tok: &Token, what: &str) -> Result<(), String> {
    refuse(format!(
        "syntax error at or near \"{}\": Amazon Redshift does not support {what}",
        tok.text
    ))
}

struct Stmt<'a> {
    t: Vec<&'a Token>,
}

impl<'a> Stmt<'a> {
    fn new(toks: &'a [Token]) -> Self {
        Self {
            t: toks.iter().filter(|t| !t.is_trivia()).collect(),
        }
    }
    fn w(&self, i: usize) -> String {
        self.t
            .get(i)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| t.text.to_ascii_lowercase())
            .unwrap_or_default()
    }
    fn p(&self, i: usize, p: &str) -> bool {
        self.t.get(i).is_some_and(|t| t.is_punct(p))
    }
    /// The first words of the statement, lower case.
    fn head(&self, n: usize) -> Vec<String> {
        (0..n.min(self.t.len())).map(|i| self.w(i)).collect()
    }
    /// Index of the `)` that closes the `(` at `open`.
    fn close(&self, open: usize) -> Option<usize> {
        crate::lexer::closing_paren(open, self.t.len(), |i, p| self.p(i, p))
    }
}

/// The column list of `CREATE [TEMP] TABLE name (…)` / the column of `ALTER TABLE … ADD
/// [COLUMN] c type`: ranges (into [`Stmt::t`]) of each element.
fn column_elements(s: &Stmt) -> Vec<(usize, usize)> {
    let h = s.head(2);
    if h.first().map(String::as_str) == Some("create") {
        let Some(table_at) = (1..s.t.len().min(6)).find(|&i| s.w(i) == "table") else {
            return Vec::new();
        };
        let Some(open) = (table_at..s.t.len()).find(|&i| s.p(i, "(")) else {
            return Vec::new();
        };
        // CREATE TABLE … AS SELECT has no column list before AS.
        if (table_at..open).any(|i| s.w(i) == "as") {
            return Vec::new();
        }
        let Some(close) = s.close(open) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let (mut start, mut depth) = (open + 1, 0i32);
        for i in open + 1..close {
            if s.p(i, "(") {
                depth += 1;
            } else if s.p(i, ")") {
                depth -= 1;
            } else if depth == 0 && s.p(i, ",") {
                out.push((start, i));
                start = i + 1;
            }
        }
        out.push((start, close));
        return out;
    }
    if h == ["alter", "table"]
        && let Some(add) = (2..s.t.len()).find(|&i| s.w(i) == "add")
    {
        let start = if s.w(add + 1) == "column" {
            add + 2
        } else {
            add + 1
        };
        if start < s.t.len() && !matches!(s.w(start).as_str(), "constraint" | "partition" | "if") {
            return vec![(start, s.t.len())];
        }
    }
    Vec::new()
}

const CONSTRAINT_WORDS: &[&str] = &[
    "constraint",
    "primary",
    "unique",
    "foreign",
    "check",
    "like",
    "exclude",
];

/// Checks one statement. `in_txn`: inside a transaction block (an explicit BEGIN or a
/// BatchExecuteStatement). Err is the full error text.
pub fn check(toks: &[Token], in_txn: bool) -> Result<(), String> {
    let s = Stmt::new(toks);
    let h = s.head(4);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    if in_txn {
        check_transaction_block(&s, &h)?;
    }
    // COPY/UNLOAD are not emulated; PostgreSQL reports them.
    if matches!(h.first(), Some(&"copy") | Some(&"unload")) {
        return Ok(());
    }
    check_commands(&s, &h)?;
    check_clauses(&s, &h)?;
    check_types_functions_words(&s)?;
    check_body(toks)
}

/// The SQL statements of a procedure or function body get the same checks (outside a
/// transaction block: the caller's transaction is not known at CREATE time).
fn check_body(toks: &[Token]) -> Result<(), String> {
    let Some(body) = crate::body::sql_body(toks) else {
        return Ok(());
    };
    for st in crate::body::statements(&body) {
        check(&st, false)
            .map_err(|e| e.replacen("ERROR: ", "ERROR: in the procedure body: ", 1))?;
    }
    Ok(())
}

fn check_transaction_block(s: &Stmt, h: &[&str]) -> Result<(), String> {
    let cmd = match h {
        ["vacuum", ..] => Some("VACUUM"),
        ["create", "database", ..] => Some("CREATE DATABASE"),
        ["drop", "database", ..] => Some("DROP DATABASE"),
        ["create", "library", ..] | ["create", "or", "replace", "library"] => {
            Some("CREATE LIBRARY")
        }
        ["drop", "library", ..] => Some("DROP LIBRARY"),
        ["create", "tablespace", ..] => Some("CREATE TABLESPACE"),
        ["drop", "tablespace", ..] => Some("DROP TABLESPACE"),
        ["copy", ..] => Some("COPY"),
        ["reindex", "database", ..] => Some("REINDEX DATABASE"),
        ["alter", "table", ..] => {
            let words: Vec<String> = (2..s.t.len()).map(|i| s.w(i)).collect();
            if words.windows(2).any(|w| w[0] == "append" && w[1] == "from") {
                Some("ALTER TABLE APPEND")
            } else if words.iter().any(|w| w == "alter")
                && words.iter().any(|w| w == "type" || w == "encode")
            {
                Some("ALTER TABLE ALTER COLUMN")
            } else {
                None
            }
        }
        _ => None,
    };
    match cmd {
        Some(c) => Err(format!(
            "ERROR: {c} cannot run inside a transaction block ({WHY})"
        )),
        None => Ok(()),
    }
}

fn check_commands(s: &Stmt, h: &[&str]) -> Result<(), String> {
    if h.first() != Some(&"create") {
        if matches!(
            h,
            ["savepoint", ..] | ["rollback", "to", ..] | ["release", ..]
        ) {
            return syntax(s.t[0], "savepoints");
        }
        if matches!(h, ["listen", ..] | ["notify", ..]) {
            return syntax(s.t[0], "LISTEN/NOTIFY");
        }
        // A workgroup's isolation level ("ALTER DATABASE … ISOLATION LEVEL"): the emulator
        // has one, SNAPSHOT, so it refuses to pretend the switch happened.
        if matches!(h, ["alter", "database", _, "isolation"]) {
            return refuse(
                "ALTER DATABASE … ISOLATION LEVEL is not emulated: the emulator runs SNAPSHOT isolation only"
                    .to_string(),
            );
        }
        return Ok(());
    }
    // CREATE [OR REPLACE] [UNIQUE|TEMP|…] <object>
    for i in 1..s.t.len().min(5) {
        let w = s.w(i);
        let what = match w.as_str() {
            "index" => "indexes (CREATE INDEX)",
            "sequence" => "sequences (CREATE SEQUENCE)",
            "trigger" => "triggers",
            "rule" => "rules",
            "type" => "user-defined types",
            "domain" => "domains",
            "extension" => "extensions",
            "tablespace" => "tablespaces",
            "server" | "foreign" => "foreign data (SQL/MED)",
            "aggregate" | "operator" | "collation" => "this object type",
            "table" | "view" | "procedure" | "function" | "schema" | "external" | "user"
            | "group" | "materialized" | "library" | "database" | "datashare" | "role" => {
                return Ok(());
            }
            _ => continue,
        };
        return syntax(s.t[i], what);
    }
    Ok(())
}

fn check_clauses(s: &Stmt, h: &[&str]) -> Result<(), String> {
    let is_create_table =
        h.first() == Some(&"create") && (1..4).any(|i| h.get(i) == Some(&"table"));
    let mut depth = 0i32;
    for i in 0..s.t.len() {
        let t = s.t[i];
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        }
        if t.is_punct("[") && !is_super_subscript(s, i) {
            return syntax(t, "arrays or subscripts");
        }
        if t.kind != Kind::Word {
            continue;
        }
        let w = s.w(i);
        let next = s.w(i + 1);
        match w.as_str() {
            "on" if next == "conflict" => return syntax(t, "INSERT … ON CONFLICT"),
            "returning" => return syntax(t, "RETURNING"),
            "distinct" if next == "on" => return syntax(s.t[i + 1], "DISTINCT ON"),
            "filter" if i > 0 && s.p(i - 1, ")") && s.p(i + 1, "(") => {
                return syntax(t, "aggregate FILTER clauses");
            }
            "array" if s.p(i + 1, "(") => return syntax(t, "array constructors"),
            "row" if s.p(i + 1, "(") => return syntax(t, "row constructors"),
            "values"
                if i > 0 && s.p(i - 1, "(") && i > 1 && {
                    let before = s.w(i - 2);
                    before == "from" || before == "join" || s.p(i - 2, ",")
                } =>
            {
                return syntax(t, "a VALUES list used as a constant table");
            }
            "is" if (next == "distinct" || (next == "not" && s.w(i + 2) == "distinct")) => {
                return syntax(t, "IS [NOT] DISTINCT FROM");
            }
            "for"
                if depth == 0
                    && matches!(h.first(), Some(&"select") | Some(&"with"))
                    && matches!(next.as_str(), "update" | "share" | "no" | "key") =>
            {
                return syntax(t, "SELECT … FOR UPDATE/SHARE");
            }
            "partition" if is_create_table && depth == 0 && (next == "by" || next == "of") => {
                return syntax(t, "declarative table partitioning (PARTITION BY)");
            }
            "inherits" if is_create_table && depth == 0 => {
                return syntax(t, "table inheritance");
            }
            "tablespace" if is_create_table => return syntax(t, "tablespaces"),
            "check" if is_create_table && s.p(i + 1, "(") => {
                return syntax(t, "CHECK constraints");
            }
            "exclude" if is_create_table && depth == 1 => {
                return syntax(t, "exclusion constraints");
            }
            _ => {}
        }
    }
    Ok(())
}

/// `payload[0]`, `payload.items[1]`, `x[0][1]`: SUPER array navigation ("Querying
/// semistructured data", https://docs.aws.amazon.com/redshift/latest/dg/query-super.html).
/// A subscript follows a name or another subscript and holds an integer; PostgreSQL's
/// `ARRAY[…]` constructors and `int[]` types stay refused.
fn is_super_subscript(s: &Stmt, i: usize) -> bool {
    let after_name = i > 0
        && (matches!(s.t[i - 1].kind, Kind::Word | Kind::QuotedIdent) || s.p(i - 1, "]"))
        && s.w(i - 1) != "array"
        && !(i > 1 && s.p(i - 2, "::"));
    after_name && s.t.get(i + 1).is_some_and(|t| t.kind == Kind::Number) && s.p(i + 2, "]")
}

fn is_unsupported_type(w: &str) -> bool {
    UNSUPPORTED_TYPES.contains(&w)
}

fn is_unsupported_function(w: &str) -> bool {
    UNSUPPORTED_FUNCTIONS.contains(&w)
        || UNSUPPORTED_FUNCTION_PREFIXES
            .iter()
            .any(|p| w.starts_with(p))
}

/// A keyword use of a word from [`NOT_POSTGRES_KEYWORDS`] that Redshift accepts.
fn never_identifier_use(s: &Stmt, i: usize) -> bool {
    let w = s.w(i);
    let prev = if i > 0 { s.w(i - 1) } else { String::new() };
    let next = s.w(i + 1);
    // `ENCODE raw|delta|lzo|…` (column compression), `IGNORE|RESPECT NULLS` (window
    // functions), `… TO 75 PERCENT` (VACUUM).
    prev == "encode"
        || ((w == "ignore" || w == "respect") && next == "nulls")
        || (w == "percent" && i > 0 && s.t[i - 1].kind == Kind::Number)
}

fn check_types_functions_words(s: &Stmt) -> Result<(), String> {
    // Parentheses opened by CAST: `AS <type>` inside them.
    let mut cast_parens: Vec<bool> = Vec::new();
    let elements = column_elements(s);
    let column_names: Vec<usize> = elements
        .iter()
        .filter(|(a, b)| a < b && !CONSTRAINT_WORDS.contains(&s.w(*a).as_str()))
        .map(|(a, _)| *a)
        .collect();
    for i in 0..s.t.len() {
        let t = s.t[i];
        if t.is_punct("(") {
            cast_parens.push(i > 0 && s.w(i - 1) == "cast");
            continue;
        }
        if t.is_punct(")") {
            cast_parens.pop();
            continue;
        }
        if t.kind != Kind::Word {
            continue;
        }
        let w = s.w(i);
        let type_position = (i > 0 && s.p(i - 1, "::"))
            || (i > 0 && s.w(i - 1) == "as" && cast_parens.last() == Some(&true))
            || column_names.contains(&(i.wrapping_sub(1)));
        if type_position && is_unsupported_type(&w) {
            return refuse(format!(
                "type \"{w}\" does not exist: Amazon Redshift does not support this data type"
            ));
        }
        // "Numeric types": DECIMAL precision is at most 38.
        if matches!(w.as_str(), "decimal" | "numeric" | "dec")
            && s.p(i + 1, "(")
            && let Some(p) =
                s.t.get(i + 2)
                    .filter(|t| t.kind == Kind::Number)
                    .and_then(|t| t.text.parse::<u64>().ok())
            && !(1..=38).contains(&p)
        {
            return refuse(format!("DECIMAL precision {p} must be between 1 and 38"));
        }
        if s.p(i + 1, "(") && is_unsupported_function(&w) && !(i > 0 && s.p(i - 1, "::")) {
            return refuse(format!(
                "function {w} does not exist: Amazon Redshift does not support this function"
            ));
        }
        if !RESERVED.contains(&w.as_str()) {
            continue;
        }
        let qualified = (i > 0 && s.p(i - 1, ".")) || s.p(i + 1, ".");
        let alias = i > 0
            && s.w(i - 1) == "as"
            && cast_parens.last() != Some(&true)
            && (i + 1 == s.t.len() || s.p(i + 1, ",") || s.p(i + 1, ")") || s.w(i + 1) == "from");
        let column_name = column_names.contains(&i);
        let bare = NOT_POSTGRES_KEYWORDS.contains(&w.as_str()) && !never_identifier_use(s, i);
        if qualified || alias || column_name || bare {
            return refuse(format!(
                "syntax error at or near \"{}\": a reserved word in Amazon Redshift; quote it (\"{w}\") to use it as an identifier",
                t.text
            ));
        }
    }
    Ok(())
}

/// A CHAR/VARCHAR type starting at `at`: `(kind, n, index of its last token, the type
/// text to write instead when PostgreSQL's spelling or default length differs)`.
fn char_column(s: &Stmt, at: usize) -> Option<(&'static str, u32, usize, Option<String>)> {
    let w0 = s.w(at);
    let (kind, words, default_n): (&'static str, usize, u32) =
        match (w0.as_str(), s.w(at + 1).as_str()) {
            ("character" | "char" | "nchar", "varying") => ("varchar", 2, 256),
            ("national", "character") if s.w(at + 2) == "varying" => ("varchar", 3, 256),
            ("national", "character") => ("char", 2, 1),
            ("varchar" | "nvarchar", _) => ("varchar", 1, 256),
            ("character" | "char" | "nchar", _) => ("char", 1, 1),
            ("bpchar", _) => ("char", 1, 256),
            ("text", _) => ("varchar", 1, 256),
            _ => return None,
        };
    let after = at + words;
    if s.p(after, "(")
        && s.t.get(after + 1).is_some_and(|t| t.kind == Kind::Number)
        && s.p(after + 2, ")")
    {
        let n: u32 = s.t[after + 1].text.parse().ok()?;
        let rewrite =
            (w0 == "nvarchar" || w0 == "nchar" || words > 1).then(|| format!("{kind}({n})"));
        return Some((kind, n, after + 2, rewrite));
    }
    // No length: Redshift's defaults ("Character types": VARCHAR and TEXT → 256 bytes,
    // BPCHAR → 256, CHAR → 1).
    Some((
        kind,
        default_n,
        after - 1,
        Some(format!("{kind}({default_n})")),
    ))
}

/// Adds a byte-length CHECK to every CHAR/VARCHAR column that `toks` (one statement)
/// defines, named `rs_<kind>_<n>_<column>` so that [`length_error`] can word the
/// violation like Redshift.
pub fn add_byte_checks(toks: &mut [Token]) {
    let idx: Vec<usize> = (0..toks.len()).filter(|&i| !toks[i].is_trivia()).collect();
    let edits: Vec<(usize, usize, Option<String>, String)> = {
        let s = Stmt::new(toks);
        let mut edits = Vec::new();
        for (a, b) in column_elements(&s) {
            if a + 1 >= b || CONSTRAINT_WORDS.contains(&s.w(a).as_str()) {
                continue;
            }
            let Some(col) = s.t[a].ident() else { continue };
            let Some((kind, n, last, rewrite)) = char_column(&s, a + 1) else {
                continue;
            };
            if last >= b {
                continue;
            }
            let q = crate::lexer::quote_ident(&col);
            let name = crate::lexer::quote_ident(&format!("rs_{kind}_{n}_{col}"));
            let cond = if kind == "char" {
                format!("octet_length({q}::text) = char_length({q}::text)")
            } else {
                format!("octet_length({q}) <= {n}")
            };
            edits.push((
                a + 1,
                last,
                rewrite,
                format!(" CONSTRAINT {name} CHECK ({cond})"),
            ));
        }
        edits
    };
    for (first, last, rewrite, check) in edits {
        if let Some(ty) = rewrite {
            for k in first..=last {
                toks[idx[k]].text.clear();
            }
            toks[idx[first]].text = ty;
        }
        toks[idx[last]].text.push_str(&check);
    }
}

/// Redshift's wording for a violated byte-length constraint named by [`add_byte_checks`].
pub fn length_error(constraint: &str) -> Option<String> {
    let rest = constraint.strip_prefix("rs_")?;
    let (kind, rest) = rest.split_once('_')?;
    let (n, _) = rest.split_once('_')?;
    let n: u32 = n.parse().ok()?;
    match kind {
        "varchar" => Some(format!(
            "ERROR: value too long for type character varying({n})"
        )),
        "char" => Some(
            "ERROR: Multibyte character not supported for CHAR (Hint: Try using VARCHAR)."
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::{join, tokenize};

    fn refused(sql: &str) -> String {
        check(&tokenize(sql), false).expect_err(sql)
    }

    fn ok(sql: &str) {
        if let Err(e) = check(&tokenize(sql), false) {
            panic!("{sql}: {e}");
        }
    }

    /// Each statement is refused with an error naming the given text.
    fn all_refused(cases: &[(&str, &str)]) {
        for (sql, text) in cases {
            let e = refused(sql);
            assert!(e.contains(text), "{sql}: {e}");
        }
    }

    #[test]
    fn refuses_unsupported_postgresql_features() {
        all_refused(&[
            (
                "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
                "ON CONFLICT",
            ),
            ("INSERT INTO t VALUES (1) RETURNING a", "RETURNING"),
            ("CREATE TABLE t (a JSONB)", "type \"jsonb\""),
            ("SELECT '{}'::json", "type \"json\""),
            ("SELECT CAST(x AS uuid) FROM t", "\"uuid\""),
            ("CREATE TABLE t (id SERIAL)", "\"serial\""),
            ("CREATE INDEX i ON t (a)", "CREATE INDEX"),
            ("CREATE UNIQUE INDEX i ON t (a)", "CREATE INDEX"),
            ("CREATE SEQUENCE s", "CREATE SEQUENCE"),
            ("SELECT DISTINCT ON (a) a FROM t", "DISTINCT ON"),
            ("SELECT count(*) FILTER (WHERE a > 1) FROM t", "FILTER"),
            (
                "CREATE TABLE t (a int) PARTITION BY RANGE (a)",
                "PARTITION BY",
            ),
            ("SELECT ARRAY[1, 2]", "arrays"),
            ("CREATE TABLE t (a int[])", "arrays"),
            ("SELECT * FROM (VALUES (1), (2)) v(a)", "VALUES list"),
            ("SELECT string_agg(a, ',') FROM t", "string_agg"),
            ("SELECT a IS DISTINCT FROM b FROM t", "DISTINCT FROM"),
            ("CREATE TABLE t (a int CHECK (a > 0))", "CHECK"),
            ("CREATE TABLE t (a DECIMAL(39,2))", "precision 39"),
        ]);
        ok("CREATE TABLE t (a DECIMAL(38,2), b NUMERIC(12, 3))");
        // SUPER navigation and introspection ("Querying semistructured data").
        ok("SELECT s.payload[0], s.payload.items[1][2], JSON_TYPEOF(s.payload) FROM t s");
    }

    #[test]
    fn refuses_postgresql_arrays_but_not_super_subscripts() {
        all_refused(&[
            ("SELECT ARRAY[1]", "arrays"),
            ("SELECT x::int[] FROM t", "arrays"),
            ("SELECT a[i] FROM t", "arrays"),
        ]);
        ok("SELECT payload[0].vin FROM t");
    }

    #[test]
    fn refuses_reserved_words_as_identifiers() {
        all_refused(&[
            ("CREATE TABLE t (raw VARCHAR(10))", "\"raw\""),
            ("SELECT tag FROM t", "\"tag\""),
            ("SELECT t.partition FROM t", "\"partition\""),
            ("SELECT 1 AS timestamp", "\"timestamp\""),
            ("CREATE TABLE t (a int, snapshot int)", "\"snapshot\""),
        ]);
        ok("CREATE TABLE t (\"raw\" VARCHAR(10) ENCODE raw, b int ENCODE delta)");
        ok("SELECT lag(a) IGNORE NULLS OVER (ORDER BY b), CAST(x AS timestamp) AS ts FROM t");
        ok("CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY(1,1), ts TIMESTAMP)");
        ok("SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t");
        ok("CREATE VIEW v AS SELECT 1 AS one");
    }

    #[test]
    fn checks_procedure_bodies_and_isolation_settings() {
        all_refused(&[
            (
                "CREATE OR REPLACE PROCEDURE p() AS $$ BEGIN INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING; END; $$ LANGUAGE plpgsql",
                "ERROR: in the procedure body: syntax error at or near \"ON\"",
            ),
            (
                "CREATE PROCEDURE p(x INT) AS $$ BEGIN IF x > 0 THEN CREATE INDEX i ON t (a); END IF; END $$ LANGUAGE plpgsql",
                "CREATE INDEX",
            ),
            (
                "CREATE FUNCTION f() RETURNS INT AS $$ SELECT tag FROM t $$ LANGUAGE sql",
                "\"tag\"",
            ),
            (
                "ALTER DATABASE dev ISOLATION LEVEL SERIALIZABLE",
                "SNAPSHOT isolation only",
            ),
        ]);
        ok(
            "CREATE PROCEDURE p(x INT) AS $$ DECLARE rec RECORD; BEGIN FOR rec IN SELECT a FROM t LOOP RAISE INFO 'a'; END LOOP; END; $$ LANGUAGE plpgsql",
        );
        ok("CREATE FUNCTION f(a INT) RETURNS INT STABLE AS $$ return [a][0] $$ LANGUAGE plpythonu");
    }

    #[test]
    fn accepts_the_project_shapes() {
        ok("LOCK speed.telemetry");
        ok("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')");
        ok(
            "INSERT INTO s.t SELECT a FROM x WHERE NOT EXISTS (SELECT 1 FROM s.t y WHERE y.a = x.a)",
        );
        ok(
            "CREATE MATERIALIZED VIEW m DISTKEY(vin) SORTKEY(vin) AUTO REFRESH NO AS SELECT vin, SUM(x) AS s FROM t GROUP BY vin",
        );
        ok("SELECT generate_series(1, 3)");
        ok("CREATE TEMP TABLE s (LIKE speed.telemetry)");
        ok(
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED THEN INSERT VALUES (s.a, s.b)",
        );
        ok("GRANT SELECT ON ALL TABLES IN SCHEMA speed TO ROLE reader");
        ok("SELECT LISTAGG(vin, ',') WITHIN GROUP (ORDER BY vin) FROM t");
        ok(
            "ALTER TABLE spectrum.t ADD IF NOT EXISTS PARTITION (year=2026, month=1, day=2) LOCATION 's3://b/p/'",
        );
        ok("SELECT json_extract_path_text(j, 'a') FROM t");
    }

    #[test]
    fn transaction_block_restrictions() {
        for sql in [
            "VACUUM t",
            "CREATE DATABASE d",
            "DROP DATABASE d",
            "ALTER TABLE t ALTER COLUMN c TYPE VARCHAR(256)",
            "ALTER TABLE t APPEND FROM s",
        ] {
            let e = check(&tokenize(sql), true).expect_err(sql);
            assert!(e.contains("cannot run inside a transaction block"), "{e}");
            ok(sql);
        }
    }

    #[test]
    fn byte_checks_on_character_columns() {
        let mut t = tokenize(
            "CREATE TEMP TABLE s (vin CHAR(17) NOT NULL, trip_id VARCHAR(64), note TEXT, n NVARCHAR(10), x INT, PRIMARY KEY (vin))",
        );
        add_byte_checks(&mut t);
        let sql = join(&t);
        assert!(sql.contains("CHAR(17) CONSTRAINT \"rs_char_17_vin\" CHECK (octet_length(\"vin\"::text) = char_length(\"vin\"::text)) NOT NULL"), "{sql}");
        assert!(sql.contains("VARCHAR(64) CONSTRAINT \"rs_varchar_64_trip_id\" CHECK (octet_length(\"trip_id\") <= 64)"), "{sql}");
        assert!(
            sql.contains("note varchar(256) CONSTRAINT \"rs_varchar_256_note\""),
            "{sql}"
        );
        assert!(sql.contains("n varchar(10) CONSTRAINT"), "{sql}");
        assert!(sql.contains("x INT,"), "{sql}");
        let mut t = tokenize("ALTER TABLE t ADD COLUMN c VARCHAR DEFAULT 'x'");
        add_byte_checks(&mut t);
        assert!(join(&t).contains("c varchar(256) CONSTRAINT \"rs_varchar_256_c\""));
        assert_eq!(
            length_error("rs_varchar_64_trip_id").unwrap(),
            "ERROR: value too long for type character varying(64)"
        );
        assert!(
            length_error("rs_char_17_vin")
                .unwrap()
                .contains("Multibyte")
        );
        assert!(length_error("some_check").is_none());
    }
}
