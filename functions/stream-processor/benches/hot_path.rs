//! Hot path of stream-processor on a 10,000-record Kinesis batch (issue #9, part A):
//! the event bytes as Lambda delivers them → `KinesisEvent` (base64 decode) → input records
//! → parse + validate + de-duplicate → the SQL text of the insert transactions and the
//! JSON bodies of the dead letters. No network: the warehouse and the dead-letter sink
//! below stop where the SDK call would start.
//!
//! Baselines in the same group, on the same bytes (see benches/README.md):
//! `bare_parse_event` (same event bytes: envelope + base64 + a typed serde parse of every
//! payload), `bare_parse_payloads` (only the typed parse of the already-decoded payloads)
//! and `envelope_only`. Run through `benches/run`; never run in CI.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::event::kinesis::KinesisEvent;
use criterion::Criterion;
use fleetline_aws::Warehouse;
use fleetline_aws::deadletter::{DeadLetter, DeadLetterSink, SinkError};
use fleetline_aws::warehouse::{ExecSummary, ResultSet, SqlParam, WarehouseError};
use fleetline_core::RapidAccelThreshold;
use stream_processor::input::records;
use stream_processor::{Outcome, Processor, Settings};

#[path = "../../../benches/lib/kinesis_fixture.rs"]
mod fixture;

/// Accepts every transaction; counts the SQL bytes so the text cannot be optimised away.
#[derive(Default)]
struct NullWarehouse {
    sql_bytes: AtomicU64,
}

impl Warehouse for NullWarehouse {
    async fn query(&self, _: &str, _: &[SqlParam]) -> Result<ResultSet, WarehouseError> {
        Ok(ResultSet::default())
    }

    async fn execute(&self, _: &str, _: &[SqlParam]) -> Result<ExecSummary, WarehouseError> {
        Ok(ExecSummary {
            statement_id: String::new(),
            rows_affected: vec![None],
        })
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<ExecSummary, WarehouseError> {
        let bytes: usize = statements.iter().map(String::len).sum();
        self.sql_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(ExecSummary {
            statement_id: String::new(),
            // No row counts: the processor then counts the batch-unique valid readings.
            rows_affected: vec![None; statements.len()],
        })
    }
}

/// Builds each letter's key and JSON body (what S3DeadLetterSink does before PutObject).
#[derive(Default)]
struct NullDeadLetters {
    bytes: AtomicU64,
}

impl DeadLetterSink for NullDeadLetters {
    async fn put(&self, letter: &DeadLetter) -> Result<(), SinkError> {
        let key = letter.key("rejected/");
        let body = letter.to_json();
        self.bytes
            .fetch_add((key.len() + body.len()) as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn processor() -> Processor<NullWarehouse, NullDeadLetters> {
    Processor::new(
        NullWarehouse::default(),
        NullDeadLetters::default(),
        Settings {
            threshold: RapidAccelThreshold::DEFAULT,
            dead_letter_concurrency: 16,
        },
    )
}

fn bench(c: &mut Criterion) {
    let f = fixture::batch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let p = processor();

    // The hot path, once: it must do the real work on this input (counts by the
    // simulator's labels), or the numbers below would measure an early exit.
    let hot = |event: &[u8]| {
        let event: KinesisEvent = serde_json::from_slice(event).expect("a Kinesis event");
        let input = records(event);
        rt.block_on(p.process(&input, f.now)).1
    };
    let report = hot(&f.event);
    let e = f.expected;
    assert_eq!(report.outcome, Outcome::Done);
    assert_eq!(report.records_in as usize, e.records);
    assert_eq!(report.stored as usize, e.valid_unique, "{report:?}");
    assert_eq!(report.duplicates_in_batch as usize, e.duplicates);
    assert_eq!(report.rejected as usize, e.malformed);
    assert!(p.warehouse().sql_bytes.load(Ordering::Relaxed) > 0);
    assert_eq!(
        fixture::bare_parse_event(&f.event),
        fixture::bare_parse_payloads(&f.payloads)
    );
    eprintln!(
        "stream-processor fixture: {} records ({} valid, {} duplicates, {} malformed), \
         event {} bytes, payloads {} bytes",
        e.records,
        e.valid_unique,
        e.duplicates,
        e.malformed,
        f.event.len(),
        e.payload_bytes
    );

    fixture::bench_against_baselines(c, "stream_processor_10000", &f, hot);
}

fn main() {
    if fixture::write_events_if_asked() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
