//! The SQL statements inside a `CREATE [OR REPLACE] PROCEDURE|FUNCTION … AS $$ … $$
//! LANGUAGE plpgsql|sql` body. Redshift parses the body when the procedure is created, so a
//! construct it refuses there fails the CREATE, not the first CALL.

use crate::lexer::{Kind, Token, split_statements, tokenize};

/// SQL commands whose text the body checks look at; PL/pgSQL's own statements (`RAISE`,
/// `RETURN`, `OPEN`, assignments, `EXECUTE` of a string…) are not SQL and are skipped.
const SQL_COMMANDS: &[&str] = &[
    "select", "with", "insert", "update", "delete", "merge", "create", "alter", "drop", "truncate",
    "grant", "revoke", "lock", "call", "vacuum", "analyze",
];

/// PL/pgSQL words that open a block or a branch in front of a statement.
const BLOCK_WORDS: &[&str] = &["begin", "declare", "else", "loop", "exception"];

/// The body of a procedure or function in SQL or PL/pgSQL created by `toks` (one
/// statement), without its dollar quotes; None for any other statement (a Python UDF's
/// body is no SQL).
pub fn sql_body(toks: &[Token]) -> Option<String> {
    let words: Vec<&Token> = toks.iter().filter(|t| !t.is_trivia()).collect();
    let head: Vec<String> = words
        .iter()
        .take(4)
        .map(|t| t.text.to_ascii_lowercase())
        .collect();
    let creates = head.first().map(String::as_str) == Some("create")
        && head.iter().any(|w| w == "procedure" || w == "function");
    if !creates {
        return None;
    }
    let language = words
        .windows(2)
        .find(|w| w[0].is_word("language"))
        .map(|w| w[1].text.to_ascii_lowercase());
    if !matches!(language.as_deref(), Some("plpgsql" | "sql")) {
        return None;
    }
    let body = words.iter().find(|t| t.kind == Kind::DollarStr)?;
    let tag_len = body.text[1..].find('$')? + 2;
    body.text
        .get(tag_len..body.text.len().checked_sub(tag_len)?)
        .map(str::to_string)
}

/// The SQL statements of a body, each as tokens, with the PL/pgSQL around them removed
/// (`BEGIN`, `IF … THEN`, `FOR r IN <query> LOOP`: the query is a statement of its own).
pub fn statements(body: &str) -> Vec<Vec<Token>> {
    let mut out = Vec::new();
    for st in split_statements(&tokenize(body)) {
        let mut rest: &[Token] = &st;
        loop {
            rest = skip_trivia(rest);
            let Some(first) = rest.first() else { break };
            let w = first.text.to_ascii_lowercase();
            if first.kind == Kind::Word && BLOCK_WORDS.contains(&w.as_str()) {
                rest = &rest[1..];
            } else if first.kind == Kind::Word && matches!(w.as_str(), "if" | "elsif" | "while") {
                rest = after_word(rest, &["then", "loop"]);
            } else if first.kind == Kind::Word && w == "for" {
                let query = after_word(rest, &["in"]);
                let end = position_of_word(query, "loop").unwrap_or(query.len());
                out.push(query[..end].to_vec());
                rest = &query[end.min(query.len())..];
            } else if first.is_punct("<") {
                // `<<label>>`
                rest = match rest.iter().position(|t| t.is_punct(">")) {
                    Some(i) => &rest[(i + 2).min(rest.len())..],
                    None => &[],
                };
            } else {
                break;
            }
        }
        let rest = skip_trivia(rest);
        if rest.first().is_some_and(|t| {
            t.kind == Kind::Word && SQL_COMMANDS.contains(&t.text.to_ascii_lowercase().as_str())
        }) {
            out.push(rest.to_vec());
        }
    }
    out.retain(|st| st.iter().any(|t| !t.is_trivia()));
    out
}

fn skip_trivia(toks: &[Token]) -> &[Token] {
    let start = toks
        .iter()
        .position(|t| !t.is_trivia())
        .unwrap_or(toks.len());
    &toks[start..]
}

fn position_of_word(toks: &[Token], word: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if depth == 0 && t.is_word(word) {
            return Some(i);
        }
    }
    None
}

/// The tokens after the first of `words` (at parenthesis depth 0); empty if none.
fn after_word<'a>(toks: &'a [Token], words: &[&str]) -> &'a [Token] {
    let at = words.iter().filter_map(|w| position_of_word(toks, w)).min();
    match at {
        Some(i) => &toks[i + 1..],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::join;

    fn body_statements(sql: &str) -> Vec<String> {
        let toks = tokenize(sql);
        let body = sql_body(&toks).expect("a body");
        statements(&body)
            .iter()
            .map(|st| join(st).trim().to_string())
            .collect()
    }

    #[test]
    fn finds_the_sql_statements_of_a_plpgsql_body() {
        let got = body_statements(
            "CREATE OR REPLACE PROCEDURE p(x INT) AS $$
DECLARE
    n INTEGER;
    rec RECORD;
BEGIN
    IF x IS NULL THEN
        RAISE EXCEPTION 'x';
    END IF;
    n := x * 2;
    DELETE FROM t WHERE a = n;
    FOR rec IN SELECT a FROM u ORDER BY a LOOP
        INSERT INTO t VALUES (rec.a);
    END LOOP;
    IF n > 1 THEN UPDATE t SET a = 1; ELSE UPDATE t SET a = 2; END IF;
END;
$$ LANGUAGE plpgsql",
        );
        assert_eq!(
            got,
            [
                "DELETE FROM t WHERE a = n",
                "SELECT a FROM u ORDER BY a",
                "INSERT INTO t VALUES (rec.a)",
                "UPDATE t SET a = 1",
                "UPDATE t SET a = 2",
            ]
        );
    }

    #[test]
    fn only_sql_and_plpgsql_bodies() {
        assert!(
            sql_body(&tokenize(
                "CREATE FUNCTION f(a INT) RETURNS INT STABLE AS $$ return a $$ LANGUAGE plpythonu"
            ))
            .is_none()
        );
        assert!(sql_body(&tokenize("SELECT $$ x $$")).is_none());
        assert_eq!(
            sql_body(&tokenize(
                "CREATE FUNCTION f() RETURNS INT AS $b$ SELECT 1 $b$ LANGUAGE sql"
            ))
            .as_deref(),
            Some(" SELECT 1 ")
        );
    }
}
