//! The Lambda Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`) over a
//! [`FunctionRegistry`], with the status codes, headers and error shapes of the real
//! service (botocore's lambda 2015-03-31 model), plus `GET /health` and, for tests,
//! `GET|POST|DELETE /_fleetline/faults` (crash injection, see `faults.rs`).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use local_http::{BodyError, body, get_or, json_response, with_headers};
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::{HostError, InvokeOutcome};
use crate::faults::CrashPoint;
use crate::hosted::HostedFunction;
use crate::registry::{FunctionRegistry, FunctionSlot};
use crate::spec::{LATEST, function_arn};

/// Synchronous request payload limit (6 MB).
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Asynchronous (`Event`) payload limit (1 MB).
const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Fault requests are small.
const MAX_FAULT_BODY: usize = 64 * 1024;
/// Fault injection (tests only).
pub const FAULTS_PATH: &str = "/_fleetline/faults";

/// Serves the Invoke API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<FunctionRegistry>,
    region: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    local_http::serve(listener, router(registry, region), shutdown).await;
}

/// The Invoke API's routes; anything else is 404 `UnknownOperationException`.
fn router(registry: Arc<FunctionRegistry>, region: String) -> Router {
    Router::new()
        .route("/health", get_or(health, unknown_operation))
        .route(
            FAULTS_PATH,
            get_or(faults, faults_method_not_allowed)
                .post(arm_faults)
                .delete(disarm_faults)
                .layer(DefaultBodyLimit::max(MAX_FAULT_BODY)),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            any(unknown_operation)
                .post(invoke)
                .layer(DefaultBodyLimit::max(MAX_SYNC_PAYLOAD)),
        )
        .fallback(unknown_operation)
        .with_state(Arc::new(Api { registry, region }))
}

struct Api {
    registry: Arc<FunctionRegistry>,
    region: String,
}

type ApiState = State<Arc<Api>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    /// `X-Amz-Invocation-Type` (default RequestResponse); `Err` names an unsupported value.
    fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        match headers
            .get("x-amz-invocation-type")
            .map(|v| v.to_str().unwrap_or(""))
        {
            None | Some("RequestResponse") => Ok(Self::RequestResponse),
            Some("Event") => Ok(Self::Event),
            Some("DryRun") => Ok(Self::DryRun),
            Some(other) => Err(other.to_owned()),
        }
    }

    fn payload_limit(self) -> usize {
        match self {
            Self::Event => MAX_ASYNC_PAYLOAD,
            _ => MAX_SYNC_PAYLOAD,
        }
    }
}

async fn unknown_operation(method: Method, uri: Uri) -> Response {
    aws_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "message",
        &format!("Unknown operation {method} {}", uri.path()),
    )
}

async fn health(State(api): ApiState) -> Response {
    let functions: serde_json::Map<String, serde_json::Value> = api
        .registry
        .iter()
        .map(|(name, slot)| {
            let value = match slot {
                FunctionSlot::Hosted(_) => json!({"available": true}),
                FunctionSlot::Unavailable { reason } => {
                    json!({"available": false, "reason": reason})
                }
            };
            (name.to_owned(), value)
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"status": "ok", "functions": functions}).to_string(),
    )
}

/// `GET /_fleetline/faults`: every hosted function's crash state.
async fn faults(State(api): ApiState) -> Response {
    let functions: serde_json::Map<String, serde_json::Value> = api
        .registry
        .iter()
        .filter_map(|(name, slot)| match slot {
            FunctionSlot::Hosted(function) => Some((name.to_owned(), function.crash_state())),
            FunctionSlot::Unavailable { .. } => None,
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "functions": functions }).to_string(),
    )
}

/// `POST {"crash": {"function", "invocations" (default 1), "after_ms" (optional)}}`: arms
/// a crash, answers like `GET`.
async fn arm_faults(State(api): ApiState, payload: Result<Bytes, BytesRejection>) -> Response {
    let body = match body(payload) {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return fault_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        Err(BodyError::Read(err)) => return fault_error(StatusCode::BAD_REQUEST, &err),
    };
    let request = match parse_crash_request(&body) {
        Ok(request) => request,
        Err(message) => return fault_error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(function) = api.registry.hosted(&request.function) else {
        return fault_error(
            StatusCode::NOT_FOUND,
            &format!("no hosted function {}", request.function),
        );
    };
    function.arm_crash(request.invocations, request.point);
    faults(State(api)).await
}

/// `DELETE`: disarms every crash, answers like `GET`.
async fn disarm_faults(State(api): ApiState) -> Response {
    for (_, slot) in api.registry.iter() {
        if let FunctionSlot::Hosted(function) = slot {
            function.disarm_crash();
        }
    }
    faults(State(api)).await
}

async fn faults_method_not_allowed() -> Response {
    fault_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "use GET, POST or DELETE on /_fleetline/faults",
    )
}

/// `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]`.
async fn invoke(
    State(api): ApiState,
    Path(name_param): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (function, invocation_type) = match api.target(&name_param, query.as_deref(), &headers) {
        Ok(target) => target,
        Err(refusal) => return refusal.response(),
    };
    let payload = match event_payload(payload, invocation_type.payload_limit()) {
        Ok(payload) => payload,
        Err(refusal) => return refusal.response(),
    };
    let request_header = [("x-amzn-requestid", request_id.clone())];
    match invocation_type {
        InvocationType::DryRun => {
            with_headers(StatusCode::NO_CONTENT, Bytes::new(), &request_header)
        }
        InvocationType::Event => {
            tokio::spawn(run_async(function, request_id.clone(), payload));
            with_headers(StatusCode::ACCEPTED, Bytes::new(), &request_header)
        }
        InvocationType::RequestResponse => run_sync(function, request_id, payload).await,
    }
}

impl Api {
    /// The hosted function and invocation type a request names, or the error answer (in
    /// the service's order: name, qualifier, invocation type, function).
    fn target(
        &self,
        name_param: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(Arc<HostedFunction>, InvocationType), Refusal> {
        let Some((name, name_qualifier)) = parse_function_name(name_param) else {
            return Err(invalid_parameter(format!(
                "Invalid function name: {name_param}"
            )));
        };
        let arn = function_arn(&self.region, name);
        let qualifier = query.and_then(|q| query_param(q, "Qualifier"));
        for q in [qualifier.as_deref(), name_qualifier].into_iter().flatten() {
            if q != LATEST {
                return Err(not_found(&format!("{arn}:{q}")));
            }
        }
        let invocation_type = InvocationType::from_headers(headers)
            .map_err(|other| invalid_parameter(format!("Unsupported invocation type: {other}")))?;
        let function = match self.registry.get(name) {
            None => return Err(not_found(&arn)),
            Some(FunctionSlot::Unavailable { reason }) => {
                return Err(Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    error_type: "ResourceNotReadyException",
                    message_key: "message",
                    message: format!(
                        "Function {name} is not available on this lambda-host: {reason}"
                    ),
                });
            }
            Some(FunctionSlot::Hosted(function)) => function.clone(),
        };
        Ok((function, invocation_type))
    }
}

/// The event: at most `limit` bytes; empty means the empty event `{}`, anything else must
/// be JSON.
fn event_payload(payload: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, Refusal> {
    let payload = match body(payload) {
        Ok(payload) if payload.len() <= limit => payload,
        Ok(_) | Err(BodyError::TooLarge) => {
            return Err(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                error_type: "RequestTooLargeException",
                message_key: "message",
                message: format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
            });
        }
        Err(BodyError::Read(err)) => {
            return Err(invalid_content(format!(
                "Could not read the request body: {err}"
            )));
        }
    };
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(_) => Ok(payload),
        Err(err) => Err(invalid_content(format!(
            "Could not parse request body into json: {err}"
        ))),
    }
}

/// A RequestResponse invocation, in its own task: a client that hangs up must not cancel
/// the invocation (that would kill the process mid-event).
async fn run_sync(function: Arc<HostedFunction>, request_id: String, payload: Bytes) -> Response {
    let task_id = request_id.clone();
    let task =
        tokio::spawn(async move { function.invoke_with_request_id(&task_id, payload).await });
    match task.await {
        Ok(result) => sync_response(&request_id, result),
        Err(err) => service_error(&format!("invocation task failed: {err}")),
    }
}

async fn run_async(function: Arc<HostedFunction>, request_id: String, payload: Bytes) {
    let name = function.name().to_owned();
    match function.invoke_with_request_id(&request_id, payload).await {
        Ok(InvokeOutcome::Ok(_)) => {
            tracing::info!(function = %name, %request_id, "asynchronous invocation succeeded")
        }
        Ok(InvokeOutcome::FunctionError {
            error_type,
            error_message,
        }) => tracing::warn!(function = %name, %request_id, %error_type, %error_message,
            "asynchronous invocation failed"),
        Err(err) => tracing::warn!(function = %name, %request_id, error = %err,
            "asynchronous invocation failed"),
    }
}

fn sync_response(request_id: &str, result: Result<InvokeOutcome, HostError>) -> Response {
    let mut headers = vec![
        ("x-amzn-requestid", request_id.to_owned()),
        ("x-amz-executed-version", LATEST.to_owned()),
    ];
    let (error_type, error_message) = match result {
        Ok(InvokeOutcome::Ok(body)) => return with_headers(StatusCode::OK, body, &headers),
        Ok(InvokeOutcome::FunctionError {
            error_type,
            error_message,
        }) => (error_type, error_message),
        Err(err) => match err.lambda_error(request_id) {
            Some(pair) => pair,
            None => {
                tracing::error!(%request_id, error = %err, "invocation failed in the host");
                return match err {
                    HostError::Spawn { .. } => aws_error(
                        StatusCode::BAD_GATEWAY,
                        "ResourceNotReadyException",
                        "message",
                        &err.to_string(),
                    ),
                    _ => service_error(&err.to_string()),
                };
            }
        },
    };
    headers.push(("x-amz-function-error", "Unhandled".to_owned()));
    // Lambda's order: errorMessage first.
    let body = json!({"errorMessage": error_message, "errorType": error_type});
    with_headers(StatusCode::OK, body.to_string(), &headers)
}

#[derive(Debug, PartialEq)]
struct CrashRequest {
    function: String,
    invocations: u64,
    point: CrashPoint,
}

fn parse_crash_request(body: &[u8]) -> Result<CrashRequest, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        crash: Crash,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Crash {
        function: String,
        invocations: Option<u64>,
        after_ms: Option<u64>,
    }
    let Outer { crash } = serde_json::from_slice(body).map_err(|err| {
        format!(
            "expected {{\"crash\": {{\"function\": name, \"invocations\": n, \"after_ms\": ms}}}}: {err}"
        )
    })?;
    Ok(CrashRequest {
        function: crash.function,
        invocations: crash.invocations.unwrap_or(1),
        point: match crash.after_ms {
            None => CrashPoint::AtResponse,
            Some(ms) => CrashPoint::After(std::time::Duration::from_millis(ms)),
        },
    })
}

fn fault_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }).to_string())
}

/// An error answer of the Invoke operation, made into a response by [`aws_error`].
struct Refusal {
    status: StatusCode,
    error_type: &'static str,
    message_key: &'static str,
    message: String,
}

impl Refusal {
    fn response(self) -> Response {
        aws_error(
            self.status,
            self.error_type,
            self.message_key,
            &self.message,
        )
    }
}

fn not_found(arn: &str) -> Refusal {
    // ResourceNotFoundException's members are `Type` and `Message` in the service model.
    Refusal {
        status: StatusCode::NOT_FOUND,
        error_type: "ResourceNotFoundException",
        message_key: "Message",
        message: format!("Function not found: {arn}"),
    }
}

fn invalid_parameter(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error_type: "InvalidParameterValueException",
        message_key: "message",
        message,
    }
}

fn invalid_content(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error_type: "InvalidRequestContentException",
        message_key: "message",
        message,
    }
}

fn service_error(message: &str) -> Response {
    aws_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceException",
        "Message",
        message,
    )
}

/// A REST-JSON error: `x-amzn-ErrorType` names the exception; the body carries `Type`
/// (`User` for 4xx, `Service` for 5xx) and the message under the member name the model
/// uses for that exception (`Message` or `message`).
fn aws_error(status: StatusCode, error_type: &str, message_key: &str, message: &str) -> Response {
    let kind = if status.is_client_error() {
        "User"
    } else {
        "Service"
    };
    let mut body = serde_json::Map::new();
    body.insert("Type".to_owned(), json!(kind));
    body.insert(message_key.to_owned(), json!(message));
    let request_id = uuid::Uuid::new_v4().to_string();
    with_headers(
        status,
        serde_json::Value::Object(body).to_string(),
        &[
            ("x-amzn-errortype", error_type.to_owned()),
            ("x-amzn-requestid", request_id),
        ],
    )
}

/// Name, ARN or partial ARN, each optionally `:qualifier`-suffixed → (name, qualifier).
fn parse_function_name(value: &str) -> Option<(&str, Option<&str>)> {
    let parts: Vec<&str> = value.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        // 123456789012:function:name[:qualifier]
        [_, "function", name] => (*name, None),
        [_, "function", name, qualifier] => (*name, Some(*qualifier)),
        // arn:aws:lambda:region:account:function:name[:qualifier]
        ["arn", _, "lambda", _, _, "function", name] => (*name, None),
        ["arn", _, "lambda", _, _, "function", name, qualifier] => (*name, Some(*qualifier)),
        _ => return None,
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some((name, qualifier))
}

/// The first `key` in a query string, decoded (the CLI and SDKs escape `:` and `$`).
fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_arns_and_qualifiers() {
        assert_eq!(parse_function_name("simulator"), Some(("simulator", None)));
        assert_eq!(
            parse_function_name("simulator:$LATEST"),
            Some(("simulator", Some("$LATEST")))
        );
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:000000000000:function:query-api"),
            Some(("query-api", None))
        );
        assert_eq!(
            parse_function_name("000000000000:function:lake-writer:prod"),
            Some(("lake-writer", Some("prod")))
        );
        assert_eq!(parse_function_name("a/b"), None);
        assert_eq!(parse_function_name(""), None);
    }

    #[test]
    fn crash_requests() {
        assert_eq!(
            parse_crash_request(br#"{"crash":{"function":"stream-processor"}}"#),
            Ok(CrashRequest {
                function: "stream-processor".to_owned(),
                invocations: 1,
                point: CrashPoint::AtResponse,
            })
        );
        assert_eq!(
            parse_crash_request(br#"{"crash":{"function":"x","invocations":3,"after_ms":250}}"#),
            Ok(CrashRequest {
                function: "x".to_owned(),
                invocations: 3,
                point: CrashPoint::After(std::time::Duration::from_millis(250)),
            })
        );
        for bad in [
            &b"{}"[..],
            b"nope",
            br#"{"crash":{"invocations":1}}"#,
            br#"{"crash":{"function":"x","when":"now"}}"#,
        ] {
            assert!(
                parse_crash_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn query_parameters() {
        assert_eq!(
            query_param("a=1&Qualifier=%24LATEST", "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(query_param("a=1", "Qualifier"), None);
    }
}
