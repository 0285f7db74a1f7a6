//! The migration over the real Data API adapter against a mocked Data API (aws-smithy-mocks):
//! what is sent (the bookkeeping, one batch per transactional file, the recorded digest) and
//! how a failing sub-statement of a batch is reported. Time is paused, so polling is instant.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::types::{
    ColumnMetadata, Field, StatementStatusString, StatusString, SubStatementData,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use fleetline_aws::backoff::Backoff;
use fleetline_aws::warehouse::{DataApiWarehouse, PollConfig, WarehouseConfig};
use schema_migrator::SqlFile;
use schema_migrator::migrate::{self, MigrateError};

fn warehouse(rules: &[&Rule]) -> DataApiWarehouse {
    let client: Client = mock_client!(aws_sdk_redshiftdata, RuleMode::MatchAny, rules);
    DataApiWarehouse::new(
        &client,
        WarehouseConfig {
            poll: PollConfig {
                timeout: Duration::from_secs(5),
                ..PollConfig::default()
            },
            retry: Backoff::new(2, Duration::from_millis(10), Duration::from_millis(10)),
            ..WarehouseConfig::workgroup("fleetline", "dev")
        },
    )
}

/// sha256("SELECT 1;") by coreutils' sha256sum.
const SELECT_1_SHA256: &str = "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a";

/// ExecuteStatement (bookkeeping) and the SELECT of the migrations table answering `recorded`.
fn bookkeeping(recorded: Vec<(&'static str, &'static str)>) -> [Rule; 3] {
    let execute = mock!(Client::execute_statement)
        .then_output(|| ExecuteStatementOutput::builder().id("E").build());
    let result = mock!(Client::get_statement_result).then_output(move || {
        let col = |n: &str| {
            ColumnMetadata::builder()
                .name(n)
                .type_name("varchar")
                .build()
        };
        GetStatementResultOutput::builder()
            .set_column_metadata(Some(vec![col("file_name"), col("sha256")]))
            .set_records(Some(
                recorded
                    .iter()
                    .map(|(f, d)| {
                        vec![
                            Field::StringValue(f.to_string()),
                            Field::StringValue(d.to_string()),
                        ]
                    })
                    .collect(),
            ))
            .build()
            .unwrap()
    });
    let describe_execute = mock!(Client::describe_statement)
        .match_requests(|r| r.id() == Some("E"))
        .then_output(|| {
            DescribeStatementOutput::builder()
                .id("E")
                .status(StatusString::Finished)
                .has_result_set(true)
                .build()
                .unwrap()
        });
    [execute, result, describe_execute]
}

#[tokio::test(start_paused = true)]
async fn unchanged_files_are_skipped_and_a_changed_one_runs_with_its_bookkeeping() {
    let sent: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = sent.clone();
    let batch = mock!(Client::batch_execute_statement)
        .match_requests(move |r| {
            seen.lock().unwrap().push(r.sqls().to_vec());
            true
        })
        .then_output(|| BatchExecuteStatementOutput::builder().id("B").build());
    let describe_batch = mock!(Client::describe_statement)
        .match_requests(|r| r.id() == Some("B"))
        .then_output(|| {
            DescribeStatementOutput::builder()
                .id("B")
                .status(StatusString::Finished)
                .build()
                .unwrap()
        });
    let [a, b, c] = bookkeeping(vec![
        ("10_same.sql", SELECT_1_SHA256),
        ("20_changed.sql", "0000"),
    ]);
    let w = warehouse(&[&a, &b, &c, &batch, &describe_batch]);
    let files = [
        SqlFile::new("10_same.sql", "SELECT 1;"),
        SqlFile::new("20_changed.sql", "SELECT 1;"),
    ];
    let mut lines = Vec::new();
    let outcome = migrate::apply(
        &w,
        &files,
        &BTreeMap::new(),
        false,
        "2026-12-07 12:00:00",
        &mut |l: &str| lines.push(l.to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(outcome.applied, ["20_changed.sql"]);
    assert_eq!(outcome.skipped, ["10_same.sql"]);
    assert_eq!(
        lines,
        ["re-applying 20_changed.sql: 1 statement(s) in one transaction"]
    );
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "one BatchExecuteStatement: {sent:?}");
    assert_eq!(
        sent[0],
        [
            "SELECT 1".to_owned(),
            "DELETE FROM public.fleetline_schema_migrations WHERE file_name = '20_changed.sql'"
                .to_owned(),
            format!(
                "INSERT INTO public.fleetline_schema_migrations (file_name, sha256, applied_at) \
                 VALUES ('20_changed.sql', '{SELECT_1_SHA256}', '2026-12-07 12:00:00')"
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_sub_statement_names_the_file_and_the_statement() {
    let batch = mock!(Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id("B").build());
    let describe_batch = mock!(Client::describe_statement)
        .match_requests(|r| r.id() == Some("B"))
        .then_output(|| {
            let sub = |status, error: Option<&str>| {
                SubStatementData::builder()
                    .id("B:x")
                    .status(status)
                    .set_error(error.map(str::to_owned))
                    .build()
                    .unwrap()
            };
            DescribeStatementOutput::builder()
                .id("B")
                .status(StatusString::Failed)
                .set_sub_statements(Some(vec![
                    sub(StatementStatusString::Finished, None),
                    sub(
                        StatementStatusString::Failed,
                        Some("ERROR: relation \"nowhere\" does not exist"),
                    ),
                ]))
                .build()
                .unwrap()
        });
    let [a, b, c] = bookkeeping(vec![]);
    let w = warehouse(&[&a, &b, &c, &batch, &describe_batch]);
    let files = [SqlFile::new(
        "10_x.sql",
        "CREATE TABLE t (x INT);\n-- why\nINSERT INTO   nowhere\n VALUES (1);",
    )];
    let err = migrate::apply(
        &w,
        &files,
        &BTreeMap::new(),
        false,
        "now",
        &mut |_: &str| {},
    )
    .await
    .unwrap_err();
    match &err {
        MigrateError::Statement {
            file, index, count, ..
        } => assert_eq!((file.as_str(), *index, *count), ("10_x.sql", 2, 2)),
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("10_x.sql: statement 2 of 2 failed: "),
        "{text}"
    );
    assert!(
        text.contains("relation \"nowhere\" does not exist"),
        "{text}"
    );
    assert!(text.ends_with("> INSERT INTO nowhere VALUES (1)"), "{text}");
}
