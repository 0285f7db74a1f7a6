//! The template's `Custom::WarehouseSchema` resource, performed at start as CloudFormation's
//! Create: the runner sends the backing function (schema-migrator) a custom resource request
//! and receives its answer on a local stand-in for the pre-signed `ResponseURL`, before any
//! event source mapping or schedule starts (as the template's `DependsOn` orders it on AWS).
//!
//! The properties are the local values of what the template passes (the lake bucket and
//! prefix of the function's environment, the local Glue database name, the namespace's
//! default IAM role, the speed path's variables), so the digests match what
//! `localstack/apply-sql` records and an already-applied database is left unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_host::{HostedFunction, InvokeOutcome};
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use tokio::sync::oneshot;

pub const RESOURCE_TYPE: &str = "Custom::WarehouseSchema";

/// The streaming-ingestion role ARN `localstack/apply-sql` passes (localstack/lib/common.sh's
/// `FLEETLINE_STREAMING_IAM_ROLE` default), so both write the same SQL.
pub const LOCAL_STREAMING_IAM_ROLE: &str =
    "arn:aws:iam::000000000000:role/fleetline-streaming-ingestion";

/// The `${NAME}` values of the template's `Variables` property, locally: the speed path (the
/// SpeedPath parameter), the function's stream and the local streaming role.
pub fn local_variables(speed_path: &str, env: &BTreeMap<String, String>) -> Value {
    let role = std::env::var("FLEETLINE_STREAMING_IAM_ROLE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| LOCAL_STREAMING_IAM_ROLE.to_owned());
    json!({
        "SPEED_PATH": speed_path,
        "STREAM_NAME": env.get("STREAM_NAME").cloned().unwrap_or_default(),
        "STREAMING_IAM_ROLE": role,
    })
}

/// `(resource logical id, logical id of the function its ServiceToken names)` for every
/// `Custom::WarehouseSchema` resource of the template text.
pub fn schema_resources(template: &str) -> Result<Vec<(String, String)>, String> {
    let doc: Yaml = serde_yaml::from_str(template).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Some(resources) = doc.get("Resources").and_then(Yaml::as_mapping) {
        for (id, resource) in resources {
            if resource.get("Type").and_then(Yaml::as_str) != Some(RESOURCE_TYPE) {
                continue;
            }
            let id = id.as_str().unwrap_or_default().to_owned();
            let token = resource
                .get("Properties")
                .and_then(|p| p.get("ServiceToken"))
                .and_then(referenced_id)
                .ok_or_else(|| format!("{id}: ServiceToken must Ref or GetAtt a function"))?;
            out.push((id, token));
        }
    }
    Ok(out)
}

/// The logical id in `!Ref X`, `!Ref X.Alias`, `!GetAtt X.Arn` (short or long form).
fn referenced_id(v: &Yaml) -> Option<String> {
    let head = |s: &str| s.split('.').next().map(str::to_owned);
    match v {
        Yaml::Tagged(t) => match (t.tag.to_string().trim_start_matches('!'), &t.value) {
            ("Ref" | "GetAtt", Yaml::String(s)) => head(s),
            ("GetAtt", Yaml::Sequence(seq)) => seq.first().and_then(Yaml::as_str).and_then(head),
            _ => None,
        },
        Yaml::Mapping(m) => m
            .get("Ref")
            .or_else(|| m.get("Fn::GetAtt"))
            .and_then(|x| match x {
                Yaml::String(s) => head(s),
                Yaml::Sequence(seq) => seq.first().and_then(Yaml::as_str).and_then(head),
                _ => None,
            }),
        _ => None,
    }
}

/// Sends `function` the Create request of `logical_id` and waits for its answer; Ok with
/// the response body when it answered SUCCESS, Err with the reason otherwise.
pub async fn create(function: &HostedFunction, logical_id: &str) -> Result<Value, String> {
    create_on_speed_path(function, logical_id, "lambda").await
}

/// [`create`] for the template's SpeedPath value `speed_path`.
pub async fn create_on_speed_path(
    function: &HostedFunction,
    logical_id: &str,
    speed_path: &str,
) -> Result<Value, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen for the response: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = oneshot::channel::<Value>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let body = body
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or(Value::Null);
                        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                            let _ = tx.send(body);
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let env = &function.spec().env;
    let var = |k: &str, default: &str| {
        env.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = json!({
        "RequestType": "Create",
        "ServiceToken": function.arn(),
        "ResponseURL": format!("http://{addr}/{logical_id}/{request_id}"),
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/fleetline-local/local",
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": {
            "ServiceToken": function.arn(),
            "LakeBucket": var("LAKE_BUCKET", "fleetline-lake"),
            "LakePrefix": var("LAKE_PREFIX", "vehicle_telematics_raw/"),
            "GlueDatabase": "fleetline",
            "SpectrumRole": "default",
            "Variables": local_variables(speed_path, env),
        }
    });
    let outcome = function.invoke_json(&request).await;
    let answer = match outcome {
        // The function PUTs its answer before its invocation returns.
        Ok(InvokeOutcome::Ok(_)) => tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| "the function returned without answering".to_owned())?
            .map_err(|_| "the response listener stopped".to_owned()),
        Ok(other) => Err(format!("the invocation failed: {other:?}")),
        Err(e) => Err(format!("the invocation failed: {e}")),
    };
    server.abort();
    let answer = answer?;
    if answer["Status"] == "SUCCESS" {
        Ok(answer)
    } else {
        Err(answer["Reason"]
            .as_str()
            .unwrap_or("FAILED without a reason")
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_tokens_name_their_function_in_any_form() {
        let t = r#"
Resources:
  A: {Type: 'Custom::WarehouseSchema', Properties: {ServiceToken: !Ref Fn.Alias}}
  B: {Type: 'Custom::WarehouseSchema', Properties: {ServiceToken: !GetAtt Fn2.Arn}}
  C: {Type: 'Custom::WarehouseSchema', Properties: {ServiceToken: {'Fn::GetAtt': [Fn3, Arn]}}}
  D: {Type: 'Custom::Other', Properties: {ServiceToken: !Ref X}}
"#;
        let mut got = schema_resources(t).unwrap();
        got.sort();
        let want: Vec<(String, String)> = [("A", "Fn"), ("B", "Fn2"), ("C", "Fn3")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        let bad =
            "Resources:\n  A: {Type: 'Custom::WarehouseSchema', Properties: {ServiceToken: x}}";
        assert!(schema_resources(bad).is_err());
    }

    /// A file of the repository (`rel` to localstack/runner).
    fn read(rel: &str) -> String {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
    }

    #[test]
    fn the_local_streaming_role_is_the_stack_scripts_default() {
        let common = read("../lib/common.sh");
        assert!(
            common.contains(&format!(
                "FLEETLINE_STREAMING_IAM_ROLE:-{LOCAL_STREAMING_IAM_ROLE}}}"
            )),
            "localstack/lib/common.sh's FL_STREAMING_IAM_ROLE default differs"
        );
    }

    #[test]
    fn the_template_has_one_schema_resource_backed_by_schema_migrator() {
        let text = read("../../template.yaml");
        assert_eq!(
            schema_resources(&text).unwrap(),
            [(
                "WarehouseSchema".to_owned(),
                "SchemaMigratorFunction".to_owned()
            )]
        );
    }
}
