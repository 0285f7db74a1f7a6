//! lambda_http glue: API Gateway REST proxy event ⇄ [`ApiRequest`]/[`ApiResponse`].

use lambda_http::{Body, Request, RequestExt, Response};

use crate::api::{ApiRequest, ApiResponse};

/// The path comes from the event's `path` (without the stage), the query from the decoded
/// (multi-value) query parameters, the request id from the Lambda context.
pub fn to_api_request(req: &Request) -> ApiRequest {
    let mut query = Vec::new();
    if let Some(map) = req.query_string_parameters_ref() {
        for key in map.iter().map(|(k, _)| k) {
            if query.iter().any(|(k, _): &(String, String)| k == key) {
                continue;
            }
            for value in map.all(key).unwrap_or_default() {
                query.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    let raw = req.raw_http_path();
    let path = if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    };
    ApiRequest {
        method: req.method().as_str().to_owned(),
        path,
        query,
        request_id: req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default(),
    }
}

pub fn to_lambda_response(resp: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(resp.status)
        .header("content-type", resp.content_type);
    for (name, value) in &resp.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Body::Text(resp.body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
