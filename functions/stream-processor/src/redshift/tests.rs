//! The Redshift speed store with a fake warehouse: the SQL it sends (checked as Amazon
//! Redshift would see it), how it reads the row counts, and how warehouse errors map.

use std::sync::Mutex;

use chrono::DateTime;
use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::{ExecSummary, FailedStatus, ResultSet, SqlParam, WarehouseError};
use fleetline_core::ports::speed::{Inserted, SpeedStore, StoreError};
use fleetline_core::ports::stamped::StampedReading;
use fleetline_core::{RapidAccelThreshold, RejectReason, ValidationContext, parse_and_validate};

use super::RedshiftSpeedStore;
use super::sql;

/// Records transactions and answers each with `answer`: the row count of the merge
/// statement, or the message of a failed statement.
struct FakeWarehouse {
    transactions: Mutex<Vec<Vec<String>>>,
    answer: Result<Option<u64>, &'static str>,
}

fn warehouse(answer: Result<Option<u64>, &'static str>) -> FakeWarehouse {
    FakeWarehouse {
        transactions: Mutex::new(Vec::new()),
        answer,
    }
}

const SERIALIZATION: &str = "ERROR: could not serialize access due to concurrent update";
const MISSING: &str = "ERROR: relation \"speed.telemetry\" does not exist";

impl FakeWarehouse {
    fn transactions(&self) -> Vec<Vec<String>> {
        self.transactions.lock().unwrap().clone()
    }
}

impl Warehouse for FakeWarehouse {
    async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        panic!("the speed store never queries")
    }

    async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        panic!("the speed store only uses transactions")
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        for s in &statements {
            redshift_strict::assert_redshift_sql(s, true);
        }
        let n = statements.len();
        self.transactions.lock().unwrap().push(statements);
        match self.answer {
            Ok(merged) => Ok(ExecSummary {
                statement_id: "s1".into(),
                rows_affected: (0..n)
                    .map(|i| if i == n - 2 { merged } else { Some(1) })
                    .collect(),
            }),
            Err(message) => Err(WarehouseError::StatementFailed {
                id: "s1".into(),
                status: FailedStatus::Failed,
                sub_statement: Some(2),
                message: message.into(),
            }),
        }
    }
}

const VIN_A: &str = "1HGCM82633A004352";
const VIN_B: &str = "5YJSA1E26HF000001";

fn stamped(
    vin: &str,
    second: u32,
    trip: &str,
    speed: &str,
    accel: &str,
    seq: u64,
) -> StampedReading {
    let now = DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z")
        .unwrap()
        .to_utc();
    let json = format!(
        r#"{{"VIN":"{vin}","trip_id":"{trip}","timestamp":"2026-11-25 17:00:{second:02}.000000000","vehicleSpeed":{speed},"acceleration":{accel},"odometer":100,"location":{{"latitude":47.6105,"longitude":-122.3301}}}}"#
    );
    StampedReading {
        reading: parse_and_validate(json.as_bytes(), &ValidationContext::new(now)).unwrap(),
        shard_id: "shardId-000000000000".into(),
        sequence_number: format!("4959{seq:06}"),
    }
}

fn readings() -> Vec<StampedReading> {
    vec![
        stamped(VIN_A, 1, "trip-a", "50.5", "1.0", 1),
        stamped(VIN_B, 1, "O'Brien", "61.25", "12.5", 2),
        stamped(VIN_A, 2, "trip-a", "51.0", "-3.0", 6),
    ]
}

fn store(warehouse: &FakeWarehouse) -> RedshiftSpeedStore<&FakeWarehouse> {
    RedshiftSpeedStore::new(warehouse, RapidAccelThreshold::DEFAULT)
}

#[tokio::test]
async fn one_transaction_stages_and_merges_the_readings() {
    let w = warehouse(Ok(Some(3)));
    let inserted = store(&w).insert_new(&readings()).await.unwrap();
    assert_eq!(
        inserted,
        Inserted {
            new: 3,
            refused: Vec::new()
        }
    );
    // One transaction of `sql::plan` (its shape has its own tests there): the rows are the
    // readings' exact literals, in order.
    let rows = [
        format!(
            "('{VIN_A}','trip-a','2026-11-25 17:00:01.000000','2026-11-25',50.500,1.0000,100.000,0,47.6105,-122.3301,'shardId-000000000000','4959000001')"
        ),
        format!(
            "('{VIN_B}','O''Brien','2026-11-25 17:00:01.000000','2026-11-25',61.250,12.5000,100.000,1,47.6105,-122.3301,'shardId-000000000000','4959000002')"
        ),
        format!(
            "('{VIN_A}','trip-a','2026-11-25 17:00:02.000000','2026-11-25',51.000,-3.0000,100.000,0,47.6105,-122.3301,'shardId-000000000000','4959000006')"
        ),
    ];
    let txs = w.transactions();
    assert_eq!(txs, sql::plan(&rows).unwrap());
    assert_eq!(txs[0].len(), 5);
}

#[tokio::test]
async fn the_same_readings_give_byte_identical_statements() {
    let (w1, w2) = (warehouse(Ok(Some(3))), warehouse(Ok(Some(0))));
    store(&w1).insert_new(&readings()).await.unwrap();
    let again = store(&w2).insert_new(&readings()).await.unwrap();
    assert_eq!(again.new, 0);
    assert_eq!(w1.transactions(), w2.transactions());
}

#[tokio::test]
async fn no_readings_send_no_sql() {
    let w = warehouse(Err(MISSING));
    assert_eq!(
        store(&w).insert_new(&[]).await.unwrap(),
        Inserted::default()
    );
    assert!(w.transactions().is_empty());
}

#[tokio::test]
async fn an_unknown_row_count_counts_the_rows_sent() {
    let w = warehouse(Ok(None));
    let inserted = store(&w).insert_new(&readings()).await.unwrap();
    assert_eq!(inserted.new, 3);
}

#[tokio::test]
async fn warehouse_errors_become_transient_or_permanent() {
    let w = warehouse(Err(SERIALIZATION));
    let err = store(&w).insert_new(&readings()).await.unwrap_err();
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
    let w = warehouse(Err(MISSING));
    let err = store(&w).insert_new(&readings()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Permanent(ref m) if m.contains("does not exist")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_trip_id_no_literal_can_carry_is_refused_and_the_rest_stored() {
    let w = warehouse(Ok(Some(1)));
    // Validation refuses such a trip id; the adapter must still refuse it on its own.
    let mut batch = vec![
        stamped(VIN_A, 1, "ab", "1", "1", 1),
        stamped(VIN_B, 1, "ok", "1", "1", 2),
    ];
    batch[0].reading.trip_id = "a\\b".to_owned();
    assert!(batch[0].reading.trip_id.contains('\\'));
    let inserted = store(&w).insert_new(&batch).await.unwrap();
    assert_eq!(inserted.new, 1);
    assert_eq!(inserted.refused.len(), 1);
    let refused = &inserted.refused[0];
    assert_eq!(
        (refused.index, refused.reason),
        (0, RejectReason::BadTripId)
    );
    assert!(
        refused.detail.starts_with("trip_id cannot be stored: "),
        "{}",
        refused.detail
    );
    let values = &w.transactions()[0][2];
    assert!(
        !values.contains("a\\b") && values.contains("'ok'"),
        "{values}"
    );
}
