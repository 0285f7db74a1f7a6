//! The adapter over a fake warehouse that answers each statement in *that statement's*
//! output columns (taken from its final SELECT list) with values typed as the Data API
//! types them: DECIMAL sums, dates and timestamps as strings, counts as longs, SUMs of
//! integers as numeric strings. A renamed SQL alias makes these tests fail.

use std::sync::Mutex;

use chrono::NaiveDate;
use fleetline_aws::warehouse::{
    Column, ExecSummary, FailedStatus, ResultSet, SqlParam, Value as V, Warehouse, WarehouseError,
};
use fleetline_core::ports::serving::{
    DayTotals, FleetDay, RapidAccelerationsQuery, ServingError, ServingQueries, ServingStatus,
    TripDay, VehicleYear, YearMiles,
};
use fleetline_core::{NanoMiles, Vin};

use super::RedshiftServing;
use crate::tests::sample_status;

/// One answer row: (column name, value); the columns it leaves out are NULL.
type NamedRow = Vec<(&'static str, V)>;

/// Answers every query with the next canned rows (or an error) and records the calls.
#[derive(Default)]
struct Fake {
    answers: Mutex<Vec<Result<Vec<NamedRow>, String>>>,
    calls: Mutex<Vec<(String, Vec<SqlParam>)>>,
}

impl Fake {
    fn with(answers: Vec<Result<Vec<NamedRow>, String>>) -> Self {
        Self {
            answers: Mutex::new(answers),
            calls: Mutex::default(),
        }
    }

    fn params(&self, call: usize) -> Vec<SqlParam> {
        self.calls.lock().unwrap()[call].1.clone()
    }
}

impl Warehouse for Fake {
    async fn query(&self, sql: &str, params: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        // Every statement is checked as Amazon Redshift would see it (redshift-strict).
        redshift_strict::assert_redshift_sql(sql, false);
        self.calls
            .lock()
            .unwrap()
            .push((sql.to_owned(), params.to_vec()));
        let mut answers = self.answers.lock().unwrap();
        assert!(!answers.is_empty(), "unexpected query: {sql}");
        match answers.remove(0) {
            Ok(rows) => Ok(result_set(sql, rows)),
            Err(message) => Err(WarehouseError::StatementFailed {
                id: "s-1".into(),
                status: FailedStatus::Failed,
                sub_statement: None,
                message,
            }),
        }
    }
    async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        unreachable!("query-api never executes")
    }
    async fn transaction(&self, _: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        unreachable!("query-api never writes")
    }
}

/// The output columns of a statement: the names in its last top-level SELECT list (an
/// item's alias, or the column after its table prefix).
fn columns_of(sql: &str) -> Vec<String> {
    let mut depth = 0;
    let mut list_at = None;
    for (i, c) in sql.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 && sql[i..].starts_with("SELECT ") => list_at = Some(i + 7),
            _ => {}
        }
    }
    let list = &sql[list_at.expect("a top-level SELECT")..];
    let list = list.split(" FROM ").next().unwrap_or_default();
    list.split(',')
        .map(|item| {
            let name = item.rsplit(" AS ").next().unwrap_or(item);
            name.rsplit('.').next().unwrap_or(name).trim().to_owned()
        })
        .collect()
}

/// `rows` laid out in the statement's columns; naming a column the statement does not
/// return fails the test.
fn result_set(sql: &str, rows: Vec<NamedRow>) -> ResultSet {
    let names = columns_of(sql);
    let rows = rows
        .into_iter()
        .map(|named| {
            let mut row = vec![V::Null; names.len()];
            for (name, value) in named {
                let i = names.iter().position(|n| n == name);
                row[i.unwrap_or_else(|| panic!("the statement returns no {name}: {names:?}"))] =
                    value;
            }
            row
        })
        .collect();
    let columns = names
        .into_iter()
        .map(|name| Column {
            name,
            type_name: "varchar".to_owned(),
        })
        .collect();
    ResultSet { columns, rows }
}

fn s(x: &str) -> V {
    V::String(x.to_owned())
}

fn day(x: &str) -> NaiveDate {
    NaiveDate::parse_from_str(x, "%Y-%m-%d").unwrap()
}

fn vin(x: &str) -> Vin {
    Vin::parse(x).unwrap()
}

const VIN: &str = "1HGCM82633A004352";
/// The boundary column every merged statement returns.
fn boundary() -> (&'static str, V) {
    ("boundary", s("2026-11-20"))
}

#[tokio::test]
async fn miles_per_year_are_exact() {
    let fake = Fake::with(vec![Ok(vec![
        vec![
            boundary(),
            ("year", V::Long(2025)),
            ("miles", s("10.000000500")),
        ],
        vec![
            boundary(),
            ("year", V::Long(2026)),
            ("miles", s("1234.567891234")),
        ],
    ])]);
    let served = RedshiftServing::new(&fake).fleet_miles(None).await.unwrap();
    assert_eq!(served.boundary, Some(day("2026-11-20")));
    assert_eq!(
        served.rows,
        vec![
            YearMiles {
                year: 2025,
                miles: NanoMiles(10_000_000_500)
            },
            YearMiles {
                year: 2026,
                miles: NanoMiles(1_234_567_891_234)
            },
        ]
    );
    assert!(fake.params(0).is_empty());
}

#[tokio::test]
async fn the_no_data_row_carries_only_the_boundary() {
    let fake = Fake::with(vec![Ok(vec![vec![]]), Ok(vec![vec![boundary()]])]);
    let adapter = RedshiftServing::new(&fake);
    let served = adapter.vehicle_miles(vin(VIN), Some(2026)).await.unwrap();
    assert_eq!((served.boundary, served.rows), (None, vec![]));
    let served = adapter.vehicle_miles(vin(VIN), None).await.unwrap();
    assert_eq!(
        (served.boundary, served.rows),
        (Some(day("2026-11-20")), vec![])
    );
    assert_eq!(
        fake.params(0),
        vec![
            SqlParam::new("vin", VIN),
            SqlParam::new("day_from", "2026-01-01"),
            SqlParam::new("day_to", "2026-12-31")
        ]
    );
    assert_eq!(fake.params(1), vec![SqlParam::new("vin", VIN)]);
}

#[tokio::test]
async fn failures_are_unavailable_or_unreadable() {
    let fake = Fake::with(vec![
        Err("relation \"serving.control\" does not exist".into()),
        Ok(vec![]),
        Ok(vec![vec![
            boundary(),
            ("year", V::Long(2026)),
            ("miles", s("1.5x")),
        ]]),
        Ok(vec![]),
    ]);
    let adapter = RedshiftServing::new(&fake);
    let e = adapter.fleet_miles(None).await.unwrap_err();
    assert!(
        matches!(&e, ServingError::Unavailable(m) if m.contains("serving.control")),
        "{e}"
    );
    let e = adapter.fleet_miles(None).await.unwrap_err();
    assert_eq!(
        e,
        ServingError::Unreadable("merged query returned no row".into())
    );
    let e = adapter.fleet_miles(None).await.unwrap_err();
    assert!(
        matches!(&e, ServingError::Unreadable(m) if m.contains("miles")),
        "{e}"
    );
    let e = adapter.status().await.unwrap_err();
    assert_eq!(
        e,
        ServingError::Unreadable("status query returned no row".into())
    );
}

#[tokio::test]
async fn rapid_accelerations_fetch_one_row_more_than_the_page() {
    let (a, b) = ("AAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBB");
    let row = |v: &str, year: i64, n: i64| {
        vec![
            boundary(),
            ("vin", s(v)),
            ("year", V::Long(year)),
            ("rapid_accelerations", V::Long(n)),
        ]
    };
    let fake = Fake::with(vec![
        Ok(vec![row(a, 2025, 1), row(a, 2026, 0), row(b, 2026, 7)]),
        Ok(vec![row(b, 2026, 7)]),
        Ok(vec![vec![boundary()]]),
    ]);
    let adapter = RedshiftServing::new(&fake);
    let query = RapidAccelerationsQuery {
        vin: None,
        year: None,
        after: None,
        limit: 2,
    };
    let page = adapter.rapid_accelerations(query).await.unwrap();
    assert!(page.more);
    let positions: Vec<_> = page.served.rows.iter().map(|r| r.at).collect();
    assert_eq!(
        positions,
        vec![
            VehicleYear {
                vin: vin(a),
                year: 2025
            },
            VehicleYear {
                vin: vin(a),
                year: 2026
            },
        ]
    );
    assert_eq!(page.served.rows[0].rapid_accelerations, 1);
    assert!(fake.params(0).contains(&SqlParam::new("fetch", "3")));

    let after = Some(positions[1]);
    let page = adapter
        .rapid_accelerations(RapidAccelerationsQuery { after, ..query })
        .await
        .unwrap();
    assert!(!page.more);
    assert_eq!(page.served.rows.len(), 1);
    assert!(fake.params(1).contains(&SqlParam::new("after_vin", a)));
    assert!(
        fake.params(1)
            .contains(&SqlParam::new("after_year", "2026"))
    );

    let page = adapter.rapid_accelerations(query).await.unwrap();
    assert_eq!((page.served.rows.len(), page.more), (0, false));
}

#[tokio::test]
async fn trips_decode_exact_decimals() {
    let fake = Fake::with(vec![Ok(vec![vec![
        boundary(),
        ("trip_id", s("trip-a")),
        ("event_day", s("2026-11-25")),
        ("readings", V::Long(3)),
        ("sum_speed", s("165.100")),
        ("min_odometer", s("1000.000")),
        ("max_odometer", s("1004.345")),
        ("rapid_accelerations", V::Long(1)),
    ]])]);
    let served = RedshiftServing::new(&fake)
        .trips(vin(VIN), day("2026-11-25"))
        .await
        .unwrap();
    assert_eq!(
        served.rows,
        vec![TripDay {
            trip_id: "trip-a".into(),
            day: day("2026-11-25"),
            readings: 3,
            sum_speed_milli: 165_100,
            // 4.345 km × 0.621371 = 2.699856995 mi.
            miles: NanoMiles(2_699_856_995),
            rapid_accelerations: 1,
        }]
    );
    assert!(
        fake.params(0)
            .contains(&SqlParam::new("day_from", "2026-11-25"))
    );
}

/// One day's totals as the Data API returns them: SUM(readings) of an integer column is a
/// NUMERIC, i.e. a string.
fn day_row(event_day: &str, extra: NamedRow) -> NamedRow {
    let mut row = vec![
        boundary(),
        ("event_day", s(event_day)),
        ("trips", V::Long(2)),
        ("readings", s("4")),
        ("sum_speed", s("200.002")),
        ("miles", s("3.000000500")),
        ("rapid_accelerations", s("1")),
    ];
    row.extend(extra);
    row
}

fn totals(event_day: &str) -> DayTotals {
    DayTotals {
        day: day(event_day),
        trips: 2,
        readings: 4,
        sum_speed_milli: 200_002,
        miles: NanoMiles(3_000_000_500),
        rapid_accelerations: 1,
    }
}

#[tokio::test]
async fn day_totals_of_a_vehicle_and_of_the_fleet() {
    let fake = Fake::with(vec![
        Ok(vec![day_row("2026-11-19", vec![])]),
        Ok(vec![day_row("2026-11-19", vec![("vehicles", V::Long(3))])]),
    ]);
    let adapter = RedshiftServing::new(&fake);
    let served = adapter.vehicle_days(vin(VIN), Some(2026)).await.unwrap();
    assert_eq!(served.rows, vec![totals("2026-11-19")]);
    assert!(fake.params(0).contains(&SqlParam::new("vin", VIN)));
    let served = adapter
        .fleet_daily(day("2026-11-01"), day("2026-11-30"))
        .await
        .unwrap();
    assert_eq!(
        served.rows,
        vec![FleetDay {
            vehicles: 3,
            totals: totals("2026-11-19")
        }]
    );
    assert_eq!(
        fake.params(1),
        vec![
            SqlParam::new("day_from", "2026-11-01"),
            SqlParam::new("day_to", "2026-11-30")
        ]
    );
}

/// A status row: dates and timestamps are strings, one count a long and one a numeric.
fn status_row() -> NamedRow {
    let text = [
        ("boundary", "2026-11-20"),
        ("last_batch_run_at", "2026-11-20 03:00:00.5"),
        (
            "last_batch_summary",
            r#"{"rows_written":12,"boundary":"2026-11-20"}"#,
        ),
        ("speed_oldest_day", "2026-11-19"),
        ("speed_newest_day", "2026-11-22"),
        ("speed_newest_event_at", "2026-11-22 10:00:00"),
        ("speed_newest_arrival_at", "2020-01-01 00:00:00+00"),
        ("batch_oldest_day", "2026-11-01"),
        ("batch_newest_day", "2026-11-19"),
        ("waiting_oldest_day", "2026-11-12"),
        ("pending_days", "2"),
        ("pending_oldest_day", "2025-10-03"),
    ];
    let mut row: NamedRow = text.into_iter().map(|(c, v)| (c, s(v))).collect();
    row.push(("waiting_readings", V::Long(7)));
    row
}

#[tokio::test]
async fn status_decodes_every_column() {
    let fake = Fake::with(vec![
        Ok(vec![status_row()]),
        // No control row, empty layers: the counts are zero, not NULL.
        Ok(vec![vec![("waiting_readings", V::Long(0))]]),
    ]);
    let adapter = RedshiftServing::new(&fake);
    assert_eq!(adapter.status().await.unwrap(), sample_status());
    assert_eq!(adapter.status().await.unwrap(), ServingStatus::default());
}
