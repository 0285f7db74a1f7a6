//! `local-runner`: hosts Fleetline's function binaries (lambda-host) and drives them the way
//! AWS would from template.yaml — Kinesis event source mappings, EventBridge schedules, API
//! Gateway on 127.0.0.1:3000 — and serves the Lambda Invoke API on 127.0.0.1:9000.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use lambda_host::{EnvFile, FunctionRegistry, FunctionSpec, HostedFunction, invoke_api};
use local_runner::api_gateway::{self, ApiConfig, Router};
use local_runner::invoke_front;
use local_runner::invoker::RegistryInvoker;
use local_runner::kinesis::aws::KinesisSource;
use local_runner::kinesis::{CheckpointStore, Deps, FailureLog, Mapping, MappingConfig};
use local_runner::schedule::{Schedule, ScheduleTask, run_schedule};
use local_runner::status::StatusBoard;
use local_runner::template::{EventSource, FunctionDef, ScheduleEvent, Template, TemplateOptions};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Runs Fleetline's functions locally, wired from template.yaml: Kinesis event source \
             mappings, EventBridge schedules, API Gateway and the Lambda Invoke API"
)]
struct Args {
    /// The SAM template (functions, settings, environment, events).
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Directory with the built function binaries; function `x` runs `<bin-dir>/x`.
    #[arg(long, env = "LOCAL_RUNNER_BIN_DIR")]
    bin_dir: PathBuf,
    /// Checkpoints (checkpoints.json) and on-failure records (on-failure/*.jsonl).
    #[arg(long, default_value = "localstack/.run/runner")]
    state_dir: PathBuf,
    /// KEY=VALUE environment for the functions (`[name]` sections for one function);
    /// applied over the template's variables. Repeatable; later files win.
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Pause between GetRecords calls on a shard with nothing new (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Only these functions (comma-separated); default: every function in the template.
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Don't fire the template's schedules.
    #[arg(long)]
    no_schedules: bool,
    /// Don't run the Kinesis event source mappings.
    #[arg(long)]
    no_kinesis: bool,
    /// Don't perform the template's Custom::WarehouseSchema Create (the SQL) at start.
    #[arg(long)]
    no_warehouse_schema: bool,
    /// Replace a function's schedule: `view-refresher=rate(10 seconds)`; `=off` disables it.
    #[arg(long, value_parser = parse_pair)]
    schedule_override: Vec<(String, String)>,
    /// Template parameter values: `KinesisBatchSize=100` (defaults come from the template).
    #[arg(long, value_parser = parse_pair)]
    parameter_override: Vec<(String, String)>,
    /// The local Kinesis stream for every Kinesis event (default: the template's).
    #[arg(long)]
    stream: Option<String>,
    /// What `Ref <LogicalId>` resolves to: `LakeChangesQueue=<queue URL>` (repeatable;
    /// over the runner's table of local names).
    #[arg(long, value_parser = parse_pair)]
    resource_ref: Vec<(String, String)>,
    /// Local API Gateway (REST API proxy integration).
    #[arg(long, default_value = "127.0.0.1:3000")]
    api_listen: SocketAddr,
    /// Require this value in `x-api-key` (the template's ApiKeyRequired; off by default).
    #[arg(long, env = "LOCAL_RUNNER_API_KEY")]
    api_key: Option<String>,
    /// Lambda Invoke API, `GET /health` and `GET /runner/status`.
    #[arg(long, default_value = "127.0.0.1:9000")]
    invoke_listen: SocketAddr,
    /// Write each function's output to `<log-dir>/<name>.log`.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Don't copy the functions' output to this process's stdout/stderr.
    #[arg(long)]
    quiet: bool,
    /// The runner's own log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// `AWS::StackName` when resolving the template.
    #[arg(long, default_value = "fleetline")]
    stack_name: String,
    /// Seconds a function gets to exit after SIGTERM on shutdown before SIGKILL.
    #[arg(long, default_value_t = 5)]
    shutdown_grace_secs: u64,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 1s, 500ms, 2m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCAL_RUNNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr} ({what}): {err}"))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn host_functions(
    args: &Args,
    functions: &[&FunctionDef],
    env: &EnvFile,
) -> FunctionRegistry {
    let mut registry = FunctionRegistry::new();
    for function in functions {
        let name = &function.name;
        let binary = args.bin_dir.join(name);
        if !binary.is_file() {
            let reason = format!(
                "binary {} not found (build it with `cargo build -p {name}`)",
                binary.display()
            );
            tracing::warn!(function = %name, "unavailable, its events are skipped: {reason}");
            registry.insert_unavailable(name.clone(), reason);
            continue;
        }
        let mut spec = FunctionSpec::new(name.clone(), binary)
            .with_timeout(function.timeout)
            .with_memory_mb(function.memory_mb)
            .with_region(args.region.clone())
            .with_forward_output(!args.quiet);
        spec.env = function.env.clone();
        spec.env.extend(env.for_function(name));
        if let Some(dir) = &args.log_dir {
            spec = spec.with_log_file(dir.join(format!("{name}.log")));
        }
        match HostedFunction::start(spec).await {
            Ok(hosted) => {
                tracing::info!(function = %name, timeout_s = function.timeout.as_secs(),
                    memory_mb = function.memory_mb, "hosted");
                registry.insert_hosted(hosted);
            }
            Err(err) => {
                tracing::warn!(function = %name, "unavailable: {err}");
                registry.insert_unavailable(name.clone(), err.to_string());
            }
        }
    }
    registry
}

/// The template's schema custom resource, created before any event source or schedule
/// starts (on AWS they `DependsOn` it); a FAILED answer stops the runner, as it fails a deploy.
async fn create_warehouse_schema(
    args: &Args,
    template: &Template,
    registry: &FunctionRegistry,
) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.template)
        .map_err(|e| format!("cannot read {}: {e}", args.template.display()))?;
    for (resource, function_id) in local_runner::schema::schema_resources(&text)? {
        let hosted = template
            .functions
            .iter()
            .find(|f| f.logical_id == function_id)
            .and_then(|f| registry.hosted(&f.name));
        let Some(hosted) = hosted else {
            tracing::info!(%resource, function = %function_id,
                "schema custom resource skipped: its function is not hosted here");
            continue;
        };
        let speed_path = template
            .parameters
            .get("SpeedPath")
            .map_or("lambda", String::as_str);
        let answer = local_runner::schema::create_on_speed_path(hosted, &resource, speed_path)
            .await
            .map_err(|reason| format!("{resource} (Custom::WarehouseSchema) FAILED: {reason}"))?;
        tracing::info!(%resource, data = %answer["Data"], "schema custom resource created");
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    let template = load_template(&args)?;
    let selected = select_functions(&args, &template)?;
    let env = read_env_files(&args.env_file)?;
    let overrides: BTreeMap<String, String> = args.schedule_override.iter().cloned().collect();
    for name in overrides.keys() {
        if template.function(name).is_none() {
            return Err(format!(
                "--schedule-override: {name} is not a function in the template"
            ));
        }
    }
    // Bind first: a busy port should fail before any process starts.
    let listeners = Listeners::bind(&args).await?;

    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.state_dir.display()))?;
    let checkpoints = Arc::new(
        CheckpointStore::open(args.state_dir.join("checkpoints.json"))
            .map_err(|e| e.to_string())?,
    );
    let failures = Arc::new(FailureLog::new(args.state_dir.join("on-failure")));
    let status = Arc::new(StatusBoard::new());

    let registry = Arc::new(host_functions(&args, &selected, &env).await);
    if !args.no_warehouse_schema {
        create_warehouse_schema(&args, &template, &registry).await?;
    }
    let invoker = Arc::new(RegistryInvoker::new(registry.clone(), args.region.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = Workers {
        args: &args,
        selected: &selected,
        registry: &registry,
        invoker: &invoker,
        checkpoints: &checkpoints,
        failures: &failures,
        status: &status,
        stop: &stop_rx,
    };
    let mut tasks = JoinSet::new();
    workers.start_kinesis_mappings(&mut tasks).await;
    workers.start_schedules(&mut tasks, &overrides);
    let servers = workers.start_servers(listeners, &template);
    report_ready(&args, &registry, &status, &checkpoints, &failures);

    local_http::shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight invocations");
    let _ = stop_tx.send(true);
    drain(tasks, servers, &selected).await;
    registry
        .shutdown(Duration::from_secs(args.shutdown_grace_secs))
        .await;
    tracing::info!("local-runner stopped");
    Ok(())
}

fn load_template(args: &Args) -> Result<Template, String> {
    let options = TemplateOptions {
        region: args.region.clone(),
        stack_name: args.stack_name.clone(),
        parameter_overrides: args.parameter_override.iter().cloned().collect(),
        stream_override: args.stream.clone(),
        resource_refs: args.resource_ref.iter().cloned().collect(),
        ..TemplateOptions::default()
    };
    let template = Template::load(&args.template, &options).map_err(|e| e.to_string())?;
    for warning in &template.warnings {
        tracing::warn!("template: {warning}");
    }
    Ok(template)
}

/// `--functions` (every template function when empty); unknown names are an error.
fn select_functions<'t>(
    args: &Args,
    template: &'t Template,
) -> Result<Vec<&'t FunctionDef>, String> {
    for wanted in &args.functions {
        if template.function(wanted).is_none() {
            return Err(format!(
                "--functions: {wanted} is not a function in the template"
            ));
        }
    }
    Ok(template
        .functions
        .iter()
        .filter(|f| args.functions.is_empty() || args.functions.contains(&f.name))
        .collect())
}

fn read_env_files(paths: &[PathBuf]) -> Result<EnvFile, String> {
    let mut env = EnvFile::default();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        env.merge_text(&text)
            .map_err(|err| format!("{}: {err}", path.display()))?;
    }
    Ok(env)
}

/// The three ports: API Gateway, the Invoke API front and lambda-host's internal one.
struct Listeners {
    api: TcpListener,
    front: TcpListener,
    inner: TcpListener,
    inner_addr: SocketAddr,
}

impl Listeners {
    async fn bind(args: &Args) -> Result<Self, String> {
        let api = bind(args.api_listen, "API Gateway").await?;
        let front = bind(args.invoke_listen, "Invoke API").await?;
        let inner = bind(SocketAddr::from(([127, 0, 0, 1], 0)), "internal Invoke API").await?;
        let inner_addr = inner
            .local_addr()
            .map_err(|e| format!("internal Invoke API: {e}"))?;
        Ok(Self {
            api,
            front,
            inner,
            inner_addr,
        })
    }
}

/// What the event sources and servers are started from.
struct Workers<'a> {
    args: &'a Args,
    selected: &'a [&'a FunctionDef],
    registry: &'a Arc<FunctionRegistry>,
    invoker: &'a Arc<RegistryInvoker>,
    checkpoints: &'a Arc<CheckpointStore>,
    failures: &'a Arc<FailureLog>,
    status: &'a Arc<StatusBoard>,
    stop: &'a watch::Receiver<bool>,
}

impl Workers<'_> {
    fn available(&self, name: &str) -> bool {
        self.registry.hosted(name).is_some()
    }

    /// One consumer task per enabled Kinesis event of a hosted function (the Kinesis client
    /// is only made when there is one).
    async fn start_kinesis_mappings(&self, tasks: &mut JoinSet<()>) {
        let mappings = self.kinesis_mappings();
        if mappings.is_empty() {
            return;
        }
        let sdk = fleetline_aws::sdk_config().await;
        let deps = Deps {
            source: Arc::new(KinesisSource::new(aws_sdk_kinesis::Client::new(&sdk))),
            invoker: self.invoker.clone(),
            checkpoints: self.checkpoints.clone(),
            failures: self.failures.clone(),
            status: self.status.clone(),
        };
        for config in mappings {
            tracing::info!(function = %config.function, stream = %config.stream,
                batch_size = config.batch_size, window_s = config.batching_window.as_secs(),
                retries = config.max_retry_attempts, bisect = config.bisect_on_error,
                report_batch_item_failures = config.report_batch_item_failures,
                "Kinesis event source mapping");
            let mapping = Mapping::new(config, deps.clone());
            tasks.spawn(mapping.run(self.stop.clone()));
        }
    }

    fn kinesis_mappings(&self) -> Vec<MappingConfig> {
        let mut mappings = Vec::new();
        for function in self.selected {
            for event in &function.events {
                let EventSource::Kinesis(kinesis) = &event.source else {
                    continue;
                };
                if !kinesis.enabled {
                    tracing::info!(function = %function.name, event = %event.name, "Kinesis event disabled in the template");
                } else if self.args.no_kinesis {
                    tracing::info!(function = %function.name, "Kinesis mapping skipped (--no-kinesis)");
                } else if !self.available(&function.name) {
                    tracing::warn!(function = %function.name, "Kinesis mapping skipped: function unavailable");
                } else {
                    let mut config =
                        MappingConfig::from_event(&function.name, kinesis, &self.args.region);
                    config.poll_interval = self.args.poll_interval;
                    mappings.push(config);
                }
            }
        }
        mappings
    }

    /// One task per enabled schedule of a hosted function (`--schedule-override` applied).
    fn start_schedules(&self, tasks: &mut JoinSet<()>, overrides: &BTreeMap<String, String>) {
        for function in self.selected {
            for event in &function.events {
                let EventSource::Schedule(schedule) = &event.source else {
                    continue;
                };
                let expression = overrides
                    .get(&function.name)
                    .cloned()
                    .unwrap_or_else(|| schedule.expression.clone());
                if let Some(task) = self.schedule_task(function, schedule, expression) {
                    tasks.spawn(run_schedule(
                        task,
                        self.invoker.clone(),
                        self.failures.clone(),
                        self.status.clone(),
                        self.stop.clone(),
                    ));
                }
            }
        }
    }

    fn schedule_task(
        &self,
        function: &FunctionDef,
        schedule: &ScheduleEvent,
        expression: String,
    ) -> Option<ScheduleTask> {
        if self.args.no_schedules || expression == "off" || !schedule.enabled {
            tracing::info!(function = %function.name, rule = %schedule.rule_name, "schedule off");
            return None;
        }
        if !self.available(&function.name) {
            tracing::warn!(function = %function.name, "schedule skipped: function unavailable");
            return None;
        }
        let parsed = match Schedule::parse(&expression) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::warn!(function = %function.name, "schedule skipped: {err} \
                    (use --schedule-override {}=rate(...))", function.name);
                return None;
            }
        };
        tracing::info!(function = %function.name, rule = %schedule.rule_name, %expression, "schedule");
        Some(ScheduleTask {
            function: function.name.clone(),
            rule_name: schedule.rule_name.clone(),
            expression,
            schedule: parsed,
            input: schedule.input.clone(),
            region: self.args.region.clone(),
            dead_letter: function.dead_letter_target.clone(),
            retries: 2,
            retry_delay: Duration::from_secs(5),
        })
    }

    /// API Gateway, lambda-host's Invoke API (internal port) and its front (+ status).
    fn start_servers(&self, listeners: Listeners, template: &Template) -> JoinSet<()> {
        let names: Vec<String> = self.selected.iter().map(|f| f.name.clone()).collect();
        let router = Arc::new(Router::from_template(template, Some(&names)));
        for route in router.routes() {
            tracing::info!(method = %route.method, path = %route.resource, function = %route.function, "API route");
        }
        let mut servers = JoinSet::new();
        servers.spawn(api_gateway::serve(
            listeners.api,
            router,
            self.invoker.clone(),
            ApiConfig {
                stage: template.api_stage.clone(),
                api_key: self.args.api_key.clone(),
            },
            stopped(self.stop.clone()),
        ));
        servers.spawn(invoke_api::serve(
            listeners.inner,
            self.registry.clone(),
            self.args.region.clone(),
            stopped(self.stop.clone()),
        ));
        servers.spawn(invoke_front::serve(
            listeners.front,
            listeners.inner_addr,
            self.status.clone(),
            stopped(self.stop.clone()),
        ));
        servers
    }
}

fn report_ready(
    args: &Args,
    registry: &FunctionRegistry,
    status: &StatusBoard,
    checkpoints: &CheckpointStore,
    failures: &FailureLog,
) {
    let functions_info: serde_json::Map<String, serde_json::Value> = registry
        .iter()
        .map(|(name, slot)| {
            let available = matches!(slot, lambda_host::FunctionSlot::Hosted(_));
            (name.to_owned(), json!({"available": available}))
        })
        .collect();
    status.set_info("api", json!(format!("http://{}", args.api_listen)));
    status.set_info("invoke", json!(format!("http://{}", args.invoke_listen)));
    status.set_info(
        "checkpoints",
        json!(checkpoints.path().display().to_string()),
    );
    status.set_info(
        "on_failure_dir",
        json!(failures.dir().display().to_string()),
    );
    status.set_info("functions", serde_json::Value::Object(functions_info));
    tracing::info!(api = %args.api_listen, invoke = %args.invoke_listen,
        state_dir = %args.state_dir.display(), "local-runner ready");
}

/// Consumers finish their in-flight invocation and persist their checkpoint first: waits
/// as long as the slowest event-driven function may take for its last invocation, then for
/// the servers.
async fn drain(mut tasks: JoinSet<()>, mut servers: JoinSet<()>, selected: &[&FunctionDef]) {
    let longest = selected
        .iter()
        .filter(|f| {
            f.events
                .iter()
                .any(|e| matches!(e.source, EventSource::Kinesis(_) | EventSource::Schedule(_)))
        })
        .map(|f| f.timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(5);
    let drained = tokio::time::timeout(longest, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some invocations did not finish in time; they will be redelivered");
        tasks.abort_all();
    }
    while servers.join_next().await.is_some() {}
}
