//! A local API Gateway (REST API, Lambda proxy integration, payload format 1.0): routes from
//! the template's `Api` events, requests turned into proxy events, proxy responses turned
//! back into HTTP, and API Gateway's own error answers.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayRequestIdentity,
};
use aws_lambda_events::query_map::QueryMap;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use local_http::{BodyError, body, json_response};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

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
                let joined: Vec<String> = rest.iter().map(|p| decode_segment(p)).collect();
                params.insert(name.clone(), joined.join("/"));
                return Some(params);
            }
            Segment::Literal(lit) => {
                if parts.get(i) != Some(&lit.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                params.insert(name.clone(), decode_segment(parts.get(i)?));
            }
        }
    }
    (segments.len() == parts.len()).then_some(params)
}

/// A path parameter as API Gateway hands it over: percent-decoded (`+` stays a `+`).
fn decode_segment(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
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

/// The REST API (payload format 1.0) proxy event (an `ApiGatewayProxyRequest`), as JSON.
pub fn proxy_event(
    route: &Route,
    params: &BTreeMap<String, String>,
    request: &ApiRequest,
    stage: &str,
    request_id: &str,
    now_ms: i64,
) -> Value {
    // The method came from a parsed request, so it always converts.
    let method = Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
    let (headers, multi_value_headers) = proxy_headers(&request.headers);
    let (query, multi_query) = proxy_query(request.query.as_deref().unwrap_or(""));
    let (body, is_base64) = proxy_body(&request.body);
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(route.resource.clone());
    event.path = Some(request.path.clone());
    event.http_method = method.clone();
    event.headers = headers;
    event.multi_value_headers = multi_value_headers;
    event.query_string_parameters = query;
    event.multi_value_query_string_parameters = multi_query;
    event.path_parameters = params.clone().into_iter().collect();
    event.request_context = request_context(route, request, method, stage, request_id, now_ms);
    event.body = body;
    event.is_base64_encoded = is_base64;
    proxy_request_json(&event)
}

/// The event's JSON as API Gateway writes it: `null` rather than `{}` for absent headers,
/// query, path parameters and stage variables, plus the members the type does not model
/// (`extendedRequestId`, `identity.principalOrgId`).
fn proxy_request_json(event: &ApiGatewayProxyRequest) -> Value {
    // Only non-UTF-8 header values could fail to serialise, and proxy_headers never
    // makes any.
    let mut value = serde_json::to_value(event).unwrap_or_default();
    for key in [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        if value[key].as_object().is_some_and(Map::is_empty) {
            value[key] = Value::Null;
        }
    }
    let context = &mut value["requestContext"];
    context["extendedRequestId"] = context["requestId"].clone();
    context["identity"]["principalOrgId"] = Value::Null;
    value
}

/// `headers` (the last value of each name) and `multiValueHeaders`.
fn proxy_headers(pairs: &[(String, String)]) -> (HeaderMap, HeaderMap) {
    let mut single = HeaderMap::new();
    let mut multi = HeaderMap::new();
    for (name, value) in pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        single.insert(name.clone(), value.clone());
        multi.append(name, value);
    }
    (single, multi)
}

/// `queryStringParameters` (the last value of each name) and
/// `multiValueQueryStringParameters`, decoded like a form (`+` is a space).
fn proxy_query(raw: &str) -> (QueryMap, QueryMap) {
    let mut single: HashMap<String, String> = HashMap::new();
    let mut multi: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        single.insert(k.clone().into_owned(), v.clone().into_owned());
        multi
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let single: HashMap<String, Vec<String>> =
        single.into_iter().map(|(k, v)| (k, vec![v])).collect();
    (QueryMap::from(single), QueryMap::from(multi))
}

/// The body as text, or base64 when it is not UTF-8; `None` when empty.
fn proxy_body(body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

fn request_context(
    route: &Route,
    request: &ApiRequest,
    method: Method,
    stage: &str,
    request_id: &str,
    now_ms: i64,
) -> ApiGatewayProxyRequestContext {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut identity = ApiGatewayRequestIdentity::default();
    identity.api_key = header("x-api-key");
    identity.source_ip = Some(request.source_ip.clone());
    identity.user_agent = header("user-agent");
    let mut context = ApiGatewayProxyRequestContext::default();
    context.resource_id = Some("local".to_owned());
    context.resource_path = Some(route.resource.clone());
    context.http_method = method;
    context.request_time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    context.path = Some(format!("/{stage}{}", request.path));
    context.account_id = Some(lambda_host::ACCOUNT_ID.to_owned());
    context.protocol = Some("HTTP/1.1".to_owned());
    context.stage = Some(stage.to_owned());
    context.domain_prefix = Some(LOCAL_API_ID.to_owned());
    context.request_time_epoch = now_ms;
    context.request_id = Some(request_id.to_owned());
    context.identity = identity;
    context.domain_name = Some(header("host").unwrap_or_else(|| "localhost".to_owned()));
    context.apiid = Some(LOCAL_API_ID.to_owned());
    context
}

/// Turns a proxy response (`{statusCode, headers, multiValueHeaders, body,
/// isBase64Encoded}`) into HTTP; `Err` when it is malformed (API Gateway answers 502).
pub fn proxy_response(body: &[u8]) -> Result<Response, String> {
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
    let mut response = Response::new(Body::from(bytes));
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

fn message(status: StatusCode, text: &str, request_id: &str) -> Response {
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

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve<I: Invoker>(
    listener: TcpListener,
    router: Arc<Router>,
    invoker: Arc<I>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let gateway = Arc::new(Gateway {
        router,
        invoker,
        config,
    });
    // Every path and method is the gateway's: unknown routes are its own 403.
    let app = axum::Router::new()
        .fallback(handle::<I>)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gateway);
    local_http::serve(listener, app, shutdown).await;
}

async fn handle<I: Invoker>(
    State(gateway): State<Arc<Gateway<I>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    parts: Parts,
    payload: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (method, path) = (
        parts.method.as_str().to_owned(),
        parts.uri.path().to_owned(),
    );
    let request = ApiRequest {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: header_pairs(&parts.headers),
        body: Bytes::new(),
        source_ip: peer.ip().to_string(),
    };
    let mut response = gateway.respond(request, payload, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    tracing::info!(%method, %path, status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64, request_id = %request_id, "api request");
    response
}

/// In arrival order, names as received (lower case).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl<I: Invoker> Gateway<I> {
    /// Route, API key, body, then the function (API Gateway's order of answers).
    async fn respond(
        &self,
        mut request: ApiRequest,
        payload: Result<Bytes, BytesRejection>,
        request_id: &str,
    ) -> Response {
        let Some((route, params)) = self.router.find(&request.method, &request.path) else {
            return message(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
                request_id,
            );
        };
        if !self.key_accepted(route, &request.headers) {
            return message(StatusCode::FORBIDDEN, "Forbidden", request_id);
        }
        request.body = match body(payload) {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Too Long",
                    request_id,
                );
            }
            Err(BodyError::Read(err)) => {
                tracing::debug!(error = %err, "cannot read the request body");
                return message(StatusCode::BAD_REQUEST, "Bad Request", request_id);
            }
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
        let answer = self
            .invoker
            .invoke(&route.function, Bytes::from(event.to_string()))
            .await;
        answer_response(&route.function, answer, request_id)
    }

    /// A route whose event says `Auth: {ApiKeyRequired: false}` needs no key (the dashboard).
    fn key_accepted(&self, route: &Route, headers: &[(String, String)]) -> bool {
        let Some(expected) = self
            .config
            .api_key
            .as_ref()
            .filter(|_| route.api_key_required != Some(false))
        else {
            return true;
        };
        let given = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
            .map(|(_, v)| v.as_str());
        given == Some(expected.as_str())
    }
}

/// The HTTP answer to the function's answer: its proxy response, or API Gateway's 502/503.
fn answer_response(function: &str, answer: Invocation, request_id: &str) -> Response {
    match answer {
        Invocation::Response(body) => match proxy_response(&body) {
            Ok(response) => response,
            Err(why) => {
                tracing::warn!(function = %function, error = %why,
                    "malformed Lambda proxy response");
                message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
            }
        },
        Invocation::FunctionError {
            error_type,
            error_message,
        } => {
            tracing::warn!(function = %function, %error_type, %error_message,
                "function error behind the API");
            message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
        }
        Invocation::NotInvoked(why) => {
            tracing::warn!(function = %function, reason = %why, "cannot invoke the function");
            message(StatusCode::BAD_GATEWAY, "Internal server error", request_id)
        }
        Invocation::ShuttingDown => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            request_id,
        ),
    }
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
