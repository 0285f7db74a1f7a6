//! Property tests: the monoid laws, exact layer merging, never-panicking validation and
//! exact fixed-point text round trips.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use fleetline_core::boundary::{Layer, owner};
use fleetline_core::fixed::{decimal_to_fixed, format_fixed, parse_fixed};
use fleetline_core::{
    DailyAggregate, DailyKey, RapidAccelThreshold, Reading, ValidationContext, Vin,
    aggregate_readings, merge_maps, miles_by_year, parse_and_validate,
    rapid_accelerations_by_vin_year,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const VINS: [&str; 3] = [
    "1HGCM82633A004352",
    "JTDKB20U793512345",
    "IOQZZZ00000000001",
];
const TRIPS: [&str; 2] = ["V1StGXR8_Z5jdHi6B-myT", "trip-2"];

fn base() -> DateTime<Utc> {
    // Spans a year end, so yearly roll-ups see two years.
    DateTime::parse_from_rfc3339("2026-12-30T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn threshold() -> RapidAccelThreshold {
    RapidAccelThreshold::DEFAULT
}

/// Readings from a small key space so that duplicates and shared keys are common.
fn arb_reading() -> impl Strategy<Value = Reading> {
    (
        0..VINS.len(),
        0..TRIPS.len(),
        0i64..16, // quarter days over 4 days
        0i64..3,  // a few distinct seconds within each
        0i64..=500_000,
        prop_oneof![-1_000_000i64..=1_000_000, 99_990i64..100_010],
        0i64..=10_000_000_000,
    )
        .prop_map(|(v, t, q, s, speed, accel, odo)| Reading {
            vin: Vin::parse(VINS[v]).unwrap(),
            trip_id: TRIPS[t].to_owned(),
            timestamp: base() + TimeDelta::hours(6 * q) + TimeDelta::seconds(s),
            speed_milli_kmh: speed,
            acceleration_e4: accel,
            odometer_m: odo,
            device_id: None,
            engine_speed: None,
            fuel_level: None,
            fuel_consumed_since_restart: None,
            oil_temp: None,
            brake: None,
            brake_pedal_status: None,
            ignition_status: None,
            transmission_gear_position: None,
            location: None,
            raw: String::new(),
        })
}

fn arb_readings() -> impl Strategy<Value = Vec<Reading>> {
    prop::collection::vec(arb_reading(), 0..60)
}

fn arb_agg() -> impl Strategy<Value = DailyAggregate> {
    prop::collection::vec(arb_reading(), 0..4).prop_map(|rs| {
        rs.iter().fold(DailyAggregate::EMPTY, |a, r| {
            a.merge(DailyAggregate::from_reading(r, threshold()))
        })
    })
}

/// Reference de-duplication: keep the first of each (VIN, timestamp), by linear scan.
fn reference_dedupe(rs: &[Reading]) -> Vec<Reading> {
    let mut out: Vec<Reading> = Vec::new();
    for r in rs {
        if !out
            .iter()
            .any(|o| o.vin == r.vin && o.timestamp == r.timestamp)
        {
            out.push(r.clone());
        }
    }
    out
}

/// Reference aggregation written independently of the crate (no merge, no from_reading).
fn reference_aggregate(rs: &[Reading]) -> BTreeMap<DailyKey, DailyAggregate> {
    let deduped = reference_dedupe(rs);
    let keys: HashSet<(Vin, String, NaiveDate)> = deduped
        .iter()
        .map(|r| (r.vin, r.trip_id.clone(), r.timestamp.date_naive()))
        .collect();
    keys.into_iter()
        .map(|(vin, trip, day)| {
            let group: Vec<&Reading> = deduped
                .iter()
                .filter(|r| r.vin == vin && r.trip_id == trip && r.timestamp.date_naive() == day)
                .collect();
            let agg = DailyAggregate {
                readings: group.len() as u64,
                sum_speed_milli: group.iter().map(|r| r.speed_milli_kmh).sum(),
                min_odometer_m: group.iter().map(|r| r.odometer_m).min().unwrap(),
                max_odometer_m: group.iter().map(|r| r.odometer_m).max().unwrap(),
                rapid_accelerations: group
                    .iter()
                    .filter(|r| r.acceleration_e4 >= 100_000)
                    .count() as u64,
            };
            (
                DailyKey {
                    vin,
                    trip_id: trip,
                    day,
                },
                agg,
            )
        })
        .collect()
}

fn merged(
    a: &BTreeMap<DailyKey, DailyAggregate>,
    b: &BTreeMap<DailyKey, DailyAggregate>,
) -> BTreeMap<DailyKey, DailyAggregate> {
    let mut out = a.clone();
    merge_maps(&mut out, b);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_a_commutative_monoid(a in arb_agg(), b in arb_agg(), c in arb_agg()) {
        prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
        prop_assert_eq!(a.merge(b), b.merge(a));
        prop_assert_eq!(a.merge(DailyAggregate::EMPTY), a);
        prop_assert_eq!(DailyAggregate::EMPTY.merge(a), a);
        prop_assert_eq!(DailyAggregate::default(), DailyAggregate::EMPTY);
    }

    #[test]
    fn aggregation_matches_the_reference(rs in arb_readings()) {
        let got = aggregate_readings(&rs, threshold());
        prop_assert_eq!(&got, &reference_aggregate(&rs));
        // Derived metrics, independently: miles are metres × 0.000621371 exactly.
        for agg in got.values() {
            prop_assert_eq!(
                agg.miles().nanos(),
                i128::from(agg.max_odometer_m - agg.min_odometer_m) * 621_371
            );
            let avg = agg.avg_speed_kmh().unwrap();
            prop_assert!((avg * agg.readings as f64 * 1000.0 - agg.sum_speed_milli as f64).abs() < 1e-3);
        }
    }

    /// The real system: each layer de-duplicates its own raw readings (duplicates included)
    /// and owns the days on its side of the boundary. Duplicates share a day, so they land
    /// on the same side, and merging the two layers gives exactly the whole.
    #[test]
    fn split_at_any_day_boundary_merges_exactly(rs in arb_readings(), b in 0i64..6) {
        let boundary = base().date_naive() - TimeDelta::days(1) + TimeDelta::days(b);
        let (batch, speed): (Vec<Reading>, Vec<Reading>) =
            rs.iter().cloned().partition(|r| owner(r.day(), boundary) == Layer::Batch);
        let batch_agg = aggregate_readings(&batch, threshold());
        let speed_agg = aggregate_readings(&speed, threshold());
        prop_assert!(batch_agg.keys().all(|k| k.day < boundary));
        prop_assert!(speed_agg.keys().all(|k| k.day >= boundary));
        let all = aggregate_readings(&rs, threshold());
        prop_assert_eq!(&merged(&batch_agg, &speed_agg), &all);
        prop_assert_eq!(&merged(&speed_agg, &batch_agg), &all);
        // And the seed's answers computed from the merged map equal those over everything.
        prop_assert_eq!(
            miles_by_year(&merged(&batch_agg, &speed_agg)),
            miles_by_year(&all)
        );
    }

    /// Over de-duplicated readings, any partition into two multisets merges exactly (the
    /// monoid property at map level). Without de-duplicating across the union first this
    /// does not hold when a duplicate lands on both sides, which is why the layers split by
    /// day (previous property), never arbitrarily.
    #[test]
    fn any_partition_of_deduped_readings_merges_exactly(
        rs in arb_readings(),
        sides in prop::collection::vec(any::<bool>(), 60),
    ) {
        let deduped = reference_dedupe(&rs);
        let mut left = Vec::new();
        let mut right = Vec::new();
        for (r, side) in deduped.iter().zip(&sides) {
            if *side { left.push(r.clone()) } else { right.push(r.clone()) }
        }
        let whole = aggregate_readings(&rs, threshold());
        let parts = merged(
            &aggregate_readings(&left, threshold()),
            &aggregate_readings(&right, threshold()),
        );
        prop_assert_eq!(&parts, &whole);
        // Order of the de-duplicated readings does not matter either.
        let mut reversed = deduped.clone();
        reversed.reverse();
        prop_assert_eq!(&aggregate_readings(&reversed, threshold()), &whole);
    }

    /// Rapid accelerations by (VIN, year) summed from the dailies equal a direct count.
    #[test]
    fn yearly_rapid_accelerations_match_direct_count(rs in arb_readings()) {
        let daily = aggregate_readings(&rs, threshold());
        let got = rapid_accelerations_by_vin_year(&daily);
        for ((vin, year), n) in &got {
            let direct = reference_dedupe(&rs)
                .iter()
                .filter(|r| r.vin == *vin && r.timestamp.year() == *year && r.acceleration_e4 >= 100_000)
                .count() as u64;
            prop_assert_eq!(*n, direct);
        }
        let years: u64 = got.values().sum();
        prop_assert_eq!(years, daily.values().map(|a| a.rapid_accelerations).sum::<u64>());
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_and_validate(&bytes, &ctx());
    }

    #[test]
    fn parse_never_panics_on_json(v in arb_json()) {
        let text = v.to_string();
        let _ = parse_and_validate(text.as_bytes(), &ctx());
    }

    /// A valid record with one field replaced by an arbitrary JSON value: no panic, and if
    /// accepted, the canonical values satisfy every documented limit.
    #[test]
    fn mutated_records_are_accepted_only_when_valid(
        field in prop::sample::select(vec![
            "VIN", "trip_id", "timestamp", "vehicleSpeed", "acceleration", "odometer",
            "location", "brakePedalStatus", "engineSpeed", "_id_", "unknownField",
        ]),
        v in arb_json(),
    ) {
        let mut obj = example();
        obj.insert(field.to_owned(), v);
        let text = Value::Object(obj).to_string();
        if let Ok(r) = parse_and_validate(text.as_bytes(), &ctx()) {
            prop_assert!((0..=500_000).contains(&r.speed_milli_kmh));
            prop_assert!((-1_000_000..=1_000_000).contains(&r.acceleration_e4));
            prop_assert!((0..=10_000_000_000).contains(&r.odometer_m));
            prop_assert_eq!(r.vin.as_str().len(), 17);
            prop_assert!(r.timestamp <= ctx().now + TimeDelta::minutes(5));
            prop_assert_eq!(r.raw, text);
        }
    }

    /// A reading rendered with the crate's SQL/Parquet text helpers parses back identically.
    #[test]
    fn canonical_text_round_trips_through_validation(r in arb_reading(), nanos in 0u32..1_000_000) {
        let ts = r.timestamp + TimeDelta::microseconds(i64::from(nanos));
        let text = format!(
            r#"{{"VIN":"{}","trip_id":"{}","timestamp":"{}","vehicleSpeed":{},"acceleration":{},"odometer":{}}}"#,
            r.vin, r.trip_id, fleetline_core::format_timestamp(&ts),
            format_fixed(r.speed_milli_kmh, 3), format_fixed(r.acceleration_e4, 4), format_fixed(r.odometer_m, 3),
        );
        let ctx = ValidationContext::new(ts + TimeDelta::days(1));
        let back = parse_and_validate(text.as_bytes(), &ctx).unwrap();
        prop_assert_eq!(back.timestamp, ts);
        prop_assert_eq!(
            (back.speed_milli_kmh, back.acceleration_e4, back.odometer_m),
            (r.speed_milli_kmh, r.acceleration_e4, r.odometer_m)
        );
    }

    #[test]
    fn fixed_formatting_round_trips(v in any::<i64>(), scale in 0u32..=18) {
        let s = format_fixed(v, scale);
        prop_assert_eq!(parse_fixed(&s, scale), Ok(v));
        // Exactly `scale` fraction digits.
        let frac = s.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(frac as u32, scale);
    }

    /// decimal_to_fixed against an i128 reference: m × 10^e at scale 3, half away from zero.
    #[test]
    fn decimal_conversion_matches_integer_reference(m in -10_000_000_000i64..10_000_000_000, e in -12i32..8) {
        let text = format!("{m}e{e}");
        let shift = e + 3;
        let expected: i128 = if shift >= 0 {
            i128::from(m) * 10i128.pow(shift as u32)
        } else {
            let div = 10i128.pow((-shift) as u32);
            let q = (2 * i128::from(m).abs() + div) / (2 * div);
            if m < 0 { -q } else { q }
        };
        match decimal_to_fixed(&text, 3) {
            Ok(v) => prop_assert_eq!(i128::from(v), expected),
            Err(_) => prop_assert!(i64::try_from(expected).is_err()),
        }
    }
}

fn ctx() -> ValidationContext {
    ValidationContext::new(
        DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    )
}

fn example() -> serde_json::Map<String, Value> {
    match json!({"VIN":"1HGCM82633A004352","trip_id":"V1StGXR8_Z5jdHi6B-myT","_id_":"dev-0007",
        "timestamp":"2026-11-25 17:04:31.000000000","vehicleSpeed":57.3,"acceleration":4.2109,
        "odometer":1042.377,"engineSpeed":2210,"fuelLevel":71.4,"fuelConsumedSinceRestart":0.512,
        "oilTemp":92.1,"brake":0,"brakePedalStatus":false,"ignitionStatus":"run",
        "transmissionGearPosition":"third","location":{"latitude":47.6105,"longitude":-122.3301}})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // non-finite become null
        "[A-Z0-9]{17}".prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        prop_oneof![
            Just("NaN"),
            Just("Infinity"),
            Just("-inf"),
            Just("57.3"),
            Just("2026-11-25 17:04:31.5"),
            Just("2026-11-25T17:04:31Z"),
            Just("9999-12-31T23:59:59-23:59"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("latitude".to_owned()),
                        Just("longitude".to_owned()),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
