//! Canonical fixed-point numbers (see COMMON.md "Canonical units").
//!
//! Every measure that gets summed is an `i64` count of `10^-scale` units, produced from the
//! *decimal text* of the JSON number (never through `f64`), rounded half away from zero. Both
//! layers therefore see bit-identical values, and SQL `DECIMAL(p, scale)` columns hold them
//! exactly. [`format_fixed`] renders them as exact decimal strings for SQL and Parquet.

use std::fmt;

/// Scale of `vehicleSpeed` (km/h → milli-km/h).
pub const SPEED_SCALE: u32 = 3;
/// Scale of `odometer` (km → metres).
pub const ODOMETER_SCALE: u32 = 3;
/// Scale of `acceleration` (km/h per s → ten-thousandths).
pub const ACCEL_SCALE: u32 = 4;
/// Largest supported scale (10^18 still fits in `u64`).
pub const MAX_SCALE: u32 = 18;

/// Why a decimal text could not be turned into a fixed-point value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `-?digits[.digits][(e|E)[+-]digits]`.
    #[error("not a decimal number")]
    Syntax,
    /// The rounded value does not fit in `i64` at the requested scale.
    #[error("number too large for the fixed-point range")]
    Overflow,
    /// A float that is NaN or infinite.
    #[error("number is not finite")]
    NonFinite,
    /// Scale above [`MAX_SCALE`].
    #[error("unsupported scale")]
    Scale,
}

/// Converts decimal text (JSON number grammar; leading zeros are tolerated) into
/// `round_half_away_from_zero(value × 10^scale)`, exactly.
///
/// ```
/// use fleetline_core::fixed::decimal_to_fixed;
/// assert_eq!(decimal_to_fixed("57.3", 3), Ok(57_300));
/// assert_eq!(decimal_to_fixed("-4.21095", 4), Ok(-42_110)); // half away from zero
/// assert_eq!(decimal_to_fixed("1.0425e1", 3), Ok(10_425));
/// ```
pub fn decimal_to_fixed(text: &str, scale: u32) -> Result<i64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::Scale);
    }
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    if int_digits.is_empty() {
        return Err(DecimalError::Syntax);
    }
    let mut frac_digits: &[u8] = &[];
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &b[start..i];
        if frac_digits.is_empty() {
            return Err(DecimalError::Syntax);
        }
    }
    // Exponent saturates: anything beyond ±10^6 is far outside i64 (or rounds to zero).
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let mut exp_negative = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            exp_negative = b[i] == b'-';
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exp = (exp * 10 + i64::from(b[i] - b'0')).min(1_000_000);
            i += 1;
        }
        if i == start {
            return Err(DecimalError::Syntax);
        }
        if exp_negative {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(DecimalError::Syntax);
    }

    let n_digits = int_digits.len() + frac_digits.len();
    let digit = |k: usize| -> u64 {
        let d = if k < int_digits.len() {
            int_digits[k]
        } else {
            frac_digits[k - int_digits.len()]
        };
        u64::from(d - b'0')
    };
    // `kept` = number of leading digits that land left of the scaled decimal point.
    let kept = int_digits.len() as i64 + exp + i64::from(scale);
    let mut magnitude: u64 = 0;
    let round_up;
    if kept <= 0 {
        round_up = kept == 0 && n_digits > 0 && digit(0) >= 5;
    } else {
        let kept_u = kept as usize; // kept > 0 here; bounded by text length + 10^6
        for k in 0..kept_u.min(n_digits) {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(digit(k)))
                .ok_or(DecimalError::Overflow)?;
        }
        if kept_u >= n_digits {
            if magnitude != 0 {
                for _ in n_digits..kept_u {
                    magnitude = magnitude.checked_mul(10).ok_or(DecimalError::Overflow)?;
                }
            }
            round_up = false;
        } else {
            round_up = digit(kept_u) >= 5;
        }
    }
    if round_up {
        magnitude = magnitude.checked_add(1).ok_or(DecimalError::Overflow)?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            return Err(DecimalError::Overflow);
        }
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude).map_err(|_| DecimalError::Overflow)
    }
}

/// Converts a finite `f64` to fixed point through its shortest round-trip decimal form,
/// so `f64_to_fixed(57.3, 3) == Ok(57_300)` just like the JSON text `57.3`.
pub fn f64_to_fixed(value: f64, scale: u32) -> Result<i64, DecimalError> {
    if !value.is_finite() {
        return Err(DecimalError::NonFinite);
    }
    decimal_to_fixed(&format!("{value:e}"), scale)
}

/// The fixed-point value as an `f64` (for display and JSON output only; never sum these).
/// Exact division, so the result is the correctly rounded double for `|value| < 2^53`.
pub fn fixed_to_f64(value: i64, scale: u32) -> f64 {
    value as f64 / 10f64.powi(scale.min(MAX_SCALE) as i32)
}

/// Displays a fixed-point value as an exact decimal with exactly `scale` fraction digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedDisplay {
    value: i64,
    scale: u32,
}

impl FixedDisplay {
    /// `scale` is clamped to [`MAX_SCALE`].
    pub fn new(value: i64, scale: u32) -> Self {
        Self {
            value,
            scale: scale.min(MAX_SCALE),
        }
    }
}

/// Room for the longest text: sign, 20 integer digits, point, [`MAX_SCALE`] fraction digits.
const FIXED_TEXT_MAX: usize = 40;

impl FixedDisplay {
    /// Appends the text to `out`: what `Display` prints, without the formatting machinery
    /// (SQL row builders call this for every measure of every row).
    pub fn push_to(self, out: &mut String) {
        let mut buf = [0u8; FIXED_TEXT_MAX];
        out.push_str(self.render(&mut buf));
    }

    /// Writes the digits right to left into the end of `buf`: the `scale` lowest digits of
    /// the magnitude are the fraction (zero-padded), the rest (at least `0`) the integer part.
    fn render(self, buf: &mut [u8; FIXED_TEXT_MAX]) -> &str {
        let mut m = self.value.unsigned_abs();
        let mut pos = buf.len();
        let mut put = |pos: &mut usize, byte: u8| {
            *pos -= 1;
            buf[*pos] = byte;
        };
        for _ in 0..self.scale {
            put(&mut pos, b'0' + (m % 10) as u8);
            m /= 10;
        }
        if self.scale > 0 {
            put(&mut pos, b'.');
        }
        loop {
            put(&mut pos, b'0' + (m % 10) as u8);
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if self.value < 0 {
            put(&mut pos, b'-');
        }
        // Only ASCII digits, '.' and '-' were written.
        std::str::from_utf8(&buf[pos..]).unwrap_or_default()
    }
}

impl fmt::Display for FixedDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; FIXED_TEXT_MAX];
        f.write_str(self.render(&mut buf))
    }
}

/// Renders `value × 10^-scale` exactly: `format_fixed(57_300, 3) == "57.300"`,
/// `format_fixed(-42_109, 4) == "-4.2109"`. Suitable for SQL DECIMAL literals.
pub fn format_fixed(value: i64, scale: u32) -> String {
    FixedDisplay::new(value, scale).to_string()
}

/// [`format_fixed`] at [`SPEED_SCALE`]/[`ODOMETER_SCALE`] (thousandths).
pub fn format_milli(value: i64) -> String {
    format_fixed(value, 3)
}

/// [`format_fixed`] at [`ACCEL_SCALE`] (ten-thousandths).
pub fn format_e4(value: i64) -> String {
    format_fixed(value, ACCEL_SCALE)
}

/// Parses an exact decimal string (e.g. a DECIMAL read back from SQL) at `scale`;
/// the inverse of [`format_fixed`]. Digits beyond `scale` are rounded half away from zero.
pub fn parse_fixed(text: &str, scale: u32) -> Result<i64, DecimalError> {
    decimal_to_fixed(text.trim(), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_formatting_machinery() {
        for scale in [0, 1, 3, 4, MAX_SCALE] {
            for value in [0, 1, -1, 9, 57_300, -42_109, 1_000_000, i64::MAX, i64::MIN] {
                let pow = 10u64.pow(scale);
                let m = value.unsigned_abs();
                let sign = if value < 0 { "-" } else { "" };
                let expected = match scale {
                    0 => format!("{sign}{m}"),
                    _ => format!("{sign}{}.{:0w$}", m / pow, m % pow, w = scale as usize),
                };
                assert_eq!(FixedDisplay::new(value, scale).to_string(), expected);
                let mut pushed = String::from("x");
                FixedDisplay::new(value, scale).push_to(&mut pushed);
                assert_eq!(pushed, format!("x{expected}"));
            }
        }
    }

    #[test]
    fn converts_decimal_text_exactly() {
        // (text, scale, fixed-point value).
        let cases: [(&str, u32, i64); 18] = [
            ("57.3", 3, 57_300),
            ("1042.377", 3, 1_042_377),
            ("2210", 3, 2_210_000),
            // Signs and zero.
            ("4.2109", 4, 42_109),
            ("-4.2109", 4, -42_109),
            ("0", 3, 0),
            ("-0", 3, 0),
            // Exponents, however large or small.
            ("5e2", 3, 500_000),
            ("5E+2", 3, 500_000),
            ("12345e-4", 3, 1_235), // 1.2345 → 1.235
            ("1e-1000000000", 3, 0),
            ("0e999999999", 3, 0),
            // Digits beyond the scale round half away from zero.
            ("0.0005", 3, 1),
            ("0.0004999", 3, 0),
            ("-0.0005", 3, -1),
            ("0.5", 0, 1),
            ("0.05", 0, 0),
            // 1.0005 is 1.000499999… as a double; the text is what counts.
            ("1.0005", 3, 1_001),
        ];
        for (text, scale, want) in cases {
            assert_eq!(decimal_to_fixed(text, scale), Ok(want), "{text} at {scale}");
        }
    }

    #[test]
    fn detects_overflow_and_syntax() {
        assert_eq!(decimal_to_fixed("9223372036854775.807", 3), Ok(i64::MAX));
        assert_eq!(decimal_to_fixed("-9223372036854775.808", 3), Ok(i64::MIN));
        assert_eq!(
            decimal_to_fixed("9223372036854775.808", 3),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            decimal_to_fixed("9223372036854775.8075", 3),
            Err(DecimalError::Overflow)
        );
        assert_eq!(decimal_to_fixed("1e30", 3), Err(DecimalError::Overflow));
        assert_eq!(
            decimal_to_fixed("1e999999999999", 3),
            Err(DecimalError::Overflow)
        );
        for bad in [
            "", "-", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "0x10", "NaN", " 1",
        ] {
            assert_eq!(
                decimal_to_fixed(bad, 3),
                Err(DecimalError::Syntax),
                "{bad:?}"
            );
        }
        assert_eq!(decimal_to_fixed("1", 19), Err(DecimalError::Scale));
    }

    #[test]
    fn formats_exactly() {
        assert_eq!(format_fixed(57_300, 3), "57.300");
        assert_eq!(format_fixed(-42_109, 4), "-4.2109");
        assert_eq!(format_fixed(-5, 3), "-0.005");
        assert_eq!(format_fixed(0, 3), "0.000");
        assert_eq!(format_fixed(7, 0), "7");
        assert_eq!(format_fixed(i64::MIN, 3), "-9223372036854775.808");
        assert_eq!(format_milli(1_042_377), "1042.377");
        assert_eq!(format_e4(100_000), "10.0000");
    }

    #[test]
    fn converts_floats_via_shortest_decimal() {
        assert_eq!(f64_to_fixed(57.3, 3), Ok(57_300));
        assert_eq!(f64_to_fixed(1.0005, 3), Ok(1_001));
        assert_eq!(f64_to_fixed(10.0, 4), Ok(100_000));
        assert_eq!(f64_to_fixed(f64::NAN, 4), Err(DecimalError::NonFinite));
        assert_eq!(fixed_to_f64(57_300, 3), 57.3);
        assert_eq!(fixed_to_f64(-42_109, 4), -4.2109);
    }
}
