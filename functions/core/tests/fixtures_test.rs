//! Validation, aggregation and formatting on real Automotive Demo payload fixtures.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use fleetline_core::aggregate::MILES_PER_KM_E6;
use fleetline_core::{
    DailyAggregate, DailyKey, RapidAccelThreshold, Reading, RejectReason, ValidationContext, Vin,
    aggregate_readings, avg_speed_by_trip, miles_by_year, parse_and_validate,
    rapid_accelerations_by_vin_year,
};

const VALID: &str = include_str!("fixtures/valid.jsonl");
const PRETTY: &str = include_str!("fixtures/pretty.json");
const INVALID: &str = include_str!("fixtures/invalid.tsv");

fn ctx() -> ValidationContext {
    ValidationContext::new(utc("2026-11-25T18:00:00Z"))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn valid_readings() -> Vec<Reading> {
    VALID
        .lines()
        .map(|l| parse_and_validate(l.as_bytes(), &ctx()).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn design_example_parses_to_canonical_units() {
    let r = &valid_readings()[0];
    assert_eq!(r.vin.as_str(), "1HGCM82633A004352");
    assert_eq!(r.trip_id, "V1StGXR8_Z5jdHi6B-myT");
    assert_eq!(r.timestamp, utc("2026-11-25T17:04:31Z"));
    assert_eq!(r.speed_milli_kmh, 57_300);
    assert_eq!(r.acceleration_e4, 42_109);
    assert_eq!(r.odometer_m, 1_042_377);
    assert_eq!(r.device_id.as_deref(), Some("dev-0007"));
    assert_eq!(r.engine_speed, Some(2210.0));
    assert_eq!(r.fuel_level, Some(71.4));
    assert_eq!(r.fuel_consumed_since_restart, Some(0.512));
    assert_eq!(r.oil_temp, Some(92.1));
    assert_eq!(r.brake, Some(0.0));
    assert_eq!(r.brake_pedal_status, Some(false));
    assert_eq!(r.ignition_status.as_deref(), Some("run"));
    assert_eq!(r.transmission_gear_position.as_deref(), Some("third"));
    let loc = r.location.unwrap();
    assert_eq!((loc.latitude, loc.longitude), (47.6105, -122.3301));
    assert_eq!(r.raw, VALID.lines().next().unwrap());
    assert_eq!(r.speed_decimal().to_string(), "57.300");
    assert_eq!(r.acceleration_decimal().to_string(), "4.2109");
    assert_eq!(r.odometer_decimal().to_string(), "1042.377");
    assert_eq!(
        r.timestamp_display().to_string(),
        "2026-11-25 17:04:31.000000"
    );
    assert_eq!(r.day(), day("2026-11-25"));
}

#[test]
fn timestamp_forms_and_rounding() {
    let rs = valid_readings();
    // Nanoseconds truncated to microseconds.
    assert_eq!(
        rs[1].timestamp_display().to_string(),
        "2026-11-25 17:04:32.123456"
    );
    assert_eq!(rs[1].speed_milli_kmh, 61_050);
    assert_eq!(rs[1].acceleration_e4, 127_500);
    // RFC 3339 with Z.
    assert_eq!(
        rs[2].timestamp_display().to_string(),
        "2026-11-25 16:59:59.999999"
    );
    assert_eq!(rs[2].acceleration_e4, -35_000);
    assert_eq!(rs[2].odometer_m, 88_000_500);
    assert_eq!(rs[2].location, None);
    // A +03:00 offset moves the reading back to the previous UTC day.
    assert_eq!(
        rs[3].timestamp_display().to_string(),
        "2026-11-24 22:30:00.500000"
    );
    assert_eq!(rs[3].day(), day("2026-11-24"));
    // 120.0005 rounds half away from zero to 120.001.
    assert_eq!(rs[3].speed_milli_kmh, 120_001);
    // Explicit nulls on optional fields are absent.
    assert_eq!((rs[3].location, rs[3].oil_temp), (None, None));
}

#[test]
fn unknown_fields_are_preserved_verbatim() {
    let rs = valid_readings();
    let r = &rs[4];
    assert_eq!(r.vin.as_str(), "IOQZZZ00000000001");
    assert_eq!(r.trip_id, "ẞtraße-ünïcode");
    assert_eq!(
        (r.speed_milli_kmh, r.acceleration_e4, r.odometer_m),
        (500_000, -1_000_000, 0)
    );
    let obj = r.payload_object().unwrap();
    assert_eq!(obj["firmware"]["version"], "3.1.4");
    assert_eq!(obj["tirePressure"][3], 32.2);
    assert!(obj["futureField"].is_null());
    // preserve_order: key order as sent.
    let keys: Vec<_> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys[0], "VIN");
    assert_eq!(keys[keys.len() - 1], "futureField");
}

#[test]
fn pretty_printed_payload_with_escapes_and_exponents() {
    let r = parse_and_validate(PRETTY.as_bytes(), &ctx()).unwrap();
    assert_eq!(r.vin.as_str(), "1HGCM82633A004353");
    assert_eq!(r.trip_id, "t\"q");
    assert_eq!(r.speed_milli_kmh, 57_300);
    assert_eq!(r.acceleration_e4, 100_000);
    assert_eq!(r.odometer_m, 1);
    assert_eq!(r.raw, PRETTY);
    let line = r.payload_single_line();
    assert!(!line.contains('\n'));
    let a: serde_json::Value = serde_json::from_str(&line).unwrap();
    let b: serde_json::Value = serde_json::from_str(PRETTY).unwrap();
    assert_eq!(a, b);
}

#[test]
fn every_bad_fixture_is_rejected_with_its_code() {
    let mut seen = std::collections::BTreeSet::new();
    for line in INVALID.lines() {
        let (code, payload) = line.split_once('\t').unwrap();
        let err = parse_and_validate(payload.as_bytes(), &ctx())
            .expect_err(&format!("accepted: {payload}"));
        assert_eq!(err.code(), code, "{payload} → {err}");
        assert!(!err.detail.is_empty());
        if let Some(field) = err.field {
            assert!(
                err.detail.contains(field),
                "detail {:?} does not name {field}",
                err.detail
            );
        }
        seen.insert(err.reason);
    }
    // Every reason except NotJson-from-UTF-8 has a fixture; make sure none was forgotten.
    for reason in RejectReason::ALL {
        assert!(seen.contains(&reason), "no fixture for {reason}");
    }
}

#[test]
fn rejection_fields_and_details() {
    let c = ctx();
    let bad_speed = br#"{"VIN":"1HGCM82633A004352","trip_id":"t1","timestamp":"2026-11-25 17:04:31","vehicleSpeed":612.5,"acceleration":1,"odometer":1}"#;
    let e = parse_and_validate(bad_speed, &c).unwrap_err();
    assert_eq!(e.reason, RejectReason::OutOfRange);
    assert_eq!(e.field, Some("vehicleSpeed"));
    assert_eq!(e.detail, "vehicleSpeed 612.5 is outside 0..=500 km/h");
    assert_eq!(
        e.to_string(),
        "out_of_range: vehicleSpeed 612.5 is outside 0..=500 km/h"
    );
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"reason":"out_of_range","field":"vehicleSpeed",
            "detail":"vehicleSpeed 612.5 is outside 0..=500 km/h"})
    );

    let e = parse_and_validate(b"{\"VIN\":\"\xff\"}", &c).unwrap_err();
    assert_eq!(e.reason, RejectReason::NotJson);
    // Details stay short even when the payload is huge (found by the fuzzer: a data
    // error's message quotes the whole offending string).
    let long = "\u{7f}".repeat(5_000);
    let e = parse_and_validate(format!("\"{long}\"x").as_bytes(), &c).unwrap_err();
    assert_eq!(e.reason, RejectReason::NotJson);
    assert!(e.detail.len() < 200, "{}", e.detail.len());
    let e = parse_and_validate(format!("\"{long}\"").as_bytes(), &c).unwrap_err();
    assert_eq!(e.reason, RejectReason::NotAnObject);
    assert_eq!(e.detail, "payload is a string, not a JSON object");
    let e = parse_and_validate(b"", &c).unwrap_err();
    assert_eq!(e.reason, RejectReason::NotJson);
    let deep = "[".repeat(100_000);
    assert_eq!(
        parse_and_validate(deep.as_bytes(), &c).unwrap_err().reason,
        RejectReason::NotJson
    );
    // Deeply nested *unknown* fields are skipped iteratively by the parser (no stack
    // overflow, no recursion limit), so the reading is accepted; re-parsing it into a
    // `Value` hits serde_json's recursion limit and reports an error instead of crashing.
    let deep_obj = format!(
        r#"{{"VIN":"1HGCM82633A004352","trip_id":"t1","timestamp":"2026-11-25 17:04:31","vehicleSpeed":1,"acceleration":1,"odometer":1,"x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let r = parse_and_validate(deep_obj.as_bytes(), &c).unwrap();
    assert!(r.payload_object().is_err());

    // Exactly at the skew limit is accepted; a microsecond later is not.
    let at_limit = br#"{"VIN":"1HGCM82633A004352","trip_id":"t1","timestamp":"2026-11-25 18:05:00","vehicleSpeed":1,"acceleration":1,"odometer":1}"#;
    assert!(parse_and_validate(at_limit, &c).is_ok());
    // A custom skew.
    let mut strict = ctx();
    strict.limits.max_future_skew = chrono::TimeDelta::zero();
    assert_eq!(
        parse_and_validate(at_limit, &strict).unwrap_err().reason,
        RejectReason::TimestampInFuture
    );
    assert_eq!(
        RejectReason::from_code("bad_vin"),
        Some(RejectReason::BadVin)
    );
    assert_eq!(RejectReason::from_code("nope"), None);
}

#[test]
fn fixture_aggregates_match_hand_computation() {
    let mut rs = valid_readings();
    // A redelivered copy of reading 0 with a different speed: must be ignored.
    let mut dup = rs[0].clone();
    dup.speed_milli_kmh = 1;
    rs.push(dup);
    let t = RapidAccelThreshold::DEFAULT;
    let daily = aggregate_readings(&rs, t);
    assert_eq!(daily.len(), 4);

    let key = |vin: &str, trip_id: &str, on: &str| DailyKey {
        vin: Vin::parse(vin).unwrap(),
        trip_id: trip_id.into(),
        day: day(on),
    };
    let k1 = key("1HGCM82633A004352", "V1StGXR8_Z5jdHi6B-myT", "2026-11-25");
    let a1 = daily[&k1];
    assert_eq!(
        a1,
        DailyAggregate {
            readings: 2,
            sum_speed_milli: 57_300 + 61_050,
            min_odometer_m: 1_042_377,
            max_odometer_m: 1_042_394,
            rapid_accelerations: 1, // 12.75 ≥ 10; 4.2109 is not
        }
    );
    // 17 m = 0.017 km × 0.621371 mi/km = 0.010563307 mi.
    assert_eq!(a1.miles().nanos(), 10_563_307);
    assert_eq!(a1.miles().to_string(), "0.010563307");
    assert_eq!(a1.avg_speed_kmh(), Some(59.175));
    assert_eq!(a1.avg_speed_milli(), Some(59_175));

    let k2 = key("JTDKB20U793512345", "trip-iso", "2026-11-25");
    let a2 = daily[&k2];
    assert_eq!(
        (a2.readings, a2.sum_speed_milli, a2.rapid_accelerations),
        (1, 0, 0)
    );
    assert_eq!(a2.distance_m(), 0);
    let a3 = daily[&key("JTDKB20U793512345", "trip-iso", "2026-11-24")];
    assert_eq!(
        (a3.readings, a3.sum_speed_milli, a3.min_odometer_m),
        (1, 120_001, 88_000_750)
    );

    // Merging two aggregates: 250 m between them, avg speed 60000.5 → 60001 milli.
    let both = a2.merge(a3);
    assert_eq!(both.distance_m(), 250);
    assert_eq!(both.avg_speed_milli(), Some(60_001));

    let by_year = miles_by_year(&daily);
    assert_eq!(by_year.len(), 1);
    // Per-day miles: only the first trip moved within a day (17 m).
    assert_eq!(by_year[&2026].nanos(), 17 * MILES_PER_KM_E6);
    assert!((by_year[&2026].as_f64() - 0.017 * 0.621371).abs() < 1e-15);

    let rapid = rapid_accelerations_by_vin_year(&daily);
    let expected: BTreeMap<_, _> = [
        ((Vin::parse("1HGCM82633A004352").unwrap(), 2026), 1),
        ((Vin::parse("IOQZZZ00000000001").unwrap(), 2026), 0),
        ((Vin::parse("JTDKB20U793512345").unwrap(), 2026), 0),
    ]
    .into();
    assert_eq!(rapid, expected);

    let avg = avg_speed_by_trip(&daily);
    assert_eq!(avg[&k1], 59.175);
    assert_eq!(avg.len(), 4);

    // A lower threshold counts the 4.2109 reading too, but never the negative ones.
    let low = aggregate_readings(&rs, RapidAccelThreshold::new(4.2109).unwrap());
    assert_eq!(low[&k1].rapid_accelerations, 2);
    assert_eq!(low[&k2].rapid_accelerations, 0);
}

/// `trip_id VARCHAR(64)` counts bytes on Redshift: 32 two-byte characters fit, 33 do not
/// and must be dead-lettered here instead of failing the warehouse batch.
#[test]
fn trip_id_limit_is_in_utf8_bytes() {
    let payload = |trip: &str| {
        format!(
            r#"{{"VIN":"1HGCM82633A004352","trip_id":"{trip}","timestamp":"2026-11-25 17:04:31","vehicleSpeed":1,"acceleration":1,"odometer":1}}"#
        )
    };
    let fits = "ß".repeat(32); // 64 bytes
    assert_eq!(fits.len(), 64);
    let r = parse_and_validate(payload(&fits).as_bytes(), &ctx()).expect("64 bytes fit");
    assert_eq!(r.trip_id, fits);
    let too_long = "ß".repeat(33); // 33 characters, 66 bytes
    let e = parse_and_validate(payload(&too_long).as_bytes(), &ctx()).unwrap_err();
    assert_eq!(e.reason, RejectReason::BadTripId);
    assert!(e.detail.contains("got 66 bytes"), "{}", e.detail);
    let ascii = "a".repeat(65);
    let e = parse_and_validate(payload(&ascii).as_bytes(), &ctx()).unwrap_err();
    assert_eq!(e.reason, RejectReason::BadTripId);
}
