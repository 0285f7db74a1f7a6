//! `schema-migrator`: without arguments, the Lambda function behind the
//! `Custom::WarehouseSchema` custom resource; `schema-migrator apply …`, the same migration
//! from the command line (`localstack/apply-sql`, `localstack/up`).
// The Lambda handler's future (SDK calls inside the runtime's service) is deeply nested;
// clippy's layout query needs more than the default depth for it.
#![recursion_limit = "256"]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use fleetline_aws::telemetry::init_tracing;
use fleetline_aws::warehouse::{DATA_API_RETRY, PollConfig, Target};
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, sdk_config};
use lambda_runtime::{LambdaEvent, service_fn};
use schema_migrator::custom_resource::{self, Request};
use schema_migrator::migrate::{self, MigrateError, SqlFile};
use schema_migrator::respond::HttpsResponder;
use schema_migrator::script::normalize_variables;
use serde_json::Value;

/// Time kept back from the Lambda deadline to send the answer to CloudFormation.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);
// The answer must fit into the margin even when the response URL is slow.
const _: () = assert!(
    schema_migrator::respond::MAX_DELIVERY_TIME.as_secs() < ANSWER_MARGIN.as_secs(),
    "ANSWER_MARGIN must cover the response delivery"
);

#[derive(Parser)]
#[command(
    name = "schema-migrator",
    about = "Applies infra/sql through the Redshift Data API: the Custom::WarehouseSchema Lambda \
             (no arguments) or the same migration from the command line (apply)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the SQL files (default: infra/sql as built into this binary).
    Apply(ApplyArgs),
}

#[derive(Args)]
struct ApplyArgs {
    /// Apply the *.sql files of this directory instead of the built-in infra/sql.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Value of a ${NAME} placeholder (repeatable). Local defaults: LAKE_BUCKET=fleetline-lake,
    /// LAKE_PREFIX=vehicle_telematics_raw/, GLUE_DATABASE=fleetline, SPECTRUM_IAM_ROLE=default
    /// (a role ARN is written as a quoted literal, as is STREAMING_IAM_ROLE). A file with a
    /// line `-- fleetline: only NAME=VALUE` is applied only with --var NAME=VALUE (e.g.
    /// SPEED_PATH=streaming-ingestion, which also needs STREAM_NAME).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Re-apply every file, even unchanged ones.
    #[arg(long)]
    force: bool,
    /// Only split the files and print the statements.
    #[arg(long)]
    dry_run: bool,
    /// Use the real AWS endpoint and credential chain (ignores AWS_ENDPOINT_URL*).
    #[arg(long)]
    aws: bool,
    /// Data API endpoint (default: $AWS_ENDPOINT_URL_REDSHIFT_DATA, else the local emulator).
    #[arg(long)]
    endpoint_url: Option<String>,
    #[arg(long)]
    region: Option<String>,
    /// Redshift Serverless workgroup (default: $FLEETLINE_REDSHIFT_WORKGROUP, else fleetline).
    #[arg(long, conflicts_with = "cluster_identifier")]
    workgroup_name: Option<String>,
    /// Provisioned Redshift cluster (default: $FLEETLINE_REDSHIFT_CLUSTER).
    #[arg(long)]
    cluster_identifier: Option<String>,
    /// Database (default: $FLEETLINE_REDSHIFT_DATABASE, else dev).
    #[arg(long, env = "FLEETLINE_REDSHIFT_DATABASE", default_value = "dev")]
    database: String,
    /// Secrets Manager secret with the database credentials.
    #[arg(long)]
    secret_arn: Option<String>,
    /// Database user (provisioned clusters, temporary credentials).
    #[arg(long)]
    db_user: Option<String>,
    /// Longest wait for one statement, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_none() && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        // Not on Lambda (or lambda-host) and no command: say how to use it.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(2);
    }
    if let Some(Command::Apply(args)) = &cli.command
        && args.aws
    {
        // SAFETY: no other thread exists yet (the runtime starts below), so changing the
        // environment cannot race with a reader.
        unsafe { std::env::set_var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true") };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("schema-migrator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Apply(args)) => runtime.block_on(apply_command(args)),
        None => match runtime.block_on(lambda()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("schema-migrator: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn lambda() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let responder = HttpsResponder::new()?;
    // The target comes with each request (the `Warehouse` property, else the environment),
    // so the client is built per request; the SDK configuration once.
    let sdk = sdk_config().await;
    let files = schema_migrator::bundled_files();
    tracing::info!(
        bundle_sha256 = %schema_migrator::bundle_sha256(),
        files = files.len(),
        "schema-migrator ready"
    );
    let (sdk, responder, files) = (&sdk, &responder, files.as_slice());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(ANSWER_MARGIN);
        let request: Request = serde_json::from_value(event.payload)
            .map_err(|e| format!("not a CloudFormation custom resource request: {e}"))?;
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        // A bad configuration is reported to CloudFormation (FAILED; SUCCESS for Delete)
        // rather than failing the invocation, which would leave the stack waiting for the
        // resource's ServiceTimeout.
        let answered = match custom_resource::warehouse_config(&request.resource_properties, |k| {
            std::env::var(k).ok()
        }) {
            Ok(config) => {
                let physical_id = physical_id(&config);
                let warehouse = DataApiWarehouse::from_sdk_config(sdk, config);
                custom_resource::handle(
                    &warehouse,
                    responder,
                    files,
                    &request,
                    &physical_id,
                    budget,
                    &now,
                )
                .await
            }
            Err(e) => {
                custom_resource::answer_unrunnable(
                    responder,
                    &request,
                    "warehouse-schema:unconfigured",
                    &format!("schema-migrator configuration: {e}"),
                )
                .await
            }
        };
        answered
        .map(|answer| serde_json::json!({"Status": format!("{:?}", answer.status), "Reason": answer.reason}))
        .map_err(lambda_runtime::Error::from)
    }))
    .await
}

/// Stable for one warehouse and database: an Update keeps it, so CloudFormation never
/// treats an Update as a replacement.
fn physical_id(config: &WarehouseConfig) -> String {
    let target = match &config.target {
        Target::Workgroup(name) => format!("workgroup/{name}"),
        Target::Cluster { identifier, .. } => format!("cluster/{identifier}"),
    };
    format!("warehouse-schema:{target}/{}", config.database)
}

fn parse_vars(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut vars = schema_migrator::local_defaults();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .filter(|(n, _)| {
                !n.is_empty()
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !n.starts_with(|c: char| c.is_ascii_digit())
            })
            .ok_or_else(|| format!("--var {pair:?}: expected NAME=VALUE"))?;
        vars.insert(name.to_owned(), value.to_owned());
    }
    normalize_variables(&mut vars).map_err(|e| e.to_string())?;
    Ok(vars)
}

fn read_dir(dir: &Path) -> Result<Vec<SqlFile>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() && path.extension().is_some_and(|x| x == "sql") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(SqlFile::new(name, text));
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

async fn apply_command(args: ApplyArgs) -> ExitCode {
    let fail = |code: u8, msg: &str| {
        eprintln!("apply-sql: {msg}");
        ExitCode::from(code)
    };
    let vars = match parse_vars(&args.vars) {
        Ok(v) => v,
        Err(e) => return fail(2, &e),
    };
    let files = match &args.dir {
        Some(dir) => match read_dir(dir) {
            Ok(f) => f,
            Err(e) => return fail(2, &format!("cannot read the SQL directory: {e}")),
        },
        None => schema_migrator::bundled_files(),
    };
    if args.dry_run {
        let prepared = match migrate::prepare(&files, &vars) {
            Ok(p) => p,
            Err(e) => return fail(1, &e.to_string()),
        };
        for f in prepared {
            println!("-- {}: {} statement(s)", f.name, f.statements.len());
            for (i, s) in f.statements.iter().enumerate() {
                println!("-- [{}]\n{s};", i + 1);
            }
        }
        return ExitCode::SUCCESS;
    }

    let target = match (&args.cluster_identifier, &args.workgroup_name) {
        (Some(cluster), _) => Target::Cluster {
            identifier: cluster.clone(),
            db_user: args.db_user.clone(),
        },
        (None, Some(wg)) => Target::Workgroup(wg.clone()),
        (None, None) => match env_nonempty("FLEETLINE_REDSHIFT_CLUSTER") {
            Some(cluster) => Target::Cluster {
                identifier: cluster,
                db_user: args.db_user.clone(),
            },
            None => Target::Workgroup(
                env_nonempty("FLEETLINE_REDSHIFT_WORKGROUP").unwrap_or_else(|| "fleetline".into()),
            ),
        },
    };
    if args.db_user.is_some() && matches!(target, Target::Workgroup(_)) {
        return fail(
            2,
            "--db-user only applies to a provisioned cluster (--cluster-identifier)",
        );
    }
    let config = WarehouseConfig {
        target,
        database: args.database.clone(),
        secret_arn: args.secret_arn.clone(),
        poll: PollConfig {
            timeout: Duration::from_secs(args.timeout_secs.max(1)),
            max: Duration::from_secs(1),
            ..PollConfig::default()
        },
        retry: DATA_API_RETRY,
    };
    let sdk = sdk_config().await;
    let mut conf = aws_sdk_redshiftdata::config::Builder::from(&sdk);
    if let Some(region) = &args.region {
        conf = conf.region(aws_sdk_redshiftdata::config::Region::new(region.clone()));
    }
    let endpoint = (!args.aws).then(|| {
        args.endpoint_url
            .clone()
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL_REDSHIFT_DATA"))
            .unwrap_or_else(|| {
                let port = env_nonempty("FLEETLINE_EMULATOR_PORT").unwrap_or_else(|| "4599".into());
                format!("http://127.0.0.1:{port}")
            })
    });
    if let Some(endpoint) = &endpoint {
        // The local stack accepts any credentials; do not make a developer configure some.
        conf = conf.endpoint_url(endpoint.clone());
        if env_nonempty("AWS_ACCESS_KEY_ID").is_none() {
            conf = conf.credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "local",
            ));
        }
        if args.region.is_none() && sdk.region().is_none() {
            conf = conf.region(aws_sdk_redshiftdata::config::Region::new("us-east-1"));
        }
    }
    let client = aws_sdk_redshiftdata::Client::from_conf(conf.build());
    let warehouse = DataApiWarehouse::new(&client, config);
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let started = std::time::Instant::now();
    let mut progress = |line: &str| println!("  {line}");
    match migrate::apply(&warehouse, &files, &vars, args.force, &now, &mut progress).await {
        Ok(outcome) => {
            println!(
                "  apply-sql: {} file(s) applied, {} unchanged ({:.1}s)",
                outcome.applied.len(),
                outcome.skipped.len(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apply-sql: FAILED: {e}");
            if let (Some(endpoint), MigrateError::Bookkeeping { .. }) = (&endpoint, &e) {
                eprintln!(
                    "apply-sql: is the local stack running at {endpoint} (localstack/up)? For real AWS pass --aws."
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}
