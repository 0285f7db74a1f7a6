//! Reading the real template.yaml: functions, settings, environment, events.

use std::path::PathBuf;
use std::time::Duration;

use local_runner::template::{
    ApiEvent, EventSource, FunctionDef, KinesisEvent, StartingPosition, Template, TemplateOptions,
};

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

fn load(options: &TemplateOptions) -> Template {
    Template::load(&template_path(), options).expect("template.yaml parses")
}

fn function<'a>(t: &'a Template, name: &str) -> &'a FunctionDef {
    t.function(name)
        .unwrap_or_else(|| panic!("function {name}"))
}

fn kinesis(f: &FunctionDef) -> &KinesisEvent {
    f.events
        .iter()
        .find_map(|e| match &e.source {
            EventSource::Kinesis(k) => Some(k),
            _ => None,
        })
        .expect("a Kinesis event")
}

fn schedule(f: &FunctionDef) -> String {
    f.events
        .iter()
        .find_map(|e| match &e.source {
            EventSource::Schedule(s) => Some(s.expression.clone()),
            _ => None,
        })
        .expect("a schedule")
}

fn env<'a>(f: &'a FunctionDef, key: &str) -> Option<&'a str> {
    f.env.get(key).map(String::as_str)
}

#[test]
fn every_function_is_found_by_its_code_uri_name() {
    let t = load(&TemplateOptions::default());
    let mut names: Vec<&str> = t.functions.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "batch-views",
            "lake-writer",
            "query-api",
            "schema-migrator",
            "simulator",
            "stream-processor",
            "view-refresher"
        ]
    );
    assert_eq!(t.api_stage, "api");
}

#[test]
fn timeouts_and_memory_come_from_the_function_or_globals() {
    let t = load(&TemplateOptions::default());
    let expect = [
        ("stream-processor", 60, 256),
        ("lake-writer", 60, 512),
        ("batch-views", 900, 256),
        ("view-refresher", 60, 256),
        ("query-api", 29, 256),
        ("simulator", 900, 256),
        ("schema-migrator", 900, 256),
    ];
    for (name, timeout, memory) in expect {
        let f = function(&t, name);
        assert_eq!(f.timeout, Duration::from_secs(timeout), "{name} timeout");
        assert_eq!(f.memory_mb, memory, "{name} memory");
    }
}

#[test]
fn kinesis_events_carry_the_event_source_mapping_settings() {
    let t = load(&TemplateOptions::default());
    // Each consumer has its own batching window parameter: SpeedBatchingWindowSeconds
    // (freshness) and KinesisBatchingWindowSeconds (lake object size).
    for (name, window) in [("stream-processor", 1), ("lake-writer", 5)] {
        let k = kinesis(function(&t, name));
        assert_eq!(
            k,
            &KinesisEvent {
                stream_name: "vehicle-telemetry".to_owned(),
                starting_position: StartingPosition::TrimHorizon,
                batch_size: 500,
                batching_window: Duration::from_secs(window),
                max_retry_attempts: 10,
                max_record_age_secs: -1,
                bisect_on_error: true,
                report_batch_item_failures: true,
                on_failure: Some(
                    "arn:aws:sqs:us-east-1:000000000000:fleetline-on-failure".to_owned()
                ),
                enabled: true,
            },
            "{name}"
        );
    }
}

#[test]
fn schedules_and_api_routes_are_read() {
    let t = load(&TemplateOptions::default());
    assert_eq!(schedule(function(&t, "view-refresher")), "rate(15 minutes)");
    assert_eq!(schedule(function(&t, "batch-views")), "cron(30 0 * * ? *)");
    // The hourly catch-up: a second schedule with a constant payload.
    let catch_up = function(&t, "batch-views")
        .events
        .iter()
        .find_map(|e| match &e.source {
            EventSource::Schedule(s) if e.name == "CatchUp" => Some(s.clone()),
            _ => None,
        })
        .expect("the CatchUp schedule");
    assert_eq!(catch_up.expression, "rate(1 hour)");
    assert_eq!(catch_up.input.as_deref(), Some(r#"{"catch_up": true}"#));
    assert!(catch_up.enabled);
    assert_eq!(
        function(&t, "batch-views").dead_letter_target.as_deref(),
        Some("arn:aws:sqs:us-east-1:000000000000:fleetline-on-failure")
    );
    let mut routes: Vec<ApiEvent> = function(&t, "query-api")
        .events
        .iter()
        .filter_map(|e| match &e.source {
            EventSource::Api(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    routes.sort_by(|a, b| a.path.cmp(&b.path));
    let route = |path: &str, api_key_required: Option<bool>| ApiEvent {
        path: path.to_owned(),
        method: "GET".to_owned(),
        api_key_required,
    };
    // The page loads without the key (it asks for it); the API needs it.
    assert_eq!(
        routes,
        vec![
            route("/", Some(false)),
            route("/dashboard", Some(false)),
            route("/v1/{proxy+}", None)
        ]
    );
    assert!(function(&t, "simulator").events.is_empty());
}

#[test]
fn environment_is_resolved_with_local_values() {
    let t = load(&TemplateOptions::default());
    let sp = function(&t, "stream-processor");
    assert_eq!(env(sp, "STREAM_NAME"), Some("vehicle-telemetry"));
    assert_eq!(env(sp, "LAKE_BUCKET"), Some("fleetline-lake"));
    assert_eq!(env(sp, "LAKE_PREFIX"), Some("vehicle_telematics_raw/"));
    assert_eq!(env(sp, "REJECTED_PREFIX"), Some("rejected/"));
    assert_eq!(env(sp, "RUST_LOG"), Some("info"));
    assert_eq!(env(sp, "FLEETLINE_RAPID_ACCEL_KMH_PER_S"), Some("10.0"));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_WORKGROUP"), Some("fleetline"));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_CLUSTER"), Some(""));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_DATABASE"), Some("dev"));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_SECRET_ARN"), Some(""));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_DB_USER"), Some(""));
    let lw = function(&t, "lake-writer");
    assert_eq!(env(lw, "LAKE_SINK"), Some("s3"));
    assert_eq!(env(lw, "FIREHOSE_STREAM"), Some(""));
    assert_eq!(
        env(lw, "FLEETLINE_REDSHIFT_WORKGROUP"),
        None,
        "lake-writer has no warehouse"
    );
    let qa = function(&t, "query-api");
    assert_eq!(env(qa, "FLEETLINE_REDSHIFT_TIMEOUT_SECS"), Some("25"));
    assert_eq!(env(qa, "FLEETLINE_REDSHIFT_WORKGROUP"), Some("fleetline"));
    assert!(
        t.warnings.is_empty(),
        "unexpected warnings: {:?}",
        t.warnings
    );
}

#[test]
fn parameter_overrides_flow_through_conditions() {
    let mut options = TemplateOptions::default();
    for (k, v) in [
        ("KinesisBatchSize", "100"),
        ("ServingTarget", "existing-cluster"),
        ("ServingName", "prod-cluster"),
        ("ExistingRedshiftDbUser", "loader"),
        ("LakeSink", "firehose"),
        ("ViewRefreshSchedule", "rate(5 minutes)"),
    ] {
        options
            .parameter_overrides
            .insert(k.to_owned(), v.to_owned());
    }
    let t = load(&options);
    let sp = function(&t, "stream-processor");
    assert_eq!(kinesis(sp).batch_size, 100);
    // !If [CreateServerless, ..., !If [UseExistingWorkgroup, ..., '']] and
    // !If [HasExistingDbUser, !Ref ExistingRedshiftDbUser, '']
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_WORKGROUP"), Some(""));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_CLUSTER"), Some("prod-cluster"));
    assert_eq!(env(sp, "FLEETLINE_REDSHIFT_DB_USER"), Some("loader"));
    let lw = function(&t, "lake-writer");
    assert_eq!(env(lw, "LAKE_SINK"), Some("firehose"));
    // !Ref LakeDeliveryStream → the local delivery stream (localstack/lib/resources.py)
    assert_eq!(env(lw, "FIREHOSE_STREAM"), Some("fleetline-lake-delivery"));
    assert_eq!(schedule(function(&t, "view-refresher")), "rate(5 minutes)");
}

#[test]
fn the_streaming_speed_path_disables_stream_processors_mapping() {
    let enabled = |t: &Template, name: &str| kinesis(function(t, name)).enabled;
    let lambda = load(&TemplateOptions::default());
    assert!(enabled(&lambda, "stream-processor"));
    assert_eq!(
        env(function(&lambda, "view-refresher"), "SPEED_PATH"),
        Some("lambda")
    );
    let mut options = TemplateOptions::default();
    options
        .parameter_overrides
        .insert("SpeedPath".to_owned(), "streaming-ingestion".to_owned());
    let t = load(&options);
    // Enabled: !If [UseLambdaSpeedPath, true, false]
    assert!(!enabled(&t, "stream-processor"));
    assert!(
        enabled(&t, "lake-writer"),
        "the lake is written on both paths"
    );
    assert_eq!(
        env(function(&t, "view-refresher"), "SPEED_PATH"),
        Some("streaming-ingestion")
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn an_unresolvable_enabled_is_reported() {
    let yaml = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/thing/
      Events:
        S:
          Type: Kinesis
          Properties: {Stream: arn:aws:kinesis:us-east-1:000000000000:stream/s, Enabled: !If [Missing, true, false]}
"#;
    let t = Template::parse(yaml, &TemplateOptions::default()).unwrap();
    assert!(kinesis(function(&t, "thing")).enabled, "the default stays");
    assert!(
        t.warnings.iter().any(|w| w.contains("Enabled")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn a_stream_override_renames_the_stream_everywhere() {
    let options = TemplateOptions {
        stream_override: Some("test-stream-42".to_owned()),
        ..TemplateOptions::default()
    };
    let t = load(&options);
    let sp = function(&t, "stream-processor");
    assert_eq!(kinesis(sp).stream_name, "test-stream-42");
    assert_eq!(env(sp, "STREAM_NAME"), Some("test-stream-42"));
    assert_eq!(
        env(function(&t, "simulator"), "STREAM_NAME"),
        Some("test-stream-42")
    );
}

#[test]
fn a_resource_ref_gives_the_lake_change_queue_its_url() {
    let url =
        "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/fleetline-lake-changes";
    let bv =
        |t: &Template| env(function(t, "batch-views"), "LAKE_CHANGES_QUEUE_URL").map(str::to_owned);
    // Without one, no queue: batch-views lists the lake instead.
    let plain = load(&TemplateOptions::default());
    assert_eq!(bv(&plain).as_deref().unwrap_or(""), "");
    let options = TemplateOptions {
        resource_refs: [("LakeChangesQueue".to_owned(), url.to_owned())].into(),
        ..TemplateOptions::default()
    };
    let t = load(&options);
    assert_eq!(bv(&t).as_deref(), Some(url));
    // Only that Ref changes.
    assert_eq!(
        env(function(&t, "lake-writer"), "LAKE_BUCKET"),
        Some("fleetline-lake")
    );
}

#[test]
fn long_form_intrinsics_and_missing_values() {
    let yaml = r#"
Parameters:
  Name: {Type: String, Default: abc}
Conditions:
  IsAbc: {"Fn::Equals": [{"Ref": Name}, abc]}
Globals:
  Function:
    Timeout: 7
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: {"Fn::Sub": "${Name}-q"}}
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/thing/
      Environment:
        Variables:
          A: {"Fn::If": [IsAbc, yes, no]}
          B: {"Fn::GetAtt": [Q, Arn]}
          C: !Sub '${!Literal}-${AWS::Region}'
          D: !GetAtt Unknown.Arn
          E: !Join ['-', [x, !Ref Name]]
          F: !If [IsAbc, !Ref AWS::NoValue, kept]
      Events:
        Later:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(2 hours), State: DISABLED}
        Sqs:
          Type: SQS
          Properties: {Queue: !GetAtt Q.Arn}
"#;
    let t = Template::parse(yaml, &TemplateOptions::default()).unwrap();
    let f = function(&t, "thing");
    assert_eq!(f.timeout, Duration::from_secs(7));
    assert_eq!(f.memory_mb, 128, "Lambda's default");
    assert_eq!(env(f, "A"), Some("yes"));
    assert_eq!(
        env(f, "B"),
        Some("arn:aws:sqs:us-east-1:000000000000:abc-q")
    );
    assert_eq!(env(f, "C"), Some("${Literal}-us-east-1"));
    assert_eq!(
        env(f, "D"),
        None,
        "unresolvable and no local fallback: left unset"
    );
    assert_eq!(env(f, "E"), Some("x-abc"));
    assert_eq!(env(f, "F"), None, "AWS::NoValue removes the variable");
    assert!(
        t.warnings.iter().any(|w| w.contains("D left unset")),
        "{:?}",
        t.warnings
    );
    assert!(
        t.warnings.iter().any(|w| w.contains("SQS")),
        "{:?}",
        t.warnings
    );
    let EventSource::Schedule(s) = &f.events[0].source else {
        panic!("a schedule")
    };
    assert_eq!(s.expression, "rate(2 hours)");
    assert!(!s.enabled);
    assert_eq!(s.rule_name, "FLater");
}
