//! Exact values to JSON: numbers are rounded for display, exact decimal strings ride along.
//!
//! - miles: exact nano-miles (DECIMAL scale 9 in SQL) → JSON number rounded half away from
//!   zero to 6 decimals (`total_miles`, `miles`) + the exact 9-decimal string
//!   (`total_miles_exact`, `miles_exact`);
//! - speeds: `sum_speed / readings` in milli-km/h rounded half away from zero → km/h with 3
//!   decimals (`avg_speed_kmh`).

use fleetline_core::NanoMiles;

fn div_round_half_away(n: i128, d: i128) -> i128 {
    let q = (2 * n.abs() + d) / (2 * d);
    if n < 0 { -q } else { q }
}

/// Miles rounded to 6 decimals (a JSON number).
pub fn miles_number(m: NanoMiles) -> f64 {
    let micro = div_round_half_away(m.nanos(), 1_000);
    // micro / 1e6 is the double nearest to the 6-decimal value for realistic sizes.
    micro as f64 / 1e6
}

/// The exact 9-decimal string, e.g. `"12.345678901"`.
pub fn miles_exact(m: NanoMiles) -> String {
    m.to_string()
}

/// `sum_speed_milli / readings` in km/h rounded to 3 decimals; `None` when there are no
/// readings.
pub fn avg_speed_kmh(sum_speed_milli: i64, readings: i64) -> Option<f64> {
    (readings > 0).then(|| {
        div_round_half_away(i128::from(sum_speed_milli), i128::from(readings)) as f64 / 1e3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(miles_number(NanoMiles(1_234_567_500)), 1.234568);
        assert_eq!(miles_number(NanoMiles(1_234_567_499)), 1.234567);
        assert_eq!(miles_number(NanoMiles(0)), 0.0);
        assert_eq!(miles_exact(NanoMiles(10_563_307)), "0.010563307");
        assert_eq!(avg_speed_kmh(110_100, 2), Some(55.05));
        assert_eq!(avg_speed_kmh(100, 3), Some(0.033));
        assert_eq!(avg_speed_kmh(5, 2), Some(0.003)); // 2.5 milli → 3
        assert_eq!(avg_speed_kmh(1, 0), None);
    }
}
