//! Ground truth: the expected metrics over the records actually sent, computed here with
//! integer arithmetic only and without fleetline-core (an independent implementation that
//! the pipeline's results are checked against).
//!
//! Rules (the canonical ones): malformed records count only in `counts`/`malformed`;
//! valid readings are deduplicated on (VIN, timestamp), the first one sent kept; a reading
//! counts in the UTC day of its event time, whenever it was sent.
//!
//! Units: `sum_speed_milli` is thousandths of km/h; odometers are metres; miles are
//! *nano-miles*: 1 m = 0.000621371 mi = 621_371 × 10⁻⁹ mi, so a day's
//! `(max_odometer_m − min_odometer_m) × 621_371` is exactly its miles × 10⁹. The float
//! `miles` fields are those values rounded to 6 decimals, for reading only.

use crate::config::{SimConfig, format_fixed};
use crate::faults::MalformedReason;
use crate::generator::{Record, RecordKind};
use chrono::{DateTime, Datelike, NaiveDate};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

pub const NANO_MILES_PER_METRE: i64 = 621_371;
const NS_PER_DAY: i64 = 86_400_000_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyAgg {
    pub readings: i64,
    pub sum_speed_milli: i64,
    pub min_odometer_m: i64,
    pub max_odometer_m: i64,
    pub rapid_accelerations: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub records_sent: u64,
    pub valid_readings: u64,
    pub duplicates_sent: u64,
    pub late_sent: u64,
    pub malformed_sent: u64,
}

pub struct Truth {
    params: Value,
    threshold: i64,
    seen: HashSet<(String, i64)>,
    /// (VIN, UTC day number since the epoch, trip_id) → aggregate; BTreeMap for a
    /// deterministic order.
    daily: BTreeMap<(String, i64, String), DailyAgg>,
    malformed: Vec<(MalformedReason, u64)>,
    counts: Counts,
}

fn date_of_day(day: i64) -> NaiveDate {
    DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

/// Nano-miles → miles rounded to 6 decimals (display only).
fn miles_f64(nano: i64) -> f64 {
    (nano + 500).div_euclid(1_000) as f64 / 1e6
}

impl Truth {
    pub fn new(cfg: &SimConfig) -> Self {
        Truth {
            params: cfg.params_json(),
            threshold: cfg.rapid_threshold,
            seen: HashSet::new(),
            daily: BTreeMap::new(),
            malformed: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Observes the next record sent (call in send order).
    pub fn observe(&mut self, rec: &Record) {
        let index = self.counts.records_sent;
        self.counts.records_sent += 1;
        match &rec.kind {
            RecordKind::Malformed(reason) => {
                self.counts.malformed_sent += 1;
                self.malformed.push((*reason, index));
            }
            RecordKind::Valid {
                reading,
                duplicate,
                late,
            } => {
                if *duplicate {
                    self.counts.duplicates_sent += 1;
                }
                if *late && !*duplicate {
                    self.counts.late_sent += 1;
                }
                if !self.seen.insert((reading.vin.clone(), reading.ts_ns)) {
                    return;
                }
                self.counts.valid_readings += 1;
                let day = reading.ts_ns.div_euclid(NS_PER_DAY);
                let agg = self
                    .daily
                    .entry((reading.vin.clone(), day, reading.trip_id.clone()))
                    .or_insert(DailyAgg {
                        min_odometer_m: i64::MAX,
                        max_odometer_m: i64::MIN,
                        ..DailyAgg::default()
                    });
                agg.readings += 1;
                agg.sum_speed_milli += reading.speed_tenths * 100;
                agg.min_odometer_m = agg.min_odometer_m.min(reading.odometer_m);
                agg.max_odometer_m = agg.max_odometer_m.max(reading.odometer_m);
                if reading.accel_tt >= self.threshold {
                    agg.rapid_accelerations += 1;
                }
            }
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// (VIN, date, trip_id) → aggregate, sorted.
    pub fn daily(&self) -> impl Iterator<Item = (&str, NaiveDate, &str, &DailyAgg)> {
        self.daily
            .iter()
            .map(|((vin, day, trip), agg)| (vin.as_str(), date_of_day(*day), trip.as_str(), agg))
    }

    pub fn total_rapid_accelerations(&self) -> i64 {
        self.daily.values().map(|a| a.rapid_accelerations).sum()
    }

    /// Nano-miles per year.
    pub fn nano_miles_by_year(&self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for (_, date, _, a) in self.daily() {
            *out.entry(date.year()).or_insert(0) +=
                (a.max_odometer_m - a.min_odometer_m) * NANO_MILES_PER_METRE;
        }
        out
    }

    pub fn counts_json(&self) -> Value {
        let c = self.counts;
        json!({
            "records_sent": c.records_sent,
            "valid_readings": c.valid_readings,
            "duplicates_sent": c.duplicates_sent,
            "late_sent": c.late_sent,
            "malformed_sent": c.malformed_sent,
        })
    }

    /// The ground-truth document (see the crate README for the format).
    pub fn to_json(&self) -> Value {
        let mut daily = Vec::with_capacity(self.daily.len());
        let mut avg = Vec::with_capacity(self.daily.len());
        let mut rapid_by_vin_year: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        let mut miles_by_vin_year: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for (vin, date, trip, a) in self.daily() {
            let date_s = date.format("%Y-%m-%d").to_string();
            daily.push(json!({
                "vin": vin,
                "trip_id": trip,
                "date": date_s,
                "readings": a.readings,
                "sum_speed_milli": a.sum_speed_milli,
                "min_odometer_m": a.min_odometer_m,
                "max_odometer_m": a.max_odometer_m,
                "rapid_accelerations": a.rapid_accelerations,
            }));
            let avg_milli = crate::vehicle::div_round(a.sum_speed_milli, a.readings);
            avg.push(json!({
                "vin": vin,
                "date": date_s,
                "trip_id": trip,
                "readings": a.readings,
                "sum_speed_milli": a.sum_speed_milli,
                "avg_speed_kmh": avg_milli as f64 / 1_000.0,
            }));
            *rapid_by_vin_year.entry((vin, date.year())).or_insert(0) += a.rapid_accelerations;
            *miles_by_vin_year.entry((vin, date.year())).or_insert(0) +=
                (a.max_odometer_m - a.min_odometer_m) * NANO_MILES_PER_METRE;
        }
        let rapid: Vec<Value> = rapid_by_vin_year
            .iter()
            .map(|((vin, year), n)| json!({"vin": vin, "year": year, "rapid_accelerations": n}))
            .collect();
        let total_miles: Vec<Value> = self
            .nano_miles_by_year()
            .iter()
            .map(|(year, nano)| json!({"year": year, "total_miles_nano": nano, "total_miles": miles_f64(*nano)}))
            .collect();
        let miles: Vec<Value> = miles_by_vin_year
            .iter()
            .map(|((vin, year), nano)| json!({"vin": vin, "year": year, "miles_nano": nano, "miles": miles_f64(*nano)}))
            .collect();
        let malformed: Vec<Value> = self
            .malformed
            .iter()
            .map(|(reason, line)| json!({"reason": reason.code(), "line": line}))
            .collect();
        json!({
            "version": 1,
            "params": self.params,
            "rapid_accel_threshold_kmh_per_s": format_fixed(self.threshold, 4),
            "counts": self.counts_json(),
            "malformed": malformed,
            "daily": daily,
            "rapid_accelerations_by_vin_year": rapid,
            "total_miles_by_year": total_miles,
            "avg_speed_by_trip": avg,
            "miles_by_vin_year": miles,
        })
    }

    /// Pretty JSON text with a trailing newline (byte-identical for identical inputs).
    pub fn to_pretty_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::sample;

    fn valid(ts_ns: i64, speed: i64, odo: i64, accel: i64, duplicate: bool) -> Record {
        let mut reading = sample();
        reading.ts_ns = ts_ns;
        reading.speed_tenths = speed;
        reading.odometer_m = odo;
        reading.accel_tt = accel;
        Record {
            send_ns: ts_ns,
            seq: 0,
            payload: String::new(),
            partition_key: reading.vin.clone(),
            kind: RecordKind::Valid {
                reading: Box::new(reading),
                duplicate,
                late: false,
            },
        }
    }

    #[test]
    fn aggregates_by_hand() {
        let cfg = SimConfig::example();
        let mut t = Truth::new(&cfg);
        let d0 = 1_748_764_800_000_000_000; // 2025-06-01T08:00:00Z
        t.observe(&valid(d0, 500, 1_000, 100_000, false)); // rapid (== threshold)
        t.observe(&valid(d0, 500, 1_000, 100_000, true)); // duplicate: ignored
        t.observe(&valid(d0 + 1_000_000_000, 601, 1_017, 99_999, false));
        t.observe(&Record {
            send_ns: d0,
            seq: 0,
            payload: "x".into(),
            partition_key: "k".into(),
            kind: RecordKind::Malformed(MalformedReason::BadVin),
        });
        t.observe(&valid(d0 + 16 * 3_600_000_000_000, 0, 1_100, 0, false)); // next UTC day
        let j = t.to_json();
        assert_eq!(j["counts"]["records_sent"], 5);
        assert_eq!(j["counts"]["valid_readings"], 3);
        assert_eq!(j["counts"]["duplicates_sent"], 1);
        assert_eq!(j["malformed"], json!([{"reason": "bad_vin", "line": 3}]));
        let daily = j["daily"].as_array().unwrap();
        assert_eq!(daily.len(), 2);
        assert_eq!(daily[0]["date"], "2025-06-01");
        assert_eq!(daily[0]["readings"], 2);
        assert_eq!(daily[0]["sum_speed_milli"], 110_100);
        assert_eq!(daily[0]["min_odometer_m"], 1_000);
        assert_eq!(daily[0]["max_odometer_m"], 1_017);
        assert_eq!(daily[0]["rapid_accelerations"], 1);
        assert_eq!(daily[1]["date"], "2025-06-02");
        assert_eq!(
            j["total_miles_by_year"][0]["total_miles_nano"],
            17 * 621_371
        );
        assert_eq!(j["total_miles_by_year"][0]["total_miles"], 0.010563);
        assert_eq!(j["avg_speed_by_trip"][0]["avg_speed_kmh"], 55.05);
        assert_eq!(j["rapid_accel_threshold_kmh_per_s"], "10.0000");
    }
}
