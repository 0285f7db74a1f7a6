//! lambda_http glue: API Gateway REST proxy event ⇄ [`ApiRequest`]/[`ApiResponse`].

use lambda_http::http::StatusCode;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::api::{ApiRequest, ApiResponse, JSON};

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

/// The body answered when the response itself cannot be built (an invalid status or header
/// value): a fixed 500 document, never an empty 200.
pub const UNBUILDABLE_RESPONSE_BODY: &str =
    r#"{"error":{"code":"internal","message":"internal error: the response could not be built"}}"#;

pub fn to_lambda_response(resp: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(resp.status)
        .header("content-type", resp.content_type);
    for (name, value) in &resp.headers {
        builder = builder.header(*name, value.as_str());
    }
    match builder.body(Body::Text(resp.body)) {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, status = resp.status, "response could not be built");
            unbuildable_response()
        }
    }
}

/// Built from constants only, so it cannot fail.
fn unbuildable_response() -> Response<Body> {
    let mut response = Response::new(Body::Text(UNBUILDABLE_RESPONSE_BODY.to_owned()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &Body) -> &str {
        match body {
            Body::Text(t) => t,
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_response_is_passed_through() {
        let resp = to_lambda_response(ApiResponse::text(404, JSON, "{}"));
        assert_eq!(resp.status().as_u16(), 404);
        assert_eq!(resp.headers()["content-type"], JSON);
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert_eq!(text(resp.body()), "{}");
    }

    #[test]
    fn an_invalid_header_value_becomes_a_500_with_the_fixed_body() {
        let mut api = ApiResponse::text(200, JSON, "{\"ok\":true}");
        // A newline is not allowed in a header value, so the builder fails.
        api.headers.push(("x-bad", "a\nb".to_owned()));
        let resp = to_lambda_response(api);
        assert_eq!(resp.status().as_u16(), 500);
        assert_eq!(resp.headers()["content-type"], JSON);
        let body: serde_json::Value = serde_json::from_str(text(resp.body())).expect("JSON body");
        assert_eq!(body["error"]["code"], "internal");
    }

    #[test]
    fn an_invalid_status_becomes_a_500_with_the_fixed_body() {
        let resp = to_lambda_response(ApiResponse::text(1000, JSON, "{}"));
        assert_eq!(resp.status().as_u16(), 500);
        assert_eq!(text(resp.body()), UNBUILDABLE_RESPONSE_BODY);
    }
}
