//! The benchmark input shared by the stream-processor and lake-writer hot-path benches
//! (included with `#[path]`, so both measure the same bytes): a Kinesis event exactly as
//! Lambda delivers it, built from the simulator's generator.
//!
//! - Records: `simulator` readings (100 vehicles, 1 s interval, fixed seed and start) with
//!   the demo's fault rates (1% duplicates, 0.5% late, 0.5% malformed), in send order, the
//!   first N of them. One shard: a Kinesis event source mapping never mixes shards in a batch.
//! - Envelope: every field Lambda sets (`eventID`, ARNs, 56-digit sequence numbers, the
//!   arrival time), `kinesis.data` base64 as on the wire: the local runner's event builder.
//! - Expected counts come from the generator's own labels (what it injected), not from the
//!   code under test, so a bench can check it measures real work before timing it.
//!
//! `FLEETLINE_BENCH_WRITE_EVENTS=<dir>` makes a bench binary write the events
//! (`kinesis-10000.json`, `kinesis-6mb.json`, each with a `.meta.json`) and exit: the Python
//! baseline and the memory probe read exactly these files.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use local_runner::kinesis::StreamRecord;
use local_runner::kinesis::event::{EventOrigin, event_record, record_json};
use serde_json::json;
use simulator::config::{SimConfig, parse_start};
use simulator::generator::{Generator, RecordKind};

/// Records per batch in the hot-path benches (the issue's batch size; Kinesis' maximum).
pub const BATCH_RECORDS: usize = 10_000;
/// Lambda's synchronous invocation payload limit (6 MB), which also caps a Kinesis batch.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

const SHARD: &str = "shardId-000000000000";
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/vehicle-telemetry";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/fleetline-stream-processor";
const START: &str = "2025-06-02T08:00:00Z";

/// One event and what the simulator says is in it.
pub struct Fixture {
    /// The invocation payload (`{"Records":[…]}`), as the runtime hands it to serde.
    pub event: Vec<u8>,
    /// The records' decoded `data`, in order (for the bare-parse baseline).
    pub payloads: Vec<Vec<u8>>,
    /// Validation reference time (well after every reading, so none is "in the future").
    pub now: DateTime<Utc>,
    pub expected: Expected,
}

/// Counts by the generator's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub records: usize,
    /// Valid readings, first copy of each (VIN, ts).
    pub valid_unique: usize,
    /// Extra copies of a valid reading (same bytes, right after the original).
    pub duplicates: usize,
    pub malformed: usize,
    pub payload_bytes: usize,
}

fn sim_config() -> SimConfig {
    SimConfig {
        vehicles: 100,
        interval_ms: 1_000,
        // 100 vehicles × 130 s = 13,000 readings: more than any batch we cut from it.
        duration_ms: 130_000,
        seed: 1,
        start_ns: parse_start(START).unwrap_or(0),
        days: 1,
        trips_per_day: 1,
        rapid_threshold: simulator::config::DEFAULT_RAPID_THRESHOLD,
        duplicate_rate: 0.01,
        late_rate: 0.005,
        malformed_rate: 0.005,
    }
}

/// The first `max_records` records, or fewer if the event would exceed `max_bytes`.
pub fn kinesis_event(max_records: usize, max_bytes: Option<usize>) -> Fixture {
    let cfg = sim_config();
    let origin = EventOrigin {
        shard_id: SHARD,
        stream_arn: STREAM_ARN,
        region: "us-east-1",
        identity_arn: ROLE_ARN,
    };
    let head = br#"{"Records":["#;
    let tail = b"]}";
    let mut event = head.to_vec();
    let mut payloads = Vec::new();
    let mut expected = Expected {
        records: 0,
        valid_unique: 0,
        duplicates: 0,
        malformed: 0,
        payload_bytes: 0,
    };
    for (i, rec) in Generator::new(&cfg).take(max_records).enumerate() {
        // 56 digits like real Kinesis sequence numbers, increasing in delivery order.
        let seq = format!("49590338271490256608559692538{:027}", 1_000_000 + i * 7);
        let arrival = rec.send_ns as f64 / 1e9;
        let record = StreamRecord {
            sequence_number: seq,
            partition_key: rec.partition_key.clone(),
            data: rec.payload.as_bytes().to_vec(),
            approximate_arrival: (arrival * 1000.0).round() / 1000.0,
        };
        let entry = record_json(&event_record(&record, &origin)).unwrap_or_default();
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        let sep = usize::from(i > 0);
        if max_bytes.is_some_and(|m| event.len() + sep + bytes.len() + tail.len() > m) {
            break;
        }
        if sep == 1 {
            event.push(b',');
        }
        event.extend_from_slice(&bytes);
        match rec.kind {
            RecordKind::Valid {
                duplicate: true, ..
            } => expected.duplicates += 1,
            RecordKind::Valid { .. } => expected.valid_unique += 1,
            RecordKind::Malformed(_) => expected.malformed += 1,
        }
        expected.records += 1;
        expected.payload_bytes += rec.payload.len();
        payloads.push(rec.payload.into_bytes());
    }
    event.extend_from_slice(tail);
    let now = DateTime::<Utc>::from_timestamp_nanos(cfg.start_ns) + TimeDelta::days(3);
    Fixture {
        event,
        payloads,
        now,
        expected,
    }
}

/// The 10,000-record batch of the hot-path benches.
pub fn batch() -> Fixture {
    kinesis_event(BATCH_RECORDS, None)
}

/// With `FLEETLINE_BENCH_WRITE_EVENTS=<dir>`: writes the events and returns true (the
/// bench's `main` then exits without benchmarking).
pub fn write_events_if_asked() -> bool {
    let Some(dir) = std::env::var_os("FLEETLINE_BENCH_WRITE_EVENTS") else {
        return false;
    };
    let dir = Path::new(&dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let sets = [
        ("kinesis-10000", kinesis_event(BATCH_RECORDS, None)),
        (
            "kinesis-6mb",
            kinesis_event(BATCH_RECORDS, Some(LAMBDA_PAYLOAD_LIMIT)),
        ),
    ];
    for (name, f) in sets {
        let meta = json!({
            "generator": {
                "crate": "simulator", "vehicles": 100, "interval": "1s", "seed": 1,
                "start": START, "duplicate_rate": 0.01, "late_rate": 0.005,
                "malformed_rate": 0.005, "shard": SHARD,
            },
            "now": f.now.to_rfc3339(),
            "event_bytes": f.event.len(),
            "records": f.expected.records,
            "valid_unique": f.expected.valid_unique,
            "duplicates": f.expected.duplicates,
            "malformed": f.expected.malformed,
            "payload_bytes": f.expected.payload_bytes,
        });
        let event_path = dir.join(format!("{name}.json"));
        let meta_path = dir.join(format!("{name}.meta.json"));
        let meta_text = serde_json::to_string_pretty(&meta).unwrap_or_default();
        if let Err(e) = std::fs::write(&event_path, &f.event)
            .and_then(|()| std::fs::write(&meta_path, meta_text + "\n"))
        {
            eprintln!("cannot write {}: {e}", event_path.display());
            std::process::exit(1);
        }
        eprintln!(
            "wrote {} ({} records, {} bytes)",
            event_path.display(),
            f.expected.records,
            f.event.len()
        );
    }
    true
}

/// The baseline: a bare `serde_json` parse of the same payloads into a plain typed struct
/// (owned strings and floats, every field the simulator sends, no validation).
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // parsed to be measured, never read
pub struct BareReading {
    #[serde(rename = "VIN")]
    vin: String,
    trip_id: String,
    #[serde(rename = "_id_")]
    device_id: Option<String>,
    timestamp: String,
    #[serde(rename = "vehicleSpeed")]
    vehicle_speed: f64,
    acceleration: f64,
    odometer: Option<f64>,
    #[serde(rename = "engineSpeed")]
    engine_speed: Option<f64>,
    #[serde(rename = "fuelLevel")]
    fuel_level: Option<f64>,
    #[serde(rename = "fuelConsumedSinceRestart")]
    fuel_consumed_since_restart: Option<f64>,
    #[serde(rename = "oilTemp")]
    oil_temp: Option<f64>,
    brake: Option<f64>,
    #[serde(rename = "brakePedalStatus")]
    brake_pedal_status: Option<bool>,
    #[serde(rename = "ignitionStatus")]
    ignition_status: Option<String>,
    #[serde(rename = "transmissionGearPosition")]
    transmission_gear_position: Option<String>,
    location: Option<BareLocation>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
pub struct BareLocation {
    latitude: f64,
    longitude: f64,
}

/// Bare parse of already-decoded payloads; returns how many parsed.
pub fn bare_parse_payloads(payloads: &[Vec<u8>]) -> usize {
    payloads
        .iter()
        .filter(|p| serde_json::from_slice::<BareReading>(p).is_ok())
        .count()
}

/// Bare parse from the same event bytes as the hot path: the envelope (with base64 decode,
/// exactly as the functions deserialise it) and then every payload; returns how many parsed.
pub fn bare_parse_event(event: &[u8]) -> usize {
    let Ok(event) =
        serde_json::from_slice::<aws_lambda_events::event::kinesis::KinesisEvent>(event)
    else {
        return 0;
    };
    event
        .records
        .iter()
        .filter(|r| serde_json::from_slice::<BareReading>(&r.kinesis.data.0).is_ok())
        .count()
}

/// The envelope alone: `KinesisEvent` deserialisation including the base64 decode.
pub fn envelope_only(event: &[u8]) -> usize {
    serde_json::from_slice::<aws_lambda_events::event::kinesis::KinesisEvent>(event)
        .map(|e| e.records.len())
        .unwrap_or(0)
}

/// Fleetline's envelope alone (what the runtime reads the event with, `KinesisRecords`):
/// the input records, base64 decoded.
pub fn fleetline_envelope(event: &[u8]) -> usize {
    fleetline_aws::kinesis::records(event).map_or(0, |r| r.len())
}

/// The criterion group both benches report: `hot_path` and, on the same input, the
/// reference parses the report compares it with (`bare_parse_event` is the baseline).
pub fn bench_against_baselines<R>(
    c: &mut criterion::Criterion,
    group: &str,
    f: &Fixture,
    hot: impl Fn(&[u8]) -> R,
) {
    use std::hint::black_box;
    let mut g = c.benchmark_group(group);
    g.throughput(criterion::Throughput::Elements(f.expected.records as u64));
    g.bench_function("hot_path", |b| b.iter(|| hot(black_box(&f.event))));
    g.bench_function("bare_parse_event", |b| {
        b.iter(|| bare_parse_event(black_box(&f.event)))
    });
    g.bench_function("bare_parse_payloads", |b| {
        b.iter(|| bare_parse_payloads(black_box(&f.payloads)))
    });
    g.bench_function("envelope_only", |b| {
        b.iter(|| envelope_only(black_box(&f.event)))
    });
    g.bench_function("fleetline_envelope", |b| {
        b.iter(|| fleetline_envelope(black_box(&f.event)))
    });
    g.finish();
}

/// A bench binary's `main`: writes the events when asked ([`write_events_if_asked`]),
/// otherwise runs `bench` under criterion.
pub fn main_with(bench: fn(&mut criterion::Criterion)) {
    if write_events_if_asked() {
        return;
    }
    let mut c = criterion::Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
