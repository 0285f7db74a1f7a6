//! Maps Redshift-only SQL onto PostgreSQL 15, token by token (never inside literals,
//! quoted identifiers or comments).
//!
//! - table/column attributes that only steer Redshift's storage are dropped:
//!   `DISTSTYLE {ALL|EVEN|KEY|AUTO}`, `DISTKEY(col)` / column-level `DISTKEY`,
//!   `[COMPOUND|INTERLEAVED] SORTKEY(cols)` / `SORTKEY AUTO` / column-level `SORTKEY`,
//!   `ENCODE xxx`, `BACKUP {YES|NO}`, `AUTO REFRESH {YES|NO}`;
//! - `IDENTITY(seed, step)` becomes a PostgreSQL identity column;
//! - `VARCHAR(MAX)` becomes `VARCHAR(65535)`;
//! - `SYSDATE` becomes `sysdate()` (GETDATE(), NVL(), sysdate() are SQL functions that
//!   the emulator creates in every database);
//! - the same rewrites apply inside the dollar-quoted body of `CREATE PROCEDURE` /
//!   `CREATE FUNCTION`.

use crate::lexer::{Kind, Token, join, quote_literal, significant, tokenize};

/// Translates one statement (or several) from Redshift to PostgreSQL.
pub fn translate(sql: &str) -> String {
    join(&translate_tokens(&tokenize(sql), false))
}

/// `strict`: also give every CHAR/VARCHAR column Redshift's byte-length limit.
pub fn translate_tokens(tokens: &[Token], strict: bool) -> Vec<Token> {
    let mut toks = if has_redshift_call(tokens) {
        tokenize(&rewrite_calls(tokens))
    } else {
        tokens.to_vec()
    };
    let is_routine = is_create_routine(&toks);
    strip_storage_attributes(&mut toks);
    rewrite_identity(&mut toks);
    rewrite_varchar_max(&mut toks);
    rewrite_varbyte(&mut toks);
    for t in toks.iter_mut() {
        if t.is_word("sysdate") {
            t.text = "sysdate()".into();
        }
    }
    // `SYSDATE(` would now read `sysdate()(`: undo for the rare explicit call.
    let sig = significant(&toks);
    for w in sig.windows(2) {
        if toks[w[0]].text == "sysdate()" && toks[w[1]].is_punct("(") {
            toks[w[0]].text = "sysdate".into();
        }
    }
    if is_routine {
        for t in toks.iter_mut() {
            if t.kind == Kind::DollarStr {
                t.text = translate_dollar_body(&t.text, strict);
            }
        }
    }
    if strict {
        // Last: it appends text to tokens, which the passes above would not recognise.
        crate::strict::add_byte_checks(&mut toks);
    }
    toks
}

fn is_create_routine(toks: &[Token]) -> bool {
    let words: Vec<&Token> = toks.iter().filter(|t| !t.is_trivia()).take(4).collect();
    if !words.first().is_some_and(|t| t.is_word("create")) {
        return false;
    }
    words
        .iter()
        .any(|t| t.is_word("procedure") || t.is_word("function"))
}

fn translate_dollar_body(text: &str, strict: bool) -> String {
    // `$tag$ body $tag$`
    let Some(open_end) = text[1..].find('$').map(|p| p + 2) else {
        return text.to_string();
    };
    let tag = &text[..open_end];
    if text.len() < open_end + tag.len() || !text.ends_with(tag) {
        return text.to_string();
    }
    let body = &text[open_end..text.len() - tag.len()];
    format!(
        "{tag}{}{tag}",
        join(&translate_tokens(&tokenize(body), strict))
    )
}

/// Marks tokens `from..=to` (indices into `toks`) as removed, keeping one space.
fn blank(toks: &mut [Token], from: usize, to: usize) {
    for t in &mut toks[from..=to] {
        t.kind = Kind::Space;
        t.text = String::new();
    }
    toks[from].text = " ".into();
}

/// Index (into `sig`) of the `)` matching the `(` at `sig[open]`.
fn matching_paren(toks: &[Token], sig: &[usize], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, &i) in sig.iter().enumerate().skip(open) {
        if toks[i].is_punct("(") {
            depth += 1;
        } else if toks[i].is_punct(")") {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

fn strip_storage_attributes(toks: &mut [Token]) {
    let sig = significant(toks);
    let mut k = 0;
    while k < sig.len() {
        let i = sig[k];
        let next = |d: usize| sig.get(k + d).map(|&j| toks[j].clone());
        let t = toks[i].clone();
        // The number of significant tokens the clause spans, if it is one.
        let span: Option<usize> = if t.is_word("diststyle")
            && next(1).is_some_and(|n| n.kind == Kind::Word)
        {
            Some(2)
        } else if t.is_word("distkey") || t.is_word("sortkey") {
            if next(1).is_some_and(|n| n.is_punct("(")) {
                matching_paren(toks, &sig, k + 1).map(|end| end - k + 1)
            } else if t.is_word("sortkey") && next(1).is_some_and(|n| n.is_word("auto")) {
                Some(2)
            } else {
                Some(1)
            }
        } else if (t.is_word("compound") || t.is_word("interleaved"))
            && next(1).is_some_and(|n| n.is_word("sortkey"))
        {
            if next(2).is_some_and(|n| n.is_punct("(")) {
                matching_paren(toks, &sig, k + 2).map(|end| end - k + 1)
            } else {
                Some(2)
            }
        } else if (t.is_word("encode") && next(1).is_some_and(|n| n.kind == Kind::Word))
            || (t.is_word("backup") && next(1).is_some_and(|n| n.is_word("yes") || n.is_word("no")))
        {
            Some(2)
        } else if t.is_word("auto")
            && next(1).is_some_and(|n| n.is_word("refresh"))
            && next(2).is_some_and(|n| n.is_word("yes") || n.is_word("no"))
        {
            Some(3)
        } else {
            None
        };
        match span {
            Some(s) => {
                blank(toks, i, sig[k + s - 1]);
                k += s;
            }
            None => k += 1,
        }
    }
}

/// `IDENTITY(seed, step)` (Redshift) → `GENERATED BY DEFAULT AS IDENTITY (START WITH
/// seed INCREMENT BY step)`; `GENERATED … AS IDENTITY(seed, step)` keeps its prefix.
fn rewrite_identity(toks: &mut [Token]) {
    let sig = significant(toks);
    for k in 0..sig.len() {
        if !toks[sig[k]].is_word("identity") {
            continue;
        }
        let get = |d: usize| sig.get(k + d).map(|&j| &toks[j]);
        let shape = get(1).is_some_and(|t| t.is_punct("("))
            && get(2).is_some_and(|t| t.kind == Kind::Number)
            && get(3).is_some_and(|t| t.is_punct(","))
            && get(4).is_some_and(|t| t.kind == Kind::Number)
            && get(5).is_some_and(|t| t.is_punct(")"));
        if !shape {
            continue;
        }
        let seed = toks[sig[k + 2]].text.clone();
        let step = toks[sig[k + 4]].text.clone();
        let after_as = k > 0 && toks[sig[k - 1]].is_word("as");
        let prefix = if after_as {
            ""
        } else {
            "GENERATED BY DEFAULT AS "
        };
        blank(toks, sig[k], sig[k + 5]);
        toks[sig[k]].text = format!(" {prefix}IDENTITY (START WITH {seed} INCREMENT BY {step})");
    }
}

fn rewrite_varchar_max(toks: &mut [Token]) {
    let sig = significant(toks);
    for w in sig.windows(3) {
        if toks[w[0]].is_punct("(") && toks[w[1]].is_word("max") && toks[w[2]].is_punct(")") {
            let k = sig.iter().position(|&x| x == w[0]).unwrap_or(0);
            let prev = k.checked_sub(1).map(|p| &toks[sig[p]]);
            if prev.is_some_and(|p| {
                p.is_word("varchar")
                    || p.is_word("varying")
                    || p.is_word("char")
                    || p.is_word("character")
                    || p.is_word("nvarchar")
                    || p.is_word("varbyte")
            }) {
                toks[w[1]] = Token::new(Kind::Number, "65535");
            }
        }
    }
}

/// `VARBYTE(n)`, `VARBINARY(n)`, `BINARY VARYING(n)` → the `varbyte` domain over bytea
/// (`super_ddl.rs`; a domain takes no length, so n is not enforced).
fn rewrite_varbyte(toks: &mut [Token]) {
    let sig = significant(toks);
    for k in 0..sig.len() {
        let t = &toks[sig[k]];
        let words = if t.is_word("varbyte") || t.is_word("varbinary") {
            1
        } else if t.is_word("binary") && sig.get(k + 1).is_some_and(|&j| toks[j].is_word("varying"))
        {
            2
        } else {
            continue;
        };
        let get = |d: usize| sig.get(k + d).map(|&j| &toks[j]);
        let sized = get(words).is_some_and(|t| t.is_punct("("))
            && get(words + 1).is_some_and(|t| t.kind == Kind::Number)
            && get(words + 2).is_some_and(|t| t.is_punct(")"));
        let last = if sized { words + 2 } else { words - 1 };
        blank(toks, sig[k], sig[k + last]);
        toks[sig[k]].text = " public.varbyte".into();
    }
}

/// Redshift functions rewritten into PostgreSQL forms (the others are SQL functions,
/// see `pool.rs`).
const REWRITTEN: &[&str] = &[
    "dateadd",
    "datediff",
    "approximate",
    "median",
    "listagg",
    "decode",
];

fn has_redshift_call(toks: &[Token]) -> bool {
    toks.iter().any(|t| REWRITTEN.iter().any(|w| t.is_word(w)))
}

/// Splits the significant tokens `sig[from..to]` at depth-0 commas.
fn split_args(toks: &[Token], sig: &[usize], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut depth) = (from, 0i32);
    for k in from..to {
        let t = &toks[sig[k]];
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if depth == 0 && t.is_punct(",") {
            out.push((start, k));
            start = k + 1;
        }
    }
    if start < to {
        out.push((start, to));
    }
    out
}

/// The text of tokens `sig[a]..=sig[b-1]` (with the trivia between them), itself rewritten.
fn span(toks: &[Token], sig: &[usize], a: usize, b: usize) -> String {
    if a >= b {
        return String::new();
    }
    rewrite_calls(&toks[sig[a]..=sig[b - 1]])
}

/// `DATEADD(day, …)`/`DATEDIFF(day, …)` (bare datepart → a literal), `APPROXIMATE
/// COUNT(…)` → `COUNT(…)`, `MEDIAN(x)` → `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)`,
/// `LISTAGG(x, d) [WITHIN GROUP (ORDER BY …)]` → `string_agg(x::text, d [ORDER BY …])`,
/// `DECODE(e, s1, r1, …, [default])` → `CASE`. Window (`OVER`) forms of MEDIAN and
/// LISTAGG are left alone.
fn rewrite_calls(toks: &[Token]) -> String {
    let sig = significant(toks);
    let mut out = String::new();
    let mut copied = 0usize; // index into toks of the first token not yet copied
    let mut k = 0;
    while k < sig.len() {
        let i = sig[k];
        let t = &toks[i];
        let is_call =
            t.kind == Kind::Word && sig.get(k + 1).is_some_and(|&j| toks[j].is_punct("("));
        let w = t.text.to_ascii_lowercase();
        if w == "approximate" && sig.get(k + 1).is_some_and(|&j| toks[j].is_word("count")) {
            out.push_str(&join(&toks[copied..i]));
            copied = sig[k + 1];
            k += 1;
            continue;
        }
        if !is_call || !REWRITTEN.contains(&w.as_str()) {
            k += 1;
            continue;
        }
        let Some(close) = matching_paren(toks, &sig, k + 1) else {
            k += 1;
            continue;
        };
        let call = Call {
            toks,
            sig: &sig,
            args: split_args(toks, &sig, k + 2, close),
            close,
        };
        match rewrite_call(&w, &call) {
            Some((r, end)) => {
                out.push_str(&join(&toks[copied..i]));
                out.push_str(&r);
                copied = sig[end] + 1;
                k = end + 1;
            }
            None => k += 1,
        }
    }
    out.push_str(&join(&toks[copied.min(toks.len())..]));
    out
}

/// A call `name(…)`: its arguments as ranges of significant indices.
struct Call<'a> {
    toks: &'a [Token],
    sig: &'a [usize],
    args: Vec<(usize, usize)>,
    /// The significant index of the closing parenthesis.
    close: usize,
}

impl Call<'_> {
    /// Argument `n`, itself rewritten.
    fn arg(&self, n: usize) -> String {
        let (from, to) = self.args[n];
        span(self.toks, self.sig, from, to)
    }

    /// The first token of argument `n`.
    fn arg_start(&self, n: usize) -> &Token {
        &self.toks[self.sig[self.args[n].0]]
    }

    /// The significant token `d` places after the closing parenthesis.
    fn after(&self, d: usize) -> Option<&Token> {
        self.sig.get(self.close + d).map(|&j| &self.toks[j])
    }
}

/// The PostgreSQL form of a Redshift call, and the significant index of the last token
/// it replaces; None leaves the call as it is.
fn rewrite_call(name: &str, call: &Call) -> Option<(String, usize)> {
    let windowed = call.after(1).is_some_and(|t| t.is_word("over"));
    let count = call.args.len();
    let replacement = match name {
        "dateadd" | "datediff"
            if count == 3
                && call.args[0].1 == call.args[0].0 + 1
                && call.arg_start(0).kind == Kind::Word =>
        {
            let part = quote_literal(&call.arg_start(0).text.to_ascii_lowercase());
            format!("{name}({part}, {}, {})", call.arg(1), call.arg(2))
        }
        "median" if count == 1 && !windowed => format!(
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY {})",
            call.arg(0)
        ),
        "listagg" if (1..=2).contains(&count) && !windowed => return Some(listagg(call)),
        "decode" if count >= 3 => decode(call),
        _ => return None,
    };
    Some((replacement, call.close))
}

/// `LISTAGG(x[, d]) [WITHIN GROUP (ORDER BY …)]` → `string_agg(x::text, d [ORDER BY …])`.
fn listagg(call: &Call) -> (String, usize) {
    let first = call.arg(0);
    let expr = if call.arg_start(0).is_word("distinct") {
        first
    } else {
        format!("({first})::text")
    };
    let delimiter = if call.args.len() > 1 {
        call.arg(1)
    } else {
        "''".into()
    };
    if call.after(1).is_some_and(|t| t.is_word("within"))
        && call.after(2).is_some_and(|t| t.is_word("group"))
        && call.after(3).is_some_and(|t| t.is_punct("("))
        && let Some(group_close) = matching_paren(call.toks, call.sig, call.close + 3)
    {
        let order = span(call.toks, call.sig, call.close + 4, group_close);
        return (
            format!("string_agg({expr}, {delimiter} {order})"),
            group_close,
        );
    }
    (format!("string_agg({expr}, {delimiter})"), call.close)
}

/// `DECODE(e, s1, r1, …[, default])` → `CASE WHEN e IS NOT DISTINCT FROM s1 THEN r1 …`.
fn decode(call: &Call) -> String {
    let expr = call.arg(0);
    let rest: Vec<String> = (1..call.args.len()).map(|n| call.arg(n)).collect();
    let mut case = String::from("(CASE");
    for pair in rest.chunks(2) {
        match pair {
            [search, result] => case.push_str(&format!(
                " WHEN ({expr}) IS NOT DISTINCT FROM ({search}) THEN ({result})"
            )),
            [default] => case.push_str(&format!(" ELSE ({default})")),
            _ => {}
        }
    }
    case.push_str(" END)");
    case
}

/// Maps a Spectrum/Hive column type of an external table to a PostgreSQL type.
pub fn external_column_type(ty: &str) -> String {
    let t = ty.trim();
    if t.contains('<') {
        // struct<…>, array<…>, map<…>: kept as JSON text.
        return "text".into();
    }
    let lower = t.to_lowercase();
    match lower.as_str() {
        "string" => "varchar(65535)".into(),
        "double" => "double precision".into(),
        "tinyint" => "smallint".into(),
        "float" => "real".into(),
        _ => translate(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sql` translates to `expected`, whitespace runs compared as one space.
    #[track_caller]
    fn assert_translates(sql: &str, expected: &str) {
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(norm(&translate(sql)), expected, "{sql}");
    }

    #[test]
    fn strips_table_attributes() {
        let sql = "CREATE TABLE IF NOT EXISTS speed.telemetry (vin VARCHAR(17) NOT NULL ENCODE zstd DISTKEY, ts TIMESTAMP SORTKEY, speed DECIMAL(12,3) ENCODE az64) DISTSTYLE KEY DISTKEY(vin) COMPOUND SORTKEY(vin, ts) BACKUP NO";
        assert_translates(
            sql,
            "CREATE TABLE IF NOT EXISTS speed.telemetry (vin VARCHAR(17) NOT NULL , ts TIMESTAMP , speed DECIMAL(12,3) )",
        );
        assert_translates(
            "create table t (a int) diststyle all sortkey auto",
            "create table t (a int)",
        );
        assert_translates(
            "CREATE TABLE t (a int) INTERLEAVED SORTKEY (a) DISTSTYLE EVEN",
            "CREATE TABLE t (a int)",
        );
    }

    #[test]
    fn leaves_literals_and_functions_alone() {
        let sql = "SELECT encode(x, 'hex'), 'DISTSTYLE ALL', \"sortkey\" FROM t -- DISTKEY(a)";
        assert_eq!(translate(sql), sql);
    }

    #[test]
    fn materialized_view_options() {
        let sql = "CREATE MATERIALIZED VIEW speed.mv BACKUP NO AUTO REFRESH YES AS SELECT 1";
        assert_translates(sql, "CREATE MATERIALIZED VIEW speed.mv AS SELECT 1");
    }

    #[test]
    fn identity_and_varchar_max() {
        assert_translates(
            "CREATE TABLE t (id BIGINT IDENTITY(1,1), s VARCHAR(MAX))",
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 1 INCREMENT BY 1), s VARCHAR(65535))",
        );
        assert_translates(
            "CREATE TABLE t (id INT GENERATED BY DEFAULT AS IDENTITY(5,2))",
            "CREATE TABLE t (id INT GENERATED BY DEFAULT AS IDENTITY (START WITH 5 INCREMENT BY 2))",
        );
    }

    #[test]
    fn sysdate_everywhere_including_procedure_bodies() {
        assert_eq!(
            translate("SELECT SYSDATE, getdate()"),
            "SELECT sysdate(), getdate()"
        );
        let p = "CREATE OR REPLACE PROCEDURE p() AS $$ BEGIN INSERT INTO t VALUES (SYSDATE); END; $$ LANGUAGE plpgsql";
        assert!(translate(p).contains("VALUES (sysdate())"));
        // Not inside string literals, and not in other statements' dollar strings.
        assert_eq!(
            translate("SELECT 'SYSDATE', $$SYSDATE$$"),
            "SELECT 'SYSDATE', $$SYSDATE$$"
        );
    }

    #[test]
    fn redshift_functions_become_postgresql() {
        let cases = [
            (
                "SELECT DATEADD(day, 1, ts), datediff(Hour, a, b) FROM t",
                "SELECT dateadd('day', 1, ts), datediff('hour', a, b) FROM t",
            ),
            (
                "SELECT APPROXIMATE COUNT(DISTINCT vin) FROM t",
                "SELECT COUNT(DISTINCT vin) FROM t",
            ),
            (
                "SELECT MEDIAN(speed) FROM t",
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY speed) FROM t",
            ),
            (
                "SELECT LISTAGG(vin, ',') WITHIN GROUP (ORDER BY vin DESC) FROM t",
                "SELECT string_agg((vin)::text, ',' ORDER BY vin DESC) FROM t",
            ),
            (
                "SELECT decode(a, 1, 'one', 2, decode(b, 0, 'z', 'nz'), 'other') FROM t",
                "SELECT (CASE WHEN (a) IS NOT DISTINCT FROM (1) THEN ('one') WHEN (a) IS NOT DISTINCT FROM (2) THEN ((CASE WHEN (b) IS NOT DISTINCT FROM (0) THEN ('z') ELSE ('nz') END)) ELSE ('other') END) FROM t",
            ),
            // Not inside literals; the two-argument PostgreSQL decode stays.
            (
                "SELECT 'median(x)', decode(x, 'hex')",
                "SELECT 'median(x)', decode(x, 'hex')",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(translate(sql), expected, "{sql}");
        }
    }

    #[test]
    fn varbyte_types() {
        assert_translates(
            "CREATE TABLE t (a VARBYTE(1024000) NOT NULL, b varbinary, c BINARY VARYING (8))",
            "CREATE TABLE t (a public.varbyte NOT NULL, b public.varbyte, c public.varbyte)",
        );
    }

    #[test]
    fn external_types() {
        assert_eq!(external_column_type("string"), "varchar(65535)");
        assert_eq!(external_column_type("DOUBLE"), "double precision");
        assert_eq!(external_column_type("decimal(12,3)"), "decimal(12,3)");
        assert_eq!(external_column_type("struct<latitude:double>"), "text");
    }
}
