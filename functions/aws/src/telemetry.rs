//! Start-up shared by every function's `main`: logging, configuration, SDK configuration.

use aws_config::SdkConfig;
use tracing_subscriber::EnvFilter;

/// What every function's `main` does first: JSON logging ([`init_tracing`]), then its own
/// configuration (an error ends the start-up, and is logged by the runtime), then the shared
/// SDK configuration ([`sdk_config`](crate::sdk_config)).
pub async fn start<C, E>(config: impl FnOnce() -> Result<C, E>) -> Result<(C, SdkConfig), E> {
    init_tracing();
    let config = config()?;
    Ok((config, crate::sdk_config().await))
}

/// Set to `1`/`true` to include a timestamp in every log line (useful when running the
/// binaries outside Lambda).
pub const ENV_LOG_TIMESTAMPS: &str = "FLEETLINE_LOG_TIMESTAMPS";

/// Installs JSON logging to stdout: one object per line, fields flattened to the top level,
/// the current span (e.g. the Lambda request id span) included, no ANSI colours.
/// The filter comes from `RUST_LOG` (default `info`).
///
/// No timestamp by default: CloudWatch Logs stamps every event on ingestion (`@timestamp`),
/// so a second one only costs bytes. Set [`ENV_LOG_TIMESTAMPS`] to add it.
///
/// Safe to call more than once (later calls do nothing).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let with_time = std::env::var(ENV_LOG_TIMESTAMPS)
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = if with_time {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
