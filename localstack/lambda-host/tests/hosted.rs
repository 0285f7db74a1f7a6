//! HostedFunction against a real lambda_runtime binary (src/bin/echo-fn.rs).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{echo_spec, process_alive};
use lambda_host::{FunctionSpec, HostError, HostedFunction, InvokeOutcome};
use serde_json::{Value, json};

async fn invoke_ok(function: &HostedFunction, event: Value) -> Value {
    match function.invoke_json(&event).await {
        Ok(InvokeOutcome::Ok(body)) => serde_json::from_slice(&body).expect("JSON response"),
        other => panic!("expected a response for {event}, got {other:?}"),
    }
}

fn pid_of(response: &Value) -> u64 {
    response["pid"].as_u64().expect("pid")
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test]
async fn echo_round_trip_with_lambda_context() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/echo.log");
    let spec = echo_spec("echo").with_log_file(&log);
    let timeout_ms = spec.timeout.as_millis();
    let function = HostedFunction::start(spec).await.unwrap();

    let event = json!({"action": "echo", "vin": "1HGCM82633A004352", "readings": [1, 2, 3]});
    let before = now_ms();
    let outcome = function
        .invoke_with_request_id("req-0001", Bytes::from(event.to_string()))
        .await
        .unwrap();
    let after = now_ms();
    let InvokeOutcome::Ok(body) = outcome else {
        panic!("expected Ok, got {outcome:?}");
    };
    let response: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(response["event"], event);
    assert_eq!(response["request_id"], "req-0001");
    assert_eq!(
        response["function_arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    // The deadline is "picked up + timeout", and pick-up happened inside [before, after].
    let deadline = u128::from(response["deadline_ms"].as_u64().unwrap());
    assert!(deadline >= before + timeout_ms && deadline <= after + timeout_ms);

    // Warm: the second invocation runs in the same process.
    let again = invoke_ok(&function, json!({"n": 2})).await;
    assert_eq!(again["event"], json!({"n": 2}));
    assert_eq!(pid_of(&again), pid_of(&response));

    function.shutdown(Duration::from_secs(2)).await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains(&format!("echo-fn: init pid {}", pid_of(&response))),
        "{log_text}"
    );
}

#[tokio::test]
async fn lambda_environment_variables_are_set() {
    let spec = echo_spec("env-check")
        .with_memory_mb(256)
        .with_region("eu-west-1")
        .with_env("FLEETLINE_CUSTOM", "custom value");
    let function = HostedFunction::start(spec).await.unwrap();
    let names = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "FLEETLINE_CUSTOM",
    ];
    let env = invoke_ok(&function, json!({"action": "env", "names": names})).await;
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "env-check");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/env-check");
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("/[$LATEST]")
    );
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["FLEETLINE_CUSTOM"], "custom value");
    // The ARN the runtime sees follows the region.
    let echo = invoke_ok(&function, json!({})).await;
    assert_eq!(
        echo["function_arn"],
        "arn:aws:lambda:eu-west-1:000000000000:function:env-check"
    );
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn function_error_surfaces_type_and_message() {
    let function = HostedFunction::start(echo_spec("errors")).await.unwrap();
    let outcome = function
        .invoke_json(&json!({"action": "error", "error_type": "ValidationError", "message": "speed is negative"}))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        InvokeOutcome::FunctionError {
            error_type: "ValidationError".to_owned(),
            error_message: "speed is negative".to_owned(),
        }
    );
    // A handler error leaves the environment warm.
    let first = invoke_ok(&function, json!({})).await;
    let second = invoke_ok(&function, json!({})).await;
    assert_eq!(pid_of(&first), pid_of(&second));
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn panic_is_a_function_error_and_the_next_invoke_works() {
    let function = HostedFunction::start(echo_spec("panics")).await.unwrap();
    let outcome = function
        .invoke_json(&json!({"action": "panic", "message": "odometer went backwards"}))
        .await
        .unwrap();
    let InvokeOutcome::FunctionError { error_message, .. } = &outcome else {
        panic!("expected a function error, got {outcome:?}");
    };
    assert!(
        error_message.contains("odometer went backwards"),
        "{outcome:?}"
    );
    let next = invoke_ok(&function, json!({"after": "panic"})).await;
    assert_eq!(next["event"], json!({"after": "panic"}));
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn crash_mid_invocation_reports_status_and_respawns() {
    let function = HostedFunction::start(echo_spec("crashes")).await.unwrap();
    let before = pid_of(&invoke_ok(&function, json!({})).await);
    let err = function
        .invoke_json(&json!({"action": "exit", "code": 7}))
        .await
        .unwrap_err();
    let HostError::Crashed {
        status,
        stderr_tail,
        ..
    } = &err
    else {
        panic!("expected Crashed, got {err:?}");
    };
    assert_eq!(status.code(), Some(7));
    assert!(
        stderr_tail.contains("exiting with status 7"),
        "{stderr_tail}"
    );
    let (error_type, message) = err.lambda_error("rid").unwrap();
    assert_eq!(error_type, "Runtime.ExitError");
    assert_eq!(
        message,
        "RequestId: rid Error: Runtime exited with error: exit status: 7"
    );

    let after = invoke_ok(&function, json!({"after": "crash"})).await;
    assert_eq!(after["event"], json!({"after": "crash"}));
    assert_ne!(
        pid_of(&after),
        before,
        "a fresh process serves the next invocation"
    );
    assert!(!process_alive(u32::try_from(before).unwrap()));
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn timeout_kills_the_process_and_the_next_invoke_works() {
    let spec = echo_spec("sleepy").with_timeout(Duration::from_secs(1));
    let function = HostedFunction::start(spec).await.unwrap();
    let before = pid_of(&invoke_ok(&function, json!({})).await);
    let err = function
        .invoke_json(&json!({"action": "sleep", "ms": 60_000}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HostError::Timeout { timeout, .. } if *timeout == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(
        err.lambda_error("rid"),
        Some((
            "Sandbox.Timedout".to_owned(),
            "RequestId: rid Error: Task timed out after 1.00 seconds".to_owned()
        ))
    );
    assert!(
        !process_alive(u32::try_from(before).unwrap()),
        "the timed-out process is killed"
    );

    let after = invoke_ok(&function, json!({"after": "timeout"})).await;
    assert_eq!(after["event"], json!({"after": "timeout"}));
    assert_ne!(pid_of(&after), before);
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn init_failure_is_reported_on_every_invoke() {
    let spec = echo_spec("broken").with_env("ECHO_FN_FAIL_INIT", "1");
    let function = HostedFunction::start(spec).await.unwrap();
    for _ in 0..2 {
        let err = function.invoke_json(&json!({})).await.unwrap_err();
        let HostError::InitFailed {
            error_type,
            error_message,
            stderr_tail,
            ..
        } = &err
        else {
            panic!("expected InitFailed, got {err:?}");
        };
        assert_eq!(error_type, "Runtime.ExitError");
        assert_eq!(error_message, "Runtime exited with error: exit status: 3");
        assert!(
            stderr_tail.contains("init failure requested"),
            "{stderr_tail}"
        );
    }
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn concurrent_invocations_queue_on_one_process() {
    let function = std::sync::Arc::new(HostedFunction::start(echo_spec("queued")).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..4 {
        let function = function.clone();
        tasks.push(tokio::spawn(async move {
            invoke_ok(&function, json!({"action": "sleep", "ms": 50, "i": i})).await
        }));
    }
    let mut pids = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let response = task.await.unwrap();
        assert_eq!(response["event"]["i"], i);
        pids.push(pid_of(&response));
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one execution environment served them all");
    function.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn shutdown_stops_the_process_and_refuses_invocations() {
    let function = HostedFunction::start(echo_spec("stopping")).await.unwrap();
    let pid = pid_of(&invoke_ok(&function, json!({})).await);
    assert!(process_alive(u32::try_from(pid).unwrap()));
    function.shutdown(Duration::from_secs(2)).await;
    assert!(!process_alive(u32::try_from(pid).unwrap()));
    let err = function.invoke_json(&json!({})).await.unwrap_err();
    assert!(matches!(err, HostError::ShutDown { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_binary_fails_to_start() {
    let spec = FunctionSpec::new("ghost", "/nonexistent/ghost").with_forward_output(false);
    let err = HostedFunction::start(spec)
        .await
        .err()
        .expect("start must fail");
    assert!(matches!(err, HostError::Spawn { .. }), "{err:?}");
}
