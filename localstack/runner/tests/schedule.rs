//! Schedule expressions and the scheduled-event payload.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use local_runner::schedule::{Schedule, ScheduleError, rule_arn, scheduled_event};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn rates_parse_in_every_unit() {
    let rate = |e: &str| match Schedule::parse(e).unwrap() {
        Schedule::Rate(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(rate("rate(1 minute)"), Duration::from_secs(60));
    assert_eq!(rate("rate(5 minutes)"), Duration::from_secs(300));
    assert_eq!(rate("rate(2 hours)"), Duration::from_secs(7200));
    assert_eq!(rate("rate(1 day)"), Duration::from_secs(86_400));
    assert_eq!(rate("rate(10 seconds)"), Duration::from_secs(10));
    assert!(matches!(
        Schedule::parse("rate(0 minutes)"),
        Err(ScheduleError::Invalid(..))
    ));
    assert!(matches!(
        Schedule::parse("rate(1 fortnight)"),
        Err(ScheduleError::Invalid(..))
    ));
    assert!(matches!(
        Schedule::parse("every minute"),
        Err(ScheduleError::Invalid(..))
    ));
}

#[test]
fn a_rate_fires_one_period_after_start_then_every_period() {
    let s = Schedule::parse("rate(1 minute)").unwrap();
    let start = at(2026, 3, 5, 10, 0, 0);
    assert_eq!(s.next_after(start, start), Some(at(2026, 3, 5, 10, 1, 0)));
    assert_eq!(
        s.next_after(start, at(2026, 3, 5, 10, 1, 0)),
        Some(at(2026, 3, 5, 10, 2, 0))
    );
    // Missed fires are skipped, not replayed.
    assert_eq!(
        s.next_after(start, at(2026, 3, 5, 10, 7, 30)),
        Some(at(2026, 3, 5, 10, 8, 0))
    );
}

/// `2026-03-05 10:00:00` (UTC).
fn utc(text: &str) -> chrono::DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
}

#[test]
fn cron_expressions_compute_the_next_fire() {
    // (expression, after, the next fire); 2026-03-06 is a Friday.
    let cases = [
        // The template's batch-views schedule: daily 00:30 UTC.
        (
            "cron(30 0 * * ? *)",
            "2026-03-05 10:00:00",
            Some("2026-03-06 00:30:00"),
        ),
        (
            "cron(30 0 * * ? *)",
            "2026-03-05 00:29:59",
            Some("2026-03-05 00:30:00"),
        ),
        (
            "cron(30 0 * * ? *)",
            "2026-03-05 00:30:00",
            Some("2026-03-06 00:30:00"),
        ),
        (
            "cron(0 6 ? * MON-FRI *)",
            "2026-03-06 07:00:00",
            Some("2026-03-09 06:00:00"),
        ),
        (
            "cron(0/15 * * * ? *)",
            "2026-03-05 10:07:00",
            Some("2026-03-05 10:15:00"),
        ),
        (
            "cron(0 12 1 JAN,JUL ? *)",
            "2026-03-05 00:00:00",
            Some("2026-07-01 12:00:00"),
        ),
        (
            "cron(0 0 29 2 ? 2028)",
            "2026-01-01 00:00:00",
            Some("2028-02-29 00:00:00"),
        ),
        // In the past.
        ("cron(0 0 1 1 ? 2020)", "2026-01-01 00:00:00", None),
    ];
    for (expression, after, expected) in cases {
        let after = utc(after);
        let next = Schedule::parse(expression)
            .unwrap()
            .next_after(after, after);
        assert_eq!(next, expected.map(utc), "{expression} after {after}");
    }
}

#[test]
fn unsupported_and_invalid_crons_are_reported() {
    for expression in ["cron(0 0 L * ? *)", "cron(0 0 ? * 6#3 *)"] {
        assert!(
            matches!(
                Schedule::parse(expression),
                Err(ScheduleError::Unsupported(..))
            ),
            "{expression}"
        );
    }
    for expression in ["cron(0 0 * * *)", "cron(61 0 * * ? *)"] {
        assert!(
            matches!(Schedule::parse(expression), Err(ScheduleError::Invalid(..))),
            "{expression}"
        );
    }
}

#[test]
fn the_scheduled_event_is_eventbridges() {
    let arn = rule_arn("us-east-1", "ViewRefresherFunctionEveryMinute");
    assert_eq!(
        arn,
        "arn:aws:events:us-east-1:000000000000:rule/ViewRefresherFunctionEveryMinute"
    );
    let event = scheduled_event(&arn, "us-east-1", at(2026, 3, 5, 10, 1, 0));
    assert_eq!(event["version"], "0");
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["time"], "2026-03-05T10:01:00Z");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["resources"], serde_json::json!([arn]));
    assert_eq!(event["detail"], serde_json::json!({}));
    let id = event["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
}
