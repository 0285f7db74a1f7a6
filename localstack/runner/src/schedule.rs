//! EventBridge schedule expressions (`rate(…)`, `cron(…)`) and the scheduled-event payload.

use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Timelike, Utc};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule expression {0:?}: {1}")]
    Invalid(String, String),
    #[error("schedule expression {0:?} uses {1}, which the local runner does not support")]
    Unsupported(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(Duration),
    Cron(Box<Cron>),
}

impl Schedule {
    /// `rate(N minute|minutes|hour|hours|day|days)` or the six-field AWS
    /// `cron(min hour day-of-month month day-of-week year)`. `rate(N second[s])` is accepted
    /// too (not by AWS; handy for `--schedule-override` in demos).
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let expr = expression.trim();
        let invalid = |why: &str| ScheduleError::Invalid(expression.to_owned(), why.to_owned());
        if let Some(body) = expr.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let mut parts = body.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(invalid("expected rate(<value> <unit>)"));
            };
            let n: u64 = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("the value must be a positive integer"))?;
            let unit_secs = match unit {
                "second" | "seconds" => 1,
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3600,
                "day" | "days" => 86_400,
                _ => return Err(invalid("unit must be minute(s), hour(s) or day(s)")),
            };
            return Ok(Schedule::Rate(Duration::from_secs(n * unit_secs)));
        }
        if let Some(body) = expr.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return Cron::parse(body)
                .map(|c| Schedule::Cron(Box::new(c)))
                .map_err(|err| match err {
                    CronError::Invalid(why) => ScheduleError::Invalid(expression.to_owned(), why),
                    CronError::Unsupported(what) => {
                        ScheduleError::Unsupported(expression.to_owned(), what)
                    }
                });
        }
        Err(invalid("expected rate(...) or cron(...)"))
    }

    /// The first fire time strictly after `after`. Rates count from `start` (EventBridge
    /// fires a rate rule one period after it is created, then every period).
    pub fn next_after(&self, start: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate(period) => {
                let period = ChronoDuration::from_std(*period).ok()?;
                let elapsed = after - start;
                let periods = if elapsed < ChronoDuration::zero() {
                    0
                } else {
                    elapsed.num_milliseconds() / period.num_milliseconds().max(1)
                };
                Some(start + period * i32::try_from(periods + 1).ok()?)
            }
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }
}

#[derive(Debug)]
enum CronError {
    Invalid(String),
    Unsupported(String),
}

/// A parsed AWS cron expression (fields as bit sets; `None` = `?`/`*` for the day fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: Option<u32>,
    months: u16,
    /// Bit 1 = Sunday … bit 7 = Saturday (AWS numbering).
    days_of_week: Option<u8>,
    years: Option<Vec<i32>>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    fn parse(body: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(CronError::Invalid(
                "AWS cron has six fields: minutes hours day-of-month month day-of-week year".into(),
            ));
        }
        // L, W and # only mean something in the day fields (JUL and WED are names).
        let (dom, dow) = (fields[2], fields[4].to_ascii_uppercase());
        if dom.contains(['L', 'W', 'l', 'w']) {
            return Err(CronError::Unsupported(format!(
                "L/W in day-of-month {dom:?}"
            )));
        }
        if dow.contains('#') || dow.ends_with('L') {
            return Err(CronError::Unsupported(format!(
                "L/# in day-of-week {dow:?}"
            )));
        }
        let minutes = field_bits(fields[0], 0, 59, &[])?;
        let hours = field_bits(fields[1], 0, 23, &[])? as u32;
        let days_of_month = optional(fields[2], |f| field_bits(f, 1, 31, &[]).map(|b| b as u32))?;
        let months = field_bits(fields[3], 1, 12, &MONTHS)? as u16;
        let days_of_week = optional(fields[4], |f| {
            field_bits(f, 1, 7, &WEEKDAYS).map(|b| b as u8)
        })?;
        let years = if fields[5] == "*" {
            None
        } else {
            // Years do not fit the u64 bit set: expand the field into a list instead.
            Some(year_list(fields[5])?)
        };
        Ok(Self {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            years,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self
            .days_of_month
            .is_none_or(|bits| bits & (1 << date.day()) != 0);
        let dow = self
            .days_of_week
            .is_none_or(|bits| bits & (1 << date.weekday().number_from_sunday()) != 0);
        let month = self.months & (1 << date.month()) != 0;
        let year = self
            .years
            .as_ref()
            .is_none_or(|years| years.contains(&date.year()));
        dom && dow && month && year
    }

    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start at the next whole minute.
        let mut t = after.with_second(0)?.with_nanosecond(0)? + ChronoDuration::minutes(1);
        // Day by day for up to ~5 years, then hour/minute within the day.
        for _ in 0..(366 * 5) {
            let date = t.date_naive();
            if self.day_matches(date) {
                for hour in t.hour()..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first_minute = if hour == t.hour() { t.minute() } else { 0 };
                    for minute in first_minute..60 {
                        if self.minutes & (1 << minute) != 0 {
                            return Utc
                                .with_ymd_and_hms(
                                    date.year(),
                                    date.month(),
                                    date.day(),
                                    hour,
                                    minute,
                                    0,
                                )
                                .single();
                        }
                    }
                }
            }
            let next_day = date.succ_opt()?;
            t = Utc
                .with_ymd_and_hms(next_day.year(), next_day.month(), next_day.day(), 0, 0, 0)
                .single()?;
        }
        None
    }
}

fn year_list(field: &str) -> Result<Vec<i32>, CronError> {
    let mut years = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<i32>().map_err(|_| bad(field))?),
            None => (part, 1),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (
                a.parse().map_err(|_| bad(field))?,
                b.parse().map_err(|_| bad(field))?,
            ),
            None => {
                let y: i32 = range.parse().map_err(|_| bad(field))?;
                (y, if step > 1 { 2199 } else { y })
            }
        };
        if step < 1 || lo > hi {
            return Err(bad(field));
        }
        years.extend((lo..=hi).step_by(step as usize));
    }
    Ok(years)
}

fn bad(field: &str) -> CronError {
    CronError::Invalid(format!("bad field {field:?}"))
}

fn optional<T>(
    field: &str,
    parse: impl Fn(&str) -> Result<T, CronError>,
) -> Result<Option<T>, CronError> {
    if field == "?" || field == "*" {
        Ok(None)
    } else {
        parse(field).map(Some)
    }
}

/// A cron field (`*`, `N`, `A-B`, `*/S`, `A-B/S`, `A/S`, lists, names) as a bit set.
fn field_bits(field: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, CronError> {
    if max >= 64 {
        return Err(bad(field));
    }
    let value = |s: &str| -> Result<u32, CronError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| bad(field))
    };
    let mut bits = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad(field))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step > 1 { max } else { v })
        };
        if lo > hi {
            return Err(bad(field));
        }
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// The event EventBridge sends a target of a scheduled rule.
pub fn scheduled_event(rule_arn: &str, region: &str, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": lambda_host::ACCOUNT_ID,
        "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [rule_arn],
        "detail": {}
    })
}

/// `arn:aws:events:<region>:000000000000:rule/<name>`.
pub fn rule_arn(region: &str, rule_name: &str) -> String {
    format!(
        "arn:aws:events:{region}:{}:rule/{rule_name}",
        lambda_host::ACCOUNT_ID
    )
}

/// One scheduled rule targeting one function.
#[derive(Debug, Clone)]
pub struct ScheduleTask {
    pub function: String,
    pub rule_name: String,
    pub expression: String,
    pub schedule: Schedule,
    /// `Input`: sent instead of the scheduled-event payload.
    pub input: Option<String>,
    pub region: String,
    /// The function's async dead-letter queue (DeadLetterQueue.TargetArn).
    pub dead_letter: Option<String>,
    /// Lambda retries a failed asynchronous invocation twice.
    pub retries: u32,
    /// Delay before the first retry (Lambda waits about a minute; shorter locally).
    pub retry_delay: Duration,
}

/// Fires `task` on its schedule until shutdown. A fire that comes while the previous
/// invocation still runs is skipped (the next one is computed from the clock).
pub async fn run_schedule<I: crate::invoker::Invoker>(
    task: ScheduleTask,
    invoker: std::sync::Arc<I>,
    failures: std::sync::Arc<crate::kinesis::FailureLog>,
    status: std::sync::Arc<crate::status::StatusBoard>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let key = format!("{}/{}", task.function, task.rule_name);
    let rule_arn = rule_arn(&task.region, &task.rule_name);
    status.schedule(&key, |s| {
        s.function = task.function.clone();
        s.rule = rule_arn.clone();
        s.expression = task.expression.clone();
    });
    let start = Utc::now();
    loop {
        let Some(next) = task.schedule.next_after(start, Utc::now()) else {
            tracing::warn!(function = %task.function, expression = %task.expression,
                "the schedule never fires again");
            return;
        };
        status.schedule(&key, |s| s.next_fire = Some(next.to_rfc3339()));
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let payload = match &task.input {
            Some(input) => input.clone(),
            None => scheduled_event(&rule_arn, &task.region, next).to_string(),
        };
        tracing::info!(function = %task.function, rule = %task.rule_name, "scheduled invocation");
        let Some(result) = invoke_with_retries(&task, &*invoker, &payload, &mut shutdown).await
        else {
            return;
        };
        let outcome = match &result {
            Ok(()) => "ok".to_owned(),
            Err(last_error) => format!("failed: {last_error}"),
        };
        status.schedule(&key, |s| {
            s.fires += 1;
            s.failures += u64::from(result.is_err());
            s.last_fire = Some(next.to_rfc3339());
            s.last_outcome = Some(outcome);
        });
        if let (Err(last_error), Some(dlq)) = (&result, &task.dead_letter) {
            dead_letter(&task, &failures, dlq, payload, last_error);
        }
    }
}

/// Invokes up to `1 + retries` times; `Err` carries the last error, `None` means shutdown.
async fn invoke_with_retries<I: crate::invoker::Invoker>(
    task: &ScheduleTask,
    invoker: &I,
    payload: &str,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Result<(), String>> {
    use crate::invoker::Invocation;
    let mut last_error = String::new();
    for attempt in 0..=task.retries {
        if attempt > 0 {
            let delay = task.retry_delay * attempt;
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|stop| *stop) => return None,
            }
        }
        match invoker
            .invoke(&task.function, bytes::Bytes::from(payload.to_owned()))
            .await
        {
            Invocation::Response(_) => return Some(Ok(())),
            Invocation::FunctionError {
                error_type,
                error_message,
            } => last_error = format!("{error_type}: {error_message}"),
            Invocation::NotInvoked(why) => last_error = why,
            Invocation::ShuttingDown => return None,
        }
        tracing::warn!(function = %task.function, rule = %task.rule_name, attempt = attempt + 1,
            error = %last_error, "scheduled invocation failed");
    }
    Some(Err(last_error))
}

/// What Lambda puts in an async dead-letter queue: the event, plus attributes.
fn dead_letter(
    task: &ScheduleTask,
    failures: &crate::kinesis::FailureLog,
    dlq: &str,
    payload: String,
    last_error: &str,
) {
    let message = serde_json::json!({
        "body": payload,
        "messageAttributes": {
            "RequestID": uuid::Uuid::new_v4().to_string(),
            "ErrorCode": "200",
            "ErrorMessage": last_error,
        },
        "function": task.function,
        "timestamp": crate::status::now_rfc3339(),
    });
    if let Err(err) = failures.append(Some(dlq), &message) {
        tracing::error!(error = %err, "cannot write the dead-letter record");
    }
}
