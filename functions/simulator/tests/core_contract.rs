//! Contract with the pipeline's validator (fleetline-core): every payload the simulator
//! sends as valid parses to exactly the integers it generated, every malformed one is
//! rejected with the reason code the ground truth records, and core's own daily
//! aggregation of the accepted readings equals the ground truth's.

use chrono::{TimeZone, Utc};
use fleetline_core::{
    RapidAccelThreshold, ValidationContext, aggregate_readings, parse_and_validate,
};
use simulator::config::{SimConfig, parse_start};
use simulator::generator::{Generator, RecordKind};
use simulator::truth::Truth;
use std::collections::BTreeMap;

#[test]
fn core_accepts_and_rejects_exactly_like_the_simulator() {
    let cfg = SimConfig {
        start_ns: parse_start("2025-12-31T23:58:00Z").unwrap(),
        days: 2,
        trips_per_day: 2,
        duplicate_rate: 0.05,
        late_rate: 0.05,
        malformed_rate: 0.1,
        ..SimConfig::example()
    };
    // "now" after the data, so no reading is in the future.
    let ctx = ValidationContext::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    let mut truth = Truth::new(&cfg);
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for rec in Generator::new(&cfg) {
        truth.observe(&rec);
        let parsed = parse_and_validate(rec.payload.as_bytes(), &ctx);
        match (&rec.kind, parsed) {
            (RecordKind::Valid { reading, .. }, Ok(r)) => {
                assert_eq!(r.vin.as_str(), reading.vin);
                assert_eq!(r.trip_id, reading.trip_id);
                assert_eq!(r.timestamp.timestamp_nanos_opt(), Some(reading.ts_ns));
                assert_eq!(
                    r.speed_milli_kmh,
                    reading.speed_tenths * 100,
                    "{}",
                    rec.payload
                );
                assert_eq!(r.acceleration_e4, reading.accel_tt, "{}", rec.payload);
                assert_eq!(r.odometer_m, reading.odometer_m, "{}", rec.payload);
                accepted.push(r);
            }
            (RecordKind::Malformed(reason), Err(rej)) => {
                assert_eq!(rej.code(), reason.code(), "{}", rec.payload);
                rejected += 1;
            }
            (kind, result) => panic!(
                "disagreement on {}: simulator {kind:?}, core {result:?}",
                rec.payload
            ),
        }
    }
    assert!(rejected > 100);
    assert_eq!(rejected, truth.counts().malformed_sent);

    let threshold = RapidAccelThreshold::from_e4(cfg.rapid_threshold).unwrap();
    let core_daily = aggregate_readings(&accepted, threshold);
    // Both sides as (VIN, date, trip) → (readings, sum speed, min odo, max odo, rapid).
    let theirs: BTreeMap<_, _> = core_daily
        .iter()
        .map(|(k, a)| {
            let key = (k.vin.as_str().to_string(), k.day, k.trip_id.clone());
            let v = (
                a.readings as i64,
                a.sum_speed_milli,
                a.min_odometer_m,
                a.max_odometer_m,
                a.rapid_accelerations as i64,
            );
            (key, v)
        })
        .collect();
    let ours: BTreeMap<_, _> = truth
        .daily()
        .map(|(vin, date, trip, a)| {
            let key = (vin.to_string(), date, trip.to_string());
            (
                key,
                (
                    a.readings,
                    a.sum_speed_milli,
                    a.min_odometer_m,
                    a.max_odometer_m,
                    a.rapid_accelerations,
                ),
            )
        })
        .collect();
    assert!(ours.len() > 60);
    assert_eq!(theirs, ours);
}
