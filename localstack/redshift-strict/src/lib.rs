//! Amazon Redshift's SQL restrictions, checked statically: the Data API emulator's strict
//! mode refuses what [`strict::check`] refuses, and the functions' unit tests run every
//! statement they build through [`lint`], so a new query is checked without a stack.

pub mod body;
pub mod decimal;
pub mod lexer;
pub mod strict;

/// Checks every statement in `sql` as Redshift would see it. `in_transaction`: the SQL
/// runs inside a transaction block (a BatchExecuteStatement member). Err is the
/// Redshift-style error text of the first refused statement.
pub fn lint(sql: &str, in_transaction: bool) -> Result<(), String> {
    for st in lexer::split_statements(&lexer::tokenize(sql)) {
        strict::check(&st, in_transaction)?;
    }
    Ok(())
}

/// [`lint`] for a test double: panics with the statement and the error.
pub fn assert_redshift_sql(sql: &str, in_transaction: bool) {
    if let Err(e) = lint(sql, in_transaction) {
        panic!("Amazon Redshift would refuse this statement: {e}\n{sql}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_checks_each_statement() {
        assert!(lint("SELECT 1; SELECT 2", false).is_ok());
        assert!(lint("SELECT 1; INSERT INTO t VALUES (1) RETURNING a", false).is_err());
        assert!(lint("VACUUM t", false).is_ok());
        assert!(lint("VACUUM t", true).is_err());
    }
}
