//! A local API Gateway (REST API, Lambda proxy integration, payload format 1.0): routes from
//! the template's `Api` events, requests turned into proxy events, proxy responses turned
//! back into HTTP, and API Gateway's own error answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::http::{Body, json as json_response, percent_decode, read_body};
use crate::invoker::{Invocation, Invoker};
use crate::template::{EventSource, Template};

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;
/// The `apiId` in requestContext (an API Gateway id is 10 characters).
pub const LOCAL_API_ID: &str = "localapi01";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: one or more segments.
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub function: String,
    /// The template path, e.g. `/v1/{proxy+}` (the event's `resource`).
    pub resource: String,
    /// Upper case; `ANY` matches every method.
    pub method: String,
    /// The event's `Auth.ApiKeyRequired`: `Some(false)` exempts the route from the API key.
    pub api_key_required: Option<bool>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

fn split_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, function: &str, resource: &str, method: &str) {
        self.add_with_auth(function, resource, method, None);
    }

    /// A route with its event's `Auth.ApiKeyRequired`.
    pub fn add_with_auth(
        &mut self,
        function: &str,
        resource: &str,
        method: &str,
        api_key_required: Option<bool>,
    ) {
        let segments = split_path(resource)
            .into_iter()
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        self.routes.push(Route {
            function: function.to_owned(),
            resource: resource.to_owned(),
            method: method.to_ascii_uppercase(),
            api_key_required,
            segments,
        });
    }

    /// Every `Api` event of the template's functions (restricted to `functions` if given).
    pub fn from_template(template: &Template, functions: Option<&[String]>) -> Self {
        let mut router = Self::new();
        for function in &template.functions {
            if functions.is_some_and(|only| !only.contains(&function.name)) {
                continue;
            }
            for event in &function.events {
                if let EventSource::Api(api) = &event.source {
                    router.add_with_auth(
                        &function.name,
                        &api.path,
                        &api.method,
                        api.api_key_required,
                    );
                }
            }
        }
        router
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The most specific route for the request (literal segments beat parameters, which
    /// beat greedy ones; an exact method beats ANY), with its decoded path parameters.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        let parts = split_path(path);
        let mut best: Option<(RouteScore, &Route, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            if route.method != "ANY" && route.method != method {
                continue;
            }
            let Some(params) = match_segments(&route.segments, &parts) else {
                continue;
            };
            let literals = route
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
            let greedy = route
                .segments
                .iter()
                .any(|s| matches!(s, Segment::Greedy(_)));
            let score = (!greedy, literals, route.method != "ANY");
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, route, params));
            }
        }
        best.map(|(_, route, params)| (route, params))
    }
}

/// (no greedy segment, literal segments, exact method): higher is more specific.
type RouteScore = (bool, usize, bool);

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                let rest = parts.get(i..).filter(|r| !r.is_empty())?;
                let joined: Vec<String> = rest.iter().map(|p| percent_decode(p, false)).collect();
                params.insert(name.clone(), joined.join("/"));
                return Some(params);
            }
            Segment::Literal(lit) => {
                if parts.get(i) != Some(&lit.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                params.insert(name.clone(), percent_decode(parts.get(i)?, false));
            }
        }
    }
    (segments.len() == parts.len()).then_some(params)
}

/// The parts of an HTTP request a proxy event needs.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// In arrival order, names as received (hyper lower-cases them).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: String,
}

/// The REST API (payload format 1.0) proxy event.
pub fn proxy_event(
    route: &Route,
    params: &BTreeMap<String, String>,
    request: &ApiRequest,
    stage: &str,
    request_id: &str,
    now_ms: i64,
) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), json!(value));
        match multi_headers.get_mut(name) {
            Some(Value::Array(values)) => values.push(json!(value)),
            _ => {
                multi_headers.insert(name.clone(), json!([value]));
            }
        }
    }
    let mut query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for pair in request
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k, true), percent_decode(v, true));
        query.insert(k.clone(), json!(v));
        match multi_query.get_mut(&k) {
            Some(Value::Array(values)) => values.push(json!(v)),
            _ => {
                multi_query.insert(k, json!([v]));
            }
        }
    }
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    let path_parameters = if params.is_empty() {
        Value::Null
    } else {
        json!(params)
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (body, is_base64) = if request.body.is_empty() {
        (Value::Null, false)
    } else {
        match std::str::from_utf8(&request.body) {
            Ok(text) => (json!(text), false),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(&request.body)),
                true,
            ),
        }
    };
    let request_time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string())
        .unwrap_or_default();
    json!({
        "resource": route.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": or_null(headers),
        "multiValueHeaders": or_null(multi_headers),
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": path_parameters,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": request_time,
            "path": format!("/{stage}{}", request.path),
            "accountId": lambda_host::ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": LOCAL_API_ID,
            "requestTimeEpoch": now_ms,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "apiKey": header("x-api-key"),
                "apiKeyId": null,
                "sourceIp": request.source_ip,
                "principalOrgId": null,
                "accessKey": null,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": header("user-agent"),
                "user": null
            },
            "domainName": header("host").unwrap_or_else(|| "localhost".to_owned()),
            "apiId": LOCAL_API_ID
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// Turns a proxy response (`{statusCode, headers, multiValueHeaders, body,
/// isBase64Encoded}`) into HTTP; `Err` when it is malformed (API Gateway answers 502).
pub fn proxy_response(body: &[u8]) -> Result<Response<Body>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let status = object
        .get("statusCode")
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or("statusCode is missing or not a number")?;
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or("statusCode is not an HTTP status")?;
    let is_base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let bytes = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if is_base64 => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("body is not base64: {e}"))?,
        ),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(_) => return Err("body is not a string".to_owned()),
    };
    let mut response = Response::new(Body::new(bytes));
    *response.status_mut() = status;
    let out = response.headers_mut();
    let mut multi_names = Vec::new();
    if let Some(multi) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in multi {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            for value in values.as_array().into_iter().flatten() {
                let text = header_text(value)
                    .ok_or_else(|| format!("header {name} has a non-scalar value"))?;
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| format!("invalid value for header {name}"))?;
                out.append(header.clone(), value);
            }
            multi_names.push(header);
        }
    }
    if let Some(single) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in single {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            if multi_names.contains(&header) {
                continue;
            }
            let text = header_text(value)
                .ok_or_else(|| format!("header {name} has a non-scalar value"))?;
            let value = HeaderValue::from_str(&text)
                .map_err(|_| format!("invalid value for header {name}"))?;
            out.insert(header, value);
        }
    }
    Ok(response)
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// requestContext.stage.
    pub stage: String,
    /// When set, requests must carry it in `x-api-key` (else 403 Forbidden).
    pub api_key: Option<String>,
}

fn message(status: StatusCode, text: &str, request_id: &str) -> Response<Body> {
    let mut response = json_response(status, json!({ "message": text }).to_string());
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    if status == StatusCode::FORBIDDEN || status == StatusCode::BAD_GATEWAY {
        let kind = if status == StatusCode::FORBIDDEN {
            "MissingAuthenticationTokenException"
        } else {
            "InternalServerErrorException"
        };
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    }
    response
}

struct Gateway<I> {
    router: Arc<Router>,
    invoker: Arc<I>,
    config: ApiConfig,
}

impl<I: Invoker> Gateway<I> {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let response = self.respond(req, peer, &request_id).await;
        tracing::info!(%method, %path, status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64, request_id = %request_id, "api request");
        response
    }

    async fn respond(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Response<Body> {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().map(str::to_owned);
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let Some((route, params)) = self.router.find(&method, &path) else {
            return message(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                request_id,
            );
        };
        // A route whose event says `Auth: {ApiKeyRequired: false}` needs no key (the dashboard).
        if let Some(expected) = self
            .config
            .api_key
            .as_ref()
            .filter(|_| route.api_key_required != Some(false))
        {
            let given = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
                .map(|(_, v)| v.as_str());
            if given != Some(expected.as_str()) {
                return message(StatusCode::FORBIDDEN, "Forbidden", request_id);
            }
        }
        let body = match read_body(req.into_body(), MAX_BODY).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Too Long",
                    request_id,
                );
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the request body");
                return message(StatusCode::BAD_REQUEST, "Bad Request", request_id);
            }
        };
        let request = ApiRequest {
            method,
            path,
            query,
            headers,
            body,
            source_ip: peer.ip().to_string(),
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let event = proxy_event(
            route,
            &params,
            &request,
            &self.config.stage,
            request_id,
            now_ms,
        );
        let mut response = match self
            .invoker
            .invoke(&route.function, Bytes::from(event.to_string()))
            .await
        {
            Invocation::Response(body) => match proxy_response(&body) {
                Ok(response) => response,
                Err(why) => {
                    tracing::warn!(function = %route.function, error = %why,
                        "malformed Lambda proxy response");
                    message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
                }
            },
            Invocation::FunctionError {
                error_type,
                error_message,
            } => {
                tracing::warn!(function = %route.function, %error_type, %error_message,
                    "function error behind the API");
                message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
            }
            Invocation::NotInvoked(why) => {
                tracing::warn!(function = %route.function, reason = %why, "cannot invoke the function");
                message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
            }
            Invocation::ShuttingDown => message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                request_id,
            ),
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-amzn-requestid", value);
        }
        response
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve<I: Invoker>(
    listener: TcpListener,
    router: Arc<Router>,
    invoker: Arc<I>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()>,
) {
    let gateway = Arc::new(Gateway {
        router,
        invoker,
        config,
    });
    crate::http::serve(
        listener,
        move |req, peer| {
            let gateway = gateway.clone();
            async move { gateway.handle(req, peer).await }
        },
        shutdown,
    )
    .await;
}

/// A header value as API Gateway stringifies it (strings, numbers, booleans).
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
