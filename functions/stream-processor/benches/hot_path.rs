//! Hot path of stream-processor on a 10,000-record Kinesis batch (issue #9, part A):
//! the event bytes as Lambda delivers them → Fleetline's Kinesis envelope (base64 decode)
//! → input records → parse + validate + de-duplicate → the SQL text of the insert transactions (the
//! Redshift speed store) and the JSON bodies of the dead letters. No network: the warehouse
//! and the dead-letter sink below stop where the SDK call would start.
//!
//! Baselines in the same group, on the same bytes (see benches/README.md):
//! `bare_parse_event` (same event bytes: envelope + base64 + a typed serde parse of every
//! payload), `bare_parse_payloads` (only the typed parse of the already-decoded payloads)
//! and `envelope_only`. Run through `benches/run`; never run in CI.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use fleetline_aws::Warehouse;
use fleetline_aws::deadletter::{letter_body, letter_key};
use fleetline_aws::kinesis::BatchConsumer as _;
use fleetline_aws::warehouse::{ExecSummary, ResultSet, SqlParam, WarehouseError};
use fleetline_core::RapidAccelThreshold;
use fleetline_core::ports::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use stream_processor::{Outcome, Processor, RedshiftSpeedStore, Settings};

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
            // No row counts: the store then counts the rows it sent.
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
    async fn put(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let key = letter_key(letter, "rejected/");
        let body = letter_body(letter);
        self.bytes
            .fetch_add((key.len() + body.len()) as u64, Ordering::Relaxed);
        Ok(())
    }
}

type BenchProcessor<'a> = Processor<RedshiftSpeedStore<&'a NullWarehouse>, NullDeadLetters>;

fn processor(warehouse: &NullWarehouse) -> BenchProcessor<'_> {
    Processor::new(
        RedshiftSpeedStore::new(warehouse, RapidAccelThreshold::DEFAULT),
        NullDeadLetters::default(),
        Settings {
            dead_letter_concurrency: 16,
        },
    )
}

fn bench(c: &mut Criterion) {
    let f = fixture::batch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let warehouse = NullWarehouse::default();
    let p = processor(&warehouse);

    // The hot path, once: it must do the real work on this input (counts by the
    // simulator's labels), or the numbers below would measure an early exit.
    let hot = |event: &[u8]| {
        // What the runtime does with the payload, then the consumer's entry.
        let event = serde_json::from_slice(event).expect("a Kinesis event");
        let input = p.records(event);
        rt.block_on(p.process(&input, f.now)).1
    };
    let report = hot(&f.event);
    let e = f.expected;
    let counts = |n: usize| n as u64;
    assert_eq!(
        (
            &report.outcome,
            report.records_in,
            report.stored,
            report.duplicates_in_batch,
            report.rejected
        ),
        (
            &Outcome::Done,
            counts(e.records),
            counts(e.valid_unique),
            counts(e.duplicates),
            counts(e.malformed)
        ),
        "{report:?}"
    );
    assert!(warehouse.sql_bytes.load(Ordering::Relaxed) > 0);
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
    fixture::main_with(bench);
}
