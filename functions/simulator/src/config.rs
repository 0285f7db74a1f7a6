//! Simulation options shared by the CLI and the Lambda event, with their parsers.
//!
//! Everything that changes the generated data lives in [`SimConfig`]; where the data goes
//! (file, Kinesis, pacing) does not, so the ground truth's `params` only depend on the data.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Errors in the options (never a panic on user input).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "invalid duration {0:?}: use e.g. 500ms, 1s, 10s, 5m, 1h (a bare number means seconds)"
    )]
    Duration(String),
    #[error("invalid decimal {0:?}: use e.g. 10.0 (at most 4 decimals)")]
    Decimal(String),
    #[error("invalid start {0:?}: use RFC 3339, e.g. 2025-06-01T08:00:00Z")]
    Start(String),
    #[error("{0}")]
    Invalid(String),
}

/// Data-defining options. Times are integers: milliseconds for the interval and duration,
/// nanoseconds since the Unix epoch (UTC) for the start.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub vehicles: u32,
    pub interval_ms: u64,
    pub duration_ms: u64,
    pub seed: u64,
    pub start_ns: i64,
    pub days: u32,
    pub trips_per_day: u32,
    /// Rapid-acceleration threshold in ten-thousandths of km/h per s (10.0 → 100_000).
    pub rapid_threshold: i64,
    pub duplicate_rate: f64,
    pub late_rate: f64,
    pub malformed_rate: f64,
}

pub const DAY_MS: u64 = 86_400_000;
pub const DEFAULT_RAPID_THRESHOLD: i64 = 100_000;

impl SimConfig {
    /// Defaults used by tests: 15 vehicles, 1 s, 300 s, seed 7, 2025-06-01T08:00:00Z.
    pub fn example() -> Self {
        SimConfig {
            vehicles: 15,
            interval_ms: 1_000,
            duration_ms: 300_000,
            seed: 7,
            start_ns: parse_start("2025-06-01T08:00:00Z").unwrap_or(0),
            days: 1,
            trips_per_day: 1,
            rapid_threshold: DEFAULT_RAPID_THRESHOLD,
            duplicate_rate: 0.0,
            late_rate: 0.0,
            malformed_rate: 0.0,
        }
    }

    /// Readings per vehicle per day.
    pub fn steps_per_day(&self) -> u64 {
        self.duration_ms / self.interval_ms
    }

    /// Readings generated in total (before faults).
    pub fn total_readings(&self) -> u64 {
        self.steps_per_day() * u64::from(self.vehicles) * u64::from(self.days)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.vehicles == 0 || self.vehicles > 100_000 {
            return bad("--vehicles must be between 1 and 100000");
        }
        if self.interval_ms < 10 {
            return bad("--interval must be at least 10ms");
        }
        if self.duration_ms > DAY_MS {
            return bad("--duration must be at most 24h (each day repeats it)");
        }
        if self.days == 0 || self.days > 36_600 {
            return bad("--days must be between 1 and 36600");
        }
        if self.trips_per_day == 0 {
            return bad("--trips-per-day must be at least 1");
        }
        if self.steps_per_day() < 2 * u64::from(self.trips_per_day) {
            return bad(
                "--duration must hold at least 2 readings per trip (duration / interval >= 2 x trips-per-day)",
            );
        }
        if self.rapid_threshold <= 0 {
            return bad("--rapid-threshold must be positive");
        }
        for (name, r) in [
            ("--duplicate-rate", self.duplicate_rate),
            ("--late-rate", self.late_rate),
            ("--malformed-rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(ConfigError::Invalid(format!("{name} must be in [0, 1]")));
            }
        }
        Ok(())
    }

    /// The options as they appear in the ground truth's `params` (deterministic).
    pub fn params_json(&self) -> Value {
        json!({
            "vehicles": self.vehicles,
            "interval_ms": self.interval_ms,
            "duration_ms": self.duration_ms,
            "seed": self.seed,
            "start": format_start(self.start_ns),
            "days": self.days,
            "trips_per_day": self.trips_per_day,
            "rapid_threshold_kmh_per_s": format_fixed(self.rapid_threshold, 4),
            "duplicate_rate": self.duplicate_rate,
            "late_rate": self.late_rate,
            "malformed_rate": self.malformed_rate,
        })
    }
}

/// Parses `500ms`, `1s`, `1.5s`, `10m`, `2h`, or a bare number of seconds, into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, ConfigError> {
    let err = || ConfigError::Duration(text.to_string());
    let t = text.trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, DAY_MS)
    } else {
        (t, 1_000)
    };
    // Exact decimal: value = int.frac × unit, must be a whole number of milliseconds.
    let scaled = parse_fixed(num.trim(), 3).map_err(|_| err())?;
    if scaled < 0 {
        return Err(err());
    }
    let total = (scaled as u128) * (unit_ms as u128);
    if !total.is_multiple_of(1000) || total / 1000 > u128::from(u64::MAX) {
        return Err(err());
    }
    Ok((total / 1000) as u64)
}

/// Parses a decimal string exactly into an integer scaled by 10^scale (no floats).
/// More decimals than `scale` are an error rather than a silent rounding.
pub fn parse_fixed(text: &str, scale: u32) -> Result<i64, ConfigError> {
    let err = || ConfigError::Decimal(text.to_string());
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    if frac_part.len() > scale as usize {
        return Err(err());
    }
    let mut v: i64 = 0;
    for b in int_part.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|x| x.checked_add(i64::from(b - b'0')))
            .ok_or_else(err)?;
    }
    let mut frac: i64 = 0;
    for b in frac_part.bytes() {
        frac = frac * 10 + i64::from(b - b'0');
    }
    frac *= 10i64.pow(scale - frac_part.len() as u32);
    let v = v
        .checked_mul(10i64.pow(scale))
        .and_then(|x| x.checked_add(frac))
        .ok_or_else(err)?;
    Ok(if neg { -v } else { v })
}

/// Prints an integer scaled by 10^scale as exact decimal text (`-1234, 3` → `-1.234`).
pub fn format_fixed(v: i64, scale: u32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{a}");
    }
    let p = 10u64.pow(scale);
    format!("{sign}{}.{:0width$}", a / p, a % p, width = scale as usize)
}

/// RFC 3339 → nanoseconds since the epoch.
pub fn parse_start(text: &str) -> Result<i64, ConfigError> {
    let dt = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| ConfigError::Start(text.to_string()))?;
    dt.with_timezone(&Utc)
        .timestamp_nanos_opt()
        .ok_or_else(|| ConfigError::Start(text.to_string()))
}

pub fn format_start(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Default start: now minus the whole simulated span, rounded down to the second, so that
/// a live demo's last reading lands "now".
pub fn default_start_ns(now: DateTime<Utc>, duration_ms: u64, days: u32) -> i64 {
    let span_ms = duration_ms as i64 + (i64::from(days) - 1) * DAY_MS as i64;
    let start_s = now.timestamp() - span_ms.div_euclid(1000) - i64::from(span_ms % 1000 != 0);
    start_s * 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1s"), Ok(1_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("300"), Ok(300_000));
        assert!(parse_duration_ms("1.0001s").is_err());
        assert!(parse_duration_ms("abc").is_err());
        assert!(parse_duration_ms("-1s").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn fixed_point_roundtrip() {
        assert_eq!(parse_fixed("10.0", 4), Ok(100_000));
        assert_eq!(parse_fixed("10", 4), Ok(100_000));
        assert_eq!(parse_fixed("9.8765", 4), Ok(98_765));
        assert_eq!(parse_fixed("-0.5", 1), Ok(-5));
        assert!(parse_fixed("1.23456", 4).is_err());
        assert!(parse_fixed("1e3", 4).is_err());
        assert_eq!(format_fixed(100_000, 4), "10.0000");
        assert_eq!(format_fixed(-5, 1), "-0.5");
        assert_eq!(format_fixed(1_042_377, 3), "1042.377");
        assert_eq!(format_fixed(7, 0), "7");
    }

    #[test]
    fn start_parsing_and_default() {
        let ns = parse_start("2025-06-01T08:00:00Z").unwrap();
        assert_eq!(ns, 1_748_764_800_000_000_000);
        assert_eq!(format_start(ns), "2025-06-01T08:00:00Z");
        let now = DateTime::parse_from_rfc3339("2025-06-02T10:00:00.700Z")
            .unwrap()
            .with_timezone(&Utc);
        // 300 s back from 10:00:00.7 rounded down to the second.
        assert_eq!(
            format_start(default_start_ns(now, 300_000, 1)),
            "2025-06-02T09:55:00Z"
        );
        assert_eq!(
            format_start(default_start_ns(now, 300_000, 2)),
            "2025-06-01T09:55:00Z"
        );
    }

    #[test]
    fn validation() {
        assert_eq!(SimConfig::example().validate(), Ok(()));
        let mut c = SimConfig::example();
        c.duration_ms = DAY_MS + 1;
        assert!(c.validate().is_err());
        let mut c = SimConfig::example();
        c.late_rate = 1.5;
        assert!(c.validate().is_err());
        let mut c = SimConfig::example();
        c.trips_per_day = 200;
        assert!(c.validate().is_err());
    }
}
