//! The rapid-acceleration threshold.

use std::fmt;
use std::str::FromStr;

use crate::fixed::{ACCEL_SCALE, FixedDisplay, f64_to_fixed, fixed_to_f64};

/// Environment variable the functions read with [`RapidAccelThreshold::from_env_value`].
pub const THRESHOLD_ENV: &str = "FLEETLINE_RAPID_ACCEL_KMH_PER_S";

/// A reading is one *rapid acceleration* when `acceleration >= threshold` (km/h per second).
///
/// **Default: 10.0 km/h per s** = 2.778 m/s² ≈ **0.283 g** ≈ 6.21 mph/s.
///
/// Where it comes from: there is no single standard; telematics vendors publish thresholds
/// in g or mph/s for *harsh/hard* acceleration, and they vary by vehicle class. What we found:
/// * Motive (fleet telematics) hard-acceleration thresholds: 0.38 g / 8.34 mph/s (heavy
///   vehicles), 0.41 g / 8.99 mph/s (medium), 0.44 g / 9.65 mph/s (light) — i.e. about
///   13.4–15.5 km/h per s (helpcenter.gomotive.com, "Hard Acceleration").
/// * Positrace (device knowledge base) quotes "industry-standard" passenger-car values of
///   200 milli-g for acceleration events (≈ 7.1 km/h per s), and for devices that measure in
///   cm/s², 360 cm/s² (≈ 13.0 km/h per s) (kb.positrace.com, "Harsh behavior detection").
/// * A usage-based-insurance vendor blog (Driveway Software) defines a *braking* event as a
///   speed change of at least 7 mph per second (≈ 11.3 km/h per s, 0.32 g).
///
/// 10 km/h per s (0.283 g) sits inside that 0.2–0.44 g spread, in the commonly cited
/// 0.25–0.35 g band: a conservative choice for passenger cars, not a value taken from one
/// authoritative source. It is configurable everywhere (see [`THRESHOLD_ENV`]); both layers
/// must use the same value, and changing it only affects days recomputed afterwards.
///
/// Conversions used above: 1 g = 9.80665 m/s²; 1 km/h per s = 1/3.6 m/s² = 0.6214 mph/s.
///
/// The threshold is held in the canonical acceleration unit (ten-thousandths of km/h per s),
/// so the comparison is exact integer arithmetic in every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RapidAccelThreshold {
    e4: i64,
}

/// A threshold value that is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// Not a number.
    #[error("rapid-acceleration threshold {0:?} is not a number")]
    NotANumber(String),
    /// NaN, infinite, ≤ 0 or > 100 km/h per s (the validated acceleration range).
    #[error("rapid-acceleration threshold {0} must be finite, > 0 and <= 100 km/h per s")]
    OutOfRange(String),
}

impl RapidAccelThreshold {
    /// 10.0 km/h per s (see the type docs).
    pub const DEFAULT: Self = Self { e4: 100_000 };

    /// Threshold in km/h per s; rounded half away from zero to 4 decimals like readings.
    pub fn new(kmh_per_s: f64) -> Result<Self, ThresholdError> {
        let e4 = f64_to_fixed(kmh_per_s, ACCEL_SCALE)
            .map_err(|_| ThresholdError::OutOfRange(kmh_per_s.to_string()))?;
        Self::from_e4(e4).map_err(|_| ThresholdError::OutOfRange(kmh_per_s.to_string()))
    }

    /// Threshold in the canonical unit (ten-thousandths of km/h per s), `1..=1_000_000`.
    pub fn from_e4(e4: i64) -> Result<Self, ThresholdError> {
        if (1..=1_000_000).contains(&e4) {
            Ok(Self { e4 })
        } else {
            Err(ThresholdError::OutOfRange(
                FixedDisplay::new(e4, ACCEL_SCALE).to_string(),
            ))
        }
    }

    /// The value of [`THRESHOLD_ENV`] as looked up by the caller's configuration (core reads
    /// no environment): the default when unset or blank.
    pub fn from_env_value(value: Option<&str>) -> Result<Self, ThresholdError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::DEFAULT),
            Some(s) => s.parse(),
        }
    }

    /// In ten-thousandths of km/h per s (compare with [`crate::Reading::acceleration_e4`]).
    pub fn as_e4(self) -> i64 {
        self.e4
    }

    /// In km/h per s (display).
    pub fn kmh_per_s(self) -> f64 {
        fixed_to_f64(self.e4, ACCEL_SCALE)
    }

    /// Whether an acceleration (ten-thousandths of km/h per s) is a rapid acceleration.
    pub fn is_rapid(self, acceleration_e4: i64) -> bool {
        acceleration_e4 >= self.e4
    }

    /// Exact SQL DECIMAL(10,4) literal, e.g. `10.0000`.
    pub fn decimal(self) -> FixedDisplay {
        FixedDisplay::new(self.e4, ACCEL_SCALE)
    }
}

impl Default for RapidAccelThreshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for RapidAccelThreshold {
    type Err = ThresholdError;
    /// Decimal km/h per s, e.g. `"12.5"`. Parsed exactly from the text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let e4 = crate::fixed::decimal_to_fixed(s, ACCEL_SCALE).map_err(|e| match e {
            crate::fixed::DecimalError::Overflow => ThresholdError::OutOfRange(s.to_owned()),
            _ => ThresholdError::NotANumber(s.to_owned()),
        })?;
        Self::from_e4(e4).map_err(|_| ThresholdError::OutOfRange(s.to_owned()))
    }
}

impl fmt::Display for RapidAccelThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} km/h per s", self.decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_parsing() {
        assert_eq!(RapidAccelThreshold::default().as_e4(), 100_000);
        assert_eq!(RapidAccelThreshold::default().kmh_per_s(), 10.0);
        assert_eq!(
            RapidAccelThreshold::from_env_value(None),
            Ok(RapidAccelThreshold::DEFAULT)
        );
        assert_eq!(
            RapidAccelThreshold::from_env_value(Some("  ")),
            Ok(RapidAccelThreshold::DEFAULT)
        );
        assert_eq!(
            RapidAccelThreshold::from_env_value(Some("12.5")).map(|t| t.as_e4()),
            Ok(125_000)
        );
        assert_eq!(
            RapidAccelThreshold::new(7.06).map(|t| t.as_e4()),
            Ok(70_600)
        );
        assert!(matches!(
            RapidAccelThreshold::from_env_value(Some("fast")),
            Err(ThresholdError::NotANumber(_))
        ));
        for bad in ["0", "-1", "100.0001", "1e30"] {
            assert!(
                matches!(
                    bad.parse::<RapidAccelThreshold>(),
                    Err(ThresholdError::OutOfRange(_))
                ),
                "{bad}"
            );
        }
        assert!(RapidAccelThreshold::new(f64::NAN).is_err());
        assert!(RapidAccelThreshold::new(f64::INFINITY).is_err());
        assert_eq!(
            RapidAccelThreshold::DEFAULT.to_string(),
            "10.0000 km/h per s"
        );
    }

    #[test]
    fn comparison_is_inclusive() {
        let t = RapidAccelThreshold::DEFAULT;
        assert!(t.is_rapid(100_000));
        assert!(!t.is_rapid(99_999));
        assert!(!t.is_rapid(-200_000));
    }
}
