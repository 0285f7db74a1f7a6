//! The command line.

use crate::config::{
    ConfigError, SimConfig, default_start_ns, parse_duration_ms, parse_fixed, parse_start,
};
use crate::kinesis::{KINESIS_RETRY, KinesisPutter, Sender};
use crate::progress::ProgressMode;
use crate::run::{RunError, RunOptions, Summary, run};
use clap::Parser;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Fleetline vehicle simulator: AWS IoT Device Simulator "Automotive Demo" readings as JSON
/// lines and/or Kinesis records, plus the exact expected metrics (ground truth).
///
/// Same seed and options (with --start) → byte-identical --out and --truth files.
#[derive(Debug, Parser)]
#[command(name = "simulator", version)]
pub struct Cli {
    /// Number of vehicles.
    #[arg(long, default_value_t = 15)]
    pub vehicles: u32,
    /// Time between two readings of a vehicle (500ms, 1s, 10s, …).
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub interval: u64,
    /// Driving time simulated per day (at most 24h).
    #[arg(long, default_value = "300s", value_parser = parse_duration_ms)]
    pub duration: u64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First reading's instant (RFC 3339). Default: now minus the simulated span, rounded
    /// down to the second, so that the last reading lands now.
    #[arg(long)]
    pub start: Option<String>,
    /// Repeat the driving window on this many consecutive days.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Trips per vehicle per day (the daily window is split evenly between them).
    #[arg(long, default_value_t = 1)]
    pub trips_per_day: u32,
    /// Rapid-acceleration threshold, km/h per s (up to 4 decimals).
    #[arg(long, env = "FLEETLINE_RAPID_ACCEL_KMH_PER_S", default_value = "10.0")]
    pub rapid_threshold: String,
    /// Fraction of readings also sent a second time (same bytes, right after).
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Fraction of readings sent late (minutes to 30 h after their timestamp).
    #[arg(long, default_value_t = 0.0)]
    pub late_rate: f64,
    /// Fraction of readings replaced by a malformed payload (a mix of reasons).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// JSON lines output (`-` = stdout). Default: stdout when no --kinesis-stream.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the ground truth JSON here.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Send every record to this Kinesis stream (PutRecords, partition key = VIN).
    #[arg(long)]
    pub kinesis_stream: Option<String>,
    /// With --kinesis-stream: pack N readings into each Kinesis record in the KPL aggregated
    /// record format (partition key table, MD5), as the Kinesis Producer Library does.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub kpl_aggregate: u32,
    /// Sleep so records are sent at the pace of their timestamps.
    #[arg(long)]
    pub realtime: bool,
    /// With --realtime: run N times faster than real time (implies --realtime).
    #[arg(long)]
    pub speedup: Option<f64>,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Cli {
    /// The data-defining options; `now` is only read when --start is absent.
    pub fn sim_config(
        &self,
        now: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
    ) -> Result<SimConfig, ConfigError> {
        let start_ns = match &self.start {
            Some(s) => parse_start(s)?,
            None => default_start_ns(now(), self.duration, self.days),
        };
        let cfg = SimConfig {
            vehicles: self.vehicles,
            interval_ms: self.interval,
            duration_ms: self.duration,
            seed: self.seed,
            start_ns,
            days: self.days,
            trips_per_day: self.trips_per_day,
            rapid_threshold: parse_fixed(&self.rapid_threshold, 4)?,
            duplicate_rate: self.duplicate_rate,
            late_rate: self.late_rate,
            malformed_rate: self.malformed_rate,
        };
        cfg.validate()?;
        if let Some(s) = self.speedup
            && !(s.is_finite() && s > 0.0)
        {
            return Err(ConfigError::Invalid(
                "--speedup must be a positive number".into(),
            ));
        }
        Ok(cfg)
    }
}

/// Runs the CLI. `kinesis` must be `Some` when `--kinesis-stream` is given.
pub async fn run_cli(
    cli: Cli,
    kinesis: Option<aws_sdk_kinesis::Client>,
) -> Result<Summary, RunError> {
    let cfg = cli.sim_config(chrono::Utc::now)?;
    let mut sender = match (&cli.kinesis_stream, kinesis) {
        (Some(stream), Some(client)) => Some(
            Sender::new(KinesisPutter::new(client, stream), KINESIS_RETRY)
                .with_kpl_aggregate(cli.kpl_aggregate as usize),
        ),
        (Some(_), None) => return Err(ConfigError::Invalid("no Kinesis client".into()).into()),
        _ => None,
    };
    let out_path = match (&cli.out, &cli.kinesis_stream) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(PathBuf::from("-")),
        (None, Some(_)) => None,
    };
    let mut out: Option<Box<dyn Write>> = match &out_path {
        Some(p) if p.as_os_str() == "-" => Some(Box::new(BufWriter::new(std::io::stdout().lock()))),
        Some(p) => Some(Box::new(BufWriter::new(std::fs::File::create(p)?))),
        None => None,
    };
    let opts = RunOptions {
        realtime_speedup: (cli.realtime || cli.speedup.is_some())
            .then(|| cli.speedup.unwrap_or(1.0)),
        progress: if cli.quiet {
            ProgressMode::Off
        } else {
            ProgressMode::Auto
        },
    };
    let summary = run(&cfg, out.as_mut(), sender.as_mut(), opts).await?;
    drop(out);
    if let Some(path) = &cli.truth {
        std::fs::write(path, summary.truth.to_pretty_string())?;
    }
    eprintln!("{}", summary.totals_line());
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_examples() {
        let cli = Cli::try_parse_from([
            "simulator",
            "--vehicles",
            "15",
            "--interval",
            "1s",
            "--duration",
            "300s",
            "--seed",
            "7",
            "--out",
            "readings.jsonl",
            "--truth",
            "truth.json",
            "--start",
            "2025-06-01T08:00:00Z",
        ])
        .unwrap();
        assert_eq!(
            cli.sim_config(|| unreachable!("--start given")).unwrap(),
            SimConfig::example()
        );

        let cli = Cli::try_parse_from([
            "simulator",
            "--start",
            "2025-01-01T08:00:00Z",
            "--days",
            "365",
            "--vehicles",
            "100",
            "--interval",
            "10s",
            "--duration",
            "600s",
            "--rapid-threshold",
            "12.5",
            "--late-rate",
            "0.01",
        ])
        .unwrap();
        let cfg = cli.sim_config(|| unreachable!()).unwrap();
        assert_eq!(cfg.total_readings(), 100 * 60 * 365);
        assert_eq!(cfg.rapid_threshold, 125_000);
        assert!(Cli::try_parse_from(["simulator", "--interval", "soon"]).is_err());
    }
}
