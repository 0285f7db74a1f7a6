//! Strict mode's checks live in the `redshift-strict` crate, shared with the functions' unit tests.
pub use redshift_strict::strict::*;

use redshift_strict::decimal::{self, Catalog};
use redshift_strict::lexer::{Token, tokenize};

/// The statement with its select list computed at Redshift's DECIMAL result types
/// (`redshift_strict::decimal`), the column types read from PostgreSQL's catalog; None
/// when nothing changes.
pub async fn decimal_types(
    client: &tokio_postgres::Client,
    st: &[Token],
) -> Result<Option<Vec<Token>>, tokio_postgres::Error> {
    let Some(plan) = decimal::plan(st) else {
        return Ok(None);
    };
    let mut catalog = Catalog::new();
    for relation in plan.relations() {
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&relation],
            )
            .await?;
        let columns = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        catalog.insert(relation, columns);
    }
    Ok(plan.rewrite(&catalog).map(|sql| tokenize(&sql)))
}
