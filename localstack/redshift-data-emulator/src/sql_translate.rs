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

use crate::lexer::{Kind, Token, join, significant, tokenize};

/// Translates one statement (or several) from Redshift to PostgreSQL.
pub fn translate(sql: &str) -> String {
    join(&translate_tokens(&tokenize(sql)))
}

pub fn translate_tokens(tokens: &[Token]) -> Vec<Token> {
    let mut toks = tokens.to_vec();
    let is_routine = is_create_routine(&toks);
    strip_storage_attributes(&mut toks);
    rewrite_identity(&mut toks);
    rewrite_varchar_max(&mut toks);
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
                t.text = translate_dollar_body(&t.text);
            }
        }
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

fn translate_dollar_body(text: &str) -> String {
    // `$tag$ body $tag$`
    let Some(open_end) = text[1..].find('$').map(|p| p + 2) else {
        return text.to_string();
    };
    let tag = &text[..open_end];
    if text.len() < open_end + tag.len() || !text.ends_with(tag) {
        return text.to_string();
    }
    let body = &text[open_end..text.len() - tag.len()];
    format!("{tag}{}{tag}", translate(body))
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

    fn norm(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn strips_table_attributes() {
        let sql = "CREATE TABLE IF NOT EXISTS speed.telemetry (vin VARCHAR(17) NOT NULL ENCODE zstd DISTKEY, ts TIMESTAMP SORTKEY, speed DECIMAL(12,3) ENCODE az64) DISTSTYLE KEY DISTKEY(vin) COMPOUND SORTKEY(vin, ts) BACKUP NO";
        assert_eq!(
            norm(&translate(sql)),
            "CREATE TABLE IF NOT EXISTS speed.telemetry (vin VARCHAR(17) NOT NULL , ts TIMESTAMP , speed DECIMAL(12,3) )"
        );
        assert_eq!(
            norm(&translate(
                "create table t (a int) diststyle all sortkey auto"
            )),
            "create table t (a int)"
        );
        assert_eq!(
            norm(&translate(
                "CREATE TABLE t (a int) INTERLEAVED SORTKEY (a) DISTSTYLE EVEN"
            )),
            "CREATE TABLE t (a int)"
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
        assert_eq!(
            norm(&translate(sql)),
            "CREATE MATERIALIZED VIEW speed.mv AS SELECT 1"
        );
    }

    #[test]
    fn identity_and_varchar_max() {
        assert_eq!(
            norm(&translate(
                "CREATE TABLE t (id BIGINT IDENTITY(1,1), s VARCHAR(MAX))"
            )),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 1 INCREMENT BY 1), s VARCHAR(65535))"
        );
        assert_eq!(
            norm(&translate(
                "CREATE TABLE t (id INT GENERATED BY DEFAULT AS IDENTITY(5,2))"
            )),
            "CREATE TABLE t (id INT GENERATED BY DEFAULT AS IDENTITY (START WITH 5 INCREMENT BY 2))"
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
    fn external_types() {
        assert_eq!(external_column_type("string"), "varchar(65535)");
        assert_eq!(external_column_type("DOUBLE"), "double precision");
        assert_eq!(external_column_type("decimal(12,3)"), "decimal(12,3)");
        assert_eq!(external_column_type("struct<latitude:double>"), "text");
    }
}
