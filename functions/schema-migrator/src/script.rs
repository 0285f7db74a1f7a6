//! SQL files as text: `${NAME}` substitution, splitting into statements, whether a file may
//! run as one transaction, and its digest. No AWS types here.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A file marked with this comment runs statement by statement, never as one batch.
pub const NO_TRANSACTION_MARK: &str = "fleetline:no-transaction";

/// A file with a line `-- fleetline: only NAME=VALUE` is applied only when the variable
/// NAME is VALUE (the streaming speed path's SQL: `SPEED_PATH=streaming-ingestion`);
/// otherwise it is neither substituted, nor applied, nor recorded.
pub const ONLY_MARK: &str = "-- fleetline: only ";

/// Variables written into SQL as an `IAM_ROLE` argument (`default` or a quoted ARN).
pub const ROLE_VARIABLES: [&str; 2] = ["SPECTRUM_IAM_ROLE", "STREAMING_IAM_ROLE"];

/// The variable naming the Kinesis stream (written as a quoted identifier).
pub const STREAM_NAME_VARIABLE: &str = "STREAM_NAME";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("{file}: unknown placeholder ${{{name}}} (pass it as a variable: {name}=VALUE)")]
    UnknownPlaceholder { file: String, name: String },
    #[error("{file}: cannot split into statements: {reason}")]
    Split { file: String, reason: String },
    #[error("{file}: statement {index} is {bytes} bytes; the Data API accepts at most {max}")]
    TooLarge {
        file: String,
        index: usize,
        bytes: usize,
        max: usize,
    },
    #[error("variable {name}: {reason}")]
    BadVariable { name: String, reason: String },
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Replaces every `${NAME}` in `text`; an unknown NAME is an error naming the file.
pub fn substitute(
    text: &str,
    vars: &BTreeMap<String, String>,
    file: &str,
) -> Result<String, ScriptError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        let after = &rest[pos + 2..];
        let close = after.find('}');
        match close.map(|end| &after[..end]).filter(|n| is_name(n)) {
            Some(name) => {
                let value = vars
                    .get(name)
                    .ok_or_else(|| ScriptError::UnknownPlaceholder {
                        file: file.to_owned(),
                        name: name.to_owned(),
                    })?;
                out.push_str(&rest[..pos]);
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            None => {
                // Not a placeholder (e.g. `${` in a comment): keep it as written.
                out.push_str(&rest[..pos + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits SQL text into statements on top-level semicolons.
///
/// Semicolons inside `'...'` strings (`''` escapes; `E'...'` also backslash escapes),
/// `"..."` identifiers, `--` and (nested) `/* */` comments and `$$` / `$tag$` dollar-quoted
/// bodies do not split. Statements with only comments and whitespace are dropped. Returns
/// the statements stripped, without the trailing semicolon.
pub fn split_statements(sql: &str) -> Result<Vec<String>, String> {
    let b = sql.as_bytes();
    let n = b.len();
    let mut statements = Vec::new();
    let (mut start, mut i, mut has_code) = (0usize, 0usize, false);
    let starts = |at: usize, pat: &[u8]| b[at..].starts_with(pat);
    let mut flush = |end: usize, start: usize, has_code: &mut bool| {
        let text = sql[start..end].trim();
        if *has_code && !text.is_empty() {
            statements.push(text.to_owned());
        }
        *has_code = false;
    };
    while i < n {
        let c = b[i];
        if starts(i, b"--") {
            i = match sql[i..].find('\n') {
                Some(nl) => i + nl + 1,
                None => n,
            };
        } else if starts(i, b"/*") {
            let (mut depth, mut j) = (1usize, i + 2);
            while depth > 0 {
                if j >= n {
                    return Err(format!("unterminated /* comment starting at offset {i}"));
                }
                if starts(j, b"/*") {
                    depth += 1;
                    j += 2;
                } else if starts(j, b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            i = j;
        } else if c == b'\'' {
            let backslash =
                i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident_char(b[i - 2]));
            has_code = true;
            let mut j = i + 1;
            loop {
                if j >= n {
                    return Err(format!(
                        "unterminated string literal starting at offset {i}"
                    ));
                }
                if backslash && b[j] == b'\\' {
                    j += 2;
                } else if b[j] == b'\'' {
                    if starts(j, b"''") {
                        j += 2;
                    } else {
                        j += 1;
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = j;
        } else if c == b'"' {
            has_code = true;
            let mut j = i + 1;
            loop {
                let Some(k) = sql[j..].find('"').map(|k| j + k) else {
                    return Err(format!(
                        "unterminated \"identifier\" starting at offset {i}"
                    ));
                };
                if starts(k, b"\"\"") {
                    j = k + 2;
                } else {
                    i = k + 1;
                    break;
                }
            }
        } else if c == b'$' && (i == 0 || !is_ident_char(b[i - 1])) {
            has_code = true;
            match dollar_tag(&sql[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    let Some(end) = sql[body..].find(tag) else {
                        return Err(format!(
                            "unterminated dollar-quoted string {tag} starting at offset {i}"
                        ));
                    };
                    i = body + end + tag.len();
                }
                None => i += 1, // a positional parameter such as $1
            }
        } else if c == b';' {
            flush(i, start, &mut has_code);
            i += 1;
            start = i;
        } else {
            if !c.is_ascii_whitespace() {
                has_code = true;
            }
            i += 1;
        }
    }
    flush(n, start, &mut has_code);
    Ok(statements)
}

/// `$$` or `$tag$` at the start of `s` (tag: a letter or `_`, then letters, digits, `_`).
fn dollar_tag(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    (tag.is_empty() || is_name(tag)).then(|| &s[..end + 2])
}

/// Statements Redshift runs only outside a transaction block (so never inside a batch).
fn refuses_transaction(statement: &str) -> bool {
    let words: Vec<String> = strip_leading_comments(statement)
        .split_whitespace()
        .take(4)
        .map(str::to_ascii_lowercase)
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    matches!(
        (w(0), w(1), w(2)),
        ("create", "external", "table")
            | ("drop", "external", _)
            | ("vacuum", _, _)
            | ("create", "database", _)
            | ("drop", "database", _)
            | ("alter", "external", "table")
            | ("create", "library", _)
            | ("drop", "library", _)
    ) || (w(0) == "alter" && w(1) == "table" && w(3) == "append")
}

fn strip_leading_comments(statement: &str) -> &str {
    let mut s = statement;
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.find('\n').map_or("", |nl| &rest[nl + 1..]);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |end| &rest[end + 2..]);
        } else {
            return s;
        }
    }
}

/// Whether a file must run statement by statement: marked [`NO_TRANSACTION_MARK`], or one of
/// its statements is refused inside a transaction block.
pub fn needs_no_transaction(text: &str, statements: &[String]) -> bool {
    text.contains(NO_TRANSACTION_MARK) || statements.iter().any(|s| refuses_transaction(s))
}

/// Lowercase hex sha256 of the text (what the migrations table records).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// One statement on one line without its leading comments, cut after `limit` characters
/// (for error messages).
pub fn excerpt(statement: &str, limit: usize) -> String {
    let one_line = strip_leading_comments(statement)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match one_line.char_indices().nth(limit) {
        Some((cut, _)) => format!("{} …", &one_line[..cut]),
        None => one_line,
    }
}

/// The `(NAME, VALUE)` of a file's [`ONLY_MARK`] line, if it has one.
pub fn only_condition(text: &str) -> Option<(&str, &str)> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(ONLY_MARK.trim_end()))
        .and_then(|rest| rest.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// Whether a file applies with these variables: no [`ONLY_MARK`] line, or its variable has
/// the value the line names (an unset variable matches nothing).
pub fn applies_with(text: &str, vars: &BTreeMap<String, String>) -> bool {
    only_condition(text)
        .is_none_or(|(name, value)| vars.get(name).is_some_and(|v| v.trim() == value))
}

/// Writes the role variables as SQL ([`role_sql`]), so that every value is safe where the
/// SQL puts it. Idempotent.
pub fn normalize_variables(vars: &mut BTreeMap<String, String>) -> Result<(), ScriptError> {
    for name in ROLE_VARIABLES {
        if let Some(value) = vars.get_mut(name) {
            *value = role_sql(name, value)?;
        }
    }
    Ok(())
}

/// For a file that will be substituted: a `${STREAM_NAME}` it uses must be a Kinesis stream
/// name, 1–128 characters of `[a-zA-Z0-9_.-]` ("CreateStream",
/// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_CreateStream.html), because
/// the SQL quotes it as an identifier. (Unknown placeholders are [`substitute`]'s error.)
pub fn check_stream_name_in(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<(), ScriptError> {
    match vars.get(STREAM_NAME_VARIABLE) {
        Some(value) if text.contains("${STREAM_NAME}") => check_stream_name(value),
        _ => Ok(()),
    }
}

fn check_stream_name(value: &str) -> Result<(), ScriptError> {
    let ok = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ScriptError::BadVariable {
            name: STREAM_NAME_VARIABLE.into(),
            reason: "a Kinesis stream name is 1-128 characters of a-z, A-Z, 0-9, _ . -".into(),
        })
    }
}

/// How `CREATE EXTERNAL SCHEMA … IAM_ROLE` names the Spectrum role: the keyword `default`
/// (the namespace's default IAM role) or a quoted role ARN. The syntax is
/// `IAM_ROLE { default | 'SESSION' | 'arn:aws:iam::<account-id>:role/<role-name>' }`
/// ("CREATE EXTERNAL SCHEMA", https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_EXTERNAL_SCHEMA.html),
/// so an ARN is always written as a literal.
pub fn spectrum_role_sql(value: &str) -> Result<String, ScriptError> {
    role_sql("SPECTRUM_IAM_ROLE", value)
}

/// [`spectrum_role_sql`] for any role variable (`name` is only for the error): the
/// Kinesis external schema takes the same `IAM_ROLE { default | 'arn' }` argument.
pub fn role_sql(name: &str, value: &str) -> Result<String, ScriptError> {
    let v = value.trim();
    let bad = |reason: &str| ScriptError::BadVariable {
        name: name.into(),
        reason: reason.into(),
    };
    if v.is_empty() || v.eq_ignore_ascii_case("default") {
        return Ok("default".into());
    }
    // Already a literal (e.g. --var "SPECTRUM_IAM_ROLE='arn:…'"): check and keep it.
    let arn = match v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner,
        None => v,
    };
    if !arn.starts_with("arn:") || !arn.contains(":role/") {
        return Err(bad(
            "expected `default` or an IAM role ARN (arn:…:iam::…:role/…)",
        ));
    }
    if arn
        .chars()
        .any(|c| c == '\'' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(bad("an IAM role ARN has no quotes, backslashes or spaces"));
    }
    Ok(format!("'{arn}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x INT); -- c; here\n\
            INSERT INTO a VALUES (';'), ('it''s;'), (E'\\';');\n\
            /* a /* nested; */ comment; */ SELECT \"we;ird\"\"\" FROM a;\n\
            CREATE PROCEDURE p() AS $body$ BEGIN SELECT 1; END; $body$ LANGUAGE plpgsql;\n\
            SELECT $$x;y$$, $1;\n\
            -- only a comment;\n   ;  ";
        let s = split_statements(sql).unwrap();
        assert_eq!(s.len(), 5, "{s:#?}");
        assert_eq!(s[0], "CREATE TABLE a (x INT)");
        assert!(s[1].starts_with("-- c; here\nINSERT") && s[1].ends_with("(E'\\';')"));
        assert!(s[2].ends_with("FROM a"), "{}", s[2]);
        assert!(s[3].ends_with("$body$ LANGUAGE plpgsql"));
        assert_eq!(s[4], "SELECT $$x;y$$, $1");
    }

    #[test]
    fn unterminated_constructs_are_errors() {
        for bad in ["SELECT 'x", "SELECT \"x", "/* x", "SELECT $a$ x $b$"] {
            assert!(split_statements(bad).is_err(), "{bad}");
        }
        assert_eq!(
            split_statements("  -- nothing\n").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn placeholders_are_replaced_or_named() {
        let v = vars(&[("A", "1"), ("B_2", "two")]);
        assert_eq!(
            substitute("x ${A} ${B_2}${A} ${ not} $A ${}", &v, "f.sql").unwrap(),
            "x 1 two1 ${ not} $A ${}"
        );
        let err = substitute("${NOPE}", &v, "f.sql").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.sql: unknown placeholder ${NOPE} (pass it as a variable: NOPE=VALUE)"
        );
    }

    #[test]
    fn transaction_refusers_are_detected() {
        let stmts = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!needs_no_transaction(
            "",
            &stmts(&["CREATE TABLE t (x INT)"])
        ));
        assert!(needs_no_transaction(
            "",
            &stmts(&["-- c\n/* d */ create  EXTERNAL table s.t (x int)"])
        ));
        assert!(needs_no_transaction(
            "",
            &stmts(&["ALTER TABLE a APPEND FROM b"])
        ));
        assert!(needs_no_transaction("", &stmts(&["VACUUM"])));
        assert!(needs_no_transaction(
            "-- fleetline:no-transaction\nSELECT 1",
            &stmts(&["SELECT 1"])
        ));
    }

    #[test]
    fn the_spectrum_role_is_default_or_a_quoted_arn() {
        let arn = "arn:aws:iam::123456789012:role/fleetline-SpectrumRole-ABC";
        assert_eq!(spectrum_role_sql("").unwrap(), "default");
        assert_eq!(spectrum_role_sql("DEFAULT").unwrap(), "default");
        assert_eq!(spectrum_role_sql(arn).unwrap(), format!("'{arn}'"));
        assert_eq!(
            spectrum_role_sql(&format!("'{arn}'")).unwrap(),
            format!("'{arn}'")
        );
        assert!(spectrum_role_sql("arn:aws:iam::1:role/x' OR 1=1").is_err());
        assert!(spectrum_role_sql("myrole").is_err());
    }

    #[test]
    fn digest_and_excerpt() {
        // sha256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(excerpt("-- c\nSELECT\n  1,\n 2", 100), "SELECT 1, 2");
        assert_eq!(excerpt("SELECT 1234", 6), "SELECT …");
    }

    #[test]
    fn a_file_marked_only_applies_with_its_variable() {
        let text = "-- fleetline: only SPEED_PATH=streaming-ingestion\nSELECT 1;";
        assert_eq!(
            only_condition(text),
            Some(("SPEED_PATH", "streaming-ingestion"))
        );
        assert!(!applies_with(text, &vars(&[])));
        assert!(!applies_with(text, &vars(&[("SPEED_PATH", "lambda")])));
        assert!(applies_with(
            text,
            &vars(&[("SPEED_PATH", "streaming-ingestion")])
        ));
        assert_eq!(
            only_condition("SELECT 1; -- fleetline:no-transaction"),
            None
        );
        assert!(applies_with("SELECT 1;", &vars(&[])));
    }

    #[test]
    fn role_and_stream_variables_are_normalized() {
        let arn = "arn:aws:iam::123456789012:role/streaming";
        let mut v = vars(&[("STREAMING_IAM_ROLE", arn), ("SPECTRUM_IAM_ROLE", "")]);
        normalize_variables(&mut v).unwrap();
        assert_eq!(v["STREAMING_IAM_ROLE"], format!("'{arn}'"));
        assert_eq!(v["SPECTRUM_IAM_ROLE"], "default");
        // Idempotent: a normalized set normalizes to itself.
        let again = v.clone();
        normalize_variables(&mut v).unwrap();
        assert_eq!(v, again);
        let uses = "FROM kinesis_source.\"${STREAM_NAME}\"";
        assert!(check_stream_name_in(uses, &vars(&[("STREAM_NAME", "vehicle-telemetry")])).is_ok());
        for bad in ["", "a\"b", "has space", &"x".repeat(129)] {
            let v = vars(&[("STREAM_NAME", bad)]);
            assert!(
                matches!(
                    check_stream_name_in(uses, &v),
                    Err(ScriptError::BadVariable { ref name, .. }) if name == "STREAM_NAME"
                ),
                "{bad:?}"
            );
            // Only a file that uses it is concerned.
            assert!(check_stream_name_in("SELECT 1", &v).is_ok());
        }
        let mut v = vars(&[("STREAMING_IAM_ROLE", "not-a-role")]);
        assert!(normalize_variables(&mut v).is_err());
    }
}
