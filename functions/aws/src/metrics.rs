//! CloudWatch metrics as Embedded Metric Format (EMF) log lines: one JSON object on one
//! stdout line, which CloudWatch Logs turns into metrics. No API calls, no extra latency.
//!
//! Document shape (EMF specification):
//! ```json
//! {"_aws":{"Timestamp":1764090271000,
//!          "CloudWatchMetrics":[{"Namespace":"Fleetline",
//!                                "Dimensions":[["FunctionName"]],
//!                                "Metrics":[{"Name":"RecordsIn","Unit":"Count"}]}]},
//!  "FunctionName":"stream-processor","RecordsIn":500}
//! ```

use std::io::Write;

use serde_json::{Map, Value, json};

/// Namespace of every Fleetline metric.
pub const NAMESPACE: &str = "Fleetline";
/// The one dimension every function sets.
pub const FUNCTION_DIMENSION: &str = "FunctionName";
/// EMF allows at most 100 metrics per directive and 30 dimensions per dimension set.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

/// A duration in whole milliseconds for a `Milliseconds` metric or a log field
/// (saturating: no real run lasts 584 million years).
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// CloudWatch metric units used by Fleetline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Bytes,
    Percent,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::Percent => "Percent",
            Unit::None => "None",
        }
    }
}

/// One EMF document under construction: build it during an invocation, [`Emf::emit`] once
/// at the end.
///
/// ```
/// use fleetline_aws::metrics::{Emf, Unit};
/// let mut m = Emf::new("stream-processor");
/// m.count("RecordsIn", 500).count("RecordsStored", 497).count("RecordsRejected", 3);
/// m.metric("WarehouseMillis", Unit::Milliseconds, 84.0);
/// m.emit();
/// ```
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, f64)>,
    properties: Vec<(String, Value)>,
}

impl Emf {
    /// Namespace `Fleetline`, dimension `FunctionName` = `function` (the logical name,
    /// e.g. `stream-processor`, so dashboards and alarms do not depend on stack names).
    pub fn new(function: &str) -> Self {
        Self::with_namespace(NAMESPACE).dimension(FUNCTION_DIMENSION, function)
    }

    /// A document in another namespace, with no dimensions yet.
    pub fn with_namespace(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            dimensions: Vec::new(),
            metrics: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// Adds a dimension (all dimensions form one dimension set). Replaces a same-named one.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.retain(|(n, _)| n != name);
        if self.dimensions.len() < MAX_DIMENSIONS {
            self.dimensions.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Adds `n` to a Count metric (created at 0 on first use), so per-record code can call
    /// it repeatedly.
    pub fn count(&mut self, name: &str, n: u64) -> &mut Self {
        match self.metrics.iter_mut().find(|(m, _, _)| m == name) {
            Some((_, _, v)) => *v += n as f64,
            None => self.push(name, Unit::Count, n as f64),
        }
        self
    }

    /// Sets a metric value (replacing an earlier one of the same name). Non-finite values
    /// are dropped: EMF cannot carry them and they would void the whole document.
    pub fn metric(&mut self, name: &str, unit: Unit, value: f64) -> &mut Self {
        if value.is_finite() {
            self.metrics.retain(|(m, _, _)| m != name);
            self.push(name, unit, value);
        }
        self
    }

    /// A duration metric in milliseconds.
    pub fn duration(&mut self, name: &str, elapsed: std::time::Duration) -> &mut Self {
        self.metric(name, Unit::Milliseconds, elapsed.as_secs_f64() * 1000.0)
    }

    /// A searchable non-metric field (request id, boundary day …).
    pub fn property(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.properties.retain(|(n, _)| n != name);
        self.properties.push((name.to_owned(), value.into()));
        self
    }

    fn push(&mut self, name: &str, unit: Unit, value: f64) {
        if self.metrics.len() < MAX_METRICS {
            self.metrics.push((name.to_owned(), unit, value));
        } else {
            tracing::warn!(
                metric = name,
                "EMF document already holds {MAX_METRICS} metrics; dropped"
            );
        }
    }

    /// The metric's current value, if set.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(m, _, _)| m == name)
            .map(|(_, _, v)| *v)
    }

    /// The EMF document with the given timestamp (milliseconds since the Unix epoch).
    /// Metric and dimension names win over same-named properties.
    pub fn to_json_at(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (k, v) in &self.properties {
            root.insert(k.clone(), v.clone());
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let metric_defs: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metric_defs,
                }],
            }),
        );
        for (n, v) in &self.dimensions {
            root.insert(n.clone(), Value::String(v.clone()));
        }
        for (n, _, v) in &self.metrics {
            // Whole numbers print as integers (Count metrics read naturally in the logs).
            let num = if v.fract() == 0.0 && v.abs() < 9.0e15 {
                json!(*v as i64)
            } else {
                json!(*v)
            };
            root.insert(n.clone(), num);
        }
        Value::Object(root)
    }

    /// One line of JSON, timestamped now.
    pub fn to_line(&self) -> String {
        self.to_json_at(chrono::Utc::now().timestamp_millis())
            .to_string()
    }

    /// Writes the document as one stdout line (one CloudWatch log event). Nothing is
    /// written when no metric was recorded.
    pub fn emit(&self) {
        if self.metrics.is_empty() {
            return;
        }
        let mut line = self.to_line();
        line.push('\n');
        // One write under the stdout lock keeps the line whole next to log output.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_follows_the_emf_specification() {
        let mut m = Emf::new("stream-processor");
        m.count("RecordsIn", 3)
            .count("RecordsIn", 2)
            .count("Duplicates", 0);
        m.metric("WarehouseMillis", Unit::Milliseconds, 12.5);
        m.property("RequestId", "req-1");
        let doc = m.to_json_at(1_764_090_271_000);

        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], json!(1_764_090_271_000i64));
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert_eq!(d["Namespace"], "Fleetline");
        assert_eq!(d["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(
            d["Metrics"],
            json!([
                {"Name": "RecordsIn", "Unit": "Count"},
                {"Name": "Duplicates", "Unit": "Count"},
                {"Name": "WarehouseMillis", "Unit": "Milliseconds"},
            ])
        );
        // Every referenced member is at the root with the right JSON type.
        assert_eq!(doc["FunctionName"], "stream-processor");
        assert_eq!(doc["RecordsIn"], json!(5));
        assert_eq!(doc["Duplicates"], json!(0));
        assert_eq!(doc["WarehouseMillis"], json!(12.5));
        assert_eq!(doc["RequestId"], "req-1");
        for def in d["Metrics"].as_array().unwrap() {
            assert!(doc[def["Name"].as_str().unwrap()].is_number());
        }
        for set in d["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                assert!(doc[name.as_str().unwrap()].is_string());
            }
        }
    }

    #[test]
    fn line_is_single_line_json_and_bad_values_are_dropped() {
        let mut m = Emf::new("batch-views");
        m.metric("Nan", Unit::None, f64::NAN);
        m.duration("RunMillis", std::time::Duration::from_micros(1500));
        assert_eq!(m.value("Nan"), None);
        assert_eq!(m.value("RunMillis"), Some(1.5));
        let line = m.to_line();
        assert!(!line.contains('\n'));
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert!(parsed["_aws"]["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(
            parsed["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn dimensions_replace_and_properties_do_not_shadow_metrics() {
        let mut m = Emf::new("a")
            .dimension("FunctionName", "b")
            .dimension("Stage", "prod");
        m.property("RecordsIn", "not a number")
            .count("RecordsIn", 1);
        let doc = m.to_json_at(0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName", "Stage"]])
        );
        assert_eq!(doc["FunctionName"], "b");
        assert_eq!(doc["RecordsIn"], json!(1));
    }
}
