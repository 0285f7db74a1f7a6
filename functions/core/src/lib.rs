//! Fleetline domain core: the telemetry record, its validation, the daily aggregates both
//! layers merge, the time-boundary arithmetic, and the ports (traits) the functions' adapters
//! implement. No AWS types, no I/O, no async runtime.
//!
//! Canonical units (shared with the SQL side): speed in milli-km/h, odometer in metres,
//! acceleration in ten-thousandths of km/h per s — all `i64`, rounded half away from zero
//! from the exact JSON text; timestamps in UTC truncated to microseconds; day = UTC date.

#![warn(missing_docs)]

pub mod aggregate;
pub mod boundary;
pub mod columns;
pub mod fixed;
pub mod ports;
pub mod record;
pub mod threshold;
pub mod timestamp;
pub mod validate;

pub use aggregate::{
    DailyAggregate, DailyKey, NanoMiles, aggregate_readings, avg_speed_by_trip, merge_maps,
    miles_by_vin_year, miles_by_year, rapid_accelerations_by_vin_year,
};
pub use boundary::{
    BoundaryError, DayRange, Layer, default_boundary, owner, prune_before, recompute_range,
    validate_boundary,
};
pub use fixed::{FixedDisplay, format_e4, format_fixed, format_milli, parse_fixed};
pub use record::{DedupeKey, Location, Reading, Vin, VinError};
pub use threshold::{RapidAccelThreshold, THRESHOLD_ENV, ThresholdError};
pub use timestamp::{TimestampDisplay, format_timestamp, parse_timestamp};
pub use validate::{Limits, RejectReason, Rejection, ValidationContext, parse_and_validate};
