//! The local API Gateway: routing, proxy events, proxy responses, and the HTTP server with a
//! scripted function behind it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use local_runner::api_gateway::{self, ApiConfig, ApiRequest, Router, proxy_event, proxy_response};
use local_runner::invoker::{Invocation, Invoker};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn router() -> Router {
    let mut r = Router::new();
    r.add("query-api", "/v1/{proxy+}", "GET");
    r.add("query-api", "/", "GET");
    r.add("query-api", "/dashboard", "GET");
    r.add("special", "/v1/vehicles/{vin}/trips", "GET");
    r.add("any", "/things", "ANY");
    // An event with `Auth: {ApiKeyRequired: false}`.
    r.add_with_auth("query-api", "/open", "GET", Some(false));
    r
}

#[test]
fn routes_match_like_api_gateway() {
    let r = router();
    let (route, params) = r.find("GET", "/v1/fleet/miles").unwrap();
    assert_eq!(route.resource, "/v1/{proxy+}");
    assert_eq!(
        params,
        BTreeMap::from([("proxy".to_owned(), "fleet/miles".to_owned())])
    );

    let (route, params) = r.find("GET", "/v1/vehicles/VIN%2017/trips").unwrap();
    assert_eq!(
        route.function, "special",
        "the more specific route wins over {{proxy+}}"
    );
    assert_eq!(params["vin"], "VIN 17");

    assert_eq!(r.find("GET", "/").unwrap().0.resource, "/");
    assert!(r.find("GET", "/dashboard").unwrap().1.is_empty());
    assert_eq!(r.find("DELETE", "/things").unwrap().0.function, "any");
    assert!(
        r.find("GET", "/v1").is_none(),
        "{{proxy+}} needs at least one segment"
    );
    assert!(
        r.find("POST", "/v1/fleet/miles").is_none(),
        "method not in the template"
    );
    assert!(r.find("GET", "/nope").is_none());
}

#[test]
fn the_proxy_event_has_the_rest_api_shape() {
    let r = router();
    let (route, params) = r.find("GET", "/v1/fleet/miles").unwrap();
    let request = ApiRequest {
        method: "GET".to_owned(),
        path: "/v1/fleet/miles".to_owned(),
        query: Some("year=2026&tag=a%20b&tag=c+d".to_owned()),
        headers: vec![
            ("host".to_owned(), "127.0.0.1:3000".to_owned()),
            ("x-api-key".to_owned(), "k".to_owned()),
            ("accept".to_owned(), "a".to_owned()),
            ("accept".to_owned(), "b".to_owned()),
        ],
        body: Bytes::new(),
        source_ip: "127.0.0.1".to_owned(),
    };
    let event = proxy_event(route, &params, &request, "api", "req-1", 1_772_704_860_000);
    assert_eq!(event["resource"], "/v1/{proxy+}");
    assert_eq!(event["path"], "/v1/fleet/miles");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(
        event["headers"]["accept"], "b",
        "last value wins in headers"
    );
    assert_eq!(event["multiValueHeaders"]["accept"], json!(["a", "b"]));
    assert_eq!(
        event["queryStringParameters"],
        json!({"year": "2026", "tag": "c d"})
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"year": ["2026"], "tag": ["a b", "c d"]})
    );
    assert_eq!(event["pathParameters"], json!({"proxy": "fleet/miles"}));
    assert_eq!(event["stageVariables"], Value::Null);
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    let ctx = &event["requestContext"];
    assert_eq!(ctx["resourcePath"], "/v1/{proxy+}");
    assert_eq!(ctx["httpMethod"], "GET");
    assert_eq!(ctx["path"], "/api/v1/fleet/miles");
    assert_eq!(ctx["stage"], "api");
    assert_eq!(ctx["requestId"], "req-1");
    assert_eq!(ctx["accountId"], "000000000000");
    assert_eq!(ctx["requestTimeEpoch"], 1_772_704_860_000i64);
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["apiKey"], "k");

    let (root, none) = r.find("GET", "/").unwrap();
    let bare = ApiRequest {
        path: "/".to_owned(),
        query: None,
        headers: Vec::new(),
        body: Bytes::from_static(&[0xff, 0x00]),
        ..request
    };
    let event = proxy_event(root, &none, &bare, "api", "req-2", 0);
    assert_eq!(event["pathParameters"], Value::Null);
    assert_eq!(event["queryStringParameters"], Value::Null);
    assert_eq!(event["headers"], Value::Null);
    assert_eq!(event["body"], "/wA=", "binary bodies are base64");
    assert_eq!(event["isBase64Encoded"], true);
}

#[test]
fn proxy_responses_become_http() {
    let response = proxy_response(
        json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-one": "1"},
            "multiValueHeaders": {"x-many": ["a", "b"], "x-one": ["multi"]},
            "body": "{\"ok\":true}",
            "isBase64Encoded": false
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(response.status(), 201);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/json");
    let many: Vec<_> = headers.get_all("x-many").iter().collect();
    assert_eq!(many, ["a", "b"]);
    let one: Vec<_> = headers.get_all("x-one").iter().collect();
    assert_eq!(one, ["multi"], "multiValueHeaders win over headers");

    let binary =
        proxy_response(br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#).unwrap();
    let body = http_body_util::BodyExt::collect(binary.into_body());
    let bytes = futures_lite_block(body).unwrap().to_bytes();
    assert_eq!(&bytes[..], b"hi");

    assert!(proxy_response(b"not json").is_err());
    assert!(
        proxy_response(br#"{"body":"x"}"#).is_err(),
        "statusCode is required"
    );
    assert!(proxy_response(br#"{"statusCode":200,"body":{"a":1}}"#).is_err());
}

fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Answers with `answer` and keeps the events it got.
struct Scripted {
    answer: Invocation,
    events: Mutex<Vec<(String, Value)>>,
}

impl Invoker for Scripted {
    async fn invoke(&self, function: &str, payload: Bytes) -> Invocation {
        let event = serde_json::from_slice(&payload).unwrap();
        self.events
            .lock()
            .unwrap()
            .push((function.to_owned(), event));
        self.answer.clone()
    }

    fn function_arn(&self, function: &str) -> String {
        format!("arn:aws:lambda:us-east-1:000000000000:function:{function}")
    }
}

/// Starts the gateway on an ephemeral port; returns its address and the invoker.
async fn gateway(
    answer: Invocation,
    api_key: Option<&str>,
) -> (std::net::SocketAddr, Arc<Scripted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let invoker = Arc::new(Scripted {
        answer,
        events: Mutex::new(Vec::new()),
    });
    let config = ApiConfig {
        stage: "api".to_owned(),
        api_key: api_key.map(str::to_owned),
    };
    tokio::spawn(api_gateway::serve(
        listener,
        Arc::new(router()),
        invoker.clone(),
        config,
        std::future::pending(),
    ));
    (addr, invoker)
}

/// A raw HTTP/1.1 request; returns (status, lower-cased head, body).
async fn request(addr: std::net::SocketAddr, head: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn the_gateway_invokes_the_function_and_returns_its_response() {
    let answer = Invocation::Response(Bytes::from(
        json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{\"data\":[]}"})
            .to_string(),
    ));
    let (addr, invoker) = gateway(answer, None).await;
    let (status, head, body) = request(addr, "GET /v1/fleet/miles?year=2026 HTTP/1.1").await;
    assert_eq!(status, 200);
    assert_eq!(body, "{\"data\":[]}");
    assert!(head.contains("x-amzn-requestid:"));
    let events = invoker.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "query-api");
    assert_eq!(events[0].1["queryStringParameters"]["year"], "2026");
    assert_eq!(events[0].1["pathParameters"]["proxy"], "fleet/miles");
    assert_eq!(
        events[0].1["requestContext"]["identity"]["sourceIp"],
        "127.0.0.1"
    );
}

#[tokio::test]
async fn unknown_routes_get_missing_authentication_token() {
    let (addr, invoker) = gateway(Invocation::Response(Bytes::new()), None).await;
    let (status, head, body) = request(addr, "GET /nowhere HTTP/1.1").await;
    assert_eq!(status, 403);
    assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
    assert!(head.contains("x-amzn-errortype: missingauthenticationtokenexception"));
    let (status, _, _) = request(addr, "POST /v1/fleet/miles HTTP/1.1").await;
    assert_eq!(status, 403);
    assert!(invoker.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn function_errors_and_malformed_responses_are_502() {
    let error = Invocation::FunctionError {
        error_type: "Boom".to_owned(),
        error_message: "x".to_owned(),
    };
    let (addr, _) = gateway(error, None).await;
    let (status, _, body) = request(addr, "GET /dashboard HTTP/1.1").await;
    assert_eq!(
        (status, body.as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );

    let (addr, _) = gateway(
        Invocation::Response(Bytes::from_static(b"\"just a string\"")),
        None,
    )
    .await;
    let (status, _, body) = request(addr, "GET / HTTP/1.1").await;
    assert_eq!(
        (status, body.as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );
}

#[tokio::test]
async fn an_api_key_is_enforced_only_when_configured() {
    let answer = Invocation::Response(Bytes::from_static(br#"{"statusCode":204}"#));
    let (addr, _) = gateway(answer, Some("secret")).await;
    let (status, _, body) = request(addr, "GET /dashboard HTTP/1.1").await;
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    let (status, _, _) = request(addr, "GET /dashboard HTTP/1.1\r\nx-api-key: secret").await;
    assert_eq!(status, 204);
    // A route exempted by its event needs no key.
    let (status, _, _) = request(addr, "GET /open HTTP/1.1").await;
    assert_eq!(status, 204);
}
