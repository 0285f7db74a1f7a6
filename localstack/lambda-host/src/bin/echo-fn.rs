//! Test function for lambda-host's tests: a real lambda_runtime program whose behaviour
//! is chosen by the event's `action`.
//!
//! - `echo` (default): `{"event", "request_id", "function_arn", "deadline_ms", "pid"}`
//! - `error`: handler error with `error_type` / `message`
//! - `panic`: panics with `message` (lambda_runtime reports it as a function error)
//! - `exit`: `std::process::exit(code)` mid-invocation (a crash)
//! - `sleep`: sleeps `ms` milliseconds, then echoes
//! - `env`: returns the values of the variables listed in `names`
//!
//! With `ECHO_FN_FAIL_INIT=1` it exits with status 3 before starting the runtime.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var("ECHO_FN_FAIL_INIT").as_deref() == Ok("1") {
        eprintln!("echo-fn: init failure requested by ECHO_FN_FAIL_INIT");
        std::process::exit(3);
    }
    eprintln!("echo-fn: init pid {}", std::process::id());
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    let text = |key: &str, default: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    match payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("echo")
    {
        "error" => Err(Diagnostic {
            error_type: text("error_type", "EchoError"),
            error_message: text("message", "requested error"),
        }),
        "panic" => panic!("{}", text("message", "requested panic")),
        "exit" => {
            let code = payload.get("code").and_then(Value::as_i64).unwrap_or(1);
            eprintln!("echo-fn: exiting with status {code} mid-invocation");
            std::process::exit(i32::try_from(code).unwrap_or(1));
        }
        "env" => {
            let names = payload
                .get("names")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let values: serde_json::Map<String, Value> = names
                .iter()
                .filter_map(Value::as_str)
                .map(|name| {
                    (
                        name.to_owned(),
                        std::env::var(name).map_or(Value::Null, Value::from),
                    )
                })
                .collect();
            Ok(Value::Object(values))
        }
        action => {
            if action == "sleep" {
                let ms = payload.get("ms").and_then(Value::as_u64).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok(json!({
                "event": payload,
                "request_id": context.request_id,
                "function_arn": context.invoked_function_arn,
                "deadline_ms": context.deadline,
                "pid": std::process::id(),
            }))
        }
    }
}
