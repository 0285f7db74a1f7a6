//! The events the runner builds have the shape of AWS's own sample events
//! (fixtures/*.json, as in the Lambda and API Gateway documentation).

use std::collections::BTreeMap;

use aws_lambda_events::event::apigw::ApiGatewayProxyRequest;
use aws_lambda_events::event::kinesis::KinesisEvent;
use bytes::Bytes;
use local_runner::api_gateway::{ApiRequest, Router, proxy_event};
use local_runner::kinesis::StreamRecord;
use local_runner::kinesis::event::{EventOrigin, event_json, kinesis_event};
use serde_json::Value;

const KINESIS_EVENT: &[u8] = include_bytes!("fixtures/kinesis-event.json");
const APIGW_REST_REQUEST: &[u8] = include_bytes!("fixtures/apigw-rest-request.json");

#[test]
fn the_kinesis_event_is_the_one_in_the_lambda_documentation() {
    let sample: KinesisEvent = serde_json::from_slice(KINESIS_EVENT).unwrap();
    let records: Vec<StreamRecord> = sample
        .records
        .iter()
        .map(|r| StreamRecord {
            sequence_number: r.kinesis.sequence_number.clone(),
            partition_key: r.kinesis.partition_key.clone(),
            data: r.kinesis.data.0.clone(),
            approximate_arrival: r.kinesis.approximate_arrival_timestamp.timestamp_millis() as f64
                / 1000.0,
        })
        .collect();
    let origin = EventOrigin {
        shard_id: "shardId-000000000006",
        stream_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
        region: "us-east-2",
        identity_arn: "arn:aws:iam::123456789012:role/lambda-role",
    };
    let built = kinesis_event(&records, &origin);
    assert_eq!(built, sample, "the typed event");

    let json = event_json(&built).unwrap();
    let expected: Value = serde_json::from_slice(KINESIS_EVENT).unwrap();
    assert_eq!(json, expected, "the JSON, byte for byte in meaning");
    let again: KinesisEvent = serde_json::from_value(json).unwrap();
    assert_eq!(again, built, "round trip");
}

/// The request behind the sample event.
fn sample_request() -> ApiRequest {
    let header = |(name, value): (&str, &str)| (name.to_owned(), value.to_owned());
    let headers = [
        ("header1", "value1"),
        ("header2", "value1"),
        ("header2", "value2"),
    ];
    let query = "parameter1=value1&parameter1=value2&parameter2=value";
    ApiRequest {
        headers: headers.into_iter().map(header).collect(),
        query: Some(query.to_owned()),
        body: Bytes::from_static(b"Hello from Lambda!"),
        source_ip: "192.0.2.1".to_owned(),
        path: "/my/path".to_owned(),
        method: "GET".to_owned(),
    }
}

#[test]
fn the_proxy_event_is_the_one_in_the_api_gateway_documentation() {
    let sample: ApiGatewayProxyRequest = serde_json::from_slice(APIGW_REST_REQUEST).unwrap();
    let mut router = Router::new();
    router.add("fn", "/my/path", "GET");
    let (route, params) = router.find("GET", "/my/path").unwrap();
    let json = proxy_event(
        route,
        &params,
        &sample_request(),
        "$default",
        "id=",
        1_583_349_317_135,
    );
    let built: ApiGatewayProxyRequest = serde_json::from_value(json.clone()).unwrap();
    // What comes from the request is the same; the rest (ids, names) is the local API's.
    assert_eq!(built.resource, sample.resource);
    assert_eq!(built.path, sample.path);
    assert_eq!(built.http_method, sample.http_method);
    assert_eq!(built.headers, sample.headers);
    assert_eq!(built.multi_value_headers, sample.multi_value_headers);
    assert_eq!(
        built.query_string_parameters,
        sample.query_string_parameters
    );
    assert_eq!(
        built.multi_value_query_string_parameters,
        sample.multi_value_query_string_parameters
    );
    assert_eq!(built.path_parameters, sample.path_parameters);
    assert_eq!(built.body, sample.body);
    assert_eq!(built.is_base64_encoded, sample.is_base64_encoded);
    let (ours, theirs) = (&built.request_context, &sample.request_context);
    assert_eq!(ours.http_method, theirs.http_method);
    assert_eq!(ours.resource_path, theirs.resource_path);
    assert_eq!(ours.request_id, theirs.request_id);
    assert_eq!(ours.request_time, theirs.request_time);
    assert_eq!(ours.request_time_epoch, theirs.request_time_epoch);
    assert_eq!(ours.stage, theirs.stage);
    assert_eq!(ours.protocol, theirs.protocol);
    assert_eq!(ours.identity.source_ip, theirs.identity.source_ip);

    let expected: Value = serde_json::from_slice(APIGW_REST_REQUEST).unwrap();
    assert_same_shape(&json, &expected, "");
    let again = serde_json::to_value(&built).unwrap();
    let reread: ApiGatewayProxyRequest = serde_json::from_value(again).unwrap();
    assert_eq!(reread, built, "round trip");
}

#[test]
fn an_empty_request_has_the_null_members_of_the_sample() {
    let mut router = Router::new();
    router.add("fn", "/", "GET");
    let (route, params) = router.find("GET", "/").unwrap();
    let request = ApiRequest {
        query: None,
        headers: Vec::new(),
        body: Bytes::new(),
        ..sample_request()
    };
    let json = proxy_event(route, &params, &request, "api", "r", 0);
    for key in [
        "headers",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert_eq!(json[key], Value::Null, "{key}");
    }
    assert_eq!(json["isBase64Encoded"], false);
}

/// Every member of `expected` is in `actual`, with the same JSON type unless one is null.
fn assert_same_shape(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(ours), Value::Object(theirs)) => {
            let keys: BTreeMap<_, _> = theirs.iter().collect();
            for (key, value) in keys {
                let path = format!("{at}.{key}");
                let Some(mine) = ours.get(key) else {
                    panic!("{path} is missing from the built event");
                };
                assert_same_shape(mine, value, &path);
            }
        }
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Array(_), Value::Array(_))
        | (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{at}: {actual} is not shaped like {expected}"),
    }
}
