//! Daily aggregates per (VIN, trip, UTC day): the unit both layers compute and merge.
//!
//! A reference model (test oracle), used by the property tests and the simulator's
//! contract tests; production computes these aggregates in SQL (`infra/sql`).
//!
//! [`DailyAggregate`] is a commutative monoid ([`DailyAggregate::merge`], identity
//! [`DailyAggregate::EMPTY`]), so any partition of a de-duplicated set of readings,
//! aggregated part by part and merged, gives exactly the aggregate of the whole.
//! De-duplication is *not* part of the monoid: it happens on readings before aggregation.
//! Because a duplicate has the same VIN and timestamp, it always falls on the same UTC day
//! and thus on the same side of the time boundary, so per-layer de-duplication equals global
//! de-duplication.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::fixed::{SPEED_SCALE, fixed_to_f64};
use crate::record::{Reading, Vin};
use crate::threshold::RapidAccelThreshold;

/// Kilometre → mile factor (exact by definition of this project: 0.621371).
pub const MILES_PER_KM_E6: i128 = 621_371;

/// Key of a daily aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DailyKey {
    /// The vehicle.
    pub vin: Vin,
    /// The trip.
    pub trip_id: String,
    /// UTC day of the readings.
    pub day: NaiveDate,
}

impl DailyKey {
    /// The key a reading belongs to.
    pub fn of(reading: &Reading) -> Self {
        Self {
            vin: reading.vin,
            trip_id: reading.trip_id.clone(),
            day: reading.day(),
        }
    }
}

/// Sums, counts, min and max over the readings of one (VIN, trip, day).
///
/// Empty aggregates use `min_odometer_m = i64::MAX`, `max_odometer_m = i64::MIN` (the
/// identities of min and max); every derived metric treats them as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DailyAggregate {
    /// Number of (de-duplicated) readings.
    pub readings: u64,
    /// Sum of `vehicleSpeed` in milli-km/h. i64 is ample: validated speeds are ≤ 500 000,
    /// so overflow needs more than 1.8·10^13 readings in one aggregate.
    pub sum_speed_milli: i64,
    /// Minimum odometer (metres).
    pub min_odometer_m: i64,
    /// Maximum odometer (metres).
    pub max_odometer_m: i64,
    /// Number of readings with `acceleration >= threshold`.
    pub rapid_accelerations: u64,
}

impl Default for DailyAggregate {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl DailyAggregate {
    /// The identity of [`DailyAggregate::merge`].
    pub const EMPTY: Self = Self {
        readings: 0,
        sum_speed_milli: 0,
        min_odometer_m: i64::MAX,
        max_odometer_m: i64::MIN,
        rapid_accelerations: 0,
    };

    /// The aggregate of one reading.
    pub fn from_reading(r: &Reading, threshold: RapidAccelThreshold) -> Self {
        Self {
            readings: 1,
            sum_speed_milli: r.speed_milli_kmh,
            min_odometer_m: r.odometer_m,
            max_odometer_m: r.odometer_m,
            rapid_accelerations: u64::from(threshold.is_rapid(r.acceleration_e4)),
        }
    }

    /// Combines two aggregates (associative, commutative, identity [`Self::EMPTY`]).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        Self {
            readings: self.readings + other.readings,
            sum_speed_milli: self.sum_speed_milli + other.sum_speed_milli,
            min_odometer_m: self.min_odometer_m.min(other.min_odometer_m),
            max_odometer_m: self.max_odometer_m.max(other.max_odometer_m),
            rapid_accelerations: self.rapid_accelerations + other.rapid_accelerations,
        }
    }

    /// In-place [`Self::merge`].
    pub fn merge_in(&mut self, other: Self) {
        *self = self.merge(other);
    }

    /// `true` for the identity (no readings).
    pub fn is_empty(&self) -> bool {
        self.readings == 0
    }

    /// `max_odometer − min_odometer` in metres (0 when empty).
    pub fn distance_m(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.max_odometer_m - self.min_odometer_m
        }
    }

    /// Miles driven, exactly: `(max − min) km × 0.621371` (see [`NanoMiles`]).
    pub fn miles(&self) -> NanoMiles {
        NanoMiles::from_metres(self.distance_m())
    }

    /// Average speed in km/h (`sum_speed / readings`), `None` when empty. Display value.
    pub fn avg_speed_kmh(&self) -> Option<f64> {
        (!self.is_empty())
            .then(|| fixed_to_f64(self.sum_speed_milli, SPEED_SCALE) / self.readings as f64)
    }

    /// Average speed in milli-km/h, rounded half away from zero; `None` when empty.
    pub fn avg_speed_milli(&self) -> Option<i64> {
        if self.is_empty() {
            return None;
        }
        let n = i128::from(self.readings);
        let s = i128::from(self.sum_speed_milli);
        let q = (2 * s.abs() + n) / (2 * n);
        Some((if s < 0 { -q } else { q }) as i64)
    }
}

/// A distance in billionths of a mile, exact.
///
/// metres × 621 371 = nano-miles, because `m / 1000 × 0.621371 mi = m × 621371 × 10^-9 mi`.
/// In SQL the same value is `(max_odometer − min_odometer) * 0.621371` over DECIMAL(12,3)
/// kilometres: a DECIMAL with 9 fraction digits, so both layers agree to the last digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NanoMiles(pub i128);

impl NanoMiles {
    /// From a distance in metres.
    pub fn from_metres(m: i64) -> Self {
        Self(i128::from(m) * MILES_PER_KM_E6)
    }

    /// Miles as `f64` (display; the nearest double to the exact value for realistic sizes).
    pub fn as_f64(self) -> f64 {
        // Split to keep precision when the total exceeds 2^53 nano-miles (9·10^6 miles).
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        whole as f64 + frac as f64 / 1e9
    }

    /// The raw value.
    pub fn nanos(self) -> i128 {
        self.0
    }
}

impl std::ops::Add for NanoMiles {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0 + rhs.0)
    }
}

impl std::iter::Sum for NanoMiles {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self(0), |a, b| a + b)
    }
}

impl fmt::Display for NanoMiles {
    /// Exact decimal miles with 9 fraction digits, e.g. `0.647697116` (0.001 mi = `0.001000000`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let m = self.0.unsigned_abs();
        write!(
            f,
            "{}{}.{:09}",
            if neg { "-" } else { "" },
            m / 1_000_000_000,
            m % 1_000_000_000
        )
    }
}

/// Aggregates readings per (VIN, trip, day), counting duplicates (same VIN and canonical
/// timestamp) once — the first one in iteration order is kept, later ones are ignored even
/// if their other fields differ.
pub fn aggregate_readings<I>(
    readings: I,
    threshold: RapidAccelThreshold,
) -> BTreeMap<DailyKey, DailyAggregate>
where
    I: IntoIterator,
    I::Item: Borrow<Reading>,
{
    let mut seen = HashSet::new();
    let mut out: BTreeMap<DailyKey, DailyAggregate> = BTreeMap::new();
    for r in readings {
        let r = r.borrow();
        if !seen.insert(r.dedupe_key()) {
            continue;
        }
        out.entry(DailyKey::of(r))
            .or_default()
            .merge_in(DailyAggregate::from_reading(r, threshold));
    }
    out
}

/// Merges `other` into `into` key by key (the map-level monoid).
pub fn merge_maps(
    into: &mut BTreeMap<DailyKey, DailyAggregate>,
    other: &BTreeMap<DailyKey, DailyAggregate>,
) {
    for (k, v) in other {
        into.entry(k.clone()).or_default().merge_in(*v);
    }
}

// ---------------------------------------------------------------------------------------
// Roll-ups: the seed's three answers, as plain functions over daily aggregates.

/// Rapid accelerations per (VIN, year) — the seed's `rapid_acceleration_by_year`.
pub fn rapid_accelerations_by_vin_year(
    daily: &BTreeMap<DailyKey, DailyAggregate>,
) -> BTreeMap<(Vin, i32), u64> {
    let mut out = BTreeMap::new();
    for (k, v) in daily {
        *out.entry((k.vin, k.day.year())).or_insert(0) += v.rapid_accelerations;
    }
    out
}

/// Total fleet miles per year — the seed's `total_miles_driven_by_year` (sum of daily
/// per-(VIN, trip) miles; exact).
pub fn miles_by_year(daily: &BTreeMap<DailyKey, DailyAggregate>) -> BTreeMap<i32, NanoMiles> {
    let mut out: BTreeMap<i32, NanoMiles> = BTreeMap::new();
    for (k, v) in daily {
        let e = out.entry(k.day.year()).or_default();
        *e = *e + v.miles();
    }
    out
}

/// Miles per (VIN, year) (for `GET /v1/vehicles/{vin}/miles`).
pub fn miles_by_vin_year(
    daily: &BTreeMap<DailyKey, DailyAggregate>,
) -> BTreeMap<(Vin, i32), NanoMiles> {
    let mut out: BTreeMap<(Vin, i32), NanoMiles> = BTreeMap::new();
    for (k, v) in daily {
        let e = out.entry((k.vin, k.day.year())).or_default();
        *e = *e + v.miles();
    }
    out
}

/// Average speed (km/h) per (VIN, day, trip) — the seed's "average speed per trip".
/// Empty aggregates are skipped.
pub fn avg_speed_by_trip(daily: &BTreeMap<DailyKey, DailyAggregate>) -> BTreeMap<DailyKey, f64> {
    daily
        .iter()
        .filter_map(|(k, v)| v.avg_speed_kmh().map(|a| (k.clone(), a)))
        .collect()
}
