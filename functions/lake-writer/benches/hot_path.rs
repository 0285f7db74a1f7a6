//! Hot path of lake-writer on a 10,000-record Kinesis batch (issue #9, part A): the event
//! bytes as Lambda delivers them → Fleetline's Kinesis envelope (base64 decode) → input
//! records → parse, validate, de-duplicate → per event day, the object key and the Parquet
//! bytes (the default S3 sink). No network: the sink below does what `S3LakeSink` does before its
//! PutObject calls.
//!
//! Baselines in the same group, on the same bytes (see benches/README.md):
//! `bare_parse_event`, `bare_parse_payloads`, `envelope_only`. Run through `benches/run`;
//! never run in CI.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use fleetline_aws::kinesis::BatchConsumer as _;
use fleetline_aws::lake::{encode_parquet, object_key, split_by_day};
use fleetline_core::ports::lake::{ErrorKind, LakeBatch, LakeError, LakeSink, WriteReport};
use lake_writer::{Outcome, Processor};

#[path = "../../../benches/lib/kinesis_fixture.rs"]
mod fixture;

/// Encodes one Parquet object per event day, keyed like the S3 sink; stores nothing.
#[derive(Default)]
struct EncodingSink {
    bytes: AtomicU64,
}

impl LakeSink for EncodingSink {
    async fn write(&self, batch: &LakeBatch) -> Result<WriteReport, LakeError> {
        let mut report = WriteReport {
            rows: batch.rows.len() as u64,
            ..WriteReport::default()
        };
        for (day, rows) in split_by_day(&batch.rows) {
            let key = object_key(
                "vehicle_telematics_raw/",
                day,
                &batch.shard_id,
                &batch.first_sequence,
                &batch.last_sequence,
            );
            let body = encode_parquet(&rows).map_err(|e| LakeError {
                kind: ErrorKind::Permanent,
                operation: "encode",
                target: key.clone(),
                code: "encode".into(),
                message: e.to_string(),
            })?;
            report.objects += 1;
            report.bytes += body.len() as u64;
            self.bytes
                .fetch_add((key.len() + body.len()) as u64, Ordering::Relaxed);
        }
        Ok(report)
    }
}

fn bench(c: &mut Criterion) {
    let f = fixture::batch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let p = Processor::new(EncodingSink::default(), "s3");

    let hot = |event: &[u8]| {
        // What the runtime does with the payload, then the consumer's entry.
        let input = p.records(serde_json::from_slice(event).expect("a Kinesis event"));
        rt.block_on(p.process(&input, f.now)).1
    };
    // Once before timing: the real work happens on this input (simulator's labels).
    let report = hot(&f.event);
    let e = f.expected;
    assert_eq!(report.outcome, Outcome::Done);
    assert_eq!(report.records_in as usize, e.records);
    assert_eq!(report.written as usize, e.valid_unique, "{report:?}");
    assert_eq!(report.duplicates_in_batch as usize, e.duplicates);
    assert_eq!(report.rejected as usize, e.malformed);
    assert!(report.sink.objects >= 1 && report.sink.bytes > 0);
    eprintln!(
        "lake-writer fixture: {} records, {} Parquet object(s), {} Parquet bytes",
        e.records, report.sink.objects, report.sink.bytes
    );

    fixture::bench_against_baselines(c, "lake_writer_10000", &f, hot);
}

fn main() {
    fixture::main_with(bench);
}
