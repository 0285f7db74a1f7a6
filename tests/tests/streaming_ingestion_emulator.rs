//! Streaming ingestion from Kinesis in the Data API emulator: one test per row of the
//! streaming section of the conformance table in localstack/redshift-data-emulator/README.md,
//! driven through the AWS SDK for Rust against LocalStack Kinesis (a stream of its own per
//! test) and the emulator (a database of its own per test).
//! Needs the local stack (localstack/up) with the emulator in strict mode (the default).

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::types::{ColumnMetadata, Field, StatusString};
use fleetline_tests::{
    create_active_stream, create_test_database, data_api_client, delete_stream_quietly,
    drop_test_database, kinesis_client, require_localstack, statement_result, unique_name,
    wait_statement,
};

/// Hash keys that land in shard 0 and shard 1 of a two-shard stream.
const SHARD_KEYS: [&str; 2] = ["0", "170141183460469231731687303715884105728"];

/// A test's database and stream; both are removed by [`Fixture::done`].
struct Fixture {
    db: String,
    stream: String,
    data: Client,
    kinesis: aws_sdk_kinesis::Client,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        require_localstack();
        let kinesis = kinesis_client().await;
        let stream = unique_name(&format!("es-{prefix}"));
        create_active_stream(&kinesis, &stream, 2).await;
        let db = create_test_database(&format!("es_{prefix}")).await;
        Self {
            db,
            stream,
            data: data_api_client().await,
            kinesis,
        }
    }

    async fn put(&self, shard: usize, data: &[u8]) {
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(format!("pk-{shard}"))
            .explicit_hash_key(SHARD_KEYS[shard])
            .data(Blob::new(data))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecord: {e:?}"));
    }

    /// Submits `sql` (ExecuteStatement) and returns the statement id.
    async fn submit(&self, sql: &str) -> String {
        self.data
            .execute_statement()
            .workgroup_name("fleetline")
            .database(&self.db)
            .sql(sql)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ExecuteStatement: {e:?}"))
            .id
            .unwrap_or_default()
    }

    /// Runs `sql`; Err is the statement's error text.
    async fn try_sql(&self, sql: &str) -> Result<Vec<Vec<Field>>, String> {
        let id = self.submit(sql).await;
        self.outcome(&id, false).await
    }

    async fn sql(&self, sql: &str) -> Vec<Vec<Field>> {
        self.try_sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sqls` as one BatchExecuteStatement; the last member's rows.
    async fn try_batch(&self, sqls: &[&str]) -> Result<Vec<Vec<Field>>, String> {
        let id = self
            .data
            .batch_execute_statement()
            .workgroup_name("fleetline")
            .database(&self.db)
            .set_sqls(Some(sqls.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("BatchExecuteStatement: {e:?}"))
            .id
            .unwrap_or_default();
        self.outcome(&id, true).await
    }

    async fn outcome(&self, id: &str, batch: bool) -> Result<Vec<Vec<Field>>, String> {
        let d = wait_statement(&self.data, id).await;
        if d.status() != Some(&StatusString::Finished) {
            return Err(d.error().unwrap_or_default().to_string());
        }
        let target = if batch {
            d.sub_statements().last().map(|s| s.id().to_string())
        } else {
            Some(id.to_string())
        };
        let last_has_rows = if batch {
            d.sub_statements()
                .last()
                .is_some_and(|s| s.has_result_set() == Some(true))
        } else {
            d.has_result_set() == Some(true)
        };
        match target {
            Some(t) if last_has_rows => Ok(statement_result(&self.data, &t).await.1),
            _ => Ok(Vec::new()),
        }
    }

    async fn columns(&self, sql: &str) -> Vec<ColumnMetadata> {
        let id = self.submit(sql).await;
        wait_statement(&self.data, &id).await;
        statement_result(&self.data, &id).await.0
    }

    /// The external schema and the contract's streaming view `speed.telemetry_stream`.
    async fn create_view(&self) {
        self.sql(
            "CREATE EXTERNAL SCHEMA IF NOT EXISTS kinesis_source FROM KINESIS IAM_ROLE default",
        )
        .await;
        self.sql("CREATE SCHEMA IF NOT EXISTS speed").await;
        self.sql(&format!(
            "CREATE MATERIALIZED VIEW speed.telemetry_stream AUTO REFRESH NO AS SELECT \
             approximate_arrival_timestamp, partition_key, shard_id, sequence_number, refresh_time, \
             kinesis_data, CAN_JSON_PARSE(kinesis_data) AS is_json, \
             CASE WHEN CAN_JSON_PARSE(kinesis_data) THEN JSON_PARSE(kinesis_data) END AS payload \
             FROM kinesis_source.\"{}\"",
            self.stream
        ))
        .await;
    }

    /// A fixture whose stream holds `records` (shard, data) and whose database has the
    /// streaming view, refreshed once when `refresh`.
    async fn ready(prefix: &str, records: &[(usize, &[u8])], refresh: bool) -> Self {
        let f = Self::new(prefix).await;
        for (shard, data) in records {
            f.put(*shard, data).await;
        }
        f.create_view().await;
        if refresh {
            f.refresh().await;
        }
        f
    }

    async fn refresh(&self) {
        self.sql("REFRESH MATERIALIZED VIEW speed.telemetry_stream")
            .await;
    }

    async fn done(self) {
        delete_stream_quietly(&self.kinesis, &self.stream).await;
        drop_test_database(&self.db).await;
    }
}

fn text(f: &Field) -> String {
    match f {
        Field::StringValue(s) => s.clone(),
        Field::LongValue(v) => v.to_string(),
        Field::BooleanValue(b) => b.to_string(),
        Field::DoubleValue(d) => d.to_string(),
        Field::IsNull(_) => "NULL".into(),
        other => format!("{other:?}"),
    }
}

fn table(rows: &[Vec<Field>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(text).collect()).collect()
}

/// Each REFRESH reads every shard from where this view's last refresh stopped; the
/// rows of one refresh share its refresh_time; the positions are kept in PostgreSQL.
#[tokio::test]
async fn streaming_refresh_reads_each_shard_from_where_it_stopped() {
    let records: [(usize, &[u8]); 3] = [(0, br#"{"n":1}"#), (1, br#"{"n":2}"#), (1, br#"{"n":3}"#)];
    let f = Fixture::ready("refresh", &records, true).await;
    let first = f
        .sql("SELECT shard_id, count(*), count(DISTINCT refresh_time) FROM speed.telemetry_stream GROUP BY 1 ORDER BY 1")
        .await;
    assert_eq!(
        table(&first),
        [
            ["shardId-000000000000", "1", "1"],
            ["shardId-000000000001", "2", "1"]
        ]
    );
    f.put(0, br#"{"n":4}"#).await;
    f.put(1, br#"{"n":5}"#).await;
    // Accepted; the emulator refreshes on REFRESH only.
    f.sql("ALTER MATERIALIZED VIEW speed.telemetry_stream AUTO REFRESH YES")
        .await;
    f.refresh().await;
    // A refresh with nothing new appends nothing.
    f.refresh().await;
    let all = f
        .sql("SELECT JSON_SERIALIZE(payload), shard_id FROM speed.telemetry_stream ORDER BY 1")
        .await;
    assert_eq!(
        table(&all),
        [
            [r#"{"n":1}"#, "shardId-000000000000"],
            [r#"{"n":2}"#, "shardId-000000000001"],
            [r#"{"n":3}"#, "shardId-000000000001"],
            [r#"{"n":4}"#, "shardId-000000000000"],
            [r#"{"n":5}"#, "shardId-000000000001"],
        ]
    );
    let times = f
        .sql("SELECT count(DISTINCT refresh_time) FROM speed.telemetry_stream")
        .await;
    assert_eq!(table(&times), [["2"]]);
    // Persisted per view and shard (the emulator's catalog survives restarts).
    let positions = f
        .sql("SELECT count(*) FROM _emulator.stream_positions WHERE view_schema = 'speed' AND view_name = 'telemetry_stream'")
        .await;
    assert_eq!(table(&positions), [["2"]]);
    f.done().await;
}

/// The stream's columns have the types of "Streaming ingestion behavior and data types".
#[tokio::test]
async fn streaming_metadata_columns() {
    let f = Fixture::ready("meta", &[(1, br#"{"a":1}"#)], true).await;
    let cols = f
        .columns("SELECT approximate_arrival_timestamp, partition_key, shard_id, sequence_number, refresh_time, kinesis_data, payload FROM speed.telemetry_stream")
        .await;
    let shape: Vec<(String, i32)> = cols
        .iter()
        .map(|c| (c.type_name().unwrap_or_default().to_string(), c.length()))
        .collect();
    assert_eq!(
        shape,
        [
            ("timestamp".to_string(), 0),
            ("varchar".to_string(), 256),
            ("bpchar".to_string(), 20),
            ("varchar".to_string(), 128),
            ("timestamp".to_string(), 0),
            ("varbyte".to_string(), 1_024_000),
            ("super".to_string(), 0),
        ]
    );
    let row = f
        .sql("SELECT partition_key, shard_id, FROM_VARBYTE(kinesis_data, 'utf8'), kinesis_data, payload, approximate_arrival_timestamp <= refresh_time, LENGTH(sequence_number) > 20 FROM speed.telemetry_stream")
        .await;
    assert_eq!(
        table(&row),
        [[
            "pk-1",
            "shardId-000000000001",
            r#"{"a":1}"#,
            "7b2261223a317d",
            r#"{"a":1}"#,
            "true",
            "true"
        ]]
    );
    // A VARBYTE(n) column holds the records too (e.g. a rejects table).
    f.sql("CREATE TABLE speed.records (kinesis_data VARBYTE(1024000) NOT NULL)")
        .await;
    f.sql("INSERT INTO speed.records SELECT kinesis_data FROM speed.telemetry_stream")
        .await;
    let raw = f
        .sql("SELECT FROM_VARBYTE(kinesis_data, 'utf-8') FROM speed.records")
        .await;
    assert_eq!(table(&raw), [[r#"{"a":1}"#]]);
    f.done().await;
}

/// Records that are not JSON (or that JSON_PARSE refuses: duplicate attributes, a number
/// beyond FLOAT8) are kept, with CAN_JSON_PARSE false and no payload.
#[tokio::test]
async fn invalid_json_rows_are_kept() {
    let records: [(usize, &[u8]); 5] = [
        (0, b"not json"),
        (0, br#"{"a":1,"a":2}"#),
        (0, br#"{"a":1e400}"#),
        (0, b"\xff\xfe"),
        (0, br#"{"a":1}"#),
    ];
    let f = Fixture::ready("invalid", &records, true).await;
    let rows = f
        .sql("SELECT is_json, payload IS NULL FROM speed.telemetry_stream ORDER BY sequence_number")
        .await;
    assert_eq!(
        table(&rows),
        [
            ["false", "true"],
            ["false", "true"],
            ["false", "true"],
            ["false", "true"],
            ["true", "false"]
        ]
    );
    let e = f
        .try_sql("SELECT JSON_PARSE('{\"a\":1,\"a\":2}')")
        .await
        .unwrap_err();
    assert!(e.contains("duplicate"), "{e}");
    f.done().await;
}

/// Mixed-case keys: NULL with Redshift's defaults, found with the documented settings,
/// which last for the session (one statement string, or one batch).
#[tokio::test]
async fn super_attribute_case_rules() {
    let record: &[u8] =
        br#"{"VIN":"1HGCM82633A004352","vehicleSpeed":57.3,"location":{"latitude":48.1}}"#;
    let f = Fixture::ready("case", &[(0, record)], true).await;
    let query = "SELECT payload.\"VIN\"::VARCHAR AS vin, payload.vehicleSpeed::FLOAT8 AS s, \
                 payload.location.latitude::FLOAT8 AS lat FROM speed.telemetry_stream";
    assert_eq!(table(&f.sql(query).await), [["NULL", "NULL", "48.1"]]);
    let quoted = f
        .try_batch(&["SET enable_case_sensitive_identifier TO true", query])
        .await
        .unwrap();
    assert_eq!(table(&quoted), [["1HGCM82633A004352", "NULL", "48.1"]]);
    let bare = f
        .sql(&format!(
            "SET enable_case_sensitive_super_attribute TO true; {query}"
        ))
        .await;
    assert_eq!(table(&bare), [["NULL", "57.3", "48.1"]]);
    // A new statement is a new session: back to the defaults.
    assert_eq!(table(&f.sql(query).await), [["NULL", "NULL", "48.1"]]);
    f.done().await;
}

/// JSON_PARSE reads a number without an exponent as an exact DECIMAL and one with an
/// exponent as FLOAT8; casts of the wrong dynamic type are NULL (lax).
#[tokio::test]
async fn super_number_typing_and_lax_casts() {
    let record: &[u8] = br#"{"f":57.30,"i":12,"e":1e3,"s":"57.3","items":[10,"x"]}"#;
    let f = Fixture::ready("numbers", &[(0, record)], true).await;
    let rows = f
        .sql(
            "SELECT IS_FLOAT(payload.f), IS_DECIMAL(payload.f), IS_INTEGER(payload.i), IS_DECIMAL(payload.i), \
             IS_FLOAT(payload.e), JSON_TYPEOF(payload.s), IS_VARCHAR(payload.s), \
             CAST(payload.f AS DECIMAL(12,3)) AS f3, payload.s::DECIMAL(12,3) AS s3, payload.i::VARCHAR AS iv, \
             payload.items[0]::INT AS i0, payload.items[1]::VARCHAR AS i1, payload.items[5]::INT AS i5, \
             JSON_TYPEOF(payload.missing) AS m FROM speed.telemetry_stream",
        )
        .await;
    assert_eq!(
        table(&rows),
        [[
            "false", "true", "true", "true", "true", "string", "true", "57.300", "NULL", "NULL",
            "10", "x", "NULL", "NULL"
        ]]
    );
    f.done().await;
}

/// What Redshift refuses for streaming views.
#[tokio::test]
async fn streaming_refusals() {
    let f = Fixture::ready("refuse", &[(0, br#"{"a":1}"#)], false).await;
    let in_batch = f
        .try_batch(&["REFRESH MATERIALIZED VIEW speed.telemetry_stream"])
        .await
        .unwrap_err();
    assert!(in_batch.contains("transaction block"), "{in_batch}");
    let in_begin = f
        .try_sql("BEGIN; REFRESH MATERIALIZED VIEW speed.telemetry_stream; COMMIT")
        .await
        .unwrap_err();
    assert!(in_begin.contains("transaction block"), "{in_begin}");
    let two = f
        .try_sql(&format!(
            "CREATE MATERIALIZED VIEW speed.two AS SELECT shard_id FROM kinesis_source.\"{0}\" \
             UNION ALL SELECT shard_id FROM kinesis_source.\"{0}-other\"",
            f.stream
        ))
        .await
        .unwrap_err();
    assert!(two.contains("only one stream"), "{two}");
    f.refresh().await;
    for dml in [
        "UPDATE speed.telemetry_stream SET is_json = false",
        "INSERT INTO speed.telemetry_stream SELECT * FROM speed.telemetry_stream",
    ] {
        let e = f.try_sql(dml).await.unwrap_err();
        assert!(e.contains("streaming materialized view"), "{dml}: {e}");
    }
    f.sql("DELETE FROM speed.telemetry_stream WHERE is_json")
        .await;
    assert_eq!(
        table(&f.sql("SELECT count(*) FROM speed.telemetry_stream").await),
        [["0"]]
    );
    f.sql("DROP MATERIALIZED VIEW speed.telemetry_stream").await;
    let gone = f
        .sql("SELECT count(*) FROM _emulator.streaming_views")
        .await;
    assert_eq!(table(&gone), [["0"]]);
    f.done().await;
}
