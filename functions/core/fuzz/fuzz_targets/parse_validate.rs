//! Fuzzes `parse_and_validate`: it must never panic, and anything it accepts must satisfy
//! the documented invariants (and re-validate identically from its own raw payload).
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use fleetline_core::{ValidationContext, parse_and_validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Fixed `now`, so every run is reproducible.
    let now = DateTime::<Utc>::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let ctx = ValidationContext::new(now);
    match parse_and_validate(data, &ctx) {
        Ok(r) => {
            assert!((0..=500_000).contains(&r.speed_milli_kmh));
            assert!((-1_000_000..=1_000_000).contains(&r.acceleration_e4));
            assert!((0..=10_000_000_000).contains(&r.odometer_m));
            assert!(r.timestamp <= now + TimeDelta::minutes(5));
            assert_eq!(r.timestamp.timestamp_subsec_nanos() % 1_000, 0);
            assert_eq!(r.raw.as_bytes(), data);
            assert_eq!(parse_and_validate(r.raw.as_bytes(), &ctx).ok(), Some(r));
        }
        Err(e) => {
            assert!(!e.detail.is_empty());
            assert!(
                e.detail.len() < 1_000,
                "detail must stay short: {}",
                e.detail.len()
            );
        }
    }
});
