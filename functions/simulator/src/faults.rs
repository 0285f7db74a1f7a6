//! Fault injection: malformed payloads (a mix of reasons), and the delay of late readings.
//!
//! Every malformed payload is invalid for a reason a validator must detect without
//! guessing: not JSON at all; a required field (VIN, trip_id, timestamp, vehicleSpeed,
//! acceleration, odometer) missing; a VIN that is not 17 characters of `[A-Z0-9]`;
//! a timestamp that is not a date-time; or a value out of range (negative speed, speed
//! above 1000 km/h, negative odometer).

use crate::config::format_fixed;
use crate::reading::{Reading, render_object};
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MalformedReason {
    NotJson,
    MissingField,
    BadVin,
    BadTimestamp,
    OutOfRange,
}

impl MalformedReason {
    pub const ALL: [MalformedReason; 5] = [
        MalformedReason::NotJson,
        MalformedReason::MissingField,
        MalformedReason::BadVin,
        MalformedReason::BadTimestamp,
        MalformedReason::OutOfRange,
    ];

    /// The reason code used in the ground truth.
    pub fn code(self) -> &'static str {
        match self {
            MalformedReason::NotJson => "not_json",
            MalformedReason::MissingField => "missing_field",
            MalformedReason::BadVin => "bad_vin",
            MalformedReason::BadTimestamp => "bad_timestamp",
            MalformedReason::OutOfRange => "out_of_range",
        }
    }
}

/// Required fields a reading cannot do without.
pub const REQUIRED_FIELDS: [&str; 6] = [
    "VIN",
    "trip_id",
    "timestamp",
    "vehicleSpeed",
    "acceleration",
    "odometer",
];

const BAD_TIMESTAMPS: [&str; 6] = [
    "2025-13-01 08:00:00.000000000",
    "2025-02-30 12:00:00.000000000",
    "2025-06-01 25:61:00.000000000",
    "yesterday at noon",
    "",
    "2025/06/01 08:00",
];

/// Replaces the value of `key` in `fields`.
fn set(fields: &mut [(&'static str, String)], key: &str, value: String) {
    if let Some(f) = fields.iter_mut().find(|(k, _)| *k == key) {
        f.1 = value;
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Turns a reading into a malformed payload: picks a reason, then a variant of it.
pub fn corrupt<R: Rng>(rng: &mut R, reading: &Reading) -> (MalformedReason, String) {
    let reason = MalformedReason::ALL[rng.random_range(0..MalformedReason::ALL.len())];
    let mut fields = reading.fields();
    let payload = match reason {
        MalformedReason::NotJson => {
            let full = render_object(&fields);
            if rng.random_bool(0.5) {
                // A truncated transmission: any proper prefix of an object is not JSON.
                let cut = rng.random_range(1..full.len() - 1);
                full[..cut].to_string()
            } else {
                format!(
                    "VIN={} speed={} odo={} (legacy text frame)",
                    reading.vin,
                    format_fixed(reading.speed_tenths, 1),
                    format_fixed(reading.odometer_m, 3)
                )
            }
        }
        MalformedReason::MissingField => {
            let key = REQUIRED_FIELDS[rng.random_range(0..REQUIRED_FIELDS.len())];
            fields.retain(|(k, _)| *k != key);
            render_object(&fields)
        }
        MalformedReason::BadVin => {
            let vin = &reading.vin;
            let bad = match rng.random_range(0..4) {
                0 => vin[..16].to_string(),
                1 => format!("{vin}7"),
                2 => {
                    // Lower case is not a VIN (validators must not fold case). I, O and Q
                    // are not used: the AWS IoT Device Simulator's own VINs contain them.
                    let pos = rng.random_range(0..17);
                    let letter = char::from(b'a' + rng.random_range(0..26u8));
                    format!("{}{letter}{}", &vin[..pos], &vin[pos + 1..])
                }
                _ => String::new(),
            };
            set(&mut fields, "VIN", quoted(&bad));
            render_object(&fields)
        }
        MalformedReason::BadTimestamp => {
            let ts = BAD_TIMESTAMPS[rng.random_range(0..BAD_TIMESTAMPS.len())];
            set(&mut fields, "timestamp", quoted(ts));
            render_object(&fields)
        }
        MalformedReason::OutOfRange => {
            match rng.random_range(0..3) {
                0 => set(
                    &mut fields,
                    "vehicleSpeed",
                    format_fixed(-rng.random_range(1..=800), 1),
                ),
                1 => set(
                    &mut fields,
                    "vehicleSpeed",
                    format_fixed(rng.random_range(10_001..=99_999), 1),
                ),
                _ => set(
                    &mut fields,
                    "odometer",
                    format_fixed(-rng.random_range(1..=5_000_000), 3),
                ),
            }
            render_object(&fields)
        }
    };
    (reason, payload)
}

/// How long after its event time a late reading is sent: half of them minutes late,
/// half of them hours late (up to 30 h, so often after the next day began).
pub fn late_delay_ns<R: Rng>(rng: &mut R) -> i64 {
    let ms: i64 = if rng.random_bool(0.5) {
        rng.random_range(60_000..=1_800_000)
    } else {
        rng.random_range(3_600_000..=108_000_000)
    };
    ms * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::is_valid_vin;
    use crate::reading::sample;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::Value;

    #[test]
    fn every_malformed_payload_is_invalid_for_its_reason() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let r = sample();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let (reason, p) = corrupt(&mut rng, &r);
            seen.insert(reason);
            assert!(!p.contains('\n'));
            let parsed: Result<Value, _> = serde_json::from_str(&p);
            match reason {
                MalformedReason::NotJson => assert!(parsed.is_err(), "{p}"),
                MalformedReason::MissingField => {
                    let v = parsed.unwrap();
                    assert!(REQUIRED_FIELDS.iter().any(|f| v.get(f).is_none()), "{p}");
                }
                MalformedReason::BadVin => {
                    let v = parsed.unwrap();
                    assert!(!is_valid_vin(v["VIN"].as_str().unwrap()), "{p}");
                }
                MalformedReason::BadTimestamp => {
                    let v = parsed.unwrap();
                    let ts = v["timestamp"].as_str().unwrap();
                    assert!(
                        chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.f").is_err(),
                        "{p}"
                    );
                }
                MalformedReason::OutOfRange => {
                    let v = parsed.unwrap();
                    let speed = v["vehicleSpeed"].as_f64().unwrap();
                    let odo = v["odometer"].as_f64().unwrap();
                    assert!(!(0.0..=1000.0).contains(&speed) || odo < 0.0, "{p}");
                }
            }
        }
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn late_delays_are_positive_and_bounded() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1_000 {
            let d = late_delay_ns(&mut rng);
            assert!((60_000_000_000..=108_000_000_000_000).contains(&d));
        }
    }
}
