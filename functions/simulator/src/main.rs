//! `simulator`: a CLI, or a Lambda function when started by the Lambda runtime.

use clap::Parser;
use std::process::ExitCode;

// The SDK and lambda_runtime futures are deep: they are boxed so that main's own future
// stays small (otherwise rustc's layout computation hits its recursion limit).
#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        simulator::lambda::init_tracing();
        let client = aws_sdk_kinesis::Client::new(&fleetline_aws::sdk_config().await);
        return match Box::pin(simulator::lambda::serve(client)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "lambda runtime stopped");
                ExitCode::FAILURE
            }
        };
    }
    let cli = simulator::cli::Cli::parse();
    let client = match cli.kinesis_stream {
        Some(_) => Some(aws_sdk_kinesis::Client::new(
            &fleetline_aws::sdk_config().await,
        )),
        None => None,
    };
    match Box::pin(simulator::cli::run_cli(cli, client)).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simulator: error: {e}");
            ExitCode::FAILURE
        }
    }
}
