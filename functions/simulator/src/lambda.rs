//! Lambda mode: the event carries the same options as the CLI; records go to the stream
//! named by `STREAM_NAME` (default `vehicle-telemetry`); the response is the totals plus
//! the ground truth's summary.

use crate::config::{
    ConfigError, DEFAULT_RAPID_THRESHOLD, SimConfig, default_start_ns, parse_fixed, parse_start,
};
use crate::kinesis::{KINESIS_RETRY, KinesisPutter, RecordPutter, Sender};
use crate::run::{RunError, RunOptions, run};
use serde::Deserialize;
use serde_json::{Value, json};

pub const DEFAULT_STREAM: &str = "vehicle-telemetry";

/// `{"vehicles":15,"interval_s":1,"duration_s":300,"seed":7,"start":"…","days":1,
/// "trips_per_day":1,"rapid_threshold":10.0,"duplicate_rate":0.0,"late_rate":0.0,
/// "malformed_rate":0.0}`; every field optional. Unknown fields (e.g. those of a scheduled
/// EventBridge event) are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct SimEvent {
    pub vehicles: Option<u32>,
    pub interval_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub seed: Option<u64>,
    pub start: Option<String>,
    pub days: Option<u32>,
    pub trips_per_day: Option<u32>,
    /// A number (10.0) or a decimal string ("10.0").
    pub rapid_threshold: Option<Value>,
    pub duplicate_rate: Option<f64>,
    pub late_rate: Option<f64>,
    pub malformed_rate: Option<f64>,
}

fn seconds_to_ms(name: &str, s: f64) -> Result<u64, ConfigError> {
    if !(s.is_finite() && s > 0.0) {
        return Err(ConfigError::Invalid(format!(
            "{name} must be a positive number of seconds"
        )));
    }
    Ok((s * 1_000.0).round() as u64)
}

impl SimEvent {
    pub fn sim_config(&self, now: chrono::DateTime<chrono::Utc>) -> Result<SimConfig, ConfigError> {
        let interval_ms = seconds_to_ms("interval_s", self.interval_s.unwrap_or(1.0))?;
        let duration_ms = seconds_to_ms("duration_s", self.duration_s.unwrap_or(300.0))?;
        let days = self.days.unwrap_or(1);
        let rapid_threshold = match &self.rapid_threshold {
            None => match std::env::var("FLEETLINE_RAPID_ACCEL_KMH_PER_S") {
                Ok(s) => parse_fixed(&s, 4)?,
                Err(_) => DEFAULT_RAPID_THRESHOLD,
            },
            Some(Value::String(s)) => parse_fixed(s, 4)?,
            // A JSON number's own text (serde_json prints the shortest exact form).
            Some(Value::Number(n)) => parse_fixed(&n.to_string(), 4)?,
            Some(other) => return Err(ConfigError::Decimal(other.to_string())),
        };
        let cfg = SimConfig {
            vehicles: self.vehicles.unwrap_or(15),
            interval_ms,
            duration_ms,
            seed: self.seed.unwrap_or(1),
            start_ns: match &self.start {
                Some(s) => parse_start(s)?,
                None => default_start_ns(now, duration_ms, days),
            },
            days,
            trips_per_day: self.trips_per_day.unwrap_or(1),
            rapid_threshold,
            duplicate_rate: self.duplicate_rate.unwrap_or(0.0),
            late_rate: self.late_rate.unwrap_or(0.0),
            malformed_rate: self.malformed_rate.unwrap_or(0.0),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Handles one invocation, sending to Kinesis.
pub async fn handle(
    payload: Value,
    client: aws_sdk_kinesis::Client,
    stream: String,
) -> Result<Value, RunError> {
    let putter = KinesisPutter::new(client, stream.clone());
    handle_with(payload, putter, &stream, chrono::Utc::now()).await
}

/// Handles one invocation with any [`RecordPutter`] (a fake in tests).
pub async fn handle_with<P: RecordPutter>(
    payload: Value,
    putter: P,
    stream: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, RunError> {
    let event: SimEvent = serde_json::from_value(payload)
        .map_err(|e| ConfigError::Invalid(format!("bad simulator event: {e}")))?;
    let cfg = event.sim_config(now)?;
    tracing::info!(stream = %stream, vehicles = cfg.vehicles, readings = cfg.total_readings(), "simulation starting");
    let mut sender = Sender::new(putter, KINESIS_RETRY);
    let summary = run(
        &cfg,
        None::<&mut std::io::Sink>,
        Some(&mut sender),
        RunOptions::default(),
    )
    .await?;
    let totals = summary.totals_json();
    tracing::info!(totals = %totals, "simulation done");
    let miles: Vec<Value> = summary
        .truth
        .nano_miles_by_year()
        .iter()
        .map(|(year, nano)| json!({"year": year, "total_miles_nano": nano}))
        .collect();
    Ok(json!({
        "stream": stream,
        "params": cfg.params_json(),
        "totals": totals,
        "truth": {
            "counts": summary.truth.counts_json(),
            "daily_rows": summary.truth.daily().count(),
            "rapid_accelerations": summary.truth.total_rapid_accelerations(),
            "total_miles_by_year": miles,
        },
    }))
}

/// JSON logs on stdout (CloudWatch), level from RUST_LOG (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .with_ansi(false)
        .init();
}

/// The Lambda error: a stable type per kind of failure, and the message.
fn diagnostic(e: &RunError) -> lambda_runtime::Diagnostic {
    let error_type = match e {
        RunError::Config(_) => "InvalidEvent",
        RunError::Io(_) => "IoError",
        RunError::Send(_) => "KinesisSendError",
    };
    lambda_runtime::Diagnostic {
        error_type: error_type.to_string(),
        error_message: e.to_string(),
    }
}

/// Serves invocations until the runtime stops.
pub async fn serve(client: aws_sdk_kinesis::Client) -> Result<(), lambda_runtime::Error> {
    let stream = std::env::var("STREAM_NAME").unwrap_or_else(|_| DEFAULT_STREAM.to_string());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<Value>| {
            let client = client.clone();
            let stream = stream.clone();
            async move {
                Box::pin(handle(ev.payload, client, stream))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "simulation failed");
                        diagnostic(&e)
                    })
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::{Entry, PutCallError};
    use std::sync::Mutex;

    /// Accepts everything and keeps it.
    #[derive(Default)]
    struct Keep(Mutex<Vec<Entry>>);

    impl RecordPutter for &Keep {
        async fn put_records(
            &self,
            entries: &[Entry],
        ) -> Result<Vec<Option<String>>, PutCallError> {
            self.0.lock().unwrap().extend_from_slice(entries);
            Ok(vec![None; entries.len()])
        }
    }

    #[tokio::test]
    async fn invocation_sends_and_reports() {
        let keep = Keep::default();
        let now = chrono::Utc::now();
        let payload = json!({"vehicles": 3, "interval_s": 1, "duration_s": 60, "seed": 5,
            "duplicate_rate": 0.1, "malformed_rate": 0.1});
        let resp = handle_with(payload, &keep, "vehicle-telemetry", now)
            .await
            .unwrap();
        let sent = keep.0.lock().unwrap().len() as u64;
        assert_eq!(resp["totals"]["records_sent"], sent);
        assert_eq!(resp["totals"]["kinesis"]["records"], sent);
        assert_eq!(resp["truth"]["counts"]["records_sent"], sent);
        assert!(sent > 180, "{sent}");
        assert_eq!(resp["truth"]["daily_rows"], 3);
        assert_eq!(resp["stream"], "vehicle-telemetry");
        // Without "start" the last reading lands at about "now".
        let start = crate::config::parse_start(resp["params"]["start"].as_str().unwrap()).unwrap();
        let end = start + 60_000_000_000;
        let now_ns = now.timestamp_nanos_opt().unwrap();
        assert!((now_ns - end).abs() <= 1_000_000_000, "{start} {now_ns}");

        let bad = handle_with(json!({"vehicles": "many"}), &keep, "s", now).await;
        assert!(bad.unwrap_err().to_string().contains("bad simulator event"));
    }

    #[test]
    fn event_maps_to_config() {
        let ev: SimEvent = serde_json::from_value(json!({
            "vehicles": 15, "interval_s": 1, "duration_s": 300, "seed": 7,
            "start": "2025-06-01T08:00:00Z", "rapid_threshold": 10.0, "detail-type": "Scheduled Event"
        }))
        .unwrap();
        assert_eq!(
            ev.sim_config(chrono::Utc::now()).unwrap(),
            SimConfig::example()
        );
        let ev: SimEvent =
            serde_json::from_value(json!({"interval_s": 0.5, "rapid_threshold": "12.25"})).unwrap();
        let cfg = ev.sim_config(chrono::Utc::now()).unwrap();
        assert_eq!(cfg.interval_ms, 500);
        assert_eq!(cfg.rapid_threshold, 122_500);
        let ev: SimEvent = serde_json::from_value(json!({"interval_s": -1})).unwrap();
        assert!(ev.sim_config(chrono::Utc::now()).is_err());
    }
}
