//! The Lambda Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`) over a
//! [`FunctionRegistry`], with the status codes, headers and error shapes of the real
//! service (botocore's lambda 2015-03-31 model), plus `GET /health` and, for tests,
//! `GET|POST|DELETE /_fleetline/faults` (crash injection, see `faults.rs`).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::{HostError, InvokeOutcome};
use crate::faults::CrashPoint;
use crate::hosted::HostedFunction;
use crate::http_util::{Body, json_response, read_body, with_headers};
use crate::registry::{FunctionRegistry, FunctionSlot};
use crate::spec::{LATEST, function_arn};

/// Synchronous request payload limit (6 MB).
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Asynchronous (`Event`) payload limit (1 MB).
const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
/// Fault injection (tests only).
pub const FAULTS_PATH: &str = "/_fleetline/faults";

/// Serves the Invoke API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<FunctionRegistry>,
    region: String,
    shutdown: impl Future<Output = ()>,
) {
    let api = Arc::new(Api { registry, region });
    crate::http_util::serve(
        listener,
        move |req| {
            let api = api.clone();
            async move { api.handle(req).await }
        },
        shutdown,
    )
    .await;
}

struct Api {
    registry: Arc<FunctionRegistry>,
    region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl Api {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/health") => self.health(),
            (_, FAULTS_PATH) => self.faults(req).await,
            (&Method::POST, p) if p.starts_with(INVOKE_PREFIX) && p.ends_with("/invocations") => {
                let raw = &p[INVOKE_PREFIX.len()..p.len() - "/invocations".len()];
                self.invoke(raw, req).await
            }
            _ => aws_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "message",
                &format!("Unknown operation {} {path}", req.method()),
            ),
        }
    }

    fn health(&self) -> Response<Body> {
        let functions: serde_json::Map<String, serde_json::Value> = self
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

    /// `GET`: every hosted function's crash state; `POST {"crash": {"function", "invocations"
    /// (default 1), "after_ms" (optional)}}`: arm a crash; `DELETE`: disarm every crash.
    async fn faults(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        if method == Method::POST {
            let body = match read_body(req.into_body(), 64 * 1024).await {
                Ok(Some(body)) => body,
                Ok(None) => return fault_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
                Err(err) => return fault_error(StatusCode::BAD_REQUEST, &err),
            };
            let request = match parse_crash_request(&body) {
                Ok(request) => request,
                Err(message) => return fault_error(StatusCode::BAD_REQUEST, &message),
            };
            let Some(function) = self.registry.hosted(&request.function) else {
                return fault_error(
                    StatusCode::NOT_FOUND,
                    &format!("no hosted function {}", request.function),
                );
            };
            function.arm_crash(request.invocations, request.point);
        } else if method == Method::DELETE {
            for (_, slot) in self.registry.iter() {
                if let FunctionSlot::Hosted(function) = slot {
                    function.disarm_crash();
                }
            }
        } else if method != Method::GET {
            return fault_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET, POST or DELETE on /_fleetline/faults",
            );
        }
        let functions: serde_json::Map<String, serde_json::Value> = self
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

    async fn invoke(&self, raw_name: &str, req: Request<Incoming>) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let name_param = percent_decode(raw_name);
        let qualifier = query_param(req.uri().query().unwrap_or(""), "Qualifier");
        let Some((name, name_qualifier)) = parse_function_name(&name_param) else {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "message",
                &format!("Invalid function name: {name_param}"),
            );
        };
        let arn = function_arn(&self.region, name);
        for q in [qualifier.as_deref(), name_qualifier].into_iter().flatten() {
            if q != LATEST {
                return not_found(&format!("{arn}:{q}"));
            }
        }
        let invocation_type = match req
            .headers()
            .get("x-amz-invocation-type")
            .map(|v| v.to_str().unwrap_or(""))
        {
            None | Some("RequestResponse") => InvocationType::RequestResponse,
            Some("Event") => InvocationType::Event,
            Some("DryRun") => InvocationType::DryRun,
            Some(other) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    "message",
                    &format!("Unsupported invocation type: {other}"),
                );
            }
        };
        let function = match self.registry.get(name) {
            None => return not_found(&arn),
            Some(FunctionSlot::Unavailable { reason }) => {
                return aws_error(
                    StatusCode::BAD_GATEWAY,
                    "ResourceNotReadyException",
                    "message",
                    &format!("Function {name} is not available on this lambda-host: {reason}"),
                );
            }
            Some(FunctionSlot::Hosted(function)) => function.clone(),
        };
        let limit = match invocation_type {
            InvocationType::Event => MAX_ASYNC_PAYLOAD,
            _ => MAX_SYNC_PAYLOAD,
        };
        let payload = match read_body(req.into_body(), limit).await {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    "message",
                    &format!(
                        "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                    ),
                );
            }
            Err(err) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "message",
                    &format!("Could not read the request body: {err}"),
                );
            }
        };
        // An empty payload is the empty event `{}`; anything else must be JSON.
        let payload = if payload.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else if let Err(err) = serde_json::from_slice::<serde_json::Value>(&payload) {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "message",
                &format!("Could not parse request body into json: {err}"),
            );
        } else {
            payload
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
            InvocationType::RequestResponse => {
                // Its own task: a client that hangs up must not cancel the invocation
                // (that would kill the process mid-event).
                let task_id = request_id.clone();
                let task = tokio::spawn(async move {
                    function.invoke_with_request_id(&task_id, payload).await
                });
                match task.await {
                    Ok(result) => sync_response(&request_id, result),
                    Err(err) => service_error(&format!("invocation task failed: {err}")),
                }
            }
        }
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

fn sync_response(request_id: &str, result: Result<InvokeOutcome, HostError>) -> Response<Body> {
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

fn fault_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, json!({ "error": message }).to_string())
}

fn not_found(arn: &str) -> Response<Body> {
    // ResourceNotFoundException's members are `Type` and `Message` in the service model.
    aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        "Message",
        &format!("Function not found: {arn}"),
    )
}

fn service_error(message: &str) -> Response<Body> {
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
fn aws_error(
    status: StatusCode,
    error_type: &str,
    message_key: &str,
    message: &str,
) -> Response<Body> {
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

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes (the CLI and SDKs escape `:` and `$` in ARNs and qualifiers).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    fn percent_decoding() {
        assert_eq!(
            percent_decode("arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Ax%3A%24LATEST"),
            "arn:aws:lambda:us-east-1:0:function:x:$LATEST"
        );
        assert_eq!(percent_decode("bad%zzescape%4"), "bad%zzescape%4");
        assert_eq!(
            query_param("a=1&Qualifier=%24LATEST", "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(query_param("a=1", "Qualifier"), None);
    }
}
