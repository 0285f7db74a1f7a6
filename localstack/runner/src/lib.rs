//! The local runner: plays the parts of AWS that LocalStack cannot run here — Kinesis event
//! source mappings, EventBridge schedules and API Gateway — for the functions hosted by
//! lambda-host, wired from template.yaml (the one source of truth).
//!
//! - [`template`]: reads the SAM template (functions, settings, environment, events).
//! - [`kinesis`]: the polling/checkpoint/retry/bisect state machine behind [`kinesis::StreamSource`]
//!   and [`invoker::Invoker`] (fakes in the tests, LocalStack + lambda-host for real).
//! - [`schedule`]: `rate()`/`cron()` and the scheduled-event payload.
//! - [`api_gateway`]: REST API proxy events on 127.0.0.1:3000.
//! - [`invoke_front`]: the Lambda Invoke API on 127.0.0.1:9000 plus `GET /runner/status`.

pub mod api_gateway;
pub mod intrinsics;
pub mod invoke_front;
pub mod invoker;
pub mod kinesis;
pub mod schedule;
pub mod schema;
pub mod status;
pub mod template;
