//! The telemetry record: one AWS IoT Device Simulator "Automotive Demo" reading.
//!
//! A [`Reading`] is produced only by [`crate::validate::parse_and_validate`] in production
//! (its fields are public so that adapters and tests can build readings directly). The
//! measures that are aggregated are canonical fixed-point integers (see [`crate::fixed`]);
//! the original payload is kept verbatim in [`Reading::raw`] so that the lake stores every
//! field, including ones Fleetline does not know (schema evolution).

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::fixed::{ACCEL_SCALE, FixedDisplay, ODOMETER_SCALE, SPEED_SCALE, fixed_to_f64};
use crate::timestamp::TimestampDisplay;

/// Length of a vehicle identification number.
pub const VIN_LEN: usize = 17;

/// A vehicle identification number: exactly 17 characters from `[A-Z0-9]`.
///
/// `I`, `O` and `Q` are **accepted**: ISO 3779 excludes them from real VINs, but the AWS IoT
/// Device Simulator generates VINs with `customAlphabet('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 17)`
/// (aws-solutions/iot-device-simulator, `source/simulator/lib/device/generators/vehicle/generator.js`),
/// and 1 − (33/36)^17 ≈ 77% of such VINs contain at least one of them: excluding them
/// would reject most simulated vehicles.
/// Lower case is rejected, not upper-cased: a VIN is an identifier, and silently folding it
/// would merge two producers' keys. The check digit is not verified (simulated VINs have none).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vin([u8; VIN_LEN]);

/// Why a string is not a [`Vin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    /// Not exactly 17 characters.
    #[error("VIN must be exactly 17 characters, got {0}")]
    Length(usize),
    /// A character outside `[A-Z0-9]` (lower case included).
    #[error("VIN may only contain A-Z and 0-9 (upper case)")]
    Charset,
}

impl Vin {
    /// Validates `s` (see the type docs for the rules).
    pub fn parse(s: &str) -> Result<Self, VinError> {
        let b = s.as_bytes();
        if b.len() != VIN_LEN {
            return Err(VinError::Length(s.chars().count()));
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(VinError::Charset);
        }
        let mut out = [0u8; VIN_LEN];
        out.copy_from_slice(b);
        Ok(Self(out))
    }

    /// The VIN as text.
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII bytes are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for Vin {
    type Err = VinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vin({})", self.as_str())
    }
}

impl AsRef<str> for Vin {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Vin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Vin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        Vin::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// GPS position in degrees (WGS 84), as sent; not used in any aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// −90..=90.
    pub latitude: f64,
    /// −180..=180.
    pub longitude: f64,
}

/// Identity used for de-duplication: same VIN and same canonical (µs, UTC) timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DedupeKey {
    /// The vehicle.
    pub vin: Vin,
    /// Canonical timestamp (UTC, microseconds).
    pub timestamp: DateTime<Utc>,
}

/// Hashed as one fixed-size block (VIN bytes, seconds, nanoseconds): one write into the
/// hasher instead of one per field part, for the per-batch de-duplication sets. Equal keys
/// have equal blocks, so this agrees with `Eq`.
impl Hash for DedupeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut block = [0u8; VIN_LEN + 12];
        block[..VIN_LEN].copy_from_slice(&self.vin.0);
        block[VIN_LEN..VIN_LEN + 8].copy_from_slice(&self.timestamp.timestamp().to_le_bytes());
        block[VIN_LEN + 8..]
            .copy_from_slice(&self.timestamp.timestamp_subsec_nanos().to_le_bytes());
        state.write(&block);
    }
}

/// One validated reading in canonical units.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// `VIN`.
    pub vin: Vin,
    /// `trip_id` (1–64 UTF-8 bytes, no control characters, no backslash).
    pub trip_id: String,
    /// `timestamp`, UTC, truncated to microseconds.
    pub timestamp: DateTime<Utc>,
    /// `vehicleSpeed` in thousandths of km/h (0..=500 000).
    pub speed_milli_kmh: i64,
    /// `acceleration` in ten-thousandths of km/h per second (−1 000 000..=1 000 000).
    pub acceleration_e4: i64,
    /// `odometer` in metres (thousandths of a km; 0..=10^10).
    pub odometer_m: i64,
    /// `_id_` (the simulator's device id).
    pub device_id: Option<String>,
    /// `engineSpeed` (rpm).
    pub engine_speed: Option<f64>,
    /// `fuelLevel` (%).
    pub fuel_level: Option<f64>,
    /// `fuelConsumedSinceRestart` (gallons in the simulator).
    pub fuel_consumed_since_restart: Option<f64>,
    /// `oilTemp`.
    pub oil_temp: Option<f64>,
    /// `brake` (pedal position, numeric).
    pub brake: Option<f64>,
    /// `brakePedalStatus`.
    pub brake_pedal_status: Option<bool>,
    /// `ignitionStatus` (e.g. "run").
    pub ignition_status: Option<String>,
    /// `transmissionGearPosition` (e.g. "third").
    pub transmission_gear_position: Option<String>,
    /// `location`.
    pub location: Option<Location>,
    /// The original payload, byte for byte (valid UTF-8 JSON object; may contain
    /// insignificant whitespace and newlines — see [`Reading::payload_single_line`]).
    pub raw: String,
}

impl Reading {
    /// UTC date of the reading: the unit of partitioning and of daily aggregates.
    pub fn day(&self) -> NaiveDate {
        self.timestamp.date_naive()
    }

    /// Key for de-duplication (VIN, canonical timestamp).
    pub fn dedupe_key(&self) -> DedupeKey {
        DedupeKey {
            vin: self.vin,
            timestamp: self.timestamp,
        }
    }

    /// Speed in km/h, for display only.
    pub fn speed_kmh(&self) -> f64 {
        fixed_to_f64(self.speed_milli_kmh, SPEED_SCALE)
    }

    /// Acceleration in km/h per second, for display only.
    pub fn acceleration_kmh_per_s(&self) -> f64 {
        fixed_to_f64(self.acceleration_e4, ACCEL_SCALE)
    }

    /// Odometer in km, for display only.
    pub fn odometer_km(&self) -> f64 {
        fixed_to_f64(self.odometer_m, ODOMETER_SCALE)
    }

    /// `vehicleSpeed` as an exact SQL DECIMAL(12,3) literal, e.g. `57.300`.
    pub fn speed_decimal(&self) -> FixedDisplay {
        FixedDisplay::new(self.speed_milli_kmh, SPEED_SCALE)
    }

    /// `acceleration` as an exact SQL DECIMAL(10,4) literal, e.g. `-4.2109`.
    pub fn acceleration_decimal(&self) -> FixedDisplay {
        FixedDisplay::new(self.acceleration_e4, ACCEL_SCALE)
    }

    /// `odometer` as an exact SQL DECIMAL(12,3) literal (km), e.g. `1042.377`.
    pub fn odometer_decimal(&self) -> FixedDisplay {
        FixedDisplay::new(self.odometer_m, ODOMETER_SCALE)
    }

    /// The timestamp as `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub fn timestamp_display(&self) -> TimestampDisplay<'_> {
        TimestampDisplay(&self.timestamp)
    }

    /// The original payload on one line (CR/LF replaced by spaces; they can only be
    /// insignificant whitespace in valid JSON), for newline-delimited JSON sinks.
    pub fn payload_single_line(&self) -> Cow<'_, str> {
        if self.raw.contains(['\n', '\r']) {
            Cow::Owned(self.raw.replace(['\n', '\r'], " "))
        } else {
            Cow::Borrowed(&self.raw)
        }
    }

    /// Re-parses the original payload as a JSON object (all fields, unknown ones included).
    pub fn payload_object(&self) -> serde_json::Result<serde_json::Map<String, serde_json::Value>> {
        serde_json::from_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vin_rules() {
        assert!(Vin::parse("1HGCM82633A004352").is_ok());
        // I, O, Q allowed (the simulator generates them).
        assert!(Vin::parse("IOQ45678901234567").is_ok());
        assert_eq!(Vin::parse("1hgcm82633a004352"), Err(VinError::Charset));
        assert_eq!(Vin::parse("1HGCM82633A00435"), Err(VinError::Length(16)));
        assert_eq!(Vin::parse("1HGCM82633A0043521"), Err(VinError::Length(18)));
        assert_eq!(Vin::parse("1HGCM82633A00435-"), Err(VinError::Charset));
        assert_eq!(Vin::parse("1HGCM82633A00435É"), Err(VinError::Length(17)));
        let v = Vin::parse("1HGCM82633A004352").unwrap();
        assert_eq!(v.to_string(), "1HGCM82633A004352");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1HGCM82633A004352\"");
        let back: Vin = serde_json::from_str("\"1HGCM82633A004352\"").unwrap();
        assert_eq!(back, v);
    }
}
