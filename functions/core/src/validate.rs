//! Parsing and validation of one raw payload into a [`Reading`].
//!
//! Decisions (stable; other layers rely on them):
//! * The payload must be valid UTF-8 and exactly one JSON object (`not_json`,
//!   `not_an_object`); a key that appears twice is rejected (`duplicate_field`) because
//!   JSON parsers disagree about which copy wins.
//! * `null` means absent: a required field that is `null` is `missing_field`; an optional one
//!   is simply `None`.
//! * Numbers must be JSON numbers. Numbers sent as JSON strings (`"57.3"`) are rejected as
//!   `wrong_type`: the simulator never does this, and accepting them would make the lake's
//!   raw payload and the canonical value disagree in type. Strings spelling a non-finite
//!   value (`"NaN"`, `"Infinity"`, `"-inf"`, …) are `non_finite`, as is a number literal
//!   whose magnitude exceeds the `f64` range (e.g. `1e400`).
//! * Measures are converted from their exact decimal text (see [`crate::fixed`]) and range
//!   checks apply to the rounded canonical value.
//! * Known optional fields with a wrong JSON type are rejected (`wrong_type`), so that typed
//!   lake columns never need a lossy fallback. Unknown fields are never inspected.
//! * Checks run in a fixed order and the first failure is reported: duplicates, `VIN`,
//!   `trip_id`, `timestamp`, `vehicleSpeed`, `acceleration`, `odometer`, then the optional
//!   fields.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::fixed::{ACCEL_SCALE, DecimalError, ODOMETER_SCALE, SPEED_SCALE, decimal_to_fixed};
use crate::record::{Location, Reading, Vin, VinError};
use crate::timestamp::parse_timestamp;

/// Why a payload was rejected. [`RejectReason::code`] is stable (metrics, dead letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not valid UTF-8, or not valid JSON (including trailing data, nesting > 128 levels).
    NotJson,
    /// Valid JSON but not an object.
    NotAnObject,
    /// A required field is absent or `null`.
    MissingField,
    /// A known field has the wrong JSON type.
    WrongType,
    /// The same key appears more than once.
    DuplicateField,
    /// `VIN` is not 17 characters of `[A-Z0-9]`.
    BadVin,
    /// `trip_id` is empty, longer than the limit, or contains control characters or a
    /// backslash.
    BadTripId,
    /// `timestamp` is not in an accepted form.
    BadTimestamp,
    /// `timestamp` is later than `now` plus the allowed skew.
    TimestampInFuture,
    /// `timestamp` is before the earliest accepted instant (2000-01-01).
    TimestampTooOld,
    /// A measure or coordinate is outside its physical range.
    OutOfRange,
    /// A number is NaN/infinite (as a string) or beyond the `f64` range.
    NonFinite,
}

impl RejectReason {
    /// Every reason, in declaration order (for metric dimensions and docs).
    pub const ALL: [RejectReason; 12] = [
        Self::NotJson,
        Self::NotAnObject,
        Self::MissingField,
        Self::WrongType,
        Self::DuplicateField,
        Self::BadVin,
        Self::BadTripId,
        Self::BadTimestamp,
        Self::TimestampInFuture,
        Self::TimestampTooOld,
        Self::OutOfRange,
        Self::NonFinite,
    ];

    /// Stable snake_case code, e.g. `"bad_vin"`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::DuplicateField => "duplicate_field",
            Self::BadVin => "bad_vin",
            Self::BadTripId => "bad_trip_id",
            Self::BadTimestamp => "bad_timestamp",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::OutOfRange => "out_of_range",
            Self::NonFinite => "non_finite",
        }
    }

    /// Inverse of [`RejectReason::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Serialises as the stable code (e.g. `"bad_vin"`), for dead-letter records and metrics.
impl serde::Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected payload: typed reason, the offending field (if any) and a human detail that
/// names the field. Never contains more than a short excerpt of the payload.
///
/// Serialises as `{"reason":"out_of_range","field":"vehicleSpeed","detail":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// The typed reason.
    pub reason: RejectReason,
    /// JSON field name (`"VIN"`, `"location.latitude"`, …) when the problem is one field.
    pub field: Option<&'static str>,
    /// Human-readable explanation, e.g. `vehicleSpeed 612.5 is outside 0..=500 km/h`.
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, field: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            reason,
            field,
            detail: detail.into(),
        }
    }

    /// Shorthand for `self.reason.code()`.
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }
}

/// Limits applied by [`parse_and_validate`]. `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// How far after `now` a timestamp may be (clock skew). Default 5 minutes.
    pub max_future_skew: TimeDelta,
    /// Earliest accepted timestamp. Default 2000-01-01T00:00:00Z.
    pub earliest: DateTime<Utc>,
    /// Inclusive speed range in milli-km/h. Default 0..=500 km/h.
    pub speed_milli_kmh: (i64, i64),
    /// Inclusive acceleration range in ten-thousandths of km/h per s. Default −100..=100.
    pub acceleration_e4: (i64, i64),
    /// Inclusive odometer range in metres. Default 0..=10 000 000 km.
    pub odometer_m: (i64, i64),
    /// Maximum `trip_id` length in UTF-8 bytes, the unit of its `VARCHAR` column.
    /// Default [`crate::columns::TRIP_ID_MAX_BYTES`] (simulator ids are 21).
    pub max_trip_id_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_future_skew: TimeDelta::minutes(5),
            earliest: NaiveDate::from_ymd_opt(2000, 1, 1)
                .unwrap_or(NaiveDate::MIN)
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc(),
            speed_milli_kmh: (0, 500_000),
            acceleration_e4: (-1_000_000, 1_000_000),
            odometer_m: (0, 10_000_000_000),
            max_trip_id_bytes: crate::columns::TRIP_ID_MAX_BYTES,
        }
    }
}

/// Everything validation depends on besides the payload; `now` is injected so that tests
/// are deterministic (production passes `Utc::now()` once per batch).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationContext {
    /// Reference time for the future-timestamp check.
    pub now: DateTime<Utc>,
    /// Limits.
    pub limits: Limits,
}

impl ValidationContext {
    /// Default limits at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            limits: Limits::default(),
        }
    }

    /// Custom limits at `now`.
    pub fn with_limits(now: DateTime<Utc>, limits: Limits) -> Self {
        Self { now, limits }
    }
}

/// Parses one payload (e.g. one Kinesis record's data) and validates it.
///
/// Never panics, whatever the input. Cost: one UTF-8 check, one pass of the JSON parser
/// (no `Value` tree; the measures are read from their raw text), one copy of the payload.
pub fn parse_and_validate(bytes: &[u8], ctx: &ValidationContext) -> Result<Reading, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            RejectReason::NotJson,
            None,
            format!("payload is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let wire = parse_wire(text)?;
    build(&wire, text, ctx)
}

// ---------------------------------------------------------------------------------------
// Pass 1: one scan of the object, keeping the raw text of the fields we know.

#[derive(Default)]
struct Wire<'a> {
    vin: Option<&'a RawValue>,
    trip_id: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    speed: Option<&'a RawValue>,
    acceleration: Option<&'a RawValue>,
    odometer: Option<&'a RawValue>,
    device_id: Option<&'a RawValue>,
    engine_speed: Option<&'a RawValue>,
    fuel_level: Option<&'a RawValue>,
    fuel_consumed: Option<&'a RawValue>,
    oil_temp: Option<&'a RawValue>,
    brake: Option<&'a RawValue>,
    brake_pedal_status: Option<&'a RawValue>,
    ignition_status: Option<&'a RawValue>,
    gear: Option<&'a RawValue>,
    location: Option<&'a RawValue>,
    duplicate: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Field {
    Vin,
    TripId,
    Timestamp,
    Speed,
    Acceleration,
    Odometer,
    DeviceId,
    EngineSpeed,
    FuelLevel,
    FuelConsumed,
    OilTemp,
    Brake,
    BrakePedalStatus,
    IgnitionStatus,
    Gear,
    Location,
    Other,
}

const F_VIN: &str = "VIN";
const F_TRIP: &str = "trip_id";
const F_TS: &str = "timestamp";
const F_SPEED: &str = "vehicleSpeed";
const F_ACCEL: &str = "acceleration";
const F_ODO: &str = "odometer";

impl Field {
    fn from_key(k: &str) -> Self {
        match k {
            F_VIN => Self::Vin,
            F_TRIP => Self::TripId,
            F_TS => Self::Timestamp,
            F_SPEED => Self::Speed,
            F_ACCEL => Self::Acceleration,
            F_ODO => Self::Odometer,
            "_id_" => Self::DeviceId,
            "engineSpeed" => Self::EngineSpeed,
            "fuelLevel" => Self::FuelLevel,
            "fuelConsumedSinceRestart" => Self::FuelConsumed,
            "oilTemp" => Self::OilTemp,
            "brake" => Self::Brake,
            "brakePedalStatus" => Self::BrakePedalStatus,
            "ignitionStatus" => Self::IgnitionStatus,
            "transmissionGearPosition" => Self::Gear,
            "location" => Self::Location,
            _ => Self::Other,
        }
    }
}

struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::from_key(v))
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de>, A::Error> {
        let mut w = Wire::default();
        while let Some(field) = map.next_key_seed(FieldSeed)? {
            let (slot, name) = match field {
                Field::Vin => (&mut w.vin, F_VIN),
                Field::TripId => (&mut w.trip_id, F_TRIP),
                Field::Timestamp => (&mut w.timestamp, F_TS),
                Field::Speed => (&mut w.speed, F_SPEED),
                Field::Acceleration => (&mut w.acceleration, F_ACCEL),
                Field::Odometer => (&mut w.odometer, F_ODO),
                Field::DeviceId => (&mut w.device_id, "_id_"),
                Field::EngineSpeed => (&mut w.engine_speed, "engineSpeed"),
                Field::FuelLevel => (&mut w.fuel_level, "fuelLevel"),
                Field::FuelConsumed => (&mut w.fuel_consumed, "fuelConsumedSinceRestart"),
                Field::OilTemp => (&mut w.oil_temp, "oilTemp"),
                Field::Brake => (&mut w.brake, "brake"),
                Field::BrakePedalStatus => (&mut w.brake_pedal_status, "brakePedalStatus"),
                Field::IgnitionStatus => (&mut w.ignition_status, "ignitionStatus"),
                Field::Gear => (&mut w.gear, "transmissionGearPosition"),
                Field::Location => (&mut w.location, "location"),
                Field::Other => {
                    // Unknown keys are preserved in `raw`; a duplicated unknown key is left
                    // alone (we never read it, so no ambiguity arises for Fleetline).
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value: &'de RawValue = map.next_value()?;
            if slot.is_some() {
                w.duplicate.get_or_insert(name);
            }
            *slot = Some(value);
        }
        Ok(w)
    }
}

fn parse_wire(text: &str) -> Result<Wire<'_>, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de::Deserializer::deserialize_map(&mut de, WireVisitor).and_then(|w| {
        de.end()?;
        Ok(w)
    });
    parsed.map_err(|e| {
        // Our visitor raises no data errors of its own, so a data error means the top
        // level was not an object — provided the whole text is JSON at all. (A data
        // error's message quotes the offending value, so it is never used as the detail.)
        if e.classify() != serde_json::error::Category::Data {
            return not_json(&e);
        }
        match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Rejection::new(
                RejectReason::NotAnObject,
                None,
                format!(
                    "payload is {}, not a JSON object",
                    json_kind(text.trim_start())
                ),
            ),
            Err(syntax) => not_json(&syntax),
        }
    })
}

fn not_json(e: &serde_json::Error) -> Rejection {
    Rejection::new(
        RejectReason::NotJson,
        None,
        format!("invalid JSON: {}", excerpt(&e.to_string())),
    )
}

// ---------------------------------------------------------------------------------------
// Pass 2: interpret the raw field texts.

fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// `None` for absent or `null`. (serde_json's `RawValue` never includes surrounding
/// whitespace, so no trimming is needed.)
fn present(raw: Option<&RawValue>) -> Option<&str> {
    raw.map(RawValue::get).filter(|t| *t != "null")
}

fn required<'a>(raw: Option<&'a RawValue>, field: &'static str) -> Result<&'a str, Rejection> {
    present(raw).ok_or_else(|| {
        let what = if raw.is_some() {
            "is null"
        } else {
            "is missing"
        };
        Rejection::new(
            RejectReason::MissingField,
            Some(field),
            format!("required field {field} {what}"),
        )
    })
}

fn wrong_type(field: &'static str, expected: &str, raw: &str) -> Rejection {
    Rejection::new(
        RejectReason::WrongType,
        Some(field),
        format!("{field} must be {expected}, got {}", json_kind(raw)),
    )
}

/// Decoded contents of a JSON string literal (borrowed unless it has escapes).
fn string_value<'a>(raw: &'a str, field: &'static str) -> Result<Cow<'a, str>, Rejection> {
    if !raw.starts_with('"') {
        return Err(wrong_type(field, "a string", raw));
    }
    if !raw.contains('\\') && raw.len() >= 2 {
        return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|_| wrong_type(field, "a string", raw))
}

/// At most 64 characters of a value, for details (which must stay short: they end up in
/// logs, metrics and dead-letter records).
fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn is_non_finite_word(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    s.eq_ignore_ascii_case("nan")
        || s.eq_ignore_ascii_case("inf")
        || s.eq_ignore_ascii_case("infinity")
}

/// Rejection for a number field that holds something other than a JSON number.
fn not_a_number(raw: &str, field: &'static str) -> Rejection {
    if raw.starts_with('"')
        && let Ok(s) = string_value(raw, field)
        && is_non_finite_word(&s)
    {
        return Rejection::new(
            RejectReason::NonFinite,
            Some(field),
            format!("{field} is {}, not a finite number", excerpt(&s)),
        );
    }
    wrong_type(field, "a JSON number", raw)
}

fn is_number(raw: &str) -> bool {
    matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// `500000, 3` → `"500"`, `-1000000, 4` → `"-100"` (for details).
fn short_decimal(v: i64, scale: u32) -> String {
    let s = crate::fixed::format_fixed(v, scale);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A measure in canonical fixed point, range-checked.
fn measure(
    raw: &str,
    field: &'static str,
    scale: u32,
    (lo, hi): (i64, i64),
    unit: &str,
) -> Result<i64, Rejection> {
    if !is_number(raw) {
        return Err(not_a_number(raw, field));
    }
    let range = || {
        format!(
            "{}..={} {unit}",
            short_decimal(lo, scale),
            short_decimal(hi, scale)
        )
    };
    match decimal_to_fixed(raw, scale) {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(_) | Err(DecimalError::Overflow) => {
            if raw.parse::<f64>().is_ok_and(f64::is_infinite) {
                Err(Rejection::new(
                    RejectReason::NonFinite,
                    Some(field),
                    format!("{field} {} is beyond the range of a double", excerpt(raw)),
                ))
            } else {
                Err(Rejection::new(
                    RejectReason::OutOfRange,
                    Some(field),
                    format!("{field} {} is outside {}", excerpt(raw), range()),
                ))
            }
        }
        Err(_) => Err(wrong_type(field, "a JSON number", raw)),
    }
}

/// An optional plain float field (not aggregated).
fn optional_f64(raw: Option<&RawValue>, field: &'static str) -> Result<Option<f64>, Rejection> {
    optional_f64_text(raw.map(RawValue::get), field)
}

/// [`optional_f64`] from the value's JSON text (`null` means absent).
fn optional_f64_text(raw: Option<&str>, field: &'static str) -> Result<Option<f64>, Rejection> {
    let Some(raw) = raw.filter(|t| *t != "null") else {
        return Ok(None);
    };
    if !is_number(raw) {
        return Err(not_a_number(raw, field));
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Err(Rejection::new(
            RejectReason::NonFinite,
            Some(field),
            format!("{field} {} is beyond the range of a double", excerpt(raw)),
        )),
        Err(_) => Err(wrong_type(field, "a JSON number", raw)),
    }
}

fn optional_string(
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<String>, Rejection> {
    present(raw)
        .map(|r| string_value(r, field).map(Cow::into_owned))
        .transpose()
}

fn optional_bool(raw: Option<&RawValue>, field: &'static str) -> Result<Option<bool>, Rejection> {
    match present(raw) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(wrong_type(field, "a boolean", other)),
    }
}

fn coordinate(raw: Option<&str>, field: &'static str, limit: f64) -> Result<f64, Rejection> {
    let v = optional_f64_text(raw, field)?.ok_or_else(|| {
        Rejection::new(
            RejectReason::MissingField,
            Some(field),
            format!("{field} is required when location is given"),
        )
    })?;
    if !(-limit..=limit).contains(&v) {
        return Err(Rejection::new(
            RejectReason::OutOfRange,
            Some(field),
            format!("{field} {v} is outside -{limit}..={limit} degrees"),
        ));
    }
    Ok(v)
}

fn location(raw: Option<&RawValue>) -> Result<Option<Location>, Rejection> {
    const FIELD: &str = "location";
    let Some(raw) = present(raw) else {
        return Ok(None);
    };
    if !raw.starts_with('{') {
        return Err(wrong_type(FIELD, "an object", raw));
    }
    let (latitude, longitude) = match compact_coordinates(raw) {
        Some((lat, lon)) => (Some(lat), Some(lon)),
        None => parsed_coordinates(raw)?,
    };
    Ok(Some(Location {
        latitude: coordinate(latitude, "location.latitude", 90.0)?,
        longitude: coordinate(longitude, "location.longitude", 180.0)?,
    }))
}

/// The coordinates' texts when `raw` is exactly `{"latitude":A,"longitude":B}` (either
/// order) with scalar values and no whitespace: what producers send, read without a second
/// parser pass. The text is valid JSON (pass 1), so this is exactly what the parser would
/// find; any other shape (whitespace, other or repeated keys, strings) gives `None`.
fn compact_coordinates(raw: &str) -> Option<(&str, &str)> {
    let body = raw.strip_prefix('{')?.strip_suffix('}')?;
    let (first, second) = body.split_once(',')?;
    match (compact_member(first)?, compact_member(second)?) {
        (("latitude", lat), ("longitude", lon)) | (("longitude", lon), ("latitude", lat)) => {
            Some((lat, lon))
        }
        _ => None,
    }
}

/// `"key":value` with a lower-case key and a scalar value (number, `true`, `null`, …).
fn compact_member(member: &str) -> Option<(&str, &str)> {
    let (key, value) = member.strip_prefix('"')?.split_once('"')?;
    let value = value.strip_prefix(':')?;
    let plain_key = key.bytes().all(|b| b.is_ascii_lowercase());
    let scalar = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    (plain_key && scalar).then_some((key, value))
}

/// The coordinates' texts through the parser (any JSON object).
fn parsed_coordinates(raw: &str) -> Result<(Option<&str>, Option<&str>), Rejection> {
    const FIELD: &str = "location";
    #[derive(serde::Deserialize)]
    struct Loc<'a> {
        #[serde(borrow)]
        latitude: Option<&'a RawValue>,
        #[serde(borrow)]
        longitude: Option<&'a RawValue>,
    }
    // Already valid JSON (pass 1); this can only fail on a duplicated key.
    let loc: Loc<'_> = serde_json::from_str(raw).map_err(|e| {
        Rejection::new(
            RejectReason::DuplicateField,
            Some(FIELD),
            format!("location: {e}"),
        )
    })?;
    Ok((
        loc.latitude.map(RawValue::get),
        loc.longitude.map(RawValue::get),
    ))
}

fn build(w: &Wire<'_>, text: &str, ctx: &ValidationContext) -> Result<Reading, Rejection> {
    if let Some(name) = w.duplicate {
        return Err(Rejection::new(
            RejectReason::DuplicateField,
            Some(name),
            format!("field {name} appears more than once"),
        ));
    }
    let limits = &ctx.limits;

    let vin_text = string_value(required(w.vin, F_VIN)?, F_VIN)?;
    let vin = Vin::parse(&vin_text).map_err(|e| {
        let detail = match e {
            VinError::Length(_) => format!("VIN {:?}: {e}", excerpt(&vin_text)),
            VinError::Charset => format!("VIN {:?}: {e}", excerpt(&vin_text)),
        };
        Rejection::new(RejectReason::BadVin, Some(F_VIN), detail)
    })?;

    let trip_id = string_value(required(w.trip_id, F_TRIP)?, F_TRIP)?;
    // Bytes, not characters: Redshift's VARCHAR(64) refuses 33 two-byte characters, and
    // one refused row fails the whole warehouse batch, so it is dead-lettered here. A
    // backslash has no SQL literal spelling that Redshift (escape character) and PostgreSQL
    // (standard strings) read alike, so the speed layer could not store it while the lake
    // could: refusing it here keeps both layers counting the same readings.
    let trip_bytes = trip_id.len();
    if trip_bytes == 0
        || trip_bytes > limits.max_trip_id_bytes
        || trip_id.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(Rejection::new(
            RejectReason::BadTripId,
            Some(F_TRIP),
            format!(
                "trip_id must be 1..={} UTF-8 bytes without control characters or backslashes, got {trip_bytes} bytes",
                limits.max_trip_id_bytes
            ),
        ));
    }

    let ts_text = string_value(required(w.timestamp, F_TS)?, F_TS)?;
    let timestamp = parse_timestamp(&ts_text).map_err(|e| {
        Rejection::new(
            RejectReason::BadTimestamp,
            Some(F_TS),
            format!("timestamp {:?}: {e}", excerpt(&ts_text)),
        )
    })?;
    if timestamp < limits.earliest {
        return Err(Rejection::new(
            RejectReason::TimestampTooOld,
            Some(F_TS),
            format!(
                "timestamp {ts_text:?} is before {}",
                limits.earliest.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    if ctx
        .now
        .checked_add_signed(limits.max_future_skew)
        .is_some_and(|latest| timestamp > latest)
    {
        return Err(Rejection::new(
            RejectReason::TimestampInFuture,
            Some(F_TS),
            format!(
                "timestamp {ts_text:?} is more than {}s after now ({})",
                limits.max_future_skew.num_seconds(),
                ctx.now.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }

    let speed_milli_kmh = measure(
        required(w.speed, F_SPEED)?,
        F_SPEED,
        SPEED_SCALE,
        limits.speed_milli_kmh,
        "km/h",
    )?;
    let acceleration_e4 = measure(
        required(w.acceleration, F_ACCEL)?,
        F_ACCEL,
        ACCEL_SCALE,
        limits.acceleration_e4,
        "km/h per s",
    )?;
    let odometer_m = measure(
        required(w.odometer, F_ODO)?,
        F_ODO,
        ODOMETER_SCALE,
        limits.odometer_m,
        "km",
    )?;

    Ok(Reading {
        vin,
        trip_id: trip_id.into_owned(),
        timestamp,
        speed_milli_kmh,
        acceleration_e4,
        odometer_m,
        device_id: optional_string(w.device_id, "_id_")?,
        engine_speed: optional_f64(w.engine_speed, "engineSpeed")?,
        fuel_level: optional_f64(w.fuel_level, "fuelLevel")?,
        fuel_consumed_since_restart: optional_f64(w.fuel_consumed, "fuelConsumedSinceRestart")?,
        oil_temp: optional_f64(w.oil_temp, "oilTemp")?,
        brake: optional_f64(w.brake, "brake")?,
        brake_pedal_status: optional_bool(w.brake_pedal_status, "brakePedalStatus")?,
        ignition_status: optional_string(w.ignition_status, "ignitionStatus")?,
        transmission_gear_position: optional_string(w.gear, "transmissionGearPosition")?,
        location: location(w.location)?,
        raw: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_locations_read_as_the_parser_reads_them() {
        for raw in [
            r#"{"latitude":47.6105,"longitude":-122.3301}"#,
            r#"{"longitude":-1e2,"latitude":0}"#,
            r#"{"latitude":null,"longitude":true}"#,
        ] {
            // `null` means absent either way (the parser says so itself).
            let present = |t: Option<&'static str>| t.filter(|t| *t != "null");
            let (lat, lon) = compact_coordinates(raw).expect(raw);
            let (plat, plon) = parsed_coordinates(raw).unwrap();
            assert_eq!(
                (present(plat), present(plon)),
                (present(Some(lat)), present(Some(lon))),
                "{raw}"
            );
        }
        // Any other shape goes to the parser.
        for raw in [
            r#"{"latitude": 47.6,"longitude":1}"#,
            r#"{"latitude":"47.6","longitude":1}"#,
            r#"{"latitude":1,"latitude":2}"#,
            r#"{"latitude":1,"longitude":2,"x":3}"#,
            r#"{"lat\u0069tude":1,"longitude":2}"#,
            r#"{"latitude":1}"#,
            r#"{}"#,
        ] {
            assert_eq!(compact_coordinates(raw), None, "{raw}");
        }
    }
}
