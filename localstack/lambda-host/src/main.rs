//! `lambda-host`: serves the Lambda Invoke API on 127.0.0.1:9000 for the function binaries
//! in `--bin-dir` (each hosted as a lambda_runtime process; see the library docs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use lambda_host::{EnvFile, FunctionRegistry, FunctionSpec, HostedFunction, invoke_api};
use tokio::net::TcpListener;

/// Default for `--functions` when lambda-host runs alone: template.yaml's functions but the
/// deploy-only schema-migrator (`python3 infra/lib/functions.py --local`). The local runner
/// passes its own list, read from the template; `infra/validate --only contract` fails when
/// this default drifts from the template.
const FLEETLINE_FUNCTIONS: &str =
    "stream-processor,lake-writer,batch-views,view-refresher,query-api,simulator";

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Local Lambda Invoke API for already-built lambda_runtime binaries"
)]
struct Args {
    /// Address of the Invoke API.
    #[arg(long, env = "LAMBDA_HOST_LISTEN", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Directory with the built binaries; function `x` runs `<bin-dir>/x`.
    #[arg(long, env = "LAMBDA_HOST_BIN_DIR")]
    bin_dir: PathBuf,
    /// Comma-separated function names.
    #[arg(long, value_delimiter = ',', default_value = FLEETLINE_FUNCTIONS)]
    functions: Vec<String>,
    /// KEY=VALUE environment for the functions (`[name]` sections for one function).
    /// May be repeated; later files win.
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Write each function's output to `<log-dir>/<name>.log`.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Don't copy the functions' output to this process's stdout/stderr.
    #[arg(long)]
    quiet: bool,
    /// Invocation timeout for every function, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE for every function.
    #[arg(long, default_value_t = 128)]
    memory_mb: u32,
    /// Seconds a function gets to exit after SIGTERM on shutdown before SIGKILL.
    #[arg(long, default_value_t = 5)]
    shutdown_grace_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAMBDA_HOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut env = EnvFile::default();
    for path in &args.env_file {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        env.merge_text(&text)
            .map_err(|err| format!("{}: {err}", path.display()))?;
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;

    let mut registry = FunctionRegistry::new();
    for name in args
        .functions
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
    {
        let binary = args.bin_dir.join(name);
        if !binary.is_file() {
            let reason = format!(
                "binary {} not found (build it with `cargo build -p {name}`)",
                binary.display()
            );
            tracing::warn!(function = name, "unavailable: {reason}");
            registry.insert_unavailable(name, reason);
            continue;
        }
        let mut spec = FunctionSpec::new(name, binary)
            .with_timeout(Duration::from_secs(args.timeout_secs))
            .with_memory_mb(args.memory_mb)
            .with_forward_output(!args.quiet);
        spec.env = env.for_function(name);
        if let Some(dir) = &args.log_dir {
            spec = spec.with_log_file(dir.join(format!("{name}.log")));
        }
        match HostedFunction::start(spec).await {
            Ok(function) => {
                registry.insert_hosted(function);
            }
            Err(err) => {
                tracing::warn!(function = name, "unavailable: {err}");
                registry.insert_unavailable(name, err.to_string());
            }
        }
    }
    let registry = Arc::new(registry);
    let region = FunctionSpec::new("", "").region;
    tracing::info!(listen = %args.listen, "lambda-host: Lambda Invoke API ready");
    invoke_api::serve(
        listener,
        registry.clone(),
        region,
        local_http::shutdown_signal(),
    )
    .await;

    tracing::info!("shutting down the functions");
    registry
        .shutdown(Duration::from_secs(args.shutdown_grace_secs))
        .await;
    tracing::info!("lambda-host stopped");
    Ok(())
}
