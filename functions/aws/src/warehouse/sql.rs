//! Building SQL text within the Data API's limits.

use super::WarehouseError;

/// The Data API rejects a SQL statement larger than 100 KB ("Cannot process query string
/// larger than 100kB"). We count 100 KB as 100 000 bytes (UTF-8), the stricter reading.
pub const MAX_STATEMENT_BYTES: usize = 100_000;

/// At most 40 statements per BatchExecuteStatement (the `Sqls` list's maximum).
pub const MAX_BATCH_STATEMENTS: usize = 40;

/// Fails with [`WarehouseError::StatementTooLarge`] (0-based index) if any statement is over
/// [`MAX_STATEMENT_BYTES`].
pub fn check_statement_sizes<S: AsRef<str>>(statements: &[S]) -> Result<(), WarehouseError> {
    for (index, s) in statements.iter().enumerate() {
        let bytes = s.as_ref().len();
        if bytes > MAX_STATEMENT_BYTES {
            return Err(WarehouseError::StatementTooLarge {
                index,
                bytes,
                max: MAX_STATEMENT_BYTES,
            });
        }
    }
    Ok(())
}

/// Builds multi-row `INSERT … VALUES` statements: each is `prefix` + rows joined by `,` +
/// `suffix`, with as many rows as fit in `max_bytes` (normally [`MAX_STATEMENT_BYTES`]).
///
/// `rows` are complete row literals such as `('1HGCM…','trip',TIMESTAMP '…',57.300)`,
/// already escaped (see [`sql_quote`]). The suffix lets a statement close a wrapper, e.g.
/// prefix `INSERT INTO t SELECT * FROM (VALUES ` and suffix `) v(a,b) WHERE NOT EXISTS (…)`.
/// Rows keep their order. No rows → no statements. A single row that cannot fit even
/// alone is an error ([`WarehouseError::RowTooLarge`]) rather than a statement the API
/// would reject.
pub fn chunk_values_insert<I>(
    prefix: &str,
    rows: I,
    suffix: &str,
    max_bytes: usize,
) -> Result<Vec<String>, WarehouseError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    const SEP: &str = ",";
    let overhead = prefix.len() + suffix.len();
    let mut statements = Vec::new();
    let mut current = String::new();
    for (index, row) in rows.into_iter().enumerate() {
        let row = row.as_ref();
        if overhead + row.len() > max_bytes {
            return Err(WarehouseError::RowTooLarge {
                index,
                bytes: overhead + row.len(),
                max: max_bytes,
            });
        }
        if current.is_empty() {
            current.push_str(prefix);
            current.push_str(row);
        } else if current.len() + SEP.len() + row.len() + suffix.len() <= max_bytes {
            current.push_str(SEP);
            current.push_str(row);
        } else {
            current.push_str(suffix);
            statements.push(std::mem::take(&mut current));
            current.push_str(prefix);
            current.push_str(row);
        }
    }
    if !current.is_empty() {
        current.push_str(suffix);
        statements.push(current);
    }
    Ok(statements)
}

/// Quotes a string as a SQL literal (`'it''s'`) that means the same text on Redshift and on
/// the PostgreSQL-backed emulator.
///
/// Backslashes are rejected: Redshift (PostgreSQL 8 lineage) treats them as escapes inside
/// ordinary literals, PostgreSQL 15 does not, so no spelling means the same on both. NUL
/// cannot be stored by either. Validated Fleetline fields (VIN, trip id, device id) never
/// contain them; anything else should travel as an ExecuteStatement parameter.
pub fn sql_quote(value: &str) -> Result<String, WarehouseError> {
    let mut out = String::with_capacity(value.len() + 2);
    push_sql_quoted(&mut out, value)?;
    Ok(out)
}

/// [`sql_quote`] appended to `out` (row builders write a whole row into one buffer); on
/// error `out` is left unchanged.
pub fn push_sql_quoted(out: &mut String, value: &str) -> Result<(), WarehouseError> {
    // Most values hold none of the three ASCII bytes that need care: a branch-free scan per
    // 16 bytes finds that out, and the value is then copied whole.
    let needs_care = value.as_bytes().chunks(16).any(|c| {
        c.iter()
            .fold(false, |hit, &b| hit | matches!(b, b'\'' | b'\\' | b'\0'))
    });
    if needs_care && let Some(bad) = value.bytes().find(|b| matches!(b, b'\\' | b'\0')) {
        return Err(WarehouseError::UnquotableLiteral {
            reason: format!("contains {:?}", char::from(bad)),
        });
    }
    out.push('\'');
    // Runs between quotes are copied whole; each quote is doubled.
    let mut rest = value;
    while needs_care && let Some(at) = rest.find('\'') {
        out.push_str(&rest[..=at]);
        out.push('\'');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('\'');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, width: usize) -> Vec<String> {
        // Each row is exactly `width` bytes: "(" + digits padded + ")".
        (0..n)
            .map(|i| format!("({:0>w$})", i, w = width - 2))
            .collect()
    }

    #[test]
    fn empty_input_gives_no_statements() {
        let out =
            chunk_values_insert("INSERT INTO t VALUES ", Vec::<String>::new(), "", 100).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn statement_exactly_at_the_limit_is_kept_one_byte_more_splits() {
        let prefix = "INSERT INTO t VALUES "; // 21 bytes
        let suffix = ";"; // 1 byte
        let r = rows(3, 10); // 3 rows of 10 bytes, joined: 10+1+10+1+10 = 32
        let exact = prefix.len() + 32 + suffix.len(); // 54
        let out = chunk_values_insert(prefix, &r, suffix, exact).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), exact);
        assert_eq!(out[0], format!("{prefix}{}{suffix}", r.join(",")));

        let out = chunk_values_insert(prefix, &r, suffix, exact - 1).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], format!("{prefix}{},{}{suffix}", r[0], r[1]));
        assert_eq!(out[1], format!("{prefix}{}{suffix}", r[2]));
    }

    #[test]
    fn real_limit_boundary_and_order_preserved() {
        let prefix = "INSERT INTO speed.telemetry (a) VALUES ";
        let width = 100;
        // How many rows fit: prefix + n*width + (n-1) separators <= MAX.
        let fit = (MAX_STATEMENT_BYTES - prefix.len() + 1) / (width + 1);
        let r = rows(fit * 2 + 1, width);
        let out = chunk_values_insert(prefix, &r, "", MAX_STATEMENT_BYTES).unwrap();
        assert_eq!(out.len(), 3);
        for s in &out {
            assert!(s.len() <= MAX_STATEMENT_BYTES, "{}", s.len());
            assert!(s.starts_with(prefix));
        }
        assert_eq!(out[0].len(), prefix.len() + fit * width + (fit - 1));
        // One more row would have crossed the limit.
        assert!(out[0].len() + 1 + width > MAX_STATEMENT_BYTES);
        // All rows, in order, exactly once.
        let back: Vec<&str> = out
            .iter()
            .flat_map(|s| s[prefix.len()..].split(','))
            .collect();
        assert_eq!(back, r.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn multibyte_rows_are_measured_in_bytes() {
        let r = ["('é')".to_owned(), "('é')".to_owned()]; // 6 bytes each, 5 chars
        let out = chunk_values_insert("", &r, "", 12).unwrap();
        assert_eq!(out.len(), 2, "13 bytes joined do not fit in 12");
        let out = chunk_values_insert("", &r, "", 13).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn oversized_row_is_an_error_naming_it() {
        let r = ["(1)".to_owned(), "(1234567890)".to_owned()];
        let err = chunk_values_insert("P ", &r, " S", 10).unwrap_err();
        match err {
            WarehouseError::RowTooLarge { index, bytes, max } => {
                assert_eq!((index, bytes, max), (1, 16, 10));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(sql_quote("it's").unwrap(), "'it''s'");
        assert_eq!(sql_quote("").unwrap(), "''");
        assert_eq!(
            sql_quote("V1StGXR8_Z5jdHi6B-myT").unwrap(),
            "'V1StGXR8_Z5jdHi6B-myT'"
        );
        assert!(sql_quote("a\\b").is_err());
        assert!(sql_quote("a\0b").is_err());
    }
}
