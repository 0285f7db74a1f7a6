//! One simulation run: generate records in send order, write them to the sinks (a JSON
//! lines writer and/or Kinesis), and compute the ground truth over what was sent.

use crate::config::SimConfig;
use crate::generator::Generator;
use crate::kinesis::{Entry, RecordPutter, SendError, SendStats, Sender};
use crate::progress::{Progress, ProgressMode};
use crate::truth::Truth;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Send(#[from] SendError),
}

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Sleep so that records go out at the pace of their timestamps divided by this
    /// factor (`--realtime --speedup N`); `None` sends as fast as possible.
    pub realtime_speedup: Option<f64>,
    pub progress: ProgressMode,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            realtime_speedup: None,
            progress: ProgressMode::Off,
        }
    }
}

pub struct Summary {
    pub truth: Truth,
    pub payload_bytes: u64,
    pub kinesis: Option<SendStats>,
    pub elapsed: Duration,
}

impl Summary {
    /// Totals as JSON (the Lambda's response, and `--totals-json`).
    pub fn totals_json(&self) -> Value {
        let c = self.truth.counts();
        let secs = self.elapsed.as_secs_f64();
        let mut v = json!({
            "records_sent": c.records_sent,
            "bytes_sent": self.payload_bytes,
            "valid_readings": c.valid_readings,
            "duplicates_injected": c.duplicates_sent,
            "late_injected": c.late_sent,
            "malformed_injected": c.malformed_sent,
            "elapsed_s": (secs * 1000.0).round() / 1000.0,
            "records_per_s": if secs > 0.0 { (c.records_sent as f64 / secs).round() } else { 0.0 },
        });
        if let Some(k) = self.kinesis {
            v["kinesis"] = json!({
                "records": k.records,
                "bytes": k.bytes,
                "put_records_calls": k.calls,
                "retried_records": k.retried_records,
            });
        }
        v
    }

    /// One human line for stderr.
    pub fn totals_line(&self) -> String {
        let c = self.truth.counts();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "simulator: sent {} records ({} bytes) in {:.1}s ({:.0} records/s); injected {} duplicates, {} late, {} malformed; {} valid readings",
            c.records_sent,
            self.payload_bytes,
            secs,
            c.records_sent as f64 / secs,
            c.duplicates_sent,
            c.late_sent,
            c.malformed_sent,
            c.valid_readings
        );
        if let Some(k) = self.kinesis {
            s.push_str(&format!(
                "; kinesis: {} records in {} PutRecords calls, {} retried",
                k.records, k.calls, k.retried_records
            ));
        }
        s
    }
}

/// Runs the simulation. `out` receives one JSON line per record; `sender` (if any) gets
/// every record with the VIN as partition key and is flushed at the end.
pub async fn run<W: Write, P: RecordPutter>(
    cfg: &SimConfig,
    mut out: Option<&mut W>,
    mut sender: Option<&mut Sender<P>>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    cfg.validate()?;
    let started = Instant::now();
    let mut truth = Truth::new(cfg);
    let estimate = (cfg.total_readings() as f64 * (1.0 + cfg.duplicate_rate)).round() as u64;
    let mut progress = Progress::new(estimate, opts.progress);
    let mut payload_bytes = 0u64;
    let end_ns = cfg.start_ns
        + (i64::from(cfg.days) - 1) * crate::config::DAY_MS as i64 * 1_000_000
        + cfg.duration_ms as i64 * 1_000_000;
    let mut first_ns: Option<i64> = None;

    for rec in Generator::new(cfg) {
        if let Some(speedup) = opts.realtime_speedup {
            let t0 = *first_ns.get_or_insert(rec.send_ns);
            // Late readings past the end of the data go out at the end, not hours later.
            let sim_ns = (rec.send_ns.min(end_ns) - t0).max(0) as f64 / speedup.max(1e-6);
            let due = Duration::from_nanos(sim_ns as u64);
            let now = started.elapsed();
            if due > now {
                if let Some(s) = sender.as_deref_mut() {
                    s.flush().await?;
                }
                if let Some(w) = out.as_deref_mut() {
                    w.flush()?;
                }
                tokio::time::sleep(due - now).await;
            }
        }
        truth.observe(&rec);
        payload_bytes += rec.payload.len() as u64;
        if let Some(w) = out.as_deref_mut() {
            w.write_all(rec.payload.as_bytes())?;
            w.write_all(b"\n")?;
        }
        if let Some(s) = sender.as_deref_mut() {
            s.push(Entry {
                data: rec.payload.into_bytes(),
                partition_key: rec.partition_key,
            })
            .await?;
        }
        progress.inc(1);
    }
    if let Some(s) = sender.as_deref_mut() {
        s.flush().await?;
    }
    if let Some(w) = out {
        w.flush()?;
    }
    progress.finish();
    Ok(Summary {
        truth,
        payload_bytes,
        kinesis: sender.map(|s| s.stats()),
        elapsed: started.elapsed(),
    })
}
