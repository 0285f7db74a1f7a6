//! `redshift-data-emulator`: a local Amazon Redshift Data API over PostgreSQL.

mod aws_access;
mod calls;
mod catalog_cache;
mod conn;
mod error;
mod executor;
mod external;
mod faults;
mod formats;
mod lake;
mod lexer;
mod ops;
mod params;
mod pool;
mod protocol;
mod server;
mod sql_translate;
mod store;
mod streaming;
mod strict;
mod super_ddl;
mod super_sql;
mod values;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(version, about = "Local Amazon Redshift Data API over PostgreSQL")]
struct Args {
    /// Address to serve the Data API on.
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// libpq-style connection string of the PostgreSQL server (the database is taken
    /// from each request's `Database`).
    #[arg(
        long,
        env = "EMULATOR_POSTGRES",
        default_value = "host=127.0.0.1 port=5433 user=postgres"
    )]
    postgres: String,
    /// S3 endpoint holding the external tables' data (LocalStack).
    #[arg(
        long,
        env = "EMULATOR_S3_ENDPOINT",
        default_value = "http://127.0.0.1:4566"
    )]
    s3_endpoint: String,
    /// Kinesis endpoint streaming ingestion reads (LocalStack); default
    /// AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL, else the S3 endpoint.
    #[arg(long, env = "EMULATOR_KINESIS_ENDPOINT")]
    kinesis_endpoint: Option<String>,
    /// Statements that may be running at once (ActiveStatementsExceededException beyond).
    #[arg(long, env = "EMULATOR_MAX_ACTIVE_STATEMENTS", default_value_t = 200)]
    max_active_statements: usize,
    /// PostgreSQL connections per database.
    #[arg(long, env = "EMULATOR_MAX_CONNECTIONS", default_value_t = 16)]
    max_connections: usize,
    /// How long finished statements and their results are kept.
    #[arg(long, env = "EMULATOR_RETENTION_SECS", default_value_t = 24 * 3600)]
    retention_secs: i64,
    /// Most statements kept in memory (oldest finished ones are evicted first).
    #[arg(long, env = "EMULATOR_MAX_STATEMENTS", default_value_t = 10_000)]
    max_statements: usize,
    /// Refuse what Amazon Redshift refuses and run transactions under snapshot isolation
    /// (see src/strict.rs); `--strict false` / `EMULATOR_STRICT=false` runs plain
    /// PostgreSQL semantics, e.g. to debug a statement.
    #[arg(long, env = "EMULATOR_STRICT", default_value_t = true, action = clap::ArgAction::Set)]
    strict: bool,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let pg = tokio_postgres::Config::from_str(&args.postgres)?;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    let (access_key, secret_key) = (
        env_or("AWS_ACCESS_KEY_ID", "test"),
        env_or("AWS_SECRET_ACCESS_KEY", "test"),
    );
    let aws = aws_access::AwsAccess::new(&region, &access_key, &secret_key);
    let lake = lake::Lake::new(&args.s3_endpoint, &aws);
    let kinesis_endpoint = args.kinesis_endpoint.clone().unwrap_or_else(|| {
        env_or(
            "AWS_ENDPOINT_URL_KINESIS",
            &env_or("AWS_ENDPOINT_URL", &args.s3_endpoint),
        )
    });
    let kinesis = streaming::Kinesis::new(&kinesis_endpoint, &aws);
    let engine = Arc::new(executor::Engine {
        pools: pool::Pools::new(pg, args.max_connections.max(1), args.strict),
        lake,
        store: store::Store::new(
            chrono::Duration::seconds(args.retention_secs),
            args.max_statements.max(1),
        ),
        strict: args.strict,
        kinesis,
        catalogs: catalog_cache::CatalogCache::default(),
    });
    let app = Arc::new(server::App {
        engine,
        limits: ops::Limits {
            max_active: args.max_active_statements.max(1),
        },
        faults: faults::Faults::default(),
        calls: calls::Calls::default(),
    });
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, s3 = %args.s3_endpoint, strict = args.strict, "redshift-data-emulator listening");
    local_http::serve(listener, server::router(app), async {
        local_http::shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    Ok(())
}
