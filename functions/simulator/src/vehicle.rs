//! One vehicle's driving model, in integers only (deterministic on every platform).
//!
//! A trip is a sequence of phases: idle (engine on), accelerate (occasionally a hard
//! launch above the rapid-acceleration threshold), cruise with noise, brake (to a lower
//! speed or to a stop at lights), and a final stop that always ends at 0 km/h with the
//! ignition off on the trip's last reading. Physics runs in sub-steps of at most 1 s, so
//! the reported acceleration is the instantaneous Δspeed/Δt of the last sub-step (equal
//! to Δspeed/interval when the interval is ≤ 1 s).

use crate::ids::{nanoid, random_vin};
use crate::reading::Reading;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Units: speed in tenths of km/h; rates in tenths of km/h per second; odometer in 1/72 mm
/// (so that distance = (v0 + v1) × dt_ms exactly, with v in tenths of km/h).
const ODO_UNITS_PER_M: i64 = 72_000;
const MAX_SPEED: i64 = 1_300;
/// Largest |Δspeed| per second, tenths of km/h (90 km/h per s).
const MAX_ACCEL: i64 = 900;
/// Comfortable deceleration used to plan the final stop (5 km/h per s).
const PLAN_BRAKE_RATE: i64 = 50;

/// Compass headings as (east, north) per-mille components.
const HEADINGS: [(i64, i64); 8] = [
    (0, 1000),
    (707, 707),
    (1000, 0),
    (707, -707),
    (0, -1000),
    (-707, -707),
    (-1000, 0),
    (-707, 707),
];
/// Metres per degree of latitude, and of longitude near 47.6° N.
const M_PER_DEG_LAT: i64 = 111_320;
const M_PER_DEG_LON: i64 = 75_063;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle { remaining_ms: i64 },
    Accelerate { target: i64, rate: i64 },
    Cruise { target: i64, remaining_ms: i64 },
    Brake { target: i64, rate: i64 },
    FinalStop,
}

#[derive(Debug, Clone)]
pub struct Vehicle {
    pub index: u32,
    pub vin: String,
    pub device_id: String,
    /// Sub-interval offset of this vehicle's clock, nanoseconds (whole microseconds).
    pub offset_ns: i64,
    rng: ChaCha8Rng,
    trip_id: String,
    phase: Phase,
    speed: i64,
    accel_tt: i64,
    odo_u: i64,
    fuel_ul: i64,
    tank_ul: i64,
    trip_fuel_ul: i64,
    ambient_milli: i64,
    oil_milli: i64,
    lat_nano: i64,
    lon_nano: i64,
    heading: usize,
}

/// Rounds a / b half away from zero (b > 0).
pub fn div_round(a: i64, b: i64) -> i64 {
    let q = a / b;
    let r = a % b;
    if 2 * r.abs() >= b { q + a.signum() } else { q }
}

impl Vehicle {
    /// A new vehicle; its identity and behaviour come from `seed` and `index` only.
    pub fn new(seed: u64, index: u32, interval_ms: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // One independent ChaCha stream per vehicle (stream 0 is for fault injection).
        rng.set_stream(u64::from(index) + 1);
        let vin = random_vin(&mut rng);
        let offset_window_us = (interval_ms.min(1_000) * 1_000) as i64;
        let offset_ns = rng.random_range(0..offset_window_us) * 1_000;
        let tank_ul = rng.random_range(45_000_000..=70_000_000);
        let fuel_ul = tank_ul * rng.random_range(40..=100) / 100;
        let odo_km: i64 = rng.random_range(500..=150_000);
        let ambient_milli = rng.random_range(8_000..=26_000);
        Vehicle {
            index,
            vin,
            device_id: format!("dev-{:04}", index + 1),
            offset_ns,
            trip_id: String::new(),
            phase: Phase::Idle { remaining_ms: 0 },
            speed: 0,
            accel_tt: 0,
            odo_u: odo_km * 1_000 * ODO_UNITS_PER_M + rng.random_range(0..ODO_UNITS_PER_M * 1_000),
            fuel_ul,
            tank_ul,
            trip_fuel_ul: 0,
            ambient_milli,
            oil_milli: ambient_milli,
            // Around Seattle, within ~10 km.
            lat_nano: 47_606_200_000 + rng.random_range(-90_000_000..=90_000_000),
            lon_nano: -122_332_100_000 + rng.random_range(-130_000_000..=130_000_000),
            heading: rng.random_range(0..HEADINGS.len()),
            rng,
        }
    }

    /// Starts a trip: new trip id, engine on and idling, maybe refuelled.
    pub fn start_trip(&mut self, first_of_day: bool) {
        self.trip_id = nanoid(&mut self.rng);
        self.speed = 0;
        self.accel_tt = 0;
        self.trip_fuel_ul = 0;
        if self.fuel_ul * 100 < self.tank_ul * 15 {
            self.fuel_ul = self.tank_ul * self.rng.random_range(90..=100) / 100;
        }
        self.oil_milli = if first_of_day {
            self.ambient_milli
        } else {
            (self.oil_milli - 15_000).max(self.ambient_milli)
        };
        self.phase = Phase::Idle {
            remaining_ms: self.rng.random_range(2_000..=8_000),
        };
    }

    fn launch(&mut self) -> Phase {
        // Occasional hard launch (10.5 to 16 km/h per s) well above the default threshold.
        let rate = if self.rng.random_range(0..100) < 15 {
            self.rng.random_range(105..=160)
        } else {
            self.rng.random_range(15..=45)
        };
        Phase::Accelerate {
            target: self.rng.random_range(300..=900),
            rate,
        }
    }

    fn cruise(&mut self, target: i64) -> Phase {
        Phase::Cruise {
            target,
            remaining_ms: self.rng.random_range(5_000..=60_000),
        }
    }

    fn next_manoeuvre(&mut self) -> Phase {
        let r = self.rng.random_range(0..100);
        if r < 35 {
            // Stop at lights.
            Phase::Brake {
                target: 0,
                rate: self.rng.random_range(30..=80),
            }
        } else if r < 60 {
            let hard = self.rng.random_range(0..100) < 8;
            let rate = if hard {
                self.rng.random_range(100..=130)
            } else {
                self.rng.random_range(10..=35)
            };
            let target = (self.speed + self.rng.random_range(100..=400)).min(MAX_SPEED);
            Phase::Accelerate { target, rate }
        } else if r < 85 && self.speed > 300 {
            let target = self.speed * self.rng.random_range(50..=80) / 100;
            Phase::Brake {
                target,
                rate: self.rng.random_range(20..=60),
            }
        } else {
            let target = self.speed.max(100);
            self.cruise(target)
        }
    }

    /// Advances the physics by `dt_ms`; `remaining_ms` is the time from the start of this
    /// sub-step to the trip's last reading.
    fn substep(&mut self, dt_ms: i64, remaining_ms: i64) {
        let stop_ms = self.speed * 1_000 / PLAN_BRAKE_RATE + 4_000;
        if self.phase != Phase::FinalStop && remaining_ms <= stop_ms {
            self.phase = Phase::FinalStop;
        }
        let v0 = self.speed;
        let mut delta = match self.phase {
            Phase::Idle { remaining_ms: left } => {
                let left = left - dt_ms;
                self.phase = if left <= 0 {
                    self.launch()
                } else {
                    Phase::Idle { remaining_ms: left }
                };
                0
            }
            Phase::Accelerate { target, rate } => {
                let r = rate + self.rng.random_range(-rate / 10..=rate / 10);
                let d = (r * dt_ms / 1_000).max(1);
                if v0 + d >= target {
                    self.phase = self.cruise(target);
                    (target - v0).max(0)
                } else {
                    d
                }
            }
            Phase::Cruise {
                target,
                remaining_ms: left,
            } => {
                // Noise of ±0.8 km/h per s plus a pull back towards the target speed.
                let per_s = self.rng.random_range(-8..=8) + ((target - v0) / 8).clamp(-10, 10);
                let left = left - dt_ms;
                self.phase = if left <= 0 {
                    self.next_manoeuvre()
                } else {
                    Phase::Cruise {
                        target,
                        remaining_ms: left,
                    }
                };
                per_s * dt_ms / 1_000
            }
            Phase::Brake { target, rate } => {
                let r = rate + self.rng.random_range(-rate / 10..=rate / 10);
                let d = -(r * dt_ms / 1_000).max(1);
                if v0 + d <= target {
                    self.phase = if target == 0 {
                        self.heading =
                            (self.heading + self.rng.random_range(6..=10)) % HEADINGS.len();
                        Phase::Idle {
                            remaining_ms: self.rng.random_range(5_000..=40_000),
                        }
                    } else {
                        self.cruise(target)
                    };
                    target - v0
                } else {
                    d
                }
            }
            Phase::FinalStop => {
                // Brake just hard enough to be stopped one second before the last reading.
                let window = (remaining_ms - 1_000).max(dt_ms);
                let rate = ((v0 * 1_000 + window - 1) / window).max(40);
                -((rate * dt_ms + 999) / 1_000).min(v0)
            }
        };
        // Keep |acceleration| <= 90 km/h per s even in degenerate configurations (tiny
        // trips): the pipeline rejects values beyond ±100.
        let max_step = MAX_ACCEL * dt_ms / 1_000;
        delta = delta.clamp(-max_step, max_step);
        if v0 + delta < 0 {
            delta = -v0;
        }
        if v0 + delta > MAX_SPEED {
            delta = MAX_SPEED - v0;
        }
        let v1 = v0 + delta;
        self.speed = v1;
        self.accel_tt = div_round(delta * 1_000_000, dt_ms);

        let du = (v0 + v1) * dt_ms; // distance in 1/72 mm
        self.odo_u += du;
        let (east, north) = HEADINGS[self.heading];
        self.lat_nano += du * north * 1_000 / (72 * M_PER_DEG_LAT);
        self.lon_nano += du * east * 1_000 / (72 * M_PER_DEG_LON);

        // Fuel: idle flow + ~7 L/100 km + extra while accelerating, in microlitres.
        let burn = dt_ms / 4 + du * 7 / 7_200 + delta.max(0) * 30;
        let burn = burn.min(self.fuel_ul);
        self.fuel_ul -= burn;
        self.trip_fuel_ul += burn;

        // Oil warms towards ~95-105 °C with a 4-minute time constant.
        let target = 95_000 + v1 * 8;
        self.oil_milli += (target - self.oil_milli) * dt_ms / 240_000;
    }

    /// Produces the reading at event time `ts_ns`. Unless `first`, the physics is advanced
    /// by `interval_ms` first; `remaining_ms` is the time from the previous reading to the
    /// trip's last reading; `last` marks the trip's last reading (ignition off).
    pub fn step(
        &mut self,
        ts_ns: i64,
        interval_ms: i64,
        remaining_ms: i64,
        first: bool,
        last: bool,
    ) -> Reading {
        if !first {
            let n = (interval_ms + 999) / 1_000;
            let mut left = remaining_ms;
            for i in 0..n {
                let dt = interval_ms / n + i64::from(i < interval_ms % n);
                self.substep(dt, left);
                left -= dt;
            }
        }
        self.reading(ts_ns, last)
    }

    fn gear(&self, last: bool) -> &'static str {
        match self.speed {
            0 if last => "park",
            0 => "neutral",
            1..150 => "first",
            150..300 => "second",
            300..450 => "third",
            450..600 => "fourth",
            600..800 => "fifth",
            _ => "sixth",
        }
    }

    fn reading(&mut self, ts_ns: i64, last: bool) -> Reading {
        let gear = self.gear(last);
        // Engine rpm per km/h in each gear; idle around 780 rpm.
        let per_kmh = match gear {
            "first" => 110,
            "second" => 65,
            "third" => 45,
            "fourth" => 35,
            "fifth" => 28,
            "sixth" => 22,
            _ => 0,
        };
        let engine_rpm = if last {
            0
        } else {
            (self.speed * per_kmh / 10
                + self.accel_tt.max(0) / 500
                + self.rng.random_range(-25..=25))
            .max(760)
        };
        let brake_pct = match self.phase {
            Phase::Brake { rate, .. } => (rate * 6 / 10).clamp(5, 100),
            Phase::FinalStop if self.speed > 0 || !last => 35,
            Phase::Idle { .. } if self.speed == 0 && !last => 20,
            _ => 0,
        };
        // Decelerating harder than engine braking (-1.5 km/h per s) means the pedal is down.
        let brake_pct = if self.accel_tt <= -15_000 {
            brake_pct.max(10)
        } else {
            brake_pct
        };
        Reading {
            vehicle: self.index,
            vin: self.vin.clone(),
            trip_id: self.trip_id.clone(),
            device_id: self.device_id.clone(),
            ts_ns,
            speed_tenths: self.speed,
            accel_tt: self.accel_tt,
            odometer_m: self.odo_u / ODO_UNITS_PER_M,
            engine_rpm,
            fuel_level_tenths: self.fuel_ul * 1_000 / self.tank_ul,
            fuel_consumed_ml: self.trip_fuel_ul / 1_000,
            oil_temp_tenths: (self.oil_milli + self.rng.random_range(-200..=200)) / 100,
            brake_pct,
            ignition: if last { "off" } else { "run" },
            gear,
            lat_micro: self.lat_nano / 1_000,
            lon_micro: self.lon_nano / 1_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(interval_ms: i64, steps: i64) -> Vec<Reading> {
        let mut v = Vehicle::new(3, 0, interval_ms as u64);
        v.start_trip(true);
        (0..steps)
            .map(|k| {
                let remaining = (steps - k) * interval_ms;
                v.step(
                    k * interval_ms * 1_000_000,
                    interval_ms,
                    remaining,
                    k == 0,
                    k == steps - 1,
                )
            })
            .collect()
    }

    #[test]
    fn rounding() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
    }

    #[test]
    fn trip_is_physical() {
        let r = drive(1_000, 600);
        assert_eq!(r.first().unwrap().speed_tenths, 0);
        assert_eq!(r.last().unwrap().speed_tenths, 0);
        assert_eq!(r.last().unwrap().ignition, "off");
        for w in r.windows(2) {
            assert!(w[1].speed_tenths >= 0);
            assert!(w[1].odometer_m >= w[0].odometer_m);
            assert!(w[1].fuel_level_tenths <= w[0].fuel_level_tenths);
            // 1 s interval: acceleration is exactly Δspeed / Δt.
            assert_eq!(
                w[1].accel_tt,
                (w[1].speed_tenths - w[0].speed_tenths) * 1_000
            );
        }
        assert!(
            r.iter().any(|x| x.speed_tenths > 300),
            "the vehicle never got going"
        );
        assert!(r.last().unwrap().odometer_m > r[0].odometer_m);
    }

    #[test]
    fn long_interval_still_stops() {
        let r = drive(10_000, 60);
        assert_eq!(r.last().unwrap().speed_tenths, 0);
        for w in r.windows(2) {
            assert!(w[1].odometer_m >= w[0].odometer_m);
        }
    }
}
