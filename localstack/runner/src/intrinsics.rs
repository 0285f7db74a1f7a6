//! A small evaluator for the CloudFormation intrinsic functions template.yaml uses (`Ref`,
//! `Fn::Sub`, `Fn::GetAtt`, `Fn::If`, `Fn::Join`, conditions), in both the short-form tag
//! syntax (`!Ref X`, which serde_yaml hands us as a `TaggedValue`) and the long form
//! (`{"Ref": "X"}`). Parameters take their defaults (or `--parameter-override`); resources
//! that only exist in AWS resolve through a local table, or not at all ([`Unresolved`]).

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// A value that cannot be computed locally (e.g. `!Ref` of a secret's ARN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {0}")]
pub struct Unresolved(pub String);

/// Guards against condition cycles in a malformed template.
const MAX_DEPTH: usize = 64;

pub struct Context {
    /// Parameter values (defaults overridden by the caller), as CloudFormation sees them.
    pub parameters: BTreeMap<String, String>,
    /// Parameters of type CommaDelimitedList / List<…>: `Ref` yields a list.
    pub list_parameters: Vec<String>,
    pub conditions: Mapping,
    pub resources: Mapping,
    /// What `Ref <LogicalId>` means locally for resources that only exist in AWS.
    pub resource_refs: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
}

/// The intrinsic function in `value`, normalised to its long name (`Fn::Sub`), if any.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = match tag {
                "Ref" | "Condition" => tag.to_owned(),
                other => format!("Fn::{other}"),
            };
            Some((name, &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_owned(), inner))
        }
        _ => None,
    }
}

/// A scalar as CloudFormation stringifies it.
pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Context {
    /// Resolves every intrinsic inside `value`. `Ok(None)` is `AWS::NoValue`.
    pub fn resolve(&self, value: &Value) -> Result<Option<Value>, Unresolved> {
        self.resolve_at(value, 0)
    }

    /// Resolves `value` to a string (numbers and booleans are stringified).
    pub fn resolve_string(&self, value: &Value) -> Result<Option<String>, Unresolved> {
        match self.resolve(value)? {
            None => Ok(None),
            Some(resolved) => scalar_string(&resolved)
                .map(Some)
                .ok_or_else(|| Unresolved(format!("{value:?} (not a scalar)"))),
        }
    }

    fn resolve_at(&self, value: &Value, depth: usize) -> Result<Option<Value>, Unresolved> {
        if depth > MAX_DEPTH {
            return Err(Unresolved("a too deeply nested expression".to_owned()));
        }
        if let Some((name, arg)) = intrinsic(value) {
            return self.function(&name, arg, depth + 1);
        }
        match value {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.resolve_at(item, depth + 1)? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Sequence(out)))
            }
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve_at(v, depth + 1)? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Mapping(out)))
            }
            Value::Tagged(_) => Err(Unresolved(format!("{value:?}"))),
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn function(&self, name: &str, arg: &Value, depth: usize) -> Result<Option<Value>, Unresolved> {
        match name {
            "Ref" => {
                let target = arg
                    .as_str()
                    .ok_or_else(|| Unresolved(format!("Ref {arg:?}")))?;
                self.reference(target, depth)
            }
            "Fn::Sub" => self.sub(arg, depth).map(|s| Some(Value::String(s))),
            "Fn::GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| Unresolved(format!("GetAtt {s}")))?,
                    Value::Sequence(parts) if parts.len() == 2 => {
                        match (parts[0].as_str(), parts[1].as_str()) {
                            (Some(a), Some(b)) => (a.to_owned(), b.to_owned()),
                            _ => return Err(Unresolved(format!("GetAtt {arg:?}"))),
                        }
                    }
                    _ => return Err(Unresolved(format!("GetAtt {arg:?}"))),
                };
                self.get_att(&id, &attr, depth)
                    .map(|s| Some(Value::String(s)))
            }
            "Fn::If" => {
                let parts = arg
                    .as_sequence()
                    .filter(|p| p.len() == 3)
                    .ok_or_else(|| Unresolved(format!("If {arg:?}")))?;
                let condition = parts[0]
                    .as_str()
                    .ok_or_else(|| Unresolved(format!("If {arg:?}")))?;
                let branch = if self.condition(condition, depth)? {
                    &parts[1]
                } else {
                    &parts[2]
                };
                self.resolve_at(branch, depth)
            }
            "Fn::Join" => {
                let parts = arg
                    .as_sequence()
                    .filter(|p| p.len() == 2)
                    .ok_or_else(|| Unresolved(format!("Join {arg:?}")))?;
                let delimiter = parts[0].as_str().unwrap_or_default();
                let items = match self.resolve_at(&parts[1], depth)? {
                    Some(Value::Sequence(items)) => items,
                    _ => return Err(Unresolved(format!("Join {arg:?}"))),
                };
                let strings: Option<Vec<String>> = items.iter().map(scalar_string).collect();
                let strings = strings.ok_or_else(|| Unresolved(format!("Join {arg:?}")))?;
                Ok(Some(Value::String(strings.join(delimiter))))
            }
            other => Err(Unresolved(format!("{other} {arg:?}"))),
        }
    }

    fn reference(&self, target: &str, depth: usize) -> Result<Option<Value>, Unresolved> {
        let text = |s: &str| Ok(Some(Value::String(s.to_owned())));
        match target {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => return text(&self.region),
            "AWS::AccountId" => return text(&self.account_id),
            "AWS::StackName" => return text(&self.stack_name),
            "AWS::Partition" => return text("aws"),
            "AWS::URLSuffix" => return text("amazonaws.com"),
            _ => {}
        }
        if let Some(value) = self.parameters.get(target) {
            if self.list_parameters.iter().any(|p| p == target) {
                let items = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.trim().to_owned()))
                    .collect();
                return Ok(Some(Value::Sequence(items)));
            }
            return text(value);
        }
        if let Some(value) = self.resource_refs.get(target) {
            return text(value);
        }
        self.resource_name(target, depth)
            .map(|name| Some(Value::String(name)))
    }

    /// `Ref` of resource types whose Ref is their (explicitly named) name.
    fn resource_name(&self, id: &str, depth: usize) -> Result<String, Unresolved> {
        let unresolved = || Unresolved(format!("Ref {id}"));
        let resource = self.resources.get(id).ok_or_else(unresolved)?;
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = resource.get("Properties").ok_or_else(unresolved)?;
        let name_value = match kind {
            "AWS::Kinesis::Stream" => props.get("Name"),
            "AWS::S3::Bucket" => props.get("BucketName"),
            "AWS::RedshiftServerless::Workgroup" => props.get("WorkgroupName"),
            "AWS::RedshiftServerless::Namespace" => props.get("NamespaceName"),
            "AWS::KinesisFirehose::DeliveryStream" => props.get("DeliveryStreamName"),
            "AWS::Logs::LogGroup" => props.get("LogGroupName"),
            "AWS::Glue::Database" => props.get("DatabaseInput").and_then(|d| d.get("Name")),
            _ => None,
        }
        .ok_or_else(unresolved)?;
        match self.resolve_at(name_value, depth)? {
            Some(v) => scalar_string(&v).ok_or_else(unresolved),
            None => Err(unresolved()),
        }
    }

    fn get_att(&self, id: &str, attr: &str, depth: usize) -> Result<String, Unresolved> {
        let unresolved = || Unresolved(format!("GetAtt {id}.{attr}"));
        let kind = self
            .resources
            .get(id)
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            .ok_or_else(unresolved)?;
        let (region, account) = (&self.region, &self.account_id);
        match (kind, attr) {
            ("AWS::Kinesis::Stream", "Arn") => {
                let name = self.ref_string(id, depth)?;
                Ok(format!("arn:aws:kinesis:{region}:{account}:stream/{name}"))
            }
            ("AWS::SQS::Queue", "Arn" | "QueueName") => {
                let name = self.queue_name(id, depth)?;
                Ok(if attr == "Arn" {
                    format!("arn:aws:sqs:{region}:{account}:{name}")
                } else {
                    name
                })
            }
            ("AWS::Logs::LogGroup", "Arn") => {
                let name = self.ref_string(id, depth)?;
                Ok(format!(
                    "arn:aws:logs:{region}:{account}:log-group:{name}:*"
                ))
            }
            _ => Err(unresolved()),
        }
    }

    fn queue_name(&self, id: &str, depth: usize) -> Result<String, Unresolved> {
        let unresolved = || Unresolved(format!("the name of queue {id}"));
        let name = self
            .resources
            .get(id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("QueueName"))
            .ok_or_else(unresolved)?;
        self.resolve_string_at(name, depth)?.ok_or_else(unresolved)
    }

    fn ref_string(&self, id: &str, depth: usize) -> Result<String, Unresolved> {
        match self.reference(id, depth)? {
            Some(v) => scalar_string(&v).ok_or_else(|| Unresolved(format!("Ref {id}"))),
            None => Err(Unresolved(format!("Ref {id}"))),
        }
    }

    fn resolve_string_at(&self, value: &Value, depth: usize) -> Result<Option<String>, Unresolved> {
        match self.resolve_at(value, depth)? {
            None => Ok(None),
            Some(v) => scalar_string(&v)
                .map(Some)
                .ok_or_else(|| Unresolved(format!("{value:?}"))),
        }
    }

    /// `Fn::Sub`: `${Param}`, `${Resource}`, `${Resource.Attr}`, `${AWS::…}`, `${!Literal}`,
    /// and the variables map of the two-argument form.
    fn sub(&self, arg: &Value, depth: usize) -> Result<String, Unresolved> {
        let (template, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Sequence(parts) if parts.len() == 2 => (
                parts[0]
                    .as_str()
                    .ok_or_else(|| Unresolved(format!("Sub {arg:?}")))?,
                parts[1].as_mapping(),
            ),
            _ => return Err(Unresolved(format!("Sub {arg:?}"))),
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Unresolved(format!("Sub {template:?} (unclosed ${{)")))?;
            let var = &after[..end];
            if let Some(literal) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.and_then(|m| m.get(var)) {
                let value = self
                    .resolve_string_at(value, depth)?
                    .ok_or_else(|| Unresolved(format!("Sub variable {var}")))?;
                out.push_str(&value);
            } else if let Some((id, attr)) = var.split_once('.') {
                out.push_str(&self.get_att(id, attr, depth)?);
            } else {
                out.push_str(&self.ref_string(var, depth)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Evaluates the named condition of the Conditions section.
    pub fn condition(&self, name: &str, depth: usize) -> Result<bool, Unresolved> {
        let expr = self
            .conditions
            .get(name)
            .ok_or_else(|| Unresolved(format!("condition {name}")))?;
        self.boolean(expr, depth + 1)
    }

    fn boolean(&self, expr: &Value, depth: usize) -> Result<bool, Unresolved> {
        if depth > MAX_DEPTH {
            return Err(Unresolved("a too deeply nested condition".to_owned()));
        }
        let unresolved = || Unresolved(format!("condition {expr:?}"));
        // `{Condition: X}` in the long form is a one-key mapping without the Fn:: prefix.
        let (name, arg) = match intrinsic(expr) {
            Some(found) => found,
            None => match expr.as_mapping().and_then(|m| m.get("Condition")) {
                Some(arg) => ("Condition".to_owned(), arg),
                None => return Err(unresolved()),
            },
        };
        let list = || arg.as_sequence().ok_or_else(unresolved);
        match name.as_str() {
            "Condition" => self.condition(arg.as_str().ok_or_else(unresolved)?, depth),
            "Fn::Equals" => {
                let parts = list()?;
                if parts.len() != 2 {
                    return Err(unresolved());
                }
                let a = self.resolve_at(&parts[0], depth)?;
                let b = self.resolve_at(&parts[1], depth)?;
                Ok(comparable(a.as_ref()) == comparable(b.as_ref()))
            }
            "Fn::Not" => {
                let parts = list()?;
                let first = parts.first().ok_or_else(unresolved)?;
                Ok(!self.boolean(first, depth + 1)?)
            }
            "Fn::And" => {
                for part in list()? {
                    if !self.boolean(part, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "Fn::Or" => {
                for part in list()? {
                    if self.boolean(part, depth + 1)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            _ => Err(unresolved()),
        }
    }
}

/// CloudFormation compares `Fn::Equals` operands as strings (`0` equals `'0'`).
fn comparable(value: Option<&Value>) -> Option<String> {
    value.and_then(scalar_string)
}
