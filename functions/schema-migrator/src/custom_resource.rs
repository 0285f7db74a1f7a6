//! The CloudFormation custom resource `Custom::WarehouseSchema`: Create and Update apply the
//! SQL bundle, Delete leaves the warehouse alone; every request is answered with a PUT of
//! the response object to the request's pre-signed `ResponseURL`.
//!
//! Protocol ("CloudFormation custom resource request and response reference",
//! https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref.html, and
//! "Custom resource response objects",
//! https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html):
//! the response carries Status (SUCCESS/FAILED), Reason (required when FAILED),
//! PhysicalResourceId (non-empty, identical for all responses of one resource; a different
//! one on Update means replacement and a Delete of the old one), StackId, RequestId and
//! LogicalResourceId copied from the request, optional Data; the whole body at most 4096
//! bytes. Without an answer CloudFormation waits for the resource's ServiceTimeout.

use fleetline_aws::env::FromEnv;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use fleetline_aws::WarehouseConfig;
use fleetline_aws::warehouse::{
    ENV_CLUSTER, ENV_DATABASE, ENV_DB_USER, ENV_SECRET_ARN, ENV_WORKGROUP, Warehouse,
};
use futures::FutureExt as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::migrate::{self, SqlFile};
use crate::script::{normalize_variables, spectrum_role_sql};

/// The response body limit.
pub const MAX_RESPONSE_BYTES: usize = 4096;

/// Resource properties and the `${NAME}` placeholder each one fills.
pub const PROPERTY_LAKE_BUCKET: &str = "LakeBucket";
pub const PROPERTY_LAKE_PREFIX: &str = "LakePrefix";
pub const PROPERTY_GLUE_DATABASE: &str = "GlueDatabase";
pub const PROPERTY_SPECTRUM_ROLE: &str = "SpectrumRole";
/// Extra placeholders, `{NAME: value}` (for SQL that needs more than the four above).
pub const PROPERTY_VARIABLES: &str = "Variables";
/// Changes whenever the function's code (and so the embedded SQL) changes, so that
/// CloudFormation sends an Update; the function itself decides what to apply by hash.
pub const PROPERTY_CODE_VERSION: &str = "CodeVersion";

/// The warehouse target, keyed like the functions' environment (`FLEETLINE_REDSHIFT_*`).
/// The alias runs a published version, and SAM publishes one only when the template text of
/// the code or the environment changes, not when a parameter behind the environment does
/// (samtranslator `SamFunction._construct_version`; SAM issues #1640 and #3820): the stack
/// passes the target here, so a new target is an Update that reaches the new warehouse.
pub const PROPERTY_WAREHOUSE: &str = "Warehouse";
/// The keys [`PROPERTY_WAREHOUSE`] may hold; with the property present these come only from it.
pub const WAREHOUSE_KEYS: [&str; 5] = [
    ENV_WORKGROUP,
    ENV_CLUSTER,
    ENV_DATABASE,
    ENV_SECRET_ARN,
    ENV_DB_USER,
];

const DEFAULT_LAKE_PREFIX: &str = "vehicle_telematics_raw/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// The fields of a custom resource request this function uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failed,
}

/// What the function answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub data: Map<String, Value>,
}

/// The `${NAME}` values from the resource properties. Properties arrive as strings
/// (CloudFormation passes scalar values as strings); the Spectrum role becomes `default` or a
/// quoted ARN ([`spectrum_role_sql`]).
pub fn variables(props: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("property {key} must be a string, got {other}")),
        }
    };
    let required = |key: &str| {
        text(key)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("property {key} is required"))
    };
    let mut vars = BTreeMap::new();
    vars.insert("LAKE_BUCKET".into(), required(PROPERTY_LAKE_BUCKET)?);
    vars.insert("GLUE_DATABASE".into(), required(PROPERTY_GLUE_DATABASE)?);
    vars.insert(
        "LAKE_PREFIX".into(),
        text(PROPERTY_LAKE_PREFIX)?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_LAKE_PREFIX.into()),
    );
    let role = text(PROPERTY_SPECTRUM_ROLE)?.unwrap_or_default();
    vars.insert(
        "SPECTRUM_IAM_ROLE".into(),
        spectrum_role_sql(&role).map_err(|e| format!("property {PROPERTY_SPECTRUM_ROLE}: {e}"))?,
    );
    match props.get(PROPERTY_VARIABLES) {
        None | Some(Value::Null) => {}
        Some(Value::Object(extra)) => {
            for (name, value) in extra {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(format!(
                            "property {PROPERTY_VARIABLES}.{name} must be a string, got {other}"
                        ));
                    }
                };
                if vars.contains_key(name) {
                    return Err(format!(
                        "property {PROPERTY_VARIABLES}.{name}: set by its own property"
                    ));
                }
                vars.insert(name.clone(), value);
            }
        }
        Some(other) => {
            return Err(format!(
                "property {PROPERTY_VARIABLES} must be an object, got {other}"
            ));
        }
    }
    normalize_variables(&mut vars).map_err(|e| e.to_string())?;
    Ok(vars)
}

/// The warehouse a request is for: the target from the [`PROPERTY_WAREHOUSE`] property when
/// the request has one, else from `env`; the polling and retry settings always from `env`.
pub fn warehouse_config(
    props: &Map<String, Value>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<WarehouseConfig, String> {
    let target = match props.get(PROPERTY_WAREHOUSE) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let mut target = BTreeMap::new();
            for (key, value) in map {
                if !WAREHOUSE_KEYS.contains(&key.as_str()) {
                    return Err(format!(
                        "property {PROPERTY_WAREHOUSE}.{key}: expected one of {}",
                        WAREHOUSE_KEYS.join(", ")
                    ));
                }
                let Value::String(value) = value else {
                    return Err(format!(
                        "property {PROPERTY_WAREHOUSE}.{key} must be a string, got {value}"
                    ));
                };
                target.insert(key.clone(), value.clone());
            }
            Some(target)
        }
        Some(other) => {
            return Err(format!(
                "property {PROPERTY_WAREHOUSE} must be an object, got {other}"
            ));
        }
    };
    WarehouseConfig::from_lookup(|key| match &target {
        Some(target) if WAREHOUSE_KEYS.contains(&key) => target.get(key).cloned(),
        _ => env(key),
    })
    .map_err(|e| e.to_string())
}

/// Runs one request to an [`Answer`]: Delete answers SUCCESS and touches nothing (the
/// warehouse and its data outlive the stack's schema resource); Create and Update apply
/// `files`, within `budget` (so that there is time left to answer before the Lambda
/// timeout). Errors, timeouts and panics all become FAILED answers.
pub async fn decide<W: Warehouse>(
    warehouse: &W,
    files: &[SqlFile],
    request: &Request,
    physical_id_for_create: &str,
    budget: Duration,
    now: &str,
) -> Answer {
    let physical_resource_id = match (&request.request_type, &request.physical_resource_id) {
        (RequestType::Create, _) | (_, None) => physical_id_for_create.to_owned(),
        (_, Some(id)) if id.is_empty() => physical_id_for_create.to_owned(),
        (_, Some(id)) => id.clone(),
    };
    let answer = |status, reason: String, data| Answer {
        status,
        reason,
        physical_resource_id: physical_resource_id.clone(),
        data,
    };
    if request.request_type == RequestType::Delete {
        return answer(
            Status::Success,
            "Delete leaves the warehouse schema and its data in place".into(),
            Map::new(),
        );
    }
    let vars = match variables(&request.resource_properties) {
        Ok(v) => v,
        Err(reason) => return answer(Status::Failed, reason, Map::new()),
    };
    let mut log = |line: &str| tracing::info!(request_id = %request.request_id, "{line}");
    let run = AssertUnwindSafe(migrate::apply(
        warehouse, files, &vars, false, now, &mut log,
    ))
    .catch_unwind();
    match tokio::time::timeout(budget, run).await {
        Ok(Ok(Ok(outcome))) => {
            let mut data = Map::new();
            data.insert("Applied".into(), json!(outcome.applied.join(" ")));
            data.insert(
                "AppliedCount".into(),
                json!(outcome.applied.len().to_string()),
            );
            data.insert(
                "SkippedCount".into(),
                json!(outcome.skipped.len().to_string()),
            );
            let reason = format!(
                "{} file(s) applied, {} unchanged",
                outcome.applied.len(),
                outcome.skipped.len()
            );
            answer(Status::Success, reason, data)
        }
        Ok(Ok(Err(e))) => answer(Status::Failed, e.to_string(), Map::new()),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            answer(
                Status::Failed,
                format!("internal error: {what}"),
                Map::new(),
            )
        }
        Err(_) => answer(
            Status::Failed,
            format!(
                "the SQL did not finish within {}s (before the function's timeout); files applied \
                 so far are recorded, so an update of the stack continues where this one stopped",
                budget.as_secs()
            ),
            Map::new(),
        ),
    }
}

/// The response body: the answer plus the request's ids, Reason cut so that the body stays
/// within [`MAX_RESPONSE_BYTES`].
pub fn response_body(request: &Request, answer: &Answer) -> Vec<u8> {
    let body = |reason: &str| {
        let mut v = json!({
            "Status": match answer.status { Status::Success => "SUCCESS", Status::Failed => "FAILED" },
            "Reason": reason,
            "PhysicalResourceId": answer.physical_resource_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
        });
        if !answer.data.is_empty() {
            v["Data"] = Value::Object(answer.data.clone());
        }
        serde_json::to_vec(&v).unwrap_or_default()
    };
    let full = body(&answer.reason);
    if full.len() <= MAX_RESPONSE_BYTES {
        return full;
    }
    // The longest prefix of the reason (in characters: JSON escaping changes byte counts)
    // that fits, by bisection.
    let chars: Vec<char> = answer.reason.chars().collect();
    let cut = |keep: usize| chars[..keep].iter().collect::<String>() + " …";
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if body(&cut(mid)).len() <= MAX_RESPONSE_BYTES {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    body(&cut(lo))
}

/// Where the response goes (an HTTPS PUT in production, anything in tests).
pub trait Responder: Send + Sync {
    fn put(&self, url: &str, body: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
}

/// Decides and answers one request; the Err is for the Lambda log only (CloudFormation has
/// been answered, or cannot be).
pub async fn handle<W: Warehouse, R: Responder>(
    warehouse: &W,
    responder: &R,
    files: &[SqlFile],
    request: &Request,
    physical_id_for_create: &str,
    budget: Duration,
    now: &str,
) -> Result<Answer, String> {
    let answer = decide(
        warehouse,
        files,
        request,
        physical_id_for_create,
        budget,
        now,
    )
    .await;
    match answer.status {
        Status::Success => {
            tracing::info!(request_type = ?request.request_type, reason = %answer.reason, "answering SUCCESS")
        }
        Status::Failed => {
            tracing::error!(request_type = ?request.request_type, reason = %answer.reason, "answering FAILED")
        }
    }
    responder
        .put(&request.response_url, response_body(request, &answer))
        .await
        .map_err(|e| format!("could not answer CloudFormation at the ResponseURL: {e}"))?;
    Ok(answer)
}

/// Answers a request the function cannot run (its configuration is broken): Delete still
/// succeeds (so that a stack can always be deleted or rolled back), Create and Update fail
/// with `reason` — instead of leaving CloudFormation waiting for the ServiceTimeout.
pub async fn answer_unrunnable<R: Responder>(
    responder: &R,
    request: &Request,
    physical_id_for_create: &str,
    reason: &str,
) -> Result<Answer, String> {
    let physical_resource_id = match &request.physical_resource_id {
        Some(id) if !id.is_empty() && request.request_type != RequestType::Create => id.clone(),
        _ => physical_id_for_create.to_owned(),
    };
    let status = if request.request_type == RequestType::Delete {
        Status::Success
    } else {
        Status::Failed
    };
    let answer = Answer {
        status,
        reason: reason.to_owned(),
        physical_resource_id,
        data: Map::new(),
    };
    tracing::error!(request_type = ?request.request_type, reason, "cannot run; answering {status:?}");
    responder
        .put(&request.response_url, response_body(request, &answer))
        .await
        .map_err(|e| format!("could not answer CloudFormation at the ResponseURL: {e}"))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn properties_become_placeholders() {
        let arn = "arn:aws:iam::123456789012:role/fleetline-SpectrumRole-ABC";
        let v = variables(&props(json!({
            "ServiceToken": "arn:aws:lambda:…",
            "LakeBucket": "b",
            "GlueDatabase": "g",
            "SpectrumRole": arn,
            "CodeVersion": "7",
            "Variables": {"EXTRA": "x"}
        })))
        .unwrap();
        assert_eq!(v["SPECTRUM_IAM_ROLE"], format!("'{arn}'"));
        assert_eq!(v["LAKE_PREFIX"], "vehicle_telematics_raw/");
        assert_eq!((v["LAKE_BUCKET"].as_str(), v["EXTRA"].as_str()), ("b", "x"));
        let v = variables(&props(json!({"LakeBucket": "b", "GlueDatabase": "g"}))).unwrap();
        assert_eq!(v["SPECTRUM_IAM_ROLE"], "default");
        let err = variables(&props(json!({"LakeBucket": "b"}))).unwrap_err();
        assert_eq!(err, "property GlueDatabase is required");
        let err = variables(&props(
            json!({"LakeBucket": "b", "GlueDatabase": "g", "Variables": {"LAKE_BUCKET": "c"}}),
        ))
        .unwrap_err();
        assert!(err.contains("own property"), "{err}");
    }

    #[test]
    fn the_warehouse_property_replaces_the_target_of_the_environment() {
        use fleetline_aws::warehouse::Target;
        let env = |key: &str| match key {
            "FLEETLINE_REDSHIFT_WORKGROUP" => Some("old-wg".to_owned()),
            "FLEETLINE_REDSHIFT_DATABASE" => Some("old-db".to_owned()),
            "FLEETLINE_REDSHIFT_SECRET_ARN" => Some("old-secret".to_owned()),
            "FLEETLINE_REDSHIFT_TIMEOUT_SECS" => Some("840".to_owned()),
            _ => None,
        };
        // No property: the environment, as before.
        let c = warehouse_config(&props(json!({})), env).unwrap();
        assert_eq!(
            (c.target, c.database.as_str(), c.secret_arn.as_deref()),
            (
                Target::Workgroup("old-wg".into()),
                "old-db",
                Some("old-secret")
            )
        );
        // A cluster in the property: the environment's workgroup and secret do not leak in
        // (both targets set would be refused), the timeout still comes from the environment.
        let c = warehouse_config(
            &props(json!({"Warehouse": {
                "FLEETLINE_REDSHIFT_WORKGROUP": "",
                "FLEETLINE_REDSHIFT_CLUSTER": "c1",
                "FLEETLINE_REDSHIFT_DATABASE": "new-db",
                "FLEETLINE_REDSHIFT_DB_USER": "admin"
            }})),
            env,
        )
        .unwrap();
        assert_eq!(
            c.target,
            Target::Cluster {
                identifier: "c1".into(),
                db_user: Some("admin".into())
            }
        );
        assert_eq!((c.database.as_str(), c.secret_arn), ("new-db", None));
        assert_eq!(c.poll.timeout, Duration::from_secs(840));
        let err = warehouse_config(
            &props(json!({"Warehouse": {"FLEETLINE_REDSHIFT_TIMEOUT_SECS": "1"}})),
            env,
        )
        .unwrap_err();
        assert!(err.contains("expected one of"), "{err}");
        let err = warehouse_config(&props(json!({"Warehouse": "wg"})), env).unwrap_err();
        assert!(err.contains("must be an object"), "{err}");
    }

    fn request(reason_len: usize) -> (Request, Answer) {
        let req: Request = serde_json::from_value(json!({
            "RequestType": "Create",
            "ResponseURL": "http://127.0.0.1/x",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "r-1",
            "LogicalResourceId": "WarehouseSchema",
            "ResourceType": "Custom::WarehouseSchema",
            "ResourceProperties": {}
        }))
        .unwrap();
        let answer = Answer {
            status: Status::Failed,
            reason: "é\"".repeat(reason_len),
            physical_resource_id: "p".into(),
            data: Map::new(),
        };
        (req, answer)
    }

    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<(String, Value)>>);

    impl Responder for Recorder {
        async fn put(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
            let body = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            self.0.lock().unwrap().push((url.to_owned(), body));
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_unconfigured_function_still_answers() {
        let r = Recorder::default();
        let (mut req, _) = request(0);
        answer_unrunnable(&r, &req, "p-new", "bad config")
            .await
            .unwrap();
        req.request_type = RequestType::Delete;
        req.physical_resource_id = Some("p-old".into());
        answer_unrunnable(&r, &req, "p-new", "bad config")
            .await
            .unwrap();
        let sent = r.0.lock().unwrap();
        assert_eq!(sent[0].0, "http://127.0.0.1/x");
        assert_eq!(
            (
                &sent[0].1["Status"],
                &sent[0].1["Reason"],
                &sent[0].1["PhysicalResourceId"]
            ),
            (&json!("FAILED"), &json!("bad config"), &json!("p-new"))
        );
        assert_eq!(
            (&sent[1].1["Status"], &sent[1].1["PhysicalResourceId"]),
            (&json!("SUCCESS"), &json!("p-old"))
        );
    }

    #[test]
    fn the_body_fits_the_limit_and_keeps_short_reasons_whole() {
        let (req, short) = request(10);
        let body: Value = serde_json::from_slice(&response_body(&req, &short)).unwrap();
        assert_eq!(body["Reason"], short.reason);
        assert_eq!(body["Status"], "FAILED");
        assert_eq!(body["StackId"], req.stack_id);
        assert!(body.get("Data").is_none());
        let (req, long) = request(5000);
        let raw = response_body(&req, &long);
        assert!(raw.len() <= MAX_RESPONSE_BYTES, "{}", raw.len());
        let body: Value = serde_json::from_slice(&raw).unwrap();
        let reason = body["Reason"].as_str().unwrap();
        assert!(
            reason.ends_with(" …") && reason.len() > 1000,
            "{}",
            reason.len()
        );
    }
}
