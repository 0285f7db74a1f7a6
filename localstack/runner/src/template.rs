//! Reads the SAM template: every `AWS::Serverless::Function` with its settings, environment
//! and event sources, so template.yaml stays the one source of truth for the local wiring.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::intrinsics::{Context, scalar_string};

/// Lambda's defaults when neither the function nor Globals set them.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
const DEFAULT_MEMORY_MB: u32 = 128;
/// Event source mapping defaults for Kinesis (Lambda API reference).
const DEFAULT_KINESIS_BATCH_SIZE: usize = 100;

/// Local values for environment variables whose template value cannot be computed here
/// (`!Ref` of a secret, a bucket with a generated name, …). docs/design.md §7 names.
pub const LOCAL_ENV_FALLBACKS: &[(&str, &str)] = &[
    ("STREAM_NAME", "vehicle-telemetry"),
    ("LAKE_BUCKET", "fleetline-lake"),
    ("LAKE_PREFIX", "vehicle_telematics_raw/"),
    ("REJECTED_PREFIX", "rejected/"),
    ("LAKE_SINK", "s3"),
    ("FIREHOSE_STREAM", ""),
    ("FLEETLINE_REDSHIFT_WORKGROUP", "fleetline"),
    ("FLEETLINE_REDSHIFT_CLUSTER", ""),
    ("FLEETLINE_REDSHIFT_DATABASE", "dev"),
    ("FLEETLINE_REDSHIFT_SECRET_ARN", ""),
    ("FLEETLINE_REDSHIFT_DB_USER", ""),
];

/// What `Ref <LogicalId>` means locally for resources whose name AWS would generate.
fn local_resource_refs(stream: &str) -> BTreeMap<String, String> {
    [
        ("TelemetryStream", stream),
        ("LakeBucket", "fleetline-lake"),
        // localstack/lib/resources.py's DirectPut delivery stream.
        ("LakeDeliveryStream", "fleetline-lake-delivery"),
        ("ServingAdminSecret", ""),
        // Its URL depends on the endpoint: localstack/stack creates `fleetline-lake-changes`
        // and the callers pass `--resource-ref LakeChangesQueue=<url>`. Without it,
        // batch-views lists the lake instead of draining change notifications.
        ("LakeChangesQueue", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template has no Resources section")]
    NoResources,
    #[error("function {function}: {message}")]
    Function { function: String, message: String },
}

/// How to read the template locally.
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    /// `--parameter-override Name=Value`.
    pub parameter_overrides: BTreeMap<String, String>,
    /// The local Kinesis stream every Kinesis event reads (default: the template's
    /// stream name, `vehicle-telemetry`).
    pub stream_override: Option<String>,
    /// `--resource-ref LogicalId=Value`: what `Ref LogicalId` means locally, over the
    /// built-in table (e.g. a queue URL, which depends on the endpoint).
    pub resource_refs: BTreeMap<String, String>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: lambda_host::ACCOUNT_ID.to_owned(),
            stack_name: "fleetline".to_owned(),
            parameter_overrides: BTreeMap::new(),
            stream_override: None,
            resource_refs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub functions: Vec<FunctionDef>,
    /// Every parameter's value (defaults, then `--parameter-override`).
    pub parameters: BTreeMap<String, String>,
    /// The REST API stage (requestContext.stage), e.g. `api`.
    pub api_stage: String,
    /// Things that could not be resolved and were skipped (logged by the caller).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The last component of CodeUri (`functions/stream-processor` → `stream-processor`),
    /// also the binary's name.
    pub name: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub env: BTreeMap<String, String>,
    pub events: Vec<EventDef>,
    /// The async-invocation dead-letter queue's ARN (DeadLetterQueue.TargetArn).
    pub dead_letter_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventDef {
    pub name: String,
    pub source: EventSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventSource {
    Kinesis(KinesisEvent),
    Schedule(ScheduleEvent),
    Api(ApiEvent),
    /// An event type the runner does not play (logged).
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    /// AT_TIMESTAMP, epoch seconds.
    AtTimestamp(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KinesisEvent {
    pub stream_name: String,
    pub starting_position: StartingPosition,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub max_retry_attempts: i64,
    /// `-1` = no limit.
    pub max_record_age_secs: i64,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    /// DestinationConfig.OnFailure.Destination (an ARN).
    pub on_failure: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEvent {
    pub expression: String,
    pub enabled: bool,
    /// `Input`: a JSON text sent instead of the scheduled-event payload.
    pub input: Option<String>,
    /// The rule name used in the event's `resources`.
    pub rule_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEvent {
    pub path: String,
    /// Upper case; `ANY` matches every method.
    pub method: String,
    /// The event's `Auth.ApiKeyRequired` (`None`: the API's default).
    pub api_key_required: Option<bool>,
}

impl Template {
    pub fn load(path: &Path, options: &TemplateOptions) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, options)
    }

    pub fn parse(text: &str, options: &TemplateOptions) -> Result<Self, TemplateError> {
        let doc: Value = serde_yaml::from_str(text)?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .ok_or(TemplateError::NoResources)?;
        let (parameters, list_parameters) = parameters(&doc, &options.parameter_overrides);
        let stream = match &options.stream_override {
            Some(stream) => stream.clone(),
            None => parameters
                .get("StreamName")
                .cloned()
                .unwrap_or_else(|| "vehicle-telemetry".to_owned()),
        };
        let ctx = Context {
            parameters: parameters.clone(),
            list_parameters,
            conditions: doc
                .get("Conditions")
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default(),
            resources: resources.clone(),
            resource_refs: local_resource_refs(&stream)
                .into_iter()
                .chain(options.resource_refs.clone())
                .collect(),
            region: options.region.clone(),
            account_id: options.account_id.clone(),
            stack_name: options.stack_name.clone(),
        };
        let globals = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Value::Null);

        let mut warnings = Vec::new();
        let mut functions = Vec::new();
        let mut api_stage = None;
        for (id, resource) in &resources {
            let Some(id) = id.as_str() else { continue };
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    let function = FunctionReader::new(&ctx, &globals, &stream, &mut warnings)
                        .read(id, resource)?;
                    if let Some(function) = function {
                        functions.push(function);
                    }
                }
                Some("AWS::Serverless::Api") => {
                    if let Some(stage) = resource
                        .get("Properties")
                        .and_then(|p| p.get("StageName"))
                        .and_then(|s| ctx.resolve_string(s).ok().flatten())
                    {
                        api_stage = Some(stage);
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            functions,
            parameters,
            // SAM's implicit API uses the stage "Prod".
            api_stage: api_stage.unwrap_or_else(|| "Prod".to_owned()),
            warnings,
        })
    }

    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Parameter values: defaults, then overrides. Also the names of list-typed parameters.
fn parameters(
    doc: &Value,
    overrides: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut values = BTreeMap::new();
    let mut lists = Vec::new();
    if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
        for (name, spec) in params {
            let Some(name) = name.as_str() else { continue };
            let kind = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
            if kind == "CommaDelimitedList" || kind.starts_with("List<") {
                lists.push(name.to_owned());
            }
            if let Some(default) = spec.get("Default").and_then(scalar_string) {
                values.insert(name.to_owned(), default);
            }
        }
    }
    values.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    (values, lists)
}

struct FunctionReader<'a> {
    ctx: &'a Context,
    globals: &'a Value,
    stream: &'a str,
    warnings: &'a mut Vec<String>,
}

impl<'a> FunctionReader<'a> {
    fn new(
        ctx: &'a Context,
        globals: &'a Value,
        stream: &'a str,
        warnings: &'a mut Vec<String>,
    ) -> Self {
        Self {
            ctx,
            globals,
            stream,
            warnings,
        }
    }

    fn read(mut self, id: &str, resource: &Value) -> Result<Option<FunctionDef>, TemplateError> {
        let empty = Value::Mapping(Mapping::new());
        let props = resource.get("Properties").unwrap_or(&empty);
        let Some(code_uri) = props.get("CodeUri").and_then(Value::as_str) else {
            self.warnings.push(format!(
                "function {id}: CodeUri is not a local directory; skipped"
            ));
            return Ok(None);
        };
        let name = code_uri
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| TemplateError::Function {
                function: id.to_owned(),
                message: format!("CodeUri {code_uri:?} has no directory name"),
            })?
            .to_owned();
        let globals = self.globals;
        let setting = |key: &str| props.get(key).or_else(|| globals.get(key));
        let timeout = match setting("Timeout") {
            Some(v) => self.number(&name, "Timeout", v)?,
            None => DEFAULT_TIMEOUT_SECS as i64,
        };
        let memory = match setting("MemorySize") {
            Some(v) => self.number(&name, "MemorySize", v)?,
            None => i64::from(DEFAULT_MEMORY_MB),
        };
        let env = self.environment(&name, props);
        let dead_letter_target = props
            .get("DeadLetterQueue")
            .and_then(|d| d.get("TargetArn"))
            .and_then(|v| self.string(&name, "DeadLetterQueue.TargetArn", v));
        let mut events = Vec::new();
        if let Some(map) = props.get("Events").and_then(Value::as_mapping) {
            for (event_name, event) in map {
                let Some(event_name) = event_name.as_str() else {
                    continue;
                };
                let source = self.event(&name, id, event_name, event)?;
                events.push(EventDef {
                    name: event_name.to_owned(),
                    source,
                });
            }
        }
        Ok(Some(FunctionDef {
            logical_id: id.to_owned(),
            name,
            timeout: Duration::from_secs(u64::try_from(timeout.max(1)).unwrap_or(1)),
            memory_mb: u32::try_from(memory.max(1)).unwrap_or(DEFAULT_MEMORY_MB),
            env,
            events,
            dead_letter_target,
        }))
    }

    /// Globals' variables overridden by the function's own; each resolved, else the local
    /// fallback table, else left out (the function's own default applies) with a warning.
    fn environment(&mut self, function: &str, props: &Value) -> BTreeMap<String, String> {
        let mut raw: Vec<(String, Value)> = Vec::new();
        for source in [self.globals, props] {
            if let Some(vars) = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
            {
                for (k, v) in vars {
                    if let Some(k) = k.as_str() {
                        raw.retain(|(existing, _)| existing != k);
                        raw.push((k.to_owned(), v.clone()));
                    }
                }
            }
        }
        let mut env = BTreeMap::new();
        for (key, value) in raw {
            match self.ctx.resolve_string(&value) {
                Ok(Some(resolved)) => {
                    env.insert(key, resolved);
                }
                Ok(None) => {}
                Err(err) => {
                    let fallback = if key == "STREAM_NAME" {
                        Some(self.stream)
                    } else {
                        LOCAL_ENV_FALLBACKS
                            .iter()
                            .find(|(name, _)| *name == key)
                            .map(|(_, v)| *v)
                    };
                    match fallback {
                        Some(local) => {
                            env.insert(key, local.to_owned());
                        }
                        None => self.warnings.push(format!(
                            "function {function}: environment variable {key} left unset ({err})"
                        )),
                    }
                }
            }
        }
        env
    }

    fn event(
        &mut self,
        function: &str,
        logical_id: &str,
        event_name: &str,
        event: &Value,
    ) -> Result<EventSource, TemplateError> {
        let kind = event.get("Type").and_then(Value::as_str).unwrap_or("");
        let empty = Value::Mapping(Mapping::new());
        let props = event.get("Properties").unwrap_or(&empty);
        match kind {
            "Kinesis" => self.kinesis_event(function, event_name, props),
            "Schedule" | "ScheduleV2" => {
                self.schedule_event(function, logical_id, event_name, kind, props)
            }
            "Api" => self.api_event(function, event_name, props),
            other => {
                self.warnings.push(format!(
                    "function {function}: event {event_name} of type {other:?} is not played locally"
                ));
                Ok(EventSource::Other(other.to_owned()))
            }
        }
    }

    fn kinesis_event(
        &mut self,
        function: &str,
        event_name: &str,
        props: &Value,
    ) -> Result<EventSource, TemplateError> {
        let stream_arn = props
            .get("Stream")
            .and_then(|v| self.string(function, &format!("event {event_name}: Stream"), v));
        // Locally every Kinesis event reads the one local stream; the ARN only
        // tells which stream the template meant.
        let stream_name = match stream_arn.as_deref().and_then(|a| a.split_once(":stream/")) {
            Some((_, name)) if !name.is_empty() => name.to_owned(),
            _ => self.stream.to_owned(),
        };
        let starting_position = self.starting_position(function, event_name, props)?;
        let batch_size = self
            .opt_number(function, props, "BatchSize", event_name)?
            .map_or(DEFAULT_KINESIS_BATCH_SIZE, |n| {
                usize::try_from(n.clamp(1, 10_000)).unwrap_or(DEFAULT_KINESIS_BATCH_SIZE)
            });
        let window = self
            .opt_number(
                function,
                props,
                "MaximumBatchingWindowInSeconds",
                event_name,
            )?
            .unwrap_or(0);
        let max_retry_attempts = self
            .opt_number(function, props, "MaximumRetryAttempts", event_name)?
            .unwrap_or(-1);
        let max_record_age_secs = self
            .opt_number(function, props, "MaximumRecordAgeInSeconds", event_name)?
            .unwrap_or(-1);
        let bisect_on_error = self.opt_bool(props, "BisectBatchOnFunctionError", false);
        let enabled = self.opt_bool(props, "Enabled", true);
        let report_batch_item_failures = props
            .get("FunctionResponseTypes")
            .and_then(|v| self.ctx.resolve(v).ok().flatten())
            .and_then(|v| v.as_sequence().cloned())
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
            });
        let on_failure = props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnFailure"))
            .and_then(|o| o.get("Destination"))
            .and_then(|v| {
                self.string(
                    function,
                    &format!("event {event_name}: OnFailure.Destination"),
                    v,
                )
            });
        Ok(EventSource::Kinesis(KinesisEvent {
            stream_name,
            starting_position,
            batch_size,
            batching_window: Duration::from_secs(u64::try_from(window.max(0)).unwrap_or(0)),
            max_retry_attempts,
            max_record_age_secs,
            bisect_on_error,
            report_batch_item_failures,
            on_failure,
            enabled,
        }))
    }

    /// `StartingPosition` (default LATEST) and, for AT_TIMESTAMP, its timestamp.
    fn starting_position(
        &mut self,
        function: &str,
        event_name: &str,
        props: &Value,
    ) -> Result<StartingPosition, TemplateError> {
        let position = self
            .opt_string(function, props, "StartingPosition", event_name)
            .unwrap_or_else(|| "LATEST".to_owned());
        Ok(match position.as_str() {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" => StartingPosition::Latest,
            "AT_TIMESTAMP" => {
                let ts = self
                    .opt_number(function, props, "StartingPositionTimestamp", event_name)?
                    .unwrap_or(0);
                StartingPosition::AtTimestamp(ts as f64)
            }
            other => {
                return Err(TemplateError::Function {
                    function: function.to_owned(),
                    message: format!("event {event_name}: : unknown StartingPosition {other}"),
                });
            }
        })
    }

    fn schedule_event(
        &mut self,
        function: &str,
        logical_id: &str,
        event_name: &str,
        kind: &str,
        props: &Value,
    ) -> Result<EventSource, TemplateError> {
        let what = |field: &str| format!("event {event_name}: {field}");
        let key = if kind == "Schedule" {
            "Schedule"
        } else {
            "ScheduleExpression"
        };
        let expression = props
            .get(key)
            .and_then(|v| self.string(function, &what(key), v))
            .ok_or_else(|| TemplateError::Function {
                function: function.to_owned(),
                message: format!("{} is missing or unresolvable", what(key)),
            })?;
        let state_enabled = props
            .get("State")
            .and_then(|v| self.ctx.resolve_string(v).ok().flatten())
            .map(|s| s.eq_ignore_ascii_case("ENABLED"));
        let enabled = state_enabled.unwrap_or_else(|| self.opt_bool(props, "Enabled", true));
        let input = props
            .get("Input")
            .and_then(|v| self.string(function, &what("Input"), v));
        let rule_name = props
            .get("Name")
            .and_then(|v| self.ctx.resolve_string(v).ok().flatten())
            .unwrap_or_else(|| format!("{logical_id}{event_name}"));
        Ok(EventSource::Schedule(ScheduleEvent {
            expression,
            enabled,
            input,
            rule_name,
        }))
    }

    fn api_event(
        &mut self,
        function: &str,
        event_name: &str,
        props: &Value,
    ) -> Result<EventSource, TemplateError> {
        let what = |field: &str| format!("event {event_name}: {field}");
        let path = props
            .get("Path")
            .and_then(|v| self.string(function, &what("Path"), v))
            .ok_or_else(|| TemplateError::Function {
                function: function.to_owned(),
                message: format!("{} is missing", what("Path")),
            })?;
        let method = props
            .get("Method")
            .and_then(|v| self.string(function, &what("Method"), v))
            .unwrap_or_else(|| "ANY".to_owned())
            .to_ascii_uppercase();
        let api_key_required = props
            .get("Auth")
            .and_then(|a| a.get("ApiKeyRequired"))
            .and_then(Value::as_bool);
        Ok(EventSource::Api(ApiEvent {
            path,
            method,
            api_key_required,
        }))
    }

    fn string(&mut self, function: &str, what: &str, value: &Value) -> Option<String> {
        match self.ctx.resolve_string(value) {
            Ok(v) => v,
            Err(err) => {
                self.warnings
                    .push(format!("function {function}: {what}: {err}"));
                None
            }
        }
    }

    fn opt_string(
        &mut self,
        function: &str,
        props: &Value,
        key: &str,
        event: &str,
    ) -> Option<String> {
        let value = props.get(key)?;
        self.string(function, &format!("event {event}: {key}"), value)
    }

    fn number(&mut self, function: &str, what: &str, value: &Value) -> Result<i64, TemplateError> {
        let text = self.ctx.resolve_string(value).ok().flatten();
        text.as_deref()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or_else(|| TemplateError::Function {
                function: function.to_owned(),
                message: format!("{what} is not a number: {value:?}"),
            })
    }

    fn opt_number(
        &mut self,
        function: &str,
        props: &Value,
        key: &str,
        event: &str,
    ) -> Result<Option<i64>, TemplateError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => self
                .number(function, &format!("event {event}: {key}"), v)
                .map(Some),
        }
    }

    /// A boolean property (`Enabled: !If [Cond, true, false]` included); an unresolvable
    /// value keeps the default, with a warning (a mapping silently on would hide a mistake).
    fn opt_bool(&mut self, props: &Value, key: &str, default: bool) -> bool {
        let Some(value) = props.get(key) else {
            return default;
        };
        match self.ctx.resolve_string(value) {
            Ok(Some(s)) => s.eq_ignore_ascii_case("true"),
            Ok(None) => default,
            Err(err) => {
                self.warnings
                    .push(format!("{key}: {err}; taken as {default}"));
                default
            }
        }
    }
}
