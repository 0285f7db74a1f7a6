//! Reading timestamps: parsing of the simulator and RFC 3339 forms, canonicalisation to UTC
//! microseconds, and the canonical text form `YYYY-MM-DD HH:MM:SS.ffffff`.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// Why a timestamp string was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimestampError(&'static str);

/// Parses a reading timestamp and returns it in UTC, truncated to microseconds.
///
/// Accepted forms (`f` = 1 to 9 fraction digits, optional):
/// * `YYYY-MM-DD HH:MM:SS[.f]` — the AWS IoT Device Simulator form; UTC.
/// * `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)` — RFC 3339; the zone is required with `T`,
///   offsets are converted to UTC. (`t`/`z` in lower case and a zone after the space form
///   are accepted too, as RFC 3339 allows.)
///
/// Rejected: other layouts, more than 9 fraction digits, leap seconds (`:60`), invalid
/// calendar dates, offsets beyond ±23:59.
///
/// ```
/// use fleetline_core::timestamp::{parse_timestamp, format_timestamp};
/// let t = parse_timestamp("2026-11-25T18:04:31.1234567+01:00").unwrap();
/// assert_eq!(format_timestamp(&t), "2026-11-25 17:04:31.123456");
/// ```
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, TimestampError> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err(TimestampError("too short for YYYY-MM-DD HH:MM:SS"));
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(TimestampError("expected YYYY-MM-DD HH:MM:SS"));
    }
    let zone_required = match b[10] {
        b' ' => false,
        b'T' | b't' => true,
        _ => {
            return Err(TimestampError(
                "date and time must be separated by ' ' or 'T'",
            ));
        }
    };
    let mut i = 19;
    let mut nanos: u32 = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(TimestampError("empty fraction of a second"));
        }
        if n > 9 {
            return Err(TimestampError("more than 9 fraction digits"));
        }
        nanos = digits(&b[start..i])? * 10u32.pow(9 - n as u32);
    }
    let offset_secs: i64 = match b.get(i) {
        None if zone_required => {
            return Err(TimestampError("RFC 3339 form needs a zone (Z or ±HH:MM)"));
        }
        None => 0,
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = digits(&b[i + 1..i + 3])?;
            let om = digits(&b[i + 4..i + 6])?;
            if oh > 23 || om > 59 {
                return Err(TimestampError("offset out of range"));
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -secs } else { secs }
        }
        Some(_) => return Err(TimestampError("unexpected characters after the time")),
    };
    // Year is 4 digits, so from_ymd_opt's range is never exceeded.
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or(TimestampError("invalid calendar date"))?
        .and_hms_nano_opt(hour, minute, second, truncate_nanos(nanos))
        .ok_or(TimestampError("invalid time of day"))?;
    if second > 59 {
        return Err(TimestampError("leap seconds are not supported"));
    }
    let utc = local
        .checked_sub_signed(TimeDelta::seconds(offset_secs))
        .ok_or(TimestampError("out of the supported range"))?;
    Ok(utc.and_utc())
}

fn digits(b: &[u8]) -> Result<u32, TimestampError> {
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(TimestampError("expected a digit"));
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Ok(v)
}

fn truncate_nanos(nanos: u32) -> u32 {
    nanos / 1_000 * 1_000
}

/// Truncates (never rounds) to microsecond precision, the precision of SQL `TIMESTAMP`.
pub fn truncate_to_micros(ts: DateTime<Utc>) -> DateTime<Utc> {
    let n = ts.nanosecond();
    ts.with_nanosecond(truncate_nanos(n)).unwrap_or(ts)
}

/// Displays a timestamp as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC; sub-microsecond digits
/// dropped). This is the canonical SQL/Parquet text form.
#[derive(Debug, Clone, Copy)]
pub struct TimestampDisplay<'a>(pub &'a DateTime<Utc>);

/// Length of the canonical text `YYYY-MM-DD HH:MM:SS.ffffff`.
pub const TIMESTAMP_TEXT_LEN: usize = 26;

impl TimestampDisplay<'_> {
    /// The canonical text as bytes, without the formatting machinery (SQL and Parquet
    /// writers need it for every row); `None` for a year outside 0..=9999, which `Display`
    /// spells with a sign. Its first 10 bytes are the UTC date, `YYYY-MM-DD`.
    pub fn ascii(&self) -> Option<[u8; TIMESTAMP_TEXT_LEN]> {
        let t = self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut b = *b"0000-00-00 00:00:00.000000";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for k in (at..at + width).rev() {
                b[k] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 6, micros(t));
        Some(b)
    }
}

/// Leap-second representation (nanos ≥ 1e9) cannot come from the parser.
fn micros(t: &DateTime<Utc>) -> u32 {
    (t.nanosecond() % 1_000_000_000) / 1_000
}

impl fmt::Display for TimestampDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.ascii() {
            return f.write_str(std::str::from_utf8(&text).unwrap_or_default());
        }
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            micros(t)
        )
    }
}

/// Formats as `YYYY-MM-DD HH:MM:SS.ffffff` (see [`TimestampDisplay`]).
pub fn format_timestamp(ts: &DateTime<Utc>) -> String {
    TimestampDisplay(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_text_is_the_display_text() {
        let t = parse_timestamp("2026-11-25 17:04:31.123456").unwrap();
        let text = TimestampDisplay(&t)
            .ascii()
            .map(|b| String::from_utf8(b.to_vec()));
        assert_eq!(text, Some(Ok("2026-11-25 17:04:31.123456".to_owned())));
        // Year -1: no four-digit form; `Display` spells it with a sign.
        let early = parse_timestamp("0000-01-01T00:30:00+01:00").unwrap();
        assert_eq!(TimestampDisplay(&early).ascii(), None);
        assert_eq!(format_timestamp(&early), "-001-12-31 23:30:00.000000");
    }

    fn canon(s: &str) -> String {
        format_timestamp(&parse_timestamp(s).unwrap())
    }

    #[test]
    fn parses_simulator_form() {
        assert_eq!(
            canon("2026-11-25 17:04:31.000000000"),
            "2026-11-25 17:04:31.000000"
        );
        assert_eq!(
            canon("2026-11-25 17:04:31.123456789"),
            "2026-11-25 17:04:31.123456"
        );
        assert_eq!(canon("2026-11-25 17:04:31"), "2026-11-25 17:04:31.000000");
        assert_eq!(canon("2026-11-25 17:04:31.5"), "2026-11-25 17:04:31.500000");
    }

    #[test]
    fn parses_rfc3339_and_converts_offsets() {
        assert_eq!(
            canon("2026-11-25T17:04:31.123Z"),
            "2026-11-25 17:04:31.123000"
        );
        assert_eq!(canon("2026-11-25t17:04:31z"), "2026-11-25 17:04:31.000000");
        assert_eq!(
            canon("2026-11-25T01:30:00-02:00"),
            "2026-11-25 03:30:00.000000"
        );
        // Offset moves the reading to the previous UTC day.
        assert_eq!(
            canon("2026-01-01T00:30:00+01:00"),
            "2025-12-31 23:30:00.000000"
        );
        assert_eq!(
            canon("2026-11-25 17:04:31+00:00"),
            "2026-11-25 17:04:31.000000"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T17:04:31",
            "2026-11-25 17:04:31.",
            "2026-11-25 17:04:31.1234567890",
            "2026-13-25 17:04:31",
            "2026-02-30 17:04:31",
            "2026-11-25 24:00:00",
            "2026-11-25 17:60:00",
            "2026-11-25 23:59:60",
            "2026-11-25 17:04:31 ",
            "2026-11-25 17:04:31+0100",
            "2026-11-25 17:04:31+24:00",
            "2026/11/25 17:04:31",
            "2026-11-25_17:04:31",
            "+026-11-25 17:04:31",
            "2026-11-25 17:04:31.12Zjunk",
            "１２３４-11-25 17:04:31",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn truncates_not_rounds() {
        assert_eq!(
            canon("2026-11-25 23:59:59.999999999"),
            "2026-11-25 23:59:59.999999"
        );
        let t = parse_timestamp("2026-11-25 17:04:31.000000999").unwrap();
        assert_eq!(t.nanosecond(), 0);
    }
}
