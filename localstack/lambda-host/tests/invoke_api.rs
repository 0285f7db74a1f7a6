//! The Lambda Invoke API over HTTP: in-process (library) and as the `lambda-host` binary.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{echo_fn, echo_spec, http, process_alive};
use lambda_host::{FunctionRegistry, HostedFunction, invoke_api};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const INVOKE: &str = "/2015-03-31/functions";

struct Server {
    addr: SocketAddr,
    registry: Arc<FunctionRegistry>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Self {
        let mut registry = FunctionRegistry::new();
        let spec = echo_spec("echo").with_timeout(Duration::from_secs(1));
        registry.insert_hosted(HostedFunction::start(spec).await.unwrap());
        registry.insert_unavailable("ghost", "binary /bins/ghost not found");
        let registry = Arc::new(registry);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(invoke_api::serve(
            listener,
            registry.clone(),
            "us-east-1".to_owned(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            registry,
            stop: Some(stop),
            task,
        }
    }

    async fn invoke(
        &self,
        name: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> common::HttpResponse {
        let path = format!("{INVOKE}/{name}/invocations");
        http(
            self.addr,
            "POST",
            &path,
            headers,
            body.to_string().as_bytes(),
        )
        .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
        self.registry.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn request_response_returns_the_function_response() {
    let server = Server::start().await;
    let event = json!({"vin": "WVW123", "speed": 88.5});
    let response = server.invoke("echo", &[], &event).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(response.header("x-amz-function-error"), None);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["event"], event);
    // The request id in the header is the one the function saw.
    assert_eq!(
        response.header("x-amzn-requestid"),
        body["request_id"].as_str()
    );

    // ARN form, percent-encoded as SDKs send it, with the $LATEST qualifier.
    let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho%3A%24LATEST";
    let by_arn = server.invoke(arn, &[], &json!({"by": "arn"})).await;
    assert_eq!(by_arn.status, 200);
    assert_eq!(by_arn.json()["event"], json!({"by": "arn"}));

    // An empty body is the empty event.
    let empty = http(
        server.addr,
        "POST",
        &format!("{INVOKE}/echo/invocations"),
        &[],
        b"",
    )
    .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["event"], json!({}));
    server.stop().await;
}

#[tokio::test]
async fn function_errors_are_unhandled_with_the_error_payload() {
    let server = Server::start().await;
    let response = server
        .invoke(
            "echo",
            &[],
            &json!({"action": "error", "error_type": "BadBatch", "message": "no records"}),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        response.json(),
        json!({"errorMessage": "no records", "errorType": "BadBatch"})
    );

    let timed_out = server
        .invoke("echo", &[], &json!({"action": "sleep", "ms": 60_000}))
        .await;
    assert_eq!(timed_out.status, 200);
    assert_eq!(timed_out.header("x-amz-function-error"), Some("Unhandled"));
    let body = timed_out.json();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    let request_id = timed_out.header("x-amzn-requestid").unwrap();
    assert_eq!(
        body["errorMessage"],
        format!("RequestId: {request_id} Error: Task timed out after 1.00 seconds")
    );

    let crashed = server
        .invoke("echo", &[], &json!({"action": "exit", "code": 2}))
        .await;
    assert_eq!(crashed.status, 200);
    assert_eq!(crashed.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(crashed.json()["errorType"], "Runtime.ExitError");

    // And the function still answers afterwards.
    let ok = server.invoke("echo", &[], &json!({"still": "alive"})).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["event"], json!({"still": "alive"}));
    server.stop().await;
}

/// `/_fleetline/faults`: an armed crash SIGKILLs the process after it took the event (at
/// its answer, or `after_ms` into the invocation); the caller sees Runtime.ExitError, the
/// next invocation gets a fresh process, and the counts say what happened.
#[tokio::test]
async fn injected_crashes_kill_the_process_and_are_counted() {
    let server = Server::start().await;
    let faults = |method: &'static str, body: Value| {
        let addr = server.addr;
        async move {
            let b = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            http(addr, method, "/_fleetline/faults", &[], &b).await
        }
    };
    let state = faults("GET", Value::Null).await;
    assert_eq!(state.status, 200);
    assert_eq!(
        state.json(),
        json!({"functions": {"echo": {"armed": 0, "after_ms": null, "crashed": 0}}})
    );
    let before = server.invoke("echo", &[], &json!({})).await.json()["pid"]
        .as_u64()
        .unwrap() as u32;

    // At the answer: the function ran to completion, its answer is lost with the process.
    let armed = faults("POST", json!({"crash": {"function": "echo"}})).await;
    assert_eq!(
        armed.status,
        200,
        "{}",
        String::from_utf8_lossy(&armed.body)
    );
    assert_eq!(armed.json()["functions"]["echo"]["armed"], 1);
    let crashed = server.invoke("echo", &[], &json!({"n": 1})).await;
    assert_eq!(crashed.status, 200);
    assert_eq!(crashed.header("x-amz-function-error"), Some("Unhandled"));
    let body = crashed.json();
    assert_eq!(body["errorType"], "Runtime.ExitError", "{body}");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("signal: 9"),
        "{body}"
    );
    assert!(
        !process_alive(before),
        "the crashed process is still running"
    );
    let after = server.invoke("echo", &[], &json!({"n": 2})).await;
    assert_eq!(after.header("x-amz-function-error"), None);
    assert_ne!(after.json()["pid"].as_u64().unwrap() as u32, before);

    // `after_ms` into a long invocation: killed long before the handler would answer.
    faults(
        "POST",
        json!({"crash": {"function": "echo", "invocations": 2, "after_ms": 50}}),
    )
    .await;
    let started = std::time::Instant::now();
    let slow = server
        .invoke("echo", &[], &json!({"action": "sleep", "ms": 800}))
        .await;
    assert_eq!(slow.json()["errorType"], "Runtime.ExitError");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    let state = faults("GET", Value::Null).await.json();
    assert_eq!(state["functions"]["echo"]["armed"], 1);
    assert_eq!(state["functions"]["echo"]["after_ms"], 50);
    assert_eq!(state["functions"]["echo"]["crashed"], 2);

    // DELETE disarms what is left; the counts stay.
    let cleared = faults("DELETE", Value::Null).await.json();
    assert_eq!(cleared["functions"]["echo"]["armed"], 0);
    assert_eq!(cleared["functions"]["echo"]["crashed"], 2);
    let ok = server.invoke("echo", &[], &json!({"n": 3})).await;
    assert_eq!(ok.header("x-amz-function-error"), None);

    // Bad requests.
    assert_eq!(
        faults("POST", json!({"crash": {"function": "nope"}}))
            .await
            .status,
        404
    );
    assert_eq!(
        faults("POST", json!({"crash": {"function": "ghost"}}))
            .await
            .status,
        404
    );
    assert_eq!(faults("POST", json!({"throttle": {}})).await.status, 400);
    assert_eq!(faults("PUT", Value::Null).await.status, 405);
    server.stop().await;
}

#[tokio::test]
async fn event_and_dry_run_invocation_types() {
    let server = Server::start().await;
    let event = server
        .invoke(
            "echo",
            &[("x-amz-invocation-type", "Event")],
            &json!({"async": true}),
        )
        .await;
    assert_eq!(event.status, 202);
    assert!(event.body.is_empty());

    let dry = server
        .invoke("echo", &[("x-amz-invocation-type", "DryRun")], &json!({}))
        .await;
    assert_eq!(dry.status, 204);

    let bad = server
        .invoke(
            "echo",
            &[("x-amz-invocation-type", "Sometimes")],
            &json!({}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.header("x-amzn-errortype"),
        Some("InvalidParameterValueException")
    );

    // Queued behind the asynchronous one, then served.
    let sync = server.invoke("echo", &[], &json!({"sync": true})).await;
    assert_eq!(sync.status, 200);
    assert_eq!(sync.json()["event"], json!({"sync": true}));
    server.stop().await;
}

#[tokio::test]
async fn unknown_unavailable_and_invalid_requests() {
    let server = Server::start().await;
    let missing = server.invoke("nope", &[], &json!({})).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        missing.json(),
        json!({"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"})
    );

    let versioned = http(
        server.addr,
        "POST",
        &format!("{INVOKE}/echo/invocations?Qualifier=7"),
        &[],
        b"{}",
    )
    .await;
    assert_eq!(versioned.status, 404);
    assert_eq!(
        versioned.json()["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:echo:7"
    );

    let ghost = server.invoke("ghost", &[], &json!({})).await;
    assert_eq!(ghost.status, 502);
    assert_eq!(
        ghost.header("x-amzn-errortype"),
        Some("ResourceNotReadyException")
    );
    let message = ghost.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("binary /bins/ghost not found"),
        "{message}"
    );

    let not_json = http(
        server.addr,
        "POST",
        &format!("{INVOKE}/echo/invocations"),
        &[],
        b"{oops",
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(
        not_json.header("x-amzn-errortype"),
        Some("InvalidRequestContentException")
    );

    let health = http(server.addr, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["functions"]["echo"]["available"], true);
    assert_eq!(health["functions"]["ghost"]["available"], false);

    let unknown_route = http(server.addr, "GET", "/2015-03-31/functions", &[], b"").await;
    assert_eq!(unknown_route.status, 404);
    server.stop().await;
}

/// The real binary: CLI flags, env file sections, unavailable functions, SIGTERM.
#[tokio::test]
async fn lambda_host_binary_serves_the_invoke_api() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("functions.env");
    std::fs::write(
        &env_file,
        "FLEETLINE_SHARED=everyone\n[echo-fn]\nFLEETLINE_OWN=\"only echo\"\n",
    )
    .unwrap();
    let log_dir = dir.path().join("logs");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let bin_dir = echo_fn().parent().unwrap().to_path_buf();
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_lambda-host"))
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--functions")
        .arg("echo-fn,not-built-fn")
        .arg("--env-file")
        .arg(&env_file)
        .arg("--log-dir")
        .arg(&log_dir)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Wait until it listens (bounded: 30 s).
    let mut ready = false;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "lambda-host did not start listening on {addr}");

    let health = http(addr, "GET", "/health", &[], b"").await.json();
    assert_eq!(health["functions"]["echo-fn"]["available"], true);
    assert_eq!(health["functions"]["not-built-fn"]["available"], false);

    let names = [
        "FLEETLINE_SHARED",
        "FLEETLINE_OWN",
        "AWS_LAMBDA_FUNCTION_NAME",
    ];
    let response = http(
        addr,
        "POST",
        &format!("{INVOKE}/echo-fn/invocations"),
        &[],
        json!({"action": "env", "names": names})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"FLEETLINE_SHARED": "everyone", "FLEETLINE_OWN": "only echo", "AWS_LAMBDA_FUNCTION_NAME": "echo-fn"})
    );
    let pid = http(
        addr,
        "POST",
        &format!("{INVOKE}/echo-fn/invocations"),
        &[],
        b"{}",
    )
    .await
    .json()["pid"]
        .as_u64()
        .unwrap();

    let unbuilt = http(
        addr,
        "POST",
        &format!("{INVOKE}/not-built-fn/invocations"),
        &[],
        b"{}",
    )
    .await;
    assert_eq!(unbuilt.status, 502);
    assert!(
        unbuilt.json()["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{:?}",
        unbuilt.body
    );

    // SIGTERM: lambda-host stops its functions and exits cleanly.
    let host_pid = i32::try_from(host.id().unwrap()).unwrap();
    unsafe {
        libc::kill(host_pid, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), host.wait())
        .await
        .expect("lambda-host exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!process_alive(u32::try_from(pid).unwrap()));

    let log = std::fs::read_to_string(log_dir.join("echo-fn.log")).unwrap();
    assert!(log.contains(&format!("echo-fn: init pid {pid}")), "{log}");
}
