//! One reading in integer canonical units, and its JSON text.
//!
//! The JSON is written by hand so that every number is printed as exact decimal text of
//! the integer (speed 1 decimal, acceleration 4, odometer 3): a fixed-point parser of the
//! text gets back exactly these integers.

use crate::config::format_fixed;
use chrono::DateTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub vehicle: u32,
    pub vin: String,
    pub trip_id: String,
    pub device_id: String,
    /// Event time, nanoseconds since the epoch (UTC); always a whole microsecond.
    pub ts_ns: i64,
    /// Tenths of km/h.
    pub speed_tenths: i64,
    /// Ten-thousandths of km/h per s.
    pub accel_tt: i64,
    /// Metres (odometer in km with 3 decimals).
    pub odometer_m: i64,
    pub engine_rpm: i64,
    /// Tenths of a percent.
    pub fuel_level_tenths: i64,
    /// Millilitres since the trip started.
    pub fuel_consumed_ml: i64,
    /// Tenths of °C.
    pub oil_temp_tenths: i64,
    /// Brake pedal position, percent.
    pub brake_pct: i64,
    pub ignition: &'static str,
    pub gear: &'static str,
    /// Micro-degrees.
    pub lat_micro: i64,
    pub lon_micro: i64,
}

/// The simulator's timestamp form `YYYY-MM-DD HH:mm:ss.SSSSSSSSS` (UTC).
pub fn format_timestamp(ts_ns: i64) -> String {
    DateTime::from_timestamp_nanos(ts_ns)
        .format("%Y-%m-%d %H:%M:%S%.9f")
        .to_string()
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping of a &str never fails.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

impl Reading {
    /// Field names with their JSON value text, in the order the simulator sends them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let s = |v: &str| {
            let mut o = String::new();
            push_json_str(&mut o, v);
            o
        };
        vec![
            ("VIN", s(&self.vin)),
            ("trip_id", s(&self.trip_id)),
            ("_id_", s(&self.device_id)),
            ("timestamp", s(&format_timestamp(self.ts_ns))),
            ("vehicleSpeed", format_fixed(self.speed_tenths, 1)),
            ("acceleration", format_fixed(self.accel_tt, 4)),
            ("odometer", format_fixed(self.odometer_m, 3)),
            ("engineSpeed", self.engine_rpm.to_string()),
            ("fuelLevel", format_fixed(self.fuel_level_tenths, 1)),
            (
                "fuelConsumedSinceRestart",
                format_fixed(self.fuel_consumed_ml, 3),
            ),
            ("oilTemp", format_fixed(self.oil_temp_tenths, 1)),
            ("brake", self.brake_pct.to_string()),
            ("brakePedalStatus", (self.brake_pct > 0).to_string()),
            ("ignitionStatus", s(self.ignition)),
            ("transmissionGearPosition", s(self.gear)),
            (
                "location",
                format!(
                    "{{\"latitude\":{},\"longitude\":{}}}",
                    format_fixed(self.lat_micro, 6),
                    format_fixed(self.lon_micro, 6)
                ),
            ),
        ]
    }

    /// The reading as one line of compact JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        render_object(&self.fields())
    }
}

/// Renders `{"k":v,...}` from already-encoded values.
pub fn render_object(fields: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(420);
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

#[cfg(test)]
pub(crate) fn sample() -> Reading {
    Reading {
        vehicle: 6,
        vin: "1HGCM82633A004352".into(),
        trip_id: "V1StGXR8_Z5jdHi6B-myT".into(),
        device_id: "dev-0007".into(),
        ts_ns: 1_795_626_271_000_000_000,
        speed_tenths: 573,
        accel_tt: 42_109,
        odometer_m: 1_042_377,
        engine_rpm: 2210,
        fuel_level_tenths: 714,
        fuel_consumed_ml: 512,
        oil_temp_tenths: 921,
        brake_pct: 0,
        ignition: "run",
        gear: "third",
        lat_micro: 47_610_500,
        lon_micro: -122_330_100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_design_example() {
        let expected = r#"{"VIN":"1HGCM82633A004352","trip_id":"V1StGXR8_Z5jdHi6B-myT","_id_":"dev-0007","timestamp":"2026-11-25 17:04:31.000000000","vehicleSpeed":57.3,"acceleration":4.2109,"odometer":1042.377,"engineSpeed":2210,"fuelLevel":71.4,"fuelConsumedSinceRestart":0.512,"oilTemp":92.1,"brake":0,"brakePedalStatus":false,"ignitionStatus":"run","transmissionGearPosition":"third","location":{"latitude":47.610500,"longitude":-122.330100}}"#;
        assert_eq!(sample().to_json(), expected);
        let v: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(v["vehicleSpeed"].as_f64(), Some(57.3));
    }

    #[test]
    fn timestamps_have_nine_digits() {
        assert_eq!(
            format_timestamp(1_748_764_800_123_456_000),
            "2025-06-01 08:00:00.123456000"
        );
    }
}
