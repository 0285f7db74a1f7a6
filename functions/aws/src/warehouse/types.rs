//! Values crossing the [`Warehouse`](super::Warehouse) boundary: parameters, result sets
//! and typed row decoding. No AWS SDK types here, so fakes need nothing from the SDK.

use std::borrow::Cow;
use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};

/// A named parameter of [`Warehouse::query`](super::Warehouse::query) /
/// [`Warehouse::execute`](super::Warehouse::execute), referenced in SQL as `:name`.
///
/// The Data API passes every parameter as a non-empty string and lets Redshift convert it
/// (`SqlParameter.value` is required, minimum length 1), so there is no NULL parameter:
/// write `NULL` in the SQL text instead, or use `NULLIF(:p, '-')`-style sentinels.
/// Empty values and names outside `[0-9a-zA-Z_]+` are rejected before any call is made
/// ([`WarehouseError::InvalidParameter`](super::WarehouseError::InvalidParameter)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlParam {
    pub name: String,
    pub value: String,
}

impl SqlParam {
    /// `SqlParam::new("vin", vin)`, `SqlParam::new("year", 2026)`,
    /// `SqlParam::new("day", date)` (chrono dates print as `YYYY-MM-DD`).
    pub fn new(name: impl Into<String>, value: impl fmt::Display) -> Self {
        Self {
            name: name.into(),
            value: value.to_string(),
        }
    }

    /// Checks the Data API's constraints; the reason names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("name must match [0-9a-zA-Z_]+".to_owned());
        }
        if self.value.is_empty() {
            return Err("value must not be empty (the Data API has no NULL parameter)".to_owned());
        }
        Ok(())
    }
}

/// One column of a result set, from the Data API's `ColumnMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name or label as the database reports it (Redshift lower-cases unquoted names).
    pub name: String,
    /// Database type name, e.g. `varchar`, `int8`, `numeric`, `date`, `timestamp`.
    pub type_name: String,
}

/// One field value, as the Data API types it. DECIMAL, DATE and TIMESTAMP arrive as
/// strings; use the typed accessors ([`Row::get_scaled_i64`], [`Row::get_date`] …).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    String(String),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Long(_) => "long",
            Value::Double(_) => "double",
            Value::String(_) => "string",
        }
    }

    /// Integers: `Long`, or a `String` holding a plain integer (e.g. a NUMERIC(38,0) sum).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Long(v) => Some(*v),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Floats for display-only values (averages, miles). `Long` and numeric strings convert.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(v) => Some(*v),
            Value::Long(v) => Some(*v as f64),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The exact decimal text of a DECIMAL/NUMERIC value (`Long` values are formatted).
    pub fn as_decimal_str(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::String(s) if parse_decimal(s.trim()).is_some() => Some(Cow::Borrowed(s.trim())),
            Value::Long(v) => Some(Cow::Owned(v.to_string())),
            _ => None,
        }
    }

    /// A decimal as an integer count of `10^-scale` units, exactly: `"57.300"` with scale 3
    /// is `57300`. Fails (None) if the value has non-zero digits beyond `scale` or overflows,
    /// so sums of DECIMAL(12,3) columns come back without any float rounding.
    pub fn as_scaled_i64(&self, scale: u32) -> Option<i64> {
        match self {
            Value::Long(v) => v.checked_mul(10i64.checked_pow(scale)?),
            Value::String(s) => scaled_decimal(s.trim(), scale),
            _ => None,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn as_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.as_str()?.trim(), "%Y-%m-%d").ok()
    }

    /// `YYYY-MM-DD HH:MM:SS[.fraction]` (also with `T`, and with a `+00`/`Z` suffix that
    /// TIMESTAMPTZ values carry); the result is the UTC wall-clock time.
    pub fn as_timestamp(&self) -> Option<NaiveDateTime> {
        let s = self.as_str()?.trim();
        let s = s
            .strip_suffix("+00:00")
            .or_else(|| s.strip_suffix("+00"))
            .or_else(|| s.strip_suffix('Z'))
            .unwrap_or(s);
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
            .ok()
    }
}

/// Splits an optional sign, integer digits and fraction digits; None if not a decimal.
fn parse_decimal(s: &str) -> Option<(bool, &str, &str)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    Some((neg, int, frac))
}

fn scaled_decimal(s: &str, scale: u32) -> Option<i64> {
    let (neg, int, frac) = parse_decimal(s)?;
    let scale = scale as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut v: i64 = 0;
    let padding = std::iter::repeat_n(b'0', scale - kept.len());
    for b in int.bytes().chain(kept.bytes()).chain(padding) {
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// The rows of a statement, all pages concatenated in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of a column by name (ASCII case-insensitive, as Redshift folds names).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Borrowed rows with by-name typed access.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// Decodes every row with `f`, stopping at the first error:
    /// `rs.map_rows(|r| Ok(Trip { vin: r.get_string("vin")?, readings: r.get_i64("readings")? }))`.
    pub fn map_rows<T>(
        &self,
        f: impl FnMut(&Row<'_>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut f = f;
        self.iter().map(|r| f(&r)).collect()
    }

    /// Decodes every row through [`FromRow`].
    pub fn decode<T: FromRow>(&self) -> Result<Vec<T>, DecodeError> {
        self.map_rows(T::from_row)
    }
}

/// Types that can be built from one result row.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, DecodeError>;
}

/// A decoding failure that names the column (and what was found there).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("no column named {column:?} in the result (columns: {available})")]
    MissingColumn { column: String, available: String },
    #[error("column {column:?}: expected {expected}, found {found}")]
    Type {
        column: String,
        expected: &'static str,
        found: String,
    },
    #[error("column {column:?}: {message}")]
    Unsupported { column: String, message: String },
    #[error("{0}")]
    Shape(String),
}

/// One row of a [`ResultSet`], with typed getters that name the column in their errors.
/// `get_x` fails on NULL; `get_opt_x` maps NULL to `None`.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [Column],
    values: &'a [Value],
}

macro_rules! typed_getters {
    ($( $(#[$doc:meta])* $get:ident, $get_opt:ident, $ty:ty, $expected:literal, |$v:ident| $conv:expr; )*) => {$(
        $(#[$doc])*
        pub fn $get(&self, column: &str) -> Result<$ty, DecodeError> {
            self.$get_opt(column)?.ok_or_else(|| self.type_error(column, $expected))
        }
        $(#[$doc])*
        /// NULL gives `Ok(None)`.
        pub fn $get_opt(&self, column: &str) -> Result<Option<$ty>, DecodeError> {
            let $v = self.get(column)?;
            if $v.is_null() {
                return Ok(None);
            }
            match $conv {
                Some(x) => Ok(Some(x)),
                None => Err(self.type_error(column, $expected)),
            }
        }
    )*};
}

impl<'a> Row<'a> {
    /// Builds a row view; `values` are matched to `columns` by position.
    pub fn new(columns: &'a [Column], values: &'a [Value]) -> Self {
        Self { columns, values }
    }

    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The raw value of a column (ASCII case-insensitive name).
    pub fn get(&self, column: &str) -> Result<&'a Value, DecodeError> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(column))
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| DecodeError::MissingColumn {
                column: column.to_owned(),
                available: self
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn type_error(&self, column: &str, expected: &'static str) -> DecodeError {
        let found = match self.get(column) {
            Ok(Value::String(s)) => format!("string {s:?}"),
            Ok(v @ (Value::Long(_) | Value::Double(_) | Value::Bool(_))) => format!("{v:?}"),
            Ok(v) => v.kind().to_owned(),
            Err(e) => return e,
        };
        DecodeError::Type {
            column: column.to_owned(),
            expected,
            found,
        }
    }

    typed_getters! {
        /// An integer (BIGINT/INT, COUNT, or an integral numeric string).
        get_i64, get_opt_i64, i64, "integer", |v| v.as_i64();
        /// A float (DOUBLE/REAL, or numeric converted; for display values only).
        get_f64, get_opt_f64, f64, "number", |v| v.as_f64();
        /// A BOOLEAN.
        get_bool, get_opt_bool, bool, "boolean", |v| v.as_bool();
        /// A string value, borrowed.
        get_str, get_opt_str, &'a str, "string", |v| v.as_str();
        /// A string value, owned.
        get_string, get_opt_string, String, "string", |v| v.as_str().map(str::to_owned);
        /// The exact text of a DECIMAL (or integer) value.
        get_decimal_str, get_opt_decimal_str, String, "decimal", |v| v.as_decimal_str().map(Cow::into_owned);
        /// A DATE (`YYYY-MM-DD`).
        get_date, get_opt_date, NaiveDate, "date YYYY-MM-DD", |v| v.as_date();
        /// A TIMESTAMP (UTC wall clock).
        get_timestamp, get_opt_timestamp, NaiveDateTime, "timestamp", |v| v.as_timestamp();
    }

    /// A DECIMAL as an exact integer of `10^-scale` units (see [`Value::as_scaled_i64`]).
    pub fn get_scaled_i64(&self, column: &str, scale: u32) -> Result<i64, DecodeError> {
        self.get_opt_scaled_i64(column, scale)?
            .ok_or_else(|| self.type_error(column, "decimal exact at the requested scale"))
    }

    /// As [`Row::get_scaled_i64`]; NULL gives `Ok(None)`.
    pub fn get_opt_scaled_i64(&self, column: &str, scale: u32) -> Result<Option<i64>, DecodeError> {
        let v = self.get(column)?;
        if v.is_null() {
            return Ok(None);
        }
        v.as_scaled_i64(scale)
            .map(Some)
            .ok_or_else(|| self.type_error(column, "decimal exact at the requested scale"))
    }
}

/// What a non-query statement (or a transaction) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSummary {
    /// Data API statement id (for a batch, the parent id; sub-statements are `id:1`, `id:2` …).
    pub statement_id: String,
    /// Rows affected per statement, in order; `None` where the Data API reports none
    /// (DDL, or a negative `ResultRows`).
    pub rows_affected: Vec<Option<u64>>,
}

impl ExecSummary {
    /// Sum of the known per-statement row counts.
    pub fn total_rows(&self) -> u64 {
        self.rows_affected.iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs() -> ResultSet {
        ResultSet {
            columns: ["vin", "readings", "sum_speed", "day", "ts", "flag", "avg"]
                .iter()
                .map(|n| Column {
                    name: (*n).to_owned(),
                    type_name: "x".to_owned(),
                })
                .collect(),
            rows: vec![vec![
                Value::String("1HGCM82633A004352".into()),
                Value::Long(300),
                Value::String("17190.000".into()),
                Value::String("2026-11-25".into()),
                Value::String("2026-11-25 17:04:31.123456".into()),
                Value::Null,
                Value::Double(54.2),
            ]],
        }
    }

    #[test]
    fn typed_getters_decode_and_name_the_column() {
        let rs = rs();
        let row = rs.iter().next().unwrap();
        assert_eq!(row.get_str("VIN").unwrap(), "1HGCM82633A004352");
        assert_eq!(row.get_i64("readings").unwrap(), 300);
        assert_eq!(row.get_scaled_i64("sum_speed", 3).unwrap(), 17_190_000);
        assert_eq!(row.get_decimal_str("sum_speed").unwrap(), "17190.000");
        assert_eq!(
            row.get_date("day").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        let ts = row.get_timestamp("ts").unwrap();
        assert_eq!(ts.and_utc().timestamp_subsec_micros(), 123_456);
        assert_eq!(row.get_opt_bool("flag").unwrap(), None);
        assert_eq!(row.get_f64("avg").unwrap(), 54.2);

        let err = row.get_i64("vin").unwrap_err();
        assert!(err.to_string().contains("\"vin\""), "{err}");
        assert!(err.to_string().contains("expected integer"), "{err}");
        let err = row.get_bool("flag").unwrap_err();
        assert!(err.to_string().contains("found null"), "{err}");
        let err = row.get("nope").unwrap_err();
        assert!(matches!(err, DecodeError::MissingColumn { .. }));
        assert!(err.to_string().contains("vin, readings"), "{err}");
    }

    #[test]
    fn scaled_decimals_are_exact_or_rejected() {
        let s = |x: &str| Value::String(x.into());
        assert_eq!(s("57.3").as_scaled_i64(3), Some(57_300));
        assert_eq!(s("-0.0001").as_scaled_i64(4), Some(-1));
        assert_eq!(s("1042.377000").as_scaled_i64(3), Some(1_042_377));
        assert_eq!(s("12").as_scaled_i64(3), Some(12_000));
        assert_eq!(s(".5").as_scaled_i64(1), Some(5));
        assert_eq!(s("1.2345").as_scaled_i64(3), None, "lossy");
        assert_eq!(s("9223372036854775.808").as_scaled_i64(3), None, "overflow");
        assert_eq!(s("9223372036854775.807").as_scaled_i64(3), Some(i64::MAX));
        assert_eq!(s("1e3").as_scaled_i64(3), None);
        assert_eq!(s("-").as_scaled_i64(3), None);
        assert_eq!(Value::Long(7).as_scaled_i64(3), Some(7_000));
        assert_eq!(Value::Double(7.0).as_scaled_i64(3), None, "floats never");
    }

    #[test]
    fn timestamps_accept_the_redshift_shapes() {
        let s = |x: &str| Value::String(x.into()).as_timestamp();
        let want = NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(s("2026-01-02 03:04:05"), Some(want));
        assert_eq!(s("2026-01-02T03:04:05"), Some(want));
        assert_eq!(s("2026-01-02 03:04:05+00"), Some(want));
        assert_eq!(s("2026-01-02 03:04:05Z"), Some(want));
        assert_eq!(s("2026-01-02"), None);
    }

    #[test]
    fn params_follow_the_data_api_constraints() {
        assert!(SqlParam::new("vin", "X").validate().is_ok());
        assert!(
            SqlParam::new("day", NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()).value
                == "2026-01-02"
        );
        assert!(SqlParam::new("bad-name", "x").validate().is_err());
        assert!(SqlParam::new("", "x").validate().is_err());
        assert!(SqlParam::new("v", "").validate().is_err());
    }

    #[test]
    fn from_row_and_map_rows() {
        struct Agg {
            vin: String,
            readings: i64,
        }
        impl FromRow for Agg {
            fn from_row(r: &Row<'_>) -> Result<Self, DecodeError> {
                Ok(Agg {
                    vin: r.get_string("vin")?,
                    readings: r.get_i64("readings")?,
                })
            }
        }
        let rs = rs();
        let v: Vec<Agg> = rs.decode().unwrap();
        assert_eq!(
            (v[0].vin.as_str(), v[0].readings),
            ("1HGCM82633A004352", 300)
        );
        let err = rs.map_rows(|r| r.get_i64("day")).unwrap_err();
        assert!(err.to_string().contains("\"day\""));
    }
}
