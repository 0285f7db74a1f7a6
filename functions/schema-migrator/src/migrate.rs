//! Applying a set of SQL files to the warehouse, each once per content hash.
//!
//! Files run in file-name order. A file marked `-- fleetline:no-transaction`, one with a
//! statement Redshift refuses inside a transaction block, or one with more statements than
//! a BatchExecuteStatement holds runs statement by statement, stopping at the first error;
//! any other file runs as one BatchExecuteStatement (one transaction) together with its
//! bookkeeping. Applied files are recorded with the sha256 of their substituted text in
//! [`MIGRATIONS_TABLE`]; unchanged files are skipped, changed ones re-applied (the SQL is
//! written to be re-runnable: IF NOT EXISTS, CREATE OR REPLACE).
//!
//! Every file is substituted, split and size-checked before the first statement is sent,
//! so a bad placeholder or an oversized statement changes nothing.

use std::collections::{BTreeMap, HashMap};

use fleetline_aws::warehouse::{
    MAX_BATCH_STATEMENTS, MAX_STATEMENT_BYTES, Warehouse, WarehouseError, sql_quote,
};

use crate::script::{self, ScriptError};

pub const MIGRATIONS_TABLE: &str = "public.fleetline_schema_migrations";

/// Characters of the failing statement quoted in an error (CloudFormation's Reason is short).
pub const EXCERPT_CHARS: usize = 300;

/// A SQL file as shipped (before substitution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFile {
    pub name: String,
    pub text: String,
}

impl SqlFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A file ready to run: substituted, split, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFile {
    pub name: String,
    pub sha256: String,
    pub statements: Vec<String>,
    pub one_by_one: bool,
}

/// Substitutes, splits and checks every file (sorted by name) before anything runs. Files
/// whose `-- fleetline: only NAME=VALUE` line does not match `vars` are left out.
pub fn prepare(
    files: &[SqlFile],
    vars: &BTreeMap<String, String>,
) -> Result<Vec<PreparedFile>, ScriptError> {
    let mut files: Vec<&SqlFile> = files
        .iter()
        .filter(|f| script::applies_with(&f.text, vars))
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
        .into_iter()
        .map(|f| {
            script::check_stream_name_in(&f.text, vars)?;
            let text = script::substitute(&f.text, vars, &f.name)?;
            let statements =
                script::split_statements(&text).map_err(|reason| ScriptError::Split {
                    file: f.name.clone(),
                    reason,
                })?;
            if let Some((i, s)) = statements
                .iter()
                .enumerate()
                .find(|(_, s)| s.len() > MAX_STATEMENT_BYTES)
            {
                return Err(ScriptError::TooLarge {
                    file: f.name.clone(),
                    index: i + 1,
                    bytes: s.len(),
                    max: MAX_STATEMENT_BYTES,
                });
            }
            let one_by_one = statements.len() > MAX_BATCH_STATEMENTS
                || script::needs_no_transaction(&text, &statements);
            Ok(PreparedFile {
                name: f.name.clone(),
                sha256: script::sha256_hex(&text),
                statements,
                one_by_one,
            })
        })
        .collect()
}

/// What to do with one file, given what the warehouse recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Apply,
    Reapply,
    Skip,
}

/// The action for every prepared file: unchanged files (same name and sha256 recorded) are
/// skipped unless `force`.
pub fn plan(
    files: &[PreparedFile],
    recorded: &HashMap<String, String>,
    force: bool,
) -> Vec<Action> {
    files
        .iter()
        .map(|f| match recorded.get(&f.name) {
            Some(digest) if !force && *digest == f.sha256 => Action::Skip,
            Some(_) => Action::Reapply,
            None => Action::Apply,
        })
        .collect()
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub applied: Vec<String>,
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The bookkeeping (migrations table) could not be created or read.
    #[error("{MIGRATIONS_TABLE}: {source}")]
    Bookkeeping {
        #[source]
        source: WarehouseError,
    },
    /// A statement of a file failed; earlier files stay applied and recorded.
    #[error("{file}: statement {index} of {count} failed: {source}\n    > {excerpt}")]
    Statement {
        file: String,
        index: usize,
        count: usize,
        excerpt: String,
        #[source]
        source: WarehouseError,
    },
    /// A file's batch failed without saying which statement.
    #[error("{file}: {source}")]
    File {
        file: String,
        #[source]
        source: WarehouseError,
    },
}

/// Progress lines for the caller to log or print.
pub trait Progress {
    fn line(&mut self, text: &str);
}

impl<F: FnMut(&str)> Progress for F {
    fn line(&mut self, text: &str) {
        self(text)
    }
}

/// Applies `files` to the warehouse (see the module docs). `now` is the `applied_at` text
/// recorded (`YYYY-MM-DD HH:MM:SS`, UTC).
pub async fn apply<W: Warehouse>(
    warehouse: &W,
    files: &[SqlFile],
    vars: &BTreeMap<String, String>,
    force: bool,
    now: &str,
    progress: &mut impl Progress,
) -> Result<Outcome, MigrateError> {
    let prepared = prepare(files, vars)?;
    let bookkeeping = |source| MigrateError::Bookkeeping { source };
    warehouse
        .execute(
            &format!(
                "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (file_name VARCHAR(256) NOT NULL, \
                 sha256 VARCHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)"
            ),
            &[],
        )
        .await
        .map_err(bookkeeping)?;
    let rows = warehouse
        .query(
            &format!("SELECT file_name, sha256 FROM {MIGRATIONS_TABLE}"),
            &[],
        )
        .await
        .map_err(bookkeeping)?;
    let recorded: HashMap<String, String> = rows
        .map_rows(|r| Ok((r.get_string("file_name")?, r.get_string("sha256")?)))
        .map_err(|e| {
            bookkeeping(WarehouseError::Decode {
                id: String::new(),
                source: e,
            })
        })?
        .into_iter()
        // CHAR-padded or not, compare the text.
        .map(|(f, d)| (f.trim().to_owned(), d.trim().to_owned()))
        .collect();

    let mut outcome = Outcome::default();
    for (file, action) in prepared.iter().zip(plan(&prepared, &recorded, force)) {
        if action == Action::Skip {
            outcome.skipped.push(file.name.clone());
            continue;
        }
        let verb = if action == Action::Reapply {
            "re-applying"
        } else {
            "applying"
        };
        let how = if file.one_by_one {
            "one by one"
        } else {
            "in one transaction"
        };
        progress.line(&format!(
            "{verb} {}: {} statement(s) {how}",
            file.name,
            file.statements.len()
        ));
        apply_file(warehouse, file, now).await?;
        outcome.applied.push(file.name.clone());
    }
    Ok(outcome)
}

fn record_statements(file: &PreparedFile, now: &str) -> Result<Vec<String>, WarehouseError> {
    let name = sql_quote(&file.name)?;
    Ok(vec![
        format!("DELETE FROM {MIGRATIONS_TABLE} WHERE file_name = {name}"),
        format!(
            "INSERT INTO {MIGRATIONS_TABLE} (file_name, sha256, applied_at) VALUES ({name}, {}, {})",
            sql_quote(&file.sha256)?,
            sql_quote(now)?
        ),
    ])
}

async fn apply_file<W: Warehouse>(
    warehouse: &W,
    file: &PreparedFile,
    now: &str,
) -> Result<(), MigrateError> {
    let file_error = |source| MigrateError::File {
        file: file.name.clone(),
        source,
    };
    let record = record_statements(file, now).map_err(file_error)?;
    let count = file.statements.len();
    let statement_error = |index: usize, source| MigrateError::Statement {
        file: file.name.clone(),
        index,
        count,
        excerpt: script::excerpt(&file.statements[index - 1], EXCERPT_CHARS),
        source,
    };
    if file.one_by_one {
        for (i, statement) in file.statements.iter().enumerate() {
            warehouse
                .execute(statement, &[])
                .await
                .map_err(|e| statement_error(i + 1, e))?;
        }
        warehouse.transaction(record).await.map_err(file_error)?;
        return Ok(());
    }
    if file.statements.is_empty() {
        warehouse.transaction(record).await.map_err(file_error)?;
        return Ok(());
    }
    let batch_error = |e: WarehouseError| match &e {
        WarehouseError::StatementFailed {
            sub_statement: Some(i),
            ..
        } if (1..=count).contains(i) => statement_error(*i, e),
        _ => file_error(e),
    };
    if count + record.len() <= MAX_BATCH_STATEMENTS {
        let mut batch = file.statements.clone();
        batch.extend(record);
        warehouse.transaction(batch).await.map_err(batch_error)?;
    } else {
        // The statements fill the batch: bookkeeping right after, separately.
        warehouse
            .transaction(file.statements.clone())
            .await
            .map_err(batch_error)?;
        warehouse.transaction(record).await.map_err(file_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("X".to_string(), "1".to_string())].into_iter().collect()
    }

    #[test]
    fn prepare_sorts_substitutes_and_classifies() {
        let files = [
            SqlFile::new(
                "20_b.sql",
                "-- fleetline:no-transaction\nSELECT ${X}; SELECT 2;",
            ),
            SqlFile::new("10_a.sql", "SELECT ${X};"),
        ];
        let p = prepare(&files, &vars()).unwrap();
        assert_eq!(p[0].name, "10_a.sql");
        assert_eq!(p[0].statements, ["SELECT 1"]);
        assert!(!p[0].one_by_one);
        assert_eq!(p[0].sha256, script::sha256_hex("SELECT 1;"));
        assert!(p[1].one_by_one);
        let many = SqlFile::new("30.sql", "SELECT 1;".repeat(MAX_BATCH_STATEMENTS + 1));
        assert!(prepare(&[many], &vars()).unwrap()[0].one_by_one);
    }

    #[test]
    fn prepare_fails_before_anything_runs() {
        let err = prepare(&[SqlFile::new("a.sql", "SELECT ${Y};")], &vars()).unwrap_err();
        assert!(matches!(err, ScriptError::UnknownPlaceholder { .. }));
        let big = format!("SELECT '{}';", "x".repeat(MAX_STATEMENT_BYTES));
        let err = prepare(&[SqlFile::new("b.sql", big)], &vars()).unwrap_err();
        assert!(matches!(err, ScriptError::TooLarge { index: 1, .. }));
    }

    #[test]
    fn plan_skips_only_unchanged_files() {
        let p = prepare(
            &[
                SqlFile::new("a.sql", "SELECT 1;"),
                SqlFile::new("b.sql", "SELECT 2;"),
                SqlFile::new("c.sql", "SELECT 3;"),
            ],
            &vars(),
        )
        .unwrap();
        let recorded: HashMap<_, _> = [
            ("a.sql".to_string(), script::sha256_hex("SELECT 1;")),
            ("b.sql".to_string(), "0".repeat(64)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plan(&p, &recorded, false),
            [Action::Skip, Action::Reapply, Action::Apply]
        );
        assert_eq!(
            plan(&p, &recorded, true),
            [Action::Reapply, Action::Reapply, Action::Apply]
        );
    }
}
